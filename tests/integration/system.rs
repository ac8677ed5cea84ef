//! The opt-in system test: `init` with the default paths on this machine's
//! real /etc/nginx and /etc/caddy (no systemd), a second `init` that changes
//! nothing, then `uninstall`, which must leave /etc as it was and the proxy
//! stopped. Only `.ci/run` enables it (OLLAMA_SECURE_SYSTEM_TEST=1), inside
//! a network namespace of its own: Debian's default sites listen on port 80
//! of every interface, and there the only interface is loopback.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::support::standin::StandIn;
use crate::support::{Sandbox, Tool, free_port, tree};

const PASSWORD: &str = "system test password, long enough";

fn enabled() -> bool {
    std::env::var("OLLAMA_SECURE_SYSTEM_TEST").as_deref() == Ok("1")
}

/// Interfaces of this network namespace, from /proc/net/dev.
fn interfaces() -> Vec<String> {
    std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|n| n.trim().to_string()))
        .collect()
}

fn system_state() -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for dir in ["/etc/nginx", "/etc/caddy", "/var/lib/ollama-secure"] {
        all.extend(tree(Path::new(dir)).into_iter().map(|(k, v)| (format!("{dir}/{k}"), v)));
        all.insert(dir.to_string(), Path::new(dir).exists().to_string());
    }
    all
}

/// A proxy process running with the system's own configuration (other
/// tests run theirs with sandbox configs).
fn running(proxy: &str) -> bool {
    let config = if proxy == "nginx" { "/etc/nginx/nginx.conf" } else { "/etc/caddy/Caddyfile" };
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == proxy)
            && std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(config))
    })
}

fn round_trip(proxy: &str) {
    let ollama = StandIn::start();
    let port = free_port();
    let home = Sandbox::new(); // Caddy's own data and config, kept out of /root
    let answers = home.write(
        "answers.yaml",
        &format!(
            "proxy: {proxy}\ndomain: ollama.test\nlisten_address: 127.0.0.1\nport: {port}\nupstream: {}\nusers:\n  - {{username: alice, password_env: ALICE_PASSWORD}}\nbcrypt_cost: 4\ninstall: true\n",
            ollama.upstream()
        ),
    );
    let answers = answers.to_str().unwrap();
    let tool = || {
        Tool::new()
            .env("ALICE_PASSWORD", PASSWORD)
            .env("XDG_CONFIG_HOME", home.path("config").to_str().unwrap())
            .env("XDG_DATA_HOME", home.path("data").to_str().unwrap())
    };
    let before = system_state();
    assert!(!running(proxy), "{proxy} is already running: the system test needs a machine where it is not");

    tool().args(["init", "--answers", answers]).any_stdout().run();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .resolve("ollama.test", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let url = format!("http://ollama.test:{port}/api/version");
    assert_eq!(client.get(&url).send().unwrap().status(), 401);
    assert_eq!(client.get(&url).basic_auth("alice", Some(PASSWORD)).send().unwrap().status(), 200);

    tool().args(["init", "--answers", answers]).stdout_has("Nothing to change").run();

    tool().args(["uninstall", "--answers", answers]).any_stdout().run();
    assert_eq!(system_state(), before, "uninstall left /etc/{proxy} different from before");
    assert!(!Path::new("/run/ollama-secure-auth").exists(), "the cache of password checks outlived uninstall");
    assert!(!Path::new("/run/ollama-secure-auth.sock").exists(), "the auth socket outlived uninstall");
    // Uninstall waits for the proxy it stops to exit, so no grace period here.
    assert!(!running(proxy), "{proxy} still runs after uninstall");
}

#[test]
fn system_init_and_uninstall_on_the_real_etc() {
    if !enabled() {
        eprintln!(
            "system test skipped: only .ci/run enables it (OLLAMA_SECURE_SYSTEM_TEST=1, in its own network namespace)"
        );
        return;
    }
    assert_eq!(
        interfaces(),
        ["lo"],
        "the system test runs only in a network namespace whose one interface is loopback"
    );
    the_readme_command_runs_on_the_bundled_example();
    round_trip("nginx");
    round_trip("caddy");
}

/// Exactly what the README tells a new user to run (paths left at their
/// defaults): it reads this machine's /etc, which is why it runs here.
fn the_readme_command_runs_on_the_bundled_example() {
    let before = system_state();
    Tool::new()
        .args(["init", "--answers", "examples/nginx.yaml", "--dry-run"])
        .env("BOB_PASSWORD", "a long password for bob ok")
        .stdout_has("Dry run: nothing was changed.")
        .any_stderr()
        .run();
    assert_eq!(system_state(), before, "a dry run changed /etc");
}
