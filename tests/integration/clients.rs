//! The client libraries people use, unchanged, against both proxies with an
//! API key of the user role: PyPI `ollama` (configured by OLLAMA_HOST and
//! OLLAMA_API_KEY alone), `openai` (base_url + api_key), `langchain-ollama`
//! (the key in client_kwargs headers) and npm `ollama` (headers). Each lists
//! the models and streams a chat; the ones that can also show that a wrong
//! key gets 401. `.ci/install-clients` installs them under `.clients/`.

use std::path::PathBuf;
use std::process::Command;

use crate::keys_e2e::{CI_KEY, CREDENTIALS};
use crate::support::ROOT;
use crate::support::deployment::Deployment;
use crate::support::standin::{MODEL, TOKENS};

pub fn installed(relative: &str) -> PathBuf {
    let path = PathBuf::from(ROOT).join(".clients").join(relative);
    assert!(path.exists(), "{} is missing: run .ci/install-clients (the README's test set-up)", path.display());
    path
}

/// Runs a client script with the deployment's URL and the key; its JSON.
fn run(program: PathBuf, script: &str, d: &Deployment, env: &[(&str, &str)]) -> serde_json::Value {
    let url = d.url("");
    let out = Command::new(program)
        .arg(format!("{ROOT}/tests/clients/{script}"))
        .arg(MODEL)
        .env("OLLAMA_URL", &url)
        .env("KEY", CI_KEY)
        .env("CLIENTS_NODE", installed("node"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script}: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    // The last line: ollama-js logs a line of its own on a 401.
    let last = stdout.trim().lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{script} printed {stdout}: {e}"))
}

fn every_client_connects(proxy: &'static str) {
    let d = Deployment::prepare_any_host(proxy, CREDENTIALS);
    d.init().env("BOB_PASSWORD", "bob's password is long enough").env("CI_KEY", CI_KEY).any_stdout().run();
    let python = installed("venv/bin/python");
    let url = d.url("");
    let tokens: Vec<&str> = TOKENS.to_vec();
    let whole = TOKENS.concat();

    let got = run(python.clone(), "ollama_python.py", &d, &[("OLLAMA_HOST", &url), ("OLLAMA_API_KEY", CI_KEY)]);
    assert_eq!(got["models"], serde_json::json!([MODEL]), "ollama (Python)");
    assert_eq!(got["tokens"], serde_json::json!(tokens), "ollama (Python) streamed chat");
    assert_eq!(got["wrong_key"], 401, "ollama (Python) with a wrong key");

    let got = run(python.clone(), "openai_python.py", &d, &[]);
    assert_eq!(got["models"], serde_json::json!([MODEL]), "openai");
    assert_eq!(got["whole"], whole.as_str(), "openai chat completion");
    assert_eq!(got["tokens"], serde_json::json!(tokens), "openai streamed chat completion");
    assert_eq!(got["wrong_key"], 401, "openai with a wrong key");

    let got = run(python, "langchain_python.py", &d, &[]);
    assert_eq!(got["models"], serde_json::json!([MODEL]), "langchain-ollama");
    assert_eq!(got["whole"], whole.as_str(), "ChatOllama.invoke");
    assert_eq!(got["tokens"], serde_json::json!(tokens), "ChatOllama.stream");

    let got = run(PathBuf::from("node"), "ollama_js.mjs", &d, &[]);
    assert_eq!(got["models"], serde_json::json!([MODEL]), "ollama-js");
    assert_eq!(got["tokens"], serde_json::json!(tokens), "ollama-js streamed chat");
    assert_eq!(got["wrong_key"], 401, "ollama-js with a wrong key");

    for seen in d.ollama.seen() {
        assert!(seen.authorization.is_none() && seen.x_api_key.is_none(), "a key reached Ollama: {seen:?}");
    }
}

#[test]
fn nginx_every_client_connects() {
    every_client_connects("nginx");
}

#[test]
fn caddy_every_client_connects() {
    every_client_connects("caddy");
}
