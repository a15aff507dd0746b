//! meshinit: PID 1 for jobs in a service mesh. The binary is `main.rs`; the modules are a
//! library so that the fuzz harness (tests/fuzz.rs) can drive them directly.

pub mod child;
pub mod cli;
pub mod client;
pub mod compat;
pub mod duration;
pub mod lifecycle;
pub mod logging;
pub mod procscan;
pub mod readiness;
pub mod shutdown;
pub mod sidecar;
pub mod signals;
pub mod supervisor;

use std::io::Write;

/// sysexits: the command line or a variable is wrong.
pub const EXIT_USAGE: u8 = 64;
/// sysexits: the sidecar did not become ready in time (or, for `quit`, did not quit).
pub const EXIT_UNAVAILABLE: u8 = 69;
/// sysexits: meshinit itself failed.
pub const EXIT_SOFTWARE: u8 = 70;

/// The whole program: parse, run, and the exit code.
pub fn run() -> u8 {
    match cli::parse(std::env::args_os().skip(1), |name| std::env::var_os(name)) {
        Ok(cli::Invocation::Help) => print(&cli::help()),
        Ok(cli::Invocation::Version) => print(&format!("meshinit {}\n", env!("CARGO_PKG_VERSION"))),
        Ok(cli::Invocation::Run(config)) => {
            logging::init(config.log);
            lifecycle::run(&config)
        }
        Err(failure) => {
            logging::say(&failure.error);
            // A pod must not hang on a typo: the sidecar is still told to quit.
            let config = failure.config;
            if matches!(config.action, cli::Action::Run(_)) {
                logging::init(config.log);
                let plan = lifecycle::quit_plan(&config);
                lifecycle::finish(&config, &plan, EXIT_USAGE)
            } else {
                EXIT_USAGE
            }
        }
    }
}

fn print(text: &str) -> u8 {
    match std::io::stdout().write_all(text.as_bytes()) {
        Ok(()) => 0,
        Err(_) => EXIT_SOFTWARE,
    }
}
