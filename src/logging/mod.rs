//! meshinit's own log lines on stderr, in one of two formats:
//! - text: `meshinit +12ms info: ...`, the time being since meshinit started, so that each
//!   phase of a run can be read off the log;
//! - json: one object per line with the wall-clock time, the level, the message and the
//!   line's structured fields (`phase`, `url`, `code`, ...), for log pipelines.
//!
//! A line is written only when stderr can take it at once: a full pipe, a reader that went
//! away or a closed descriptor drops the line instead of blocking or killing PID 1; a line
//! longer than one write can take whole (4 KiB) is cut, with a marker.

mod json;

use std::io::{self, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

pub use log::{Level, LevelFilter};

words! {
    /// How a line looks.
    pub enum Format {
        Text = "text",
        Json = "json",
    }
}

/// A structured field's value.
#[derive(Clone, Copy, Debug)]
pub enum Field<'a> {
    Str(&'a str),
    Int(i64),
    Null,
}

impl<'a> From<&'a str> for Field<'a> {
    fn from(value: &'a str) -> Self {
        Field::Str(value)
    }
}

impl From<u64> for Field<'_> {
    fn from(value: u64) -> Self {
        Field::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<i32> for Field<'_> {
    fn from(value: i32) -> Self {
        Field::Int(i64::from(value))
    }
}

impl From<u8> for Field<'_> {
    fn from(value: u8) -> Self {
        Field::Int(i64::from(value))
    }
}

impl<'a, T: Into<Field<'a>>> From<Option<T>> for Field<'a> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Field::Null, Into::into)
    }
}

impl From<u16> for Field<'_> {
    fn from(value: u16) -> Self {
        Field::Int(i64::from(value))
    }
}

/// A log line at `$level` with optional fields: `event!(Level::Info, phase = "wait", url =
/// u; "waiting for {u}")`. The fields appear in JSON lines; text lines show the message.
macro_rules! event {
    ($level:expr, $($key:ident = $value:expr),+ ; $($arg:tt)+) => {
        if $crate::logging::enabled($level) {
            $crate::logging::emit(
                $level,
                format_args!($($arg)+),
                &[$((stringify!($key), $crate::logging::Field::from($value))),+],
            )
        }
    };
    ($level:expr, $($arg:tt)+) => {
        if $crate::logging::enabled($level) {
            $crate::logging::emit($level, format_args!($($arg)+), &[])
        }
    };
}
macro_rules! error { ($($arg:tt)+) => { event!($crate::logging::Level::Error, $($arg)+) }; }
macro_rules! warn { ($($arg:tt)+) => { event!($crate::logging::Level::Warn, $($arg)+) }; }
macro_rules! info { ($($arg:tt)+) => { event!($crate::logging::Level::Info, $($arg)+) }; }
macro_rules! debug { ($($arg:tt)+) => { event!($crate::logging::Level::Debug, $($arg)+) }; }

static START: OnceLock<Instant> = OnceLock::new();
/// The most verbose level written, as `LevelFilter as u8`; off until `init`.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
static FORMAT: OnceLock<Format> = OnceLock::new();

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

/// Sets the level and the format; the first call decides the format.
pub fn init(level: LevelFilter, format: Format) {
    FORMAT.get_or_init(|| format);
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Writes one line whatever the level (a usage error must be seen with `--log off` too),
/// in the chosen format, or text before one is chosen.
pub fn always(level: Level, phase: &str, message: &dyn std::fmt::Display) {
    emit(
        level,
        format_args!("{message}"),
        &[("phase", Field::Str(phase))],
    );
}

/// Writes one line, already filtered by level.
pub fn emit(level: Level, message: std::fmt::Arguments, fields: &[(&str, Field)]) {
    let format = FORMAT.get().copied().unwrap_or(Format::Text);
    let message = message.to_string();
    let _ = Stderr.write_all(fitted(format, level, &message, fields).as_bytes());
}

/// The longest line written: what one write to a pipe with a single free slot takes whole
/// (PIPE_BUF). A longer write could block until a reader makes room.
pub const MAX_LINE: usize = 4096;

/// The line, with its message and string fields cut (each marked) when it would be longer
/// than `MAX_LINE`.
fn fitted(format: Format, level: Level, message: &str, fields: &[(&str, Field)]) -> String {
    let whole = line(format, level, message, fields, usize::MAX);
    if whole.len() <= MAX_LINE {
        return whole;
    }
    let strings = 1 + fields
        .iter()
        .filter(|(_, v)| matches!(v, Field::Str(_)))
        .count();
    // Room for the fixed parts; JSON escaping may still grow a value, hence the retries.
    let mut cap = (MAX_LINE - 256) / strings;
    loop {
        let cut = line(format, level, message, fields, cap);
        if cut.len() <= MAX_LINE || cap <= 64 {
            return cut;
        }
        cap /= 2;
    }
}

/// `text` whole when it has at most `cap` bytes; else its start, at a character boundary,
/// and a marker saying how long it was.
fn cut(text: &str, cap: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= cap {
        return text.into();
    }
    let marker = format!(" [cut: {} bytes]", text.len());
    let mut end = cap.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &text[..end]).into()
}

/// One whole line, newline included, each string value cut to `cap` bytes.
fn line(
    format: Format,
    level: Level,
    message: &str,
    fields: &[(&str, Field)],
    cap: usize,
) -> String {
    let level = level.as_str().to_ascii_lowercase();
    let message = cut(message, cap);
    match format {
        Format::Text => format!("meshinit +{}ms {level}: {message}\n", elapsed_ms()),
        Format::Json => {
            let mut out = String::with_capacity(160);
            out.push_str("{\"time\":\"");
            out.push_str(&json::now());
            out.push_str("\",\"level\":\"");
            out.push_str(&level);
            out.push_str("\",\"since_start_ms\":");
            out.push_str(&elapsed_ms().to_string());
            out.push_str(",\"msg\":");
            json::string(&mut out, &message);
            for (key, value) in fields {
                out.push(',');
                json::string(&mut out, key);
                out.push(':');
                match value {
                    Field::Str(text) => json::string(&mut out, &cut(text, cap)),
                    Field::Int(n) => out.push_str(&n.to_string()),
                    Field::Null => out.push_str("null"),
                }
            }
            out.push_str("}\n");
            out
        }
    }
}

/// Standard error that never blocks: it writes only when poll says a write fits now (a
/// pipe with a free slot takes up to PIPE_BUF bytes whole, so lines are at most
/// `MAX_LINE`) and drops the rest.
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
#[path = "tests.rs"]
mod tests;
