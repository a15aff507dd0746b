//! Finding the command before anything else happens, as execvp will (so that a typo fails
//! at once, not after the whole wait for the sidecar), and why a command cannot run.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::ending::exit;

/// Why the task could not be started.
#[derive(Debug)]
pub enum SpawnError {
    /// exec failed: the command is missing (127) or cannot be run (126).
    Exec { command: String, err: io::Error },
    /// meshinit could not prepare or fork the child.
    Setup { step: &'static str, err: io::Error },
}

impl SpawnError {
    pub fn exit_code(&self) -> u8 {
        match self {
            SpawnError::Exec { err, .. } => match err.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENOTDIR) => exit::NOT_FOUND,
                _ => exit::CANNOT_RUN,
            },
            SpawnError::Setup { .. } => exit::SOFTWARE,
        }
    }
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::Exec { command, err } => {
                write!(f, "cannot run '{command}': {err}")?;
                let hint = match err.raw_os_error() {
                    Some(libc::ENOEXEC) => {
                        " (neither an ELF program nor a script starting with #!; \
                         a shell script without one runs as: /bin/sh SCRIPT)"
                    }
                    Some(libc::ENOENT) if command.contains('/') && Path::new(command).exists() => {
                        " (the interpreter its #! line names)"
                    }
                    _ => "",
                };
                f.write_str(hint)
            }
            SpawnError::Setup { step, err } => write!(f, "cannot start the task: {step}: {err}"),
        }
    }
}

/// Looks `argv[0]` up as execvp will (PATH when it has no slash), so that a command that
/// cannot run is reported before anything else happens.
pub fn find(argv: &[OsString]) -> Result<(), SpawnError> {
    let Some(program) = argv.first() else {
        return Err(SpawnError::Setup {
            step: "argv",
            err: io::Error::from_raw_os_error(libc::EINVAL),
        });
    };
    let exec_error = |errno| SpawnError::Exec {
        command: program.to_string_lossy().into_owned(),
        err: io::Error::from_raw_os_error(errno),
    };
    let bytes = program.as_bytes();
    if bytes.is_empty() {
        return Err(exec_error(libc::ENOENT));
    }
    if bytes.contains(&b'/') {
        return runnable(Path::new(program)).map_err(exec_error);
    }
    // musl's execvp searches this when PATH is unset.
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/bin:/usr/bin".into());
    // As musl's execvp: a missing file goes on to the next directory, one that cannot be
    // executed is remembered, anything else (a file that is no program) ends the search.
    let mut denied = false;
    for dir in path.as_bytes().split(|b| *b == b':') {
        let dir = if dir.is_empty() { &b"."[..] } else { dir };
        match runnable(&Path::new(OsStr::from_bytes(dir)).join(program)) {
            Ok(()) => return Ok(()),
            Err(libc::EACCES) => denied = true,
            Err(libc::ENOENT | libc::ENOTDIR) => {}
            Err(errno) => return Err(exec_error(errno)),
        }
    }
    Err(exec_error(if denied { libc::EACCES } else { libc::ENOENT }))
}

/// Whether `path` is a file that execve would run; the errno it would give when not. An
/// executable file must start as an ELF program or a `#!` script does: musl's execvp hands
/// nothing else to /bin/sh (glibc's would), so anything else is ENOEXEC now rather than
/// after the whole wait. A `#!` line's interpreter must be there too (execve says ENOENT).
fn runnable(path: &Path) -> Result<(), libc::c_int> {
    let metadata =
        std::fs::metadata(path).map_err(|err| err.raw_os_error().unwrap_or(libc::ENOENT))?;
    if metadata.is_dir() {
        return Err(libc::EACCES);
    }
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| libc::ENOENT)?;
    // SAFETY: `c_path` is a valid NUL-terminated string for the call.
    if unsafe { libc::access(c_path.as_ptr(), libc::X_OK) } != 0 {
        return Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EACCES));
    }
    // An execute-only file cannot be read, and execve may still run it.
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(());
    };
    let mut head = [0u8; 256];
    let len = read_head(&file, &mut head);
    match &head[..len] {
        [0x7f, b'E', b'L', b'F', ..] => Ok(()),
        [b'#', b'!', line @ ..] => {
            let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
            let interpreter = line
                .split(|b| *b == b' ' || *b == b'\t')
                .find(|word| !word.is_empty())
                .ok_or(libc::ENOEXEC)?;
            // A script may name another script: the kernel follows a few such steps.
            match std::fs::metadata(OsStr::from_bytes(interpreter)) {
                Ok(_) => Ok(()),
                Err(_) => Err(libc::ENOENT),
            }
        }
        _ => Err(libc::ENOEXEC),
    }
}

/// Reads what is there of the first `head.len()` bytes of `file`.
fn read_head(mut file: &std::fs::File, head: &mut [u8]) -> usize {
    use std::io::Read;
    let mut len = 0;
    while len < head.len() {
        match file.read(&mut head[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    len
}
