//! Durations in Go's syntax (`1m30s`, `250ms`, `1.5h`, `0`), because scuttle's and
//! envoy-preflight's variables are written that way and must keep their meaning.

use std::time::Duration;

/// What a duration may look like, for error messages.
pub const FORM: &str = "a duration such as 500ms, 2s or 1m30s (units ns, us, ms, s, m, h), \
                        at most 2562047h47m16.854775807s";

/// The largest duration accepted, in nanoseconds: Go's (an int64 of them), so that every
/// value scuttle accepted is still accepted, and far below what a deadline on the monotonic
/// clock can hold (larger ones made `Instant + Duration` overflow, a panic in PID 1).
const LARGEST: u128 = i64::MAX as u128;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// `d` as the plainest duration text that parses back to it exactly: `0`, `60s`, `250ms`,
/// else nanoseconds; for `--help`'s defaults.
pub fn show(d: Duration) -> String {
    if d.is_zero() {
        "0".to_owned()
    } else if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

/// Parses a non-negative Go duration. `None` means the text is not one.
pub fn parse(text: &str) -> Option<Duration> {
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (whole, after_whole) = split_digits(rest);
        let (fraction, after_number) = match after_whole.strip_prefix('.') {
            Some(after_dot) => split_digits(after_dot),
            None => ("", after_whole),
        };
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, next) = after_number.split_at(unit_len);
        let scale = unit_nanos(unit)?;
        total = total.checked_add(scaled(whole, fraction, scale)?)?;
        rest = next;
    }
    if total > LARGEST {
        return None;
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).ok()?;
    // The remainder is below 10^9, so it fits.
    let nanos = (total % NANOS_PER_SEC) as u32;
    Some(Duration::new(secs, nanos))
}

fn split_digits(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        _ => return None,
    })
}

/// `whole.fraction` times `scale` nanoseconds, truncated to whole nanoseconds as Go does.
fn scaled(whole: &str, fraction: &str, scale: u128) -> Option<u128> {
    let mut nanos = digits_value(whole)?.checked_mul(scale)?;
    let mut place = scale;
    for digit in fraction.bytes() {
        place /= 10;
        if place == 0 {
            break;
        }
        nanos = nanos.checked_add(u128::from(digit - b'0') * place)?;
    }
    Some(nanos)
}

fn digits_value(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |acc, digit| {
        acc.checked_mul(10)?.checked_add(u128::from(digit - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::for_a_while;

    #[test]
    fn shown_durations_parse_back() {
        for d in [
            Duration::ZERO,
            Duration::from_secs(60),
            Duration::from_millis(1500),
            Duration::new(9_223_372_036, 854_775_807),
            Duration::from_nanos(1),
        ] {
            assert_eq!(parse(&show(d)), Some(d), "{}", show(d));
        }
        assert_eq!(show(Duration::from_secs(4)), "4s");
    }

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn go_forms() {
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(parse("+0"), Some(Duration::ZERO));
        assert_eq!(parse("0s"), Some(Duration::ZERO));
        assert_eq!(parse("500ms"), ms(500));
        assert_eq!(parse("2s"), ms(2_000));
        assert_eq!(parse("1m30s"), ms(90_000));
        assert_eq!(parse("1h2m3s4ms"), ms(3_723_004));
        assert_eq!(parse("1.5s"), ms(1_500));
        assert_eq!(parse(".5s"), ms(500));
        assert_eq!(parse("1.s"), ms(1_000));
        assert_eq!(parse("1.5h"), ms(5_400_000));
        assert_eq!(parse("10us"), Some(Duration::from_micros(10)));
        assert_eq!(parse("10µs"), Some(Duration::from_micros(10)));
        assert_eq!(parse("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(parse("1.0000000009s"), Some(Duration::from_secs(1)));
        assert_eq!(parse("2s2s"), ms(4_000));
        assert_eq!(
            parse("2562047h47m16.854775807s"),
            Some(Duration::new(9_223_372_036, 854_775_807))
        );
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "+",
            "5",
            "-1s",
            "s",
            ".s",
            "1x",
            "1 s",
            "1s ",
            " 1s",
            "1..5s",
            "1sm",
            "ms5",
            "1.2.3s",
            "99999999999999999999999h",
            "2562047h47m16.854775808s",
            "2600000000000000h",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fuzzed_durations() {
        const SEEDS: &[&str] = &[
            "0",
            "1m30s",
            "250ms",
            "1.5h",
            "+2s",
            ".5us",
            "10ns",
            "1h2m3s4ms5us6ns",
        ];
        const UNITS: [(&str, u128); 7] = [
            ("ns", 1),
            ("us", 1_000),
            ("µs", 1_000),
            ("ms", 1_000_000),
            ("s", 1_000_000_000),
            ("m", 60_000_000_000),
            ("h", 3_600_000_000_000),
        ];
        for_a_while("durations", 100_000, |rng| {
            // Structured: a sum of parts whose value is known exactly.
            let mut text = String::new();
            let mut nanos: u128 = 0;
            for _ in 0..=rng.below(3) {
                let (unit, scale) = *rng.pick(&UNITS);
                let whole = rng.next() % 100_000;
                text.push_str(&format!("{whole}{unit}"));
                nanos += u128::from(whole) * scale;
            }
            let expected = Duration::new(
                (nanos / 1_000_000_000) as u64,
                (nanos % 1_000_000_000) as u32,
            );
            assert_eq!(parse(&text), Some(expected), "{text:?}");
            // Mutated: anything at all; a value or None, never a panic.
            let seed = rng.word(SEEDS);
            let mutated = rng.mutate(seed, &["ms", ".", "-", "h", "99999999999999999999"]);
            // Accepted exactly when Go's grammar says so (a second, plainer reading of it) and
            // the value is at most Go's largest, 2^63-1 ns (about 9.223e9 s); near it the rough
            // float sum cannot tell.
            let accepted = parse(&mutated).is_some();
            let grammar = go_duration_syntax(&mutated);
            let expected = match grammar {
                None => Some(false),
                Some(seconds) if seconds < 9.2e9 => Some(true),
                Some(seconds) if seconds > 9.25e9 => Some(false),
                Some(_) => None,
            };
            assert!(
                expected.is_none_or(|e| e == accepted),
                "{mutated:?}: parse says {accepted}, the grammar {grammar:?}"
            );
            1
        });
    }

    /// Go's duration grammar: `[+]?0` or `[+]?(NUMBER UNIT)+` with NUMBER `D+`, `D+.D*` or
    /// `.D+`, and UNIT one of ns us µs μs ms s m h. The value, roughly, in seconds.
    fn go_duration_syntax(text: &str) -> Option<f64> {
        let rest = text.strip_prefix('+').unwrap_or(text);
        if rest == "0" {
            return Some(0.0);
        }
        let mut rest = rest;
        if rest.is_empty() {
            return None;
        }
        let mut seconds = 0.0;
        while !rest.is_empty() {
            let number_start = rest;
            let whole = rest.chars().take_while(char::is_ascii_digit).count();
            rest = &rest[whole..];
            let mut fraction = 0;
            if let Some(after) = rest.strip_prefix('.') {
                fraction = after.chars().take_while(char::is_ascii_digit).count();
                rest = &after[fraction..];
            }
            if whole == 0 && fraction == 0 {
                return None;
            }
            let number: f64 = number_start[..number_start.len() - rest.len()]
                .parse()
                .unwrap_or(f64::MAX);
            let (unit, scale) = [
                ("ns", 1e-9),
                ("us", 1e-6),
                ("µs", 1e-6),
                ("μs", 1e-6),
                ("ms", 1e-3),
                ("s", 1.0),
                ("m", 60.0),
                ("h", 3600.0),
            ]
            .into_iter()
            .find(|(u, _)| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")))?;
            seconds += number * scale;
            rest = &rest[unit.len()..];
        }
        Some(seconds)
    }
}
