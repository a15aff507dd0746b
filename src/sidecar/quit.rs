//! Telling the sidecar to quit, never hanging on it: POST the quit endpoints in order until
//! one answers 2xx, within a fixed total budget, then fall back to /proc.

use std::time::{Duration, Instant};

use super::client::{Client, Reply};
use super::endpoints::Endpoints;
use super::procscan;
use super::url;
use crate::logging::millis;

/// The most that quitting may take, whatever the endpoints do.
const BUDGET: Duration = Duration::from_secs(4);
/// How often the list of endpoints is tried when they fail (not when nothing listens).
const ROUNDS: usize = 3;
const BETWEEN_ROUNDS: Duration = Duration::from_millis(100);

/// Returns whether the sidecar was told to quit (an endpoint took it, or it was signalled).
/// After an endpoint took it, a sidecar visible in /proc gets up to `confirm` to exit
/// before the fallback sends it SIGTERM: an endpoint may answer 200 and do nothing.
pub fn quit(sidecar: &Endpoints, confirm: Duration) -> bool {
    let client = Client::new();
    let start = Instant::now();
    let deadline = start + BUDGET;
    let left = || deadline.saturating_duration_since(Instant::now());
    for url in &sidecar.notify {
        let reply = client.post(url, left().min(Duration::from_secs(1)));
        log::info!("notified {}: {reply}", url::shown(url));
    }
    let mut hinted: Vec<&str> = Vec::new();
    // Endpoints that refused with a 4xx: asking again would get the same answer.
    let mut settled = vec![false; sidecar.quit.len()];
    for round in 0..ROUNDS {
        let mut worth_retrying = false;
        for (quit, settled) in sidecar.quit.iter().zip(&mut settled) {
            if left().is_zero() {
                break;
            }
            if *settled {
                continue;
            }
            let shown = url::shown(&quit.url);
            let reply = client.post(&quit.url, left());
            if reply.is_success() {
                log::info!(
                    "sidecar quit via {shown} ({reply}) in {}ms",
                    millis(start.elapsed())
                );
                confirm_exit(sidecar, confirm);
                return true;
            }
            log::warn!("quit via {shown} failed: {reply}");
            if let Some(hint) = quit
                .on_refusal
                .filter(|h| reply.answered() && !hinted.contains(h))
            {
                hinted.push(hint);
                log::warn!("{shown} refused: {hint}");
            }
            *settled = reply.is_refusal();
            worth_retrying |= reply != Reply::Refused && !*settled;
        }
        // Nothing listening, or a definite no: asking again will not change that.
        if !worth_retrying || round + 1 == ROUNDS || left() <= BETWEEN_ROUNDS {
            break;
        }
        std::thread::sleep(BETWEEN_ROUNDS);
    }
    if sidecar.executables.is_empty() {
        if !sidecar.quit.is_empty() {
            log::warn!("no quit endpoint took the request; the sidecar may still run");
        }
        return false;
    }
    fall_back(sidecar)
}

/// Waits up to `confirm` for the sidecar's processes that /proc shows to exit; SIGTERMs
/// them when they do not. Nothing visible, nothing to wait for.
fn confirm_exit(sidecar: &Endpoints, confirm: Duration) {
    if sidecar.executables.is_empty() || confirm.is_zero() {
        return;
    }
    let visible = procscan::find(&sidecar.executables).processes;
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
    fall_back(sidecar);
}

fn fall_back(sidecar: &Endpoints) -> bool {
    match procscan::terminate(&sidecar.executables) {
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
