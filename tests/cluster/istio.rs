//! meshinit beside the proxy istiod injects: what the injector writes, each way users
//! configure meshinit, a command that cannot run, `holdApplicationUntilProxyStarts`, and the
//! pod deleted while meshinit waits and while the task runs.

use std::time::Duration;

use crate::api::{apply, kubectl, now, poll, Cluster, Pod};
use crate::common::pods::{yaml_string, TASK_IMAGE};
use crate::manifests::{job, pod, task, Setting};
use crate::{expect_exit, expect_job, expect_proxy_restarts_after_quit, report, LIMIT, PROXY};

/// meshinit's line when pilot-agent took its quit: it answered 200, or (now and then, as it
/// exits) closed the connection without an answer and stopped listening.
pub const QUIT: &str = "sidecar quit via http://127.0.0.1:15020/quitquitquit";

/// The pod annotation that sets `holdApplicationUntilProxyStarts` for one pod.
pub const HOLD: &str = "proxy.istio.io/config: '{\"holdApplicationUntilProxyStarts\": true}'";

/// `pod`'s containers as the API server holds them: `init:NAME:RESTART_POLICY` for each init
/// container, then `NAME` for each container, in their order.
pub fn layout(c: &Cluster, pod: &str) -> String {
    c.pod_field(
        pod,
        "{range .spec.initContainers[*]}init:{.name}:{.restartPolicy} {end}\
         {range .spec.containers[*]}{.name} {end}",
    )
    .trim()
    .to_owned()
}

/// One field of istio-proxy's spec (`.image`, ...), wherever the setting puts it.
fn proxy_field(c: &Cluster, pod: &str, field: &str) -> String {
    c.pod_field(
        pod,
        &format!(
            "{{range .spec.initContainers[?(@.name==\"istio-proxy\")]}}{{{field}}}{{end}}\
             {{range .spec.containers[?(@.name==\"istio-proxy\")]}}{{{field}}}{{end}}"
        ),
    )
}

/// Applies a Job with one task container and `backoffLimit: 0` in `s`'s namespace; its key.
fn run(s: Setting, name: &str, annotations: &str, container: &str) -> String {
    apply(&job(
        s.namespace(),
        name,
        "  backoffLimit: 0\n",
        &pod(annotations, "Never", container, ""),
    ));
    s.key(name)
}

/// The Job `key` Complete with one pod, the task and istio-proxy 0, the proxy not restarted
/// (but as `expect_proxy_restarts_after_quit` says); the pod, its key and the task's log.
fn complete(c: &Cluster, key: &str) -> (Pod, String, String) {
    let (job, pods) = c.finished(key, LIMIT);
    report(key, &job, &pods);
    expect_job(key, &job, "Complete", "CompletionsReached", 1, 0);
    assert_eq!(pods.len(), 1, "{pods:#?}");
    let p = pods.into_iter().next().unwrap();
    expect_exit(&p, "task", 0);
    expect_exit(&p, PROXY, 0);
    expect_proxy_restarts_after_quit(key, &p);
    let pod_key = format!("{}/{}", crate::api::split(key).0, p.name);
    let log = c.log(&pod_key, "task");
    (p, pod_key, log)
}

/// Zero configuration: meshinit finds pilot-agent on 15020, waits for it, runs the task and
/// quits the agent there; Complete. And what the injector wrote: istio-init (REDIRECT), the
/// proxy where the setting puts it, under the image the values name, CLOUD_PLATFORM=none
/// from the mesh config; the proxy got its certificate from istiod's CA.
pub fn completes(c: &Cluster, s: Setting) {
    let key = run(s, "complete", "", &task(&[], "echo task ran", &[], ""));
    let (p, pod_key, log) = complete(c, &key);
    expect_exit(&p, "istio-init", 0);
    // Regular, meshinit starts before the proxy and waits for it; native, the kubelet starts
    // the task once the proxy's startup probe passed, and meshinit finds it ready at once.
    let waited = match s {
        Setting::Regular => "the sidecar is ready after",
        Setting::Native => {
            "found the istio sidecar at http://127.0.0.1:15020/healthz/ready (HTTP 200)"
        }
    };
    for line in [
        "found the istio sidecar at http://127.0.0.1:15020/healthz/ready",
        waited,
        "task ran",
        QUIT,
    ] {
        assert!(
            log.contains(line),
            "{key}: no {line:?} in the task's log:\n{log}"
        );
    }
    let layout = layout(c, &pod_key);
    eprintln!("{key}: the injector wrote: {layout}");
    let want = match s {
        Setting::Regular => "init:istio-init: task istio-proxy",
        Setting::Native => "init:istio-init: init:istio-proxy:Always task",
    };
    assert_eq!(layout, want, "{key}");
    assert_eq!(proxy_field(c, &pod_key, ".image"), c.info("proxy-image"));
    assert_eq!(
        proxy_field(c, &pod_key, ".env[?(@.name==\"CLOUD_PLATFORM\")].value"),
        "none"
    );
    let proxy_log = c.log(&pod_key, PROXY);
    for line in ["generated new workload certificate", "Envoy proxy is ready"] {
        assert!(
            proxy_log.contains(line),
            "{key}: no {line:?} in istio-proxy's log:\n{proxy_log}"
        );
    }
}

/// `MESHINIT_MESH=istio`: Complete, the agent quit on 15020.
pub fn mesh_istio(c: &Cluster, s: Setting) {
    let container = task(&[], "echo task ran", &[("MESHINIT_MESH", "istio")], "");
    let key = run(s, "mesh-istio", "", &container);
    let (_, _, log) = complete(c, &key);
    assert!(log.contains(QUIT), "{key}: {log}");
}

/// scuttle's variables as its users set them (the drop-in path): Envoy's admin API to wait
/// on, pilot-agent's to quit: Complete, the agent quit on 15020.
pub fn scuttle_variables(c: &Cluster, s: Setting) {
    let env = [
        ("ENVOY_ADMIN_API", "http://127.0.0.1:15000"),
        ("ISTIO_QUIT_API", "http://127.0.0.1:15020"),
    ];
    let key = run(s, "scuttle", "", &task(&[], "echo task ran", &env, ""));
    let (_, _, log) = complete(c, &key);
    assert!(
        log.contains("http://127.0.0.1:15000/ready") && log.contains(QUIT),
        "{key}: {log}"
    );
}

/// A command that does not exist: Failed, the task's 127 with meshinit's reason as its
/// termination message, the proxy ended (meshinit still quits it; a native one the kubelet
/// stops), no pod left running.
pub fn mistyped_command(c: &Cluster, s: Setting) {
    let container = format!(
        "  - name: task\n    image: {TASK_IMAGE}\n    imagePullPolicy: Never\n\
         \x20   command: ['/usr/local/bin/meshinit', '--']\n    args: [{}]\n",
        yaml_string("no-such-program")
    );
    let key = run(s, "typo", "", &container);
    let (job, pods) = c.finished(&key, LIMIT);
    report(&key, &job, &pods);
    expect_job(&key, &job, "Failed", "BackoffLimitExceeded", 0, 1);
    assert_eq!(pods.len(), 1, "{pods:#?}");
    let p = &pods[0];
    assert_eq!(p.phase, "Failed", "{p:#?}");
    expect_exit(p, "task", 127);
    let message = &p.container("task").message;
    assert!(
        message.contains("cannot run 'no-such-program'") && message.contains("(exit 127)"),
        "{key}: the termination message: {message:?}"
    );
    assert!(
        p.containers.iter().all(|c| c.state == "terminated"),
        "{key}: a container still runs: {p:#?}"
    );
    eprintln!("{key}: the proxy's exit code {:?}", p.container(PROXY).exit);
}

/// `holdApplicationUntilProxyStarts: true` for the pod (its annotation), with meshinit: no
/// harm. Regular: the injector puts istio-proxy first with a postStart `pilot-agent wait`,
/// so meshinit finds it ready; native: nothing changes (a native sidecar starts first
/// anyway). Complete; how long meshinit waited and the Job took, said.
pub fn hold_application(c: &Cluster, s: Setting) {
    let began = now();
    let key = run(s, "hold", HOLD, &task(&[], "echo task ran", &[], ""));
    let (_, pod_key, log) = complete(c, &key);
    let layout = layout(c, &pod_key);
    if s == Setting::Regular {
        assert_eq!(layout, "init:istio-init: istio-proxy task", "{key}");
        let post_start = proxy_field(c, &pod_key, ".lifecycle.postStart.exec.command");
        assert!(post_start.contains("wait"), "{key}: {post_start}");
    }
    let waited = log
        .lines()
        .find_map(|l| l.split("\"wait_ms\":").nth(1)?.split(',').next())
        .unwrap_or("?")
        .to_owned();
    let took = c.job(&key).true_at["Complete"] - began;
    let wait: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"phase\":\"wait\""))
        .collect();
    eprintln!("{key}: meshinit's wait: {wait:?}");
    eprintln!("{key}: {layout}; meshinit waited {waited} ms; Job created -> Complete {took:.2} s");
}

/// Deletes `key`'s pod `pod_name` with a grace period of 30 s (Kubernetes' default
/// terminationGracePeriodSeconds; the tests' pods have 10) and waits until it is gone; its
/// last status, and how long it took in seconds.
fn delete_pod(c: &Cluster, key: &str, pod_name: &str) -> (Pod, f64) {
    let ns = crate::api::split(key).0;
    let began = now();
    kubectl(&[
        "delete",
        "pod",
        "-n",
        ns,
        pod_name,
        "--grace-period=30",
        "--wait=false",
    ]);
    let gone = c.until(
        Duration::from_secs(60),
        &format!("{key}'s pod {pod_name} gone"),
        |st| {
            st.pods
                .get(&format!("{ns}/{pod_name}"))
                .filter(|p| p.deleted)
                .cloned()
        },
    );
    let took = gone.deleted_at.unwrap() - began;
    (gone, took)
}

/// The first pod of `key` once `ready` holds for it.
fn pod_when(c: &Cluster, key: &str, what: &str, ready: impl Fn(&Pod) -> bool) -> Pod {
    c.until(LIMIT, &format!("{key}: {what}"), |st| {
        st.pods_of(key).into_iter().find(|p| ready(p))
    })
}

/// The pod deleted while the task runs: meshinit forwards the kubelet's TERM, the task's
/// handler runs (its code 7 and termination message), the pod is gone within the grace
/// period with every container ended, the Job Failed.
pub fn deleted_while_the_task_runs(c: &Cluster, s: Setting) {
    let script = "trap 'echo handled TERM; echo handled TERM >/dev/termination-log; exit 7' TERM; \
                  echo up; while :; do sleep 0.1; done";
    let key = run(s, "deleted-running", "", &task(&[], script, &[], ""));
    let running = pod_when(c, &key, "the task running", |p| {
        p.containers
            .iter()
            .any(|c| c.name == "task" && c.state == "running")
    });
    let pod_key = format!("{}/{}", s.namespace(), running.name);
    task_logged(c, &key, &pod_key, "task started");
    let (gone, took) = delete_pod(c, &key, &running.name);
    eprintln!(
        "{key}: the pod gone {took:.2} s after its deletion; its last status: {:?}",
        gone.containers
            .iter()
            .map(|c| format!("{}={:?}", c.name, c.exit))
            .collect::<Vec<_>>()
    );
    let task = gone.container("task");
    assert_eq!(
        task.exit,
        Some(7),
        "the task's handler did not end it: {gone:#?}"
    );
    assert!(task.message.contains("handled TERM"), "{gone:#?}");
    assert!(
        gone.containers.iter().all(|c| c.state == "terminated"),
        "{gone:#?}"
    );
    assert!(
        took < 30.0,
        "{key}: the pod took {took:.2} s, beyond its grace of 30 s"
    );
    let (job, _) = c.finished(&key, LIMIT);
    assert!(job.condition("Failed").is_some(), "{job:#?}");
}

/// Polls the task container's log of `pod_key` (Job `key`) until it holds `line`: a log line
/// is no event of the watcher's, so nothing would wake a wait on its state.
fn task_logged(c: &Cluster, key: &str, pod_key: &str, line: &str) {
    poll(LIMIT, &format!("{key}: {line:?} in the task's log"), || {
        c.log(pod_key, "task").contains(line).then_some(())
    });
}

/// The pod deleted before the proxy is ready (its xDS pointed, by the pod's own
/// `proxy.istio.io/config`, at a closed port of the bridge address, so it never is):
/// regular, meshinit is waiting and takes the TERM before the task started (143, its
/// termination message, the task never run); native, the kubelet never started the task (it
/// waits for the proxy's startup probe). Either way the pod is gone within the grace period,
/// every container ended.
pub fn deleted_before_the_proxy_is_ready(c: &Cluster, s: Setting) {
    let bridge = c.info("bridge");
    let address = bridge.split(' ').nth(1).unwrap();
    let never_ready = format!("proxy.istio.io/config: '{{\"discoveryAddress\": \"{address}:1\"}}'");
    let key = run(
        s,
        "deleted-waiting",
        &never_ready,
        &task(&[], "echo task ran", &[], ""),
    );
    let waiting = match s {
        Setting::Regular => {
            let p = pod_when(c, &key, "meshinit running", |p| {
                p.containers
                    .iter()
                    .any(|c| c.name == "task" && c.state == "running")
            });
            let pod_key = format!("{}/{}", s.namespace(), p.name);
            task_logged(c, &key, &pod_key, "waiting for the sidecar");
            p
        }
        Setting::Native => pod_when(c, &key, "the proxy running, the task not", |p| {
            p.containers
                .iter()
                .any(|c| c.name == PROXY && c.state == "running")
                && p.containers
                    .iter()
                    .any(|c| c.name == "task" && c.state == "waiting")
        }),
    };
    let (gone, took) = delete_pod(c, &key, &waiting.name);
    eprintln!(
        "{key}: the pod gone {took:.2} s after its deletion; its last status: {:?}",
        gone.containers
            .iter()
            .map(|c| format!("{}={}:{:?}", c.name, c.state, c.exit))
            .collect::<Vec<_>>()
    );
    let task = gone.container("task");
    match s {
        Setting::Regular => {
            assert_eq!(task.exit, Some(143), "{gone:#?}");
            assert!(
                task.message.contains("SIGTERM"),
                "{key}: the termination message: {:?}",
                task.message
            );
            assert!(
                gone.containers.iter().all(|c| c.state == "terminated"),
                "{gone:#?}"
            );
        }
        Setting::Native => {
            assert_eq!(task.state, "waiting", "the task started: {gone:#?}");
            assert_eq!(gone.container(PROXY).state, "terminated", "{gone:#?}");
        }
    }
    assert!(
        took < 30.0,
        "{key}: the pod took {took:.2} s, beyond its grace of 30 s"
    );
    let (job, _) = c.finished(&key, LIMIT);
    assert!(job.condition("Failed").is_some(), "{job:#?}");
}
