//! Several task containers share one sidecar (--name, --pod-dir, --quit-after): the last
//! one to end quits a real Envoy, the others leave it up. Each meshinit runs as PID 1 of a
//! PID namespace of its own, as the containers of a pod do (no shared process namespace):
//! what they share is the pod directory alone.

#[macro_use]
mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::mesh::{envoy, envoy_bin, fault, free_port, get_status, url, Place};
use common::{
    delayed_in, killed_midway, meshinit_via, need_pid1, need_tools, posts, run_plain, start,
    tempdir, Mode, Running, AS_PID1,
};

const LIMIT: Duration = Duration::from_secs(40);

/// Whom a container's meshinit runs as: root, or a user of its own (no capabilities, so the
/// files' modes hold for it) whose umask is 077, as a hardened image sets it.
#[derive(Clone, Copy)]
enum Who {
    Root,
    User(u32),
}

impl Who {
    /// The command that runs meshinit as PID 1 of a PID namespace of its own, as this user.
    fn wrapper(self) -> Vec<String> {
        let mut wrapper: Vec<String> = AS_PID1.iter().map(|w| (*w).to_owned()).collect();
        if let Who::User(uid) = self {
            wrapper.extend([
                "setpriv".to_owned(),
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".to_owned(),
                "--inh-caps=-all".to_owned(),
                "--bounding-set=-all".to_owned(),
            ]);
            wrapper.extend(common::UMASK_077.map(str::to_owned));
        }
        wrapper
    }
}

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
    container_as(Who::Root, name, dir, quit_after, port, extra, task)
}

/// `container`, as `who`.
fn container_as(
    who: Who,
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
    let wrapper = who.wrapper();
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    meshinit_via(&wrapper, &args)
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
    assert!(serves(port), "Envoy must still serve");
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
        // Closing the writer is the moment every task ends.
        let (fifo, writer) = held_fifo(&dir);
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
            "cannot lock it: No such file or directory",
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

/// A pod directory as an emptyDir is: every container, whatever its user, may write it.
fn open_to_all(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
}

/// A FIFO in `dir`, held open for reading and writing so that the readers' opens do not
/// block: the readers wait on it until the returned file is closed, all at one moment.
fn held_fifo(dir: &Path) -> (PathBuf, std::fs::File) {
    let fifo = dir.join("fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    (fifo, writer)
}

/// The sidecar a test watches: a real Envoy on `port` still serving, or gone (quit).
fn serves(port: u16) -> bool {
    get_status(port, "/ready") == Some(200)
}

/// A container that cannot join — another running one has its name, or its user cannot
/// write the pod directory — exits 64 and leaves the sidecar to the one that runs; with
/// none running it tells the sidecar to quit, as after every usage error.
#[test]
fn a_container_that_cannot_join_leaves_the_sidecar_to_the_one_that_runs() {
    let test = "a_container_that_cannot_join_leaves_the_sidecar_to_the_one_that_runs";
    let (mut sidecar, port, dir) = or_skip!(envoy_and_pod(test));
    let set = "job,uploader";
    let job = started(container(
        "job",
        &dir,
        set,
        port,
        &["--timeout", "2s"],
        &until_go(&dir, 0),
    ));
    // The pod directory is root's, 0755: the other user cannot write it.
    for (who, name, extra, why) in [
        (
            Who::Root,
            "job",
            &[][..],
            "--name job: another running container of the pod has this name",
        ),
        (
            Who::User(65532),
            "uploader",
            &[],
            "/.uploader.joining: Permission denied",
        ),
        // A mistake in its own configuration: it never joins either.
        (
            Who::Root,
            "uploader",
            &["--grace", "bogus"],
            "--grace: invalid value 'bogus'",
        ),
    ] {
        let out = start(
            container_as(who, name, &dir, set, port, extra, "exit 0"),
            Mode::Pid1,
        )
        .finish(LIMIT);
        assert_eq!(out.code, Some(64), "{}", out.stderr);
        assert!(
            out.log_position(why) < out.log_position("leaving the sidecar running for job"),
            "{}",
            out.stderr
        );
        assert!(
            serves(port),
            "{name}: the sidecar was quit under job: {}",
            out.stderr
        );
    }
    std::fs::write(dir.join("go"), "").unwrap();
    let out = job.finish(LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        sidecar.exits_within(Duration::from_secs(10)),
        "job quits it"
    );
    // None runs now: the one that cannot join quits the sidecar, as every usage error does.
    let port = free_port();
    let envoy_path = envoy_bin(test).unwrap();
    let mut sidecar = envoy(&envoy_path, port, Place::Host);
    let uploader = container_as(Who::User(65532), "uploader", &dir, set, port, &[], "exit 0");
    let out = start(uploader, Mode::Pid1).finish(LIMIT);
    assert_eq!(out.code, Some(64), "{}", out.stderr);
    out.log_position("no other task container of --quit-after runs: the sidecar is told to quit");
    assert!(
        sidecar.exits_within(Duration::from_secs(10)),
        "{}",
        out.stderr
    );
}

/// The exporter and the uploader of a pod, each under a user of its own with umask 077:
/// the exporter started (its task waits for `go`), and the uploader's command, ending at
/// once; `exporter` and `uploader` are extra options of each.
fn exporter_and_uploader(
    dir: &Path,
    port: u16,
    exporter: &[&str],
    uploader: &[&str],
) -> (Running, Command) {
    open_to_all(dir);
    let set = "exporter,uploader";
    let task = until_go(dir, 0);
    let exporter = container_as(
        Who::User(65532),
        "exporter",
        dir,
        set,
        port,
        exporter,
        &task,
    );
    let uploader = container_as(
        Who::User(65533),
        "uploader",
        dir,
        set,
        port,
        uploader,
        "exit 0",
    );
    (started(exporter), uploader)
}

/// Each container under a user of its own with umask 077: the one that ends first still
/// sees the other run (its lock is 0644 whatever the umask), and the last one's line says
/// that it is the last.
#[test]
fn a_lock_made_under_umask_077_is_seen_by_another_user() {
    let test = "a_lock_made_under_umask_077_is_seen_by_another_user";
    let (mut sidecar, port, dir) = or_skip!(envoy_and_pod(test));
    let (exporter, uploader) = exporter_and_uploader(&dir, port, &[], &[]);
    let mode = std::fs::metadata(dir.join("exporter.lock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    let out = start(uploader, Mode::Pid1).finish(LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.log_position("leaving the sidecar running for exporter");
    assert!(serves(port), "quit under the exporter: {}", out.stderr);
    std::fs::write(dir.join("go"), "").unwrap();
    let out = exporter.finish(LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.log_position("the last of the task containers to end");
    assert!(
        sidecar.exits_within(Duration::from_secs(10)),
        "{}",
        out.stderr
    );
}

/// A lock the other user cannot read (made 0600 behind meshinit's back) is said, counted as
/// running until --timeout, then as ended; the owner, ending later, finds the quit already
/// taken while it ran and says so instead of claiming another ended with it.
#[test]
fn a_lock_that_cannot_be_read_counts_as_running_until_the_timeout() {
    let test = "a_lock_that_cannot_be_read_counts_as_running_until_the_timeout";
    let (mut sidecar, port, dir) = or_skip!(envoy_and_pod(test));
    let (exporter, uploader) =
        exporter_and_uploader(&dir, port, &["--quit-window", "0"], &["--timeout", "2s"]);
    let lock = dir.join("exporter.lock");
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = start(uploader, Mode::Pid1).finish(LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let running = out.log_position(&format!(
        "--quit-after: cannot tell whether exporter runs ({}: Permission denied",
        lock.display()
    ));
    assert!(
        out.stderr
            .contains("counted as running until --timeout runs out"),
        "{}",
        out.stderr
    );
    let ended = out.log_position("--quit-after: exporter counted as ended (--timeout ran out)");
    assert!(running < ended && ended < out.log_position("sidecar quit via"));
    assert!(
        sidecar.exits_within(Duration::from_secs(10)),
        "{}",
        out.stderr
    );
    std::fs::write(dir.join("go"), "").unwrap();
    let out = exporter.finish(LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.log_position("is there from before this container ended");
    assert!(
        !out.stderr.contains("ended at the same time"),
        "a false line: {}",
        out.stderr
    );
}

/// What another container planted where a member's lock should be — a FIFO, a symbolic
/// link to a file that is locked — is named and never followed or waited on for ever.
#[test]
fn a_fifo_or_a_link_at_a_members_lock_is_named_and_never_hangs() {
    let test = "a_fifo_or_a_link_at_a_members_lock_is_named_and_never_hangs";
    let (mut sidecar, port, dir) = or_skip!(envoy_and_pod(test));
    let fifo = dir.join("uploader.lock");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // Followed, the link would show a locked lock: a running container.
    let target = dir.join("held");
    let held = std::fs::File::create(&target).unwrap();
    // SAFETY: the descriptor is open for as long as `held` lives; flock takes no pointers.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
    std::os::unix::fs::symlink(&target, dir.join("other.lock")).unwrap();
    let job = container(
        "job",
        &dir,
        "job,uploader,other",
        port,
        &["--timeout", "2s"],
        "exit 0",
    );
    let out = start(job, Mode::Pid1).finish(LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.log_position(&format!("{}: a FIFO, not a regular file", fifo.display()));
    out.log_position("other.lock: a symbolic link (not followed)");
    out.log_position("--quit-after: uploader counted as ended");
    out.log_position("--quit-after: other counted as ended");
    assert!(
        sidecar.exits_within(Duration::from_secs(10)),
        "{}",
        out.stderr
    );
    drop(held);
}

/// A TERM after the task ended ends the wait for every name that has not joined, says so,
/// and the quit follows at once; the summary gives the look at the others apart.
#[test]
fn a_term_ends_the_wait_for_every_name_that_never_joined() {
    let test = "a_term_ends_the_wait_for_every_name_that_never_joined";
    let (mut sidecar, port, dir) = or_skip!(envoy_and_pod(test));
    let a = container("a", &dir, "a,b,c", port, &["--timeout", "60s"], "true");
    let mut a = start(a, Mode::Pid1);
    a.expect_log(|l| l.contains("task exited with code 0"), LIMIT);
    a.signal(libc::SIGTERM);
    // Well within the 60 s that the names were to be waited for.
    let out = a.finish(Duration::from_secs(20));
    assert_eq!(out.code, Some(0), "the task's code: {}", out.stderr);
    for name in ["b", "c"] {
        let line = format!("--quit-after: {name} had not joined");
        let at = out.log_position(&line);
        let said = out.stderr.lines().nth(at).unwrap();
        assert!(said.contains("when SIGTERM came: left out"), "{said}");
        assert!(!said.contains("misspelt"), "{said}");
    }
    let summary = out.stderr.lines().last().unwrap();
    assert!(
        summary.contains(", looked at --quit-after ") && summary.contains(", quit took "),
        "{summary}"
    );
    assert!(
        sidecar.exits_within(Duration::from_secs(10)),
        "{}",
        out.stderr
    );
}

/// Two containers given one name that start at the same moment: exactly one joins, the
/// other is told why, every round.
#[test]
fn of_two_containers_given_one_name_exactly_one_joins() {
    let test = "of_two_containers_given_one_name_exactly_one_joins";
    if !need_pid1(test) {
        return;
    }
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        let dir = tempdir("pod");
        // Closing the writer starts both at once.
        let (fifo, writer) = held_fifo(&dir);
        let gate = format!(
            "exec 3<{}; echo opened; read _ <&3; exec \"$0\" \"$@\"",
            fifo.display()
        );
        let mut wrapper: Vec<&str> = AS_PID1.to_vec();
        wrapper.extend(["sh", "-c", &gate]);
        let pod = dir.to_str().unwrap();
        let args = [
            "--mesh",
            "none",
            "--name",
            "a",
            "--pod-dir",
            pod,
            "--quit-after",
            "a,b",
            "--",
            "sleep",
            "0.3",
        ];
        let mut both: Vec<Running> = (0..2)
            .map(|_| start(meshinit_via(&wrapper, &args), Mode::Pid1))
            .collect();
        for running in &mut both {
            running.expect_line(|l| l == "opened", LIMIT);
        }
        drop(writer);
        let outs: Vec<_> = both.into_iter().map(|r| r.finish(LIMIT)).collect();
        let mut codes: Vec<Option<i32>> = outs.iter().map(|o| o.code).collect();
        codes.sort();
        let logs: Vec<&str> = outs.iter().map(|o| o.stderr.as_str()).collect();
        assert_eq!(codes, [Some(0), Some(64)], "round {round}: {logs:#?}");
        let refused = outs.iter().find(|o| o.code == Some(64)).unwrap();
        refused.log_position("--name a: another running container of the pod has this name");
    }
}

/// A container killed in the middle of its join (OOM, SIGKILL) leaves its hidden file; its
/// restart, PID 1 again, joins all the same.
#[test]
fn a_container_killed_while_joining_joins_again_when_it_restarts() {
    let test = "a_container_killed_while_joining_joins_again_when_it_restarts";
    if !need_pid1(test) || !need_tools(test, &["strace"]) {
        return;
    }
    let dir = tempdir("pod");
    let pod = dir.to_str().unwrap();
    let args = [
        "--mesh",
        "none",
        "--name",
        "a",
        "--pod-dir",
        pod,
        "--quit-after",
        "a",
        "--",
        "true",
    ];
    killed_midway(delayed_in("rename", &args), &dir, ".a.");
    let out = start(meshinit_via(AS_PID1, &args), Mode::Pid1).finish(LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

/// One that cannot join and ends before the other has even started leaves the sidecar to
/// it all the same: the other's name is waited for, as a member waits for it.
#[test]
fn one_that_cannot_join_waits_for_the_others_to_join() {
    let test = "one_that_cannot_join_waits_for_the_others_to_join";
    let (mut sidecar, port, dir) = or_skip!(envoy_and_pod(test));
    let set = "job,uploader";
    // The pod directory is root's, 0755: this user cannot write it.
    let mut uploader = start(
        container_as(Who::User(65532), "uploader", &dir, set, port, &[], "exit 0"),
        Mode::Pid1,
    );
    uploader.expect_log(|l| l.contains("Permission denied"), LIMIT);
    // Its own wait for the uploader, which never joins, is cut to 2 s.
    let job = container(
        "job",
        &dir,
        set,
        port,
        &["--timeout", "2s"],
        &until_go(&dir, 0),
    );
    let job = started(job);
    let out = uploader.finish(LIMIT);
    assert_eq!(out.code, Some(64), "{}", out.stderr);
    out.log_position("leaving the sidecar running for job");
    assert!(serves(port), "quit before job ran: {}", out.stderr);
    std::fs::write(dir.join("go"), "").unwrap();
    let out = job.finish(LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        sidecar.exits_within(Duration::from_secs(10)),
        "{}",
        out.stderr
    );
}

/// A TERM that ended the task (the pod is being deleted) also ends, at once, the wait for a
/// name that has not joined: the container ends within the kubelet's grace, with 143.
#[test]
fn a_term_during_the_task_ends_the_wait_for_names_not_joined() {
    let test = "a_term_during_the_task_ends_the_wait_for_names_not_joined";
    let (mut sidecar, port, dir) = or_skip!(envoy_and_pod(test));
    let a = container("a", &dir, "a,b", port, &["--timeout", "60s"], "sleep 100");
    let a = started(a);
    a.signal(libc::SIGTERM);
    // Well within the 60 s that b was to be waited for.
    let out = a.finish(Duration::from_secs(20));
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    out.log_position("--quit-after: b had not joined");
    out.log_position("when SIGTERM came: left out");
    assert!(
        sidecar.exits_within(Duration::from_secs(10)),
        "{}",
        out.stderr
    );
}

/// In a sticky directory another user's `.quit` of the last round cannot be removed: the
/// container still joins, and at its end quits the sidecar, saying why.
#[test]
fn another_users_quit_file_in_a_sticky_directory_does_not_block_a_join() {
    let test = "another_users_quit_file_in_a_sticky_directory_does_not_block_a_join";
    let (mut sidecar, port, dir) = or_skip!(envoy_and_pod(test));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let token = dir.join(".quit");
    std::fs::write(&token, "").unwrap();
    let status = Command::new("chown")
        .arg("65533:65533")
        .arg(&token)
        .status()
        .unwrap();
    assert!(status.success());
    let job = container_as(Who::User(65532), "job", &dir, "job", port, &[], "exit 0");
    let out = start(job, Mode::Pid1).finish(LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.log_position("cannot remove");
    out.log_position("is there from before this container ended");
    assert!(
        sidecar.exits_within(Duration::from_secs(10)),
        "{}",
        out.stderr
    );
}
