//! One sidecar shared by several task containers (--name, --pod-dir, --quit-after): the
//! last one to end quits it, the others leave it alone.
//!
//! Each meshinit says it runs by holding an flock on `DIR/NAME.lock` for its whole life: the
//! kernel releases the lock when the process dies, however it dies (SIGKILL, OOM), and flock
//! works across PID namespaces on the one directory. The file appears already locked (made
//! under a hidden name, locked, then renamed), so a file that is there and not locked is a
//! container that has ended. At its task's end, a meshinit releases its lock, then looks
//! at the others: one still locked runs, so it is not the last; when every one has ended,
//! creating `DIR/.quit` with O_EXCL picks exactly one of those that ended together.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::init::signals::Signals;
use crate::init::supervisor;

/// How often a name that has not joined yet is looked for.
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

/// This container's place in the pod directory, held until the task ends.
pub struct Member {
    shared: Shared,
    /// Holds the lock that says this container runs.
    lock: File,
    /// A name that has not joined is waited for until then (--timeout from the start).
    joined_by: Instant,
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
}

/// Says that this container runs: `DIR/NAME.lock`, locked for as long as meshinit lives.
/// `Err`: DIR cannot hold it (missing, not a directory, not writable), or another running
/// container has this name; the text names DIR or the name.
pub fn join(shared: &Shared, timeout: Duration) -> Result<Member, String> {
    let dir = &shared.dir;
    let shown = dir.display();
    let lock_path = lock_file(dir, &shared.name);
    if let Ok(existing) = File::open(&lock_path) {
        if locked(&existing)? {
            return Err(format!(
                "--name {}: another running container of the pod has this name ({} is locked)",
                shared.name,
                lock_path.display()
            ));
        }
    }
    // A container that joins starts a new round (a restarted one): the last round's quit
    // is over.
    match std::fs::remove_file(dir.join(QUIT_TOKEN)) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            return Err(format!("--pod-dir {shown}: cannot write there: {err}"));
        }
        _ => {}
    }
    let hidden = dir.join(format!(".{}.{}.joining", shared.name, std::process::id()));
    let lock = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(&hidden)
        .map_err(|err| format!("--pod-dir {shown}: cannot write there: {err}"))?;
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
        lock,
        joined_by: Instant::now() + timeout,
    })
}

impl Member {
    /// Says that this container has ended, then finds whose turn the sidecar is. A name of
    /// --quit-after that has not joined is waited for until --timeout from the start, then
    /// named and left out. A termination signal ends that wait.
    pub fn leave(self, signals: Option<&Signals>) -> Turn {
        let Member {
            shared,
            lock,
            joined_by,
        } = self;
        if let Err(err) = flock(&lock, libc::LOCK_UN) {
            warn!(
                "cannot release {}'s lock in the pod directory: {err}",
                shared.name
            );
        }
        drop(lock);
        let mut running = Vec::new();
        for name in shared.quit_after.iter().filter(|n| **n != shared.name) {
            match ended(&shared.dir, name, joined_by, signals) {
                Ok(true) => {}
                Ok(false) => running.push(name.clone()),
                // Unreadable: better a sidecar quit too soon than a pod that never ends.
                Err(err) => warn!("cannot tell whether {name} runs: {err}; counted as ended"),
            }
        }
        if !running.is_empty() {
            return Turn::Running(running);
        }
        take_the_quit(&shared)
    }
}

/// Whether `name` has ended: its lock file there and not locked; one not there yet is
/// waited for until `deadline`, then counted as ended with a warning.
fn ended(
    dir: &Path,
    name: &str,
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<bool, String> {
    let path = lock_file(dir, name);
    loop {
        match File::open(&path) {
            Ok(file) => return locked(&file).map(|held| !held),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(format!("{}: {err}", path.display())),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let signalled =
            !left.is_zero() && supervisor::pause_or_sleep(signals, POLL.min(left)).is_some();
        if left.is_zero() || signalled {
            warn!(
                "--quit-after: {name} never joined {} (a misspelt name, or a container \
                 that never started): left out",
                dir.display()
            );
            return Ok(true);
        }
    }
}

/// The one of those that ended together that makes `DIR/.quit` takes the quit.
fn take_the_quit(shared: &Shared) -> Turn {
    let token = shared.dir.join(QUIT_TOKEN);
    let made = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&token);
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
fn locked(file: &File) -> Result<bool, String> {
    match flock(file, libc::LOCK_SH | libc::LOCK_NB) {
        Ok(()) => {
            flock(file, libc::LOCK_UN).map_err(|err| err.to_string())?;
            Ok(false)
        }
        Err(err) if err.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(true),
        Err(err) => Err(err.to_string()),
    }
}

fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    // SAFETY: the descriptor is open for as long as `file` lives; flock takes no pointers.
    if unsafe { libc::flock(file.as_raw_fd(), operation) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
                        member.leave(None)
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
