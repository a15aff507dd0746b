//! Log lines on stderr: `meshinit +12ms info: ...`, the time being since meshinit started,
//! so that each phase of a run can be read off the log.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Marks the start of the run; call first thing in main.
pub fn mark_start() {
    START.get_or_init(Instant::now);
}

/// Milliseconds since `mark_start`.
pub fn elapsed_ms() -> u64 {
    START
        .get()
        .map_or(0, |start| crate::duration::millis(start.elapsed()))
}

/// Installs the logger. A failure to write a log line is dropped, never fatal: PID 1 must
/// outlive a closed stderr.
pub fn init(level: log::LevelFilter) {
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .format(|buf, record| {
            writeln!(
                buf,
                "meshinit +{}ms {}: {}",
                elapsed_ms(),
                record.level().as_str().to_ascii_lowercase(),
                record.args()
            )
        })
        .try_init();
}

/// Prints one line that must be seen whatever the log level (usage errors).
pub fn say(message: &dyn std::fmt::Display) {
    let _ = writeln!(std::io::stderr(), "meshinit: {message}");
}
