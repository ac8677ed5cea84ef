//! `init` with unchanged answers does not take matching files for a working
//! server: it asks the running proxy, and repairs what it finds (a lost or
//! stale auth socket, a proxy that does not serve the site), then proves
//! the site asks for credentials. `check` names the cause of a 500.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::apply_e2e::{ALICE, ALICE_ONLY, Deployed, deploy};
use crate::support::proxies::caddy_env;
use crate::support::{Ran, sh};

fn socket(d: &Deployed) -> std::path::PathBuf {
    d.sandbox.path("run/ollama-secure-auth.sock")
}

fn nginx(d: &Deployed, args: &[&str]) {
    let conf = d.sandbox.path("etc/nginx/nginx.conf");
    let mut all = args.to_vec();
    all.extend(["-c", conf.to_str().unwrap()]);
    let (ok, out) = sh("nginx", &all);
    assert!(ok, "nginx {args:?}: {out}");
}

fn wait_until_gone(pid: i32) {
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "process {pid} did not exit");
}

/// After a repair: the site asks for credentials, logs alice in, and a
/// second run finds nothing left to do.
fn works_and_settles(d: &Deployed, repaired: &Ran) {
    repaired.assert_code(0);
    assert!(!repaired.stdout.contains("Nothing to change"), "{}", repaired.stdout);
    assert!(repaired.stdout.contains("asks for credentials (401)"), "{}", repaired.stdout);
    let resp = d.client().get(d.url("/api/version")).send().unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    assert_eq!(d.status("/api/version", Some(("alice", "wrong"))), 401);
    let again = d.init();
    again.assert_code(0);
    assert!(again.stdout.contains("Nothing to change"), "{}", again.stdout);
}

#[test]
fn a_lost_auth_socket_is_named_by_check_and_repaired_by_init() {
    let d = deploy("nginx", ALICE_ONLY);
    let pid = d.guard.pid().unwrap();
    // What nginx's cache loader did to the socket in the cache folder; any
    // other deletion has the same effect: every uncached login fails.
    fs::remove_file(socket(&d)).unwrap();
    assert_eq!(d.status("/api/version", None), 500);
    assert_eq!(d.status("/api/version", Some(("alice", "a login never cached"))), 500);

    let ran = d.tool().args(["check", "--url", &d.url(""), "--username", "alice", "--password-env", "ALICE_PASSWORD"]);
    let resolve = format!("{}:{}:127.0.0.1", crate::apply_e2e::DOMAIN, d.port);
    let ran = ran.args(["--resolve", &resolve, "--answers", &d.answers]).run();
    ran.assert_code(3);
    let named = format!("its socket {} is missing", socket(&d).display());
    assert!(ran.stdout.contains(&named), "check does not name the cause:\n{}", ran.stdout);

    let dry = d.tool().args(["init", "--answers", &d.answers, "--dry-run"]).run();
    dry.assert_code(0);
    assert!(dry.stdout.contains("nginx is restarted to create it again"), "{}", dry.stdout);
    assert!(dry.stdout.contains("stop nginx: run `nginx -s quit"), "{}", dry.stdout);

    let ran = d.init();
    assert!(ran.stdout.contains("✓ stopped") && ran.stdout.contains("✓ started"), "{}", ran.stdout);
    works_and_settles(&d, &ran);
    assert!(socket(&d).exists(), "the socket was not created again");
    assert_ne!(d.guard.pid(), Some(pid), "nginx was not restarted");
}

#[test]
fn a_stale_auth_socket_is_removed_before_nginx_starts() {
    let d = deploy("nginx", ALICE_ONLY);
    let pid = d.guard.pid().unwrap();
    nginx(&d, &["-s", "quit"]);
    wait_until_gone(pid);
    assert!(!socket(&d).exists(), "nginx removes its socket when it exits cleanly");
    // What an nginx killed with SIGKILL leaves: a socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(socket(&d)).unwrap());
    let (ok, out) = sh("nginx", &["-t", "-c", d.sandbox.path("etc/nginx/nginx.conf").to_str().unwrap()]);
    assert!(ok, "{out}");

    let ran = d.init();
    assert!(ran.stdout.contains("did not exit cleanly"), "{}", ran.stdout);
    assert!(ran.stdout.contains("✓ removed the stale socket"), "{}", ran.stdout);
    works_and_settles(&d, &ran);
}

#[test]
fn nginx_running_without_the_site_is_reloaded() {
    let d = deploy("nginx", ALICE_ONLY);
    let link = d.sandbox.path("etc/nginx/sites-enabled/ollama");
    let target = fs::read_link(&link).unwrap();
    // nginx reloaded while the site was disabled, then the link came back:
    // the files are ours again, but nginx does not serve them.
    fs::remove_file(&link).unwrap();
    nginx(&d, &["-s", "reload"]);
    let start = Instant::now();
    while d.client().get(d.url("/api/version")).send().is_ok() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(d.client().get(d.url("/api/version")).send().is_err(), "the site is still served");

    let ran = d.init();
    assert!(ran.stdout.contains("the files match the answers, but the site cannot be reached"), "{}", ran.stdout);
    assert!(ran.stdout.contains("✓ reloaded"), "{}", ran.stdout);
    works_and_settles(&d, &ran);
}

#[test]
fn caddy_running_without_the_site_is_reloaded() {
    let d = deploy("caddy", ALICE_ONLY);
    // Caddy loaded another configuration: the same global options, no import.
    let main = fs::read_to_string(d.sandbox.path("etc/caddy/Caddyfile")).unwrap();
    let without =
        d.sandbox.write("other.Caddyfile", &main.lines().take_while(|l| *l != "}").collect::<Vec<_>>().join("\n"));
    fs::write(&without, format!("{}\n}}\n", fs::read_to_string(&without).unwrap())).unwrap();
    let mut reload = std::process::Command::new("caddy");
    reload.args(["reload", "--config", without.to_str().unwrap(), "--adapter", "caddyfile"]);
    for (k, v) in caddy_env(&d.sandbox) {
        reload.env(k, v);
    }
    let out = reload.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(d.client().get(d.url("/api/version")).send().is_err(), "the site is still served");

    let ran = d.init();
    assert!(ran.stdout.contains("the files match the answers, but the site cannot be reached"), "{}", ran.stdout);
    works_and_settles(&d, &ran);
}
