//! meshinit added without editing the Job: the admission policies users apply,
//! `images/examples/policy/mutating-admission-policy.yaml` (a MutatingAdmissionPolicy, a
//! ValidatingAdmissionPolicy and their bindings) applied unchanged with `kubectl apply -f`, on
//! the cluster's own API server (v1.36.3: GA, on by default). Jobs whose manifests have the
//! label and nothing of meshinit's, from an image without it; what the API server made of
//! their pods is read back from it, and the Job controller's verdict is the judge — with
//! istiod injecting the proxy in both its settings, and in namespaces where nothing injects
//! one. Kyverno's ClusterPolicy (`kyverno.yaml`) runs in Kyverno's own engine, its CLI, whose
//! API call for the namespace the cluster's API server answers; its build (12 minutes) is
//! not in CI, so that scenario is ignored there and `scripts/kyverno` runs it.
//!
//! The policies are applied once, by the first scenario that needs them (`ready`), and stay
//! in force for every scenario of the run: they act on labelled pods only.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::api::{apply, cluster, dry_run, kubectl, poll, split, Cluster, Pod};
use crate::common::pods::{yaml_string, PLAIN_IMAGE};
use crate::common::refusals::{ADDS, NO_COMMAND};
use crate::istio::{layout, QUIT};
use crate::manifests::{cronjob, job, Setting};
use crate::{expect_exit, expect_job, expect_proxy_restarts_after_quit, report, LIMIT, PROXY};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const POLICY: &str = "images/examples/policy/mutating-admission-policy.yaml";
const KYVERNO_POLICY: &str = "images/examples/policy/kyverno.yaml";
/// The policies' names, as the file names them.
const NAME: &str = "meshinit-inject";
/// Where nothing injects a proxy, each with the namespace labels (or annotations) that make
/// the policy's mesh choice.
const PLAIN: &str = "policy-plain";
const AMBIENT: &str = "policy-ambient";
const OFF: &str = "policy-off";
const LINKERD: &str = "policy-linkerd";
/// Where a second copy of the mutating policy is bound too: the policy applied twice.
const TWICE: &str = "policy-twice";
const NAMESPACES: &[(&str, &str, &str)] = &[
    (PLAIN, "{}", "{}"),
    (AMBIENT, "{istio.io/dataplane-mode: ambient}", "{}"),
    (OFF, "{istio-injection: disabled}", "{}"),
    (LINKERD, "{}", "{linkerd.io/inject: enabled}"),
    (TWICE, "{}", "{}"),
];
/// What the API server says before a validating policy's message.
const DENIED: &str = "ValidatingAdmissionPolicy 'meshinit-inject' with binding \
    'meshinit-inject' denied request: ";
/// meshinit's line when `auto` finds no sidecar: it looked for the whole grace.
const NO_SIDECAR: &str = "no sidecar answered within 5000ms: running without one";
const SEARCH: &str = "looking for a sidecar for up to 5000ms";

/// A container from the image without meshinit, its command `sh -c`, `script` its argument.
fn container(name: &str, script: &str) -> String {
    format!(
        "  - name: {name}\n    image: {PLAIN_IMAGE}\n    command: [sh, -c]\n    args: [{}]\n",
        yaml_string(script)
    )
}

/// A pod template with the label `value` (none when empty), `annotations` (a YAML flow map's
/// insides) and `containers`.
fn template(value: &str, annotations: &str, containers: &str) -> String {
    let labels = if value.is_empty() {
        "{app: report}".to_owned()
    } else {
        format!("{{meshinit.io/inject: \"{value}\"}}")
    };
    format!(
        "metadata:\n  labels: {labels}\n  annotations: {{{annotations}}}\nspec:\n  \
         restartPolicy: Never\n  terminationGracePeriodSeconds: 10\n  containers:\n{containers}"
    )
}

/// The labelled pod template of a Job with one task container running `script`.
fn labelled(script: &str) -> String {
    template("true", "", &container("task", script))
}

/// A Pod manifest `name` of `template` (at the template's indentation).
fn pod_manifest(name: &str, template: &str) -> String {
    let template = template.replacen("metadata:\n", &format!("metadata:\n  name: {name}\n"), 1);
    format!("apiVersion: v1\nkind: Pod\n{template}")
}

/// Applies a Job `name` in `ns` with `backoffLimit: 0` and `template`; its key.
fn run(ns: &str, name: &str, template: &str) -> String {
    apply(&job(ns, name, "  backoffLimit: 0\n", template));
    format!("{ns}/{name}")
}

/// tests/fixtures/pod_spec.py `args` with `input` on its standard input; its output.
fn pod_spec(args: &[&str], input: &str) -> String {
    let mut child = Command::new("python3")
        .arg(Path::new(REPO).join("tests/fixtures/pod_spec.py"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "pod_spec.py {args:?}: {}\ninput:\n{input}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pod `pod_key` (`split`'s form) as the API server holds it, JSON.
fn pod_json(pod_key: &str) -> String {
    let (ns, name) = split(pod_key);
    kubectl(&["get", "pod", "-n", ns, name, "-o", "json"])
}

/// `words` as kubectl's jsonpath prints a list of strings.
fn json_list(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
    format!("[{}]", quoted.join(","))
}

/// What the policies were in force with: the unlabelled pod as the API server made it before
/// they were applied.
struct Applied {
    baseline: String,
}

/// The policies, in force: applied once, by the first scenario that asks (the others wait);
/// what that found. First the namespaces; the unlabelled pod of `an_unlabelled_job_*` made
/// (dry run) before any policy exists; a second copy of the mutating policy, bound to `TWICE`
/// alone, applied and in force on its own; then the file as users apply it, in force once a
/// labelled pod gets meshinit (a new policy takes effect a moment after it is created), and
/// its validating half once a pod without `command` is refused.
fn ready() -> &'static Applied {
    static APPLIED: OnceLock<Result<Applied, String>> = OnceLock::new();
    let applied = APPLIED.get_or_init(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(install))
            .map_err(|panic| crate::common::panic_text(&*panic))
    });
    match applied {
        Ok(applied) => applied,
        Err(why) => panic!("the admission policies were not put in force: {why}"),
    }
}

fn install() -> Applied {
    for (ns, labels, annotations) in NAMESPACES {
        apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels: {labels}\n  \
             annotations: {annotations}\n"
        ));
    }
    for (ns, _, _) in NAMESPACES {
        crate::examples::namespace_ready(ns, false);
    }
    let unlabelled = pod_manifest("baseline", &unlabelled_template());
    let baseline = dry_run(PLAIN, &unlabelled).unwrap_or_else(|e| panic!("{e}"));
    apply(&second_copy());
    in_force(TWICE, "the second copy of the mutating policy");
    let file = Path::new(REPO).join(POLICY);
    let said = kubectl(&["apply", "-f", file.to_str().unwrap()]);
    eprintln!("kubectl apply -f {POLICY}:\n{}", said.trim_end());
    in_force(PLAIN, "the mutating policy");
    let refused = pod_manifest("probe", &template("true", "", &commandless()));
    poll(
        Duration::from_secs(60),
        "the validating policy in force",
        || match dry_run(PLAIN, &refused) {
            Err(why) if why.contains(NO_COMMAND) => Some(()),
            _ => None,
        },
    );
    Applied { baseline }
}

/// Waits until a labelled pod created in `ns` (dry run) gets meshinit.
fn in_force(ns: &str, what: &str) {
    let probe = pod_manifest("probe", &labelled("true"));
    poll(
        Duration::from_secs(60),
        &format!("{what} in force in {ns}"),
        || {
            dry_run(ns, &probe)
                .ok()
                .filter(|pod| pod.contains("\"install-meshinit\""))
        },
    );
}

/// The mutating policy and its binding from the file, renamed, the binding limited to the
/// namespace `TWICE`: the same policy applied a second time, for those pods only.
fn second_copy() -> String {
    let text = std::fs::read_to_string(Path::new(REPO).join(POLICY)).unwrap();
    let again = format!("{NAME}-again");
    let docs: Vec<String> = text
        .split("\n---\n")
        .filter(|d| {
            d.contains("\nkind: MutatingAdmissionPolicy\n")
                || d.contains("\nkind: MutatingAdmissionPolicyBinding\n")
        })
        .map(|d| {
            // Each line whole: the last one ends the document, without its newline.
            let d = format!("{}\n", d.trim_end())
                .replace(&format!("  name: {NAME}\n"), &format!("  name: {again}\n"))
                .replace(
                    &format!("  policyName: {NAME}\n"),
                    &format!("  policyName: {again}\n"),
                );
            if d.contains("\nkind: MutatingAdmissionPolicyBinding\n") {
                format!(
                    "{}\n  matchResources:\n    namespaceSelector:\n      matchLabels: \
                     {{kubernetes.io/metadata.name: {TWICE}}}\n",
                    d.trim_end()
                )
            } else {
                d
            }
        })
        .collect();
    assert_eq!(docs.len(), 2, "{POLICY}: its mutating policy and binding");
    assert!(docs.iter().all(|d| d.contains(&again)), "{docs:?}");
    docs.join("\n---\n")
}

/// The task container of `an_unlabelled_job_is_left_as_it_is`, and the one without `command`.
fn unlabelled_template() -> String {
    template(
        "",
        "",
        &format!(
            "{}  - {{name: other, image: {PLAIN_IMAGE}, args: [-c, 'echo other ran']}}\n",
            container("task", "echo task ran")
        ),
    )
}

fn commandless() -> String {
    format!("  - {{name: task, image: {PLAIN_IMAGE}, args: [-c, 'echo task ran']}}\n")
}

/// The Job's one pod and its key, once the Job finished.
fn finished_pod(c: &Cluster, key: &str) -> (crate::api::Job, Pod, String) {
    let (job, pods) = c.finished(key, LIMIT);
    report(key, &job, &pods);
    assert_eq!(pods.len(), 1, "{key}: {pods:#?}");
    let p = pods.into_iter().next().unwrap();
    let pod_key = format!("{}/{}", split(key).0, p.name);
    (job, p, pod_key)
}

/// What the policy did to the pod `pod_key`, as the API server holds it: one
/// `install-meshinit` init container (the meshinit image, `/meshinit install /meshinit-bin`,
/// as user 65532) and one `meshinit-bin` volume; in each of `tasks` the volume mounted
/// read-only and the command `/meshinit-bin/meshinit FLAGS -- sh -c` (its `args` left);
/// every other container untouched.
fn expect_injected(c: &Cluster, pod_key: &str, tasks: &[(&str, &[&str])], others: &[&str]) {
    let names = c.pod_field(pod_key, "{.spec.initContainers[*].name}");
    assert_eq!(
        names
            .split(' ')
            .filter(|n| *n == "install-meshinit")
            .count(),
        1,
        "{pod_key}: init containers {names}"
    );
    let volumes = c.pod_field(pod_key, "{.spec.volumes[*].name}");
    assert_eq!(
        volumes.split(' ').filter(|n| *n == "meshinit-bin").count(),
        1,
        "{pod_key}: volumes {volumes}"
    );
    let install = c.pod_field(
        pod_key,
        "{.spec.initContainers[?(@.name==\"install-meshinit\")].image} \
         {.spec.initContainers[?(@.name==\"install-meshinit\")].command} \
         {.spec.initContainers[?(@.name==\"install-meshinit\")].securityContext.runAsUser}",
    );
    assert_eq!(
        install,
        format!(
            "ghcr.io/meshinit/meshinit:0.1.0 {} 65532",
            json_list(&["/meshinit", "install", "/meshinit-bin"])
        ),
        "{pod_key}"
    );
    for (task, flags) in tasks {
        let mut want = vec!["/meshinit-bin/meshinit"];
        want.extend_from_slice(flags);
        want.extend_from_slice(&["--", "sh", "-c"]);
        let command = c.pod_field(
            pod_key,
            &format!("{{.spec.containers[?(@.name==\"{task}\")].command}}"),
        );
        assert_eq!(command, json_list(&want), "{pod_key}: {task}'s command");
        let mount = c.pod_field(
            pod_key,
            &format!(
                "{{.spec.containers[?(@.name==\"{task}\")].volumeMounts\
                 [?(@.name==\"meshinit-bin\")].mountPath}} \
                 {{.spec.containers[?(@.name==\"{task}\")].volumeMounts\
                 [?(@.name==\"meshinit-bin\")].readOnly}}"
            ),
        );
        assert_eq!(mount, "/meshinit-bin true", "{pod_key}: {task}'s mount");
    }
    for other in others {
        let command = c.pod_field(
            pod_key,
            &format!("{{.spec.containers[?(@.name==\"{other}\")].command}}"),
        );
        assert_eq!(command, json_list(&["sh", "-c"]), "{pod_key}: {other}");
    }
}

/// The pod `pod_key` admitted again (a Pod with its labels, annotations and spec, created
/// with --dry-run=server where it is): `what` of it (pod_spec.py's `spec`, the whole spec,
/// or `meshinit`, its containers' commands and meshinit's volumes and mounts) unchanged.
/// Where istiod injects, its webhook injects the proxy again, which changes the proxy's
/// workload name (the pod's own now, no longer its Job's): there, `meshinit`.
fn expect_admitted_again_unchanged(pod_key: &str, what: &str) {
    let json = pod_json(pod_key);
    let again = pod_spec(&["pod", "admitted-again"], &json);
    let out = dry_run(split(pod_key).0, &again)
        .unwrap_or_else(|e| panic!("{pod_key} admitted again: {e}"));
    let (before, after) = (pod_spec(&[what], &json), pod_spec(&[what], &out));
    assert!(
        before == after,
        "{pod_key} admitted again changed:\nbefore: {before}\nafter: {after}"
    );
}

/// The label alone (an image without meshinit, `command: [sh, -c]`), where istiod injects the
/// proxy: the pod gets the install and the prefixed command with `--mesh istio` (the
/// namespace's `istio-injection=enabled`), and the init containers in the order the
/// setting's injector makes; meshinit waits for pilot-agent without searching, runs the task
/// and quits the agent; Complete. Then the pod admitted again: nothing of meshinit's changes
/// (one install, one prefix).
pub fn labelled_job_completes(c: &Cluster, s: Setting) {
    ready();
    let key = run(s.namespace(), "labelled", &labelled("echo task ran"));
    let (job, p, pod_key) = finished_pod(c, &key);
    expect_job(&key, &job, "Complete", "CompletionsReached", 1, 0);
    for name in ["install-meshinit", "task", PROXY] {
        expect_exit(&p, name, 0);
    }
    expect_proxy_restarts_after_quit(&key, &p);
    expect_injected(c, &pod_key, &[("task", &["--mesh", "istio"])], &[]);
    // Init containers run one after the other, each to its end (a native sidecar: until it
    // has started), all before the regular containers: the install is done before the task
    // wherever the injector puts it. It needs no network, so before istio-init's iptables
    // (regular) or behind the started proxy (native) are both right.
    let order = layout(c, &pod_key);
    eprintln!("{key}: the containers, in order: {order}");
    let want = match s {
        Setting::Regular => "init:install-meshinit: init:istio-init: task istio-proxy",
        Setting::Native => "init:istio-init: init:istio-proxy:Always init:install-meshinit: task",
    };
    assert_eq!(order, want, "{key}");
    let log = c.log(&pod_key, "task");
    for line in [
        "waiting for the sidecar: http://127.0.0.1:15020/healthz/ready",
        "task ran",
        QUIT,
    ] {
        assert!(log.contains(line), "{key}: no {line:?} in:\n{log}");
    }
    assert!(
        !log.contains(SEARCH),
        "{key}: --mesh istio searched:\n{log}"
    );
    expect_admitted_again_unchanged(&pod_key, "meshinit");
}

/// The same with the task exiting 3: Failed with the task's 3, the proxy quit.
pub fn labelled_job_fails_with_the_task_code(c: &Cluster, s: Setting) {
    ready();
    let key = run(s.namespace(), "labelled-fails", &labelled("exit 3"));
    let (job, p, pod_key) = finished_pod(c, &key);
    expect_job(&key, &job, "Failed", "BackoffLimitExceeded", 0, 1);
    assert_eq!(p.phase, "Failed", "{p:#?}");
    expect_exit(&p, "task", 3);
    expect_exit(&p, PROXY, 0);
    expect_proxy_restarts_after_quit(&key, &p);
    expect_injected(c, &pod_key, &[("task", &["--mesh", "istio"])], &[]);
    let log = c.log(&pod_key, "task");
    assert!(log.contains(QUIT), "{key}: {log}");
}

/// Two task containers named in the annotation, a third container not: both named ones
/// prefixed with `--name`, `--pod-dir /meshinit-pod` and `--quit-after exporter,uploader`, the
/// third left as it is; Complete, every container 0. The sidecar quit once: the uploader's
/// meshinit (which ends first) leaves it for the exporter, whose meshinit quits it, and
/// pilot-agent took one quit. The exporter's task ends 1 s after the uploader's has written
/// its file in a volume of the pod's own (30 s at most): a head start of 1 s alone was not
/// enough once, when the kubelet started the uploader more than 1 s after the exporter and
/// the two ended together (a full run, 2026-12-07).
pub fn two_named_containers_share_the_sidecar(c: &Cluster, s: Setting) {
    ready();
    let handoff = "    volumeMounts: [{name: handoff, mountPath: /handoff}]\n";
    let containers = format!(
        "{}{handoff}{}{}{handoff}  volumes: [{{name: handoff, emptyDir: {{}}}}]\n",
        container(
            "exporter",
            "i=0; while [ ! -e /handoff/uploaded ] && [ $i -lt 300 ]; do sleep 0.1; \
             i=$((i+1)); done; sleep 1; echo exported"
        ),
        container("helper", "echo helped"),
        container(
            "uploader",
            "echo uploaded > /handoff/uploaded; echo uploaded"
        )
    );
    let key = run(
        s.namespace(),
        "labelled-two",
        &template(
            "true",
            "meshinit.io/containers: 'exporter, uploader'",
            &containers,
        ),
    );
    let (job, p, pod_key) = finished_pod(c, &key);
    expect_job(&key, &job, "Complete", "CompletionsReached", 1, 0);
    for container in &p.containers {
        expect_exit(&p, &container.name, 0);
    }
    expect_proxy_restarts_after_quit(&key, &p);
    let shared = |name| {
        [
            "--mesh",
            "istio",
            "--name",
            name,
            "--pod-dir",
            "/meshinit-pod",
            "--quit-after",
            "exporter,uploader",
        ]
    };
    let (exporter, uploader) = (shared("exporter"), shared("uploader"));
    expect_injected(
        c,
        &pod_key,
        &[("exporter", &exporter), ("uploader", &uploader)],
        &["helper"],
    );
    let pod_dir = c.pod_field(
        &pod_key,
        "{.spec.volumes[?(@.name==\"meshinit-pod\")].name}",
    );
    assert_eq!(pod_dir, "meshinit-pod", "{pod_key}");
    let (exporter, uploader) = (c.log(&pod_key, "exporter"), c.log(&pod_key, "uploader"));
    assert!(
        exporter.contains("the last of the task containers to end (--quit-after)")
            && exporter.contains(QUIT),
        "{key}: exporter:\n{exporter}"
    );
    assert!(
        uploader.contains("leaving the sidecar running for exporter (--quit-after)")
            && !uploader.contains("sidecar quit via"),
        "{key}: uploader:\n{uploader}"
    );
    // pilot-agent's own count, when the proxy ran once (a restarted native proxy's log is
    // its second run's).
    if p.container(PROXY).restarts == 0 {
        let proxy = c.log(&pod_key, PROXY);
        let quits = proxy.matches("handling /quitquitquit").count();
        assert_eq!(quits, 1, "{key}: pilot-agent's log:\n{proxy}");
    }
}

/// A labelled container without `command`: `kubectl apply` of the Job succeeds (the
/// policies act on pods), but the API server refuses every pod the Job controller creates
/// with the validating policy's message, which the Job's FailedCreate events carry; no pod
/// exists. A Pod with that template is refused by `kubectl apply` itself, with the message.
pub fn a_container_without_command_is_refused(c: &Cluster) {
    ready();
    let key = run(PLAIN, "no-command", &template("true", "", &commandless()));
    let events = poll(LIMIT, "the Job's FailedCreate event", || {
        let messages = kubectl(&[
            "get",
            "events",
            "-n",
            PLAIN,
            "--field-selector",
            "involvedObject.kind=Job,involvedObject.name=no-command,reason=FailedCreate",
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ]);
        (!messages.trim().is_empty()).then_some(messages)
    });
    let first = events.lines().next().unwrap();
    eprintln!("{key}: the Job's event: FailedCreate {first}");
    assert!(
        first.starts_with("Error creating: pods \"no-command-")
            && first.contains(&format!("is forbidden: {DENIED}{NO_COMMAND}")),
        "{key}: {events}"
    );
    let job = c.until(Duration::from_secs(30), &format!("{key} seen"), |st| {
        st.jobs.get(&key).cloned()
    });
    assert!(
        job.active == 0 && job.conditions.is_empty(),
        "{key}: {job:#?}"
    );
    assert!(c.pods_of(&key).is_empty(), "{key}: {:#?}", c.pods_of(&key));
    let pods = kubectl(&[
        "get",
        "pods",
        "-n",
        PLAIN,
        "-l",
        "job-name=no-command",
        "-o",
        "name",
    ]);
    assert!(pods.trim().is_empty(), "{key}: {pods}");
    // It would retry, with its backoff, for as long as it exists.
    kubectl(&["delete", "job", "-n", PLAIN, "no-command", "--wait=false"]);
    let bare = pod_manifest("no-command", &template("true", "", &commandless()));
    let refused = cluster(&["kubectl", "apply", "-n", PLAIN, "-f", "-"], Some(&bare))
        .expect_err("a labelled Pod without command was admitted");
    eprintln!("kubectl apply of that Pod: {}", refused.trim_end());
    assert!(
        refused.contains(&format!(
            "The pods \"no-command\" is invalid: : {DENIED}{NO_COMMAND}"
        )),
        "{refused}"
    );
}

/// What the API server would otherwise refuse with a bare "Duplicate value", or admit and
/// leave without meshinit, refused by the validating policy with its message (each pod made
/// with --dry-run=server, so nothing runs); the label on a Job's and a CronJob's own
/// metadata instead of the template's, refused by meshinit-inject-job; and a pod on the
/// host's network in a namespace istiod injects: istiod leaves it without a proxy, and its
/// loopback is the node's, so meshinit gets `--mesh none` (neither istio nor auto). Every
/// pod a dry run: nothing here waits on the cluster's watcher.
pub fn clashes_and_meaningless_labels_are_refused(_: &Cluster) {
    ready();
    let task = container("task", "echo task ran");
    let refused = [
        (
            "label-enabled",
            template("enabled", "", &task),
            "meshinit.io/inject is \"enabled\", which means nothing: set it to \"true\" to add \
             meshinit to the pod, or \"false\" to leave it as it is"
                .to_owned(),
        ),
        (
            "volume-clash",
            template("true", "", &task).replace(
                "  containers:\n",
                "  volumes: [{name: meshinit-bin, emptyDir: {}}]\n  containers:\n",
            ),
            format!("meshinit.io/inject: the pod has spec.volumes[].name \"meshinit-bin\"{ADDS}"),
        ),
        (
            "partly-wrapped",
            template(
                "true",
                "",
                &format!(
                    "{task}  - {{name: ready, image: {PLAIN_IMAGE}, \
                     command: [/meshinit-bin/meshinit, --, \"true\"]}}\n"
                ),
            ),
            "meshinit.io/inject: container \"ready\" runs meshinit already and \"task\" does not"
                .to_owned(),
        ),
    ];
    for (name, template, message) in &refused {
        let why =
            dry_run(PLAIN, &pod_manifest(name, template)).expect_err(&format!("{name}: admitted"));
        eprintln!("{PLAIN}/{name}: {}", why.trim_end());
        assert!(why.contains(&format!("{DENIED}{message}")), "{name}: {why}");
    }
    // The label on the Job's (or CronJob's) own metadata, not its pod template's: the
    // beginner's mistake, refused by the policy for Jobs rather than silently ignored.
    let unlabelled = template("", "", &container("task", "echo task ran"));
    let on_the_job = |manifest: String| {
        manifest.replacen(
            "metadata:\n  name:",
            "metadata:\n  labels: {meshinit.io/inject: \"true\"}\n  name:",
            1,
        )
    };
    for (kind, manifest) in [
        (
            "job",
            on_the_job(job(PLAIN, "label-on-job", "", &unlabelled)),
        ),
        (
            "cronjob",
            on_the_job(cronjob(PLAIN, "label-on-cronjob", "", &unlabelled)),
        ),
    ] {
        let why = dry_run(PLAIN, &manifest).expect_err(&format!("{kind}: admitted"));
        eprintln!("{PLAIN}/label-on-{kind}: {}", why.trim_end());
        assert!(
            why.contains(
                "ValidatingAdmissionPolicy 'meshinit-inject-job' with binding \
                 'meshinit-inject-job' denied request: meshinit.io/inject is on the Job's \
                 metadata; put it in spec.template.metadata.labels (for a CronJob, \
                 spec.jobTemplate.spec.template.metadata.labels)"
            ),
            "{kind}: {why}"
        );
    }
    let host = labelled("echo task ran")
        .replace("  containers:\n", "  hostNetwork: true\n  containers:\n");
    let ns = Setting::Regular.namespace();
    let admitted = dry_run(ns, &pod_manifest("host-network", &host))
        .unwrap_or_else(|e| panic!("{ns}/host-network: {e}"));
    let made: String = pod_spec(&["meshinit"], &admitted)
        .split_whitespace()
        .collect();
    assert!(
        made.contains(r#""command":["/meshinit-bin/meshinit","--mesh","none","--","sh","-c"]"#)
            && !admitted.contains("\"istio-proxy\""),
        "{ns}/host-network: {made}"
    );
}

/// A Job without the label: its pod is the one the API server made of the same template
/// before any policy existed (`ready`), to the field; Complete, its containers unprefixed.
pub fn an_unlabelled_job_is_left_as_it_is(c: &Cluster) {
    let applied = ready();
    let key = run(PLAIN, "unlabelled", &unlabelled_template());
    let (job, p, pod_key) = finished_pod(c, &key);
    expect_job(&key, &job, "Complete", "CompletionsReached", 1, 0);
    expect_exit(&p, "task", 0);
    let (now, before) = (
        pod_spec(&["spec"], &pod_json(&pod_key)),
        pod_spec(&["spec"], &applied.baseline),
    );
    assert!(
        now == before,
        "{key}: its pod differs from the one made before the policies:\nnow: {now}\nbefore: {before}"
    );
}

/// The mutating policy applied twice (a second copy, bound to this namespace, runs too):
/// one install, one volume, one prefix; Complete.
pub fn the_policy_applied_twice_adds_meshinit_once(c: &Cluster) {
    ready();
    let key = run(TWICE, "twice", &labelled("echo task ran"));
    let (job, p, pod_key) = finished_pod(c, &key);
    expect_job(&key, &job, "Complete", "CompletionsReached", 1, 0);
    expect_exit(&p, "task", 0);
    expect_injected(c, &pod_key, &[("task", &[])], &[]);
    expect_admitted_again_unchanged(&pod_key, "spec");
}

/// The mesh from the namespace, where nothing injects a proxy: ambient and
/// `istio-injection=disabled` → `--mesh none`, and meshinit starts the task at once, without
/// looking for a sidecar; a namespace that says nothing → no flag, and meshinit's `auto`
/// looks for one for its whole grace (5 s) first. Each Complete. (`--mesh istio` from
/// `istio-injection=enabled`: `labelled_job_completes`.)
pub fn the_mesh_follows_the_namespace(c: &Cluster) {
    ready();
    let cases: [(&str, &[&str]); 3] = [
        (AMBIENT, &["--mesh", "none"]),
        (OFF, &["--mesh", "none"]),
        (PLAIN, &[]),
    ];
    let keys: Vec<String> = cases
        .iter()
        .map(|(ns, _)| run(ns, "mesh", &labelled("echo task ran")))
        .collect();
    for ((ns, flags), key) in cases.iter().zip(&keys) {
        let (job, _, pod_key) = finished_pod(c, key);
        expect_job(key, &job, "Complete", "CompletionsReached", 1, 0);
        expect_injected(c, &pod_key, &[("task", flags)], &[]);
        let log = c.log(&pod_key, "task");
        let searched = log.contains(SEARCH) && log.contains(NO_SIDECAR);
        let started_at_once = !log.contains(SEARCH) && log.contains("task started");
        if flags.is_empty() {
            assert!(searched, "{key}: auto did not search:\n{log}");
        } else {
            assert!(started_at_once, "{key}: {ns}:\n{log}");
        }
        let first = log.lines().next().unwrap_or_default();
        eprintln!("{key}: {flags:?}; meshinit's first line: {first}");
    }
}

/// Kyverno's ClusterPolicy against the MutatingAdmissionPolicy, on the same Jobs' pods. Each
/// pod as the API server would hand it to Kyverno's webhook (its defaults set): made with
/// --dry-run=server under the label `meshinit.io/inject: "false"`, which no policy changes, and
/// labelled again; given to the Kyverno CLI (`kyverno apply --cluster`: its API call for the
/// namespace goes to the cluster's API server), beside the pod the admission policies made of
/// the labelled one. The fields the policies set must be equal. Then each Kyverno-made pod as
/// a Job of its own (without the label, so that no policy of the cluster touches it):
/// Complete, meshinit as Kyverno put it. In namespaces where nothing injects a proxy — no
/// mesh (`auto`), ambient, and Linkerd's namespace annotation (no Job: no Linkerd proxy here)
/// — and in the native setting's, where istiod injected the proxy into the pod Kyverno got,
/// as Kyverno's webhook, called after Istio's (webhooks go by their configuration's name),
/// gets it: the install after istio-proxy, as the admission policy's pod has it. (In the
/// regular setting Kyverno would put it after istio-init, the policy before: both right.)
pub fn kyverno_makes_the_same_pod(c: &Cluster) {
    ready();
    let cli = crate::common::kyverno();
    let kubeconfig = crate::api::cluster(&["kubeconfig"], None).unwrap_or_else(|e| panic!("{e}"));
    let two = format!(
        "{}{}{}",
        container("exporter", "sleep 1; echo exported"),
        container("helper", "echo helped"),
        container("uploader", "echo uploaded")
    );
    let native = Setting::Native.namespace();
    let cases = [
        ("alone", PLAIN, labelled("echo task ran"), true),
        ("native", native, labelled("echo task ran"), true),
        ("ambient", AMBIENT, labelled("echo task ran"), true),
        ("linkerd", LINKERD, labelled("echo task ran"), false),
        (
            "two",
            PLAIN,
            template("true", "meshinit.io/containers: 'exporter,uploader'", &two),
            true,
        ),
    ];
    let dir = crate::common::tempdir("kyverno-cluster");
    for (name, ns, template, runs) in &cases {
        let what = format!("{ns}/{name}");
        let labelled = pod_manifest(name, template);
        let admitted = dry_run(ns, &labelled).unwrap_or_else(|e| panic!("{what}: {e}"));
        let unlabelled = dry_run(ns, &pod_spec(&["label", "false"], &labelled))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let given = pod_spec(&["label", "true"], &unlabelled);
        let out = dir.join(format!("{name}.yaml"));
        let mut child = Command::new(cli)
            .args(["apply"])
            .arg(Path::new(REPO).join(KYVERNO_POLICY))
            .args([
                "--resource",
                "-",
                "--cluster",
                "--kubeconfig",
                kubeconfig.trim(),
            ])
            .arg("-o")
            .arg(&out)
            .arg("--remove-color")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(given.as_bytes())
            .unwrap();
        let result = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
        assert!(
            result.status.success() && said.contains("pass: 2, fail: 0, warn: 0, error: 0"),
            "{what}: kyverno apply:\n{said}"
        );
        let mutated = std::fs::read_to_string(&out).unwrap();
        let (by_kyverno, by_policy) = (
            pod_spec(&["fields"], &mutated),
            pod_spec(&["fields"], &admitted),
        );
        assert!(
            by_kyverno == by_policy,
            "{what}: Kyverno's pod differs from the admission policy's:\nKyverno: \
             {by_kyverno}\nthe policy: {by_policy}"
        );
        eprintln!("{what}: Kyverno's pod = the admission policy's (the fields they set)");
        if !runs {
            continue;
        }
        let job_name = format!("kyverno-{name}");
        let manifest = pod_spec(&["job", &job_name], &mutated);
        cluster(&["kubectl", "apply", "-n", ns, "-f", "-"], Some(&manifest))
            .unwrap_or_else(|e| panic!("{what}: {e}\n{manifest}"));
        let key = format!("{ns}/{job_name}");
        let (job, p, pod_key) = finished_pod(c, &key);
        expect_job(&key, &job, "Complete", "CompletionsReached", 1, 0);
        for container in &p.containers {
            expect_exit(&p, &container.name, 0);
        }
        // meshinit as Kyverno put it (istiod injects the proxy again, for the Job's pod).
        let (ran, made) = (
            pod_spec(&["meshinit"], &pod_json(&pod_key)),
            pod_spec(&["meshinit"], &mutated),
        );
        assert!(
            ran == made,
            "{key}: the pod that ran is not Kyverno's:\nran: {ran}\nKyverno: {made}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
