//! The last resort when no quit endpoint worked: find the sidecar in /proc by the path of
//! its executable (never by name) and send it SIGTERM. It only sees anything when the pod
//! shares its process namespace.

use std::fs;
use std::io;
use std::path::Path;

/// What the scan found and did.
#[derive(Debug)]
pub enum Outcome {
    /// SIGTERM went to these (pid, executable).
    Signalled(Vec<(i32, String)>),
    /// /proc shows no process running the executables: the sidecar has exited, or runs
    /// where meshinit cannot see it (no shared process namespace).
    NoneVisible,
    /// Nothing could be signalled; each line says what was in the way.
    Failed(Vec<String>),
}

/// The processes running the first of `executables` that has any, and what kept others
/// from view (another user's process, /proc unreadable).
pub struct Found {
    pub processes: Vec<(i32, String)>,
    pub problems: Vec<String>,
}

pub fn find(executables: &[String]) -> Found {
    // A pid read from a /proc of another PID namespace (`unshare --pid` without a /proc of
    // its own) names some other process in meshinit's: never signal by it.
    if let Some(problem) = not_our_proc() {
        return Found {
            processes: Vec::new(),
            problems: vec![problem],
        };
    }
    let entries = match fs::read_dir("/proc") {
        Ok(entries) => entries,
        Err(err) => {
            return Found {
                processes: Vec::new(),
                problems: vec![format!("/proc is not readable: {err}")],
            }
        }
    };
    let me = i64::from(std::process::id());
    let mut found: Vec<(usize, i32, String)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if i64::from(pid) == me {
            continue;
        }
        let dir = entry.path();
        match fs::read_link(dir.join("exe")) {
            Ok(target) => {
                let target = target.to_string_lossy();
                let target = target.strip_suffix(" (deleted)").unwrap_or(&target);
                if let Some(rank) = executables.iter().position(|e| e == target) {
                    found.push((rank, pid, target.to_owned()));
                }
            }
            // Another user's process: its exe link is closed to us, its command line not.
            Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
                if let Some(argv0) = argv0(&dir).filter(|a| executables.contains(a)) {
                    problems.push(format!(
                        "{argv0} (pid {pid}, uid {}) runs as another user: meshinit may not \
                         inspect or signal it (run as its UID or with CAP_KILL)",
                        uid(&dir)
                    ));
                }
            }
            Err(_) => {}
        }
    }
    let best = found.iter().map(|(rank, _, _)| *rank).min();
    let processes = found
        .into_iter()
        .filter(|(rank, _, _)| Some(*rank) == best)
        .map(|(_, pid, exe)| (pid, exe))
        .collect();
    Found {
        processes,
        problems,
    }
}

/// Whether `pid` still runs (a zombie has finished running).
pub fn running(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which ends with the last ')'.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Sends SIGTERM to every process running the first of `executables` that has any.
pub fn terminate(executables: &[String]) -> Outcome {
    let Found {
        processes,
        mut problems,
    } = find(executables);
    let mut signalled = Vec::new();
    for (pid, exe) in processes {
        // SAFETY: kill has no memory arguments; `pid` runs the sidecar's executable.
        if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
            signalled.push((pid, exe));
        } else {
            let err = io::Error::last_os_error();
            let dir = Path::new("/proc").join(pid.to_string());
            problems.push(format!(
                "cannot signal {exe} (pid {pid}, uid {}): {err}",
                uid(&dir)
            ));
        }
    }
    if !signalled.is_empty() {
        return Outcome::Signalled(signalled);
    }
    if problems.is_empty() {
        return Outcome::NoneVisible;
    }
    Outcome::Failed(problems)
}

/// Why /proc is not meshinit's PID namespace's, when it is not: what `/proc/self` names
/// is not meshinit's pid.
fn not_our_proc() -> Option<String> {
    let me = std::process::id();
    match fs::read_link("/proc/self") {
        Ok(link) if link.to_str() == Some(me.to_string().as_str()) => None,
        Ok(link) => Some(format!(
            "/proc is another PID namespace's (/proc/self is {}, meshinit is pid {me}; a PID \
             namespace without a /proc of its own?): no process is signalled by it",
            link.display()
        )),
        Err(err) => Some(format!(
            "/proc is not readable ({err} on /proc/self): no process is signalled by it"
        )),
    }
}

fn argv0(dir: &Path) -> Option<String> {
    let cmdline = fs::read(dir.join("cmdline")).ok()?;
    let first = cmdline.split(|b| *b == 0).next()?;
    Some(String::from_utf8_lossy(first).into_owned())
}

/// The owner of /proc/PID: the process's effective UID (the kernel's answer, without
/// reading and parsing its status file).
fn uid(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(dir).map_or_else(|_| "?".to_owned(), |m| m.uid().to_string())
}
