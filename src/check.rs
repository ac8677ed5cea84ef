//! Proving that a protected endpoint works, the way a client sees it: each
//! check is a line with pass/fail and its evidence. The requests are the
//! edge (network); the report is pure text (or JSON) built from outcomes.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use reqwest::blocking::{Client, Response};
use reqwest::{StatusCode, Url};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::fields;
use crate::secret::Secret;
use crate::sockets;

/// A request error in words a user understands (no raw error chain).
pub fn describe_request_error(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let all = causes.join(": ").to_lowercase();
    if error.is_timeout() {
        "no answer before the timeout".to_string()
    } else if all.contains("connection refused") {
        "connection refused: nothing listens there".to_string()
    } else if all.contains("dns error") || all.contains("failed to lookup") || all.contains("name or service not known")
    {
        "the host name does not resolve (DNS)".to_string()
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        format!("TLS failed: {}", causes.last().cloned().unwrap_or_default())
    } else if error.is_connect() {
        format!("cannot connect: {}", causes.last().cloned().unwrap_or_default())
    } else {
        causes.last().cloned().unwrap_or_else(|| error.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Stable identifier (JSON, scripts).
    pub name: &'static str,
    pub title: &'static str,
    pub status: Status,
    /// The evidence: status codes, version, counts.
    pub detail: String,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u128>,
}

impl Outcome {
    fn new(name: &'static str, title: &'static str, status: Status, detail: impl Into<String>) -> Outcome {
        Outcome { name, title, status, detail: detail.into(), hint: None, elapsed_ms: None }
    }

    fn hint(mut self, hint: impl Into<String>) -> Outcome {
        self.hint = Some(hint.into());
        self
    }

    fn took(mut self, elapsed: Duration) -> Outcome {
        self.elapsed_ms = Some(elapsed.as_millis());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub url: String,
    pub passed: bool,
    pub checks: Vec<Outcome>,
}

impl Report {
    fn new(url: &str, checks: Vec<Outcome>) -> Report {
        Report { url: url.to_string(), passed: checks.iter().all(|c| c.status != Status::Fail), checks }
    }

    pub fn text(&self) -> String {
        let mut out = format!("Checking {}\n", self.url);
        for check in &self.checks {
            let mark = match check.status {
                Status::Pass => "PASS",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            let time = check.elapsed_ms.map(|ms| format!(" ({ms} ms)")).unwrap_or_default();
            out.push_str(&format!("  {mark}  {}: {}{time}\n", check.title, check.detail));
            if let Some(hint) = &check.hint {
                for line in hint.lines() {
                    out.push_str(&format!("        {line}\n"));
                }
            }
        }
        let failed: Vec<&str> = self.checks.iter().filter(|c| c.status == Status::Fail).map(|c| c.title).collect();
        let passed = self.checks.iter().filter(|c| c.status == Status::Pass).count();
        if failed.is_empty() {
            out.push_str(&format!("All {passed} checks passed.\n"));
        } else {
            out.push_str(&format!(
                "{} of {} checks failed: {}.\n",
                failed.len(),
                failed.len() + passed,
                failed.join(", ")
            ));
        }
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialize")
    }
}

pub struct Options {
    pub url: Url,
    pub username: String,
    pub password: Secret,
    pub cacert: Option<PathBuf>,
    pub timeout: Duration,
    /// Run a tiny streamed generation with this model.
    pub model: Option<String>,
    /// Connect these host names to these addresses instead of asking DNS
    /// (like curl's --resolve): checks a server before DNS points to it.
    pub resolve: Vec<(String, SocketAddr)>,
    /// Where plain HTTP is served when the URL is https (the redirect check).
    pub http_port: u16,
    /// The port Ollama listens on, when it runs on this machine.
    pub ollama_port: u16,
    /// Size of the large-body check.
    pub body_bytes: usize,
    /// The auth-only server's socket of an nginx setup on this machine:
    /// lets a 500 be explained by its cause.
    pub auth_socket: Option<PathBuf>,
}

/// What a 500 from the proxy most likely means, as precisely as this
/// machine lets us say.
fn server_error_hint(options: &Options) -> String {
    match &options.auth_socket {
        Some(socket) if crate::facts::socket_state(socket) != crate::facts::SocketState::Listening => format!(
            "nginx's auth-only server cannot be reached: its socket {} is missing or nothing listens on it, \
             so every login that is not cached fails. Run `ollama-secure init` again with the same answers: \
             it restarts nginx, which creates the socket (a reload does not).",
            socket.display()
        ),
        Some(_) => "The proxy failed internally, although its auth-only server's socket is in place: \
             nginx's error log says why."
            .to_string(),
        None => "The proxy failed internally: its error log says why. With ollama-secure's nginx site, \
             `connect() to unix:... failed` there means the auth-only server's socket is gone; \
             run `ollama-secure check --answers FILE` on the server to find out, or `ollama-secure init` to repair it."
            .to_string(),
    }
}

/// `HOST:PORT:ADDRESS`, as curl's --resolve takes it.
pub fn parse_resolve(text: &str) -> Result<(String, SocketAddr)> {
    let bad =
        || Error::input(format!("--resolve {text:?}: use HOST:PORT:ADDRESS, e.g. ollama.example.com:443:127.0.0.1"));
    let mut parts = text.splitn(3, ':');
    let (host, port, address) =
        (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
    let port: u16 = port.parse().map_err(|_| bad())?;
    let ip: IpAddr = address.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| bad())?;
    fields::host(host).map_err(|_| bad())?;
    Ok((host.to_string(), SocketAddr::new(ip, port)))
}

fn client(options: &Options, follow_redirects: bool) -> Result<Client> {
    let mut builder = Client::builder()
        .timeout(options.timeout)
        .tls_info(true)
        .user_agent(concat!("ollama-secure-check/", env!("CARGO_PKG_VERSION")));
    if !follow_redirects {
        builder = builder.redirect(reqwest::redirect::Policy::none());
    }
    // reqwest keeps one override per host and takes the port from the URL,
    // or from the override when the URL has none: port 0 means "the URL's
    // or the scheme's port", which is what a host-to-address mapping needs.
    let mut seen: Vec<(&str, IpAddr)> = Vec::new();
    for (host, addr) in &options.resolve {
        match seen.iter().find(|(h, _)| h == host) {
            Some((_, ip)) if *ip != addr.ip() => {
                return Err(Error::input(format!(
                    "--resolve: {host} is given two addresses ({ip} and {}); give one",
                    addr.ip()
                )));
            }
            Some(_) => {}
            None => {
                seen.push((host, addr.ip()));
                builder = builder.resolve(host, SocketAddr::new(addr.ip(), 0));
            }
        }
    }
    if let Some(path) = &options.cacert {
        let pem =
            std::fs::read(path).map_err(|e| Error::input(format!("cannot read --cacert {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| Error::input(format!("--cacert {}: not a PEM certificate: {e}", path.display())))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| Error::failed(format!("cannot set up the HTTP client: {e}")))
}

fn endpoint(options: &Options, path: &str) -> Url {
    options.url.join(path).expect("a path joins onto an http(s) URL")
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// Ollama's 403 for a Host it does not accept has an empty body.
fn is_ollama_host_refusal(status: StatusCode, body: &str) -> bool {
    status == StatusCode::FORBIDDEN && body.trim().is_empty()
}

const HOST_FIX: &str = "Ollama refuses a Host that is not local: the proxy forwards the public name.\n\
    Fix: nginx `proxy_set_header Host 127.0.0.1:11434;` (the upstream address), Caddy `header_up Host {upstream_hostport}`.";

fn check_no_credentials(http: &Client, options: &Options) -> Outcome {
    const TITLE: &str = "without credentials";
    let (result, took) = timed(|| http.get(endpoint(options, "api/version")).send());
    let outcome = match result {
        Err(e) => Outcome::new("no_credentials", TITLE, Status::Fail, describe_request_error(&e)),
        Ok(resp) => {
            let status = resp.status();
            let challenge =
                resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let body = resp.text().unwrap_or_default();
            if status == StatusCode::UNAUTHORIZED && challenge.to_ascii_lowercase().starts_with("basic") {
                Outcome::new("no_credentials", TITLE, Status::Pass, format!("401, asks for {challenge}"))
            } else if status == StatusCode::UNAUTHORIZED {
                Outcome::new(
                    "no_credentials",
                    TITLE,
                    Status::Fail,
                    "401 but without a `WWW-Authenticate: Basic` header",
                )
                .hint("Clients will not know to send a password.")
            } else if status.is_success() && body.trim().is_empty() {
                Outcome::new("no_credentials", TITLE, Status::Fail, format!("{status} with an empty body"))
                    .hint("No site answers for this host name (Caddy answers an empty 200 then): check the URL's host and port.")
            } else if status.is_success() {
                Outcome::new("no_credentials", TITLE, Status::Fail, format!("{status}: the server is OPEN TO ANYONE"))
                    .hint("Anyone who can reach this URL can use Ollama. Put the proxy's auth in front of it (ollama-secure init).")
            } else if is_ollama_host_refusal(status, &body) {
                Outcome::new(
                    "no_credentials",
                    TITLE,
                    Status::Fail,
                    "403 from Ollama: the proxy did not ask for a password",
                )
                .hint(format!("The request reached Ollama without authentication.\n{HOST_FIX}"))
            } else if status == StatusCode::INTERNAL_SERVER_ERROR {
                Outcome::new("no_credentials", TITLE, Status::Fail, format!("{status}, expected 401"))
                    .hint(server_error_hint(options))
            } else {
                Outcome::new("no_credentials", TITLE, Status::Fail, format!("{status}, expected 401"))
            }
        }
    };
    outcome.took(took)
}

fn check_wrong_password(http: &Client, options: &Options) -> Outcome {
    const TITLE: &str = "with a wrong password";
    let (result, took) = timed(|| {
        http.get(endpoint(options, "api/version"))
            .basic_auth(&options.username, Some("ollama-secure: deliberately wrong password"))
            .send()
    });
    let outcome = match result {
        Err(e) => Outcome::new("wrong_password", TITLE, Status::Fail, describe_request_error(&e)),
        Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
            Outcome::new("wrong_password", TITLE, Status::Pass, "401")
        }
        Ok(resp) if resp.status().is_success() => Outcome::new(
            "wrong_password",
            TITLE,
            Status::Fail,
            format!("{}: a wrong password is accepted", resp.status()),
        ),
        Ok(resp) if resp.status() == StatusCode::INTERNAL_SERVER_ERROR => {
            Outcome::new("wrong_password", TITLE, Status::Fail, format!("{}, expected 401", resp.status()))
                .hint(server_error_hint(options))
        }
        Ok(resp) => Outcome::new("wrong_password", TITLE, Status::Fail, format!("{}, expected 401", resp.status())),
    };
    outcome.took(took)
}

/// Right credentials: version, models, and (from the same answers) whether
/// Ollama accepted the Host header.
fn check_credentials(http: &Client, options: &Options) -> Vec<Outcome> {
    const VERSION: &str = "with the right password: version";
    const MODELS: &str = "with the right password: models";
    const HOST: &str = "Host header accepted by Ollama";
    let get = |path: &str| {
        timed(|| {
            http.get(endpoint(options, path)).basic_auth(&options.username, Some(options.password.expose())).send()
        })
    };
    let (version, took) = get("api/version");
    let mut host_refused = false;
    let version_outcome = match version {
        Err(e) => Outcome::new("version", VERSION, Status::Fail, describe_request_error(&e)),
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().unwrap_or_default();
            let version = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_string));
            match (status, version) {
                (StatusCode::OK, Some(version)) => {
                    Outcome::new("version", VERSION, Status::Pass, format!("200, Ollama {version}"))
                }
                (StatusCode::OK, None) => {
                    Outcome::new("version", VERSION, Status::Fail, "200, but the answer is not Ollama's /api/version")
                }
                (StatusCode::UNAUTHORIZED, _) => {
                    Outcome::new("version", VERSION, Status::Fail, "401: the password is refused")
                        .hint(format!("Check the username ({}) and password.", options.username))
                }
                (status, _) if is_ollama_host_refusal(status, &body) => {
                    host_refused = true;
                    Outcome::new("version", VERSION, Status::Fail, "403 from Ollama")
                }
                (StatusCode::INTERNAL_SERVER_ERROR, _) => {
                    Outcome::new("version", VERSION, Status::Fail, format!("{status}, expected 200"))
                        .hint(server_error_hint(options))
                }
                (StatusCode::BAD_GATEWAY, _) => {
                    Outcome::new("version", VERSION, Status::Fail, "502: the proxy cannot reach Ollama")
                        .hint("Is Ollama running at the upstream address? (systemctl status ollama)")
                }
                (status, _) => Outcome::new("version", VERSION, Status::Fail, format!("{status}, expected 200")),
            }
        }
    }
    .took(took);

    let (tags, took) = get("api/tags");
    let models_outcome = match tags {
        Err(e) => Outcome::new("models", MODELS, Status::Fail, describe_request_error(&e)),
        Ok(resp) if resp.status() == StatusCode::OK => match resp.json::<serde_json::Value>() {
            Ok(v) => {
                let names: Vec<String> = v["models"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|m| m["name"].as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                let list = if names.is_empty() { String::new() } else { format!(": {}", names.join(", ")) };
                Outcome::new("models", MODELS, Status::Pass, format!("200, {} model(s){list}", names.len()))
            }
            Err(_) => Outcome::new("models", MODELS, Status::Fail, "200, but the answer is not Ollama's model list"),
        },
        Ok(resp) => Outcome::new("models", MODELS, Status::Fail, format!("{}, expected 200", resp.status())),
    }
    .took(took);

    let host_outcome = if host_refused {
        Outcome::new("host_header", HOST, Status::Fail, "Ollama answered 403 with an empty body").hint(HOST_FIX)
    } else if version_outcome.status == Status::Pass {
        Outcome::new("host_header", HOST, Status::Pass, format!("sent Host: {}", options.url.host_str().unwrap_or("")))
    } else {
        Outcome::new("host_header", HOST, Status::Skip, "no authenticated answer to judge by")
    };
    vec![version_outcome, models_outcome, host_outcome]
}

/// A multi-megabyte upload with a deliberately wrong digest: Ollama reads it
/// all and answers 400 "digest mismatch", storing nothing; a proxy limit
/// answers 413 first.
fn check_large_body(http: &Client, options: &Options) -> Outcome {
    const TITLE: &str = "large request body";
    let megabytes = options.body_bytes as f64 / (1024.0 * 1024.0);
    let url = endpoint(options, &format!("api/blobs/sha256:{}", "0".repeat(64)));
    let (result, took) = timed(|| {
        http.post(url)
            .basic_auth(&options.username, Some(options.password.expose()))
            .body(vec![0u8; options.body_bytes])
            .send()
    });
    let outcome = match result {
        Err(e) => Outcome::new("large_body", TITLE, Status::Fail, describe_request_error(&e)),
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().unwrap_or_default();
            if status == StatusCode::BAD_REQUEST && body.contains("digest") {
                Outcome::new(
                    "large_body",
                    TITLE,
                    Status::Pass,
                    format!("{megabytes:.0} MB reached Ollama (its 400 \"digest mismatch\"; nothing stored)"),
                )
            } else if status == StatusCode::PAYLOAD_TOO_LARGE {
                Outcome::new("large_body", TITLE, Status::Fail, format!("413: the proxy refuses a {megabytes:.0} MB body"))
                    .hint("Image chats and `ollama create` need large bodies. nginx: `client_max_body_size 0;` in the Ollama server.")
            } else {
                Outcome::new(
                    "large_body",
                    TITLE,
                    Status::Fail,
                    format!("{status}, expected Ollama's 400 \"digest mismatch\""),
                )
            }
        }
    };
    outcome.took(took)
}

/// Reads a streamed response, noting when each piece arrives.
fn read_stream(mut resp: Response) -> std::io::Result<(Vec<Duration>, String)> {
    let start = Instant::now();
    let mut arrivals = Vec::new();
    let mut text = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = resp.read(&mut buf)?;
        if n == 0 {
            break;
        }
        arrivals.push(start.elapsed());
        text.extend_from_slice(&buf[..n]);
    }
    Ok((arrivals, String::from_utf8_lossy(&text).into_owned()))
}

/// Bursts of arrivals: pieces less than `gap` apart count as one.
fn bursts(arrivals: &[Duration], gap: Duration) -> usize {
    arrivals.windows(2).filter(|w| w[1].saturating_sub(w[0]) > gap).count() + usize::from(!arrivals.is_empty())
}

fn check_streaming(http: &Client, options: &Options, model: &str) -> Outcome {
    const TITLE: &str = "streamed generation";
    let started = Instant::now();
    let result = http
        .post(endpoint(options, "api/generate"))
        .basic_auth(&options.username, Some(options.password.expose()))
        .json(&serde_json::json!({"model": model, "prompt": "Count from 1 to 5.", "stream": true, "options": {"num_predict": 12}}))
        .send();
    let resp = match result {
        Err(e) => return Outcome::new("streaming", TITLE, Status::Fail, describe_request_error(&e)),
        Ok(resp) if resp.status() != StatusCode::OK => {
            let status = resp.status();
            let body = resp.text().unwrap_or_default();
            let hint =
                if body.contains("not found") { format!("Is the model pulled? (ollama pull {model})") } else { body };
            return Outcome::new("streaming", TITLE, Status::Fail, format!("{status}")).hint(hint);
        }
        Ok(resp) => resp,
    };
    let headers_after = started.elapsed();
    let (arrivals, text) = match read_stream(resp) {
        Ok(r) => r,
        Err(e) => return Outcome::new("streaming", TITLE, Status::Fail, format!("the stream broke off: {e}")),
    };
    let chunks = text.lines().filter(|l| !l.trim().is_empty()).count();
    let Some(first) = arrivals.first() else {
        return Outcome::new("streaming", TITLE, Status::Fail, "the response was empty");
    };
    let ttft = headers_after + *first;
    let pieces = bursts(&arrivals, Duration::from_millis(10));
    let detail = format!("first chunk after {} ms, {chunks} chunks in {pieces} burst(s)", ttft.as_millis());
    if chunks >= 3 && pieces == 1 {
        Outcome::new("streaming", TITLE, Status::Fail, format!("{detail}: everything arrived at once"))
            .hint("The proxy holds the stream back. nginx: `proxy_buffering off;` and `gzip off;` in the Ollama location; Caddy: `flush_interval -1`.")
    } else {
        Outcome::new("streaming", TITLE, Status::Pass, detail)
    }
}

/// Is Ollama on this machine listening beyond loopback, where it can be
/// reached without the proxy's password? Reads local sockets only.
pub fn exposure_outcome(listeners: &[sockets::Listener], port: u16) -> Outcome {
    const TITLE: &str = "Ollama reachable only through the proxy";
    let on_port: Vec<&sockets::Listener> = listeners.iter().filter(|l| l.port == port).collect();
    if on_port.is_empty() {
        return Outcome::new(
            "exposure",
            TITLE,
            Status::Skip,
            format!("nothing listens on port {port} on this machine"),
        );
    }
    let exposed: Vec<String> =
        on_port.iter().filter(|l| !fields::is_loopback(l.address)).map(|l| l.address.to_string()).collect();
    if exposed.is_empty() {
        return Outcome::new("exposure", TITLE, Status::Pass, format!("port {port} listens on loopback only"));
    }
    Outcome::new(
        "exposure",
        TITLE,
        Status::Fail,
        format!("port {port} also listens on {}: the password can be bypassed", exposed.join(", ")),
    )
    .hint(format!(
        "Make Ollama listen on loopback only: set OLLAMA_HOST=127.0.0.1:{port}.\n\
             With systemd: `systemctl edit ollama`, add\n  [Service]\n  Environment=\"OLLAMA_HOST=127.0.0.1:{port}\"\n\
             then `systemctl restart ollama`."
    ))
}

/// Days from `now` until the end of a DER certificate's validity.
pub fn days_left(der: &[u8], now: SystemTime) -> Option<i64> {
    let not_after = x509_not_after(der)?;
    let secs = match not_after.duration_since(now) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    Some(secs.div_euclid(86_400))
}

/// One DER element: (tag, content, rest).
fn der(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize), &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// notAfter of an X.509 certificate: Certificate → TBSCertificate →
/// [version] serial signature issuer validity{notBefore notAfter}.
fn x509_not_after(cert: &[u8]) -> Option<SystemTime> {
    let (_, certificate, _) = der(cert)?;
    let (_, tbs, _) = der(certificate)?;
    let mut rest = tbs;
    let (tag, _, after) = der(rest)?;
    if tag == 0xa0 {
        rest = after; // explicit version
    }
    for _ in 0..3 {
        rest = der(rest)?.2; // serial, signature algorithm, issuer
    }
    let (_, validity, _) = der(rest)?;
    let (_, _, after_not_before) = der(validity)?;
    let (tag, time, _) = der(after_not_before)?;
    let text = std::str::from_utf8(time).ok()?;
    let full = match tag {
        0x17 if text.len() == 13 => {
            let year: u32 = text[..2].parse().ok()?;
            format!("{}{}", if year < 50 { "20" } else { "19" }, text)
        }
        0x18 if text.len() == 15 => text.to_string(),
        _ => return None,
    };
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    );
    humantime::parse_rfc3339(&rfc3339).ok()
}

fn check_tls(http: &Client, options: &Options) -> Outcome {
    const TITLE: &str = "TLS certificate";
    let result = http.get(endpoint(options, "api/version")).send();
    match result {
        Err(e) => Outcome::new("tls", TITLE, Status::Fail, describe_request_error(&e)).hint(
            "The certificate must be valid for the host name and signed by a trusted CA (--cacert for a private one).",
        ),
        Ok(resp) => {
            let der =
                resp.extensions().get::<reqwest::tls::TlsInfo>().and_then(|i| i.peer_certificate()).map(<[u8]>::to_vec);
            match der.and_then(|d| days_left(&d, SystemTime::now())) {
                Some(days) if days < 0 => Outcome::new("tls", TITLE, Status::Fail, "expired"),
                Some(days) if days < 14 => {
                    Outcome::new("tls", TITLE, Status::Fail, format!("valid for the name, but expires in {days} days"))
                        .hint("Renewal is not working: look at `certbot renew --dry-run` (nginx) or Caddy's log.")
                }
                Some(days) => Outcome::new(
                    "tls",
                    TITLE,
                    Status::Pass,
                    format!("valid for {}, expires in {days} days", options.url.host_str().unwrap_or("")),
                ),
                None => Outcome::new("tls", TITLE, Status::Pass, "valid for the name (expiry not readable)"),
            }
        }
    }
}

fn check_redirect(options: &Options) -> Outcome {
    const TITLE: &str = "plain HTTP redirects to HTTPS";
    let Ok(http) = client(options, false) else {
        return Outcome::new("redirect", TITLE, Status::Fail, "cannot set up the HTTP client");
    };
    let mut url = options.url.clone();
    let _ = url.set_scheme("http");
    let _ = url.set_port(Some(options.http_port).filter(|p| *p != 80));
    let url = url.join("api/version").expect("joins");
    match http.get(url.clone()).send() {
        Err(e) => Outcome::new("redirect", TITLE, Status::Fail, format!("{url}: {}", describe_request_error(&e))),
        Ok(resp) if resp.status().is_redirection() => {
            let location = resp.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("").to_string();
            if location.starts_with("https://") {
                Outcome::new("redirect", TITLE, Status::Pass, format!("{} to {location}", resp.status().as_u16()))
            } else {
                Outcome::new(
                    "redirect",
                    TITLE,
                    Status::Fail,
                    format!("{} to {location:?}, not https", resp.status().as_u16()),
                )
            }
        }
        Ok(resp) => Outcome::new(
            "redirect",
            TITLE,
            Status::Fail,
            format!("{}: plain HTTP is served, not redirected", resp.status()),
        )
        .hint("Passwords sent over plain HTTP can be read on the way."),
    }
}

/// An answer to a request without credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthenticated {
    pub status: u16,
    /// The `WWW-Authenticate` header, if any.
    pub challenge: Option<String>,
}

impl Unauthenticated {
    /// 401 with a Basic challenge: a protected site.
    pub fn asks_for_basic(&self) -> bool {
        self.status == 401 && self.challenge.as_deref().is_some_and(|c| c.to_ascii_lowercase().starts_with("basic"))
    }
}

/// A client that connects the host of `url` to `connect` (any port), and
/// does not judge TLS trust: for asking this machine's own proxy whether it
/// serves and protects the site, which `check` judges in full.
fn local_client(url: &Url, connect: Option<IpAddr>, timeout: Duration) -> std::result::Result<Client, String> {
    let mut builder = Client::builder().timeout(timeout).danger_accept_invalid_certs(true);
    if let (Some(ip), Some(host)) = (connect, url.host_str()) {
        builder = builder.resolve(host, SocketAddr::new(ip, 0));
    }
    builder.build().map_err(|e| e.to_string())
}

/// What `/api/version` at `url` answers without credentials, connecting the
/// URL's host to `connect`.
pub fn unauthenticated_answer(url: &str, connect: Option<IpAddr>) -> std::result::Result<Unauthenticated, String> {
    let url = Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let client = local_client(&url, connect, Duration::from_secs(10))?;
    let resp = client.get(url.join("api/version").expect("joins")).send().map_err(|e| describe_request_error(&e))?;
    let challenge = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_string);
    Ok(Unauthenticated { status: resp.status().as_u16(), challenge })
}

/// The status `/api/version` answers at `url` for these credentials,
/// connecting the URL's host to `connect`. For `users`: whether a changed
/// password works. TLS trust is not judged here (`check` does that).
pub fn status_for(
    url: &str,
    connect: Option<IpAddr>,
    username: &str,
    password: &Secret,
) -> std::result::Result<u16, String> {
    let url = Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let client = local_client(&url, connect, Duration::from_secs(15))?;
    client
        .get(url.join("api/version").expect("joins"))
        .basic_auth(username, Some(password.expose()))
        .send()
        .map(|r| r.status().as_u16())
        .map_err(|e| describe_request_error(&e))
}

/// Runs every check against `options.url`.
pub fn run(options: &Options) -> Result<Report> {
    let http = client(options, true)?;
    let mut checks = Vec::new();
    let https = options.url.scheme() == "https";
    if https {
        checks.push(check_tls(&http, options));
    }
    checks.push(check_no_credentials(&http, options));
    checks.push(check_wrong_password(&http, options));
    checks.extend(check_credentials(&http, options));
    checks.push(check_large_body(&http, options));
    checks.push(match &options.model {
        Some(model) => check_streaming(&http, options, model),
        None => {
            Outcome::new("streaming", "streamed generation", Status::Skip, "give --model NAME to run a tiny generation")
        }
    });
    checks.push(exposure_outcome(&sockets::listeners(), options.ollama_port));
    if https {
        checks.push(check_redirect(options));
    }
    Ok(Report::new(options.url.as_str(), checks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_is_judged_from_listeners() {
        let l = |a: &str, port| sockets::Listener { address: a.parse().unwrap(), port, inode: 1 };
        assert_eq!(exposure_outcome(&[l("127.0.0.1", 8080)], 11434).status, Status::Skip);
        assert_eq!(exposure_outcome(&[l("127.0.0.1", 11434), l("::1", 11434)], 11434).status, Status::Pass);
        let exposed = exposure_outcome(&[l("127.0.0.1", 11434), l("0.0.0.0", 11434)], 11434);
        assert_eq!(exposed.status, Status::Fail);
        assert!(exposed.hint.unwrap().contains("OLLAMA_HOST=127.0.0.1:11434"));
        assert_eq!(exposure_outcome(&[l("::", 11434)], 11434).status, Status::Fail);
    }

    #[test]
    fn bursts_group_close_arrivals() {
        let ms = Duration::from_millis;
        assert_eq!(bursts(&[], ms(10)), 0);
        assert_eq!(bursts(&[ms(100), ms(101), ms(103)], ms(10)), 1);
        assert_eq!(bursts(&[ms(100), ms(130), ms(160), ms(161)], ms(10)), 3);
    }

    #[test]
    fn resolve_overrides_parse() {
        let (host, addr) = parse_resolve("ollama.example.com:443:127.0.0.1").unwrap();
        assert_eq!((host.as_str(), addr), ("ollama.example.com", "127.0.0.1:443".parse().unwrap()));
        assert_eq!(parse_resolve("a.b:80:[::1]").unwrap().1, "[::1]:80".parse().unwrap());
        for bad in ["a.b:80", "a.b:x:127.0.0.1", "a;b:80:127.0.0.1", "a.b:80:nope"] {
            assert!(parse_resolve(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_report_summarises() {
        let report = Report::new(
            "https://x",
            vec![
                Outcome::new("a", "first", Status::Pass, "ok").took(Duration::from_millis(3)),
                Outcome::new("b", "second", Status::Fail, "bad").hint("do this"),
                Outcome::new("c", "third", Status::Skip, "not here"),
            ],
        );
        assert!(!report.passed);
        assert_eq!(
            report.text(),
            "Checking https://x\n  PASS  first: ok (3 ms)\n  FAIL  second: bad\n        do this\n  skip  third: not here\n1 of 2 checks failed: second.\n"
        );
    }
}
