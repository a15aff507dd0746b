//! The figures (scripts/bench, `MESHINIT_CLUSTER_RUNS=N`): N Jobs of each kind one after
//! another, the task `true`; for each, `kubectl apply` → the watcher's first sight of the
//! Job's Complete condition, and where meshinit waits, Envoy ready → task started: the
//! moment pilot-agent first answered a readiness probe with 200 (its own log's "Envoy proxy
//! is ready": the kubelet's probe, or meshinit's) to the moment meshinit started the task (its
//! JSON log's "task started"), both clocks the node's.

use std::io::Write;

use crate::api::{apply, kubectl, now, split, Cluster};
use crate::istio::HOLD;
use crate::manifests::{bare_task, job, pod, task, Setting};
use crate::{LIMIT, PROXY};

/// A measured kind of Job: what it is, its setting (none: the `default` namespace, no
/// proxy), its pod's annotations, the task's environment.
type Kind<'a> = (&'a str, Option<Setting>, &'a str, &'a [(&'a str, &'a str)]);

/// Seconds since the epoch of an RFC 3339 time in UTC (`2026-12-06T21:52:03.123456Z`).
fn rfc3339(text: &str) -> Option<f64> {
    let (date, time) = text.trim().strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    let days = crate::common::days_since_epoch(y, m, day);
    Some((days * 86_400 + h * 3600 + min * 60) as f64 + sec)
}

/// Envoy ready → task started in `pod` (`split`'s form), seconds; and whether pilot-agent
/// closed meshinit's quit request without an answer.
fn ready_to_start(c: &Cluster, pod: &str) -> (f64, bool) {
    let proxy = c.log(pod, PROXY);
    let ready = proxy
        .lines()
        .find(|l| l.contains("Envoy proxy is ready"))
        .and_then(|l| rfc3339(l.split_whitespace().next()?))
        .unwrap_or_else(|| panic!("{pod}: istio-proxy never said it was ready:\n{proxy}"));
    let log = c.log(pod, "task");
    let started = log
        .lines()
        .find(|l| l.contains("\"msg\":\"task started"))
        .and_then(|l| rfc3339(l.split("\"time\":\"").nth(1)?.split('"').next()?))
        .unwrap_or_else(|| panic!("{pod}: meshinit never said it started the task:\n{log}"));
    (started - ready, log.contains("it closed the connection"))
}

/// The value at quantile `q` of sorted `times`.
fn at(times: &[f64], q: f64) -> f64 {
    times[((times.len() - 1) as f64 * q).round() as usize]
}

/// Each kind of Job `runs` times, one after another; the figures printed.
pub fn measure(c: &Cluster, runs: usize) {
    let kinds: [Kind; 5] = [
        (
            "no sidecar, no meshinit (the cluster's floor)",
            None,
            "",
            &[],
        ),
        (
            "regular setting, meshinit with no configuration",
            Some(Setting::Regular),
            "",
            &[],
        ),
        (
            "regular setting, holdApplicationUntilProxyStarts, meshinit with no configuration",
            Some(Setting::Regular),
            HOLD,
            &[],
        ),
        (
            "native setting, meshinit with no configuration",
            Some(Setting::Native),
            "",
            &[],
        ),
        (
            "native setting, MESHINIT_MESH=none (the kubelet stops the proxy)",
            Some(Setting::Native),
            "",
            &[("MESHINIT_MESH", "none")],
        ),
    ];
    let mut complete = Vec::new();
    let mut ready = Vec::new();
    for (k, (what, setting, annotations, env)) in kinds.iter().enumerate() {
        let mut times = Vec::new();
        let mut starts = Vec::new();
        let mut restarts = 0;
        let mut closed = 0;
        for run in 0..runs {
            let name = format!("bench-{k}-{run}");
            let (ns, container) = match setting {
                None => ("default", bare_task("true")),
                Some(s) => (s.namespace(), task(&[], "true", env, "")),
            };
            let key = format!("{ns}/{name}");
            let began = now();
            apply(&job(
                ns,
                &name,
                "  backoffLimit: 0\n",
                &pod(annotations, "Never", &container, ""),
            ));
            let (job, pods) = c.finished(&key, LIMIT);
            assert!(job.condition("Complete").is_some(), "{key}: {job:#?}");
            times.push(job.true_at["Complete"] - began);
            restarts += pods
                .iter()
                .flat_map(|p| p.containers.iter().filter(|c| c.name == PROXY))
                .map(|c| c.restarts)
                .sum::<u32>();
            if setting.is_some() && env.is_empty() {
                let (took, unanswered) = ready_to_start(c, &format!("{ns}/{}", pods[0].name));
                starts.push(took);
                closed += usize::from(unanswered);
            }
            kubectl(&["delete", "job", "-n", split(&key).0, &name, "--wait=false"]);
        }
        times.sort_by(f64::total_cmp);
        starts.sort_by(f64::total_cmp);
        complete.push((what, times, setting.map(|_| restarts)));
        if !starts.is_empty() {
            ready.push((what, starts, closed));
        }
    }
    println!(
        "\nJob created -> Complete, {runs} Jobs each (Kubernetes {}, proxy {}):",
        c.version(),
        c.info("proxy-image")
    );
    for (what, times, restarts) in &complete {
        println!(
            "{what}: p50 {:.2} s, p95 {:.2} s, max {:.2} s{}",
            at(times, 0.5),
            at(times, 0.95),
            times[times.len() - 1],
            restarts.map_or(String::new(), |n| format!(", istio-proxy restarts {n}"))
        );
    }
    // Issue 31's goal: meshinit's Jobs within the floor + 1 s at p95.
    let floor = at(&complete[0].1, 0.95) + 1.0;
    for (what, times, _) in complete.iter().filter(|k| k.0.contains("meshinit with no")) {
        let met = at(times, 0.95) <= floor;
        println!(
            "goal, p95 within the floor + 1 s ({floor:.2} s): {what}: {}",
            if met { "met" } else { "MISSED" }
        );
    }
    println!("\nEnvoy ready (its first readiness answer 200) -> task started, {runs} pods each:");
    for (what, starts, closed) in &ready {
        println!(
            "{what}: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms; quits pilot-agent took by \
             closing the connection, no answer: {closed}",
            at(starts, 0.5) * 1e3,
            at(starts, 0.95) * 1e3,
            starts[starts.len() - 1] * 1e3
        );
    }
    println!();
    let _ = std::io::stdout().flush();
}
