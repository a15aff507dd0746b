//! A directory that other containers of the pod write too (an emptyDir, the install's
//! target): anything in it may have been put there by another container, under another UID
//! and umask, or left by an attempt that was killed (OOM, SIGKILL) before it finished. What
//! meshinit did not make is opened without following a link or blocking, and taken only as a
//! regular file; what it makes gets its mode whatever the umask; and it makes its files while
//! it holds the directory's lock, so that a name it uses there is its own.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// The longest another process may hold the directory: making a file takes microseconds,
/// an install's copy milliseconds.
const HOLD_LIMIT: Duration = Duration::from_secs(10);
const HOLD_POLL: Duration = Duration::from_millis(5);

/// `dir`, opened and locked (an flock on the directory itself, which every container that
/// mounts it shares) until the returned file is dropped; the kernel releases it at death.
pub fn hold(dir: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)?;
    let deadline = Instant::now() + HOLD_LIMIT;
    loop {
        match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
            Err(err) if err.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                if Instant::now() >= deadline {
                    return Err(io::Error::other(
                        "another process has held a lock on the directory for 10 s",
                    ));
                }
                std::thread::sleep(HOLD_POLL);
            }
            held => return held.map(|()| file),
        }
    }
}

/// Makes `path` anew for writing, with `mode` whatever the umask; what a killed attempt left
/// under that name is removed first (the caller holds the directory, so the name is its own).
pub fn create_fresh(path: &Path, mode: u32) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(mode))?;
    Ok(file)
}

/// Opens `path` for reading as a file that another container may have put there: a symbolic
/// link is not followed, a FIFO does not block, and only a regular file is taken; the error
/// says what was found instead.
pub fn open_planted(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ELOOP) => io::Error::other("a symbolic link (not followed)"),
            // What open says of a socket.
            Some(libc::ENXIO) => io::Error::other("a socket, not a regular file"),
            _ => err,
        })?;
    let kind = file.metadata()?.file_type();
    let found = if kind.is_file() {
        return Ok(file);
    } else if kind.is_dir() {
        "a directory, not a regular file"
    } else if kind.is_fifo() {
        "a FIFO, not a regular file"
    } else {
        "a device, not a regular file"
    };
    Err(io::Error::other(found))
}

pub fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    // SAFETY: the descriptor is open for as long as `file` lives; flock takes no pointers.
    if unsafe { libc::flock(file.as_raw_fd(), operation) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "meshinit-unit-pod-dir-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn only_regular_files_are_opened_and_links_are_not_followed() {
        let dir = scratch("planted");
        let regular = dir.join("regular");
        std::fs::write(&regular, "x").unwrap();
        assert!(open_planted(&regular).is_ok());
        std::os::unix::fs::symlink(&regular, dir.join("link")).unwrap();
        let fifo = std::ffi::CString::new(dir.join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo takes no other pointer.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        std::fs::create_dir(dir.join("dir")).unwrap();
        for (name, said) in [
            ("link", "a symbolic link (not followed)"),
            ("fifo", "a FIFO, not a regular file"),
            ("dir", "a directory, not a regular file"),
        ] {
            let err = open_planted(&dir.join(name)).unwrap_err();
            assert_eq!(err.to_string(), said, "{name}");
        }
        assert_eq!(
            open_planted(&dir.join("missing")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fresh_file_replaces_what_a_killed_attempt_left() {
        let dir = scratch("fresh");
        let path = dir.join(".x.joining");
        std::fs::write(&path, "left by a killed attempt").unwrap();
        create_fresh(&path, 0o640).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o640);
        assert_eq!(meta.len(), 0, "made anew, not the leftover opened");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
