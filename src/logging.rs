//! Log lines on stderr: `meshinit +12ms info: ...`, the time being since meshinit started,
//! so that each phase of a run can be read off the log. A line is written only when stderr
//! can take it at once: a full pipe, a reader that went away or a closed descriptor drops
//! the line instead of blocking or killing PID 1.

use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Marks the start of the run; call first thing in main.
pub fn mark_start() {
    START.get_or_init(Instant::now);
}

/// Milliseconds since `mark_start`.
pub fn elapsed_ms() -> u64 {
    START.get().map_or(0, |start| millis(start.elapsed()))
}

/// Milliseconds, for log lines and messages; saturates rather than wraps.
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Installs the logger.
pub fn init(level: log::LevelFilter) {
    let _ = env_logger::Builder::new()
        .filter_level(level)
        .target(env_logger::Target::Pipe(Box::new(Stderr)))
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
    let _ = Stderr.write_all(format!("meshinit: {message}\n").as_bytes());
}

/// Standard error that never blocks: it writes only what poll says fits now (a pipe with
/// room takes up to PIPE_BUF bytes whole) and drops the rest.
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut fd = libc::pollfd {
            fd: libc::STDERR_FILENO,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no waiting.
        let ready = unsafe { libc::poll(&mut fd, 1, 0) };
        let writable = fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) == 0;
        if ready == 1 && writable && fd.revents & libc::POLLOUT != 0 {
            // SAFETY: `buf` is valid for its length.
            let n = unsafe { libc::write(libc::STDERR_FILENO, buf.as_ptr().cast(), buf.len()) };
            if n > 0 {
                return Ok(n as usize);
            }
        }
        // Dropped: claiming it written keeps write_all from retrying.
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn millis_saturates() {
        assert_eq!(super::millis(Duration::from_millis(1234)), 1234);
        assert_eq!(super::millis(Duration::MAX), u64::MAX);
    }
}
