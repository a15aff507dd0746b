//! The Job controller's own scenarios — backoff limits, podFailurePolicy, OnFailure restarts,
//! CronJobs, Indexed Jobs, TTL, deadlines, the negative control — each with istio-proxy from
//! istiod's webhook, in either injection setting; and the cluster's authentication.

use std::time::{Duration, Instant};

use crate::api::{apply, kubectl, Cluster};
use crate::manifests::{bare_task, cronjob, job, pod, task, Setting};
use crate::{
    expect_exit, expect_job, expect_proxy_restarts_after_quit, proxy_codes, report, LIMIT, PROXY,
};

/// A task that fails: backoffLimit + 1 pods, each Failed with the task's own code and its
/// proxy ended, then Failed with BackoffLimitExceeded.
pub fn backoff_limit(c: &Cluster, s: Setting) {
    let name = "backoff";
    apply(&job(
        s.namespace(),
        name,
        "  backoffLimit: 1\n",
        &pod("", "Never", &task(&[], "exit 3", &[], ""), ""),
    ));
    let key = s.key(name);
    let (job, pods) = c.finished(&key, LIMIT);
    report(&key, &job, &pods);
    expect_job(&key, &job, "Failed", "BackoffLimitExceeded", 0, 2);
    assert_eq!(pods.len(), 2, "{pods:#?}");
    for p in &pods {
        assert_eq!(p.phase, "Failed", "{p:#?}");
        expect_exit(p, "task", 3);
        expect_exit(p, PROXY, 0);
    }
}

/// podFailurePolicy FailJob on the task's 42, naming the container: Failed with reason
/// PodFailurePolicy after one pod, although backoffLimit allows three more.
pub fn fail_job_on_42(c: &Cluster, s: Setting) {
    let name = "fail-on-42";
    let fields =
        "  backoffLimit: 3\n  podFailurePolicy:\n    rules:\n    - action: FailJob\n      \
                  onExitCodes: {containerName: task, operator: In, values: [42]}\n";
    apply(&job(
        s.namespace(),
        name,
        fields,
        &pod("", "Never", &task(&[], "exit 42", &[], ""), ""),
    ));
    let key = s.key(name);
    let (job, pods) = c.finished(&key, LIMIT);
    report(&key, &job, &pods);
    expect_job(&key, &job, "Failed", "PodFailurePolicy", 0, 1);
    assert_eq!(pods.len(), 1, "{pods:#?}");
    expect_exit(&pods[0], "task", 42);
    expect_exit(&pods[0], PROXY, 0);
}

/// meshinit's configuration in the pod.
#[derive(Clone, Copy)]
pub enum Config {
    /// Nothing set: meshinit finds the agent and quits it.
    Zero,
    /// MESHINIT_MESH=none: no wait, no quit; the kubelet stops a native proxy.
    MeshNone,
    /// --keep-sidecar always: waits, never quits; the kubelet stops a native proxy.
    KeepSidecar,
}

impl Config {
    pub fn name(self) -> &'static str {
        match self {
            Config::Zero => "zero_config",
            Config::MeshNone => "mesh_none",
            Config::KeepSidecar => "keep_sidecar",
        }
    }
}

/// The rule users write — FailJob on 137 or 143, without containerName, so it reads every
/// container's code, the proxy's and istio-init's too — with a task that fails with 1: the
/// Job must go on to its backoff limit, each pod's proxy ending with a code the rule does not
/// match.
pub fn proxy_codes_do_not_trip_a_rule(c: &Cluster, s: Setting, config: Config) {
    let name = format!("rule-137-143-{}", config.name().replace('_', "-"));
    let fields =
        "  backoffLimit: 1\n  podFailurePolicy:\n    rules:\n    - action: FailJob\n      \
                  onExitCodes: {operator: In, values: [137, 143]}\n";
    let container = match config {
        Config::Zero => task(&[], "exit 1", &[], ""),
        Config::MeshNone => task(&[], "exit 1", &[("MESHINIT_MESH", "none")], ""),
        Config::KeepSidecar => task(&["--keep-sidecar", "always"], "exit 1", &[], ""),
    };
    apply(&job(
        s.namespace(),
        &name,
        fields,
        &pod("", "Never", &container, ""),
    ));
    let key = s.key(&name);
    let (job, pods) = c.finished(&key, LIMIT);
    report(&key, &job, &pods);
    eprintln!("{key}: the proxy's exit codes {:?}", proxy_codes(&pods));
    expect_job(&key, &job, "Failed", "BackoffLimitExceeded", 0, 2);
    for p in &pods {
        expect_exit(p, "task", 1);
        let code = p.container(PROXY).exit;
        assert!(
            !matches!(code, Some(137 | 143) | None),
            "{key}: the proxy ended with {code:?}: {p:#?}"
        );
    }
}

/// images/examples/istio-cronjob.yaml's shape: restartPolicy OnFailure, --keep-sidecar
/// on-failure. `script` runs in /work, an emptyDir that outlives the container's restarts.
fn on_failure_job(s: Setting, name: &str, backoff: u32, script: &str) -> String {
    let container = task(
        &["--mesh", "istio", "--keep-sidecar", "on-failure"],
        script,
        &[],
        "    - {name: work, mountPath: /work}\n",
    );
    job(
        s.namespace(),
        name,
        &format!("  backoffLimit: {backoff}\n"),
        &pod(
            "",
            "OnFailure",
            &container,
            "  volumes:\n  - {name: work, emptyDir: {}}\n",
        ),
    )
}

/// A task that fails twice, then succeeds (its count in the emptyDir): restarted in place
/// with the proxy kept, Complete with one pod, the task's restartCount 2, the proxy's 0 (but as
/// `expect_proxy_restarts_after_quit` says).
pub fn on_failure_recovers(c: &Cluster, s: Setting) {
    let name = "on-failure";
    let script = "n=$(($(cat /work/n 2>/dev/null || echo 0) + 1)); echo $n >/work/n; echo attempt $n; [ $n -ge 3 ] || exit 1";
    apply(&on_failure_job(s, name, 4, script));
    let key = s.key(name);
    let (job, pods, runs) = c.finished_keeping_logs(&key, LIMIT);
    report(&key, &job, &pods);
    let why = format!("{pods:#?}\nthe runs before each restart:\n{runs}");
    assert_eq!(
        job.condition("Complete"),
        Some("CompletionsReached"),
        "{job:#?}\n{why}"
    );
    expect_job(&key, &job, "Complete", "CompletionsReached", 1, 0);
    assert_eq!(pods.len(), 1, "{why}");
    expect_exit(&pods[0], "task", 0);
    assert_eq!(pods[0].container("task").restarts, 2, "{why}");
    expect_proxy_restarts_after_quit(&key, &pods[0]);
    expect_exit(&pods[0], PROXY, 0);
    let log = c.log(&format!("{}/{}", s.namespace(), pods[0].name), "task");
    assert!(
        log.contains("attempt 3") && log.contains("sidecar quit via"),
        "{log}"
    );
}

/// A task that always fails: Failed at the backoff limit, and the pod the Job controller
/// deletes is gone, nothing of it left running.
pub fn on_failure_gives_up(c: &Cluster, s: Setting) {
    let name = "on-failure-gives-up";
    apply(&on_failure_job(s, name, 1, "echo failing; exit 1"));
    let key = s.key(name);
    let (job, pods) = c.finished(&key, LIMIT);
    report(&key, &job, &pods);
    expect_job(&key, &job, "Failed", "BackoffLimitExceeded", 0, 1);
    assert_eq!(pods.len(), 1, "{pods:#?}");
    c.until(
        Duration::from_secs(60),
        &format!("{key}'s pod gone"),
        |st| st.pods_of(&key).iter().all(|p| p.deleted).then_some(()),
    );
    // Its last status: every container ended, the proxy told (or stopped) and gone with 0.
    let last = c.pods_of(&key);
    assert!(last[0].container("task").restarts >= 1, "{last:#?}");
    assert!(
        last[0].containers.iter().all(|c| c.state == "terminated"),
        "{last:#?}"
    );
    expect_exit(&last[0], PROXY, 0);
}

/// A CronJob: `kubectl create job --from=cronjob/NAME`, as users try one, and the run its
/// schedule makes (every minute) both Complete.
pub fn cronjob_runs(c: &Cluster, s: Setting) {
    let (ns, name) = (s.namespace(), "cron");
    apply(&cronjob(
        ns,
        name,
        "  backoffLimit: 0\n",
        &pod("", "Never", &task(&[], "echo cron run", &[], ""), ""),
    ));
    let by_hand = s.key("cron-by-hand");
    let from = format!("--from=cronjob/{name}");
    kubectl(&["create", "job", "-n", ns, "cron-by-hand", &from]);
    let (job, pods) = c.finished(&by_hand, LIMIT);
    report(&by_hand, &job, &pods);
    expect_job(&by_hand, &job, "Complete", "CompletionsReached", 1, 0);
    expect_exit(&pods[0], PROXY, 0);
    let prefix = format!("{ns}/{name}-");
    let scheduled = c.until(
        Duration::from_secs(150),
        &format!("a scheduled run of {ns}/{name}"),
        |st| {
            st.jobs
                .keys()
                .find(|k| {
                    k.strip_prefix(&prefix)
                        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
                })
                .cloned()
        },
    );
    let suspend = r#"{"spec":{"suspend":true}}"#;
    kubectl(&["patch", "cronjob", "-n", ns, name, "-p", suspend]);
    let (job, pods) = c.finished(&scheduled, LIMIT);
    report(&scheduled, &job, &pods);
    expect_job(&scheduled, &job, "Complete", "CompletionsReached", 1, 0);
    expect_exit(&pods[0], "task", 0);
    expect_exit(&pods[0], PROXY, 0);
}

/// An Indexed Job, 6 completions 3 at a time, each pod with its own proxy: Complete, six
/// pods, one per index, every proxy quit.
pub fn indexed(c: &Cluster, s: Setting) {
    let name = "indexed";
    let fields =
        "  completionMode: Indexed\n  completions: 6\n  parallelism: 3\n  backoffLimit: 0\n";
    apply(&job(
        s.namespace(),
        name,
        fields,
        &pod(
            "",
            "Never",
            &task(&[], "echo index $JOB_COMPLETION_INDEX", &[], ""),
            "",
        ),
    ));
    let key = s.key(name);
    let (job, pods) = c.finished(&key, LIMIT);
    report(&key, &job, &pods);
    expect_job(&key, &job, "Complete", "CompletionsReached", 6, 0);
    assert_eq!(pods.len(), 6, "{pods:#?}");
    let mut indexes: Vec<String> = pods.iter().map(|p| p.index.clone()).collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2", "3", "4", "5"], "{pods:#?}");
    for p in &pods {
        expect_exit(p, "task", 0);
        expect_exit(p, PROXY, 0);
    }
}

/// ttlSecondsAfterFinished: 0: the Job is seen Complete, then deleted.
pub fn ttl_zero(c: &Cluster, s: Setting) {
    let name = "ttl";
    let fields = "  backoffLimit: 0\n  ttlSecondsAfterFinished: 0\n";
    apply(&job(
        s.namespace(),
        name,
        fields,
        &pod("", "Never", &task(&[], "echo done", &[], ""), ""),
    ));
    let key = s.key(name);
    let job = c.until(LIMIT, &format!("{key} complete and deleted"), |st| {
        st.jobs.get(&key).filter(|j| j.deleted).cloned()
    });
    assert!(
        job.true_at.contains_key("Complete"),
        "{key} was deleted but never seen Complete: {job:#?}"
    );
}

/// activeDeadlineSeconds on the Job: Failed with DeadlineExceeded; the controller deletes the
/// pod, the kubelet TERMs meshinit, which forwards it: the task's handler runs (its code 7,
/// its termination message); the sidecar is told; no pod left.
pub fn active_deadline(c: &Cluster, s: Setting) {
    let name = "deadline";
    let script = "trap 'echo handled TERM; echo handled TERM >/dev/termination-log; exit 7' TERM; \
                  echo up; while :; do sleep 0.1; done";
    apply(&job(
        s.namespace(),
        name,
        "  backoffLimit: 0\n  activeDeadlineSeconds: 20\n",
        &pod("", "Never", &task(&[], script, &[], ""), ""),
    ));
    let key = s.key(name);
    let (job, pods) = c.finished(&key, LIMIT);
    report(&key, &job, &pods);
    expect_job(&key, &job, "Failed", "DeadlineExceeded", 0, 1);
    assert_eq!(pods.len(), 1, "{pods:#?}");
    let task = pods[0].container("task");
    assert_eq!(
        task.exit,
        Some(7),
        "the task's TERM handler did not end it: {pods:#?}"
    );
    assert!(task.message.contains("handled TERM"), "{pods:#?}");
    c.until(
        Duration::from_secs(60),
        &format!("{key}'s pod gone"),
        |st| st.pods_of(&key).iter().all(|p| p.deleted).then_some(()),
    );
    eprintln!(
        "{key}: the proxy's exit code {:?}",
        pods[0].container(PROXY).exit
    );
}

/// The negative control: istio-proxy injected as a regular container, the task without
/// meshinit: the task ends, and the Job stays Active, its pod Running, held by the proxy.
pub fn without_meshinit(c: &Cluster) {
    let s = Setting::Regular;
    let name = "no-meshinit";
    apply(&job(
        s.namespace(),
        name,
        "  backoffLimit: 0\n",
        &pod("", "Never", &bare_task("echo task ran"), ""),
    ));
    let key = s.key(name);
    c.until(LIMIT, "the bare task ended", |st| {
        st.pods_of(&key)
            .iter()
            .any(|p| {
                p.containers
                    .iter()
                    .any(|c| c.name == "task" && c.state == "terminated")
            })
            .then_some(())
    });
    let ended = Instant::now();
    while ended.elapsed() < Duration::from_secs(15) {
        let job = c.job(&key);
        assert!(!job.finished() && job.active == 1, "{job:#?}");
        let pods = c.pods_of(&key);
        assert_eq!(pods.len(), 1, "{pods:#?}");
        assert_eq!(pods[0].phase, "Running", "{pods:#?}");
        assert_eq!(pods[0].container(PROXY).state, "running", "{pods:#?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    kubectl(&["delete", "job", "-n", s.namespace(), name, "--wait=false"]);
}

/// Real authentication and authorization: no anonymous access to the API server or the
/// kubelet, the node's own identity limited by Node authorization, the admin by RBAC.
pub fn authentication(c: &Cluster) {
    let bridge_ip = c.info("bridge").split(' ').nth(1).unwrap().to_owned();
    let status = |url: &str| -> String {
        let out = std::process::Command::new("curl")
            .args([
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
                url,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        status(&format!("{}/api/v1/pods", c.info("apiserver"))),
        "401"
    );
    assert_eq!(status(&format!("https://{bridge_ip}:20250/pods")), "401");
    let kubelet_config = crate::api::cluster(&["kubeconfig", "kubelet"], None).unwrap();
    let kubectl = c.info("kubectl");
    let can = |config: &str, args: &[&str]| -> String {
        let out = std::process::Command::new(&kubectl)
            .args(["--kubeconfig", config.trim(), "auth", "can-i"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // Node authorization's answers: "no - can only read namespaced object of this type",
    // "no - node '...' cannot read all nodes, only its own Node object".
    let node = c.info("node");
    assert_eq!(
        can(&kubelet_config, &["get", &format!("nodes/{node}")]),
        "yes"
    );
    for denied in [
        &["list", "secrets", "--all-namespaces"][..],
        &["get", "nodes"],
    ] {
        let answer = can(&kubelet_config, denied);
        assert!(answer.starts_with("no"), "{denied:?}: {answer}");
    }
    assert_eq!(can(&c.info("kubeconfig"), &["create", "jobs"]), "yes");
}
