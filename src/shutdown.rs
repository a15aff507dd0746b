//! Telling the sidecar to quit, never hanging on it: POST the quit endpoints in order until
//! one answers 2xx, within a fixed total budget, then fall back to /proc.

use std::time::{Duration, Instant};

use crate::client::{Client, Reply};
use crate::duration::millis;
use crate::procscan;
use crate::sidecar::Plan;

/// The most that quitting may take, whatever the endpoints do.
const BUDGET: Duration = Duration::from_secs(4);
/// How often the list of endpoints is tried when they fail (not when nothing listens).
const ROUNDS: usize = 3;
const BETWEEN_ROUNDS: Duration = Duration::from_millis(100);

/// Returns whether the sidecar was told to quit (an endpoint took it, or it was signalled).
pub fn quit(plan: &Plan) -> bool {
    let client = Client::new();
    let start = Instant::now();
    let deadline = start + BUDGET;
    let left = || deadline.saturating_duration_since(Instant::now());
    for url in &plan.notify {
        let reply = client.post(url, left().min(Duration::from_secs(1)));
        log::info!("notified {url}: {reply}");
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
                    "sidecar quit via {url} ({reply}) in {}ms",
                    millis(start.elapsed())
                );
                return true;
            }
            log::warn!("quit via {url} failed: {reply}");
            if plan.linkerd && reply.answered() {
                log::warn!(
                    "Linkerd refused {url}: its shutdown endpoint needs the pod annotation \
                     config.linkerd.io/proxy-admin-shutdown: enabled"
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
