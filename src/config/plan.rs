//! The one place where the raw settings become the run's plan: defaults, mesh presets,
//! overrides and the meaning of scuttle's and envoy-preflight's variables. Waiting,
//! quitting and the run take the plan and never look at the settings again.

use std::path::PathBuf;
use std::time::Duration;

use super::compat::Legacy;
use super::presets::{self, AUTO_CANDIDATES, ISTIO_EXECUTABLES};
use super::settings::{Action, Keep, Mesh, OnTimeout, Settings};
use crate::init::supervisor::Forwarding;
use crate::logging::Format;
use crate::sidecar::endpoints::{Endpoints, QuitUrl, Sidecar, ANY_MESH};
use crate::sidecar::url;

/// Everything a run needs, decided.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `None` only after a usage error that left no subcommand or COMMAND (a run, then).
    pub action: Option<Action>,
    pub sidecar: Sidecar,
    /// The longest wait for the sidecar.
    pub timeout: Duration,
    pub on_timeout: OnTimeout,
    pub keep: Keep,
    /// After a quit was taken, how long a sidecar seen in /proc may take to exit.
    pub quit_wait: Duration,
    /// The most that the quit requests may take in all.
    pub quit_budget: Duration,
    /// After the wait gave up, how long to keep trying to quit a sidecar that comes late.
    pub quit_window: Duration,
    pub forwarding: Forwarding,
    /// After the task exits, how long its process group may take to go after a TERM.
    pub grace: Duration,
    /// The task's exit codes that count as success (meshinit then exits 0).
    pub success_codes: Vec<u8>,
    /// Once the task runs, FROM is forwarded as TO (0: dropped).
    pub rewrites: Vec<(libc::c_int, libc::c_int)>,
    /// env_logger's filter.
    pub log: String,
    pub log_format: Format,
    /// Where the reason goes when the task never ran (Kubernetes' termination message).
    pub termination_log: Option<PathBuf>,
    /// Said once at the start, as warnings (a misspelt `MESHINIT_*` variable).
    pub warnings: Vec<String>,
    /// Said once at the start, at info: what scuttle's, envoy-preflight's and
    /// linkerd-await's variables decided, since nothing else names them.
    pub notes: Vec<String>,
    /// What the configuration named but the run leaves out, for the summary line.
    pub left_out: Vec<String>,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_SIDECAR_GRACE: Duration = Duration::from_secs(5);
pub const DEFAULT_QUIT_WAIT: Duration = Duration::from_secs(2);
pub const DEFAULT_QUIT_BUDGET: Duration = Duration::from_secs(4);
pub const DEFAULT_QUIT_WINDOW: Duration = Duration::from_secs(10);
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";
const ISTIO_QUIT_DEFAULT: &str = "http://127.0.0.1:15020";

pub fn resolve(settings: &Settings) -> Plan {
    let legacy = &settings.legacy;
    let (legacy_timeout, legacy_on_timeout) = legacy_limit(legacy);
    let legacy_keep = if legacy.never_kill {
        Some(Keep::Always)
    } else {
        legacy.keep_on_failure.then_some(Keep::OnFailure)
    };
    let sidecar = sidecar(settings);
    let linkerd_note = linkerd_note(settings, &sidecar);
    Plan {
        action: settings.action.clone(),
        sidecar,
        timeout: settings
            .timeout
            .or(legacy_timeout)
            .unwrap_or(DEFAULT_TIMEOUT),
        on_timeout: settings
            .on_timeout
            .or(legacy_on_timeout)
            .unwrap_or(OnTimeout::Fail),
        keep: settings.keep.or(legacy_keep).unwrap_or(Keep::Never),
        quit_wait: settings.quit_wait.unwrap_or(DEFAULT_QUIT_WAIT),
        quit_budget: settings
            .quit_budget
            .or(legacy.quit_budget)
            .unwrap_or(DEFAULT_QUIT_BUDGET),
        quit_window: settings.quit_window.unwrap_or(DEFAULT_QUIT_WINDOW),
        forwarding: match settings.process_group {
            Some(true) => Forwarding::Group,
            _ => Forwarding::Process,
        },
        grace: settings.grace.unwrap_or(Duration::ZERO),
        success_codes: settings.success_codes.clone().unwrap_or_default(),
        rewrites: settings.rewrites.clone().unwrap_or_default(),
        log: settings
            .log
            .clone()
            .or(legacy.quiet.then(|| "error".to_owned()))
            .unwrap_or_else(|| "info".to_owned()),
        log_format: settings.log_format.unwrap_or(Format::Text),
        termination_log: match settings.termination_log.as_deref() {
            None => Some(PathBuf::from(DEFAULT_TERMINATION_LOG)),
            Some("") => None,
            Some(path) => Some(PathBuf::from(path)),
        },
        warnings: warnings(settings),
        notes: legacy_note(settings)
            .into_iter()
            .chain(linkerd_note)
            .collect(),
        left_out: (!legacy.tls_left_out.is_empty())
            .then(|| format!("GENERIC_QUIT_ENDPOINTS {}", legacy.tls_left_out.join(" ")))
            .into_iter()
            .collect(),
    }
}

/// linkerd-await's switch, said only where it decides something: a run or a wait whose
/// sidecar may be Linkerd (named, or a candidate of the search).
fn linkerd_note(settings: &Settings, sidecar: &Sidecar) -> Option<String> {
    let name = settings.linkerd_disabled?;
    let linkerd = Mesh::Linkerd.name();
    let may_be_linkerd = match sidecar {
        Sidecar::Absent => false,
        Sidecar::Known(endpoints) => endpoints.mesh == linkerd,
        Sidecar::Search { candidates, .. } => candidates.iter().any(|c| c.mesh == linkerd),
    };
    match settings.action {
        _ if !may_be_linkerd => None,
        Some(Action::Quit) => None,
        Some(Action::Wait) => Some(format!("{name} is set: no wait for Linkerd")),
        Some(Action::Run(_)) | None => Some(format!(
            "{name} is set: no wait for Linkerd (it is still told to quit)"
        )),
    }
}

fn warnings(settings: &Settings) -> Vec<String> {
    let mut warnings = settings.warnings.clone();
    for tls in &settings.legacy.tls_left_out {
        warnings.push(format!(
            "GENERIC_QUIT_ENDPOINTS: {tls} left out (meshinit has no TLS: it will not be told)"
        ));
    }
    warnings
}

/// One line naming the old variables that were set and what each decides, below the flags
/// and `MESHINIT_*` variables (the values show in the lines about the wait and the quit).
fn legacy_note(settings: &Settings) -> Option<String> {
    let legacy = &settings.legacy;
    if legacy.set.is_empty() {
        return None;
    }
    let decided: Vec<String> = legacy
        .set
        .iter()
        .map(|(name, decides)| format!("{name}: {decides}"))
        .collect();
    let sidecar = match (settings.mesh, &legacy.admin) {
        (Some(_), _) => "the sidecar is --mesh's",
        (None, Some(_)) => "the sidecar is ENVOY_ADMIN_API's",
        (None, None) => {
            "no ENVOY_ADMIN_API, so no wait and no quit (as in scuttle; --mesh or \
             MESHINIT_MESH chooses a sidecar)"
        }
    };
    Some(format!(
        "scuttle's or envoy-preflight's variables set, below flags and MESHINIT_* ({}); {sidecar}",
        decided.join("; ")
    ))
}

/// scuttle started the task when WAIT_FOR_ENVOY_TIMEOUT ran out and gave up when
/// QUIT_WITHOUT_ENVOY_TIMEOUT did; whichever is shorter decides.
fn legacy_limit(legacy: &Legacy) -> (Option<Duration>, Option<OnTimeout>) {
    match (legacy.wait_timeout, legacy.quit_timeout) {
        (Some(wait), Some(quit)) if quit < wait => (Some(quit), Some(OnTimeout::Fail)),
        (Some(wait), _) => (Some(wait), Some(OnTimeout::Start)),
        (None, Some(quit)) => (Some(quit), Some(OnTimeout::Fail)),
        (None, None) => (None, None),
    }
}

fn sidecar(settings: &Settings) -> Sidecar {
    let legacy = &settings.legacy;
    let adjust = |endpoints| overridden(endpoints, settings);
    let endpoints_given = settings.ready_urls.is_some()
        || settings.quit_urls.is_some()
        || settings.executables.is_some();
    let mesh = match (settings.mesh, &legacy.admin) {
        (Some(mesh), _) => mesh,
        (None, Some(admin)) => return Sidecar::Known(adjust(legacy_endpoints(admin, legacy))),
        // scuttle without ENVOY_ADMIN_API neither waited nor quit.
        (None, None) if !legacy.set.is_empty() => Mesh::None,
        // Endpoints without a mesh replace Istio's, as they always did.
        (None, None) if endpoints_given => Mesh::Istio,
        // Nothing configured: a pod may have a sidecar (or be in ambient mode, or not be
        // injected) and is searched briefly; outside Kubernetes there is none to wait for.
        (None, None) if settings.in_kubernetes => Mesh::Auto,
        (None, None) => Mesh::None,
    };
    match mesh {
        Mesh::Auto => {
            let candidates: Vec<Endpoints> = AUTO_CANDIDATES
                .into_iter()
                .map(|mesh| adjust(presets::preset(mesh)))
                .collect();
            let mut all = merged(&candidates);
            // With no mesh found, the other sidecars are still waited for.
            all.ready = settings.also_ready.clone().unwrap_or_default();
            Sidecar::Search {
                all,
                candidates,
                look_for: settings.sidecar_grace.unwrap_or(DEFAULT_SIDECAR_GRACE),
            }
        }
        mesh => match adjust(presets::preset(mesh)).known() {
            endpoints if endpoints.is_empty() => Sidecar::Absent,
            endpoints => Sidecar::Known(endpoints),
        },
    }
}

/// A preset with the explicit URLs and executables in place of its own.
fn overridden(mut endpoints: Endpoints, settings: &Settings) -> Endpoints {
    if let Some(ready) = &settings.ready_urls {
        endpoints.ready = ready.clone();
    }
    if let Some(quit) = &settings.quit_urls {
        // A URL given for Linkerd is still Linkerd's: its refusal means the same.
        let on_refusal = endpoints.quit.first().and_then(|q| q.on_refusal);
        endpoints.quit = quit
            .iter()
            .map(|url| QuitUrl {
                url: url.clone(),
                on_refusal,
            })
            .collect();
    }
    if let Some(executables) = &settings.executables {
        endpoints.executables = executables.clone();
    }
    if !settings
        .kill_fallback
        .or(settings.legacy.fallback_pkill)
        .unwrap_or(true)
    {
        endpoints.executables.clear();
    }
    // linkerd-await's switch: Linkerd is found by its readiness endpoint, not waited for.
    if endpoints.mesh == Mesh::Linkerd.name() && settings.linkerd_disabled.is_some() {
        endpoints.find_only = endpoints.ready.len();
    }
    // Other sidecars' endpoints come besides the mesh's own.
    if let Some(also) = &settings.also_ready {
        endpoints.ready.extend(also.iter().cloned());
    }
    endpoints.notify = settings.legacy.notify.clone();
    if let Some(also) = &settings.also_quit {
        endpoints.notify.extend(also.iter().cloned());
    }
    // The maintained scuttle fork's GENERIC_QUIT_ONLY: only the generic endpoints are told.
    if settings.legacy.generic_quit_only {
        endpoints.quit.clear();
        endpoints.executables.clear();
    }
    endpoints
}

/// Every candidate's quit endpoints and executables, each once, in the candidates' order;
/// the notified endpoints are the same for all (scuttle's GENERIC_QUIT_ENDPOINTS).
fn merged(candidates: &[Endpoints]) -> Endpoints {
    let mut all = Endpoints {
        mesh: ANY_MESH,
        notify: candidates
            .first()
            .map(|c| c.notify.clone())
            .unwrap_or_default(),
        ..Endpoints::default()
    };
    for candidate in candidates {
        for quit in &candidate.quit {
            if !all.quit.iter().any(|q| q.url == quit.url) {
                all.quit.push(quit.clone());
            }
        }
        for exe in &candidate.executables {
            if !all.executables.contains(exe) {
                all.executables.push(exe.clone());
            }
        }
    }
    all
}

/// What ENVOY_ADMIN_API and its companions describe.
fn legacy_endpoints(admin: &str, legacy: &Legacy) -> Endpoints {
    let mut endpoints = Endpoints {
        mesh: "istio",
        ..Endpoints::default()
    };
    if !legacy.skip_wait {
        endpoints.ready.push(legacy_readiness_url(admin));
    }
    // scuttle never quits a sidecar that is not on this machine.
    if url::is_loopback(admin) {
        let istio = legacy.istio_quit.as_deref().unwrap_or(ISTIO_QUIT_DEFAULT);
        let envoy = legacy
            .envoy_kill
            .clone()
            .unwrap_or_else(|| format!("{admin}/quitquitquit"));
        for url in [format!("{istio}/quitquitquit"), envoy] {
            if !endpoints.quit.iter().any(|q| q.url == url) {
                endpoints.quit.push(QuitUrl {
                    url,
                    on_refusal: None,
                });
            }
        }
        endpoints.executables = ISTIO_EXECUTABLES.map(str::to_owned).to_vec();
    }
    endpoints
}

/// Envoy's admin is polled on /ready, which is 200 exactly when /server_info says LIVE.
/// scuttle users who pointed ENVOY_ADMIN_API at pilot-agent (15020/15021) waited forever;
/// pilot-agent's own readiness path is used there instead.
fn legacy_readiness_url(admin: &str) -> String {
    let port = admin
        .parse::<ureq::http::Uri>()
        .ok()
        .and_then(|u| u.port_u16());
    match port {
        Some(15020) | Some(15021) => format!("{admin}/healthz/ready"),
        _ => format!("{admin}/ready"),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
