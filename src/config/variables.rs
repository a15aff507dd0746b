//! The `MESHINIT_*` variables: one per option, read below the flags; and the ones that are
//! not meshinit's, pointed out (a typo must not pass unseen).

use super::environment::Environment;
use super::options::OPTIONS;
use super::settings::Settings;
use super::values::{self, UsageError};

/// Reads every `MESHINIT_*` variable of the option table that means something to `run` (a
/// bit of `options::runs`) into `settings`; a bad value goes to `note` and the rest is still
/// read.
pub fn read(
    settings: &mut Settings,
    env: &Environment,
    run: u8,
    note: &mut impl FnMut(UsageError),
) {
    for opt in OPTIONS.iter().filter(|opt| opt.runs & run != 0) {
        if let Some(raw) = env.get(opt.env) {
            if let Err(err) =
                values::utf8(opt.env, raw).and_then(|value| opt.apply(settings, opt.env, &value))
            {
                note(err);
            }
        }
    }
}

/// One warning for each `MESHINIT_*` variable that no option reads, with the closest name
/// that one does.
pub fn unknown(env: &Environment) -> Vec<String> {
    env.names()
        .filter(|name| name.starts_with("MESHINIT_") && !names().any(|known| known == *name))
        .map(|name| {
            let closest = names()
                .min_by_key(|known| distance(name, known))
                .unwrap_or_default();
            format!(
                "unknown variable {} is ignored; did you mean {closest}?",
                values::quoted(name)
            )
        })
        .collect()
}

/// The variables this module reads.
pub fn names() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().map(|opt| opt.env)
}

/// Levenshtein distance: the fewest one-character edits that turn `a` into `b`.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance() {
        assert_eq!(distance("MESHINIT_TIMOUT", "MESHINIT_TIMEOUT"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn typos_are_named_with_the_closest_known_name() {
        let env = Environment::of(&[
            ("MESHINIT_TIMOUT", "5s"),
            ("MESHINIT_MESH", "none"),
            ("MESHINIT_QUITURL", "x"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(
            unknown(&env),
            [
                "unknown variable 'MESHINIT_TIMOUT' is ignored; did you mean MESHINIT_TIMEOUT?",
                "unknown variable 'MESHINIT_QUITURL' is ignored; did you mean MESHINIT_QUIT_URL?"
            ]
        );
    }
}
