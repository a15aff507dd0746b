//! The option table. Each option is one entry: its flag, its variable, its value's
//! placeholder and accepted form, its help, its default, and how its value is read into the
//! settings. The command line, the `MESHINIT_*` variables, `--help`, the fuzzing and the
//! tests all read this table; the code that uses a value reads it from the settings.

use super::duration;
use super::settings::{Keep, LogLevel, Mesh, OnTimeout, Settings};
use super::values::{self, UsageError};
use crate::logging::Format;
use crate::sidecar::url;

/// What a value must look like.
#[derive(Clone, Copy)]
pub enum Form {
    /// One of an enum's words (`words!`): listed in `--help` too.
    Words(fn() -> String),
    Text(&'static str),
}

impl Form {
    pub fn text(self) -> String {
        match self {
            Form::Words(list) => list(),
            Form::Text(text) => text.to_owned(),
        }
    }
}

/// Each option's default, typed: `--help` shows it (through `Unset::Value`) and
/// `plan::resolve` uses it, so that the two cannot differ.
pub mod default {
    use std::time::Duration;

    use crate::config::settings::{Keep, LogLevel, OnTimeout};
    use crate::logging::Format;

    pub const TIMEOUT: Duration = Duration::from_secs(60);
    pub const ON_TIMEOUT: OnTimeout = OnTimeout::Fail;
    pub const KEEP_SIDECAR: Keep = Keep::Never;
    pub const SIDECAR_GRACE: Duration = Duration::from_secs(5);
    pub const QUIT_BUDGET: Duration = Duration::from_secs(4);
    pub const QUIT_WAIT: Duration = Duration::from_secs(2);
    pub const QUIT_WINDOW: Duration = Duration::from_secs(10);
    pub const KILL_FALLBACK: bool = true;
    pub const PROCESS_GROUP: bool = false;
    pub const GRACE: Duration = Duration::ZERO;
    pub const LOG: LogLevel = LogLevel::Info;
    pub const LOG_FORMAT: Format = Format::Text;
    pub const TERMINATION_LOG: &str = "/dev/termination-log";
}

/// What holds when an option is not given: its default.
#[derive(Clone, Copy)]
pub enum Unset {
    /// A value of `default`, in the option's form: the plan without the option is the plan
    /// with this.
    Value(fn() -> String),
    /// Described, not a value (it depends on where meshinit runs, say).
    Said(&'static str),
    Nothing,
}

/// The runs an option means something to, one bit each: a `MESHINIT_*` variable is read
/// only for those (a run's settings in a container's environment must not fail `install`,
/// nor the task's options `wait`).
pub mod runs {
    pub const RUN: u8 = 1;
    pub const WAIT: u8 = 2;
    pub const QUIT: u8 = 4;
    pub const INSTALL: u8 = 8;
    pub const SIDECAR: u8 = RUN | WAIT | QUIT;
    pub const ALL: u8 = SIDECAR | INSTALL;

    use crate::config::settings::Action;

    /// The run that `action` asks for (a run when there is none yet).
    pub fn of(action: Option<&Action>) -> u8 {
        match action {
            Some(Action::Wait) => WAIT,
            Some(Action::Quit) => QUIT,
            Some(Action::Install(_)) => INSTALL,
            Some(Action::Run(_)) | None => RUN,
        }
    }
}

/// Reads a value into the settings. `Err(None)`: the value is not of the form;
/// `Err(Some(item))`: this item of a list is not.
pub type Apply = fn(&mut Settings, &str) -> Result<(), Option<String>>;

pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    pub env: &'static str,
    /// The value's placeholder; `None` for a switch (`--flag` or `--flag=BOOL`).
    pub value: Option<&'static str>,
    pub form: Form,
    pub help: &'static str,
    pub default: Unset,
    pub apply: Apply,
    /// The runs it means something to (`runs`).
    pub runs: u8,
    /// For a repeatable option (the variable comma-separated): empties it, so that flags
    /// replace what the variable said instead of adding to it.
    pub clear: Option<fn(&mut Settings)>,
}

const BASE: Opt = Opt {
    long: "",
    short: None,
    env: "",
    value: None,
    form: Form::Text(""),
    help: "",
    default: Unset::Nothing,
    apply: |_, _| Err(None),
    runs: runs::RUN,
    clear: None,
};

const BOOL: Form = Form::Text(values::BOOL_FORM);
const DURATION: Form = Form::Text(duration::FORM);
const POSITIVE: Form = Form::Text(values::POSITIVE_FORM);
const URLS: Form = Form::Text(url::FORM);
const QUIT_URLS: Form = Form::Text(url::QUIT_FORM);

fn word<T>(parsed: Option<T>) -> Result<T, Option<String>> {
    parsed.ok_or(None)
}

/// Adds the URLs of `value` to `list`; one copy for every URL option, not one each.
#[inline(never)]
fn add_urls(list: &mut Option<Vec<String>>, value: &str) -> Result<(), Option<String>> {
    extend(list, values::url_list(value).map_err(Some)?);
    Ok(())
}

fn extend<T>(list: &mut Option<Vec<T>>, items: Vec<T>) {
    list.get_or_insert_with(Vec::new).extend(items);
}

pub const OPTIONS: &[Opt] = &[
    Opt {
        long: "mesh",
        env: "MESHINIT_MESH",
        value: Some("MESH"),
        form: Form::Words(Mesh::form),
        help: "the sidecar to wait for and quit",
        default: Unset::Said(
            "none outside Kubernetes, auto in a pod; with scuttle's or envoy-preflight's \
             variables, as they did",
        ),
        apply: |s, v| {
            s.mesh = Some(word(Mesh::parse(v))?);
            Ok(())
        },
        runs: runs::SIDECAR,
        ..BASE
    },
    Opt {
        long: "ready-url",
        env: "MESHINIT_READY_URL",
        value: Some("URL"),
        form: URLS,
        help: "readiness endpoint replacing the mesh's, asked in order; repeatable",
        apply: |s, v| add_urls(&mut s.ready_urls, v),
        clear: Some(|s| s.ready_urls = None),
        runs: runs::RUN | runs::WAIT,
        ..BASE
    },
    Opt {
        long: "quit-url",
        env: "MESHINIT_QUIT_URL",
        value: Some("URL"),
        form: QUIT_URLS,
        help: "quit endpoint replacing the mesh's, POSTed in order; repeatable",
        apply: |s, v| add_urls(&mut s.quit_urls, v),
        clear: Some(|s| s.quit_urls = None),
        runs: runs::RUN | runs::QUIT,
        ..BASE
    },
    Opt {
        long: "timeout",
        env: "MESHINIT_TIMEOUT",
        value: Some("DURATION"),
        form: POSITIVE,
        help: "longest wait for the sidecar",
        default: Unset::Value(|| duration::show(default::TIMEOUT)),
        apply: |s, v| {
            s.timeout = Some(word(values::positive_duration(v))?);
            Ok(())
        },
        runs: runs::RUN | runs::WAIT,
        ..BASE
    },
    Opt {
        long: "on-timeout",
        env: "MESHINIT_ON_TIMEOUT",
        value: Some("ACTION"),
        form: Form::Words(OnTimeout::form),
        help: "when the wait runs out: fail quits the sidecar and exits 69, start runs the task",
        default: Unset::Value(|| default::ON_TIMEOUT.name().to_owned()),
        apply: |s, v| {
            s.on_timeout = Some(word(OnTimeout::parse(v))?);
            Ok(())
        },
        ..BASE
    },
    Opt {
        long: "keep-sidecar",
        env: "MESHINIT_KEEP_SIDECAR",
        value: Some("WHEN"),
        form: Form::Words(Keep::form),
        help: "leave the sidecar running; on-failure: when the exit code is not 0",
        default: Unset::Value(|| default::KEEP_SIDECAR.name().to_owned()),
        apply: |s, v| {
            s.keep = Some(word(Keep::parse(v))?);
            Ok(())
        },
        ..BASE
    },
    Opt {
        long: "sidecar-grace",
        env: "MESHINIT_SIDECAR_GRACE",
        value: Some("DURATION"),
        form: POSITIVE,
        help: "with auto, how long to look for a sidecar before running without one",
        default: Unset::Value(|| duration::show(default::SIDECAR_GRACE)),
        apply: |s, v| {
            s.sidecar_grace = Some(word(values::positive_duration(v))?);
            Ok(())
        },
        runs: runs::RUN | runs::WAIT,
        ..BASE
    },
    Opt {
        long: "quit-budget",
        env: "MESHINIT_QUIT_BUDGET",
        value: Some("DURATION"),
        form: POSITIVE,
        help: "the most that all the quit requests may take",
        default: Unset::Value(|| duration::show(default::QUIT_BUDGET)),
        apply: |s, v| {
            s.quit_budget = Some(word(values::positive_duration(v))?);
            Ok(())
        },
        runs: runs::RUN | runs::QUIT,
        ..BASE
    },
    Opt {
        long: "quit-wait",
        env: "MESHINIT_QUIT_WAIT",
        value: Some("DURATION"),
        form: DURATION,
        help: "after a quit was taken, how long a sidecar seen in /proc may take to exit \
               before SIGTERM (0: no check)",
        default: Unset::Value(|| duration::show(default::QUIT_WAIT)),
        apply: |s, v| {
            s.quit_wait = Some(word(duration::parse(v))?);
            Ok(())
        },
        runs: runs::RUN | runs::QUIT,
        ..BASE
    },
    Opt {
        long: "quit-window",
        env: "MESHINIT_QUIT_WINDOW",
        value: Some("DURATION"),
        form: DURATION,
        help: "after the wait gave up, how long to keep trying to quit a sidecar that \
               comes late (0: try once)",
        default: Unset::Value(|| duration::show(default::QUIT_WINDOW)),
        apply: |s, v| {
            s.quit_window = Some(word(duration::parse(v))?);
            Ok(())
        },
        ..BASE
    },
    Opt {
        long: "kill-fallback",
        env: "MESHINIT_KILL_FALLBACK",
        form: BOOL,
        help: "SIGTERM the sidecar found in /proc when no quit endpoint worked",
        default: Unset::Value(|| default::KILL_FALLBACK.to_string()),
        apply: |s, v| {
            s.kill_fallback = Some(word(values::boolean(v))?);
            Ok(())
        },
        runs: runs::RUN | runs::QUIT,
        ..BASE
    },
    Opt {
        long: "sidecar-exe",
        env: "MESHINIT_SIDECAR_EXE",
        value: Some("PATH"),
        form: Form::Text(values::EXE_FORM),
        help: "executable the /proc fallback may signal, replacing the mesh's; repeatable",
        apply: |s, v| {
            extend(&mut s.executables, word(values::path_list(v))?);
            Ok(())
        },
        clear: Some(|s| s.executables = None),
        runs: runs::RUN | runs::QUIT,
        ..BASE
    },
    Opt {
        long: "also-ready",
        env: "MESHINIT_ALSO_READY",
        value: Some("URL"),
        form: URLS,
        help: "another sidecar's readiness endpoint, asked besides the mesh's; repeatable",
        apply: |s, v| add_urls(&mut s.also_ready, v),
        clear: Some(|s| s.also_ready = None),
        runs: runs::RUN | runs::WAIT,
        ..BASE
    },
    Opt {
        long: "also-quit",
        env: "MESHINIT_ALSO_QUIT",
        value: Some("URL"),
        form: QUIT_URLS,
        help: "another sidecar's quit endpoint, POSTed once besides the mesh's quit; repeatable",
        apply: |s, v| add_urls(&mut s.also_quit, v),
        clear: Some(|s| s.also_quit = None),
        runs: runs::RUN | runs::QUIT,
        ..BASE
    },
    Opt {
        long: "name",
        env: "MESHINIT_NAME",
        value: Some("NAME"),
        form: Form::Text(values::NAME_FORM),
        help: "this container's name, with --pod-dir and --quit-after",
        apply: |s, v| {
            s.name = Some(word(values::container_name(v))?);
            Ok(())
        },
        ..BASE
    },
    Opt {
        long: "pod-dir",
        env: "MESHINIT_POD_DIR",
        value: Some("DIR"),
        form: Form::Text(values::DIR_FORM),
        help: "a directory the pod's task containers share (an emptyDir), where each \
               one's meshinit says it runs",
        apply: |s, v| {
            if !v.starts_with('/') {
                return Err(None);
            }
            s.pod_dir = Some(v.to_owned());
            Ok(())
        },
        ..BASE
    },
    Opt {
        long: "quit-after",
        env: "MESHINIT_QUIT_AFTER",
        value: Some("NAME"),
        form: Form::Text(values::NAMES_FORM),
        help: "the task containers that must all have ended before the sidecar is quit; \
               the last one to end quits; repeatable",
        apply: |s, v| {
            extend(&mut s.quit_after, values::container_names(v).map_err(Some)?);
            Ok(())
        },
        clear: Some(|s| s.quit_after = None),
        ..BASE
    },
    Opt {
        long: "process-group",
        short: Some('g'),
        env: "MESHINIT_PROCESS_GROUP",
        form: BOOL,
        help: "forward signals to the task's whole process group",
        default: Unset::Value(|| default::PROCESS_GROUP.to_string()),
        apply: |s, v| {
            s.process_group = Some(word(values::boolean(v))?);
            Ok(())
        },
        ..BASE
    },
    Opt {
        long: "grace",
        env: "MESHINIT_GRACE",
        value: Some("DURATION"),
        form: DURATION,
        help: "after the task exits, TERM its process group and wait this long",
        default: Unset::Value(|| duration::show(default::GRACE)),
        apply: |s, v| {
            s.grace = Some(word(duration::parse(v))?);
            Ok(())
        },
        ..BASE
    },
    Opt {
        long: "success-code",
        env: "MESHINIT_SUCCESS_CODES",
        value: Some("CODE"),
        form: Form::Text(values::CODES_FORM),
        help: "the task's exit code CODE counts as success: meshinit exits 0; repeatable",
        apply: |s, v| {
            extend(&mut s.success_codes, word(values::exit_codes(v))?);
            Ok(())
        },
        clear: Some(|s| s.success_codes = None),
        ..BASE
    },
    Opt {
        long: "rewrite-signal",
        env: "MESHINIT_REWRITE_SIGNALS",
        value: Some("FROM:TO"),
        form: Form::Text(values::REWRITE_FORM),
        help: "once the task runs, forward FROM as TO (0: not at all); repeatable",
        apply: |s, v| {
            let rewrites = s.rewrites.get_or_insert_with(Vec::new);
            rewrites.extend(word(values::signal_rewrites(v))?);
            if values::rewrites_one_twice(rewrites) {
                return Err(None);
            }
            Ok(())
        },
        clear: Some(|s| s.rewrites = None),
        ..BASE
    },
    Opt {
        long: "log",
        env: "MESHINIT_LOG",
        value: Some("LEVEL"),
        // The levels are the words; env_logger's directives (`info,ureq=debug`) are
        // made of them, and `values::log_filter` checks both.
        form: Form::Words(LogLevel::form),
        help: "which lines to write: a level, or env_logger's directives such as \
               info,ureq=debug",
        default: Unset::Value(|| default::LOG.name().to_owned()),
        apply: |s, v| {
            s.log = Some(word(values::log_filter(v))?);
            Ok(())
        },
        runs: runs::ALL,
        ..BASE
    },
    Opt {
        long: "log-format",
        env: "MESHINIT_LOG_FORMAT",
        value: Some("FORMAT"),
        form: Form::Words(Format::form),
        help: "how lines look; json: one object per line, for log pipelines",
        default: Unset::Value(|| default::LOG_FORMAT.name().to_owned()),
        apply: |s, v| {
            s.log_format = Some(word(Format::parse(v))?);
            Ok(())
        },
        runs: runs::ALL,
        ..BASE
    },
    Opt {
        long: "termination-log",
        env: "MESHINIT_TERMINATION_LOG",
        value: Some("PATH"),
        form: Form::Text(values::TERMINATION_LOG_FORM),
        help: "when the task never ran, the reason goes to this file if it exists (empty: off)",
        default: Unset::Value(|| default::TERMINATION_LOG.to_owned()),
        apply: |s, v| {
            if !(v.is_empty() || v.starts_with('/')) {
                return Err(None);
            }
            s.termination_log = Some(v.to_owned());
            Ok(())
        },
        runs: runs::RUN | runs::WAIT | runs::INSTALL,
        ..BASE
    },
];

pub const USAGE: &str =
    "meshinit [OPTIONS] [--] COMMAND [ARG...] | meshinit wait|quit [OPTIONS] | meshinit install DIR";

impl Opt {
    /// Reads `value`, given by `source` (the flag or the variable), into `settings`.
    pub fn apply(
        &self,
        settings: &mut Settings,
        source: &str,
        value: &str,
    ) -> Result<(), UsageError> {
        (self.apply)(settings, value).map_err(|item| {
            values::invalid(source, item.as_deref().unwrap_or(value), &self.form.text())
        })
    }
}

pub fn by_long(name: &str) -> Option<&'static Opt> {
    OPTIONS.iter().find(|o| o.long == name)
}

pub fn by_short(letter: char) -> Option<&'static Opt> {
    OPTIONS.iter().find(|o| o.short == Some(letter))
}

/// The text of `--help`: every option with its variable.
pub fn help() -> String {
    let mut text = format!(
        "meshinit {}: PID 1 for jobs in a service mesh\n\n\
         Usage: meshinit [OPTIONS] [--] COMMAND [ARG...]\n\
         \x20      meshinit wait [OPTIONS]   wait for the sidecar: exit 0 ready, 69 timed out\n\
         \x20      meshinit quit [OPTIONS]   tell the sidecar to quit: exit 0 done, 69 not\n\
         \x20      meshinit install DIR      copy meshinit to DIR/meshinit: exit 0 done, 73 not\n\n\
         Waits until the mesh's sidecar is ready, runs COMMAND as its child (forwarding\n\
         signals, reaping every orphan), tells the sidecar to quit, and exits with\n\
         COMMAND's code (128+N when it is killed by signal N).\n\n\
         Options (each also read from the variable beside it; the flag wins):\n",
        env!("CARGO_PKG_VERSION")
    );
    for opt in OPTIONS {
        let short = opt.short.map(|c| format!("-{c}, ")).unwrap_or_default();
        let value = opt
            .value
            .map_or_else(|| "[=BOOL]".to_owned(), |v| format!(" {v}"));
        let flag = format!("{short}--{}{value}", opt.long);
        let mut notes = Vec::new();
        if let Form::Words(words) = opt.form {
            notes.push(words());
        }
        match opt.default {
            Unset::Value(shown) => notes.push(format!("default: {}", shown())),
            Unset::Said(said) => notes.push(format!("default: {said}")),
            Unset::Nothing => {}
        }
        let mut about = opt.help.to_owned();
        if !notes.is_empty() {
            about.push_str(&format!(" ({})", notes.join("; ")));
        }
        text.push_str(&format!("  {flag:<27} {:<24} {about}\n", opt.env));
    }
    text.push_str(
        "  -h, --help                  print this help\n\
         \x20 -V, --version               print the version\n\n\
         scuttle's and envoy-preflight's variables (ENVOY_ADMIN_API, ISTIO_QUIT_API, ...)\n\
         are read too; MESHINIT_* variables and flags win over them.\n\
         Words (meshes, actions, levels, formats, booleans) are read in any case.\n\
         Booleans: true/false, 1/0, yes/no; a switch takes one only as --flag=BOOL.\n\
         Durations: Go syntax, e.g. 500ms, 2s, 1m30s.\n\
         Exit codes: COMMAND's own; 128+N killed by signal N; 126 COMMAND cannot be run;\n\
         127 COMMAND not found; 64 bad usage; 69 sidecar not ready in time (or, for quit,\n\
         not stopped); 70 internal error; 73 install could not write its copy.\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::plan::resolve;

    #[test]
    fn every_option_has_a_distinct_flag_and_variable() {
        for (i, a) in OPTIONS.iter().enumerate() {
            // The flag's name, or its plural for some repeatable ones (MESHINIT_SUCCESS_CODES).
            let env = format!("MESHINIT_{}", a.long.to_uppercase().replace('-', "_"));
            assert!(
                a.env == env || (a.clear.is_some() && a.env == format!("{env}S")),
                "{}",
                a.env
            );
            for b in &OPTIONS[i + 1..] {
                assert!(
                    a.long != b.long && (a.short.is_none() || a.short != b.short),
                    "{}",
                    a.long
                );
            }
            assert!(help().contains(a.env) && help().contains(&format!("--{}", a.long)));
            assert!(
                !a.help.is_empty() && !a.form.text().is_empty(),
                "{}",
                a.long
            );
        }
    }

    #[test]
    fn each_default_is_what_the_plan_does_without_the_option() {
        let unset = format!("{:?}", resolve(&Settings::default()));
        for opt in OPTIONS {
            if let Unset::Value(value) = opt.default {
                let mut settings = Settings::default();
                opt.apply(&mut settings, opt.env, &value())
                    .unwrap_or_else(|e| panic!("{}: its default: {e}", opt.long));
                assert_eq!(format!("{:?}", resolve(&settings)), unset, "--{}", opt.long);
            }
        }
    }

    #[test]
    fn every_word_is_read_in_any_case() {
        for (flag, value) in [
            ("mesh", "Istio"),
            ("log-format", "JSON"),
            ("keep-sidecar", "NEVER"),
            ("on-timeout", "FAIL"),
            ("log", "DEBUG"),
            ("kill-fallback", "False"),
        ] {
            let opt = by_long(flag).unwrap();
            let mut settings = Settings::default();
            assert!(
                opt.apply(&mut settings, flag, value).is_ok(),
                "--{flag} {value}"
            );
        }
    }

    #[test]
    fn lists_add_up_and_values_are_checked() {
        let quit = by_long("quit-url").unwrap();
        let mut s = Settings::default();
        quit.apply(&mut s, "--quit-url", "http://127.0.0.1:1/a")
            .unwrap();
        quit.apply(&mut s, "--quit-url", "http://127.0.0.1:2/b")
            .unwrap();
        assert_eq!(s.quit_urls.as_ref().map(Vec::len), Some(2));
        (quit.clear.unwrap())(&mut s);
        assert_eq!(s.quit_urls, None);
        let timeout = by_long("timeout").unwrap();
        let err = timeout.apply(&mut s, "MESHINIT_TIMEOUT", "0").unwrap_err();
        assert_eq!(
            err.0,
            format!(
                "MESHINIT_TIMEOUT: invalid value '0': expected {}",
                values::POSITIVE_FORM
            )
        );
        let ready = by_long("ready-url").unwrap();
        let err = ready
            .apply(&mut s, "--ready-url", "http://127.0.0.1:1/,ftp://x")
            .unwrap_err();
        assert!(err.0.contains("'ftp://x'"), "{err}");
        let mesh = by_long("mesh").unwrap();
        let err = mesh.apply(&mut s, "--mesh", "consul").unwrap_err();
        assert!(
            err.0
                .ends_with("expected istio, envoy, linkerd, none or auto"),
            "{err}"
        );
        let exe = by_long("sidecar-exe").unwrap();
        assert!(exe.apply(&mut s, "--sidecar-exe", "envoy").is_err());
        by_short('g').unwrap().apply(&mut s, "-g", "yes").unwrap();
        assert_eq!(s.process_group, Some(true));
    }
}
