//! One run of meshinit, following the plan: take over signals, wait for the sidecar, run
//! and supervise the task, tell the sidecar to quit, and leave with the task's exit code.

use std::ffi::OsString;

use crate::config::{Action, OnTimeout, Plan};
use crate::exit;
use crate::init::signals::Signals;
use crate::init::{child, supervisor};
use crate::sidecar::endpoints::Endpoints;
use crate::sidecar::quit;
use crate::sidecar::wait::{self, Waited};

pub fn run(plan: &Plan) -> u8 {
    let signals = match Signals::take_over() {
        Ok(signals) => signals,
        Err(err) => {
            log::error!("cannot block signals: {err}");
            return finish(plan, &plan.sidecar.to_quit(), exit::SOFTWARE);
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
            if sidecar.is_empty() || quit::quit(&sidecar, plan.quit_wait) {
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
    match plan.action {
        Action::Run(_) => finish(plan, &plan.sidecar.to_quit(), exit::USAGE),
        Action::Wait | Action::Quit => exit::USAGE,
    }
}

fn run_task(plan: &Plan, command: &[OsString], signals: &Signals) -> u8 {
    let sidecar = match wait::wait(&plan.sidecar, plan.timeout, signals) {
        Waited::Ready(sidecar) => sidecar,
        Waited::NoSidecar => Endpoints::default(),
        Waited::TimedOut(sidecar) => match plan.on_timeout {
            OnTimeout::Fail => return finish(plan, &sidecar, exit::UNAVAILABLE),
            OnTimeout::Start => {
                log::warn!("starting the task without a ready sidecar (--on-timeout start)");
                sidecar
            }
        },
        Waited::Signalled(sig, sidecar) => return finish(plan, &sidecar, exit::signalled(sig)),
    };
    let task = match child::spawn(command) {
        Ok(task) => task,
        Err(err) => {
            log::error!("{err}");
            return finish(plan, &sidecar, err.exit_code());
        }
    };
    log::info!("task started: pid {}", task.pid);
    let code = match supervisor::supervise(signals, task, plan.forwarding) {
        Ok(code) => code,
        Err(err) => {
            log::error!("waiting for signals: {err}");
            return finish(plan, &sidecar, exit::SOFTWARE);
        }
    };
    log::info!("task exited with code {code}");
    if let Err(err) = supervisor::drain_group(signals, task, plan.grace) {
        log::error!("waiting for the task's process group: {err}");
    }
    finish(plan, &sidecar, code)
}

/// Tells the sidecar to quit unless --keep-sidecar keeps it for this exit code; returns
/// the code, which is meshinit's whatever happened to the sidecar.
fn finish(plan: &Plan, sidecar: &Endpoints, code: u8) -> u8 {
    if !sidecar.is_empty() {
        if plan.keep.quits_after(code) {
            quit::quit(sidecar, plan.quit_wait);
        } else {
            log::info!("leaving the sidecar running (--keep-sidecar, exit code {code})");
        }
    }
    log::debug!("exiting with code {code}");
    code
}
