//! The seeded generator and the time loop that the property-based fuzz tests share (see
//! `config::fuzz`, `sidecar::fuzz` and `logging::tests`). Each target runs for
//! MESHINIT_FUZZ_SECONDS (default 6) and must try at least its minimum number of cases.
//! The seed is fixed, so `cargo test` tries the same inputs on every machine; it is printed,
//! MESHINIT_FUZZ_SEED=N repeats another, and MESHINIT_FUZZ_SEED=random (scripts/reliability)
//! draws a new one.

use std::time::{Duration, Instant};

/// `cargo test`'s seed.
pub const FIXED_SEED: u64 = 0x6d65_7368_696e_6974;

pub struct Rng(u64);

impl Rng {
    pub fn new(target: &str) -> Rng {
        let seed = match std::env::var("MESHINIT_FUZZ_SEED").ok().as_deref() {
            None | Some("") => FIXED_SEED,
            Some("random") => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
            Some(text) => text
                .parse()
                .unwrap_or_else(|_| panic!("MESHINIT_FUZZ_SEED: a number or random, got {text}")),
        };
        eprintln!("fuzz {target}: MESHINIT_FUZZ_SEED={seed}");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn word(&mut self, words: &[&'static str]) -> &'static str {
        words[self.below(words.len())]
    }

    /// A mutation of `seed`: bytes replaced, inserted, deleted, spliced with `pool` tokens.
    pub fn mutate(&mut self, seed: &str, pool: &[&str]) -> String {
        let mut s: Vec<char> = seed.chars().collect();
        for _ in 0..=self.below(4) {
            let at = self.below(s.len() + 1);
            match self.below(5) {
                0 if !s.is_empty() => {
                    s.remove(at.min(s.len() - 1));
                }
                1 => s.insert(at, char::from(b' ' + self.below(95) as u8)),
                2 => {
                    for (i, c) in self.pick(pool).chars().enumerate() {
                        s.insert((at + i).min(s.len()), c);
                    }
                }
                3 if !s.is_empty() => {
                    let end = at + self.below(s.len() - at.min(s.len()) + 1);
                    s.truncate(end.min(s.len()));
                }
                _ => s.insert(
                    at,
                    *self.pick(&['\0', '\u{b5}', '\u{10ffff}', '\u{feff}', '\n']),
                ),
            }
        }
        s.into_iter().collect()
    }
}

/// How long each target runs.
fn seconds() -> Duration {
    let s = std::env::var("MESHINIT_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6.0_f64);
    Duration::from_secs_f64(s)
}

/// Runs `body` until the time is up, then checks that it tried at least `min_cases`
/// inputs (a body that became slow, or a loop cut short, fails). `body` returns how many
/// inputs it tried (a batch may hold several).
pub fn for_a_while(target: &str, min_cases: u64, mut body: impl FnMut(&mut Rng) -> u64) {
    let mut rng = Rng::new(target);
    let until = Instant::now() + seconds();
    let mut count = 0u64;
    while Instant::now() < until {
        count += body(&mut rng);
    }
    eprintln!("fuzz {target}: {count} inputs");
    // The minimum is for the default 6 s; a shorter run scales it down.
    let wanted = (min_cases as f64 * (seconds().as_secs_f64() / 6.0).min(1.0)) as u64;
    assert!(
        count >= wanted,
        "fuzz {target}: only {count} inputs, at least {wanted} wanted"
    );
}

/// Whether the tests run under CI (`CI=true` or `1`), where a missing tool fails a test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
