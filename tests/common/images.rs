//! Root filesystems for the tests' container images, shared by the engines' tests (which
//! import them into podman) and the kubelet's (which import them into its containerd).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::istio::Peers;

/// A minimal root: Debian's static busybox at /bin/busybox with `applets` linked to it.
pub fn busybox_root(root: &Path, applets: &[&str]) {
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let found = Command::new("sh")
        .args(["-c", "command -v busybox"])
        .output()
        .unwrap();
    let busybox = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    assert!(
        !busybox.is_empty(),
        "busybox is not on PATH (busybox-static)"
    );
    std::fs::copy(&busybox, root.join("bin/busybox")).unwrap();
    for applet in applets {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
}

/// Istio's sidecar as istio/proxyv2 lays it out: the real pilot-agent and Envoy in
/// /usr/local/bin, the C libraries Envoy links, and the bootstrap template where
/// pilot-agent looks for it by default (./var/lib/istio/envoy from /). Returns the root.
pub fn istio_proxy_root(dir: &Path, envoy: &Path, peers: &Peers) -> PathBuf {
    let root = dir.join("istio-proxy-root");
    for sub in [
        "usr/local/bin",
        "var/lib/istio/envoy",
        "etc/istio/proxy",
        "tmp",
    ] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy(envoy, root.join("usr/local/bin/envoy")).unwrap();
    std::fs::copy(&peers.pilot_agent, root.join("usr/local/bin/pilot-agent")).unwrap();
    std::fs::copy(
        &peers.bootstrap,
        root.join("var/lib/istio/envoy/envoy_bootstrap_tmpl.json"),
    )
    .unwrap();
    let ldd = Command::new("ldd").arg(envoy).output().unwrap();
    assert!(ldd.status.success(), "ldd {}", envoy.display());
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let target = root.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(lib, &target).unwrap_or_else(|e| panic!("{lib}: {e}"));
    }
    root
}
