//! Configuration in two stages: `parse` reads the raw settings (`MESHINIT_*`, then flags
//! over them, then scuttle's variables laid below both), and `plan::resolve` turns them
//! into the run's plan, one small plan for each phase.

pub mod compat;
pub mod duration;
pub mod environment;
mod flags;
mod options;
pub mod plan;
mod presets;
pub mod settings;
pub mod values;
mod variables;

#[cfg(test)]
mod fuzz;

use std::ffi::OsString;

pub use environment::Environment;
pub use flags::Special;
pub use options::help;
pub use plan::{resolve, Plan, QuitPlan, Report, TaskPlan, WaitPlan};
pub use settings::{Action, OnTimeout, Settings};
pub use values::UsageError;

/// A usage error, with the settings as far as they could be read, so that the sidecar
/// can still be told to quit.
#[derive(Debug)]
pub struct Failure {
    pub error: UsageError,
    pub settings: Box<Settings>,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    Run(Box<Settings>),
    Special(Special),
}

/// Reads the settings from `args` (without the program name) and from `env`. Every source
/// is read to the end; the error reported is the first bad value, or a malformed command
/// line, which wins.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env: &Environment,
) -> Result<Invocation, Failure> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let action = flags::take_subcommand(&mut args);
    let run = options::runs::of(action.as_ref());
    // scuttle's variables describe the sidecar: nothing of install's.
    let (legacy, mut first_error) = match run {
        options::runs::INSTALL => Default::default(),
        _ => compat::read(env, run),
    };
    let mut settings = Settings {
        action,
        in_kubernetes: env.get(KUBERNETES).is_some(),
        linkerd_disabled: LINKERD_AWAIT_OFF
            .into_iter()
            .find(|name| env.get(name).is_some()),
        warnings: variables::unknown(env),
        ..Settings::default()
    };
    if !env.empty().is_empty() {
        let mut note = "set but empty, so read as unset:".to_owned();
        for name in env.empty() {
            note.push(' ');
            note.push_str(name);
        }
        settings.notes.push(note);
    }
    let mut note = |err: UsageError| {
        first_error.get_or_insert(err);
    };
    variables::read(&mut settings, env, run, &mut note);
    let flags = flags::read(&mut settings, args, &mut note);
    compat::lay_below(legacy, &mut settings);
    let error = match flags {
        Ok(Some(special)) => return Ok(Invocation::Special(special)),
        Ok(None) => first_error
            .or_else(|| missing_command(&settings))
            .or_else(|| half_a_pod(&settings, run)),
        Err(err) => Some(err),
    };
    match error {
        Some(error) => Err(Failure {
            error,
            settings: Box::new(settings),
        }),
        None => Ok(Invocation::Run(Box::new(settings))),
    }
}

/// The process environment, as far as the configuration reads it.
pub fn process_environment() -> Environment {
    Environment::from_process(|name| {
        name.starts_with("MESHINIT_")
            || name == KUBERNETES
            || LINKERD_AWAIT_OFF.contains(&name)
            || compat::VARIABLES
                .iter()
                .any(|(known, _, _, _)| *known == name)
    })
}

/// Set by the kubelet in every container: meshinit runs in a pod.
const KUBERNETES: &str = "KUBERNETES_SERVICE_HOST";
/// linkerd-await's: any value (an empty one is unset) means no wait for Linkerd (Helm charts set them
/// where Linkerd is not injected); the quit at the end still happens.
const LINKERD_AWAIT_OFF: [&str; 2] = ["LINKERD_AWAIT_DISABLED", "LINKERD_DISABLED"];

fn missing_command(settings: &Settings) -> Option<UsageError> {
    let missing = match settings.action {
        None => "COMMAND",
        Some(Action::Install(None)) => "DIR",
        Some(_) => return None,
    };
    Some(UsageError::new(format!(
        "missing {missing}: usage: {} (see meshinit --help)",
        options::USAGE
    )))
}

/// --name, --pod-dir and --quit-after share the sidecar only together: one without the
/// others would quit it under the other task containers, or never. They are a run's alone.
fn half_a_pod(settings: &Settings, run: u8) -> Option<UsageError> {
    if run != options::runs::RUN {
        return None;
    }
    let sources = [
        ("MESHINIT_NAME (--name)", settings.name.is_some()),
        ("MESHINIT_POD_DIR (--pod-dir)", settings.pod_dir.is_some()),
        (
            "MESHINIT_QUIT_AFTER (--quit-after)",
            settings.quit_after.is_some(),
        ),
    ];
    let (given, _) = sources.iter().find(|(_, given)| *given)?;
    let (missing, _) = sources.iter().find(|(_, given)| !*given)?;
    Some(UsageError::new(format!(
        "{given} given without {missing}: the three go together (this container's name, the \
         directory the task containers share, the ones that must end before the sidecar is \
         quit)"
    )))
}
