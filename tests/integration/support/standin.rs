//! A stand-in for Ollama, listening on loopback: its read-only endpoints,
//! streamed ndjson generation, blob uploads with digest checking, and the
//! Host-header check Ollama applies when it listens on a loopback address
//! (server/routes.go, allowedHostsMiddleware): 403 with an empty body unless
//! Host is local.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// A release without known critical advisories (`report_version` changes it).
pub const VERSION: &str = "0.17.1";
pub const MODEL: &str = "tinyllama:latest";
/// The tokens a generation streams, one chunk each.
pub const TOKENS: [&str; 5] = ["The", " sky", " is", " blue", "."];
/// A prompt that makes the stand-in send the first token, then wait for
/// `release_stream()` before sending the rest.
pub const GATED_PROMPT: &str = "wait for the test";
/// Time between two streamed tokens.
pub const TOKEN_GAP: Duration = Duration::from_millis(40);

/// What the stand-in saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub host: Option<String>,
    pub authorization: Option<String>,
    pub x_api_key: Option<String>,
    pub origin: Option<String>,
    pub body_len: usize,
    pub status: u16,
}

struct Shared {
    log: Mutex<Vec<Seen>>,
    released: Mutex<bool>,
    release: Condvar,
    shutdown: AtomicBool,
    /// Every connection accepted, to close when the stand-in stops, as a
    /// killed Ollama's are.
    connections: Mutex<Vec<TcpStream>>,
    version: Mutex<String>,
    /// Generations whose client went away before the last token.
    cut_off: std::sync::atomic::AtomicUsize,
    /// Held for each whole generation when the stand-in serves one at a
    /// time, as Ollama does by default (`OLLAMA_NUM_PARALLEL=1`).
    one_at_a_time: Option<Mutex<()>>,
}

pub struct StandIn {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl StandIn {
    /// Listens on 127.0.0.1, on a free port.
    pub fn start() -> StandIn {
        StandIn::start_on("127.0.0.1:0")
    }

    /// A stand-in that generates for one request at a time, the others
    /// waiting, as Ollama with one model and `OLLAMA_NUM_PARALLEL=1`: the
    /// backend-bound workload several servers are for.
    pub fn start_one_at_a_time() -> StandIn {
        StandIn::start_with("127.0.0.1:0", true)
    }

    pub fn start_on(address: &str) -> StandIn {
        StandIn::start_with(address, false)
    }

    fn start_with(address: &str, one_at_a_time: bool) -> StandIn {
        let listener = TcpListener::bind(address).expect("the stand-in binds");
        let addr = listener.local_addr().unwrap();
        // Every address is loopback only where loopback is the one interface
        // (the systemd tier's container).
        let only_loopback_here = || {
            std::fs::read_to_string("/proc/net/dev")
                .is_ok_and(|d| d.lines().skip(2).all(|l| l.split(':').next().is_some_and(|n| n.trim() == "lo")))
        };
        assert!(
            addr.ip().is_loopback() || (addr.ip().is_unspecified() && only_loopback_here()),
            "tests only listen on loopback"
        );
        listener.set_nonblocking(true).unwrap();
        let shared = Arc::new(Shared {
            log: Mutex::new(Vec::new()),
            released: Mutex::new(false),
            release: Condvar::new(),
            shutdown: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
            version: Mutex::new(VERSION.to_string()),
            cut_off: Default::default(),
            one_at_a_time: one_at_a_time.then(|| Mutex::new(())),
        });
        let accept_shared = shared.clone();
        thread::spawn(move || {
            while !accept_shared.shutdown.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Ok(clone) = stream.try_clone() {
                            accept_shared.connections.lock().unwrap().push(clone);
                        }
                        let conn_shared = accept_shared.clone();
                        thread::spawn(move || serve_connection(stream, addr, conn_shared));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        StandIn { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `host:port` as the answers file's `upstream` takes it.
    /// What `/api/version` answers from now on.
    pub fn report_version(&self, version: &str) {
        *self.shared.version.lock().unwrap() = version.to_string();
    }

    pub fn upstream(&self) -> String {
        self.addr.to_string()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.log.lock().unwrap().clone()
    }

    /// How many streamed generations lost their client mid-stream.
    pub fn cut_off(&self) -> usize {
        self.shared.cut_off.load(Ordering::SeqCst)
    }

    /// Gated generations wait again after their first token, until the
    /// next `release_stream`.
    pub fn hold_streams(&self) {
        *self.shared.released.lock().unwrap() = false;
    }

    /// Lets a gated generation send the rest of its tokens.
    pub fn release_stream(&self) {
        *self.shared.released.lock().unwrap() = true;
        self.shared.release.notify_all();
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.release_stream();
        for connection in self.shared.connections.lock().unwrap().drain(..) {
            let _ = connection.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Ollama's allowedHost and allowedHostsMiddleware, for a loopback listener.
pub fn host_allowed(host_header: &str) -> bool {
    let host = match host_header.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host_header,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_lowercase();
    if let Ok(ip) = host.parse::<IpAddr>() {
        let private = match ip {
            IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_unspecified(),
            IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        };
        return private;
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_lowercase();
    host.is_empty()
        || host == "localhost"
        || (!hostname.is_empty() && host == hostname)
        || [".localhost", ".local", ".internal"].iter().any(|tld| host.ends_with(tld))
}

/// Ollama's default origins: localhost, 127.0.0.1 and 0.0.0.0 over http
/// or https with any port, and the app:, file:, tauri: and vscode-webview: schemes.
pub fn origin_allowed(origin: &str) -> bool {
    let local = ["localhost", "127.0.0.1", "0.0.0.0"];
    let web = ["http://", "https://"].iter().any(|scheme| {
        origin.strip_prefix(scheme).is_some_and(|rest| {
            let host = rest
                .split_once(':')
                .map_or(rest, |(host, port)| if port.chars().all(|c| c.is_ascii_digit()) { host } else { "" });
            local.contains(&host)
        })
    });
    web || ["app://", "file://", "tauri://", "vscode-webview://"].iter().any(|scheme| origin.starts_with(scheme))
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) if line.trim().is_empty() => continue,
            Ok(_) => break,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(_) => return None,
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut request = Request { method, path, headers, body: Vec::new() };
    if let Some(len) = request.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).ok()?;
        request.body = body;
    } else if request.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).ok()?;
            let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            request.body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(request)
}

fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n", body.len());
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn chunk(stream: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    stream.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
    stream.write_all(data)?;
    stream.write_all(b"\r\n")?;
    stream.flush()
}

fn stream_generation(stream: &mut TcpStream, request: &Request, shared: &Shared, chat: bool) -> std::io::Result<()> {
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
    let gated = body.get("prompt").and_then(|p| p.as_str()) == Some(GATED_PROMPT)
        || body.pointer("/messages/0/content").and_then(|p| p.as_str()) == Some(GATED_PROMPT);
    let piece = |token: &str, done: bool| {
        let mut v = if chat {
            serde_json::json!({"model": MODEL, "created_at": "2026-11-30T00:00:00Z", "message": {"role": "assistant", "content": token}, "done": done})
        } else {
            serde_json::json!({"model": MODEL, "created_at": "2026-11-30T00:00:00Z", "response": token, "done": done})
        };
        if done {
            v["done_reason"] = "stop".into();
            v["eval_count"] = TOKENS.len().into();
        }
        format!("{v}\n")
    };
    let _turn = shared.one_at_a_time.as_ref().map(|turn| turn.lock().unwrap_or_else(|e| e.into_inner()));
    if body.get("stream") == Some(&serde_json::Value::Bool(false)) {
        let text: String = TOKENS.concat();
        return respond(stream, 200, "application/json; charset=utf-8", piece(&text, true).trim_end().as_bytes());
    }
    // Ollama evaluates the prompt before its first token, and only then
    // sends the headers. Answering in zero time would also hit a race in
    // Debian's Caddy 2.6 (Go's HTTP/1 server closes the request body when the
    // first response bytes are flushed, while the proxy's transport may not
    // yet have read that body's EOF; it then drops the upstream connection
    // and the stream ends after one token). See the README.
    thread::sleep(TOKEN_GAP);
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n")?;
    for (i, token) in TOKENS.iter().enumerate() {
        chunk(stream, piece(token, false).as_bytes())?;
        if i == 0 && gated {
            let mut released = shared.released.lock().unwrap();
            while !*released && !shared.shutdown.load(Ordering::SeqCst) {
                released = shared.release.wait_timeout(released, Duration::from_millis(200)).unwrap().0;
            }
        } else {
            // Paced like a small model on a CPU, so streaming is observable.
            thread::sleep(TOKEN_GAP);
        }
    }
    chunk(stream, piece("", true).as_bytes())?;
    stream.write_all(b"0\r\n\r\n")?;
    stream.flush()
}

/// Ollama's OpenAI-compatible chat: one JSON answer, or server-sent events
/// (one `chat.completion.chunk` per token, then `data: [DONE]`).
fn openai_chat(stream: &mut TcpStream, request: &Request) -> std::io::Result<()> {
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
    let message = |content: &str| serde_json::json!({"role": "assistant", "content": content});
    if body.get("stream") != Some(&serde_json::Value::Bool(true)) {
        let answer = serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_796_000_000, "model": MODEL,
            "choices": [{"index": 0, "message": message(&TOKENS.concat()), "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": TOKENS.len(), "total_tokens": 5 + TOKENS.len()}
        });
        return respond(stream, 200, "application/json", answer.to_string().as_bytes());
    }
    thread::sleep(TOKEN_GAP);
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")?;
    let event = |delta: serde_json::Value, finish: serde_json::Value| {
        let chunk = serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_796_000_000, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
        });
        format!("data: {chunk}\n\n")
    };
    for token in TOKENS {
        chunk(stream, event(message(token), serde_json::Value::Null).as_bytes())?;
        thread::sleep(TOKEN_GAP);
    }
    chunk(stream, event(serde_json::json!({}), "stop".into()).as_bytes())?;
    chunk(stream, b"data: [DONE]\n\n")?;
    stream.write_all(b"0\r\n\r\n")?;
    stream.flush()
}

fn serve_connection(stream: TcpStream, local: SocketAddr, shared: Arc<Shared>) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    // Like Go's net/http (Ollama): small writes go out at once instead of
    // waiting for an ACK (Nagle), which would add ~40 ms to the first token.
    let _ = stream.set_nodelay(true);
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    while !shared.shutdown.load(Ordering::SeqCst) {
        let Some(request) = read_request(&mut reader) else { return };
        // Logged before answering, so a test that has its answer sees the entry.
        let record = |status: u16| {
            shared.log.lock().unwrap().push(Seen {
                method: request.method.clone(),
                path: request.path.clone(),
                host: request.header("host").map(str::to_string),
                authorization: request.header("authorization").map(str::to_string),
                x_api_key: request.header("x-api-key").map(str::to_string),
                origin: request.header("origin").map(str::to_string),
                body_len: request.body.len(),
                status,
            })
        };
        if handle(&mut writer, &request, local, &shared, record).is_err() {
            return;
        }
        if request.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close")) {
            return;
        }
    }
}

fn handle(
    stream: &mut TcpStream,
    request: &Request,
    local: SocketAddr,
    shared: &Shared,
    record: impl Fn(u16),
) -> std::io::Result<()> {
    // Like Ollama: the Host check applies only when listening on loopback.
    if local.ip().is_loopback() && !host_allowed(request.header("host").unwrap_or("")) {
        record(403);
        return respond(stream, 403, "", b"");
    }
    // Like Ollama (its CORS middleware, with no OLLAMA_ORIGINS): an Origin
    // it does not know is a 403 with an empty body.
    if let Some(origin) = request.header("origin")
        && !origin_allowed(origin)
    {
        record(403);
        return respond(stream, 403, "", b"");
    }
    let json = "application/json; charset=utf-8";
    let path = request.path.split('?').next().unwrap_or("");
    let (status, content_type, body): (u16, &str, Vec<u8>) = match (request.method.as_str(), path) {
        ("GET" | "HEAD", "/") => (200, "text/plain; charset=utf-8", b"Ollama is running".to_vec()),
        ("GET", "/api/version") => {
            let version = shared.version.lock().unwrap().clone();
            (200, json, serde_json::json!({ "version": version }).to_string().into_bytes())
        }
        ("GET", "/api/tags") => {
            let body = serde_json::json!({"models": [{
                "name": MODEL, "model": MODEL, "modified_at": "2026-11-01T00:00:00Z", "size": 637700138u64,
                "digest": "2644915ede352ea7bdfaff0bfac0be74c719d5d5202acb63a6fb095b52f394a4",
                "details": {"format": "gguf", "family": "llama", "parameter_size": "1B", "quantization_level": "Q4_0"}
            }]});
            (200, json, body.to_string().into_bytes())
        }
        ("GET", "/api/ps") => (200, json, b"{\"models\":[]}".to_vec()),
        ("GET", "/v1/models") => {
            let body = serde_json::json!({"object": "list", "data": [
                {"id": MODEL, "object": "model", "created": 1_796_000_000, "owned_by": "library"}
            ]});
            (200, json, body.to_string().into_bytes())
        }
        ("POST", "/api/embed") => {
            (200, json, format!("{{\"model\":\"{MODEL}\",\"embeddings\":[[0.1,0.2,0.3]]}}").into_bytes())
        }
        ("POST", "/api/embeddings") => (200, json, b"{\"embedding\":[0.1,0.2,0.3]}".to_vec()),
        ("POST", "/v1/embeddings") => {
            let body = serde_json::json!({"object": "list", "model": MODEL,
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}]});
            (200, json, body.to_string().into_bytes())
        }
        ("POST", "/v1/chat/completions") => {
            record(200);
            return openai_chat(stream, request);
        }
        // Like Ollama: a model it does not have is a 404 before anything streams.
        ("POST", "/api/generate" | "/api/chat") => match unknown_model(&request.body) {
            Some(other) => (404, json, format!("{{\"error\":\"model '{other}' not found\"}}").into_bytes()),
            None => {
                record(200);
                let streamed = stream_generation(stream, request, shared, path == "/api/chat");
                if streamed.is_err() {
                    shared.cut_off.fetch_add(1, Ordering::SeqCst);
                }
                return streamed;
            }
        },
        // Like Ollama: the whole JSON body is read, then the model looked up.
        ("POST", "/api/show") => {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
            match body["model"].as_str() {
                Some(MODEL) => (200, json, b"{\"details\":{\"family\":\"llama\"}}".to_vec()),
                Some(other) => (404, json, format!("{{\"error\":\"model '{other}' not found\"}}").into_bytes()),
                None => (400, json, b"{\"error\":\"model is required\"}".to_vec()),
            }
        }
        // Model management: the stand-in changes nothing, but answers as Ollama
        // does for a model it does not have.
        ("DELETE", "/api/delete") | ("POST", "/api/pull" | "/api/copy" | "/api/create" | "/api/push") => {
            (404, json, b"{\"error\":\"model not found\"}".to_vec())
        }
        ("POST", p) if p.starts_with("/api/blobs/sha256:") => {
            let expected = &p["/api/blobs/".len()..];
            let got = format!("sha256:{:x}", Sha256::digest(&request.body));
            if got == expected {
                (201, "", Vec::new())
            } else {
                (
                    400,
                    json,
                    format!("{{\"error\":\"digest mismatch, expected \\\"{expected}\\\", got \\\"{got}\\\"\"}}")
                        .into_bytes(),
                )
            }
        }
        _ => (404, "text/plain", b"404 page not found".to_vec()),
    };
    record(status);
    respond(stream, status, content_type, &body)
}

/// The model a request body names, when it is not the stand-in's
/// (`tinyllama` means `tinyllama:latest`, as for Ollama).
fn unknown_model(body: &[u8]) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    let model = body["model"].as_str()?;
    (model != MODEL && format!("{model}:latest") != MODEL).then(|| model.to_string())
}
