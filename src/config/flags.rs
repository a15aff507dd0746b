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
    let mut args = args.into_iter().peekable();
    // A subcommand only as the very first word, so `meshinit -- wait` runs a `wait`.
    let subcommand = match args.peek().and_then(|a| a.to_str()) {
        Some("wait") => Some(Action::Wait),
        Some("quit") => Some(Action::Quit),
        _ => None,
    };
    if let Some(action) = subcommand {
        args.next();
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
                    "unexpected '{}': wait and quit take no COMMAND; usage: {USAGE}",
                    word.to_string_lossy()
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
        let raw = if spec.value.is_some() {
            parser.value().map_err(lexopt_error)?
        } else {
            parser
                .optional_value()
                .unwrap_or_else(|| OsString::from("true"))
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

fn unknown_option(option: &str) -> UsageError {
    UsageError::new(format!(
        "unknown option '{option}': usage: {USAGE} (see meshinit --help)"
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
    fn subcommands_only_first() {
        assert_eq!(read_args(&["wait", "--timeout=2s"]).0.action, Action::Wait);
        assert_eq!(read_args(&["quit"]).0.action, Action::Quit);
        let (s, _, _) = read_args(&["--", "wait"]);
        assert_eq!(s.action, Action::Run(vec![OsString::from("wait")]));
        let (_, r, _) = read_args(&["quit", "extra"]);
        assert!(r.unwrap_err().0.contains("take no COMMAND"));
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
