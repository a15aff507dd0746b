//! The task once started: supervised to its end, its end said, its process group drained
//! (--grace), its exit code mapped (--success-code).

use std::time::Instant;

use crate::config::TaskPlan;
use crate::ending::{exit, Ending, Source};
use crate::init::child::Child;
use crate::init::signals::{self, Signals};
use crate::init::supervisor::{self, Ended};
use crate::logging::millis;

/// Supervises the task to its end (and its process group's, with --grace); the run's end
/// is the task's code, or 0 for a code that counts as success.
pub fn supervise(plan: &TaskPlan, signals: &Signals, task: Child) -> Ending {
    let started = Instant::now();
    let ended = match supervisor::supervise(signals, task, plan.forwarding, &plan.rewrites) {
        Ok(ended) => ended,
        Err(err) => {
            error!("waiting for signals: {err}");
            return Ending::new(exit::SOFTWARE, Source::Internal);
        }
    };
    let code = ended.code();
    let ran = millis(started.elapsed());
    match ended {
        Ended::Exited(_) => info!(
            phase = "task", code = code, elapsed_ms = ran;
            "task exited with code {code}"
        ),
        Ended::Killed(sig) => info!(
            phase = "task", code = code, signal = signals::name(sig), elapsed_ms = ran;
            "task killed by SIG{} (exit {code})",
            signals::name(sig)
        ),
    }
    if let Err(err) = supervisor::drain_group(signals, task, plan.grace, &plan.rewrites) {
        error!("waiting for the task's process group: {err}");
    }
    if plan.success_codes.contains(&code) {
        info!(phase = "task", code = code; "exit code {code} counts as success (--success-code)");
        return Ending::new(0, Source::Task);
    }
    Ending::new(code, Source::Task)
}
