//! The init loop: forward what arrives, reap whatever exits, and leave with the task's
//! status once the task is gone (after an optional grace period for its process group).

use std::io;
use std::time::{Duration, Instant};

use super::child::Child;
use super::signals::{self, Signals};
use crate::exit;

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

/// Runs until the task exits; returns its exit code (128+N when killed by signal N).
pub fn supervise(signals: &Signals, task: Child, forwarding: Forwarding) -> io::Result<u8> {
    let target = match forwarding {
        Forwarding::Process => task.pid,
        Forwarding::Group => -task.pid,
    };
    loop {
        match signals.wait(None)? {
            Some(libc::SIGCHLD) => {
                if let Some(code) = reap(Some(task.pid)) {
                    return Ok(code);
                }
            }
            Some(sig) => forward(target, sig),
            None => {}
        }
    }
}

/// After the task exited: SIGTERM what is left of its process group, and wait up to
/// `grace` for it to go, reaping as it does. Signals that arrive meanwhile go to the group.
pub fn drain_group(signals: &Signals, task: Child, grace: Duration) -> io::Result<()> {
    if grace.is_zero() || !signals::group_alive(task.pid) {
        return Ok(());
    }
    log::info!(
        "task's process group still has processes: sending TERM, waiting up to {}ms",
        crate::logging::millis(grace)
    );
    forward(-task.pid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    loop {
        reap(None);
        if !signals::group_alive(task.pid) {
            log::debug!("task's process group is gone");
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            log::warn!("grace period over; leaving the rest of the process group");
            return Ok(());
        }
        match signals.wait(Some(left))? {
            Some(libc::SIGCHLD) | None => {}
            Some(sig) => forward(-task.pid, sig),
        }
    }
}

fn forward(target: libc::pid_t, sig: libc::c_int) {
    log::debug!("forwarding SIG{} ({sig}) to {target}", signals::name(sig));
    if let Err(err) = signals::send(target, sig) {
        log::warn!(
            "cannot forward SIG{} to {target}: {err}",
            signals::name(sig)
        );
    }
}

/// Reaps every child that has exited. Returns the exit code of `task` if it was among them.
pub fn reap(task: Option<libc::pid_t>) -> Option<u8> {
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
                _ => log::error!("waitpid: {err}"),
            }
        }
        return task_code;
    }
}

fn exit_code(status: libc::c_int) -> u8 {
    if libc::WIFSIGNALED(status) {
        exit::signalled(libc::WTERMSIG(status))
    } else {
        // WEXITSTATUS is the low byte of the code the task passed to exit.
        libc::WEXITSTATUS(status) as u8
    }
}
