//! Property-based fuzzing of the configuration on stable, with a seeded PRNG and seed
//! inputs mutated at random: every configuration source (flags, MESHINIT_* variables,
//! scuttle's and envoy-preflight's; the durations alone are fuzzed in `duration`). Properties: never a panic, never
//! slow, always a value or an error naming the input.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use super::options::{Form, OPTIONS};
use super::{compat, parse, resolve, values, variables, Environment, Plan};
use crate::fuzzing::{for_a_while, Rng};
use crate::sidecar::endpoints::Sidecar;

/// Every option's flag from the table (and its short form), the other words a command
/// line may hold, and some that it should not.
fn flags() -> Vec<String> {
    let mut flags: Vec<String> = OPTIONS.iter().map(|o| format!("--{}", o.long)).collect();
    flags.extend(
        OPTIONS
            .iter()
            .filter_map(|o| o.short)
            .map(|c| format!("-{c}")),
    );
    flags.extend(
        [
            "--help",
            "--version",
            "--",
            "wait",
            "quit",
            "install",
            "--bogus",
            "-x",
        ]
        .map(String::from),
    );
    flags
}

/// Every word value of the table's options, and values of every other form.
fn values() -> Vec<String> {
    let mut values: Vec<String> = OPTIONS
        .iter()
        .filter_map(|o| match o.form {
            Form::Words(words) => Some(words()),
            Form::Text(_) => None,
        })
        .flat_map(|list| {
            list.replace(" or ", ", ")
                .split(", ")
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    values.extend(
        [
            "true",
            "false",
            "yes",
            "0",
            "1",
            "2s",
            "1m30s",
            "0s",
            // The largest duration accepted, and ones beyond what a deadline can hold.
            "2562047h47m16.854775807s",
            "2562047h47m16.854775808s",
            "2600000000000000h",
            "DEBUG",
            "http://127.0.0.1:15000/ready",
            "http://localhost:4191",
            "https://x",
            "/usr/local/bin/envoy",
            "http://a:b@127.0.0.1:1/q,http://127.0.0.1:2/r",
            "",
            ",",
            "=",
            "--",
            "sh",
        ]
        .map(String::from),
    );
    values
}

#[test]
fn configuration_sources() {
    let variables: Vec<&'static str> = variables::names()
        .chain(compat::VARIABLES.iter().map(|(name, _, _, _)| *name))
        .collect();
    let (flags, values) = (flags(), values());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    for option in OPTIONS {
        assert!(flags.contains(&format!("--{}", option.long).as_str()));
    }
    for_a_while("configuration", 10_000, |rng| {
        a_valid_configuration_gives_its_plan(rng);
        let mut args: Vec<String> = Vec::new();
        for _ in 0..rng.below(6) {
            let flag = *rng.pick(&flags);
            if rng.below(3) == 0 {
                args.push(format!("{flag}={}", rng.pick(&values)));
            } else {
                args.push(flag.to_owned());
                if rng.below(4) != 0 {
                    let seed = *rng.pick(&values);
                    args.push(rng.mutate(seed, &values));
                }
            }
        }
        if rng.below(2) == 0 {
            args.push("true".to_owned());
        }
        let env: Vec<(String, String)> = (0..rng.below(5))
            .map(|_| {
                let name = *rng.pick(&variables);
                let value = match rng.below(3) {
                    0 => (*rng.pick(&values)).to_owned(),
                    _ => {
                        let seed = *rng.pick(&values);
                        rng.mutate(seed, &values)
                    }
                };
                (name.to_owned(), value)
            })
            .collect();
        let environment = Environment::new(env.iter().map(|(n, v)| (n.clone(), OsString::from(v))));
        let began = Instant::now();
        let result = parse(args.iter().map(OsString::from), &environment);
        assert!(
            began.elapsed() < Duration::from_secs(1),
            "slow parse: {args:?} {env:?}"
        );
        if let Ok(super::Invocation::Run(settings)) = &result {
            deadlines_hold(&resolve(settings));
        }
        if let Err(failure) = result {
            let message = failure.error.0;
            let args: Vec<String> = args.iter().map(|a| values::escape_controls(a)).collect();
            // A short option cluster is reported one letter at a time.
            let short = |a: &String| {
                a.starts_with('-')
                    && !a.starts_with("--")
                    && a.chars()
                        .skip(1)
                        .any(|c| message.contains(&format!("-{c}")))
            };
            let names_input = message.starts_with("missing COMMAND")
                || (message.starts_with("missing DIR") && args.iter().any(|a| a == "install"))
                || args.iter().any(short)
                || message.contains("wait and quit take no COMMAND")
                || message.contains("install takes one DIR")
                || env.iter().any(|(n, _)| message.starts_with(n.as_str()))
                || args.iter().any(|a| {
                    let flag = a.split('=').next().unwrap_or(a);
                    // A message repeats at most 80 characters of what it names.
                    let shown: String = flag.chars().take(80).collect();
                    !flag.is_empty() && message.contains(&shown)
                });
            assert!(
                names_input,
                "error names nothing given: {message:?}\nargs {args:?}\nenv {env:?}"
            );
            assert!(!message.contains('\n'), "one line: {message:?}");
        }
        1
    });
}

/// Every duration of a resolved plan through the deadline arithmetic a run does with it
/// (`Instant + Duration` panics on overflow, and a panic in PID 1 is a crash before the
/// sidecar is told): the wait's and the search's deadlines, the quit's budget and its
/// half for the notified endpoints, the window, the confirmation, the grace.
fn deadlines_hold(plan: &Plan) {
    let now = Instant::now();
    let mut all: Vec<Duration> = DURATION_FIELDS
        .iter()
        .map(|(_, field)| field(plan))
        .collect();
    if let Sidecar::Search { look_for, .. } = &plan.wait.sidecar {
        all.push(*look_for);
        all.push((*look_for).min(plan.wait.timeout));
    }
    for duration in all {
        assert!(
            now.checked_add(duration).is_some(),
            "{duration:?}: {plan:?}"
        );
        assert!(now.checked_add(duration / 2).is_some());
    }
}

/// Reads one duration of the plan.
type Field = fn(&Plan) -> Duration;

/// The plan's value of each duration option, by its long name.
const DURATION_FIELDS: [(&str, Field); 5] = [
    ("timeout", |p| p.wait.timeout),
    ("quit-budget", |p| p.quit.limits.budget),
    ("quit-wait", |p| p.quit.limits.wait),
    ("quit-window", |p| p.quit.limits.window),
    ("grace", |p| p.task.grace),
];

/// A configuration made only of valid values, in every form (`--x=v`, `--x v`, the
/// variable, both with the flag winning), in random order: it parses, and the plan holds
/// exactly what was given, the defaults elsewhere.
fn a_valid_configuration_gives_its_plan(rng: &mut Rng) {
    let mut args: Vec<String> = Vec::new();
    let mut env: Vec<(String, OsString)> = Vec::new();
    let mut expected: Vec<(&str, Duration)> = Vec::new();
    let default = match parse([OsString::from("true")], &Environment::of(&[])) {
        Ok(super::Invocation::Run(settings)) => resolve(&settings),
        other => panic!("{other:?}"),
    };
    let mut fields = DURATION_FIELDS.to_vec();
    for _ in 0..rng.below(fields.len() + 1) {
        let (long, _) = fields.remove(rng.below(fields.len()));
        let option = OPTIONS.iter().find(|o| o.long == long).expect(long);
        let millis = 1 + rng.next() % 100_000;
        let (value, text) = if rng.below(20) == 0 {
            (
                Duration::new(9_223_372_036, 854_775_807),
                "2562047h47m16.854775807s".to_owned(),
            )
        } else if millis % 1000 == 0 {
            (Duration::from_millis(millis), format!("{}s", millis / 1000))
        } else {
            (Duration::from_millis(millis), format!("{millis}ms"))
        };
        match rng.below(4) {
            0 => args.push(format!("--{long}={text}")),
            1 => args.extend([format!("--{long}"), text]),
            2 => env.push((option.env.to_owned(), OsString::from(text))),
            _ => {
                // The variable says something else; the flag wins.
                env.push((option.env.to_owned(), OsString::from("77ms")));
                args.push(format!("--{long}={text}"));
            }
        }
        expected.push((long, value));
    }
    let mesh = *rng.pick(&["istio", "ENVOY", "Linkerd", ""]);
    if !mesh.is_empty() {
        args.push(format!("--mesh={mesh}"));
    }
    args.extend(["--".to_owned(), "true".to_owned()]);
    let settings = match parse(
        args.iter().map(OsString::from),
        &Environment::new(env.clone()),
    ) {
        Ok(super::Invocation::Run(settings)) => settings,
        other => panic!("a valid configuration refused: {args:?} {env:?}: {other:?}"),
    };
    let plan = resolve(&settings);
    deadlines_hold(&plan);
    for (long, field) in DURATION_FIELDS {
        let want = expected
            .iter()
            .find(|(l, _)| *l == long)
            .map_or(field(&default), |(_, v)| *v);
        assert_eq!(field(&plan), want, "--{long}: {args:?} {env:?}");
    }
    let Sidecar::Known(endpoints) = &plan.wait.sidecar else {
        assert!(mesh.is_empty(), "{mesh}: {:?}", plan.wait.sidecar);
        return;
    };
    assert_eq!(endpoints.mesh, mesh.to_ascii_lowercase(), "{args:?}");
}
