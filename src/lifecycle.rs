//! One run of meshinit as an init: take over signals, start the task, supervise it, and
//! leave with its exit code.

use crate::cli::Config;
use crate::signals::Signals;
use crate::{child, supervisor, EXIT_SOFTWARE};

pub fn run(config: &Config) -> u8 {
    let signals = match Signals::take_over() {
        Ok(signals) => signals,
        Err(err) => {
            log::error!("cannot block signals: {err}");
            return EXIT_SOFTWARE;
        }
    };
    match supervisor::become_subreaper() {
        Ok(true) => log::debug!("not PID 1: reaping orphans as a child subreaper"),
        Ok(false) => {}
        Err(err) => {
            log::warn!("cannot become a child subreaper, orphans will not be reaped: {err}")
        }
    }
    let task = match child::spawn(&config.command) {
        Ok(task) => task,
        Err(err) => {
            log::error!("{err}");
            return err.exit_code();
        }
    };
    log::info!("task started: pid {}", task.pid);
    let code = match supervisor::supervise(&signals, task, config.forwarding) {
        Ok(code) => code,
        Err(err) => {
            log::error!("waiting for signals: {err}");
            return EXIT_SOFTWARE;
        }
    };
    log::info!("task exited with code {code}");
    if let Err(err) = supervisor::drain_group(&signals, task, config.grace) {
        log::error!("waiting for the task's process group: {err}");
    }
    code
}
