//! API keys and roles against real nginx and Caddy in front of the stand-in
//! Ollama: keys work as `Authorization: Bearer` and `X-API-Key`, a wrong,
//! revoked or rotated-away key and a password sent as a key get 401, the
//! user role gets 403 on every model-management (and unknown) endpoint and
//! through on every inference endpoint, admin gets through everywhere, and
//! no credential ever reaches Ollama. `keys` add/rotate/revoke/list/new and
//! `users role` take effect at once.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use reqwest::blocking::RequestBuilder;

use crate::support::Tool;
use crate::support::deployment::{ALICE, Deployment};

const BOB: &str = "bob's password is long enough";
/// A key brought in from outside (`key_env`), in the format `keys new` prints.
pub const CI_KEY: &str = "osk_Y2lrZXkwMDAwMDAwOmNpc2VjcmV0Y2lzZWNyZXRjaXNlY3JldGNpc2VjcmV0eHg=";
pub const CREDENTIALS: &str = "  - {username: alice, password_env: ALICE_PASSWORD, role: admin}\n  \
     - {username: bob, password_env: BOB_PASSWORD}\n  - {username: Alice, password_env: ALICE_PASSWORD}\napi_keys:\n  \
     - {name: ci, key_env: CI_KEY}\n  - {name: ops, role: admin, generate: true}\n";

/// Every endpoint the user role reaches, with a request that Ollama answers.
const INFERENCE: &[(&str, &str, &str)] = &[
    ("GET", "/", ""),
    ("GET", "/api/version", ""),
    ("GET", "/api/tags", ""),
    ("GET", "/api/ps", ""),
    ("POST", "/api/show", r#"{"model":"tinyllama:latest"}"#),
    ("POST", "/api/chat", r#"{"model":"tinyllama:latest","messages":[{"role":"user","content":"hi"}],"stream":false}"#),
    ("POST", "/api/generate", r#"{"model":"tinyllama:latest","prompt":"hi","stream":false}"#),
    ("POST", "/api/embed", r#"{"model":"tinyllama:latest","input":"hi"}"#),
    ("POST", "/api/embeddings", r#"{"model":"tinyllama:latest","prompt":"hi"}"#),
    ("GET", "/v1/models", ""),
    ("POST", "/v1/embeddings", r#"{"model":"tinyllama:latest","input":"hi"}"#),
    ("POST", "/v1/chat/completions", r#"{"model":"tinyllama:latest","messages":[{"role":"user","content":"hi"}]}"#),
];

/// Model management, and paths no role list knows (allowlist: admin only).
const MANAGEMENT: &[(&str, &str)] = &[
    ("POST", "/api/pull"),
    ("POST", "/api/push"),
    ("POST", "/api/create"),
    ("POST", "/api/copy"),
    ("DELETE", "/api/delete"),
    ("POST", "/api/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000"),
    ("GET", "/api/not-a-known-endpoint"),
    // Spellings that nginx and Caddy normalize to /api/pull.
    ("POST", "/api//pull"),
    ("POST", "/api/chat/../pull"),
    ("POST", "/api/%70ull"),
];

pub enum Credential<'a> {
    Basic(&'a str, &'a str),
    Bearer(&'a str),
    Header(&'a str),
}

pub fn send(d: &Deployment, method: &str, path: &str, body: &str, credential: &Credential) -> (u16, String) {
    if path.contains("..") || path.contains('%') || path.contains("//") {
        return send_raw(d, method, path, body, credential);
    }
    let request: RequestBuilder = d.client().request(Method::from_bytes(method.as_bytes()).unwrap(), d.url(path));
    let request = match credential {
        Credential::Basic(user, password) => request.basic_auth(user, Some(password)),
        Credential::Bearer(key) => request.bearer_auth(key),
        Credential::Header(key) => request.header("X-API-Key", *key),
    };
    let response = request.body(body.to_string()).send().unwrap();
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

/// The request line exactly as given: HTTP clients would resolve `..` and
/// `//` themselves, which is what a proxy must not rely on.
fn send_raw(d: &Deployment, method: &str, path: &str, body: &str, credential: &Credential) -> (u16, String) {
    use std::io::{Read, Write};
    let auth = match credential {
        Credential::Basic(user, password) => {
            format!("Authorization: Basic {}\r\n", STANDARD.encode(format!("{user}:{password}")))
        }
        Credential::Bearer(key) => format!("Authorization: Bearer {key}\r\n"),
        Credential::Header(key) => format!("X-API-Key: {key}\r\n"),
    };
    let mut stream = std::net::TcpStream::connect((d.address, d.port)).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {}:{}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        d.domain,
        d.port,
        body.len()
    )
    .unwrap();
    // A server that answers without reading the body may reset the
    // connection after its answer: what arrived before counts.
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if !bytes.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }
    let reply = String::from_utf8_lossy(&bytes).into_owned();
    let status = reply.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, mut text) =
        reply.split_once("\r\n\r\n").map(|(h, b)| (h.to_string(), b.to_string())).unwrap_or_default();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        // One chunk is all these short answers are.
        text = text.split("\r\n").nth(1).unwrap_or_default().to_string();
    }
    (status, text)
}

fn status(d: &Deployment, path: &str, credential: &Credential) -> u16 {
    send(d, "GET", path, "", credential).0
}

/// The key printed for `name` ("  NAME (ROLE role): KEY").
pub fn printed_key(stdout: &str, name: &str) -> String {
    let prefix = format!("  {name} (");
    let line = stdout.lines().find(|l| l.starts_with(&prefix) && l.contains("osk_")).unwrap_or_else(|| {
        panic!("no key printed for {name}:\n{stdout}");
    });
    line.rsplit(' ').next().unwrap().to_string()
}

fn keys(d: &Deployment, args: &[&str]) -> Tool {
    d.tool().env("CI_KEY", CI_KEY).env("BOB_PASSWORD", BOB).args(["keys"]).args(args).args(["--answers", &d.answers])
}

pub fn deploy_with_keys(proxy: &'static str) -> (Deployment, String) {
    let d = Deployment::prepare(proxy, CREDENTIALS);
    let ran = d.init().env("BOB_PASSWORD", BOB).env("CI_KEY", CI_KEY).any_stdout().run();
    assert!(ran.stdout.contains("Generated API keys (shown once"), "{}", ran.stdout);
    assert!(!ran.stdout.contains(CI_KEY), "a key the operator gave was printed:\n{}", ran.stdout);
    let ops = printed_key(&ran.stdout, "ops");
    assert_eq!(ran.stdout.matches(&ops).count(), 1, "the generated key is shown exactly once");
    (d, ops)
}

fn keys_and_roles(proxy: &'static str) {
    let (d, ops) = deploy_with_keys(proxy);
    let ci = Credential::Bearer(CI_KEY);

    // Keys as Bearer and as X-API-Key; passwords as Basic.
    assert_eq!(status(&d, "/api/tags", &ci), 200);
    assert_eq!(status(&d, "/api/tags", &Credential::Header(CI_KEY)), 200);
    assert_eq!(status(&d, "/api/tags", &Credential::Bearer(&ops)), 200);
    assert_eq!(status(&d, "/api/tags", &Credential::Basic("bob", BOB)), 200);

    // Refused: a wrong key, a key sent as a password, a password sent as a key.
    let wrong = format!("osk_{}", STANDARD.encode("cikey0000000:notthesecretnotthesecretnotthesecret"));
    assert_eq!(status(&d, "/api/tags", &Credential::Bearer(&wrong)), 401);
    assert_eq!(status(&d, "/api/tags", &Credential::Header(&wrong)), 401);
    let decoded = String::from_utf8(STANDARD.decode(&CI_KEY[4..]).unwrap()).unwrap();
    let (id, secret) = decoded.split_once(':').unwrap();
    assert_eq!(status(&d, "/api/tags", &Credential::Basic(id, secret)), 401);
    let bob_as_key = format!("osk_{}", STANDARD.encode(format!("bob:{BOB}")));
    assert_eq!(status(&d, "/api/tags", &Credential::Bearer(&bob_as_key)), 401);
    assert_eq!(status(&d, "/api/tags", &Credential::Bearer(BOB)), 401);
    assert_eq!(status(&d, "/api/tags", &Credential::Header(BOB)), 401);

    // The user role: every inference endpoint passes, every other one is 403.
    for user in [Credential::Basic("bob", BOB), Credential::Bearer(CI_KEY)] {
        for (method, path, body) in INFERENCE {
            let (got, text) = send(&d, method, path, body, &user);
            assert_eq!(got, 200, "{method} {path} for the user role: {text}");
        }
        for (method, path) in MANAGEMENT {
            let (got, text) = send(&d, method, path, "{}", &user);
            assert_eq!(got, 403, "{method} {path} for the user role: {text}");
            let error: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
            assert!(error["error"].as_str().unwrap().contains("admin role"), "{text}");
        }
    }
    // Admins reach model management (the stand-in answers 404: no such model).
    for admin in [Credential::Basic("alice", ALICE), Credential::Bearer(&ops)] {
        for (method, path) in &MANAGEMENT[..5] {
            let (got, text) = send(&d, method, path, "{}", &admin);
            assert_eq!(got, 404, "{method} {path} for an admin: {text}");
        }
    }
    // `Alice` is not `alice`: nginx compares plain map strings ignoring case.
    assert_eq!(send(&d, "POST", "/api/pull", "{}", &Credential::Basic("Alice", ALICE)).0, 403);
    assert_eq!(send(&d, "GET", "/api/tags", "", &Credential::Basic("Alice", ALICE)).0, 200);
    // The scheme's name is case-insensitive; a key sent as a Basic username is refused.
    let lower = d.client().get(d.url("/api/tags")).header("Authorization", format!("bearer {CI_KEY}")).send().unwrap();
    assert_eq!(lower.status().as_u16(), 200);
    assert_eq!(status(&d, "/api/tags", &Credential::Basic(CI_KEY, "")), 401);
    // Without credentials nothing passes, management or not.
    assert_eq!(send(&d, "POST", "/api/pull", "{}", &Credential::Header("")).0, 401);

    // No password or key ever reached Ollama.
    let seen = d.ollama.seen();
    assert!(seen.iter().any(|s| s.path == "/api/pull"), "no admin request reached Ollama");
    for s in &seen {
        assert!(s.authorization.is_none() && s.x_api_key.is_none(), "credentials reached Ollama: {s:?}");
    }
    // Only admins sent these: a refused request never reached Ollama.
    assert!(!seen.iter().any(|s| s.path.starts_with("/api/blobs") || s.path.contains("not-a-known")), "{seen:?}");

    // usage: who did what, from the access log, which holds no secret.
    let mut logs = String::new();
    for entry in std::fs::read_dir(d.sandbox.path("log")).unwrap() {
        logs.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    assert!(logs.contains("\"credential\":\"key:ci\"") || logs.contains("key:ci user"), "no access log read");
    let key_as_user = STANDARD.encode(format!("{CI_KEY}:"));
    for secret in
        [CI_KEY, &CI_KEY[4..], secret, ops.as_str(), BOB, ALICE, &STANDARD.encode(format!("bob:{BOB}")), &key_as_user]
    {
        assert!(!logs.contains(secret), "a secret is in a log of the sandbox");
    }
    let usage = d.tool().args(["usage", "--json", "--answers", &d.answers]).any_stdout().run().stdout;
    let rows: serde_json::Value = serde_json::from_str(&usage).unwrap();
    let row = |credential: &str, endpoint: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["credential"] == credential && r["endpoint"] == endpoint)
            .unwrap_or_else(|| panic!("no {credential} {endpoint} in {usage}"))
            .clone()
    };
    assert_eq!(row("key:ci", "/api/tags")["role"], "user");
    assert!(row("key:ci", "/api/tags")["status"]["2xx"].as_u64().unwrap() >= 3);
    assert!(row("key:ci", "/api/pull")["status"]["4xx"].as_u64().unwrap() >= 1, "{usage}");
    assert_eq!(row("key:ops", "/api/pull")["role"], "admin");
    assert_eq!(row("user:alice", "/api/pull")["role"], "admin");
    assert_eq!(row("user:bob", "/api/chat")["status"]["2xx"], 1);
    assert!(row("(no valid credentials)", "/api/tags")["status"]["4xx"].as_u64().unwrap() >= 5);
    let text = d.tool().args(["usage", "--answers", &d.answers]).any_stdout().run().stdout;
    assert!(text.starts_with("credential") && text.contains("key:ops"), "{text}");

    // keys: list shows names and roles, never a key.
    let listed = keys(&d, &["list", "--json"]).any_stdout().run().stdout;
    let list: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let names: Vec<(&str, &str)> =
        list.as_array().unwrap().iter().map(|k| (k["name"].as_str().unwrap(), k["role"].as_str().unwrap())).collect();
    assert_eq!(names, [("ci", "user"), ("ops", "admin")]);
    assert!(!listed.contains("osk_") && !listed.contains(secret));

    // add --json prints only the key's JSON on stdout; it works at once.
    let added = keys(&d, &["add", "tmp", "--json"]).any_stdout().any_stderr().run();
    let added: serde_json::Value = serde_json::from_str(added.stdout.trim()).unwrap();
    assert_eq!((added["name"].as_str(), added["role"].as_str()), (Some("tmp"), Some("user")));
    let tmp = added["key"].as_str().unwrap().to_string();
    assert_eq!(status(&d, "/api/tags", &Credential::Bearer(&tmp)), 200);
    // rotate: the old key stops at once (its cached check included), the new one works.
    let rotated = keys(&d, &["rotate", "tmp", "--json"]).any_stdout().any_stderr().run();
    let rotated: serde_json::Value = serde_json::from_str(rotated.stdout.trim()).unwrap();
    let tmp_new = rotated["key"].as_str().unwrap().to_string();
    assert_eq!(status(&d, "/api/tags", &Credential::Bearer(&tmp)), 401);
    assert_eq!(status(&d, "/api/tags", &Credential::Bearer(&tmp_new)), 200);
    // revoke: stops at once; the other keys keep working.
    keys(&d, &["revoke", "ci"]).any_stdout().run();
    assert_eq!(status(&d, "/api/tags", &ci), 401);
    assert_eq!(status(&d, "/api/tags", &Credential::Bearer(&tmp_new)), 200);
    assert_eq!(status(&d, "/api/tags", &Credential::Bearer(&ops)), 200);
    // users role: bob becomes an admin at the reload.
    d.tool().args(["users", "role", "bob", "admin", "--answers", &d.answers]).any_stdout().run();
    assert_eq!(send(&d, "POST", "/api/pull", "{}", &Credential::Basic("bob", BOB)).0, 404);

    // keys new: a valid key, nothing changed.
    let before = d.machine();
    let fresh = Tool::new().args(["keys", "new"]).any_stdout().run().stdout;
    assert!(fresh.starts_with("osk_") && fresh.ends_with('\n') && fresh.lines().count() == 1, "{fresh}");
    let json = Tool::new().args(["keys", "new", "--json"]).any_stdout().run().stdout;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(json["key"].as_str().unwrap().starts_with("osk_"));
    d.assert_as_before(&before);
}

#[test]
fn nginx_keys_and_roles() {
    keys_and_roles("nginx");
}

#[test]
fn caddy_keys_and_roles() {
    keys_and_roles("caddy");
}

/// Running init again with the same answers keeps every key (the generated
/// one included) and changes nothing; a bad key in the answers is refused
/// with its format and changes nothing.
fn init_again(proxy: &'static str) {
    let (d, ops) = deploy_with_keys(proxy);
    let again = d.init().env("BOB_PASSWORD", BOB).env("CI_KEY", CI_KEY).any_stdout().run();
    assert!(again.stdout.contains("Nothing to change"), "{}", again.stdout);
    assert!(!again.stdout.contains("osk_"), "{}", again.stdout);
    assert_eq!(status(&d, "/api/tags", &Credential::Bearer(&ops)), 200);
    let before = d.machine();
    d.init()
        .env("BOB_PASSWORD", BOB)
        .env("CI_KEY", "sk-not-ours")
        .status(2)
        .stderr_has("api_keys[0].key_env: the key is not an ollama-secure API key: a key is `osk_`")
        .any_stdout()
        .run();
    d.assert_as_before(&before);
}

#[test]
fn nginx_init_again_keeps_the_keys() {
    init_again("nginx");
}

#[test]
fn caddy_init_again_keeps_the_keys() {
    init_again("caddy");
}

/// `check --api-key-env` proves a key as a client sees it: 401 for the same
/// key ID with another secret (what a revoked key looks like), 200 with it,
/// and the role: the user role's 403 on model management, admin's pass.
fn check_with_keys(proxy: &'static str) {
    let (d, ops) = deploy_with_keys(proxy);
    let url = d.url("");
    let resolve = format!("{}:{}:127.0.0.1", d.domain, d.port);
    let ollama_port = d.ollama.addr.port().to_string();
    let check = |var: &str| {
        let args = [
            "check",
            "--url",
            &url,
            "--api-key-env",
            var,
            "--resolve",
            &resolve,
            "--ollama-port",
            &ollama_port,
            "--json",
        ];
        let ran = d.tool().env("CI_KEY", CI_KEY).env("OPS_KEY", &ops).args(args).any_stdout().run();
        let report: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
        let get = |name: &str| report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
        assert_eq!(report["passed"], true, "{report}");
        assert_eq!(get("wrong_password")["title"], "with a wrong or revoked key");
        (get("role")["detail"].as_str().unwrap().to_string(), ran.stdout)
    };
    let (user, out) = check("CI_KEY");
    assert!(user.starts_with("403: refused to this credential (user role)"), "{user}");
    assert!(!out.contains(CI_KEY), "the key was printed");
    let (admin, _) = check("OPS_KEY");
    assert!(admin.contains("may manage models (admin role)"), "{admin}");
    // Not a key: refused before any request, with the format.
    d.tool()
        .env("NOT_A_KEY", "sk-123")
        .args(["check", "--url", &url, "--api-key-env", "NOT_A_KEY"])
        .status(2)
        .stderr(
            "error: --api-key-env: the key is not an ollama-secure API key: a key is `osk_` followed by the base64 of \
                 `ID:SECRET`, where ID is 12 lowercase letters or digits and SECRET at least 32 letters or digits; \
                 `ollama-secure keys new` prints one\n",
        )
        .run();
}

#[test]
fn nginx_check_proves_a_key_and_its_role() {
    check_with_keys("nginx");
}

#[test]
fn caddy_check_proves_a_key_and_its_role() {
    check_with_keys("caddy");
}
