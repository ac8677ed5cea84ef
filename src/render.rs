//! Config + credentials → the files to install, from the minijinja templates
//! in `templates/` (compiled into the binary). Pure: no I/O.

use std::path::PathBuf;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};
use serde::Serialize;

use crate::config::{Config, Https, Proxy};
use crate::credentials::Credential;
use crate::error::{Error, Result};
use crate::fields::Host;

/// What a file is for; the plan and `users` find files by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    /// nginx site or Caddy site file.
    Site,
    /// nginx htpasswd.
    Passwords,
    /// Caddy's main Caddyfile (only the `import` line is ours).
    MainConfig,
    /// ollama-secure's record of what it changed.
    State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
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

const NGINX_SITE: &str = include_str!("../templates/nginx-site.conf.j2");
const HTPASSWD: &str = include_str!("../templates/htpasswd.j2");
const CADDY_SITE: &str = include_str!("../templates/caddy-site.caddy.j2");

/// Characters that could end a directive, open a block, start a comment or
/// split a token in nginx or Caddyfile syntax. The validators already keep
/// them out of every value; this refuses to render if one ever slips through.
fn breaks_config_syntax(c: char) -> bool {
    c.is_whitespace() || c.is_control() || ";{}\"'`#\\".contains(c)
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_syntax(SyntaxConfig::builder().keep_trailing_newline(true).build().expect("valid syntax config"));
    env.set_formatter(|out, state, value| {
        // htpasswd is not config syntax: only line structure matters there,
        // and hand-added `{SHA}` hashes legitimately contain braces.
        let breaks = if state.name() == "htpasswd" {
            |c: char| c.is_whitespace() || c.is_control()
        } else {
            breaks_config_syntax
        };
        if let Some(text) = value.as_str()
            && let Some(bad) = text.chars().find(|c| breaks(*c))
        {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("refusing to write {text:?} into a config file: it contains {bad:?}"),
            ));
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.add_template("nginx-site.conf", NGINX_SITE).expect("nginx template parses");
    env.add_template("htpasswd", HTPASSWD).expect("htpasswd template parses");
    env.add_template("caddy-site.caddy", CADDY_SITE).expect("caddy template parses");
    env
}

#[derive(Serialize)]
struct UpstreamContext {
    scheme: &'static str,
    host: String,
    host_port: String,
    url: String,
}

#[derive(Serialize)]
struct UserContext<'a> {
    username: &'a str,
    hash: &'a str,
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

/// certbot's names for the certificate of `domain` under its config dir.
pub fn certificate_paths(config: &Config) -> Option<(PathBuf, PathBuf)> {
    let domain = config.domain.as_ref()?;
    let live = config.paths.letsencrypt.join("live").join(domain.to_string());
    Some((live.join("fullchain.pem"), live.join("privkey.pem")))
}

fn path_text(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

fn https_context(config: &Config, https: &Https) -> HttpsContext {
    let name = config.domain.as_ref().map(Host::url_form).unwrap_or_default();
    let redirect_base =
        if config.port == 443 { format!("https://{name}") } else { format!("https://{name}:{}", config.port) };
    let (certificate, certificate_key) = certificate_paths(config).unwrap_or_default();
    HttpsContext {
        http_port: https.http_port,
        redirect_base,
        webroot: path_text(&config.paths.acme_webroot),
        certificate: path_text(&certificate),
        certificate_key: path_text(&certificate_key),
        acme_directory: https.acme_directory.clone(),
        acme_ca_root: https.acme_ca_root.as_deref().map(path_text),
        email: https.email.clone(),
    }
}

/// nginx `listen` addresses for a port: the one address asked for, or every
/// IPv4 and IPv6 address.
fn nginx_listen(config: &Config, port: u16) -> Vec<String> {
    match config.listen_address {
        Some(addr) => vec![format!("{}:{port}", Host::Ip(addr).url_form())],
        None => vec![port.to_string(), format!("[::]:{port}")],
    }
}

#[derive(Serialize)]
struct Context<'a> {
    version: &'static str,
    upstream: UpstreamContext,
    users: Vec<UserContext<'a>>,
    /// `_` is nginx's conventional "no particular name".
    server_name: String,
    listen: Vec<String>,
    http_listen: Vec<String>,
    bind: Option<String>,
    site_address: String,
    htpasswd: String,
    timeout: u64,
    https: Option<HttpsContext>,
    port: u16,
    /// nginx only: the challenge server alone, before the certificate exists.
    acme_bootstrap: bool,
    auth_cache: String,
    auth_socket: String,
    /// Changes whenever the users file does, so cached logins never outlive
    /// a credential change.
    users_fingerprint: String,
}

fn context(config: &Config, credentials: &[Credential], acme_bootstrap: bool) -> Value {
    let upstream = &config.upstream;
    let site_address = match (&config.domain, &config.https) {
        (Some(domain), Some(_)) => format!("{}:{}", domain.url_form(), config.port),
        (Some(domain), None) => format!("http://{}:{}", domain.url_form(), config.port),
        (None, _) => format!(":{}", config.port),
    };
    Value::from(Serde(Context {
        version: env!("CARGO_PKG_VERSION"),
        upstream: UpstreamContext {
            scheme: upstream.scheme.as_str(),
            host: upstream.host.to_string(),
            host_port: upstream.host_port(),
            url: upstream.url(),
        },
        users: credentials.iter().map(|c| UserContext { username: &c.username, hash: &c.hash }).collect(),
        server_name: config.domain.as_ref().map(Host::url_form).unwrap_or_else(|| "_".to_string()),
        listen: nginx_listen(config, config.port),
        http_listen: config.https.as_ref().map(|h| nginx_listen(config, h.http_port)).unwrap_or_default(),
        bind: config.listen_address.map(|a| a.to_string()),
        site_address,
        htpasswd: path_text(&config.paths.htpasswd),
        timeout: config.timeout_secs,
        https: config.https.as_ref().map(|h| https_context(config, h)),
        port: config.port,
        acme_bootstrap,
        auth_cache: path_text(&config.paths.auth_cache),
        auth_socket: path_text(&config.paths.auth_socket),
        users_fingerprint: users_fingerprint(credentials.iter().map(|c| (c.username.as_str(), c.hash.as_str()))),
    }))
}

/// FNV-1a (64 bit) over `user:hash` lines, as 16 hex digits: not a
/// security measure, only a marker that changes when any user does.
pub fn users_fingerprint<'a>(users: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    fingerprint(users.into_iter().flat_map(|(user, hash)| [user.as_bytes(), b":", hash.as_bytes(), b"\n"]).flatten())
}

/// FNV-1a (64 bit) as 16 hex digits: a marker that changes with the bytes.
pub fn fingerprint<'a>(bytes: impl IntoIterator<Item = &'a u8>) -> String {
    let hash = bytes
        .into_iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3));
    format!("{hash:016x}")
}

/// The nginx site with its users fingerprint replaced, for `users`, which
/// changes the htpasswd without re-rendering the site. `None` if the site
/// has no fingerprint line (not written by this version).
pub fn with_users_fingerprint(site: &str, fingerprint: &str) -> Option<String> {
    const KEY: &str = "proxy_cache_key \"";
    let start = site.find(KEY)? + KEY.len();
    let end = start + site[start..].find(' ')?;
    Some(format!("{}{fingerprint}{}", &site[..start], &site[end..]))
}

fn render_template(env: &Environment, name: &str, ctx: &Value) -> Result<String> {
    env.get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| Error::failed(format!("rendering {name} failed: {e}")))
}

/// The files this config installs, in the order they should be written:
/// passwords before the site that refers to them.
pub fn render(config: &Config, credentials: &[Credential]) -> Result<Vec<RenderedFile>> {
    let env = environment();
    let ctx = context(config, credentials, false);
    let file = |path: &PathBuf, role, secret: bool, content| RenderedFile {
        path: path.clone(),
        role,
        mode: if secret { 0o640 } else { 0o644 },
        group: if secret { config.file_group.clone() } else { "root".to_string() },
        secret,
        content,
    };
    Ok(match config.proxy {
        Proxy::Nginx => vec![
            file(&config.paths.htpasswd, Role::Passwords, true, render_template(&env, "htpasswd", &ctx)?),
            file(&config.paths.nginx_site, Role::Site, false, render_template(&env, "nginx-site.conf", &ctx)?),
        ],
        Proxy::Caddy => {
            vec![file(&config.paths.caddy_site, Role::Site, true, render_template(&env, "caddy-site.caddy", &ctx)?)]
        }
    })
}

/// The nginx site for the first stage of HTTPS: the server that answers
/// ACME challenges (and redirects), without the TLS server that needs the
/// certificate certbot is about to fetch.
pub fn render_nginx_acme_bootstrap(config: &Config) -> Result<RenderedFile> {
    let content = render_template(&environment(), "nginx-site.conf", &context(config, &[], true))?;
    Ok(RenderedFile {
        path: config.paths.nginx_site.clone(),
        role: Role::Site,
        mode: 0o644,
        group: "root".into(),
        secret: false,
        content,
    })
}

/// Replaces the salt+hash part of every bcrypt hash in `text` with a marker,
/// keeping the `$2y$NN$` prefix so the cost stays visible.
pub fn redact_hashes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("$2") {
        let candidate = &rest[start..];
        let is_hash = candidate.len() >= 60 && crate::fields::bcrypt_hash(&candidate[..60]).is_ok();
        if is_hash {
            out.push_str(&rest[..start]);
            out.push_str(&candidate[..7]);
            out.push_str("<redacted>");
            rest = &candidate[60..];
        } else {
            out.push_str(&rest[..start + 2]);
            rest = &candidate[2..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formatter_refuses_config_syntax() {
        let env = environment();
        for bad in ["a;b", "a}", "a b", "a\nb", "a#b", "a\"b"] {
            let result = env.render_str("x {{ v }};", minijinja::context! { v => bad });
            assert!(result.is_err(), "{bad:?} rendered: {result:?}");
        }
        assert_eq!(env.render_str("x {{ v }};", minijinja::context! { v => "$2y$05$abc" }).unwrap(), "x $2y$05$abc;");
    }

    #[test]
    fn redaction_keeps_the_prefix_and_hides_the_rest() {
        let hash = "$2y$12$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";
        let text = format!("alice:{hash}\nbob {hash} x $2 not a hash\n");
        let red = redact_hashes(&text);
        assert_eq!(red, "alice:$2y$12$<redacted>\nbob $2y$12$<redacted> x $2 not a hash\n");
    }
}
