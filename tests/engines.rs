//! The release as users install it, in real engines started by these tests and stopped by
//! the pid they started: `docker load` (Docker 20.10), `podman load`, `ctr images import`
//! (containerd), skopeo with and without a reference; a real registry on loopback that the
//! multi-platform image is pushed to and pulled from by tag and by digest; a user's image
//! built with `docker build` that copies meshinit from the registry, run as PID 1; and the
//! release directory itself (checksums, SBOM, sizes, reproducibility). Root and the tools
//! are needed; under CI=true their absence is a failure.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::tempdir;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const IMAGE: &str = "ghcr.io/meshinit/meshinit";
const DOCKER: &str = "/usr/bin/docker";

fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Root and every tool in `tools`, or `None` with the reason printed (a failure in CI).
fn ready(test: &str, tools: &[&str]) -> Option<()> {
    (common::need_pid1(test) && common::need_tools(test, tools)).then_some(())
}

/// Runs `cmd` to completion: (exit code, stdout, stderr).
fn output(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run(program: &str, args: &[&str]) -> (i32, String, String) {
    output(Command::new(program).args(args))
}

fn ok(program: &str, args: &[&str]) -> String {
    let (code, stdout, stderr) = run(program, args);
    assert_eq!(code, 0, "{program} {args:?}:\n{stdout}\n{stderr}");
    stdout
}

/// The release directory that scripts/release wrote, once per test binary.
fn release() -> &'static PathBuf {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        let dist = Path::new(REPO).join("target/engines-test/dist");
        let script = Path::new(REPO).join("scripts/release");
        ok(
            script.to_str().unwrap(),
            &["--allow-dirty", "--out", dist.to_str().unwrap()],
        );
        dist
    })
}

fn artefact(name: &str) -> String {
    release().join(name).to_string_lossy().into_owned()
}

/// A daemon this test started; stopped (TERM, then KILL) by its pid when dropped.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(name: &'static str, program: &str, args: &[&str], dir: &Path) -> Daemon {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        Daemon { name, child, log }
    }

    /// Waits up to 30 s for `up` to hold.
    fn await_up(&mut self, up: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if up() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}):\n{}", self.name, self.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{} not up within 30 s:\n{}", self.name, self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: kill has no memory arguments; the pid is the daemon this test started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Docker 20.10 engine of the test's own (its own data, exec root and socket; no
/// iptables, no bridge). Returns the daemon and the `-H` argument for the client.
fn dockerd(dir: &Path) -> (Daemon, String) {
    let host = format!("unix://{}/docker.sock", dir.display());
    let data = dir.join("data");
    let exec = dir.join("exec");
    let pidfile = dir.join("docker.pid");
    let mut daemon = Daemon::start(
        "dockerd",
        "dockerd",
        &[
            "--iptables=false",
            "--bridge=none",
            "--data-root",
            data.to_str().unwrap(),
            "--exec-root",
            exec.to_str().unwrap(),
            "--pidfile",
            pidfile.to_str().unwrap(),
            "-H",
            &host,
        ],
        dir,
    );
    daemon.await_up(|| run(DOCKER, &["-H", &host, "version"]).0 == 0);
    (daemon, host)
}

/// containerd of the test's own; returns the daemon and its socket.
fn containerd(dir: &Path) -> (Daemon, String) {
    let socket = format!("{}/containerd.sock", dir.display());
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{socket}\"\n[ttrpc]\n  address = \"{socket}.ttrpc\"\n\
             [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let mut daemon = Daemon::start(
        "containerd",
        "containerd",
        &["-c", config.to_str().unwrap()],
        dir,
    );
    daemon.await_up(|| run("ctr", &["-a", &socket, "version"]).0 == 0);
    (daemon, socket)
}

/// A real registry (Debian's docker-registry) on a loopback port; returns it and host:port.
fn registry(dir: &Path) -> (Daemon, String) {
    let port = common::mesh::free_port();
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}/data\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.display()
        ),
    )
    .unwrap();
    let mut daemon = Daemon::start(
        "docker-registry",
        "docker-registry",
        &["serve", config.to_str().unwrap()],
        dir,
    );
    daemon.await_up(|| common::mesh::get_status(port, "/v2/") == Some(200));
    (daemon, format!("127.0.0.1:{port}"))
}

/// Tests that use podman's one image store take turns: one removes names another uses.
static PODMAN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A tar of a minimal root filesystem: Debian's static busybox and a few of its applets.
fn busybox_root_tar(dir: &Path) -> PathBuf {
    let root = dir.join("busybox-root");
    common::images::busybox_root(&root, &["sh", "ps", "sleep", "echo", "kill", "grep", "cat"]);
    tar_of(&root)
}

/// `root`'s files as a tar beside it, for `docker import` and `podman import`.
fn tar_of(root: &Path) -> PathBuf {
    let tar = root.with_extension("tar");
    ok(
        "tar",
        &[
            "-C",
            root.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ],
    );
    tar
}

/// The digest of the multi-platform index in the release's OCI archive.
fn index_digest() -> String {
    let out = ok(
        "skopeo",
        &[
            "inspect",
            &format!(
                "oci-archive:{}",
                artefact(&format!("meshinit-{}.oci.tar", version()))
            ),
        ],
    );
    out.lines()
        .find_map(|l| l.trim().strip_prefix("\"Digest\": \""))
        .and_then(|d| d.strip_suffix("\","))
        .expect("Digest")
        .to_owned()
}

#[test]
fn the_release_is_complete_checksummed_small_and_reproducible() {
    let test = "the_release_is_complete_checksummed_small_and_reproducible";
    or_skip!(ready(
        test,
        &["skopeo", "sha256sum", "python3", "qemu-aarch64-static"]
    ));
    let v = version();
    let dist = release();
    let mut names: Vec<String> = std::fs::read_dir(dist)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected = vec![
        "SHA256SUMS".to_owned(),
        format!("meshinit-{v}-linux-amd64"),
        format!("meshinit-{v}-linux-amd64.tar"),
        format!("meshinit-{v}-linux-arm64"),
        format!("meshinit-{v}-linux-arm64.tar"),
        format!("meshinit-{v}.oci.tar"),
        format!("meshinit-{v}.spdx.json"),
    ];
    expected.sort();
    assert_eq!(names, expected);
    let (code, out, err) = {
        let o = Command::new("sha256sum")
            .args(["-c", "SHA256SUMS"])
            .current_dir(dist)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            o.stderr,
        )
    };
    assert_eq!(code, Some(0), "{out} {}", String::from_utf8_lossy(&err));
    assert_eq!(out.matches(": OK").count(), 6, "{out}");
    for arch in ["amd64", "arm64"] {
        let binary = dist.join(format!("meshinit-{v}-linux-{arch}"));
        let size = std::fs::metadata(&binary).unwrap().len();
        // The bar of the design card: 336 KiB for each shipped binary; a correctness fix
        // that cannot fit after making room may use up to 344 KiB, said in README. amd64
        // uses it since issue 30 (a pod directory shared with hostile or unlucky writers).
        let bar = if arch == "amd64" { 344 } else { 336 };
        assert!(size <= bar * 1024, "{arch}: {size} bytes, over {bar} KiB");
        let runner = if arch == "amd64" {
            binary.to_str().unwrap().to_owned()
        } else {
            "qemu-aarch64-static".to_owned()
        };
        let mut args = vec![];
        if arch == "arm64" {
            args.push(binary.to_str().unwrap());
        }
        args.extend(["--mesh", "none", "--", "/bin/sh", "-c", "exit 9"]);
        assert_eq!(run(&runner, &args).0, 9, "{arch} runs a task");
        let file = ok("file", &[binary.to_str().unwrap()]);
        // amd64 a static PIE, arm64 static.
        let kind = if arch == "amd64" {
            "static-pie linked"
        } else {
            "statically linked"
        };
        assert!(file.contains(kind), "{arch}: {file}");
    }
    // The SBOM names every crate the binary links, at Cargo.lock's versions.
    let sbom = std::fs::read_to_string(dist.join(format!("meshinit-{v}.spdx.json"))).unwrap();
    let lock = std::fs::read_to_string(Path::new(REPO).join("Cargo.lock")).unwrap();
    assert!(sbom.contains("\"spdxVersion\": \"SPDX-2.3\""));
    for krate in [
        "meshinit",
        "ureq",
        "libc",
        "lexopt",
        "log",
        "env_logger",
        "env_filter",
    ] {
        let at = lock
            .find(&format!("name = \"{krate}\"\nversion = \""))
            .expect(krate);
        let version_line = lock[at..].lines().nth(1).unwrap();
        let locked = version_line
            .trim_start_matches("version = \"")
            .trim_end_matches('"');
        assert!(
            sbom.contains(&format!("pkg:cargo/{krate}@{locked}")),
            "{krate}@{locked}"
        );
    }
    // Only what is linked: no regex, no colours, no time crate.
    for absent in ["regex", "anstream", "jiff"] {
        assert!(
            !sbom.contains(&format!("pkg:cargo/{absent}@")),
            "{absent} is not linked"
        );
    }
    // Again into another directory: the same bytes.
    let again = tempdir("release-again").join("dist");
    ok(
        Path::new(REPO).join("scripts/release").to_str().unwrap(),
        &["--allow-dirty", "--out", again.to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read(dist.join("SHA256SUMS")).unwrap(),
        std::fs::read(again.join("SHA256SUMS")).unwrap()
    );
}

#[test]
fn every_engine_loads_the_release_archives() {
    let test = "every_engine_loads_the_release_archives";
    or_skip!(ready(
        test,
        &["dockerd", DOCKER, "containerd", "ctr", "podman", "skopeo"]
    ));
    let v = version();
    let multi = artefact(&format!("meshinit-{v}.oci.tar"));
    let amd64 = artefact(&format!("meshinit-{v}-linux-amd64.tar"));
    let arm64 = artefact(&format!("meshinit-{v}-linux-arm64.tar"));
    let tagged = format!("{IMAGE}:{v}");

    // skopeo, with and without a reference.
    let digest = index_digest();
    let with_ref = ok("skopeo", &["inspect", &format!("oci-archive:{multi}:{v}")]);
    assert!(with_ref.contains(&digest), "{with_ref}");
    for (archive, arch) in [(&amd64, "amd64"), (&arm64, "arm64")] {
        let raw = ok(
            "skopeo",
            &["inspect", "--raw", &format!("oci-archive:{archive}")],
        );
        assert!(
            raw.contains("application/vnd.oci.image.manifest.v1+json"),
            "{raw}"
        );
        // skopeo reads it as a docker archive of the right platform (its RepoTags are
        // always empty there); the tags are the archive's manifest.json's.
        let docker = ok("skopeo", &["inspect", &format!("docker-archive:{archive}")]);
        assert!(
            docker.contains(&format!("\"Architecture\": \"{arch}\"")),
            "{docker}"
        );
        let manifest = ok("tar", &["-xOf", archive, "manifest.json"]);
        for tag in [format!("{IMAGE}:{v}"), format!("{IMAGE}:latest")] {
            assert!(
                manifest.contains(&format!("\"{tag}\"")),
                "{tag}: {manifest}"
            );
        }
    }

    // Docker 20.10: docker load, then run.
    let dir = tempdir("docker-load");
    let (_docker, host) = dockerd(&dir);
    let loaded = ok(DOCKER, &["-H", &host, "load", "-i", &amd64]);
    assert!(
        loaded.contains(&format!("Loaded image: {tagged}")),
        "{loaded}"
    );
    assert!(
        loaded.contains(&format!("Loaded image: {IMAGE}:latest")),
        "{loaded}"
    );
    let out = ok(
        DOCKER,
        &[
            "-H",
            &host,
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "/meshinit",
            &tagged,
            "--version",
        ],
    );
    assert_eq!(out.trim(), format!("meshinit {v}"));
    let loaded = ok(DOCKER, &["-H", &host, "load", "-i", &arm64]);
    assert!(loaded.contains(&tagged), "{loaded}");

    // containerd: ctr images import of the one-platform and the multi-platform archives.
    let dir = tempdir("ctr-import");
    let (_containerd, socket) = containerd(&dir);
    ok("ctr", &["-a", &socket, "images", "import", &amd64]);
    ok(
        "ctr",
        &["-a", &socket, "images", "import", "--all-platforms", &multi],
    );
    let listed = ok("ctr", &["-a", &socket, "images", "ls"]);
    assert!(
        listed.contains(&tagged) && listed.contains(&digest),
        "{listed}"
    );
    assert!(listed.contains("linux/amd64,linux/arm64"), "{listed}");
    let out = ok(
        "ctr",
        &[
            "-a",
            &socket,
            "run",
            "--rm",
            &tagged,
            "meshinit-version",
            "/meshinit",
            "--version",
        ],
    );
    assert_eq!(out.trim(), format!("meshinit {v}"));

    // podman load of both kinds of archive.
    let _podman = PODMAN.lock().unwrap_or_else(|e| e.into_inner());
    for archive in [&multi, &amd64] {
        let loaded = ok("podman", &["load", "-i", archive]);
        assert!(loaded.contains(&tagged), "{loaded}");
    }
    let out = ok("podman", &{
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(&common::PODMAN_LIMITS);
        args.extend([
            "--network",
            "none",
            "--entrypoint",
            "/meshinit",
            &tagged,
            "--version",
        ]);
        args
    });
    assert_eq!(out.trim(), format!("meshinit {v}"));
    let _ = run(
        "podman",
        &["rmi", "-f", &tagged, &format!("{IMAGE}:latest")],
    );
}

#[test]
fn pushed_pulled_by_tag_and_digest_and_copied_into_a_users_image() {
    let test = "pushed_pulled_by_tag_and_digest_and_copied_into_a_users_image";
    or_skip!(ready(
        test,
        &[
            "dockerd",
            DOCKER,
            "docker-registry",
            "podman",
            "skopeo",
            "busybox"
        ]
    ));
    let v = version();
    let multi = artefact(&format!("meshinit-{v}.oci.tar"));
    let digest = index_digest();
    let dir = tempdir("registry");
    let (_registry, registry) = registry(&dir);
    let remote = format!("{registry}/meshinit");
    for tag in [v.as_str(), "latest"] {
        ok(
            "skopeo",
            &[
                "copy",
                "--all",
                "--dest-tls-verify=false",
                &format!("oci-archive:{multi}"),
                &format!("docker://{remote}:{tag}"),
            ],
        );
    }
    // The registry serves the very index that was built: the digest is reproducible.
    let inspected = ok(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{remote}:{v}"),
        ],
    );
    assert!(inspected.contains(&digest), "{inspected}");

    let dir = tempdir("docker-registry-client");
    let (_docker, host) = dockerd(&dir);
    let docker = |args: &[&str]| {
        let mut all = vec!["-H", host.as_str()];
        all.extend_from_slice(args);
        ok(DOCKER, &all)
    };
    docker(&["pull", &format!("{remote}:{v}")]);
    docker(&["pull", &format!("{remote}@{digest}")]);
    let podman = PODMAN.lock().unwrap_or_else(|e| e.into_inner());
    for reference in [format!("{remote}:{v}"), format!("{remote}@{digest}")] {
        ok("podman", &["pull", "--tls-verify=false", &reference]);
    }
    let _ = run("podman", &["rmi", "-f", &format!("{remote}:{v}")]);
    drop(podman);

    // A user's image: a base made here (busybox), meshinit copied from the registry.
    let base_tar = busybox_root_tar(&dir);
    docker(&[
        "import",
        base_tar.to_str().unwrap(),
        "meshinit-test/busybox:local",
    ]);
    let context = tempdir("user-image");
    std::fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM meshinit-test/busybox:local\n\
             COPY --from={remote}:{v} /meshinit /usr/local/bin/meshinit\n\
             ENTRYPOINT [\"/usr/local/bin/meshinit\", \"--mesh\", \"none\", \"--\"]\n\
             CMD [\"sh\", \"-c\", \"exit 7\"]\n"
        ),
    )
    .unwrap();
    docker(&[
        "build",
        "-q",
        "-t",
        "meshinit-test/user:1",
        context.to_str().unwrap(),
    ]);
    let image = "meshinit-test/user:1";
    let (code, _, stderr) = run(
        DOCKER,
        &["-H", &host, "run", "--rm", "--network", "none", image],
    );
    assert_eq!(code, 7, "{stderr}");
    // Orphans exit while the task still runs; PID 1 reaps them all.
    let out = docker(&[
        "run", "--rm", "--network", "none", image, "sh", "-c",
        "for i in 1 2 3 4 5 6 7 8; do (sleep 0.1 &); done; sleep 1; ps -o stat,comm | grep -c '^Z' || true",
    ]);
    assert_eq!(out.trim(), "0", "zombies left under PID 1");
    // docker stop: TERM reaches the task, its handler runs, the code is 143.
    let id = docker(&[
        "run", "-d", "--network", "none", image, "sh", "-c",
        "trap 'echo handled TERM; trap - TERM; kill -TERM $$' TERM; echo up; while :; do sleep 0.1; done",
    ]);
    let id = id.trim();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !docker(&["logs", id]).contains("up") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    docker(&["stop", "-t", "10", id]);
    let code = docker(&["inspect", "-f", "{{.State.ExitCode}}", id]);
    let logs = docker(&["logs", id]);
    assert_eq!(code.trim(), "143", "{logs}");
    assert!(logs.contains("handled TERM"), "{logs}");
    docker(&["rm", id]);
}

/// podman with limits the pod's infra container can have here too (containers.conf's
/// default_ulimits reach it; `pod create` has no --ulimit).
fn pod_conf() -> &'static PathBuf {
    static CONF: OnceLock<PathBuf> = OnceLock::new();
    CONF.get_or_init(|| {
        let conf = tempdir("containers-conf").join("containers.conf");
        std::fs::write(
            &conf,
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]\n\
             [engine]\nruntime = \"runc\"\n",
        )
        .unwrap();
        conf
    })
}

fn pod_run(args: &[&str]) -> (i32, String, String) {
    output(
        Command::new("podman")
            .args(args)
            .env("CONTAINERS_CONF", pod_conf()),
    )
}

fn pod_ok(args: &[&str]) -> String {
    let (code, stdout, stderr) = pod_run(args);
    assert_eq!(code, 0, "podman {args:?}:\n{stdout}\n{stderr}");
    stdout
}

/// Istio's sidecar as an image of its own (`common::images::istio_proxy_root`).
fn istio_proxy_image(dir: &Path, envoy: &Path, peers: &common::istio::Peers, name: &str) {
    let root = common::images::istio_proxy_root(dir, envoy, peers);
    pod_ok(&["import", tar_of(&root).to_str().unwrap(), name]);
}

/// The images a pod run needs.
struct PodImages<'a> {
    proxy: &'a str,
    job: &'a str,
    xds: &'a Path,
}

/// One pod run to completion: the istio-proxy container (the real pilot-agent, which starts
/// the real Envoy) and the job, sharing the network as a Kubernetes pod's containers do (and
/// the PID namespace with `share_pid`); the tests' xDS server, the pod's control plane,
/// beside it. Returns the job's code, its log, and the time from the job's exit to the last
/// container's exit.
fn pod_completes(
    pod: &str,
    share_pid: bool,
    images: &PodImages,
    drain: &str,
    job_options: &[&str],
    job_args: &[&str],
) -> (i32, String, Duration) {
    // Without podman's infra container, which cannot be given the resource limits this
    // machine allows: the proxy's container owns the network namespace the others join.
    pod_ok(&["pod", "create", "--name", pod, "--infra=false"]);
    let _removed = RemovedAtEnd(pod.to_owned());
    let proxy = format!("{pod}-istio-proxy");
    let job = format!("{pod}-job");
    let net = format!("container:{proxy}");
    let mut joined = vec!["--network", net.as_str()];
    if share_pid {
        joined.extend(["--pid", net.as_str()]);
    }
    let container = |name: &str, args: &[&str]| {
        let mut all = vec!["run", "-d", "--pod", pod, "--name", name];
        all.extend_from_slice(&common::PODMAN_LIMITS);
        all.extend_from_slice(args);
        pod_ok(&all);
    };
    let proxy_config = format!(
        "PROXY_CONFIG={{\"discoveryAddress\":\"127.0.0.1:15010\",\
         \"controlPlaneAuthPolicy\":\"NONE\",\"terminationDrainDuration\":\"{drain}\"}}"
    );
    // As the injector starts istio-proxy (the variables of its template that matter here).
    container(
        &proxy,
        &[
            "--network",
            "none",
            "--workdir",
            "/",
            "--env",
            "POD_NAME=job-7f9c",
            "--env",
            "POD_NAMESPACE=default",
            "--env",
            "INSTANCE_IP=127.0.0.1",
            "--env",
            "CLOUD_PLATFORM=none",
            "--env",
            "FILE_MOUNTED_CERTS=true",
            "--env",
            &proxy_config,
            images.proxy,
            "/usr/local/bin/pilot-agent",
            "proxy",
            "sidecar",
        ],
    );
    let mut job_run = joined.clone();
    job_run.extend_from_slice(job_options);
    job_run.push(images.job);
    job_run.extend_from_slice(job_args);
    container(&job, &job_run);
    // The control plane is not in the pod: the xDS server runs on the host, in the pod's
    // network namespace (entered by the pid of the proxy's container).
    let proxy_pid = ok("podman", &["inspect", "-f", "{{.State.Pid}}", &proxy]);
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", proxy_pid.trim(), "-n"])
        .arg(images.xds)
        .args(["-addr", "127.0.0.1:15010"]);
    let mut control_plane = common::start(cmd, common::Mode::Plain);
    control_plane.expect_line(|l| l.starts_with("xds listening"), Duration::from_secs(20));
    let names = [proxy.as_str(), job.as_str()];
    // Every container of the pod must end by itself: wait (bounded) for both.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let states = ok(
            "podman",
            &[
                "ps",
                "-a",
                "--filter",
                &format!("pod={pod}"),
                "--format",
                "{{.Names}} {{.State}}",
            ],
        );
        let running: Vec<&str> = states
            .lines()
            .filter(|l| {
                names.iter().any(|n| l.starts_with(&format!("{n} ")))
                    && !l.contains(" Exited")
                    && !l.ends_with(" exited")
            })
            .collect();
        if running.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = names
                .iter()
                .map(|n| format!("{n}:\n{}", pod_run(&["logs", n]).2))
                .collect();
            panic!("still running after 60 s: {running:?}\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let finished = |name: &str| -> f64 {
        let at = ok(
            "podman",
            &["inspect", "-f", "{{.State.FinishedAt.UnixNano}}", name],
        );
        at.trim()
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("{name}: {at}"))
            / 1e9
    };
    let code = |name: &str| -> i32 {
        ok("podman", &["inspect", "-f", "{{.State.ExitCode}}", name])
            .trim()
            .parse()
            .unwrap()
    };
    let proxy_log = pod_run(&["logs", &proxy]);
    assert_eq!(
        code(&proxy),
        0,
        "pilot-agent's exit code:\n{}{}",
        proxy_log.1,
        proxy_log.2
    );
    let job_log = pod_run(&["logs", &job]).2;
    // From the task's exit (the time podman took meshinit's line saying so) to the last
    // container's exit: the job's own exit comes after the quit, so it is no start mark.
    let stamped = pod_run(&["logs", "--timestamps", &job]).2;
    let task_exit = log_time(&stamped, "info: task exited")
        .unwrap_or_else(|| panic!("no time for the task's exit in:\n{stamped}"));
    let last = finished(&proxy).max(finished(&job));
    let gap = Duration::from_secs_f64((last - task_exit).max(0.0));
    let job_code = code(&job);
    drop(control_plane);
    (job_code, job_log, gap)
}

/// A pod removed with its containers when this goes, on a failure too.
struct RemovedAtEnd(String);

impl Drop for RemovedAtEnd {
    fn drop(&mut self) {
        let _ = pod_run(&["pod", "rm", "-f", &self.0]);
    }
}

/// The time, in seconds since the epoch, that `podman logs --timestamps` gives the first
/// meshinit line containing `text` (RFC 3339 in UTC, `2026-12-01T20:33:19.2842Z`; podman
/// may run lines together, so the stamp is found by its fixed layout before "Z meshinit").
fn log_time(stamped: &str, text: &str) -> Option<f64> {
    let at = stamped.find(text)?;
    let z = stamped[..at].rfind("Z meshinit +")?;
    let digits = stamped[..z].len()
        - stamped[..z]
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .len();
    let (whole_end, fraction) = if stamped[..z - digits].ends_with('.') {
        (z - digits - 1, &stamped[z - digits..z])
    } else {
        (z, "")
    };
    let stamp = stamped.get(whole_end.checked_sub(19)?..whole_end)?;
    let field = |range: std::ops::Range<usize>| stamp.get(range)?.parse::<i64>().ok();
    let (y, mo, d) = (field(0..4)?, field(5..7)?, field(8..10)?);
    let (h, mi, sec) = (field(11..13)?, field(14..16)?, field(17..19)?);
    let days = common::days_since_epoch(y, mo, d);
    let fraction: f64 = format!("0.{fraction}0").parse().ok()?;
    Some((days * 86_400 + h * 3_600 + mi * 60 + sec) as f64 + fraction)
}

/// The median and 95th percentile of `values`.
fn p50_p95(values: &mut [Duration]) -> (Duration, Duration) {
    values.sort();
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95))
}

/// A pod as Kubernetes runs it under Istio, end to end: the real pilot-agent and Envoy in
/// an istio-proxy container, and a job whose image got meshinit by `COPY --from`. Run
/// `MESHINIT_POD_RUNS` times (default 1; scripts/bench asks for 20): the figures are
/// printed, not asserted against a time.
#[test]
fn a_pod_with_istios_real_sidecar_completes() {
    let test = "a_pod_with_istios_real_sidecar_completes";
    or_skip!(ready(test, &["podman", "skopeo", "busybox", "ldd"]));
    let envoy = or_skip!(common::mesh::envoy_bin(test));
    let peers = or_skip!(common::istio::peers(test));
    let runs: usize = std::env::var("MESHINIT_POD_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let v = version();
    let _podman = PODMAN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempdir("pod");
    let tag = format!("{}", std::process::id());
    let proxy_image = format!("localhost/meshinit-test/istio-proxy:{tag}");
    let base = format!("localhost/meshinit-test/busybox:{tag}");
    let meshinit = format!("localhost/meshinit-test/meshinit:{tag}");
    let job = format!("localhost/meshinit-test/job:{tag}");
    istio_proxy_image(&dir, &envoy, peers, &proxy_image);
    ok(
        "podman",
        &["import", busybox_root_tar(&dir).to_str().unwrap(), &base],
    );
    ok(
        "skopeo",
        &[
            "copy",
            &format!("oci-archive:{}", artefact(&format!("meshinit-{v}.oci.tar"))),
            &format!("containers-storage:{meshinit}"),
        ],
    );
    // The job's image gets meshinit the way users are told to: COPY --from. No
    // configuration: in a pod, meshinit finds Istio by itself.
    let context = dir.join("job");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(
        context.join("Containerfile"),
        format!(
            "FROM {base}\nCOPY --from={meshinit} /meshinit /usr/local/bin/meshinit\n\
             ENV KUBERNETES_SERVICE_HOST=10.96.0.1\n\
             ENTRYPOINT [\"/usr/local/bin/meshinit\", \"--\"]\n"
        ),
    )
    .unwrap();
    ok(
        "podman",
        &[
            "build",
            "--pull=never",
            "-q",
            "-t",
            &job,
            "-f",
            context.join("Containerfile").to_str().unwrap(),
            context.to_str().unwrap(),
        ],
    );
    let images = PodImages {
        proxy: &proxy_image,
        job: &job,
        xds: &peers.xds,
    };

    // Shared network: the job waits for pilot-agent, runs, quits it; pilot-agent stops
    // Envoy and exits 0; every container ends, the job with the task's code.
    let mut gaps = Vec::new();
    for run in 0..runs {
        let pod = format!("meshinit-pod-{tag}-{run}");
        let (code, log, gap) = pod_completes(
            &pod,
            false,
            &images,
            "5s",
            &[],
            &["sh", "-c", "echo job ran; exit 3"],
        );
        assert_eq!(code, 3, "{log}");
        assert!(log.contains("found the istio sidecar"), "{log}");
        assert!(
            log.contains("sidecar quit via http://127.0.0.1:15020/quitquitquit "),
            "{log}"
        );
        gaps.push(gap);
    }
    let (p50, p95) = p50_p95(&mut gaps);
    eprintln!(
        "pod with the real pilot-agent, {runs} runs: task exit -> last container exit \
         p50 {} ms, p95 {} ms",
        p50.as_millis(),
        p95.as_millis()
    );

    // Shared PID namespace too, and the agent's quit endpoint out of reach: the /proc
    // fallback finds pilot-agent by its executable in the other container and SIGTERMs
    // it; the agent drains (1 s) and stops Envoy.
    let pod = format!("meshinit-pod-pid-{tag}");
    let (code, log, gap) = pod_completes(
        &pod,
        true,
        &images,
        "1s",
        &["--env", "MESHINIT_QUIT_URL=http://127.0.0.1:1/quitquitquit"],
        &["sh", "-c", "exit 4"],
    );
    assert_eq!(code, 4, "{log}");
    assert!(
        log.contains("sent SIGTERM to /usr/local/bin/pilot-agent"),
        "{log}"
    );
    eprintln!(
        "pod with a shared PID namespace, /proc fallback: task exit -> last container exit {} ms \
         (terminationDrainDuration 1 s)",
        gap.as_millis()
    );
    assert!(
        gap >= Duration::from_millis(800),
        "the agent did not drain: {gap:?}"
    );
    // /proc shows the agent: the fallback comes at once, not after the quit window.
    assert!(gap < Duration::from_secs(5), "{gap:?}\n{log}");
    for image in [&job, &meshinit, &base, &proxy_image] {
        let _ = pod_run(&["rmi", "-f", image]);
    }
}
