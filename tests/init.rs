//! meshinit as an init, black-box: exit codes, signals (sent fault signals and real faults
//! too), reaping, the task's clean state and inheritance, the terminal, load (10,000 orphans,
//! a signal storm; the long forms in scripts/reliability) and least privilege (UID 65532, no
//! capabilities). Each behaviour runs as PID 1 of a new PID namespace (root) and as a plain
//! child where both apply.

#[macro_use]
mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::mesh::{envoy, envoy_bin, free_port, url, Place};
use common::{
    bin, finish_plain, fixture, meshinit, meshinit_bare, meshinit_plain, meshinit_via, need_pid1,
    run, run_args, signum, start, tempdir, Mode, Output, NONROOT,
};

const LIMIT: Duration = Duration::from_secs(40);

/// Runs `body` as PID 1 (when possible) and as a plain child.
fn both(test: &str, body: impl Fn(Mode)) {
    body(Mode::Plain);
    if need_pid1(test) {
        body(Mode::Pid1);
    }
}

fn sh(mode: Mode, script: &str) -> Output {
    run_args(mode, &["--", "sh", "-c", script])
}

#[test]
fn every_exit_code_passes_through() {
    both("every_exit_code_passes_through", |mode| {
        for code in 0..=255 {
            let out = sh(mode, &format!("exit {code}"));
            assert_eq!(out.code, Some(code), "{mode:?} exit {code}: {}", out.stderr);
        }
    });
}

#[test]
fn death_by_signal_gives_128_plus_n() {
    both("death_by_signal_gives_128_plus_n", |mode| {
        for name in ["HUP", "INT", "QUIT", "ABRT", "KILL", "USR1", "SEGV", "TERM"] {
            let n = signum(name);
            let out = sh(mode, &format!("kill -{name} $$"));
            assert_eq!(
                out.code,
                Some(128 + n),
                "{mode:?} SIG{name}: {}",
                out.stderr
            );
        }
    });
}

#[test]
fn missing_and_unrunnable_commands() {
    let dir = tempdir("unrunnable");
    let plain_file = dir.join("not-executable");
    std::fs::write(&plain_file, "echo hi\n").unwrap();
    let plain_file = plain_file.to_str().unwrap().to_owned();
    let dir_path = dir.to_str().unwrap().to_owned();
    both("missing_and_unrunnable_commands", |mode| {
        let out = run_args(mode, &["--", "meshinit-no-such-command"]);
        assert_eq!(out.code, Some(127), "{mode:?}");
        assert!(
            out.stderr.contains("cannot run 'meshinit-no-such-command'"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("No such file"), "{}", out.stderr);
        for path in [&plain_file, &dir_path] {
            let out = run_args(mode, &["--", path]);
            assert_eq!(out.code, Some(126), "{mode:?} {path}");
            assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
        }
    });
}

#[test]
fn found_on_path_like_execvp() {
    let dir = tempdir("path");
    let script = dir.join("meshinit-test-tool");
    std::fs::write(&script, "#!/bin/sh\nexit 42\n").unwrap();
    set_mode(&script, 0o755);
    let mut cmd = meshinit(Mode::Plain, &["meshinit-test-tool"]);
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path);
    assert_eq!(run(cmd, Mode::Plain, LIMIT).code, Some(42));
}

#[test]
fn reaps_a_thousand_orphans() {
    // 1,200 orphans block on a fifo, are adopted by meshinit, then are released at once by
    // the last writer closing it. Afterwards only the task itself may be left among
    // meshinit's children: a zombie would still count.
    let dir = tempdir("orphans");
    let script = format!(
        "f={}/fifo; mkfifo $f; \
         kids() {{ cat /proc/[0-9]*/status 2>/dev/null | \
                   awk -v p=$PPID '/^State:/{{s=$2}} /^PPid:/{{if ($2==p) print s}}'; }}; \
         i=0; while [ $i -lt 1200 ]; do (read x < $f &); i=$((i+1)); done; \
         exec 3<>$f; \
         i=0; while [ $(kids | wc -l) -lt 1201 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
         echo adopted=$(kids | wc -l); exec 3>&-; \
         i=0; while [ \"$(kids | tr -d '\\n')\" != S ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
         echo left=$(kids | tr '\\n' ' ')",
        dir.display()
    );
    both("reaps_a_thousand_orphans", |mode| {
        let _ = std::fs::remove_file(dir.join("fifo"));
        let out = run(
            meshinit(mode, &["--", "sh", "-c", &script]),
            mode,
            Duration::from_secs(60),
        );
        assert_eq!(out.code, Some(0), "{mode:?}: {}", out.stderr);
        assert!(
            out.stdout.contains("adopted=1201"),
            "{mode:?}: {}",
            out.stdout
        );
        // The task itself, sleeping in its command substitution, and nothing else.
        assert!(
            out.stdout.lines().any(|l| l == "left=S"),
            "{mode:?}: {:?}",
            out.stdout
        );
    });
}

#[test]
fn orphans_are_adopted_when_not_pid1() {
    // As a subreaper, meshinit (the task's parent) adopts the orphan, not the host's init.
    let script = "(sleep 1 &); sleep 0.2; \
                  for f in /proc/[0-9]*/status; do \
                    n=$(sed -n 's/^Name:\\t//p' $f 2>/dev/null); \
                    p=$(sed -n 's/^PPid:\\t//p' $f 2>/dev/null); \
                    [ \"$n\" = sleep ] && [ \"$p\" = \"$PPID\" ] && echo adopted; \
                  done; true";
    let out = sh(Mode::Plain, script);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.lines().any(|l| l == "adopted"),
        "{:?}",
        out.stdout
    );
}

#[test]
fn each_signal_reaches_the_task() {
    let forwarded = [
        "TERM", "INT", "HUP", "QUIT", "USR1", "USR2", "WINCH", "CONT", "ALRM", "PIPE", "URG",
        "TSTP",
    ];
    both("each_signal_reaches_the_task", |mode| {
        let catcher = common::fixture("sigcatch.py");
        let mut args = vec!["--", catcher.to_str().unwrap()];
        args.extend(forwarded);
        let mut running = start(meshinit(mode, &args), mode);
        running.expect_line(|l| l.starts_with("ready"), LIMIT);
        for name in forwarded {
            running.signal(signum(name));
            let want = format!("got {name}");
            running.expect_line(|l| l == want, Duration::from_secs(5));
        }
        let out = running.finish(LIMIT);
        assert_eq!(out.code, Some(0), "{mode:?}: {}", out.stderr);
    });
}

#[test]
fn sigchld_is_not_forwarded() {
    both("sigchld_is_not_forwarded", |mode| {
        let catcher = common::fixture("sigcatch.py");
        let mut running = start(
            meshinit(mode, &["--", catcher.to_str().unwrap(), "USR1"]),
            mode,
        );
        running.expect_line(|l| l.starts_with("ready"), LIMIT);
        running.signal(libc::SIGCHLD);
        // URG is forwarded; were CHLD forwarded too, it would have arrived first (both
        // meshinit and the catcher take pending signals lowest number first).
        running.signal(libc::SIGURG);
        running.expect_line(|l| l == "got URG", LIMIT);
        running.signal(libc::SIGUSR1);
        let out = running.finish(LIMIT);
        assert_eq!(out.code, Some(0), "{mode:?}: {}", out.stderr);
        assert!(out.stdout.contains("got USR1"), "{}", out.stdout);
        assert!(!out.stdout.contains("got CHLD"), "{mode:?}: {}", out.stdout);
    });
}

#[test]
fn term_from_outside_gives_143() {
    both("term_from_outside_gives_143", |mode| {
        let mut running = start(
            meshinit(mode, &["--", "sh", "-c", "echo up; exec sleep 30"]),
            mode,
        );
        running.expect_line(|l| l == "up", LIMIT);
        // The shell or the sleep it became: either dies of the TERM.
        running.signal(libc::SIGTERM);
        let out = running.finish(LIMIT);
        assert_eq!(out.code, Some(143), "{mode:?}: {}", out.stderr);
    });
}

#[test]
fn process_group_forwarding_reaches_a_grandchild() {
    both("process_group_forwarding_reaches_a_grandchild", |mode| {
        let catcher = common::fixture("sigcatch.py");
        // The shell ignores USR1 and waits for the catcher, which is a grandchild.
        let script = format!("trap '' USR1; {} USR1; echo catcher=$?", catcher.display());
        let mut running = start(
            meshinit(mode, &["--process-group", "--", "sh", "-c", &script]),
            mode,
        );
        running.expect_line(|l| l.starts_with("ready"), LIMIT);
        running.signal(libc::SIGUSR1);
        running.expect_line(|l| l == "got USR1", Duration::from_secs(5));
        let out = running.finish(LIMIT);
        assert!(out.stdout.contains("catcher=0"), "{mode:?}: {}", out.stdout);
        assert_eq!(out.code, Some(0));
    });
}

#[test]
fn without_process_group_a_grandchild_is_not_signalled() {
    let catcher = common::fixture("sigcatch.py");
    let script = format!(
        "trap 'echo shell-got-USR1' USR1; {} USR1 & wait $!; wait $!; echo catcher=$?",
        catcher.display()
    );
    let mut running = start(
        meshinit(Mode::Plain, &["--", "sh", "-c", &script]),
        Mode::Plain,
    );
    let ready = running.expect_line(|l| l.starts_with("ready"), LIMIT);
    running.signal(libc::SIGUSR1);
    running.expect_line(|l| l == "shell-got-USR1", Duration::from_secs(5));
    // End the catcher ourselves, by the pid it printed.
    let catcher_pid: i32 = ready.split_whitespace().nth(1).unwrap().parse().unwrap();
    // A URG of the test's own: a USR1 the catcher had been sent would be handled first
    // (lower number), so once "got URG" is out, none came.
    // SAFETY: the pid is the catcher this test started.
    assert_eq!(unsafe { libc::kill(catcher_pid, libc::SIGURG) }, 0);
    running.expect_line(|l| l == "got URG", LIMIT);
    // SAFETY: the pid is the catcher this test started.
    assert_eq!(unsafe { libc::kill(catcher_pid, libc::SIGKILL) }, 0);
    let out = running.finish(LIMIT);
    assert!(!out.stdout.contains("got USR1"), "{}", out.stdout);
    assert!(out.stdout.contains("catcher=137"), "{}", out.stdout);
}

#[test]
fn the_task_starts_with_a_clean_signal_state() {
    both("the_task_starts_with_a_clean_signal_state", |mode| {
        let mut cmd = meshinit(
            mode,
            &[
                "--",
                "sh",
                "-c",
                "grep -E '^Sig(Blk|Ign)' /proc/self/status",
            ],
        );
        // meshinit's own parent hands it a dirty state; none of it may reach the task.
        // SAFETY: only async-signal-safe libc calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGPIPE, libc::SIGHUP] {
                    libc::signal(sig, libc::SIG_IGN);
                }
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR2);
                libc::sigaddset(&mut set, libc::SIGTSTP);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                Ok(())
            });
        }
        let out = run(cmd, mode, LIMIT);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(
            out.stdout.contains("SigBlk:\t0000000000000000"),
            "{mode:?}: {}",
            out.stdout
        );
        assert!(
            out.stdout.contains("SigIgn:\t0000000000000000"),
            "{mode:?}: {}",
            out.stdout
        );
    });
}

#[test]
fn no_descriptor_of_meshinit_leaks_into_the_task() {
    let list = "for i in $(seq 0 255); do [ -e /proc/$$/fd/$i ] && echo $i; done; true";
    let direct = run(
        {
            let mut c = Command::new("sh");
            c.args(["-c", list]);
            c
        },
        Mode::Plain,
        LIMIT,
    );
    let wrapped = sh(Mode::Plain, list);
    assert_eq!(wrapped.code, Some(0));
    assert_eq!(
        wrapped.stdout, direct.stdout,
        "descriptors differ under meshinit"
    );
}

#[test]
fn grace_lets_a_grandchild_finish_its_term_handler() {
    if !need_pid1("grace_lets_a_grandchild_finish_its_term_handler") {
        return;
    }
    let dir = tempdir("grace");
    let marker = dir.join("handled");
    // The grandchild needs 300 ms in its TERM handler; the task itself exits at once.
    let script = format!(
        "sh -c 'trap \"sleep 0.3; echo done > {m}; exit 0\" TERM; echo ready; \
         i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done' & \
         sleep 0.3; exit 5",
        m = marker.display()
    );
    let out = run_args(Mode::Pid1, &["--", "sh", "-c", &script]);
    assert_eq!(out.code, Some(5));
    assert!(
        !marker.exists(),
        "without --grace the grandchild is killed with the namespace"
    );

    let began = Instant::now();
    let out = run_args(Mode::Pid1, &["--grace", "5s", "--", "sh", "-c", &script]);
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap_or_default(),
        "done\n"
    );
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "grace should end when the group is gone, took {:?}",
        began.elapsed()
    );
}

/// Not PID 1 too: the group's leftovers get meshinit's own TERM (not logged as a received
/// one), and the grace ends when they are gone.
#[test]
fn grace_works_when_not_pid1_and_its_term_is_not_a_received_one() {
    let dir = tempdir("grace-plain");
    let (ready, marker) = (dir.join("ready"), dir.join("handled"));
    // The task waits (bounded) until the grandchild's handler is set, then exits at once.
    let script = format!(
        "sh -c 'trap \"sleep 0.3; echo done > {m}; exit 0\" TERM; : > {r}; \
         i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done' & \
         i=0; while [ ! -e {r} ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; exit 5",
        m = marker.display(),
        r = ready.display()
    );
    let began = Instant::now();
    let out = run_args(Mode::Plain, &["--grace", "5s", "--", "sh", "-c", &script]);
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap_or_default(),
        "done\n",
        "{}",
        out.stderr
    );
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "{:?}",
        began.elapsed()
    );
    out.log_position("task's process group still has processes: sending TERM");
    assert!(!out.stderr.contains("received SIGTERM"), "{}", out.stderr);
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn the_task_is_handed_the_terminal_as_pid1_of_a_new_namespace_too() {
    // tini's TTY test: under a terminal, a task that reads it must be its foreground
    // group, or it stops on the read (SIGTTIN) and the run never ends. As PID 1 of a PID
    // namespace made by unshare, meshinit's own group lives outside the namespace.
    let test = "the_task_is_handed_the_terminal_as_pid1_of_a_new_namespace_too";
    if !common::need_tools(test, &["script", "timeout"]) {
        return;
    }
    let bin = common::bin();
    let mut wrappers = vec![""];
    if need_pid1(test) {
        wrappers.push("unshare --pid --fork --mount-proc ");
    }
    for wrapper in wrappers {
        // script(1) gives the run a terminal; timeout bounds a run that would hang.
        let inner = format!(
            "{wrapper}{} --mesh none -- sh -c 'read x; echo got $x'",
            bin.display()
        );
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo hello | timeout 10 script -qec \"$INNER\" /dev/null",
        ]);
        common::clean_env(&mut cmd);
        cmd.env("INNER", &inner);
        let began = Instant::now();
        let out = run(cmd, Mode::Plain, LIMIT);
        assert!(
            out.stdout.contains("got hello"),
            "{wrapper:?}: {:?} after {:?}\n{}",
            out.code,
            began.elapsed(),
            out.stderr
        );
        assert_eq!(out.code, Some(0), "{wrapper:?}: {}", out.stderr);
    }
}

#[test]
fn meshinit_runs_on_one_thread() {
    // What the SAFETY notes rest on (src/init/mod.rs): one thread while meshinit waits
    // (with a host name to look up, in a forked process) and while it supervises the task.
    let threads = |pid: i32| -> String {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:").map(|n| n.trim().to_owned()))
            .unwrap_or_default()
    };
    let mut running = start(
        meshinit(
            Mode::Plain,
            &[
                "--ready-url",
                "http://sidecar.invalid:9/ready",
                "--timeout",
                "2s",
                "--on-timeout",
                "start",
                "--",
                "sh",
                "-c",
                "echo started; sleep 1",
            ],
        ),
        Mode::Plain,
    );
    let pid = running.meshinit_pid();
    running.expect_log(|l| l.contains("waiting for the sidecar"), LIMIT);
    for _ in 0..10 {
        let n = threads(pid);
        assert!(n == "1" || n.is_empty(), "{n} threads while waiting");
        std::thread::sleep(Duration::from_millis(20));
    }
    running.expect_line(|l| l == "started", LIMIT);
    assert_eq!(threads(pid), "1", "while the task runs");
    let out = running.finish(LIMIT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

/// TTIN and TTOU are meshinit's to ignore (a background meshinit must not stop); the
/// real-time signals reach the task like any other.
#[test]
fn ttin_and_ttou_are_ignored_and_real_time_signals_forwarded() {
    // Raw numbers: 40 and 64 are real-time signals under every libc.
    let catcher = "import os, signal, time\n\
                   h = lambda n, f: os.write(1, b'got %d\\n' % n)\n\
                   for s in (21, 22, 40, 64): signal.signal(s, h)\n\
                   print('ready', flush=True)\n\
                   end = time.monotonic() + 10\n\
                   while time.monotonic() < end: time.sleep(0.01)\n";
    both(
        "ttin_and_ttou_are_ignored_and_real_time_signals_forwarded",
        |mode| {
            let mut running = start(meshinit(mode, &["--", "python3", "-c", catcher]), mode);
            running.expect_line(|l| l == "ready", LIMIT);
            running.signal(libc::SIGTTIN);
            running.signal(libc::SIGTTOU);
            // The catcher takes pending signals lowest first: a forwarded TTIN (21) or TTOU
            // (22) would be out before 40.
            running.signal(40);
            running.expect_line(|l| l == "got 40", Duration::from_secs(5));
            running.signal(64);
            running.expect_line(|l| l == "got 64", Duration::from_secs(5));
            assert!(running.alive(), "{mode:?}: meshinit stopped");
            running.signal(libc::SIGTERM);
            assert_eq!(running.finish(LIMIT).code, Some(143), "{mode:?}");
        },
    );
}

/// 32, 33 and 34 too (musl's sigfillset leaves them out): blocked and forwarded like the
/// rest, so that `kill -34` neither ends a meshinit that is not PID 1 (orphaning the task,
/// the sidecar never told) nor is dropped by one that is; and a rewrite of one fires.
#[test]
fn signals_32_to_34_are_forwarded_and_can_be_rewritten() {
    // glibc (the catcher's) keeps 32 and 33 for itself: 34 is caught, 33 arrives as the
    // rewritten TERM, and 32 kills the task with its default action.
    let catcher = "import os, signal, time\n\
                   h = lambda n, f: os.write(1, b'got %d\\n' % n)\n\
                   for s in (15, 34): signal.signal(s, h)\n\
                   print('ready', flush=True)\n\
                   end = time.monotonic() + 10\n\
                   while time.monotonic() < end: time.sleep(0.01)\n";
    both(
        "signals_32_to_34_are_forwarded_and_can_be_rewritten",
        |mode| {
            let args = [
                "--rewrite-signal",
                "33:TERM",
                "--",
                "python3",
                "-c",
                catcher,
            ];
            let mut running = start(meshinit(mode, &args), mode);
            running.expect_line(|l| l == "ready", LIMIT);
            running.signal(34);
            running.expect_line(|l| l == "got 34", Duration::from_secs(5));
            running.signal(33);
            running.expect_line(|l| l == "got 15", Duration::from_secs(5));
            assert!(running.alive(), "{mode:?}: meshinit ended");
            running.signal(32);
            let out = running.finish(LIMIT);
            assert_eq!(out.code, Some(128 + 32), "{mode:?}: {}", out.stderr);
            out.log_position("task killed by SIG32");
        },
    );
}

/// The task runs in a process group of its own, with meshinit's working directory,
/// environment and standard input.
#[test]
fn the_task_inherits_cwd_environment_and_stdin_in_its_own_group() {
    use std::io::Write;
    let dir = tempdir("inherit");
    let script = "import os, sys\n\
                  print(os.getcwd())\n\
                  print(os.environ.get('MESHINIT_TEST_VALUE'))\n\
                  print(sys.stdin.read().strip())\n\
                  print('own-group' if os.getpgrp() == os.getpid() else 'shared-group')\n\
                  print('parent-group' if os.getpgid(os.getppid()) != os.getpgrp() else 'same')\n";
    let mut cmd = meshinit(Mode::Plain, &["--", "python3", "-c", script]);
    cmd.current_dir(&dir)
        .env("MESHINIT_TEST_VALUE", "from the caller")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"line on stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want = format!(
        "{}\nfrom the caller\nline on stdin\nown-group\nparent-group\n",
        dir.canonicalize().unwrap().display()
    );
    assert_eq!(stdout, want, "{}", String::from_utf8_lossy(&out.stderr));
}

// ---- every signal someone sends reaches the task -----------------------------------------

const FAULT_SIGNALS: [&str; 7] = ["ILL", "TRAP", "ABRT", "BUS", "FPE", "SEGV", "SYS"];

fn fault_signals_reach_the_task(mode: Mode) {
    let catcher = fixture("sigcatch.py");
    let mut args = vec!["--mesh", "none", "--", catcher.to_str().unwrap()];
    args.extend(FAULT_SIGNALS);
    let mut running = start(meshinit_bare(mode, &args), mode);
    running.expect_line(|l| l.starts_with("ready"), LIMIT);
    for name in FAULT_SIGNALS {
        running.signal(signum(name));
        running.expect_line(|l| l == format!("got {name}"), Duration::from_secs(10));
    }
    let out = running.finish(LIMIT);
    assert_eq!(out.code, Some(0), "{mode:?}: {}", out.stderr);
}

#[test]
fn sent_fault_signals_are_forwarded_as_pid1() {
    if need_pid1("sent_fault_signals_are_forwarded_as_pid1") {
        fault_signals_reach_the_task(Mode::Pid1);
    }
}

#[test]
fn sent_fault_signals_are_forwarded_as_a_subreaper() {
    fault_signals_reach_the_task(Mode::Plain);
}

/// gdb, which makes a real fault in a running meshinit; None (with the reason) without it.
fn gdb(test: &str) -> Option<()> {
    let found = Command::new("gdb")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    match found {
        true => Some(()),
        false if common::in_ci() => panic!("{test}: no gdb, and CI=true forbids skipping"),
        false => {
            eprintln!("SKIP {test}: gdb is not installed (scripts/setup installs it)");
            None
        }
    }
}

fn a_real_fault_kills(mode: Mode, test: &str) {
    or_skip!(gdb(test));
    let mut running = start(
        meshinit_bare(
            mode,
            &[
                "--mesh",
                "none",
                "--",
                "sh",
                "-c",
                "echo up $$; exec sleep 30",
            ],
        ),
        mode,
    );
    let up = running.expect_line(|l| l.starts_with("up "), LIMIT);
    let pid = running.meshinit_pid();
    // Jump to address 0: the next instruction fetch faults, as a bug in meshinit would.
    let gdb = Command::new("gdb")
        .args(["-p", &pid.to_string(), "-batch", "-nx"])
        .args(["-ex", "set $pc = 0", "-ex", "detach"])
        .output()
        .expect("run gdb");
    assert!(
        gdb.status.success(),
        "{}",
        String::from_utf8_lossy(&gdb.stderr)
    );
    let out = running.finish(LIMIT);
    let segv = libc::SIGSEGV;
    assert!(
        out.signal == Some(segv) || out.code == Some(128 + segv),
        "{mode:?}: meshinit was not killed by the fault: {:?} {:?}\n{}",
        out.code,
        out.signal,
        out.stderr
    );
    if mode == Mode::Plain {
        // The task was meshinit's child, now orphaned: end it by the pid it printed.
        if let Some(task) = up
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill has no memory arguments; the pid is the task this test started.
            unsafe { libc::kill(task, libc::SIGKILL) };
        }
    }
}

#[test]
fn a_real_fault_still_kills_meshinit_as_pid1() {
    let test = "a_real_fault_still_kills_meshinit_as_pid1";
    if need_pid1(test) {
        a_real_fault_kills(Mode::Pid1, test);
    }
}

#[test]
fn a_real_fault_still_kills_meshinit_as_a_subreaper() {
    a_real_fault_kills(
        Mode::Plain,
        "a_real_fault_still_kills_meshinit_as_a_subreaper",
    );
}

// ---- load --------------------------------------------------------------------------------

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
    let mut cmd = meshinit_plain(&args);
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

// ---- least privilege ---------------------------------------------------------------------

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
    let out = finish_plain(as_nobody(&[
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
    let out = finish_plain(as_nobody(&[
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
    let out = finish_plain(as_nobody(&[
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
    let out = finish_plain(cmd);
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
