//! One sidecar shared by several task containers (--name, --pod-dir, --quit-after): the
//! last one to end quits it, the others leave it alone.
//!
//! Each meshinit says it runs by holding an flock on `DIR/NAME.lock` until its task ends:
//! the kernel releases the lock when the process dies, however it dies (SIGKILL, OOM), and
//! flock works across PID namespaces on the one directory. The file appears already locked
//! (made under a hidden name while meshinit holds DIR, locked, then renamed), so a file that
//! is there and not locked is a container that has ended; one joiner at a time holds DIR, so
//! of two containers given one name exactly one joins. At its task's end a meshinit releases
//! its lock, then looks at the others: one still locked runs, so it is not the last; when
//! every one has ended, creating `DIR/.quit` with O_EXCL picks exactly one of those that
//! ended together. A container that could not join, or whose configuration is wrong, holds
//! nothing and leaves the sidecar to the others while one of them runs.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::init::signals::{self, Signals};
use crate::init::supervisor;
use crate::logging::millis;
use crate::pod_dir::{self, flock};

/// How often a name that has not joined yet, or whose lock cannot be read, is looked at.
const POLL: Duration = Duration::from_millis(50);
/// Made by the one that quits.
const QUIT_TOKEN: &str = ".quit";

/// The task containers that share the sidecar, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shared {
    /// The directory they share.
    pub dir: PathBuf,
    /// This container's name.
    pub name: String,
    /// The ones that must all have ended before the sidecar is quit.
    pub quit_after: Vec<String>,
}

/// This container's place in the pod directory, kept until the task ends.
pub struct Member {
    shared: Shared,
    /// Holds the lock that says this container runs; `None`: it could not join.
    lock: Option<File>,
    /// A name that has not joined is waited for until then (--timeout from the join).
    joined_by: Instant,
    /// --timeout: how long a lock that cannot be read counts as running.
    timeout: Duration,
}

/// Whose turn it is to deal with the sidecar, once this container's task has ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// This one ended last: it quits (or keeps) the sidecar.
    Last,
    /// These still run: the last of them deals with the sidecar.
    Running(Vec<String>),
    /// Another one that ended at the same moment took the quit.
    Taken,
    /// This one could not join, and none of the others runs.
    NoneRuns,
}

/// How leaving came out: whose turn the sidecar is, and the termination signal that cut the
/// wait for the others short, if one did (the pod is stopping).
pub struct Left {
    pub turn: Turn,
    pub cut: Option<libc::c_int>,
}

/// Says that this container runs: `DIR/NAME.lock`, locked until its task ends. `Err`: DIR
/// cannot hold it (missing, not a directory, not writable), or another running container
/// has this name; the text names DIR or the name.
pub fn join(shared: &Shared, timeout: Duration) -> Result<Member, String> {
    let dir = &shared.dir;
    let shown = dir.display();
    // Until the end of the join: the hidden name is this joiner's, and a name's lock file
    // is looked at and replaced by one joiner at a time.
    let _held =
        pod_dir::hold(dir).map_err(|err| format!("--pod-dir {shown}: cannot lock it: {err}"))?;
    let lock_path = lock_file(dir, &shared.name);
    let existing = pod_dir::open_planted(&lock_path).and_then(|file| locked(&file));
    if existing.is_ok_and(|held| held) {
        return Err(format!(
            "--name {}: another running container of the pod has this name ({} is locked)",
            shared.name,
            lock_path.display()
        ));
    }
    // A container that joins starts a new round (a restarted one): the last round's quit
    // is over. One that cannot be removed (another user's, in a sticky directory) is found
    // at the end, made before this one ended: the quit is then this one's all the same.
    let token = dir.join(QUIT_TOKEN);
    match std::fs::remove_file(&token) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            warn!("cannot remove {}: {err}", token.display())
        }
        _ => {}
    }
    let hidden = dir.join(format!(".{}.joining", shared.name));
    let lock = pod_dir::create_fresh(&hidden, 0o644).map_err(|err| {
        format!(
            "--pod-dir {shown}: cannot write {}: {err}",
            hidden.display()
        )
    })?;
    let joined = flock(&lock, libc::LOCK_EX | libc::LOCK_NB)
        .and_then(|()| std::fs::rename(&hidden, &lock_path));
    if let Err(err) = joined {
        let _ = std::fs::remove_file(&hidden);
        return Err(format!(
            "--pod-dir {shown}: cannot lock {}: {err}",
            lock_path.display()
        ));
    }
    debug!("joined the pod as {} in {shown}", shared.name);
    Ok(Member {
        shared: shared.clone(),
        lock: Some(lock),
        joined_by: Instant::now() + timeout,
        timeout,
    })
}

impl Member {
    /// A container of the set that could not join, or whose configuration is wrong: it
    /// holds nothing, and at its end looks at the others' locks as a member does.
    pub fn outside(shared: &Shared, timeout: Duration) -> Member {
        Member {
            shared: shared.clone(),
            lock: None,
            joined_by: Instant::now() + timeout,
            timeout,
        }
    }

    /// Says that this container has ended, then finds whose turn the sidecar is. A name of
    /// --quit-after that has not joined is waited for until --timeout from the join, then
    /// named and left out; a lock that cannot be read counts as running for --timeout,
    /// then as ended. A termination signal, now or earlier in the run, ends these waits.
    pub fn leave(self, signals: Option<&Signals>) -> Left {
        let Member {
            shared,
            lock,
            joined_by,
            timeout,
        } = self;
        let token = shared.dir.join(QUIT_TOKEN);
        let joined = lock.is_some();
        // There while this container still ran: not made by one that ended with it.
        let stale = joined && token.symlink_metadata().is_ok();
        if let Some(lock) = lock {
            if let Err(err) = flock(&lock, libc::LOCK_UN) {
                warn!(
                    "cannot release {}'s lock in the pod directory: {err}",
                    shared.name
                );
            }
        }
        let mut look = Look {
            dir: &shared.dir,
            // Nobody can join a pod directory that is not there.
            joined_by: match shared.dir.is_dir() {
                true => joined_by,
                false => Instant::now(),
            },
            unreadable_until: Instant::now() + timeout,
            signals,
            // The pod is stopping already: nobody is waited for.
            cut: signals.and_then(Signals::terminated),
        };
        let others = shared.quit_after.iter().filter(|n| **n != shared.name);
        // First without waiting: one that runs is enough to leave the sidecar to it. One
        // that could not join holds no lock, so a lock of its own name is another's.
        let own = (!joined).then_some(&shared.name);
        let mut running: Vec<String> = others
            .clone()
            .chain(own)
            .filter(|name| look.runs(name, false))
            .cloned()
            .collect();
        if running.is_empty() {
            // Then each in turn, waiting where it must, until one runs.
            running.extend(
                others
                    .into_iter()
                    .find(|name| look.runs(name, true))
                    .cloned(),
            );
        }
        let turn = if !running.is_empty() {
            Turn::Running(running)
        } else if !joined {
            Turn::NoneRuns
        } else if stale {
            warn!(
                "{} is there from before this container ended (another counted it as ended, \
                 or does not list it in --quit-after, or it could not be removed at the \
                 join): quitting the sidecar all the same",
                token.display()
            );
            Turn::Last
        } else {
            take_the_quit(&token)
        };
        Left {
            turn,
            cut: look.cut,
        }
    }
}

/// Looks at the other task containers' locks, waiting where it must.
struct Look<'a> {
    dir: &'a Path,
    /// A name not there yet is waited for until then.
    joined_by: Instant,
    /// A lock that cannot be read counts as running until then.
    unreadable_until: Instant,
    signals: Option<&'a Signals>,
    /// The termination signal that ended the waiting, once one has: no later wait.
    cut: Option<libc::c_int>,
}

impl Look<'_> {
    /// Whether `name` still runs: its lock file there and locked. With `wait`, one not
    /// there yet is waited for until `joined_by`, and one whose lock cannot be read (not a
    /// regular file, not readable) counts as running until `unreadable_until`, each said.
    fn runs(&mut self, name: &str, wait: bool) -> bool {
        let path = lock_file(self.dir, name);
        let mut said = false;
        loop {
            let unreadable = match pod_dir::open_planted(&path).and_then(|file| locked(&file)) {
                Ok(held) => return held,
                Err(_) if !wait => return false,
                // Not there, or the pod directory is not one: nothing of that name runs.
                Err(err)
                    if err.kind() == io::ErrorKind::NotFound
                        || err.raw_os_error() == Some(libc::ENOTDIR) =>
                {
                    None
                }
                Err(err) => Some(err),
            };
            let deadline = match unreadable {
                Some(_) => self.unreadable_until,
                None => self.joined_by,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if let (Some(err), false) = (&unreadable, said) {
                said = true;
                warn!(
                    "--quit-after: cannot tell whether {name} runs ({}: {err}): counted as \
                     running until --timeout runs out ({}ms left)",
                    path.display(),
                    millis(left)
                );
            }
            if !left.is_zero() && self.cut.is_none() {
                self.cut = supervisor::pause_or_sleep(self.signals, POLL.min(left));
                if self.cut.is_none() {
                    continue;
                }
            }
            let sig = self.cut.map(signals::name);
            match (unreadable, sig) {
                (Some(_), None) => {
                    warn!("--quit-after: {name} counted as ended (--timeout ran out)")
                }
                (Some(_), Some(sig)) => {
                    warn!("--quit-after: {name} counted as ended (cut short by SIG{sig})")
                }
                (None, None) => warn!(
                    "--quit-after: {name} never joined {} (a misspelt name, or a container \
                     that did not start or could not join): left out",
                    self.dir.display()
                ),
                (None, Some(sig)) => warn!(
                    "--quit-after: {name} had not joined {} when SIG{sig} came: left out",
                    self.dir.display()
                ),
            }
            return false;
        }
    }
}

/// The one of those that ended together that makes `DIR/.quit` takes the quit.
fn take_the_quit(token: &Path) -> Turn {
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(token);
    match made {
        Ok(_) => Turn::Last,
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Turn::Taken,
        Err(err) => {
            warn!(
                "cannot write {}: {err}; quitting the sidecar all the same",
                token.display()
            );
            Turn::Last
        }
    }
}

/// The file whose lock says that container `name` runs.
fn lock_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.lock"))
}

/// Whether another process holds a lock on `file` (it runs).
fn locked(file: &File) -> io::Result<bool> {
    match flock(file, libc::LOCK_SH | libc::LOCK_NB) {
        Ok(()) => flock(file, libc::LOCK_UN).map(|()| false),
        Err(err) if err.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(true),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    /// The property behind "exactly once", at its narrowest: members that leave at the
    /// same instant (released together by a barrier; threads hold flocks as processes do,
    /// each through its own open file) never both take the quit, and one always does.
    #[test]
    fn those_that_leave_together_take_the_quit_exactly_once() {
        const ROUNDS: usize = 500;
        let mut together = 0;
        for round in 0..ROUNDS {
            let dir = std::env::temp_dir().join(format!(
                "meshinit-unit-shared-{}-{round}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let names = ["a", "b", "c"];
            let barrier = Arc::new(Barrier::new(names.len()));
            let leaving: Vec<_> = names
                .iter()
                .map(|name| {
                    let shared = Shared {
                        dir: dir.clone(),
                        name: (*name).to_owned(),
                        quit_after: names.iter().map(|n| (*n).to_owned()).collect(),
                    };
                    let member = join(&shared, Duration::from_secs(5)).unwrap();
                    let barrier = Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        barrier.wait();
                        member.leave(None).turn
                    })
                })
                .collect();
            let turns: Vec<Turn> = leaving.into_iter().map(|t| t.join().unwrap()).collect();
            let lasts = turns.iter().filter(|t| **t == Turn::Last).count();
            assert_eq!(lasts, 1, "round {round}: {turns:?}");
            together += turns.iter().any(|t| matches!(t, Turn::Taken)) as usize;
            std::fs::remove_dir_all(&dir).unwrap();
        }
        // Otherwise the token was never put to the test.
        eprintln!("{together} of {ROUNDS} rounds had two or more see every one ended");
        assert!(together > 0, "no round raced");
    }
}
