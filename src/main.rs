//! meshinit: PID 1 for jobs in a service mesh. Parse the configuration, resolve it into a
//! plan, run it, and exit with the code the run chose.
//!
//! The duties: `config` (flags and variables into a plan), `init` (signals, the task,
//! reaping), `sidecar` (waiting for it and making it quit); `run` ties them together.

#[macro_use]
extern crate log;

#[macro_use]
mod words;
#[macro_use]
mod logging;
mod config;
mod ending;
mod init;
mod install;
mod pod_dir;
mod run;
mod sidecar;

#[cfg(test)]
mod fuzzing;

use std::io::Write;

use config::{Invocation, Special};
use ending::exit;

fn main() {
    logging::mark_start();
    let env = config::process_environment();
    let code = match config::parse(std::env::args_os().skip(1), &env) {
        Ok(Invocation::Special(Special::Help)) => print(&config::help()),
        Ok(Invocation::Special(Special::Version)) => {
            print(&format!("meshinit {}\n", env!("CARGO_PKG_VERSION")))
        }
        Ok(Invocation::Run(settings)) => {
            let plan = config::resolve(&settings);
            logging::init(&plan.report.log, plan.report.log_format);
            run::run(&plan, None)
        }
        Err(failure) => {
            let plan = config::resolve(&failure.settings);
            logging::init(&plan.report.log, plan.report.log_format);
            logging::always(logging::Level::Error, "usage", &failure.error);
            run::run(&plan, Some(&failure.error))
        }
    };
    std::process::exit(i32::from(code));
}

fn print(text: &str) -> u8 {
    match std::io::stdout().write_all(text.as_bytes()) {
        Ok(()) => 0,
        Err(_) => exit::SOFTWARE,
    }
}
