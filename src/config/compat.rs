//! scuttle's and envoy-preflight's environment variables: a settings layer below
//! `MESHINIT_*` and the flags. Each variable is named once, in `VARIABLES`, with how its
//! value is read; `lay_below` turns what they said into the settings they mean (the
//! sidecar's endpoints, time limits, keeping the sidecar) wherever nothing above said
//! otherwise, and into the note that says what each decided.

use std::time::Duration;

use super::duration;
use super::environment::Environment;
use super::options::runs;
use super::presets::ISTIO_EXECUTABLES;
use super::settings::{Keep, Mesh, OnTimeout, Settings};
use super::values::{self, UsageError};
use crate::sidecar::url;

/// pilot-agent's quit endpoint when ISTIO_QUIT_API is unset (as the maintained fork does).
const ISTIO_QUIT_DEFAULT: &str = "http://127.0.0.1:15020";

/// What the old variables said, as they said it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Legacy {
    /// The variables that were set, in `VARIABLES`' order, each with what it decides.
    pub set: Vec<(&'static str, &'static str)>,
    /// ENVOY_ADMIN_API without a trailing slash; unset means no sidecar at all.
    pub admin: Option<String>,
    /// START_WITHOUT_ENVOY: skip the wait, still quit.
    pub skip_wait: bool,
    /// WAIT_FOR_ENVOY_TIMEOUT: start the task when it runs out (0, "forever", is `None`).
    pub wait_timeout: Option<Duration>,
    /// QUIT_WITHOUT_ENVOY_TIMEOUT: give up when it runs out (0 is `None`).
    pub quit_timeout: Option<Duration>,
    /// ISTIO_QUIT_API: base URL of pilot-agent's quit endpoint.
    pub istio_quit: Option<String>,
    /// ENVOY_KILL_API: full URL of Envoy's quit endpoint.
    pub envoy_kill: Option<String>,
    /// GENERIC_QUIT_ENDPOINTS: each POSTed, status ignored.
    pub notify: Vec<String>,
    /// GENERIC_QUIT_ENDPOINTS' https:// entries (scuttle's README shows one), as a log line
    /// shows them: meshinit has no TLS, so they are left out, named, and the run goes on.
    pub tls_left_out: Vec<String>,
    /// ISTIO_FALLBACK_PKILL.
    pub fallback_pkill: Option<bool>,
    /// NEVER_KILL_ISTIO or NEVER_KILL_ENVOY.
    pub never_kill: bool,
    /// NEVER_KILL_ISTIO_ON_FAILURE=true or ALWAYS_KILL_ENVOY=false.
    pub keep_on_failure: bool,
    /// SCUTTLE_LOGGING=false.
    pub quiet: bool,
    /// QUIT_REQUEST_TIMEOUT (the maintained fork): the deadline for the quit requests.
    pub quit_budget: Option<Duration>,
    /// GENERIC_QUIT_ONLY (the maintained fork): POST GENERIC_QUIT_ENDPOINTS only.
    pub generic_quit_only: bool,
}

/// Reads one variable's value into `Legacy`; `Err` is the accepted form.
type Reader = fn(&mut Legacy, &str) -> Result<(), &'static str>;

/// A variable: its name, what it decides (for the run's first line), how it is read, and
/// the runs its value applies to (`options::runs`).
pub type Variable = (&'static str, &'static str, Reader, u8);

/// Every variable read, with its meaning there.
pub const VARIABLES: [Variable; 15] = [
    (
        "ENVOY_ADMIN_API",
        "the sidecar to wait for and quit",
        |l, v| {
            l.admin = Some(base_url(v)?);
            Ok(())
        },
        runs::SIDECAR,
    ),
    (
        "START_WITHOUT_ENVOY",
        "no wait",
        |l, v| {
            l.skip_wait = flag(v)?;
            Ok(())
        },
        runs::RUN | runs::WAIT,
    ),
    (
        "WAIT_FOR_ENVOY_TIMEOUT",
        "the time limit, then the task starts",
        |l, v| {
            l.wait_timeout = limit(v)?;
            Ok(())
        },
        runs::RUN | runs::WAIT,
    ),
    (
        "QUIT_WITHOUT_ENVOY_TIMEOUT",
        "the time limit, then exit 69",
        |l, v| {
            l.quit_timeout = limit(v)?;
            Ok(())
        },
        runs::RUN | runs::WAIT,
    ),
    (
        "ISTIO_QUIT_API",
        "pilot-agent's quit endpoint",
        |l, v| {
            l.istio_quit = Some(base_url(v)?);
            Ok(())
        },
        runs::RUN | runs::QUIT,
    ),
    (
        "ENVOY_KILL_API",
        "Envoy's quit endpoint",
        |l, v| {
            l.envoy_kill = Some(base_url(v)?);
            Ok(())
        },
        runs::RUN | runs::QUIT,
    ),
    (
        "GENERIC_QUIT_ENDPOINTS",
        "endpoints told at the end",
        |l, v| {
            let (tls, plain): (Vec<String>, Vec<String>) =
                values::split_list(v).into_iter().partition(|u| {
                    u.get(..8)
                        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
                });
            if plain.iter().any(|u| !url::valid(u)) || plain.len() + tls.len() == 0 {
                return Err(url::QUIT_FORM);
            }
            l.notify = plain;
            l.tls_left_out = tls.iter().map(|u| url::shown_without_query(u)).collect();
            Ok(())
        },
        runs::RUN | runs::QUIT,
    ),
    (
        "ISTIO_FALLBACK_PKILL",
        "the /proc fallback",
        |l, v| {
            l.fallback_pkill = Some(flag(v)?);
            Ok(())
        },
        runs::RUN | runs::QUIT,
    ),
    (
        "NEVER_KILL_ISTIO",
        "keep the sidecar",
        |l, v| {
            l.never_kill |= flag(v)?;
            Ok(())
        },
        runs::RUN,
    ),
    (
        "NEVER_KILL_ENVOY",
        "keep the sidecar",
        |l, v| {
            l.never_kill |= flag(v)?;
            Ok(())
        },
        runs::RUN,
    ),
    (
        "NEVER_KILL_ISTIO_ON_FAILURE",
        "keep the sidecar on failure",
        |l, v| {
            l.keep_on_failure |= flag(v)?;
            Ok(())
        },
        runs::RUN,
    ),
    // envoy-preflight kept Envoy after a failure unless this was true; meshinit quits by
    // default, and keeps it on failure only when this is explicitly false.
    (
        "ALWAYS_KILL_ENVOY",
        "keep the sidecar on failure when false",
        |l, v| {
            l.keep_on_failure |= !flag(v)?;
            Ok(())
        },
        runs::RUN,
    ),
    (
        "SCUTTLE_LOGGING",
        "errors only when false",
        |l, v| {
            l.quiet = !flag(v)?;
            Ok(())
        },
        runs::SIDECAR,
    ),
    (
        "QUIT_REQUEST_TIMEOUT",
        "the quit budget",
        |l, v| {
            l.quit_budget = limit(v)?;
            Ok(())
        },
        runs::RUN | runs::QUIT,
    ),
    (
        "GENERIC_QUIT_ONLY",
        "only GENERIC_QUIT_ENDPOINTS told",
        |l, v| {
            l.generic_quit_only = flag(v)?;
            Ok(())
        },
        runs::RUN | runs::QUIT,
    ),
];

fn flag(value: &str) -> Result<bool, &'static str> {
    values::boolean(value).ok_or(values::BOOL_FORM)
}

fn base_url(value: &str) -> Result<String, &'static str> {
    if url::valid(value) {
        Ok(value.trim_end_matches('/').to_owned())
    } else {
        Err(url::FORM)
    }
}

/// A time limit; 0 meant "forever" there, and is left out here.
fn limit(value: &str) -> Result<Option<Duration>, &'static str> {
    let d = duration::parse(value).ok_or(duration::FORM)?;
    Ok(Some(d).filter(|d| !d.is_zero()))
}

/// Lays what the old variables said below `settings` (which hold the flags and `MESHINIT_*`
/// variables): each setting they imply is taken only where nothing above set it, and one
/// note names the variables set and what each decides.
pub fn lay_below(legacy: Legacy, settings: &mut Settings) {
    if let Some(note) = note(&legacy, settings.mesh.is_some()) {
        settings.notes.push(note);
    }
    for tls in &legacy.tls_left_out {
        settings.warnings.push(format!(
            "GENERIC_QUIT_ENDPOINTS: {tls} left out (meshinit has no TLS: it will not be told)"
        ));
    }
    if !legacy.tls_left_out.is_empty() {
        let left_out = format!("GENERIC_QUIT_ENDPOINTS {}", legacy.tls_left_out.join(" "));
        settings.left_out.push(left_out);
    }
    // The maintained fork's GENERIC_QUIT_ONLY: only the generic endpoints are told.
    if legacy.generic_quit_only {
        settings.quit_urls.get_or_insert_with(Vec::new);
        settings.executables.get_or_insert_with(Vec::new);
    }
    if settings.mesh.is_none() {
        match &legacy.admin {
            Some(admin) => {
                settings.mesh = Some(Mesh::Istio);
                describe_sidecar(admin, &legacy, settings);
            }
            // scuttle without ENVOY_ADMIN_API neither waited nor quit. One that is set but
            // not valid is a usage error, whose run still tells the sidecar that meshinit
            // finds as without configuration.
            None if !legacy.set.is_empty() && !admin_given(&legacy) => {
                settings.mesh = Some(Mesh::None)
            }
            None => {}
        }
    }
    let (timeout, on_timeout) = limit_rule(&legacy);
    settings.timeout = settings.timeout.or(timeout);
    settings.on_timeout = settings.on_timeout.or(on_timeout);
    let keep = if legacy.never_kill {
        Some(Keep::Always)
    } else {
        legacy.keep_on_failure.then_some(Keep::OnFailure)
    };
    settings.keep = settings.keep.or(keep);
    settings.kill_fallback = settings.kill_fallback.or(legacy.fallback_pkill);
    settings.quit_budget = settings.quit_budget.or(legacy.quit_budget);
    if legacy.quiet {
        settings.log.get_or_insert_with(|| "error".to_owned());
    }
    // GENERIC_QUIT_ENDPOINTS are told besides --also-quit, first.
    if !legacy.notify.is_empty() {
        let also = settings.also_quit.take().unwrap_or_default();
        settings.also_quit = Some(legacy.notify.into_iter().chain(also).collect());
    }
}

/// One line naming the old variables that were set and what each decides, below the flags
/// and `MESHINIT_*` variables (the values show in the lines about the wait and the quit).
fn note(legacy: &Legacy, mesh_given: bool) -> Option<String> {
    if legacy.set.is_empty() {
        return None;
    }
    let decided: Vec<String> = legacy
        .set
        .iter()
        .map(|(name, decides)| format!("{name}: {decides}"))
        .collect();
    let sidecar = match (mesh_given, &legacy.admin) {
        (true, _) => "the sidecar is --mesh's",
        (false, Some(_)) => "the sidecar is ENVOY_ADMIN_API's",
        (false, None) if admin_given(legacy) => {
            "ENVOY_ADMIN_API is not valid (see the error), so the sidecar is the one meshinit \
             finds without configuration"
        }
        (false, None) => {
            "no ENVOY_ADMIN_API, so no wait and no quit (as in scuttle; --mesh or \
             MESHINIT_MESH chooses a sidecar)"
        }
    };
    Some(format!(
        "scuttle's or envoy-preflight's variables set, below flags and MESHINIT_* ({}); {sidecar}",
        decided.join("; ")
    ))
}

/// Whether ENVOY_ADMIN_API was set (not empty), valid or not.
fn admin_given(legacy: &Legacy) -> bool {
    legacy.set.iter().any(|(name, _)| *name == VARIABLES[0].0)
}

/// scuttle started the task when WAIT_FOR_ENVOY_TIMEOUT ran out and gave up when
/// QUIT_WITHOUT_ENVOY_TIMEOUT did; whichever is shorter decides.
fn limit_rule(legacy: &Legacy) -> (Option<Duration>, Option<OnTimeout>) {
    match (legacy.wait_timeout, legacy.quit_timeout) {
        (Some(wait), Some(quit)) if quit < wait => (Some(quit), Some(OnTimeout::Fail)),
        (Some(wait), _) => (Some(wait), Some(OnTimeout::Start)),
        (None, Some(quit)) => (Some(quit), Some(OnTimeout::Fail)),
        (None, None) => (None, None),
    }
}

/// The endpoints ENVOY_ADMIN_API and its companions describe, where nothing above gave
/// them: Istio's sidecar at that admin address.
fn describe_sidecar(admin: &str, legacy: &Legacy, settings: &mut Settings) {
    settings.ready_urls.get_or_insert_with(|| {
        (!legacy.skip_wait)
            .then(|| readiness_url(admin))
            .into_iter()
            .collect()
    });
    // scuttle never quits a sidecar that is not on this machine.
    let loopback = url::is_loopback(admin);
    settings.quit_urls.get_or_insert_with(|| {
        if !loopback {
            return Vec::new();
        }
        let istio = legacy.istio_quit.as_deref().unwrap_or(ISTIO_QUIT_DEFAULT);
        let envoy = legacy
            .envoy_kill
            .clone()
            .unwrap_or_else(|| format!("{admin}/quitquitquit"));
        let mut quit = vec![format!("{istio}/quitquitquit")];
        if !quit.contains(&envoy) {
            quit.push(envoy);
        }
        quit
    });
    settings.executables.get_or_insert_with(|| {
        if loopback {
            ISTIO_EXECUTABLES.map(str::to_owned).to_vec()
        } else {
            Vec::new()
        }
    });
}

/// Envoy's admin is polled on /ready, which is 200 exactly when /server_info says LIVE.
/// scuttle users who pointed ENVOY_ADMIN_API at pilot-agent (15020/15021) waited forever;
/// pilot-agent's own readiness path is used there instead.
fn readiness_url(admin: &str) -> String {
    let port = admin
        .parse::<ureq::http::Uri>()
        .ok()
        .and_then(|u| u.port_u16());
    match port {
        Some(15020) | Some(15021) => format!("{admin}/healthz/ready"),
        _ => format!("{admin}/ready"),
    }
}

/// Reads every variable whose value applies to `run` (a bit of `options::runs`); the first
/// bad one is returned beside what could be read. The values are not meshinit's, so errors
/// name the variable without its value. Every variable set counts in `set` (a scuttle
/// user's run without ENVOY_ADMIN_API neither waits nor quits), read or not.
pub fn read(env: &Environment, run: u8) -> (Legacy, Option<UsageError>) {
    let mut legacy = Legacy::default();
    let mut first_error = None;
    for (name, decides, reader, applies) in VARIABLES {
        let Some(raw) = env.get(name) else {
            continue;
        };
        legacy.set.push((name, decides));
        if applies & run == 0 {
            continue;
        }
        let result = match raw.into_string() {
            Ok(value) => reader(&mut legacy, &value),
            Err(_) => Err("valid UTF-8"),
        };
        if let Err(form) = result {
            first_error.get_or_insert(values::invalid_hidden(name, form));
        }
    }
    (legacy, first_error)
}

#[cfg(test)]
#[path = "compat_tests.rs"]
mod tests;
