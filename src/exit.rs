//! Every exit code meshinit itself chooses, in one place. The task's own code passes through
//! untouched; these are the codes for what went wrong around it.

/// sysexits EX_USAGE: the command line or a variable is wrong.
pub const USAGE: u8 = 64;
/// sysexits EX_UNAVAILABLE: the sidecar was not ready in time (or, for `quit`, not stopped).
pub const UNAVAILABLE: u8 = 69;
/// sysexits EX_SOFTWARE: meshinit itself failed.
pub const SOFTWARE: u8 = 70;
/// The shell's code for a command that exists but cannot be run.
pub const CANNOT_RUN: u8 = 126;
/// The shell's code for a command that is not found.
pub const NOT_FOUND: u8 = 127;

/// The shell's code for a process ended by signal `sig`: 128+N.
pub fn signalled(sig: libc::c_int) -> u8 {
    // Signal numbers are 1..=64, so the sum stays below 256.
    128u8.saturating_add(u8::try_from(sig).unwrap_or(127))
}

#[cfg(test)]
mod tests {
    #[test]
    fn signal_codes() {
        assert_eq!(super::signalled(libc::SIGTERM), 143);
        assert_eq!(super::signalled(libc::SIGKILL), 137);
        assert_eq!(super::signalled(64), 192);
    }
}
