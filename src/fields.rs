//! Validators for every value that can reach a configuration file.
//!
//! Each one accepts a narrow, documented alphabet instead of trying to escape
//! for two config languages (nginx, Caddyfile): a value that passes here cannot
//! contain `;`, `{`, `}`, quotes, whitespace, `$` or control characters, so it
//! cannot end a directive or open a block. The messages say what is allowed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string that passed its validator: made once, by `parse`, and trusted
/// from then on. Serialized as the plain string; deserializing validates
/// again (the state file is read back).
macro_rules! validated {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<$name, String> {
                $check(value).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                let text = String::deserialize(deserializer)?;
                $name::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

validated!(
    /// A username for htpasswd (`user:hash`) and Caddyfile (`user hash`) lines.
    Username,
    username_text
);
validated!(
    /// A Unix group name (the group the proxy's workers run as).
    GroupName,
    group_name_text
);
validated!(
    /// An email address for the ACME account.
    Email,
    email_text
);
validated!(
    /// An `https://` ACME directory URL.
    AcmeUrl,
    acme_directory_text
);
validated!(
    /// An environment variable name (`password_env`).
    EnvVarName,
    env_var_name_text
);

/// A host name (RFC 1123, lower-cased) or an IP literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    /// The form that goes into URLs and `Host` headers: IPv6 in brackets.
    pub fn url_form(&self) -> String {
        match self {
            Host::Name(name) => name.clone(),
            Host::Ip(IpAddr::V4(ip)) => ip.to_string(),
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        }
    }

    pub fn is_name(&self) -> bool {
        matches!(self, Host::Name(_))
    }
}

impl Serialize for Host {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Host {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Host, D::Error> {
        host(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Names the first character of `value` that is outside `allowed`, in a form
/// that shows invisible characters (`'\n'`, `' '`).
fn first_disallowed(value: &str, allowed: impl Fn(char) -> bool) -> Option<String> {
    value.chars().find(|c| !allowed(*c)).map(|c| match c {
        ' ' => "a space".to_string(),
        '\t' => "a tab".to_string(),
        '\n' | '\r' => "a line break".to_string(),
        c if c.is_control() => format!("the control character {:?}", c),
        c => format!("'{c}'"),
    })
}

/// An IP literal, with or without brackets for IPv6.
fn ip_literal(value: &str) -> Option<IpAddr> {
    let inner = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(value);
    inner.parse().ok()
}

// What a field takes, in words: in the errors below, and in the schema's
// messages (`schema.rs`), which editors show.
pub const HOST_FORM: &str = "a host name such as ollama.example.com (letters, digits, '-' and '.') or an IP address";
pub const ORIGIN_FORM: &str = "SCHEME://HOST[:PORT] as browsers send it, e.g. https://chat.example.com, https://*.example.com or chrome-extension://<its ID>";
pub const NETWORK_FORM: &str = "an address or a network, e.g. 192.0.2.10, 192.0.2.0/24, 2001:db8::/48";
pub const UPSTREAM_FORMS: &str = "host:port, http://host:port or https://host:port, e.g. 127.0.0.1:11434";
pub const USERNAME_ALPHABET: &str = "letters, digits, '.', '_', '-', '@' and '+'";
pub const BCRYPT_FORM: &str = "a bcrypt hash such as $2y$12$ followed by 53 characters of [./A-Za-z0-9]";
pub const EMAIL_FORM: &str = "an address such as ops@example.com";
pub const PATH_ALPHABET: &str = "letters, digits, '/', '.', '_', '-' and '+'";
pub const ENV_VAR_ALPHABET: &str = "letters, digits and '_', not starting with a digit";
pub const GROUP_ALPHABET: &str = "letters, digits, '_' and '-', at most 32 characters";
pub const ACME_FORM: &str = "an https:// URL such as https://acme-staging-v02.api.letsencrypt.org/directory";

/// A DNS host name as RFC 1123 defines it, or an IP literal.
pub fn host(value: &str) -> Result<Host, String> {
    let example = format!("use {HOST_FORM}");
    if value.is_empty() {
        return Err(format!("must not be empty; {example}"));
    }
    if let Some(ip) = ip_literal(value) {
        return Ok(Host::Ip(ip));
    }
    // A URL pasted where a name belongs: say which name.
    if let Some(rest) = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://")) {
        let name = rest.split(['/', ':']).next().unwrap_or_default();
        if host(name).is_ok() {
            return Err(format!("{value:?} is a URL: give the host name alone, {name:?}"));
        }
    }
    if let Some(bad) = first_disallowed(value, |c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return Err(format!("{value:?} is not a valid host name: {bad} is not allowed; {example}"));
    }
    if value.len() > 253 {
        return Err(format!("is {} characters long; a host name has at most 253", value.len()));
    }
    for label in value.split('.') {
        if label.is_empty() {
            return Err(format!(
                "{value:?} has an empty label (two dots in a row, or a dot at the start or end); {example}"
            ));
        }
        if label.len() > 63 {
            return Err(format!("{value:?}: the label {label:?} is longer than 63 characters"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "{value:?}: the label {label:?} starts or ends with '-', which host names do not allow"
            ));
        }
    }
    if value.split('.').next_back().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return Err(format!("{value:?} looks like an IP address but is not a valid one"));
    }
    Ok(Host::Name(value.to_ascii_lowercase()))
}

pub fn port(value: i64) -> Result<u16, String> {
    match u16::try_from(value) {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("{value} is not a TCP port: use a number from 1 to 65535")),
    }
}

/// A network of client addresses (`allow_from`): an address, or an address
/// and a prefix length, with no bits set past the prefix (a typo there
/// would otherwise let in a network nobody meant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` is in this network (an IPv4 network holds no IPv6
    /// address and the other way round: that is how the proxies match).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.address.is_ipv4() && masked(ip, self.prefix) == self.address
    }
}

/// `ip` with every bit past the first `prefix` cleared.
fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl From<Network> for String {
    fn from(network: Network) -> String {
        network.to_string()
    }
}

impl TryFrom<String> for Network {
    type Error = String;
    fn try_from(value: String) -> Result<Network, String> {
        network(&value)
    }
}

pub fn network(value: &str) -> Result<Network, String> {
    let example = format!("use {NETWORK_FORM}");
    let (address, prefix) = match value.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (value, None),
    };
    let Some(ip) = ip_literal(address) else {
        return Err(format!("{value:?} is not an IP address or network; {example}"));
    };
    if let IpAddr::V6(v6) = ip
        && v6.to_ipv4_mapped().is_some()
    {
        return Err(format!(
            "{value:?} is an IPv4-mapped IPv6 address, which no client arrives as: write the IPv4 address or network"
        ));
    }
    let width: u8 = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => width,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= width && !p.starts_with('+') && !p.is_empty() => n,
            _ => return Err(format!("{value:?}: the prefix length must be a number from 0 to {width}; {example}")),
        },
    };
    let network = Network { address: ip, prefix };
    let masked = masked(ip, prefix);
    if masked != ip {
        return Err(format!("{value:?} has bits set past its /{prefix}: did you mean {masked}/{prefix}?"));
    }
    Ok(network)
}

/// A browser origin that may call the API from its pages (`cors_origins`):
/// `SCHEME://HOST[:PORT]` as browsers send it in `Origin` (lowercase, no
/// default port, no path), or `SCHEME://*.NAME` for every subdomain of a
/// name. Kept as that text; [`Origin::pattern`] is how the proxies match it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Origin(String);

impl Origin {
    /// An anchored regular expression, in the syntax nginx (PCRE) and Caddy
    /// (RE2) share, that matches exactly the `Origin` values this allows.
    /// Only `.`, `+`, `[` and `]` of the validated alphabet mean something
    /// in a regex; a wildcard is one label or more.
    pub fn pattern(&self) -> String {
        let (scheme, rest) = self.0.split_once("://").unwrap_or_default();
        let escape = |text: &str| -> String {
            text.chars().flat_map(|c| if ".+[]".contains(c) { vec!['\\', c] } else { vec![c] }).collect()
        };
        match rest.strip_prefix("*.") {
            Some(name) => format!("^{}://[a-z0-9-]+(\\.[a-z0-9-]+)*\\.{}$", escape(scheme), escape(name)),
            None => format!("^{}://{}$", escape(scheme), escape(rest)),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Origin> for String {
    fn from(origin: Origin) -> String {
        origin.0
    }
}

impl TryFrom<String> for Origin {
    type Error = String;
    fn try_from(value: String) -> Result<Origin, String> {
        origin(&value)
    }
}

pub fn origin(value: &str) -> Result<Origin, String> {
    let example = format!("use {ORIGIN_FORM}");
    if value == "*" || value == "null" {
        return Err(format!(
            "{value:?} cannot be allowed: {} the credentials a browser keeps for this site; list each origin",
            if value == "*" {
                "it would give every web page"
            } else {
                "sandboxed frames and local files all send it, which would give them"
            }
        ));
    }
    if let Some(bad) = first_disallowed(value, |c| c.is_ascii_graphic()) {
        return Err(format!(
            "{value:?} is not an origin: {bad} is not allowed (a name in another script goes in its xn-- form, as browsers send it); {example}"
        ));
    }
    if value.len() > 300 {
        return Err(format!("is {} characters long; an origin here has at most 300", value.len()));
    }
    let lower = value.to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return Err(format!("{value:?} is not an origin; {example}"));
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_lowercase())
        && scheme.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c));
    if !scheme_ok {
        return Err(format!("{value:?}: {scheme:?} is not a URL scheme; {example}"));
    }
    if scheme == "file" {
        return Err(format!("{value:?}: pages opened from files send `Origin: null`, which cannot be allowed by name"));
    }
    let authority = match rest.find(['/', '?', '#']) {
        Some(end) => {
            let authority = rest.get(..end).unwrap_or_default();
            return Err(format!(
                "{value:?}: an origin has no path, query or fragment; did you mean {scheme}://{authority}?"
            ));
        }
        None => rest,
    };
    if authority.contains('@') {
        return Err(format!("{value:?}: an origin has no user name or password; {example}"));
    }
    let web = scheme == "http" || scheme == "https";
    // The port, if any: after the last ':' outside an IPv6 literal's brackets.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') && (!host.contains('[') || host.ends_with(']')) => (host, Some(port)),
        _ => (authority, None),
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Some(n),
            _ => return Err(format!("{value:?}: {p:?} is not a port (a number from 1 to 65535); {example}")),
        },
    };
    // Browsers leave the scheme's own port out of `Origin`.
    let default_port = match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let port = port.filter(|p| Some(*p) != default_port);
    if host == "*" {
        return Err(format!(
            "{value:?} would give every {scheme}:// page the credentials a browser keeps for this site; list each \
             origin, or one name's subdomains as in https://*.example.com"
        ));
    }
    let host = if let Some(name) = host.strip_prefix("*.") {
        if !web {
            return Err(format!(
                "{value:?}: a wildcard would let in every {scheme}:// origin under it; list each one (an extension by its ID)"
            ));
        }
        match self::host(name) {
            Ok(Host::Name(n)) if n.contains('.') => format!("*.{n}"),
            Ok(_) => {
                return Err(format!(
                    "{value:?}: a wildcard needs a name of two labels or more after it, as in https://*.example.com"
                ));
            }
            Err(e) => return Err(format!("{value:?}: after \"*.\": {e}")),
        }
    } else if host.contains('*') {
        return Err(format!(
            "{value:?}: a wildcard may only be the first label of a web origin's host, as in https://*.example.com"
        ));
    } else if web {
        match self::host(host) {
            Ok(h) => h.url_form(),
            Err(e) => return Err(format!("{value:?}: {e}")),
        }
    } else {
        // An extension's or app's origin: its ID, or a name.
        let id_ok = !host.is_empty()
            && host.len() <= 253
            && host.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !id_ok {
            return Err(format!("{value:?}: {host:?} is not an extension's ID or a host name; {example}"));
        }
        host.to_string()
    };
    Ok(Origin(match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }))
}

/// An address to listen on: an IP literal only (names would make nginx resolve
/// at start-up and could bind somewhere unexpected).
pub fn listen_address(value: &str) -> Result<IpAddr, String> {
    ip_literal(value).ok_or_else(|| {
        format!("{value:?} is not an IP address: use e.g. 127.0.0.1, 192.0.2.10 or ::1 (omit the key to listen on all addresses)")
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Where Ollama listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub scheme: Scheme,
    pub host: Host,
    pub port: u16,
    /// Set when the answers said `localhost`, which we replace by 127.0.0.1.
    pub rewrote_localhost: bool,
}

impl Upstream {
    /// `host:port`, the value of the Host header Ollama will accept (it checks
    /// the host part) and the address proxies connect to.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host.url_form(), self.port)
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme.as_str(), self.host_port())
    }
}

impl Serialize for Upstream {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.url())
    }
}

impl<'de> Deserialize<'de> for Upstream {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Upstream, D::Error> {
        upstream(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// `host:port`, `http://host:port` or `https://host:port` (trailing `/` allowed).
/// `localhost` becomes 127.0.0.1: proxies may resolve it to ::1 first, where
/// Ollama does not listen by default.
pub fn upstream(value: &str) -> Result<Upstream, String> {
    let forms = format!("use {UPSTREAM_FORMS}");
    let (scheme, rest) = if let Some(rest) = value.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = value.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if value.starts_with("unix:") {
        return Err(format!("{value:?}: a unix socket is not supported; Ollama listens on TCP (OLLAMA_HOST); {forms}"));
    } else if value.contains("://") {
        return Err(format!("{value:?}: only http:// and https:// upstreams are supported; {forms}"));
    } else {
        (Scheme::Http, value)
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('@') {
        return Err(format!(
            "{value:?}: remove the user:password@ part; Ollama has no authentication to send it to; {forms}"
        ));
    }
    if rest.contains('/') {
        return Err(format!("{value:?}: Ollama serves its API at the root; remove the path; {forms}"));
    }
    let (host_part, port_part) = match rest.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port),
        _ => return Err(format!("{value:?} has no port; {forms}")),
    };
    if host_part.contains(':') && !host_part.starts_with('[') {
        return Err(format!("{value:?}: write IPv6 addresses in brackets, e.g. [::1]:11434"));
    }
    let port = port_part
        .parse::<i64>()
        .map_err(|_| format!("{value:?}: {port_part:?} is not a port number; {forms}"))
        .and_then(port)?;
    let (host, rewrote_localhost) = if host_part.eq_ignore_ascii_case("localhost") {
        (Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)), true)
    } else {
        (host(host_part).map_err(|e| format!("upstream host: {e}"))?, false)
    };
    Ok(Upstream { scheme, host, port, rewrote_localhost })
}

/// Usernames go into htpasswd (`user:hash`) and Caddyfile (`user hash`) lines.
pub fn username(value: &str) -> Result<Username, String> {
    Username::parse(value)
}

fn username_text(value: &str) -> Result<String, String> {
    const ALLOWED: &str = USERNAME_ALPHABET;
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.contains(':') {
        return Err(format!(
            "{value:?} contains ':', which separates the name from the hash in an htpasswd file; use {ALLOWED}"
        ));
    }
    if let Some(bad) = first_disallowed(value, |c| c.is_ascii_alphanumeric() || "._-@+".contains(c)) {
        return Err(format!("{value:?}: {bad} is not allowed in a username; use {ALLOWED}"));
    }
    if value.len() > 64 {
        return Err(format!("is {} characters long; use at most 64", value.len()));
    }
    Ok(value.to_string())
}

/// bcrypt reads only the first 72 bytes of a password: a longer one would
/// let in anyone who knows those 72.
pub const PASSWORD_MAX_BYTES: usize = 72;

/// The most Ollama servers one proxy balances over.
pub const MAX_UPSTREAMS: usize = 64;
/// A server's `weight` among several (nginx takes any positive number; a
/// share beyond 100 to 1 is a typo more likely than a plan).
pub const WEIGHTS: std::ops::RangeInclusive<i64> = 1..=100;
/// A server's `max_conns`: requests at once.
pub const MAX_CONNS: std::ops::RangeInclusive<i64> = 1..=10_000;

/// A password a person chose: not empty, no NUL (it ends the password for
/// crypt(3), so nobody could log in), and within bcrypt's 72 bytes.
pub fn password(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("the password is empty".into());
    }
    if value.contains('\0') {
        return Err("the password contains a NUL character, which ends a password for nginx (crypt): remove it".into());
    }
    if value.len() > PASSWORD_MAX_BYTES {
        return Err(format!(
            "the password is {} bytes long; bcrypt reads only the first {PASSWORD_MAX_BYTES}, so the rest would not count: \
             use at most {PASSWORD_MAX_BYTES} bytes",
            value.len()
        ));
    }
    Ok(())
}

/// A bcrypt hash as nginx (libxcrypt) and Caddy accept it.
pub fn bcrypt_hash(value: &str) -> Result<String, String> {
    let form = format!(
        "expected {BCRYPT_FORM} (make one with `htpasswd -nB user`, which asks for the password: on the command line `ps` would show it)"
    );
    // Judged as bytes: any UTF-8 is only ever refused, never sliced.
    let b = value.as_bytes();
    let shape_ok = b.len() == 60
        && (value.starts_with("$2a$") || value.starts_with("$2b$") || value.starts_with("$2y$"))
        && b[4..6].iter().all(u8::is_ascii_digit)
        && b[6] == b'$'
        && b[7..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/');
    if !shape_ok {
        return Err(format!("not a bcrypt hash: {form}"));
    }
    let cost = u32::from(b[4] - b'0') * 10 + u32::from(b[5] - b'0');
    if !BCRYPT_COSTS.contains(&cost) {
        return Err(format!(
            "its bcrypt cost is {cost}; use a hash of cost 4 to 17 (every uncached check of cost {cost} would take the proxy {})",
            if cost > 17 { "minutes" } else { "no time, and offer no protection" }
        ));
    }
    Ok(value.to_string())
}

/// The cost field of a bcrypt hash already checked by [`bcrypt_hash`].
pub fn bcrypt_cost_of(hash: &str) -> Option<u32> {
    hash.get(4..6)?.parse().ok()
}

/// The bcrypt costs a hash or `bcrypt_cost` may have: below 4 bcrypt
/// refuses, above 17 every uncached check takes the proxy seconds.
pub const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=17;

pub fn bcrypt_cost(value: i64) -> Result<u32, String> {
    match u32::try_from(value) {
        Ok(cost) if BCRYPT_COSTS.contains(&cost) => Ok(cost),
        _ => Err(format!(
            "{value} is not a usable bcrypt cost: use 4 to 17 (each step doubles the time nginx spends per uncached check; 12 takes about 250 ms here)"
        )),
    }
}

pub fn email(value: &str) -> Result<Email, String> {
    Email::parse(value)
}

fn email_text(value: &str) -> Result<String, String> {
    let form = format!("use {EMAIL_FORM}");
    let Some((local, domain)) = value.split_once('@') else {
        return Err(format!("{value:?} is not an email address; {form}"));
    };
    if local.is_empty() {
        return Err(format!("{value:?} has nothing before '@'; {form}"));
    }
    if let Some(bad) = first_disallowed(local, |c| c.is_ascii_alphanumeric() || "._%+-".contains(c)) {
        return Err(format!("{value:?}: {bad} is not allowed here; {form}"));
    }
    match host(domain) {
        Ok(Host::Name(name)) if name.contains('.') => Ok(format!("{local}@{name}")),
        _ => Err(format!("{value:?}: {domain:?} is not a mail domain; {form}")),
    }
}

/// An absolute path that is safe to write into nginx and Caddy configs.
pub fn absolute_path(value: &str) -> Result<PathBuf, String> {
    const ALLOWED: &str = PATH_ALPHABET;
    if !value.starts_with('/') {
        return Err(format!("{value:?} is not an absolute path (it must start with '/')"));
    }
    if let Some(bad) = first_disallowed(value, |c| c.is_ascii_alphanumeric() || "/._-+".contains(c)) {
        return Err(format!("{value:?}: {bad} is not allowed in a path here; use {ALLOWED}"));
    }
    if value.split('/').any(|part| part == "..") {
        return Err(format!("{value:?} contains '..'; write the path without it"));
    }
    if value.len() > 1 && value.ends_with('/') {
        return Err(format!("{value:?} ends with '/'; name the file itself"));
    }
    Ok(PathBuf::from(value))
}

/// The longest path a unix socket address holds on Linux (`sun_path` is
/// 108 bytes, one of them the terminating NUL).
pub const UNIX_SOCKET_PATH_MAX: usize = 107;

/// The auth-only server's socket: short enough for a socket address, and
/// outside the cache folder, whose non-cache files nginx's cache loader
/// deletes 60 s after every start.
/// A unix socket's path fits `sun_path`.
pub fn unix_socket_path(socket: &std::path::Path) -> Result<(), String> {
    let length = socket.as_os_str().len();
    if length > UNIX_SOCKET_PATH_MAX {
        return Err(format!(
            "{} is {length} bytes long; a unix socket path has at most {UNIX_SOCKET_PATH_MAX}",
            socket.display()
        ));
    }
    Ok(())
}

pub fn auth_socket(socket: &std::path::Path, cache: &std::path::Path) -> Result<(), String> {
    unix_socket_path(socket)?;
    if socket.starts_with(cache) {
        return Err(format!(
            "{} is inside paths.auth_cache ({}): nginx's cache loader deletes every file there that is not a cache entry, \
             60 s after each start; put the socket elsewhere",
            socket.display(),
            cache.display()
        ));
    }
    Ok(())
}

/// An ACME directory URL (Let's Encrypt staging, a private CA, pebble in tests).
pub fn acme_directory(value: &str) -> Result<AcmeUrl, String> {
    AcmeUrl::parse(value)
}

fn acme_directory_text(value: &str) -> Result<String, String> {
    let form = format!("use {ACME_FORM}");
    let Some(rest) = value.strip_prefix("https://") else {
        return Err(format!("{value:?} is not an https:// URL; {form}"));
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host_part = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => {
            p.parse::<i64>().map_err(|_| format!("{value:?}: {p:?} is not a port")).and_then(port)?;
            h
        }
        _ => authority,
    };
    // In a URL an IPv6 address is bracketed (RFC 3986): `::1:80` reads both ways.
    if host_part.contains(':') && !host_part.starts_with('[') {
        return Err(format!("{value:?}: write IPv6 addresses in brackets, e.g. https://[::1]:14000/dir"));
    }
    host(host_part).map_err(|e| format!("{value:?}: {e}"))?;
    if let Some(bad) = first_disallowed(path, |c| c.is_ascii_alphanumeric() || "/._-~".contains(c)) {
        return Err(format!("{value:?}: {bad} is not allowed in the URL path; {form}"));
    }
    Ok(value.to_string())
}

/// An environment variable name for `password_env`.
pub fn env_var_name(value: &str) -> Result<EnvVarName, String> {
    EnvVarName::parse(value)
}

fn env_var_name_text(value: &str) -> Result<String, String> {
    let starts_ok = value.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_ok || first_disallowed(value, |c| c.is_ascii_alphanumeric() || c == '_').is_some() {
        return Err(format!("{value:?} is not an environment variable name: use {ENV_VAR_ALPHABET}"));
    }
    Ok(value.to_string())
}

/// A Unix group name (the group the proxy's workers run as).
pub fn group_name(value: &str) -> Result<GroupName, String> {
    GroupName::parse(value)
}

fn group_name_text(value: &str) -> Result<String, String> {
    let starts_ok = value.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_ok
        || value.len() > 32
        || first_disallowed(value, |c| c.is_ascii_alphanumeric() || "_-".contains(c)).is_some()
    {
        return Err(format!("{value:?} is not a group name: use {GROUP_ALPHABET}"));
    }
    Ok(value.to_string())
}

/// Upper bound for `timeout`: longer than any model load, short enough that a
/// stuck upstream connection is eventually released.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(DAY_SECS);
const DAY_SECS: u64 = 24 * 60 * 60;
/// The longest window fail2ban counts failures in (`ban.within`).
pub const MAX_BAN_WINDOW: Duration = Duration::from_secs(DAY_SECS);
/// The longest ban (`ban.for`).
pub const MAX_BAN: Duration = Duration::from_secs(365 * DAY_SECS);

/// `timeout` as seconds: a number of seconds, or a duration like `10m`, `90s`, `1h`.
pub fn timeout_seconds(value: &str) -> Result<u64, String> {
    duration_seconds(value, MAX_TIMEOUT)
}

/// A duration of whole seconds from 1 s to `max` (90s, 10m, 1h, 7d).
pub fn duration_seconds(value: &str, max: Duration) -> Result<u64, String> {
    let form = format!("use a duration such as 90s, 10m or 1h (from 1s to {})", duration_words(max));
    if value != value.trim() || value.chars().any(|c| !(c.is_ascii_alphanumeric() || c == ' ')) {
        return Err(format!("{value:?}: only letters, digits and single spaces are allowed; {form}"));
    }
    let duration = match value.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(value).map_err(|e| format!("{value:?}: {e}; {form}"))?,
    };
    if duration < Duration::from_secs(1) || duration > max {
        return Err(format!("{value:?} is out of range; {form}"));
    }
    if duration.subsec_nanos() != 0 {
        return Err(format!("{value:?}: use whole seconds; {form}"));
    }
    Ok(duration.as_secs())
}

/// A limit as people say it: whole days in days (humantime writes 365 days
/// as months, days, hours and minutes of its average month).
pub fn duration_words(duration: Duration) -> String {
    match duration.as_secs() {
        DAY_SECS => "1 day".to_string(),
        secs if secs % DAY_SECS == 0 => format!("{} days", secs / DAY_SECS),
        _ => humantime::format_duration(duration).to_string(),
    }
}

/// How many failed logins earn a ban.
pub const MAX_BAN_AFTER: u32 = 1000;

pub fn ban_after(value: i64) -> Result<u32, String> {
    match u32::try_from(value) {
        Ok(n @ 1..=MAX_BAN_AFTER) => Ok(n),
        _ => Err(format!("{value} is out of range; use a number of failed logins from 1 to {MAX_BAN_AFTER}")),
    }
}

/// True for addresses that only this machine can reach.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_kept_as_browsers_send_them() {
        for (written, kept) in [
            ("https://chat.example.com", "https://chat.example.com"),
            ("HTTPS://Chat.Example.COM", "https://chat.example.com"),
            ("https://chat.example.com:443", "https://chat.example.com"),
            ("http://chat.example.com:80", "http://chat.example.com"),
            ("http://chat.example.com:8080", "http://chat.example.com:8080"),
            ("https://*.example.com", "https://*.example.com"),
            ("http://[::1]:5173", "http://[::1]:5173"),
            ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
            (
                "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
                "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
            ),
            (
                "moz-extension://0a1b2c3d-4e5f-6789-abcd-ef0123456789",
                "moz-extension://0a1b2c3d-4e5f-6789-abcd-ef0123456789",
            ),
            ("tauri://localhost", "tauri://localhost"),
        ] {
            assert_eq!(origin(written).map(|o| o.to_string()), Ok(kept.to_string()), "{written}");
        }
    }

    #[test]
    fn origins_that_would_let_in_more_than_meant_are_refused() {
        for (value, words) in [
            ("*", "every web page"),
            ("null", "sandboxed frames"),
            ("https://*", "every https:// page"),
            ("https://*.com", "a name of two labels or more"),
            ("https://*.192.0.2.1", "a name of two labels or more"),
            ("https://a.*.example.com", "only be the first label"),
            ("https://*example.com", "only be the first label"),
            ("chrome-extension://*", "every chrome-extension:// page"),
            ("chrome-extension://*.x", "list each one"),
            ("https://chat.example.com/", "has no path"),
            ("https://chat.example.com/app", "did you mean https://chat.example.com?"),
            ("https://chat.example.com?x", "has no path, query"),
            ("https://u:p@chat.example.com", "no user name or password"),
            ("chat.example.com", "is not an origin"),
            ("file:///home/x", "Origin: null"),
            ("https://chat.example.com:0", "is not a port"),
            ("https://chat.example.com:65536", "is not a port"),
            ("https://chat.example.com:+1", "is not a port"),
            ("https://chät.example.com", "xn-- form"),
            ("https://chat.example.com\n", "a line break"),
            ("https://a b", "a space"),
            ("https://a.com;", "not a valid host name"),
            ("1http://a.com", "not a URL scheme"),
            ("chrome-extension://ABC_DEF", "not an extension's ID"),
        ] {
            let err = origin(value).unwrap_err();
            assert!(err.contains(words), "{value:?}: {err}");
        }
    }

    #[test]
    fn an_origin_pattern_matches_that_origin_only() {
        let matches = |origin_text: &str, sent: &str| {
            let pattern = origin(origin_text).unwrap().pattern();
            regex::Regex::new(&pattern).unwrap().is_match(sent)
        };
        assert!(matches("https://chat.example.com", "https://chat.example.com"));
        for other in [
            "https://chatXexample.com",
            "https://chat.example.com.evil.net",
            "http://chat.example.com",
            "https://chat.example.com:8443",
            "xhttps://chat.example.com",
        ] {
            assert!(!matches("https://chat.example.com", other), "{other}");
        }
        assert!(matches("https://*.example.com", "https://a.example.com"));
        assert!(matches("https://*.example.com", "https://a-b.c.example.com"));
        for other in [
            "https://example.com",
            "https://.example.com",
            "https://a.example.com:8443",
            "https://a.example.com.evil.net",
            "https://aexample.com",
            "https://evil.net/.example.com",
        ] {
            assert!(!matches("https://*.example.com", other), "{other}");
        }
        assert!(matches("http://[::1]:5173", "http://[::1]:5173"));
        assert!(!matches("http://[::1]:5173", "http://1:5173"));
        assert!(matches("git+web://x", "git+web://x"));
        assert!(!matches("git+web://x", "gitweb://x"));
    }

    #[test]
    fn a_url_given_as_host_names_the_host() {
        let err = host("https://Ollama.example.com/").unwrap_err();
        assert!(err.contains("is a URL: give the host name alone, \"Ollama.example.com\""), "{err}");
        assert!(host("http://ollama.example.com:8080").unwrap_err().contains("\"ollama.example.com\""));
        assert!(host("https://").is_err() && host("https://a b").is_err());
    }

    #[test]
    fn host_accepts_names_and_ip_literals() {
        assert_eq!(host("Ollama.Example.com"), Ok(Host::Name("ollama.example.com".into())));
        assert_eq!(host("127.0.0.1"), Ok(Host::Ip("127.0.0.1".parse().unwrap())));
        assert_eq!(host("[::1]"), Ok(Host::Ip("::1".parse().unwrap())));
        assert_eq!(host("ollama"), Ok(Host::Name("ollama".into())));
    }

    #[test]
    fn host_rejects_injection_and_malformed_names() {
        for bad in [
            "",
            "a.com; } server { listen 9999",
            "a.com\nlisten 1",
            "a.com{",
            "\"a.com\"",
            "a..com",
            ".a.com",
            "a.com.",
            "-a.com",
            "a-.com",
            "$host",
            "a b",
            "999.1.1.1",
            "*.example.com",
            "exa_mple.com",
            &"a".repeat(64),
        ] {
            assert!(host(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn upstream_forms() {
        let up = upstream("127.0.0.1:11434").unwrap();
        assert_eq!((up.url(), up.rewrote_localhost), ("http://127.0.0.1:11434".into(), false));
        let up = upstream("http://localhost:11434/").unwrap();
        assert_eq!((up.url(), up.rewrote_localhost), ("http://127.0.0.1:11434".into(), true));
        assert_eq!(upstream("[::1]:11434").unwrap().host_port(), "[::1]:11434");
        assert_eq!(upstream("https://gpu-box.internal:443").unwrap().url(), "https://gpu-box.internal:443");
        for bad in ["127.0.0.1", "ftp://a:1", "a:1/api", "::1:11434", "a:0", "a:99999", "a;b:1", "a:1;"] {
            assert!(upstream(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn usernames() {
        assert!(username("alice.b-c_d@x+y").is_ok());
        for bad in ["", "bo:b", "bob smith", "bob\n", "b{", "b;", "$b", "b\"", "é"] {
            assert!(username(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(username("bo:b").unwrap_err().contains("':'"));
    }

    #[test]
    fn hashes() {
        let good = "$2y$12$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";
        assert_eq!(good.len(), 60);
        assert!(bcrypt_hash(good).is_ok());
        assert_eq!(bcrypt_cost_of(good), Some(12));
        assert!(bcrypt_hash("$apr1$abc$def").is_err());
        assert!(bcrypt_hash(&good.replace('a', ";")).is_err());
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout_seconds("10m"), Ok(600));
        assert_eq!(timeout_seconds("90"), Ok(90));
        assert_eq!(timeout_seconds("1h"), Ok(3600));
        assert_eq!(timeout_seconds("1h 30m"), Ok(5400));
        for bad in ["0", "0s", "25h", "10 parsecs", "1.5s", "500ms", "", "600s\n", " 10m", "10m;"] {
            assert!(timeout_seconds(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn paths_and_urls() {
        assert!(absolute_path("/etc/nginx/ollama.htpasswd").is_ok());
        for bad in ["etc/x", "/etc/x y", "/etc/x;", "/etc/../x", "/etc/x/", "/etc/{x}", "/etc/\"x\""] {
            assert!(absolute_path(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(acme_directory("https://127.0.0.1:14000/dir").is_ok());
        assert!(acme_directory("https://acme-staging-v02.api.letsencrypt.org/directory").is_ok());
        for bad in ["http://x/dir", "https://x/dir;", "https://x:99999/", "https://x/a b"] {
            assert!(acme_directory(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(email("ops@example.com").is_ok());
        for bad in ["ops", "@example.com", "o ps@example.com", "ops@localhost", "ops@a.com;"] {
            assert!(email(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn networks_are_addresses_or_prefixes_without_stray_bits() {
        let shown = |v: &str| network(v).map(|n| n.to_string());
        assert_eq!(shown("192.0.2.10"), Ok("192.0.2.10/32".into()));
        assert_eq!(shown("192.0.2.0/24"), Ok("192.0.2.0/24".into()));
        assert_eq!(shown("0.0.0.0/0"), Ok("0.0.0.0/0".into()));
        assert_eq!(shown("2001:DB8::/48"), Ok("2001:db8::/48".into()));
        assert_eq!(shown("[::1]"), Ok("::1/128".into()));
        let office = network("192.0.2.0/24").unwrap();
        assert!(office.contains("192.0.2.255".parse().unwrap()));
        assert!(!office.contains("192.0.3.0".parse().unwrap()));
        assert!(!office.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(network("::ffff:192.0.2.0/120").unwrap_err().contains("IPv4-mapped"));
        assert!(network("0.0.0.0/0").unwrap().contains("203.0.113.9".parse().unwrap()));
        assert!(network("2001:db8::/48").unwrap().contains("2001:db8:0:ffff::1".parse().unwrap()));
        assert!(!network("::1").unwrap().contains("127.0.0.1".parse().unwrap()));
        let err = network("192.0.2.1/24").unwrap_err();
        assert!(err.contains("did you mean 192.0.2.0/24?"), "{err}");
        let err = network("2001:db8::1/64").unwrap_err();
        assert!(err.contains("did you mean 2001:db8::/64?"), "{err}");
        for bad in [
            "",
            "/",
            "192.0.2.0/",
            "192.0.2.0/33",
            "::/129",
            "192.0.2.0/+8",
            "192.0.2.0/-1",
            "192.0.2.0/24;",
            "192.0.2.0/24 0",
            "example.com",
            "192.0.2.0/24/8",
            "10.0.0.0/٨",
            "1.2.3.4\n",
            "ü/8",
            "192.0.2.0/ 24",
        ] {
            assert!(network(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
