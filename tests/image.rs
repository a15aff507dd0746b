//! The shipped image, built by scripts/image and used for real: the OCI layout's shape,
//! reproducibility, the arm64 binary under qemu, containers run with podman and runc
//! (as root), the "COPY --from" path through buildah, and the example manifests.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::mesh::{envoy, envoy_bin, free_port, url, wait_ready, Place};
use common::{need_pid1, need_tools, schema_versions, venv_python, PODMAN_LIMITS};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Runs a command to completion; returns (exit code, stdout, stderr).
fn sh(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(cmd: &mut Command) -> String {
    let (code, stdout, stderr) = sh(cmd);
    assert_eq!(code, 0, "{cmd:?} failed:\n{stdout}\n{stderr}");
    stdout
}

fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

struct Built {
    dir: PathBuf,
    digest: String,
}

/// The image, built once for this test binary into a directory of its own.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = PathBuf::from(REPO).join("target/image-test");
        let _ = std::fs::remove_dir_all(&dir);
        let digest = build_into(&dir);
        Built { dir, digest }
    })
}

fn build_into(dir: &Path) -> String {
    let script = Path::new(REPO).join("scripts/image");
    let out = ok(Command::new(script)
        .args(["--allow-dirty", "--out"])
        .arg(dir)
        .current_dir(REPO));
    let digest = out.trim().to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    digest
}

fn layout(built: &Built, tag: &str) -> String {
    format!("oci:{}:{tag}", built.dir.join("oci").display())
}

fn blob(built: &Built, digest: &str) -> PathBuf {
    built
        .dir
        .join("oci/blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The one layer of `arch`'s manifest, as a path to its blob.
fn layer_of(built: &Built, arch: &str) -> PathBuf {
    let raw = ok(&mut cmd(
        "skopeo",
        &[
            "inspect",
            "--raw",
            &layout(built, &format!("latest-{arch}")),
        ],
    ));
    let layers = raw.split("\"layers\":[").nth(1).expect("layers");
    let digest = layers
        .split("\"digest\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("layer digest");
    assert_eq!(
        layers.matches("\"digest\"").count(),
        1,
        "exactly one layer: {raw}"
    );
    blob(built, digest)
}

#[test]
fn the_layout_holds_both_platforms_each_one_layer_with_only_meshinit() {
    let test = "the_layout_holds_both_platforms_each_one_layer_with_only_meshinit";
    if !need_tools(test, &["skopeo", "umoci", "tar", "python3"]) {
        return;
    }
    let built = built();
    let index = ok(&mut cmd(
        "skopeo",
        &["inspect", "--raw", &layout(built, "latest")],
    ));
    assert!(index.contains("\"architecture\":\"amd64\""), "{index}");
    assert!(index.contains("\"architecture\":\"arm64\""), "{index}");
    assert!(
        index.contains("application/vnd.oci.image.index.v1+json"),
        "{index}"
    );
    assert!(
        index.contains("org.opencontainers.image.revision"),
        "{index}"
    );
    for arch in ["amd64", "arm64"] {
        let inspected = ok(&mut cmd(
            "skopeo",
            &[
                "inspect",
                "--override-arch",
                arch,
                "--override-os",
                "linux",
                &layout(built, "latest"),
            ],
        ));
        assert!(
            inspected.contains(&format!("\"Architecture\": \"{arch}\"")),
            "{inspected}"
        );
        for label in ["source", "revision", "version", "licenses"] {
            assert!(
                inspected.contains(&format!("org.opencontainers.image.{label}")),
                "{label}"
            );
        }
        let config = ok(&mut cmd(
            "skopeo",
            &[
                "inspect",
                "--config",
                &layout(built, &format!("latest-{arch}")),
            ],
        ));
        let compact: String = config.split_whitespace().collect();
        assert!(
            compact.contains("\"Entrypoint\":[\"/meshinit\",\"--\"]"),
            "{config}"
        );
        assert!(compact.contains("\"PATH=/usr/local/sbin:"), "{config}");
        ok(&mut cmd(
            "umoci",
            &[
                "stat",
                "--image",
                &format!("{}:latest-{arch}", built.dir.join("oci").display()),
            ],
        ));
        let listing = ok(&mut cmd(
            "tar",
            &["-tvzf", layer_of(built, arch).to_str().unwrap()],
        ));
        let entries: Vec<&str> = listing.lines().collect();
        assert_eq!(entries.len(), 1, "{arch}: {listing}");
        assert!(
            entries[0].starts_with("-rwxr-xr-x root/root "),
            "{arch}: {listing}"
        );
        assert!(entries[0].ends_with(" meshinit"), "{arch}: {listing}");
    }
    // The oci-archive is the same layout.
    let archived = ok(&mut cmd(
        "skopeo",
        &[
            "inspect",
            "--raw",
            &format!(
                "oci-archive:{}:{VERSION}",
                built
                    .dir
                    .join(format!("meshinit-{VERSION}.oci.tar"))
                    .display()
            ),
        ],
    ));
    assert_eq!(archived, index);
}

#[test]
fn the_arm64_binary_runs_under_qemu() {
    let test = "the_arm64_binary_runs_under_qemu";
    if !need_tools(test, &["skopeo", "tar", "qemu-aarch64-static", "file"]) {
        return;
    }
    let built = built();
    let dir = built.dir.join("arm64-extract");
    std::fs::create_dir_all(&dir).unwrap();
    ok(cmd("tar", &["-xzf", layer_of(built, "arm64").to_str().unwrap()]).current_dir(&dir));
    let binary = dir.join("meshinit");
    let kind = ok(&mut cmd("file", &[binary.to_str().unwrap()]));
    assert!(
        kind.contains("ARM aarch64") && kind.contains("statically linked"),
        "{kind}"
    );
    let version = ok(&mut cmd(
        "qemu-aarch64-static",
        &[binary.to_str().unwrap(), "--version"],
    ));
    assert_eq!(
        version.trim(),
        format!("meshinit {}", env!("CARGO_PKG_VERSION"))
    );
    let (code, stdout, stderr) = sh(&mut cmd(
        "qemu-aarch64-static",
        &[
            binary.to_str().unwrap(),
            "--mesh",
            "none",
            "--",
            "sh",
            "-c",
            "echo from-task; exit 5",
        ],
    ));
    assert_eq!(code, 5, "{stderr}");
    assert_eq!(stdout.trim(), "from-task");
    let (code, _, stderr) = sh(&mut cmd(
        "qemu-aarch64-static",
        &[binary.to_str().unwrap(), "--grace", "x", "true"],
    ));
    assert_eq!(code, 64, "{stderr}");
}

#[test]
fn two_builds_give_the_same_digest() {
    let test = "two_builds_give_the_same_digest";
    if !need_tools(test, &["python3", "git"]) {
        return;
    }
    let first = built();
    // A newer source file makes cargo compile and link the crate again for both targets:
    // new binaries with other mtimes, none of which may reach the image.
    ok(&mut cmd("touch", &[&format!("{REPO}/src/main.rs")]));
    let second_dir = PathBuf::from(REPO).join("target/image-test-again");
    let second = build_into(&second_dir);
    assert_eq!(
        second, first.digest,
        "the index digest changed between builds"
    );
    let bytes = |dir: &Path| {
        ["oci.tar", "linux-amd64.tar", "linux-arm64.tar"].map(|end| {
            std::fs::read(dir.join(format!(
                "meshinit-{VERSION}{}{end}",
                if end == "oci.tar" { "." } else { "-" }
            )))
            .unwrap()
        })
    };
    assert!(
        bytes(&second_dir) == bytes(&first.dir),
        "the archives differ"
    );
    let _ = std::fs::remove_dir_all(second_dir);
}

#[test]
fn bad_input_stops_with_a_message_and_writes_nothing() {
    let test = "bad_input_stops_with_a_message_and_writes_nothing";
    if !need_tools(test, &["git"]) {
        return;
    }
    let clone = common::tempdir("image-clone");
    ok(cmd("git", &["clone", "-q", REPO]).arg(&clone));
    let script = clone.join("scripts/image");

    let (code, _, stderr) = sh(Command::new(&script).arg("--frobnicate"));
    assert_eq!(code, 64, "{stderr}");
    assert!(
        stderr.contains("--frobnicate") && stderr.contains("--allow-dirty"),
        "{stderr}"
    );

    std::fs::write(clone.join("README.md"), "changed\n").unwrap();
    let (code, _, stderr) = sh(&mut Command::new(&script));
    assert_eq!(code, 65, "{stderr}");
    assert!(
        stderr.contains("uncommitted changes") && stderr.contains("README.md"),
        "{stderr}"
    );

    // A PATH with every program of this machine but cargo (and its toolchain), whatever
    // is installed where.
    let bin = clone.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for dir in ["/usr/local/bin", "/usr/bin", "/bin"] {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            if ["cargo", "rustc", "rustup"].iter().any(|n| name == *n) {
                continue;
            }
            let _ = std::os::unix::fs::symlink(entry.path(), bin.join(&name));
        }
    }
    let (code, _, stderr) = sh(Command::new("/bin/bash")
        .arg(&script)
        .env("PATH", &bin)
        .env_remove("CARGO_HOME")
        .env("HOME", &clone));
    assert_eq!(code, 69, "{stderr}");
    assert!(stderr.contains("'cargo' is missing"), "{stderr}");
    assert!(
        !clone.join("target/image/oci").exists(),
        "no layout may be left behind"
    );
    assert!(!clone
        .join(format!("target/image/meshinit-{VERSION}.oci.tar"))
        .exists());
    let _ = std::fs::remove_dir_all(&clone);
}

/// A podman image name of this test process's own, removed on drop.
struct PodmanImage(String);

impl Drop for PodmanImage {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rmi", "-f", &self.0]).output();
    }
}

/// The built image in podman's storage, plus one with a busybox userland on top.
fn podman_images(built: &Built, tag: &str) -> (PodmanImage, PodmanImage) {
    let base = PodmanImage(format!(
        "localhost/meshinit-test-{}-{tag}:latest",
        std::process::id()
    ));
    ok(&mut cmd(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!(
                "oci-archive:{}:{VERSION}",
                built
                    .dir
                    .join(format!("meshinit-{VERSION}.oci.tar"))
                    .display()
            ),
            &format!("containers-storage:{}", base.0),
        ],
    ));
    let context = built.dir.join(format!("context-{tag}"));
    std::fs::create_dir_all(&context).unwrap();
    std::fs::copy("/bin/busybox", context.join("busybox")).unwrap();
    std::fs::write(
        context.join("Containerfile"),
        format!(
            "FROM {}\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
            base.0
        ),
    )
    .unwrap();
    let with_shell = PodmanImage(format!(
        "localhost/meshinit-test-{}-{tag}-bb:latest",
        std::process::id()
    ));
    ok(cmd(
        "buildah",
        &["build", "-q", "--runtime", "runc", "-t", &with_shell.0],
    )
    .arg(&context));
    (base, with_shell)
}

fn podman_run(image: &str, env: &[&str], args: &[&str]) -> (i32, String, String) {
    let mut c = cmd("podman", &["run", "--rm"]);
    c.args(PODMAN_LIMITS);
    for e in env {
        c.args(["-e", e]);
    }
    c.arg(image).args(args);
    sh(&mut c)
}

fn container_ready(test: &str) -> Option<&'static Built> {
    if !need_pid1(test) || !need_tools(test, &["podman", "buildah", "runc", "skopeo", "busybox"]) {
        return None;
    }
    Some(built())
}

#[test]
fn in_a_real_container_meshinit_is_pid1() {
    let test = "in_a_real_container_meshinit_is_pid1";
    let Some(built) = container_ready(test) else {
        return;
    };
    let (_base, image) = podman_images(built, "pid1");
    let none = ["MESHINIT_MESH=none"];

    let (code, stdout, stderr) = podman_run(
        &image.0,
        &none,
        &["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; exit 7"],
    );
    assert_eq!(code, 7, "{stderr}");
    assert!(
        stdout.starts_with("/meshinit -- sh -c"),
        "PID 1 is {stdout:?}"
    );

    // 300 orphans (each foreground subshell has left its sleep to PID 1 when the loop
    // ends), then PID 1's children but this shell are counted, up to 10 s, until none is
    // left: a zombie would stay.
    let script = "i=0; while [ $i -lt 300 ]; do (sleep 0.3 &); i=$((i+1)); done; \
                  kids() { n=0; for f in /proc/[0-9]*/stat; do \
                    set -- $(cat $f 2>/dev/null); [ \"$4\" = 1 ] && [ \"$1\" != $$ ] && n=$((n+1)); \
                  done; echo $n; }; \
                  echo adopted=$(kids); \
                  i=0; while [ $(kids) -gt 0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
                  echo left=$(kids)";
    let (code, stdout, stderr) = podman_run(&image.0, &none, &["sh", "-c", script]);
    assert_eq!(code, 0, "{stderr}");
    let adopted: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("adopted="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(adopted > 0, "the orphans were never PID 1's: {stdout}");
    assert!(stdout.contains("left=0"), "{stdout}");

    // kill TERM from outside gives 143.
    let name = format!("meshinit-test-{}-term", std::process::id());
    let mut c = cmd(
        "podman",
        &["run", "-d", "--name", &name, "-e", "MESHINIT_MESH=none"],
    );
    c.args(PODMAN_LIMITS).arg(&image.0).args(["sleep", "30"]);
    ok(&mut c);
    // Once the task runs, meshinit's signals are set up.
    let started = Instant::now();
    while !sh(&mut cmd("podman", &["logs", &name]))
        .2
        .contains("task started")
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the task never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(&mut cmd("podman", &["kill", "--signal", "TERM", &name]));
    let waited = ok(&mut cmd("podman", &["wait", &name]));
    let _ = cmd("podman", &["rm", "-f", &name]).output();
    assert_eq!(waited.trim(), "143");
}

#[test]
fn copied_from_the_image_into_another_one() {
    let test = "copied_from_the_image_into_another_one";
    let Some(built) = container_ready(test) else {
        return;
    };
    let (base, with_shell) = podman_images(built, "copy");
    // The "used-by" path: a task image takes /meshinit from ours with COPY --from.
    let context = built.dir.join("context-used-by");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(
        context.join("Containerfile"),
        format!(
            "FROM {shell}\nCOPY --from={base} /meshinit /usr/local/bin/meshinit\n\
             ENV MESHINIT_MESH=none\n\
             ENTRYPOINT [\"/usr/local/bin/meshinit\", \"--\"]\nCMD [\"sh\", \"-c\", \"echo task in $0; exit 12\"]\n",
            shell = with_shell.0,
            base = base.0
        ),
    )
    .unwrap();
    let used_by = PodmanImage(format!(
        "localhost/meshinit-test-{}-usedby:latest",
        std::process::id()
    ));
    ok(cmd(
        "buildah",
        &["build", "-q", "--runtime", "runc", "-t", &used_by.0],
    )
    .arg(&context));
    let (code, stdout, stderr) = podman_run(&used_by.0, &[], &[]);
    assert_eq!(code, 12, "{stdout}\n{stderr}");
    // The image's CMD ran under the copied meshinit, configured by the image's ENV.
    assert_eq!(stdout.trim(), "task in sh", "{stderr}");
    assert!(!stderr.contains("waiting for the sidecar"), "{stderr}");
}

#[test]
fn a_container_on_the_host_network_waits_for_and_quits_a_real_envoy() {
    let test = "a_container_on_the_host_network_waits_for_and_quits_a_real_envoy";
    let Some(built) = container_ready(test) else {
        return;
    };
    let envoy_path = or_skip!(envoy_bin(test));
    let (_base, image) = podman_images(built, "envoy");
    let port = free_port();
    let mut sidecar = envoy(&envoy_path, port, Place::Host);
    wait_ready(port, "/ready", Duration::from_secs(20));
    let ready = format!("MESHINIT_READY_URL={}", url(port, "/ready"));
    let quit = format!("MESHINIT_QUIT_URL={}", url(port, "/quitquitquit"));
    let mut c = cmd("podman", &["run", "--rm", "--network", "host"]);
    c.args(PODMAN_LIMITS)
        .args(["-e", "MESHINIT_MESH=envoy", "-e", &ready, "-e", &quit])
        .arg(&image.0)
        .args(["sh", "-c", "exit 3"]);
    let (code, _, stderr) = sh(&mut c);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("the sidecar is ready"), "{stderr}");
    assert!(stderr.contains("sidecar quit via"), "{stderr}");
    assert!(
        sidecar.exits_within(Duration::from_secs(10)),
        "Envoy still running"
    );
}

#[test]
fn example_manifests_validate_against_the_oldest_and_newest_kubernetes() {
    let test = "example_manifests_validate_against_the_oldest_and_newest_kubernetes";
    let python = or_skip!(venv_python(test, "kubernetes_validate"));
    let known = schema_versions(&python);
    let versions = [known.first().unwrap(), known.last().unwrap()];
    let python = python.to_str().unwrap();
    let examples = PathBuf::from(REPO).join("images/examples");
    let mut manifests: Vec<String> = std::fs::read_dir(&examples)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    manifests.sort();
    assert!(manifests.len() >= 4, "{manifests:?}");
    for version in versions {
        let mut c = cmd(
            python,
            &["-m", "kubernetes_validate", "--strict", "-k", version],
        );
        c.args(&manifests);
        let (code, stdout, stderr) = sh(&mut c);
        assert_eq!(code, 0, "Kubernetes {version}:\n{stdout}\n{stderr}");
        assert_eq!(
            stdout.matches("passed").count(),
            manifests.len(),
            "{stdout}"
        );
    }
    // Every example, the Argo and Tekton ones included, carries the last backstop: a
    // deadline after which the pod ends whatever the sidecar does. (The admission policies
    // of policy/ are not workloads: tests/policy.rs checks them.)
    let backstops = ok(&mut cmd(
        python,
        &[
            "-c",
            "import glob, sys, yaml\n\
             need = {'Job': ('spec', 'activeDeadlineSeconds'),\n\
                     'CronJob': ('spec', 'jobTemplate', 'spec', 'activeDeadlineSeconds'),\n\
                     'Workflow': ('spec', 'activeDeadlineSeconds'),\n\
                     'TaskRun': ('spec', 'timeout')}\n\
             for path in sorted(glob.glob(sys.argv[1] + '/**/*.yaml', recursive=True)):\n\
             \x20   if '/policy/' in path:\n\
             \x20       continue\n\
             \x20   doc = yaml.safe_load(open(path))\n\
             \x20   node = doc\n\
             \x20   for key in need[doc['kind']]:\n\
             \x20       node = node[key]\n\
             \x20   print(path.split('/examples/')[1], doc['kind'], node)\n",
            examples.to_str().unwrap(),
        ],
    ));
    let lines: Vec<&str> = backstops.lines().collect();
    assert!(lines.len() >= 7, "{backstops}");
    assert!(
        lines.iter().any(|l| l.starts_with("runners/argo")),
        "{backstops}"
    );
}
