//! `--json` for scripts (an Ansible module reports `changed` from it):
//! standard output holds exactly one JSON object, everything a person
//! reads goes to standard error. Against a real nginx.

use crate::support::deployment::{ALICE_ONLY, Deployment};

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{stdout}"))
}

fn has(list: &serde_json::Value, path: &std::path::Path) -> bool {
    list.as_array().unwrap().iter().any(|p| p.as_str() == path.to_str())
}

#[test]
fn init_and_uninstall_say_what_they_changed() {
    let d = Deployment::prepare("nginx", &format!("{ALICE_ONLY}  - {{username: bob, generate: true}}\n"));
    let site = d.sandbox.path("etc/nginx/sites-available/ollama");
    let before = d.machine();

    let dry = d.init().args(["--json", "--dry-run"]).any_stdout().stderr_has("Dry run: nothing was changed.").run();
    let mut settings = crate::support::snapshot_settings();
    settings.add_filter(&regex::escape(&d.sandbox.root().display().to_string()), "[SANDBOX]");
    settings.add_filter(&format!(":{}", d.port), ":[PORT]");
    settings.add_filter(&format!(r"\b{}\b", d.port), "[PORT]");
    settings.add_filter(&format!(":{}", d.ollama.addr.port()), ":[OLLAMA-PORT]");
    let dry = json(&dry.stdout);
    let pretty = serde_json::to_string_pretty(&dry).unwrap();
    settings.bind(|| insta::assert_snapshot!("init-dry-run-json", pretty));
    assert_eq!((dry["dry_run"].as_bool(), dry["changed"].as_bool()), (Some(true), Some(true)));
    assert!(has(&dry["touched"]["written"], &site), "{dry}");
    assert!(dry["touched"]["commands"].as_array().unwrap().iter().any(|c| c.as_str().unwrap().starts_with("nginx -t")));
    assert_eq!(dry["generated_passwords_for"], serde_json::json!(["bob"]));
    assert!(dry.get("passwords").is_none(), "{dry}");
    assert_eq!(d.machine(), before, "a dry run changed files");

    // A --cacert that cannot be read is refused before anything is done.
    d.init()
        .args(["--json", "--cacert", "/nonexistent/ca.pem"])
        .status(2)
        .stderr_has("error: cannot read --cacert /nonexistent/ca.pem")
        .run();
    assert_eq!(d.machine(), before, "a refused run changed files");

    // Applied: the secrets in the JSON (asked for), not on standard error.
    let ran = d.init().args(["--json", "--show-secrets"]).any_stdout().stderr_has("Applying:").run();
    let applied = json(&ran.stdout);
    assert_eq!((applied["dry_run"].as_bool(), applied["changed"].as_bool()), (Some(false), Some(true)));
    assert_eq!(applied["check"]["passed"], true, "{applied}");
    let bob = applied["passwords"]["bob"].as_str().expect("bob's generated password").to_string();
    assert!(!ran.stderr.contains(&bob), "the password is on standard error too");
    assert_eq!(d.status("/api/version", Some(("bob", &bob))), 200);

    // Again: nothing to change, and it says so.
    let again = json(&d.init().args(["--json"]).any_stdout().any_stderr().run().stdout);
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["touched"]["written"], serde_json::json!([]));

    let removal = json(&d.uninstall(true).args(["--json"]).any_stdout().any_stderr().run().stdout);
    assert_eq!((removal["dry_run"].as_bool(), removal["changed"].as_bool()), (Some(true), Some(true)));
    assert!(has(&removal["touched"]["removed"], &site), "{removal}");
    let removed = json(&d.uninstall(false).args(["--json"]).any_stdout().any_stderr().run().stdout);
    assert_eq!(removed["touched"], removal["touched"], "the run did what its dry run said");
    d.assert_as_before(&before);
}
