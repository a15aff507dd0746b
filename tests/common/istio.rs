//! Istio's real sidecar for the tests: pilot-agent (built from the Go module proxy by
//! scripts/peers) started as the injector starts it, running the real Envoy, each agent in a
//! network namespace and a PID namespace of the test's own; and the tests' xDS server
//! (tests/xds) whose empty configuration makes the agent call its Envoy ready.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::mesh::{envoy_in_netns, Netns};
use super::{in_ci, meshinit_via, start, tempdir, Mode, Running};

/// The programs scripts/peers builds that these tests run.
pub struct Peers {
    pub pilot_agent: PathBuf,
    /// Istio's Envoy bootstrap template from the same module (ISTIO_BOOTSTRAP).
    pub bootstrap: PathBuf,
    pub xds: PathBuf,
}

/// pilot-agent and the xDS server, or `None` (the reason printed) where they cannot be
/// built; under CI=true that is a failure.
pub fn peers(test: &str) -> Option<&'static Peers> {
    static PEERS: OnceLock<Result<Peers, String>> = OnceLock::new();
    let found = PEERS.get_or_init(|| {
        let [pilot_agent, xds]: [PathBuf; 2] = super::built_peers(&["pilot-agent", "xds"])?
            .try_into()
            .map_err(|_| "scripts/peers: two paths asked for".to_owned())?;
        Ok(Peers {
            bootstrap: pilot_agent.with_file_name("envoy_bootstrap_tmpl.json"),
            pilot_agent,
            xds,
        })
    });
    match found {
        Ok(peers) => Some(peers),
        Err(why) if in_ci() => {
            panic!("{test}: no pilot-agent ({why}), and CI=true forbids skipping")
        }
        Err(why) => {
            eprintln!("SKIP {test}: no pilot-agent: {why}");
            None
        }
    }
}

/// Everything a real-Istio test needs: Envoy, the peers, and a network namespace.
pub fn istio_in_netns(test: &str) -> Option<(PathBuf, &'static Peers, Netns)> {
    let peers = peers(test)?;
    let (envoy, ns) = envoy_in_netns(test)?;
    Some((envoy, peers, ns))
}

/// The PID 1 of the agent's PID namespace (bash): it puts the agent and Envoy where
/// Istio's image has them (/usr/local/bin, so that /proc shows those paths, in this mount
/// namespace only), starts the agent, and when the agent has exited says with what code and
/// whether anything (its Envoy) is left, looking for up to 2 s.
const HOLDER: &str = r#"
set -eu
mount -t tmpfs tmpfs /usr/local/bin
: > /usr/local/bin/pilot-agent
: > /usr/local/bin/envoy
mount --bind "$PEER_PILOT_AGENT" /usr/local/bin/pilot-agent
mount --bind "$PEER_ENVOY" /usr/local/bin/envoy
cd "$PEER_DIR"
unset PEER_PILOT_AGENT PEER_ENVOY PEER_DIR
/usr/local/bin/pilot-agent proxy sidecar >agent.log 2>&1 &
agent=$!
echo "agent started $agent"
set +e
wait "$agent"
echo "agent exited $?"
for _ in $(seq 100); do
  left=
  for p in /proc/[0-9]*; do
    [ "$p" = /proc/1 ] && continue
    read -r _ comm state _ 2>/dev/null < "$p/stat" || continue
    [ "$state" = Z ] || left="$left ${p#/proc/}$comm"
  done
  [ -z "$left" ] && break
  sleep 0.02
done
echo "left:${left:- nothing}"
"#;

/// A real pilot-agent with its Envoy, in `ns` and a PID namespace of its own.
pub struct Agent {
    pub holder: Running,
    pub dir: PathBuf,
    ns: String,
}

impl Agent {
    /// Starts the agent (pointed at the xDS server on 127.0.0.1:15010, which may come
    /// later) and waits until its status port answers; `drain` is
    /// terminationDrainDuration, what a SIGTERM costs.
    pub fn start(envoy: &Path, peers: &Peers, ns: &Netns, drain: &str) -> Agent {
        let dir = tempdir("istio-agent");
        let proxy_config = format!(
            "{{\"discoveryAddress\":\"127.0.0.1:15010\",\"controlPlaneAuthPolicy\":\"NONE\",\
             \"binaryPath\":\"/usr/local/bin/envoy\",\"terminationDrainDuration\":\"{drain}\"}}"
        );
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name])
            .args(super::AS_PID1)
            .args(["bash", "-c", HOLDER]);
        super::clean_env(&mut cmd);
        cmd.env("PEER_PILOT_AGENT", &peers.pilot_agent)
            .env("PEER_ENVOY", envoy)
            .env("PEER_DIR", &dir)
            // As Istio's injection template and istio-start.sh set them.
            .env("POD_NAME", "job-7f9c")
            .env("POD_NAMESPACE", "default")
            .env("INSTANCE_IP", "127.0.0.1")
            .env("CLOUD_PLATFORM", "none")
            .env("FILE_MOUNTED_CERTS", "true")
            .env("ISTIO_BOOTSTRAP", &peers.bootstrap)
            .env("PROXY_CONFIG", proxy_config);
        let mut holder = start(cmd, Mode::Pid1);
        holder.expect_line(|l| l.starts_with("agent started"), Duration::from_secs(20));
        let agent = Agent {
            holder,
            dir,
            ns: ns.name.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent.status(15020, "/healthz/ready").is_none() {
            assert!(
                Instant::now() < deadline,
                "pilot-agent's 15020 did not answer within 20 s:\n{}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    /// The status of one GET to 127.0.0.1:`port` inside the agent's network namespace.
    pub fn status(&self, port: u16, path: &str) -> Option<u16> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "curl", "-s", "-o", "/dev/null"])
            .args(["-w", "%{http_code}", "--max-time", "2"])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .ok()
            .filter(|code| *code != 0)
    }

    /// The agent's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    /// Waits up to `limit` for the agent to exit; its exit code and what was left in its
    /// PID namespace 2 s later at most (" nothing", or the pids and names still running).
    pub fn ended(&mut self, limit: Duration) -> (i32, String) {
        let line = self
            .holder
            .expect_line(|l| l.starts_with("agent exited"), limit);
        let code = line["agent exited ".len()..].parse().expect("exit code");
        let left = self
            .holder
            .expect_line(|l| l.starts_with("left:"), Duration::from_secs(5));
        (code, left["left:".len()..].to_owned())
    }

    /// Asserts that the agent exited by itself with 0 within `limit`, leaving nothing but
    /// (now and then) its Envoy; the time it took. The real pilot-agent sometimes exits
    /// before its kill reaches Envoy (about 1 run in 15 here; its log ends "Aborting
    /// proxy" either way): in a pod the container ends with pilot-agent, its PID 1, and
    /// Envoy with it, so that is Istio's race and not a sidecar left running.
    pub fn expect_exit(&mut self, limit: Duration) -> Duration {
        let began = Instant::now();
        let (code, left) = self.ended(limit);
        let took = began.elapsed();
        assert_eq!(code, 0, "pilot-agent's exit code; its log:\n{}", self.log());
        if left != " nothing" {
            let others: Vec<&str> = left
                .split_whitespace()
                .filter(|p| !p.ends_with("(envoy)"))
                .collect();
            assert!(
                others.is_empty(),
                "left running after pilot-agent exited: {left}"
            );
            eprintln!("note: pilot-agent exited before its Envoy did ({left})");
        }
        took
    }

    /// Whether the agent is still running (it has not said it exited).
    pub fn running(&mut self) -> bool {
        !self
            .holder
            .lines_so_far(Duration::ZERO)
            .iter()
            .any(|l| l.starts_with("agent exited"))
            && self.holder.alive()
    }

    /// meshinit with `args` as a container beside the agent's in a pod with
    /// `shareProcessNamespace: true`: in the agent's PID, mount and network namespaces.
    pub fn meshinit_beside(&self, args: &[&str]) -> Command {
        let pid = self.holder.meshinit_pid().to_string();
        meshinit_via(&["nsenter", "-t", &pid, "-p", "-m", "-n"], args)
    }
}

/// The tests' xDS server on 127.0.0.1:15010 in `ns`, listening once this returns.
pub fn xds(peers: &Peers, ns: &Netns) -> Running {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name])
        .arg(&peers.xds)
        .args(["-addr", "127.0.0.1:15010"]);
    let mut running = start(cmd, Mode::Plain);
    running.expect_line(|l| l.starts_with("xds listening"), Duration::from_secs(20));
    running
}

/// meshinit with `args` as PID 1 of a container of its own in the pod `ns` (the agent's
/// network namespace, a PID namespace of its own).
pub fn meshinit_in_pod(ns: &Netns, args: &[&str]) -> Command {
    let mut wrapper = vec!["ip", "netns", "exec", ns.name.as_str()];
    wrapper.extend_from_slice(super::AS_PID1);
    meshinit_via(&wrapper, args)
}
