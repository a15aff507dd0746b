//! The manifests users copy, `images/examples/*.yaml`, applied unchanged with `kubectl apply
//! -f`. Their images are imported under the exact names they use (so `imagePullPolicy:
//! IfNotPresent` needs no registry): meshinit's own (`/meshinit` alone, as the release image
//! lays it out) and the task images, each with meshinit where `COPY --from` puts it (the
//! vendor's image of install-job.yaml without it) and a stand-in for the task's program at
//! the path the example runs (a script that says its name and arguments and exits 0: the
//! users' programs are theirs).
//!
//! The examples expect a mesh to inject the proxy. The Istio ones are applied in a namespace
//! labelled `istio-injection=enabled` of each of istiod's two injection settings, where
//! istiod's own webhook injects istio-proxy (scripts/cluster istiod). Linkerd's gets the
//! Linkerd proxy stand-in from an injector stand-in, named so: a MutatingAdmissionPolicy (GA
//! in Kubernetes 1.36) that adds it to pods annotated `linkerd.io/inject: enabled` (no Linkerd
//! is available here). The Cloud SQL Auth Proxy of other-sidecars-job.yaml is a stand-in too:
//! its readiness on `--http-port` and its `/quitquitquit` on the admin port 9091.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::api::{apply, dry_run, kubectl, poll, Cluster, Pod};
use crate::common::pods::{LINKERD_STAND_IN, TASK_IMAGE};
use crate::manifests::{namespace, Setting};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// Where Linkerd's example is applied (the Istio ones: `examples-` and the setting's name).
const LINKERD_NS: &str = "examples-linkerd";

/// Each image the examples name: whether it holds meshinit at /usr/local/bin/meshinit, the
/// task programs it holds (stand-ins), and its entrypoint.
const IMAGES: &[(&str, bool, &[&str], &str)] = &[
    (
        "registry.example.com/vendor/report:7.2",
        false,
        &["/opt/vendor/bin/report"],
        "[\"/bin/sh\"]",
    ),
    (
        "registry.example.com/catalogue-sync:2.0.0",
        true,
        &["/app/sync"],
        "[\"/usr/local/bin/meshinit\", \"--\"]",
    ),
    (
        "registry.example.com/reports:1.4.2",
        true,
        &["/usr/local/bin/report"],
        "[\"/usr/local/bin/meshinit\", \"--\"]",
    ),
    (
        "registry.example.com/migrations:7",
        true,
        &["/app/migrate"],
        "[\"/usr/local/bin/meshinit\", \"--\"]",
    ),
    (
        "registry.example.com/migrate:3.2.0",
        true,
        &["/usr/local/bin/migrate"],
        "[\"/usr/local/bin/meshinit\", \"--\"]",
    ),
    (
        "registry.example.com/backup-tools:3",
        true,
        &["/usr/local/bin/dump-database", "/usr/local/bin/upload"],
        "[\"/usr/local/bin/meshinit\", \"--\"]",
    ),
    (
        "registry.example.com/exporter:1.0.0",
        true,
        &["/usr/local/bin/export"],
        "[\"/usr/local/bin/meshinit\", \"--\"]",
    ),
    (
        "registry.example.com/uploader:2.3.1",
        true,
        &["/usr/local/bin/upload"],
        "[\"/usr/local/bin/meshinit\", \"--\"]",
    ),
];
/// meshinit's image, as the release lays it out (FROM scratch, `/meshinit`).
const MESHINIT: &str = "ghcr.io/meshinit/meshinit:0.1.0";
const CLOUD_SQL_PROXY: &str = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.0";

/// A stand-in for the Cloud SQL Auth Proxy (named so: the real one is not available here):
/// on its admin port 9091 a POST to /quitquitquit makes it exit 0, and its health check on
/// `--http-port` answers 200 only once that port listens (503 before). The real proxy starts
/// its admin server before it can report ready (readiness waits for its connections to the
/// instances); a stand-in that said ready first let meshinit's one POST of `--also-quit`
/// find nothing listening on 9091 now and then, and the pod ran on (a CI run, 2026-12-07).
const CLOUD_SQL_STAND_IN: &str = "#!/bin/sh\n\
port=9090\n\
for a in \"$@\"; do case $a in --http-port=*) port=${a#*=};; esac; done\n\
echo \"cloud-sql-proxy stand-in: $*\"\n\
(while :; do\n\
  status='503 Service Unavailable'\n\
  grep -qsi ':2383 [0-9a-f]*:0000 0A' /proc/net/tcp /proc/net/tcp6 && status='200 OK'\n\
  printf 'HTTP/1.0 %s\\r\\nContent-Length: 0\\r\\n\\r\\n' \"$status\" | nc -l -p \"$port\" >/dev/null\n\
done) &\n\
while :; do\n\
  req=$(printf 'HTTP/1.0 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n' | nc -l -p 9091 | head -n 1)\n\
  case $req in 'POST /quitquitquit'*) echo 'cloud-sql-proxy stand-in: quitquitquit'; kill $!; exit 0;; esac\n\
done\n";

fn write_script(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Builds the examples' images and hands each to `import`.
pub fn images(import: &dyn Fn(&str, &Path, &str)) {
    let dir = crate::common::tempdir("example-images");
    for (n, (image, with_meshinit, programs, entry)) in IMAGES.iter().enumerate() {
        let root = dir.join(format!("root-{n}"));
        crate::common::images::busybox_root(
            &root,
            &["sh", "echo", "cat", "sleep", "nc", "head", "kill"],
        );
        // Where the examples' scripts write (shell-entrypoint.yaml), as in any base image.
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        if *with_meshinit {
            std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
            std::fs::copy(crate::common::bin(), root.join("usr/local/bin/meshinit")).unwrap();
        }
        for program in *programs {
            let name = program.rsplit('/').next().unwrap();
            write_script(
                &root.join(program.trim_start_matches('/')),
                &format!("#!/bin/sh\necho \"stand-in for {name}: $*\"\n"),
            );
        }
        import(image, &root, entry);
    }
    let alone = dir.join("meshinit-root");
    std::fs::create_dir_all(&alone).unwrap();
    std::fs::copy(crate::common::bin(), alone.join("meshinit")).unwrap();
    import(MESHINIT, &alone, "[\"/meshinit\", \"--\"]");
    let sql = dir.join("cloud-sql-root");
    crate::common::images::busybox_root(
        &sql,
        &["sh", "echo", "nc", "head", "kill", "printf", "grep"],
    );
    write_script(&sql.join("cloud-sql-proxy"), CLOUD_SQL_STAND_IN);
    import(CLOUD_SQL_PROXY, &sql, "[\"/cloud-sql-proxy\"]");
    let _ = std::fs::remove_dir_all(dir);
}

/// The Linkerd proxy stand-in's injector (see the module's comment): a policy that adds the
/// stand-in to pods annotated `linkerd.io/inject: enabled` that have none.
fn linkerd_injector() -> String {
    let name = "meshinit-test-linkerd-injector";
    let container = yaml_quote(&format!(
        "Object{{spec: Object.spec{{containers: [Object.spec.containers{{name: \"linkerd-proxy\", \
         image: \"{TASK_IMAGE}\", imagePullPolicy: \"IfNotPresent\"}}]}}}}"
    ));
    // A command is an atomic list, which an apply configuration may not set: a JSON patch.
    let command = yaml_quote(&format!(
        "[JSONPatch{{op: 'add', path: '/spec/containers/' + \
         string(object.spec.containers.map(c, c.name).indexOf('linkerd-proxy')) + '/command', \
         value: ['sh', '-c', {}]}}]",
        cel_string(LINKERD_STAND_IN)
    ));
    let annotated = yaml_quote(
        "has(object.metadata.annotations) && 'linkerd.io/inject' in object.metadata.annotations \
         && object.metadata.annotations['linkerd.io/inject'] == 'enabled'",
    );
    let not_injected = yaml_quote("!object.spec.containers.exists(c, c.name == 'linkerd-proxy')");
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingAdmissionPolicy\n\
         metadata: {{name: {name}}}\nspec:\n  matchConstraints:\n    resourceRules:\n\
         \x20   - {{apiGroups: [\"\"], apiVersions: [\"v1\"], operations: [\"CREATE\"], resources: [\"pods\"]}}\n\
         \x20 matchConditions:\n  - name: annotated\n    expression: {annotated}\n\
         \x20 - name: not-injected\n    expression: {not_injected}\n\
         \x20 failurePolicy: Fail\n  reinvocationPolicy: Never\n  mutations:\n\
         \x20 - patchType: ApplyConfiguration\n    applyConfiguration:\n      expression: {container}\n\
         \x20 - patchType: JSONPatch\n    jsonPatch:\n      expression: {command}\n---\n\
         apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingAdmissionPolicyBinding\n\
         metadata: {{name: {name}}}\nspec:\n  policyName: {name}\n"
    )
}

/// `text` as a CEL string literal (single quotes).
fn cel_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `text` as a YAML single-quoted scalar.
fn yaml_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''").replace('\n', " "))
}

/// The image names every example uses, to check that each has been imported.
fn images_named(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("image:"))
        .map(|i| i.trim().trim_matches('"').to_owned())
        .collect()
}

/// Waits until `ns` has its default service account (pods are refused before) and, in a
/// namespace istiod injects, istiod's root certificate (the proxy mounts it). Polled: the
/// watcher sees Jobs and Pods only, so nothing of these would wake a wait on its state.
pub fn namespace_ready(ns: &str, injected: bool) {
    let mut want = vec!["serviceaccount/default"];
    if injected {
        want.push("configmap/istio-ca-root-cert");
    }
    for object in want {
        poll(
            Duration::from_secs(60),
            &format!("{object} in {ns}"),
            || crate::api::cluster(&["kubectl", "get", "-n", ns, object], None).ok(),
        );
    }
}

/// The examples in images/examples/ that `pick` takes (its text), sorted.
fn examples(pick: impl Fn(&str) -> bool) -> Vec<(PathBuf, String)> {
    let dir = Path::new(REPO).join("images/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .filter(|(_, text)| pick(text))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no example in {}", dir.display());
    files
}

/// Applies each example in `ns` as it is (a CronJob: applied, suspended, and run once by
/// `kubectl create job --from`, as users try one); the Jobs to wait for, `NS/NAME`, by file.
fn apply_examples(ns: &str, files: &[(PathBuf, String)]) -> Vec<(PathBuf, String)> {
    let known: Vec<&str> = IMAGES
        .iter()
        .map(|i| i.0)
        .chain([MESHINIT, CLOUD_SQL_PROXY])
        .collect();
    let mut jobs = Vec::new();
    for (file, text) in files {
        for image in images_named(text) {
            assert!(
                known.contains(&image.as_str()),
                "{}: image {image} is not imported by the test",
                file.display()
            );
        }
        let name = text
            .lines()
            .skip_while(|l| !l.starts_with("metadata:"))
            .find_map(|l| l.trim().strip_prefix("name: "))
            .unwrap_or_else(|| panic!("{}: no name", file.display()))
            .to_owned();
        kubectl(&["apply", "-n", ns, "-f", file.to_str().unwrap()]);
        if text.contains("kind: CronJob") {
            let by_hand = format!("{name}-by-hand");
            let from = format!("--from=cronjob/{name}");
            kubectl(&["create", "job", "-n", ns, &by_hand, &from]);
            let suspend = r#"{"spec":{"suspend":true}}"#;
            kubectl(&["patch", "cronjob", "-n", ns, &name, "-p", suspend]);
            jobs.push((file.clone(), format!("{ns}/{by_hand}")));
        } else {
            jobs.push((file.clone(), format!("{ns}/{name}")));
        }
    }
    jobs
}

/// The Job `job` of `file` Complete with one pod, every container of it (init containers
/// too) ended with 0; its pods.
fn expect_complete(c: &Cluster, file: &Path, job: &str) -> Vec<Pod> {
    let (status, pods) = c.finished(job, crate::LIMIT);
    crate::report(job, &status, &pods);
    let why = || {
        format!(
            "{}: {status:#?}\n{}\n{pods:#?}",
            file.display(),
            c.logs(job)
        )
    };
    assert_eq!(
        status.condition("Complete"),
        Some("CompletionsReached"),
        "{}",
        why()
    );
    assert_eq!((status.succeeded, status.failed), (1, 0), "{}", why());
    for p in &pods {
        for container in &p.containers {
            assert_eq!(
                (container.state.as_str(), container.exit),
                ("terminated", Some(0)),
                "{}: {} of {}: {p:#?}",
                file.display(),
                container.name,
                p.name
            );
        }
    }
    pods
}

/// Every Istio manifest in images/examples/ applied as it is in a namespace of `setting`,
/// where istiod injects istio-proxy: each Job (and a Job made from the CronJob by `kubectl
/// create job --from`) Complete, every container of every pod 0, istio-proxy not restarted
/// (but as `expect_proxy_restarts_after_quit` says); meshinit, in each task container, waited for pilot-agent's readiness on 15020
/// before the task, and one of them quit it there — but under `MESHINIT_MESH=none`, where the kubelet stops
/// the (native) proxy.
pub fn every_istio_example_runs_unchanged(c: &Cluster, setting: Setting) {
    let ns = format!("examples-{}", setting.name());
    apply(&namespace(&ns, setting));
    namespace_ready(&ns, true);
    let files = examples(|text| !text.contains("linkerd.io/inject"));
    for (file, job) in apply_examples(&ns, &files) {
        let text = &files.iter().find(|(f, _)| *f == file).unwrap().1;
        let pods = expect_complete(c, &file, &job);
        let mesh_none = text.contains("value: none");
        for p in &pods {
            let layout = crate::istio::layout(c, &format!("{ns}/{}", p.name));
            eprintln!("{job}: the injector wrote: {layout}");
            if mesh_none {
                assert_eq!(
                    p.container(crate::PROXY).restarts,
                    0,
                    "{}: {p:#?}",
                    file.display()
                );
            } else {
                crate::expect_proxy_restarts_after_quit(&job, p);
            }
            let tasks: Vec<&str> = p
                .containers
                .iter()
                .filter(|c| !c.init && c.name != crate::PROXY && c.name != "cloud-sql-proxy")
                .map(|c| c.name.as_str())
                .collect();
            let logs: Vec<String> = tasks
                .iter()
                .map(|t| c.log(&format!("{ns}/{}", p.name), t))
                .collect();
            let all = logs.join("\n");
            // A restart of a native proxy after the quit (see expect_proxy_restarts_after_quit)
            // is said with how the quit went, for README's caveat.
            if p.container(crate::PROXY).restarts > 0 {
                for line in all.lines().filter(|l| l.contains("quit via")) {
                    eprintln!("{job}: the quit before that restart: {line}");
                }
            }
            if mesh_none {
                assert!(
                    !all.contains("sidecar quit via"),
                    "{}: {all}",
                    file.display()
                );
                continue;
            }
            // Each waited on pilot-agent's readiness before its task.
            for log in &logs {
                let wait = log.find("http://127.0.0.1:15020/healthz/ready");
                let started = log.find("task started");
                assert!(
                    wait.is_some() && started.is_some() && wait < started,
                    "{}: {log}",
                    file.display()
                );
            }
            assert!(
                all.contains(crate::istio::QUIT),
                "{}: {all}",
                file.display()
            );
            // The other sidecar (other-sidecars-job.yaml) took its one quit request.
            if text.contains("MESHINIT_ALSO_QUIT") {
                assert!(
                    all.contains("info: notified http://127.0.0.1:9091/quitquitquit: HTTP 200"),
                    "{}: {all}",
                    file.display()
                );
            }
        }
    }
}

/// Linkerd's example applied as it is, the Linkerd proxy stand-in injected by the injector
/// stand-in: Complete, every container 0.
pub fn the_linkerd_example_runs_unchanged(c: &Cluster) {
    apply(&linkerd_injector());
    kubectl(&["create", "namespace", LINKERD_NS]);
    namespace_ready(LINKERD_NS, false);
    // The policy takes effect a moment after it is made: a pod created with
    // --dry-run=server gets the stand-in.
    let probe = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: probe\n  annotations: {{linkerd.io/inject: enabled}}\n\
         spec:\n  containers:\n  - {{name: task, image: {TASK_IMAGE}}}\n"
    );
    poll(
        Duration::from_secs(30),
        "the injector stand-in of linkerd-proxy",
        || {
            dry_run(LINKERD_NS, &probe)
                .ok()
                .filter(|pod| pod.contains("\"name\": \"linkerd-proxy\""))
        },
    );
    let files = examples(|text| text.contains("linkerd.io/inject"));
    for (file, job) in apply_examples(LINKERD_NS, &files) {
        expect_complete(c, &file, &job);
    }
}
