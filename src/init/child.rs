//! Starting the task: a vfork-style clone (the parent waits, no page tables are copied),
//! then in the child a clean signal state, its own process group, and exec. A failure in
//! the child comes back as an errno in shared memory, so that "not found" and "not
//! executable" are told apart and reported by meshinit itself.

use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;

use super::command::SpawnError;
use crate::ending::exit;

/// The highest signal number the kernel knows (including real-time ones).
const LAST_SIGNAL: libc::c_int = 64;

/// The running task.
#[derive(Clone, Copy, Debug)]
pub struct Child {
    pub pid: libc::pid_t,
}

/// The child's steps before the task runs, in order; a failed one comes back to the parent
/// in `Shared::failure`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Setpgid,
    Sigaction,
    Sigprocmask,
    Exec,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Setpgid => "setpgid",
            Step::Sigaction => "sigaction",
            Step::Sigprocmask => "sigprocmask",
            Step::Exec => "exec",
        }
    }
}

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

    let mut shared = Shared {
        argv: pointers.as_ptr(),
        take_terminal,
        failure: None,
    };
    debug_assert!(super::one_thread(), "clone with other threads running");
    // SAFETY: CLONE_VM|CLONE_VFORK runs `child_main` on CHILD_STACK with meshinit's memory
    // and suspends this thread, meshinit's one (see init/mod.rs), until the child execs or
    // exits, so nothing else touches `shared` or the stack meanwhile. The stack is used by
    // one child at a time.
    let pid = unsafe {
        let stack = std::ptr::addr_of_mut!(CHILD_STACK).cast::<u8>();
        libc::clone(
            child_main,
            stack.add(CHILD_STACK_SIZE).cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::addr_of_mut!(shared).cast(),
        )
    };
    if pid < 0 {
        return Err(setup("clone", io::Error::last_os_error()));
    }
    // SAFETY: the child has exec'd or exited; `shared` is ours again.
    let failure = unsafe { std::ptr::read_volatile(std::ptr::addr_of!(shared.failure)) };
    match failure {
        None => Ok(Child { pid }),
        Some((step, errno)) => {
            reap_failed(pid);
            let err = io::Error::from_raw_os_error(errno);
            match step {
                Step::Exec => Err(SpawnError::Exec { command, err }),
                step => Err(setup(step.name(), err)),
            }
        }
    }
}

/// What the parent hands the child and the child hands back (on failure).
struct Shared {
    argv: *const *const libc::c_char,
    take_terminal: bool,
    failure: Option<(Step, i32)>,
}

/// The child's stack until exec. What runs on it: setpgid, tcsetpgrp, 64 raw
/// rt_sigaction calls, sigprocmask, and musl's execvp, whose PATH search keeps one path
/// (at most PATH_MAX + NAME_MAX + 2 bytes, about 4.4 KiB) on the stack, and execve. Under
/// 8 KiB in all: 64 KiB leaves a margin of eight times.
const CHILD_STACK_SIZE: usize = 64 * 1024;
/// The child's stack until it execs: in .bss, so only the pages it touches cost memory;
/// u128 elements keep it 16-byte aligned as both ABIs want.
static mut CHILD_STACK: [u128; CHILD_STACK_SIZE / 16] = [0; CHILD_STACK_SIZE / 16];

extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `Shared`, alive and untouched while the parent is
    // suspended by CLONE_VFORK.
    let shared = unsafe { &mut *arg.cast::<Shared>() };
    run_child(shared)
}

/// The child's side. Only async-signal-safe calls, no allocation: it shares the parent's
/// memory until exec.
fn run_child(shared: &mut Shared) -> ! {
    // SAFETY: setpgid on this process has no memory arguments.
    if unsafe { libc::setpgid(0, 0) } != 0 {
        fail(shared, Step::Setpgid);
    }
    if shared.take_terminal {
        // SIGTTOU is still ignored here, so a background meshinit cannot be stopped by
        // this; a terminal that went away is no reason to fail the task.
        // SAFETY: plain calls on this process and its stdin, no memory arguments.
        unsafe { libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid()) };
    }
    for sig in 1..=LAST_SIGNAL {
        // EINVAL is expected for KILL and STOP only; any other failure means the task
        // would start with a disposition it did not ask for.
        if !set_default(sig) && errno() != libc::EINVAL {
            fail(shared, Step::Sigaction);
        }
    }
    // SAFETY: an all-zero sigset_t is a valid empty set on Linux.
    let empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `empty` is initialised; a null old-set pointer is allowed.
    if unsafe { libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) } != 0 {
        fail(shared, Step::Sigprocmask);
    }
    // SAFETY: `argv` is a null-terminated array of C strings that the parent keeps alive
    // until this child has exec'd or exited.
    unsafe { libc::execvp(*shared.argv, shared.argv) };
    fail(shared, Step::Exec)
}

/// This thread's errno.
fn errno() -> libc::c_int {
    // SAFETY: __errno_location returns this thread's errno slot, valid for its lifetime.
    unsafe { *libc::__errno_location() }
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

/// Records (step, errno) for the parent and exits. Only used in the child.
fn fail(shared: &mut Shared, step: Step) -> ! {
    let report = Some((step, errno()));
    // SAFETY: the write goes to the parent's memory, which it reads only after this child
    // has exited.
    unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!(shared.failure), report) };
    // SAFETY: _exit takes no memory arguments and never returns.
    unsafe { libc::_exit(i32::from(exit::NOT_FOUND)) }
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
/// Both read 0 when the group lives outside meshinit's PID namespace (meshinit as PID 1 of
/// `unshare --pid --fork`: its group was made by unshare, outside): then meshinit cannot
/// tell whose the terminal is, and hands it over as tini does, since a task left without
/// it stops on its first read and the run never ends.
fn owns_terminal() -> bool {
    // SAFETY: both calls only read process state; tcgetpgrp fails (-1) without a terminal.
    unsafe {
        let foreground = libc::tcgetpgrp(libc::STDIN_FILENO);
        foreground >= 0 && foreground == libc::getpgrp()
    }
}
