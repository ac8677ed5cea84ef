//! `connect`: a local loopback port that forwards every request to a
//! protected server with the credentials added, for clients that send none
//! (the `ollama` CLI, editors). What is decided here is pure: which
//! addresses may listen, which URL the server has, how a request's headers
//! become the upstream's and back, and what the start-up check's answer
//! means. `system::forward` moves the bytes.

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Url;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::error::{Error, Result};
use crate::system::{Credentials, HttpReply};

/// `--listen`: loopback only. Any other address would hand these
/// credentials to whoever reaches the port, re-opening the server.
pub fn listen_address(text: &str) -> Result<SocketAddr> {
    let address: SocketAddr = text.parse().map_err(|_| {
        Error::input(format!(
            "--listen {text:?}: give a loopback address and port, e.g. 127.0.0.1:11434 or [::1]:11434"
        ))
    })?;
    if !crate::fields::is_loopback(address.ip()) {
        return Err(Error::input(format!(
            "--listen {text}: not a loopback address. Anyone who reaches it would use the server with these credentials; \
             listen on 127.0.0.1 or ::1 (each user of this machine can reach those too: run connect only where you trust them)"
        )));
    }
    Ok(address)
}

/// `--url`: the server's base, http or https, without credentials, query
/// or fragment. A path is kept as the prefix Ollama's API sits under.
pub fn server_url(text: &str) -> Result<Url> {
    let bad = |why: &str| Error::input(format!("--url {text:?}: {why}"));
    let url = Url::parse(text).map_err(|_| bad("give an http:// or https:// URL, e.g. https://ollama.example.com"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad("give an http:// or https:// URL, e.g. https://ollama.example.com"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials do not go in the URL (ps and shell history show it): use --username with --password-env or --password-file, or --api-key-file",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("give the server's address without ? or #"));
    }
    Ok(url)
}

/// The upstream URL for a local request's path and query: appended to the
/// server URL's own path.
pub fn upstream_url(server: &Url, path_and_query: &str) -> Url {
    let mut text = server.as_str().trim_end_matches('/').to_string();
    if !path_and_query.starts_with('/') {
        text.push('/');
    }
    text.push_str(path_and_query);
    Url::parse(&text).unwrap_or_else(|_| server.clone())
}

/// The `Authorization` header sent upstream, marked sensitive so that no
/// debug output shows it.
pub fn authorization(credentials: &Credentials) -> Result<HeaderValue> {
    let text = match credentials {
        Credentials::Basic(user, password) => {
            format!("Basic {}", STANDARD.encode(format!("{user}:{}", password.expose())))
        }
        Credentials::Bearer(key) | Credentials::ApiKeyHeader(key) => format!("Bearer {}", key.expose()),
    };
    let mut value = HeaderValue::from_str(&text)
        .map_err(|_| Error::input("the credentials hold characters a header cannot carry (a line break?)"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Headers that describe one connection, not the message (RFC 9110 7.6.1),
/// plus the ones the forwarder sets itself.
const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

/// Whether `name` belongs to this hop: the fixed list, and whatever the
/// message's own `Connection` header names.
fn hop_by_hop(name: &HeaderName, headers: &HeaderMap) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
        || headers.get_all(header::CONNECTION).iter().any(|value| {
            value.to_str().is_ok_and(|v| v.split(',').any(|listed| listed.trim().eq_ignore_ascii_case(name.as_str())))
        })
}

/// A local request's headers as they go upstream: this hop's removed, the
/// Host set from the URL, whatever credentials the client sent replaced by
/// ours (a local client's own would be refused, or worse, used).
pub fn request_headers(local: &HeaderMap, authorization: &HeaderValue) -> HeaderMap {
    let ours = [header::HOST, header::AUTHORIZATION, header::PROXY_AUTHORIZATION, HeaderName::from_static("x-api-key")];
    let mut upstream = HeaderMap::with_capacity(local.len() + 1);
    for (name, value) in local {
        if !hop_by_hop(name, local) && !ours.contains(name) {
            upstream.append(name.clone(), value.clone());
        }
    }
    upstream.insert(header::AUTHORIZATION, authorization.clone());
    upstream
}

/// The upstream answer's headers as the local client gets them: this hop's
/// removed (the local connection frames the body itself).
pub fn response_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut local = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        if !hop_by_hop(name, upstream) {
            local.append(name.clone(), value.clone());
        }
    }
    local
}

/// What a local client gets when the server cannot be reached: Ollama's
/// error shape, which its clients print.
pub fn unreachable_body(server: &Url, why: &str) -> String {
    serde_json::json!({ "error": format!("ollama-secure connect: {server} did not answer: {why}") }).to_string()
}

/// The start-up check: `GET /api/version` with the credentials, before
/// anything listens. `Ok(Some(warning))`: forward, but say this.
pub fn startup_verdict(server: &Url, reply: std::result::Result<HttpReply, String>) -> Result<Option<String>> {
    let reply = reply.map_err(|why| Error::failed(format!("cannot reach {server}: {why}")))?;
    let status = reply.status;
    match status {
        200..=299 => Ok(None),
        401 => Err(Error::check_failed(format!(
            "{server} refused these credentials (401): check the user name and password, or the API key (`ollama-secure keys list` on the server)"
        ))),
        403 => Err(Error::check_failed(format!(
            "{server} refused this request (403): this machine's address may not be in the server's allow_from, or it bans it after failed logins"
        ))),
        300..=399 => Err(Error::failed(format!(
            "{server} redirects ({status}) to {}: give that URL",
            reply.header("location").unwrap_or("another address")
        ))),
        404 => Err(Error::failed(format!(
            "{server} has no Ollama API (404 for /api/version): give the server's base URL, without a path Ollama does not serve"
        ))),
        // The proxy let the credentials through; Ollama behind it is down.
        502..=504 => Ok(Some(format!(
            "{server} accepted the credentials, but Ollama behind it did not answer ({status}): requests fail until it runs"
        ))),
        _ => Err(Error::failed(format!("{server} answered /api/version with {status}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn only_loopback_addresses_may_listen() {
        assert_eq!(listen_address("127.0.0.1:11434").unwrap().port(), 11434);
        assert!(listen_address("[::1]:8080").is_ok());
        assert!(listen_address("127.3.4.5:1").is_ok());
        for refused in ["0.0.0.0:11434", "[::]:11434", "192.0.2.1:11434", "10.0.0.1:80"] {
            let error = listen_address(refused).unwrap_err().to_string();
            assert!(error.contains("not a loopback address"), "{refused}: {error}");
        }
        for bad in ["localhost:11434", "127.0.0.1", "11434", "", "127.0.0.1:99999", "ä:1"] {
            assert!(listen_address(bad).unwrap_err().to_string().contains("give a loopback address"), "{bad}");
        }
    }

    #[test]
    fn server_urls_carry_no_credentials() {
        assert_eq!(server_url("https://ollama.example.com").unwrap().as_str(), "https://ollama.example.com/");
        assert!(server_url("http://192.0.2.10:8080/ollama/").is_ok());
        assert!(server_url("https://alice:pw@ollama.example.com").unwrap_err().to_string().contains("credentials"));
        assert!(server_url("https://ollama.example.com/?x=1").is_err());
        for bad in ["ftp://example.com", "ollama.example.com", "", "https://", "unix:/run/x"] {
            assert!(server_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_append_to_the_servers_prefix() {
        let root = server_url("https://o.example.com").unwrap();
        assert_eq!(upstream_url(&root, "/api/tags").as_str(), "https://o.example.com/api/tags");
        let prefixed = server_url("https://o.example.com/ollama/").unwrap();
        assert_eq!(upstream_url(&prefixed, "/api/chat?x=1").as_str(), "https://o.example.com/ollama/api/chat?x=1");
        let no_slash = server_url("http://o.example.com:8080/ollama").unwrap();
        assert_eq!(upstream_url(&no_slash, "/").as_str(), "http://o.example.com:8080/ollama/");
    }

    #[test]
    fn our_credentials_replace_the_clients_and_this_hop_stays_here() {
        let ours = authorization(&Credentials::Bearer(Secret::new("osk_key"))).unwrap();
        assert!(ours.is_sensitive());
        let mut local = HeaderMap::new();
        for (name, value) in [
            ("host", "127.0.0.1:11434"),
            ("authorization", "Basic bWFsbG9yeTp4"),
            ("x-api-key", "osk_other"),
            ("proxy-authorization", "Basic eA=="),
            ("connection", "keep-alive, x-trace"),
            ("x-trace", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("content-type", "application/json"),
            ("content-length", "12"),
            ("user-agent", "ollama/0.17"),
            ("accept-encoding", "gzip"),
        ] {
            local.append(name, HeaderValue::from_static(value));
        }
        let upstream = request_headers(&local, &ours);
        let mut names: Vec<_> = upstream.keys().map(|n| n.as_str()).collect();
        names.sort();
        assert_eq!(names, ["accept-encoding", "authorization", "content-length", "content-type", "user-agent"]);
        assert_eq!(upstream.get_all("authorization").iter().collect::<Vec<_>>(), [&ours]);

        let basic = authorization(&Credentials::Basic("alice".into(), Secret::new("pw"))).unwrap();
        assert_eq!(basic.to_str().unwrap(), "Basic YWxpY2U6cHc=");
        assert!(authorization(&Credentials::Bearer(Secret::new("line\nbreak"))).is_err());
    }

    #[test]
    fn answers_lose_this_hops_headers_only() {
        let mut upstream = HeaderMap::new();
        for (name, value) in [
            ("transfer-encoding", "chunked"),
            ("connection", "close"),
            ("content-type", "application/x-ndjson"),
            ("www-authenticate", "Basic realm=\"x\""),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ] {
            upstream.append(name, HeaderValue::from_static(value));
        }
        let local = response_headers(&upstream);
        assert_eq!(local.len(), 4);
        assert_eq!(local.get_all("set-cookie").iter().count(), 2);
        assert!(local.get("transfer-encoding").is_none() && local.get("connection").is_none());
    }

    fn reply(status: u16) -> std::result::Result<HttpReply, String> {
        Ok(HttpReply {
            status,
            headers: vec![("location".into(), "https://b.example.com/".into())],
            ..HttpReply::default()
        })
    }

    #[test]
    fn the_startup_check_says_what_went_wrong() {
        let server = server_url("https://o.example.com").unwrap();
        assert_eq!(startup_verdict(&server, reply(200)).unwrap(), None);
        let wrong = startup_verdict(&server, reply(401)).unwrap_err();
        assert_eq!(wrong.exit_code(), crate::error::exit::CHECK_FAILED);
        assert!(wrong.to_string().contains("refused these credentials"));
        assert!(startup_verdict(&server, reply(403)).unwrap_err().to_string().contains("allow_from"));
        assert!(startup_verdict(&server, reply(308)).unwrap_err().to_string().contains("https://b.example.com/"));
        assert!(startup_verdict(&server, reply(404)).unwrap_err().to_string().contains("no Ollama API"));
        assert!(startup_verdict(&server, reply(502)).unwrap().unwrap().contains("Ollama behind it"));
        assert!(startup_verdict(&server, reply(500)).is_err());
        let down = startup_verdict(&server, Err("connection refused: nothing listens there".into())).unwrap_err();
        assert_eq!(down.exit_code(), crate::error::exit::FAILED);
        assert!(down.to_string().contains("cannot reach https://o.example.com/: connection refused"));
    }
}
