//! The command line and the environment, turned into one `Config`. Every option has a
//! `MESHINIT_*` variable; variables are read first and flags override them.

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use log::LevelFilter;

use crate::duration;
use crate::supervisor::Forwarding;

/// Which sidecar meshinit waits for and quits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mesh {
    None,
}

#[derive(Debug)]
pub struct Config {
    pub mesh: Mesh,
    pub forwarding: Forwarding,
    pub grace: Duration,
    pub log: LevelFilter,
    pub command: Vec<OsString>,
}

#[derive(Debug)]
pub enum Invocation {
    Run(Config),
    Help,
    Version,
}

/// A bad command line or variable: one line naming what was wrong and what is accepted.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Mesh,
    ProcessGroup,
    Grace,
    Log,
}

struct Spec {
    key: Key,
    long: &'static str,
    short: Option<char>,
    env: &'static str,
    /// The value's placeholder; `None` for a boolean switch (`--flag` or `--flag=BOOL`).
    value: Option<&'static str>,
    help: &'static str,
}

const SPECS: &[Spec] = &[
    Spec {
        key: Key::Mesh,
        long: "mesh",
        short: None,
        env: "MESHINIT_MESH",
        value: Some("MESH"),
        help: "sidecar to wait for and quit: none (default: none)",
    },
    Spec {
        key: Key::ProcessGroup,
        long: "process-group",
        short: Some('g'),
        env: "MESHINIT_PROCESS_GROUP",
        value: None,
        help: "forward signals to the task's whole process group (default: false)",
    },
    Spec {
        key: Key::Grace,
        long: "grace",
        short: None,
        env: "MESHINIT_GRACE",
        value: Some("DURATION"),
        help: "after the task exits, TERM its process group and wait this long (default: 0)",
    },
    Spec {
        key: Key::Log,
        long: "log",
        short: None,
        env: "MESHINIT_LOG",
        value: Some("LEVEL"),
        help: "off, error, warn, info or debug (default: info)",
    },
];

const BOOL_FORM: &str = "true, false, 1, 0, yes or no";
const MESH_FORM: &str = "none";
const LOG_FORM: &str = "off, error, warn, info or debug";
const USAGE: &str = "meshinit [OPTIONS] [--] COMMAND [ARG...]";

impl Default for Config {
    fn default() -> Self {
        Config {
            mesh: Mesh::None,
            forwarding: Forwarding::Process,
            grace: Duration::ZERO,
            log: LevelFilter::Info,
            command: Vec::new(),
        }
    }
}

/// Reads the configuration from `args` (without the program name) and from `env`.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Invocation, UsageError> {
    let mut config = Config::default();
    for spec in SPECS {
        if let Some(raw) = env(spec.env) {
            let value = utf8(spec.env, raw)?;
            apply(&mut config, spec, spec.env, &value)?;
        }
    }
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(lexopt_error)? {
        let spec = match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => return Ok(Invocation::Help),
            lexopt::Arg::Long("version") | lexopt::Arg::Short('V') => {
                return Ok(Invocation::Version)
            }
            lexopt::Arg::Value(first) => {
                config.command.push(first);
                config
                    .command
                    .extend(parser.raw_args().map_err(lexopt_error)?);
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
        let value = utf8(&flag, raw)?;
        apply(&mut config, spec, &flag, &value)?;
    }
    if config.command.is_empty() {
        return Err(UsageError(format!(
            "missing COMMAND: usage: {USAGE} (see meshinit --help)"
        )));
    }
    Ok(Invocation::Run(config))
}

fn apply(config: &mut Config, spec: &Spec, source: &str, value: &str) -> Result<(), UsageError> {
    let bad = |form: &str| invalid(source, value, form);
    match spec.key {
        Key::Mesh => {
            config.mesh = match value {
                "none" => Mesh::None,
                _ => return Err(bad(MESH_FORM)),
            }
        }
        Key::ProcessGroup => {
            config.forwarding = if parse_bool(value).ok_or_else(|| bad(BOOL_FORM))? {
                Forwarding::Group
            } else {
                Forwarding::Process
            }
        }
        Key::Grace => config.grace = duration::parse(value).ok_or_else(|| bad(duration::FORM))?,
        Key::Log => config.log = parse_level(value).ok_or_else(|| bad(LOG_FORM))?,
    }
    Ok(())
}

fn parse_bool(value: &str) -> Option<bool> {
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

fn parse_level(value: &str) -> Option<LevelFilter> {
    Some(match value.to_ascii_lowercase().as_str() {
        "off" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        _ => return None,
    })
}

fn invalid(source: &str, value: &str, form: &str) -> UsageError {
    UsageError(format!(
        "{source}: invalid value '{value}': expected {form}"
    ))
}

fn utf8(source: &str, raw: OsString) -> Result<String, UsageError> {
    raw.into_string()
        .map_err(|raw| invalid(source, &raw.to_string_lossy(), "valid UTF-8"))
}

fn unknown_option(option: &str) -> UsageError {
    UsageError(format!(
        "unknown option '{option}': usage: {USAGE} (see meshinit --help)"
    ))
}

fn lexopt_error(err: lexopt::Error) -> UsageError {
    UsageError(format!("{err}: usage: {USAGE} (see meshinit --help)"))
}

/// The text of `--help`: every option with its variable.
pub fn help() -> String {
    let mut text = format!(
        "meshinit {}: PID 1 for jobs in a service mesh\n\nUsage: {USAGE}\n\n\
         Runs COMMAND as its child, forwards signals to it, reaps every orphan, and exits\n\
         with COMMAND's code (128+N when it is killed by signal N).\n\n\
         Options (each also read from the variable beside it; the flag wins):\n",
        env!("CARGO_PKG_VERSION")
    );
    for spec in SPECS {
        let short = spec.short.map(|c| format!("-{c}, ")).unwrap_or_default();
        let value = spec
            .value
            .map_or_else(|| "[=BOOL]".to_owned(), |v| format!(" {v}"));
        let flag = format!("{short}--{}{value}", spec.long);
        text.push_str(&format!("  {flag:<27} {:<24} {}\n", spec.env, spec.help));
    }
    text.push_str(
        "  -h, --help                  print this help\n\
         \x20 -V, --version               print the version\n\n\
         Booleans: true/false, 1/0, yes/no. Durations: Go syntax, e.g. 500ms, 2s, 1m30s.\n\
         Exit codes: COMMAND's own; 128+N killed by signal N; 126 COMMAND cannot be run;\n\
         127 COMMAND not found; 64 bad usage; 70 internal error.\n",
    );
    text
}
