//! Waiting for the sidecar: poll its readiness endpoint quickly (the first request at once,
//! then every few milliseconds up to a short cap), sleeping in `sigtimedwait` between polls
//! so that a termination signal ends the wait at once and orphans are still reaped.

use std::time::{Duration, Instant};

use crate::cli::Config;
use crate::client::{Client, Reply};
use crate::duration::millis;
use crate::sidecar::{self, Mesh, Plan};
use crate::signals::{self, Signals};
use crate::supervisor;

/// The pause after the first failed poll; it doubles up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(2);
/// Keeps the task's start within about this long of the sidecar turning ready.
const MAX_PAUSE: Duration = Duration::from_millis(10);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

pub enum Waited {
    /// Every readiness endpoint answered 2xx (or there was none to ask).
    Ready(Plan),
    /// `--mesh auto` found no sidecar within the sidecar grace.
    NoSidecar,
    /// The time limit ran out; the plan is what to quit.
    TimedOut(Plan),
    /// A termination signal arrived; the plan is what to quit.
    Signalled(libc::c_int, Plan),
}

/// Signals that end the wait (the task is not running yet, so there is nobody to forward
/// them to). Everything else — URG from a Go runtime, WINCH — is ignored here.
fn ends_wait(sig: libc::c_int) -> bool {
    matches!(
        sig,
        libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGQUIT
    )
}

pub fn wait(config: &Config, signals: &Signals) -> Waited {
    let mesh = config.mesh();
    let candidates: Vec<(Mesh, Plan)> = match mesh {
        Mesh::Auto => sidecar::AUTO_CANDIDATES
            .iter()
            .map(|m| (*m, config.plan_for(*m)))
            .collect(),
        _ => vec![(mesh, config.plan_for(mesh))],
    };
    let start = Instant::now();
    let deadline = start + config.timeout;
    let look_until = start + config.sidecar_grace;
    // Before `auto` has found its sidecar, nothing is chosen.
    let mut chosen: Option<(Mesh, Plan)> = match mesh {
        Mesh::Auto => None,
        _ => candidates.first().cloned(),
    };
    let mut pending: Vec<String> = chosen
        .as_ref()
        .map(|(_, p)| p.ready.clone())
        .unwrap_or_default();
    if chosen.is_some() && pending.is_empty() {
        return Waited::Ready(chosen.map(|(_, p)| p).unwrap_or_default());
    }
    let client = Client::new();
    match &chosen {
        Some(_) => log::info!("waiting for the sidecar: {}", shown_list(&pending)),
        None => log::info!(
            "looking for a sidecar for up to {}ms (istio, linkerd, envoy)",
            millis(config.sidecar_grace)
        ),
    }
    let mut last = (String::new(), Reply::Refused);
    let mut pause = FIRST_PAUSE;
    let mut next_progress = start + PROGRESS_EVERY;
    loop {
        let budget = deadline.saturating_duration_since(Instant::now());
        match &chosen {
            Some(_) => pending.retain(|url| {
                let reply = client.get(url, budget);
                let ready = reply.is_success();
                last = (url.clone(), reply);
                !ready
            }),
            None => {
                for (mesh, plan) in &candidates {
                    let Some(url) = plan.ready.first() else {
                        continue;
                    };
                    let reply = client.get(url, budget);
                    last = (url.clone(), reply.clone());
                    if reply.answered() {
                        log::info!(
                            "found the {} sidecar at {} ({reply})",
                            mesh.name(),
                            sidecar::shown(url)
                        );
                        pending = plan.ready.clone();
                        if reply.is_success() {
                            pending.retain(|u| u != url);
                        }
                        chosen = Some((*mesh, plan.clone()));
                        break;
                    }
                }
            }
        }
        let now = Instant::now();
        if let Some((_, plan)) = &chosen {
            if pending.is_empty() {
                log::info!("the sidecar is ready after {}ms", millis(now - start));
                return Waited::Ready(plan.clone());
            }
        } else if now >= look_until {
            log::info!(
                "no sidecar answered within {}ms: running without one",
                millis(config.sidecar_grace)
            );
            return Waited::NoSidecar;
        }
        let plan = || chosen.as_ref().map(|(_, p)| p.clone()).unwrap_or_default();
        if now >= deadline {
            log::error!(
                "the sidecar was not ready within {}ms; last answer from {}: {}",
                millis(config.timeout),
                sidecar::shown(&last.0),
                last.1
            );
            return Waited::TimedOut(plan());
        }
        if now >= next_progress {
            log::info!(
                "still waiting for the sidecar after {}ms; last answer from {}: {}",
                millis(now - start),
                sidecar::shown(&last.0),
                last.1
            );
            next_progress = now + PROGRESS_EVERY;
        }
        match signals.wait(Some(pause.min(deadline - now))) {
            Ok(Some(sig)) if ends_wait(sig) => {
                log::info!(
                    "SIG{} before the task started: not starting it",
                    signals::name(sig)
                );
                return Waited::Signalled(sig, plan());
            }
            Ok(Some(libc::SIGCHLD)) => {
                supervisor::reap(None);
            }
            Ok(Some(sig)) => {
                log::debug!("ignoring SIG{} ({sig}) while waiting", signals::name(sig))
            }
            Ok(None) => {}
            Err(err) => {
                // Without signals the wait can still end by time; pause the plain way.
                log::error!("waiting for signals: {err}");
                std::thread::sleep(pause);
            }
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

fn shown_list(urls: &[String]) -> String {
    let shown: Vec<String> = urls.iter().map(|u| sidecar::shown(u)).collect();
    shown.join(", ")
}
