//! Property-based fuzzing on stable, of the code itself (the library), with a seeded PRNG
//! and seed inputs mutated at random: durations, every configuration source (flags,
//! MESHINIT_* variables, scuttle's and envoy-preflight's), URLs, and whatever a readiness
//! or quit endpoint sends back (the real client against a loopback socket that replies with
//! fuzzed bytes). Properties: never a panic, never a hang past the limits, always a value
//! or an error naming the input.
//!
//! Each target runs for MESHINIT_FUZZ_SECONDS (default 6); MESHINIT_FUZZ_SEED repeats a
//! run. scripts/reliability runs the long form.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use meshinit::client::{Client, Reply};
use meshinit::{cli, compat, duration, sidecar};

struct Rng(u64);

impl Rng {
    fn new(target: &str) -> Rng {
        let seed = std::env::var("MESHINIT_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("fuzz {target}: MESHINIT_FUZZ_SEED={seed}");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn word(&mut self, words: &[&'static str]) -> &'static str {
        words[self.below(words.len())]
    }

    /// A mutation of `seed`: bytes replaced, inserted, deleted, spliced with `pool` tokens.
    fn mutate(&mut self, seed: &str, pool: &[&str]) -> String {
        let mut s: Vec<char> = seed.chars().collect();
        for _ in 0..=self.below(4) {
            let at = self.below(s.len() + 1);
            match self.below(5) {
                0 if !s.is_empty() => {
                    s.remove(at.min(s.len() - 1));
                }
                1 => s.insert(at, char::from(b' ' + self.below(95) as u8)),
                2 => {
                    for (i, c) in self.pick(pool).chars().enumerate() {
                        s.insert((at + i).min(s.len()), c);
                    }
                }
                3 if !s.is_empty() => {
                    let end = at + self.below(s.len() - at.min(s.len()) + 1);
                    s.truncate(end.min(s.len()));
                }
                _ => s.insert(
                    at,
                    *self.pick(&['\0', '\u{b5}', '\u{10ffff}', '\u{feff}', '\n']),
                ),
            }
        }
        s.into_iter().collect()
    }
}

fn seconds() -> Duration {
    let s = std::env::var("MESHINIT_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6.0_f64);
    Duration::from_secs_f64(s)
}

/// Runs `body` until the time is up; reports how many inputs it tried.
fn for_a_while(target: &str, mut body: impl FnMut(&mut Rng)) {
    let mut rng = Rng::new(target);
    let until = Instant::now() + seconds();
    let mut count = 0u64;
    while Instant::now() < until {
        body(&mut rng);
        count += 1;
    }
    eprintln!("fuzz {target}: {count} inputs");
}

#[test]
fn durations() {
    const SEEDS: &[&str] = &[
        "0",
        "1m30s",
        "250ms",
        "1.5h",
        "+2s",
        ".5us",
        "10ns",
        "1h2m3s4ms5us6ns",
    ];
    const UNITS: [(&str, u128); 7] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    for_a_while("durations", |rng| {
        // Structured: a sum of parts whose value is known exactly.
        let mut text = String::new();
        let mut nanos: u128 = 0;
        for _ in 0..=rng.below(3) {
            let (unit, scale) = *rng.pick(&UNITS);
            let whole = rng.next() % 100_000;
            text.push_str(&format!("{whole}{unit}"));
            nanos += u128::from(whole) * scale;
        }
        let expected = Duration::new(
            (nanos / 1_000_000_000) as u64,
            (nanos % 1_000_000_000) as u32,
        );
        assert_eq!(duration::parse(&text), Some(expected), "{text:?}");
        // Mutated: anything at all; a value or None, never a panic.
        let seed = rng.word(SEEDS);
        let mutated = rng.mutate(seed, &["ms", ".", "-", "h", "99999999999999999999"]);
        // Accepted exactly when Go's grammar says so (a second, plainer reading of it),
        // except numbers too large for a Duration, which are refused.
        let accepted = duration::parse(&mutated).is_some();
        let grammar = go_duration_syntax(&mutated);
        // Near u64::MAX seconds (1.8e19) the rough float sum cannot tell; parse may refuse.
        let huge = grammar.is_some_and(|seconds| seconds > 1.7e19);
        assert!(
            accepted == grammar.is_some() || huge,
            "{mutated:?}: parse says {accepted}, the grammar {grammar:?}"
        );
    });
}

/// Go's duration grammar: `[+]?0` or `[+]?(NUMBER UNIT)+` with NUMBER `D+`, `D+.D*` or
/// `.D+`, and UNIT one of ns us µs μs ms s m h. The value, roughly, in seconds.
fn go_duration_syntax(text: &str) -> Option<f64> {
    let rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Some(0.0);
    }
    let mut rest = rest;
    if rest.is_empty() {
        return None;
    }
    let mut seconds = 0.0;
    while !rest.is_empty() {
        let number_start = rest;
        let whole = rest.chars().take_while(char::is_ascii_digit).count();
        rest = &rest[whole..];
        let mut fraction = 0;
        if let Some(after) = rest.strip_prefix('.') {
            fraction = after.chars().take_while(char::is_ascii_digit).count();
            rest = &after[fraction..];
        }
        if whole == 0 && fraction == 0 {
            return None;
        }
        let number: f64 = number_start[..number_start.len() - rest.len()]
            .parse()
            .unwrap_or(f64::MAX);
        let (unit, scale) = [
            ("ns", 1e-9),
            ("us", 1e-6),
            ("µs", 1e-6),
            ("μs", 1e-6),
            ("ms", 1e-3),
            ("s", 1.0),
            ("m", 60.0),
            ("h", 3600.0),
        ]
        .into_iter()
        .find(|(u, _)| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")))?;
        seconds += number * scale;
        rest = &rest[unit.len()..];
    }
    Some(seconds)
}

const FLAGS: &[&str] = &[
    "--mesh",
    "--ready-url",
    "--quit-url",
    "--timeout",
    "--on-timeout",
    "--keep-sidecar",
    "--sidecar-grace",
    "--quit-wait",
    "--kill-fallback",
    "--sidecar-exe",
    "--process-group",
    "-g",
    "--grace",
    "--log",
    "--help",
    "--version",
    "--",
    "wait",
    "quit",
    "--bogus",
    "-x",
];
const VALUES: &[&str] = &[
    "istio",
    "envoy",
    "linkerd",
    "none",
    "auto",
    "true",
    "false",
    "yes",
    "0",
    "1",
    "2s",
    "1m30s",
    "0s",
    "fail",
    "start",
    "never",
    "on-failure",
    "always",
    "debug",
    "off",
    "http://127.0.0.1:15000/ready",
    "http://localhost:4191",
    "https://x",
    "/usr/local/bin/envoy",
    "http://a:b@127.0.0.1:1/q,http://127.0.0.1:2/r",
    "",
    ",",
    "=",
    "--",
    "sh",
];

#[test]
fn configuration_sources() {
    let variables: Vec<&'static str> = cli::variables().chain(compat::VARIABLES).collect();
    for_a_while("configuration", |rng| {
        let mut args: Vec<String> = Vec::new();
        for _ in 0..rng.below(6) {
            let flag = *rng.pick(FLAGS);
            if rng.below(3) == 0 {
                args.push(format!("{flag}={}", rng.pick(VALUES)));
            } else {
                args.push(flag.to_owned());
                if rng.below(4) != 0 {
                    let seed = rng.word(VALUES);
                    args.push(rng.mutate(seed, VALUES));
                }
            }
        }
        if rng.below(2) == 0 {
            args.push("true".to_owned());
        }
        let env: Vec<(String, String)> = (0..rng.below(5))
            .map(|_| {
                let name = *rng.pick(&variables);
                let value = match rng.below(3) {
                    0 => (*rng.pick(VALUES)).to_owned(),
                    _ => {
                        let seed = rng.word(VALUES);
                        rng.mutate(seed, VALUES)
                    }
                };
                (name.to_owned(), value)
            })
            .collect();
        let lookup = |name: &str| {
            env.iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| OsString::from(v))
        };
        let began = Instant::now();
        let result = cli::parse(args.iter().map(OsString::from), lookup);
        assert!(
            began.elapsed() < Duration::from_secs(1),
            "slow parse: {args:?} {env:?}"
        );
        if let Err(failure) = result {
            let message = failure.error.0;
            let args: Vec<String> = args.iter().map(|a| one_line(a)).collect();
            // A short option cluster is reported one letter at a time.
            let short = |a: &String| {
                a.starts_with('-')
                    && !a.starts_with("--")
                    && a.chars()
                        .skip(1)
                        .any(|c| message.contains(&format!("-{c}")))
            };
            let names_input = message.starts_with("missing COMMAND")
                || args.iter().any(short)
                || message.contains("wait and quit take no COMMAND")
                || env.iter().any(|(n, _)| message.starts_with(n.as_str()))
                || args.iter().any(|a| {
                    let flag = a.split('=').next().unwrap_or(a);
                    !flag.is_empty() && message.contains(flag)
                });
            assert!(
                names_input,
                "error names nothing given: {message:?}\nargs {args:?}\nenv {env:?}"
            );
            assert!(!message.contains('\n'), "one line: {message:?}");
        }
    });
}

/// The message escapes control characters; so must the comparison.
fn one_line(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_debug().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[test]
fn urls() {
    const SEEDS: &[&str] = &[
        "http://127.0.0.1:15000/ready",
        "http://[::1]:15021/healthz/ready",
        "http://user:pw@localhost:4191/shutdown",
        "http://127.0.0.1:1/quitquitquit?x=1#f",
    ];
    let client = Client::new();
    for_a_while("urls", |rng| {
        let seed = rng.word(SEEDS);
        let url = rng.mutate(
            seed,
            &["@", ":", "//", "[", "]", "%", "?", "#", "65536", "https"],
        );
        let valid = sidecar::valid_url(&url);
        let loopback = sidecar::is_loopback(&url);
        let shown = sidecar::shown(&url);
        // Only URLs that pass valid_url ever reach a log line; their userinfo must not.
        if valid {
            let uri: ureq::http::Uri = url.parse().expect("valid_url parsed it");
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
    });
}

const REPLIES: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nLIVE",
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.0 426 Upgrade Required\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"garbage\r\n\r\n",
    b"HTTP/1.1 999 Weird\r\nX: \x00\xff\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\nshort",
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
        }
    });
    let client = Client::new();
    let budget = Duration::from_millis(150);
    for_a_while("endpoint replies", |rng| {
        let mut bytes = rng.pick(REPLIES).to_vec();
        for _ in 0..rng.below(4) {
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
    });
    drop(tx);
    // A last connection lets the server leave accept().
    let _ = std::net::TcpStream::connect(("127.0.0.1", port));
    let _ = server.join();
}
