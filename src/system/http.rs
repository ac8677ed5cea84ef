//! HTTP as data: a request says everything about how it is sent (trust,
//! where names resolve, timeouts, redirects), and the reply records what
//! came back, with timings, so that what is judged never touches the
//! network. `send` is the one place that talks to reqwest.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::blocking::Client;

use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    /// Ollama's `DELETE /api/delete`: what a role check can send.
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Empty,
    /// A JSON document.
    Json(String),
}

/// Which certificates a request accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The system's roots, plus these PEM certificates (`--cacert`).
    Verify { extra_roots_pem: Option<Vec<u8>> },
    /// Any certificate: for asking this machine's own proxy whether it
    /// serves the site, where `check` judges trust separately.
    AcceptAny,
}

/// How a request proves who sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic(String, Secret),
    /// `Authorization: Bearer KEY`.
    Bearer(Secret),
    /// `X-API-Key: KEY`.
    ApiKeyHeader(Secret),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: Url,
    pub auth: Option<Credentials>,
    pub body: Body,
    /// Ask for gzip, as real clients (httpx) do: buffering shows then.
    pub accept_gzip: bool,
    pub timeout: Duration,
    /// Connect these host names to these addresses (any port), whatever
    /// DNS says, like curl's --resolve.
    pub resolve: Vec<(String, IpAddr)>,
    pub trust: Trust,
    pub follow_redirects: bool,
    /// Record when each piece of the body arrives (streamed generations).
    pub stream: bool,
}

impl HttpRequest {
    pub fn get(url: Url) -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            url,
            auth: None,
            body: Body::Empty,
            accept_gzip: false,
            timeout: Duration::from_secs(30),
            resolve: Vec::new(),
            trust: Trust::Verify { extra_roots_pem: None },
            follow_redirects: true,
            stream: false,
        }
    }

    pub fn post(url: Url, body: Body) -> HttpRequest {
        HttpRequest { method: Method::Post, body, ..HttpRequest::get(url) }
    }

    pub fn basic_auth(mut self, username: &str, password: &Secret) -> HttpRequest {
        self.auth = Some(Credentials::Basic(username.to_string(), password.clone()));
        self
    }

    pub fn bearer(mut self, key: &Secret) -> HttpRequest {
        self.auth = Some(Credentials::Bearer(key.clone()));
        self
    }

    pub fn credentials(mut self, credentials: Option<Credentials>) -> HttpRequest {
        self.auth = credentials;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpReply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy), at most `BODY_LIMIT` bytes of it.
    pub body: String,
    /// From sending until the response headers arrived.
    pub elapsed: Duration,
    /// With `stream`: when each piece of the body arrived, from the headers on.
    pub arrivals: Vec<Duration>,
    /// The body broke off with this error.
    pub body_error: Option<String>,
    /// The server's certificate (DER), for https.
    pub peer_certificate: Option<Vec<u8>>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Bodies are kept up to this size; what follows is read and dropped.
const BODY_LIMIT: usize = 1024 * 1024;

fn client(request: &HttpRequest) -> Result<Client, String> {
    let mut builder = Client::builder()
        .timeout(request.timeout)
        .tls_info(true)
        .user_agent(concat!("ollama-secure-check/", env!("CARGO_PKG_VERSION")));
    if !request.follow_redirects {
        builder = builder.redirect(reqwest::redirect::Policy::none());
    }
    // Port 0: "the URL's port", which is what a host-to-address mapping needs.
    for (host, ip) in &request.resolve {
        builder = builder.resolve(host, SocketAddr::new(*ip, 0));
    }
    match &request.trust {
        Trust::AcceptAny => builder = builder.danger_accept_invalid_certs(true),
        Trust::Verify { extra_roots_pem: Some(pem) } => {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        Trust::Verify { extra_roots_pem: None } => {}
    }
    builder.build().map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

/// Sends the request and reads the reply.
pub(super) fn send(request: &HttpRequest) -> Result<HttpReply, String> {
    let client = client(request)?;
    let mut builder = match request.method {
        Method::Get => client.get(request.url.clone()),
        Method::Post => client.post(request.url.clone()),
        Method::Delete => client.delete(request.url.clone()),
    };
    builder = match &request.auth {
        Some(Credentials::Basic(user, password)) => builder.basic_auth(user, Some(password.expose())),
        Some(Credentials::Bearer(key)) => builder.bearer_auth(key.expose()),
        Some(Credentials::ApiKeyHeader(key)) => builder.header("X-API-Key", key.expose()),
        None => builder,
    };
    if request.accept_gzip {
        builder = builder.header("Accept-Encoding", "gzip");
    }
    builder = match &request.body {
        Body::Empty => builder,
        Body::Json(text) => builder.header("Content-Type", "application/json").body(text.clone()),
    };
    let started = Instant::now();
    let mut response = builder.send().map_err(|e| describe_request_error(&e))?;
    let elapsed = started.elapsed();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let peer_certificate = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec);
    let status = response.status().as_u16();
    let (body, arrivals, body_error) = read_body(&mut response);
    Ok(HttpReply { status, headers, body, elapsed, arrivals, body_error, peer_certificate })
}

/// Reads the body, noting when each piece arrives.
fn read_body(response: &mut reqwest::blocking::Response) -> (String, Vec<Duration>, Option<String>) {
    let start = Instant::now();
    let (mut kept, mut arrivals, mut error) = (Vec::new(), Vec::new(), None);
    let mut buf = [0u8; 16 * 1024];
    loop {
        match response.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                arrivals.push(start.elapsed());
                let room = BODY_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    (String::from_utf8_lossy(&kept).into_owned(), arrivals, error)
}

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
    } else if all.contains("invalidcontenttype") || all.contains("corrupt message") {
        // rustls reading an HTTP answer where a TLS record should be.
        "this port speaks plain HTTP, not HTTPS: use an http:// URL, or the port the proxy serves HTTPS on".to_string()
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        format!("TLS failed: {}", causes.last().cloned().unwrap_or_default())
    } else if error.is_connect() {
        format!("cannot connect: {}", causes.last().cloned().unwrap_or_default())
    } else {
        causes.last().cloned().unwrap_or_else(|| error.to_string())
    }
}
