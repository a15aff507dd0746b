//! meshinit's log lines. Every line is a `log` record — `info!(phase = "wait", url = u;
//! "waiting for {u}")`, the fields being `log`'s key-values — and `env_logger` is the
//! backend: its filter (`--log`/`MESHINIT_LOG`: a level, or env_logger's syntax such as
//! `info,ureq=debug`) picks the lines, and its format hook writes one of two formats:
//! - text: `meshinit +12ms info: ...`, the time being since meshinit started, so that each
//!   phase of a run can be read off the log;
//! - json: one object per line with the wall-clock time, the level, the message and the
//!   line's fields (`phase`, `url`, `code`, ...), for log pipelines.
//!
//! ureq's own records reach the same sink (at debug, with their target).
//!
//! A line is written only when stderr can take it at once: a full pipe, a reader that went
//! away or a closed descriptor drops the line instead of blocking or killing PID 1; a line
//! longer than one write can take whole (4 KiB) is cut, with a marker.

mod json;

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::Instant;

pub use log::Level;

words! {
    /// How a line looks.
    pub enum Format {
        Text = "text",
        Json = "json",
    }
}

/// A field's value as a line shows it.
#[derive(Clone, Debug)]
enum Field<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Null,
}

static START: OnceLock<Instant> = OnceLock::new();
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

/// Installs env_logger with `filter` (already checked by the configuration) and `format`.
/// With `off` nothing is installed: `log`'s macros then cost a comparison.
pub fn init(filter: &str, format: Format) {
    FORMAT.get_or_init(|| format);
    if filter.eq_ignore_ascii_case("off") {
        return;
    }
    let mut builder = env_logger::Builder::new();
    builder
        .parse_filters(filter)
        .format(move |out, record| out.write_all(record_line(format, record).as_bytes()))
        .target(env_logger::Target::Pipe(Box::new(Stderr)));
    // Only fails when a logger is already installed, which main does not do twice.
    let _ = builder.try_init();
}

/// Writes one line whatever the filter (a usage error must be seen with `--log off` too),
/// in the chosen format, or text before one is chosen.
pub fn always(level: Level, phase: &str, message: &dyn std::fmt::Display) {
    let format = FORMAT.get().copied().unwrap_or(Format::Text);
    let fields = [("phase".to_owned(), Field::Str(phase.into()))];
    let _ = Stderr.write_all(fitted(format, level, None, &message.to_string(), &fields).as_bytes());
}

/// A record as a line: its message, its key-values, and its target when it is not
/// meshinit's own (ureq's, say).
fn record_line(format: Format, record: &log::Record) -> String {
    let mut fields = Fields(Vec::new());
    let _ = record.key_values().visit(&mut fields);
    let target = record.target();
    let foreign = (!target.starts_with("meshinit")).then_some(target);
    let message = record.args().to_string();
    fitted(format, record.level(), foreign, &message, &fields.0)
}

/// Collects a record's key-values.
struct Fields<'a>(Vec<(String, Field<'a>)>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields<'kvs> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let mut field = FieldOf(Field::Null);
        value.visit(&mut field)?;
        self.0.push((key.as_str().to_owned(), field.0));
        Ok(())
    }
}

/// One value as a field: numbers stay numbers, `None` is null, strings are text. Those
/// are all meshinit's fields hold; anything else is null (formatting any value would bring
/// in, among others, float formatting, for nothing).
struct FieldOf<'v>(Field<'v>);

impl<'v> log::kv::VisitValue<'v> for FieldOf<'v> {
    fn visit_any(&mut self, _: log::kv::Value) -> Result<(), log::kv::Error> {
        self.0 = Field::Null;
        Ok(())
    }
    fn visit_u64(&mut self, value: u64) -> Result<(), log::kv::Error> {
        self.0 = Field::Int(i64::try_from(value).unwrap_or(i64::MAX));
        Ok(())
    }
    fn visit_i64(&mut self, value: i64) -> Result<(), log::kv::Error> {
        self.0 = Field::Int(value);
        Ok(())
    }
    fn visit_str(&mut self, value: &str) -> Result<(), log::kv::Error> {
        self.0 = Field::Str(value.to_owned().into());
        Ok(())
    }
    fn visit_borrowed_str(&mut self, value: &'v str) -> Result<(), log::kv::Error> {
        self.0 = Field::Str(value.into());
        Ok(())
    }
}

/// The longest line written: what one write to a pipe with a single free slot takes whole
/// (PIPE_BUF). A longer write could block until a reader makes room.
pub const MAX_LINE: usize = 4096;

/// The line, with its message and string fields cut (each marked) when it would be longer
/// than `MAX_LINE`.
// Keys as owned strings, as records give them: one copy of this code, not one per key type.
fn fitted(
    format: Format,
    level: Level,
    target: Option<&str>,
    message: &str,
    fields: &[(String, Field)],
) -> String {
    let whole = line(format, level, target, message, fields, usize::MAX);
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
        let cut = line(format, level, target, message, fields, cap);
        if cut.len() <= MAX_LINE || cap <= 64 {
            return cut;
        }
        cap /= 2;
    }
}

/// `text` whole when it has at most `cap` bytes; else its start, at a character boundary,
/// and a marker saying how long it was.
fn cut(text: &str, cap: usize) -> Cow<'_, str> {
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
    target: Option<&str>,
    message: &str,
    fields: &[(String, Field)],
    cap: usize,
) -> String {
    let level = level.as_str().to_ascii_lowercase();
    let message = cut(message, cap);
    match format {
        Format::Text => {
            let target = target.map(|t| format!("{t}: ")).unwrap_or_default();
            format!("meshinit +{}ms {level}: {target}{message}\n", elapsed_ms())
        }
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
            if let Some(target) = target {
                out.push_str(",\"target\":");
                json::string(&mut out, target);
            }
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
