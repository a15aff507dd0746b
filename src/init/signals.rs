//! meshinit's own signal disposition: every signal is blocked and collected synchronously
//! with `sigtimedwait`, so nothing runs in a handler and an idle init sleeps in the kernel
//! until something happens. That includes SEGV, ILL, BUS, FPE, ABRT, TRAP and SYS: sent with
//! kill they are the task's, like any other. A real fault in meshinit still kills it, since
//! the kernel unblocks and delivers with the default action a signal that a fault raises.

use std::cell::Cell;
use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

/// The signals the main loop collects.
pub struct Signals {
    collected: libc::sigset_t,
    /// The first termination signal collected (`ends_waiting`), whoever took it: the pod is
    /// stopping, and a later wait for other containers must not outlast it.
    terminated: Cell<Option<libc::c_int>>,
}

impl Signals {
    /// Blocks every signal that the loop will collect, and ignores SIGTTIN/SIGTTOU so that
    /// handing the terminal to the task cannot stop meshinit (as tini does).
    pub fn take_over() -> io::Result<Signals> {
        let mut collected = empty_set();
        // Every bit set, not sigfillset: musl's leaves out 32-34 (its own), and a signal
        // that meshinit does not block ends it by the default action, orphaning the task.
        // SAFETY: `collected` is a valid sigset_t owned by this frame; any bit pattern is a
        // valid set, and the kernel ignores KILL and STOP in a mask.
        unsafe {
            std::ptr::write_bytes(
                (&mut collected as *mut libc::sigset_t).cast::<u8>(),
                0xff,
                std::mem::size_of::<libc::sigset_t>(),
            )
        };
        for sig in [libc::SIGTTIN, libc::SIGTTOU] {
            // SAFETY: as above; `sig` is a valid signal number.
            check(unsafe { libc::sigdelset(&mut collected, sig) })?;
        }
        // SAFETY: `collected` is initialised; a null old-set pointer is allowed.
        check(unsafe { libc::sigprocmask(libc::SIG_SETMASK, &collected, std::ptr::null_mut()) })?;
        for sig in [libc::SIGTTIN, libc::SIGTTOU] {
            set_disposition(sig, libc::SIG_IGN)?;
        }
        Ok(Signals {
            collected,
            terminated: Cell::new(None),
        })
    }

    /// Waits for one collected signal. `None` as timeout waits without limit; a timeout that
    /// runs out gives `Ok(None)`.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<libc::c_int>> {
        let limit = timeout.map(|t| libc::timespec {
            // Capped at 68 years so it fits a 32-bit time_t too.
            tv_sec: t.as_secs().min(i32::MAX as u64) as _,
            // Below 10^9, so it fits any c_long.
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let limit_ptr = limit
            .as_ref()
            .map_or(std::ptr::null(), |l| l as *const libc::timespec);
        loop {
            let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
            // SAFETY: `collected` is initialised; `info` has room for a siginfo_t; the
            // timespec pointer is null (no limit) or points at `limit`, alive for the call.
            let sig = unsafe { libc::sigtimedwait(&self.collected, info.as_mut_ptr(), limit_ptr) };
            if sig > 0 {
                // SAFETY: sigtimedwait filled `info` for the signal it returned.
                let info = unsafe { info.assume_init() };
                if sent_by_self(&info) {
                    // A SIGPIPE from meshinit's own write to a stderr whose reader went
                    // away: not the task's business.
                    return Ok(None);
                }
                self.note(sig);
                return Ok(Some(sig));
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(None),
                // A stop/continue of meshinit itself interrupts the wait; wait again.
                Some(libc::EINTR) => continue,
                _ => return Err(err),
            }
        }
    }
}

impl Signals {
    /// The first termination signal collected so far, if one was.
    pub fn terminated(&self) -> Option<libc::c_int> {
        self.terminated.get()
    }

    fn note(&self, sig: libc::c_int) {
        if ends_waiting(sig) && self.terminated.get().is_none() {
            self.terminated.set(Some(sig));
        }
    }

    /// Takes a termination signal that is already pending, if one is: one that arrived
    /// during the last readiness request, which does not watch for signals, must still end
    /// the run before the task starts. Other pending signals stay for the task.
    pub fn pending_termination(&self) -> io::Result<Option<libc::c_int>> {
        let mut pending = empty_set();
        // SAFETY: `pending` is a valid sigset_t owned by this frame.
        check(unsafe { libc::sigpending(&mut pending) })?;
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
            // SAFETY: `pending` is initialised; `sig` is a valid signal number.
            if unsafe { libc::sigismember(&pending, sig) } != 1 {
                continue;
            }
            let mut only = empty_set();
            // SAFETY: as above.
            check(unsafe { libc::sigaddset(&mut only, sig) })?;
            let now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `only` and `now` are initialised and outlive the call; a null info
            // pointer is allowed.
            if unsafe { libc::sigtimedwait(&only, std::ptr::null_mut(), &now) } == sig {
                self.note(sig);
                return Ok(Some(sig));
            }
        }
        Ok(None)
    }
}

fn sent_by_self(info: &libc::siginfo_t) -> bool {
    // SAFETY: si_pid is valid for SI_USER signals, checked first.
    info.si_code == libc::SI_USER
        && i64::from(unsafe { info.si_pid() }) == i64::from(std::process::id())
}

/// Signals that end a wait in which there is no task to forward them to (before the task
/// starts, or for a sidecar after it ended). URG from a Go runtime, WINCH and the rest do not.
pub fn ends_waiting(sig: libc::c_int) -> bool {
    matches!(
        sig,
        libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGQUIT
    )
}

/// Sends `sig` to `target` (a pid, or minus a process group). A target that is already
/// gone is not an error: its SIGCHLD is on the way.
pub fn send(target: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill has no memory arguments.
    if unsafe { libc::kill(target, sig) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ESRCH) => Ok(()),
        _ => Err(err),
    }
}

/// Whether any process is left in process group `pgid`.
pub fn group_alive(pgid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(-pgid, 0) };
    // EPERM means someone is there that we may not signal.
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

fn empty_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: sigemptyset initialises the set it is given; it cannot fail for a valid pointer.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        set.assume_init()
    }
}

fn set_disposition(sig: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: an all-zero sigaction is valid (empty mask, no flags); we set the handler field.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    // SAFETY: `action` is initialised and outlives the call; a null old-action is allowed.
    check(unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A signal's name without the SIG prefix, for log lines.
pub fn name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGHUP => "HUP",
        libc::SIGINT => "INT",
        libc::SIGQUIT => "QUIT",
        libc::SIGUSR1 => "USR1",
        libc::SIGUSR2 => "USR2",
        libc::SIGPIPE => "PIPE",
        libc::SIGALRM => "ALRM",
        libc::SIGTERM => "TERM",
        libc::SIGCHLD => "CHLD",
        libc::SIGCONT => "CONT",
        libc::SIGTSTP => "TSTP",
        libc::SIGURG => "URG",
        libc::SIGXCPU => "XCPU",
        libc::SIGXFSZ => "XFSZ",
        libc::SIGVTALRM => "VTALRM",
        libc::SIGPROF => "PROF",
        libc::SIGWINCH => "WINCH",
        libc::SIGIO => "IO",
        libc::SIGPWR => "PWR",
        libc::SIGSTKFLT => "STKFLT",
        libc::SIGILL => "ILL",
        libc::SIGTRAP => "TRAP",
        libc::SIGABRT => "ABRT",
        libc::SIGBUS => "BUS",
        libc::SIGFPE => "FPE",
        libc::SIGSEGV => "SEGV",
        libc::SIGSYS => "SYS",
        libc::SIGKILL => "KILL",
        libc::SIGSTOP => "STOP",
        libc::SIGTTIN => "TTIN",
        libc::SIGTTOU => "TTOU",
        // The real-time signals as bash's `kill -l` names them; libc keeps 32 and 33.
        32..=64 => REALTIME[(sig - 32) as usize],
        _ => "?",
    }
}

/// The signal `text` names: a number from 0 to 64, or a name as `name` gives it, in any
/// case, with or without `SIG`.
pub fn number(text: &str) -> Option<libc::c_int> {
    if let Ok(sig) = text.parse::<libc::c_int>() {
        return (0..=64).contains(&sig).then_some(sig);
    }
    let bare = match text.get(..3) {
        Some(prefix) if prefix.eq_ignore_ascii_case("SIG") => &text[3..],
        _ => text,
    };
    (1..=64).find(|&sig| name(sig).eq_ignore_ascii_case(bare))
}

const REALTIME: [&str; 33] = [
    "32", "33", "RTMIN", "RTMIN+1", "RTMIN+2", "RTMIN+3", "RTMIN+4", "RTMIN+5", "RTMIN+6",
    "RTMIN+7", "RTMIN+8", "RTMIN+9", "RTMIN+10", "RTMIN+11", "RTMIN+12", "RTMIN+13", "RTMIN+14",
    "RTMIN+15", "RTMAX-14", "RTMAX-13", "RTMAX-12", "RTMAX-11", "RTMAX-10", "RTMAX-9", "RTMAX-8",
    "RTMAX-7", "RTMAX-6", "RTMAX-5", "RTMAX-4", "RTMAX-3", "RTMAX-2", "RTMAX-1", "RTMAX",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_has_the_name_kill_l_gives_it() {
        for sig in 1..=64 {
            let out = std::process::Command::new("bash")
                .args(["-c", &format!("kill -l {sig}")])
                .output()
                .expect("bash");
            let expected = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let expected = if expected.is_empty() {
                sig.to_string()
            } else {
                expected
            };
            assert_eq!(name(sig), expected, "signal {sig}");
            // Read back from its name, with and without SIG, in any case, and its number.
            assert_eq!(number(&expected), Some(sig), "{expected}");
            assert_eq!(
                number(&format!("sig{}", expected.to_lowercase())),
                Some(sig)
            );
            assert_eq!(number(&sig.to_string()), Some(sig));
        }
        for bad in ["", "SIG", "TERMS", "65", "-1", "RTMIN+16"] {
            assert_eq!(number(bad), None, "{bad}");
        }
        assert_eq!(number("0"), Some(0));
    }
}
