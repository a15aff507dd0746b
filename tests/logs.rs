//! What a Job's user reads: the JSON lines a log pipeline parses, the signal story, the
//! summary line, a refusal said once, and the Kubernetes termination message written only
//! when the task never ran (in mount namespaces of the test's own); levels; a stderr that is
//! full, without reader or closed; secrets kept out of help and logs.

#[macro_use]
mod common;

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mesh::{envoy, envoy_bin, fault, free_port, url, Place};
use common::{
    bin, finish_plain, meshinit_bare, meshinit_plain, meshinit_via, need_pid1, run_plain, start,
    tempdir, Mode, Output,
};

const LIMIT: Duration = Duration::from_secs(40);

/// Every stderr line through Python's JSON parser; prints each object back as one line of
/// `key=value` pairs, sorted, for the assertions.
fn parsed(stderr: &str) -> Vec<String> {
    const PARSE: &str = r#"
import datetime, json, sys
for line in sys.stdin.read().splitlines():
    obj = json.loads(line)
    datetime.datetime.strptime(obj["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert len(obj["time"]) == 24, obj["time"]
    print(" ".join("%s=%s" % (k, json.dumps(v)) for k, v in sorted(obj.items()) if k != "time"))
"#;
    let mut child = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), stderr.as_bytes())
        .expect("write to python3");
    let out = child.wait_with_output().expect("python3");
    assert!(
        out.status.success(),
        "not JSON lines:\n{stderr}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn find<'a>(objects: &'a [String], words: &[&str]) -> &'a str {
    objects
        .iter()
        .find(|o| words.iter().all(|w| o.contains(w)))
        .unwrap_or_else(|| panic!("no line with {words:?} in:\n{}", objects.join("\n")))
}

#[test]
fn json_lines_against_a_real_envoy_carry_their_fields() {
    let test = "json_lines_against_a_real_envoy_carry_their_fields";
    let envoy_path = or_skip!(envoy_bin(test));
    let port = free_port();
    let mut sidecar = envoy(&envoy_path, port, Place::Host);
    let ready = url(port, "/ready");
    let quit = url(port, "/quitquitquit");
    let out = run_plain(&[
        "--log-format",
        "json",
        "--ready-url",
        &ready,
        "--quit-url",
        &quit,
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    let objects = parsed(&out.stderr);
    find(&objects, &["phase=\"wait\"", &format!("url=\"{ready}\"")]);
    find(&objects, &["the sidecar is ready", "elapsed_ms="]);
    find(&objects, &["phase=\"task\"", "command=\"sh\"", "pid="]);
    find(&objects, &["task exited with code 3", "code=3"]);
    find(
        &objects,
        &["phase=\"quit\"", "status=200", &format!("url=\"{quit}\"")],
    );
    let summary = find(&objects, &["phase=\"exit\""]);
    for field in [
        "code=3",
        "source=\"task\"",
        "wait_ms=",
        "task_ms=",
        "quit_ms=",
    ] {
        assert!(summary.contains(field), "{field} not in {summary}");
    }
    assert!(sidecar.exits_within(Duration::from_secs(10)));
}

/// Every quit line has `status`, `null` when no status came (README's promise): the one for
/// a quit refused at the connection, one failed by a garbage answer, a notified endpoint's.
#[test]
fn json_quit_lines_without_an_answer_have_a_null_status() {
    let garbage = free_port();
    let _garbage = fault(garbage, "garbage", Place::Host);
    let refused = url(free_port(), "/quitquitquit");
    let broken = url(garbage, "/quitquitquit");
    let told = url(free_port(), "/told");
    let out = run_plain(&[
        "--log-format",
        "json",
        "quit",
        "--mesh",
        "none",
        "--quit-url",
        &refused,
        "--quit-url",
        &broken,
        "--also-quit",
        &told,
        "--quit-budget",
        "1s",
    ]);
    assert_eq!(out.code, Some(69), "{}", out.stderr);
    let objects = parsed(&out.stderr);
    for shown in [&refused, &broken, &told] {
        let line = find(&objects, &[&format!("url=\"{shown}\"")]);
        assert!(line.contains("status=null"), "{line}");
        assert!(line.contains("phase=\"quit\""), "{line}");
    }
}

#[test]
fn json_format_holds_for_usage_errors_and_hostile_values() {
    // A value with control characters, quotes and invalid UTF-8 in an error and in a
    // task's name; every line must still parse.
    let out = run_plain(&[
        "--log-format=json",
        "--mesh",
        "is\"tio\n\u{1}\\",
        "--",
        "true",
    ]);
    assert_eq!(out.code, Some(64));
    let objects = parsed(&out.stderr);
    find(
        &objects,
        &[
            "level=\"error\"",
            "phase=\"usage\"",
            "--mesh: invalid value",
        ],
    );
    find(&objects, &["source=\"usage\"", "code=64"]);
    let mut cmd = meshinit_bare(
        Mode::Plain,
        &["--mesh", "none", "--", "no-such\u{7f}\"prog"],
    );
    cmd.env("MESHINIT_LOG_FORMAT", "json");
    let out = start(cmd, Mode::Plain).finish(LIMIT);
    assert_eq!(out.code, Some(127));
    let objects = parsed(&out.stderr);
    find(&objects, &["source=\"cannot run\"", "code=127"]);
    let out = run_plain(&["--log-format", "yaml", "--", "true"]);
    assert_eq!(out.code, Some(64));
    assert!(out
        .stderr
        .contains("--log-format: invalid value 'yaml': expected text or json"));
}

#[test]
fn the_signal_story_and_the_summary() {
    let mut running = start(
        meshinit_bare(
            Mode::Plain,
            &[
                "--mesh",
                "none",
                "--",
                "sh",
                "-c",
                "trap 'echo got; trap - TERM; kill -TERM $$' TERM; echo up; while :; do sleep 0.05; done",
            ],
        ),
        Mode::Plain,
    );
    running.expect_line(|l| l == "up", LIMIT);
    running.signal(libc::SIGTERM);
    let out = running.finish(LIMIT);
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    assert_eq!(
        out.stderr
            .matches("received SIGTERM, forwarded to the task")
            .count(),
        1,
        "{}",
        out.stderr
    );
    out.log_position("task killed by SIGTERM (exit 143)");
    let summary = out.log_position("exit 143 (task), waited ");
    assert_eq!(summary + 1, out.stderr.lines().count(), "the last line");
    assert!(
        !out.stderr.contains("task exited with code 143"),
        "{}",
        out.stderr
    );

    let out = run_plain(&[
        "--mesh",
        "envoy",
        "--ready-url",
        &url(free_port(), "/ready"),
        "--timeout",
        "200ms",
        "--quit-window=0",
        "--",
        "true",
    ]);
    assert_eq!(out.code, Some(69));
    out.log_position("exit 69 (timeout), waited ");
    let out = run_plain(&["--mesh", "none", "--", "no-such-program-here"]);
    out.log_position("exit 127 (cannot run)");
    let out = run_plain(&["--mesh", "none", "--timeout", "x", "--", "true"]);
    out.log_position("exit 64 (usage)");
}

#[test]
fn a_definite_refusal_is_asked_once_and_hinted_once() {
    let port = free_port();
    let mut proxy = fault(port, "linkerd-locked", Place::Host);
    let out = run_plain(&[
        "--mesh",
        "linkerd",
        "--ready-url",
        &url(port, "/ready"),
        "--quit-url",
        &url(port, "/shutdown"),
        "--",
        "true",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let posts = proxy
        .lines_so_far(Duration::from_millis(300))
        .iter()
        .filter(|l| l.starts_with("POST"))
        .count();
    assert_eq!(posts, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr
            .matches("config.linkerd.io/proxy-admin-shutdown: enabled")
            .count(),
        1,
        "{}",
        out.stderr
    );
}

/// The host file `$LOG` bind-mounted as /dev/termination-log (on the namespace's own /dev).
const BIND: &str = "touch /dev/termination-log && mount --bind \"$LOG\" /dev/termination-log &&";

/// Runs meshinit with `args` in a mount namespace of its own whose /dev is a fresh tmpfs;
/// `setup` prepares /dev/termination-log there (from `$LOG`, the host file). Prints
/// meshinit's code and whether /dev/termination-log exists afterwards.
fn with_termination_log(log: &std::path::Path, setup: &str, args: &[&str]) -> (String, Output) {
    let script = format!(
        "mount -t tmpfs tmpfs /dev && {setup} \"$0\" \"$@\"; echo code=$?; \
         test -e /dev/termination-log && echo exists || echo absent"
    );
    let mut cmd = meshinit_via(&["unshare", "--mount", "sh", "-c", &script], args);
    cmd.env("LOG", log);
    let out = start(cmd, Mode::Plain).finish(LIMIT);
    let written = std::fs::read_to_string(log).unwrap_or_default();
    (written, out)
}

#[test]
fn the_termination_message_says_why_the_task_never_ran() {
    let test = "the_termination_message_says_why_the_task_never_ran";
    if !need_pid1(test) {
        return;
    }
    let dir = tempdir("termination");
    let log = dir.join("termination-log");
    let timeout = ["--mesh", "none", "--ready-url", "http://127.0.0.1:9/r"];
    let cases: [(&[&str], &str, u8); 5] = [
        (
            &["--mesh", "none", "--", "no-such-program"],
            "meshinit: cannot run 'no-such-program'",
            127,
        ),
        (
            &[
                &timeout[..],
                &["--timeout", "100ms", "--quit-window=0", "--", "true"],
            ]
            .concat(),
            "meshinit: the sidecar was not ready within 100ms (exit 69)",
            69,
        ),
        (
            &["--mesh", "none", "--grace", "soon", "--", "true"],
            "meshinit: --grace: invalid value 'soon'",
            64,
        ),
        (&["--mesh", "none", "--", "/dev"], "(exit 126)", 126),
        // `meshinit wait` as a container's command: its time-out is said there too.
        (
            &[&["wait"], &timeout[..], &["--timeout", "100ms"]].concat(),
            "meshinit: the sidecar was not ready within 100ms (exit 69)",
            69,
        ),
    ];
    for (args, expected, code) in cases {
        std::fs::write(&log, "").unwrap();
        let (written, out) = with_termination_log(&log, BIND, args);
        out.expect_stdout(&format!("code={code}\n"));
        assert_eq!(written.lines().count(), 1, "{args:?}: {written:?}");
        assert!(
            written.contains(expected),
            "{args:?}: {written:?}\n{}",
            out.stderr
        );
    }
    // The task ran: its own message stays, whatever its code.
    std::fs::write(&log, "the task's own words\n").unwrap();
    let (written, out) =
        with_termination_log(&log, BIND, &["--mesh", "none", "--", "sh", "-c", "exit 5"]);
    assert!(
        out.stdout.contains("code=5"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(written, "the task's own words\n");
    // A signal before the start is a reason too.
    std::fs::write(&log, "").unwrap();
    let script = format!("mount -t tmpfs tmpfs /dev && {BIND} exec \"$0\" \"$@\"");
    let mut cmd = meshinit_via(
        &["unshare", "--mount", "sh", "-c", &script],
        &[
            "--mesh",
            "none",
            "--ready-url",
            "http://127.0.0.1:9/r",
            "--",
            "true",
        ],
    );
    cmd.env("LOG", &log);
    // unshare and the shell exec meshinit: the pid started is meshinit's.
    let mut running = start(cmd, Mode::Plain);
    running.expect_log(|l| l.contains("waiting for the sidecar"), LIMIT);
    running.signal(libc::SIGTERM);
    let out = running.finish(LIMIT);
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(
        written.contains("SIGTERM before the task started (exit 143)"),
        "{written:?}"
    );
}

#[test]
fn a_missing_read_only_or_disabled_termination_log_changes_nothing() {
    let test = "a_missing_read_only_or_disabled_termination_log_changes_nothing";
    if !need_pid1(test) {
        return;
    }
    let dir = tempdir("termination-edge");
    let log = dir.join("termination-log");
    let args: &[&str] = &["--mesh", "none", "--", "no-such-program"];
    // Missing: nothing is created.
    let (_, out) = with_termination_log(&log, "", args);
    assert!(
        out.stdout.contains("code=127"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("absent"), "{}", out.stdout);
    // Read-only: the code is the same, the file untouched.
    std::fs::write(&log, "before\n").unwrap();
    let read_only = format!("{BIND} mount -o remount,bind,ro /dev/termination-log &&");
    let (written, out) = with_termination_log(&log, &read_only, args);
    assert!(
        out.stdout.contains("code=127"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(written, "before\n");
    // Turned off, or moved elsewhere by MESHINIT_TERMINATION_LOG.
    let (written, _) = with_termination_log(
        &log,
        BIND,
        &[
            "--termination-log=",
            "--mesh",
            "none",
            "--",
            "no-such-program",
        ],
    );
    assert_eq!(written, "before\n");
    let elsewhere = dir.join("elsewhere");
    std::fs::write(&elsewhere, "").unwrap();
    let mut cmd = meshinit_bare(Mode::Plain, args);
    cmd.env("MESHINIT_TERMINATION_LOG", &elsewhere);
    let out = start(cmd, Mode::Plain).finish(LIMIT);
    assert_eq!(out.code, Some(127));
    let written = std::fs::read_to_string(&elsewhere).unwrap();
    assert!(
        written.starts_with("meshinit: cannot run 'no-such-program'"),
        "{written:?}"
    );
}

#[test]
fn a_long_line_never_blocks_on_a_pipe_with_one_free_slot() {
    // stderr is a pipe nobody reads, with room for one 4 KiB write: the "waiting" line for
    // 100 long readiness URLs is 11 KB. Written whole it would wait for a reader forever.
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just made and are owned here alone.
    let (reader, writer) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    // SAFETY: F_GETPIPE_SZ has no memory arguments.
    let size = unsafe { libc::fcntl(fds[1], libc::F_GETPIPE_SZ) };
    assert!(size >= 8192, "pipe size {size}");
    let filler = vec![b'.'; 4096];
    for _ in 0..(size as usize / 4096 - 1) {
        std::io::Write::write_all(&mut &writer, &filler).unwrap();
    }
    let long = format!("http://127.0.0.1:9/{}", "r".repeat(90));
    let mut args = vec!["--mesh", "none", "--timeout", "1s", "--quit-window=0"];
    for _ in 0..100 {
        args.extend(["--ready-url", &long]);
    }
    args.extend(["--", "true"]);
    let mut cmd = meshinit_bare(Mode::Plain, &args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(writer.try_clone().unwrap());
    let began = std::time::Instant::now();
    let mut child = cmd.spawn().expect("spawn meshinit");
    // The command holds a copy of the write end: the pipe's end of file needs it gone.
    drop(cmd);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if began.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("meshinit blocked on its own log line");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(69));
    drop(writer);
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut &reader, &mut text).unwrap();
    let text = String::from_utf8_lossy(&text);
    // The filler has no newline: the first line begins where meshinit's does.
    let waiting = text
        .split('\n')
        .find(|l| l.contains("waiting for the sidecar"))
        .and_then(|l| l.find("meshinit +").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no waiting line in the pipe"));
    assert!(waiting.len() < 4096, "{} bytes", waiting.len());
    assert!(waiting.contains(" [cut: "), "{waiting}");
}

#[test]
fn the_log_filter_is_env_loggers() {
    // A level for meshinit, another for ureq: ureq's own records reach the same sink.
    let args = [
        "--log",
        "info,ureq=debug",
        "--mesh",
        "none",
        "--ready-url",
        "http://127.0.0.1:9/ready",
        "--timeout",
        "200ms",
        "--quit-window=0",
        "--",
        "true",
    ];
    let out = run_plain(&args);
    assert_eq!(out.code, Some(69), "{}", out.stderr);
    assert!(out.stderr.contains(" debug: ureq"), "{}", out.stderr);
    // meshinit's own debug lines stay out at info.
    assert!(!out.stderr.contains("debug: not PID 1"), "{}", out.stderr);
    // A bare word that is no level would silence every line: refused.
    let out = run_plain(&["--log", "DEBUGG", "--", "true"]);
    assert_eq!(out.code, Some(64), "{}", out.stderr);
    assert!(
        out.stderr.contains("--log: invalid value 'DEBUGG'"),
        "{}",
        out.stderr
    );
    // warn: no info line, not even the summary.
    let out = run_plain(&["--log", "warn", "--mesh", "none", "--", "true"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""));
}

#[test]
fn a_task_killed_by_sigkill_is_said_to_be() {
    let out = run_plain(&["--mesh", "none", "--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(out.code, Some(137), "{}", out.stderr);
    out.log_position("task killed by SIGKILL (exit 137)");
    let out = run_plain(&[
        "--mesh",
        "none",
        "--log-format",
        "json",
        "--",
        "sh",
        "-c",
        "kill -KILL $$",
    ]);
    assert!(out.stderr.contains("\"signal\":\"KILL\""), "{}", out.stderr);
}

/// The summary names where each code came from, in every form of run.
#[test]
fn the_summary_for_a_signal_a_wait_and_a_quit() {
    let ready = url(free_port(), "/ready");
    // A TERM before the task: "signal", and the task never ran.
    let mut running = start(
        meshinit_bare(
            Mode::Plain,
            &["--ready-url", &ready, "--kill-fallback=false", "--", "true"],
        ),
        Mode::Plain,
    );
    running.expect_log(|l| l.contains("waiting for the sidecar"), LIMIT);
    running.signal(libc::SIGTERM);
    let out = running.finish(LIMIT);
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(last.contains("exit 143 (signal), waited "), "{last}");
    // `wait`: ready is "wait", a time-out "timeout".
    let endpoint_port = free_port();
    let mut endpoint = fault(endpoint_port, "status:200", Place::Host);
    let out = run_plain(&["wait", "--ready-url", &url(endpoint_port, "/ready")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(last.contains("exit 0 (wait), waited "), "{last}");
    let out = run_plain(&["wait", "--ready-url", &ready, "--timeout", "100ms"]);
    assert_eq!(out.code, Some(69), "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(last.contains("exit 69 (timeout), waited "), "{last}");
    // `quit`: "quit", with how long it took.
    let out = run_plain(&["quit", "--quit-url", &url(endpoint_port, "/quitquitquit")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(last.contains("exit 0 (quit), quit took "), "{last}");
    drop(endpoint.lines_so_far(Duration::from_millis(10)));
}

/// `--log warn` keeps warnings and errors, `--log error` only errors.
#[test]
fn warn_and_error_levels_filter_as_named() {
    // A time-out: an error line, then the quit's warning (nothing listens, no fallback).
    let args = |level: &'static str| {
        vec![
            "--log",
            level,
            "--mesh",
            "istio",
            "--ready-url",
            "http://127.0.0.1:9/ready",
            "--quit-url",
            "http://127.0.0.1:9/quitquitquit",
            "--timeout",
            "200ms",
            "--quit-window=0",
            "--",
            "true",
        ]
    };
    let levels = |stderr: &str| -> Vec<String> {
        stderr
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
            .collect()
    };
    let out = run_plain(&args("warn"));
    assert_eq!(out.code, Some(69), "{}", out.stderr);
    let seen = levels(&out.stderr);
    assert!(seen.iter().any(|l| l == "error:"), "{}", out.stderr);
    assert!(seen.iter().any(|l| l == "warn:"), "{}", out.stderr);
    assert!(
        seen.iter().all(|l| l == "error:" || l == "warn:"),
        "{}",
        out.stderr
    );
    let out = run_plain(&args("error"));
    assert_eq!(out.code, Some(69), "{}", out.stderr);
    let seen = levels(&out.stderr);
    assert!(
        !seen.is_empty() && seen.iter().all(|l| l == "error:"),
        "{}",
        out.stderr
    );
}

// ---- meshinit's own output: a stderr that is full, without reader or closed; secrets -----

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just created and are owned here alone.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Runs meshinit with `stderr` as its standard error; returns its exit code within 10 s.
fn code_with_stderr(args: &[&str], stderr: Stdio) -> Option<i32> {
    let mut cmd = meshinit_plain(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_full_stderr_pipe_does_not_block_meshinit() {
    let (read_end, write_end) = pipe();
    // The task fills the pipe that nobody reads (through a non-blocking description of its
    // own, so that it does not block itself) and exits; meshinit's own lines after that
    // must be dropped, not block it.
    let fill = "import os\n\
                fd = os.open('/proc/self/fd/2', os.O_WRONLY | os.O_NONBLOCK)\n\
                try:\n    while True: os.write(fd, b'x' * 4096)\n\
                except BlockingIOError:\n    pass\n\
                raise SystemExit(5)\n";
    let code = code_with_stderr(
        &[
            "--mesh", "none", "--log", "debug", "--", "python3", "-c", fill,
        ],
        Stdio::from(write_end),
    );
    drop(read_end);
    assert_eq!(
        code,
        Some(5),
        "meshinit blocked on its full stderr or lost the code"
    );
}

#[test]
fn a_stderr_without_reader_neither_kills_meshinit_nor_signals_the_task() {
    let (read_end, write_end) = pipe();
    drop(read_end);
    let (out_read, out_write) = pipe();
    let mut cmd = meshinit_plain(&[
        "--mesh",
        "none",
        "--log",
        "debug",
        "--",
        "sh",
        "-c",
        "trap 'echo task-got-PIPE' PIPE; sleep 0.5; echo done",
    ]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out_write))
        .stderr(Stdio::from(write_end));
    let status = cmd.status().unwrap();
    // The command holds its copy of the write end until dropped; then EOF can come.
    drop(cmd);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(out_read), &mut text).unwrap();
    assert_eq!(status.code(), Some(0), "{text}");
    assert_eq!(text.trim(), "done", "SIGPIPE reached the task: {text}");
}

#[test]
fn a_closed_stderr_is_no_problem() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "exec 2>&-; exec \"$0\" --mesh none -- sh -c 'exit 7'"])
        .arg(bin());
    common::clean_env(&mut cmd);
    cmd.env("MESHINIT_LOG", "debug");
    assert_eq!(cmd.status().unwrap().code(), Some(7));
}

#[test]
fn secrets_stay_out_of_help_and_logs() {
    let secret = "s3cr3t-value";
    let admin = format!("http://user:{secret}@127.0.0.1:9");
    let mut cmd = meshinit_plain(&["--timeout", "300ms", "--quit-window=0", "--", "true"]);
    cmd.env("ENVOY_ADMIN_API", &admin).env(
        "GENERIC_QUIT_ENDPOINTS",
        format!("http://u:{secret}@127.0.0.1:9/x"),
    );
    let out = finish_plain(cmd);
    assert_eq!(out.code, Some(69), "{}", out.stderr);
    assert!(
        out.stderr.contains("http://***@127.0.0.1:9"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(secret), "{}", out.stderr);

    let mut cmd = meshinit_plain(&["--mesh", "none", "true"]);
    cmd.env("NEVER_KILL_ISTIO", secret);
    let out = finish_plain(cmd);
    assert_eq!(out.code, Some(64));
    assert!(
        out.stderr.contains("NEVER_KILL_ISTIO") && !out.stderr.contains(secret),
        "{}",
        out.stderr
    );

    let mut cmd = meshinit_plain(&["--help"]);
    cmd.env("ENVOY_ADMIN_API", &admin)
        .env("MESHINIT_QUIT_URL", &admin);
    let out = finish_plain(cmd);
    assert_eq!(out.code, Some(0));
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
}
