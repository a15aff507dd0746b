//! Jobs as users run them: a one-node Kubernetes cluster (scripts/cluster: etcd, the API
//! server, the controller-manager, the scheduler and the kubelet, built from the Go module
//! proxy at one version, with real authentication and RBAC) and Istio's control plane on it
//! (scripts/cluster istiod: istiod built from Istio's module, its webhook injecting
//! istio-proxy — the real pilot-agent and Envoy — its CA and xDS making the proxy ready) take
//! Jobs and CronJobs applied with kubectl, with no proxy in any manifest, and the Job
//! controller's verdict — the Job's conditions and their reasons, its succeeded and failed
//! counts, every pod's container statuses, native sidecars' among them — is the judge. Both
//! of istiod's injection settings: istio-proxy a regular container (`ENABLE_NATIVE_SIDECARS=
//! false`) and a native sidecar (`true`), each in namespaces of its own. And meshinit added
//! by the API server itself, the admission policies of images/examples/policy/ applied as
//! users apply them, to Jobs that only carry their label (cluster/policy.rs). One cluster serves
//! every scenario (its ports are fixed), so this file has its own runner (`harness = false`):
//! the cluster comes up once, the scenarios run `AT_ONCE` at a time, the pods' traffic is
//! then checked to have stayed on the bridge's subnet (with a pod that does not, to show the
//! check sees it), the cluster goes down even after a failure,
//! and the host must then be as it was.
//!
//! `cargo test --test cluster [FILTER]` runs the scenarios whose name contains FILTER (those
//! needing what CI does not build are ignored: `-- --ignored` runs them alone, `--
//! --include-ignored` with the others);
//! `MESHINIT_CLUSTER_RUNS=N` (scripts/bench) instead measures the figures (cluster/figures.rs).

#[macro_use]
#[allow(unused_macros)]
mod common;
#[path = "cluster/api.rs"]
mod api;
#[path = "cluster/examples.rs"]
mod examples;
#[path = "cluster/figures.rs"]
mod figures;
#[path = "cluster/istio.rs"]
mod istio;
#[path = "cluster/jobs.rs"]
mod jobs;
#[path = "cluster/manifests.rs"]
mod manifests;
#[path = "cluster/policy.rs"]
mod policy;

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use api::{apply, Cluster, Job, Pod};
use manifests::{namespace, Setting, BOTH};

/// Time enough for any Job here to finish on a loaded 2-core machine.
const LIMIT: Duration = Duration::from_secs(240);
/// How many scenarios run at once: each has its pods' proxies (pilot-agent and Envoy).
const AT_ONCE: usize = 6;
/// The container that is the proxy, whichever setting.
const PROXY: &str = "istio-proxy";

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let ignored = if std::env::args().any(|a| a == "--ignored") {
        Ignored::Only
    } else if std::env::args().any(|a| a == "--include-ignored") {
        Ignored::Include
    } else {
        Ignored::Skip
    };
    let test = "cluster";
    if !(common::need_pid1(test)
        && common::need_tools(test, common::pods::NODE_TOOLS)
        // The cluster's certificates (scripts/cluster-pki) and its egress rule besides.
        && common::need_tools(test, &["openssl", "iptables"]))
    {
        return;
    }
    // scripts/cluster istiod builds the proxy image from these; asked here first so that a
    // missing one skips (or fails under CI) with its reason.
    if common::mesh::envoy_bin(test).is_none() || common::istio::peers(test).is_none() {
        return;
    }
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
        common::pods::images(&import);
        examples::images(&import);
        for setting in BOTH {
            apply(&namespace(setting.namespace(), setting));
            examples::namespace_ready(setting.namespace(), true);
        }
        match std::env::var("MESHINIT_CLUSTER_RUNS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
        {
            Some(runs) => {
                figures::measure(&cluster, runs.max(1));
                (1, 0)
            }
            None => {
                let (passed, failed) = run_scenarios(&cluster, filter.as_deref(), ignored);
                let (more, fewer) = traffic_stayed_on_the_bridge(&cluster, filter.is_none());
                (passed + more, failed + fewer)
            }
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
    let mut each = |name: &str, run: fn(&Cluster, Setting)| {
        for s in BOTH {
            all.push((format!("{name}_{}", s.name()), Box::new(move |c| run(c, s))));
        }
    };
    each("a_cronjob_runs_by_hand_and_on_schedule", jobs::cronjob_runs);
    each(
        "every_istio_example_runs_unchanged",
        examples::every_istio_example_runs_unchanged,
    );
    each(
        "on_failure_restarts_the_task_in_place",
        jobs::on_failure_recovers,
    );
    each(
        "on_failure_gives_up_at_the_backoff_limit",
        jobs::on_failure_gives_up,
    );
    each(
        "a_failing_task_fails_the_job_at_the_backoff_limit",
        jobs::backoff_limit,
    );
    each(
        "the_pod_deleted_while_the_task_runs",
        istio::deleted_while_the_task_runs,
    );
    each(
        "the_pod_deleted_before_the_proxy_is_ready",
        istio::deleted_before_the_proxy_is_ready,
    );
    each("a_mistyped_command_fails_with_127", istio::mistyped_command);
    each(
        "active_deadline_fails_the_job_after_the_task_handler",
        jobs::active_deadline,
    );
    each("a_job_completes_with_zero_configuration", istio::completes);
    each("mesh_istio_completes", istio::mesh_istio);
    each("scuttles_variables_complete", istio::scuttle_variables);
    each(
        "hold_application_until_proxy_starts",
        istio::hold_application,
    );
    each("fail_job_on_the_task_code", jobs::fail_job_on_42);
    each(
        "a_labelled_job_gets_meshinit_from_the_admission_policy",
        policy::labelled_job_completes,
    );
    each(
        "a_labelled_job_fails_with_the_task_code",
        policy::labelled_job_fails_with_the_task_code,
    );
    each(
        "two_named_task_containers_share_the_sidecar",
        policy::two_named_containers_share_the_sidecar,
    );
    each("an_indexed_job_completes_every_index", jobs::indexed);
    each("ttl_zero_removes_the_finished_job", jobs::ttl_zero);
    for (s, config) in [
        (Setting::Regular, jobs::Config::Zero),
        (Setting::Native, jobs::Config::Zero),
        (Setting::Native, jobs::Config::MeshNone),
        (Setting::Native, jobs::Config::KeepSidecar),
    ] {
        all.push((
            format!(
                "a_rule_on_137_143_is_not_tripped_by_the_proxy_{}_{}",
                s.name(),
                config.name()
            ),
            Box::new(move |c| jobs::proxy_codes_do_not_trip_a_rule(c, s, config)),
        ));
    }
    all.push((
        "the_linkerd_example_runs_unchanged".into(),
        Box::new(examples::the_linkerd_example_runs_unchanged),
    ));
    all.push((
        "without_meshinit_the_job_stays_active".into(),
        Box::new(jobs::without_meshinit),
    ));
    all.push((
        "the_mesh_follows_the_namespace".into(),
        Box::new(policy::the_mesh_follows_the_namespace),
    ));
    all.push((
        "a_labelled_container_without_command_is_refused".into(),
        Box::new(policy::a_container_without_command_is_refused),
    ));
    all.push((
        "clashes_and_meaningless_labels_are_refused".into(),
        Box::new(policy::clashes_and_meaningless_labels_are_refused),
    ));
    all.push((
        "an_unlabelled_job_is_left_as_it_is".into(),
        Box::new(policy::an_unlabelled_job_is_left_as_it_is),
    ));
    all.push((
        "the_policy_applied_twice_adds_meshinit_once".into(),
        Box::new(policy::the_policy_applied_twice_adds_meshinit_once),
    ));
    all.push((
        "the_cluster_authenticates_and_authorizes".into(),
        Box::new(jobs::authentication),
    ));
    all.push((
        "a_second_up_refuses_and_leaves_the_cluster_running".into(),
        Box::new(a_second_up_refuses),
    ));
    all
}

/// Another run's `scripts/cluster up` (or `clean`) while this cluster runs: exit 69 naming
/// its processes by pid and how to stop it, and nothing of it stopped: the API server the
/// same process before and after, the node still Ready.
fn a_second_up_refuses(_: &Cluster) {
    let apiserver = |refused: &str| {
        refused
            .split("kube-apiserver (pid ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .map(str::to_owned)
    };
    let mut seen = Vec::new();
    for step in ["up", "clean", "up"] {
        let refused = api::cluster(&[step], None)
            .expect_err("scripts/cluster up or clean while the cluster runs");
        assert!(
            refused.contains("exit status: 69")
                && refused.contains("a cluster is running")
                && refused.contains("'scripts/cluster down' stops it"),
            "{step}: {refused}"
        );
        seen.push(apiserver(&refused).unwrap_or_else(|| panic!("{step}: {refused}")));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    let ready = api::kubectl(&[
        "get",
        "node",
        "meshinit-cluster",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert_eq!(ready, "True", "the node after the refused up");
}

/// The scenarios that need what CI does not build, with the reason: run with `--ignored`
/// (only these) or `--include-ignored` (all), as libtest's flags say.
fn ignored() -> Vec<(String, &'static str, Scenario)> {
    vec![(
        "kyverno_makes_the_same_pod_and_its_job_completes".into(),
        "needs the Kyverno CLI (a 12-minute build here): scripts/kyverno",
        Box::new(policy::kyverno_makes_the_same_pod),
    )]
}

/// What a run does with the `ignored` scenarios, as libtest's flags say.
#[derive(Clone, Copy, PartialEq)]
enum Ignored {
    /// Name them as ignored, with the reason (no flag).
    Skip,
    /// Run them alone (`--ignored`).
    Only,
    /// Run them with the others (`--include-ignored`).
    Include,
}

/// Every scenario (or those matching `filter`), `AT_ONCE` at a time; (passed, failed).
fn run_scenarios(cluster: &Cluster, filter: Option<&str>, which: Ignored) -> (usize, usize) {
    let mut chosen: Vec<(String, Scenario)> = Vec::new();
    if which != Ignored::Only {
        chosen.extend(scenarios());
    }
    let mut skipped = Vec::new();
    for (name, why, scenario) in ignored() {
        if which == Ignored::Skip {
            skipped.push((name, why));
        } else {
            chosen.push((name, scenario));
        }
    }
    let picked = |name: &str| filter.is_none_or(|f| name.contains(f));
    chosen.retain(|(name, _)| picked(name));
    println!("\nrunning {} cluster scenarios", chosen.len());
    for (name, why) in skipped.iter().filter(|(name, _)| picked(name)) {
        println!("test {name} ... ignored, {why}");
    }
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
                let result = result.map_err(|panic| common::panic_text(&*panic));
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

/// After the scenarios, the pods' traffic. Pods have a default route through the bridge, so
/// whatever they send beyond its subnet reaches the host's rule (scripts/cluster egress),
/// which counts it and drops it. The scenarios' pods must have sent to the subnet — the
/// proxies' certificates and xDS from istiod on the bridge address — and nothing elsewhere.
/// Then the negative control: a pod of its own connects to 169.254.169.254 (clouds' metadata
/// address, off the subnet), and the rule must count that, or it could not have seen the
/// others' either; what it counts then is the control's alone.
/// `all`: every scenario ran, so some packets to the subnet must have been counted (a run
/// filtered down to scenarios without pods may have sent none).
fn traffic_stayed_on_the_bridge(c: &Cluster, all: bool) -> (usize, usize) {
    let name =
        "the pods sent nothing beyond the bridge's subnet, and the check sees a pod that does";
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (to_subnet, elsewhere) = c.egress();
        assert!(
            (to_subnet > 0 || !all) && elsewhere == 0,
            "after the scenarios: {to_subnet} packets to the subnet (none means the rule saw \
             nothing), {elsewhere} dropped on their way elsewhere"
        );
        let control = egress_control(c);
        let (_, with_control) = c.egress();
        assert!(
            with_control > elsewhere,
            "the control pod's connect to {CONTROL_ADDRESS} was not counted ({with_control} \
             packets elsewhere): the rule cannot see what the pods send beyond the subnet\n\
             {control}"
        );
        format!(
            "{to_subnet} packets to the subnet, 0 elsewhere; the control's {with_control} to \
             {CONTROL_ADDRESS} counted and dropped"
        )
    }));
    match checked {
        Ok(said) => {
            println!("test {name} ... ok ({said})");
            (1, 0)
        }
        Err(panic) => {
            let why = common::panic_text(&*panic);
            println!("test {name} ... FAILED\n{why}");
            (0, 1)
        }
    }
}

/// Off the bridge's subnet: where a pod on a cloud would find the metadata service.
const CONTROL_ADDRESS: &str = "169.254.169.254";

/// Runs the negative control's pod (no mesh: the default namespace has no injection) until
/// it is over; returns its log. Its connect's SYNs are dropped, so nc gives up after 2 s.
fn egress_control(c: &Cluster) -> String {
    let pod = "egress-control";
    apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}, namespace: default}}\n\
         spec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 0\n  containers:\n  \
         - name: control\n    image: {}\n    imagePullPolicy: Never\n    command: [/bin/sh, \
         -c, 'nc -w 2 {CONTROL_ADDRESS} 80 </dev/null; echo nc exited $?']\n",
        common::pods::TASK_IMAGE
    ));
    let key = format!("default/{pod}");
    let phase = c.until(LIMIT, &format!("{pod} over"), |s| {
        s.pods
            .get(&key)
            .filter(|p| p.over())
            .map(|p| p.phase.clone())
    });
    let log = c.log(pod, "control");
    assert_eq!(phase, "Succeeded", "{pod}: {log}");
    log
}

// ---------------------------------------------------------------------------------------
// What the scenarios check

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

/// istio-proxy's restartCount in `pod` after meshinit quit it: 0 — but a native sidecar may
/// show 1. The kubelet restarts a native sidecar that exits while a container of the pod
/// still runs, and its look at the containers (once a second) can fall in the moment between
/// pilot-agent's exit and the end of meshinit's container that quit it; the restarted proxy
/// is then stopped with the pod. Said when it happens.
fn expect_proxy_restarts_after_quit(name: &str, pod: &Pod) {
    let proxy = pod.container(PROXY);
    if proxy.init && proxy.restarts == 1 {
        eprintln!(
            "{name}: note: the kubelet restarted the native istio-proxy of {} once, after \
             meshinit's quit and before the task's container ended",
            pod.name
        );
    } else {
        assert_eq!(proxy.restarts, 0, "{name}: {pod:#?}");
    }
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
