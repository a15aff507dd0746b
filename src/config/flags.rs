//! The command line: the subcommand, the options (the top layer over the variables), and
//! the task's command.

use std::ffi::OsString;

use super::options::{self, Opt, USAGE};
use super::settings::{Action, Settings};
use super::values::{self, UsageError};

/// What the command line asked for besides a run.
#[derive(Debug, PartialEq, Eq)]
pub enum Special {
    Help,
    Version,
}

/// Takes the subcommand out of `args`, if there is one: it is known before anything else is
/// read, since it decides which variables apply.
pub fn take_subcommand(args: &mut Vec<OsString>) -> Option<Action> {
    let (at, action) = subcommand(args)?;
    args.remove(at);
    Some(action)
}

/// Reads `args` (without the subcommand, which `settings.action` holds) into `settings`;
/// `Some` for --help and --version. A bad value goes to `note` so that the rest is still
/// read; a malformed command line stops here.
pub fn read(
    settings: &mut Settings,
    args: Vec<OsString>,
    note: &mut impl FnMut(UsageError),
) -> Result<Option<Special>, UsageError> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut lists_from_flags: Vec<&'static str> = Vec::new();
    while let Some(arg) = parser.next().map_err(lexopt_error)? {
        let opt: &Opt = match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => return Ok(Some(Special::Help)),
            lexopt::Arg::Long("version") | lexopt::Arg::Short('V') => {
                return Ok(Some(Special::Version))
            }
            lexopt::Arg::Value(dir) if settings.action == Some(Action::Install(None)) => {
                // A relative DIR would be the working directory's: in meshinit's image, `/`,
                // where the copy would replace /meshinit itself.
                if !dir.as_encoded_bytes().starts_with(b"/") {
                    let shown = dir.to_string_lossy();
                    note(values::invalid("install DIR", &shown, values::DIR_FORM));
                }
                settings.action = Some(Action::Install(Some(dir)));
                continue;
            }
            lexopt::Arg::Value(word) if settings.action.is_some() => {
                let takes = match settings.action {
                    Some(Action::Install(_)) => "install takes one DIR",
                    _ => "wait and quit take no COMMAND",
                };
                return Err(UsageError::new(format!(
                    "unexpected {}: {takes}; usage: {USAGE}",
                    values::quoted(&word.to_string_lossy())
                )));
            }
            lexopt::Arg::Value(first) => {
                let mut command = vec![first];
                command.extend(parser.raw_args().map_err(lexopt_error)?);
                settings.action = Some(Action::Run(command));
                break;
            }
            lexopt::Arg::Long(name) => {
                options::by_long(name).ok_or_else(|| unknown_option(&format!("--{name}")))?
            }
            lexopt::Arg::Short(c) => {
                options::by_short(c).ok_or_else(|| unknown_option(&format!("-{c}")))?
            }
        };
        let flag = format!("--{}", opt.long);
        let raw = match (opt.value, parser.optional_value()) {
            (Some(_), Some(attached)) => attached,
            (Some(_), None) => parser.value().map_err(lexopt_error)?,
            (None, Some(attached)) => attached,
            (None, None) => {
                refuse_detached_boolean(&mut parser, opt.long)?;
                OsString::from("true")
            }
        };
        // A list given by flags replaces the variable's list instead of adding to it.
        if let Some(clear) = opt.clear {
            if !lists_from_flags.contains(&opt.long) {
                lists_from_flags.push(opt.long);
                clear(settings);
            }
        }
        if let Err(err) =
            values::utf8(&flag, raw).and_then(|value| opt.apply(settings, &flag, &value))
        {
            note(err);
        }
    }
    Ok(None)
}

/// The subcommand and where it stands: the first `wait`, `quit` or `install` among the options,
/// before `--` and before the COMMAND (the first word that is neither an option nor an
/// option's value). `meshinit --timeout 5s wait` waits, `meshinit -- wait` runs a program.
/// An unknown option is taken to have a value unless the next word is `wait` or `quit`:
/// a mistyped `wait` command line must still be one, or its usage error would quit the
/// sidecar that a later step needs.
fn subcommand(args: &[OsString]) -> Option<(usize, Action)> {
    let action = |word: &str| match word {
        "wait" => Some(Action::Wait),
        "quit" => Some(Action::Quit),
        "install" => Some(Action::Install(None)),
        _ => None,
    };
    let mut at = 0;
    while let Some(word) = args.get(at).map(|a| a.to_string_lossy()) {
        if word == "--" {
            return None;
        }
        if let Some(action) = action(&word) {
            return Some((at, action));
        }
        let Some(flag) = word.strip_prefix('-').filter(|f| !f.is_empty()) else {
            // The COMMAND begins here.
            return None;
        };
        let next_is_value = !flag.contains('=')
            && args.get(at + 1).is_some_and(|next| {
                let next = next.to_string_lossy();
                action(&next).is_none() && !next.starts_with('-')
            });
        let known = match flag.strip_prefix('-') {
            Some(long) => options::by_long(long).map(|o| o.value.is_some()),
            None => flag
                .chars()
                .last()
                .and_then(options::by_short)
                .map(|o| o.value.is_some()),
        };
        let takes_value = known.unwrap_or(true) && next_is_value;
        at += if takes_value { 2 } else { 1 };
    }
    None
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

/// lexopt's errors in meshinit's words (its own Display writes values with `{:?}`, which
/// costs the binary the Debug machinery of OsString).
fn lexopt_error(err: lexopt::Error) -> UsageError {
    let what = match err {
        lexopt::Error::MissingValue {
            option: Some(option),
        } => format!("missing value for option {}", values::quoted(&option)),
        lexopt::Error::UnexpectedValue { option, value } => format!(
            "option {} takes no value, got {}",
            values::quoted(&option),
            values::quoted(&value.to_string_lossy())
        ),
        _ => "malformed command line".to_owned(),
    };
    UsageError::new(format!("{what}: usage: {USAGE} (see meshinit --help)"))
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
        let mut args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let mut settings = Settings {
            action: take_subcommand(&mut args),
            ..Settings::default()
        };
        let mut noted = Vec::new();
        let result = read(&mut settings, args, &mut |e| noted.push(e));
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
            Some(Action::Run(["sh", "-c", "x"].map(OsString::from).to_vec()))
        );
    }

    #[test]
    fn subcommands_before_or_after_options() {
        let action = |args: &[&str]| read_args(args).0.action;
        assert_eq!(action(&["wait", "--timeout=2s"]), Some(Action::Wait));
        assert_eq!(action(&["quit"]), Some(Action::Quit));
        let (s, r, _) = read_args(&["--timeout", "5s", "-g", "wait", "--log", "debug"]);
        assert_eq!((s.action, r), (Some(Action::Wait), Ok(None)));
        assert_eq!(s.timeout, Some(std::time::Duration::from_secs(5)));
        let run = |words: &[&str]| Some(Action::Run(words.iter().map(OsString::from).collect()));
        assert_eq!(action(&["--", "wait"]), run(&["wait"]));
        assert_eq!(action(&["sh", "wait"]), run(&["sh", "wait"]));
        assert_eq!(action(&["-g", "sh", "wait"]), run(&["sh", "wait"]));
        let (_, r, _) = read_args(&["quit", "extra"]);
        assert!(r.unwrap_err().0.contains("take no COMMAND"));
        // A mistyped wait command line is still a wait: its error must not quit.
        assert_eq!(action(&["--timeot", "5s", "wait"]), Some(Action::Wait));
        assert_eq!(action(&["--bogus", "wait"]), Some(Action::Wait));
        assert_eq!(action(&["--bogus", "--", "wait"]), None);
        assert_eq!(action(&[]), None);
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
        assert_eq!(s.action, Some(Action::Run(vec![OsString::from("true")])));
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
