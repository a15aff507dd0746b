//! Host names other than `localhost`, looked up within a time limit. The system resolver
//! cannot be interrupted (musl waits up to 5 s per attempt for a silent DNS server), so the
//! lookup runs on a thread of its own and the caller waits only as long as its budget
//! allows; a lookup still running is picked up by the next poll instead of starting another,
//! so a hanging resolver costs one thread, not one per poll. Measured before this: with
//! `--timeout 2s` and a silent DNS server the wait took 5 s.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

type Answer = io::Result<Vec<SocketAddr>>;

/// Lookups started and not yet collected: (host, port, where the answer arrives).
static PENDING: Mutex<Vec<(String, u16, Receiver<Answer>)>> = Mutex::new(Vec::new());

/// The addresses of `host` (at most 16), or an error once `limit` has passed.
pub fn lookup(host: &str, port: u16, limit: Duration) -> Answer {
    let pending = take_pending(host, port);
    let answers = match pending {
        Some(answers) => answers,
        None => start(host, port)?,
    };
    match answers.recv_timeout(limit) {
        Ok(answer) => answer,
        Err(RecvTimeoutError::Timeout) => {
            if let Ok(mut pending) = PENDING.lock() {
                pending.push((host.to_owned(), port, answers));
            }
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("looking up {host} took longer than {}ms", limit.as_millis()),
            ))
        }
        Err(RecvTimeoutError::Disconnected) => Err(io::Error::other("the lookup thread died")),
    }
}

fn take_pending(host: &str, port: u16) -> Option<Receiver<Answer>> {
    let mut pending = PENDING.lock().ok()?;
    let at = pending
        .iter()
        .position(|(h, p, _)| h == host && *p == port)?;
    Some(pending.swap_remove(at).2)
}

fn start(host: &str, port: u16) -> io::Result<Receiver<Answer>> {
    let (tx, rx) = mpsc::sync_channel(1);
    let name = host.to_owned();
    std::thread::Builder::new()
        .name("lookup".to_owned())
        .stack_size(64 * 1024)
        .spawn(move || {
            let answer = (name.as_str(), port)
                .to_socket_addrs()
                .map(|addrs| addrs.take(16).collect());
            // The caller may have given up and gone; the answer is then not needed.
            let _ = tx.send(answer);
        })?;
    Ok(rx)
}
