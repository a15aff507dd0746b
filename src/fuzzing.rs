//! The seeded generator and the time loop that the property-based fuzz tests share (see
//! `config::fuzz` and `sidecar::fuzz`). Each target runs for MESHINIT_FUZZ_SECONDS (default
//! 6); MESHINIT_FUZZ_SEED repeats a run; scripts/reliability runs the long form.

use std::time::{Duration, Instant};

pub struct Rng(u64);

impl Rng {
    pub fn new(target: &str) -> Rng {
        let seed = std::env::var("MESHINIT_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
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

fn seconds() -> Duration {
    let s = std::env::var("MESHINIT_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6.0_f64);
    Duration::from_secs_f64(s)
}

/// Runs `body` until the time is up; reports how many inputs it tried.
pub fn for_a_while(target: &str, mut body: impl FnMut(&mut Rng)) {
    let mut rng = Rng::new(target);
    let until = Instant::now() + seconds();
    let mut count = 0u64;
    while Instant::now() < until {
        body(&mut rng);
        count += 1;
    }
    eprintln!("fuzz {target}: {count} inputs");
}
