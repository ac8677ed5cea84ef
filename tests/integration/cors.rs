//! `cors_origins`: browser apps on other origins. The proxy answers a
//! listed origin's preflight itself (204, before authentication) and
//! refuses any other origin's (403); real requests still need credentials,
//! answers to a listed origin carry `Access-Control-Allow-Origin` and
//! `Vary: Origin`, and its `Origin` never reaches Ollama (the stand-in
//! refuses unknown origins as Ollama does). Then a real Chromium, headless,
//! runs a page from a listed and from an unlisted origin against each proxy.

use std::fs;
use std::net::Ipv4Addr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::blocking::{RequestBuilder, Response};

use crate::keys_e2e::CI_KEY;
use crate::support::browser::PageServer;
use crate::support::deployment::{ALICE, DOMAIN, Deployment};
use crate::support::standin::{MODEL, TOKENS};

const CREDENTIALS: &str =
    "  - {username: alice, password_env: ALICE_PASSWORD}\napi_keys:\n  - {name: page, key_env: CI_KEY}\n";
const LISTED: &str = "https://chat.example.com";

fn with_origins(d: &Deployment, origins: &[&str]) {
    d.write_answers(CREDENTIALS);
    let answers = fs::read_to_string(&d.answers).unwrap();
    let list = origins.iter().map(|o| format!("\"{o}\"")).collect::<Vec<_>>().join(", ");
    fs::write(&d.answers, format!("{answers}cors_origins: [{list}]\n")).unwrap();
    d.init().env("CI_KEY", CI_KEY).stdout_has("checks passed").run();
}

fn preflight(d: &Deployment, origin: &str, path: &str) -> Response {
    d.client()
        .request(reqwest::Method::OPTIONS, d.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization,content-type")
        .send()
        .unwrap()
}

fn header<'a>(response: &'a Response, name: &str) -> Vec<&'a str> {
    response.headers().get_all(name).iter().map(|v| v.to_str().unwrap()).collect()
}

fn with_origin(request: RequestBuilder, origin: &str) -> Response {
    request.header("Origin", origin).send().unwrap()
}

fn listed_origins_are_answered_before_authentication(proxy: &'static str) {
    let d = Deployment::prepare(proxy, CREDENTIALS);
    // Without cors_origins a preflight is asked for a password like anything else.
    d.write_answers(CREDENTIALS);
    d.init().env("CI_KEY", CI_KEY).stdout_has("checks passed").run();
    assert_eq!(preflight(&d, LISTED, "/api/chat").status().as_u16(), 401, "{proxy}: before cors_origins");

    with_origins(&d, &[LISTED, "https://*.apps.example.com"]);
    let seen_before = d.ollama.seen().len();

    for origin in [LISTED, "https://a.apps.example.com", "https://b.c.apps.example.com"] {
        let answer = preflight(&d, origin, "/api/chat");
        let what = format!("{proxy}: preflight from {origin}");
        assert_eq!(answer.status().as_u16(), 204, "{what}");
        assert_eq!(header(&answer, "access-control-allow-origin"), [origin], "{what}");
        assert_eq!(header(&answer, "access-control-allow-credentials"), ["true"], "{what}");
        assert_eq!(header(&answer, "access-control-allow-methods"), ["GET, HEAD, POST, DELETE"], "{what}");
        let allowed = header(&answer, "access-control-allow-headers").join(",").to_ascii_lowercase();
        for wanted in ["authorization", "x-api-key", "content-type"] {
            assert!(allowed.split(", ").any(|h| h == wanted), "{what}: {wanted} not allowed: {allowed}");
        }
        assert_eq!(header(&answer, "access-control-max-age"), ["7200"], "{what}");
        assert!(header(&answer, "vary").iter().any(|v| v.contains("Origin")), "{what}");
        assert!(answer.headers().get("www-authenticate").is_none(), "{what}: asked for a password");
    }
    // Other origins, look-alikes among them: refused before any password.
    for origin in [
        "https://evil.example.net",
        "https://apps.example.com",
        "https://chat.example.com.evil.net",
        "http://chat.example.com",
        "https://chat.example.com:8443",
        "null",
    ] {
        let answer = preflight(&d, origin, "/api/tags");
        let what = format!("{proxy}: preflight from {origin}");
        assert_eq!(answer.status().as_u16(), 403, "{what}");
        assert!(answer.headers().get("access-control-allow-origin").is_none(), "{what}");
        assert!(answer.headers().get("www-authenticate").is_none(), "{what}");
        let body: serde_json::Value = answer.json().unwrap();
        assert!(body["error"].as_str().unwrap().contains("see cors_origins"), "{what}: {body}");
    }
    // A preflight never reaches Ollama.
    assert!(d.ollama.seen()[seen_before..].iter().all(|r| r.method != "OPTIONS"), "{proxy}: Ollama saw a preflight");

    // Only a preflight skips authentication: OPTIONS without the request
    // method it announces is an ordinary request.
    let options = d.client().request(reqwest::Method::OPTIONS, d.url("/api/tags")).header("Origin", LISTED);
    assert_eq!(options.send().unwrap().status().as_u16(), 401, "{proxy}: a bare OPTIONS");

    // Real requests need credentials; the 401 is readable by the page.
    let asked = with_origin(d.client().get(d.url("/api/tags")), LISTED);
    assert_eq!(asked.status().as_u16(), 401, "{proxy}");
    assert_eq!(header(&asked, "access-control-allow-origin"), [LISTED], "{proxy}: 401");

    let bearer = format!("Bearer {CI_KEY}");
    for (how, request) in [
        ("Basic", d.client().get(d.url("/api/tags")).basic_auth("alice", Some(ALICE))),
        ("Bearer", d.client().get(d.url("/api/tags")).header("Authorization", &bearer)),
    ] {
        let before = d.ollama.seen().len();
        let answer = with_origin(request, LISTED);
        let what = format!("{proxy}: {how} from {LISTED}");
        assert_eq!(answer.status().as_u16(), 200, "{what}");
        // Exactly one: Ollama adds none of its own, as it never sees the Origin.
        assert_eq!(header(&answer, "access-control-allow-origin"), [LISTED], "{what}");
        assert_eq!(header(&answer, "access-control-allow-credentials"), ["true"], "{what}");
        assert!(header(&answer, "vary").iter().any(|v| v.contains("Origin")), "{what}");
        let seen = d.ollama.seen();
        let reached = seen[before..].iter().find(|r| r.path == "/api/tags").expect("it reached Ollama");
        assert_eq!(reached.origin, None, "{what}: Ollama saw the Origin");
    }

    // An unlisted origin reaches Ollama as it came, which judges it as it
    // always does: its own local defaults pass, others get its 403.
    let before = d.ollama.seen().len();
    let unknown =
        with_origin(d.client().get(d.url("/api/tags")).basic_auth("alice", Some(ALICE)), "https://evil.example.net");
    assert_eq!(unknown.status().as_u16(), 403, "{proxy}: Ollama's own refusal");
    assert!(unknown.headers().get("access-control-allow-origin").is_none(), "{proxy}");
    let local =
        with_origin(d.client().get(d.url("/api/tags")).basic_auth("alice", Some(ALICE)), "http://localhost:3000");
    assert_eq!(local.status().as_u16(), 200, "{proxy}: an origin Ollama allows by default");
    let origins: Vec<_> = d.ollama.seen()[before..].iter().map(|r| r.origin.clone()).collect();
    assert_eq!(
        origins,
        [Some("https://evil.example.net".to_string()), Some("http://localhost:3000".to_string())],
        "{proxy}"
    );
}

#[test]
fn nginx_answers_preflights_of_listed_origins() {
    listed_origins_are_answered_before_authentication("nginx");
}

#[test]
fn caddy_answers_preflights_of_listed_origins() {
    listed_origins_are_answered_before_authentication("caddy");
}

/// The page: lists the models with a password and with a key, then reads
/// a streamed chat with the key chunk by chunk, and reports what it saw.
fn page(api: &str) -> String {
    let basic = STANDARD.encode(format!("alice:{ALICE}"));
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>cors</title><script>
const api = "{api}";
async function attempt(name, run, report) {{
  try {{ report[name] = await run(); }} catch (e) {{ report[name] = {{error: String(e)}}; }}
}}
async function tags(authorization) {{
  const r = await fetch(api + "/api/tags", {{headers: {{Authorization: authorization}}}});
  const body = await r.json();
  return {{status: r.status, models: body.models.map(m => m.name)}};
}}
async function chat() {{
  const r = await fetch(api + "/api/chat", {{
    method: "POST",
    headers: {{Authorization: "Bearer {CI_KEY}", "Content-Type": "application/json"}},
    body: JSON.stringify({{model: "{MODEL}", messages: [{{role: "user", content: "hi"}}]}}),
  }});
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let reads = 0, text = "", rest = "";
  for (;;) {{
    const {{done, value}} = await reader.read();
    if (done) break;
    reads += 1;
    rest += decoder.decode(value, {{stream: true}});
    const lines = rest.split("\n");
    rest = lines.pop();
    for (const line of lines) if (line) text += JSON.parse(line).message.content;
  }}
  return {{status: r.status, reads, text}};
}}
(async () => {{
  const report = {{}};
  await attempt("basic", () => tags("Basic {basic}"), report);
  await attempt("bearer", () => tags("Bearer {CI_KEY}"), report);
  await attempt("chat", chat, report);
  await fetch("/report", {{method: "POST", body: JSON.stringify(report)}});
}})();
</script>"#
    )
}

fn a_browser_page_uses_the_api_only_from_a_listed_origin(proxy: &'static str) {
    let d = Deployment::prepare(proxy, CREDENTIALS);
    let api = format!("http://{DOMAIN}:{}", d.port);
    // By names Ollama does not allow by default (it does 127.0.0.1 and
    // localhost): the listed page works only because its Origin is kept
    // from Ollama.
    let listed = PageServer::start("chat.test", Ipv4Addr::LOCALHOST, page(&api));
    let unlisted = PageServer::start("other.test", Ipv4Addr::new(127, 0, 0, 2), page(&api));
    with_origins(&d, &[&listed.origin()]);
    let resolve = format!("MAP {DOMAIN} 127.0.0.1, {}, {}", listed.resolve_rule(), unlisted.resolve_rule());

    let report = listed.report_from_chromium(&d.sandbox.path("chromium-listed"), &resolve);
    let what = format!("{proxy}: the page from {}: {report}", listed.origin());
    for name in ["basic", "bearer"] {
        assert_eq!(report[name]["status"], 200, "{what}");
        assert_eq!(report[name]["models"], serde_json::json!([MODEL]), "{what}");
    }
    assert_eq!(report["chat"]["status"], 200, "{what}");
    assert_eq!(report["chat"]["text"], TOKENS.concat(), "{what}");
    // Read as it streamed: a read per token or so, not one at the end.
    assert!(report["chat"]["reads"].as_u64().unwrap() >= 3, "{what}");

    let report = unlisted.report_from_chromium(&d.sandbox.path("chromium-unlisted"), &resolve);
    let what = format!("{proxy}: the page from {}: {report}", unlisted.origin());
    for name in ["basic", "bearer", "chat"] {
        // The browser blocks it: fetch() rejects, the page reads nothing.
        let error = report[name]["error"].as_str().unwrap_or_else(|| panic!("{what}: {name} was not blocked"));
        assert!(error.contains("Failed to fetch"), "{what}");
    }
    // Its preflights were refused by the proxy; nothing reached Ollama for the unlisted page.
    assert!(
        d.ollama.seen().iter().all(|r| r.origin.as_deref() != Some(unlisted.origin().as_str())),
        "{proxy}: Ollama saw the unlisted page's request"
    );
}

#[test]
fn nginx_serves_a_browser_page_from_a_listed_origin_only() {
    a_browser_page_uses_the_api_only_from_a_listed_origin("nginx");
}

#[test]
fn caddy_serves_a_browser_page_from_a_listed_origin_only() {
    a_browser_page_uses_the_api_only_from_a_listed_origin("caddy");
}
