//! The raw settings: what the flags and variables said, each `None` when nothing said it.
//! Defaults and the rules that combine settings live in `plan`, not here.

use std::ffi::OsString;
use std::time::Duration;

use crate::logging::LevelFilter;

use super::compat::Legacy;
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnTimeout {
    /// Quit the sidecar (it may be half up) and exit 69.
    Fail,
    /// Run the task anyway.
    Start,
}

impl OnTimeout {
    pub fn parse(text: &str) -> Option<OnTimeout> {
        match text {
            "fail" => Some(OnTimeout::Fail),
            "start" => Some(OnTimeout::Start),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    Never,
    OnFailure,
    Always,
}

impl Keep {
    pub fn parse(text: &str) -> Option<Keep> {
        match text {
            "never" => Some(Keep::Never),
            "on-failure" => Some(Keep::OnFailure),
            "always" => Some(Keep::Always),
            _ => None,
        }
    }

    /// Whether to quit the sidecar when meshinit leaves with `code`.
    pub fn quits_after(self, code: u8) -> bool {
        match self {
            Keep::Never => true,
            Keep::OnFailure => code == 0,
            Keep::Always => false,
        }
    }
}

/// The meshes meshinit knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mesh {
    Istio,
    Envoy,
    Linkerd,
    None,
    /// Whichever known sidecar answers; none if none does within the sidecar grace.
    Auto,
}

impl Mesh {
    pub fn parse(text: &str) -> Option<Mesh> {
        Some(match text {
            "istio" => Mesh::Istio,
            "envoy" => Mesh::Envoy,
            "linkerd" => Mesh::Linkerd,
            "none" => Mesh::None,
            "auto" => Mesh::Auto,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Mesh::Istio => "istio",
            Mesh::Envoy => "envoy",
            Mesh::Linkerd => "linkerd",
            Mesh::None => "none",
            Mesh::Auto => "auto",
        }
    }
}

/// Everything the command line and the environment said. Precedence, lowest first:
/// scuttle's and envoy-preflight's variables (`legacy`, combined in `plan`), `MESHINIT_*`
/// variables, flags (the later source overwrites the field).
#[derive(Clone, Debug)]
pub struct Settings {
    pub action: Action,
    pub mesh: Option<Mesh>,
    pub ready_urls: Option<Vec<String>>,
    pub quit_urls: Option<Vec<String>>,
    pub executables: Option<Vec<String>>,
    pub kill_fallback: Option<bool>,
    pub timeout: Option<Duration>,
    pub on_timeout: Option<OnTimeout>,
    pub keep: Option<Keep>,
    pub sidecar_grace: Option<Duration>,
    pub quit_wait: Option<Duration>,
    pub quit_window: Option<Duration>,
    pub process_group: Option<bool>,
    pub grace: Option<Duration>,
    pub log: Option<LevelFilter>,
    pub log_format: Option<Format>,
    /// The raw path; empty turns the termination message off.
    pub termination_log: Option<String>,
    pub legacy: Legacy,
    /// KUBERNETES_SERVICE_HOST is set: the kubelet started this container.
    pub in_kubernetes: bool,
    /// What was read but looks like a mistake (a misspelt variable), for the log.
    pub warnings: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            action: Action::Run(Vec::new()),
            mesh: None,
            ready_urls: None,
            quit_urls: None,
            executables: None,
            kill_fallback: None,
            timeout: None,
            on_timeout: None,
            keep: None,
            sidecar_grace: None,
            quit_wait: None,
            quit_window: None,
            process_group: None,
            grace: None,
            log: None,
            log_format: None,
            termination_log: None,
            legacy: Legacy::default(),
            in_kubernetes: false,
            warnings: Vec::new(),
        }
    }
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
