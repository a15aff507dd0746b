//! The init loop: forward what arrives, reap whatever exits, and leave with the task's
//! status once the task is gone (after an optional grace period for its process group).

use std::io;
use std::time::{Duration, Instant};

use super::child::Child;
use super::signals::{self, Signals};
use crate::ending::exit;

/// How collected signals reach the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarding {
    /// To the task's process only (tini's default).
    Process,
    /// To every process in the task's process group (tini's `-g`).
    Group,
}

/// Makes meshinit the reaper of the task's orphans when it is not PID 1 itself.
pub fn become_subreaper() -> io::Result<bool> {
    if std::process::id() == 1 {
        return Ok(false);
    }
    // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(true)
}

/// How the task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(u8),
    Killed(libc::c_int),
}

impl Ended {
    /// The shell's code for it: the exit code, or 128+N.
    pub fn code(self) -> u8 {
        match self {
            Ended::Exited(code) => code,
            Ended::Killed(sig) => exit::signalled(sig),
        }
    }
}

/// A received signal FROM forwarded as TO; TO 0: not forwarded (dumb-init's `--rewrite`).
pub type Rewrite = (libc::c_int, libc::c_int);

/// Runs until the task exits, forwarding what arrives (rewritten as `rewrites` say).
pub fn supervise(
    signals: &Signals,
    task: Child,
    forwarding: Forwarding,
    rewrites: &[Rewrite],
) -> io::Result<Ended> {
    let target = match forwarding {
        Forwarding::Process => task.pid,
        Forwarding::Group => -task.pid,
    };
    let mut told = Told::default();
    loop {
        match signals.wait(None)? {
            Some(libc::SIGCHLD) => {
                if let Some(ended) = reap(Some(task.pid)) {
                    return Ok(ended);
                }
            }
            Some(sig) => forward(target, sig, rewrites, &mut told),
            None => {}
        }
    }
}

/// The signals already said at info: each is said once, the rest at debug.
#[derive(Default)]
struct Told(u64);

impl Told {
    fn first(&mut self, sig: libc::c_int) -> bool {
        let bit = 1u64 << (sig & 63);
        let first = self.0 & bit == 0;
        self.0 |= bit;
        first
    }
}

/// After the task exited: SIGTERM what is left of its process group, and wait up to
/// `grace` for it to go, reaping as it does. Signals that arrive meanwhile go to the group.
pub fn drain_group(
    signals: &Signals,
    task: Child,
    grace: Duration,
    rewrites: &[Rewrite],
) -> io::Result<()> {
    if grace.is_zero() || !signals::group_alive(task.pid) {
        return Ok(());
    }
    info!(
        "task's process group still has processes: sending TERM, waiting up to {}ms",
        crate::logging::millis(grace)
    );
    // meshinit's own TERM: not said as one received and forwarded.
    if let Err(err) = signals::send(-task.pid, libc::SIGTERM) {
        warn!("cannot send SIGTERM to the task's process group: {err}");
    }
    let mut told = Told::default();
    let deadline = Instant::now() + grace;
    loop {
        reap(None);
        if !signals::group_alive(task.pid) {
            debug!("task's process group is gone");
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            warn!("grace period over; leaving the rest of the process group");
            return Ok(());
        }
        match signals.wait(Some(left))? {
            Some(libc::SIGCHLD) | None => {}
            Some(sig) => forward(-task.pid, sig, rewrites, &mut told),
        }
    }
}

fn forward(target: libc::pid_t, sig: libc::c_int, rewrites: &[Rewrite], told: &mut Told) {
    let name = signals::name(sig);
    let to = rewrites
        .iter()
        .find(|(from, _)| *from == sig)
        .map_or(sig, |r| r.1);
    let said = if to == 0 {
        "not forwarded (--rewrite-signal)".to_owned()
    } else if to != sig {
        format!("forwarded to the task as SIG{}", signals::name(to))
    } else {
        "forwarded to the task".to_owned()
    };
    if (to != sig || signals::ends_waiting(sig)) && told.first(sig) {
        info!(phase = "task", signal = name, pid = target; "received SIG{name}, {said}");
    } else {
        debug!("received SIG{name} ({sig}) for {target}: {said}");
    }
    if to == 0 {
        return;
    }
    if let Err(err) = signals::send(target, to) {
        warn!("cannot forward SIG{} to {target}: {err}", signals::name(to));
    }
}

/// Waits up to `limit` while no task runs (the wait for the sidecar, the window for a late
/// one): orphans are reaped, other signals ignored, and a termination signal, which has no
/// task to go to, ends the pause and is returned.
pub fn pause(signals: &Signals, limit: Duration) -> Option<libc::c_int> {
    match signals.wait(Some(limit)) {
        Ok(Some(sig)) if signals::ends_waiting(sig) => Some(sig),
        Ok(Some(libc::SIGCHLD)) => {
            reap(None);
            None
        }
        Ok(Some(sig)) => {
            debug!(
                "ignoring SIG{} ({sig}) while no task runs",
                signals::name(sig)
            );
            None
        }
        Ok(None) => None,
        Err(err) => {
            // Without signals a pause can still end by time: sleep the plain way.
            error!("waiting for signals: {err}");
            std::thread::sleep(limit);
            None
        }
    }
}

/// As `pause` when meshinit holds its signals; else (a run that a usage error ended before
/// it took them) a plain sleep.
pub fn pause_or_sleep(signals: Option<&Signals>, limit: Duration) -> Option<libc::c_int> {
    match signals {
        Some(signals) => pause(signals, limit),
        None => {
            std::thread::sleep(limit);
            None
        }
    }
}

/// Reaps every child that has exited. Returns how `task` ended if it was among them.
pub fn reap(task: Option<libc::pid_t>) -> Option<Ended> {
    let mut task_code = None;
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the call.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            if Some(pid) == task {
                task_code = Some(exit_code(status));
            }
            continue;
        }
        if pid < 0 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => {}
                _ => error!("waitpid: {err}"),
            }
        }
        return task_code;
    }
}

fn exit_code(status: libc::c_int) -> Ended {
    if libc::WIFSIGNALED(status) {
        Ended::Killed(libc::WTERMSIG(status))
    } else {
        // WEXITSTATUS is the low byte of the code the task passed to exit.
        Ended::Exited(libc::WEXITSTATUS(status) as u8)
    }
}
