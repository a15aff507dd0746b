//! The tests' Jobs and CronJobs, in YAML as users write them: the pod's parts from
//! `common::pods` (istio-proxy as Istio's injector writes it, in either world), indented into
//! a Job's or a CronJob's template.

use crate::common::pods::{container, istio_proxy, yaml_string, TASK_IMAGE};

/// Where istio-proxy is in the pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum World {
    /// A regular container beside the task (Istio before 1.27, or without native sidecars).
    Regular,
    /// An init container with `restartPolicy: Always` (Istio's default since 1.27).
    Native,
}

impl World {
    pub fn name(self) -> &'static str {
        match self {
            World::Regular => "regular",
            World::Native => "native",
        }
    }
}

/// `text` with every line indented by `by` more spaces.
fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// A pod spec (at a pod's indentation) with `restart` policy, the task's container(s)
/// `task`, `extra` pod-level lines (volumes, ...) and istio-proxy in `world` (none without).
pub fn pod(world: Option<World>, restart: &str, task: &str, extra: &str) -> String {
    let head = format!("  restartPolicy: {restart}\n  terminationGracePeriodSeconds: 10\n{extra}");
    match world {
        None => format!("{head}  containers:\n{task}"),
        Some(World::Regular) => format!("{head}  containers:\n{task}{}", istio_proxy(false, "5s")),
        Some(World::Native) => format!(
            "{head}  initContainers:\n{}  containers:\n{task}",
            istio_proxy(true, "5s")
        ),
    }
}

/// A Job in the default namespace: `fields` at the Job spec's level (two spaces), `pod` as
/// `pod` makes it.
pub fn job(name: &str, fields: &str, pod: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  namespace: default\n\
         spec:\n{fields}  template:\n    spec:\n{}",
        indent(pod, 4)
    )
}

/// A CronJob running every minute whose Jobs have `fields` and `pod`.
pub fn cronjob(name: &str, fields: &str, pod: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\n  namespace: default\n\
         spec:\n  schedule: '* * * * *'\n  concurrencyPolicy: Forbid\n  jobTemplate:\n    spec:\n\
         {}      template:\n        spec:\n{}",
        indent(fields, 4),
        indent(pod, 8)
    )
}

/// The task's container: meshinit from the image with `flags`, then `sh -c script`; `env`
/// and `mounts` (volumeMounts lines at the container's indentation) besides. No
/// KUBERNETES_SERVICE_HOST: the kubelet sets it, as in users' clusters.
pub fn task(flags: &[&str], script: &str, env: &[(&str, &str)], mounts: &str) -> String {
    let mut command = vec!["/usr/local/bin/meshinit"];
    command.extend_from_slice(flags);
    command.push("--");
    let command: Vec<String> = command.iter().map(|a| yaml_string(a)).collect();
    let mut text = format!(
        "  - name: task\n\
         \x20   image: {TASK_IMAGE}\n\
         \x20   imagePullPolicy: Never\n\
         \x20   command: [{}]\n\
         \x20   args: [sh, -c, {}]\n",
        command.join(", "),
        yaml_string(script)
    );
    if !env.is_empty() {
        text.push_str("    env:\n");
        for (name, value) in env {
            text.push_str(&format!(
                "    - {{name: {name}, value: {}}}\n",
                yaml_string(value)
            ));
        }
    }
    if !mounts.is_empty() {
        text.push_str("    volumeMounts:\n");
        text.push_str(mounts);
    }
    text
}

/// The same container without meshinit: `sh -c script` as its command.
pub fn bare_task(script: &str) -> String {
    container("task", TASK_IMAGE, &["sh", "-c", script])
}
