//! The tests' Jobs and CronJobs, in YAML as users write them: no proxy anywhere in a
//! manifest. A Job in a namespace of one of istiod's two injection settings gets istio-proxy
//! from istiod's webhook, as in users' clusters; one in `default` gets nothing.

use crate::common::pods::{container, yaml_string, TASK_IMAGE};

/// istiod's injection setting, by the namespace the Job is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// `ENABLE_NATIVE_SIDECARS=false`: istio-proxy a regular container beside the task (what
    /// Istio before 1.27 and clusters before Kubernetes 1.33 do).
    Regular,
    /// `ENABLE_NATIVE_SIDECARS=true`: istio-proxy an init container with `restartPolicy:
    /// Always` (Istio's default on Kubernetes 1.33+).
    Native,
}

pub const BOTH: [Setting; 2] = [Setting::Regular, Setting::Native];

impl Setting {
    /// Its name, as scripts/cluster names the istiod and the label `meshinit-cluster/istiod`.
    pub fn name(self) -> &'static str {
        match self {
            Setting::Regular => "regular",
            Setting::Native => "native",
        }
    }

    /// The tests' namespace of this setting (made by `namespace`).
    pub fn namespace(self) -> &'static str {
        match self {
            Setting::Regular => "mesh-regular",
            Setting::Native => "mesh-native",
        }
    }

    /// `name` in this setting's namespace, the form the cluster's helpers take.
    pub fn key(self, name: &str) -> String {
        format!("{}/{name}", self.namespace())
    }
}

/// A namespace `istiod` injects in `setting`: labelled `istio-injection=enabled`, as users
/// label theirs, and with the label that picks the setting's istiod.
pub fn namespace(name: &str, setting: Setting) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n\
         \x20   istio-injection: enabled\n    meshinit-cluster/istiod: {}\n",
        setting.name()
    )
}

/// `text` with every line indented by `by` more spaces.
fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// A pod template (at a template's indentation): `annotations` (one `key: value` a line, or
/// none), then the spec with `restart` policy, the task's container(s) `task` and `extra`
/// pod-level lines (volumes, ...).
pub fn pod(annotations: &str, restart: &str, task: &str, extra: &str) -> String {
    let meta = if annotations.is_empty() {
        String::new()
    } else {
        format!("metadata:\n  annotations:\n{}", indent(annotations, 4))
    };
    format!(
        "{meta}spec:\n  restartPolicy: {restart}\n  terminationGracePeriodSeconds: 10\n{extra}\
         \x20 containers:\n{task}"
    )
}

/// A Job `name` in namespace `ns`: `fields` at the Job spec's level (two spaces), `pod` as
/// `pod` makes it.
pub fn job(ns: &str, name: &str, fields: &str, pod: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n{fields}  template:\n{}",
        indent(pod, 4)
    )
}

/// A CronJob running every minute whose Jobs have `fields` and `pod`.
pub fn cronjob(ns: &str, name: &str, fields: &str, pod: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n  schedule: '* * * * *'\n  concurrencyPolicy: Forbid\n  jobTemplate:\n    spec:\n\
         {}      template:\n{}",
        indent(fields, 4),
        indent(pod, 8)
    )
}

/// The task's container: meshinit from the image with `flags`, then `sh -c script`; `env`
/// and `mounts` (volumeMounts lines at the container's indentation) besides. No
/// KUBERNETES_SERVICE_HOST: the kubelet sets it, as in users' clusters. Its log is JSON lines,
/// which give each event's time.
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
         \x20   args: [sh, -c, {}]\n\
         \x20   env:\n\
         \x20   - {{name: MESHINIT_LOG_FORMAT, value: json}}\n",
        command.join(", "),
        yaml_string(script)
    );
    for (name, value) in env {
        text.push_str(&format!(
            "    - {{name: {name}, value: {}}}\n",
            yaml_string(value)
        ));
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
