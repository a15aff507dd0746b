//! The sidecar as the run sees it: after the wait, whether the task may start; at the end,
//! the one decision to quit it or keep it, once or within the window.

use std::time::{Duration, Instant};

use crate::config::settings::Keep;
use crate::config::{OnTimeout, QuitPlan, WaitPlan};
use crate::ending::{exit, timed, Ending, Source, Took};
use crate::init::signals::{self, Signals};
use crate::logging::millis;
use crate::sidecar::endpoints::{Endpoints, Sidecar, ANY_MESH};
use crate::sidecar::quit;
use crate::sidecar::shared::{Member, Turn};
use crate::sidecar::wait::Waited;

/// How the wait for the sidecar came out, as far as the quit at the end cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// Ready.
    Ready,
    /// The search settled that there is none: one may have come since.
    Nothing,
    /// The wait gave up on it, and the run ended: it may still come.
    TimedOut,
    /// The wait gave up on it and the task ran all the same (--on-timeout start): the
    /// task's run gave it its time to come.
    StartedWithout,
    /// A termination signal ended the wait for a known sidecar.
    Signalled,
    /// No search chose a mesh, and the run ended before the task: a termination signal cut
    /// the search short (the pod is stopping, and a sidecar that comes later is stopped
    /// with it), or the time limit ran out on it or on the other sidecars (--also-ready).
    Unsettled,
    /// The run ended before the wait (a usage error, a command that cannot run).
    NotAsked,
}

/// The sidecar to quit at the end, and how the wait found it.
pub struct Seen {
    pub endpoints: Endpoints,
    pub found: Found,
}

impl Seen {
    /// The sidecar as configured, before the wait asked it anything.
    pub fn unasked(sidecar: &Sidecar) -> Seen {
        Seen {
            endpoints: sidecar.to_quit(),
            found: Found::NotAsked,
        }
    }
}

/// Whether the wait lets the task start: the sidecar as the wait left it, and the end of
/// the run when it ends here.
pub fn whether_to_start(waited: Waited, plan: &WaitPlan) -> (Seen, Option<Ending>) {
    let seen = |endpoints, found| Seen { endpoints, found };
    // Without a mesh chosen by the search, nothing says that one will come: asked once.
    let cut_short = |endpoints: &Endpoints, otherwise| {
        if endpoints.mesh == ANY_MESH {
            Found::Unsettled
        } else {
            otherwise
        }
    };
    match waited {
        Waited::Ready(endpoints) => (seen(endpoints, Found::Ready), None),
        Waited::NoSidecar => (seen(plan.sidecar.to_quit(), Found::Nothing), None),
        Waited::TimedOut(endpoints) => match plan.on_timeout {
            OnTimeout::Fail => {
                let found = cut_short(&endpoints, Found::TimedOut);
                (seen(endpoints, found), Some(timed_out(plan.timeout)))
            }
            OnTimeout::Start => {
                warn!("starting the task without a ready sidecar (--on-timeout start)");
                (seen(endpoints, Found::StartedWithout), None)
            }
        },
        Waited::Signalled(sig, endpoints) => {
            let found = cut_short(&endpoints, Found::Signalled);
            (seen(endpoints, found), Some(signalled_before_the_task(sig)))
        }
    }
}

/// The end of the run when a termination signal came during the last readiness request:
/// the task has not started yet, and does not.
pub fn signalled_since(signals: &Signals) -> Option<Ending> {
    let sig = signals.pending_termination().ok().flatten()?;
    info!(
        "SIG{} arrived during the last readiness request: the task is not started",
        signals::name(sig)
    );
    Some(signalled_before_the_task(sig))
}

/// The end of a run, or of `meshinit wait`, whose sidecar was not ready in time.
pub fn timed_out(timeout: Duration) -> Ending {
    let reason = format!("the sidecar was not ready within {}ms", millis(timeout));
    Ending::new(exit::UNAVAILABLE, Source::Timeout).because(reason)
}

/// The end of a run that a termination signal ended before the task started.
fn signalled_before_the_task(sig: libc::c_int) -> Ending {
    let reason = format!("SIG{} before the task started", signals::name(sig));
    Ending::new(exit::signalled(sig), Source::Signal).because(reason)
}

/// What to do with the sidecar at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quit {
    /// Leave it running (--keep-sidecar); `say`: it was there, so say so.
    Keep { say: bool },
    /// Tell it now, once: the task ran with the sidecar not ready (--on-timeout start).
    Now,
    /// Tell it, asking again for --quit-window while nothing listens: it may come late (its
    /// container not started yet, the wait cut short) or be restarting.
    WithinWindow,
    /// The search found none: tell whichever came since, once and quietly.
    IfOneCame,
}

/// Quits or keeps the sidecar as `decide` says, whatever meshinit's exit `code`; records in
/// `took` how long the look at the other task containers and the quit took (none when
/// kept, or when there is none). `signals`, when meshinit holds them, end the window early
/// on a termination signal.
pub fn quit_or_keep(
    plan: &QuitPlan,
    sidecar: &Seen,
    code: u8,
    signals: Option<&Signals>,
    member: Option<Member>,
    took: &mut Took,
) {
    let endpoints = &sidecar.endpoints;
    if endpoints.is_empty() {
        return;
    }
    let mut limits = plan.limits;
    // With task containers sharing the sidecar, only the last to end deals with it.
    if let Some(member) = member {
        let left = timed(&mut took.quit_after, || member.leave(signals));
        if left.cut.is_some() {
            // The pod is stopping: the sidecar is stopped with it, no window.
            limits = limits.once();
        }
        match left.turn {
            Turn::Last => info!(
                "the last of the task containers to end (--quit-after): the sidecar is this one's"
            ),
            Turn::NoneRuns => info!(
                "no other task container of --quit-after runs: the sidecar is told to quit, \
                 as after every usage error"
            ),
            Turn::Running(names) => {
                info!(
                    "leaving the sidecar running for {} (--quit-after): the last to end quits it",
                    names.join(", ")
                );
                return;
            }
            Turn::Taken => {
                info!("another task container ended at the same time and quits the sidecar");
                return;
            }
        }
    }
    let began = Instant::now();
    match decide(sidecar.found, plan.keep, code) {
        Quit::Keep { say } => {
            if say {
                info!("leaving the sidecar running (--keep-sidecar, exit code {code})");
            }
            return;
        }
        Quit::IfOneCame => quit::quit_latecomer(endpoints, limits.budget),
        Quit::Now => quit::quit(endpoints, limits.once(), signals),
        Quit::WithinWindow => quit::quit(endpoints, limits, signals),
    };
    took.quit = Some(began.elapsed());
}

/// The one decision about the sidecar at the end: quit or keep, once or within the window.
/// Only a search that settled there is none or was cut short, or a task run after the wait
/// gave up, asks once; every other end (a sidecar seen ready, a run that ended before the
/// search or while waiting for a known sidecar) keeps asking for the window, so that a
/// proxy container that starts after meshinit failed, or restarts, does not keep the pod
/// running.
fn decide(found: Found, keep: Keep, code: u8) -> Quit {
    if !keep.quits_after(code) {
        return Quit::Keep {
            say: !matches!(found, Found::Nothing | Found::Unsettled),
        };
    }
    match found {
        Found::Nothing | Found::Unsettled => Quit::IfOneCame,
        Found::StartedWithout => Quit::Now,
        Found::TimedOut | Found::Ready | Found::Signalled | Found::NotAsked => Quit::WithinWindow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination_of_the_end_decision() {
        use Found::*;
        let all_found = [
            Ready,
            Nothing,
            TimedOut,
            StartedWithout,
            Signalled,
            Unsettled,
            NotAsked,
        ];
        for found in all_found {
            for keep in [Keep::Never, Keep::OnFailure, Keep::Always] {
                for code in [0, 1] {
                    let kept = keep == Keep::Always || (keep == Keep::OnFailure && code != 0);
                    let expected = if kept {
                        Quit::Keep {
                            say: found != Nothing && found != Unsettled,
                        }
                    } else if found == Nothing || found == Unsettled {
                        Quit::IfOneCame
                    } else if found == StartedWithout {
                        Quit::Now
                    } else {
                        Quit::WithinWindow
                    };
                    assert_eq!(
                        decide(found, keep, code),
                        expected,
                        "{found:?} {keep:?} exit {code}"
                    );
                }
            }
        }
        // The ones a reader checks first.
        assert_eq!(decide(Ready, Keep::Never, 3), Quit::WithinWindow);
        assert_eq!(decide(NotAsked, Keep::Never, 127), Quit::WithinWindow);
        assert_eq!(decide(TimedOut, Keep::Never, 69), Quit::WithinWindow);
        assert_eq!(
            decide(Signalled, Keep::OnFailure, 143),
            Quit::Keep { say: true }
        );
        assert_eq!(decide(Nothing, Keep::Always, 0), Quit::Keep { say: false });
    }
}
