//! The stand-in must behave like Ollama where the proxies depend on it,
//! otherwise the end-to-end tests prove nothing.

use std::time::Duration;

use crate::support::standin::{GATED_PROMPT, StandIn, TOKENS, VERSION, host_allowed};

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

#[test]
fn host_check_matches_ollama() {
    for ok in [
        "",
        "localhost",
        "127.0.0.1:11434",
        "[::1]:11434",
        "10.1.2.3",
        "192.168.1.5:80",
        "box.local",
        "a.internal:8",
        "x.localhost",
    ] {
        assert!(host_allowed(ok), "{ok:?} should pass");
    }
    for bad in ["ollama.example.com", "ollama.example.com:443", "8.8.8.8", "example.com"] {
        assert!(!host_allowed(bad), "{bad:?} should be refused");
    }
}

#[test]
fn answers_like_ollama() {
    let ollama = StandIn::start();
    let c = client();
    let version: serde_json::Value = c.get(format!("{}/api/version", ollama.url())).send().unwrap().json().unwrap();
    assert_eq!(version["version"], VERSION);
    let tags: serde_json::Value = c.get(format!("{}/api/tags", ollama.url())).send().unwrap().json().unwrap();
    assert_eq!(tags["models"][0]["name"], "tinyllama:latest");

    let public = c.get(format!("{}/api/version", ollama.url())).header("Host", "ollama.example.com").send().unwrap();
    assert_eq!(public.status(), 403);
    assert_eq!(public.text().unwrap(), "", "Ollama's 403 has an empty body");

    let body = vec![b'x'; 3 * 1024 * 1024];
    let wrong =
        c.post(format!("{}/api/blobs/sha256:{}", ollama.url(), "0".repeat(64))).body(body.clone()).send().unwrap();
    assert_eq!(wrong.status(), 400);
    assert!(wrong.text().unwrap().contains("digest mismatch"));
    use sha2::Digest;
    let digest = format!("{:x}", sha2::Sha256::digest(&body));
    let right = c.post(format!("{}/api/blobs/sha256:{digest}", ollama.url())).body(body).send().unwrap();
    assert_eq!(right.status(), 201);
    assert_eq!(ollama.seen().iter().filter(|s| s.body_len == 3 * 1024 * 1024).count(), 2);
}

#[test]
fn streams_ndjson_one_token_per_chunk_and_holds_a_gated_stream() {
    use std::io::Read;
    let ollama = StandIn::start();
    let mut resp = client()
        .post(format!("{}/api/generate", ollama.url()))
        .json(&serde_json::json!({"model": "tinyllama", "prompt": GATED_PROMPT}))
        .send()
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let first = crate::support::read_first_line(&mut resp);
    assert_eq!(first.lines().count(), 1, "the gated stream sent more than the first token: {first}");
    let first: serde_json::Value = serde_json::from_str(first.trim_end()).unwrap();
    assert_eq!(first["response"], TOKENS[0]);
    ollama.release_stream();
    let mut rest = String::new();
    resp.read_to_string(&mut rest).unwrap();
    let lines: Vec<serde_json::Value> = rest.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), TOKENS.len());
    assert_eq!(lines.last().unwrap()["done"], true);
}
