//! Shared helpers for the black-box tests: find the binary, run it as PID 1 or as a plain
//! child, read its output with time limits, signal it by the pid we started.
#![allow(dead_code)]

/// The value of an `Option` that a test needs, or a return from the test: the helpers that
/// give `None` have printed why it skips (and under CI=true they fail instead).
#[allow(unused_macros)]
macro_rules! or_skip {
    ($needed:expr) => {
        match $needed {
            Some(value) => value,
            None => return,
        }
    };
}

pub mod images;
pub mod istio;
pub mod mesh;
pub mod pods;
pub mod refusals;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The binary under test: `MESHINIT_BIN` (e.g. the one an image ships) or the one cargo built.
pub fn bin() -> PathBuf {
    std::env::var_os("MESHINIT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_meshinit")))
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// podman's runtime and the resource limits a container may have on this machine (crun
/// does not work here; podman's default limits exceed what this root may set).
pub const PODMAN_LIMITS: [&str; 6] = [
    "--runtime",
    "runc",
    "--ulimit",
    "nofile=20000:20000",
    "--ulimit",
    "nproc=4096:4096",
];

/// True when every tool is on PATH; skips with the reason otherwise (fails under CI=true).
pub fn need_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !on_path(t)).collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "missing {} (scripts/setup installs them)",
        missing.join(", ")
    );
    assert!(!in_ci(), "{test}: {why}, and CI=true forbids skipping");
    eprintln!("SKIP {test}: {why}");
    false
}

pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The project's own virtual environment's Python (scripts/setup makes `target/venv`, with
/// kubernetes-validate and the PyYAML it brings), when `import MODULE` works there; else
/// `None`, the reason printed (under CI=true a failure).
pub fn venv_python(test: &str, module: &str) -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python3");
    let works = python.exists()
        && Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|out| out.status.success());
    if works {
        return Some(python);
    }
    let why = format!(
        "{} cannot import {module} (scripts/setup installs it)",
        python.display()
    );
    assert!(!in_ci(), "{test}: {why}, and CI=true forbids skipping");
    eprintln!("SKIP {test}: {why}");
    None
}

/// The Kubernetes versions whose schemas kubernetes-validate (in `python`'s environment)
/// carries, oldest first ("1.25.0", ...).
pub fn schema_versions(python: &Path) -> Vec<String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import kubernetes_validate as k, os, re\n\
             d = os.path.join(os.path.dirname(k.__file__), 'kubernetes-json-schema')\n\
             v = sorted({tuple(map(int, m.groups())) for m in (re.match(r'v(\\d+)\\.(\\d+)\\.(\\d+)-local$', n) for n in os.listdir(d)) if m})\n\
             print('\\n'.join('%d.%d.%d' % x for x in v))",
        ])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let versions: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        !versions.is_empty(),
        "kubernetes-validate carries no schemas"
    );
    versions
}

/// Whether PID namespaces can be made here (root and a working `unshare`).
fn pid_namespaces_work() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            // SAFETY: geteuid cannot fail.
            if unsafe { libc::geteuid() } != 0 {
                return Err("needs root for unshare --pid".into());
            }
            match Command::new("unshare")
                .args(["--pid", "--fork", "--mount-proc", "true"])
                .stderr(Stdio::null())
                .status()
            {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(format!("unshare --pid failed ({s})")),
                Err(e) => Err(format!("unshare not runnable: {e}")),
            }
        })
        .clone()
}

/// True when the test may run as PID 1. Skips with a printed reason, except under CI=true,
/// where a missing capability is a failure.
pub fn need_pid1(test: &str) -> bool {
    match pid_namespaces_work() {
        Ok(()) => true,
        Err(why) if in_ci() => panic!("{test}: {why}, and CI=true forbids skipping"),
        Err(why) => {
            eprintln!("SKIP {test}: {why}");
            false
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// meshinit is PID 1 of a fresh PID namespace.
    Pid1,
    /// meshinit is an ordinary child of the test (a subreaper).
    Plain,
}

/// A command that runs meshinit with `args` in `mode`, as a plain init: the tests of the
/// init core set MESHINIT_MESH=none, the sidecar tests say which mesh they mean.
pub fn meshinit(mode: Mode, args: &[&str]) -> Command {
    let mut cmd = meshinit_bare(mode, args);
    cmd.env("MESHINIT_MESH", "none");
    cmd
}

/// `unshare` making meshinit PID 1 of a new PID namespace; --kill-child: if the test gives
/// up on unshare, the namespace goes with it.
pub const AS_PID1: &[&str] = &["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];

/// A command that runs meshinit with `args` in `mode`, configured by `args` alone.
pub fn meshinit_bare(mode: Mode, args: &[&str]) -> Command {
    match mode {
        Mode::Pid1 => meshinit_via(AS_PID1, args),
        Mode::Plain => meshinit_via(&[], args),
    }
}

/// The one way the tests build a meshinit command: the binary with `args`, behind
/// `wrapper` (unshare, ip netns exec, setpriv, or nothing), with a clean environment.
pub fn meshinit_via(wrapper: &[&str], args: &[&str]) -> Command {
    let mut cmd = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(bin());
            c
        }
        None => Command::new(bin()),
    };
    cmd.args(args);
    clean_env(&mut cmd);
    cmd
}

/// Leaves `cmd` only PATH of the test's environment: no MESHINIT_*, scuttle, envoy-preflight
/// or Kubernetes variable of whoever runs the tests reaches meshinit, so a test says all the
/// configuration it means (and adds it after this).
pub fn clean_env(cmd: &mut Command) {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    cmd.env_clear().env("PATH", path);
}

/// A fresh, empty directory of this test process's own under the system's temp dir.
pub fn tempdir(tag: &str) -> PathBuf {
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("meshinit-test-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub struct Output {
    pub code: Option<i32>,
    /// The signal that ended the process, when one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Fails, showing both streams, unless stdout contains `text`.
    pub fn expect_stdout(&self, text: &str) {
        assert!(
            self.stdout.contains(text),
            "no {text:?} in stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
    }

    /// The position among meshinit's log lines of the first containing `text`.
    pub fn log_position(&self, text: &str) -> usize {
        self.stderr
            .lines()
            .position(|l| l.contains(text))
            .unwrap_or_else(|| panic!("no log line with {text:?} in:\n{}", self.stderr))
    }
}

/// A started process whose stdout and stderr arrive line by line.
pub struct Running {
    pub child: Child,
    pub mode: Mode,
    lines: Receiver<String>,
    stderr: Receiver<String>,
    pub seen: Vec<String>,
    /// The stderr lines read so far (by `expect_log`).
    seen_log: Vec<String>,
}

/// Sends each line `from` gives (invalid UTF-8 replaced) to a channel, on a thread of its
/// own, reading to the end so that the writer never blocks on a full pipe.
fn line_channel(from: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut from = BufReader::new(from);
        let mut line = Vec::new();
        while matches!(from.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            // The receiver may be gone; the pipe is still drained.
            let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
            line.clear();
        }
    });
    rx
}

pub fn start(mut cmd: Command, mode: Mode) -> Running {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn meshinit");
    let lines = line_channel(child.stdout.take().expect("stdout"));
    let stderr = line_channel(child.stderr.take().expect("stderr"));
    Running {
        child,
        mode,
        lines,
        stderr,
        seen: Vec::new(),
        seen_log: Vec::new(),
    }
}

/// Waits up to `limit` for a line from `lines` that satisfies `want`, keeping every line
/// read in `seen`; `None` when none came in time.
fn await_line(
    lines: &Receiver<String>,
    seen: &mut Vec<String>,
    want: impl Fn(&str) -> bool,
    limit: Duration,
) -> Option<String> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).ok()?;
        seen.push(line.clone());
        if want(&line) {
            return Some(line);
        }
    }
}

impl Running {
    /// Waits up to `limit` for a stdout line that satisfies `want`; returns it.
    pub fn expect_line(&mut self, want: impl Fn(&str) -> bool, limit: Duration) -> String {
        match await_line(&self.lines, &mut self.seen, want, limit) {
            Some(line) => line,
            None => {
                let _ = self.child.kill();
                panic!("no expected line within {limit:?}; saw {:?}", self.seen);
            }
        }
    }

    /// Waits up to `limit` for a stderr (log) line that satisfies `want`; returns it.
    pub fn expect_log(&mut self, want: impl Fn(&str) -> bool, limit: Duration) -> String {
        match await_line(&self.stderr, &mut self.seen_log, want, limit) {
            Some(line) => line,
            None => {
                let _ = self.child.kill();
                panic!(
                    "no expected log line within {limit:?}; saw {:?}",
                    self.seen_log
                );
            }
        }
    }

    /// The host pid of meshinit itself (for Pid1, the child of unshare).
    pub fn meshinit_pid(&self) -> i32 {
        let own = self.child.id() as i32;
        match self.mode {
            Mode::Plain => own,
            Mode::Pid1 => {
                let path = format!("/proc/{own}/task/{own}/children");
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline {
                    if let Ok(text) = std::fs::read_to_string(&path) {
                        if let Some(pid) = text.split_whitespace().next() {
                            return pid.parse().expect("pid");
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                panic!("unshare {own} started no child within 5 s");
            }
        }
    }

    pub fn signal(&self, sig: i32) {
        let pid = self.meshinit_pid();
        // SAFETY: kill has no memory arguments; the pid is one this test started.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
    }

    /// Waits up to `limit` for the exit; kills and fails when it does not come.
    pub fn finish(mut self, limit: Duration) -> Output {
        self.finish_mut(limit)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `limit` for the process to exit by itself; true if it did.
    pub fn exits_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if !self.alive() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        !self.alive()
    }

    /// Every stdout line so far (waiting up to `linger` for more).
    pub fn lines_so_far(&mut self, linger: Duration) -> Vec<String> {
        while let Ok(line) = self.lines.recv_timeout(linger) {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    fn finish_mut(&mut self, limit: Duration) -> Output {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "did not exit within {limit:?}; stdout so far {:?}",
                    self.seen
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let mut stdout = self.seen.join("\n");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            if !stdout.is_empty() {
                stdout.push('\n');
            }
            stdout.push_str(&line);
        }
        let mut stderr: String = self.seen_log.iter().map(|l| format!("{l}\n")).collect();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            stderr.push_str(&line);
            stderr.push('\n');
        }
        Output {
            code: status.code(),
            signal: std::os::unix::process::ExitStatusExt::signal(&status),
            stdout,
            stderr,
        }
    }
}

impl Drop for Running {
    /// Whatever a test left running ends with it: TERM, a bounded wait, then KILL.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: kill has no memory arguments; the pid is a child this test started.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs to completion within `limit`.
pub fn run(cmd: Command, mode: Mode, limit: Duration) -> Output {
    start(cmd, mode).finish(limit)
}

/// Runs meshinit with `args` in `mode` to completion within 20 s.
pub fn run_args(mode: Mode, args: &[&str]) -> Output {
    run(meshinit(mode, args), mode, Duration::from_secs(20))
}

/// Signal number by name, for the signals the tests use.
pub fn signum(name: &str) -> i32 {
    match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "TSTP" => libc::SIGTSTP,
        "URG" => libc::SIGURG,
        "WINCH" => libc::SIGWINCH,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "KILL" => libc::SIGKILL,
        "SEGV" => libc::SIGSEGV,
        "ABRT" => libc::SIGABRT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "SYS" => libc::SIGSYS,
        _ => panic!("unknown signal {name}"),
    }
}

/// The bound of the shared helpers below on one run of meshinit.
pub const RUN_LIMIT: Duration = Duration::from_secs(40);

/// meshinit with `args`, configured by `args` alone, as a plain child.
pub fn meshinit_plain(args: &[&str]) -> Command {
    meshinit_bare(Mode::Plain, args)
}

/// Runs `cmd` as a plain child to its end (bounded).
pub fn finish_plain(cmd: Command) -> Output {
    start(cmd, Mode::Plain).finish(RUN_LIMIT)
}

/// Runs meshinit with `args` alone as a plain child to its end (bounded).
pub fn run_plain(args: &[&str]) -> Output {
    finish_plain(meshinit_plain(args))
}

/// The requests (GET or POST) a fault endpoint has logged so far.
pub fn requests(endpoint: &mut Running) -> usize {
    endpoint
        .lines_so_far(Duration::from_millis(300))
        .iter()
        .filter(|l| l.starts_with("POST ") || l.starts_with("GET "))
        .count()
}

/// The POSTs a sidecar stand-in has logged so far.
pub fn posts(sidecar: &mut Running) -> usize {
    let calls = sidecar.lines_so_far(Duration::from_millis(200));
    calls.iter().filter(|l| l.starts_with("POST ")).count()
}

/// A network namespace of the test's own, when namespaces can be made (root).
pub fn root_netns(test: &str) -> Option<mesh::Netns> {
    need_pid1(test).then(mesh::Netns::new)
}

/// A wrapper that runs its command under umask 077 (what makes a file's mode follow the
/// umask show).
pub const UMASK_077: [&str; 3] = ["sh", "-c", "umask 077 && exec \"$0\" \"$@\""];

/// setpriv as the distroless nonroot user (UID 65532), without capabilities.
pub const NONROOT: [&str; 7] = [
    "setpriv",
    "--reuid=65532",
    "--regid=65532",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
];

/// strace, run as root with `-f` in front of `unshare`, so that the process it delays is
/// PID 1 of its own PID namespace, as a container's meshinit is.
pub fn delayed_in(syscall: &str, args: &[&str]) -> Command {
    // A call is delayed only where it is traced.
    let trace = format!("trace={syscall}");
    let inject = format!("inject={syscall}:delay_enter=60000000");
    let mut wrapper = vec!["strace", "-f", "-qq", "-o", "/dev/null"];
    wrapper.extend(["-e", &trace, "-e", &inject]);
    wrapper.extend(AS_PID1);
    meshinit_via(&wrapper, args)
}

/// Starts `cmd` (strace → unshare → meshinit), waits until a file whose name starts with
/// `prefix` appears in `dir` (meshinit is then held inside the delayed call), and SIGKILLs
/// meshinit there, as an OOM kill would.
pub fn killed_midway(cmd: Command, dir: &Path, prefix: &str) {
    // Pid1: the child of the test's own child (strace) is unshare.
    let mut tracer = start(cmd, Mode::Pid1);
    let deadline = Instant::now() + RUN_LIMIT;
    let hidden = || {
        std::fs::read_dir(dir)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().starts_with(prefix))
    };
    while !hidden() {
        assert!(
            Instant::now() < deadline,
            "no {prefix}* in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let unshare = tracer.meshinit_pid();
    let children = format!("/proc/{unshare}/task/{unshare}/children");
    let meshinit: i32 = std::fs::read_to_string(children)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill has no memory arguments; the pid is of a process this test started.
    assert_eq!(unsafe { libc::kill(meshinit, libc::SIGKILL) }, 0);
    // A tracee held by strace dies of its pending SIGKILL once strace lets it go, before
    // the delayed call is made.
    let _ = tracer.child.kill();
    let _ = tracer.child.wait();
    while std::fs::metadata(format!("/proc/{meshinit}")).is_ok() {
        assert!(
            Instant::now() < deadline,
            "meshinit {meshinit} outlived its SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(hidden(), "the killed attempt left its hidden file");
}

/// One word of a watcher's line (scripts/kubelet's and scripts/cluster_watch.py's): `-` is
/// empty, `\s` a space, `\n` and `\t` themselves, `\\` a backslash.
pub fn unescape(word: &str) -> String {
    if word == "-" {
        return String::new();
    }
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('s') => out.push(' '),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// What the repository's `scripts/NAME` printed when run with `args`; or why not (it could
/// not run, or failed: its stderr).
pub fn script_output(name: &str, args: &[&str]) -> Result<String, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name);
    let out = Command::new(&script)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/{name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The paths of `names`, as scripts/peers prints them after building each (the first time),
/// in the order asked; or why not.
pub fn built_peers(names: &[&str]) -> Result<Vec<PathBuf>, String> {
    let text = script_output("peers", names)?;
    names
        .iter()
        .map(|name| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .map(PathBuf::from)
                .ok_or_else(|| format!("scripts/peers printed no {name}: {text}"))
        })
        .collect()
}

/// What a panic said (its message), for a runner that reports a scenario's failure itself.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// The Kyverno CLI, built (the first time) by scripts/peers; its tests are run only by
/// scripts/kyverno, so a failed build is a failure there.
pub fn kyverno() -> &'static Path {
    static KYVERNO: OnceLock<PathBuf> = OnceLock::new();
    KYVERNO.get_or_init(|| match built_peers(&["kyverno"]) {
        Ok(mut paths) => paths.remove(0),
        Err(why) => panic!("{why}"),
    })
}

/// The days from 1970-01-01 to the civil date `y`-`m`-`d` (Howard Hinnant's algorithm), for
/// the times in logs and API objects, which the tests read without a date library.
pub fn days_since_epoch(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}
