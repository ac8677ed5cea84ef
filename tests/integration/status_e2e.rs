//! `status` against real setups: what it says of a working one (text and
//! JSON, snapshotted), of one over HTTPS (the certificate pebble issued,
//! its days left), and of one whose proxy was stopped (exit 3, said why).

use crate::support::deployment::{ALICE_ONLY, Deployment};

fn settings(d: &Deployment) -> insta::Settings {
    let mut settings = crate::support::snapshot_settings();
    settings.add_filter(&regex::escape(&d.sandbox.root().display().to_string()), "[SANDBOX]");
    settings.add_filter(&format!(":{}", d.port), ":[PORT]");
    settings.add_filter(&format!(":{}", d.ollama.addr.port()), ":[OLLAMA-PORT]");
    settings.add_filter(r"pid \d+", "pid [PID]");
    settings.add_filter(r#""pid": \d+"#, r#""pid": [PID]"#);
    settings
}

fn status(d: &Deployment) -> crate::support::Tool {
    d.tool().args(["status", "--answers", &d.answers])
}

#[test]
fn a_working_setup_is_described_and_snapshotted() {
    let d = Deployment::deploy("nginx", &format!("{ALICE_ONLY}  - {{username: bob, generate: true, role: admin}}\n"));
    d.tool().args(["keys", "add", "ci", "--answers", &d.answers]).any_output().run();
    let text = status(&d).stdout_has("All is well.").run();
    let json = status(&d).args(["--json"]).any_stdout().run();
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["running"], true);
    assert_eq!(value["pid"].as_i64(), d.guard.pid().map(i64::from), "the PID of the nginx init started");
    assert_eq!(value["users"][1], serde_json::json!({"name": "bob", "role": "admin"}));
    assert_eq!(value["keys"][0]["name"], "ci");
    assert!(!json.stdout.contains("$2y$") && !json.stdout.contains("osk_"), "a secret in the status");
    settings(&d).bind(|| {
        insta::assert_snapshot!("status-nginx", text.stdout);
        insta::assert_snapshot!("status-nginx-json", json.stdout);
    });
}

#[test]
fn without_root_status_says_so() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    status(&d)
        .unprivileged()
        .status(2)
        .stderr("error: status needs root to read the setup's files (the users file is 0640); run it with sudo\n")
        .run();
}

#[test]
fn a_stopped_proxy_is_a_problem() {
    let d = Deployment::deploy("caddy", ALICE_ONLY);
    let pid = d.guard.pid().expect("init started Caddy");
    std::process::Command::new("kill").arg(pid.to_string()).status().unwrap();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    status(&d)
        .status(3)
        .stdout_has("  proxy:       not running\n")
        .stdout_has("1 problem(s):\n  - caddy is not running: the site does not answer\n")
        .stderr("error: 1 problem(s) found (listed above)\n")
        .run();
}

#[test]
fn https_shows_the_certificate_served() {
    for proxy in ["nginx", "caddy"] {
        let d = Deployment::prepare_https(proxy);
        d.init().any_output().run();
        // Here (no systemd, no cron) nothing renews certbot's certificate:
        // a problem for nginx; Caddy renews its own.
        let expected = if proxy == "nginx" { 3 } else { 0 };
        let ran = status(&d).args(["--json"]).status(expected).any_stdout().any_stderr().run();
        if proxy == "nginx" {
            assert!(ran.stdout.contains("nothing here will renew the certificate"), "{}", ran.stdout);
        }
        let value: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
        let cert = &value["certificate"];
        assert_eq!(cert["domain"], "ollama.test", "{proxy}: {}", ran.stdout);
        // Read from the certificate the site serves (pebble's: 5 years).
        assert!(cert["days_left"].as_i64().is_some_and(|d| d > 0), "{proxy}: {}", ran.stdout);
        let renewal = if proxy == "nginx" { "nothing here will renew" } else { "Caddy renews its certificates itself" };
        assert!(cert["renewal"].as_str().unwrap().starts_with(renewal), "{proxy}: {}", ran.stdout);
    }
}
