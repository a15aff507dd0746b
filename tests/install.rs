//! `meshinit install DIR`: the copy an init container puts into an emptyDir. It is whole
//! or absent (written under a hidden name, renamed, DIR synced), runs, survives an attempt
//! killed midway, and every failure names DIR, whatever --log.

#[macro_use]
mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{
    bin, clean_env, delayed_in, killed_midway, meshinit_bare, meshinit_via, need_pid1, need_tools,
    start, tempdir, Mode, Output, AS_PID1, NONROOT,
};

/// An install is a copy of about 340 KB: a run that takes longer has hung.
const LIMIT: Duration = Duration::from_secs(20);

/// `cmd` to its end, as a plain child, within `LIMIT`.
fn run(cmd: Command) -> Output {
    start(cmd, Mode::Plain).finish(LIMIT)
}

fn install(wrapper: &[&str], dir: &str) -> Output {
    run(meshinit_via(wrapper, &["install", dir]))
}

/// The names in `dir`, hidden ones too.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn install_copies_itself_and_the_copy_runs_and_replaces_an_older_one() {
    let dir = tempdir("install");
    let shown = dir.to_str().unwrap();
    // The mode is 0755 whatever the umask.
    let out = install(&common::UMASK_077, shown);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let copy = dir.join("meshinit");
    assert!(out
        .stderr
        .contains(&format!("installed meshinit as {}", copy.display())));
    let meta = std::fs::metadata(&copy).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(bin()).unwrap());
    let version = Command::new(&copy).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("meshinit "));
    // Again over the copy: a new file renamed into place, never the old one rewritten
    // under a reader.
    let first = meta.ino();
    let out = install(&[], shown);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_ne!(std::fs::metadata(&copy).unwrap().ino(), first);
    assert_eq!(names(&dir), ["meshinit"], "nothing else left");
}

#[test]
fn install_failures_name_dir_and_exit_73() {
    let dir = tempdir("install-bad");
    let missing = dir.join("missing");
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    for (target, why) in [
        (missing.to_str().unwrap(), "No such file or directory"),
        (file.to_str().unwrap(), "Not a directory"),
    ] {
        // Said whatever the log level, as every error that ends a run before its work.
        for log in ["info", "off"] {
            let mut cmd = meshinit_bare(Mode::Plain, &["install", target]);
            cmd.env("MESHINIT_LOG", log);
            let out = run(cmd);
            assert_eq!(out.code, Some(73), "{}", out.stderr);
            assert!(
                out.stderr
                    .contains(&format!("install: cannot write {target}/meshinit: {why}")),
                "--log {log}: {}",
                out.stderr
            );
        }
    }
    let out = run(meshinit_bare(Mode::Plain, &["install"]));
    assert_eq!(out.code, Some(64), "{}", out.stderr);
    assert!(out.stderr.contains("missing DIR"), "{}", out.stderr);
    let out = run(meshinit_bare(Mode::Plain, &["install", "/tmp", "/var"]));
    assert_eq!(out.code, Some(64), "{}", out.stderr);
    assert!(
        out.stderr.contains("install takes one DIR"),
        "{}",
        out.stderr
    );
}

#[test]
fn install_into_a_read_only_or_full_dir_fails_and_leaves_nothing() {
    let test = "install_into_a_read_only_or_full_dir_fails_and_leaves_nothing";
    if !need_pid1(test) {
        return;
    }
    // Not writable for the distroless nonroot user.
    let dir = tempdir("install-ro");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = install(&NONROOT, dir.to_str().unwrap());
    assert_eq!(out.code, Some(73), "{}", out.stderr);
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    assert!(names(&dir).is_empty());
    // A full disk: a tmpfs too small for the copy, in a mount namespace of the test's own;
    // what is left in it is listed before the namespace goes.
    let full = tempdir("install-full");
    let shown = full.to_str().unwrap();
    let script = format!(
        "mount -t tmpfs -o size=64k meshinit-test {shown} || exit 99; \
         {} install {shown}; code=$?; ls -A {shown}; exit $code",
        bin().display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    let out = run(cmd);
    assert_eq!(out.code, Some(73), "{}", out.stderr);
    assert!(
        out.stderr.contains("No space left on device"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "", "the hidden copy is removed");
}

/// As in the FROM-scratch image: a root holding `/meshinit` alone (no shell, no libc), with
/// the /proc a container runtime mounts, and without one (a bare chroot), where meshinit is
/// found by the path it was started by, absolute or not.
#[test]
fn install_works_in_a_root_with_nothing_but_meshinit() {
    let test = "install_works_in_a_root_with_nothing_but_meshinit";
    if !need_pid1(test) {
        return;
    }
    for (with_proc, started_as) in [
        (true, "/meshinit"),
        (false, "/meshinit"),
        (false, "./meshinit"),
    ] {
        let root = tempdir("install-scratch");
        std::fs::copy(bin(), root.join("meshinit")).unwrap();
        std::fs::create_dir_all(root.join("proc")).unwrap();
        std::fs::create_dir_all(root.join("out")).unwrap();
        let shown = root.to_str().unwrap();
        let proc = match with_proc {
            true => format!("mount -t proc proc {shown}/proc && "),
            false => String::new(),
        };
        // chroot starts the program in the new root's `/`.
        let script = format!("{proc}exec chroot {shown} {started_as} install /out");
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--pid", "--fork", "sh", "-c", &script]);
        clean_env(&mut cmd);
        let out = run(cmd);
        assert_eq!(
            out.code,
            Some(0),
            "/proc mounted: {with_proc}: {}",
            out.stderr
        );
        assert_eq!(
            std::fs::read(root.join("out/meshinit")).unwrap(),
            std::fs::read(bin()).unwrap()
        );
    }
}

/// DIR must be absolute, as --pod-dir: a relative one would be the working directory's,
/// `/` in meshinit's image, where the copy would replace /meshinit itself.
#[test]
fn install_into_a_relative_dir_is_a_usage_error_and_writes_nothing() {
    let cwd = tempdir("install-relative");
    for dir in ["", ".", "out"] {
        let mut cmd = meshinit_bare(Mode::Plain, &["install", dir]);
        cmd.current_dir(&cwd);
        let out = run(cmd);
        assert_eq!(out.code, Some(64), "install {dir:?}: {}", out.stderr);
        let said = format!("install DIR: invalid value '{dir}': expected an absolute path");
        assert!(out.stderr.contains(&said), "{}", out.stderr);
        assert_eq!(names(&cwd), Vec::<String>::new(), "install {dir:?} wrote");
    }
}

/// Settings of a run in the init container's environment (a ConfigMap shared with the task,
/// a Helm chart's values) do not apply to install and do not fail it; its own do.
#[test]
fn a_runs_settings_do_not_fail_install() {
    let dir = tempdir("install-env");
    let shown = dir.to_str().unwrap();
    let run_settings = [
        ("MESHINIT_NAME", "exporter"),
        ("MESHINIT_GRACE", "soon"),
        ("MESHINIT_TIMEOUT", "forever"),
        ("ENVOY_ADMIN_API", "not a url"),
        ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
    ];
    let mut cmd = meshinit_bare(Mode::Plain, &["install", shown]);
    cmd.envs(run_settings);
    let out = run(cmd);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(names(&dir), ["meshinit"]);
    let mut cmd = meshinit_bare(Mode::Plain, &["install", shown]);
    cmd.env("MESHINIT_LOG", "verbose");
    let out = run(cmd);
    assert_eq!(out.code, Some(64), "{}", out.stderr);
    assert!(out.stderr.contains("MESHINIT_LOG: invalid value 'verbose'"));
}

/// An init container killed in the middle of the copy (OOM, SIGKILL) and restarted, PID 1
/// again, installs all the same; nothing hidden is left.
#[test]
fn an_install_killed_midway_succeeds_when_it_restarts() {
    let test = "an_install_killed_midway_succeeds_when_it_restarts";
    if !need_pid1(test) || !need_tools(test, &["strace"]) {
        return;
    }
    let dir = tempdir("install-killed");
    let shown = dir.to_str().unwrap();
    killed_midway(delayed_in("write", &["install", shown]), &dir, ".meshinit");
    let out = run(meshinit_via(AS_PID1, &["install", shown]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(names(&dir), ["meshinit"], "nothing hidden left");
    assert_eq!(
        std::fs::read(dir.join("meshinit")).unwrap(),
        std::fs::read(bin()).unwrap()
    );
}

/// The rename is made lasting: DIR itself is synced after it (a power loss must not take
/// the new name away), as the system calls show.
#[test]
fn install_syncs_dir_after_the_rename() {
    let test = "install_syncs_dir_after_the_rename";
    if !need_tools(test, &["strace"]) {
        return;
    }
    let dir = tempdir("install-sync");
    let shown = dir.to_str().unwrap();
    let trace = tempdir("install-trace").join("trace");
    let wrapper = [
        "strace",
        "-qq",
        "-o",
        trace.to_str().unwrap(),
        "-e",
        "trace=open,openat,rename,renameat,renameat2,fsync",
    ];
    let out = run(meshinit_via(&wrapper, &["install", shown]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let calls = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    let opened = lines
        .iter()
        .find(|l| l.contains(&format!("\"{shown}\", O_RDONLY")) && l.contains("O_DIRECTORY"))
        .unwrap_or_else(|| panic!("DIR never opened:\n{calls}"));
    let fd = opened.rsplit("= ").next().unwrap().trim();
    let renamed = lines
        .iter()
        .position(|l| l.starts_with("rename") && l.contains(&format!("\"{shown}/meshinit\"")))
        .unwrap_or_else(|| panic!("no rename:\n{calls}"));
    let synced = |l: &&str| l.starts_with(&format!("fsync({fd})")) && l.ends_with("= 0");
    assert!(
        lines[renamed..].iter().any(synced),
        "DIR (fd {fd}) not synced after the rename:\n{calls}"
    );
}
