//! The one place where the raw settings become the run's plan: defaults, mesh presets and
//! overrides, resolved once into one small plan for each phase (the wait, the task, the
//! quit, the report). The phases take their part and never look at the settings again.

use std::path::PathBuf;
use std::time::Duration;

use super::options::default;
use super::presets::{self, AUTO_CANDIDATES};
use super::settings::{Action, Keep, Mesh, OnTimeout, Settings};
use crate::init::supervisor::Forwarding;
use crate::logging::Format;
use crate::sidecar::endpoints::{Endpoints, QuitUrl, Sidecar, ANY_MESH};
use crate::sidecar::quit::Limits;
use crate::sidecar::shared::Shared;

/// Everything a run needs, decided.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `None` only after a usage error that left no subcommand or COMMAND (a run, then).
    pub action: Option<Action>,
    pub wait: WaitPlan,
    pub task: TaskPlan,
    pub quit: QuitPlan,
    /// The task containers that share the sidecar, when several do.
    pub shared: Option<Shared>,
    pub report: Report,
}

/// What to wait for, for how long, and what to do when that runs out.
#[derive(Clone, Debug)]
pub struct WaitPlan {
    pub sidecar: Sidecar,
    /// The longest wait for the sidecar.
    pub timeout: Duration,
    pub on_timeout: OnTimeout,
}

/// How the task is run: its signals, its process group, what its exit code means.
#[derive(Clone, Debug)]
pub struct TaskPlan {
    pub forwarding: Forwarding,
    /// After the task exits, how long its process group may take to go after a TERM.
    pub grace: Duration,
    /// The task's exit codes that count as success (meshinit then exits 0).
    pub success_codes: Vec<u8>,
    /// Once the task runs, FROM is forwarded as TO (0: dropped).
    pub rewrites: Vec<(libc::c_int, libc::c_int)>,
}

/// Whether the sidecar is quit at the end, and within which limits.
#[derive(Clone, Copy, Debug)]
pub struct QuitPlan {
    pub keep: Keep,
    pub limits: Limits,
}

/// What the run says besides its work: the log, the notes of the start, the summary, the
/// termination message.
#[derive(Clone, Debug)]
pub struct Report {
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

pub fn resolve(settings: &Settings) -> Plan {
    let sidecar = sidecar(settings);
    let linkerd_note = linkerd_note(settings, &sidecar);
    Plan {
        action: settings.action.clone(),
        wait: WaitPlan {
            sidecar,
            timeout: settings.timeout.unwrap_or(default::TIMEOUT),
            on_timeout: settings.on_timeout.unwrap_or(default::ON_TIMEOUT),
        },
        task: TaskPlan {
            forwarding: match settings.process_group.unwrap_or(default::PROCESS_GROUP) {
                true => Forwarding::Group,
                false => Forwarding::Process,
            },
            grace: settings.grace.unwrap_or(default::GRACE),
            success_codes: settings.success_codes.clone().unwrap_or_default(),
            rewrites: settings.rewrites.clone().unwrap_or_default(),
        },
        quit: QuitPlan {
            keep: settings.keep.unwrap_or(default::KEEP_SIDECAR),
            limits: Limits {
                budget: settings.quit_budget.unwrap_or(default::QUIT_BUDGET),
                wait: settings.quit_wait.unwrap_or(default::QUIT_WAIT),
                window: settings.quit_window.unwrap_or(default::QUIT_WINDOW),
            },
        },
        shared: shared(settings),
        report: Report {
            log: settings
                .log
                .clone()
                .unwrap_or_else(|| default::LOG.name().to_owned()),
            log_format: settings.log_format.unwrap_or(default::LOG_FORMAT),
            termination_log: match settings.termination_log.as_deref() {
                None => Some(PathBuf::from(default::TERMINATION_LOG)),
                Some("") => None,
                Some(path) => Some(PathBuf::from(path)),
            },
            warnings: settings.warnings.clone(),
            notes: settings.notes.iter().cloned().chain(linkerd_note).collect(),
            left_out: settings.left_out.clone(),
        },
    }
}

/// --name, --pod-dir and --quit-after, all three given (`parse` refuses fewer).
fn shared(settings: &Settings) -> Option<Shared> {
    Some(Shared {
        dir: PathBuf::from(settings.pod_dir.as_ref()?),
        name: settings.name.clone()?,
        quit_after: settings.quit_after.clone()?,
    })
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
        Some(Action::Quit | Action::Install(_)) => None,
        Some(Action::Wait) => Some(format!("{name} is set: no wait for Linkerd")),
        Some(Action::Run(_)) | None => Some(format!(
            "{name} is set: no wait for Linkerd (it is still told to quit)"
        )),
    }
}

fn sidecar(settings: &Settings) -> Sidecar {
    let adjust = |endpoints| overridden(endpoints, settings);
    let endpoints_given = settings.ready_urls.is_some()
        || settings.quit_urls.is_some()
        || settings.executables.is_some();
    let mesh = match settings.mesh {
        Some(mesh) => mesh,
        // Endpoints without a mesh replace Istio's, as they always did.
        None if endpoints_given => Mesh::Istio,
        // Nothing configured: a pod may have a sidecar (or be in ambient mode, or not be
        // injected) and is searched briefly; outside Kubernetes there is none to wait for.
        None if settings.in_kubernetes => Mesh::Auto,
        None => Mesh::None,
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
                look_for: settings.sidecar_grace.unwrap_or(default::SIDECAR_GRACE),
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
    if !settings.kill_fallback.unwrap_or(default::KILL_FALLBACK) {
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
    endpoints.notify = settings.also_quit.clone().unwrap_or_default();
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

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
