//! The template environment and what every site template is given. Pure:
//! the proxy modules choose their templates and files; this renders them.
//! Templates live in `templates/` and are compiled into the binary.

use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fields::Host;
use crate::setup::Setup;

/// What a file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// The proxy's site file.
    Site,
    /// A file that holds only the users (nginx's htpasswd).
    Users,
    /// The proxy's main configuration (only our lines are ours).
    MainConfig,
    /// ollama-secure's record of what it changed.
    State,
    /// A scheduler's entry that renews a certificate (cron, systemd).
    Renewal,
    /// fail2ban's jail or filter for `ban`.
    Ban,
    /// The drop-in of Ollama's own unit (`harden-ollama`).
    OllamaService,
    /// The proxy's own apt repository: its key and its `deb` line.
    PackageSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedFile {
    pub path: PathBuf,
    pub role: Role,
    pub mode: u32,
    /// Owner is root; the group is the proxy's worker group when the file
    /// holds password hashes (it must read them, nobody else may).
    pub group: String,
    /// Holds password hashes: never world-readable, hashes redacted in plans.
    pub secret: bool,
    pub content: String,
}

impl RenderedFile {
    /// A file of ours: 0640 and the proxy's group when it holds hashes,
    /// 0644 root otherwise.
    pub fn ours(path: &Path, role: Role, setup: &Setup, secret: bool, content: String) -> RenderedFile {
        RenderedFile {
            path: path.to_path_buf(),
            role,
            mode: if secret { 0o640 } else { 0o644 },
            group: if secret { setup.settings.file_group.to_string() } else { "root".to_string() },
            secret,
            content,
        }
    }
}

/// Characters that could end a directive, open a block, start a comment or
/// split a token in nginx or Caddyfile syntax. The validators already keep
/// them out of every value; this refuses to render if one ever slips through.
fn breaks_config_syntax(c: char) -> bool {
    c.is_whitespace() || c.is_control() || ";{}\"'`#\\".contains(c)
}

/// The environment with every template, and a formatter that refuses any
/// value that could break the syntax around it. Lines of the users file
/// are the one exception: they are whole lines, checked when they were
/// read or made (`userfile`), and passed as safe strings.
pub fn environment(templates: &[(&'static str, &'static str)]) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_syntax(SyntaxConfig::builder().keep_trailing_newline(true).build().expect("valid syntax config"));
    env.set_formatter(|out, state, value| {
        if !value.is_safe()
            && let Some(text) = value.as_str()
            && let Some(bad) = text.chars().find(|c| breaks_config_syntax(*c))
        {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("refusing to write {text:?} into a config file: it contains {bad:?}"),
            ));
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.add_filter("regex_escape", regex_escape);
    env.add_filter("origin_pattern", origin_pattern);
    for (name, source) in templates {
        env.add_template(name, source).expect("templates parse");
    }
    env
}

/// A credential's name (`user:NAME`, `key:ID`) as a regex that matches it
/// exactly: `.` and `+`, which usernames may hold, are escaped. Anything
/// outside the validated alphabet is refused, since the backslashes make
/// the result bypass the formatter's check.
fn regex_escape(value: &str) -> Result<Value, minijinja::Error> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._@+:-".contains(c);
    if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("refusing to write {value:?} into a config file: it contains {bad:?}"),
        ));
    }
    let escaped: String = value.chars().flat_map(|c| if ".+".contains(c) { vec!['\\', c] } else { vec![c] }).collect();
    Ok(Value::from_safe_string(escaped))
}

/// An allowed origin as the anchored regex that matches it
/// (`fields::Origin::pattern`). The value is read as an origin again, so
/// nothing but a validated origin's pattern, which holds no character that
/// ends a token in either proxy's syntax, bypasses the formatter's check.
fn origin_pattern(value: &str) -> Result<Value, minijinja::Error> {
    let refused = |why: String| minijinja::Error::new(ErrorKind::InvalidOperation, why);
    let origin = crate::fields::origin(value).map_err(|e| refused(format!("refusing to write an origin: {e}")))?;
    let pattern = origin.pattern();
    if let Some(bad) = pattern.chars().find(|c| c.is_whitespace() || c.is_control() || ";{}\"'`#".contains(*c)) {
        return Err(refused(format!("refusing to write {pattern:?} into a config file: it contains {bad:?}")));
    }
    Ok(Value::from_safe_string(pattern))
}

pub fn render_template(env: &Environment, name: &str, ctx: &Value) -> Result<String> {
    env.get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| Error::failed(format!("rendering {name} failed: {e}")))
}

#[derive(Serialize)]
struct UpstreamContext {
    scheme: &'static str,
    host: String,
    host_port: String,
    url: String,
    /// With several servers: its `weight` and `max_conns`, when given.
    weight: Option<u32>,
    max_conns: Option<u32>,
}

fn upstream_context(upstream: &crate::fields::Upstream, share: crate::setup::Share) -> UpstreamContext {
    UpstreamContext {
        scheme: upstream.scheme.as_str(),
        host: upstream.host.to_string(),
        host_port: upstream.host_port(),
        url: upstream.url(),
        weight: share.weight,
        max_conns: share.max_conns,
    }
}

#[derive(Serialize)]
struct HttpsContext {
    http_port: u16,
    /// Where plain-HTTP requests are sent: `https://name[:port]`.
    redirect_base: String,
    webroot: String,
    certificate: String,
    certificate_key: String,
    acme_directory: Option<String>,
    acme_ca_root: Option<String>,
    email: Option<String>,
}

pub fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// What every site template sees: the site's addresses, upstream, timeout,
/// HTTPS settings and paths. Proxy modules add their own keys.
#[derive(Serialize)]
struct SiteContext {
    version: &'static str,
    upstream: UpstreamContext,
    /// The other Ollama servers when there are several (the first is `upstream`).
    other_upstreams: Vec<UpstreamContext>,
    /// The Host header nginx sends to Ollama.
    upstream_host: String,
    /// Several servers: one credential, one server.
    sticky_credential: bool,
    /// Some server has a `weight` or `max_conns`.
    shares_given: bool,
    /// `_` is nginx's conventional "no particular name".
    server_name: String,
    bind: Option<String>,
    site_address: String,
    timeout: u64,
    https: Option<HttpsContext>,
    port: u16,
    /// Every credential: how the proxies name it, its role, how logs name it.
    credentials: Vec<CredentialContext>,
    access_log: String,
    user_endpoints: &'static [&'static str],
    user_prefixes: &'static [&'static str],
    /// JSON without single quotes or backticks: the templates quote it so.
    needs_admin_body: String,
    allow_from: Vec<String>,
    outsider_body: &'static str,
    /// Canonical origins; the templates match them by `origin_pattern`.
    cors_origins: Vec<String>,
    cors: CorsContext,
}

#[derive(Serialize)]
struct CorsContext {
    allow_methods: &'static str,
    allow_headers: &'static str,
    max_age: u32,
    refused_body: &'static str,
}

pub fn site_context(setup: &Setup) -> Value {
    let site = &setup.settings.site;
    let upstream = &site.upstream;
    let site_address = match (&site.domain, &site.https) {
        (Some(domain), Some(_)) => format!("{}:{}", domain.url_form(), site.port),
        (Some(domain), None) => format!("http://{}:{}", domain.url_form(), site.port),
        (None, _) => format!(":{}", site.port),
    };
    let https = site.https.as_ref().map(|https| {
        let name = site.domain.as_ref().map(Host::url_form).unwrap_or_default();
        let redirect_base =
            if site.port == 443 { format!("https://{name}") } else { format!("https://{name}:{}", site.port) };
        let (certificate, certificate_key) = crate::certbot::live_paths(&setup.settings).unwrap_or_default();
        HttpsContext {
            http_port: https.http_port,
            redirect_base,
            webroot: path_text(&setup.settings.paths.acme_webroot),
            certificate: path_text(&certificate),
            certificate_key: path_text(&certificate_key),
            acme_directory: https.acme_directory.as_ref().map(|d| d.to_string()),
            acme_ca_root: https.acme_ca_root.as_deref().map(path_text),
            email: https.email.as_ref().map(|e| e.to_string()),
        }
    });
    Value::from(Serde(SiteContext {
        version: env!("CARGO_PKG_VERSION"),
        upstream: upstream_context(upstream, site.share(0)),
        other_upstreams: site
            .other_upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| upstream_context(u, site.share(i + 1)))
            .collect(),
        // nginx sets one Host for every server: with several (IP literals,
        // config.rs), `localhost`, which Ollama accepts on a loopback
        // listener and does not check on any other.
        sticky_credential: site.sticky_credential,
        shares_given: !site.shares.is_empty(),
        upstream_host: if site.other_upstreams.is_empty() { upstream.host_port() } else { "localhost".to_string() },
        server_name: site.domain.as_ref().map(Host::url_form).unwrap_or_else(|| "_".to_string()),
        bind: site.listen_address.map(|a| a.to_string()),
        site_address,
        timeout: site.timeout_secs,
        https,
        port: site.port,
        credentials: credentials(setup),
        access_log: path_text(&setup.settings.paths.access_log),
        user_endpoints: crate::access::USER_ENDPOINTS,
        user_prefixes: crate::access::USER_PREFIXES,
        needs_admin_body: needs_admin_body(),
        allow_from: site.allow_from.iter().map(ToString::to_string).collect(),
        outsider_body: OUTSIDER_BODY,
        cors_origins: site.cors_origins.iter().map(ToString::to_string).collect(),
        cors: CorsContext {
            allow_methods: crate::cors::ALLOW_METHODS,
            allow_headers: crate::cors::ALLOW_HEADERS,
            max_age: crate::cors::MAX_AGE_SECS,
            refused_body: crate::cors::REFUSED_BODY,
        },
    }))
}

/// The users file's lines (each with its line ending), as safe strings
/// the formatter passes through.
pub fn user_lines(setup: &Setup) -> Value {
    Value::from(setup.users.lines().into_iter().map(Value::from_safe_string).collect::<Vec<_>>())
}

/// The keys' lines, checked like the users' (`userfile`).
pub fn key_lines(setup: &Setup) -> Value {
    Value::from(setup.keys.lines().into_iter().map(Value::from_safe_string).collect::<Vec<_>>())
}

/// Every credential as the proxies name it after a check (`user:NAME`,
/// `key:ID`), with its role and how the access log names it (`key:NAME`).
fn credentials(setup: &Setup) -> Vec<CredentialContext> {
    let users = setup.users.entries().map(|e| CredentialContext {
        id: format!("user:{}", e.username),
        role: setup.access.role_of_user(&e.username).name(),
        who: format!("user:{}", e.username),
    });
    let keys = setup.access.keys.iter().map(|k| CredentialContext {
        id: format!("key:{}", k.id),
        role: k.role.name(),
        who: format!("key:{}", k.name),
    });
    users.chain(keys).collect()
}

#[derive(Serialize)]
struct CredentialContext {
    id: String,
    role: &'static str,
    who: String,
}

/// The answer to a client outside `allow_from`, in Ollama's error shape;
/// no single quotes or backticks, as the templates quote it.
const OUTSIDER_BODY: &str = r#"{"error":"forbidden: this server does not accept requests from your address"}"#;

/// The words of [`OUTSIDER_BODY`] that `check` recognises.
pub const OUTSIDER_REFUSAL: &str = "does not accept requests from your address";

/// The answer to a `user` credential on an admin endpoint: Ollama's error shape.
fn needs_admin_body() -> String {
    serde_json::json!({ "error": crate::access::NEEDS_ADMIN }).to_string()
}

/// FNV-1a (64 bit) as 16 hex digits: a marker that changes with the bytes,
/// not a security measure.
pub fn fingerprint<'a>(bytes: impl IntoIterator<Item = &'a u8>) -> String {
    let hash = bytes
        .into_iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3));
    format!("{hash:016x}")
}

/// Replaces the salt+hash part of every bcrypt hash in `text` with a marker,
/// keeping the `$2y$NN$` prefix so the cost stays visible. Works on any
/// UTF-8: a candidate is judged only when its 60 bytes are ASCII.
pub fn redact_hashes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Split only where `find` matched ASCII, so always on a character boundary.
    while let Some(start) = rest.find("$2") {
        let (before, candidate) = rest.split_at(start);
        out.push_str(before);
        let hash = candidate.get(..60).filter(|h| crate::fields::bcrypt_hash(h).is_ok());
        match hash.map(|h| h.split_at(7)) {
            Some((prefix, _)) => {
                out.push_str(prefix);
                out.push_str("<redacted>");
                rest = candidate.split_at(60).1;
            }
            None => {
                out.push_str("$2");
                rest = candidate.split_at(2).1;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formatter_refuses_config_syntax_but_passes_checked_lines() {
        let env = environment(&[]);
        for bad in ["a;b", "a}", "a b", "a\nb", "a#b", "a\"b"] {
            let result = env.render_str("x {{ v }};", minijinja::context! { v => bad });
            assert!(result.is_err(), "{bad:?} rendered: {result:?}");
        }
        assert_eq!(env.render_str("x {{ v }};", minijinja::context! { v => "$2y$05$abc" }).unwrap(), "x $2y$05$abc;");
        let line = Value::from_safe_string("\t\talice $2y$05$abc\n".to_string());
        assert_eq!(env.render_str("{{ v }}", minijinja::context! { v => line }).unwrap(), "\t\talice $2y$05$abc\n");
    }

    #[test]
    fn redaction_keeps_the_prefix_and_hides_the_rest() {
        let hash = "$2y$12$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";
        let text = format!("alice:{hash}\nbob {hash} x $2 not a hash\n");
        let red = redact_hashes(&text);
        assert_eq!(red, "alice:$2y$12$<redacted>\nbob $2y$12$<redacted> x $2 not a hash\n");
    }

    #[test]
    fn redaction_survives_any_utf8() {
        for text in ["$2y$1€aaaa", "bob:$2€", &format!("$2{}", "é".repeat(40)), "$2", "€$2y$12$"] {
            assert_eq!(redact_hashes(text), text, "{text:?}");
        }
    }
}
