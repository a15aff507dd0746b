//! The command line and the environment, turned into one `Config`. Every option has a
//! `MESHINIT_*` variable. Precedence, lowest first: defaults, scuttle's and
//! envoy-preflight's variables (see `compat`), `MESHINIT_*` variables, flags.

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use log::LevelFilter;

use crate::compat::{self, Compat};
use crate::duration;
use crate::sidecar::{self, Mesh, Plan};
use crate::supervisor::Forwarding;

/// What to do once configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Wait for the sidecar, run COMMAND, quit the sidecar.
    Run(Vec<OsString>),
    /// `meshinit wait`: only wait.
    Wait,
    /// `meshinit quit`: only tell the sidecar to quit.
    Quit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnTimeout {
    /// Quit the sidecar (it may be half up) and exit 69.
    Fail,
    /// Run the task anyway.
    Start,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    Never,
    OnFailure,
    Always,
}

impl Keep {
    /// Whether to quit the sidecar when meshinit leaves with `code`.
    pub fn quits_after(self, code: u8) -> bool {
        match self {
            Keep::Never => true,
            Keep::OnFailure => code == 0,
            Keep::Always => false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub action: Action,
    /// Set by `--mesh`/`MESHINIT_MESH`; otherwise scuttle's variables or Istio decide.
    pub mesh: Option<Mesh>,
    pub ready_urls: Vec<String>,
    pub quit_urls: Vec<String>,
    pub executables: Vec<String>,
    pub kill_fallback: bool,
    pub timeout: Duration,
    pub on_timeout: OnTimeout,
    pub keep: Keep,
    pub sidecar_grace: Duration,
    pub quit_wait: Duration,
    pub forwarding: Forwarding,
    pub grace: Duration,
    pub log: LevelFilter,
    pub compat: Option<Compat>,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for Config {
    fn default() -> Self {
        Config {
            action: Action::Run(Vec::new()),
            mesh: None,
            ready_urls: Vec::new(),
            quit_urls: Vec::new(),
            executables: Vec::new(),
            kill_fallback: true,
            timeout: DEFAULT_TIMEOUT,
            on_timeout: OnTimeout::Fail,
            keep: Keep::Never,
            sidecar_grace: Duration::from_secs(5),
            quit_wait: Duration::from_secs(2),
            forwarding: Forwarding::Process,
            grace: Duration::ZERO,
            log: LevelFilter::Info,
            compat: None,
        }
    }
}

impl Config {
    /// The mesh in effect: the explicit one; else none when scuttle's variables are set
    /// without ENVOY_ADMIN_API (scuttle then neither waits nor quits); else Istio.
    pub fn mesh(&self) -> Mesh {
        match (&self.mesh, &self.compat) {
            (Some(mesh), _) => *mesh,
            (None, Some(compat)) if compat.admin.is_none() => Mesh::None,
            _ => Mesh::Istio,
        }
    }

    /// The endpoints for `mesh`, with every override applied.
    pub fn plan_for(&self, mesh: Mesh) -> Plan {
        let mut plan = match (&self.mesh, &self.compat) {
            (None, Some(compat)) if compat.admin.is_some() => compat.plan(),
            _ => sidecar::preset(mesh),
        };
        if !self.ready_urls.is_empty() {
            plan.ready = self.ready_urls.clone();
        }
        if !self.quit_urls.is_empty() {
            plan.quit = self.quit_urls.clone();
        }
        if !self.executables.is_empty() {
            plan.executables = self.executables.clone();
        }
        if !self.kill_fallback {
            plan.executables.clear();
        }
        if let Some(compat) = &self.compat {
            plan.notify = compat.notify.clone();
        }
        plan
    }
}

#[derive(Debug)]
pub enum Invocation {
    Run(Box<Config>),
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

/// A usage error, with the configuration as far as it could be read, so that the sidecar
/// can still be told to quit.
#[derive(Debug)]
pub struct Failure {
    pub error: UsageError,
    pub config: Box<Config>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    Mesh,
    ReadyUrl,
    QuitUrl,
    Timeout,
    OnTimeout,
    KeepSidecar,
    SidecarGrace,
    QuitWait,
    KillFallback,
    SidecarExe,
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

const fn spec(
    key: Key,
    long: &'static str,
    env: &'static str,
    value: &'static str,
    help: &'static str,
) -> Spec {
    Spec {
        key,
        long,
        short: None,
        env,
        value: Some(value),
        help,
    }
}

const SPECS: &[Spec] = &[
    spec(
        Key::Mesh,
        "mesh",
        "MESHINIT_MESH",
        "MESH",
        "istio, envoy, linkerd, none or auto (default: istio)",
    ),
    spec(
        Key::ReadyUrl,
        "ready-url",
        "MESHINIT_READY_URL",
        "URL",
        "readiness endpoint replacing the mesh's; repeatable, variable comma-separated",
    ),
    spec(
        Key::QuitUrl,
        "quit-url",
        "MESHINIT_QUIT_URL",
        "URL",
        "quit endpoint replacing the mesh's, POSTed in order; repeatable",
    ),
    spec(
        Key::Timeout,
        "timeout",
        "MESHINIT_TIMEOUT",
        "DURATION",
        "longest wait for the sidecar (default: 60s)",
    ),
    spec(
        Key::OnTimeout,
        "on-timeout",
        "MESHINIT_ON_TIMEOUT",
        "ACTION",
        "fail (quit the sidecar, exit 69) or start the task anyway (default: fail)",
    ),
    spec(
        Key::KeepSidecar,
        "keep-sidecar",
        "MESHINIT_KEEP_SIDECAR",
        "WHEN",
        "never, on-failure or always leave the sidecar running (default: never)",
    ),
    spec(
        Key::SidecarGrace,
        "sidecar-grace",
        "MESHINIT_SIDECAR_GRACE",
        "DURATION",
        "with --mesh auto, how long to look for a sidecar (default: 5s)",
    ),
    spec(
        Key::QuitWait,
        "quit-wait",
        "MESHINIT_QUIT_WAIT",
        "DURATION",
        "after a quit was taken, how long a sidecar seen in /proc may take to exit before SIGTERM (default: 2s; 0: no check)",
    ),
    Spec {
        key: Key::KillFallback,
        long: "kill-fallback",
        short: None,
        env: "MESHINIT_KILL_FALLBACK",
        value: None,
        help: "SIGTERM the sidecar found in /proc when no quit endpoint worked (default: true)",
    },
    spec(
        Key::SidecarExe,
        "sidecar-exe",
        "MESHINIT_SIDECAR_EXE",
        "PATH",
        "executable the /proc fallback may signal, replacing the mesh's; repeatable",
    ),
    Spec {
        key: Key::ProcessGroup,
        long: "process-group",
        short: Some('g'),
        env: "MESHINIT_PROCESS_GROUP",
        value: None,
        help: "forward signals to the task's whole process group (default: false)",
    },
    spec(
        Key::Grace,
        "grace",
        "MESHINIT_GRACE",
        "DURATION",
        "after the task exits, TERM its process group and wait this long (default: 0)",
    ),
    spec(
        Key::Log,
        "log",
        "MESHINIT_LOG",
        "LEVEL",
        "off, error, warn, info or debug (default: info)",
    ),
];

/// The MESHINIT_* variables, one per option.
pub fn variables() -> impl Iterator<Item = &'static str> {
    SPECS.iter().map(|spec| spec.env)
}

pub const BOOL_FORM: &str = "true, false, 1, 0, yes or no";
const ON_TIMEOUT_FORM: &str = "fail or start";
const KEEP_FORM: &str = "never, on-failure or always";
const LOG_FORM: &str = "off, error, warn, info or debug";
const POSITIVE_FORM: &str = "a duration above 0 such as 500ms, 2s or 1m30s";
const USAGE: &str = "meshinit [OPTIONS] [--] COMMAND [ARG...] | meshinit wait|quit [OPTIONS]";

/// Reads the configuration from `args` (without the program name) and from `env`.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Invocation, Failure> {
    let mut config = Config::default();
    let mut first_error: Option<UsageError> = None;
    let mut note = |result: Result<(), UsageError>| {
        if let Err(err) = result {
            first_error.get_or_insert(err);
        }
    };
    note(compat::apply(&mut config, &env));
    for spec in SPECS {
        if let Some(raw) = env(spec.env) {
            note(utf8(spec.env, raw).and_then(|value| apply(&mut config, spec, spec.env, &value)));
        }
    }
    let outcome = parse_flags(&mut config, args, &mut note);
    let error = match outcome {
        Ok(Some(special)) => return Ok(special),
        Ok(None) => first_error.or_else(|| missing_command(&config)),
        Err(err) => Some(err),
    };
    match error {
        Some(error) => Err(Failure {
            error: UsageError(one_line(error.0)),
            config: Box::new(config),
        }),
        None => Ok(Invocation::Run(Box::new(config))),
    }
}

/// Applies the flags; `Some` for --help and --version. Value errors go to `note` so that
/// the rest is still read; a malformed command line stops here.
fn parse_flags(
    config: &mut Config,
    args: impl IntoIterator<Item = OsString>,
    note: &mut impl FnMut(Result<(), UsageError>),
) -> Result<Option<Invocation>, UsageError> {
    let mut args = args.into_iter().peekable();
    // A subcommand only as the very first word, so `meshinit -- wait` runs a `wait`.
    let subcommand = match args.peek().and_then(|a| a.to_str()) {
        Some("wait") => Some(Action::Wait),
        Some("quit") => Some(Action::Quit),
        _ => None,
    };
    if let Some(action) = subcommand {
        args.next();
        config.action = action;
    }
    let mut parser = lexopt::Parser::from_args(args);
    let mut lists_from_flags: Vec<Key> = Vec::new();
    while let Some(arg) = parser.next().map_err(lexopt_error)? {
        let spec = match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => {
                return Ok(Some(Invocation::Help))
            }
            lexopt::Arg::Long("version") | lexopt::Arg::Short('V') => {
                return Ok(Some(Invocation::Version))
            }
            lexopt::Arg::Value(word) if config.action != Action::Run(Vec::new()) => {
                return Err(UsageError(format!(
                    "unexpected '{}': wait and quit take no COMMAND; usage: {USAGE}",
                    word.to_string_lossy()
                )))
            }
            lexopt::Arg::Value(first) => {
                let mut command = vec![first];
                command.extend(parser.raw_args().map_err(lexopt_error)?);
                config.action = Action::Run(command);
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
        if is_list(spec.key) && !lists_from_flags.contains(&spec.key) {
            lists_from_flags.push(spec.key);
            list_mut(config, spec.key).clear();
        }
        note(utf8(&flag, raw).and_then(|value| apply(config, spec, &flag, &value)));
    }
    Ok(None)
}

fn missing_command(config: &Config) -> Option<UsageError> {
    match &config.action {
        Action::Run(command) if command.is_empty() => Some(UsageError(format!(
            "missing COMMAND: usage: {USAGE} (see meshinit --help)"
        ))),
        _ => None,
    }
}

fn is_list(key: Key) -> bool {
    matches!(key, Key::ReadyUrl | Key::QuitUrl | Key::SidecarExe)
}

fn list_mut(config: &mut Config, key: Key) -> &mut Vec<String> {
    match key {
        Key::ReadyUrl => &mut config.ready_urls,
        Key::QuitUrl => &mut config.quit_urls,
        _ => &mut config.executables,
    }
}

fn apply(config: &mut Config, spec: &Spec, source: &str, value: &str) -> Result<(), UsageError> {
    let bad = |form: &str| invalid(source, value, form);
    match spec.key {
        Key::Mesh => config.mesh = Some(Mesh::parse(value).ok_or_else(|| bad(sidecar::MESH_FORM))?),
        Key::ReadyUrl | Key::QuitUrl => {
            let urls = url_list(source, value)?;
            list_mut(config, spec.key).extend(urls);
        }
        Key::SidecarExe => {
            let paths = split_list(value);
            if paths.is_empty() || paths.iter().any(|p| !p.starts_with('/')) {
                return Err(bad("absolute paths such as /usr/local/bin/envoy"));
            }
            config.executables.extend(paths);
        }
        Key::Timeout => {
            config.timeout = positive_duration(value).ok_or_else(|| bad(POSITIVE_FORM))?
        }
        Key::OnTimeout => {
            config.on_timeout = match value {
                "fail" => OnTimeout::Fail,
                "start" => OnTimeout::Start,
                _ => return Err(bad(ON_TIMEOUT_FORM)),
            }
        }
        Key::KeepSidecar => config.keep = parse_keep(value).ok_or_else(|| bad(KEEP_FORM))?,
        Key::SidecarGrace => {
            config.sidecar_grace = positive_duration(value).ok_or_else(|| bad(POSITIVE_FORM))?
        }
        Key::QuitWait => {
            config.quit_wait = duration::parse(value).ok_or_else(|| bad(duration::FORM))?
        }
        Key::KillFallback => {
            config.kill_fallback = parse_bool(value).ok_or_else(|| bad(BOOL_FORM))?
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

fn positive_duration(value: &str) -> Option<Duration> {
    duration::parse(value).filter(|d| !d.is_zero())
}

fn parse_keep(value: &str) -> Option<Keep> {
    Some(match value {
        "never" => Keep::Never,
        "on-failure" => Keep::OnFailure,
        "always" => Keep::Always,
        _ => return None,
    })
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

/// A comma-separated list of plain-http URLs; an empty list or a bad URL is an error.
pub fn url_list(source: &str, value: &str) -> Result<Vec<String>, UsageError> {
    let urls = split_list(value);
    match urls.iter().find(|u| !sidecar::valid_url(u)) {
        Some(bad) => Err(invalid(source, bad, sidecar::URL_FORM)),
        None if urls.is_empty() => Err(invalid(source, value, sidecar::URL_FORM)),
        None => Ok(urls),
    }
}

pub fn parse_bool(value: &str) -> Option<bool> {
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

pub fn invalid(source: &str, value: &str, form: &str) -> UsageError {
    UsageError(format!(
        "{source}: invalid value '{value}': expected {form}"
    ))
}

/// Control characters (a newline in a value, say) escaped: the message stays one line.
fn one_line(message: String) -> String {
    let mut line = String::with_capacity(message.len());
    for c in message.chars() {
        if c.is_control() {
            line.extend(c.escape_debug());
        } else {
            line.push(c);
        }
    }
    line
}

pub fn utf8(source: &str, raw: OsString) -> Result<String, UsageError> {
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
        "meshinit {}: PID 1 for jobs in a service mesh\n\n\
         Usage: meshinit [OPTIONS] [--] COMMAND [ARG...]\n\
         \x20      meshinit wait [OPTIONS]   wait for the sidecar: exit 0 ready, 69 timed out\n\
         \x20      meshinit quit [OPTIONS]   tell the sidecar to quit: exit 0 done, 69 not\n\n\
         Waits until the mesh's sidecar is ready, runs COMMAND as its child (forwarding\n\
         signals, reaping every orphan), tells the sidecar to quit, and exits with\n\
         COMMAND's code (128+N when it is killed by signal N).\n\n\
         Options (each also read from the variable beside it; the flag wins):\n",
        env!("CARGO_PKG_VERSION")
    );
    for spec in SPECS {
        let short = spec.short.map(|c| format!("-{c}, ")).unwrap_or_default();
        let value = spec
            .value
            .map_or_else(|| "[=BOOL]".to_owned(), |v| format!(" {v}"));
        let flag = format!("{short}--{}{value}", spec.long);
        text.push_str(&format!("  {flag:<27} {:<23} {}\n", spec.env, spec.help));
    }
    text.push_str(
        "  -h, --help                  print this help\n\
         \x20 -V, --version               print the version\n\n\
         scuttle's and envoy-preflight's variables (ENVOY_ADMIN_API, ISTIO_QUIT_API, ...)\n\
         are read too; MESHINIT_* variables and flags win over them.\n\
         Booleans: true/false, 1/0, yes/no. Durations: Go syntax, e.g. 500ms, 2s, 1m30s.\n\
         Exit codes: COMMAND's own; 128+N killed by signal N; 126 COMMAND cannot be run;\n\
         127 COMMAND not found; 64 bad usage; 69 sidecar not ready in time (or, for quit,\n\
         not stopped); 70 internal error.\n",
    );
    text
}
