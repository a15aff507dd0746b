//! Telling the sidecar to quit, never hanging on it: POST the quit endpoints in order until
//! one answers 2xx, within a fixed total budget, then fall back to /proc. A sidecar that is
//! not there yet (the wait gave up on it) is asked again for a bounded window.

use std::time::{Duration, Instant};

use super::client::{Client, Reply};
use super::endpoints::{Endpoints, QuitUrl, ANY_MESH};
use super::fallback;
use super::url;
use crate::init::signals::{self, Signals};
use crate::init::supervisor;
use crate::logging::{millis, Level};

/// How often the list of endpoints is tried when they fail (not when nothing listens).
const ROUNDS: usize = 3;
const BETWEEN_ROUNDS: Duration = Duration::from_millis(100);
/// The pause between attempts while nothing listens, within the window.
const WINDOW_PAUSE: Duration = Duration::from_millis(100);
/// The least time one request is given while the budget lasts.
const FLOOR: Duration = Duration::from_millis(100);

/// How long quitting may take: --quit-budget, --quit-wait, --quit-window.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The most that one attempt's requests may take, whatever the endpoints do.
    pub budget: Duration,
    /// After an endpoint took the quit, how long a sidecar seen in /proc may take to exit
    /// (--quit-wait).
    pub wait: Duration,
    /// While nothing listens, how long to keep asking (0: one attempt).
    pub window: Duration,
}

impl Limits {
    /// One attempt, no window: for a sidecar known to have had its chance to come.
    pub fn once(self) -> Limits {
        Limits {
            window: Duration::ZERO,
            ..self
        }
    }
}

/// What one attempt came to.
enum Attempt {
    Took,
    /// Every endpoint that was listening went away during the attempt: the sidecar exited.
    Gone,
    /// Nothing listens on any quit endpoint.
    NobodyThere,
    /// Something listens but did not take it.
    Failed,
}

/// Returns whether the sidecar was told to quit (an endpoint took it, or it was signalled).
/// `signals`, when meshinit holds them, end the window early on a termination signal.
pub fn quit(sidecar: &Endpoints, limits: Limits, signals: Option<&Signals>) -> bool {
    let client = Client::new();
    let start = Instant::now();
    let (mut budget, notified) = notify(&client, &sidecar.notify, limits.budget);
    if sidecar.quit.is_empty() && sidecar.executables.is_empty() {
        // Nothing else to tell (--mesh none with --also-quit, GENERIC_QUIT_ONLY): the
        // endpoints taking the request is the quit.
        if !notified {
            warn!(
                "not every endpoint took the quit request (see above); the sidecar may still run"
            );
        }
        return notified;
    }
    let window_end = start + limits.window;
    let mut hinted: Vec<&str> = Vec::new();
    let mut attempts = 0;
    let nobody_there = loop {
        // Only the first attempt's refusals are worth a line each; the window's are not.
        let refused_level = if attempts == 0 {
            Level::Warn
        } else {
            Level::Debug
        };
        let outcome = attempt(
            &client,
            &sidecar.quit,
            budget,
            &mut hinted,
            refused_level,
            signals,
        );
        // A later attempt in the window: nothing listened, so nothing took the budget.
        budget = limits.budget;
        attempts += 1;
        match outcome {
            Attempt::Took | Attempt::Gone => {
                fallback::confirm_exit(sidecar, limits.wait, signals);
                return true;
            }
            // The window is for a sidecar that cannot be seen: a chosen mesh's that /proc
            // shows while nothing listens (its status port disabled, or not up yet) gets the
            // fallback now.
            Attempt::NobodyThere
                if attempts == 1 && sidecar.mesh != ANY_MESH && fallback::visible(sidecar) =>
            {
                break true
            }
            Attempt::NobodyThere if !sidecar.quit.is_empty() && Instant::now() < window_end => {
                if attempts == 1 {
                    // The window as configured, counted from the first attempt.
                    info!(
                        "nothing listens on the quit endpoints yet: asking again every {}ms \
                         for up to {}ms (--quit-window) in case the sidecar comes late or \
                         restarts",
                        millis(WINDOW_PAUSE),
                        millis(limits.window)
                    );
                }
                if !pause(window_end, signals) {
                    break true;
                }
            }
            Attempt::NobodyThere => break true,
            Attempt::Failed => break false,
        }
    };
    // No search chose a mesh: nothing says that a sidecar exists, nor which process is one.
    if nobody_there && sidecar.mesh == ANY_MESH {
        info!(phase = "quit"; "no sidecar listened on the quit endpoints: none to tell");
        return true;
    }
    if sidecar.executables.is_empty() {
        if !sidecar.quit.is_empty() {
            warn!("no quit endpoint took the request; the sidecar may still run");
        }
        return false;
    }
    fallback::terminate(sidecar)
}

/// POSTs each endpoint that is only told (scuttle's GENERIC_QUIT_ENDPOINTS, --also-quit)
/// once; its answer is only said (at info when 2xx, else as a warning). One budget covers
/// them and the quit that follows: they share at most half of it, so that the mesh's own quit
/// always has the rest. Returns what is left, and whether every one of them took the request
/// (2xx).
fn notify(client: &Client, urls: &[String], budget: Duration) -> (Duration, bool) {
    let start = Instant::now();
    let deadline = start + budget / 2;
    let mut all_took = true;
    for (i, url) in urls.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let reply = client.post(url, share(left, urls.len() - i).min(Duration::from_secs(1)));
        let took = reply.is_success();
        all_took &= took;
        let shown = url::shown(url);
        // Told once: one that did not take it is likely a sidecar that keeps the pod running.
        log!(
            if took { Level::Info } else { Level::Warn },
            phase = "quit", url = shown.as_str(), status = reply.status();
            "notified {shown}: {reply}"
        );
    }
    (budget.saturating_sub(start.elapsed()), all_took)
}

/// One request's part of `left` when `still_to_ask` requests share it: an equal part, so
/// that one that hangs cannot take what the ones after it need, but never less than
/// `FLOOR` (an answer from loopback takes a few milliseconds) nor more than `left`.
fn share(left: Duration, still_to_ask: usize) -> Duration {
    let parts = u32::try_from(still_to_ask.max(1)).unwrap_or(u32::MAX);
    (left / parts).max(FLOOR).min(left)
}

/// Tells whichever sidecar answers to quit, when no search chose one (none was found before
/// the task, or `meshinit quit` with `auto`): no /proc fallback, since nothing says which
/// process is a sidecar of this pod. Nothing listening on the mesh's quit endpoints is the
/// expected answer and is not reported (a notified endpoint's answer is, as always).
/// Returns false only when one listened and did not take it.
pub fn quit_latecomer(candidates: &Endpoints, budget: Duration) -> bool {
    let client = Client::new();
    // The endpoints only told (GENERIC_QUIT_ENDPOINTS, --also-quit) are told all the same.
    let (budget, _) = notify(&client, &candidates.notify, budget);
    let mut hinted = Vec::new();
    match attempt(
        &client,
        &candidates.quit,
        budget,
        &mut hinted,
        Level::Debug,
        None,
    ) {
        Attempt::Took | Attempt::Gone => true,
        Attempt::NobodyThere => {
            debug!("no sidecar listens on any quit endpoint");
            true
        }
        Attempt::Failed => {
            warn!("a sidecar listens and did not take the quit");
            false
        }
    }
}

/// POSTs the quit endpoints in order, up to `ROUNDS` times while something listens and
/// fails; an endpoint that refused with a 4xx is not asked again. A connection refused is
/// logged at `refused_level`. An endpoint can take the quit and exit before its answer
/// leaves (pilot-agent does, now and then): when every endpoint that was listening refuses
/// connections in a later round, the sidecar is gone, which is what the quit was for.
fn attempt<'a>(
    client: &Client,
    endpoints: &'a [QuitUrl],
    budget: Duration,
    hinted: &mut Vec<&'a str>,
    refused_level: Level,
    signals: Option<&Signals>,
) -> Attempt {
    let start = Instant::now();
    let deadline = start + budget;
    let left = || deadline.saturating_duration_since(Instant::now());
    let mut settled = vec![false; endpoints.len()];
    // Listening in an earlier round, and whether it still is in this one.
    let mut was_there = vec![false; endpoints.len()];
    let mut anyone_there = false;
    for round in 0..ROUNDS {
        // One that refused with a 4xx is still there, though not asked again.
        let mut still_there = settled.clone();
        let mut asked_all = true;
        let mut worth_retrying = false;
        // Refusals are said once the round is over: when a later endpoint takes the quit
        // (pilot-agent's 15020 refused, Envoy's admin took it), nothing listening on the
        // first was the expected answer, not a warning.
        let mut refused: Vec<String> = Vec::new();
        for (i, quit) in endpoints.iter().enumerate() {
            if left().is_zero() {
                asked_all = false;
                break;
            }
            if settled[i] {
                continue;
            }
            let shown = url::shown(&quit.url);
            let still_to_ask = settled[i..].iter().filter(|&&s| !s).count();
            let reply = client.post(&quit.url, share(left(), still_to_ask));
            still_there[i] = reply != Reply::Refused;
            if reply.is_success() {
                say_refused(&refused, Level::Debug);
                let took = millis(start.elapsed());
                info!(
                    phase = "quit", url = shown.as_str(), status = reply.status(),
                    elapsed_ms = took;
                    "sidecar quit via {shown} ({reply}) in {took}ms"
                );
                return Attempt::Took;
            }
            if reply == Reply::Refused {
                // No longer listening after it was: the sign that it has exited.
                if !was_there[i] {
                    refused.push(shown);
                }
                continue;
            }
            let error = reply.error();
            warn!(
                phase = "quit", url = shown.as_str(), status = reply.status(),
                error = error.as_deref();
                "quit via {shown} failed: {reply}"
            );
            anyone_there = true;
            if let Some(hint) = quit
                .on_refusal
                .filter(|h| reply.answered() && !hinted.contains(h))
            {
                hinted.push(hint);
                warn!("{shown} refused: {hint}");
            }
            settled[i] = reply.is_refusal();
            worth_retrying |= !settled[i];
        }
        say_refused(&refused, refused_level);
        let listened = was_there.iter().any(|&w| w);
        if asked_all
            && listened
            && was_there
                .iter()
                .zip(&still_there)
                .all(|(&was, &is)| !was || !is)
        {
            let first = endpoints.iter().zip(&was_there).find(|(_, &w)| w);
            let shown = first.map(|(q, _)| url::shown(&q.url)).unwrap_or_default();
            let took = millis(start.elapsed());
            info!(
                phase = "quit", url = shown.as_str(), elapsed_ms = took;
                "sidecar quit via {shown} in {took}ms: it closed the connection and no longer listens"
            );
            return Attempt::Gone;
        }
        for (was, is) in was_there.iter_mut().zip(&still_there) {
            *was |= *is;
        }
        // A definite no everywhere: asking again will not change that.
        if !worth_retrying || round + 1 == ROUNDS || left() <= BETWEEN_ROUNDS {
            break;
        }
        // Meshinit is ending already: a termination signal now changes nothing.
        let _ = supervisor::pause_or_sleep(signals, BETWEEN_ROUNDS);
    }
    if anyone_there {
        Attempt::Failed
    } else {
        if !endpoints.is_empty() {
            debug!("nothing listens on the quit endpoints");
        }
        Attempt::NobodyThere
    }
}

/// One line for each quit endpoint that nothing listened on, at `level`.
fn say_refused(refused: &[String], level: Level) {
    for shown in refused {
        log!(
            level,
            phase = "quit", url = shown.as_str(), status = None::<u16>,
            error = "connection refused";
            "quit via {shown} failed: connection refused"
        );
    }
}

/// Pauses before the next attempt within the window; false when the window should end (a
/// termination signal arrived, or the window is over).
fn pause(window_end: Instant, signals: Option<&Signals>) -> bool {
    let pause = WINDOW_PAUSE.min(window_end.saturating_duration_since(Instant::now()));
    match supervisor::pause_or_sleep(signals, pause) {
        Some(sig) => {
            info!(
                "SIG{} while waiting for a late sidecar: giving up on it",
                signals::name(sig)
            );
            false
        }
        None => true,
    }
}
