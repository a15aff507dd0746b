//! One run of meshinit, read top-down as tini's `main` reads: take over the signals, find
//! the command, wait for the sidecar, decide whether to start, start and supervise the
//! task, quit or keep the sidecar, conclude. Each step is a call into the module that owns
//! it; `meshinit wait` and `meshinit quit` are the short runs beside it.

mod end;
mod task;

use std::ffi::OsString;
use std::path::Path;

use crate::config::{Action, Plan, Report, UsageError, WaitPlan};
use crate::ending::{exit, timed, Ending, Source, Took};
use crate::init::child::{self, Child};
use crate::init::command::{self, SpawnError};
use crate::init::signals::Signals;
use crate::init::supervisor;
use crate::install;
use crate::logging;
use crate::sidecar::endpoints::Sidecar;
use crate::sidecar::quit::{self, Limits};
use crate::sidecar::shared::{self, Member};
use crate::sidecar::wait::{self, Waited};
use end::Seen;

/// The run the plan describes; after a usage error, only its end (a pod must not hang on
/// a typo, so a run still tells the sidecar to quit). Returns meshinit's exit code.
pub fn run(plan: &Plan, usage_error: Option<&UsageError>) -> u8 {
    say_notes(&plan.report);
    let mut took = Took::default();
    // Until the wait says otherwise, the sidecar is the one configured, not yet asked.
    let mut sidecar = Seen::unasked(&plan.wait.sidecar);
    let mut held: Option<Signals> = None;
    let mut member: Option<Member> = None;
    let ending = 'run: {
        // First, for every run: a TERM must end the quit window after a usage error too.
        let signals = match Signals::take_over() {
            Ok(signals) => held.insert(signals),
            Err(err) => break 'run internal(format!("cannot block signals: {err}")),
        };
        // Said already, where it was found (main.rs).
        if let Some(error) = usage_error {
            // A task container of a set whose own part of the configuration is whole
            // leaves the sidecar to the others that run, as one that cannot join does.
            member = plan
                .shared
                .as_ref()
                .map(|shared| Member::outside(shared, plan.wait.timeout));
            break 'run usage(error.to_string());
        }
        if let Some(Action::Install(Some(dir))) = &plan.action {
            break 'run install::install(Path::new(dir));
        }
        adopt_orphans();
        let command = match &plan.action {
            Some(Action::Run(command)) => command,
            Some(Action::Wait) => break 'run wait_only(&plan.wait, signals, &mut took),
            Some(Action::Quit) => {
                break 'run quit_only(&plan.wait.sidecar, plan.quit.limits, signals, &mut took)
            }
            // parse refuses a run without a COMMAND, and install without a DIR.
            None | Some(Action::Install(_)) => break 'run internal("no COMMAND".to_owned()),
        };
        // Before anything can fail: a container that ended early counts as ended.
        if let Some(shared) = &plan.shared {
            match shared::join(shared, plan.wait.timeout) {
                Ok(joined) => member = Some(joined),
                Err(reason) => {
                    // It holds no lock, but still leaves the sidecar to the others that run.
                    member = Some(Member::outside(shared, plan.wait.timeout));
                    // A usage error like those of the configuration: said whatever --log.
                    logging::always(logging::Level::Error, "usage", &reason);
                    break 'run usage(reason);
                }
            }
        }
        // A typo in the command fails now, not after the whole wait for the sidecar.
        if let Err(err) = command::find(command) {
            break 'run cannot_run(&err);
        }
        let waited = timed(&mut took.wait, || {
            wait::wait(&plan.wait.sidecar, plan.wait.timeout, signals)
        });
        let stop;
        (sidecar, stop) = end::whether_to_start(waited, &plan.wait);
        if let Some(ending) = stop.or_else(|| end::signalled_since(signals)) {
            break 'run ending;
        }
        let task = match start(command) {
            Ok(task) => task,
            Err(err) => break 'run cannot_run(&err),
        };
        timed(&mut took.task, || {
            task::supervise(&plan.task, signals, task)
        })
    };
    // `wait` never quits, and `quit` has quit already.
    if let Some(Action::Run(_)) | None = plan.action {
        let signals = held.as_ref();
        end::quit_or_keep(
            &plan.quit,
            &sidecar,
            ending.code,
            signals,
            member,
            &mut took,
        );
    }
    conclude(&plan.report, &plan.action, &ending, &took)
}

/// `meshinit wait`: the wait alone; 0 once ready (or when the search found none).
fn wait_only(plan: &WaitPlan, signals: &Signals, took: &mut Took) -> Ending {
    match timed(&mut took.wait, || {
        wait::wait(&plan.sidecar, plan.timeout, signals)
    }) {
        Waited::Ready(_) | Waited::NoSidecar => Ending::new(0, Source::Ready),
        Waited::TimedOut(_) => end::timed_out(plan.timeout),
        Waited::Signalled(sig, _) => Ending::new(exit::signalled(sig), Source::Signal),
    }
}

/// `meshinit quit`: the quit alone, once; 0 when the sidecar was told.
fn quit_only(sidecar: &Sidecar, limits: Limits, signals: &Signals, took: &mut Took) -> Ending {
    let endpoints = sidecar.to_quit();
    let quit = timed(&mut took.quit, || match sidecar {
        // No search chose a mesh: as a run's end after a search that found none.
        Sidecar::Search { .. } => quit::quit_latecomer(&endpoints, limits.budget),
        _ => endpoints.is_empty() || quit::quit(&endpoints, limits.once(), Some(signals)),
    });
    Ending::new(if quit { 0 } else { exit::UNAVAILABLE }, Source::Quit)
}

fn say_notes(report: &Report) {
    for warning in &report.warnings {
        warn!("{warning}");
    }
    for note in &report.notes {
        info!("{note}");
    }
}

/// Reaps the children that exited before SIGCHLD was blocked (an exec'd shell's orphans
/// sent their signal to nobody), and becomes the orphans' reaper when not PID 1.
fn adopt_orphans() {
    supervisor::reap(None);
    match supervisor::become_subreaper() {
        Ok(true) => debug!("not PID 1: reaping orphans as a child subreaper"),
        Ok(false) => {}
        Err(err) => {
            warn!("cannot become a child subreaper, orphans will not be reaped: {err}")
        }
    }
}

/// Starts the task and says so.
fn start(command: &[OsString]) -> Result<Child, SpawnError> {
    let task = child::spawn(command)?;
    // argv[0] only: the arguments may hold secrets.
    let program = command[0].to_string_lossy();
    info!(
        phase = "task", pid = task.pid, command = program.as_ref();
        "task started: {program} (pid {})",
        task.pid
    );
    Ok(task)
}

fn cannot_run(err: &SpawnError) -> Ending {
    error!("{err}");
    Ending::new(err.exit_code(), Source::CannotRun).because(err.to_string())
}

fn usage(reason: String) -> Ending {
    Ending::new(exit::USAGE, Source::Usage).because(reason)
}

fn internal(reason: String) -> Ending {
    error!("{reason}");
    Ending::new(exit::SOFTWARE, Source::Internal).because(reason)
}

/// The summary line, and the termination message when a run's task did not run.
fn conclude(report: &Report, action: &Option<Action>, ending: &Ending, took: &Took) -> u8 {
    // `wait` says why it gave up (it may be a container's command); `quit` never runs a
    // task, so its reasons are no container's to report.
    let termination_log = match action {
        Some(Action::Quit) => None,
        Some(Action::Run(_) | Action::Wait | Action::Install(_)) | None => {
            report.termination_log.as_deref()
        }
    };
    ending.conclude(took, termination_log, &report.left_out)
}
