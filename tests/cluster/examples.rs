//! The manifests users copy, `images/examples/*.yaml`, applied unchanged with `kubectl apply
//! -f`. Their images are imported under the exact names they use (so `imagePullPolicy:
//! IfNotPresent` needs no registry): meshinit's own (`/meshinit` alone, as the release image
//! lays it out) and the task images, each with meshinit where `COPY --from` puts it (the
//! vendor's image of install-job.yaml without it) and a stand-in for the task's program at
//! the path the example runs (a script that says its name and arguments and exits 0: the
//! users' programs are theirs).
//!
//! The examples expect a mesh to inject the proxy. Until istiod does (the next issue), an
//! injector stand-in, named so, injects it: MutatingAdmissionPolicies (GA in Kubernetes 1.36)
//! that add istio-proxy as the tests declare it by hand — the real pilot-agent and Envoy with
//! the tests' xDS server — to pods in a namespace labelled `istio-injection=enabled`, as a
//! native sidecar when the pod asks with `sidecar.istio.io/nativeSidecar: "true"`; and the
//! Linkerd proxy stand-in to pods annotated `linkerd.io/inject: enabled`. The Cloud SQL Auth
//! Proxy of other-sidecars-job.yaml is a stand-in too: its readiness on `--http-port` and
//! its `/quitquitquit` on the admin port 9091.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::api::{apply, kubectl, poll, Cluster};
use crate::common::pods::{LINKERD_STAND_IN, PROXY_IMAGE, TASK_IMAGE};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// Where the Istio examples are applied (labelled for injection) and where Linkerd's is.
const ISTIO_NS: &str = "examples-istio";
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
/// 200 to anything on `--http-port` (its health check), and on its admin port 9091 a POST to
/// /quitquitquit makes it exit 0.
const CLOUD_SQL_STAND_IN: &str = "#!/bin/sh\n\
port=9090\n\
for a in \"$@\"; do case $a in --http-port=*) port=${a#*=};; esac; done\n\
echo \"cloud-sql-proxy stand-in: $*\"\n\
(while :; do printf 'HTTP/1.0 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n' | nc -l -p \"$port\" >/dev/null; done) &\n\
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
    crate::common::images::busybox_root(&sql, &["sh", "echo", "nc", "head", "kill", "printf"]);
    write_script(&sql.join("cloud-sql-proxy"), CLOUD_SQL_STAND_IN);
    import(CLOUD_SQL_PROXY, &sql, "[\"/cloud-sql-proxy\"]");
    let _ = std::fs::remove_dir_all(dir);
}

/// istio-proxy's fields as CEL for the injector stand-in's apply configuration: what an
/// apply configuration may set (it may not set atomic lists or structs, a command, an env
/// entry's fieldRef: those come by JSON patch).
fn proxy_fields(kind: &str) -> String {
    format!(
        "name: \"istio-proxy\", image: \"{PROXY_IMAGE}\", imagePullPolicy: \"IfNotPresent\", \
         readinessProbe: Object.spec.{kind}.readinessProbe{{httpGet: Object.spec.{kind}.readinessProbe.httpGet{{\
         path: \"/healthz/ready\", port: 15021}}, periodSeconds: 15, timeoutSeconds: 3, failureThreshold: 4}}"
    )
}

/// istio-proxy's command and environment as Istio's template writes them, as JSON patch
/// operations on the container at `path` (CEL maps, their values dyn() so that the list's
/// entries have one type: a list of typed objects as a patch's value makes the API server
/// fail the request).
fn proxy_patch(path: &str) -> String {
    let field = |name: &str, field: &str| {
        format!("{{'name': dyn('{name}'), 'valueFrom': dyn({{'fieldRef': {{'fieldPath': '{field}'}}}})}}")
    };
    let value = |name: &str, value: &str| {
        format!(
            "{{'name': dyn('{name}'), 'value': dyn({})}}",
            cel_string(value)
        )
    };
    format!(
        "JSONPatch{{op: 'add', path: {path} + '/command', value: \
         ['/bin/sh', '-c', 'xds -addr 127.0.0.1:15010 & exec pilot-agent proxy sidecar']}}, \
         JSONPatch{{op: 'add', path: {path} + '/env', value: [{}, {}, {}, {}, {}, {}]}}",
        field("POD_NAME", "metadata.name"),
        field("POD_NAMESPACE", "metadata.namespace"),
        field("INSTANCE_IP", "status.podIP"),
        value("CLOUD_PLATFORM", "none"),
        value("FILE_MOUNTED_CERTS", "true"),
        value(
            "PROXY_CONFIG",
            r#"{"discoveryAddress":"127.0.0.1:15010","controlPlaneAuthPolicy":"NONE","terminationDrainDuration":"5s"}"#
        ),
    )
}

/// The injector stand-in's policies (see the module's comment).
fn injector() -> String {
    let native = "has(object.metadata.annotations) && \
                  'sidecar.istio.io/nativeSidecar' in object.metadata.annotations && \
                  object.metadata.annotations['sidecar.istio.io/nativeSidecar'] == 'true'";
    let injected = "object.spec.containers.exists(c, c.name == 'istio-proxy') || \
                    (has(object.spec.initContainers) && object.spec.initContainers.exists(c, c.name == 'istio-proxy'))";
    let policy = |name: &str, selector: &str, conditions: &[(&str, String)], mutations: &str| {
        let conditions: String = conditions
            .iter()
            .map(|(n, e)| format!("  - name: {n}\n    expression: {}\n", yaml_quote(e)))
            .collect();
        format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingAdmissionPolicy\n\
             metadata: {{name: {name}}}\nspec:\n  matchConstraints:\n    resourceRules:\n\
             \x20   - {{apiGroups: [\"\"], apiVersions: [\"v1\"], operations: [\"CREATE\"], resources: [\"pods\"]}}\n\
             \x20   namespaceSelector: {selector}\n  matchConditions:\n{conditions}\
             \x20 failurePolicy: Fail\n  reinvocationPolicy: Never\n  mutations:\n{mutations}---\n\
             apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingAdmissionPolicyBinding\n\
             metadata: {{name: {name}}}\nspec:\n  policyName: {name}\n---\n"
        )
    };
    let mutation = |kind: &str, apply_config: String, patch: String| {
        format!(
            "  - patchType: ApplyConfiguration\n    applyConfiguration:\n      expression: {}\n\
             \x20 - patchType: JSONPatch\n    jsonPatch:\n      expression: {}\n",
            yaml_quote(&format!(
                "Object{{spec: Object.spec{{{kind}: [Object.spec.{kind}{{{apply_config}}}]}}}}"
            )),
            yaml_quote(&patch)
        )
    };
    let path = |kind: &str| {
        format!(
            "'/spec/{kind}/' + string(object.spec.{kind}.map(c, c.name).indexOf('istio-proxy'))"
        )
    };
    let regular = mutation(
        "containers",
        proxy_fields("containers"),
        format!("[{}]", proxy_patch(&path("containers"))),
    );
    let native_mutation = mutation(
        "initContainers",
        format!(
            "{}, restartPolicy: \"Always\", startupProbe: Object.spec.initContainers.startupProbe{{\
             httpGet: Object.spec.initContainers.startupProbe.httpGet{{path: \"/healthz/ready\", port: 15021}}, \
             initialDelaySeconds: 0, periodSeconds: 1, timeoutSeconds: 3, failureThreshold: 600}}",
            proxy_fields("initContainers")
        ),
        format!(
            "[{}, JSONPatch{{op: 'add', path: {} + '/lifecycle', value: \
             {{'preStop': {{'exec': {{'command': ['pilot-agent', 'request', '--debug-port=15020', 'POST', 'drain']}}}}}}}}]",
            proxy_patch(&path("initContainers")),
            path("initContainers")
        ),
    );
    let linkerd = format!(
        "  - patchType: ApplyConfiguration\n    applyConfiguration:\n      expression: {}\n\
         \x20 - patchType: JSONPatch\n    jsonPatch:\n      expression: {}\n",
        yaml_quote(&format!(
            "Object{{spec: Object.spec{{containers: [Object.spec.containers{{name: \"linkerd-proxy\", \
             image: \"{TASK_IMAGE}\", imagePullPolicy: \"IfNotPresent\"}}]}}}}"
        )),
        yaml_quote(&format!(
            "[JSONPatch{{op: 'add', path: '/spec/containers/' + \
             string(object.spec.containers.map(c, c.name).indexOf('linkerd-proxy')) + '/command', \
             value: ['sh', '-c', {}]}}]",
            cel_string(LINKERD_STAND_IN)
        ))
    );
    let istio_ns = "{matchLabels: {istio-injection: enabled}}";
    let any_ns = "{}";
    [
        policy(
            "meshinit-test-istio-injector-regular",
            istio_ns,
            &[
                ("not-injected", format!("!({injected})")),
                ("regular", format!("!({native})")),
            ],
            &regular,
        ),
        policy(
            "meshinit-test-istio-injector-native",
            istio_ns,
            &[
                ("not-injected", format!("!({injected})")),
                ("native", native.to_owned()),
            ],
            &native_mutation,
        ),
        policy(
            "meshinit-test-linkerd-injector",
            any_ns,
            &[
                (
                    "annotated",
                    "has(object.metadata.annotations) && \
                 'linkerd.io/inject' in object.metadata.annotations && \
                 object.metadata.annotations['linkerd.io/inject'] == 'enabled'"
                        .to_owned(),
                ),
                (
                    "not-injected",
                    "!object.spec.containers.exists(c, c.name == 'linkerd-proxy')".to_owned(),
                ),
            ],
            &linkerd,
        ),
    ]
    .concat()
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

/// Waits until the API server applies the injector's policies (they take effect a moment
/// after they are created): a pod created with --dry-run=server gets each proxy.
fn injecting() {
    let probes = [
        (ISTIO_NS, "", "istio-proxy"),
        (
            ISTIO_NS,
            "sidecar.istio.io/nativeSidecar: 'true'",
            "istio-proxy",
        ),
        (LINKERD_NS, "linkerd.io/inject: enabled", "linkerd-proxy"),
    ];
    for (ns, annotation, proxy) in probes {
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: probe\n  annotations: {{{annotation}}}\n\
             spec:\n  containers:\n  - {{name: task, image: {TASK_IMAGE}}}\n"
        );
        poll(
            Duration::from_secs(30),
            &format!("the injector of {proxy} in {ns}"),
            || {
                let args = [
                    "kubectl",
                    "create",
                    "-n",
                    ns,
                    "--dry-run=server",
                    "-o",
                    "yaml",
                    "-f",
                    "-",
                ];
                crate::api::cluster(&args, Some(&pod))
                    .ok()
                    .filter(|out| out.contains(&format!("name: {proxy}")))
            },
        );
    }
}

/// Every manifest in images/examples/ applied as it is, in a namespace the injector serves:
/// each Job (and a Job made from the CronJob by `kubectl create job --from`) Complete, every
/// container of every pod 0.
pub fn every_example_runs_unchanged(c: &Cluster) {
    apply(&injector());
    for ns in [ISTIO_NS, LINKERD_NS] {
        kubectl(&["create", "namespace", ns]);
    }
    kubectl(&["label", "namespace", ISTIO_NS, "istio-injection=enabled"]);
    injecting();
    for ns in [ISTIO_NS, LINKERD_NS] {
        c.until(
            Duration::from_secs(60),
            &format!("the default service account of {ns}"),
            |_| {
                crate::api::cluster(
                    &["kubectl", "get", "serviceaccount", "default", "-n", ns],
                    None,
                )
                .ok()
            },
        );
    }
    let dir = Path::new(REPO).join("images/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let known: Vec<&str> = IMAGES
        .iter()
        .map(|i| i.0)
        .chain([MESHINIT, CLOUD_SQL_PROXY])
        .collect();
    let mut jobs = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for image in images_named(&text) {
            assert!(
                known.contains(&image.as_str()),
                "{}: image {image} is not imported by the test",
                file.display()
            );
        }
        let ns = if text.contains("linkerd.io/inject") {
            LINKERD_NS
        } else {
            ISTIO_NS
        };
        let name = text
            .lines()
            .skip_while(|l| !l.starts_with("metadata:"))
            .find_map(|l| l.trim().strip_prefix("name: "))
            .unwrap_or_else(|| panic!("{}: no name", file.display()))
            .to_owned();
        kubectl(&["apply", "-n", ns, "-f", file.to_str().unwrap()]);
        if text.contains("kind: CronJob") {
            let by_hand = format!("{name}-by-hand");
            kubectl(&[
                "create",
                "job",
                "-n",
                ns,
                &by_hand,
                &format!("--from=cronjob/{name}"),
            ]);
            kubectl(&[
                "patch",
                "cronjob",
                "-n",
                ns,
                &name,
                "-p",
                r#"{"spec":{"suspend":true}}"#,
            ]);
            jobs.push((file.clone(), format!("{ns}/{by_hand}")));
        } else {
            jobs.push((file.clone(), format!("{ns}/{name}")));
        }
    }
    for (file, job) in &jobs {
        let (status, pods) = c.finished(job, crate::LIMIT);
        crate::report(job, &status, &pods);
        assert_eq!(
            status.condition("Complete"),
            Some("CompletionsReached"),
            "{}: {status:#?}\n{pods:#?}\n{}",
            file.display(),
            c.logs(job)
        );
        assert_eq!(
            (status.succeeded, status.failed),
            (1, 0),
            "{}: {status:#?}\n{}",
            file.display(),
            c.logs(job)
        );
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
    }
}
