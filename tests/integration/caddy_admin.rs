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
    // `check` on this machine says so too, and fails.
    check(&d)
        .status(3)
        .stdout_has(&format!("answers at {admin} without a password: any user of this machine can read the hashes"))
        .stdout_has("admin unix//run/caddy-admin.sock")
        .any_stderr()
        .run();
}

/// `check` of the deployment, on this machine, knowing its answers.
fn check(d: &Deployment) -> crate::support::Tool {
    d.check().args(["--answers", &d.answers])
}

/// `users add bob`: a reload, which must reach Caddy; bob then gets in.
fn bob_is_added_and_logs_in(d: &Deployment) {
    d.tool()
        .env("BOB_PASSWORD", BOB)
        .args(["users", "add", "bob", "--password-env", "BOB_PASSWORD", "--answers", &d.answers])
        .stdout_has("Checked: bob gets 200")
        .run();
    assert_eq!(d.status("/api/version", Some(("bob", BOB))), 200);
}

/// Root's socket, writable by root only: connect(2) needs write access.
fn assert_root_only(socket: &std::path::Path) {
    let meta = fs::metadata(socket).unwrap();
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o022), (0, 0), "mode {:o}", meta.permissions().mode());
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
    assert_root_only(&socket);

    // A change of users is a reload, through the socket.
    bob_is_added_and_logs_in(&d);
    let checked = check(&d).any_stdout().run();
    assert!(
        checked.stdout.contains("Caddy's admin API") && checked.stdout.contains("on a unix socket, or off"),
        "{}",
        checked.stdout
    );

    d.uninstall(false).any_stdout().run();
    assert_eq!(fs::read_to_string(&caddyfile).unwrap(), closed, "uninstall left the Caddyfile changed");
    assert!(!socket.exists(), "Caddy still runs: its admin socket is there");
}

/// A Caddyfile that leaves the admin API at Caddy's default (TCP), with
/// the sandbox's storage.
fn caddyfile_without_admin(d: &Deployment) -> String {
    let main =
        format!("{{\n\tstorage file_system {}/caddy-data\n\tskip_install_trust\n}}\n", d.sandbox.root().display());
    fs::write(d.sandbox.path("etc/caddy/Caddyfile"), &main).unwrap();
    main
}

#[test]
fn the_caddy_that_init_starts_gets_its_admin_api_on_a_root_only_socket() {
    let d = Deployment::prepare("caddy", ALICE_ONLY);
    let before = caddyfile_without_admin(&d);
    let socket = d.sandbox.path("run/caddy-admin.sock");
    let line = format!("admin unix/{}", socket.display());

    let dry = d.init().args(["--dry-run"]).stdout_has(&line).run();
    assert!(dry.stdout.contains("Caddy's admin API: on the unix socket"), "{}", dry.stdout);
    assert!(!dry.stdout.contains("asks for no password"), "warned although init closes it:\n{}", dry.stdout);
    d.init().stdout_has("checks passed").run();
    let caddyfile = fs::read_to_string(d.sandbox.path("etc/caddy/Caddyfile")).unwrap();
    assert!(caddyfile.contains(&line), "{caddyfile}");

    // Root's socket, which others cannot connect to; root gets the config.
    assert_root_only(&socket);
    let ask = |nobody: bool| {
        let mut command = if nobody {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "curl"]);
            c
        } else {
            std::process::Command::new("curl")
        };
        // `Host;` sends an empty Host: Caddy 2.6 allows no other on a socket.
        command
            .args(["-s", "-m", "5", "--unix-socket"])
            .arg(&socket)
            .args(["-H", "Host;", "http://caddy/config/"])
            .output()
            .unwrap()
    };
    let as_root = ask(false);
    assert!(as_root.status.success() && String::from_utf8_lossy(&as_root.stdout).contains("alice"), "{as_root:?}");
    let as_nobody = ask(true);
    assert!(!as_nobody.status.success() && as_nobody.stdout.is_empty(), "nobody reached the admin API: {as_nobody:?}");

    // Reloads go through the socket: a users change, and init again.
    bob_is_added_and_logs_in(&d);
    d.init().stdout_has("Nothing to change").run();

    // uninstall stops that Caddy through the socket and gives the
    // Caddyfile back as it was.
    d.uninstall(false).any_stdout().run();
    assert_eq!(fs::read_to_string(d.sandbox.path("etc/caddy/Caddyfile")).unwrap(), before);
    assert!(!socket.exists(), "Caddy still runs: its admin socket is there");
    assert!(d.guard.pid().is_none_or(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()));
}
