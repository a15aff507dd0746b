//! meshinit as an init, black-box: exit codes, signals, reaping, the task's clean state.
//! Each behaviour runs as PID 1 of a new PID namespace (root) and as a plain child.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{meshinit, need_pid1, run, run_args, signum, start, tempdir, Mode, Output};

const LIMIT: Duration = Duration::from_secs(20);

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
