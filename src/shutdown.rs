//! Telling the sidecar to quit, never hanging on it: POST the quit endpoints in order until
//! one answers 2xx, within a fixed total budget, then fall back to /proc.

use std::time::{Duration, Instant};

use crate::client::{Client, Reply};
use crate::duration::millis;
use crate::procscan;
use crate::sidecar::{self, Plan};

/// The most that quitting may take, whatever the endpoints do.
const BUDGET: Duration = Duration::from_secs(4);
/// How often the list of endpoints is tried when they fail (not when nothing listens).
const ROUNDS: usize = 3;
const BETWEEN_ROUNDS: Duration = Duration::from_millis(100);

/// Returns whether the sidecar was told to quit (an endpoint took it, or it was signalled).
/// After an endpoint took it, a sidecar visible in /proc gets up to `confirm` to exit
/// before the fallback sends it SIGTERM: an endpoint may answer 200 and do nothing.
pub fn quit(plan: &Plan, confirm: Duration) -> bool {
    let client = Client::new();
    let start = Instant::now();
    let deadline = start + BUDGET;
    let left = || deadline.saturating_duration_since(Instant::now());
    for url in &plan.notify {
        let reply = client.post(url, left().min(Duration::from_secs(1)));
        log::info!("notified {}: {reply}", sidecar::shown(url));
    }
    for round in 0..ROUNDS {
        let mut anyone_there = false;
        for url in &plan.quit {
            if left().is_zero() {
                break;
            }
            let reply = client.post(url, left());
            if reply.is_success() {
                log::info!(
                    "sidecar quit via {} ({reply}) in {}ms",
                    sidecar::shown(url),
                    millis(start.elapsed())
                );
                confirm_exit(plan, confirm);
                return true;
            }
            log::warn!("quit via {} failed: {reply}", sidecar::shown(url));
            if plan.linkerd && reply.answered() {
                log::warn!(
                    "Linkerd refused {}: its shutdown endpoint needs the pod annotation \
                     config.linkerd.io/proxy-admin-shutdown: enabled",
                    sidecar::shown(url)
                );
            }
            anyone_there |= reply != Reply::Refused;
        }
        // Refused everywhere: nothing is listening, and asking again will not change that.
        if !anyone_there || round + 1 == ROUNDS || left() <= BETWEEN_ROUNDS {
            break;
        }
        std::thread::sleep(BETWEEN_ROUNDS);
    }
    if plan.executables.is_empty() {
        if !plan.quit.is_empty() {
            log::warn!("no quit endpoint took the request; the sidecar may still run");
        }
        return false;
    }
    fall_back(plan)
}

/// Waits up to `confirm` for the sidecar's processes that /proc shows to exit; SIGTERMs
/// them when they do not. Nothing visible, nothing to wait for.
fn confirm_exit(plan: &Plan, confirm: Duration) {
    if plan.executables.is_empty() || confirm.is_zero() {
        return;
    }
    let visible = procscan::find(&plan.executables).processes;
    if visible.is_empty() {
        return;
    }
    let deadline = Instant::now() + confirm;
    while Instant::now() < deadline {
        if !visible.iter().any(|(pid, _)| procscan::running(*pid)) {
            log::debug!("the sidecar's processes have exited");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    log::warn!(
        "the sidecar took the quit but still runs after {}ms",
        millis(confirm)
    );
    fall_back(plan);
}

fn fall_back(plan: &Plan) -> bool {
    match procscan::terminate(&plan.executables) {
        procscan::Outcome::Signalled(list) => {
            for (pid, exe) in list {
                log::info!("sent SIGTERM to {exe} (pid {pid}) found in /proc");
            }
            true
        }
        procscan::Outcome::Failed(problems) => {
            log::warn!("sidecar not stopped: {}", problems.join("; "));
            false
        }
    }
}
