//! The Kubernetes termination message: when a run ends without the task having run, one
//! short line with the reason goes to the file the kubelet reads (`/dev/termination-log` by
//! default), so that `kubectl describe pod` shows why. Never when the task ran: the task may
//! write its own.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Kubernetes keeps at most 4096 bytes of it.
const MAX_BYTES: usize = 4_000;

/// Writes `line` to `path` when that file exists and may be written; says at debug level
/// why not otherwise. Never creates the file, never blocks on it.
pub fn write(path: &Path, line: &str) {
    let mut end = line.len().min(MAX_BYTES);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let result = OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .and_then(|mut file| file.write_all(format!("{}\n", &line[..end]).as_bytes()));
    match result {
        Ok(()) => debug!("termination message written to {}", path.display()),
        Err(err) => debug!(
            "no termination message written to {}: {err}",
            path.display()
        ),
    }
}
