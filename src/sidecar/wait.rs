//! Waiting for the sidecar: poll its readiness endpoint quickly (the first request at once,
//! then every few milliseconds up to a short cap), sleeping in `sigtimedwait` between polls
//! so that a termination signal ends the wait at once and orphans are still reaped. With
//! several candidates (`--mesh auto`), the search comes first, then the same wait.

use std::time::{Duration, Instant};

use super::client::{Client, Reply};
use super::endpoints::{Endpoints, Sidecar};
use super::url;
use crate::init::signals::{self, Signals};
use crate::init::supervisor;
use crate::logging::{millis, Level};

/// The pause after the first failed poll; it doubles up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(2);
/// Keeps the task's start within about this long of the sidecar turning ready.
const MAX_PAUSE: Duration = Duration::from_millis(10);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

pub enum Waited {
    /// Every readiness endpoint answered 2xx (or there was none to ask).
    Ready(Endpoints),
    /// The search found no sidecar within its time.
    NoSidecar,
    /// The time limit ran out; the endpoints are what to quit.
    TimedOut(Endpoints),
    /// A termination signal arrived; the endpoints are what to quit.
    Signalled(libc::c_int, Endpoints),
}

/// Why a wait stopped before it was done.
enum Stop {
    TimedOut,
    Signalled(libc::c_int),
}

impl Stop {
    fn with(self, endpoints: Endpoints) -> Waited {
        match self {
            Stop::TimedOut => Waited::TimedOut(endpoints),
            Stop::Signalled(sig) => Waited::Signalled(sig, endpoints),
        }
    }
}

pub fn wait(sidecar: &Sidecar, timeout: Duration, signals: &Signals) -> Waited {
    // The client (ureq's configuration) is made only when there is something to ask: a run
    // without a sidecar starts as fast as a plain init.
    match sidecar {
        Sidecar::Absent => Waited::Ready(Endpoints::default()),
        Sidecar::Known(endpoints) if endpoints.ready.is_empty() => Waited::Ready(endpoints.clone()),
        Sidecar::Known(endpoints) => {
            let mut pacer = Pacer::new(timeout, signals);
            ready(&Client::new(), endpoints, &endpoints.ready, &mut pacer)
        }
        Sidecar::Search {
            candidates,
            look_for,
            all,
        } => {
            let mut pacer = Pacer::new(timeout, signals);
            let client = Client::new();
            // A missing sidecar never fails a run that did not name one: the search ends
            // within the time limit, whichever is shorter.
            match search(&client, candidates, (*look_for).min(timeout), &mut pacer) {
                Ok(Some((found, pending))) => ready(&client, found, &pending, &mut pacer),
                // Other sidecars named besides the mesh are waited for all the same.
                Ok(None) => match ready(&client, all, &all.ready, &mut pacer) {
                    Waited::Ready(_) => Waited::NoSidecar,
                    other => other,
                },
                // Ended before the search settled: a sidecar may still be starting, so
                // every candidate's quit endpoint is what to tell.
                Err(stop) => stop.with(all.clone()),
            }
        }
    }
}

/// Polls `pending`, in order, until each has answered 2xx once.
fn ready(client: &Client, endpoints: &Endpoints, pending: &[String], pacer: &mut Pacer) -> Waited {
    let mut pending = pending.to_vec();
    if pending.is_empty() {
        return Waited::Ready(endpoints.clone());
    }
    let shown = shown_list(&pending);
    info!(phase = "wait", url = shown.as_str(); "waiting for the sidecar: {shown}");
    loop {
        // In order, and no further than the first that is not ready yet: each round costs
        // one request while the sidecar is coming up, which keeps the rounds short.
        while let Some(url) = pending.first() {
            if !pacer.ask(client, url).is_success() {
                break;
            }
            pending.remove(0);
        }
        if pending.is_empty() {
            let took = millis(pacer.start.elapsed());
            info!(phase = "wait", elapsed_ms = took; "the sidecar is ready after {took}ms");
            return Waited::Ready(endpoints.clone());
        }
        if let Err(stop) = pacer.pause() {
            return stop.with(endpoints.clone());
        }
    }
}

/// Asks each candidate's first readiness endpoint until one answers at all, for up to
/// `look_for`. Returns the one found with the endpoints it still has to pass.
fn search<'a>(
    client: &Client,
    candidates: &'a [Endpoints],
    look_for: Duration,
    pacer: &mut Pacer,
) -> Result<Option<(&'a Endpoints, Vec<String>)>, Stop> {
    let names: Vec<&str> = candidates.iter().map(|c| c.mesh).collect();
    let names = names.join(", ");
    info!(
        phase = "wait", meshes = names.as_str();
        "looking for a sidecar for up to {}ms ({names})",
        millis(look_for)
    );
    let look_until = pacer.start + look_for;
    loop {
        for candidate in candidates {
            let Some(first) = candidate.ready.first() else {
                continue;
            };
            let reply = pacer.ask(client, first);
            if reply.answered() {
                let shown = url::shown(first);
                info!(
                    phase = "wait", mesh = candidate.mesh, url = shown.as_str(),
                    status = reply.status();
                    "found the {} sidecar at {shown} ({reply})",
                    candidate.mesh
                );
                let pending = candidate.pending_after_first(reply.is_success());
                return Ok(Some((candidate, pending)));
            }
        }
        if Instant::now() >= look_until {
            let took = millis(look_for);
            info!(
                phase = "wait", elapsed_ms = took;
                "no sidecar answered within {took}ms: running without one"
            );
            return Ok(None);
        }
        pacer.pause()?;
    }
}

/// The step that both the search and the wait take between rounds of polls: the time
/// limit, the progress line, and a pause in which signals are taken.
struct Pacer<'a> {
    signals: &'a Signals,
    start: Instant,
    timeout: Duration,
    deadline: Instant,
    pause: Duration,
    next_progress: Instant,
    last: (String, Reply),
}

impl<'a> Pacer<'a> {
    fn new(timeout: Duration, signals: &'a Signals) -> Pacer<'a> {
        let start = Instant::now();
        Pacer {
            signals,
            start,
            timeout,
            deadline: start + timeout,
            pause: FIRST_PAUSE,
            next_progress: start + PROGRESS_EVERY,
            last: (String::new(), Reply::Refused),
        }
    }

    /// One GET within what is left of the time limit; the answer is remembered for the
    /// progress and time-out lines.
    fn ask(&mut self, client: &Client, url: &str) -> Reply {
        let budget = self.deadline.saturating_duration_since(Instant::now());
        let reply = client.get(url, budget);
        self.last = (url.to_owned(), reply.clone());
        reply
    }

    fn last_answer(&self) -> String {
        format!(
            "last answer from {}: {}",
            url::shown(&self.last.0),
            self.last.1
        )
    }

    /// A line about the wait so far, with the last answer as fields.
    fn say(&self, level: Level, text: &str) {
        let shown = url::shown(&self.last.0);
        let error = self.last.1.error();
        log!(
            level,
            phase = "wait", url = shown.as_str(), status = self.last.1.status(),
            error = error.as_deref(), elapsed_ms = millis(self.start.elapsed());
            "{text}; {}",
            self.last_answer()
        );
    }

    /// Ends the round: stops at the time limit or a termination signal, else pauses.
    fn pause(&mut self) -> Result<(), Stop> {
        let now = Instant::now();
        if now >= self.deadline {
            let text = format!(
                "the sidecar was not ready within {}ms",
                millis(self.timeout)
            );
            self.say(Level::Error, &text);
            return Err(Stop::TimedOut);
        }
        if now >= self.next_progress {
            let text = format!(
                "still waiting for the sidecar after {}ms",
                millis(now - self.start)
            );
            self.say(Level::Info, &text);
            self.next_progress = now + PROGRESS_EVERY;
        }
        let pause = self.pause.min(self.deadline - now);
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        match supervisor::pause(self.signals, pause) {
            Some(sig) => {
                let name = signals::name(sig);
                info!(
                    phase = "wait", signal = name;
                    "SIG{name} before the task started: not starting it"
                );
                Err(Stop::Signalled(sig))
            }
            None => Ok(()),
        }
    }
}

fn shown_list(urls: &[String]) -> String {
    let shown: Vec<String> = urls.iter().map(|u| url::shown(u)).collect();
    shown.join(", ")
}
