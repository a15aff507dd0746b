//! meshinit: PID 1 for jobs in a service mesh.

mod child;
mod cli;
mod duration;
mod lifecycle;
mod logging;
mod signals;
mod supervisor;

use std::io::Write;

/// sysexits: the command line or a variable is wrong.
pub const EXIT_USAGE: u8 = 64;
/// sysexits: meshinit itself failed.
pub const EXIT_SOFTWARE: u8 = 70;

fn main() {
    logging::mark_start();
    std::process::exit(i32::from(run()));
}

fn run() -> u8 {
    match cli::parse(std::env::args_os().skip(1), |name| std::env::var_os(name)) {
        Err(err) => {
            logging::say(&err);
            EXIT_USAGE
        }
        Ok(cli::Invocation::Help) => print(&cli::help()),
        Ok(cli::Invocation::Version) => print(&format!("meshinit {}\n", env!("CARGO_PKG_VERSION"))),
        Ok(cli::Invocation::Run(config)) => {
            logging::init(config.log);
            lifecycle::run(&config)
        }
    }
}

fn print(text: &str) -> u8 {
    match std::io::stdout().write_all(text.as_bytes()) {
        Ok(()) => 0,
        Err(_) => EXIT_SOFTWARE,
    }
}
