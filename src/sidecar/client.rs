//! The sidecar client: one GET or POST with short per-phase timeouts. No global timeout
//! (ureq would start a resolver thread for it), no proxy from the environment (a pod's
//! HTTP_PROXY must not capture loopback admin calls), no redirects, no connection pool.

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

/// Each phase's timeout, cut to the caller's budget. A macro because ureq's request-scope
/// config builders share no public trait to be generic over.
macro_rules! limited {
    ($request:expr, $budget:expr) => {{
        let cap = |phase: Duration| Some(phase.min($budget).max(Duration::from_millis(1)));
        $request
            .config()
            .timeout_resolve(cap(RECEIVE))
            .timeout_connect(cap(CONNECT))
            .timeout_send_request(cap(SEND))
            .timeout_recv_response(cap(RECEIVE))
            .timeout_recv_body(cap(RECEIVE))
            .build()
    }};
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

    /// GET `url`, taking at most about `budget`.
    pub fn get(&self, url: &str, budget: Duration) -> Reply {
        reply(limited!(self.agent.get(url), budget).call())
    }

    /// POST an empty body to `url`, taking at most about `budget`.
    pub fn post(&self, url: &str, budget: Duration) -> Reply {
        reply(limited!(self.agent.post(url), budget).send_empty())
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
