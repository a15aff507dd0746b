//! Starting the task: fork, give the child a clean signal state and its own process group,
//! exec. A close-on-exec pipe carries a failure in the child back as an errno, so that
//! "not found" and "not executable" are told apart and reported by meshinit itself.

use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;

/// The highest signal number the kernel knows (including real-time ones).
const LAST_SIGNAL: libc::c_int = 64;

/// The running task.
#[derive(Clone, Copy, Debug)]
pub struct Child {
    pub pid: libc::pid_t,
}

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
                Some(libc::ENOENT) | Some(libc::ENOTDIR) => 127,
                _ => 126,
            },
            SpawnError::Setup { .. } => crate::EXIT_SOFTWARE,
        }
    }
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::Exec { command, err } => write!(f, "cannot run '{command}': {err}"),
            SpawnError::Setup { step, err } => write!(f, "cannot start the task: {step}: {err}"),
        }
    }
}

/// Steps in the child before exec, in the order they run; the index travels over the pipe.
const STEPS: [&str; 4] = ["setpgid", "sigaction", "sigprocmask", "exec"];
const STEP_EXEC: u8 = 3;

/// Forks and execs `argv` (looked up on PATH like execvp) in a new process group. When
/// meshinit's process group owns the terminal, the task's group is given the terminal.
pub fn spawn(argv: &[OsString]) -> Result<Child, SpawnError> {
    let command = argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let setup = |step, err| SpawnError::Setup { step, err };
    let owned: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| setup("argv", io::Error::from_raw_os_error(libc::EINVAL)))?;
    if owned.is_empty() {
        return Err(setup("argv", io::Error::from_raw_os_error(libc::EINVAL)));
    }
    let mut pointers: Vec<*const libc::c_char> = owned.iter().map(|a| a.as_ptr()).collect();
    pointers.push(std::ptr::null());
    let take_terminal = owns_terminal();

    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(setup("pipe2", io::Error::last_os_error()));
    }
    let [read_end, write_end] = fds;
    // SAFETY: meshinit has no other threads, so the child may run the async-signal-safe
    // code in `run_child` until it execs or exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        run_child(&pointers, take_terminal, write_end);
    }
    let fork_err = io::Error::last_os_error();
    close(write_end);
    if pid < 0 {
        close(read_end);
        return Err(setup("fork", fork_err));
    }
    let report = read_report(read_end);
    close(read_end);
    match report {
        None => Ok(Child { pid }),
        Some((step, errno)) => {
            reap_failed(pid);
            let err = io::Error::from_raw_os_error(errno);
            if step == STEP_EXEC {
                Err(SpawnError::Exec { command, err })
            } else {
                let step = STEPS.get(usize::from(step)).copied().unwrap_or("child");
                Err(setup(step, err))
            }
        }
    }
}

/// The child's side of the fork. Only async-signal-safe calls, no allocation.
fn run_child(argv: &[*const libc::c_char], take_terminal: bool, report: libc::c_int) -> ! {
    // SAFETY: plain syscalls on this process; a failure is reported, not assumed away.
    unsafe {
        if libc::setpgid(0, 0) != 0 {
            fail(report, 0);
        }
        if take_terminal {
            // SIGTTOU is still ignored here, so a background meshinit cannot be stopped by
            // this; a terminal that went away is no reason to fail the task.
            libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid());
        }
        for sig in 1..=LAST_SIGNAL {
            // EINVAL is expected for KILL and STOP only; any other failure means the task
            // would start with a disposition it did not ask for.
            if !set_default(sig) && *libc::__errno_location() != libc::EINVAL {
                fail(report, 1);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            fail(report, 2);
        }
        libc::execvp(argv[0], argv.as_ptr());
        fail(report, STEP_EXEC)
    }
}

/// The kernel's `struct sigaction` (with sa_restorer, which x86-64 and arm64 both have).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: libc::sighandler_t,
    mask: u64,
}

/// Sets `sig` to SIG_DFL with the raw syscall: libc's sigaction refuses the real-time
/// signals it reserves for itself, and an ignored one (inherited from meshinit's parent)
/// would otherwise reach the task.
fn set_default(sig: libc::c_int) -> bool {
    let action = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: `action` matches the kernel's layout and outlives the call; the size
    // argument is the kernel's sigset size (8 bytes); a null old action is allowed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &action as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            std::mem::size_of::<u64>(),
        )
    };
    rc == 0
}

/// Writes (step, errno) to the report pipe and exits. Only used in the child.
fn fail(report: libc::c_int, step: u8) -> ! {
    // SAFETY: errno is thread-local storage of this (only) thread.
    let errno = unsafe { *libc::__errno_location() };
    let mut message = [0u8; 5];
    message[0] = step;
    message[1..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: `message` is valid for its length; _exit never returns. A failed write only
    // loses the reason: the parent then sees the 127 below as a plain exit.
    unsafe {
        libc::write(report, message.as_ptr().cast(), message.len());
        libc::_exit(127)
    }
}

/// Reads the child's report: `None` when exec succeeded (the pipe closed empty).
fn read_report(fd: libc::c_int) -> Option<(u8, i32)> {
    let mut message = [0u8; 5];
    let mut filled = 0;
    while filled < message.len() {
        // SAFETY: the destination is the unfilled tail of `message`.
        let n = unsafe {
            libc::read(
                fd,
                message[filled..].as_mut_ptr().cast(),
                message.len() - filled,
            )
        };
        match n {
            0 => break,
            n if n > 0 => filled += n as usize,
            _ if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            _ => break,
        }
    }
    if filled < message.len() {
        return None;
    }
    let errno = i32::from_ne_bytes([message[1], message[2], message[3], message[4]]);
    Some((message[0], errno))
}

/// Collects the child that failed before exec, so it does not stay a zombie.
fn reap_failed(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer. The child has already written its report
    // and is exiting, so this returns promptly.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
}

/// Whether meshinit's process group is the foreground group of the terminal on stdin.
fn owns_terminal() -> bool {
    // SAFETY: both calls only read process state; tcgetpgrp fails (-1) without a terminal.
    unsafe {
        let foreground = libc::tcgetpgrp(libc::STDIN_FILENO);
        foreground > 0 && foreground == libc::getpgrp()
    }
}

fn close(fd: libc::c_int) {
    // SAFETY: `fd` is a descriptor this module opened and closes once. close's only
    // failures here (EINTR, EIO) leave nothing to undo.
    unsafe { libc::close(fd) };
}
