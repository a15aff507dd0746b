//! Host names other than `localhost`, looked up within a time limit. The system resolver
//! cannot be interrupted (musl waits up to 5 s per attempt for a silent DNS server), so the
//! lookup runs in a forked process of its own that writes the addresses to a pipe, and the
//! caller waits on the pipe only as long as its budget allows. A lookup still running is
//! picked up by the next poll instead of starting another, so a hanging resolver costs one
//! process, not one per poll. Measured before this: with `--timeout 2s` and a silent DNS
//! server the wait took 5 s. (A thread would do the same but costs 33 KB of binary.)

use std::io::{self, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::logging::millis;

type Answer = io::Result<Vec<SocketAddr>>;

/// A lookup under way: its process and the pipe its answer arrives on.
struct Pending {
    host: String,
    port: u16,
    answer: std::fs::File,
    received: Vec<u8>,
}

/// Lookups started and not yet collected.
static PENDING: Mutex<Vec<Pending>> = Mutex::new(Vec::new());

/// The addresses of `host` (at most 16), or an error once `limit` has passed.
pub fn lookup(host: &str, port: u16, limit: Duration) -> Answer {
    let mut pending = match take_pending(host, port) {
        Some(pending) => pending,
        None => start(host, port)?,
    };
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !readable(&pending.answer, left)? {
            if let Ok(mut list) = PENDING.lock() {
                list.push(pending);
            }
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("looking up {host} took longer than {}ms", millis(limit)),
            ));
        }
        let mut chunk = [0u8; 512];
        match pending.answer.read(&mut chunk) {
            Ok(0) => return parse(&pending.received),
            Ok(n) => pending.received.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

fn take_pending(host: &str, port: u16) -> Option<Pending> {
    let mut list = PENDING.lock().ok()?;
    let at = list.iter().position(|p| p.host == host && p.port == port)?;
    Some(list.swap_remove(at))
}

/// Whether `file` has data (or end of file) within `limit`.
fn readable(file: &std::fs::File, limit: Duration) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(limit.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd for the duration of the call.
    match unsafe { libc::poll(&mut fd, 1, ms) } {
        n if n > 0 => Ok(true),
        0 => Ok(false),
        _ => {
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => Ok(false),
                _ => Err(err),
            }
        }
    }
}

/// Forks the process that asks the resolver and writes one address per line (or `!` and
/// the error) to a pipe.
fn start(host: &str, port: u16) -> io::Result<Pending> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just made by pipe2 and are owned here alone.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    debug_assert!(crate::init::one_thread(), "fork with other threads running");
    // SAFETY: one thread (see init/mod.rs): no lock is held by another thread at the fork,
    // so the child may allocate and call the resolver.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(read_end);
            // The child must not outlive meshinit, nor hold its output open: a reader
            // waiting for the end of meshinit's stderr would wait for the resolver too.
            // SAFETY: prctl takes no memory arguments; without it, the lookup could outlive
            // meshinit, so the child gives up (the parent then reads an empty answer).
            if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } != 0 {
                // SAFETY: _exit takes no memory arguments.
                unsafe { libc::_exit(1) }
            }
            for fd in 0..=2 {
                // SAFETY: close on this process's standard descriptors; one that is already
                // closed (EBADF) is as good as closed.
                let _ = unsafe { libc::close(fd) };
            }
            let text = match (host, port).to_socket_addrs() {
                Ok(addrs) => addrs.take(16).map(|a| format!("{a}\n")).collect::<String>(),
                Err(err) => format!("!{err}\n"),
            };
            let mut out = std::fs::File::from(write_end);
            let _ = std::io::Write::write_all(&mut out, text.as_bytes());
            // SAFETY: _exit ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        _ => Ok(Pending {
            host: host.to_owned(),
            port,
            answer: std::fs::File::from(read_end),
            received: Vec::new(),
        }),
    }
}

fn parse(received: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(received);
    if let Some(err) = text.strip_prefix('!') {
        return Err(io::Error::other(err.trim().to_owned()));
    }
    let addrs: Vec<SocketAddr> = text.lines().filter_map(|l| l.parse().ok()).collect();
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no address found"));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The fork itself is not tried here: the test harness runs threads, and a child forked
    // among them may not allocate (tests/sidecar.rs looks names up through the binary).
    #[test]
    fn answers_are_read_back_from_the_pipe() {
        assert!(parse(b"!failed to lookup\n").is_err());
        assert_eq!(
            parse(b"127.0.0.1:1\n[::1]:2\n").unwrap(),
            [
                "127.0.0.1:1".parse::<SocketAddr>().unwrap(),
                "[::1]:2".parse().unwrap()
            ]
        );
    }
}
