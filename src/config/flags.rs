//! The command line: the subcommand, the options (the top layer over the variables), and
//! the task's command.

use std::ffi::OsString;

use super::options::{self, Key, SPECS, USAGE};
use super::settings::{Action, Settings};
use super::values::{self, UsageError};

/// What the command line asked for besides a run.
#[derive(Debug, PartialEq, Eq)]
pub enum Special {
    Help,
    Version,
}

/// Reads `args` into `settings`; `Some` for --help and --version. A bad value goes to
/// `note` so that the rest is still read; a malformed command line stops here.
pub fn read(
    settings: &mut Settings,
    args: impl IntoIterator<Item = OsString>,
    note: &mut impl FnMut(UsageError),
) -> Result<Option<Special>, UsageError> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if let Some((at, action)) = subcommand(&args) {
        args.remove(at);
        settings.action = action;
    }
    let mut parser = lexopt::Parser::from_args(args);
    let mut lists_from_flags: Vec<Key> = Vec::new();
    while let Some(arg) = parser.next().map_err(lexopt_error)? {
        let spec = match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => return Ok(Some(Special::Help)),
            lexopt::Arg::Long("version") | lexopt::Arg::Short('V') => {
                return Ok(Some(Special::Version))
            }
            lexopt::Arg::Value(word) if settings.action != Action::Run(Vec::new()) => {
                return Err(UsageError::new(format!(
                    "unexpected {}: wait and quit take no COMMAND; usage: {USAGE}",
                    values::quoted(&word.to_string_lossy())
                )))
            }
            lexopt::Arg::Value(first) => {
                let mut command = vec![first];
                command.extend(parser.raw_args().map_err(lexopt_error)?);
                settings.action = Action::Run(command);
                break;
            }
            lexopt::Arg::Long(name) => SPECS
                .iter()
                .find(|s| s.long == name)
                .ok_or_else(|| unknown_option(&format!("--{name}")))?,
            lexopt::Arg::Short(c) => SPECS
                .iter()
                .find(|s| s.short == Some(c))
                .ok_or_else(|| unknown_option(&format!("-{c}")))?,
        };
        let flag = format!("--{}", spec.long);
        let raw = match (spec.value, parser.optional_value()) {
            (Some(_), Some(attached)) => attached,
            (Some(_), None) => parser.value().map_err(lexopt_error)?,
            (None, Some(attached)) => attached,
            (None, None) => {
                refuse_detached_boolean(&mut parser, spec.long)?;
                OsString::from("true")
            }
        };
        // A list given by flags replaces the variable's list instead of adding to it.
        if spec.key.is_list() && !lists_from_flags.contains(&spec.key) {
            lists_from_flags.push(spec.key);
            options::clear(settings, spec.key);
        }
        if let Err(err) = values::utf8(&flag, raw)
            .and_then(|value| options::apply(settings, spec.key, &flag, &value))
        {
            note(err);
        }
    }
    Ok(None)
}

/// Where `wait` or `quit` stands among the options before the COMMAND, if it does:
/// `meshinit --timeout 5s wait` is the subcommand, `meshinit -- wait` runs a program.
fn subcommand(args: &[OsString]) -> Option<(usize, Action)> {
    let mut at = 0;
    while let Some(word) = args.get(at).and_then(|a| a.to_str()) {
        match word {
            "--" => return None,
            "wait" => return Some((at, Action::Wait)),
            "quit" => return Some((at, Action::Quit)),
            _ => {}
        }
        let Some(flag) = word.strip_prefix('-').filter(|f| !f.is_empty()) else {
            // The COMMAND begins here.
            return None;
        };
        let takes_value = flag
            .strip_prefix('-')
            .and_then(|long| SPECS.iter().find(|s| s.long == long))
            .is_some_and(|spec| spec.value.is_some());
        at += if takes_value { 2 } else { 1 };
    }
    None
}

/// Whether a command line that could not be read meant `wait` or `quit`: a usage mistake
/// there must not quit the sidecar that a later step needs.
pub fn meant_subcommand(args: &[OsString]) -> Option<Action> {
    args.iter()
        .take_while(|a| *a != "--")
        .find_map(|a| match a.to_str() {
            Some("wait") => Some(Action::Wait),
            Some("quit") => Some(Action::Quit),
            _ => None,
        })
}

/// A switch (`--process-group`, `-g`, ...) followed by a word such as `true` is refused:
/// taken as the COMMAND, `meshinit -g true -- /app/report` would run `true` and report
/// success without doing the work.
fn refuse_detached_boolean(parser: &mut lexopt::Parser, long: &str) -> Result<(), UsageError> {
    let next = parser.raw_args().ok().and_then(|raw| {
        raw.peek()
            .and_then(|w| w.to_str())
            .filter(|w| values::boolean(w).is_some())
            .map(str::to_owned)
    });
    match next {
        Some(word) => Err(UsageError::new(format!(
            "--{long} takes no separate value: write --{long}={word}, or put -- before a \
             COMMAND named {}; usage: {USAGE}",
            values::quoted(&word)
        ))),
        None => Ok(()),
    }
}

fn unknown_option(option: &str) -> UsageError {
    UsageError::new(format!(
        "unknown option {}: usage: {USAGE} (see meshinit --help)",
        values::quoted(option)
    ))
}

fn lexopt_error(err: lexopt::Error) -> UsageError {
    UsageError::new(format!("{err}: usage: {USAGE} (see meshinit --help)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_args(
        args: &[&str],
    ) -> (
        Settings,
        Result<Option<Special>, UsageError>,
        Vec<UsageError>,
    ) {
        let mut settings = Settings::default();
        let mut noted = Vec::new();
        let result = read(&mut settings, args.iter().map(OsString::from), &mut |e| {
            noted.push(e)
        });
        (settings, result, noted)
    }

    #[test]
    fn command_after_options() {
        let (s, r, noted) = read_args(&["--timeout", "5s", "-g", "--", "sh", "-c", "x"]);
        assert_eq!(r, Ok(None));
        assert!(noted.is_empty());
        assert_eq!(s.process_group, Some(true));
        assert_eq!(
            s.action,
            Action::Run(["sh", "-c", "x"].map(OsString::from).to_vec())
        );
    }

    #[test]
    fn subcommands_before_or_after_options() {
        assert_eq!(read_args(&["wait", "--timeout=2s"]).0.action, Action::Wait);
        assert_eq!(read_args(&["quit"]).0.action, Action::Quit);
        let (s, r, _) = read_args(&["--timeout", "5s", "-g", "wait", "--log", "debug"]);
        assert_eq!((s.action, r), (Action::Wait, Ok(None)));
        assert_eq!(s.timeout, Some(std::time::Duration::from_secs(5)));
        let (s, _, _) = read_args(&["--", "wait"]);
        assert_eq!(s.action, Action::Run(vec![OsString::from("wait")]));
        let (s, _, _) = read_args(&["sh", "wait"]);
        assert_eq!(
            s.action,
            Action::Run(["sh", "wait"].map(OsString::from).to_vec())
        );
        let (_, r, _) = read_args(&["quit", "extra"]);
        assert!(r.unwrap_err().0.contains("take no COMMAND"));
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            meant_subcommand(&args(&["--timeot", "5s", "wait"])),
            Some(Action::Wait)
        );
        assert_eq!(meant_subcommand(&args(&["--bogus", "--", "wait"])), None);
    }

    #[test]
    fn a_switch_never_takes_a_detached_boolean() {
        for args in [
            &["--process-group", "true", "--", "/app/report"][..],
            &["-g", "true", "/app/report"],
            &["--kill-fallback", "false", "--", "cmd"],
            &["--process-group", "yes", "--", "cmd"],
            &["-g", "NO", "cmd"],
        ] {
            let err = read_args(args).1.unwrap_err().0;
            assert!(
                err.contains("takes no separate value: write --"),
                "{args:?}: {err}"
            );
        }
        let (s, r, _) = read_args(&["-g", "--", "true"]);
        assert_eq!(r, Ok(None));
        assert_eq!(s.action, Action::Run(vec![OsString::from("true")]));
        let (s, r, _) = read_args(&["--process-group=false", "--kill-fallback=0", "run"]);
        assert_eq!(r, Ok(None));
        assert_eq!(
            (s.process_group, s.kill_fallback),
            (Some(false), Some(false))
        );
    }

    #[test]
    fn help_version_and_bad_flags() {
        assert_eq!(read_args(&["-h"]).1, Ok(Some(Special::Help)));
        assert_eq!(read_args(&["--version"]).1, Ok(Some(Special::Version)));
        let err = read_args(&["--bogus", "x"]).1.unwrap_err();
        assert!(err.0.starts_with("unknown option '--bogus'"), "{err}");
        let err = read_args(&["--timeout"]).1.unwrap_err();
        assert!(err.0.contains("--timeout"), "{err}");
        let (_, r, noted) = read_args(&["--timeout", "soon", "true"]);
        assert_eq!(r, Ok(None));
        assert!(noted[0].0.starts_with("--timeout: invalid value 'soon'"));
    }
}
