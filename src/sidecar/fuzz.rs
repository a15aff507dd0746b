//! Property-based fuzzing of URLs and of whatever a readiness or quit endpoint sends back
//! (the real client against a loopback socket that replies with fuzzed bytes). Properties:
//! never a panic, never past the time limits, credentials never shown.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::client::{Client, Reply};
use super::url;
use crate::fuzzing::for_a_while;

#[test]
fn urls() {
    const SEEDS: &[&str] = &[
        "http://127.0.0.1:15000/ready",
        "http://[::1]:15021/healthz/ready",
        "http://user:pw@localhost:4191/shutdown",
        "http://127.0.0.1:1/quitquitquit?x=1#f",
    ];
    let client = Client::new();
    for_a_while("urls", 20_000, |rng| {
        let seed = rng.word(SEEDS);
        let url = rng.mutate(
            seed,
            &["@", ":", "//", "[", "]", "%", "?", "#", "65536", "https"],
        );
        let valid = url::valid(&url);
        let loopback = url::is_loopback(&url);
        let shown = url::shown(&url);
        // Only URLs that pass url::valid ever reach a log line; their userinfo must not.
        if valid {
            let uri: ureq::http::Uri = url.parse().expect("url::valid parsed it");
            let authority = uri.authority().map(|a| a.as_str().to_owned());
            if let Some((userinfo, host)) = authority
                .as_deref()
                .and_then(|a| a.rsplit_once('@'))
                .filter(|(u, _)| !u.is_empty())
            {
                let after_scheme = shown.split_once("://").map_or("", |x| x.1);
                let end = after_scheme
                    .find(['/', '?', '#'])
                    .unwrap_or(after_scheme.len());
                assert_eq!(
                    &after_scheme[..end],
                    format!("***@{host}"),
                    "{userinfo:?} of {url:?} shown as {shown:?}"
                );
            }
        }
        // Only loopback hosts are ever asked (localhost without a lookup): no test
        // traffic leaves this machine.
        if valid && loopback {
            let began = Instant::now();
            let reply = client.get(&url, Duration::from_millis(100));
            assert!(
                began.elapsed() < Duration::from_millis(1500),
                "{url:?}: {reply:?} took {:?}",
                began.elapsed()
            );
        }
        1
    });
}

/// Seed replies, with the status an intact one must yield (`None`: no promise).
const REPLIES: &[(&[u8], Option<u16>)] = &[
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nLIVE",
        Some(200),
    ),
    (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
        Some(503),
    ),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        None,
    ),
    (b"HTTP/1.0 426 Upgrade Required\r\n\r\n", Some(426)),
    (b"HTTP/1.1 204 No Content\r\n\r\n", Some(204)),
    (b"garbage\r\n\r\n", None),
    (b"HTTP/1.1 999 Weird\r\nX: \x00\xff\r\n\r\n", None),
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\nshort",
        None,
    ),
];

/// What the fuzzed endpoint does after reading the request.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Reply,
    ReplyAndHold,
    CloseAtOnce,
    Silence,
}

#[test]
fn endpoint_replies() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel::<(Vec<u8>, Behaviour)>();
    // The server says when it is done with a connection, so that no case waits in the
    // accept queue behind the last one's silence.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        while let Ok((bytes, behaviour)) = rx.recv() {
            let Ok((mut conn, _)) = listener.accept() else {
                break;
            };
            let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
            let mut request = [0u8; 2048];
            let _ = conn.read(&mut request);
            match behaviour {
                Behaviour::Reply => {
                    let _ = conn.write_all(&bytes);
                }
                Behaviour::ReplyAndHold => {
                    let _ = conn.write_all(&bytes);
                    std::thread::sleep(Duration::from_millis(300));
                }
                Behaviour::CloseAtOnce => {}
                Behaviour::Silence => std::thread::sleep(Duration::from_millis(300)),
            }
            drop(conn);
            let _ = done_tx.send(());
        }
    });
    let client = Client::new();
    let budget = Duration::from_millis(150);
    for_a_while("endpoint replies", 15, |rng| {
        let (seed, status) = *rng.pick(REPLIES);
        let mut bytes = seed.to_vec();
        // A third intact, so that the status property is checked often.
        let mutations = if rng.below(3) == 0 {
            0
        } else {
            1 + rng.below(3)
        };
        for _ in 0..mutations {
            let at = rng.below(bytes.len() + 1);
            match rng.below(3) {
                0 if !bytes.is_empty() => {
                    let last = bytes.len() - 1;
                    bytes[at.min(last)] = rng.next() as u8;
                }
                1 => bytes.insert(at, rng.next() as u8),
                _ => bytes.truncate(at),
            }
        }
        let behaviour = *rng.pick(&[
            Behaviour::Reply,
            Behaviour::Reply,
            Behaviour::Reply,
            Behaviour::Reply,
            Behaviour::ReplyAndHold,
            Behaviour::CloseAtOnce,
            Behaviour::Silence,
        ]);
        tx.send((bytes.clone(), behaviour)).expect("server gone");
        let began = Instant::now();
        let reply = if rng.below(2) == 0 {
            client.get(&format!("http://127.0.0.1:{port}/ready"), budget)
        } else {
            client.post(&format!("http://127.0.0.1:{port}/quitquitquit"), budget)
        };
        let took = began.elapsed();
        assert!(
            took < budget * 3,
            "{behaviour:?} {:?}: {reply:?} after {took:?}",
            String::from_utf8_lossy(&bytes)
        );
        if let Reply::Status(code) = reply {
            assert!((100..1000).contains(&code), "{code}");
        }
        done_rx
            .recv_timeout(Duration::from_secs(2))
            .expect("the fuzzed endpoint is done with the connection");
        // An intact reply that is sent yields its status, whatever comes after it.
        if let (0, Some(status), Behaviour::Reply | Behaviour::ReplyAndHold) =
            (mutations, status, behaviour)
        {
            assert_eq!(reply, Reply::Status(status), "{behaviour:?} {seed:?}");
        }
        1
    });
    drop(tx);
    // A last connection lets the server leave accept().
    let _ = std::net::TcpStream::connect(("127.0.0.1", port));
    let _ = server.join();
}
