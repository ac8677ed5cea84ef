//! Caddy's admin API: on TCP (Caddy's default) it asks for no password, so
//! `init` says what any local user can do there and how to close it; closed
//! on a unix socket, everything ollama-secure does through it keeps working.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::support::deployment::{ALICE, ALICE_ONLY, Deployment};

const BOB: &str = "bob's password is long enough too";

#[test]
fn an_open_admin_api_is_named_with_the_fix_and_it_really_is_open() {
    let d = Deployment::prepare("caddy", ALICE_ONLY);
    let caddyfile = d.sandbox.path("etc/caddy/Caddyfile");
    let main = fs::read_to_string(&caddyfile).unwrap();
    let admin = main.lines().find_map(|l| l.trim().strip_prefix("admin ")).unwrap().to_string();
    let warning = format!(
        "warning: Caddy's admin API listens on {admin} and asks for no password: any user of this machine can read \
         the site's password hashes there"
    );
    d.init().args(["--dry-run"]).stdout_has(&warning).stdout_has("admin unix//run/caddy-admin.sock").run();
    d.init().stdout_has(&warning).run();
    // What the warning says is true: the config, hashes included, to anyone
    // who connects, with no credentials.
    let config = reqwest::blocking::get(format!("http://{admin}/config/")).unwrap().text().unwrap();
    let hash = fs::read_to_string(d.sandbox.path("etc/caddy/ollama.caddy"))
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("alice ").map(str::to_string))
        .unwrap();
    assert!(config.contains(&hash), "the admin API did not show the hash");
}

#[test]
fn closed_on_a_unix_socket_init_users_and_uninstall_still_work() {
    let d = Deployment::prepare("caddy", ALICE_ONLY);
    let caddyfile = d.sandbox.path("etc/caddy/Caddyfile");
    let socket = d.sandbox.path("admin.sock");
    let main = fs::read_to_string(&caddyfile).unwrap();
    let tcp = main.lines().find(|l| l.trim().starts_with("admin ")).unwrap().to_string();
    let closed = main.replace(&tcp, &format!("\tadmin unix/{}", socket.display()));
    fs::write(&caddyfile, &closed).unwrap();

    let ran = d.init().stdout_has("checks passed").run();
    assert!(!ran.stdout.contains("admin API"), "warned although the admin API is closed:\n{}", ran.stdout);
    assert_eq!(d.status("/api/version", None), 401);
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    // Root's socket, writable by root only: connect(2) needs write access.
    let meta = fs::metadata(&socket).unwrap();
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o022), (0, 0), "mode {:o}", meta.permissions().mode());

    // A change of users is a reload, through the socket.
    d.tool()
        .env("BOB_PASSWORD", BOB)
        .args(["users", "add", "bob", "--password-env", "BOB_PASSWORD", "--answers", &d.answers])
        .stdout_has("Checked: bob gets 200")
        .run();
    assert_eq!(d.status("/api/version", Some(("bob", BOB))), 200);

    d.uninstall(false).any_stdout().run();
    assert_eq!(fs::read_to_string(&caddyfile).unwrap(), closed, "uninstall left the Caddyfile changed");
    assert!(!socket.exists(), "Caddy still runs: its admin socket is there");
}
