//! The raw settings: what the flags and variables said, each `None` when nothing said it.
//! Defaults and the rules that combine settings live in `plan`, not here.

use std::ffi::OsString;
use std::time::Duration;

use crate::logging::Format;

/// What to do once configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Wait for the sidecar, run COMMAND, quit the sidecar.
    Run(Vec<OsString>),
    /// `meshinit wait`: only wait.
    Wait,
    /// `meshinit quit`: only tell the sidecar to quit.
    Quit,
    /// `meshinit install DIR`: copy meshinit to DIR/meshinit (`None` until DIR is read).
    Install(Option<OsString>),
}

words! {
    /// What to do when the wait for the sidecar runs out.
    pub enum OnTimeout {
        /// Quit the sidecar (it may be half up) and exit 69.
        Fail = "fail",
        /// Run the task anyway.
        Start = "start",
    }
}

words! {
    /// When to leave the sidecar running.
    pub enum Keep {
        Never = "never",
        OnFailure = "on-failure",
        Always = "always",
    }
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

words! {
    /// The meshes meshinit knows.
    pub enum Mesh {
        Istio = "istio",
        Envoy = "envoy",
        Linkerd = "linkerd",
        None = "none",
        /// Whichever known sidecar answers; none if none does within the sidecar grace.
        Auto = "auto",
    }
}

words! {
    /// The levels of `--log`, alone or in env_logger's directives (`info,ureq=debug`).
    pub enum LogLevel {
        Off = "off",
        Error = "error",
        Warn = "warn",
        Info = "info",
        Debug = "debug",
        Trace = "trace",
    }
}

/// Everything the command line and the environment said. Precedence, lowest first:
/// scuttle's and envoy-preflight's variables (`compat` fills what the others left unset),
/// `MESHINIT_*` variables, flags (the later source overwrites the field).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The subcommand, or the COMMAND to run; `None` while neither was given.
    pub action: Option<Action>,
    pub mesh: Option<Mesh>,
    pub ready_urls: Option<Vec<String>>,
    pub quit_urls: Option<Vec<String>>,
    pub executables: Option<Vec<String>>,
    /// Readiness endpoints of other sidecars, asked besides the mesh's own.
    pub also_ready: Option<Vec<String>>,
    /// Quit endpoints of other sidecars, each POSTed once besides the mesh's own quit.
    pub also_quit: Option<Vec<String>>,
    pub kill_fallback: Option<bool>,
    pub timeout: Option<Duration>,
    pub on_timeout: Option<OnTimeout>,
    pub keep: Option<Keep>,
    pub sidecar_grace: Option<Duration>,
    pub quit_budget: Option<Duration>,
    pub quit_wait: Option<Duration>,
    pub quit_window: Option<Duration>,
    pub process_group: Option<bool>,
    pub grace: Option<Duration>,
    pub success_codes: Option<Vec<u8>>,
    /// Signals forwarded as another (`to` 0: not at all), once the task runs.
    pub rewrites: Option<Vec<(libc::c_int, libc::c_int)>>,
    /// env_logger's filter: a level, or directives such as `info,ureq=debug`.
    pub log: Option<String>,
    pub log_format: Option<Format>,
    /// The raw path; empty turns the termination message off.
    pub termination_log: Option<String>,
    /// This container's name among the task containers that share the sidecar.
    pub name: Option<String>,
    /// The directory the task containers share (an emptyDir).
    pub pod_dir: Option<String>,
    /// The task containers that must all have ended before the sidecar is quit.
    pub quit_after: Option<Vec<String>>,
    /// KUBERNETES_SERVICE_HOST is set: the kubelet started this container.
    pub in_kubernetes: bool,
    /// linkerd-await's LINKERD_AWAIT_DISABLED or LINKERD_DISABLED, when set (not empty).
    pub linkerd_disabled: Option<&'static str>,
    /// What was read but looks like a mistake (a misspelt variable), for the log.
    pub warnings: Vec<String>,
    /// What scuttle's and envoy-preflight's variables decided, said once at the start.
    pub notes: Vec<String>,
    /// What the configuration named but the run leaves out, for the summary line.
    pub left_out: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        for name in ["istio", "envoy", "linkerd", "none", "auto"] {
            assert_eq!(Mesh::parse(name).map(Mesh::name), Some(name));
        }
        assert_eq!(Mesh::parse("consul"), None);
        assert_eq!(Keep::parse("on-failure"), Some(Keep::OnFailure));
        assert_eq!(OnTimeout::parse("start"), Some(OnTimeout::Start));
        assert!(Keep::OnFailure.quits_after(0) && !Keep::OnFailure.quits_after(1));
        assert!(!Keep::Always.quits_after(0) && Keep::Never.quits_after(3));
    }
}
