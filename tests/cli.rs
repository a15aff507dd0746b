//! The command line and the MESHINIT_* variables: help, version, and bad input.

mod common;

use common::{meshinit, run, run_args, Mode};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);

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
            &[("MESHINIT_MESH", "")],
            &["MESHINIT_MESH", "''"],
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
