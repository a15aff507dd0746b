//! The cluster as the tests see it: scripts/cluster brings it up and down, kubectl applies
//! manifests as users do, and one watcher (scripts/cluster watch) keeps the latest state of
//! every Job and Pod the API server reports, deleted ones included, for the scenarios to wait
//! on.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A Job as the API server last reported it.
#[derive(Clone, Debug, Default)]
pub struct Job {
    pub active: u32,
    pub succeeded: u32,
    pub failed: u32,
    /// The uids in `uncountedTerminatedPods` (empty once the controller has counted them).
    pub uncounted: String,
    /// (type, status, reason) of each condition.
    pub conditions: Vec<(String, String, String)>,
    pub deleted: bool,
    /// When the watcher first saw each condition True (seconds since the epoch).
    pub true_at: HashMap<String, f64>,
}

impl Job {
    /// The reason of the condition `kind` when it is True.
    pub fn condition(&self, kind: &str) -> Option<&str> {
        self.conditions
            .iter()
            .find(|(k, status, _)| k == kind && status == "True")
            .map(|(_, _, reason)| reason.as_str())
    }

    /// Complete or Failed: the Job controller's last word.
    pub fn finished(&self) -> bool {
        self.condition("Complete").is_some() || self.condition("Failed").is_some()
    }
}

#[derive(Clone, Debug, Default)]
pub struct Pod {
    pub name: String,
    /// The Job that owns it.
    pub job: String,
    pub phase: String,
    /// Its completion index (Indexed Jobs).
    pub index: String,
    pub deleted: bool,
    /// When the watcher saw it deleted (seconds since the epoch).
    pub deleted_at: Option<f64>,
    pub containers: Vec<Container>,
}

#[derive(Clone, Debug)]
pub struct Container {
    pub name: String,
    pub init: bool,
    pub state: String,
    pub exit: Option<i32>,
    pub restarts: u32,
    pub reason: String,
    pub last_exit: Option<i32>,
    pub message: String,
}

impl Pod {
    pub fn container(&self, name: &str) -> &Container {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no container {name} in {self:?}"))
    }

    /// Succeeded or Failed, or gone from the API.
    pub fn over(&self) -> bool {
        self.deleted || self.phase == "Succeeded" || self.phase == "Failed"
    }
}

/// Everything the watcher has seen, by NAMESPACE/NAME.
#[derive(Default)]
pub struct State {
    pub jobs: HashMap<String, Job>,
    pub pods: HashMap<String, Pod>,
    /// The watcher's last words when it stopped.
    ended: Option<String>,
}

/// A Job's namespace and name: `NAMESPACE/NAME`, or `NAME` in default.
pub fn split(job: &str) -> (&str, &str) {
    job.split_once('/').unwrap_or(("default", job))
}

impl State {
    /// The pods the Job `job` (`split`'s form) has had, deleted ones included, by name.
    pub fn pods_of(&self, job: &str) -> Vec<Pod> {
        let (ns, name) = split(job);
        let prefix = format!("{ns}/");
        let mut pods: Vec<Pod> = self
            .pods
            .iter()
            .filter(|(key, p)| key.starts_with(&prefix) && p.job == name)
            .map(|(_, p)| p.clone())
            .collect();
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        pods
    }
}

pub struct Cluster {
    /// What the node changes on the host, as it was before `up`.
    host_before: String,
    watcher: Mutex<Option<(Child, ChildStdin)>>,
    state: Arc<(Mutex<State>, Condvar)>,
}

fn script(args: &[&str]) -> Command {
    let mut cmd = Command::new(Path::new(REPO).join("scripts/cluster"));
    cmd.args(args).stdin(Stdio::null());
    cmd
}

/// `kubectl create --dry-run=server -o json` of `manifest` in `ns`: the object as the API
/// server would store it (every admission step run), or the API server's refusal.
pub fn dry_run(ns: &str, manifest: &str) -> Result<String, String> {
    cluster(
        &[
            "kubectl",
            "create",
            "-n",
            ns,
            "--dry-run=server",
            "-o",
            "json",
            "-f",
            "-",
        ],
        Some(manifest),
    )
}

/// Runs scripts/cluster with `args` (and `input` on its stdin): its stdout, or its words
/// on failure.
pub fn cluster(args: &[&str], input: Option<&str>) -> Result<String, String> {
    let mut cmd = script(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(|e| format!("scripts/cluster: {e}"))?;
    if let Some(text) = input {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .map_err(|e| format!("scripts/cluster {args:?}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("scripts/cluster: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "scripts/cluster {args:?} exited {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// kubectl as the cluster's admin; panics with its words on failure.
pub fn kubectl(args: &[&str]) -> String {
    let mut all = vec!["kubectl"];
    all.extend_from_slice(args);
    cluster(&all, None).unwrap_or_else(|e| panic!("{e}"))
}

/// `kubectl apply -f -` of `manifest`, as users apply theirs.
pub fn apply(manifest: &str) {
    cluster(&["kubectl", "apply", "-f", "-"], Some(manifest))
        .unwrap_or_else(|e| panic!("{e}\nthe manifest:\n{manifest}"));
}

/// Asks `ask` every 500 ms until it gives something, at most `limit`.
pub fn poll<T>(limit: Duration, what: &str, ask: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = ask() {
            return found;
        }
        assert!(Instant::now() < deadline, "not {what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One event's record, as scripts/cluster_watch.py prints it, applied to `state`.
fn record(state: &mut State, at: f64, lines: &[Vec<String>]) {
    let Some(head) = lines.first() else { return };
    let kind = head.get(1).map(String::as_str).unwrap_or_default();
    match head[0].as_str() {
        "job" if head.len() >= 9 => {
            let key = format!("{}/{}", head[2], head[3]);
            let job = state.jobs.entry(key).or_default();
            job.active = head[4].parse().unwrap_or(0);
            job.succeeded = head[5].parse().unwrap_or(0);
            job.failed = head[6].parse().unwrap_or(0);
            job.uncounted = head[7].clone();
            job.conditions = head[8]
                .split(',')
                .filter(|c| !c.is_empty())
                .map(|c| {
                    let (kind, rest) = c.split_once('=').unwrap_or((c, ""));
                    let (status, reason) = rest.split_once('/').unwrap_or((rest, ""));
                    (kind.to_owned(), status.to_owned(), reason.to_owned())
                })
                .collect();
            for (kind, status, _) in &job.conditions {
                if status == "True" {
                    job.true_at.entry(kind.clone()).or_insert(at);
                }
            }
            job.deleted = kind == "DELETED";
        }
        "pod" if head.len() >= 8 => {
            let key = format!("{}/{}", head[2], head[3]);
            let containers = lines[1..]
                .iter()
                .filter(|l| l.len() >= 9 && l[0] == "container")
                .map(|l| Container {
                    name: l[1].clone(),
                    init: l[2] == "init",
                    state: l[3].clone(),
                    exit: l[4].parse().ok(),
                    restarts: l[5].parse().unwrap_or(0),
                    reason: l[6].clone(),
                    last_exit: l[7].parse().ok(),
                    message: l[8..].join(" "),
                })
                .collect();
            let deleted = kind == "DELETED";
            let pod = Pod {
                name: head[3].clone(),
                job: head[4].clone(),
                phase: head[5].clone(),
                index: head[6].clone(),
                deleted,
                deleted_at: deleted.then_some(at),
                containers,
            };
            state.pods.insert(key, pod);
        }
        _ => {}
    }
}

impl Cluster {
    /// Brings the cluster up (scripts/cluster up: the first run builds its programs) with
    /// Istio's control plane (scripts/cluster istiod) and starts the watcher.
    pub fn up() -> Result<Cluster, String> {
        // What a cluster left once its processes ended is undone first, so that the host is
        // seen as it was; a cluster that runs is another run's or a user's: refused here
        // (scripts/cluster clean, exit 69 naming its processes), never stopped.
        cluster(&["clean"], None)?;
        let host_before = cluster(&["host"], None)?;
        // up refuses in turn should another run have started one since, and undoes its own
        // start when it fails: only once it has succeeded is the cluster ours to take down.
        let started = cluster(&["up"], None)?;
        eprintln!("{}", started.trim());
        let istiod = cluster(&["istiod"], None).inspect_err(|_| {
            let _ = cluster(&["down"], None);
        })?;
        eprintln!("{}", istiod.trim());
        let it = Cluster {
            host_before,
            watcher: Mutex::new(None),
            state: Arc::default(),
        };
        it.watch();
        Ok(it)
    }

    fn watch(&self) {
        let mut child = script(&["watch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("scripts/cluster watch");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let state = Arc::clone(&self.state);
        std::thread::spawn(move || {
            let mut at = 0.0;
            let mut lines: Vec<Vec<String>> = Vec::new();
            let mut last_words = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let words: Vec<String> = line.split(' ').map(crate::common::unescape).collect();
                match words[0].as_str() {
                    "event" => {
                        at = words
                            .get(1)
                            .and_then(|w| w.parse().ok())
                            .unwrap_or_else(now);
                        lines.clear();
                    }
                    "end" => {
                        let (lock, changed) = &*state;
                        record(&mut lock.lock().unwrap(), at, &lines);
                        changed.notify_all();
                    }
                    "retrying" => eprintln!("cluster watch: {line}"),
                    "gave" => last_words = line,
                    _ => lines.push(words),
                }
            }
            let (lock, changed) = &*state;
            lock.lock().unwrap().ended = Some(format!("the watcher stopped {last_words}"));
            changed.notify_all();
        });
        *self.watcher.lock().unwrap() = Some((child, stdin));
    }

    /// Waits until `want` holds for what the watcher has seen, at most `limit`; returns
    /// what `want` returned.
    pub fn until<T>(&self, limit: Duration, what: &str, want: impl Fn(&State) -> Option<T>) -> T {
        let deadline = Instant::now() + limit;
        let (lock, changed) = &*self.state;
        let mut seen = lock.lock().unwrap();
        loop {
            if let Some(found) = want(&seen) {
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || seen.ended.is_some() {
                let ended = seen.ended.clone().unwrap_or_default();
                drop(seen);
                panic!("not {what} within {limit:?} {ended}");
            }
            seen = changed.wait_timeout(seen, left).unwrap().0;
        }
    }

    /// The Job `name` (`split`'s form) as last seen (a default one when never seen).
    pub fn job(&self, name: &str) -> Job {
        let (ns, name) = split(name);
        let key = format!("{ns}/{name}");
        self.state
            .0
            .lock()
            .unwrap()
            .jobs
            .get(&key)
            .cloned()
            .unwrap_or_default()
    }

    pub fn pods_of(&self, job: &str) -> Vec<Pod> {
        self.state.0.lock().unwrap().pods_of(job)
    }

    /// Waits until the Job `name` is Complete or Failed, its terminated pods counted
    /// (`uncountedTerminatedPods` drained) and every pod it had over; returns the Job and its
    /// pods.
    pub fn finished(&self, name: &str, limit: Duration) -> (Job, Vec<Pod>) {
        let (ns, short) = split(name);
        let key = format!("{ns}/{short}");
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.until(limit, &format!("{name} finished"), |s| {
                let job = s.jobs.get(&key)?;
                let pods = s.pods_of(name);
                (job.finished() && job.uncounted.is_empty() && pods.iter().all(Pod::over))
                    .then(|| (job.clone(), pods))
            })
        }));
        found.unwrap_or_else(|_| {
            panic!(
                "{name}: not finished within {limit:?}: {:?}\n{}\npods: {:#?}",
                self.job(name),
                self.logs(name),
                self.pods_of(name)
            )
        })
    }

    /// As `finished`, and meanwhile, each time a container of the Job's pods restarts, the
    /// log of the run that ended (`kubectl logs --previous`): a pod the Job controller
    /// deletes takes its logs with it, and these say why each run ended.
    pub fn finished_keeping_logs(&self, name: &str, limit: Duration) -> (Job, Vec<Pod>, String) {
        let (ns, _) = split(name);
        let deadline = Instant::now() + limit;
        let mut seen: HashMap<(String, String), u32> = HashMap::new();
        let mut logs = String::new();
        loop {
            for pod in self.pods_of(name).iter().filter(|p| !p.deleted) {
                for c in &pod.containers {
                    let key = (pod.name.clone(), c.name.clone());
                    if c.restarts > *seen.get(&key).unwrap_or(&0) {
                        seen.insert(key, c.restarts);
                        let args = [
                            "kubectl",
                            "logs",
                            "-n",
                            ns,
                            &pod.name,
                            "-c",
                            &c.name,
                            "--previous",
                        ];
                        let log = cluster(&args, None).unwrap_or_else(|e| e);
                        logs.push_str(&format!(
                            "--- {}/{} before restart {}:\n{log}",
                            pod.name, c.name, c.restarts
                        ));
                    }
                }
            }
            let job = self.job(name);
            if job.finished() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(30));
        let (job, pods) = self.finished(name, left);
        (job, pods, logs)
    }

    /// Every container's log of the Job's pods that still exist, for a failure's message: the
    /// pods' own containers (meshinit's lines) first, Istio's (istio-init's iptables dump, the
    /// proxy's start) after them and shorter, so that a CI report cut in the middle keeps the
    /// lines that say why.
    pub fn logs(&self, job: &str) -> String {
        let mut out = String::new();
        let (ns, _) = split(job);
        let pods = self.pods_of(job);
        for istio in [false, true] {
            for pod in pods.iter().filter(|p| !p.deleted) {
                for c in &pod.containers {
                    if c.name.starts_with("istio-") != istio {
                        continue;
                    }
                    let tail = if istio { "--tail=12" } else { "--tail=40" };
                    let args = ["kubectl", "logs", "-n", ns, &pod.name, "-c", &c.name, tail];
                    let log = cluster(&args, None).unwrap_or_else(|e| e);
                    out.push_str(&format!("--- {}/{}:\n{log}", pod.name, c.name));
                }
            }
        }
        out
    }

    /// One field of a pod's spec or status (`kubectl get -o jsonpath=PATH`); `pod` in
    /// `split`'s form.
    pub fn pod_field(&self, pod: &str, path: &str) -> String {
        let (ns, pod) = split(pod);
        let path = format!("jsonpath={path}");
        kubectl(&["get", "pod", "-n", ns, pod, "-o", &path])
    }

    /// A line of `scripts/cluster info` after its key (`proxy-image`, ...).
    pub fn info(&self, key: &str) -> String {
        let info = cluster(&["info"], None).unwrap_or_else(|e| panic!("{e}"));
        info.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("scripts/cluster info gave no {key}: {info}"))
            .to_owned()
    }

    /// The packets the pods sent to the bridge's subnet, and those sent anywhere else
    /// (scripts/cluster egress: counted, and dropped, by a rule on the host).
    pub fn egress(&self) -> (u64, u64) {
        let out = cluster(&["egress"], None).unwrap_or_else(|e| panic!("{e}"));
        let words: Vec<u64> = out
            .split_whitespace()
            .skip(1)
            .map(|w| {
                w.parse()
                    .unwrap_or_else(|_| panic!("scripts/cluster egress: {out}"))
            })
            .collect();
        assert_eq!(words.len(), 2, "scripts/cluster egress: {out}");
        (words[0], words[1])
    }

    /// A container's log; `pod` in `split`'s form.
    pub fn log(&self, pod: &str, container: &str) -> String {
        let (ns, pod) = split(pod);
        cluster(&["kubectl", "logs", "-n", ns, pod, "-c", container], None).unwrap_or_else(|e| e)
    }

    /// The version the node reports (scripts/peers builds it; MESHINIT_KUBE_VERSION picks
    /// another).
    pub fn version(&self) -> String {
        kubectl(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[0].status.nodeInfo.kubeletVersion}",
        ])
    }

    /// Stops the cluster and checks that the host is as it was.
    pub fn down(&self) -> Result<(), String> {
        if let Some((mut child, stdin)) = self.watcher.lock().unwrap().take() {
            drop(stdin);
            let _ = child.wait();
        }
        cluster(&["down"], None)?;
        let mut problems = Vec::new();
        if let Err(left) = cluster(&["leftovers"], None) {
            problems.push(left);
        }
        let host_after = cluster(&["host"], None)?;
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
