//! How a run ends: the exit code meshinit chooses and where it came from, why the task did
//! not run (when it did not), how long each phase took — said in one summary line, and
//! written as Kubernetes' termination message when the task never ran.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::logging::millis;

/// Every exit code meshinit itself chooses, in one place. The task's own code passes
/// through untouched; these are the codes for what went wrong around it.
pub mod exit {
    /// sysexits EX_USAGE: the command line or a variable is wrong.
    pub const USAGE: u8 = 64;
    /// sysexits EX_UNAVAILABLE: the sidecar was not ready in time (or, for `quit`, not stopped).
    pub const UNAVAILABLE: u8 = 69;
    /// sysexits EX_SOFTWARE: meshinit itself failed.
    pub const SOFTWARE: u8 = 70;
    /// sysexits EX_CANTCREAT: `install` could not write its copy.
    pub const CANNOT_CREATE: u8 = 73;
    /// The shell's code for a command that exists but cannot be run.
    pub const CANNOT_RUN: u8 = 126;
    /// The shell's code for a command that is not found.
    pub const NOT_FOUND: u8 = 127;

    /// The shell's code for a process ended by signal `sig`: 128+N.
    pub fn signalled(sig: libc::c_int) -> u8 {
        // Signal numbers are 1..=64, so the sum stays below 256.
        128u8.saturating_add(u8::try_from(sig).unwrap_or(127))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn signal_codes() {
            assert_eq!(super::signalled(libc::SIGTERM), 143);
            assert_eq!(super::signalled(libc::SIGKILL), 137);
            assert_eq!(super::signalled(64), 192);
        }
    }
}

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
    Install,
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
            Source::Install => "install",
        }
    }
}

/// How the run ended: the code, where it came from, and why (when the task did not run).
pub struct Ending {
    pub code: u8,
    pub source: Source,
    /// Why the run ended before the task ran; none when it ran.
    pub reason: Option<String>,
}

/// How long each phase took, recorded as it ends; none for a phase that did not happen.
#[derive(Default)]
pub struct Took {
    pub wait: Option<Duration>,
    pub task: Option<Duration>,
    /// The look at the other task containers (--quit-after), apart from the quit.
    pub quit_after: Option<Duration>,
    pub quit: Option<Duration>,
}

/// Runs `phase`, and records in `slot` how long it took.
pub fn timed<T>(slot: &mut Option<Duration>, phase: impl FnOnce() -> T) -> T {
    let began = Instant::now();
    let result = phase();
    *slot = Some(began.elapsed());
    result
}

impl Ending {
    pub fn new(code: u8, source: Source) -> Ending {
        Ending {
            code,
            source,
            reason: None,
        }
    }

    pub fn because(mut self, reason: impl Into<String>) -> Ending {
        self.reason = Some(reason.into());
        self
    }

    /// The summary line (naming what the configuration asked for and the run `left_out`),
    /// and the reason written to `termination_log` when the task did not run; returns the
    /// exit code.
    pub fn conclude(&self, took: &Took, termination_log: Option<&Path>, left_out: &[String]) -> u8 {
        if log_enabled!(log::Level::Info) {
            summarize(self, took, left_out);
        }
        if let (Some(reason), Some(path)) = (&self.reason, termination_log) {
            write_termination_message(path, &format!("meshinit: {reason} (exit {})", self.code));
        }
        self.code
    }
}

/// `exit 3 (task), waited 355ms, task ran 0ms, quit took 1ms`, with the same as fields.
fn summarize(ending: &Ending, took: &Took, left_out: &[String]) {
    let phase_ms = |phase: Option<Duration>| phase.map(millis);
    let mut summary = format!("exit {} ({})", ending.code, ending.source.name());
    for (name, took) in [
        ("waited", took.wait),
        ("task ran", took.task),
        ("looked at --quit-after", took.quit_after),
        ("quit took", took.quit),
    ] {
        if let Some(took) = took {
            summary.push_str(&format!(", {name} {}ms", millis(took)));
        }
    }
    if !left_out.is_empty() {
        summary.push_str(&format!(", left out: {}", left_out.join(", ")));
    }
    info!(
        phase = "exit", code = ending.code, source = ending.source.name(),
        wait_ms = phase_ms(took.wait), task_ms = phase_ms(took.task),
        quit_after_ms = phase_ms(took.quit_after), quit_ms = phase_ms(took.quit);
        "{summary}"
    );
}

/// Kubernetes keeps at most 4096 bytes of it.
const MAX_BYTES: usize = 4_000;

/// The Kubernetes termination message: when a run ends without the task having run, one
/// short line with the reason goes to the file the kubelet reads (`/dev/termination-log` by
/// default), so that `kubectl describe pod` shows why. Never when the task ran: the task may
/// write its own.
///
/// Writes `line` to `path` when that file exists and may be written; says at debug level
/// why not otherwise. Never creates the file, never blocks on it.
fn write_termination_message(path: &Path, line: &str) {
    let mut end = line.len().min(MAX_BYTES);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let result = OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .and_then(|mut file| file.write_all(format!("{}\n", &line[..end]).as_bytes()));
    match result {
        Ok(()) => debug!("termination message written to {}", path.display()),
        Err(err) => debug!(
            "no termination message written to {}: {err}",
            path.display()
        ),
    }
}
