//! One run of meshinit, following the plan: take over signals, wait for the sidecar, run
//! and supervise the task, tell the sidecar to quit, and leave with the task's exit code;
//! then one summary line, and the termination message when the task never ran.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use crate::config::{Action, OnTimeout, Plan, UsageError};
use crate::ending::{Ending, Source};
use crate::exit;
use crate::init::child;
use crate::init::signals::{self, Signals};
use crate::init::supervisor::{self, Ended};
use crate::logging::millis;
use crate::sidecar::endpoints::Endpoints;
use crate::sidecar::quit::{self, Limits};
use crate::sidecar::wait::{self, Waited};

/// How the wait ended, for the quit at the end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Ready, or never looked for: quit it as it is.
    Sidecar,
    /// The wait gave up on it: it may still come, within the quit window.
    Late,
    /// The search found none: one may have come since.
    Nothing,
}

pub fn run(plan: &Plan) -> u8 {
    say_warnings(plan);
    let ending = match Signals::take_over() {
        Ok(signals) => run_with(plan, &signals),
        Err(err) => {
            let reason = format!("cannot block signals: {err}");
            error!("{reason}");
            let ending = Ending::new(exit::SOFTWARE, Source::Internal).because(reason);
            finish(plan, &plan.sidecar.to_quit(), Seen::Sidecar, None, ending)
        }
    };
    conclude(plan, &ending)
}

/// A usage error ends the run before it starts; a pod must not hang on a typo, so a run
/// (not `wait` or `quit`) still tells the sidecar to quit.
pub fn after_usage_error(plan: &Plan, error: &UsageError) -> u8 {
    say_warnings(plan);
    let ending = Ending::new(exit::USAGE, Source::Usage).because(error.to_string());
    let ending = match plan.action {
        Some(Action::Wait | Action::Quit) => ending,
        Some(Action::Run(_)) | None => {
            finish(plan, &plan.sidecar.to_quit(), Seen::Sidecar, None, ending)
        }
    };
    conclude(plan, &ending)
}

fn say_warnings(plan: &Plan) {
    for warning in &plan.warnings {
        warn!("{warning}");
    }
}

fn run_with(plan: &Plan, signals: &Signals) -> Ending {
    // Children that exited before SIGCHLD was blocked (an exec'd shell's orphans) sent
    // their signal to nobody: collect them now.
    supervisor::reap(None);
    match supervisor::become_subreaper() {
        Ok(true) => debug!("not PID 1: reaping orphans as a child subreaper"),
        Ok(false) => {}
        Err(err) => {
            warn!("cannot become a child subreaper, orphans will not be reaped: {err}")
        }
    }
    match &plan.action {
        Some(Action::Run(command)) => run_task(plan, command, signals),
        // parse refuses a run without a COMMAND.
        None => Ending::new(exit::SOFTWARE, Source::Internal).because("no COMMAND"),
        Some(Action::Wait) => {
            let began = Instant::now();
            let mut ending = match wait::wait(&plan.sidecar, plan.timeout, signals) {
                Waited::Ready(_) | Waited::NoSidecar => Ending::new(0, Source::Ready),
                Waited::TimedOut(_) => Ending::new(exit::UNAVAILABLE, Source::Timeout),
                Waited::Signalled(sig, _) => Ending::new(exit::signalled(sig), Source::Signal),
            };
            ending.wait = Some(began.elapsed());
            ending
        }
        Some(Action::Quit) => {
            let began = Instant::now();
            let sidecar = plan.sidecar.to_quit();
            let quit = sidecar.is_empty()
                || quit::quit(&sidecar, limits(plan, Seen::Sidecar), Some(signals));
            let code = if quit { 0 } else { exit::UNAVAILABLE };
            let mut ending = Ending::new(code, Source::Quit);
            ending.quit = Some(began.elapsed());
            ending
        }
    }
}

fn run_task(plan: &Plan, command: &[OsString], signals: &Signals) -> Ending {
    // A typo in the command fails now, not after the whole wait for the sidecar.
    if let Err(err) = child::find(command) {
        error!("{err}");
        let ending = Ending::new(err.exit_code(), Source::CannotRun).because(err.to_string());
        return finish(
            plan,
            &plan.sidecar.to_quit(),
            Seen::Sidecar,
            Some(signals),
            ending,
        );
    }
    let began = Instant::now();
    let waited = wait::wait(&plan.sidecar, plan.timeout, signals);
    let waited_for = began.elapsed();
    let stop = |ending: Ending, sidecar: &Endpoints, seen| {
        let ending = Ending {
            wait: Some(waited_for),
            ..ending
        };
        finish(plan, sidecar, seen, Some(signals), ending)
    };
    let (sidecar, seen) = match waited {
        Waited::Ready(sidecar) => (sidecar, Seen::Sidecar),
        Waited::NoSidecar => (plan.sidecar.to_quit(), Seen::Nothing),
        Waited::TimedOut(sidecar) => match plan.on_timeout {
            OnTimeout::Fail => {
                let reason = format!(
                    "the sidecar was not ready within {}ms",
                    millis(plan.timeout)
                );
                let ending = Ending::new(exit::UNAVAILABLE, Source::Timeout).because(reason);
                return stop(ending, &sidecar, Seen::Late);
            }
            // The task's run gave the sidecar time to come: it is quit once at the end.
            OnTimeout::Start => {
                warn!("starting the task without a ready sidecar (--on-timeout start)");
                (sidecar, Seen::Sidecar)
            }
        },
        Waited::Signalled(sig, sidecar) => {
            let reason = format!("SIG{} before the task started", signals::name(sig));
            let ending = Ending::new(exit::signalled(sig), Source::Signal).because(reason);
            return stop(ending, &sidecar, Seen::Sidecar);
        }
    };
    let task = match child::spawn(command) {
        Ok(task) => task,
        Err(err) => {
            error!("{err}");
            let ending = Ending::new(err.exit_code(), Source::CannotRun).because(err.to_string());
            return stop(ending, &sidecar, seen);
        }
    };
    // argv[0] only: the arguments may hold secrets.
    let program = command[0].to_string_lossy();
    info!(
        phase = "task", pid = task.pid, command = program.as_ref();
        "task started: {program} (pid {})",
        task.pid
    );
    let started = Instant::now();
    let ended = supervisor::supervise(signals, task, plan.forwarding);
    let ran_for = started.elapsed();
    let ending = match ended {
        Ok(ended) => {
            let code = ended.code();
            match ended {
                Ended::Exited(_) => info!(
                    phase = "task", code = code, elapsed_ms = millis(ran_for);
                    "task exited with code {code}"
                ),
                Ended::Killed(sig) => info!(
                    phase = "task", code = code, signal = signals::name(sig),
                    elapsed_ms = millis(ran_for);
                    "task killed by SIG{} (exit {code})",
                    signals::name(sig)
                ),
            }
            if let Err(err) = supervisor::drain_group(signals, task, plan.grace) {
                error!("waiting for the task's process group: {err}");
            }
            Ending::new(code, Source::Task)
        }
        Err(err) => {
            error!("waiting for signals: {err}");
            Ending::new(exit::SOFTWARE, Source::Internal)
        }
    };
    let ending = Ending {
        task: Some(ran_for),
        ..ending
    };
    stop(ending, &sidecar, seen)
}

fn limits(plan: &Plan, seen: Seen) -> Limits {
    Limits {
        budget: plan.quit_budget,
        confirm: plan.quit_wait,
        window: match seen {
            Seen::Late => plan.quit_window,
            Seen::Sidecar | Seen::Nothing => Duration::ZERO,
        },
    }
}

/// Tells the sidecar to quit unless --keep-sidecar keeps it for this exit code; the code
/// is meshinit's whatever happened to the sidecar.
fn finish(
    plan: &Plan,
    sidecar: &Endpoints,
    seen: Seen,
    signals: Option<&Signals>,
    mut ending: Ending,
) -> Ending {
    if sidecar.is_empty() {
        return ending;
    }
    if !plan.keep.quits_after(ending.code) {
        // Only a sidecar that was there is said to be left running.
        if seen != Seen::Nothing {
            info!(
                "leaving the sidecar running (--keep-sidecar, exit code {})",
                ending.code
            );
        }
        return ending;
    }
    let began = Instant::now();
    match seen {
        Seen::Nothing => quit::quit_latecomer(sidecar, plan.quit_budget),
        Seen::Sidecar | Seen::Late => {
            quit::quit(sidecar, limits(plan, seen), signals);
        }
    }
    ending.quit = Some(began.elapsed());
    ending
}

/// The summary line, and the termination message when a run's task did not run.
fn conclude(plan: &Plan, ending: &Ending) -> u8 {
    let termination_log = match plan.action {
        Some(Action::Wait | Action::Quit) => None,
        Some(Action::Run(_)) | None => plan.termination_log.as_deref(),
    };
    ending.conclude(termination_log)
}
