//! `uninstall` undoes `init`: the sandbox's etc/ and var/lib/ are exactly as
//! before (files, links, folders, bytes, modes), including a file `init` had
//! replaced, and the proxy that `init` started is stopped.

use std::collections::BTreeMap;
use std::fs;

use crate::support::deployment::{ALICE, ALICE_ONLY, Deployment};

fn system_files(d: &Deployment) -> BTreeMap<String, String> {
    d.sandbox.trees(&["etc", "var/lib"])
}

/// init, a second init with another user, `users` changes (each makes
/// backups holding hashes), then uninstall: the machine is as before,
/// byte for byte, with a file of the user's that init replaced restored.
fn undoes_everything(proxy: &'static str, https: bool) {
    let d = if https { Deployment::prepare_https(proxy) } else { Deployment::prepare(proxy, ALICE_ONLY) };
    // Something of the user's sits where init will write: it must come back.
    let users_own = if proxy == "nginx" { "etc/nginx/sites-available/ollama" } else { "etc/caddy/ollama.caddy" };
    d.sandbox.write(users_own, "# the user's own file, from before\n");
    if https && proxy == "nginx" {
        // certbot ran here before: its log folder is not ours to remove.
        d.sandbox.write("log/letsencrypt/letsencrypt.log.1", "an earlier run\n");
    }
    let before = d.machine();

    d.init()
        .stdout_has(&format!("{} is there and was not written by ollama-secure", d.sandbox.path(users_own).display()))
        .run();
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    if !https {
        // A second init with another user makes backups of our own files too.
        d.write_answers(&format!("{ALICE_ONLY}  - {{username: bob, generate: true}}\n"));
        d.init().any_stdout().run();
    }
    let users = |args: &[&str]| d.tool().args(["users"]).args(args).args(["--answers", &d.answers]).any_stdout().run();
    users(&["add", "carol"]);
    users(&["rotate", "carol"]);
    users(&["remove", "carol"]);
    // Keys, roles and requests (the access log) leave nothing behind either.
    let keys = |args: &[&str]| d.tool().args(["keys"]).args(args).args(["--answers", &d.answers]).any_output().run();
    keys(&["add", "ci"]);
    keys(&["rotate", "ci"]);
    keys(&["add", "ops", "--role", "admin"]);
    keys(&["revoke", "ci"]);
    users(&["role", "alice", "admin"]);
    let installed = d.machine();
    assert_ne!(installed, before);

    d.uninstall(true)
        .stdout_has("Dry run: nothing was changed.")
        .stdout_has(&format!("restore {}", d.sandbox.path(users_own).display()))
        .run();
    assert_eq!(d.machine(), installed, "uninstall --dry-run changed files");

    // init started the proxy, so uninstall stops it.
    d.uninstall(false).stdout_has("ok stopped").run();
    d.assert_as_before(&before);
    assert_eq!(fs::read_to_string(d.sandbox.path(users_own)).unwrap(), "# the user's own file, from before\n");
    assert!(
        d.client().get(d.url("/api/version")).send().is_err(),
        "something still answers on the proxy's port after uninstall"
    );

    // Nothing left to undo.
    let state = d.sandbox.path("var/lib/ollama-secure/state.yaml");
    d.uninstall(false)
        .status(2)
        .stderr(&format!(
            "error: no ollama-secure setup found: {} does not exist (run init first, or pass the --answers FILE init used)\n",
            state.display()
        ))
        .run();
}

#[test]
fn nginx_uninstall_restores_the_system_exactly() {
    undoes_everything("nginx", false);
}

#[test]
fn caddy_uninstall_restores_the_system_exactly() {
    undoes_everything("caddy", false);
}

#[test]
fn nginx_https_uninstall_restores_the_system_exactly() {
    undoes_everything("nginx", true);
}

#[test]
fn caddy_https_uninstall_restores_the_system_exactly() {
    undoes_everything("caddy", true);
}

/// A site the user added after `init` had started the proxy: uninstall must
/// not take it down with ours, so it reloads instead of stopping.
fn keeps_serving_sites_added_since(proxy: &'static str) {
    let d = Deployment::deploy(proxy, ALICE_ONLY);
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

    let dry = d.uninstall(true).stdout_has("so it is reloaded, not stopped");
    let dry = match proxy {
        "nginx" => {
            let other = d.sandbox.path("etc/nginx/sites-enabled/other").display().to_string();
            dry.stdout_has(&format!("added: {other}"))
        }
        _ => dry,
    };
    dry.run();

    let ran = d.uninstall(false).any_stdout().run();
    assert!(!ran.stdout.contains("ok stopped"), "{}", ran.stdout);
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
    let d = Deployment::prepare("caddy", ALICE_ONLY);
    let caddyfile = d.sandbox.path("etc/caddy/Caddyfile");
    let text = fs::read_to_string(&caddyfile).unwrap();
    fs::write(&caddyfile, text.trim_end()).unwrap();
    let caddy_gid = nix::unistd::Group::from_name("caddy").unwrap().unwrap().gid;
    nix::unistd::chown(&caddyfile, Some(nix::unistd::Uid::from_raw(0)), Some(caddy_gid)).unwrap();
    fs::set_permissions(&caddyfile, fs::Permissions::from_mode(0o640)).unwrap();
    let before = system_files(&d);

    d.init().any_stdout().run();
    let meta = fs::metadata(&caddyfile).unwrap();
    assert_eq!(
        (meta.mode() & 0o777, meta.gid()),
        (0o640, caddy_gid.as_raw()),
        "init changed the Caddyfile's mode or group"
    );
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);

    d.uninstall(false).any_stdout().run();
    assert_eq!(system_files(&d), before, "uninstall did not give the Caddyfile back exactly");
}
