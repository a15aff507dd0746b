//! One run of meshinit: take over signals, wait for the sidecar, run and supervise the
//! task, tell the sidecar to quit, and leave with the task's exit code.

use std::ffi::OsString;

use crate::cli::{Action, Config, OnTimeout};
use crate::readiness::{self, Waited};
use crate::sidecar::{self, Mesh, Plan};
use crate::signals::Signals;
use crate::{child, shutdown, supervisor, EXIT_SOFTWARE, EXIT_UNAVAILABLE};

pub fn run(config: &Config) -> u8 {
    let signals = match Signals::take_over() {
        Ok(signals) => signals,
        Err(err) => {
            log::error!("cannot block signals: {err}");
            return finish(config, &quit_plan(config), EXIT_SOFTWARE);
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
    match &config.action {
        Action::Run(command) => run_task(config, command, &signals),
        Action::Wait => match readiness::wait(config, &signals) {
            Waited::Ready(_) | Waited::NoSidecar => 0,
            Waited::TimedOut(_) => EXIT_UNAVAILABLE,
            Waited::Signalled(sig, _) => signal_code(sig),
        },
        Action::Quit => {
            let plan = quit_plan(config);
            if plan.is_empty() || shutdown::quit(&plan, config.quit_wait) {
                0
            } else {
                EXIT_UNAVAILABLE
            }
        }
    }
}

fn run_task(config: &Config, command: &[OsString], signals: &Signals) -> u8 {
    let plan = match readiness::wait(config, signals) {
        Waited::Ready(plan) => plan,
        Waited::NoSidecar => Plan::default(),
        Waited::TimedOut(plan) => match config.on_timeout {
            OnTimeout::Fail => return finish(config, &plan, EXIT_UNAVAILABLE),
            OnTimeout::Start => {
                log::warn!("starting the task without a ready sidecar (--on-timeout start)");
                plan
            }
        },
        Waited::Signalled(sig, plan) => return finish(config, &plan, signal_code(sig)),
    };
    let task = match child::spawn(command) {
        Ok(task) => task,
        Err(err) => {
            log::error!("{err}");
            return finish(config, &plan, err.exit_code());
        }
    };
    log::info!("task started: pid {}", task.pid);
    let code = match supervisor::supervise(signals, task, config.forwarding) {
        Ok(code) => code,
        Err(err) => {
            log::error!("waiting for signals: {err}");
            return finish(config, &plan, EXIT_SOFTWARE);
        }
    };
    log::info!("task exited with code {code}");
    if let Err(err) = supervisor::drain_group(signals, task, config.grace) {
        log::error!("waiting for the task's process group: {err}");
    }
    finish(config, &plan, code)
}

/// Tells the sidecar to quit unless --keep-sidecar keeps it for this exit code; returns
/// the code, which is meshinit's whatever happened to the sidecar.
pub fn finish(config: &Config, plan: &Plan, code: u8) -> u8 {
    if !plan.is_empty() {
        if config.keep.quits_after(code) {
            shutdown::quit(plan, config.quit_wait);
        } else {
            log::info!("leaving the sidecar running (--keep-sidecar, exit code {code})");
        }
    }
    log::debug!("exiting with code {code}");
    code
}

/// What to quit without having waited: the mesh's plan, or with `auto` every known one.
pub fn quit_plan(config: &Config) -> Plan {
    match config.mesh() {
        Mesh::Auto => {
            let mut merged = Plan::default();
            for mesh in sidecar::AUTO_CANDIDATES {
                let plan = config.plan_for(mesh);
                merged.quit.extend(plan.quit);
                merged.executables.extend(plan.executables);
                merged.linkerd |= plan.linkerd;
                merged.notify = plan.notify;
            }
            merged
        }
        mesh => config.plan_for(mesh),
    }
}

fn signal_code(sig: libc::c_int) -> u8 {
    // Signal numbers are below 128.
    128u8.saturating_add(sig as u8)
}
