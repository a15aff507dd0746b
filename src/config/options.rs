//! The option table: each option's flag, variable, value form and help, how its value is
//! read into the settings, and the `--help` text made from the table.

use super::duration;
use super::settings::{Keep, Mesh, OnTimeout, Settings};
use super::values::{self, UsageError};
use crate::logging::Format;
use crate::sidecar::url;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Key {
    Mesh,
    ReadyUrl,
    QuitUrl,
    Timeout,
    OnTimeout,
    KeepSidecar,
    SidecarGrace,
    QuitWait,
    QuitWindow,
    KillFallback,
    SidecarExe,
    ProcessGroup,
    Grace,
    Log,
    LogFormat,
    TerminationLog,
}

impl Key {
    /// Repeatable options: a flag adds to the list, the variable is comma-separated.
    pub fn is_list(self) -> bool {
        matches!(self, Key::ReadyUrl | Key::QuitUrl | Key::SidecarExe)
    }
}

pub struct Spec {
    pub key: Key,
    pub long: &'static str,
    pub short: Option<char>,
    pub env: &'static str,
    /// The value's placeholder; `None` for a boolean switch (`--flag` or `--flag=BOOL`).
    pub value: Option<&'static str>,
    pub help: &'static str,
}

const fn spec(
    key: Key,
    long: &'static str,
    env: &'static str,
    value: Option<&'static str>,
    help: &'static str,
) -> Spec {
    Spec {
        key,
        long,
        short: None,
        env,
        value,
        help,
    }
}

pub const SPECS: &[Spec] = &[
    spec(Key::Mesh, "mesh", "MESHINIT_MESH", Some("MESH"),
        "istio, envoy, linkerd, none or auto (default: none outside Kubernetes, auto in a pod)"),
    spec(Key::ReadyUrl, "ready-url", "MESHINIT_READY_URL", Some("URL"),
        "readiness endpoint replacing the mesh's; repeatable, variable comma-separated"),
    spec(Key::QuitUrl, "quit-url", "MESHINIT_QUIT_URL", Some("URL"),
        "quit endpoint replacing the mesh's, POSTed in order; repeatable"),
    spec(Key::Timeout, "timeout", "MESHINIT_TIMEOUT", Some("DURATION"),
        "longest wait for the sidecar (default: 60s)"),
    spec(Key::OnTimeout, "on-timeout", "MESHINIT_ON_TIMEOUT", Some("ACTION"),
        "fail (quit the sidecar, exit 69) or start the task anyway (default: fail)"),
    spec(Key::KeepSidecar, "keep-sidecar", "MESHINIT_KEEP_SIDECAR", Some("WHEN"),
        "never, on-failure or always leave the sidecar running (default: never)"),
    spec(Key::SidecarGrace, "sidecar-grace", "MESHINIT_SIDECAR_GRACE", Some("DURATION"),
        "with auto, how long to look for a sidecar before running without one (default: 5s)"),
    spec(Key::QuitWait, "quit-wait", "MESHINIT_QUIT_WAIT", Some("DURATION"),
        "after a quit was taken, how long a sidecar seen in /proc may take to exit before SIGTERM (default: 2s; 0: no check)"),
    spec(Key::QuitWindow, "quit-window", "MESHINIT_QUIT_WINDOW", Some("DURATION"),
        "after the wait gave up, how long to keep trying to quit a sidecar that comes late (default: 10s; 0: try once)"),
    spec(Key::KillFallback, "kill-fallback", "MESHINIT_KILL_FALLBACK", None,
        "SIGTERM the sidecar found in /proc when no quit endpoint worked (default: true)"),
    spec(Key::SidecarExe, "sidecar-exe", "MESHINIT_SIDECAR_EXE", Some("PATH"),
        "executable the /proc fallback may signal, replacing the mesh's; repeatable"),
    Spec {
        short: Some('g'),
        ..spec(Key::ProcessGroup, "process-group", "MESHINIT_PROCESS_GROUP", None,
            "forward signals to the task's whole process group (default: false)")
    },
    spec(Key::Grace, "grace", "MESHINIT_GRACE", Some("DURATION"),
        "after the task exits, TERM its process group and wait this long (default: 0)"),
    spec(Key::Log, "log", "MESHINIT_LOG", Some("LEVEL"),
        "off, error, warn, info or debug (default: info)"),
    spec(Key::LogFormat, "log-format", "MESHINIT_LOG_FORMAT", Some("FORMAT"),
        "text, or json: one object per line for log pipelines (default: text)"),
    spec(Key::TerminationLog, "termination-log", "MESHINIT_TERMINATION_LOG", Some("PATH"),
        "when the task never ran, the reason goes to this file if it exists (default: /dev/termination-log; empty: off)"),
];

pub const USAGE: &str = "meshinit [OPTIONS] [--] COMMAND [ARG...] | meshinit wait|quit [OPTIONS]";

/// Reads `value`, given by `source` (a flag or a variable), into `settings`.
pub fn apply(
    settings: &mut Settings,
    key: Key,
    source: &str,
    value: &str,
) -> Result<(), UsageError> {
    let bad = |form: &str| values::invalid(source, value, form);
    let duration = || duration::parse(value).ok_or_else(|| bad(duration::FORM));
    let positive = || values::positive_duration(value).ok_or_else(|| bad(values::POSITIVE_FORM));
    let boolean = || values::boolean(value).ok_or_else(|| bad(values::BOOL_FORM));
    let urls = || values::url_list(value).map_err(|item| values::invalid(source, &item, url::FORM));
    match key {
        Key::Mesh => {
            settings.mesh = Some(Mesh::parse(value).ok_or_else(|| bad(values::MESH_FORM))?)
        }
        Key::ReadyUrl => extend(&mut settings.ready_urls, urls()?),
        Key::QuitUrl => extend(&mut settings.quit_urls, urls()?),
        Key::SidecarExe => extend(
            &mut settings.executables,
            values::path_list(value).ok_or_else(|| bad(values::EXE_FORM))?,
        ),
        Key::Timeout => settings.timeout = Some(positive()?),
        Key::OnTimeout => {
            settings.on_timeout =
                Some(OnTimeout::parse(value).ok_or_else(|| bad(values::ON_TIMEOUT_FORM))?)
        }
        Key::KeepSidecar => {
            settings.keep = Some(Keep::parse(value).ok_or_else(|| bad(values::KEEP_FORM))?)
        }
        Key::SidecarGrace => settings.sidecar_grace = Some(positive()?),
        Key::QuitWait => settings.quit_wait = Some(duration()?),
        Key::QuitWindow => settings.quit_window = Some(duration()?),
        Key::KillFallback => settings.kill_fallback = Some(boolean()?),
        Key::ProcessGroup => settings.process_group = Some(boolean()?),
        Key::Grace => settings.grace = Some(duration()?),
        Key::Log => settings.log = Some(values::level(value).ok_or_else(|| bad(values::LOG_FORM))?),
        Key::TerminationLog => {
            if !(value.is_empty() || value.starts_with('/')) {
                return Err(bad(values::TERMINATION_LOG_FORM));
            }
            settings.termination_log = Some(value.to_owned())
        }
        Key::LogFormat => {
            settings.log_format =
                Some(Format::parse(value).ok_or_else(|| bad(values::LOG_FORMAT_FORM))?)
        }
    }
    Ok(())
}

fn extend(list: &mut Option<Vec<String>>, items: Vec<String>) {
    list.get_or_insert_with(Vec::new).extend(items);
}

/// Empties a list option, so that flags replace what the variable said.
pub fn clear(settings: &mut Settings, key: Key) {
    match key {
        Key::ReadyUrl => settings.ready_urls = None,
        Key::QuitUrl => settings.quit_urls = None,
        Key::SidecarExe => settings.executables = None,
        _ => {}
    }
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
        text.push_str(&format!("  {flag:<27} {:<24} {}\n", spec.env, spec.help));
    }
    text.push_str(
        "  -h, --help                  print this help\n\
         \x20 -V, --version               print the version\n\n\
         scuttle's and envoy-preflight's variables (ENVOY_ADMIN_API, ISTIO_QUIT_API, ...)\n\
         are read too; MESHINIT_* variables and flags win over them.\n\
         Booleans: true/false, 1/0, yes/no; a switch takes one only as --flag=BOOL.\n\
         Durations: Go syntax, e.g. 500ms, 2s, 1m30s.\n\
         Exit codes: COMMAND's own; 128+N killed by signal N; 126 COMMAND cannot be run;\n\
         127 COMMAND not found; 64 bad usage; 69 sidecar not ready in time (or, for quit,\n\
         not stopped); 70 internal error.\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_has_a_distinct_flag_and_variable() {
        for (i, a) in SPECS.iter().enumerate() {
            assert_eq!(
                a.env,
                format!("MESHINIT_{}", a.long.to_uppercase().replace('-', "_"))
            );
            for b in &SPECS[i + 1..] {
                assert!(a.long != b.long && a.key != b.key, "{}", a.long);
            }
            assert!(help().contains(a.env) && help().contains(&format!("--{}", a.long)));
        }
    }

    #[test]
    fn lists_add_up_and_values_are_checked() {
        let mut s = Settings::default();
        apply(&mut s, Key::QuitUrl, "--quit-url", "http://127.0.0.1:1/a").unwrap();
        apply(&mut s, Key::QuitUrl, "--quit-url", "http://127.0.0.1:2/b").unwrap();
        assert_eq!(s.quit_urls.as_ref().map(Vec::len), Some(2));
        clear(&mut s, Key::QuitUrl);
        assert_eq!(s.quit_urls, None);
        let err = apply(&mut s, Key::Timeout, "MESHINIT_TIMEOUT", "0").unwrap_err();
        assert_eq!(
            err.0,
            format!(
                "MESHINIT_TIMEOUT: invalid value '0': expected {}",
                values::POSITIVE_FORM
            )
        );
        let err = apply(
            &mut s,
            Key::ReadyUrl,
            "--ready-url",
            "http://127.0.0.1:1/,ftp://x",
        )
        .unwrap_err();
        assert!(err.0.contains("'ftp://x'"), "{err}");
        assert!(apply(&mut s, Key::SidecarExe, "--sidecar-exe", "envoy").is_err());
        apply(&mut s, Key::ProcessGroup, "-g", "yes").unwrap();
        assert_eq!(s.process_group, Some(true));
    }
}
