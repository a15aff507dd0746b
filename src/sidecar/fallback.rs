//! The quit's side in /proc, for a pod that shares its process namespace: whether the
//! sidecar can be seen, waiting for one that took the quit to exit, and SIGTERM to one
//! that did not take it.

use std::time::{Duration, Instant};

use super::endpoints::Endpoints;
use super::procscan;
use crate::init::signals::Signals;
use crate::init::supervisor;
use crate::logging::millis;

/// How often /proc is read while a sidecar that took the quit is exiting.
const CONFIRM_POLL: Duration = Duration::from_millis(2);

/// Whether /proc shows one of the sidecar's processes (a shared process namespace).
pub fn visible(sidecar: &Endpoints) -> bool {
    !sidecar.executables.is_empty() && !procscan::find(&sidecar.executables).processes.is_empty()
}

/// Waits up to `wait` (--quit-wait) for the sidecar's processes that /proc shows to exit;
/// SIGTERMs them when they do not. Nothing visible, nothing to wait for.
pub fn confirm_exit(sidecar: &Endpoints, wait: Duration, signals: Option<&Signals>) {
    if sidecar.executables.is_empty() || wait.is_zero() {
        return;
    }
    let visible = procscan::find(&sidecar.executables).processes;
    if visible.is_empty() {
        return;
    }
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if !visible.iter().any(|(pid, _)| procscan::running(*pid)) {
            debug!("the sidecar's processes have exited");
            return;
        }
        // Short: meshinit's container must end right after the sidecar's, or a kubelet
        // that sees a native sidecar exited while this container runs restarts it.
        let _ = supervisor::pause_or_sleep(signals, CONFIRM_POLL);
    }
    warn!(
        "the sidecar took the quit but still runs after {}ms",
        millis(wait)
    );
    terminate(sidecar);
}

/// SIGTERMs the sidecar's processes that /proc shows; true when one was signalled.
pub fn terminate(sidecar: &Endpoints) -> bool {
    match procscan::terminate(&sidecar.executables) {
        procscan::Outcome::Signalled(list) => {
            for (pid, exe) in list {
                info!(
                    phase = "quit", pid = pid, executable = exe.as_str();
                    "sent SIGTERM to {exe} (pid {pid}) found in /proc"
                );
            }
            true
        }
        // After an endpoint closed without an answer the sidecar may well be gone: say
        // only what is known.
        procscan::Outcome::NoneVisible => {
            warn!(
                "no quit endpoint answered 2xx, and no process running {} is visible in \
                 /proc: the sidecar may have exited or may still run (with \
                 shareProcessNamespace: true meshinit can check, and signal it)",
                sidecar.executables.join(" or ")
            );
            false
        }
        procscan::Outcome::Failed(problems) => {
            warn!("sidecar not stopped: {}", problems.join("; "));
            false
        }
    }
}
