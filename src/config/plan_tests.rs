use std::ffi::OsString;

use super::*;
use crate::config::{parse, Environment, Invocation};

/// The plan for `args` (a command appended) and the variables `vars`.
fn plan(args: &[&str], vars: &[(&str, &str)]) -> Plan {
    let args = args.iter().chain(&["--", "true"]).map(OsString::from);
    match parse(args, &Environment::of(vars)) {
        Ok(Invocation::Run(settings)) => resolve(&settings),
        other => panic!("{other:?}"),
    }
}

fn known(plan: &Plan) -> &Endpoints {
    match &plan.wait.sidecar {
        Sidecar::Known(endpoints) => endpoints,
        other => panic!("not one known sidecar: {other:?}"),
    }
}

fn quit_urls(endpoints: &Endpoints) -> Vec<&str> {
    endpoints.quit.iter().map(|q| q.url.as_str()).collect()
}

#[test]
fn zero_configuration_depends_on_where_it_runs() {
    assert_eq!(plan(&[], &[]).wait.sidecar, Sidecar::Absent);
    let in_pod = [("KUBERNETES_SERVICE_HOST", "10.96.0.1")];
    let Sidecar::Search { look_for, .. } = plan(&[], &in_pod).wait.sidecar else {
        panic!("a pod without configuration searches");
    };
    assert_eq!(look_for, default::SIDECAR_GRACE);
    // Anything that names the sidecar is explicit, wherever it runs.
    assert_eq!(known(&plan(&["--mesh", "envoy"], &[])).mesh, "envoy");
    assert_eq!(
        plan(&["--mesh=none"], &in_pod).wait.sidecar,
        Sidecar::Absent
    );
    let p = plan(&["--ready-url", "http://127.0.0.1:9/r"], &[]);
    assert_eq!(known(&p).ready, ["http://127.0.0.1:9/r"]);
    assert_eq!(known(&p).mesh, "istio");
}

#[test]
fn istio_preset_and_defaults() {
    let p = plan(&["--mesh", "istio"], &[]);
    let e = known(&p);
    assert_eq!(e.ready, ["http://127.0.0.1:15020/healthz/ready"]);
    assert_eq!(quit_urls(e).len(), 2);
    assert_eq!(
        (
            p.wait.timeout,
            p.wait.on_timeout,
            p.quit.keep,
            p.quit.limits.wait,
            p.task.grace
        ),
        (
            default::TIMEOUT,
            OnTimeout::Fail,
            Keep::Never,
            default::QUIT_WAIT,
            Duration::ZERO
        )
    );
    assert_eq!(
        (p.task.forwarding, p.report.log),
        (Forwarding::Process, "info".to_owned())
    );
}

#[test]
fn none_is_absent_unless_something_is_given() {
    assert_eq!(plan(&["--mesh", "none"], &[]).wait.sidecar, Sidecar::Absent);
    let p = plan(&["--mesh=none", "--sidecar-exe", "/bin/envoy"], &[]);
    assert_eq!(known(&p).executables, ["/bin/envoy"]);
}

#[test]
fn auto_quits_each_endpoint_once_with_its_own_hint() {
    let p = plan(&["--mesh", "auto", "--sidecar-grace", "2s"], &[]);
    let Sidecar::Search {
        candidates,
        look_for,
        all,
    } = &p.wait.sidecar
    else {
        panic!("{:?}", p.wait.sidecar)
    };
    assert_eq!(*look_for, Duration::from_secs(2));
    let names: Vec<&str> = candidates.iter().map(|c| c.mesh).collect();
    assert_eq!(names, ["istio", "linkerd", "envoy"]);
    assert_eq!(
        quit_urls(all),
        [
            "http://127.0.0.1:15020/quitquitquit",
            "http://localhost:15000/quitquitquit",
            "http://127.0.0.1:4191/shutdown"
        ]
    );
    assert_eq!(
        all.executables,
        ["/usr/local/bin/pilot-agent", "/usr/local/bin/envoy"]
    );
    for quit in &all.quit {
        assert_eq!(
            quit.on_refusal.is_some(),
            quit.url.contains(":4191"),
            "{quit:?}"
        );
    }
}

#[test]
fn flags_win_over_variables_and_lists_replace() {
    let p = plan(
        &["--quit-url", "http://127.0.0.1:2/q", "--timeout", "3s"],
        &[
            (
                "MESHINIT_QUIT_URL",
                "http://127.0.0.1:1/a,http://127.0.0.1:1/b",
            ),
            ("MESHINIT_TIMEOUT", "9s"),
            ("MESHINIT_MESH", "linkerd"),
            ("MESHINIT_KILL_FALLBACK", "false"),
        ],
    );
    let e = known(&p);
    assert_eq!(quit_urls(e), ["http://127.0.0.1:2/q"]);
    assert!(
        e.quit[0].on_refusal.is_some(),
        "a Linkerd URL keeps the hint"
    );
    assert_eq!(p.wait.timeout, Duration::from_secs(3));
    let p = plan(&["--mesh", "istio", "--kill-fallback=false"], &[]);
    assert!(known(&p).executables.is_empty());
}

#[test]
fn scuttle_with_istio_quit_api() {
    let p = plan(
        &[],
        &[
            ("ENVOY_ADMIN_API", "http://127.0.0.1:15000/"),
            ("ISTIO_QUIT_API", "http://127.0.0.1:15020"),
            ("WAIT_FOR_ENVOY_TIMEOUT", "90s"),
            ("NEVER_KILL_ISTIO_ON_FAILURE", "true"),
        ],
    );
    let e = known(&p);
    assert_eq!(e.ready, ["http://127.0.0.1:15000/ready"]);
    assert_eq!(
        quit_urls(e),
        [
            "http://127.0.0.1:15020/quitquitquit",
            "http://127.0.0.1:15000/quitquitquit"
        ]
    );
    assert_eq!(p.wait.timeout, Duration::from_secs(90));
    assert_eq!(p.wait.on_timeout, OnTimeout::Start);
    assert_eq!(p.quit.keep, Keep::OnFailure);
}

#[test]
fn meshinit_variables_win_over_scuttles() {
    let p = plan(
        &[],
        &[
            ("ENVOY_ADMIN_API", "http://127.0.0.1:15000"),
            ("WAIT_FOR_ENVOY_TIMEOUT", "90s"),
            ("NEVER_KILL_ISTIO", "true"),
            ("SCUTTLE_LOGGING", "false"),
            ("MESHINIT_ON_TIMEOUT", "fail"),
            ("MESHINIT_KEEP_SIDECAR", "never"),
            ("MESHINIT_MESH", "envoy"),
        ],
    );
    assert_eq!(known(&p).mesh, "envoy");
    assert_eq!(
        (p.wait.timeout, p.wait.on_timeout),
        (Duration::from_secs(90), OnTimeout::Fail)
    );
    assert_eq!(p.quit.keep, Keep::Never);
    assert_eq!(p.report.log, "error");
}

#[test]
fn scuttle_variables_without_admin_mean_no_sidecar() {
    let p = plan(&[], &[("NEVER_KILL_ISTIO", "false")]);
    assert_eq!(p.wait.sidecar, Sidecar::Absent);
}

#[test]
fn remote_admin_is_waited_for_but_never_quit() {
    let p = plan(&[], &[("ENVOY_ADMIN_API", "http://10.1.2.3:15000")]);
    let e = known(&p);
    assert_eq!(e.ready.len(), 1);
    assert!(e.quit.is_empty() && e.executables.is_empty());
}

#[test]
fn envoy_preflight() {
    let p = plan(
        &[],
        &[
            ("ENVOY_ADMIN_API", "http://localhost:9901"),
            ("ENVOY_KILL_API", "http://localhost:9901/quitquitquit"),
            ("START_WITHOUT_ENVOY", "true"),
            ("ALWAYS_KILL_ENVOY", "false"),
            ("QUIT_WITHOUT_ENVOY_TIMEOUT", "5s"),
            ("GENERIC_QUIT_ENDPOINTS", "http://127.0.0.1:9/a"),
        ],
    );
    let e = known(&p);
    assert!(e.ready.is_empty());
    assert_eq!(
        quit_urls(e).last().copied(),
        Some("http://localhost:9901/quitquitquit")
    );
    assert_eq!(e.notify, ["http://127.0.0.1:9/a"]);
    assert_eq!(p.quit.keep, Keep::OnFailure);
    assert_eq!(
        (p.wait.timeout, p.wait.on_timeout),
        (Duration::from_secs(5), OnTimeout::Fail)
    );
}

#[test]
fn the_maintained_forks_variables() {
    let p = plan(
        &[],
        &[
            ("ENVOY_ADMIN_API", "http://127.0.0.1:15000"),
            ("GENERIC_QUIT_ENDPOINTS", "http://127.0.0.1:9/a"),
            ("GENERIC_QUIT_ONLY", "true"),
            ("QUIT_REQUEST_TIMEOUT", "10s"),
        ],
    );
    let e = known(&p);
    assert!(e.quit.is_empty() && e.executables.is_empty());
    assert_eq!(e.notify, ["http://127.0.0.1:9/a"]);
    assert_eq!(p.quit.limits.budget, Duration::from_secs(10));
}

#[test]
fn a_misspelt_variable_is_a_warning() {
    let p = plan(&[], &[("MESHINIT_TIMOUT", "5s")]);
    assert_eq!(p.wait.timeout, default::TIMEOUT);
    assert_eq!(p.report.warnings.len(), 1, "{:?}", p.report.warnings);
    assert!(p.report.warnings[0].contains("MESHINIT_TIMEOUT"));
}

#[test]
fn zero_wait_keeps_the_finite_default() {
    let p = plan(
        &[],
        &[
            ("ENVOY_ADMIN_API", "http://127.0.0.1:15000"),
            ("WAIT_FOR_ENVOY_TIMEOUT", "0"),
        ],
    );
    assert_eq!(p.wait.timeout, default::TIMEOUT);
}

#[test]
fn one_note_names_each_old_variable_and_what_it_decides() {
    assert!(plan(&[], &[]).report.notes.is_empty());
    let note = |args: &[&str], vars: &[(&str, &str)]| plan(args, vars).report.notes.remove(0);
    let n = note(&[], &[("QUIT_REQUEST_TIMEOUT", "2s")]);
    assert!(n.contains("(QUIT_REQUEST_TIMEOUT: the quit budget)"), "{n}");
    assert!(
        n.contains("no ENVOY_ADMIN_API, so no wait and no quit"),
        "{n}"
    );
    let n = note(
        &[],
        &[
            ("ENVOY_ADMIN_API", "http://127.0.0.1:15000"),
            ("WAIT_FOR_ENVOY_TIMEOUT", "3s"),
            ("NEVER_KILL_ISTIO", "true"),
            ("SCUTTLE_LOGGING", "false"),
            ("ISTIO_FALLBACK_PKILL", "false"),
        ],
    );
    // Each variable set, in the table's order, with what it decides.
    for part in [
        "(ENVOY_ADMIN_API: the sidecar to wait for and quit; ",
        "WAIT_FOR_ENVOY_TIMEOUT: the time limit, then the task starts; ",
        "ISTIO_FALLBACK_PKILL: the /proc fallback; ",
        "NEVER_KILL_ISTIO: keep the sidecar; ",
        "SCUTTLE_LOGGING: errors only when false)",
        "; the sidecar is ENVOY_ADMIN_API's",
    ] {
        assert!(n.contains(part), "{part}: {n}");
    }
    // A mesh named by a flag is the flag's.
    let n = note(&["--mesh", "envoy"], &[("QUIT_REQUEST_TIMEOUT", "2s")]);
    assert!(n.ends_with("; the sidecar is --mesh's"), "{n}");
}

#[test]
fn other_sidecars_come_besides_the_mesh_and_linkerd_await_only_finds() {
    let also = [
        "--also-ready",
        "http://127.0.0.1:9090/readiness",
        "--also-quit",
        "http://127.0.0.1:9091/quitquitquit",
    ];
    let p = plan(&[&["--mesh", "envoy"][..], &also[..]].concat(), &[]);
    let e = known(&p);
    assert_eq!(
        e.ready,
        [
            "http://localhost:15000/ready",
            "http://127.0.0.1:9090/readiness"
        ]
    );
    assert_eq!(quit_urls(e), ["http://localhost:15000/quitquitquit"]);
    assert_eq!(e.notify, ["http://127.0.0.1:9091/quitquitquit"]);
    // No mesh: only the other sidecar, waited for and told.
    let p = plan(&[&["--mesh", "none"][..], &also[..]].concat(), &[]);
    assert_eq!(known(&p).ready, ["http://127.0.0.1:9090/readiness"]);
    // A search that finds nothing still waits for it.
    let p = plan(&also, &[("KUBERNETES_SERVICE_HOST", "10.96.0.1")]);
    let Sidecar::Search { all, .. } = &p.wait.sidecar else {
        panic!("{:?}", p.wait.sidecar);
    };
    assert_eq!(all.ready, ["http://127.0.0.1:9090/readiness"]);
    // linkerd-await's switch: no wait for Linkerd, the quit stays; found by auto, not waited.
    let off = [("LINKERD_AWAIT_DISABLED", "1")];
    let p = plan(&["--mesh", "linkerd"], &off);
    assert!(known(&p).ready.is_empty());
    assert_eq!(quit_urls(known(&p)), ["http://127.0.0.1:4191/shutdown"]);
    assert_eq!(p.report.notes.len(), 1, "{:?}", p.report.notes);
    let p = plan(&["--mesh", "auto"], &off);
    let Sidecar::Search { candidates, .. } = &p.wait.sidecar else {
        panic!("{:?}", p.wait.sidecar);
    };
    let linkerd = candidates.iter().find(|c| c.mesh == "linkerd").unwrap();
    assert!(linkerd.pending_after_first(true).is_empty());
    assert!(linkerd.pending_after_first(false).is_empty());
    let envoy = candidates.iter().find(|c| c.mesh == "envoy").unwrap();
    assert_eq!(envoy.pending_after_first(false).len(), 1);
    // Empty is unset.
    let p = plan(&["--mesh", "linkerd"], &[("LINKERD_DISABLED", "")]);
    assert_eq!(known(&p).ready.len(), 1);
}
