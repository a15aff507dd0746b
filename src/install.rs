//! `meshinit install DIR`: the image holds only `/meshinit` (no shell, no `cp`), so an init
//! container runs this to put meshinit into an emptyDir that the task's container, from an
//! image without it, runs it from. The copy is written under a hidden name in DIR and
//! renamed into place, so that a reader never sees half a file; DIR is held meanwhile, so a
//! copy left by a killed attempt (a restarted init container) is this one's to replace.

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::ending::{exit, Ending, Source};
use crate::logging;
use crate::pod_dir;

/// What the copy is called in DIR.
const NAME: &str = "meshinit";
/// What it is called while it is written.
const HIDDEN: &str = ".meshinit.installing";

/// Copies this very executable to `DIR/meshinit`, mode 0755; 0 when done, else 73 with a
/// line that names what could not be read or written, said whatever --log.
pub fn install(dir: &Path) -> Ending {
    let copied = this_executable()
        .map_err(|err| format!("install: cannot read meshinit's own executable: {err}"))
        .and_then(|mut source| {
            copy_into(&mut source, dir)
                .map_err(|err| format!("install: cannot write {}/{NAME}: {err}", dir.display()))
        });
    match copied {
        Ok(bytes) => {
            info!(
                "installed meshinit as {} ({bytes} bytes)",
                dir.join(NAME).display()
            );
            Ending::new(0, Source::Install)
        }
        Err(reason) => {
            logging::always(logging::Level::Error, "install", &reason);
            Ending::new(exit::CANNOT_CREATE, Source::Install).because(reason)
        }
    }
}

/// The kernel's own link to this process's executable (no PATH, no argv[0] to trust); where
/// /proc is not mounted (a chroot holding only meshinit), the path the kernel started it by
/// (relative to the working directory, which meshinit never changes).
fn this_executable() -> io::Result<File> {
    let without_proc = match File::open("/proc/self/exe") {
        Ok(file) => return Ok(file),
        Err(err) => err,
    };
    // SAFETY: getauxval takes no pointers, and says 0 when there is no such entry.
    let at = unsafe { libc::getauxval(libc::AT_EXECFN) };
    let path = (at != 0).then(|| {
        // SAFETY: AT_EXECFN's value is the address of the NUL-terminated path that execve
        // put on the stack, alive and unchanged for the whole process.
        unsafe { CStr::from_ptr(at as *const libc::c_char) }.to_bytes()
    });
    match path.filter(|p| !p.is_empty()) {
        Some(path) => File::open(OsStr::from_bytes(path)),
        None => Err(io::Error::other(format!(
            "/proc/self/exe: {without_proc}, and the kernel gave no path it was started by"
        ))),
    }
}

fn copy_into(source: &mut File, dir: &Path) -> io::Result<u64> {
    let held = pod_dir::hold(dir)?;
    let hidden = dir.join(HIDDEN);
    let mut copy = pod_dir::create_fresh(&hidden, 0o755)?;
    let written = copy_all(source, &mut copy).and_then(|bytes| {
        copy.sync_all()?;
        std::fs::rename(&hidden, dir.join(NAME))?;
        // The new name lasts a power loss only once DIR itself is on disk.
        held.sync_all()?;
        Ok(bytes)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&hidden);
    }
    written
}

/// A plain read-and-write loop: `io::copy`'s kernel-copy paths for files cost 600 bytes of
/// binary for a copy of about 340 KB made once per pod.
fn copy_all(source: &mut File, copy: &mut File) -> io::Result<u64> {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match source.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                copy.write_all(&buffer[..n])?;
                total += n as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}
