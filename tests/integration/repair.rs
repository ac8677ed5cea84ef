//! `init` with unchanged answers does not take matching files for a working
//! server: it asks the running proxy, and repairs what it finds (a lost or
//! stale auth socket, a proxy that does not serve the site), then proves
//! the site asks for credentials. `check` names the cause of a 500.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::deployment::{ALICE, ALICE_ONLY, DOMAIN, Deployment};
use crate::support::proxies::caddy;
use crate::support::{Tool, sh};

fn socket(d: &Deployment) -> std::path::PathBuf {
    d.sandbox.path("run/ollama-secure-auth.sock")
}

fn nginx(d: &Deployment, args: &[&str]) {
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

/// Runs the repair; then the site asks for credentials, logs alice in,
/// and a second run finds nothing left to do.
fn repairs_and_settles(d: &Deployment, repair: Tool) {
    let repaired = repair.stdout_has("asks for credentials (401)").run();
    assert!(!repaired.stdout.contains("Nothing to change"), "{}", repaired.stdout);
    let resp = d.client().get(d.url("/api/version")).send().unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    assert_eq!(d.status("/api/version", Some(("alice", "wrong"))), 401);
    d.init().stdout_has("Nothing to change").run();
}

#[test]
fn a_lost_auth_socket_is_named_by_check_and_repaired_by_init() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    let pid = d.guard.pid().unwrap();
    // What nginx's cache loader did to the socket in the cache folder; any
    // other deletion has the same effect: every uncached login fails.
    fs::remove_file(socket(&d)).unwrap();
    assert_eq!(d.status("/api/version", None), 500);
    assert_eq!(d.status("/api/version", Some(("alice", "a login never cached"))), 500);

    let resolve = format!("{DOMAIN}:{}:127.0.0.1", d.port);
    d.tool()
        .args(["check", "--url", &d.url(""), "--username", "alice", "--password-env", "ALICE_PASSWORD"])
        .args(["--resolve", &resolve, "--answers", &d.answers])
        .status(3)
        // check names the cause, and what nginx's error log (found from
        // nginx.conf) last said.
        .stdout_has(&format!("its socket {} is missing", socket(&d).display()))
        .stdout_has(&format!("The last error in {}:", d.sandbox.path("log/nginx-error.log").display()))
        .stdout_has(&format!("connect() to unix:{} failed (2: No such file or directory)", socket(&d).display()))
        .stderr("error: the check found problems (see above)\n")
        .run();

    d.init()
        .args(["--dry-run"])
        .stdout_has("nginx is restarted to create it again")
        .stdout_has("stop nginx: run `nginx -s quit")
        .run();

    repairs_and_settles(&d, d.init().stdout_has("ok stopped").stdout_has("ok started"));
    assert!(socket(&d).exists(), "the socket was not created again");
    assert_ne!(d.guard.pid(), Some(pid), "nginx was not restarted");
}

#[test]
fn a_stale_auth_socket_is_removed_before_nginx_starts() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    let pid = d.guard.pid().unwrap();
    nginx(&d, &["-s", "quit"]);
    wait_until_gone(pid);
    assert!(!socket(&d).exists(), "nginx removes its socket when it exits cleanly");
    // What an nginx killed with SIGKILL leaves: a socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(socket(&d)).unwrap());
    let (ok, out) = sh("nginx", &["-t", "-c", d.sandbox.path("etc/nginx/nginx.conf").to_str().unwrap()]);
    assert!(ok, "{out}");

    repairs_and_settles(&d, d.init().stdout_has("did not exit cleanly").stdout_has("ok removed the stale socket"));
}

#[test]
fn nginx_running_without_the_site_is_reloaded() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
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

    let repair =
        d.init().stdout_has("the files match the answers, but the site cannot be reached").stdout_has("ok reloaded");
    repairs_and_settles(&d, repair);
}

#[test]
fn caddy_running_without_the_site_is_reloaded() {
    let d = Deployment::deploy("caddy", ALICE_ONLY);
    // Caddy loaded another configuration: the same global options, no import.
    let main = fs::read_to_string(d.sandbox.path("etc/caddy/Caddyfile")).unwrap();
    let without =
        d.sandbox.write("other.Caddyfile", &main.lines().take_while(|l| *l != "}").collect::<Vec<_>>().join("\n"));
    fs::write(&without, format!("{}\n}}\n", fs::read_to_string(&without).unwrap())).unwrap();
    let out = caddy(&d.sandbox, &["reload", "--config", without.to_str().unwrap(), "--adapter", "caddyfile"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(d.client().get(d.url("/api/version")).send().is_err(), "the site is still served");

    repairs_and_settles(&d, d.init().stdout_has("the files match the answers, but the site cannot be reached"));
}
