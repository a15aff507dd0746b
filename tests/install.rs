//! `meshinit install DIR`: the copy an init container puts into an emptyDir. It is whole
//! or absent (written under a hidden name, renamed), runs, and every failure names DIR.

#[macro_use]
mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{bin, meshinit_bare, meshinit_via, need_pid1, start, tempdir, Mode, Output, NONROOT};

/// An install is a copy of 332 KB: a run that takes longer has hung.
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
    let out = install(&[], shown);
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
        let out = install(&[], target);
        assert_eq!(out.code, Some(73), "{}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("install: cannot write {target}/meshinit: {why}")),
            "{}",
            out.stderr
        );
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
/// the /proc a container runtime mounts.
#[test]
fn install_works_in_a_root_with_nothing_but_meshinit() {
    let test = "install_works_in_a_root_with_nothing_but_meshinit";
    if !need_pid1(test) {
        return;
    }
    let root = tempdir("install-scratch");
    std::fs::copy(bin(), root.join("meshinit")).unwrap();
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::create_dir_all(root.join("out")).unwrap();
    let shown = root.to_str().unwrap();
    let script =
        format!("mount -t proc proc {shown}/proc && exec chroot {shown} /meshinit install /out");
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--pid", "--fork", "sh", "-c", &script]);
    let out = run(cmd);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        std::fs::read(root.join("out/meshinit")).unwrap(),
        std::fs::read(bin()).unwrap()
    );
}
