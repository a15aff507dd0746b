//! The pods' parts that the kubelet's tests and the cluster's share: the images (imported
//! without a registry by scripts/kubelet or scripts/cluster) and containers in YAML at a pod
//! spec's indentation. On the kubelet, which has no control plane, istio-proxy is declared by
//! hand as Istio's injector writes it, with the tests' xDS server in its container; on the
//! cluster, istiod injects the real one (scripts/cluster istiod).

use std::path::Path;

use super::istio::Peers;

/// The task's image: busybox, with meshinit at /usr/local/bin/meshinit as `COPY --from`
/// puts it, the entrypoint `meshinit --`.
pub const TASK_IMAGE: &str = "localhost/meshinit-test/task:1";
/// The hand-declared istio-proxy's image: the real pilot-agent and Envoy, the tests' xDS
/// server, busybox's sh.
pub const HAND_DECLARED_PROXY_IMAGE: &str = "localhost/meshinit-test/hand-declared-istio-proxy:1";
/// The release image's layout: `/meshinit` alone, nothing else (FROM scratch).
pub const MESHINIT_IMAGE: &str = "localhost/meshinit-test/meshinit:1";
/// A task's image without meshinit: busybox only.
pub const PLAIN_IMAGE: &str = "localhost/meshinit-test/plain:1";

/// Builds the task's images and hands each to `import` (its name, its root, its entrypoint).
pub fn images(import: &dyn Fn(&str, &Path, &str)) {
    let dir = super::tempdir("pod-images");
    // The task's image: busybox, and meshinit where a Dockerfile's COPY --from puts it.
    let task = dir.join("task-root");
    super::images::busybox_root(&task, &["sh", "sleep", "echo", "cat", "nc", "head"]);
    std::fs::create_dir_all(task.join("usr/local/bin")).unwrap();
    std::fs::copy(super::bin(), task.join("usr/local/bin/meshinit")).unwrap();
    import(TASK_IMAGE, &task, r#"["/usr/local/bin/meshinit", "--"]"#);
    // The release image's layout, and an image without meshinit (meshinit install).
    let alone = dir.join("meshinit-root");
    std::fs::create_dir_all(&alone).unwrap();
    std::fs::copy(super::bin(), alone.join("meshinit")).unwrap();
    import(MESHINIT_IMAGE, &alone, r#"["/meshinit"]"#);
    let plain = dir.join("plain-root");
    super::images::busybox_root(&plain, &["sh", "echo", "sleep"]);
    import(PLAIN_IMAGE, &plain, r#"["/bin/sh"]"#);
    let _ = std::fs::remove_dir_all(dir);
}

/// Builds the hand-declared istio-proxy's image (as the podman pod test builds Istio's, with
/// the tests' xDS server and a shell to start it beside the agent: the pod's control plane;
/// and Envoy's own configuration for Envoy alone) and hands it to `import`.
pub fn hand_declared_proxy_image(envoy: &Path, peers: &Peers, import: &dyn Fn(&str, &Path, &str)) {
    let dir = super::tempdir("proxy-image");
    let proxy = super::images::istio_proxy_root(&dir, envoy, peers);
    super::images::busybox_root(&proxy, &["sh"]);
    std::fs::copy(&peers.xds, proxy.join("usr/local/bin/xds")).unwrap();
    std::fs::create_dir_all(proxy.join("etc/envoy")).unwrap();
    std::fs::write(proxy.join("etc/envoy/envoy.yaml"), ENVOY_ALONE).unwrap();
    import(
        HAND_DECLARED_PROXY_IMAGE,
        &proxy,
        r#"["/usr/local/bin/pilot-agent"]"#,
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Envoy alone (the sidecar of Envoy-only meshes), its admin API on 15000.
const ENVOY_ALONE: &str =
    "admin:\n  address:\n    socket_address: {address: 127.0.0.1, port_value: 15000}\n\
static_resources: {}\n";

/// istio-proxy declared by hand as Istio's injector writes it (the variables of its template
/// that matter here), with the tests' xDS server started beside the agent in the same
/// container: it is the pod's control plane, reachable on the pod's loopback as istiod would
/// be over the network. `native`: an init container with restartPolicy Always and the startup
/// probe and preStop hook Istio gives a native sidecar.
pub fn hand_declared_istio_proxy(native: bool, drain: &str) -> String {
    let native_part = if native {
        "    restartPolicy: Always\n\
         \x20   startupProbe:\n\
         \x20     httpGet: {path: /healthz/ready, port: 15021}\n\
         \x20     initialDelaySeconds: 0\n\
         \x20     periodSeconds: 1\n\
         \x20     timeoutSeconds: 3\n\
         \x20     failureThreshold: 600\n\
         \x20   lifecycle:\n\
         \x20     preStop:\n\
         \x20       exec:\n\
         \x20         command: [pilot-agent, request, --debug-port=15020, POST, drain]\n"
    } else {
        ""
    };
    format!(
        "  - name: istio-proxy\n\
         \x20   image: {HAND_DECLARED_PROXY_IMAGE}\n\
         \x20   imagePullPolicy: Never\n\
         {native_part}\
         \x20   command: [/bin/sh, -c, 'xds -addr 127.0.0.1:15010 & exec pilot-agent proxy sidecar']\n\
         \x20   readinessProbe:\n\
         \x20     httpGet: {{path: /healthz/ready, port: 15021}}\n\
         \x20     periodSeconds: 15\n\
         \x20     timeoutSeconds: 3\n\
         \x20     failureThreshold: 4\n\
         \x20   env:\n\
         \x20   - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}\n\
         \x20   - {{name: POD_NAMESPACE, value: default}}\n\
         \x20   - {{name: INSTANCE_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}\n\
         \x20   - {{name: CLOUD_PLATFORM, value: none}}\n\
         \x20   - {{name: FILE_MOUNTED_CERTS, value: \"true\"}}\n\
         \x20   - name: PROXY_CONFIG\n\
         \x20     value: '{{\"discoveryAddress\":\"127.0.0.1:15010\",\"controlPlaneAuthPolicy\":\"NONE\",\
         \"terminationDrainDuration\":\"{drain}\"}}'\n"
    )
}

/// A container of `image` running `command` (its entrypoint replaced).
pub fn container(name: &str, image: &str, command: &[&str]) -> String {
    let command: Vec<String> = command.iter().map(|a| yaml_string(a)).collect();
    format!(
        "  - name: {name}\n\
         \x20   image: {image}\n\
         \x20   imagePullPolicy: Never\n\
         \x20   command: [{}]\n",
        command.join(", ")
    )
}

pub fn yaml_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A stand-in for Linkerd's proxy (named so: no Linkerd proxy is available here), serving
/// its admin port's /ready and /shutdown on 4191 with busybox nc, one request at a time.
pub const LINKERD_STAND_IN: &str = "while :; do \
    req=$(printf 'HTTP/1.0 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n' | nc -l -p 4191 | head -n 1); \
    case $req in 'POST /shutdown'*) echo 'stand-in: shutdown'; exit 0;; esac; \
  done";

/// What a private node (scripts/kubelet's or scripts/cluster's) and its pods' images need
/// on the host.
pub const NODE_TOOLS: &[&str] = &[
    "containerd",
    "ctr",
    "runc",
    "curl",
    "catatonit",
    "busybox",
    "ldd",
    "python3",
];
