//! The sidecar client: one GET or POST within one deadline that covers the whole request,
//! each phase also capped (ureq's default resolver would start a thread for a global
//! timeout; ours does not). No proxy from the environment (a pod's HTTP_PROXY must not
//! capture loopback admin calls), no redirects, no connection pool.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{time, NextTimeout, TcpConnector};

use super::lookup;

const CONNECT: Duration = Duration::from_millis(250);
const SEND: Duration = Duration::from_millis(500);
const RECEIVE: Duration = Duration::from_millis(1_000);

/// What an endpoint answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// An HTTP status line arrived.
    Status(u16),
    /// Nothing listens there (connection refused).
    Refused,
    /// Anything else: a timeout, a closed connection, garbage; the text says which.
    Failed(String),
}

impl Reply {
    pub fn is_success(&self) -> bool {
        matches!(self, Reply::Status(code) if (200..300).contains(code))
    }

    /// The HTTP status, when one came.
    pub fn status(&self) -> Option<u16> {
        match self {
            Reply::Status(code) => Some(*code),
            _ => None,
        }
    }

    /// What went wrong when no status came, for a log line's `error` field.
    pub fn error(&self) -> Option<String> {
        self.status().is_none().then(|| self.to_string())
    }

    /// A definite no (4xx): the same request will get the same answer.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Reply::Status(code) if (400..500).contains(code))
    }

    /// Whether something accepted the connection and spoke (any status).
    pub fn answered(&self) -> bool {
        matches!(self, Reply::Status(_))
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Status(code) => write!(f, "HTTP {code}"),
            Reply::Refused => f.write_str("connection refused"),
            Reply::Failed(why) => f.write_str(why),
        }
    }
}

pub struct Client {
    agent: ureq::Agent,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    pub fn new() -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .max_response_header_size(8 * 1024)
            .input_buffer_size(16 * 1024)
            .output_buffer_size(4 * 1024)
            .user_agent("meshinit")
            .build();
        // Plain TCP and a resolver of our own: ureq's defaults also carry the chain for
        // TLS and proxies and a thread-based lookup, none of which meshinit uses.
        Client {
            agent: ureq::Agent::with_parts(config, TcpConnector::default(), PlainResolver),
        }
    }

    /// GET `url`, taking at most `budget`.
    pub fn get(&self, url: &str, budget: Duration) -> Reply {
        self.call(ureq::http::Method::GET, url, budget)
    }

    /// POST an empty body to `url`, taking at most `budget`.
    pub fn post(&self, url: &str, budget: Duration) -> Reply {
        self.call(ureq::http::Method::POST, url, budget)
    }

    /// One request within `budget` from start to end: the phases' caps alone would add up
    /// to 2.75 times it. Through the http crate's request, so that GET and POST share one
    /// code path (ureq's own builders are two types).
    fn call(&self, method: ureq::http::Method, url: &str, budget: Duration) -> Reply {
        let post = method == ureq::http::Method::POST;
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        // An empty POST says so (as ureq's send_empty did), not as an empty chunked body.
        if post {
            builder = builder.header("content-length", "0");
        }
        let request = match builder.body(()) {
            Ok(request) => request,
            Err(err) => return Reply::Failed(err.to_string()),
        };
        let budget = budget.max(Duration::from_millis(1));
        let cap = |phase: Duration| Some(phase.min(budget));
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(Some(budget))
            .timeout_resolve(cap(RECEIVE))
            .timeout_connect(cap(CONNECT))
            .timeout_send_request(cap(SEND))
            .timeout_recv_response(cap(RECEIVE))
            .timeout_recv_body(cap(RECEIVE))
            .build();
        reply(self.agent.run(request))
    }
}

/// IP literals as they are; `localhost` as 127.0.0.1 then ::1 without asking anyone (a
/// sidecar may listen on either, and the connector tries them in turn); other names through
/// the system resolver, within the request's budget (see `lookup`).
#[derive(Debug)]
struct PlainResolver;

impl Resolver for PlainResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let port = uri.port_u16().unwrap_or(80);
        let mut found = self.empty();
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            found.push(SocketAddr::new(ip, port));
        } else if host.eq_ignore_ascii_case("localhost") {
            found.push(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
            found.push(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port));
        } else {
            let limit = match timeout.after {
                time::Duration::Exact(limit) => limit,
                time::Duration::NotHappening => RECEIVE,
            };
            for addr in lookup::lookup(host, port, limit)? {
                found.push(addr);
            }
        }
        if found.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(found)
    }
}

fn reply(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    match result {
        Ok(response) => Reply::Status(response.status().as_u16()),
        Err(ureq::Error::StatusCode(code)) => Reply::Status(code),
        // Refused, or no route to that loopback address (no ::1 where IPv6 is off): nothing
        // can be listening there.
        Err(ureq::Error::Io(err))
            if matches!(
                err.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::HostUnreachable
            ) =>
        {
            Reply::Refused
        }
        Err(ureq::Error::Timeout(phase)) => Reply::Failed(format!("timed out ({phase})")),
        Err(err) => Reply::Failed(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// What `request` sends, as the endpoint reads it, and what the client makes of a 200.
    fn sent(request: impl FnOnce(&Client, &str) -> Reply) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "http://{}/quitquitquit",
            listener.local_addr().expect("addr")
        );
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            conn.set_read_timeout(Some(Duration::from_secs(2))).ok();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            String::from_utf8_lossy(&head).to_lowercase()
        });
        let reply = request(&Client::new(), &url);
        assert_eq!(reply, Reply::Status(200));
        server.join().expect("server")
    }

    #[test]
    fn an_empty_post_says_its_length_and_a_get_sends_no_body() {
        let post = sent(|c, url| c.post(url, Duration::from_secs(2)));
        assert!(
            post.starts_with("post /quitquitquit http/1.1\r\n"),
            "{post}"
        );
        assert!(post.contains("\r\ncontent-length: 0\r\n"), "{post}");
        assert!(!post.contains("transfer-encoding"), "{post}");
        let get = sent(|c, url| c.get(url, Duration::from_secs(2)));
        assert!(get.starts_with("get /quitquitquit http/1.1\r\n"), "{get}");
        assert!(
            !get.contains("content-length") && !get.contains("transfer-encoding"),
            "{get}"
        );
    }
}
