//! How a run ended: meshinit's exit code, where it came from, why the task did not run
//! (when it did not), how long each phase took — said in one summary line, and written as
//! the termination message when the task never ran.

use std::path::Path;
use std::time::Duration;

use crate::logging::millis;
use crate::termination;

/// Where meshinit's exit code came from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Task,
    Timeout,
    Usage,
    CannotRun,
    Signal,
    Internal,
    Ready,
    Quit,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Task => "task",
            Source::Timeout => "timeout",
            Source::Usage => "usage",
            Source::CannotRun => "cannot run",
            Source::Signal => "signal",
            Source::Internal => "internal",
            Source::Ready => "wait",
            Source::Quit => "quit",
        }
    }
}

/// How the run ended: the code, where it came from, why (when the task did not run), and
/// how long each phase took.
pub struct Ending {
    pub code: u8,
    pub source: Source,
    /// Why the run ended before the task ran; none when it ran.
    pub reason: Option<String>,
    pub wait: Option<Duration>,
    pub task: Option<Duration>,
    pub quit: Option<Duration>,
}

impl Ending {
    pub fn new(code: u8, source: Source) -> Ending {
        Ending {
            code,
            source,
            reason: None,
            wait: None,
            task: None,
            quit: None,
        }
    }

    pub fn because(mut self, reason: impl Into<String>) -> Ending {
        self.reason = Some(reason.into());
        self
    }

    /// The summary line, and the reason written to `termination_log` when the task did not
    /// run; returns the exit code.
    pub fn conclude(&self, termination_log: Option<&Path>) -> u8 {
        if log_enabled!(log::Level::Info) {
            summarize(self);
        }
        if let (Some(reason), Some(path)) = (&self.reason, termination_log) {
            termination::write(path, &format!("meshinit: {reason} (exit {})", self.code));
        }
        self.code
    }
}

/// `exit 3 (task), waited 355ms, task ran 0ms, quit took 1ms`, with the same as fields.
fn summarize(ending: &Ending) {
    let phase_ms = |phase: Option<Duration>| phase.map(millis);
    let mut summary = format!("exit {} ({})", ending.code, ending.source.name());
    for (name, took) in [
        ("waited", ending.wait),
        ("task ran", ending.task),
        ("quit took", ending.quit),
    ] {
        if let Some(took) = took {
            summary.push_str(&format!(", {name} {}ms", millis(took)));
        }
    }
    info!(
        phase = "exit", code = ending.code, source = ending.source.name(),
        wait_ms = phase_ms(ending.wait), task_ms = phase_ms(ending.task),
        quit_ms = phase_ms(ending.quit);
        "{summary}"
    );
}
