//! scuttle's and envoy-preflight's environment variables, read with the meaning they had
//! there, so that swapping the binary is the whole migration. Where the old behaviour was a
//! reported bug (waiting forever, keeping the sidecar after a failure by default), the fix
//! stays; README's migration table lists each difference.

use std::ffi::OsString;
use std::time::Duration;

use log::LevelFilter;

use crate::cli::{self, Config, Keep, OnTimeout, UsageError};
use crate::duration;
use crate::sidecar::{self, Mesh, Plan};

/// What the old variables said about the sidecar's endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compat {
    /// ENVOY_ADMIN_API without a trailing slash; unset means no sidecar at all.
    pub admin: Option<String>,
    /// START_WITHOUT_ENVOY=true: skip the wait, still quit.
    pub skip_wait: bool,
    /// ISTIO_QUIT_API: base URL of pilot-agent's quit endpoint.
    pub istio_quit: Option<String>,
    /// ENVOY_KILL_API: full URL of Envoy's quit endpoint.
    pub envoy_kill: Option<String>,
    /// GENERIC_QUIT_ENDPOINTS: each POSTed, status ignored.
    pub notify: Vec<String>,
}

/// Every variable this module reads.
pub const VARIABLES: [&str; 13] = [
    "ENVOY_ADMIN_API",
    "START_WITHOUT_ENVOY",
    "WAIT_FOR_ENVOY_TIMEOUT",
    "QUIT_WITHOUT_ENVOY_TIMEOUT",
    "ISTIO_QUIT_API",
    "ISTIO_FALLBACK_PKILL",
    "NEVER_KILL_ISTIO",
    "NEVER_KILL_ISTIO_ON_FAILURE",
    "GENERIC_QUIT_ENDPOINTS",
    "SCUTTLE_LOGGING",
    "ENVOY_KILL_API",
    "NEVER_KILL_ENVOY",
    "ALWAYS_KILL_ENVOY",
];

const ISTIO_QUIT_DEFAULT: &str = "http://127.0.0.1:15020";

impl Compat {
    /// The endpoints these variables describe; only called when ENVOY_ADMIN_API is set.
    pub fn plan(&self) -> Plan {
        let Some(admin) = &self.admin else {
            return Plan::default();
        };
        let mut plan = Plan::default();
        if !self.skip_wait {
            plan.ready.push(readiness_url(admin));
        }
        // scuttle never quits a sidecar that is not on this machine.
        if sidecar::is_loopback(admin) {
            let istio = self.istio_quit.as_deref().unwrap_or(ISTIO_QUIT_DEFAULT);
            plan.quit
                .push(format!("{}/quitquitquit", istio.trim_end_matches('/')));
            let envoy = self
                .envoy_kill
                .clone()
                .unwrap_or_else(|| format!("{admin}/quitquitquit"));
            if !plan.quit.contains(&envoy) {
                plan.quit.push(envoy);
            }
            plan.executables = sidecar::preset(Mesh::Istio).executables;
        }
        plan
    }
}

/// Envoy's admin is polled on /ready, which is 200 exactly when /server_info says LIVE.
/// scuttle users who pointed ENVOY_ADMIN_API at pilot-agent (15020/15021) waited forever;
/// pilot-agent's own readiness path is used there instead.
fn readiness_url(admin: &str) -> String {
    let port = admin
        .parse::<ureq::http::Uri>()
        .ok()
        .and_then(|u| u.port_u16());
    match port {
        Some(15020) | Some(15021) => format!("{admin}/healthz/ready"),
        _ => format!("{admin}/ready"),
    }
}

fn hidden(name: &str, form: &str) -> UsageError {
    UsageError(format!(
        "{name}: invalid value (not shown): expected {form}"
    ))
}

/// Reads the old variables into `config`. Every variable is read; the first error is
/// returned after all of them were applied as far as they could be.
pub fn apply(
    config: &mut Config,
    env: &impl Fn(&str) -> Option<OsString>,
) -> Result<(), UsageError> {
    let mut first_error = None;
    let mut read = |name: &str| match env(name).map(OsString::into_string) {
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => {
            first_error.get_or_insert(hidden(name, "valid UTF-8"));
            None
        }
        None => None,
    };
    let values: Vec<Option<String>> = VARIABLES.iter().map(|name| read(name)).collect();
    if values.iter().all(Option::is_none) {
        return first_error.map_or(Ok(()), Err);
    }
    let mut compat = Compat::default();
    let mut note = |result: Result<(), UsageError>| {
        if let Err(err) = result {
            first_error.get_or_insert(err);
        }
    };
    let mut never_kill = false;
    let mut keep_on_failure = false;
    let mut wait_timeout: Option<Duration> = None;
    let mut quit_timeout: Option<Duration> = None;
    for (name, value) in VARIABLES.iter().zip(&values) {
        let Some(value) = value.as_deref() else {
            continue;
        };
        // These variables are not meshinit's: their values stay out of messages.
        let bad = |form: &str| hidden(name, form);
        let flag = |slot: &mut bool| {
            *slot = cli::parse_bool(value).ok_or_else(|| bad(cli::BOOL_FORM))?;
            Ok(())
        };
        let url = |slot: &mut Option<String>| {
            if !sidecar::valid_url(value) {
                return Err(bad(sidecar::URL_FORM));
            }
            *slot = Some(value.trim_end_matches('/').to_owned());
            Ok(())
        };
        let timeout = |slot: &mut Option<Duration>| {
            let d = duration::parse(value).ok_or_else(|| bad(duration::FORM))?;
            // 0 meant "forever" there; here it keeps meshinit's finite default.
            *slot = Some(d).filter(|d| !d.is_zero());
            Ok(())
        };
        let mut set = false;
        note(match *name {
            "ENVOY_ADMIN_API" => url(&mut compat.admin),
            "START_WITHOUT_ENVOY" => flag(&mut compat.skip_wait),
            "WAIT_FOR_ENVOY_TIMEOUT" => timeout(&mut wait_timeout),
            "QUIT_WITHOUT_ENVOY_TIMEOUT" => timeout(&mut quit_timeout),
            "ISTIO_QUIT_API" => url(&mut compat.istio_quit),
            "ENVOY_KILL_API" => url(&mut compat.envoy_kill),
            "GENERIC_QUIT_ENDPOINTS" => cli::url_list(name, value)
                .map(|urls| compat.notify = urls)
                .map_err(|_| bad(sidecar::URL_FORM)),
            "ISTIO_FALLBACK_PKILL" => flag(&mut config.kill_fallback),
            "NEVER_KILL_ISTIO" | "NEVER_KILL_ENVOY" => flag(&mut set).map(|()| never_kill |= set),
            "NEVER_KILL_ISTIO_ON_FAILURE" => flag(&mut set).map(|()| keep_on_failure |= set),
            // envoy-preflight kept Envoy after a failure unless this was true; meshinit quits
            // by default, and keeps it on failure only when this is explicitly false.
            "ALWAYS_KILL_ENVOY" => flag(&mut set).map(|()| keep_on_failure |= !set),
            "SCUTTLE_LOGGING" => flag(&mut set).map(|()| {
                if !set {
                    config.log = LevelFilter::Error;
                }
            }),
            _ => Ok(()),
        });
    }
    config.keep = match (never_kill, keep_on_failure) {
        (true, _) => Keep::Always,
        (false, true) => Keep::OnFailure,
        (false, false) => config.keep,
    };
    // scuttle started the command when WAIT_FOR_ENVOY_TIMEOUT ran out, and gave up when
    // QUIT_WITHOUT_ENVOY_TIMEOUT did; whichever is shorter decides.
    match (wait_timeout, quit_timeout) {
        (Some(wait), Some(quit)) if quit < wait => {
            (config.timeout, config.on_timeout) = (quit, OnTimeout::Fail)
        }
        (Some(wait), _) => (config.timeout, config.on_timeout) = (wait, OnTimeout::Start),
        (None, Some(quit)) => (config.timeout, config.on_timeout) = (quit, OnTimeout::Fail),
        (None, None) => {}
    }
    config.compat = Some(compat);
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> (Config, Result<(), UsageError>) {
        let mut config = Config::default();
        let env = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        };
        let result = apply(&mut config, &env);
        (config, result)
    }

    #[test]
    fn scuttle_with_istio_quit_api() {
        let (c, r) = config(&[
            ("ENVOY_ADMIN_API", "http://127.0.0.1:15000/"),
            ("ISTIO_QUIT_API", "http://127.0.0.1:15020"),
            ("WAIT_FOR_ENVOY_TIMEOUT", "90s"),
            ("NEVER_KILL_ISTIO_ON_FAILURE", "true"),
        ]);
        assert_eq!(r, Ok(()));
        let plan = c.plan_for(c.mesh());
        assert_eq!(plan.ready, ["http://127.0.0.1:15000/ready"]);
        assert_eq!(
            plan.quit,
            [
                "http://127.0.0.1:15020/quitquitquit",
                "http://127.0.0.1:15000/quitquitquit"
            ]
        );
        assert_eq!(c.timeout, Duration::from_secs(90));
        assert_eq!(c.on_timeout, OnTimeout::Start);
        assert_eq!(c.keep, Keep::OnFailure);
    }

    #[test]
    fn admin_pointed_at_pilot_agent_uses_its_readiness_path() {
        let (c, _) = config(&[("ENVOY_ADMIN_API", "http://127.0.0.1:15020")]);
        assert_eq!(
            c.plan_for(c.mesh()).ready,
            ["http://127.0.0.1:15020/healthz/ready"]
        );
    }

    #[test]
    fn no_admin_means_no_sidecar() {
        let (c, r) = config(&[("NEVER_KILL_ISTIO", "false")]);
        assert_eq!(r, Ok(()));
        assert_eq!(c.mesh(), Mesh::None);
    }

    #[test]
    fn remote_admin_is_waited_for_but_never_quit() {
        let (c, _) = config(&[("ENVOY_ADMIN_API", "http://10.1.2.3:15000")]);
        let plan = c.plan_for(c.mesh());
        assert_eq!(plan.ready.len(), 1);
        assert!(plan.quit.is_empty() && plan.executables.is_empty());
    }

    #[test]
    fn envoy_preflight() {
        let (c, _) = config(&[
            ("ENVOY_ADMIN_API", "http://localhost:9901"),
            ("ENVOY_KILL_API", "http://localhost:9901/quitquitquit"),
            ("START_WITHOUT_ENVOY", "true"),
            ("ALWAYS_KILL_ENVOY", "false"),
            ("QUIT_WITHOUT_ENVOY_TIMEOUT", "5s"),
        ]);
        let plan = c.plan_for(c.mesh());
        assert!(plan.ready.is_empty());
        assert_eq!(
            plan.quit.last().map(String::as_str),
            Some("http://localhost:9901/quitquitquit")
        );
        assert_eq!(c.keep, Keep::OnFailure);
        assert_eq!(
            (c.timeout, c.on_timeout),
            (Duration::from_secs(5), OnTimeout::Fail)
        );
    }

    #[test]
    fn zero_wait_keeps_the_finite_default() {
        let (c, _) = config(&[
            ("ENVOY_ADMIN_API", "http://127.0.0.1:15000"),
            ("WAIT_FOR_ENVOY_TIMEOUT", "0"),
        ]);
        assert_eq!(c.timeout, cli::DEFAULT_TIMEOUT);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_rest_still_applies() {
        let (c, r) = config(&[
            ("ENVOY_ADMIN_API", "https://127.0.0.1:15000"),
            ("NEVER_KILL_ISTIO", "true"),
        ]);
        let err = r.unwrap_err().0;
        // Named, but not shown: the value is not meshinit's to print.
        assert!(
            err.contains("ENVOY_ADMIN_API") && !err.contains("https://"),
            "{err}"
        );
        assert_eq!(c.keep, Keep::Always);
        for (name, value) in [
            ("START_WITHOUT_ENVOY", "maybe"),
            ("WAIT_FOR_ENVOY_TIMEOUT", "90"),
            ("GENERIC_QUIT_ENDPOINTS", "http://127.0.0.1:1/q,nope"),
            ("SCUTTLE_LOGGING", "off"),
        ] {
            let (_, r) = config(&[(name, value)]);
            assert!(r.unwrap_err().0.starts_with(name), "{name}");
        }
    }
}
