//! The command line and the MESHINIT_* variables, where people meet meshinit first: help,
//! version, bad input, a flag's value never taken for the task, a subcommand after options,
//! a command that cannot run (found before the wait), a misspelt variable, a huge value.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::mesh::{fault, free_port, url, Place};
use common::{
    finish_plain, meshinit, meshinit_bare, meshinit_plain, requests, run, run_args, run_plain,
    start, tempdir, Mode,
};

const LIMIT: Duration = Duration::from_secs(40);

#[test]
fn help_lists_every_option_with_its_variable() {
    let out = run_args(Mode::Plain, &["--help"]);
    assert_eq!(out.code, Some(0));
    for (flag, var) in [
        ("--mesh", "MESHINIT_MESH"),
        ("--process-group", "MESHINIT_PROCESS_GROUP"),
        ("--grace", "MESHINIT_GRACE"),
        ("--log", "MESHINIT_LOG"),
    ] {
        let line = out.stdout.lines().find(|l| l.contains(flag)).unwrap_or("");
        assert!(line.contains(var), "{flag} without {var}: {}", out.stdout);
    }
    assert_eq!(run_args(Mode::Plain, &["-h"]).code, Some(0));
}

#[test]
fn version() {
    let out = run_args(Mode::Plain, &["--version"]);
    assert_eq!(out.code, Some(0));
    assert_eq!(
        out.stdout.trim(),
        format!("meshinit {}", env!("CARGO_PKG_VERSION"))
    );
}

/// A bad-input case: arguments, environment, and what the one error line must name.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn bad_input_exits_64_with_one_line_naming_it() {
    let cases: &[Case] = &[
        (&["--bogus", "true"], &[], &["'--bogus'"]),
        (&["-x", "true"], &[], &["'-x'"]),
        (&[], &[], &["missing COMMAND"]),
        (&["--grace", "2s"], &[], &["missing COMMAND"]),
        (&["--grace"], &[], &["--grace", "missing"]),
        (
            &["--grace", "5x", "true"],
            &[],
            &["--grace", "'5x'", "500ms"],
        ),
        (&["--grace=-1s", "true"], &[], &["--grace", "'-1s'"]),
        (
            &["--rewrite-signal", "KILL:TERM", "true"],
            &[],
            &[
                "--rewrite-signal",
                "'KILL:TERM'",
                "QUIT:TERM",
                "never KILL, STOP",
            ],
        ),
        (
            &["--rewrite-signal", "STOP:TERM", "true"],
            &[],
            &["'STOP:TERM'", "never KILL, STOP, TTIN or TTOU"],
        ),
        // Ignored so that a terminal handed to the task cannot stop meshinit: never received.
        (
            &["--rewrite-signal", "TTIN:TERM", "true"],
            &[],
            &["'TTIN:TERM'", "TTIN or TTOU"],
        ),
        (
            &["--rewrite-signal", "sigttou:0", "true"],
            &[],
            &["'sigttou:0'", "TTIN or TTOU"],
        ),
        // Two rewrites of one signal: which should win is not for meshinit to guess.
        (
            &["--rewrite-signal", "TERM:INT,15:QUIT", "true"],
            &[],
            &["'TERM:INT,15:QUIT'", "each FROM once"],
        ),
        (
            &[
                "--rewrite-signal",
                "TERM:INT",
                "--rewrite-signal",
                "TERM:QUIT",
                "true",
            ],
            &[],
            &["--rewrite-signal", "'TERM:QUIT'", "each FROM once"],
        ),
        (
            &["true"],
            &[("MESHINIT_REWRITE_SIGNALS", "QUIT")],
            &["MESHINIT_REWRITE_SIGNALS", "'QUIT'", "FROM:TO"],
        ),
        (
            &["--also-quit", "https://127.0.0.1:9091/quitquitquit", "true"],
            &[],
            &["--also-quit", "such as http://127.0.0.1:15020/quitquitquit"],
        ),
        (
            &["--mesh", "cilium", "true"],
            &[],
            &["--mesh", "'cilium'", "istio, envoy, linkerd, none or auto"],
        ),
        (
            &["--log", "loud", "true"],
            &[],
            &["--log", "'loud'", "debug"],
        ),
        (
            &["--process-group=maybe", "true"],
            &[],
            &["--process-group", "'maybe'", "yes"],
        ),
        (
            &["true"],
            &[("MESHINIT_GRACE", "soon")],
            &["MESHINIT_GRACE", "'soon'", "1m30s"],
        ),
        (
            &["true"],
            &[("MESHINIT_PROCESS_GROUP", "on")],
            &["MESHINIT_PROCESS_GROUP", "'on'"],
        ),
        (
            &["true"],
            &[("MESHINIT_LOG", "verbose")],
            &["MESHINIT_LOG", "'verbose'"],
        ),
    ];
    for (args, env, words) in cases {
        let mut cmd = meshinit(Mode::Plain, args);
        cmd.envs(env.iter().copied());
        let out = run(cmd, Mode::Plain, LIMIT);
        assert_eq!(out.code, Some(64), "{args:?} {env:?}: {}", out.stderr);
        // One usage line; log lines of the sidecar quit that follows may come after it.
        let usage: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("meshinit +") && l.contains(" error: "))
            .collect();
        assert_eq!(usage.len(), 1, "{args:?}: {}", out.stderr);
        for word in *words {
            assert!(
                usage[0].contains(word),
                "{args:?} {env:?}: {word} not in {}",
                usage[0]
            );
        }
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

#[test]
fn flags_win_over_variables_and_booleans_take_every_form() {
    for value in ["true", "false", "1", "0", "yes", "no", "TRUE", "No"] {
        let mut cmd = meshinit(Mode::Plain, &["true"]);
        cmd.env("MESHINIT_PROCESS_GROUP", value);
        assert_eq!(run(cmd, Mode::Plain, LIMIT).code, Some(0), "{value}");
    }
    let mut cmd = meshinit(Mode::Plain, &["--grace", "1ms", "true"]);
    cmd.env("MESHINIT_GRACE", "not-a-duration-but-overridden-later");
    // Variables are checked even when a flag overrides them: a typo must not go unseen.
    assert_eq!(run(cmd, Mode::Plain, LIMIT).code, Some(64));
    let mut cmd = meshinit(Mode::Plain, &["--log", "off", "--", "sh", "-c", "exit 7"]);
    cmd.env("MESHINIT_LOG", "debug");
    let out = run(cmd, Mode::Plain, LIMIT);
    assert_eq!(out.code, Some(7));
    assert_eq!(out.stderr, "", "--log off must silence MESHINIT_LOG=debug");
}

#[test]
fn options_after_the_command_belong_to_the_command() {
    let out = run_args(Mode::Plain, &["sh", "-c", "echo \"$1\"", "sh", "--grace"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "--grace");
    let out = run_args(Mode::Plain, &["--", "--help"]);
    assert_eq!(out.code, Some(127), "-- ends the options: {}", out.stderr);
}

#[test]
fn every_word_value_is_read_in_any_case() {
    let out = run(
        meshinit(
            Mode::Plain,
            &[
                "--mesh",
                "NONE",
                "--log-format",
                "JSON",
                "--keep-sidecar",
                "Never",
                "--on-timeout",
                "FAIL",
                "--log",
                "DEBUG",
                "--kill-fallback=No",
                "--",
                "sh",
                "-c",
                "exit 4",
            ],
        ),
        Mode::Plain,
        LIMIT,
    );
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(
        out.stderr.lines().all(|l| l.starts_with("{\"time\":")),
        "not JSON lines:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("\"level\":\"debug\""), "{}", out.stderr);
}

#[test]
fn the_quit_budget_has_a_flag_and_a_variable() {
    let out = run_args(Mode::Plain, &["--quit-budget", "0", "--", "true"]);
    assert_eq!(out.code, Some(64), "{}", out.stderr);
    assert!(
        out.stderr.starts_with(
            "meshinit +0ms error: --quit-budget: invalid value '0': expected a duration above 0"
        ),
        "{}",
        out.stderr
    );
    let mut cmd = meshinit(Mode::Plain, &["--", "true"]);
    cmd.env("MESHINIT_QUIT_BUDGET", "soon");
    let out = run(cmd, Mode::Plain, LIMIT);
    assert_eq!(out.code, Some(64), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("MESHINIT_QUIT_BUDGET: invalid value 'soon'"),
        "{}",
        out.stderr
    );
}

// ---- a flag's value never becomes the task, subcommands, commands that cannot run, drift ----

#[test]
fn a_switch_followed_by_a_boolean_word_is_refused_and_nothing_runs() {
    for switch in [
        &["--process-group", "true"][..],
        &["-g", "true"],
        &["--kill-fallback", "false"],
        &["--process-group", "yes"],
        &["-g", "0"],
    ] {
        let mut args = vec!["--mesh", "none"];
        args.extend_from_slice(switch);
        args.extend(["--", "sh", "-c", "echo report"]);
        let out = run_plain(&args);
        assert_eq!(out.code, Some(64), "{switch:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{switch:?}: the task must not run");
        let long = if switch[0] == "-g" {
            "--process-group"
        } else {
            switch[0]
        };
        assert!(
            out.stderr.contains(&format!("write {long}={}", switch[1])),
            "{switch:?}: {}",
            out.stderr
        );
    }
    let out = run_plain(&["--mesh", "none", "-g", "--", "sh", "-c", "echo report"]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), "report"));
}

#[test]
fn task_started_names_the_program_but_not_its_arguments() {
    let out = run_plain(&["--mesh", "none", "--", "sh", "-c", "exit 0", "token-123"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.log_position("task started: sh (pid ");
    assert!(!out.stderr.contains("token-123"), "{}", out.stderr);
}

#[test]
fn options_may_come_before_the_subcommand() {
    let began = Instant::now();
    let out = run_plain(&["--timeout", "5s", "--mesh", "none", "wait"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(began.elapsed() < Duration::from_secs(3));
    let out = run_plain(&["--mesh", "none", "--log", "debug", "quit"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // After --, `wait` is a program like any other.
    let out = run_plain(&["--mesh", "none", "--", "wait"]);
    assert_eq!(out.code, Some(127), "{}", out.stderr);
}

#[test]
fn a_usage_mistake_in_wait_never_quits_the_sidecar_but_one_in_a_run_does() {
    let port = free_port();
    let mut endpoint = fault(port, "status:200", Place::Host);
    let quit = url(port, "/quitquitquit");
    for args in [
        &["--quit-url", &quit, "--timeot", "5s", "wait"][..],
        &["--quit-url", &quit, "wait", "--timeout", "soon"],
        &["--quit-url", &quit, "--timeout", "5s", "quit", "extra"],
    ] {
        let out = run_plain(args);
        assert_eq!(out.code, Some(64), "{args:?}: {}", out.stderr);
        assert_eq!(requests(&mut endpoint), 0, "{args:?}: {}", out.stderr);
    }
    let out = run_plain(&["--quit-url", &quit, "--timeot", "5s", "--", "true"]);
    assert_eq!(out.code, Some(64), "{}", out.stderr);
    assert_eq!(requests(&mut endpoint), 1, "a run's typo still quits");
}

#[test]
fn a_command_that_cannot_run_fails_before_the_wait_and_still_quits() {
    let port = free_port();
    let mut endpoint = fault(port, "status:200", Place::Host);
    let quit = url(port, "/quitquitquit");
    // Nothing will ever be ready there: without the look-up this waited the full minute.
    let ready = url(free_port(), "/ready");
    let dir = tempdir("unrunnable-early");
    let plain_file = dir.join("report");
    std::fs::write(&plain_file, "#!/bin/sh\necho never\n").unwrap();
    let plain_file = plain_file.to_str().unwrap().to_owned();
    let dir_path = dir.to_str().unwrap().to_owned();
    // Executable, but not what execve runs (musl's execvp hands nothing to /bin/sh): no
    // ELF header, no #! line; and a #! line naming a missing interpreter.
    let executable = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        set_mode(&path, 0o755);
        path.to_str().unwrap().to_owned()
    };
    let garbage = executable("garbage", "\x01\x02 not a program");
    let no_shebang = executable("no-shebang", "echo never\n");
    let no_interpreter = executable("no-interpreter", "#!/nonexistent/bash\necho never\n");
    let mut asked = 0;
    for (command, code) in [
        ("no-such-command-for-meshinit", 127),
        ("/nonexistent/report", 127),
        (plain_file.as_str(), 126),
        (dir_path.as_str(), 126),
        (garbage.as_str(), 126),
        (no_shebang.as_str(), 126),
        (no_interpreter.as_str(), 127),
    ] {
        let began = Instant::now();
        let out = run_plain(&[
            "--ready-url",
            &ready,
            "--quit-url",
            &quit,
            "--timeout",
            "60s",
            "--",
            command,
        ]);
        assert_eq!(out.code, Some(code), "{command}: {}", out.stderr);
        assert!(
            began.elapsed() < Duration::from_secs(3),
            "{command}: took {:?}",
            began.elapsed()
        );
        assert!(
            !out.stderr.contains("waiting for the sidecar"),
            "{}",
            out.stderr
        );
        asked += 1;
        assert_eq!(
            requests(&mut endpoint),
            asked,
            "{command}: the sidecar is told to quit"
        );
    }
    let out = run_plain(&["--mesh", "none", "--", &no_shebang]);
    out.log_position("a shell script without one runs as: /bin/sh SCRIPT");
    let out = run_plain(&["--mesh", "none", "--", &no_interpreter]);
    out.log_position("(the interpreter its #! line names)");
    // What passes the look-up runs: a script with an interpreter that is there.
    let script = executable("script", "#!/bin/sh\nexit 7\n");
    assert_eq!(run_plain(&["--mesh", "none", "--", &script]).code, Some(7));
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_misspelt_variable_gets_one_warning_with_the_closest_name() {
    let mut cmd = meshinit_plain(&["--mesh", "none", "--", "true"]);
    cmd.env("MESHINIT_TIMOUT", "5s");
    let out = finish_plain(cmd);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("MESHINIT_TIMOUT"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].contains("did you mean MESHINIT_TIMEOUT?"),
        "{}",
        lines[0]
    );
}

#[test]
fn a_huge_value_makes_a_short_error() {
    let huge = "x".repeat(60_000);
    let mut cmd = meshinit_plain(&["--", "true"]);
    cmd.env("MESHINIT_MESH", &huge);
    let out = finish_plain(cmd);
    assert_eq!(out.code, Some(64));
    assert!(out.stderr.len() < 1_000, "{} bytes", out.stderr.len());
    assert!(out.stderr.contains("(60000 bytes)"), "{}", out.stderr);
    let out = run_plain(&["--mesh", &huge, "--", "true"]);
    assert_eq!(out.code, Some(64));
    assert!(out.stderr.len() < 1_000, "{} bytes", out.stderr.len());
}

/// A duration larger than a deadline can hold once crashed meshinit (SIGILL, 132) before
/// the task and without telling the sidecar. Above Go's largest it is a usage error naming
/// the option and the largest accepted; the largest itself runs.
#[test]
fn a_duration_beyond_the_largest_is_a_usage_error_and_the_sidecar_still_told() {
    let port = free_port();
    let mut endpoint = fault(port, "status:200", Place::Host);
    let quit = url(port, "/quitquitquit");
    // Each run tells the endpoint once; the count is of all requests so far.
    let mut told = 0;
    for (name, huge) in [
        ("--timeout", "2600000000000000h"),
        ("--quit-budget", "2562047h47m16.854775808s"),
        ("--quit-window", "99999999999h"),
        ("--grace", "2600000000000000h"),
    ] {
        let out = run_plain(&["--quit-url", &quit, name, huge, "--", "true"]);
        assert_eq!(out.code, Some(64), "{name} {huge}: {}", out.stderr);
        out.log_position(&format!(
            "{name}: invalid value '{huge}': expected a duration"
        ));
        out.log_position("at most 2562047h47m16.854775807s");
        told += 1;
        assert_eq!(requests(&mut endpoint), told, "{name}: {}", out.stderr);
    }
    let mut cmd = meshinit_plain(&["--quit-url", &quit, "--", "true"]);
    cmd.env("MESHINIT_QUIT_WAIT", "2600000000000000h");
    let out = finish_plain(cmd);
    assert_eq!(out.code, Some(64), "{}", out.stderr);
    out.log_position("MESHINIT_QUIT_WAIT: invalid value");
    told += 1;
    assert_eq!(requests(&mut endpoint), told, "{}", out.stderr);
    // The largest runs, every duration at it: the sidecar answers at once, so nothing waits.
    let largest = "2562047h47m16.854775807s";
    let ready = url(port, "/ready");
    let out = run_plain(&[
        "--ready-url",
        &ready,
        "--quit-url",
        &quit,
        "--timeout",
        largest,
        "--quit-budget",
        largest,
        "--quit-window",
        largest,
        "--quit-wait",
        largest,
        "--grace",
        largest,
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    // Its GET and its POST.
    assert_eq!(requests(&mut endpoint), told + 2, "{}", out.stderr);
}

/// A variable set to the empty string is unset, as scuttle (Go's `os.Getenv`) and
/// `${VAR:-default}` read it and as Helm charts render an unset value: the task runs, and
/// one line names the variables that were empty.
#[test]
fn an_empty_variable_is_unset_and_named() {
    let empty = [
        "ENVOY_ADMIN_API",
        "START_WITHOUT_ENVOY",
        "WAIT_FOR_ENVOY_TIMEOUT",
        "ISTIO_QUIT_API",
        "GENERIC_QUIT_ENDPOINTS",
        "MESHINIT_TIMEOUT",
        "MESHINIT_QUIT_URL",
    ];
    let mut cmd = meshinit_plain(&["--", "sh", "-c", "exit 3"]);
    cmd.envs(empty.map(|name| (name, "")));
    let out = finish_plain(cmd);
    assert_eq!(out.code, Some(3), "the task ran: {}", out.stderr);
    let line = &out
        .stderr
        .lines()
        .nth(out.log_position("set but empty, so read as unset: "));
    for name in empty {
        assert!(line.unwrap().contains(name), "{name}: {}", out.stderr);
    }
    assert!(!out.stderr.contains("invalid value"), "{}", out.stderr);
    // Not a scuttle user's run, then: no note of scuttle's variables.
    assert!(!out.stderr.contains("scuttle's"), "{}", out.stderr);
}

/// A scuttle variable that is set but wrong is named beside a note that does not say the
/// opposite ("no ENVOY_ADMIN_API").
#[test]
fn a_wrong_envoy_admin_api_is_not_called_missing() {
    let mut cmd = meshinit_plain(&["--", "true"]);
    cmd.env("ENVOY_ADMIN_API", "localhost:15000");
    let out = finish_plain(cmd);
    assert_eq!(out.code, Some(64), "{}", out.stderr);
    out.log_position("ENVOY_ADMIN_API: invalid value (not shown)");
    out.log_position("ENVOY_ADMIN_API is not valid (see the error)");
    assert!(!out.stderr.contains("no ENVOY_ADMIN_API"), "{}", out.stderr);
}

/// `wait` and `quit` read only what applies to them: a run's settings in the same
/// environment (the task containers' names, the task's grace) do not fail them.
#[test]
fn a_runs_settings_do_not_fail_wait_or_quit() {
    for (sub, theirs) in [
        (
            "wait",
            [
                ("NEVER_KILL_ISTIO", "maybe"),
                ("GENERIC_QUIT_ENDPOINTS", "bad://"),
            ],
        ),
        (
            "quit",
            [
                ("NEVER_KILL_ISTIO", "maybe"),
                ("WAIT_FOR_ENVOY_TIMEOUT", "soon"),
            ],
        ),
    ] {
        let mut cmd = meshinit_plain(&[sub, "--mesh", "none"]);
        cmd.envs([
            ("MESHINIT_NAME", "exporter"),
            ("MESHINIT_GRACE", "soon"),
            ("MESHINIT_SUCCESS_CODES", "none"),
        ]);
        // scuttle's that are not the subcommand's, too.
        cmd.envs(theirs);
        let out = finish_plain(cmd);
        assert_eq!(out.code, Some(0), "{sub}: {}", out.stderr);
    }
    // What does apply is still checked.
    let mut cmd = meshinit_plain(&["wait", "--mesh", "none"]);
    cmd.env("MESHINIT_TIMEOUT", "soon");
    let out = finish_plain(cmd);
    assert_eq!(out.code, Some(64), "{}", out.stderr);
}

/// After a usage error the quit window still ends on a TERM, as PID 1 and as a plain child
/// (which a TERM would otherwise kill at once, with no summary): meshinit holds its
/// signals from the start of every run.
#[test]
fn a_term_ends_the_quit_window_after_a_usage_error() {
    let test = "a_term_ends_the_quit_window_after_a_usage_error";
    // Nothing listens there: the window asks again and again.
    let quit = url(free_port(), "/quitquitquit");
    for mode in [Mode::Plain, Mode::Pid1] {
        if mode == Mode::Pid1 && !common::need_pid1(test) {
            return;
        }
        let args = [
            "--quit-url",
            &quit,
            "--quit-window",
            "10m",
            "--timout",
            "5s",
            "--",
            "true",
        ];
        let mut running = start(meshinit_bare(mode, &args), mode);
        running.expect_log(|l| l.contains("asking again every"), LIMIT);
        running.signal(libc::SIGTERM);
        let out = running.finish(LIMIT);
        assert_eq!(out.code, Some(64), "{mode:?}: {}", out.stderr);
        out.log_position("exit 64 (usage)");
    }
}
