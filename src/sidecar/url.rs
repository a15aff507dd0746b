//! Sidecar URLs: which are accepted, which name this machine, and how they are shown in a
//! log line.

pub const FORM: &str = "a plain http URL such as http://127.0.0.1:15000/ready";
/// The same, for the URLs that are POSTed at the end.
pub const QUIT_FORM: &str = "a plain http URL such as http://127.0.0.1:15020/quitquitquit";

/// Checks that `url` is an absolute plain-http URL with a host.
pub fn valid(url: &str) -> bool {
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

/// `url` as `shown`, without its query or fragment (which may carry a token): for a URL
/// that is named but never asked.
pub fn shown_without_query(url: &str) -> String {
    let shown = shown(url);
    match shown.find(['?', '#']) {
        Some(at) => format!("{}?...", &shown[..at]),
        None => shown,
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
        assert!(valid("http://127.0.0.1:15000/ready"));
        assert!(valid("http://localhost:4191/ready"));
        assert!(valid("http://[::1]:15000/quitquitquit"));
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
            assert!(!valid(bad), "{bad:?}");
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
}
