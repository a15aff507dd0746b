//! The init's duty: own the signals, start the task, forward and reap until it is gone.
//!
//! meshinit runs on one thread, always: no async runtime, ureq set up so that it starts
//! none (per-phase timeouts, meshinit's own resolver), host names looked up in a forked
//! process. Three things rest on it, each with a SAFETY note that says "one thread":
//! reading `environ` without a lock (config/environment.rs), a forked child that allocates
//! and calls the resolver (sidecar/lookup.rs), and the vfork-style clone that shares
//! meshinit's memory (init/child.rs). `one_thread` checks it before each fork and clone in
//! debug builds; tests/init.rs (`meshinit_runs_on_one_thread`) checks the shipped binary
//! while it waits, looks a name up, and supervises the task.

pub mod child;
pub mod command;
pub mod signals;
pub mod supervisor;

/// Whether this process has one thread (`Threads:` in /proc/self/status); true where that
/// cannot be read. For debug assertions only (compiled out of release builds with them):
/// it costs a file read.
pub fn one_thread() -> bool {
    std::fs::read_to_string("/proc/self/status").map_or(true, |status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .is_none_or(|n| n.trim() == "1")
    })
}
