//! meshinit: PID 1 for jobs in a service mesh (see lib.rs for the modules).

fn main() {
    meshinit::logging::mark_start();
    std::process::exit(i32::from(meshinit::run()));
}
