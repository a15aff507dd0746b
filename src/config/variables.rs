//! The `MESHINIT_*` variables: one per option, read below the flags.

use std::ffi::OsString;

use super::options::{self, SPECS};
use super::settings::Settings;
use super::values::{self, UsageError};

/// Reads every `MESHINIT_*` variable of the option table into `settings`; a bad value goes
/// to `note` and the rest is still read.
pub fn read(
    settings: &mut Settings,
    env: &impl Fn(&str) -> Option<OsString>,
    note: &mut impl FnMut(UsageError),
) {
    for spec in SPECS {
        if let Some(raw) = env(spec.env) {
            if let Err(err) = values::utf8(spec.env, raw)
                .and_then(|value| options::apply(settings, spec.key, spec.env, &value))
            {
                note(err);
            }
        }
    }
}

/// The variables this module reads.
#[cfg(test)]
pub fn names() -> impl Iterator<Item = &'static str> {
    SPECS.iter().map(|spec| spec.env)
}
