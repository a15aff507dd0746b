//! The admission policies users apply instead of editing their Jobs
//! (images/examples/policy/), offline: their schemas, and what they make of Jobs' pods under
//! Kyverno's own engine. The Kyverno CLI (`scripts/peers kyverno`) runs the ClusterPolicy as
//! Kyverno does, and the Mutating- and ValidatingAdmissionPolicy with the API server's own
//! admission library (k8s.io/apiserver v0.36.3, the cluster's). Its build took 12
//! minutes here, too much of CI's budget: those tests are ignored here and run by
//! `scripts/kyverno`. tests/cluster.rs is to run the admission policies on a real API server.
//!
//! Each case is a Job and its namespace: the pod its controller makes is given to both
//! policies, and what comes out must be the pod the case expects, to the field
//! (tests/fixtures/admission.py writes the expectation out from the case's commands).

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::refusals::{ADDS, NO_COMMAND};
use common::{schema_versions, tempdir, venv_python};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const WINDOWS: &str = "meshinit.io/inject: the pod runs on Windows (spec.os.name, or \
    kubernetes.io/os in its nodeSelector or required nodeAffinity), and meshinit is a Linux \
    binary: remove the label meshinit.io/inject";

fn policy(name: &str) -> PathBuf {
    Path::new(REPO).join("images/examples/policy").join(name)
}

#[test]
fn the_admission_policies_validate_against_kubernetes_1_36_and_the_newest() {
    let test = "the_admission_policies_validate_against_kubernetes_1_36_and_the_newest";
    let python = or_skip!(venv_python(test, "kubernetes_validate"));
    let known = schema_versions(&python);
    // MutatingAdmissionPolicy is admissionregistration.k8s.io/v1 from 1.36 on.
    let first = known
        .iter()
        .find(|v| v.starts_with("1.36."))
        .expect("schemas of 1.36");
    for version in [first, known.last().unwrap()] {
        let out = Command::new(&python)
            .args(["-m", "kubernetes_validate", "--strict", "-k", version])
            .arg(policy("mutating-admission-policy.yaml"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{version}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for kind in [
            "mutatingadmissionpolicy/meshinit-inject",
            "mutatingadmissionpolicybinding/meshinit-inject",
            "validatingadmissionpolicy/meshinit-inject",
            "validatingadmissionpolicybinding/meshinit-inject",
        ] {
            assert!(
                stdout.contains(&format!("passed for resource {kind} against")),
                "{version}: {kind} not validated: {stdout}"
            );
        }
    }
}

/// What a case expects of both policies.
enum Expect {
    /// Each task container with the flags its command gets between meshinit and `--`.
    Injected(&'static [(&'static str, &'static [&'static str])]),
    /// The pod as it came.
    Untouched,
    /// Refused with a message that starts so.
    Refused(&'static str),
    /// Refused with this message, to its end.
    RefusedExactly(&'static str),
}

impl Expect {
    fn refused(&self) -> Option<(&'static str, bool)> {
        match *self {
            Expect::Refused(message) => Some((message, false)),
            Expect::RefusedExactly(message) => Some((message, true)),
            _ => None,
        }
    }
}

/// Whether the CLI's output `text` has the rule's refusal `message` (to the line's end when
/// `exact`).
fn refused_with(text: &str, rule: &str, message: &str, exact: bool) -> bool {
    let said = format!("- {rule} {message}");
    text.lines().any(|l| {
        if exact {
            l.trim_end().ends_with(&said)
        } else {
            l.contains(&said)
        }
    })
}

struct Case {
    name: &'static str,
    /// The namespace's name, labels and annotations (YAML flow maps).
    namespace: &'static str,
    ns_labels: &'static str,
    ns_annotations: &'static str,
    /// The Job's pod template: metadata (labels, annotations) and spec, YAML.
    template: &'static str,
    expect: Expect,
}

impl Case {
    const fn new(name: &'static str, template: &'static str, expect: Expect) -> Case {
        Case {
            name,
            namespace: "work",
            ns_labels: "{}",
            ns_annotations: "{}",
            template,
            expect,
        }
    }

    fn in_namespace(mut self, labels: &'static str, annotations: &'static str) -> Case {
        self.ns_labels = labels;
        self.ns_annotations = annotations;
        self
    }

    fn named(mut self, namespace: &'static str) -> Case {
        self.namespace = namespace;
        self
    }

    fn job(&self) -> String {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {}\n  namespace: {}\n\
             spec:\n  backoffLimit: 0\n  template:\n{}",
            self.name,
            self.namespace,
            indent(self.template, 4)
        )
    }
}

fn indent(text: &str, by: usize) -> String {
    text.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(by)))
        .collect()
}

/// A labelled pod template, its task `command: [sh, -c]`.
const LABELLED: &str = "metadata:
  labels: {meshinit.io/inject: \"true\"}
spec:
  restartPolicy: Never
  containers:
  - {name: task, image: registry.example.com/task:1, command: [sh, -c], args: [exit 0]}
";

fn python() -> PathBuf {
    venv_python("policy", "yaml").expect("the project's Python with PyYAML (scripts/setup)")
}

/// Runs tests/fixtures/admission.py; returns (success, stdout).
fn admission(args: &[&str]) -> (bool, String) {
    let out = Command::new(python())
        .arg(Path::new(REPO).join("tests/fixtures/admission.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "admission.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs the Kyverno CLI in `dir`; returns (exit code, stdout and stderr).
fn run_kyverno(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(common::kyverno())
        .args(args)
        .arg("--remove-color")
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_owned()
}

/// The case's files in a directory of its own: the Job, its pod, and the pod expected.
fn prepare(case: &Case) -> PathBuf {
    let dir = tempdir(&format!("policy-{}", case.name));
    std::fs::write(dir.join("job.yaml"), case.job()).unwrap();
    admission(&["pod", &path(&dir, "job.yaml"), &path(&dir, "pod.yaml")]);
    let spec = match case.expect {
        Expect::Injected(targets) => {
            let entries: Vec<String> = targets
                .iter()
                .map(|(name, flags)| {
                    let flags: Vec<String> = flags.iter().map(|f| format!("\"{f}\"")).collect();
                    format!("\"{name}\": [{}]", flags.join(", "))
                })
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Expect::Untouched | Expect::Refused(_) | Expect::RefusedExactly(_) => "{}".to_owned(),
    };
    admission(&[
        "expect",
        &path(&dir, "pod.yaml"),
        &spec,
        &path(&dir, "expected.yaml"),
    ]);
    dir
}

/// The MutatingAdmissionPolicy and its ValidatingAdmissionPolicy on the case's pod (the
/// namespace's labels given as the CLI takes them: it shows the policies no annotations of
/// a namespace); then the pod it made admitted again, which must change nothing.
fn admission_policy(case: &Case, dir: &Path) {
    admission(&[
        "kyverno-map",
        policy("mutating-admission-policy.yaml").to_str().unwrap(),
        &path(dir, "map.yaml"),
    ]);
    std::fs::write(
        dir.join("values.yaml"),
        format!(
            "apiVersion: cli.kyverno.io/v1alpha1\nkind: Values\nmetadata: {{name: values}}\n\
             namespaceSelector:\n- name: {}\n  labels: {}\n",
            case.namespace, case.ns_labels
        ),
    )
    .unwrap();
    let apply = |resource: &str, out: &str| {
        run_kyverno(
            dir,
            &[
                "apply",
                "map.yaml",
                "--resource",
                resource,
                "-f",
                "values.yaml",
                "-o",
                out,
            ],
        )
    };
    let (code, text) = apply("pod.yaml", "map-out.yaml");
    let what = format!("{}, MutatingAdmissionPolicy", case.name);
    match case.expect {
        Expect::Refused(_) | Expect::RefusedExactly(_) => {
            let (message, exact) = case.expect.refused().unwrap();
            assert_eq!(code, 1, "{what}: {text}");
            assert!(
                refused_with(&text, "meshinit-inject", message, exact),
                "{what}: not refused with '{message}': {text}"
            );
        }
        Expect::Untouched if !case.template.contains("meshinit.io/inject: \"true\"") => {
            // The mutation does not match: the CLI writes no pod. Only the validating
            // policy matches a pod labelled otherwise ("false"), and passes it.
            let passes = usize::from(case.template.contains("meshinit.io/inject:"));
            assert_eq!(code, 0, "{what}: {text}");
            assert!(
                text.contains(&format!(
                    "pass: {passes}, fail: 0, warn: 0, error: 0, skip: 0"
                )),
                "{what}: {text}"
            );
            let out = std::fs::read_to_string(dir.join("map-out.yaml")).unwrap_or_default();
            assert!(out.trim().is_empty(), "{what}: {out}");
        }
        Expect::Injected(_) | Expect::Untouched => {
            assert_eq!(code, 0, "{what}: {text}");
            assert!(
                text.contains("fail: 0, warn: 0, error: 0"),
                "{what}: {text}"
            );
            let (same, diff) = admission(&[
                "same",
                &path(dir, "expected.yaml"),
                &path(dir, "map-out.yaml"),
            ]);
            assert!(same, "{what}: not the pod expected:\n{diff}\n{text}");
            let (code, text) = apply("map-out.yaml", "map-again.yaml");
            assert_eq!(code, 0, "{what}, admitted again: {text}");
            let (same, diff) = admission(&[
                "same",
                &path(dir, "map-out.yaml"),
                &path(dir, "map-again.yaml"),
            ]);
            assert!(same, "{what}: admitted again, the pod changed:\n{diff}");
        }
    }
}

/// Kyverno's ClusterPolicy on the case's pod, with Kyverno's own test runner (`kyverno
/// test`): its API call for the namespace is answered from the case (the CLI's offline
/// client cannot get a namespace by its path), and the pod it makes must be the one
/// expected; then that pod again, which must be left as it is. A refusal's message is read
/// from `kyverno apply`, whose run does not reach the namespace.
fn cluster_policy(case: &Case, dir: &Path) {
    std::fs::copy(policy("kyverno.yaml"), dir.join("kyverno.yaml")).unwrap();
    let what = format!("{}, Kyverno ClusterPolicy", case.name);
    let namespace = format!(
        "{{apiVersion: v1, kind: Namespace, metadata: {{name: {}, labels: {}, annotations: {}}}}}",
        case.namespace, case.ns_labels, case.ns_annotations
    );
    let test = |resource: &str, expected: &str, inject: &str, refuse: &str| {
        let pod = format!("{}-pod", case.name);
        std::fs::write(
            dir.join("kyverno-test.yaml"),
            format!(
                "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata: {{name: meshinit}}\n\
                 policies: [kyverno.yaml]\nresources: [{resource}]\n\
                 apiCallResponses:\n- urlPath: /api/v1/namespaces/{}\n  method: GET\n\
                 \x20 response: {{body: {namespace}}}\n\
                 results:\n\
                 - {{policy: meshinit-inject, rule: inject, kind: Pod, resources: [{pod}], \
                 result: {inject}{}}}\n\
                 - {{policy: meshinit-inject, rule: refuse, kind: Pod, resources: [{pod}], \
                 result: {refuse}}}\n",
                case.namespace,
                if expected.is_empty() {
                    String::new()
                } else {
                    format!(", patchedResources: {expected}")
                }
            ),
        )
        .unwrap();
        run_kyverno(dir, &["test", ".", "--detailed-results"])
    };
    // Every row of both rules passed (the refusing rule has a second row, "Excluded").
    let passed = |text: &str| {
        text.contains(" tests passed and 0 tests failed")
            && !text.contains("│ Fail ")
            && ["inject", "refuse"].iter().all(|rule| {
                text.lines()
                    .any(|l| l.contains(&format!("│ {rule} ")) && l.contains("│ Pass "))
            })
    };
    match case.expect {
        Expect::Refused(_) | Expect::RefusedExactly(_) => {
            let (message, exact) = case.expect.refused().unwrap();
            let (code, text) = test("pod.yaml", "", "skip", "fail");
            assert!(code == 0 && passed(&text), "{what}: {text}");
            let (code, text) =
                run_kyverno(dir, &["apply", "kyverno.yaml", "--resource", "pod.yaml"]);
            assert_eq!(code, 1, "{what}: {text}");
            assert!(
                refused_with(&text, "refuse", message, exact),
                "{what}: not refused with '{message}': {text}"
            );
        }
        Expect::Injected(_) => {
            let (code, text) = test("pod.yaml", "expected.yaml", "pass", "pass");
            assert!(code == 0 && passed(&text), "{what}: {text}");
            let (code, text) = test("expected.yaml", "expected.yaml", "skip", "pass");
            assert!(code == 0 && passed(&text), "{what}, admitted again: {text}");
        }
        Expect::Untouched => {
            // The refusing rule matches every value of the label ("false" passes it).
            let labelled = case.template.contains("meshinit.io/inject:");
            let refuse = if labelled { "pass" } else { "skip" };
            let (code, text) = test("pod.yaml", "expected.yaml", "skip", refuse);
            assert!(code == 0 && passed(&text), "{what}: {text}");
        }
    }
}

fn check(cases: &[Case]) {
    for case in cases {
        let dir = prepare(case);
        // The CLI shows a MutatingAdmissionPolicy no namespace annotations: Linkerd's there
        // is the ClusterPolicy's alone here (tests/cluster.rs: the API server's).
        if case.ns_annotations == "{}" {
            admission_policy(case, &dir);
        }
        cluster_policy(case, &dir);
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
#[ignore = "needs the Kyverno CLI (a 12-minute build here): scripts/kyverno"]
fn labelled_jobs_get_meshinit_before_their_command() {
    check(&[
        // Only the label, in a namespace of no mesh: the install, the volume, the mount, the
        // prefix, and no --mesh (meshinit's auto).
        Case::new("label", LABELLED, Expect::Injected(&[("task", &[])])),
        // Two task containers named, a third left alone; the pod's own volumes, mounts and
        // init containers kept, meshinit's after them; a container's own MESHINIT_MESH wins.
        Case::new(
            "two-named",
            "metadata:
  labels: {meshinit.io/inject: \"true\"}
  annotations: {meshinit.io/containers: \"exporter, uploader\"}
spec:
  restartPolicy: Never
  volumes: [{name: data, emptyDir: {}}]
  initContainers: [{name: prepare, image: registry.example.com/prepare:1, command: [prepare]}]
  containers:
  - name: exporter
    image: registry.example.com/exporter:1
    command: [/usr/local/bin/export]
    args: [--to, /data]
    volumeMounts: [{name: data, mountPath: /data}]
  - {name: helper, image: registry.example.com/helper:1, command: [help]}
  - name: uploader
    image: registry.example.com/uploader:1
    command: [/usr/local/bin/upload]
    env: [{name: MESHINIT_MESH, value: envoy}]
",
            Expect::Injected(&[
                (
                    "exporter",
                    &[
                        "--mesh",
                        "istio",
                        "--name",
                        "exporter",
                        "--pod-dir",
                        "/meshinit-pod",
                        "--quit-after",
                        "exporter,uploader",
                    ],
                ),
                (
                    "uploader",
                    &[
                        "--name",
                        "uploader",
                        "--pod-dir",
                        "/meshinit-pod",
                        "--quit-after",
                        "exporter,uploader",
                    ],
                ),
            ]),
        )
        .in_namespace("{istio-injection: enabled}", "{}"),
        // Without the annotation every container but the known sidecars: a proxy declared
        // by hand stays as it is, and two tasks share it.
        Case::new(
            "sidecar-declared",
            "metadata:
  labels: {meshinit.io/inject: \"true\"}
spec:
  restartPolicy: Never
  containers:
  - {name: job, image: registry.example.com/job:1, command: [run]}
  - {name: istio-proxy, image: docker.io/istio/proxyv2:1.31.0, args: [proxy, sidecar]}
  - {name: report, image: registry.example.com/report:1, command: [report]}
",
            Expect::Injected(&[
                (
                    "job",
                    &[
                        "--name",
                        "job",
                        "--pod-dir",
                        "/meshinit-pod",
                        "--quit-after",
                        "job,report",
                    ],
                ),
                (
                    "report",
                    &[
                        "--name",
                        "report",
                        "--pod-dir",
                        "/meshinit-pod",
                        "--quit-after",
                        "job,report",
                    ],
                ),
            ]),
        ),
    ]);
}

#[test]
#[ignore = "needs the Kyverno CLI (a 12-minute build here): scripts/kyverno"]
fn the_mesh_comes_from_the_pod_and_its_namespace() {
    let with = |name, labels, annotations, template, flags: &'static [&'static str]| {
        let targets: &'static [(&str, &[&str])] = Box::leak(Box::new([("task", flags)]));
        Case::new(name, template, Expect::Injected(targets)).in_namespace(labels, annotations)
    };
    let pod = |labels: &str, annotations: &str| -> &'static str {
        leak_str(format!(
            "metadata:\n  labels: {{meshinit.io/inject: \"true\"{labels}}}\n  annotations: {{{annotations}}}\n\
             spec:\n  restartPolicy: Never\n  containers:\n  \
             - {{name: task, image: registry.example.com/task:1, command: [sh, -c], args: [exit 0]}}\n"
        ))
    };
    check(&[
        with(
            "ns-injection",
            "{istio-injection: enabled}",
            "{}",
            LABELLED,
            &["--mesh", "istio"],
        ),
        with(
            "ns-revision",
            "{istio.io/rev: canary}",
            "{}",
            LABELLED,
            &["--mesh", "istio"],
        ),
        with(
            "pod-revision",
            "{}",
            "{}",
            pod(", istio.io/rev: canary", ""),
            &["--mesh", "istio"],
        ),
        with(
            "pod-inject",
            "{}",
            "{}",
            pod(", sidecar.istio.io/inject: \"true\"", ""),
            &["--mesh", "istio"],
        ),
        // The pod's "false" switches the namespace's injection off.
        with(
            "pod-opts-out",
            "{istio-injection: enabled}",
            "{}",
            pod(", sidecar.istio.io/inject: \"false\"", ""),
            &["--mesh", "none"],
        ),
        // A namespace that switches injection off wins over the pod's label.
        with(
            "ns-disabled",
            "{istio-injection: disabled}",
            "{}",
            pod(", sidecar.istio.io/inject: \"true\"", ""),
            &["--mesh", "none"],
        ),
        with(
            "ambient",
            "{istio.io/dataplane-mode: ambient}",
            "{}",
            LABELLED,
            &["--mesh", "none"],
        ),
        with(
            "pod-linkerd",
            "{}",
            "{}",
            pod("", "linkerd.io/inject: enabled"),
            &["--mesh", "linkerd"],
        ),
        with(
            "ns-linkerd",
            "{}",
            "{linkerd.io/inject: enabled}",
            LABELLED,
            &["--mesh", "linkerd"],
        ),
        with(
            "linkerd-off",
            "{}",
            "{linkerd.io/inject: enabled}",
            pod("", "linkerd.io/inject: disabled"),
            &["--mesh", "none"],
        ),
        // A label there but empty. Istio reads the pod's label when it is there at all, and ""
        // is the namespace's default: injected, the annotation's "false" not read.
        with(
            "istio-empty-label",
            "{istio-injection: enabled}",
            "{}",
            pod(
                ", sidecar.istio.io/inject: \"\"",
                "sidecar.istio.io/inject: \"false\"",
            ),
            &["--mesh", "istio"],
        ),
        // Any value but y/yes/true/on opts the pod out.
        with(
            "istio-no",
            "{istio-injection: enabled}",
            "{}",
            pod("", "sidecar.istio.io/inject: \"No\""),
            &["--mesh", "none"],
        ),
        // The pod's dataplane-mode label, even "", opts it out of its namespace's ambient.
        with(
            "dataplane-empty",
            "{istio.io/dataplane-mode: ambient}",
            "{}",
            pod(", istio.io/dataplane-mode: \"\"", ""),
            &[],
        ),
        // Linkerd reads an empty annotation as none: the namespace's.
        with(
            "linkerd-empty",
            "{}",
            "{linkerd.io/inject: enabled}",
            pod("", "linkerd.io/inject: \"\""),
            &["--mesh", "linkerd"],
        ),
        // Istio's webhooks need istio-injection absent or "enabled": "" is a namespace
        // without injection, as "disabled" is.
        with(
            "ns-injection-empty",
            "{istio-injection: \"\"}",
            "{}",
            pod(", sidecar.istio.io/inject: \"true\"", ""),
            &["--mesh", "none"],
        ),
        // Both meshes would inject: meshinit's auto decides.
        with(
            "both",
            "{istio-injection: enabled}",
            "{}",
            pod("", "linkerd.io/inject: enabled"),
            &[],
        ),
    ]);
}

fn leak_str(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

#[test]
#[ignore = "needs the Kyverno CLI (a 12-minute build here): scripts/kyverno"]
fn what_cannot_be_injected_is_refused_with_what_to_do() {
    check(&[
        Case::new(
            "no-command",
            "metadata:
  labels: {meshinit.io/inject: \"true\"}
spec:
  restartPolicy: Never
  containers:
  - {name: task, image: registry.example.com/task:1, args: [--nightly]}
",
            Expect::Refused(NO_COMMAND),
        ),
        Case::new(
            "unknown-name",
            "metadata:
  labels: {meshinit.io/inject: \"true\"}
  annotations: {meshinit.io/containers: \"task,uplaoder\"}
spec:
  restartPolicy: Never
  containers:
  - {name: task, image: registry.example.com/task:1, command: [run]}
  - {name: uploader, image: registry.example.com/uploader:1, command: [upload]}
",
            Expect::Refused(
                "meshinit.io/containers names \"uplaoder\", which this pod does not have (its \
                 containers: \"task\", \"uploader\"): name the task containers, comma-separated",
            ),
        ),
        Case::new(
            "empty-annotation",
            "metadata:
  labels: {meshinit.io/inject: \"true\"}
  annotations: {meshinit.io/containers: \" , \"}
spec:
  restartPolicy: Never
  containers:
  - {name: task, image: registry.example.com/task:1, command: [run]}
",
            Expect::Refused(
                "meshinit.io/containers names no container: name the task containers, comma-separated",
            ),
        ),
        Case::new(
            "only-sidecars",
            "metadata:
  labels: {meshinit.io/inject: \"true\"}
spec:
  restartPolicy: Never
  containers:
  - {name: istio-proxy, image: docker.io/istio/proxyv2:1.31.0, args: [proxy, sidecar]}
",
            Expect::Refused(
                "meshinit.io/inject: the pod has no container but known sidecars (\"istio-proxy\"): \
                 name the task containers in meshinit.io/containers",
            ),
        ),
    ]);
}

#[test]
#[ignore = "needs the Kyverno CLI (a 12-minute build here): scripts/kyverno"]
fn unlabelled_and_already_injected_pods_are_left_as_they_are() {
    let install_job =
        std::fs::read_to_string(Path::new(REPO).join("images/examples/install-job.yaml")).unwrap();
    // install-job.yaml's pod template, labelled: meshinit is there already.
    let template = install_job
        .split_once("  template:\n")
        .unwrap()
        .1
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            "labels:\n    sidecar.istio.io/inject: \"true\"",
            "labels:\n    sidecar.istio.io/inject: \"true\"\n    meshinit.io/inject: \"true\"",
        );
    assert!(template.contains("meshinit.io/inject"), "{template}");
    check(&[
        Case::new(
            "unlabelled",
            "metadata:
  labels: {app: report}
spec:
  restartPolicy: Never
  containers:
  - {name: task, image: registry.example.com/task:1, command: [run]}
  - {name: other, image: registry.example.com/other:1}
",
            Expect::Untouched,
        )
        .in_namespace("{istio-injection: enabled}", "{}"),
        // Labelled "false" is not labelled.
        Case::new(
            "labelled-false",
            "metadata:
  labels: {meshinit.io/inject: \"false\"}
spec:
  restartPolicy: Never
  containers:
  - {name: task, image: registry.example.com/task:1}
",
            Expect::Untouched,
        ),
        Case::new("install-job", leak_str(template), Expect::Untouched),
    ]);
}

#[test]
#[ignore = "needs the Kyverno CLI (a 12-minute build here): scripts/kyverno"]
fn the_pods_own_text_is_kept_byte_for_byte() {
    check(&[
        // Kyverno reads `{{ }}` in its patches' text: none of the pod's is ever put there, so
        // a go-template argument, Kyverno's own variable names and an init container that is
        // not meshinit's come out as they went in (the expected pod is the one given, plus
        // meshinit's parts), and a backtick in the annotation is a name like any other.
        Case::new(
            "braces",
            "metadata:
  labels: {meshinit.io/inject: \"true\"}
  annotations: {meshinit.io/containers: \"task, report\"}
spec:
  restartPolicy: Never
  initContainers:
  - {name: prepare, image: registry.example.com/prepare:1, command: [echo, \"{{request.operation}}\"]}
  volumes: [{name: data, emptyDir: {}}]
  containers:
  - name: task
    image: registry.example.com/task:1
    command: [kubectl, get, pods, -o, \"go-template={{.metadata.name}}\"]
    volumeMounts: [{name: data, mountPath: \"/data/{{ request.namespace }}\"}]
  - name: report
    image: registry.example.com/report:1
    command: [sh, -c, \"render --set 'greeting=Hello {{name}}' && echo {{ mesh }} `{{ targets }}`\"]
",
            Expect::Injected(&[
                (
                    "task",
                    &[
                        "--name",
                        "task",
                        "--pod-dir",
                        "/meshinit-pod",
                        "--quit-after",
                        "task,report",
                    ],
                ),
                (
                    "report",
                    &[
                        "--name",
                        "report",
                        "--pod-dir",
                        "/meshinit-pod",
                        "--quit-after",
                        "task,report",
                    ],
                ),
            ]),
        ),
        Case::new(
            "backtick",
            "metadata:
  labels: {meshinit.io/inject: \"true\"}
  annotations: {meshinit.io/containers: \"task,a`b\"}
spec:
  restartPolicy: Never
  containers:
  - {name: task, image: registry.example.com/task:1, command: [run]}
",
            Expect::Refused(
                "meshinit.io/containers names \"a`b\", which this pod does not have (its \
                 containers: \"task\"): name the task containers, comma-separated",
            ),
        ),
        // Quotes and braces in a name the pod does not have: still only data.
        Case::new(
            "quoted",
            "metadata:
  labels: {meshinit.io/inject: \"true\"}
  annotations: {meshinit.io/containers: 'task,\"#\",{{request.operation}},x\"#'}
spec:
  restartPolicy: Never
  containers:
  - {name: task, image: registry.example.com/task:1, command: [run]}
",
            Expect::Refused(
                "meshinit.io/containers names \"\"#\"\", \"{{request.operation}}\", \"x\"#\", which \
                 this pod does not have (its containers: \"task\"): name the task containers, \
                 comma-separated",
            ),
        ),
    ]);
}

#[test]
#[ignore = "needs the Kyverno CLI (a 12-minute build here): scripts/kyverno"]
fn the_annotation_is_trimmed_of_all_whitespace_by_both() {
    let two: &'static [(&str, &[&str])] = &[
        (
            "task",
            &[
                "--name",
                "task",
                "--pod-dir",
                "/meshinit-pod",
                "--quit-after",
                "task,up",
            ],
        ),
        (
            "up",
            &[
                "--name",
                "up",
                "--pod-dir",
                "/meshinit-pod",
                "--quit-after",
                "task,up",
            ],
        ),
    ];
    let containers = "spec:
  restartPolicy: Never
  containers:
  - {name: task, image: registry.example.com/task:1, command: [run]}
  - {name: up, image: registry.example.com/up:1, command: [upload]}
";
    check(&[
        Case::new(
            "tab",
            leak_str(format!(
                "metadata:\n  labels: {{meshinit.io/inject: \"true\"}}\n  \
                 annotations: {{meshinit.io/containers: \"task,\\tup\\r\"}}\n{containers}"
            )),
            Expect::Injected(two),
        ),
        // A YAML block ends with a newline.
        Case::new(
            "block",
            leak_str(format!(
                "metadata:\n  labels: {{meshinit.io/inject: \"true\"}}\n  annotations:\n    \
                 meshinit.io/containers: |\n      task,\n      up\n{containers}"
            )),
            Expect::Injected(two),
        ),
    ]);
}

/// A labelled pod in the namespace `namespace` (labels `ns_labels`), its spec `spec`'s own
/// lines added under `restartPolicy: Never`.
fn labelled_with(spec: &str) -> &'static str {
    leak_str(format!(
        "metadata:\n  labels: {{meshinit.io/inject: \"true\"}}\nspec:\n  restartPolicy: Never\n{spec}"
    ))
}

#[test]
#[ignore = "needs the Kyverno CLI (a 12-minute build here): scripts/kyverno"]
fn where_istio_never_injects_the_mesh_is_none_or_auto() {
    let task =
        "  containers:\n  - {name: task, image: registry.example.com/task:1, command: [run]}\n";
    check(&[
        // Istio and Linkerd inject no pod on the host's network, whose loopback is the
        // node's: --mesh none, neither istio (a proxy that never comes) nor auto (which would
        // take a node's Envoy on 127.0.0.1 for the pod's sidecar and quit it).
        Case::new(
            "host-network",
            labelled_with(&format!("  hostNetwork: true\n{task}")),
            Expect::Injected(&[("task", &["--mesh", "none"])]),
        )
        .in_namespace("{istio-injection: enabled}", "{}"),
        Case::new(
            "host-network-linkerd",
            labelled_with(&format!("  hostNetwork: true\n{task}")),
            Expect::Injected(&[("task", &["--mesh", "none"])]),
        )
        .in_namespace("{}", "{linkerd.io/inject: enabled}"),
        Case::new(
            "host-network-plain",
            labelled_with(&format!("  hostNetwork: true\n{task}")),
            Expect::Injected(&[("task", &["--mesh", "none"])]),
        ),
        // Istio's ignored namespaces, labelled or not: the pod's loopback is its own, so
        // auto.
        Case::new(
            "kube-system",
            labelled_with(task),
            Expect::Injected(&[("task", &[])]),
        )
        .named("kube-system")
        .in_namespace("{istio-injection: enabled}", "{}"),
        Case::new(
            "local-path-storage",
            labelled_with(task),
            Expect::Injected(&[("task", &[])]),
        )
        .named("local-path-storage")
        .in_namespace("{istio.io/rev: canary}", "{}"),
    ]);
}

#[test]
#[ignore = "needs the Kyverno CLI (a 12-minute build here): scripts/kyverno"]
fn what_would_clash_or_do_nothing_is_refused_with_the_field() {
    let label = |name, value: &str| {
        let message: &'static str = leak_str(format!(
            "meshinit.io/inject is \"{value}\", which means nothing: set it to \"true\" to add \
             meshinit to the pod, or \"false\" to leave it as it is"
        ));
        Case::new(
            name,
            leak_str(format!(
                "metadata:\n  labels: {{meshinit.io/inject: \"{value}\"}}\nspec:\n  \
                 restartPolicy: Never\n  containers:\n  \
                 - {{name: task, image: registry.example.com/task:1, command: [run]}}\n"
            )),
            Expect::Refused(message),
        )
    };
    // The whole message, to its end.
    let exactly = |message: String| -> Expect { Expect::RefusedExactly(leak_str(message)) };
    let mount = |path: &str, tasks: &str| -> &'static str {
        labelled_with(leak_str(format!(
            "  volumes: [{{name: tools, emptyDir: {{}}}}]\n  containers:\n  \
             - {{name: task, image: registry.example.com/task:1, command: [run], \
             volumeMounts: [{{name: tools, mountPath: \"{path}\"}}]}}\n{tasks}"
        )))
    };
    const SECOND: &str = "  - {name: up, image: registry.example.com/up:1, command: [upload]}\n";
    check(&[
        label("label-enabled", "enabled"),
        label("label-capital", "True"),
        label("label-yes", "yes"),
        Case::new(
            "volume-clash",
            labelled_with(
                "  volumes: [{name: meshinit-bin, configMap: {name: settings}}]
  containers:
  - name: task
    image: registry.example.com/task:1
    command: [run]
    volumeMounts: [{name: meshinit-bin, mountPath: /etc/settings}]
",
            ),
            exactly(format!(
                "meshinit.io/inject: the pod has spec.volumes[].name \"meshinit-bin\"{ADDS}"
            )),
        ),
        // A mount at meshinit's path in another form, or under it.
        Case::new(
            "mount-slash",
            mount("/meshinit-bin/", ""),
            exactly(format!(
                "meshinit.io/inject: the pod has a mount of container \"task\" at or under \
                 /meshinit-bin (volumeMounts[].mountPath){ADDS}"
            )),
        ),
        Case::new(
            "mount-under",
            mount("/meshinit-bin/sub", ""),
            exactly(format!(
                "meshinit.io/inject: the pod has a mount of container \"task\" at or under \
                 /meshinit-bin (volumeMounts[].mountPath){ADDS}"
            )),
        ),
        // /meshinit-pod is meshinit's only where it adds it: with two task containers.
        Case::new(
            "mount-pod-shared",
            mount("/meshinit-pod/", SECOND),
            exactly(format!(
                "meshinit.io/inject: the pod has a mount of container \"task\" at or under \
                 /meshinit-bin or /meshinit-pod (volumeMounts[].mountPath){ADDS}"
            )),
        ),
        Case::new(
            "name-clash",
            labelled_with(
                "  initContainers: [{name: install-meshinit, image: registry.example.com/tools:1, command: [setup]}]
  containers:
  - {name: task, image: registry.example.com/task:1, command: [run]}
",
            ),
            exactly(format!(
                "meshinit.io/inject: the pod has spec.initContainers[].name \"install-meshinit\"{ADDS}"
            )),
        ),
        Case::new(
            "windows",
            labelled_with(
                "  os: {name: windows}
  containers:
  - {name: task, image: registry.example.com/task:1, command: [run.exe]}
",
            ),
            Expect::Refused(WINDOWS),
        ),
        Case::new(
            "windows-selector",
            labelled_with(
                "  nodeSelector: {kubernetes.io/os: windows}
  containers:
  - {name: task, image: registry.example.com/task:1, command: [run.exe]}
",
            ),
            Expect::Refused(WINDOWS),
        ),
        Case::new(
            "windows-affinity",
            labelled_with(
                "  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions: [{key: kubernetes.io/os, operator: In, values: [windows]}]
  containers:
  - {name: task, image: registry.example.com/task:1, command: [run.exe]}
",
            ),
            Expect::Refused(WINDOWS),
        ),
        // One task container with meshinit, one without: never half a pod.
        Case::new(
            "partly-wrapped",
            labelled_with(
                "  containers:
  - {name: task, image: registry.example.com/task:1, command: [/usr/local/bin/meshinit, --, run]}
  - {name: uploader, image: registry.example.com/uploader:1, command: [upload]}
",
            ),
            Expect::Refused(
                "meshinit.io/inject: container \"task\" runs meshinit already and \"uploader\" \
                 does not, and meshinit is added only to a pod that has none",
            ),
        ),
        // An init container named like meshinit's does not make a task without command
        // acceptable.
        Case::new(
            "named-install-no-command",
            labelled_with(
                "  initContainers: [{name: install-meshinit, image: registry.example.com/tools:1, command: [setup]}]
  containers:
  - {name: task, image: registry.example.com/task:1, args: [--nightly]}
",
            ),
            Expect::Refused(NO_COMMAND),
        ),
    ]);
}

#[test]
#[ignore = "needs the Kyverno CLI (a 12-minute build here): scripts/kyverno"]
fn names_the_mutation_never_adds_to_a_single_task_are_the_pods_own() {
    check(&[
        // One task container gets no meshinit-pod: the pod's own volume of that name, and a
        // mount at /meshinit-pod, are left to it.
        Case::new(
            "single-task-pod-dir",
            labelled_with(
                "  volumes: [{name: meshinit-pod, emptyDir: {}}]
  containers:
  - name: task
    image: registry.example.com/task:1
    command: [run]
    volumeMounts: [{name: meshinit-pod, mountPath: /meshinit-pod}]
",
            ),
            Expect::Injected(&[("task", &[])]),
        ),
        // An init container named in the annotation is told that init containers are never
        // wrapped, not that the pod does not have it.
        Case::new(
            "init-named",
            "metadata:
  labels: {meshinit.io/inject: \"true\"}
  annotations: {meshinit.io/containers: \"task,prepare\"}
spec:
  restartPolicy: Never
  initContainers: [{name: prepare, image: registry.example.com/prepare:1, command: [prepare]}]
  containers:
  - {name: task, image: registry.example.com/task:1, command: [run]}
",
            Expect::RefusedExactly(
                "meshinit.io/containers names \"prepare\", an init container: init containers \
                 are never wrapped (a native sidecar needs no meshinit, and an init container's \
                 end does not stop the pod's sidecar): name the task containers among \"task\"",
            ),
        ),
        // More names than taken, each short (the count, not the length, over).
        Case::new(
            "sixty-five-names",
            leak_str(format!(
                "metadata:\n  labels: {{meshinit.io/inject: \"true\"}}\n  \
                 annotations: {{meshinit.io/containers: \"task{}\"}}\nspec:\n  \
                 restartPolicy: Never\n  containers:\n  \
                 - {{name: task, image: registry.example.com/task:1, command: [run]}}\n",
                ",task".repeat(64)
            )),
            Expect::RefusedExactly(
                "meshinit.io/containers is 324 characters long; at most 64 names in 4096 \
                 characters are taken (64 container names of the longest, 63 characters, and \
                 their commas): name only the task containers",
            ),
        ),
    ]);
}

/// A 100 KB annotation is refused with the limit's message, by each policy within a
/// webhook's default timeout (10 s), not after seconds of evaluation in a CEL cost error.
#[test]
#[ignore = "needs the Kyverno CLI (a 12-minute build here): scripts/kyverno"]
fn a_long_annotation_is_refused_before_it_is_read() {
    let names = ",task".repeat(20_000);
    let case = Case::new(
        "long-annotation",
        leak_str(format!(
            "metadata:\n  labels: {{meshinit.io/inject: \"true\"}}\n  \
             annotations: {{meshinit.io/containers: \"task{names}\"}}\nspec:\n  \
             restartPolicy: Never\n  containers:\n  \
             - {{name: task, image: registry.example.com/task:1, command: [run]}}\n  \
             - {{name: up, image: registry.example.com/up:1, command: [upload]}}\n"
        )),
        Expect::Untouched,
    );
    let message = "meshinit.io/containers is 100004 characters long; at most 64 names in 4096 \
        characters are taken (64 container names of the longest, 63 characters, and their \
        commas): name only the task containers";
    let dir = prepare(&case);
    admission(&[
        "kyverno-map",
        policy("mutating-admission-policy.yaml").to_str().unwrap(),
        &path(&dir, "map.yaml"),
    ]);
    std::fs::write(
        dir.join("values.yaml"),
        "apiVersion: cli.kyverno.io/v1alpha1\nkind: Values\nmetadata: {name: values}\n\
         namespaceSelector:\n- name: work\n  labels: {}\n",
    )
    .unwrap();
    std::fs::copy(policy("kyverno.yaml"), dir.join("kyverno.yaml")).unwrap();
    for (file, rule, extra) in [
        ("map.yaml", "meshinit-inject", &["-f", "values.yaml"][..]),
        ("kyverno.yaml", "refuse", &[][..]),
    ] {
        let started = std::time::Instant::now();
        let mut args = vec!["apply", file, "--resource", "pod.yaml"];
        args.extend_from_slice(extra);
        let (code, text) = run_kyverno(&dir, &args);
        let took = started.elapsed();
        eprintln!("{file}: refused in {took:?}");
        assert_eq!(code, 1, "{file}: {text}");
        assert!(
            refused_with(&text, rule, message, true),
            "{file}: not refused with '{message}': {text}"
        );
        assert!(
            took < std::time::Duration::from_secs(10),
            "{file}: {took:?}, past a webhook's 10 s"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The label on a Job's or a CronJob's own metadata, not on its pod template, is refused
/// by both policies with where to put it; on the template too, the Job is admitted.
#[test]
#[ignore = "needs the Kyverno CLI (a 12-minute build here): scripts/kyverno"]
fn the_label_on_the_jobs_own_metadata_is_refused_with_where_it_goes() {
    const WHERE: &str = "meshinit.io/inject is on the Job's metadata; put it in \
        spec.template.metadata.labels (for a CronJob, \
        spec.jobTemplate.spec.template.metadata.labels)";
    let template = |labels: &str| {
        format!(
            "    metadata: {{labels: {{{labels}}}}}\n    spec:\n      restartPolicy: Never\n      \
             containers: [{{name: task, image: registry.example.com/task:1, command: [run]}}]\n"
        )
    };
    let job = |labels: &str| {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: report\n  namespace: work\n  \
             labels: {{meshinit.io/inject: \"true\"}}\nspec:\n  template:\n{}",
            template(labels)
        )
    };
    let cron = format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\n  namespace: work\n  \
         labels: {{meshinit.io/inject: \"true\"}}\nspec:\n  schedule: \"0 3 * * *\"\n  \
         jobTemplate:\n    spec:\n      template:\n{}",
        indent(&template("app: nightly"), 4)
    );
    let dir = tempdir("policy-job-label");
    admission(&[
        "kyverno-map",
        policy("mutating-admission-policy.yaml").to_str().unwrap(),
        &path(&dir, "map.yaml"),
    ]);
    std::fs::copy(policy("kyverno.yaml"), dir.join("kyverno.yaml")).unwrap();
    for (name, manifest, refused) in [
        ("job", job("app: report"), true),
        ("cronjob", cron, true),
        ("job-both", job("meshinit.io/inject: \"true\""), false),
    ] {
        std::fs::write(dir.join(format!("{name}.yaml")), manifest).unwrap();
        for (file, rule) in [
            ("map.yaml", "meshinit-inject-job"),
            ("kyverno.yaml", "refuse-job-label"),
        ] {
            let resource = format!("{name}.yaml");
            let (code, text) = run_kyverno(&dir, &["apply", file, "--resource", &resource]);
            if refused {
                assert_eq!(code, 1, "{name}, {file}: {text}");
                assert!(
                    refused_with(&text, rule, WHERE, true),
                    "{name}, {file}: not refused with '{WHERE}': {text}"
                );
            } else {
                assert_eq!(code, 0, "{name}, {file}: {text}");
                assert!(
                    text.contains("pass: 1, fail: 0, warn: 0, error: 0"),
                    "{name}, {file}: {text}"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
