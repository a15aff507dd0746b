//! scuttle's and envoy-preflight's environment variables, read as an overlay below
//! `MESHINIT_*`: each variable is named once, in `VARIABLES`, with how its value is read.
//! What they mean for the run (endpoints, time limits, keeping the sidecar) is decided in
//! `plan`, with every other rule.

use std::time::Duration;

use super::duration;
use super::environment::Environment;
use super::values::{self, UsageError};
use crate::sidecar::url;

/// What the old variables said, as they said it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Legacy {
    /// The variables that were set, in `VARIABLES`' order, each with what it decides.
    pub set: Vec<(&'static str, &'static str)>,
    /// ENVOY_ADMIN_API without a trailing slash; unset means no sidecar at all.
    pub admin: Option<String>,
    /// START_WITHOUT_ENVOY: skip the wait, still quit.
    pub skip_wait: bool,
    /// WAIT_FOR_ENVOY_TIMEOUT: start the task when it runs out (0, "forever", is `None`).
    pub wait_timeout: Option<Duration>,
    /// QUIT_WITHOUT_ENVOY_TIMEOUT: give up when it runs out (0 is `None`).
    pub quit_timeout: Option<Duration>,
    /// ISTIO_QUIT_API: base URL of pilot-agent's quit endpoint.
    pub istio_quit: Option<String>,
    /// ENVOY_KILL_API: full URL of Envoy's quit endpoint.
    pub envoy_kill: Option<String>,
    /// GENERIC_QUIT_ENDPOINTS: each POSTed, status ignored.
    pub notify: Vec<String>,
    /// GENERIC_QUIT_ENDPOINTS' https:// entries (scuttle's README shows one), as a log line
    /// shows them: meshinit has no TLS, so they are left out, named, and the run goes on.
    pub tls_left_out: Vec<String>,
    /// ISTIO_FALLBACK_PKILL.
    pub fallback_pkill: Option<bool>,
    /// NEVER_KILL_ISTIO or NEVER_KILL_ENVOY.
    pub never_kill: bool,
    /// NEVER_KILL_ISTIO_ON_FAILURE=true or ALWAYS_KILL_ENVOY=false.
    pub keep_on_failure: bool,
    /// SCUTTLE_LOGGING=false.
    pub quiet: bool,
    /// QUIT_REQUEST_TIMEOUT (the maintained fork): the deadline for the quit requests.
    pub quit_budget: Option<Duration>,
    /// GENERIC_QUIT_ONLY (the maintained fork): POST GENERIC_QUIT_ENDPOINTS only.
    pub generic_quit_only: bool,
}

/// Reads one variable's value into `Legacy`; `Err` is the accepted form.
type Reader = fn(&mut Legacy, &str) -> Result<(), &'static str>;

/// A variable: its name, what it decides (for the run's first line), how it is read.
pub type Variable = (&'static str, &'static str, Reader);

/// Every variable read, with its meaning there.
pub const VARIABLES: [Variable; 15] = [
    (
        "ENVOY_ADMIN_API",
        "the sidecar to wait for and quit",
        |l, v| {
            l.admin = Some(base_url(v)?);
            Ok(())
        },
    ),
    ("START_WITHOUT_ENVOY", "no wait", |l, v| {
        l.skip_wait = flag(v)?;
        Ok(())
    }),
    (
        "WAIT_FOR_ENVOY_TIMEOUT",
        "the time limit, then the task starts",
        |l, v| {
            l.wait_timeout = limit(v)?;
            Ok(())
        },
    ),
    (
        "QUIT_WITHOUT_ENVOY_TIMEOUT",
        "the time limit, then exit 69",
        |l, v| {
            l.quit_timeout = limit(v)?;
            Ok(())
        },
    ),
    ("ISTIO_QUIT_API", "pilot-agent's quit endpoint", |l, v| {
        l.istio_quit = Some(base_url(v)?);
        Ok(())
    }),
    ("ENVOY_KILL_API", "Envoy's quit endpoint", |l, v| {
        l.envoy_kill = Some(base_url(v)?);
        Ok(())
    }),
    (
        "GENERIC_QUIT_ENDPOINTS",
        "endpoints told at the end",
        |l, v| {
            let (tls, plain): (Vec<String>, Vec<String>) =
                values::split_list(v).into_iter().partition(|u| {
                    u.get(..8)
                        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
                });
            if plain.iter().any(|u| !url::valid(u)) || plain.len() + tls.len() == 0 {
                return Err(url::QUIT_FORM);
            }
            l.notify = plain;
            l.tls_left_out = tls.iter().map(|u| url::shown_without_query(u)).collect();
            Ok(())
        },
    ),
    ("ISTIO_FALLBACK_PKILL", "the /proc fallback", |l, v| {
        l.fallback_pkill = Some(flag(v)?);
        Ok(())
    }),
    ("NEVER_KILL_ISTIO", "keep the sidecar", |l, v| {
        l.never_kill |= flag(v)?;
        Ok(())
    }),
    ("NEVER_KILL_ENVOY", "keep the sidecar", |l, v| {
        l.never_kill |= flag(v)?;
        Ok(())
    }),
    (
        "NEVER_KILL_ISTIO_ON_FAILURE",
        "keep the sidecar on failure",
        |l, v| {
            l.keep_on_failure |= flag(v)?;
            Ok(())
        },
    ),
    // envoy-preflight kept Envoy after a failure unless this was true; meshinit quits by
    // default, and keeps it on failure only when this is explicitly false.
    (
        "ALWAYS_KILL_ENVOY",
        "keep the sidecar on failure when false",
        |l, v| {
            l.keep_on_failure |= !flag(v)?;
            Ok(())
        },
    ),
    ("SCUTTLE_LOGGING", "errors only when false", |l, v| {
        l.quiet = !flag(v)?;
        Ok(())
    }),
    ("QUIT_REQUEST_TIMEOUT", "the quit budget", |l, v| {
        l.quit_budget = limit(v)?;
        Ok(())
    }),
    (
        "GENERIC_QUIT_ONLY",
        "only GENERIC_QUIT_ENDPOINTS told",
        |l, v| {
            l.generic_quit_only = flag(v)?;
            Ok(())
        },
    ),
];

fn flag(value: &str) -> Result<bool, &'static str> {
    values::boolean(value).ok_or(values::BOOL_FORM)
}

fn base_url(value: &str) -> Result<String, &'static str> {
    if url::valid(value) {
        Ok(value.trim_end_matches('/').to_owned())
    } else {
        Err(url::FORM)
    }
}

/// A time limit; 0 meant "forever" there, and is left out here.
fn limit(value: &str) -> Result<Option<Duration>, &'static str> {
    let d = duration::parse(value).ok_or(duration::FORM)?;
    Ok(Some(d).filter(|d| !d.is_zero()))
}

/// Reads every variable; the first bad one is returned beside what could be read. The
/// values are not meshinit's, so errors name the variable without its value.
pub fn read(env: &Environment) -> (Legacy, Option<UsageError>) {
    let mut legacy = Legacy::default();
    let mut first_error = None;
    for (name, decides, reader) in VARIABLES {
        let Some(raw) = env.get(name) else {
            continue;
        };
        legacy.set.push((name, decides));
        let result = match raw.into_string() {
            Ok(value) => reader(&mut legacy, &value),
            Err(_) => Err("valid UTF-8"),
        };
        if let Err(form) = result {
            first_error.get_or_insert(values::invalid_hidden(name, form));
        }
    }
    (legacy, first_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn read_vars(vars: &[(&str, &str)]) -> (Legacy, Option<UsageError>) {
        read(&Environment::of(vars))
    }

    #[test]
    fn nothing_set() {
        assert_eq!(read_vars(&[]), (Legacy::default(), None));
    }

    #[test]
    fn each_variable_in_its_field() {
        let (l, err) = read_vars(&[
            ("ENVOY_ADMIN_API", "http://127.0.0.1:15000/"),
            ("START_WITHOUT_ENVOY", "true"),
            ("WAIT_FOR_ENVOY_TIMEOUT", "0"),
            ("QUIT_WITHOUT_ENVOY_TIMEOUT", "5s"),
            ("ENVOY_KILL_API", "http://localhost:9901/quitquitquit"),
            ("ALWAYS_KILL_ENVOY", "false"),
            ("NEVER_KILL_ENVOY", "no"),
            ("SCUTTLE_LOGGING", "false"),
            ("ISTIO_FALLBACK_PKILL", "0"),
            ("QUIT_REQUEST_TIMEOUT", "1500ms"),
            ("GENERIC_QUIT_ONLY", "true"),
        ]);
        assert_eq!(err, None);
        assert!(l.set.len() == 11 && l.skip_wait && l.keep_on_failure && l.quiet && !l.never_kill);
        assert_eq!(l.admin.as_deref(), Some("http://127.0.0.1:15000"));
        assert_eq!(l.wait_timeout, None);
        assert_eq!(l.quit_timeout, Some(Duration::from_secs(5)));
        assert_eq!(l.fallback_pkill, Some(false));
        assert_eq!(l.quit_budget, Some(Duration::from_millis(1500)));
        assert!(l.generic_quit_only);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_rest_still_applies() {
        let (l, err) = read_vars(&[
            ("ENVOY_ADMIN_API", "https://127.0.0.1:15000"),
            ("NEVER_KILL_ISTIO", "true"),
        ]);
        let err = err.expect("an error").0;
        // Named, but not shown: the value is not meshinit's to print.
        assert!(
            err.contains("ENVOY_ADMIN_API") && !err.contains("https://"),
            "{err}"
        );
        assert!(l.never_kill);
        for (name, value) in [
            ("START_WITHOUT_ENVOY", "maybe"),
            ("WAIT_FOR_ENVOY_TIMEOUT", "90"),
            ("GENERIC_QUIT_ENDPOINTS", "http://127.0.0.1:1/q,nope"),
            ("SCUTTLE_LOGGING", "off"),
        ] {
            let (_, err) = read_vars(&[(name, value)]);
            assert!(err.expect("an error").0.starts_with(name), "{name}");
        }
    }
}
