//! A proxy someone started by hand, before init and without systemd: init
//! finds it (nginx through the PID file its own configuration names,
//! Caddy through its admin API), reloads it and never starts a second one;
//! users and uninstall act on that same process, which keeps running.

use std::fs;
use std::path::Path;

use crate::support::deployment::{ALICE, ALICE_ONLY, Deployment};
use crate::support::proxies::{DaemonGuard, caddy};
use crate::support::sh;

const NEW: &str = "alice's new password, long enough";

/// Processes called `name` whose command line mentions `needle`.
fn processes(name: &str, needle: &Path) -> Vec<u32> {
    let needle = needle.display().to_string();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let line = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            comm.trim() == name && String::from_utf8_lossy(&line).contains(&needle)
        })
        .collect()
}

/// After init: the site works, a rotated password stops working on every
/// request (one process, one configuration), and uninstall reloads the
/// process that was there, which goes on running without our site.
fn serves_rotates_and_uninstalls(d: &Deployment, hand: &DaemonGuard) {
    let pid = hand.pid().unwrap();
    assert_eq!(d.status("/api/version", None), 401);
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    d.tool()
        .env("NEW", NEW)
        .args(["users", "rotate", "alice", "--password-env", "NEW", "--answers", &d.answers])
        .any_stdout()
        .run();
    for _ in 0..20 {
        assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 401, "the old password still works somewhere");
    }
    assert_eq!(d.status("/api/version", Some(("alice", NEW))), 200);
    let ran = d.uninstall(false).stdout_has("ok reloaded").run();
    assert!(!ran.stdout.contains("ok stopped"), "{}", ran.stdout);
    assert_eq!(hand.pid(), Some(pid));
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "uninstall stopped the proxy it had not started");
    assert!(d.client().get(d.url("/api/version")).send().is_err(), "the Ollama site is still served");
}

#[test]
fn caddy_started_by_hand_is_reloaded_never_started_twice() {
    let d = Deployment::prepare("caddy", ALICE_ONLY);
    let caddyfile = d.sandbox.path("etc/caddy/Caddyfile");
    // Its own PID file, not ollama-secure's: the test must stop it by PID.
    let hand = DaemonGuard { pid_file: d.sandbox.path("run/caddy-by-hand.pid") };
    let out = caddy(
        &d.sandbox,
        &[
            "start",
            "--config",
            caddyfile.to_str().unwrap(),
            "--adapter",
            "caddyfile",
            "--pidfile",
            hand.pid_file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    d.init().stdout_has("although ollama-secure did not start it").stdout_has("ok reloaded").run();
    assert!(!d.guard.pid_file.exists(), "init started a Caddy of its own");
    assert_eq!(processes("caddy", &caddyfile).len(), 1, "more than one Caddy runs this Caddyfile");
    serves_rotates_and_uninstalls(&d, &hand);
}

#[test]
fn nginx_started_by_hand_is_found_by_the_pid_file_its_configuration_names() {
    let d = Deployment::prepare("nginx", ALICE_ONLY);
    let conf = d.sandbox.path("etc/nginx/nginx.conf");
    let own = d.sandbox.path("run/nginx-own.pid");
    let text = fs::read_to_string(&conf).unwrap();
    let moved = text
        .replace(&format!("pid {};", d.sandbox.path("run/nginx.pid").display()), &format!("pid {};", own.display()));
    assert_ne!(moved, text);
    fs::write(&conf, moved).unwrap();
    let hand = DaemonGuard { pid_file: own };
    let (ok, out) = sh("nginx", &["-c", conf.to_str().unwrap()]);
    assert!(ok, "{out}");

    d.init().stdout_has("  - nginx is running").stdout_has("ok reloaded").run();
    assert_eq!(
        processes("nginx", &conf).iter().filter(|pid| is_master(**pid)).count(),
        1,
        "a second nginx master runs"
    );
    serves_rotates_and_uninstalls(&d, &hand);
}

fn is_master(pid: u32) -> bool {
    String::from_utf8_lossy(&fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).contains("master process")
}
