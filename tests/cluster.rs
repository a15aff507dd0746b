//! Jobs as users run them: a one-node Kubernetes cluster (scripts/cluster: etcd, the API
//! server, the controller-manager, the scheduler and the kubelet, built from the Go module
//! proxy at one version, with real authentication and RBAC) takes Jobs and CronJobs applied
//! with kubectl, and the Job controller's verdict — the Job's conditions and their reasons,
//! its succeeded and failed counts, every pod's container statuses, native sidecars' among
//! them — is the judge. Both sidecar worlds: istio-proxy (the real pilot-agent and Envoy, the
//! tests' xDS server beside them) as a regular container and as a native sidecar, declared as
//! Istio's injector writes it. One cluster serves every scenario (its ports are fixed), so
//! this file has its own runner (`harness = false`): the cluster comes up once, the scenarios
//! run four at a time, the cluster goes down even after a failure, and the host must then be
//! as it was.
//!
//! `cargo test --test cluster [FILTER]` runs the scenarios whose name contains FILTER;
//! `MESHINIT_CLUSTER_RUNS=N` (scripts/bench) instead measures, N Jobs each one after another,
//! the time from `kubectl apply` to the Job's Complete condition.

#[macro_use]
#[allow(unused_macros)]
mod common;
#[path = "cluster/api.rs"]
mod api;
#[path = "cluster/examples.rs"]
mod examples;
#[path = "cluster/manifests.rs"]
mod manifests;

use std::io::Write;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use api::{apply, kubectl, now, Cluster, Job, Pod};
use manifests::{bare_task, cronjob, job, pod, task, World};

/// Time enough for any Job here to finish on a loaded 2-core machine.
const LIMIT: Duration = Duration::from_secs(240);
/// How many scenarios run at once: each has its pods' proxies (pilot-agent and Envoy).
const AT_ONCE: usize = 4;

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let test = "cluster";
    if !(common::need_pid1(test)
        && common::need_tools(
            test,
            &[
                "containerd",
                "ctr",
                "runc",
                "curl",
                "catatonit",
                "busybox",
                "ldd",
                "openssl",
                "python3",
            ],
        ))
    {
        return;
    }
    let Some(envoy) = common::mesh::envoy_bin(test) else {
        return;
    };
    let Some(peers) = common::istio::peers(test) else {
        return;
    };
    let cluster = match Cluster::up() {
        Ok(cluster) => cluster,
        Err(why) if common::in_ci() => panic!("{test}: {why}, and CI=true forbids skipping"),
        Err(why) => {
            eprintln!("SKIP {test}: {why}");
            return;
        }
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let import = |image: &str, root: &std::path::Path, entry: &str| {
            api::cluster(&["image", image, root.to_str().unwrap(), entry], None)
                .unwrap_or_else(|e| panic!("{e}"));
        };
        common::pods::images(&envoy, peers, &import);
        examples::images(&import);
        match std::env::var("MESHINIT_CLUSTER_RUNS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
        {
            Some(runs) => {
                measure(&cluster, runs.max(1));
                (1, 0)
            }
            None => run_scenarios(&cluster, filter.as_deref()),
        }
    }));
    let teardown = cluster.down();
    let (passed, mut failed) = outcome.unwrap_or((0, 1));
    match teardown {
        Ok(()) => println!("test the cluster leaves the host as it found it ... ok"),
        Err(why) => {
            println!("test the cluster leaves the host as it found it ... FAILED\n{why}");
            failed += 1;
        }
    }
    println!("\ncluster: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(101);
    }
}

type Scenario = Box<dyn Fn(&Cluster) + Sync>;

/// Every scenario, the longest first (they wait on the controllers' backoffs and the clock).
fn scenarios() -> Vec<(String, Scenario)> {
    let mut all: Vec<(String, Scenario)> = Vec::new();
    let both = [World::Regular, World::Native];
    for w in both {
        all.push((
            format!("a_cronjob_runs_by_hand_and_on_schedule_{}", w.name()),
            Box::new(move |c| cronjob_runs(c, w)),
        ));
    }
    for w in both {
        all.push((
            format!("on_failure_restarts_the_task_in_place_{}", w.name()),
            Box::new(move |c| on_failure_recovers(c, w)),
        ));
        all.push((
            format!("on_failure_gives_up_at_the_backoff_limit_{}", w.name()),
            Box::new(move |c| on_failure_gives_up(c, w)),
        ));
        all.push((
            format!(
                "a_failing_task_fails_the_job_at_the_backoff_limit_{}",
                w.name()
            ),
            Box::new(move |c| backoff_limit(c, w)),
        ));
    }
    for (w, config) in [
        (World::Regular, Config::Zero),
        (World::Native, Config::Zero),
        (World::Native, Config::MeshNone),
        (World::Native, Config::KeepSidecar),
    ] {
        all.push((
            format!(
                "a_rule_on_137_143_is_not_tripped_by_the_proxy_{}_{}",
                w.name(),
                config.name()
            ),
            Box::new(move |c| proxy_codes_do_not_trip_a_rule(c, w, config)),
        ));
    }
    all.push((
        "every_example_runs_unchanged".into(),
        Box::new(examples::every_example_runs_unchanged),
    ));
    for w in both {
        all.push((
            format!("a_job_completes_{}", w.name()),
            Box::new(move |c| completes(c, w)),
        ));
        all.push((
            format!("fail_job_on_the_task_code_{}", w.name()),
            Box::new(move |c| fail_job_on_42(c, w)),
        ));
        all.push((
            format!("an_indexed_job_completes_every_index_{}", w.name()),
            Box::new(move |c| indexed(c, w)),
        ));
        all.push((
            format!("ttl_zero_removes_the_finished_job_{}", w.name()),
            Box::new(move |c| ttl_zero(c, w)),
        ));
        all.push((
            format!(
                "active_deadline_fails_the_job_after_the_task_handler_{}",
                w.name()
            ),
            Box::new(move |c| active_deadline(c, w)),
        ));
    }
    all.push((
        "without_meshinit_the_job_stays_active".into(),
        Box::new(without_meshinit),
    ));
    all.push((
        "the_cluster_authenticates_and_authorizes".into(),
        Box::new(authentication),
    ));
    all
}

/// Every scenario (or those matching `filter`), `AT_ONCE` at a time; (passed, failed).
fn run_scenarios(cluster: &Cluster, filter: Option<&str>) -> (usize, usize) {
    let chosen: Vec<(String, Scenario)> = scenarios()
        .into_iter()
        .filter(|(name, _)| filter.is_none_or(|f| name.contains(f)))
        .collect();
    println!("\nrunning {} cluster scenarios", chosen.len());
    let slots = (Mutex::new(AT_ONCE), Condvar::new());
    let results: Vec<(String, Result<(), String>, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = chosen
            .iter()
            .map(|(name, scenario)| {
                let slots = &slots;
                let handle = scope.spawn(move || {
                    let mut free = slots
                        .1
                        .wait_while(slots.0.lock().unwrap(), |n| *n == 0)
                        .unwrap();
                    *free -= 1;
                    drop(free);
                    let began = Instant::now();
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        scenario(cluster)
                    }));
                    *slots.0.lock().unwrap() += 1;
                    slots.1.notify_one();
                    (result, began.elapsed())
                });
                (name.clone(), handle)
            })
            .collect();
        handles
            .into_iter()
            .map(|(name, handle)| {
                let (result, took) = handle.join().expect("the runner's thread");
                let result = result.map_err(|panic| {
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default()
                });
                (name, result, took)
            })
            .collect()
    });
    let mut failed = 0;
    for (name, result, took) in &results {
        match result {
            Ok(()) => println!("test {name} ... ok ({:.0} s)", took.as_secs_f64()),
            Err(why) => {
                failed += 1;
                println!("test {name} ... FAILED\n{why}");
            }
        }
    }
    (results.len() - failed, failed)
}

// ---------------------------------------------------------------------------------------
// What the scenarios check

/// The container that is the proxy, whichever world.
const PROXY: &str = "istio-proxy";

fn expect_exit(pod: &Pod, container: &str, code: i32) {
    let c = pod.container(container);
    assert_eq!(
        (c.state.as_str(), c.exit),
        ("terminated", Some(code)),
        "{container} of {}: {pod:#?}",
        pod.name
    );
}

/// The Job's verdict: the condition `kind` True with `reason`, the counts, and nothing
/// left uncounted.
fn expect_job(name: &str, job: &Job, kind: &str, reason: &str, succeeded: u32, failed: u32) {
    assert_eq!(job.condition(kind), Some(reason), "{name}: {job:#?}");
    assert_eq!(
        (job.succeeded, job.failed, job.active),
        (succeeded, failed, 0),
        "{name}: {job:#?}"
    );
    assert!(
        job.uncounted.is_empty(),
        "{name}: uncounted pods left: {job:#?}"
    );
}

/// The proxy's exit code in each pod, for the report.
fn proxy_codes(pods: &[Pod]) -> Vec<Option<i32>> {
    pods.iter().map(|p| p.container(PROXY).exit).collect()
}

/// One line of what the Job controller showed, for README's table.
fn report(name: &str, job: &Job, pods: &[Pod]) {
    let conditions: Vec<String> = job
        .conditions
        .iter()
        .filter(|(_, status, _)| status == "True")
        .map(|(kind, _, reason)| format!("{kind}/{reason}"))
        .collect();
    let containers: Vec<String> = pods
        .iter()
        .map(|p| {
            let each: Vec<String> = p
                .containers
                .iter()
                .map(|c| {
                    let exit = c.exit.map_or(c.state.clone(), |e| {
                        format!(
                            "{e}{}",
                            if c.reason.is_empty() {
                                String::new()
                            } else {
                                format!("/{}", c.reason)
                            }
                        )
                    });
                    let last = c
                        .last_exit
                        .map_or(String::new(), |e| format!(" (before {e})"));
                    format!(
                        "{}{}={exit} restarts {}{last}",
                        if c.init { "init:" } else { "" },
                        c.name,
                        c.restarts
                    )
                })
                .collect();
            format!("[{} {}]", p.phase, each.join(" "))
        })
        .collect();
    eprintln!(
        "{name}: {} succeeded {} failed {}; pods {}",
        conditions.join(","),
        job.succeeded,
        job.failed,
        containers.join(" ")
    );
}

// ---------------------------------------------------------------------------------------
// The scenarios

/// A Job with no configuration: meshinit finds Istio, waits, runs the task, quits the agent;
/// the Job completes with one pod, every container 0.
fn completes(c: &Cluster, w: World) {
    let name = format!("complete-{}", w.name());
    apply(&job(
        &name,
        "  backoffLimit: 0\n",
        &pod(Some(w), "Never", &task(&[], "echo task ran", &[], ""), ""),
    ));
    let (job, pods) = c.finished(&name, LIMIT);
    report(&name, &job, &pods);
    expect_job(&name, &job, "Complete", "CompletionsReached", 1, 0);
    assert_eq!(pods.len(), 1, "{pods:#?}");
    expect_exit(&pods[0], "task", 0);
    expect_exit(&pods[0], PROXY, 0);
    assert_eq!(pods[0].container(PROXY).restarts, 0, "{pods:#?}");
    let log = c.log(&pods[0].name, "task");
    assert!(
        log.contains("task ran") && log.contains("sidecar quit via"),
        "{log}"
    );
}

/// A task that fails: backoffLimit + 1 pods, each Failed with the task's own code and its
/// proxy ended, then Failed with BackoffLimitExceeded.
fn backoff_limit(c: &Cluster, w: World) {
    let name = format!("backoff-{}", w.name());
    apply(&job(
        &name,
        "  backoffLimit: 1\n",
        &pod(Some(w), "Never", &task(&[], "exit 3", &[], ""), ""),
    ));
    let (job, pods) = c.finished(&name, LIMIT);
    report(&name, &job, &pods);
    expect_job(&name, &job, "Failed", "BackoffLimitExceeded", 0, 2);
    assert_eq!(pods.len(), 2, "{pods:#?}");
    for p in &pods {
        assert_eq!(p.phase, "Failed", "{p:#?}");
        expect_exit(p, "task", 3);
        expect_exit(p, PROXY, 0);
    }
}

/// podFailurePolicy FailJob on the task's 42, naming the container: Failed with reason
/// PodFailurePolicy after one pod, although backoffLimit allows three more.
fn fail_job_on_42(c: &Cluster, w: World) {
    let name = format!("fail-on-42-{}", w.name());
    let fields =
        "  backoffLimit: 3\n  podFailurePolicy:\n    rules:\n    - action: FailJob\n      \
                  onExitCodes: {containerName: task, operator: In, values: [42]}\n";
    apply(&job(
        &name,
        fields,
        &pod(Some(w), "Never", &task(&[], "exit 42", &[], ""), ""),
    ));
    let (job, pods) = c.finished(&name, LIMIT);
    report(&name, &job, &pods);
    expect_job(&name, &job, "Failed", "PodFailurePolicy", 0, 1);
    assert_eq!(pods.len(), 1, "{pods:#?}");
    expect_exit(&pods[0], "task", 42);
    expect_exit(&pods[0], PROXY, 0);
}

/// meshinit's configuration in the pod.
#[derive(Clone, Copy)]
enum Config {
    /// Nothing set: meshinit finds the agent and quits it.
    Zero,
    /// MESHINIT_MESH=none: no wait, no quit; the kubelet stops a native proxy.
    MeshNone,
    /// --keep-sidecar always: waits, never quits; the kubelet stops a native proxy.
    KeepSidecar,
}

impl Config {
    fn name(self) -> &'static str {
        match self {
            Config::Zero => "zero_config",
            Config::MeshNone => "mesh_none",
            Config::KeepSidecar => "keep_sidecar",
        }
    }
}

/// The rule users write — FailJob on 137 or 143, without containerName, so it reads every
/// container's code, the proxy's too — with a task that fails with 1: the Job must go on to
/// its backoff limit, each pod's proxy ending with a code the rule does not match.
fn proxy_codes_do_not_trip_a_rule(c: &Cluster, w: World, config: Config) {
    let name = format!(
        "rule-137-143-{}-{}",
        w.name(),
        config.name().replace('_', "-")
    );
    let fields =
        "  backoffLimit: 1\n  podFailurePolicy:\n    rules:\n    - action: FailJob\n      \
                  onExitCodes: {operator: In, values: [137, 143]}\n";
    let container = match config {
        Config::Zero => task(&[], "exit 1", &[], ""),
        Config::MeshNone => task(&[], "exit 1", &[("MESHINIT_MESH", "none")], ""),
        Config::KeepSidecar => task(&["--keep-sidecar", "always"], "exit 1", &[], ""),
    };
    apply(&job(&name, fields, &pod(Some(w), "Never", &container, "")));
    let (job, pods) = c.finished(&name, LIMIT);
    report(&name, &job, &pods);
    eprintln!("{name}: the proxy's exit codes {:?}", proxy_codes(&pods));
    expect_job(&name, &job, "Failed", "BackoffLimitExceeded", 0, 2);
    for p in &pods {
        expect_exit(p, "task", 1);
        let code = p.container(PROXY).exit;
        assert!(
            !matches!(code, Some(137 | 143) | None),
            "{name}: the proxy ended with {code:?}: {p:#?}"
        );
    }
}

/// images/examples/istio-cronjob.yaml's shape: restartPolicy OnFailure, --keep-sidecar
/// on-failure. `script` runs in /work, an emptyDir that outlives the container's restarts.
fn on_failure_job(name: &str, w: World, backoff: u32, script: &str) -> String {
    let container = task(
        &["--mesh", "istio", "--keep-sidecar", "on-failure"],
        script,
        &[],
        "    - {name: work, mountPath: /work}\n",
    );
    job(
        name,
        &format!("  backoffLimit: {backoff}\n"),
        &pod(
            Some(w),
            "OnFailure",
            &container,
            "  volumes:\n  - {name: work, emptyDir: {}}\n",
        ),
    )
}

/// A task that fails twice, then succeeds (its count in the emptyDir): restarted in place
/// with the proxy kept, Complete with one pod, the task's restartCount 2, the proxy's 0.
fn on_failure_recovers(c: &Cluster, w: World) {
    let name = format!("on-failure-{}", w.name());
    let script = "n=$(($(cat /work/n 2>/dev/null || echo 0) + 1)); echo $n >/work/n; echo attempt $n; [ $n -ge 3 ] || exit 1";
    apply(&on_failure_job(&name, w, 4, script));
    let (job, pods, runs) = c.finished_keeping_logs(&name, LIMIT);
    report(&name, &job, &pods);
    let why = format!("{pods:#?}\nthe runs before each restart:\n{runs}");
    assert_eq!(
        job.condition("Complete"),
        Some("CompletionsReached"),
        "{job:#?}\n{why}"
    );
    expect_job(&name, &job, "Complete", "CompletionsReached", 1, 0);
    assert_eq!(pods.len(), 1, "{why}");
    expect_exit(&pods[0], "task", 0);
    let (task, proxy) = (pods[0].container("task"), pods[0].container(PROXY));
    // Its runs' codes are in their logs ("attempt 3" below); the kubelet of v1.34 clears
    // lastState once the container has completed, v1.36's keeps the 1 before it.
    assert_eq!(task.restarts, 2, "{why}");
    assert_eq!(proxy.restarts, 0, "{why}");
    expect_exit(&pods[0], PROXY, 0);
    let log = c.log(&pods[0].name, "task");
    assert!(
        log.contains("attempt 3") && log.contains("sidecar quit via"),
        "{log}"
    );
}

/// A task that always fails: Failed at the backoff limit, and the pod the Job controller
/// deletes is gone, nothing of it left running.
fn on_failure_gives_up(c: &Cluster, w: World) {
    let name = format!("on-failure-gives-up-{}", w.name());
    apply(&on_failure_job(&name, w, 1, "echo failing; exit 1"));
    let (job, pods) = c.finished(&name, LIMIT);
    report(&name, &job, &pods);
    expect_job(&name, &job, "Failed", "BackoffLimitExceeded", 0, 1);
    assert_eq!(pods.len(), 1, "{pods:#?}");
    c.until(
        Duration::from_secs(60),
        &format!("{name}'s pod gone"),
        |s| s.pods_of(&name).iter().all(|p| p.deleted).then_some(()),
    );
    // Its last status: every container ended, the proxy told (or stopped) and gone with 0.
    let last = c.pods_of(&name);
    assert!(last[0].container("task").restarts >= 1, "{last:#?}");
    assert!(
        last[0].containers.iter().all(|c| c.state == "terminated"),
        "{last:#?}"
    );
    expect_exit(&last[0], PROXY, 0);
}

/// A CronJob: `kubectl create job --from=cronjob/NAME`, as users try one, and the run its
/// schedule makes (every minute) both Complete.
fn cronjob_runs(c: &Cluster, w: World) {
    let name = format!("cron-{}", w.name());
    apply(&cronjob(
        &name,
        "  backoffLimit: 0\n",
        &pod(Some(w), "Never", &task(&[], "echo cron run", &[], ""), ""),
    ));
    let by_hand = format!("{name}-by-hand");
    kubectl(&["create", "job", &by_hand, &format!("--from=cronjob/{name}")]);
    let (job, pods) = c.finished(&by_hand, LIMIT);
    report(&by_hand, &job, &pods);
    expect_job(&by_hand, &job, "Complete", "CompletionsReached", 1, 0);
    expect_exit(&pods[0], PROXY, 0);
    let prefix = format!("default/{name}-");
    let scheduled = c.until(
        Duration::from_secs(150),
        &format!("a scheduled run of {name}"),
        |s| {
            s.jobs
                .keys()
                .find(|k| {
                    k.strip_prefix(&prefix)
                        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
                })
                .map(|k| k["default/".len()..].to_owned())
        },
    );
    kubectl(&[
        "patch",
        "cronjob",
        &name,
        "-p",
        r#"{"spec":{"suspend":true}}"#,
    ]);
    let (job, pods) = c.finished(&scheduled, LIMIT);
    report(&scheduled, &job, &pods);
    expect_job(&scheduled, &job, "Complete", "CompletionsReached", 1, 0);
    expect_exit(&pods[0], "task", 0);
    expect_exit(&pods[0], PROXY, 0);
}

/// An Indexed Job, 6 completions 3 at a time, each pod with its own proxy: Complete, six
/// pods, one per index, every proxy quit.
fn indexed(c: &Cluster, w: World) {
    let name = format!("indexed-{}", w.name());
    let fields =
        "  completionMode: Indexed\n  completions: 6\n  parallelism: 3\n  backoffLimit: 0\n";
    apply(&job(
        &name,
        fields,
        &pod(
            Some(w),
            "Never",
            &task(&[], "echo index $JOB_COMPLETION_INDEX", &[], ""),
            "",
        ),
    ));
    let (job, pods) = c.finished(&name, LIMIT);
    report(&name, &job, &pods);
    expect_job(&name, &job, "Complete", "CompletionsReached", 6, 0);
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
fn ttl_zero(c: &Cluster, w: World) {
    let name = format!("ttl-{}", w.name());
    let fields = "  backoffLimit: 0\n  ttlSecondsAfterFinished: 0\n";
    apply(&job(
        &name,
        fields,
        &pod(Some(w), "Never", &task(&[], "echo done", &[], ""), ""),
    ));
    let key = format!("default/{name}");
    let job = c.until(LIMIT, &format!("{name} complete and deleted"), |s| {
        s.jobs.get(&key).filter(|j| j.deleted).cloned()
    });
    assert!(
        job.true_at.contains_key("Complete"),
        "{name} was deleted but never seen Complete: {job:#?}"
    );
}

/// activeDeadlineSeconds on the Job: Failed with DeadlineExceeded; the controller deletes the
/// pod, the kubelet TERMs meshinit, which forwards it: the task's handler runs (its code 7,
/// its termination message); the sidecar is told; no pod left.
fn active_deadline(c: &Cluster, w: World) {
    let name = format!("deadline-{}", w.name());
    let script = "trap 'echo handled TERM; echo handled TERM >/dev/termination-log; exit 7' TERM; \
                  echo up; while :; do sleep 0.1; done";
    apply(&job(
        &name,
        "  backoffLimit: 0\n  activeDeadlineSeconds: 20\n",
        &pod(Some(w), "Never", &task(&[], script, &[], ""), ""),
    ));
    let (job, pods) = c.finished(&name, LIMIT);
    report(&name, &job, &pods);
    expect_job(&name, &job, "Failed", "DeadlineExceeded", 0, 1);
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
        &format!("{name}'s pod gone"),
        |s| s.pods_of(&name).iter().all(|p| p.deleted).then_some(()),
    );
    eprintln!(
        "{name}: the proxy's exit code {:?}",
        pods[0].container(PROXY).exit
    );
}

/// The negative control: istio-proxy a regular container, the task without meshinit: the
/// task ends, and the Job stays Active, its pod Running, held by the proxy.
fn without_meshinit(c: &Cluster) {
    let name = "no-meshinit";
    apply(&job(
        name,
        "  backoffLimit: 0\n",
        &pod(
            Some(World::Regular),
            "Never",
            &bare_task("echo task ran"),
            "",
        ),
    ));
    c.until(LIMIT, "the bare task ended", |s| {
        s.pods_of(name)
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
        let job = c.job(name);
        assert!(!job.finished() && job.active == 1, "{job:#?}");
        let pods = c.pods_of(name);
        assert_eq!(pods.len(), 1, "{pods:#?}");
        assert_eq!(pods[0].phase, "Running", "{pods:#?}");
        assert_eq!(pods[0].container(PROXY).state, "running", "{pods:#?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    kubectl(&["delete", "job", name, "--wait=false"]);
}

/// Real authentication and authorization: no anonymous access to the API server or the
/// kubelet, the node's own identity limited by Node authorization, the admin by RBAC.
fn authentication(_: &Cluster) {
    let info = api::cluster(&["info"], None).unwrap();
    let field = |key: &str| -> String {
        info.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("scripts/cluster info gave no {key}: {info}"))
            .to_owned()
    };
    let bridge_ip = field("bridge").split(' ').nth(1).unwrap().to_owned();
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
        status(&format!("{}/api/v1/pods", field("apiserver"))),
        "401"
    );
    assert_eq!(status(&format!("https://{bridge_ip}:20250/pods")), "401");
    let kubelet_config = api::cluster(&["kubeconfig", "kubelet"], None).unwrap();
    let can = |config: &str, args: &[&str]| -> String {
        let out = std::process::Command::new(field("kubectl"))
            .args(["--kubeconfig", config.trim(), "auth", "can-i"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // Node authorization's answers: "no - can only read namespaced object of this type",
    // "no - node '...' cannot read all nodes, only its own Node object".
    let node = field("node");
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
    assert_eq!(can(&field("kubeconfig"), &["create", "jobs"]), "yes");
}

// ---------------------------------------------------------------------------------------
// The figures (scripts/bench)

/// A measured kind of Job: what it is, where its proxy is (none without), the task's
/// environment.
type Kind<'a> = (&'a str, Option<World>, &'a [(&'a str, &'a str)]);

/// Each kind of Job `runs` times, one after another: `kubectl apply` → Complete, seconds.
fn measure(c: &Cluster, runs: usize) {
    let kinds: [Kind; 4] = [
        ("no sidecar, no meshinit (the cluster's floor)", None, &[]),
        (
            "istio-proxy a regular container, meshinit with no configuration",
            Some(World::Regular),
            &[],
        ),
        (
            "istio-proxy a native sidecar, meshinit with no configuration",
            Some(World::Native),
            &[],
        ),
        (
            "istio-proxy a native sidecar, MESHINIT_MESH=none",
            Some(World::Native),
            &[("MESHINIT_MESH", "none")],
        ),
    ];
    let mut figures = Vec::new();
    for (k, (what, world, env)) in kinds.iter().enumerate() {
        let mut times = Vec::new();
        for run in 0..runs {
            let name = format!("bench-{k}-{run}");
            let container = match world {
                None => bare_task("true"),
                Some(_) => task(&[], "true", env, ""),
            };
            let began = now();
            apply(&job(
                &name,
                "  backoffLimit: 0\n",
                &pod(*world, "Never", &container, ""),
            ));
            let (job, _) = c.finished(&name, LIMIT);
            assert!(job.condition("Complete").is_some(), "{name}: {job:#?}");
            times.push(job.true_at["Complete"] - began);
            kubectl(&["delete", "job", &name, "--wait=false"]);
        }
        times.sort_by(f64::total_cmp);
        figures.push((what, times));
    }
    println!(
        "\nJob created -> Complete, {runs} Jobs each (Kubernetes {}):",
        c.version()
    );
    let p95 = |times: &[f64]| times[((times.len() - 1) as f64 * 0.95).round() as usize];
    let floor = p95(&figures[0].1);
    for (what, times) in &figures {
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "{what}: p50 {:.2} s, p95 {:.2} s, max {:.2} s",
            at(0.5),
            at(0.95),
            times[times.len() - 1]
        );
    }
    for (what, times) in &figures[1..3] {
        let met = p95(times) <= floor + 1.0;
        println!(
            "goal, p95 within the floor + 1 s ({:.2} s): {what}: {}",
            floor + 1.0,
            if met { "met" } else { "MISSED" }
        );
    }
    let _ = std::io::stdout().flush();
}
