//! Several task containers share one sidecar (--name, --pod-dir, --quit-after): the last
//! one to end quits a real Envoy, the others leave it up. Each meshinit runs as PID 1 of a
//! PID namespace of its own, as the containers of a pod do (no shared process namespace):
//! what they share is the pod directory alone.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::mesh::{envoy, envoy_bin, fault, free_port, get_status, url, Place};
use common::{meshinit_bare, need_pid1, posts, run_plain, start, tempdir, Mode, Running};

const LIMIT: Duration = Duration::from_secs(40);

/// One task container's meshinit: `name` in `dir` among `quit_after`, waiting for and
/// quitting the sidecar on `port`, running `task` (a shell line).
fn container(
    name: &str,
    dir: &Path,
    quit_after: &str,
    port: u16,
    extra: &[&str],
    task: &str,
) -> Command {
    let ready = url(port, "/ready");
    let quit = url(port, "/quitquitquit");
    let dir = dir.to_str().unwrap();
    let mut args = vec![
        "--ready-url",
        &ready,
        "--quit-url",
        &quit,
        "--kill-fallback=false",
        "--name",
        name,
        "--pod-dir",
        dir,
        "--quit-after",
        quit_after,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", task]);
    meshinit_bare(Mode::Pid1, &args)
}

fn started(cmd: Command) -> Running {
    let mut running = start(cmd, Mode::Pid1);
    running.expect_log(|l| l.contains("task started"), LIMIT);
    running
}

/// A real Envoy on a free port and an empty pod directory; `None` (skipped, with the reason)
/// where Envoy or PID namespaces are missing outside CI.
fn envoy_and_pod(test: &str) -> Option<(Running, u16, PathBuf)> {
    let envoy_path = envoy_bin(test)?;
    if !need_pid1(test) {
        return None;
    }
    let port = free_port();
    Some((envoy(&envoy_path, port, Place::Host), port, tempdir("pod")))
}

/// A task that ends when the test creates `go` in `dir` (bounded by the test's limit).
fn until_go(dir: &Path, code: i32) -> String {
    format!(
        "while [ ! -e {}/go ]; do sleep 0.02; done; exit {code}",
        dir.display()
    )
}

#[test]
fn the_short_tasks_end_leaves_envoy_up_and_the_long_ones_quits_it() {
    let test = "the_short_tasks_end_leaves_envoy_up_and_the_long_ones_quits_it";
    let (mut sidecar, port, dir) = or_skip!(envoy_and_pod(test));
    let set = "job,uploader";
    let uploader = started(container(
        "uploader",
        &dir,
        set,
        port,
        &[],
        &until_go(&dir, 3),
    ));
    let job = start(container("job", &dir, set, port, &[], "exit 0"), Mode::Pid1).finish(LIMIT);
    assert_eq!(job.code, Some(0), "{}", job.stderr);
    job.log_position("leaving the sidecar running for uploader (--quit-after)");
    assert!(!job.stderr.contains("sidecar quit via"), "{}", job.stderr);
    assert_eq!(
        get_status(port, "/ready"),
        Some(200),
        "Envoy must still serve"
    );
    std::fs::write(dir.join("go"), "").unwrap();
    let out = uploader.finish(LIMIT);
    assert_eq!(out.code, Some(3), "each task's own code: {}", out.stderr);
    assert!(
        out.log_position("the last of the task containers to end")
            < out.log_position("sidecar quit via")
    );
    assert!(sidecar.exits_within(Duration::from_secs(10)), "Envoy quit");
}

#[test]
fn a_sigkilled_meshinit_counts_as_ended() {
    let test = "a_sigkilled_meshinit_counts_as_ended";
    let (mut sidecar, port, dir) = or_skip!(envoy_and_pod(test));
    let set = "job,uploader";
    let mut uploader = started(container(
        "uploader",
        &dir,
        set,
        port,
        &[],
        &until_go(&dir, 0),
    ));
    // The container dies with its meshinit: no line written, no file removed.
    uploader.signal(libc::SIGKILL);
    assert!(uploader.exits_within(Duration::from_secs(10)));
    assert!(dir.join("uploader.lock").exists());
    let job = start(container("job", &dir, set, port, &[], "exit 0"), Mode::Pid1).finish(LIMIT);
    assert_eq!(job.code, Some(0), "{}", job.stderr);
    job.log_position("the last of the task containers to end");
    assert!(
        sidecar.exits_within(Duration::from_secs(10)),
        "{}",
        job.stderr
    );
}

#[test]
fn a_misspelt_name_is_named_and_the_quit_comes_within_the_timeout() {
    let test = "a_misspelt_name_is_named_and_the_quit_comes_within_the_timeout";
    let (mut sidecar, port, dir) = or_skip!(envoy_and_pod(test));
    let began = Instant::now();
    let job = start(
        container(
            "job",
            &dir,
            "job,uplaoder",
            port,
            &["--timeout", "2s"],
            "exit 0",
        ),
        Mode::Pid1,
    )
    .finish(LIMIT);
    let took = began.elapsed();
    assert_eq!(job.code, Some(0), "{}", job.stderr);
    assert!(
        job.log_position("--quit-after: uplaoder never joined")
            < job.log_position("sidecar quit via"),
    );
    // --timeout from meshinit's start, and the quit right after it.
    assert!(took < Duration::from_secs(5), "{took:?}: {}", job.stderr);
    assert!(sidecar.exits_within(Duration::from_secs(10)));
}

/// Three containers whose tasks end at one moment (a fifo's last writer closes: every
/// reader wakes at once) tell the sidecar exactly once. The sidecar is the fault endpoint,
/// a stand-in named as one: a real Envoy exits at the first quit, so a second could not
/// be counted.
#[test]
fn three_containers_ending_together_quit_the_sidecar_exactly_once() {
    let test = "three_containers_ending_together_quit_the_sidecar_exactly_once";
    if !need_pid1(test) {
        return;
    }
    const ROUNDS: usize = 5;
    for round in 0..ROUNDS {
        let port = free_port();
        let mut sidecar = fault(port, "status:200", Place::Host);
        let dir = tempdir("pod");
        let fifo = dir.join("fifo");
        let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        // Held open for writing so that the readers' opens do not block; closing it is
        // the moment every task ends.
        let writer = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let task = format!("exec 3<{}; echo opened; cat <&3 >/dev/null", fifo.display());
        let set = "a,b,c";
        let mut all: Vec<Running> = ["a", "b", "c"]
            .iter()
            .map(|name| start(container(name, &dir, set, port, &[], &task), Mode::Pid1))
            .collect();
        for running in &mut all {
            running.expect_line(|l| l == "opened", LIMIT);
        }
        drop(writer);
        let outs: Vec<_> = all.into_iter().map(|r| r.finish(LIMIT)).collect();
        let lasts = outs
            .iter()
            .filter(|o| o.stderr.contains("the last of the task containers to end"))
            .count();
        let quits = posts(&mut sidecar);
        for out in &outs {
            assert_eq!(out.code, Some(0), "{}", out.stderr);
        }
        let logs: Vec<&str> = outs.iter().map(|o| o.stderr.as_str()).collect();
        assert_eq!((lasts, quits), (1, 1), "round {round}: {logs:#?}");
    }
}

#[test]
fn a_half_configured_set_is_a_usage_error_that_still_quits() {
    let port = free_port();
    let mut sidecar = fault(port, "status:200", Place::Host);
    let quit = url(port, "/quitquitquit");
    let dir = tempdir("pod");
    let missing = dir.join("missing");
    for (args, names) in [
        (
            vec!["--quit-after", "a,b"],
            "MESHINIT_QUIT_AFTER (--quit-after) given without MESHINIT_NAME (--name)",
        ),
        (vec!["--name", "a/b"], "--name: invalid value 'a/b'"),
        (
            vec![
                "--name",
                "a",
                "--pod-dir",
                dir.to_str().unwrap(),
                "--quit-after",
                "a,..",
            ],
            "--quit-after: invalid value '..'",
        ),
        (
            vec![
                "--name",
                "a",
                "--pod-dir",
                missing.to_str().unwrap(),
                "--quit-after",
                "a,b",
                // Said like every usage error, whatever the log level.
                "--log",
                "off",
            ],
            "cannot write there",
        ),
    ] {
        let before = posts(&mut sidecar);
        let mut all = vec!["--mesh", "none", "--quit-url", &quit, "--quit-window", "0"];
        all.extend(args);
        all.extend(["--", "true"]);
        let out = run_plain(&all);
        assert_eq!(out.code, Some(64), "{all:?}: {}", out.stderr);
        assert!(out.stderr.contains(names), "{all:?}: {}", out.stderr);
        assert_eq!(
            posts(&mut sidecar),
            before + 1,
            "{all:?}: the sidecar is told"
        );
    }
}
