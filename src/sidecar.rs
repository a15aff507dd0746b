//! Which sidecar there is and how to talk to it: the mesh presets and the resolved plan of
//! endpoints that the wait and the quit follow.

/// The meshes meshinit knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mesh {
    Istio,
    Envoy,
    Linkerd,
    None,
    /// Whichever known sidecar answers; none if none does within the sidecar grace.
    Auto,
}

pub const MESH_FORM: &str = "istio, envoy, linkerd, none or auto";

impl Mesh {
    pub fn parse(text: &str) -> Option<Mesh> {
        Some(match text {
            "istio" => Mesh::Istio,
            "envoy" => Mesh::Envoy,
            "linkerd" => Mesh::Linkerd,
            "none" => Mesh::None,
            "auto" => Mesh::Auto,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Mesh::Istio => "istio",
            Mesh::Envoy => "envoy",
            Mesh::Linkerd => "linkerd",
            Mesh::None => "none",
            Mesh::Auto => "auto",
        }
    }
}

/// What to ask, in order, to learn that the sidecar is ready and to make it quit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every one must answer 2xx once before the task starts.
    pub ready: Vec<String>,
    /// POSTed in order until one answers 2xx.
    pub quit: Vec<String>,
    /// POSTed before `quit`, every one, whatever they answer (scuttle's GENERIC_QUIT_ENDPOINTS).
    pub notify: Vec<String>,
    /// Executables the /proc fallback may send SIGTERM to, in order of preference.
    pub executables: Vec<String>,
    /// Linkerd refuses /shutdown unless the pod allows it; say how when it does.
    pub linkerd: bool,
}

impl Plan {
    /// Nothing to ask and nothing to signal: no sidecar to deal with.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
            && self.quit.is_empty()
            && self.notify.is_empty()
            && self.executables.is_empty()
    }
}

/// The endpoints of a mesh's sidecar at its standard loopback ports.
pub fn preset(mesh: Mesh) -> Plan {
    let urls = |list: &[&str]| list.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>();
    match mesh {
        Mesh::Istio => Plan {
            ready: urls(&["http://127.0.0.1:15021/healthz/ready"]),
            // pilot-agent first: quitting Envoy alone lets older pilot-agents restart it.
            quit: urls(&[
                "http://127.0.0.1:15020/quitquitquit",
                "http://127.0.0.1:15000/quitquitquit",
            ]),
            executables: urls(&["/usr/local/bin/pilot-agent", "/usr/local/bin/envoy"]),
            ..Plan::default()
        },
        Mesh::Envoy => Plan {
            ready: urls(&["http://127.0.0.1:15000/ready"]),
            quit: urls(&["http://127.0.0.1:15000/quitquitquit"]),
            executables: urls(&["/usr/local/bin/envoy"]),
            ..Plan::default()
        },
        Mesh::Linkerd => Plan {
            ready: urls(&["http://127.0.0.1:4191/ready"]),
            quit: urls(&["http://127.0.0.1:4191/shutdown"]),
            linkerd: true,
            ..Plan::default()
        },
        Mesh::None | Mesh::Auto => Plan::default(),
    }
}

/// The meshes `auto` looks for, in order of preference when several answer at once
/// (Istio's pod also has an Envoy admin port; Istio must win there).
pub const AUTO_CANDIDATES: [Mesh; 3] = [Mesh::Istio, Mesh::Linkerd, Mesh::Envoy];

pub const URL_FORM: &str = "a plain http URL such as http://127.0.0.1:15000/ready";

/// Checks that `url` is an absolute plain-http URL with a host.
pub fn valid_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<ureq::http::Uri>() else {
        return false;
    };
    let port_ok = uri
        .authority()
        .is_some_and(|a| match a.as_str().rsplit_once(':') {
            Some((_, port)) if !port.ends_with(']') => port.parse::<u16>().is_ok(),
            _ => true,
        });
    uri.scheme_str() == Some("http") && uri.host().is_some_and(|h| !h.is_empty()) && port_ok
}

/// `url` fit for a log line: credentials in it (`http://user:secret@host/`) are replaced,
/// since the URL may come from a variable that is not meshinit's own.
pub fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// Whether `url` names this machine: a loopback IP literal or `localhost`.
pub fn is_loopback(url: &str) -> bool {
    let Ok(uri) = url.parse::<ureq::http::Uri>() else {
        return false;
    };
    match uri.host() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(valid_url("http://127.0.0.1:15000/ready"));
        assert!(valid_url("http://localhost:4191/ready"));
        assert!(valid_url("http://[::1]:15000/quitquitquit"));
        for bad in [
            "https://127.0.0.1:15000/ready",
            "127.0.0.1:15000/ready",
            "http://",
            "http:///ready",
            "ftp://127.0.0.1/",
            "http://127.0.0.1:port/",
            "",
            "http://a b/",
        ] {
            assert!(!valid_url(bad), "{bad:?}");
        }
        assert!(is_loopback("http://127.0.0.1:15000"));
        assert!(is_loopback("http://localhost:15000"));
        assert!(is_loopback("http://[::1]:15000"));
        assert!(!is_loopback("http://10.0.0.1:15000"));
        assert!(!is_loopback("http://envoy:15000"));
        assert!(!is_loopback("http://127.0.0.:15000"));
        assert!(!is_loopback("http://127.evil.example:15000"));
        assert_eq!(
            shown("http://u:pw@127.0.0.1:1/x@y"),
            "http://***@127.0.0.1:1/x@y"
        );
        assert_eq!(
            shown("http://127.0.0.1:1/ready"),
            "http://127.0.0.1:1/ready"
        );
        assert_eq!(shown("nonsense"), "nonsense");
    }

    #[test]
    fn every_preset_talks_only_to_loopback() {
        for mesh in [
            Mesh::Istio,
            Mesh::Envoy,
            Mesh::Linkerd,
            Mesh::None,
            Mesh::Auto,
        ] {
            let plan = preset(mesh);
            for url in plan.ready.iter().chain(&plan.quit) {
                assert!(is_loopback(url), "{url}");
            }
        }
    }

    #[test]
    fn presets() {
        assert_eq!(preset(Mesh::Istio).quit.len(), 2);
        assert!(preset(Mesh::None).is_empty());
        for name in ["istio", "envoy", "linkerd", "none", "auto"] {
            assert_eq!(Mesh::parse(name).map(Mesh::name), Some(name));
        }
        assert_eq!(Mesh::parse("consul"), None);
    }
}
