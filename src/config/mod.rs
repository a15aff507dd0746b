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
    let (legacy, mut first_error) = compat::read(env);
    let mut settings = Settings {
        in_kubernetes: env.get(KUBERNETES).is_some_and(|h| !h.is_empty()),
        linkerd_disabled: LINKERD_AWAIT_OFF
            .into_iter()
            .find(|name| env.get(name).is_some_and(|v| !v.is_empty())),
        warnings: variables::unknown(env),
        ..Settings::default()
    };
    let mut note = |err: UsageError| {
        first_error.get_or_insert(err);
    };
    variables::read(&mut settings, env, &mut note);
    let flags = flags::read(&mut settings, args, &mut note);
    compat::lay_below(legacy, &mut settings);
    let error = match flags {
        Ok(Some(special)) => return Ok(Invocation::Special(special)),
        Ok(None) => first_error
            .or_else(|| missing_command(&settings))
            .or_else(|| half_a_pod(&settings)),
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
            || compat::VARIABLES.iter().any(|(known, _, _)| *known == name)
    })
}

/// Set by the kubelet in every container: meshinit runs in a pod.
const KUBERNETES: &str = "KUBERNETES_SERVICE_HOST";
/// linkerd-await's: any value but empty means no wait for Linkerd (Helm charts set them
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
/// others would quit it under the other task containers, or never.
fn half_a_pod(settings: &Settings) -> Option<UsageError> {
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
