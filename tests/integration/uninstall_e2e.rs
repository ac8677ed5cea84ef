//! `uninstall` undoes `init`: the sandbox's etc/ and var/lib/ are exactly as
//! before (files, links, folders, bytes, modes), including a file `init` had
//! replaced, and the proxy that `init` started is stopped.

use std::collections::BTreeMap;
use std::fs;

use crate::apply_e2e::{ALICE, ALICE_ONLY, Deployed, prepare};

fn system_files(d: &Deployed) -> BTreeMap<String, String> {
    d.sandbox.trees(&["etc", "var/lib"])
}

fn uninstall(d: &Deployed, dry_run: bool) -> crate::support::Ran {
    let mut args = vec!["uninstall", "--answers", &d.answers];
    if dry_run {
        args.push("--dry-run");
    }
    d.tool().args(args).run()
}

fn undoes_everything(proxy: &'static str) {
    let d = prepare(proxy, ALICE_ONLY);
    // Something of the user's sits where init will write: it must come back.
    let users_own = if proxy == "nginx" { "etc/nginx/sites-available/ollama" } else { "etc/caddy/ollama.caddy" };
    d.sandbox.write(users_own, "# the user's own file, from before\n");
    let before = system_files(&d);

    d.init().assert_code(0);
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    // A second init with another user makes backups of our own files too.
    d.write_answers(&format!("{ALICE_ONLY}  - {{username: bob, generate: true}}\n"));
    d.init().assert_code(0);
    let installed = system_files(&d);
    assert_ne!(installed, before);

    let ran = uninstall(&d, true);
    ran.assert_code(0);
    assert!(ran.stdout.contains("Dry run: nothing was changed."), "{}", ran.stdout);
    assert!(ran.stdout.contains(&format!("restore {}", d.sandbox.path(users_own).display())), "{}", ran.stdout);
    assert_eq!(system_files(&d), installed, "uninstall --dry-run changed files");

    let ran = uninstall(&d, false);
    ran.assert_code(0);
    assert!(ran.stdout.contains("✓ stopped"), "init started the proxy, so uninstall stops it: {}", ran.stdout);
    let after = system_files(&d);
    assert_eq!(after, before, "uninstall did not restore etc/ and var/lib/ exactly");
    assert!(!d.sandbox.path("run/ollama-secure-auth").exists(), "the cache of password checks outlived uninstall");
    assert!(!d.sandbox.path("run/ollama-secure-auth.sock").exists(), "the auth socket outlived uninstall");
    assert_eq!(fs::read_to_string(d.sandbox.path(users_own)).unwrap(), "# the user's own file, from before\n");
    assert!(
        d.client().get(d.url("/api/version")).send().is_err(),
        "something still answers on the proxy's port after uninstall"
    );

    // Nothing left to undo.
    let ran = uninstall(&d, false);
    ran.assert_code(2);
    assert!(ran.stderr.contains("no ollama-secure setup found"), "{}", ran.stderr);
}

#[test]
fn nginx_uninstall_restores_the_system_exactly() {
    undoes_everything("nginx");
}

#[test]
fn caddy_uninstall_restores_the_system_exactly() {
    undoes_everything("caddy");
}

/// A site the user added after `init` had started the proxy: uninstall must
/// not take it down with ours, so it reloads instead of stopping.
fn keeps_serving_sites_added_since(proxy: &'static str) {
    let d = crate::apply_e2e::deploy(proxy, ALICE_ONLY);
    let pid = d.guard.pid().expect("init started the proxy");
    let other_port = crate::support::free_port();
    match proxy {
        "nginx" => {
            d.sandbox.write(
                "etc/nginx/sites-enabled/other",
                &format!("server {{\n    listen 127.0.0.1:{other_port};\n    return 200 \"other site\\n\";\n}}\n"),
            );
        }
        _ => {
            let caddyfile = d.sandbox.path("etc/caddy/Caddyfile");
            let mut text = fs::read_to_string(&caddyfile).unwrap();
            text.push_str(&format!(
                "http://127.0.0.1:{other_port} {{\n\tbind 127.0.0.1\n\trespond \"other site\" 200\n}}\n"
            ));
            fs::write(&caddyfile, text).unwrap();
        }
    }

    let ran = uninstall(&d, true);
    ran.assert_code(0);
    assert!(ran.stdout.contains("so it is reloaded, not stopped"), "{}", ran.stdout);
    if proxy == "nginx" {
        let other = d.sandbox.path("etc/nginx/sites-enabled/other").display().to_string();
        assert!(ran.stdout.contains(&format!("added: {other}")), "{}", ran.stdout);
    }

    let ran = uninstall(&d, false);
    ran.assert_code(0);
    assert!(!ran.stdout.contains("✓ stopped"), "{}", ran.stdout);
    assert_eq!(d.guard.pid(), Some(pid), "the proxy was replaced, not reloaded");
    let other = reqwest::blocking::get(format!("http://127.0.0.1:{other_port}/")).unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(other.text().unwrap().trim(), "other site");
    assert!(d.client().get(d.url("/api/version")).send().is_err(), "the Ollama site still answers after uninstall");
    assert!(!d.sandbox.path("var/lib/ollama-secure").exists(), "uninstall left its state behind");
}

#[test]
fn nginx_uninstall_keeps_serving_sites_added_since() {
    keeps_serving_sites_added_since("nginx");
}

#[test]
fn caddy_uninstall_keeps_serving_sites_added_since() {
    keeps_serving_sites_added_since("caddy");
}

/// The main Caddyfile is the user's: init and uninstall keep its owner,
/// group and mode, and uninstall gives back its exact bytes, even without
/// a final line break.
#[test]
fn caddy_keeps_the_users_caddyfile_exactly() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let d = prepare("caddy", ALICE_ONLY);
    let caddyfile = d.sandbox.path("etc/caddy/Caddyfile");
    let text = fs::read_to_string(&caddyfile).unwrap();
    fs::write(&caddyfile, text.trim_end()).unwrap();
    let caddy_gid = nix::unistd::Group::from_name("caddy").unwrap().unwrap().gid;
    nix::unistd::chown(&caddyfile, Some(nix::unistd::Uid::from_raw(0)), Some(caddy_gid)).unwrap();
    fs::set_permissions(&caddyfile, fs::Permissions::from_mode(0o640)).unwrap();
    let before = system_files(&d);

    d.init().assert_code(0);
    let meta = fs::metadata(&caddyfile).unwrap();
    assert_eq!(
        (meta.mode() & 0o777, meta.gid()),
        (0o640, caddy_gid.as_raw()),
        "init changed the Caddyfile's mode or group"
    );
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);

    uninstall(&d, false).assert_code(0);
    assert_eq!(system_files(&d), before, "uninstall did not give the Caddyfile back exactly");
}
