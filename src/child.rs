//! Starting the task: a vfork-style clone (the parent waits, no page tables are copied),
//! then in the child a clean signal state, its own process group, and exec. A failure in
//! the child comes back as an errno in shared memory, so that "not found" and "not
//! executable" are told apart and reported by meshinit itself.

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

    let mut shared = Shared {
        argv: pointers.as_ptr(),
        take_terminal,
        failure: None,
    };
    // SAFETY: CLONE_VM|CLONE_VFORK runs `child_main` on CHILD_STACK with meshinit's memory
    // and suspends this (only) thread until the child execs or exits, so nothing else
    // touches `shared` or the stack meanwhile. The stack is used by one child at a time.
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
            if step == STEP_EXEC {
                Err(SpawnError::Exec { command, err })
            } else {
                let step = STEPS.get(usize::from(step)).copied().unwrap_or("child");
                Err(setup(step, err))
            }
        }
    }
}

/// What the parent hands the child and the child hands back (on failure).
struct Shared {
    argv: *const *const libc::c_char,
    take_terminal: bool,
    failure: Option<(u8, i32)>,
}

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
    let argv = shared.argv;
    // SAFETY: plain syscalls on this process; a failure is reported, not assumed away.
    unsafe {
        if libc::setpgid(0, 0) != 0 {
            fail(shared, 0);
        }
        if shared.take_terminal {
            // SIGTTOU is still ignored here, so a background meshinit cannot be stopped by
            // this; a terminal that went away is no reason to fail the task.
            libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid());
        }
        for sig in 1..=LAST_SIGNAL {
            // EINVAL is expected for KILL and STOP only; any other failure means the task
            // would start with a disposition it did not ask for.
            if !set_default(sig) && *libc::__errno_location() != libc::EINVAL {
                fail(shared, 1);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            fail(shared, 2);
        }
        libc::execvp(*argv, argv);
        fail(shared, STEP_EXEC)
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

/// Records (step, errno) for the parent and exits. Only used in the child.
fn fail(shared: &mut Shared, step: u8) -> ! {
    // SAFETY: errno is this thread's; the write goes to the parent's memory, which it reads
    // only after this child has exited; _exit never returns.
    unsafe {
        let errno = *libc::__errno_location();
        std::ptr::write_volatile(std::ptr::addr_of_mut!(shared.failure), Some((step, errno)));
        libc::_exit(127)
    }
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
