//! One run of meshinit, following the plan: take over signals, wait for the sidecar, run
//! and supervise the task, tell the sidecar to quit, and leave with the task's exit code.

use std::ffi::OsString;

use crate::config::{Action, OnTimeout, Plan};
use crate::exit;
use crate::init::signals::Signals;
use crate::init::{child, supervisor};
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
    for warning in &plan.warnings {
        log::warn!("{warning}");
    }
    let signals = match Signals::take_over() {
        Ok(signals) => signals,
        Err(err) => {
            log::error!("cannot block signals: {err}");
            return finish(
                plan,
                &plan.sidecar.to_quit(),
                Seen::Sidecar,
                None,
                exit::SOFTWARE,
            );
        }
    };
    // Children that exited before SIGCHLD was blocked (an exec'd shell's orphans) sent
    // their signal to nobody: collect them now.
    supervisor::reap(None);
    match supervisor::become_subreaper() {
        Ok(true) => log::debug!("not PID 1: reaping orphans as a child subreaper"),
        Ok(false) => {}
        Err(err) => {
            log::warn!("cannot become a child subreaper, orphans will not be reaped: {err}")
        }
    }
    match &plan.action {
        Action::Run(command) => run_task(plan, command, &signals),
        Action::Wait => match wait::wait(&plan.sidecar, plan.timeout, &signals) {
            Waited::Ready(_) | Waited::NoSidecar => 0,
            Waited::TimedOut(_) => exit::UNAVAILABLE,
            Waited::Signalled(sig, _) => exit::signalled(sig),
        },
        Action::Quit => {
            let sidecar = plan.sidecar.to_quit();
            if sidecar.is_empty()
                || quit::quit(&sidecar, limits(plan, Seen::Sidecar), Some(&signals))
            {
                0
            } else {
                exit::UNAVAILABLE
            }
        }
    }
}

/// A usage error ends the run before it starts; a pod must not hang on a typo, so a run
/// (not `wait` or `quit`) still tells the sidecar to quit.
pub fn after_usage_error(plan: &Plan) -> u8 {
    for warning in &plan.warnings {
        log::warn!("{warning}");
    }
    match plan.action {
        Action::Run(_) => finish(
            plan,
            &plan.sidecar.to_quit(),
            Seen::Sidecar,
            None,
            exit::USAGE,
        ),
        Action::Wait | Action::Quit => exit::USAGE,
    }
}

fn run_task(plan: &Plan, command: &[OsString], signals: &Signals) -> u8 {
    // A typo in the command fails now, not after the whole wait for the sidecar.
    if let Err(err) = child::find(command) {
        log::error!("{err}");
        let code = err.exit_code();
        return finish(
            plan,
            &plan.sidecar.to_quit(),
            Seen::Sidecar,
            Some(signals),
            code,
        );
    }
    let (sidecar, seen) = match wait::wait(&plan.sidecar, plan.timeout, signals) {
        Waited::Ready(sidecar) => (sidecar, Seen::Sidecar),
        Waited::NoSidecar => (plan.sidecar.to_quit(), Seen::Nothing),
        Waited::TimedOut(sidecar) => match plan.on_timeout {
            OnTimeout::Fail => {
                return finish(plan, &sidecar, Seen::Late, Some(signals), exit::UNAVAILABLE)
            }
            // The task's run gave the sidecar time to come: it is quit once at the end.
            OnTimeout::Start => {
                log::warn!("starting the task without a ready sidecar (--on-timeout start)");
                (sidecar, Seen::Sidecar)
            }
        },
        Waited::Signalled(sig, sidecar) => {
            return finish(
                plan,
                &sidecar,
                Seen::Sidecar,
                Some(signals),
                exit::signalled(sig),
            )
        }
    };
    let task = match child::spawn(command) {
        Ok(task) => task,
        Err(err) => {
            log::error!("{err}");
            return finish(plan, &sidecar, seen, Some(signals), err.exit_code());
        }
    };
    // argv[0] only: the arguments may hold secrets.
    log::info!(
        "task started: {} (pid {})",
        command[0].to_string_lossy(),
        task.pid
    );
    let code = match supervisor::supervise(signals, task, plan.forwarding) {
        Ok(code) => code,
        Err(err) => {
            log::error!("waiting for signals: {err}");
            return finish(plan, &sidecar, seen, Some(signals), exit::SOFTWARE);
        }
    };
    log::info!("task exited with code {code}");
    if let Err(err) = supervisor::drain_group(signals, task, plan.grace) {
        log::error!("waiting for the task's process group: {err}");
    }
    finish(plan, &sidecar, seen, Some(signals), code)
}

fn limits(plan: &Plan, seen: Seen) -> Limits {
    Limits {
        budget: plan.quit_budget,
        confirm: plan.quit_wait,
        window: match seen {
            Seen::Late => plan.quit_window,
            Seen::Sidecar | Seen::Nothing => std::time::Duration::ZERO,
        },
    }
}

/// Tells the sidecar to quit unless --keep-sidecar keeps it for this exit code; returns
/// the code, which is meshinit's whatever happened to the sidecar.
fn finish(plan: &Plan, sidecar: &Endpoints, seen: Seen, signals: Option<&Signals>, code: u8) -> u8 {
    let quits = plan.keep.quits_after(code);
    match seen {
        _ if sidecar.is_empty() => {}
        Seen::Nothing if quits => quit::quit_latecomer(sidecar, plan.quit_budget),
        Seen::Nothing => {}
        _ if quits => {
            quit::quit(sidecar, limits(plan, seen), signals);
        }
        _ => log::info!("leaving the sidecar running (--keep-sidecar, exit code {code})"),
    }
    log::debug!("exiting with code {code}");
    code
}
