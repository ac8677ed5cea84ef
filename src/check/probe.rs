//! The requests `check` makes, as data, and the replies they got: the only
//! part of `check` that touches the network (through `System`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use reqwest::Url;

use crate::access::ApiKey;
use crate::error::{Error, Problem, Result};
use crate::fields;
use crate::secret::Secret;
use crate::system::{Body, Credentials, HttpReply, HttpRequest, Listener, SocketState, System, Trust};

pub struct Options {
    pub url: Url,
    /// A user's password, or an API key.
    pub credentials: Credentials,
    /// Extra roots (PEM) to trust, for private CAs.
    pub cacert_pem: Option<Vec<u8>>,
    pub timeout: Duration,
    /// Run a tiny streamed generation with this model.
    pub model: Option<String>,
    /// Connect these host names to these addresses instead of asking DNS
    /// (like curl's --resolve): checks a server before DNS points to it.
    pub resolve: Vec<(String, IpAddr)>,
    /// Where plain HTTP is served when the URL is https (the redirect check).
    pub http_port: u16,
    /// The port Ollama listens on, when it runs on this machine.
    pub ollama_port: u16,
    /// Size of the large-body check.
    pub body_bytes: usize,
    /// The auth-only server's socket of a setup on this machine, if it has
    /// one: lets a 500 be explained by its cause.
    pub auth_socket: Option<PathBuf>,
    /// The admin API of a Caddy setup on this machine, from its Caddyfile.
    pub caddy_admin: Option<AdminApi>,
    /// The error log of the proxy of a setup on this machine: read when
    /// it answers 500, to show why.
    pub error_log: Option<PathBuf>,
    /// The Ollama servers behind a setup on this machine that balances
    /// over several: each is asked directly.
    pub backends: Vec<Url>,
}

/// Where a Caddy's admin API is, as its Caddyfile says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminApi {
    /// `host:port`: no password there.
    Tcp(String),
    /// On a unix socket, or off.
    Closed,
}

impl Options {
    /// The username of a Basic credential ("" for a key).
    pub fn user_name(&self) -> &str {
        match &self.credentials {
            Credentials::Basic(user, _) => user,
            _ => "",
        }
    }

    pub fn uses_key(&self) -> bool {
        !matches!(self.credentials, Credentials::Basic(..))
    }

    /// The same user with a wrong password, or the same key ID with a wrong
    /// secret: what a revoked key looks like to the proxy.
    pub fn wrong_credentials(&self) -> Credentials {
        match &self.credentials {
            Credentials::Basic(user, _) => Credentials::Basic(user.clone(), Secret::new(WRONG_PASSWORD)),
            Credentials::Bearer(key) | Credentials::ApiKeyHeader(key) => {
                let id = ApiKey::parse(key.expose()).map(|k| k.id.to_string()).unwrap_or_default();
                let wrong = ApiKey {
                    id: crate::fields::Username::parse(&id).unwrap_or_else(|_| WRONG_KEY_ID.clone()),
                    secret: Secret::new(WRONG_KEY_SECRET),
                };
                Credentials::Bearer(wrong.text())
            }
        }
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
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

/// One address per host: it serves every port of that host (HTTPS and the
/// plain-HTTP redirect), which is what a host-to-address mapping means.
pub fn resolve_hosts(overrides: &[(String, SocketAddr)]) -> Result<Vec<(String, IpAddr)>> {
    let mut hosts: Vec<(String, IpAddr)> = Vec::new();
    for (host, addr) in overrides {
        match hosts.iter().find(|(h, _)| h == host) {
            Some((_, ip)) if *ip != addr.ip() => {
                return Err(Error::Input(vec![Problem::new(format!(
                    "--resolve: {host} is given two addresses ({ip} and {}); give one",
                    addr.ip()
                ))]));
            }
            Some(_) => {}
            None => hosts.push((host.clone(), addr.ip())),
        }
    }
    Ok(hosts)
}

/// What came back for each request, and what the machine showed.
pub struct Replies {
    pub no_credentials: std::result::Result<HttpReply, String>,
    pub wrong_password: std::result::Result<HttpReply, String>,
    pub version: std::result::Result<HttpReply, String>,
    pub models: std::result::Result<HttpReply, String>,
    pub large_body: std::result::Result<HttpReply, String>,
    /// A model-management request (deleting a model nobody has).
    pub role: std::result::Result<HttpReply, String>,
    pub streaming: Option<std::result::Result<HttpReply, String>>,
    /// https only: plain HTTP, redirects not followed.
    pub redirect: Option<std::result::Result<HttpReply, String>>,
    pub listeners: Vec<Listener>,
    pub auth_socket: Option<SocketState>,
    /// `GET /config/` at a Caddy admin API on TCP.
    pub caddy_admin: Option<std::result::Result<HttpReply, String>>,
    /// The end of the proxy's error log (`ERROR_LOG_TAIL` bytes), read
    /// when a request got a 500.
    pub error_log: Option<(PathBuf, std::io::Result<Vec<u8>>)>,
    /// Each of `Options::backends`, asked directly.
    pub backends: Vec<BackendReplies>,
    pub now: SystemTime,
}

/// One Ollama server's answers to `/api/version` and `/api/tags`.
#[derive(Debug, Clone)]
pub struct BackendReplies {
    pub url: Url,
    pub version: std::result::Result<HttpReply, String>,
    pub models: std::result::Result<HttpReply, String>,
}

/// How much of the end of an error log is read for its last error.
pub const ERROR_LOG_TAIL: u64 = 64 * 1024;

pub const WRONG_PASSWORD: &str = "ollama-secure: deliberately wrong password";
/// The secret of the deliberately wrong key (letters and digits, as keys have).
const WRONG_KEY_SECRET: &str = "ollamasecuredeliberatelywrongkeysecret0000";
static WRONG_KEY_ID: std::sync::LazyLock<crate::fields::Username> =
    std::sync::LazyLock::new(|| crate::fields::Username::parse("wrongkey0000").expect("a valid ID"));
/// A model no Ollama has: what the large-body check asks about.
/// In place of a reply: the request was not sent, because the first one
/// (without credentials, to the same server) got no answer.
pub const NOT_SENT: &str = "not sent";
pub const LARGE_BODY_MODEL: &str = "ollama-secure-check-nonexistent";

fn request(options: &Options, url: Url) -> HttpRequest {
    HttpRequest {
        timeout: options.timeout,
        resolve: options.resolve.clone(),
        trust: Trust::Verify { extra_roots_pem: options.cacert_pem.clone() },
        ..HttpRequest::get(url)
    }
}

fn endpoint(options: &Options, path: &str) -> Url {
    options.url.join(path).expect("a path joins onto an http(s) URL")
}

/// The plain-HTTP URL of the redirect check.
pub fn redirect_url(options: &Options) -> Url {
    let mut url = options.url.clone();
    let _ = url.set_scheme("http");
    let _ = url.set_port(Some(options.http_port).filter(|p| *p != 80));
    url.join("api/version").expect("joins")
}

fn generation(options: &Options, model: &str) -> HttpRequest {
    let body = serde_json::json!({"model": model, "prompt": "Count from 1 to 5.", "stream": true, "options": {"num_predict": 12}});
    HttpRequest {
        method: crate::system::Method::Post,
        body: Body::Json(body.to_string()),
        stream: true,
        // Real clients (httpx) ask for gzip, and that is when buffering shows.
        accept_gzip: true,
        ..request(options, endpoint(options, "api/generate")).credentials(Some(options.credentials.clone()))
    }
}

/// Makes every request, in the order the report lists them.
/// One Ollama server, asked directly (its address is an IP literal, a
/// Host it accepts), briefly: a server that is down costs little.
fn ask_backend(system: &dyn System, url: &Url) -> BackendReplies {
    let ask = |path: &str| {
        let url = url.join(path).map_err(|e| e.to_string())?;
        system.http(&HttpRequest { timeout: Duration::from_secs(3), follow_redirects: false, ..HttpRequest::get(url) })
    };
    let version = ask("/api/version");
    let models = if version.is_ok() { ask("/api/tags") } else { Err(NOT_SENT.to_string()) };
    BackendReplies { url: url.clone(), version, models }
}

pub fn collect(system: &dyn System, options: &Options) -> Replies {
    let version = endpoint(options, "api/version");
    let with_password = |url: Url| request(options, url).credentials(Some(options.credentials.clone()));
    // A big JSON body at an endpoint every role reaches: Ollama reads it
    // all, then answers 404 for a model it does not have.
    let padding = "x".repeat(options.body_bytes);
    let large = format!("{{\"model\":\"{LARGE_BODY_MODEL}\",\"system\":\"{padding}\"}}");
    let no_credentials = system.http(&request(options, version.clone()));
    // No answer at all (refused, a timeout, TLS, DNS): the same server will
    // not answer the others either, and a hung one would cost each its
    // whole timeout.
    let answered = no_credentials.is_ok();
    let http = |request: &HttpRequest| {
        if answered { system.http(request) } else { Err(NOT_SENT.to_string()) }
    };
    let mut replies = Replies {
        no_credentials,
        wrong_password: http(&request(options, version.clone()).credentials(Some(options.wrong_credentials()))),
        // Harmless whoever may: Ollama deletes nothing it does not have.
        role: http(&HttpRequest {
            method: crate::system::Method::Delete,
            body: Body::Json(format!("{{\"model\":\"{LARGE_BODY_MODEL}\"}}")),
            ..with_password(endpoint(options, "api/delete"))
        }),
        version: http(&with_password(version)),
        models: http(&with_password(endpoint(options, "api/tags"))),
        large_body: http(&HttpRequest {
            method: crate::system::Method::Post,
            body: Body::Json(large),
            ..with_password(endpoint(options, "api/show"))
        }),
        streaming: options.model.as_deref().map(|model| http(&generation(options, model))),
        redirect: options
            .is_https()
            .then(|| system.http(&HttpRequest { follow_redirects: false, ..request(options, redirect_url(options)) })),
        listeners: system.tcp_listeners(),
        auth_socket: options.auth_socket.as_deref().map(|s| system.unix_socket(s)),
        caddy_admin: match &options.caddy_admin {
            Some(AdminApi::Tcp(address)) => {
                Some(Url::parse(&format!("http://{address}/config/")).map_err(|e| e.to_string()).and_then(|url| {
                    system.http(&HttpRequest { timeout: Duration::from_secs(3), ..HttpRequest::get(url) })
                }))
            }
            _ => None,
        },
        error_log: None,
        backends: options.backends.iter().map(|url| ask_backend(system, url)).collect(),
        now: system.now(),
    };
    let server_error = [
        &replies.no_credentials,
        &replies.wrong_password,
        &replies.version,
        &replies.models,
        &replies.large_body,
        &replies.role,
    ]
    .into_iter()
    .chain(replies.streaming.as_ref())
    .any(|reply| matches!(reply, Ok(r) if r.status == 500));
    if server_error && let Some(log) = &options.error_log {
        replies.error_log = Some((log.clone(), system.tail(log, ERROR_LOG_TAIL)));
    }
    replies
}
