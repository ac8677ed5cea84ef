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
    settings.add_filter(&format!(r"\bport {}\b", d.ollama.addr.port()), "port [OLLAMA-PORT]");
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

    // The other commands' JSON, as scripts read it (the key, its ID and
    // time, the check's timings and the bytes change from run to run).
    settings.add_filter(r"osk_[A-Za-z0-9+/=]+", "[KEY]");
    settings.add_filter(r#""id": "[a-z0-9]+""#, r#""id": "[KEY-ID]""#);
    settings.add_filter(r#""(ms|elapsed_ms|first_token_ms|duration_ms)": [0-9.]+"#, r#""$1": [MS]"#);
    settings.add_filter(r#""created": "[^"]+""#, r#""created": "[TIME]""#);
    // Headers carry the port and versions: their sizes change with them.
    settings.add_filter(r#""(bytes_received|bytes_sent)": [0-9]+"#, r#""$1": [BYTES]"#);
    let answers = d.answers.as_str();
    let pretty = |stdout: &str| serde_json::to_string_pretty(&json(stdout)).unwrap();
    let ran = |args: &[&str]| d.tool().args(args).args(["--answers", answers]).any_stdout().any_stderr().run().stdout;
    let added = pretty(&ran(&["keys", "add", "ci", "--json"]));
    let users = pretty(&ran(&["users", "list", "--json"]));
    let keys = pretty(&ran(&["keys", "list", "--json"]));
    let usage = pretty(&ran(&["usage", "--json"]));
    let ollama_port = d.ollama.addr.port().to_string();
    let checked = d.check().args(["--ollama-port", &ollama_port, "--json"]).any_stdout().any_stderr().run().stdout;
    let checked = pretty(&checked);
    settings.bind(|| {
        insta::assert_snapshot!("keys-add-json", added);
        insta::assert_snapshot!("users-list-json", users);
        insta::assert_snapshot!("keys-list-json", keys);
        insta::assert_snapshot!("usage-json", usage);
        insta::assert_snapshot!("check-json", checked);
    });

    let removal = json(&d.uninstall(true).args(["--json"]).any_stdout().any_stderr().run().stdout);
    // The cache's tmpfs is mounted only where the sandbox is on a disk.
    let mut shown = removal.clone();
    shown["touched"]["commands"].as_array_mut().unwrap().retain(|c| !c.as_str().unwrap().starts_with("umount "));
    let pretty_removal = serde_json::to_string_pretty(&shown).unwrap();
    settings.add_filter(r"\.bak-[0-9]{8}T[0-9]{6}Z", ".bak-[STAMP]");
    settings.bind(|| insta::assert_snapshot!("uninstall-dry-run-json", pretty_removal));
    assert_eq!((removal["dry_run"].as_bool(), removal["changed"].as_bool()), (Some(true), Some(true)));
    assert!(has(&removal["touched"]["removed"], &site), "{removal}");
    let removed = json(&d.uninstall(false).args(["--json"]).any_stdout().any_stderr().run().stdout);
    assert_eq!(removed["touched"], removal["touched"], "the run did what its dry run said");
    d.assert_as_before(&before);
}
