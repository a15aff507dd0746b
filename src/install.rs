//! `meshinit install DIR`: the image holds only `/meshinit` (no shell, no `cp`), so an init
//! container runs this to put meshinit into an emptyDir that the task's container, from an
//! image without it, runs it from. The copy is written under a hidden name in DIR and
//! renamed into place, so that a reader never sees half a file.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::ending::{exit, Ending, Source};

/// What the copy is called in DIR.
const NAME: &str = "meshinit";

/// Copies this very executable to `DIR/meshinit`, mode 0755; 0 when done, else 73 with a
/// line that names DIR.
pub fn install(dir: &Path) -> Ending {
    match copy_into(dir) {
        Ok(bytes) => {
            info!(
                "installed meshinit as {} ({bytes} bytes)",
                dir.join(NAME).display()
            );
            Ending::new(0, Source::Install)
        }
        Err(err) => {
            let reason = format!("install: cannot write {}/{NAME}: {err}", dir.display());
            error!("{reason}");
            Ending::new(exit::CANNOT_CREATE, Source::Install).because(reason)
        }
    }
}

fn copy_into(dir: &Path) -> io::Result<u64> {
    // The kernel's own link to this process's executable: no PATH, no argv[0] to trust.
    let mut source = File::open("/proc/self/exe")?;
    let hidden = dir.join(format!(".{NAME}.{}.installing", std::process::id()));
    let mut copy = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .custom_flags(libc::O_CLOEXEC)
        .open(&hidden)?;
    let written = copy_all(&mut source, &mut copy)
        // The umask may have taken bits off the mode given at open.
        .and_then(|bytes| {
            copy.set_permissions(std::fs::Permissions::from_mode(0o755))?;
            copy.sync_all()?;
            Ok(bytes)
        })
        .and_then(|bytes| std::fs::rename(&hidden, dir.join(NAME)).map(|()| bytes));
    if written.is_err() {
        let _ = std::fs::remove_file(&hidden);
    }
    written
}

/// A plain read-and-write loop: `io::copy`'s kernel-copy paths for files cost 600 bytes of
/// binary for a copy of 332 KB made once per pod.
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
