use std::ffi::OsString;

use super::*;
use crate::config::{parse, Invocation};

/// The settings of `args` (a command appended) over the variables `vars`, the old ones
/// laid below.
fn settings(args: &[&str], vars: &[(&str, &str)]) -> Settings {
    let args = args.iter().chain(&["--", "true"]).map(OsString::from);
    match parse(args, &Environment::of(vars)) {
        Ok(Invocation::Run(settings)) => *settings,
        other => panic!("{other:?}"),
    }
}

pub fn read_vars(vars: &[(&str, &str)]) -> (Legacy, Option<UsageError>) {
    read(&Environment::of(vars), crate::config::options::runs::RUN)
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

#[test]
fn a_layer_below_flags_and_meshinit_variables() {
    let admin = ("ENVOY_ADMIN_API", "http://127.0.0.1:15000/");
    let s = settings(&[], &[admin]);
    assert_eq!(s.mesh, Some(Mesh::Istio));
    assert_eq!(
        s.ready_urls,
        Some(vec!["http://127.0.0.1:15000/ready".to_owned()])
    );
    // What is named above replaces only itself: the admin URL still gives the quit.
    let s = settings(&["--ready-url", "http://127.0.0.1:9/r"], &[admin]);
    assert_eq!(s.ready_urls, Some(vec!["http://127.0.0.1:9/r".to_owned()]));
    assert_eq!(s.quit_urls.as_ref().map(Vec::len), Some(2));
    // A mesh named above is the sidecar: the admin URL describes nothing then.
    let s = settings(&[], &[admin, ("MESHINIT_MESH", "envoy")]);
    assert_eq!((s.mesh, s.ready_urls), (Some(Mesh::Envoy), None));
    // pilot-agent's port: its own readiness path.
    let s = settings(&[], &[("ENVOY_ADMIN_API", "http://127.0.0.1:15020")]);
    assert_eq!(
        s.ready_urls,
        Some(vec!["http://127.0.0.1:15020/healthz/ready".to_owned()])
    );
    // GENERIC_QUIT_ENDPOINTS are told first, besides --also-quit.
    let s = settings(
        &["--also-quit", "http://127.0.0.1:2/b"],
        &[("GENERIC_QUIT_ENDPOINTS", "http://127.0.0.1:1/a")],
    );
    assert_eq!(
        s.also_quit,
        Some(vec![
            "http://127.0.0.1:1/a".to_owned(),
            "http://127.0.0.1:2/b".to_owned()
        ])
    );
    // GENERIC_QUIT_ONLY empties the mesh's quit, unless a quit URL is named above it.
    let only = ("GENERIC_QUIT_ONLY", "true");
    let s = settings(&["--mesh", "istio"], &[only]);
    assert_eq!((s.quit_urls, s.executables), (Some(vec![]), Some(vec![])));
    let s = settings(&["--quit-url", "http://127.0.0.1:3/q"], &[only]);
    assert_eq!(s.quit_urls, Some(vec!["http://127.0.0.1:3/q".to_owned()]));
}

#[test]
fn an_empty_variable_is_unset_and_a_wrong_admin_url_is_not_a_missing_one() {
    // Empty: as if not there, so not a scuttle user's run at all.
    let (l, err) = read_vars(&[("ENVOY_ADMIN_API", ""), ("START_WITHOUT_ENVOY", "")]);
    assert_eq!((l, err), (Legacy::default(), None));
    // Set but wrong: a usage error whose run still tells the sidecar meshinit finds without
    // configuration (not "no sidecar", which only a missing ENVOY_ADMIN_API means).
    let failure = match parse(
        ["--", "true"].map(OsString::from),
        &Environment::of(&[("ENVOY_ADMIN_API", "localhost:15000")]),
    ) {
        Err(failure) => failure,
        other => panic!("{other:?}"),
    };
    assert_eq!(failure.settings.mesh, None);
    let note = failure.settings.notes.join("\n");
    assert!(note.contains("ENVOY_ADMIN_API is not valid"), "{note}");
    let s = settings(&[], &[("QUIT_REQUEST_TIMEOUT", "2s")]);
    assert_eq!(
        s.mesh,
        Some(Mesh::None),
        "a missing ENVOY_ADMIN_API still means none"
    );
}
