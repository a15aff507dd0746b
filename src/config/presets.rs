//! The endpoints of each mesh's sidecar at its standard loopback ports. Only `plan` reads
//! these.

use super::settings::Mesh;
use crate::sidecar::endpoints::{Endpoints, QuitUrl};

/// The meshes `auto` looks for, in order of preference when several answer at once
/// (Istio's pod also has an Envoy admin port; Istio must win there).
pub const AUTO_CANDIDATES: [Mesh; 3] = [Mesh::Istio, Mesh::Linkerd, Mesh::Envoy];

/// The /proc fallback's executables in an Istio pod, pilot-agent first.
pub const ISTIO_EXECUTABLES: [&str; 2] = ["/usr/local/bin/pilot-agent", "/usr/local/bin/envoy"];

const LINKERD_REFUSAL: &str = "Linkerd's shutdown endpoint needs the pod annotation \
                               config.linkerd.io/proxy-admin-shutdown: enabled";

/// Envoy's admin listens on 127.0.0.1 or, in IPv6-only pods, on [::1] only (Istio binds it
/// to one of them): `localhost` is both, tried in that order, without a lookup.
pub fn preset(mesh: Mesh) -> Endpoints {
    let owned = |list: &[&str]| list.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>();
    let quit = |list: &[&str], on_refusal| {
        list.iter()
            .map(|u| QuitUrl {
                url: (*u).to_owned(),
                on_refusal,
            })
            .collect::<Vec<_>>()
    };
    let endpoints = Endpoints {
        mesh: mesh.name(),
        ..Endpoints::default()
    };
    match mesh {
        Mesh::Istio => Endpoints {
            // pilot-agent's own readiness, which is Envoy LIVE with its workers started
            // and its first configuration taken. Not 15021: that is a listener of Envoy's
            // routing to this same check, closed until Envoy has its configuration, so a
            // search asking it would meet Envoy's admin port (15000) answering first and
            // take the pod for plain Envoy (seen with the real pilot-agent); and once 15020
            // is ready, 15021 is open and answers the same.
            ready: owned(&["http://127.0.0.1:15020/healthz/ready"]),
            // pilot-agent first: quitting Envoy alone lets older pilot-agents restart it.
            quit: quit(
                &[
                    "http://127.0.0.1:15020/quitquitquit",
                    "http://localhost:15000/quitquitquit",
                ],
                None,
            ),
            executables: owned(&ISTIO_EXECUTABLES),
            ..endpoints
        },
        Mesh::Envoy => Endpoints {
            ready: owned(&["http://localhost:15000/ready"]),
            quit: quit(&["http://localhost:15000/quitquitquit"], None),
            executables: owned(&["/usr/local/bin/envoy"]),
            ..endpoints
        },
        Mesh::Linkerd => Endpoints {
            ready: owned(&["http://127.0.0.1:4191/ready"]),
            quit: quit(&["http://127.0.0.1:4191/shutdown"], Some(LINKERD_REFUSAL)),
            ..endpoints
        },
        Mesh::None | Mesh::Auto => endpoints,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::url;

    #[test]
    fn every_preset_talks_only_to_loopback() {
        for mesh in [
            Mesh::Istio,
            Mesh::Envoy,
            Mesh::Linkerd,
            Mesh::None,
            Mesh::Auto,
        ] {
            let e = preset(mesh);
            for u in e.ready.iter().chain(e.quit.iter().map(|q| &q.url)) {
                assert!(url::is_loopback(u), "{u}");
            }
        }
        assert!(preset(Mesh::None).is_empty());
    }
}
