//! Pods as a cluster runs them: Kubernetes' own kubelet (scripts/kubelet: built from the Go
//! module proxy, on a containerd of its own, pods from a folder, pod networks on a CNI
//! bridge) runs each pod, and its pod status — phase, reason, each container's exit code,
//! restart count and termination message — is the judge. One kubelet serves every scenario
//! (its ports are fixed), so this file has its own runner (`harness = false`): the node comes
//! up once, the scenarios run side by side, the node goes down even after a failure, and
//! the host must then be as it was (no process, mount, bridge, cgroup, sysctl or folder left).
//!
//! `cargo test --test kubelet [FILTER]` runs the scenarios whose name contains FILTER;
//! `MESHINIT_KUBELET_RUNS=N` (scripts/bench) instead measures, N runs each, the time from the
//! task's exit to the pod's final phase for a pod without a sidecar, an Istio pod under
//! meshinit, and a native-sidecar pod with and without meshinit's quit.

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// The node's name: a static pod's name is its manifest's name and this.
const NODE: &str = "meshinit";
use common::pods::{
    container, hand_declared_istio_proxy, yaml_string, HAND_DECLARED_PROXY_IMAGE, LINKERD_STAND_IN,
    MESHINIT_IMAGE, PLAIN_IMAGE, TASK_IMAGE,
};

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let test = "kubelet";
    if !(common::need_pid1(test) && common::need_tools(test, common::pods::NODE_TOOLS)) {
        return;
    }
    let Some(envoy) = common::mesh::envoy_bin(test) else {
        return;
    };
    let Some(peers) = common::istio::peers(test) else {
        return;
    };
    let node = match Node::up() {
        Ok(node) => node,
        Err(why) if common::in_ci() => panic!("{test}: {why}, and CI=true forbids skipping"),
        Err(why) => {
            eprintln!("SKIP {test}: {why}");
            return;
        }
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        node.images(&envoy, peers);
        match std::env::var("MESHINIT_KUBELET_RUNS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
        {
            Some(runs) => {
                measure(&node, runs.max(1), filter.as_deref());
                (1, 0)
            }
            None => run_scenarios(&node, filter.as_deref()),
        }
    }));
    let teardown = node.down();
    let (passed, mut failed) = outcome.unwrap_or((0, 1));
    match teardown {
        Ok(()) => println!("test the node leaves the host as it found it ... ok"),
        Err(why) => {
            println!("test the node leaves the host as it found it ... FAILED\n{why}");
            failed += 1;
        }
    }
    println!("\nkubelet: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(101);
    }
}

type Scenario = fn(&Node);

const SCENARIOS: &[(&str, Scenario)] = &[
    (
        "a_job_pod_under_istio_succeeds",
        a_job_pod_under_istio_succeeds,
    ),
    (
        "a_failing_task_fails_the_pod_with_its_code",
        a_failing_task_fails_the_pod_with_its_code,
    ),
    (
        "without_meshinit_the_pod_never_completes",
        without_meshinit_the_pod_never_completes,
    ),
    (
        "native_sidecar_with_mesh_none",
        native_sidecar_with_mesh_none,
    ),
    (
        "native_sidecar_with_no_configuration",
        native_sidecar_with_no_configuration,
    ),
    (
        "active_deadline_is_the_backstop",
        active_deadline_is_the_backstop,
    ),
    (
        "a_typo_fails_the_pod_with_the_task_first",
        a_typo_fails_the_pod_with_the_task_first,
    ),
    (
        "a_typo_fails_the_pod_with_the_proxy_first",
        a_typo_fails_the_pod_with_the_proxy_first,
    ),
    (
        "a_typo_fails_a_pod_without_a_sidecar",
        a_typo_fails_a_pod_without_a_sidecar,
    ),
    (
        "envoy_alone_is_found_and_quit",
        envoy_alone_is_found_and_quit,
    ),
    (
        "linkerd_stand_in_is_found_and_shut_down",
        linkerd_stand_in_is_found_and_shut_down,
    ),
    (
        "two_task_containers_share_one_sidecar",
        two_task_containers_share_one_sidecar,
    ),
    (
        "a_failing_task_container_fails_the_shared_pod_with_its_code",
        a_failing_task_container_fails_the_shared_pod_with_its_code,
    ),
    (
        "an_init_container_installs_meshinit",
        an_init_container_installs_meshinit,
    ),
];

/// Every scenario (or those matching `filter`) side by side, each its own pods; returns
/// (passed, failed).
fn run_scenarios(node: &Node, filter: Option<&str>) -> (usize, usize) {
    let chosen: Vec<&(&str, Scenario)> = SCENARIOS
        .iter()
        .filter(|(name, _)| filter.is_none_or(|f| name.contains(f)))
        .collect();
    println!("\nrunning {} kubelet scenarios", chosen.len());
    let results: Vec<(&str, Result<(), String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = chosen
            .iter()
            .map(|(name, scenario)| {
                let handle = scope.spawn(move || scenario(node));
                (*name, handle)
            })
            .collect();
        handles
            .into_iter()
            .map(|(name, handle)| {
                let result = handle.join().map_err(|panic| common::panic_text(&*panic));
                (name, result)
            })
            .collect()
    });
    let mut failed = 0;
    for (name, result) in &results {
        match result {
            Ok(()) => println!("test {name} ... ok"),
            Err(why) => {
                failed += 1;
                println!("test {name} ... FAILED\n{why}");
            }
        }
    }
    (results.len() - failed, failed)
}

// ---------------------------------------------------------------------------------------
// The node

/// The kubelet and its containerd (scripts/kubelet), with a watcher of its pod status.
struct Node {
    /// What the kubelet changes on the host, as it was before `up`.
    host_before: String,
    /// The kubelet's version (scripts/peers builds it; MESHINIT_KUBE_VERSION picks another).
    version: String,
    watcher: Mutex<Option<(Child, ChildStdin)>>,
    status: Arc<(Mutex<Status>, Condvar)>,
}

/// The kubelet's view: the latest snapshot, and when each pod was first seen final.
#[derive(Default)]
struct Status {
    pods: HashMap<String, Pod>,
    final_at: HashMap<String, f64>,
    /// The watcher's last words when it stopped.
    ended: Option<String>,
}

#[derive(Clone, Debug, Default)]
struct Pod {
    phase: String,
    reason: String,
    containers: Vec<Container>,
}

#[derive(Clone, Debug)]
struct Container {
    name: String,
    init: bool,
    state: String,
    exit: Option<i32>,
    restarts: u32,
    message: String,
}

impl Pod {
    fn container(&self, name: &str) -> &Container {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no container {name} in {self:?}"))
    }

    fn is_final(&self) -> bool {
        self.phase == "Succeeded" || self.phase == "Failed"
    }
}

fn script(args: &[&str]) -> Command {
    let mut cmd = Command::new(Path::new(REPO).join("scripts/kubelet"));
    cmd.args(args).stdin(Stdio::null());
    cmd
}

/// Runs scripts/kubelet with `args`: its stdout, or its words on failure.
fn kubelet(args: &[&str]) -> Result<String, String> {
    let out = script(args)
        .output()
        .map_err(|e| format!("scripts/kubelet: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "scripts/kubelet {args:?} exited {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn manifests() -> PathBuf {
    let root = std::env::var_os("MESHINIT_KUBELET_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/meshinit-kubelet"));
    root.join("manifests")
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

impl Node {
    fn up() -> Result<Node, String> {
        let host_before = kubelet(&["host"])?;
        // The first run builds the kubelet (scripts/peers caches it): minutes, not seconds.
        // up refuses while a node of another run runs, and undoes its own start when it
        // fails: no down here, which would stop another run's node.
        let started = kubelet(&["up"])?;
        eprintln!("{}", started.trim());
        let version = started
            .split_once(" version ")
            .map_or("?", |(_, v)| v.trim())
            .to_owned();
        let node = Node {
            host_before,
            version,
            watcher: Mutex::new(None),
            status: Arc::default(),
        };
        node.watch();
        Ok(node)
    }

    /// One watcher process for every scenario: a snapshot of the pod status every 100 ms.
    fn watch(&self) {
        let mut child = script(&["watch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("scripts/kubelet watch");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let status = Arc::clone(&self.status);
        std::thread::spawn(move || {
            let mut at = 0.0;
            let mut pods: HashMap<String, Pod> = HashMap::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let words: Vec<String> = line.split(' ').map(common::unescape).collect();
                match words.first().map(String::as_str) {
                    Some("at") => {
                        at = words[1].parse().unwrap_or_else(|_| now());
                        pods.clear();
                    }
                    Some("pod") if words.len() >= 4 => {
                        pods.insert(
                            words[1].clone(),
                            Pod {
                                phase: words[2].clone(),
                                reason: words[3].clone(),
                                containers: Vec::new(),
                            },
                        );
                    }
                    Some("container") if words.len() >= 9 => {
                        if let Some(pod) = pods.get_mut(&words[1]) {
                            pod.containers.push(Container {
                                name: words[2].clone(),
                                init: words[3] == "init",
                                state: words[4].clone(),
                                exit: words[5].parse().ok(),
                                restarts: words[6].parse().unwrap_or(0),
                                message: words[8].clone(),
                            });
                        }
                    }
                    Some("end") => {
                        let (lock, changed) = &*status;
                        let mut seen = lock.lock().unwrap();
                        for (name, pod) in &pods {
                            if pod.is_final() {
                                seen.final_at.entry(name.clone()).or_insert(at);
                            }
                        }
                        seen.pods = pods.clone();
                        changed.notify_all();
                    }
                    _ => {}
                }
            }
            let (lock, changed) = &*status;
            lock.lock().unwrap().ended = Some("the status watcher stopped".into());
            changed.notify_all();
        });
        *self.watcher.lock().unwrap() = Some((child, stdin));
    }

    /// Waits until `want` holds for the pod's status, at most `limit`.
    fn until(&self, pod: &str, limit: Duration, what: &str, want: impl Fn(&Pod) -> bool) -> Pod {
        let deadline = Instant::now() + limit;
        let (lock, changed) = &*self.status;
        let mut seen = lock.lock().unwrap();
        loop {
            if let Some(p) = seen.pods.get(pod).filter(|p| want(p)) {
                return p.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || seen.ended.is_some() {
                let got = seen.pods.get(pod).cloned();
                drop(seen);
                panic!(
                    "{pod}: not {what} within {limit:?} ({}); status: {got:?}\n{}",
                    lock.lock().unwrap().ended.clone().unwrap_or_default(),
                    self.logs(pod)
                );
            }
            seen = changed.wait_timeout(seen, left).unwrap().0;
        }
    }

    /// Waits for the pod's final phase and for every container to have ended (the kubelet
    /// may call a pod Failed before it stops its containers: activeDeadlineSeconds). Returns
    /// the status and the time the phase was first seen final.
    fn final_phase(&self, pod: &str, limit: Duration) -> (Pod, f64) {
        let status = self.until(pod, limit, "final with every container ended", |p| {
            p.is_final() && p.containers.iter().all(|c| c.state == "terminated")
        });
        let at = self.status.0.lock().unwrap().final_at[pod];
        (status, at)
    }

    /// Runs a pod to its end and checks its phase: the pod stays on the node (its logs
    /// with it) while the returned value lives.
    fn run(&self, name: &str, spec: &str, phase: &str) -> Ran {
        let pod = self.submit(name, spec);
        let (status, final_at) = self.final_phase(&pod.name, LIMIT);
        let log = self.log(&pod.name, "task");
        assert_eq!(status.phase, phase, "{status:?}\n{}", self.logs(&pod.name));
        Ran {
            pod,
            status,
            final_at,
            log,
        }
    }

    /// Every container's log, for a failure's message.
    fn logs(&self, pod: &str) -> String {
        let containers: Vec<String> = self
            .status
            .0
            .lock()
            .unwrap()
            .pods
            .get(pod)
            .map(|p| p.containers.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        containers
            .iter()
            .map(|c| format!("--- {c}:\n{}", self.log(pod, c)))
            .collect()
    }

    /// A container's log as the kubelet keeps it (CRI format: time, stream, tag, line).
    fn log(&self, pod: &str, container: &str) -> String {
        kubelet(&["log", pod, container]).unwrap_or_else(|e| e)
    }

    /// The time (seconds since the epoch) of the container's first log line containing
    /// `text`.
    fn logged_at(&self, pod: &str, container: &str, text: &str) -> f64 {
        let log = self.log(pod, container);
        let line = log
            .lines()
            .find(|l| l.contains(text))
            .unwrap_or_else(|| panic!("{pod}/{container}: no line with {text:?} in:\n{log}"));
        let stamp = line.split(' ').next().unwrap();
        let out = Command::new("date")
            .args(["-d", stamp, "+%s.%N"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("cannot read the time of {line:?}"))
    }

    /// Writes the pod's manifest (a dot-name renamed into place: the kubelet never reads
    /// half a file; a nonce, since the same content would be the same pod). Returns the
    /// pod's name as the kubelet reports it; the manifest goes when the guard does.
    fn submit(&self, name: &str, spec: &str) -> Submitted {
        let nonce = format!("{}-{}", std::process::id(), now());
        let manifest = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\n  \
             annotations: {{meshinit.test/nonce: \"{nonce}\"}}\nspec:\n{spec}"
        );
        let dir = manifests();
        let file = dir.join(format!("{name}.yaml"));
        let hidden = dir.join(format!(".{name}.yaml"));
        std::fs::write(&hidden, manifest).unwrap();
        std::fs::rename(&hidden, &file).unwrap();
        Submitted {
            file,
            name: format!("{name}-{NODE}"),
            at: now(),
        }
    }

    fn images(&self, envoy: &Path, peers: &common::istio::Peers) {
        let import = |image: &str, root: &Path, entry: &str| {
            kubelet(&["image", image, root.to_str().unwrap(), entry]).unwrap();
        };
        common::pods::images(&import);
        common::pods::hand_declared_proxy_image(envoy, peers, &import);
    }

    /// Stops the node and checks that the host is as it was.
    fn down(&self) -> Result<(), String> {
        if let Some((mut child, stdin)) = self.watcher.lock().unwrap().take() {
            drop(stdin);
            let _ = child.wait();
        }
        kubelet(&["down"])?;
        let mut problems = Vec::new();
        if let Err(left) = kubelet(&["leftovers"]) {
            problems.push(left);
        }
        let host_after = kubelet(&["host"])?;
        if host_after != self.host_before {
            problems.push(format!(
                "the host changed:\nbefore:\n{}after:\n{host_after}",
                self.host_before
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// A pod run to its end: its status, when it was first seen final, its task's log.
struct Ran {
    pod: Submitted,
    status: Pod,
    final_at: f64,
    log: String,
}

/// A submitted pod: removed from the node (its manifest deleted) when dropped.
struct Submitted {
    file: PathBuf,
    name: String,
    /// When its manifest was written (seconds since the epoch).
    at: f64,
}

impl Drop for Submitted {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

// ---------------------------------------------------------------------------------------
// The pods' parts

/// The spec's start: a Job's pod (restartPolicy Never).
fn job_spec(grace: u32) -> String {
    format!("  restartPolicy: Never\n  terminationGracePeriodSeconds: {grace}\n")
}

/// The task's container: meshinit (the image's entrypoint) running `args`, with `env`
/// besides KUBERNETES_SERVICE_HOST. A cluster's kubelet sets that variable in every
/// container from the API server's Service; this node has no API server, so the pod says
/// it, as the kubelet would.
fn task(args: &[&str], env: &[(&str, &str)]) -> String {
    let args: Vec<String> = args.iter().map(|a| yaml_string(a)).collect();
    let mut env_lines = String::from("    - {name: KUBERNETES_SERVICE_HOST, value: 10.96.0.1}\n");
    for (name, value) in env {
        env_lines.push_str(&format!(
            "    - {{name: {name}, value: {}}}\n",
            yaml_string(value)
        ));
    }
    format!(
        "  - name: task\n\
         \x20   image: {TASK_IMAGE}\n\
         \x20   imagePullPolicy: Never\n\
         \x20   args: [{}]\n\
         \x20   env:\n{env_lines}",
        args.join(", ")
    )
}

/// The same container without meshinit: `args` as the command itself.
fn bare_task(args: &[&str]) -> String {
    container("task", TASK_IMAGE, args)
}

/// A task container of a pod whose task containers share the sidecar: meshinit as `name`
/// among `quit_after`, running `script`, the pod directory an emptyDir at /pod.
fn sharing_task(name: &str, quit_after: &str, script: &str) -> String {
    format!(
        "  - name: {name}\n\
         \x20   image: {TASK_IMAGE}\n\
         \x20   imagePullPolicy: Never\n\
         \x20   args: [sh, -c, {}]\n\
         \x20   env:\n\
         \x20   - {{name: KUBERNETES_SERVICE_HOST, value: 10.96.0.1}}\n\
         \x20   - {{name: MESHINIT_NAME, value: {name}}}\n\
         \x20   - {{name: MESHINIT_POD_DIR, value: /pod}}\n\
         \x20   - {{name: MESHINIT_QUIT_AFTER, value: '{quit_after}'}}\n\
         \x20   volumeMounts:\n\
         \x20   - {{name: pod, mountPath: /pod}}\n",
        yaml_string(script)
    )
}

/// A Job pod with two task containers, `job` and `uploader`, that share istio-proxy (a
/// regular container) and the pod directory; no shared process namespace.
fn two_tasks_job(job: &str, uploader: &str) -> String {
    format!(
        "{}  volumes:\n  - {{name: pod, emptyDir: {{}}}}\n  containers:\n{}{}{}",
        job_spec(10),
        sharing_task("job", "job,uploader", job),
        sharing_task("uploader", "job,uploader", uploader),
        hand_declared_istio_proxy(false, "5s")
    )
}

/// images/examples/install-job.yaml's shape: the meshinit image as an init container
/// installs meshinit into an emptyDir, and the task's container, from an image without
/// meshinit, runs it from there beside istio-proxy (a regular container).
fn installed_job(script: &str) -> String {
    format!(
        "{}  volumes:\n  - {{name: meshinit-bin, emptyDir: {{}}}}\n  initContainers:\n\
         \x20 - name: install-meshinit\n\
         \x20   image: {MESHINIT_IMAGE}\n\
         \x20   imagePullPolicy: Never\n\
         \x20   command: [/meshinit, install, /meshinit-bin]\n\
         \x20   volumeMounts:\n\
         \x20   - {{name: meshinit-bin, mountPath: /meshinit-bin}}\n\
         \x20 containers:\n\
         \x20 - name: task\n\
         \x20   image: {PLAIN_IMAGE}\n\
         \x20   imagePullPolicy: Never\n\
         \x20   command: [/meshinit-bin/meshinit, --, sh, -c, {}]\n\
         \x20   env:\n\
         \x20   - {{name: KUBERNETES_SERVICE_HOST, value: 10.96.0.1}}\n\
         \x20   volumeMounts:\n\
         \x20   - {{name: meshinit-bin, mountPath: /meshinit-bin}}\n{}",
        job_spec(10),
        yaml_string(script),
        hand_declared_istio_proxy(false, "5s")
    )
}

/// A Job pod with istio-proxy as a regular container, listed after the task (the order
/// Istio's injector uses unless holdApplicationUntilProxyStarts) or before it.
fn istio_job(task: &str, proxy_first: bool) -> String {
    let proxy = hand_declared_istio_proxy(false, "5s");
    let (first, second) = if proxy_first {
        (proxy.as_str(), task)
    } else {
        (task, proxy.as_str())
    };
    format!("{}  containers:\n{first}{second}", job_spec(10))
}

/// A Job pod with istio-proxy as a native sidecar (Istio 1.27+ on Kubernetes 1.33+);
/// `share_pid`: with shareProcessNamespace, where meshinit sees the agent in /proc and
/// waits for it to exit after its quit (--quit-wait).
fn native_job(task: &str, share_pid: bool) -> String {
    let share = if share_pid {
        "  shareProcessNamespace: true\n"
    } else {
        ""
    };
    format!(
        "{}{share}  initContainers:\n{}  containers:\n{task}",
        job_spec(30),
        hand_declared_istio_proxy(true, "5s")
    )
}

/// Task exit → the pod's final phase, in seconds: from the time the container logged
/// `marker` (meshinit's "task exited", or the bare task's own last line).
fn completion(node: &Node, pod: &str, marker: &str, final_at: f64) -> f64 {
    final_at - node.logged_at(pod, "task", marker)
}

fn expect_exit(pod: &Pod, container: &str, code: i32) {
    let c = pod.container(container);
    assert_eq!(
        (c.state.as_str(), c.exit),
        ("terminated", Some(code)),
        "{container}: {pod:?}"
    );
}

const LIMIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------
// The scenarios

/// The seed's case: a Job pod, istio-proxy as a regular container, the task under meshinit
/// with no configuration: meshinit finds Istio, waits, runs the task, quits the agent, and
/// the pod completes.
fn a_job_pod_under_istio_succeeds(node: &Node) {
    let ran = node.run(
        "seed-ok",
        &istio_job(&task(&["sh", "-c", "echo task ran"], &[]), false),
        "Succeeded",
    );
    let (status, log) = (&ran.status, &ran.log);
    expect_exit(status, "task", 0);
    expect_exit(status, "istio-proxy", 0);
    assert!(log.contains("found the istio sidecar"), "{log}");
    assert!(log.contains("task ran"), "{log}");
    assert!(
        log.contains("sidecar quit via http://127.0.0.1:15020/quitquitquit"),
        "{log}"
    );
    eprintln!(
        "seed-ok: task exit -> Succeeded {:.2} s",
        completion(node, &ran.pod.name, "info: task exited", ran.final_at)
    );
}

fn a_failing_task_fails_the_pod_with_its_code(node: &Node) {
    let ran = node.run(
        "seed-fail",
        &istio_job(&task(&["sh", "-c", "exit 3"], &[]), false),
        "Failed",
    );
    expect_exit(&ran.status, "task", 3);
    expect_exit(&ran.status, "istio-proxy", 0);
}

/// The negative control: the same pod with the task run without meshinit never completes,
/// which is the bug meshinit exists for (and shows the test can see it).
fn without_meshinit_the_pod_never_completes(node: &Node) {
    let pod = node.submit(
        "no-meshinit",
        &istio_job(&bare_task(&["sh", "-c", "echo task ran; exit 0"]), false),
    );
    node.until(&pod.name, LIMIT, "with the task ended", |p| {
        p.containers
            .iter()
            .any(|c| c.name == "task" && c.state == "terminated")
    });
    let ended = Instant::now();
    // Ten seconds after the task ended, the pod is still running, held by the proxy.
    while ended.elapsed() < Duration::from_secs(10) {
        let status = node.until(&pod.name, LIMIT, "seen", |_| true);
        assert_eq!(status.phase, "Running", "{status:?}");
        assert_eq!(status.container("istio-proxy").state, "running");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A native sidecar with MESHINIT_MESH=none: meshinit makes no request; the kubelet stops
/// the proxy after the task (its preStop drain, then TERM: the agent drains).
fn native_sidecar_with_mesh_none(node: &Node) {
    let (status, took) = native_run(node, "native-none", &[("MESHINIT_MESH", "none")], false);
    assert_eq!(status.container("istio-proxy").restarts, 0, "{status:?}");
    eprintln!("native-none: task exit -> Succeeded {took:.2} s");
}

/// A native sidecar and no configuration: meshinit finds the agent, quits it at the end;
/// the kubelet must not restart the proxy, and the pod completes without the drain.
fn native_sidecar_with_no_configuration(node: &Node) {
    let (status, took) = native_run(node, "native-auto", &[], false);
    assert_eq!(status.container("istio-proxy").restarts, 0, "{status:?}");
    eprintln!("native-auto: task exit -> Succeeded {took:.2} s");
}

/// One native-sidecar pod to its end: its status and task exit → final phase (s).
fn native_run(node: &Node, name: &str, env: &[(&str, &str)], share_pid: bool) -> (Pod, f64) {
    let ran = node.run(
        name,
        &native_job(&task(&["sh", "-c", "echo task ran"], env), share_pid),
        "Succeeded",
    );
    assert!(ran.log.contains("task ran"), "{}", ran.log);
    expect_exit(&ran.status, "task", 0);
    let took = completion(node, &ran.pod.name, "info: task exited", ran.final_at);
    (ran.status, took)
}

/// activeDeadlineSeconds ends a task that never does: the kubelet TERMs the pod's
/// containers; meshinit forwards the TERM, the task's handler runs, the sidecar is told.
/// The deadline counts from the pod's start: 10 s leaves the proxy time to be ready and the
/// task to start on a loaded machine (with 3 s the TERM once came while meshinit still
/// waited for the proxy, and rightly never started the task).
fn active_deadline_is_the_backstop(node: &Node) {
    let spec = istio_job(
        &task(
            &[
                "sh",
                "-c",
                "trap 'echo handled TERM; exit 7' TERM; echo up; while :; do sleep 0.1; done",
            ],
            &[],
        ),
        false,
    )
    .replacen(
        "  restartPolicy",
        "  activeDeadlineSeconds: 10\n  restartPolicy",
        1,
    );
    let ran = node.run("deadline", &spec, "Failed");
    let log = &ran.log;
    assert_eq!(ran.status.reason, "DeadlineExceeded", "{:?}", ran.status);
    assert!(log.contains("up"), "{log}");
    assert!(log.contains("received SIGTERM"), "{log}");
    assert!(log.contains("handled TERM"), "{log}");
    assert!(log.contains("task exited with code 7"), "{log}");
    // The kubelet TERMs the agent at the same moment: it may already have closed 15020,
    // and then Envoy's own admin port takes the quit.
    assert!(
        log.contains("sidecar quit via http://127.0.0.1:15020/quitquitquit")
            || log.contains("sidecar quit via http://localhost:15000/quitquitquit"),
        "the sidecar was not told:\n{log}"
    );
}

/// A command that does not exist: 127, meshinit's reason as the termination message, and
/// the pod reaches Failed although the proxy starts after meshinit has given up on the
/// command.
fn typo(node: &Node, name: &str, proxy_first: bool) {
    let ran = node.run(
        name,
        &istio_job(&task(&["/no/such/task"], &[]), proxy_first),
        "Failed",
    );
    expect_exit(&ran.status, "task", 127);
    expect_exit(&ran.status, "istio-proxy", 0);
    let message = &ran.status.container("task").message;
    assert!(
        message.contains("cannot run '/no/such/task'") && message.contains("(exit 127)"),
        "termination message {message:?}\n{}",
        ran.log
    );
}

fn a_typo_fails_the_pod_with_the_task_first(node: &Node) {
    typo(node, "typo-task-first", false);
}

fn a_typo_fails_the_pod_with_the_proxy_first(node: &Node) {
    typo(node, "typo-proxy-first", true);
}

/// With no sidecar in the pod, a typo costs the quit window, and the pod still fails.
fn a_typo_fails_a_pod_without_a_sidecar(node: &Node) {
    let spec = format!(
        "{}  containers:\n{}",
        job_spec(10),
        task(&["/no/such/task"], &[])
    );
    let ran = node.run("typo-alone", &spec, "Failed");
    expect_exit(&ran.status, "task", 127);
    let took = ran.final_at - ran.pod.at;
    eprintln!("typo-alone: manifest -> Failed {took:.2} s (the quit window is 10 s)");
    assert!(took >= 10.0, "the window was not kept: {took:.2} s");
}

/// Envoy alone as the pod's sidecar (no agent): found on 15000, waited for, quit.
fn envoy_alone_is_found_and_quit(node: &Node) {
    let envoy = container(
        "envoy",
        HAND_DECLARED_PROXY_IMAGE,
        &[
            "/usr/local/bin/envoy",
            "-c",
            "/etc/envoy/envoy.yaml",
            "--log-level",
            "warn",
        ],
    );
    a_lone_sidecar_is_found_and_quit(node, "envoy-alone", "envoy", &envoy, "envoy");
}

fn linkerd_stand_in_is_found_and_shut_down(node: &Node) {
    let name = "linkerd-proxy-stand-in";
    let proxy = container(name, TASK_IMAGE, &["sh", "-c", LINKERD_STAND_IN]);
    a_lone_sidecar_is_found_and_quit(node, "linkerd", name, &proxy, "linkerd");
}

/// A pod of the task (no configuration) and `sidecar`, the container `name`: meshinit finds
/// `mesh`, and the sidecar ends with 0, told to quit.
fn a_lone_sidecar_is_found_and_quit(node: &Node, pod: &str, name: &str, sidecar: &str, mesh: &str) {
    let spec = format!(
        "{}  containers:\n{}{sidecar}",
        job_spec(10),
        task(&["sh", "-c", "echo task ran"], &[])
    );
    let ran = node.run(pod, &spec, "Succeeded");
    expect_exit(&ran.status, name, 0);
    let found = format!("found the {mesh} sidecar");
    assert!(ran.log.contains(&found), "{}", ran.log);
}

// ---------------------------------------------------------------------------------------
// The figures (scripts/bench)

/// A measured pod: its name in, its status and task exit → final phase (s) out.
type Case<'a> = (&'a str, &'a dyn Fn(&str) -> (Pod, f64));

/// Two task containers share the sidecar: the first to end leaves it up, the last quits
/// it, and the pod completes.
fn two_task_containers_share_one_sidecar(node: &Node) {
    two_tasks(node, "two-tasks", "echo job done", "Succeeded", 0);
}

/// One task container fails: the pod fails, each container with its own code, and the
/// last one still quits the sidecar.
fn a_failing_task_container_fails_the_shared_pod_with_its_code(node: &Node) {
    two_tasks(node, "two-tasks-fail", "exit 3", "Failed", 3);
}

/// The pod of `two_tasks_job` with `job` running `script`, the uploader ending 2 s later:
/// `phase`, the job's `code`, the uploader's 0; only the uploader quits the sidecar.
fn two_tasks(node: &Node, name: &str, script: &str, phase: &str, code: i32) {
    let ran = node.run(
        name,
        &two_tasks_job(script, "sleep 2; echo uploaded"),
        phase,
    );
    expect_exit(&ran.status, "job", code);
    expect_exit(&ran.status, "uploader", 0);
    let job = node.log(&ran.pod.name, "job");
    let uploader = node.log(&ran.pod.name, "uploader");
    assert!(
        job.contains("leaving the sidecar running for uploader"),
        "{job}"
    );
    assert!(!job.contains("sidecar quit via"), "{job}");
    assert!(
        uploader.contains("the last of the task containers to end"),
        "{uploader}"
    );
    assert!(uploader.contains("sidecar quit via"), "{uploader}");
}

/// `meshinit install` from the FROM-scratch image into an emptyDir; the task's image has
/// no meshinit of its own.
fn an_init_container_installs_meshinit(node: &Node) {
    let ran = node.run(
        "installed",
        &installed_job("echo installed task ran"),
        "Succeeded",
    );
    expect_exit(&ran.status, "install-meshinit", 0);
    expect_exit(&ran.status, "task", 0);
    assert!(ran.log.contains("installed task ran"), "{}", ran.log);
    assert!(ran.log.contains("sidecar quit via"), "{}", ran.log);
}

/// Each case `runs` times, one pod after another (those whose name contains `filter`).
fn measure(node: &Node, runs: usize, filter: Option<&str>) {
    let mut figures: Vec<(&str, Vec<f64>, u32)> = Vec::new();
    let cases: [Case; 7] = [
        ("a pod without a sidecar (the kubelet's floor)", &|name| {
            let spec = format!(
                "{}  containers:\n{}",
                job_spec(10),
                bare_task(&["sh", "-c", "echo task exits"])
            );
            let ran = node.run(name, &spec, "Succeeded");
            let took = completion(node, &ran.pod.name, "task exits", ran.final_at);
            (ran.status, took)
        }),
        (
            "Istio (istio-proxy a regular container), meshinit, no configuration",
            &|name| {
                let spec = istio_job(&task(&["sh", "-c", "true"], &[]), false);
                let ran = node.run(name, &spec, "Succeeded");
                let took = completion(node, &ran.pod.name, "info: task exited", ran.final_at);
                (ran.status, took)
            },
        ),
        (
            "Istio native sidecar, meshinit, no configuration (quits the agent)",
            &|name| native_run(node, name, &[], false),
        ),
        (
            "Istio native sidecar, shareProcessNamespace, meshinit, no configuration",
            &|name| native_run(node, name, &[], true),
        ),
        (
            "Istio native sidecar, MESHINIT_MESH=none (the kubelet stops it)",
            &|name| native_run(node, name, &[("MESHINIT_MESH", "none")], false),
        ),
        (
            "two task containers sharing istio-proxy (--quit-after), the last one's exit",
            &|name| {
                let spec = two_tasks_job("true", "sleep 1");
                let ran = node.run(name, &spec, "Succeeded");
                let ended = node.logged_at(&ran.pod.name, "uploader", "info: task exited");
                (ran.status, ran.final_at - ended)
            },
        ),
        (
            "meshinit installed by an init container (meshinit install), Istio",
            &|name| {
                let ran = node.run(name, &installed_job("true"), "Succeeded");
                let took = completion(node, &ran.pod.name, "info: task exited", ran.final_at);
                (ran.status, took)
            },
        ),
    ];
    for (what, case) in cases {
        if filter.is_some_and(|f| !what.contains(f)) {
            continue;
        }
        let mut times = Vec::new();
        let mut restarts = 0;
        for run in 0..runs {
            let (status, took) = case(&format!("bench-{}-{run}", figures.len()));
            restarts += status
                .containers
                .iter()
                .filter(|c| c.init)
                .map(|c| c.restarts)
                .sum::<u32>();
            times.push(took);
        }
        figures.push((what, times, restarts));
    }
    println!(
        "\ntask exit -> pod phase final, {runs} runs each (kubelet {}):",
        node.version
    );
    for (what, mut times, restarts) in figures {
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "{what}: p50 {:.2} s, p95 {:.2} s, max {:.2} s; proxy restarts {restarts}",
            at(0.5),
            at(0.95),
            times[times.len() - 1]
        );
    }
    let _ = std::io::stdout().flush();
}
