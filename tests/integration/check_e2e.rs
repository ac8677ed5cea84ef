//! `check` against the stand-in Ollama behind the real proxies: a correct
//! setup passes every check; each deliberately broken config is caught by
//! the check meant for it, with a hint that names the fix.

use std::fs;
use std::time::Duration;

use crate::support::deployment::{ALICE, ALICE_ONLY, Deployment};
use crate::support::proxies::reload_caddy;
use crate::support::{Ran, Tool, sh};

fn check(d: &Deployment, extra: &[&str]) -> Tool {
    let ollama_port = d.ollama.addr.port().to_string();
    d.check().args(["--ollama-port", &ollama_port, "--timeout", "20"]).args(extra)
}

fn json(ran: &Ran) -> serde_json::Value {
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", ran.stdout, ran.stderr))
}

fn status_of(report: &serde_json::Value, name: &str) -> String {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Rewrites the deployed site with `edit` and makes the proxy load it.
fn break_site(d: &Deployment, edit: impl Fn(String) -> String) {
    match d.proxy {
        "nginx" => {
            let site = d.sandbox.path("etc/nginx/sites-available/ollama");
            let text = fs::read_to_string(&site).unwrap();
            let broken = edit(text.clone());
            assert_ne!(broken, text, "the edit changed nothing");
            fs::write(&site, broken).unwrap();
            let conf = d.sandbox.path("etc/nginx/nginx.conf");
            // A fresh start rather than a reload: no old worker can answer.
            let (ok, out) = sh("nginx", &["-s", "stop", "-c", conf.to_str().unwrap()]);
            assert!(ok, "{out}");
            let pid = d.sandbox.path("run/nginx.pid");
            for _ in 0..100 {
                if !pid.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let (ok, out) = sh("nginx", &["-c", conf.to_str().unwrap()]);
            assert!(ok, "{out}");
        }
        _ => {
            let site = d.sandbox.path("etc/caddy/ollama.caddy");
            let text = fs::read_to_string(&site).unwrap();
            let broken = edit(text.clone());
            assert_ne!(broken, text, "the edit changed nothing");
            fs::write(&site, broken).unwrap();
            reload_caddy(&d.sandbox);
        }
    }
}

fn correct_setup_passes_every_check(proxy: &'static str) {
    let d = Deployment::deploy(proxy, ALICE_ONLY);
    let ran = check(&d, &["--model", "tinyllama", "--json"]).any_stdout().run();
    let report = json(&ran);
    assert_eq!(report["passed"], true);
    for name in [
        "no_credentials",
        "wrong_password",
        "version",
        "advisories",
        "models",
        "role",
        "host_header",
        "large_body",
        "streaming",
        "exposure",
    ] {
        assert_eq!(status_of(&report, name), "pass", "{name} in {report}");
    }
    let streaming = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "streaming").unwrap();
    assert!(streaming["detail"].as_str().unwrap().contains("6 chunks"), "{streaming}");
    assert!(!ran.all().contains(ALICE), "the password was printed");
}

#[test]
fn nginx_correct_setup_passes_every_check() {
    correct_setup_passes_every_check("nginx");
}

#[test]
fn caddy_correct_setup_passes_every_check() {
    correct_setup_passes_every_check("caddy");
}

#[test]
fn the_human_report_is_snapshotted() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    let ran = check(&d, &["--model", "tinyllama"]).any_stdout().run();
    let mut settings = crate::support::snapshot_settings();
    settings.add_filter(r"\d+ ms", "[N] ms");
    settings.add_filter(&format!(":{}", d.port), ":[PORT]");
    settings.add_filter(&format!("port {}", d.ollama.addr.port()), "port [OLLAMA-PORT]");
    settings.add_filter(r"in \d+ burst\(s\)", "in [N] burst(s)");
    settings.bind(|| insta::assert_snapshot!("check-report-nginx", ran.stdout));
}

fn caught(d: &Deployment, name: &str, hint_word: &str) {
    let ran = check(d, &["--model", "tinyllama", "--json"])
        .status(3)
        .any_stdout()
        .stderr("error: the check found problems (see above)\n")
        .run();
    let report = json(&ran);
    assert_eq!(report["passed"], false);
    assert_eq!(status_of(&report, name), "fail", "{name} should fail: {report}");
    let check = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
    let words = format!("{} {}", check["detail"], check["hint"]);
    assert!(words.contains(hint_word), "{name}: expected {hint_word:?} in {words}");
}

#[test]
fn an_ollama_with_a_known_critical_advisory_is_caught_with_the_upgrade() {
    let d = Deployment::deploy("caddy", ALICE_ONLY);
    d.ollama.report_version("0.17.0");
    caught(&d, "advisories", "CVE-2026-7482");
    caught(&d, "advisories", "Upgrade Ollama to 0.17.1 or later");
    // A build from source says 0.0.0: not judged, and not a failure.
    d.ollama.report_version("0.0.0");
    let report = json(&check(&d, &["--model", "tinyllama", "--json"]).any_stdout().run());
    assert_eq!(status_of(&report, "advisories"), "skip", "{report}");
    assert_eq!(report["passed"], true);
}

#[test]
fn nginx_without_auth_is_caught_as_open() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    break_site(&d, |t| t.lines().filter(|l| !l.contains("auth_basic")).map(|l| format!("{l}\n")).collect());
    caught(&d, "no_credentials", "OPEN TO ANYONE");
}

#[test]
fn nginx_forwarding_the_public_host_is_caught() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    let header = format!("proxy_set_header Host {};", d.ollama.upstream());
    break_site(&d, |t| t.replace(&header, "proxy_set_header Host $host;"));
    caught(&d, "host_header", "proxy_set_header Host");
}

#[test]
fn nginx_with_the_1_mb_body_limit_is_caught() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    break_site(&d, |t| t.replace("client_max_body_size 0;", ""));
    caught(&d, "large_body", "413");
}

#[test]
fn nginx_buffering_the_stream_is_caught() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    // The guide's config: buffering on, and the server's gzip applying to ndjson.
    break_site(&d, |t| t.replace("proxy_buffering off;", "proxy_buffering on;").replace("gzip off;", ""));
    caught(&d, "streaming", "proxy_buffering off");
}

#[test]
fn caddy_forwarding_the_public_host_is_caught() {
    let d = Deployment::deploy("caddy", ALICE_ONLY);
    break_site(&d, |t| t.replace("header_up Host {upstream_hostport}", ""));
    caught(&d, "host_header", "header_up Host");
}

#[test]
fn caddy_without_auth_is_caught_as_open() {
    let d = Deployment::deploy("caddy", ALICE_ONLY);
    break_site(&d, |t| {
        // Caddy 2.6's name, or 2.8's and later.
        let start = t.find("\tbasicauth ").or_else(|| t.find("\tbasic_auth ")).unwrap();
        let end = start + t[start..].find("\t}\n").unwrap() + 3;
        format!("{}{}", &t[..start], &t[end..])
    });
    caught(&d, "no_credentials", "OPEN TO ANYONE");
}

#[test]
fn ollama_listening_on_all_interfaces_is_caught() {
    // Binding 0.0.0.0 is only done inside a network namespace of our own,
    // whose one interface is loopback. The check runs in there too, because
    // /proc/net/tcp shows the sockets of the reader's namespace.
    let bin = crate::support::BIN;
    for (bind, expected) in [("0.0.0.0", "fail"), ("127.0.0.1", "pass")] {
        let script = format!(
            "ip link set lo up; python3 -m http.server --bind {bind} 11434 >/dev/null 2>&1 & SERVER=$!; \
             for i in $(seq 50); do grep -q ':2CAA ' /proc/net/tcp && break; sleep 0.1; done; \
             P=x {bin} check --url http://127.0.0.1:9 --username a --password-env P --json --timeout 2; \
             kill $SERVER; wait $SERVER"
        );
        let out = std::process::Command::new("unshare").args(["--net", "sh", "-c", &script]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("{e}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        });
        assert_eq!(status_of(&report, "exposure"), expected, "Ollama bound to {bind}: {report}");
        assert_eq!(status_of(&report, "no_credentials"), "fail", "nothing listens on port 9");
        let detail = report["checks"][0]["detail"].as_str().unwrap();
        assert_eq!(detail, "connection refused: nothing listens there");
    }
}

#[test]
fn check_reports_errors_in_words_and_never_asks_without_a_terminal() {
    Tool::new()
        .args(["check", "--url", "http://127.0.0.1:9", "--username", "a", "--password-env", "P", "--timeout", "3"])
        .args(["--ollama-port", "9"])
        .env("P", "x")
        .status(3)
        .redact(r" \(\d+ ms\)", "")
        .stdout(
            "Checking http://127.0.0.1:9/\n\
             \x20 FAIL  without credentials: connection refused: nothing listens there\n\
             \x20 skip  with a wrong password: not sent: the first request got no answer (above)\n\
             \x20 skip  with the right password: version: not sent: the first request got no answer (above)\n\
             \x20 skip  Ollama without known critical advisories: the version is not known\n\
             \x20 skip  with the right password: models: not sent: the first request got no answer (above)\n\
             \x20 skip  model management (DELETE /api/delete): not sent: the first request got no answer (above)\n\
             \x20 skip  Host header accepted by Ollama: no authenticated answer to judge by\n\
             \x20 skip  large request body: not sent: the first request got no answer (above)\n\
             \x20 skip  streamed generation: a tiny generation needs a model: `ollama-secure check ... --model NAME`\n\
             \x20 skip  Ollama reachable only through the proxy: nothing listens on port 9 on this machine\n\
             1 of 1 checks failed: without credentials.\n",
        )
        .stderr("error: the check found problems (see above)\n")
        .run();
    Tool::new()
        .args(["check", "--url", "http://127.0.0.1:9", "--username", "a"])
        .status(2)
        .stderr(
            "error: no password: give --password-env VAR or --password-file FILE (there is no terminal to ask on)\n",
        )
        .run();
    Tool::new()
        .args(["check", "--url", "ftp://x", "--username", "a", "--password-env", "P"])
        .env("P", "x")
        .status(2)
        .stderr("error: --url \"ftp://x\": give an http:// or https:// URL\n")
        .run();
}

/// A server that accepts connections and never answers costs one timeout,
/// not one per check.
#[test]
fn a_hung_server_is_asked_once() {
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", hung.local_addr().unwrap());
    let ran = Tool::new()
        .args(["check", "--url", &url, "--username", "a", "--password-env", "P", "--timeout", "2", "--json"])
        .args(["--model", "tinyllama"])
        .env("P", "x")
        .status(3)
        .any_stdout()
        .stderr("error: the check found problems (see above)\n")
        .run();
    let report = json(&ran);
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["detail"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["no answer before the timeout"], "{report}");
    for name in ["wrong_password", "version", "models", "role", "large_body", "streaming"] {
        assert_eq!(status_of(&report, name), "skip", "{name} in {report}");
    }
    drop(hung);
}

/// `--model` naming a model Ollama does not have, and an https URL for a
/// port that speaks plain HTTP: said in words, with what to do.
#[test]
fn a_missing_model_and_a_plain_http_port_are_named() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    let ran = check(&d, &["--model", "nosuchmodel", "--json"]).status(3).any_stdout().any_stderr().run();
    let report = json(&ran);
    let streaming = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "streaming").unwrap();
    assert_eq!(streaming["detail"], "404: the model nosuchmodel is not installed", "{streaming}");
    let hint = streaming["hint"].as_str().unwrap();
    assert!(hint.starts_with("This Ollama has: tinyllama:latest. Give one of them to --model"), "{hint}");
    assert_eq!(status_of(&report, "models"), "pass");

    let url = format!("https://127.0.0.1:{}", d.port);
    let ran = Tool::new()
        .args(["check", "--url", &url, "--username", "alice", "--password-env", "P", "--json"])
        .env("P", "x")
        .status(3)
        .any_stdout()
        .any_stderr()
        .run();
    let report = json(&ran);
    let first = &report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "no_credentials").unwrap();
    assert_eq!(
        first["detail"],
        "this port speaks plain HTTP, not HTTPS: use an http:// URL, or the port the proxy serves HTTPS on",
        "{report}"
    );
}

#[test]
fn days_left_reads_the_certificate() {
    let sandbox = crate::support::Sandbox::new();
    let (cert, key) = (sandbox.path("c.pem"), sandbox.path("k.pem"));
    crate::support::self_signed(&cert, &key, "x.test");
    let (ok, der) = sh(
        "openssl",
        &["x509", "-in", cert.to_str().unwrap(), "-outform", "DER", "-out", sandbox.path("c.der").to_str().unwrap()],
    );
    assert!(ok, "{der}");
    let der = fs::read(sandbox.path("c.der")).unwrap();
    let days = ollama_secure::check::days_left(&der, std::time::SystemTime::now()).expect("notAfter is readable");
    assert!((1..=2).contains(&days), "a 2-day certificate has {days} days left");
}
