//! The value parsers every configuration source shares (flags, `MESHINIT_*`, scuttle's
//! variables), the forms they accept, and the usage error that names a bad value.

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use super::duration;
use super::settings::LogLevel;
use crate::init::signals;
use crate::sidecar::url;

/// A bad command line or variable: one line naming what was wrong and what is accepted.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

/// `text` with its control characters escaped (`\n`, `\u{1b}`), so that it stays one line.
/// By hand, not char::escape_debug: that brings Unicode's printable tables (3.5 KB).
pub fn escape_controls(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if c.is_control() => line.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => line.push(c),
        }
    }
    line
}

impl UsageError {
    /// A message, with control characters (a newline in a value, say) escaped so that it
    /// stays one line.
    pub fn new(message: impl Into<String>) -> UsageError {
        UsageError(escape_controls(&message.into()))
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub const BOOL_FORM: &str = "true, false, 1, 0, yes or no";
pub const TERMINATION_LOG_FORM: &str = "an absolute path, or nothing to turn it off";
pub const CODES_FORM: &str = "exit codes 0 to 255, comma-separated in the variable";
pub const POSITIVE_FORM: &str =
    "a duration above 0 such as 500ms, 2s or 1m30s, at most 2562047h47m16.854775807s";
pub const EXE_FORM: &str = "absolute paths such as /usr/local/bin/envoy";
pub const NAME_FORM: &str = "a container's name: letters, digits, '-', '_' or '.', not \
     starting with '.', at most 63 characters";
pub const NAMES_FORM: &str = "container names, comma-separated: letters, digits, '-', '_' or \
     '.', not starting with '.', at most 63 characters each";
pub const DIR_FORM: &str = "an absolute path to a directory";
pub const REWRITE_FORM: &str = "FROM:TO, signal names or numbers: QUIT:TERM, 15:0; each FROM \
     once, and never KILL, STOP, TTIN or TTOU (meshinit cannot receive them)";

/// How much of a value a message repeats: enough to recognise it, never a whole file
/// pasted into a variable.
const SHOWN_CHARS: usize = 80;

/// `'value'` for a message, cut to `SHOWN_CHARS`.
pub fn quoted(value: &str) -> String {
    let shown: String = value.chars().take(SHOWN_CHARS).collect();
    if shown.len() < value.len() {
        format!("'{shown}...' ({} bytes)", value.len())
    } else {
        format!("'{shown}'")
    }
}

/// `source: invalid value 'value': expected form`.
pub fn invalid(source: &str, value: &str, form: &str) -> UsageError {
    UsageError::new(format!(
        "{source}: invalid value {}: expected {form}",
        quoted(value)
    ))
}

/// As `invalid`, for a variable that is not meshinit's: its value may be anything (a
/// token, say) and is not repeated.
pub fn invalid_hidden(source: &str, form: &str) -> UsageError {
    UsageError::new(format!(
        "{source}: invalid value (not shown): expected {form}"
    ))
}

pub fn utf8(source: &str, raw: OsString) -> Result<String, UsageError> {
    raw.into_string()
        .map_err(|raw| invalid(source, &raw.to_string_lossy(), "valid UTF-8"))
}

/// Splits a comma-separated list, dropping blanks around and between items.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A comma-separated list of plain-http URLs; `Err` holds the offending item (or the whole
/// value when the list is empty).
pub fn url_list(value: &str) -> Result<Vec<String>, String> {
    let urls = split_list(value);
    match urls.iter().find(|u| !url::valid(u)) {
        Some(bad) => Err(bad.clone()),
        None if urls.is_empty() => Err(value.to_owned()),
        None => Ok(urls),
    }
}

/// A comma-separated list of absolute paths.
pub fn path_list(value: &str) -> Option<Vec<String>> {
    let paths = split_list(value);
    (!paths.is_empty() && paths.iter().all(|p| p.starts_with('/'))).then_some(paths)
}

/// A container's name as the pod directory's file names hold it: never a path (`/`, `..`)
/// nor a hidden name, which meshinit's own files there use.
pub fn container_name(value: &str) -> Option<String> {
    let fits = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    (!value.is_empty() && value.len() <= 63 && !value.starts_with('.') && value.chars().all(fits))
        .then(|| value.to_owned())
}

/// Container names, comma-separated; `Err` names the first that is not one.
pub fn container_names(value: &str) -> Result<Vec<String>, String> {
    let names = split_list(value);
    if names.is_empty() {
        return Err(value.to_owned());
    }
    match names.iter().find(|n| container_name(n).is_none()) {
        Some(bad) => Err(bad.clone()),
        None => Ok(names),
    }
}

pub fn boolean(value: &str) -> Option<bool> {
    const TRUE: [&str; 3] = ["true", "1", "yes"];
    const FALSE: [&str; 3] = ["false", "0", "no"];
    let is = |words: [&str; 3]| words.iter().any(|w| w.eq_ignore_ascii_case(value));
    if is(TRUE) {
        Some(true)
    } else if is(FALSE) {
        Some(false)
    } else {
        None
    }
}

/// env_logger's filter as meshinit accepts it: comma-separated directives, each a level
/// (`debug`) or a module and a level (`ureq=debug`), levels in any case, and optionally
/// `/TEXT` at the end (only lines containing TEXT). Anything else is refused here, where
/// env_logger would print a warning and go on. A module alone, which env_logger reads as
/// "that module at every level", is refused too: `--log DEBUGG` would silence every line.
pub fn log_filter(value: &str) -> Option<String> {
    let directives = value.split_once('/').map_or(value, |(d, _)| d);
    let module = |name: &str| {
        !name.is_empty()
            && name.split("::").all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
    };
    let level = |word: &str| LogLevel::parse(word).is_some();
    let valid = directives
        .split(',')
        .map(str::trim)
        .all(|d| match d.split_once('=') {
            Some((name, word)) => module(name.trim()) && level(word.trim()),
            None => level(d),
        });
    valid.then(|| value.to_owned())
}

/// A comma-separated list of exit codes (0 to 255).
pub fn exit_codes(value: &str) -> Option<Vec<u8>> {
    let codes: Option<Vec<u8>> = split_list(value).iter().map(|c| c.parse().ok()).collect();
    codes.filter(|c| !c.is_empty())
}

/// `FROM:TO,...`: FROM a signal (a name, with or without SIG, or 1 to 64), TO one too or
/// 0. FROM is one that meshinit receives: KILL and STOP cannot be caught, TTIN and TTOU
/// are ignored (a terminal handed to the task must not stop meshinit).
pub fn signal_rewrites(value: &str) -> Option<Vec<(libc::c_int, libc::c_int)>> {
    let received = |sig| {
        !matches!(
            sig,
            libc::SIGKILL | libc::SIGSTOP | libc::SIGTTIN | libc::SIGTTOU
        )
    };
    let pairs: Option<Vec<_>> = split_list(value)
        .iter()
        .map(|pair| {
            let (from, to) = pair.split_once(':')?;
            let from = signals::number(from).filter(|&s| s > 0 && received(s))?;
            Some((from, signals::number(to)?))
        })
        .collect();
    pairs.filter(|p| !p.is_empty() && !rewrites_one_twice(p))
}

/// Whether two rewrites name the same FROM (which one would win is not for meshinit to
/// guess).
pub fn rewrites_one_twice(pairs: &[(libc::c_int, libc::c_int)]) -> bool {
    pairs
        .iter()
        .enumerate()
        .any(|(i, (from, _))| pairs[..i].iter().any(|(f, _)| f == from))
}

pub fn positive_duration(value: &str) -> Option<Duration> {
    duration::parse(value).filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        for (text, value) in [("true", true), ("YES", true), ("1", true), ("No", false)] {
            assert_eq!(boolean(text), Some(value), "{text}");
        }
        for bad in ["", "on", "2", "truee"] {
            assert_eq!(boolean(bad), None, "{bad}");
        }
    }

    #[test]
    fn lists() {
        assert_eq!(split_list(" a, ,b ,"), ["a", "b"]);
        assert_eq!(
            url_list("http://127.0.0.1:1/a, http://[::1]:2/b"),
            Ok(vec![
                "http://127.0.0.1:1/a".to_owned(),
                "http://[::1]:2/b".to_owned()
            ])
        );
        assert_eq!(
            url_list("http://127.0.0.1:1/a,https://x/"),
            Err("https://x/".to_owned())
        );
        assert_eq!(url_list(" , "), Err(" , ".to_owned()));
        assert_eq!(
            path_list("/a,/b/c"),
            Some(vec!["/a".to_owned(), "/b/c".to_owned()])
        );
        assert_eq!(path_list("/a,envoy"), None);
        assert_eq!(path_list(""), None);
    }

    #[test]
    fn log_filters() {
        for good in [
            "info",
            "DEBUG",
            "off",
            "info,ureq=debug",
            "ureq=trace",
            "meshinit::sidecar=debug",
            "warn/quit",
        ] {
            assert_eq!(log_filter(good).as_deref(), Some(good), "{good}");
        }
        for bad in [
            "",
            "loud",
            "ureq",
            "info,",
            "=debug",
            "ureq=loud",
            "a b",
            "ureq==debug",
        ] {
            assert_eq!(log_filter(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(positive_duration("0"), None);
        assert_eq!(positive_duration("5s"), Some(Duration::from_secs(5)));
    }

    #[test]
    fn errors_are_one_line() {
        let err = invalid("--timeout", "1\n2", POSITIVE_FORM);
        assert_eq!(
            err.0,
            format!("--timeout: invalid value '1\\n2': expected {POSITIVE_FORM}")
        );
        assert!(!invalid_hidden("X", "y").0.contains('\n'));
        let long = "x".repeat(60_000);
        let err = invalid("MESHINIT_MESH", &long, "istio or envoy").0;
        assert!(err.len() < 300, "{} bytes", err.len());
        assert!(
            err.contains(&format!("{}...' (60000 bytes)", "x".repeat(80))),
            "{err}"
        );
    }
}
