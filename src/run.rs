//! One run of meshinit, following the plan: take over signals, wait for the sidecar, run
//! and supervise the task, tell the sidecar to quit, and leave with the task's exit code;
//! then one summary line, and the termination message when the task never ran.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use crate::config::settings::Keep;
use crate::config::{Action, OnTimeout, Plan, UsageError};
use crate::ending::exit;
use crate::ending::{Ending, Source};
use crate::init::child::{self, Child, SpawnError};
use crate::init::signals::{self, Signals};
use crate::init::supervisor::{self, Ended};
use crate::logging::millis;
use crate::sidecar::endpoints::{Endpoints, Sidecar, ANY_MESH};
use crate::sidecar::quit::{self, Limits};
use crate::sidecar::wait::{self, Waited};

/// How the wait for the sidecar came out, as far as the quit at the end cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    /// Ready.
    Ready,
    /// The search settled that there is none: one may have come since.
    Nothing,
    /// The wait gave up on it: it may still come.
    TimedOut,
    /// A termination signal ended the wait for a known sidecar.
    Signalled,
    /// No search chose a mesh, and the run ended before the task: a termination signal cut
    /// the search short (the pod is stopping, and a sidecar that comes later is stopped
    /// with it), or the time limit ran out on it or on the other sidecars (--also-ready).
    Unsettled,
    /// The run ended before the wait (a usage error, a command that cannot run).
    NotAsked,
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

/// The one decision about the sidecar at the end: quit or keep, once or within the window.
/// Only a search that settled there is none or was cut short by a termination signal, or a
/// task run after the wait gave up, asks once; every other end (a sidecar seen ready, a
/// run that ended before the search or while waiting for a known sidecar) keeps asking for
/// the window, so that a proxy container that starts after meshinit failed, or restarts,
/// does not keep the pod running.
fn decide(found: Found, on_timeout: OnTimeout, keep: Keep, code: u8) -> Quit {
    if !keep.quits_after(code) {
        return Quit::Keep {
            say: !matches!(found, Found::Nothing | Found::Unsettled),
        };
    }
    match (found, on_timeout) {
        (Found::Nothing | Found::Unsettled, _) => Quit::IfOneCame,
        // With `start` the task's run gave the sidecar its time to come.
        (Found::TimedOut, OnTimeout::Start) => Quit::Now,
        (Found::TimedOut, OnTimeout::Fail)
        | (Found::Ready | Found::Signalled | Found::NotAsked, _) => Quit::WithinWindow,
    }
}

/// A run on its way to the quit: how it ended, and the sidecar as the wait left it.
struct Outcome {
    ending: Ending,
    sidecar: Endpoints,
    found: Found,
}

impl Outcome {
    fn waited(mut self, wait: Option<Duration>) -> Outcome {
        self.ending.wait = wait;
        self
    }
}

pub fn run(plan: &Plan) -> u8 {
    say_warnings(plan);
    let ending = match Signals::take_over() {
        Ok(signals) => run_with(plan, &signals),
        Err(err) => {
            let reason = format!("cannot block signals: {err}");
            error!("{reason}");
            let ending = Ending::new(exit::SOFTWARE, Source::Internal).because(reason);
            finish(plan, &plan.sidecar.to_quit(), Found::NotAsked, None, ending)
        }
    };
    conclude(plan, &ending)
}

/// A usage error ends the run before it starts; a pod must not hang on a typo, so a run
/// (not `wait` or `quit`) still tells the sidecar to quit.
pub fn after_usage_error(plan: &Plan, error: &UsageError) -> u8 {
    say_warnings(plan);
    let ending = Ending::new(exit::USAGE, Source::Usage).because(error.to_string());
    let ending = match plan.action {
        Some(Action::Wait | Action::Quit) => ending,
        Some(Action::Run(_)) | None => {
            finish(plan, &plan.sidecar.to_quit(), Found::NotAsked, None, ending)
        }
    };
    conclude(plan, &ending)
}

fn say_warnings(plan: &Plan) {
    for warning in &plan.warnings {
        warn!("{warning}");
    }
    for note in &plan.notes {
        info!("{note}");
    }
}

fn run_with(plan: &Plan, signals: &Signals) -> Ending {
    // Children that exited before SIGCHLD was blocked (an exec'd shell's orphans) sent
    // their signal to nobody: collect them now.
    supervisor::reap(None);
    match supervisor::become_subreaper() {
        Ok(true) => debug!("not PID 1: reaping orphans as a child subreaper"),
        Ok(false) => {}
        Err(err) => {
            warn!("cannot become a child subreaper, orphans will not be reaped: {err}")
        }
    }
    match &plan.action {
        Some(Action::Run(command)) => {
            let (Ok(outcome) | Err(outcome)) = run_task(plan, command, signals);
            finish(
                plan,
                &outcome.sidecar,
                outcome.found,
                Some(signals),
                outcome.ending,
            )
        }
        // parse refuses a run without a COMMAND.
        None => Ending::new(exit::SOFTWARE, Source::Internal).because("no COMMAND"),
        Some(Action::Wait) => {
            let began = Instant::now();
            let mut ending = match wait::wait(&plan.sidecar, plan.timeout, signals) {
                Waited::Ready(_) | Waited::NoSidecar => Ending::new(0, Source::Ready),
                Waited::TimedOut(_) => timed_out(plan),
                Waited::Signalled(sig, _) => Ending::new(exit::signalled(sig), Source::Signal),
            };
            ending.wait = Some(began.elapsed());
            ending
        }
        Some(Action::Quit) => {
            let began = Instant::now();
            let sidecar = plan.sidecar.to_quit();
            let quit = match plan.sidecar {
                // No search chose a mesh: as a run's end after a search that found none.
                Sidecar::Search { .. } => quit::quit_latecomer(&sidecar, plan.quit_budget),
                _ => {
                    sidecar.is_empty()
                        || quit::quit(&sidecar, limits(plan, Duration::ZERO), Some(signals))
                }
            };
            let code = if quit { 0 } else { exit::UNAVAILABLE };
            let mut ending = Ending::new(code, Source::Quit);
            ending.quit = Some(began.elapsed());
            ending
        }
    }
}

/// Waits for the sidecar, then runs and supervises the task. `Err`: the run ended before
/// the task could (the sidecar is still to be told, as after the task).
// Both arms are the one Outcome of the run, made once: its size costs nothing.
#[allow(clippy::result_large_err)]
fn run_task(plan: &Plan, command: &[OsString], signals: &Signals) -> Result<Outcome, Outcome> {
    // A typo in the command fails now, not after the whole wait for the sidecar.
    child::find(command)
        .map_err(|err| cannot_run(&err, plan.sidecar.to_quit(), Found::NotAsked))?;
    let began = Instant::now();
    let waited = wait::wait(&plan.sidecar, plan.timeout, signals);
    let wait = Some(began.elapsed());
    let (sidecar, found) = ready_to_start(plan, waited).map_err(|o| o.waited(wait))?;
    // A signal that came during the last readiness request: the task has not started yet.
    if let Ok(Some(sig)) = signals.pending_termination() {
        info!(
            "SIG{} arrived during the last readiness request: the task is not started",
            signals::name(sig)
        );
        return Err(before_the_task(sig, sidecar, found).waited(wait));
    }
    let task = child::spawn(command)
        .map_err(|err| cannot_run(&err, sidecar.clone(), found).waited(wait))?;
    // argv[0] only: the arguments may hold secrets.
    let program = command[0].to_string_lossy();
    info!(
        phase = "task", pid = task.pid, command = program.as_ref();
        "task started: {program} (pid {})",
        task.pid
    );
    let started = Instant::now();
    let mut ending = supervise(plan, signals, task);
    ending.wait = wait;
    ending.task = Some(started.elapsed());
    Ok(Outcome {
        ending,
        sidecar,
        found,
    })
}

/// Whether the wait lets the task start: the sidecar to quit at the end, and how it was
/// found; `Err` when the run ends here.
#[allow(clippy::result_large_err)]
fn ready_to_start(plan: &Plan, waited: Waited) -> Result<(Endpoints, Found), Outcome> {
    // Without a mesh chosen by the search, nothing says that one will come: asked once.
    let cut_short = |sidecar: &Endpoints, otherwise| {
        if sidecar.mesh == ANY_MESH {
            Found::Unsettled
        } else {
            otherwise
        }
    };
    match waited {
        Waited::Ready(sidecar) => Ok((sidecar, Found::Ready)),
        Waited::NoSidecar => Ok((plan.sidecar.to_quit(), Found::Nothing)),
        Waited::TimedOut(sidecar) => match plan.on_timeout {
            OnTimeout::Fail => Err(Outcome {
                ending: timed_out(plan),
                found: cut_short(&sidecar, Found::TimedOut),
                sidecar,
            }),
            OnTimeout::Start => {
                warn!("starting the task without a ready sidecar (--on-timeout start)");
                Ok((sidecar, Found::TimedOut))
            }
        },
        Waited::Signalled(sig, sidecar) => {
            let found = cut_short(&sidecar, Found::Signalled);
            Err(before_the_task(sig, sidecar, found))
        }
    }
}

/// The end of a run that a termination signal ended before the task started.
fn before_the_task(sig: libc::c_int, sidecar: Endpoints, found: Found) -> Outcome {
    let reason = format!("SIG{} before the task started", signals::name(sig));
    Outcome {
        ending: Ending::new(exit::signalled(sig), Source::Signal).because(reason),
        sidecar,
        found,
    }
}

/// The end of a run, or of `meshinit wait`, whose sidecar was not ready in time.
fn timed_out(plan: &Plan) -> Ending {
    let reason = format!(
        "the sidecar was not ready within {}ms",
        millis(plan.timeout)
    );
    Ending::new(exit::UNAVAILABLE, Source::Timeout).because(reason)
}

fn cannot_run(err: &SpawnError, sidecar: Endpoints, found: Found) -> Outcome {
    error!("{err}");
    Outcome {
        ending: Ending::new(err.exit_code(), Source::CannotRun).because(err.to_string()),
        sidecar,
        found,
    }
}

/// Supervises the task to its end (and its process group's, with --grace).
fn supervise(plan: &Plan, signals: &Signals, task: Child) -> Ending {
    let started = Instant::now();
    match supervisor::supervise(signals, task, plan.forwarding, &plan.rewrites) {
        Ok(ended) => {
            let code = ended.code();
            let ran = millis(started.elapsed());
            match ended {
                Ended::Exited(_) => info!(
                    phase = "task", code = code, elapsed_ms = ran;
                    "task exited with code {code}"
                ),
                Ended::Killed(sig) => info!(
                    phase = "task", code = code, signal = signals::name(sig), elapsed_ms = ran;
                    "task killed by SIG{} (exit {code})",
                    signals::name(sig)
                ),
            }
            if let Err(err) = supervisor::drain_group(signals, task, plan.grace, &plan.rewrites) {
                error!("waiting for the task's process group: {err}");
            }
            if plan.success_codes.contains(&code) {
                info!(phase = "task", code = code; "exit code {code} counts as success (--success-code)");
                return Ending::new(0, Source::Task);
            }
            Ending::new(code, Source::Task)
        }
        Err(err) => {
            error!("waiting for signals: {err}");
            Ending::new(exit::SOFTWARE, Source::Internal)
        }
    }
}

fn limits(plan: &Plan, window: Duration) -> Limits {
    Limits {
        budget: plan.quit_budget,
        confirm: plan.quit_wait,
        window,
    }
}

/// Tells the sidecar to quit as `decide` says; the code is meshinit's whatever happened
/// to the sidecar.
fn finish(
    plan: &Plan,
    sidecar: &Endpoints,
    found: Found,
    signals: Option<&Signals>,
    mut ending: Ending,
) -> Ending {
    if sidecar.is_empty() {
        return ending;
    }
    let began = Instant::now();
    match decide(found, plan.on_timeout, plan.keep, ending.code) {
        Quit::Keep { say } => {
            if say {
                info!(
                    "leaving the sidecar running (--keep-sidecar, exit code {})",
                    ending.code
                );
            }
            return ending;
        }
        Quit::IfOneCame => {
            quit::quit_latecomer(sidecar, plan.quit_budget);
        }
        Quit::Now => {
            quit::quit(sidecar, limits(plan, Duration::ZERO), signals);
        }
        Quit::WithinWindow => {
            quit::quit(sidecar, limits(plan, plan.quit_window), signals);
        }
    }
    ending.quit = Some(began.elapsed());
    ending
}

/// The summary line, and the termination message when a run's task did not run.
fn conclude(plan: &Plan, ending: &Ending) -> u8 {
    // `wait` says why it gave up (it may be a container's command); `quit` never runs a
    // task, so its reasons are no container's to report.
    let termination_log = match plan.action {
        Some(Action::Quit) => None,
        Some(Action::Run(_) | Action::Wait) | None => plan.termination_log.as_deref(),
    };
    ending.conclude(termination_log, &plan.left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination_of_the_end_decision() {
        use Found::*;
        let all_found = [Ready, Nothing, TimedOut, Signalled, Unsettled, NotAsked];
        for found in all_found {
            for on_timeout in [OnTimeout::Fail, OnTimeout::Start] {
                for keep in [Keep::Never, Keep::OnFailure, Keep::Always] {
                    for code in [0, 1] {
                        let kept = keep == Keep::Always || (keep == Keep::OnFailure && code != 0);
                        let expected = if kept {
                            Quit::Keep {
                                say: found != Nothing && found != Unsettled,
                            }
                        } else if found == Nothing || found == Unsettled {
                            Quit::IfOneCame
                        } else if found == TimedOut && on_timeout == OnTimeout::Start {
                            Quit::Now
                        } else {
                            Quit::WithinWindow
                        };
                        assert_eq!(
                            decide(found, on_timeout, keep, code),
                            expected,
                            "{found:?} {on_timeout:?} {keep:?} exit {code}"
                        );
                    }
                }
            }
        }
        // The ones a reader checks first.
        assert_eq!(
            decide(Ready, OnTimeout::Fail, Keep::Never, 3),
            Quit::WithinWindow
        );
        assert_eq!(
            decide(NotAsked, OnTimeout::Fail, Keep::Never, 127),
            Quit::WithinWindow
        );
        assert_eq!(
            decide(TimedOut, OnTimeout::Fail, Keep::Never, 69),
            Quit::WithinWindow
        );
        assert_eq!(
            decide(Signalled, OnTimeout::Fail, Keep::OnFailure, 143),
            Quit::Keep { say: true }
        );
        assert_eq!(
            decide(Nothing, OnTimeout::Fail, Keep::Always, 0),
            Quit::Keep { say: false }
        );
    }
}
