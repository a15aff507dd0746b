//! Hardening: faults around the sidecar (a real Envoy killed at each phase, the pilot-agent
//! stand-in dying mid-quit, a quit taken but not acted on), /proc that cannot help, a task
//! that ignores TERM, a stderr that is full, broken or closed, secrets kept out of output,
//! load (10,000 orphans, a signal storm, repeated runs) and least privilege (UID 65532,
//! no capabilities). The long forms of the load tests are in scripts/reliability.

#[macro_use]
mod common;

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mesh::{
    envoy, envoy_bin, envoy_never_ready, fault, free_port, pilot_agent_with, url, wait_ready,
    IstioPorts, Place,
};
use common::{bin, meshinit_bare, meshinit_via, need_pid1, signum, start, tempdir, Mode, Output};

const LIMIT: Duration = Duration::from_secs(40);
const NONROOT: [&str; 7] = [
    "setpriv",
    "--reuid=65532",
    "--regid=65532",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
];

/// meshinit with `args`, configured by `args` alone.
fn meshinit(args: &[&str]) -> Command {
    meshinit_bare(Mode::Plain, args)
}

fn finish(cmd: Command) -> Output {
    start(cmd, Mode::Plain).finish(LIMIT)
}

fn posts(sidecar: &mut common::Running) -> usize {
    let calls = sidecar.lines_so_far(Duration::from_millis(200));
    calls.iter().filter(|l| l.starts_with("POST ")).count()
}

// ---- faults around a real Envoy ----------------------------------------------------

#[test]
fn envoy_killed_during_the_wait_ends_in_the_time_limit() {
    let test = "envoy_killed_during_the_wait_ends_in_the_time_limit";
    let envoy_path = or_skip!(envoy_bin(test));
    let port = free_port();
    let mut sidecar = envoy_never_ready(&envoy_path, port);
    let ready = url(port, "/ready");
    let quit = url(port, "/quitquitquit");
    let running = start(
        meshinit(&[
            "--ready-url",
            &ready,
            "--quit-url",
            &quit,
            "--timeout",
            "2s",
            "--quit-window=0",
            "--",
            "echo",
            "ran",
        ]),
        Mode::Plain,
    );
    std::thread::sleep(Duration::from_millis(700));
    sidecar.child.kill().unwrap();
    let began = Instant::now();
    let out = running.finish(LIMIT);
    assert_eq!(out.code, Some(69), "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        began.elapsed() < Duration::from_secs(7),
        "{:?}",
        began.elapsed()
    );
    out.log_position("not ready within 2000ms");
}

#[test]
fn envoy_killed_between_the_task_and_the_quit() {
    let test = "envoy_killed_between_the_task_and_the_quit";
    let envoy_path = or_skip!(envoy_bin(test));
    let port = free_port();
    let sidecar = envoy(&envoy_path, port, Place::Host);
    wait_ready(port, "/ready", Duration::from_secs(20));
    // The task's last act is to SIGKILL Envoy (by the pid this test started).
    let script = format!("kill -KILL {}; exit 6", sidecar.child.id());
    let began = Instant::now();
    let out = finish(meshinit(&[
        "--ready-url",
        &url(port, "/ready"),
        "--quit-url",
        &url(port, "/quitquitquit"),
        "--kill-fallback=false",
        "--",
        "sh",
        "-c",
        &script,
    ]));
    assert_eq!(out.code, Some(6), "{}", out.stderr);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    // Dead before the quit (refused), or dying as it came (reset, then refused: gone).
    assert!(
        out.stderr.contains("failed: connection refused")
            || out.stderr.contains("no longer listens"),
        "{}",
        out.stderr
    );
}

#[test]
fn pilot_agent_dying_before_it_answers_the_quit() {
    let test = "pilot_agent_dying_before_it_answers_the_quit";
    let envoy_path = or_skip!(envoy_bin(test));
    let ports = IstioPorts::free();
    let mut agent = pilot_agent_with(
        &envoy_path,
        ports,
        Duration::ZERO,
        Place::Host,
        &["--die-on-quit"],
    );
    wait_ready(ports.ready, "/healthz/ready", Duration::from_secs(20));
    let started = agent.expect_line(|l| l.starts_with("envoy started "), LIMIT);
    let envoy_pid: i32 = started.rsplit(' ').next().unwrap().parse().unwrap();
    let began = Instant::now();
    let out = finish(meshinit(&[
        "--ready-url",
        &url(ports.ready, "/healthz/ready"),
        "--quit-url",
        &url(ports.status, "/quitquitquit"),
        "--quit-url",
        &url(ports.admin, "/quitquitquit"),
        "--kill-fallback=false",
        "--",
        "sh",
        "-c",
        "exit 4",
    ]));
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(
        began.elapsed() < Duration::from_secs(6),
        "{:?}",
        began.elapsed()
    );
    out.log_position(&format!(
        "quit via {} failed",
        url(ports.status, "/quitquitquit")
    ));
    assert!(agent.exits_within(Duration::from_secs(5)));
    // The agent left its Envoy running: the next endpoint, Envoy's own, quit it.
    out.log_position(&format!(
        "sidecar quit via {}",
        url(ports.admin, "/quitquitquit")
    ));
    let gone = || {
        // SAFETY: signal 0 only checks the pid, the Envoy the stand-in this test started ran.
        let alive = unsafe { libc::kill(envoy_pid, 0) } == 0;
        !alive
            || std::fs::read_to_string(format!("/proc/{envoy_pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let quit = gone();
    if !quit {
        // SAFETY: as above; the test ends what it started.
        unsafe { libc::kill(envoy_pid, libc::SIGKILL) };
    }
    assert!(quit, "Envoy {envoy_pid} still runs: {}", out.stderr);
}

#[test]
fn both_gone_at_quit_time() {
    let test = "both_gone_at_quit_time";
    let envoy_path = or_skip!(envoy_bin(test));
    let ports = IstioPorts::free();
    let agent = pilot_agent_with(&envoy_path, ports, Duration::ZERO, Place::Host, &[]);
    wait_ready(ports.ready, "/healthz/ready", Duration::from_secs(20));
    // SIGKILL of the stand-in takes its Envoy along (parent-death signal).
    let script = format!("kill -KILL {}; sleep 0.3; exit 9", agent.child.id());
    let began = Instant::now();
    let out = finish(meshinit(&[
        "--ready-url",
        &url(ports.ready, "/healthz/ready"),
        "--quit-url",
        &url(ports.status, "/quitquitquit"),
        "--quit-url",
        &url(ports.admin, "/quitquitquit"),
        "--kill-fallback=false",
        "--",
        "sh",
        "-c",
        &script,
    ]));
    assert_eq!(out.code, Some(9), "{}", out.stderr);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    out.log_position("no quit endpoint took the request");
}

#[test]
fn a_quit_taken_but_not_acted_on_gets_sigterm_through_proc() {
    let test = "a_quit_taken_but_not_acted_on_gets_sigterm_through_proc";
    if !need_pid1(test) {
        return;
    }
    // In a PID namespace of the test's own: a "sidecar" (fault.py) that answers 200 to the
    // quit and goes on running. meshinit may signal only its executable (the real python).
    let python = String::from_utf8(
        Command::new("python3")
            .args([
                "-c",
                "import os, sys; print(os.path.realpath(sys.executable))",
            ])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let port = free_port();
    let script = format!(
        "python3 {fault} {port} status:200 --lifetime 20 > /dev/null & pid=$!; \
         i=0; while [ $i -lt 100 ] && ! (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; do sleep 0.05; i=$((i+1)); done; \
         {bin} --mesh none --quit-url http://127.0.0.1:{port}/quitquitquit --sidecar-exe {python} \
           --quit-wait 500ms -- sh -c 'exit 2'; echo meshinit=$?; \
         sleep 0.3; if kill -0 $pid 2>/dev/null; then echo sidecar=running; else echo sidecar=gone; fi",
        fault = common::fixture("fault.py").display(),
        bin = bin().display(),
        python = python.trim(),
    );
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        "bash",
        "-c",
        &script,
    ]);
    let out = finish(cmd);
    out.expect_stdout("meshinit=2");
    out.expect_stdout("sidecar=gone");
    out.log_position("took the quit but still runs after 500ms");
    out.log_position("sent SIGTERM to");
}

// ---- /proc that cannot help --------------------------------------------------------

/// Runs `script` with bash in a new PID and mount namespace; /proc as the script leaves it.
fn in_namespaces(script: &str) -> Output {
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount",
        "--kill-child",
        "bash",
        "-c",
        script,
    ]);
    finish(cmd)
}

#[test]
fn proc_missing_or_unreadable_is_said_and_the_code_kept() {
    let test = "proc_missing_or_unreadable_is_said_and_the_code_kept";
    if !need_pid1(test) {
        return;
    }
    let bin = bin();
    let run = format!(
        "{} --mesh istio --timeout 200ms --on-timeout start --quit-url http://127.0.0.1:9/quitquitquit -- sh -c 'exit 3'; echo meshinit=$?",
        bin.display()
    );
    // Missing: an empty /proc.
    let out = in_namespaces(&format!("mount -t tmpfs none /proc && {run}"));
    out.expect_stdout("meshinit=3");
    assert!(out.stderr.contains("is visible in /proc"), "{}", out.stderr);
    // Unreadable to meshinit, which runs as UID 65532.
    let out = in_namespaces(&format!(
        "mount -t tmpfs -o mode=000 none /proc && {} {run}",
        NONROOT.join(" ")
    ));
    out.expect_stdout("meshinit=3");
    assert!(
        out.stderr.contains("/proc is not readable"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_sidecar_of_another_uid_is_reported_not_signalled() {
    let test = "a_sidecar_of_another_uid_is_reported_not_signalled";
    if !need_pid1(test) {
        return;
    }
    let dir = tempdir("otheruid");
    let agent = dir.join("pilot-agent");
    std::fs::copy("/bin/sh", &agent).unwrap();
    let script = format!(
        "{agent} -c 'i=0; while [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done' & pid=$!; sleep 0.2; \
         {nonroot} {bin} --mesh none --quit-url http://127.0.0.1:9/q --sidecar-exe {agent} -- sh -c 'exit 5'; \
         echo meshinit=$?; kill -0 $pid && echo sidecar=running; kill $pid",
        agent = agent.display(),
        nonroot = NONROOT.join(" "),
        bin = bin().display()
    );
    let out = in_namespaces(&format!("mount -t proc proc /proc && {script}"));
    out.expect_stdout("meshinit=5");
    assert!(out.stdout.contains("sidecar=running"), "{}", out.stdout);
    assert!(
        out.stderr.contains("runs as another user"),
        "{}",
        out.stderr
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_lookalike_by_name_is_never_signalled() {
    let test = "a_lookalike_by_name_is_never_signalled";
    if !need_pid1(test) {
        return;
    }
    // argv[0] says /usr/local/bin/pilot-agent, the executable is sh: not the sidecar. It
    // writes down a TERM; a WINCH sent after meshinit is the fence: sh runs pending traps
    // lowest signal first, so once the WINCH is written down, a TERM would have been too.
    let script = format!(
        "d=$(mktemp -d); \
         (exec -a /usr/local/bin/pilot-agent sh -c 'trap \"echo TERM > $0/term\" TERM; \
            trap \"echo fence > $0/fence\" WINCH; : > $0/ready; \
            i=0; while [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done' \"$d\") & pid=$!; \
         i=0; while [ ! -e $d/ready ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; \
         {bin} --mesh istio --timeout 200ms --on-timeout start --quit-url http://127.0.0.1:9/q -- true; echo meshinit=$?; \
         kill -WINCH $pid; i=0; while [ ! -e $d/fence ] && [ $i -lt 300 ]; do sleep 0.01; i=$((i+1)); done; \
         echo \"fence=$(cat $d/fence) term=$(cat $d/term 2>/dev/null)\"; kill -KILL $pid",
        bin = bin().display()
    );
    let out = in_namespaces(&format!("mount -t proc proc /proc && {script}"));
    out.expect_stdout("meshinit=0");
    assert!(
        out.stdout.lines().any(|l| l == "fence=fence term="),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(!out.stderr.contains("sent SIGTERM"), "{}", out.stderr);
}

// ---- the task and meshinit's own output ----------------------------------------------

#[test]
fn a_task_ignoring_term_is_waited_for_and_the_sidecar_quit_after_it() {
    let port = free_port();
    let mut sidecar = fault(port, "status:200", Place::Host);
    let mut running = start(
        meshinit(&[
            "--mesh",
            "none",
            "--quit-url",
            &url(port, "/quitquitquit"),
            "--kill-fallback=false",
            "--",
            "sh",
            "-c",
            "trap 'echo ignored' TERM; echo up; sleep 1; sleep 1; echo done; exit 0",
        ]),
        Mode::Plain,
    );
    running.expect_line(|l| l == "up", LIMIT);
    running.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    running.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    assert!(running.alive(), "meshinit must not leave before its task");
    assert_eq!(posts(&mut sidecar), 0, "the sidecar must outlive the task");
    let out = running.finish(LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("done"), "{}", out.stdout);
    assert!(out.log_position("task exited") < out.log_position("sidecar quit via"));
    assert_eq!(posts(&mut sidecar), 1);
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just created and are owned here alone.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Runs meshinit with `stderr` as its standard error; returns its exit code within 10 s.
fn code_with_stderr(args: &[&str], stderr: Stdio) -> Option<i32> {
    let mut cmd = meshinit(args);
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
    let mut cmd = meshinit(&[
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
    let mut cmd = meshinit(&["--timeout", "300ms", "--quit-window=0", "--", "true"]);
    cmd.env("ENVOY_ADMIN_API", &admin).env(
        "GENERIC_QUIT_ENDPOINTS",
        format!("http://u:{secret}@127.0.0.1:9/x"),
    );
    let out = finish(cmd);
    assert_eq!(out.code, Some(69), "{}", out.stderr);
    assert!(
        out.stderr.contains("http://***@127.0.0.1:9"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(secret), "{}", out.stderr);

    let mut cmd = meshinit(&["--mesh", "none", "true"]);
    cmd.env("NEVER_KILL_ISTIO", secret);
    let out = finish(cmd);
    assert_eq!(out.code, Some(64));
    assert!(
        out.stderr.contains("NEVER_KILL_ISTIO") && !out.stderr.contains(secret),
        "{}",
        out.stderr
    );

    let mut cmd = meshinit(&["--help"]);
    cmd.env("ENVOY_ADMIN_API", &admin)
        .env("MESHINIT_QUIT_URL", &admin);
    let out = finish(cmd);
    assert_eq!(out.code, Some(0));
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
}

// ---- load ------------------------------------------------------------------------

#[test]
fn ten_thousand_orphans_exiting_at_once_are_reaped_with_flat_memory() {
    let test = "ten_thousand_orphans_exiting_at_once_are_reaped_with_flat_memory";
    if !need_pid1(test) {
        return;
    }
    let dir = tempdir("10k");
    // 10,000 orphans block on a fifo and are released at once; PID 1 (meshinit) must reap
    // them all without its memory growing.
    let script = format!(
        "f={d}/fifo; mkfifo $f; \
         rss() {{ sed -n 's/^VmRSS:[[:space:]]*//p' /proc/1/status; }}; \
         before=$(rss); \
         i=0; while [ $i -lt 10000 ]; do (read x < $f &); i=$((i+1)); done; \
         exec 3<>$f; sleep 1; \
         kids() {{ cat /proc/[0-9]*/stat 2>/dev/null | awk '$4 == 1' | wc -l; }}; \
         echo adopted=$(kids); start=$(date +%s%N); exec 3>&-; \
         i=0; while [ $i -lt 100 ] && [ $(kids) -gt 1 ]; do sleep 0.1; i=$((i+1)); done; \
         echo left=$(kids) ms=$(( ($(date +%s%N) - start) / 1000000 )); \
         echo rss_before=$before rss_after=$(rss)",
        d = dir.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(bin());
    cmd.args([
        "--mesh", "none", "--log", "warn", "--", "bash", "-c", &script,
    ]);
    let out = start(cmd, Mode::Plain).finish(Duration::from_secs(240));
    eprintln!("{}", out.stdout);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let field = |name: &str| -> i64 {
        out.stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.trim_end_matches("kB").parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {}", out.stdout))
    };
    assert!(field("adopted") >= 10_001, "{}", out.stdout);
    assert_eq!(
        field("left"),
        1,
        "only the task itself may remain: {}",
        out.stdout
    );
    let (before, after) = (field("rss_before"), field("rss_after"));
    assert!(
        after <= before + 64,
        "meshinit's RSS grew from {before} kB to {after} kB"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// CPU time (utime + stime, in clock ticks) of `pid`.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, r)| r.split(' ').collect())
        .unwrap_or_default();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

#[test]
fn a_signal_storm_reaches_the_task_without_runaway_cpu() {
    let count: usize = std::env::var("MESHINIT_STORM_SIGNALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let kinds = [
        "HUP", "INT", "QUIT", "USR1", "USR2", "PIPE", "ALRM", "CONT", "URG", "WINCH", "TSTP",
    ];
    let catcher = common::fixture("sigcatch.py");
    let mut args = vec![
        "--mesh",
        "none",
        "--log",
        "warn",
        "--",
        catcher.to_str().unwrap(),
    ];
    args.extend(kinds);
    let mut cmd = meshinit(&args);
    // The catcher stays for the whole storm (20 signals per 10 ms), not just until each
    // kind came once.
    let storm_seconds = count as f64 / 2000.0 + 1.0;
    cmd.env("SIGCATCH_MIN_SECONDS", storm_seconds.to_string());
    let mut running = start(cmd, Mode::Plain);
    running.expect_line(|l| l.starts_with("ready"), LIMIT);
    let pid = running.child.id();
    let began = Instant::now();
    let mut sent = 0;
    for i in 0..count {
        let sig = signum(kinds[i % kinds.len()]);
        // SAFETY: kill has no memory arguments; the pid is meshinit, started here.
        if unsafe { libc::kill(pid as i32, sig) } != 0 {
            break;
        }
        sent += 1;
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let storm = began.elapsed();
    let ticks = cpu_ticks(pid);
    // A meshinit gone mid-storm (kill fails) must not pass as a shorter storm.
    assert_eq!(sent, count, "meshinit went away after {sent} signals");
    let out = running.finish(LIMIT);
    assert_eq!(
        out.code,
        Some(0),
        "not every kind arrived: {}\n{}",
        out.stdout,
        out.stderr
    );
    for kind in kinds {
        assert!(
            out.stdout.contains(&format!("got {kind}")),
            "{kind} never arrived"
        );
    }
    // SAFETY: sysconf has no memory arguments.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let cpu_ms = ticks * 1000 / hz;
    eprintln!("storm: {count} signals in {storm:?}, meshinit CPU {cpu_ms} ms");
    assert!(
        cpu_ms < 2000,
        "meshinit used {cpu_ms} ms of CPU for {count} signals"
    );
}

#[test]
fn repeated_runs_against_a_real_envoy_leave_nothing_behind() {
    let test = "repeated_runs_against_a_real_envoy_leave_nothing_behind";
    let envoy_path = or_skip!(envoy_bin(test));
    let runs: usize = std::env::var("MESHINIT_SOAK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let mut latencies = Vec::new();
    for run in 0..runs {
        let port = free_port();
        let began = Instant::now();
        let running = start(
            meshinit(&[
                "--ready-url",
                &url(port, "/ready"),
                "--quit-url",
                &url(port, "/quitquitquit"),
                "--timeout",
                "20s",
                "--",
                "sh",
                "-c",
                &format!("exit {}", run % 3),
            ]),
            Mode::Plain,
        );
        let mut sidecar = envoy(&envoy_path, port, Place::Host);
        let out = running.finish(LIMIT);
        latencies.push(began.elapsed());
        assert_eq!(
            out.code,
            Some((run % 3) as i32),
            "run {run}: {}",
            out.stderr
        );
        assert!(
            sidecar.exits_within(Duration::from_secs(10)),
            "run {run}: Envoy left behind"
        );
    }
    latencies.sort();
    eprintln!(
        "soak: {runs} runs, whole run median {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
}

// ---- least privilege ---------------------------------------------------------------

fn nonroot(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return true; // already unprivileged
    }
    need_pid1(test)
}

/// `args` run as UID 65532 with no capabilities (when the test runs as root).
fn as_nobody(args: &[&str]) -> Command {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    meshinit_via(if root { &NONROOT } else { &[] }, args)
}

#[test]
fn unprivileged_meshinit_runs_reaps_forwards_and_quits() {
    let test = "unprivileged_meshinit_runs_reaps_forwards_and_quits";
    if !nonroot(test) {
        return;
    }
    let out = finish(as_nobody(&[
        "--mesh",
        "none",
        "--",
        "sh",
        "-c",
        "id -u; grep CapEff /proc/self/status; exit 3",
    ]));
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        assert!(out.stdout.starts_with("65532\n"), "{}", out.stdout);
    }
    assert!(
        out.stdout.contains("CapEff:\t0000000000000000"),
        "{}",
        out.stdout
    );

    // Orphans are adopted and reaped without any privilege (PR_SET_CHILD_SUBREAPER).
    let out = finish(as_nobody(&[
        "--mesh", "none", "--", "sh", "-c",
        "(sleep 0.2 &); sleep 0.6; z=0; for f in /proc/[0-9]*/stat; do set -- $(cat $f 2>/dev/null); \
         [ \"$3\" = Z ] && [ \"$4\" = \"$PPID\" ] && z=$((z+1)); done; echo zombies=$z",
    ]));
    assert_eq!(out.stdout.trim(), "zombies=0", "{}", out.stderr);

    let catcher = common::fixture("sigcatch.py");
    let mut running = start(
        as_nobody(&[
            "--mesh",
            "none",
            "--",
            catcher.to_str().unwrap(),
            "USR1",
            "TERM",
        ]),
        Mode::Plain,
    );
    running.expect_line(|l| l.starts_with("ready"), LIMIT);
    let meshinit_pid = find_meshinit_below(running.child.id());
    for sig in [libc::SIGUSR1, libc::SIGTERM] {
        // SAFETY: kill has no memory arguments; the pid is the meshinit this test started.
        assert_eq!(unsafe { libc::kill(meshinit_pid, sig) }, 0);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(running.finish(LIMIT).code, Some(0));

    let test = "unprivileged_meshinit_waits_for_and_quits_envoy";
    let envoy_path = or_skip!(envoy_bin(test));
    let port = free_port();
    let mut sidecar = envoy(&envoy_path, port, Place::Host);
    let out = finish(as_nobody(&[
        "--ready-url",
        &url(port, "/ready"),
        "--quit-url",
        &url(port, "/quitquitquit"),
        "--",
        "true",
    ]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.log_position("sidecar quit via");
    assert!(sidecar.exits_within(Duration::from_secs(10)));
}

/// setpriv execs meshinit in place, so the pid is the child's own; kept as a function so
/// that a wrapper that forks would be noticed here.
fn find_meshinit_below(pid: u32) -> i32 {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    assert_eq!(
        exe,
        bin().canonicalize().unwrap_or_else(|_| bin()),
        "pid {pid} is not meshinit"
    );
    pid as i32
}

#[test]
fn as_pid1_of_a_user_namespace_without_root() {
    let test = "as_pid1_of_a_user_namespace_without_root";
    if !nonroot(test) {
        return;
    }
    // An unprivileged user makes a user and PID namespace of its own (unshare -r) and runs
    // meshinit as its PID 1.
    let mut cmd = Command::new("setpriv");
    cmd.args(&NONROOT[1..6]);
    cmd.args([
        "unshare",
        "--user",
        "--map-root-user",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
    ])
    .arg(bin())
    .args([
        "--mesh",
        "none",
        "--",
        "sh",
        "-c",
        "echo pid1=$(tr '\\0' ' ' < /proc/1/cmdline); exit 12",
    ]);
    let out = finish(cmd);
    if out.code != Some(12) && out.stderr.contains("unshare failed") {
        assert!(
            !common::in_ci(),
            "{test}: unprivileged user namespaces are off: {}",
            out.stderr
        );
        eprintln!("SKIP {test}: unprivileged user namespaces are off here");
        return;
    }
    assert_eq!(out.code, Some(12), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("--mesh none"), "{}", out.stdout);
}
