//! Answers → `Config`: every field checked and typed, defaults filled in.
//! All problems are collected and reported together, each naming the file,
//! the field and what is allowed. Nothing here writes anything.

use std::fmt;
use std::io;
use std::path::Path;

use crate::access::{ApiKey, Role};
use crate::answers::{Answers, BanAnswers, HttpsAnswers, KeyAnswer, PathAnswers, Upstreams, UserAnswer};
use crate::error::{AfterWizard, Error, Finding, Problem, Result};
use crate::fields::{self, Host, Upstream, Username};
use crate::paths::{Os, Paths};
use crate::proxy::{PackageSource, ProxyKind};
use crate::secret::Secret;
use crate::setup::{Ban, CostPolicy, Https, Settings, Share, Site};

/// Where a user's password comes from, once the answers are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// A plaintext password (from `password`, `password_env` or `password_file`).
    Given(Secret),
    /// A bcrypt hash given as is (`password_hash`).
    Hash(String),
    /// Generate a strong password, unless this user already has one.
    Generate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub username: Username,
    pub password: PasswordSource,
    pub role: Role,
}

/// Where an API key comes from, once the answers are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A whole key (from `key_env` or `key_file`).
    Given(ApiKey),
    /// The key's line in the keys file as is (`key_hash: ID:BCRYPT`).
    Hash { id: Username, hash: String },
    /// Generate a key, unless this name already has one.
    Generate,
}

impl KeySource {
    /// The key's ID, when the answers give the key (not for `generate`).
    pub fn id(&self) -> Option<&Username> {
        match self {
            KeySource::Given(key) => Some(&key.id),
            KeySource::Hash { id, .. } => Some(id),
            KeySource::Generate => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    pub name: Username,
    pub role: Role,
    pub key: KeySource,
}

/// Validated answers: the settings of the setup, its users with where
/// their passwords come from, and what to say about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub settings: Settings,
    pub users: Vec<UserSpec>,
    pub keys: Vec<KeySpec>,
    /// The proxy (and certbot) may be installed with the package manager,
    /// the proxy from here; `None`: nothing is installed.
    pub install: Option<PackageSource>,
    /// Things worth saying that do not stop the run.
    pub warnings: Vec<Finding>,
}

/// Where `password_env` and `password_file` are read from. Tests pass a map.
pub trait SecretSource {
    fn env(&self, name: &str) -> Option<String>;
    fn read_file(&self, path: &Path) -> io::Result<String>;
}

/// The real process environment and filesystem.
pub struct ProcessSecrets;

/// No password file is anywhere near this size.
const PASSWORD_FILE_LIMIT: u64 = 64 * 1024;

impl SecretSource for ProcessSecrets {
    fn env(&self, name: &str) -> Option<String> {
        crate::secret::from_env(name).map(|s| s.expose().to_string())
    }

    fn read_file(&self, path: &Path) -> io::Result<String> {
        let bytes = crate::system::read_limited(path, PASSWORD_FILE_LIMIT)?;
        String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
    }
}

/// Passwords shorter than this get a warning (the length the seed guide asks for).
pub const SHORT_PASSWORD: usize = 20;

/// More users than this is a mistake (a generated file, an alias bomb), not
/// a setup: the proxies check each one.
pub const MAX_USERS: usize = 1000;

/// Collects field problems so one run reports all of them.
struct Problems {
    source: String,
    list: Vec<Problem>,
}

impl Problems {
    fn new(source: &str) -> Problems {
        Problems { source: source.to_string(), list: Vec::new() }
    }

    fn add(&mut self, field: &str, message: impl fmt::Display) {
        self.list.push(Problem::at(&self.source, field, message.to_string()));
    }

    /// Runs a validator, recording its error under `field`.
    fn check<T>(&mut self, field: &str, result: std::result::Result<T, String>) -> Option<T> {
        result.map_err(|e| self.add(field, e)).ok()
    }

    /// The value, or every problem found, each at its line of `answers`.
    fn into_result<T>(self, answers: &Answers, value: impl FnOnce() -> T) -> Result<T> {
        if self.list.is_empty() { Ok(value()) } else { Err(Error::Input(answers.place(self.list))) }
    }
}

impl Config {
    /// `source` names the answers file (or "wizard") in messages.
    pub fn from_answers(answers: &Answers, source: &str, os: Os, secrets: &dyn SecretSource) -> Result<Config> {
        let mut p = Problems::new(source);
        p.list.extend(answers.unknown.iter().cloned());
        let mut warnings = Vec::new();
        if let Some(version) = answers.version
            && version != 1
        {
            p.add("version", format_args!("{version} is not supported; this tool reads version 1"));
        }
        let proxy = proxy(answers, &mut p);
        let site = site(answers, proxy, &mut p, &mut warnings);
        let users = users(answers, secrets, &mut p, &mut warnings);
        let keys = keys(answers, secrets, &mut p);
        let cost =
            CostPolicy { fixed: answers.bcrypt_cost.and_then(|c| p.check("bcrypt_cost", fields::bcrypt_cost(c))) };
        let group = match &answers.file_group {
            Some(g) => p.check("file_group", fields::group_name(g)),
            None => proxy.and_then(|k| fields::group_name(k.module().default_group(os)).ok()),
        };
        let paths = paths(Paths::defaults(os), answers.paths.as_ref(), &mut p);
        let install = install(answers, proxy, &mut p, &mut warnings);
        p.into_result(answers, || Config {
            settings: Settings {
                proxy: proxy.expect("checked above"),
                site: site.expect("checked above"),
                file_group: group.expect("checked above"),
                cost,
                paths,
            },
            users,
            keys,
            install: install.expect("checked above"),
            warnings,
        })
    }
}

/// `install` and `caddy_source`: whether the proxy may be installed, and
/// from where. `None` when `caddy_source` is wrong.
fn install(
    answers: &Answers,
    proxy: Option<ProxyKind>,
    p: &mut Problems,
    warnings: &mut Vec<Finding>,
) -> Option<Option<PackageSource>> {
    let installs = answers.install.unwrap_or(false);
    let Some(name) = answers.caddy_source.as_deref() else {
        return Some(installs.then_some(PackageSource::Distribution));
    };
    let Some(source) = PackageSource::parse(name) else {
        let names: Vec<&str> = PackageSource::ALL.iter().map(|s| s.name()).collect();
        p.add("caddy_source", format_args!("{name:?} is not a source: use {}", names.join(" or ")));
        return None;
    };
    if let Some(kind) = proxy
        && kind.module().own_repository().is_none()
    {
        p.add("caddy_source", format_args!("is for proxy: caddy; {kind} is installed from the system's packages"));
        return None;
    }
    if !installs {
        warnings.push(Finding::warning(
            "caddy_source: Caddy is installed only with `install: true`; without it, caddy_source changes nothing",
        ));
    }
    Some(installs.then_some(source))
}

fn proxy(answers: &Answers, p: &mut Problems) -> Option<ProxyKind> {
    let choices = ProxyKind::choices();
    match answers.proxy.as_deref() {
        Some(name) => ProxyKind::parse(name).or_else(|| {
            p.add("proxy", format_args!("{name:?} is not supported: use {choices}"));
            None
        }),
        None => {
            p.add("proxy", format_args!("is required: use {choices}"));
            None
        }
    }
}

/// Where and how the site is served; `None` when a field is wrong.
fn site(answers: &Answers, proxy: Option<ProxyKind>, p: &mut Problems, warnings: &mut Vec<Finding>) -> Option<Site> {
    let domain = answers.domain.as_deref().filter(|d| !d.is_empty()).and_then(|d| p.check("domain", fields::host(d)));
    let listen_address =
        answers.listen_address.as_deref().and_then(|a| p.check("listen_address", fields::listen_address(a)));
    // A block that is off is checked too: its values are as wrong before
    // `enabled: true` as after (and the schema judges them either way).
    let https = answers.https.as_ref().and_then(|h| https(h, p).filter(|_| h.enabled));
    if let Some(h) = &https {
        let given = answers.domain.as_deref().is_some_and(|d| !d.is_empty());
        match &domain {
            None if !given => {
                p.add("https.enabled", "needs a domain: certificates are issued for a name; set `domain:`")
            }
            Some(Host::Ip(_)) => p.add(
                "domain",
                "must be a host name, not an IP address, when https is enabled (ACME issues certificates for names)",
            ),
            // No public CA issues for these (RFC 6761): the ACME order would fail after the writes.
            Some(Host::Name(name)) if name == "localhost" || name.ends_with(".localhost") => p.add(
                "domain",
                format!(
                    "{name} cannot get a certificate from an ACME server (it names this machine only); \
                     use a public name, or turn https off for local use"
                ),
            ),
            _ => {}
        }
        if let Some((field, why)) = proxy.and_then(|k| k.module().https_problem(h)) {
            p.add(field, why);
        }
    }
    let default_port = if https.is_some() { 443 } else { 8080 };
    let port = answers.port.map_or(Some(default_port), |n| p.check("port", fields::port(n)));
    if let (Some(h), Some(port)) = (&https, port)
        && h.http_port == port
    {
        p.add(
            "https.http_port",
            format_args!("is the same as port ({port}); the HTTP server (challenges, redirect) needs its own port"),
        );
    }
    let upstreams = upstreams(answers.upstream.as_ref(), p);
    let sticky_credential = match answers.sticky.as_deref() {
        None => false,
        Some("credential") if upstreams.as_ref().is_some_and(|all| all.len() < 2) => {
            p.add("sticky", "needs several Ollama servers in upstream (a list): with one, every request goes there");
            false
        }
        Some("credential") => true,
        Some(other) => {
            p.add("sticky", format_args!("{other:?}: the one choice is `credential` (absent: the least busy server)"));
            false
        }
    };
    for up in upstreams.iter().flatten() {
        warnings.extend(upstream_warnings(up));
    }
    let timeout_secs = match &answers.timeout {
        Some(t) => p.check("timeout", fields::timeout_seconds(&t.as_text())),
        None => Some(600),
    };
    if https.is_none()
        && answers.https.as_ref().is_none_or(|h| !h.enabled)
        && listen_address.is_none_or(|a| !fields::is_loopback(a))
    {
        warnings.push(Finding::warning(
            "https is off: passwords cross the network readable by anyone on the path; enable https for anything reachable from the internet",
        ));
    }
    let allow_from: Vec<_> = answers
        .allow_from
        .iter()
        .enumerate()
        .map(|(i, n)| p.check(&format!("allow_from[{i}]"), fields::network(n)))
        .collect();
    // nginx warns about a network listed twice; say it here, by entry.
    for (i, network) in allow_from.iter().enumerate() {
        if let Some(first) = allow_from[..i].iter().position(|n| n.is_some() && n == network) {
            p.add(&format!("allow_from[{i}]"), format!("is allow_from[{first}] again; list each network once"));
        }
    }
    let allow_from: Option<Vec<_>> = allow_from.into_iter().collect();
    let cors_origins: Vec<_> = answers
        .cors_origins
        .iter()
        .enumerate()
        .map(|(i, o)| p.check(&format!("cors_origins[{i}]"), fields::origin(o)))
        .collect();
    for (i, origin) in cors_origins.iter().enumerate() {
        if let Some(first) = cors_origins[..i].iter().position(|o| o.is_some() && o == origin) {
            p.add(&format!("cors_origins[{i}]"), format!("is cors_origins[{first}] again; list each origin once"));
        }
    }
    let cors_origins: Option<Vec<_>> = cors_origins.into_iter().collect();
    let shares = shares(answers.upstream.as_ref(), proxy, p);
    let site = Site {
        ban: None,
        domain,
        listen_address,
        port: port?,
        allow_from: allow_from?,
        cors_origins: cors_origins?,
        upstream: upstreams.as_ref()?.first()?.clone(),
        other_upstreams: upstreams?.split_off(1),
        sticky_credential,
        shares,
        https,
        timeout_secs: timeout_secs?,
    };
    let ban = answers.ban.as_ref().and_then(|b| ban(b, p));
    let site = Site { ban, ..site };
    let here = site.local_address();
    if !site.allows(here) {
        warnings.push(Finding::warning(format!(
            "allow_from leaves out {here}, the address this machine reaches the site from: init proves only that \
             it is refused there, and cannot log in to check the rest; run `ollama-secure check` from an allowed \
             address, or add {here} to allow_from"
        )));
    }
    Some(site)
}

/// `upstream:`, one address or several Ollama servers (each once). With
/// several, each is `IP:PORT` over http: one Host header goes to all of
/// them (nginx sets it before it chooses one), `localhost`, which Ollama
/// accepts on a loopback listener and does not check on any other.
/// Each server's `weight` and `max_conns`, judged: with several servers
/// only, in range, and as the proxy can express them. Empty: none given.
fn shares(answer: Option<&Upstreams>, proxy: Option<ProxyKind>, p: &mut Problems) -> Vec<Share> {
    let Some(Upstreams::Several(entries)) = answer else { return Vec::new() };
    if entries.iter().all(|entry| entry.shares() == (None, None)) {
        return Vec::new();
    }
    let mut shares = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let (weight, max_conns) = entry.shares();
        let mut judge = |name: &str, value: Option<i64>, range: std::ops::RangeInclusive<i64>| -> Option<u32> {
            let value = value?;
            let field = format!("upstream[{i}].{name}");
            if entries.len() < 2 {
                p.add(&field, "applies when there are several Ollama servers: with one, every request goes there");
                None
            } else if !range.contains(&value) {
                p.add(&field, format_args!("{value} is not between {} and {}", range.start(), range.end()));
                None
            } else {
                u32::try_from(value).ok()
            }
        };
        let weight = judge("weight", weight, fields::WEIGHTS);
        let max_conns = judge("max_conns", max_conns, fields::MAX_CONNS);
        shares.push(Share { weight, max_conns });
    }
    if let Some((field, why)) = proxy.and_then(|k| k.module().shares_problem(&shares)) {
        p.add(&field, why);
    }
    shares
}

fn upstreams(answer: Option<&Upstreams>, p: &mut Problems) -> Option<Vec<Upstream>> {
    let texts = answer.map_or_else(|| vec!["127.0.0.1:11434"], Upstreams::texts);
    let several = matches!(answer, Some(Upstreams::Several(_)));
    if texts.is_empty() {
        p.add("upstream", "is an empty list: give Ollama's address (host:port), or a list of them");
        return None;
    }
    if texts.len() > fields::MAX_UPSTREAMS {
        p.add(
            "upstream",
            format_args!("lists {} servers; at most {} are supported", texts.len(), fields::MAX_UPSTREAMS),
        );
        return None;
    }
    let mut all = Vec::new();
    let mut fine = true;
    for (i, text) in texts.iter().enumerate() {
        let field = if several { format!("upstream[{i}]") } else { "upstream".to_string() };
        let Some(up) = p.check(&field, fields::upstream(text)) else {
            fine = false;
            continue;
        };
        if texts.len() > 1 && (up.scheme != fields::Scheme::Http || !matches!(up.host, Host::Ip(_))) {
            p.add(
                &field,
                format_args!(
                    "{text:?}: with several Ollama servers, give each as IP:PORT over http (e.g. 10.0.0.11:11434): \
                     the proxy sends one Host header to all of them"
                ),
            );
            fine = false;
        } else if all.iter().any(|seen: &Upstream| seen.host_port() == up.host_port()) {
            p.add(&field, format_args!("{} is listed twice", up.host_port()));
            fine = false;
        } else {
            all.push(up);
        }
    }
    fine.then_some(all)
}

fn upstream_warnings(up: &Upstream) -> Vec<Finding> {
    let mut warnings = Vec::new();
    if up.rewrote_localhost {
        let why = "proxies may try ::1 first, where Ollama does not listen by default";
        warnings.push(
            Finding::warning(format!("upstream: using {} instead of localhost: {why}", up.host_port())).after_wizard(
                AfterWizard::Reworded(format!(
                    "Ollama's address: using {} instead of localhost: {why}",
                    up.host_port()
                )),
            ),
        );
    }
    if let Host::Ip(ip) = up.host
        && !fields::is_loopback(ip)
        && up.scheme == fields::Scheme::Http
    {
        let text = format!(
            "Ollama at {} is reached over the network without encryption, and anyone who can reach that address bypasses the password",
            up.host_port()
        );
        warnings.push(Finding::warning(format!("upstream: {text}")).after_wizard(AfterWizard::Reworded(text)));
    }
    warnings
}

/// Defaults as fail2ban's own jails have them: 10 failures in 10 minutes
/// ban for an hour.
fn ban(answers: &BanAnswers, p: &mut Problems) -> Option<Ban> {
    let after = match answers.after {
        Some(n) => p.check("ban.after", fields::ban_after(n)),
        None => Some(10),
    };
    let within = match &answers.within {
        Some(t) => p.check("ban.within", fields::duration_seconds(&t.as_text(), fields::MAX_BAN_WINDOW)),
        None => Some(600),
    };
    let for_secs = match &answers.duration {
        Some(t) => p.check("ban.for", fields::duration_seconds(&t.as_text(), fields::MAX_BAN)),
        None => Some(3600),
    };
    Some(Ban { after: after?, within_secs: within?, for_secs: for_secs? })
}

fn https(answers: &HttpsAnswers, p: &mut Problems) -> Option<Https> {
    let email = answers.email.as_deref().and_then(|e| p.check("https.email", fields::email(e)));
    let acme_directory =
        answers.acme_directory.as_deref().and_then(|d| p.check("https.acme_directory", fields::acme_directory(d)));
    let acme_ca_root =
        answers.acme_ca_root.as_deref().and_then(|f| p.check("https.acme_ca_root", fields::absolute_path(f)));
    let http_port = match answers.http_port {
        Some(n) => p.check("https.http_port", fields::port(n))?,
        None => 80,
    };
    Some(Https { email, acme_directory, acme_ca_root, http_port })
}

fn users(
    answers: &Answers,
    secrets: &dyn SecretSource,
    p: &mut Problems,
    warnings: &mut Vec<Finding>,
) -> Vec<UserSpec> {
    if answers.users.is_empty() {
        p.add(
            "users",
            "at least one user is required (username plus one of password, password_env, password_file, password_hash, generate)",
        );
    }
    if answers.users.len() > MAX_USERS {
        p.add("users", format_args!("{} users given; at most {MAX_USERS} are supported", answers.users.len()));
        return Vec::new();
    }
    let mut users: Vec<UserSpec> = Vec::new();
    for (i, user) in answers.users.iter().enumerate() {
        if let Some(spec) = user_spec(user, &format!("users[{i}]"), secrets, p, warnings) {
            if users.iter().any(|u| u.username == spec.username) {
                p.add(&format!("users[{i}].username"), format_args!("{:?} appears twice", spec.username.as_str()));
            }
            users.push(spec);
        }
    }
    users
}

/// A secret given inline, through an environment variable, or in a file.
struct SecretAnswer<'a> {
    inline: Option<&'a str>,
    env: Option<&'a str>,
    file: Option<&'a str>,
}

/// The plaintext a user's password (or a key's) answer gives, if it gives
/// one; `Err` when the answer is wrong (already recorded in `p`). `names`
/// are the answer's environment and file fields.
fn given_secret(
    answer: &SecretAnswer,
    field: &str,
    (env_field, file_field): (&str, &str),
    secrets: &dyn SecretSource,
    p: &mut Problems,
) -> Result<Option<Secret>, ()> {
    if let Some(inline) = answer.inline {
        return Ok(Some(Secret::new(inline)));
    }
    if let Some(var) = answer.env {
        let var = p.check(&format!("{field}.{env_field}"), fields::env_var_name(var)).ok_or(())?;
        return match secrets.env(&var) {
            Some(value) => Ok(Some(Secret::new(value))),
            None => {
                p.add(&format!("{field}.{env_field}"), format_args!("the environment variable {var} is not set"));
                Err(())
            }
        };
    }
    if let Some(file) = answer.file {
        return match secrets.read_file(Path::new(file)) {
            // One trailing line break is how editors and `echo` end a file, not part of the secret.
            Ok(text) => Ok(Some(Secret::new(
                text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text),
            ))),
            Err(e) => {
                p.add(&format!("{field}.{file_field}"), format_args!("cannot read {file}: {e}"));
                Err(())
            }
        };
    }
    Ok(None)
}

fn user_spec(
    user: &UserAnswer,
    field: &str,
    secrets: &dyn SecretSource,
    p: &mut Problems,
    warnings: &mut Vec<Finding>,
) -> Option<UserSpec> {
    let username = p.check(&format!("{field}.username"), fields::username(&user.username));
    let given = [
        user.password.is_some(),
        user.password_env.is_some(),
        user.password_file.is_some(),
        user.password_hash.is_some(),
        user.generate == Some(true),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if given != 1 {
        p.add(
            field,
            format_args!(
                "give exactly one of password, password_env, password_file, password_hash or generate: true ({given} given)"
            ),
        );
        return None;
    }
    let source = SecretAnswer {
        inline: user.password.as_deref(),
        env: user.password_env.as_deref(),
        file: user.password_file.as_deref(),
    };
    let password = match given_secret(&source, field, ("password_env", "password_file"), secrets, p).ok()? {
        Some(secret) => {
            if let Err(why) = fields::password(secret.expose()) {
                p.add(field, why);
                return None;
            }
            if secret.len() < SHORT_PASSWORD
                && let Some(name) = &username
            {
                warnings.push(
                    Finding::warning(format!(
                        "{field}: the password for {name} has {} characters; use at least {SHORT_PASSWORD}, or generate: true",
                        secret.len()
                    ))
                    .after_wizard(AfterWizard::AlreadySaid),
                );
            }
            PasswordSource::Given(secret)
        }
        None => match &user.password_hash {
            Some(hash) => PasswordSource::Hash(p.check(&format!("{field}.password_hash"), fields::bcrypt_hash(hash))?),
            None => PasswordSource::Generate,
        },
    };
    let role = role(user.role.as_deref(), field, p)?;
    Some(UserSpec { username: username?, password, role })
}

/// A role answer; none is the least privilege.
fn role(answer: Option<&str>, field: &str, p: &mut Problems) -> Option<Role> {
    match answer {
        None => Some(Role::User),
        Some(text) => p.check(&format!("{field}.role"), Role::parse(text)),
    }
}

/// The API keys: like users, at most MAX_USERS, each name once.
fn keys(answers: &Answers, secrets: &dyn SecretSource, p: &mut Problems) -> Vec<KeySpec> {
    if answers.api_keys.len() > MAX_USERS {
        p.add("api_keys", format_args!("{} keys given; at most {MAX_USERS} are supported", answers.api_keys.len()));
        return Vec::new();
    }
    let mut keys: Vec<KeySpec> = Vec::new();
    for (i, answer) in answers.api_keys.iter().enumerate() {
        let field = format!("api_keys[{i}]");
        let Some(spec) = key_spec(answer, &field, secrets, p) else { continue };
        if keys.iter().any(|k| k.name == spec.name) {
            p.add(&format!("{field}.name"), format_args!("{:?} appears twice", spec.name.as_str()));
        }
        if spec.key.id().is_some() && keys.iter().any(|k| k.key.id() == spec.key.id()) {
            p.add(&field, "the same key is given twice (its ID is already used by another entry)");
        }
        keys.push(spec);
    }
    keys
}

fn key_spec(answer: &KeyAnswer, field: &str, secrets: &dyn SecretSource, p: &mut Problems) -> Option<KeySpec> {
    let name = p.check(&format!("{field}.name"), fields::username(&answer.name));
    let given =
        [answer.key_env.is_some(), answer.key_file.is_some(), answer.key_hash.is_some(), answer.generate == Some(true)]
            .iter()
            .filter(|set| **set)
            .count();
    if given != 1 {
        p.add(field, format_args!("give exactly one of key_env, key_file, key_hash or generate: true ({given} given)"));
        return None;
    }
    let source = SecretAnswer { inline: None, env: answer.key_env.as_deref(), file: answer.key_file.as_deref() };
    let key = match given_secret(&source, field, ("key_env", "key_file"), secrets, p).ok()? {
        Some(text) => {
            let which = if answer.key_env.is_some() { "key_env" } else { "key_file" };
            KeySource::Given(
                p.check(&format!("{field}.{which}"), ApiKey::parse(text.expose()).map_err(|e| format!("the key {e}")))?,
            )
        }
        None => match &answer.key_hash {
            Some(line) => {
                let (id, hash) = line.split_once(':').unwrap_or(("", ""));
                let checked = fields::username(id)
                    .and_then(|id| fields::bcrypt_hash(hash).map(|hash| (id, hash)))
                    .map_err(|_| {
                        "is not `ID:BCRYPT`, the key's line in the keys file (as --save-answers writes it)".to_string()
                    });
                let (id, hash) = p.check(&format!("{field}.key_hash"), checked)?;
                KeySource::Hash { id, hash }
            }
            None => KeySource::Generate,
        },
    };
    let role = role(answer.role.as_deref(), field, p)?;
    Some(KeySpec { name: name?, role, key })
}

/// Only the file locations of an answers file, checked like every path, for
/// commands that work on an installed setup (uninstall, users) and need no
/// passwords.
pub fn paths_from_answers(answers: &Answers, source: &str, os: Os) -> Result<Paths> {
    let mut p = Problems::new(source);
    let paths = paths(Paths::defaults(os), answers.paths.as_ref(), &mut p);
    p.into_result(answers, || paths)
}

/// Checks a `--defaults` file for the wizard before any question is asked,
/// with the same rules and messages as an answers file. The wizard asks for
/// the users, so the file may not list any; what it leaves out for the
/// wizard to ask (proxy, users, a domain for HTTPS) is filled in here with
/// values that pass, so only what the file gives is judged. The answers the
/// wizard ends with are checked again in full.
pub fn check_wizard_defaults(defaults: &Answers, source: &str, os: Os) -> Result<()> {
    if !defaults.users.is_empty() {
        return Err(Error::Input(defaults.place(vec![Problem::at(
            source,
            "users",
            "the wizard asks for the users; a --defaults file may not list them (use --answers for a complete setup)",
        )])));
    }
    let mut filled = defaults.clone();
    // A proxy the file's caddy_source fits, where the file names none.
    let fits = |kind: &ProxyKind| filled.caddy_source.is_none() || kind.module().own_repository().is_some();
    let proxy = ProxyKind::ALL.into_iter().find(fits).unwrap_or(ProxyKind::ALL[0]);
    filled.proxy.get_or_insert_with(|| proxy.name().to_string());
    filled.users = vec![UserAnswer { username: "wizard".to_string(), generate: Some(true), ..Default::default() }];
    if filled.https.as_ref().is_some_and(|h| h.enabled) {
        filled.domain.get_or_insert_with(|| "ollama.example.com".to_string());
    }
    Config::from_answers(&filled, source, os, &ProcessSecrets).map(|_| ())
}

fn paths(mut paths: Paths, answers: Option<&PathAnswers>, p: &mut Problems) -> Paths {
    let Some(a) = answers else { return paths };
    let mut set = |field: &str, value: &Option<String>, target: &mut std::path::PathBuf| {
        if let Some(v) = value
            && let Some(path) = p.check(&format!("paths.{field}"), fields::absolute_path(v))
        {
            *target = path;
        }
    };
    set("nginx_conf", &a.nginx_conf, &mut paths.nginx_conf);
    set("nginx_site", &a.nginx_site, &mut paths.nginx_site);
    set("htpasswd", &a.htpasswd, &mut paths.htpasswd);
    set("api_keys", &a.api_keys, &mut paths.api_keys);
    set("access_log", &a.access_log, &mut paths.access_log);
    set("nginx_pid", &a.nginx_pid, &mut paths.nginx_pid);
    set("auth_cache", &a.auth_cache, &mut paths.auth_cache);
    set("auth_socket", &a.auth_socket, &mut paths.auth_socket);
    set("caddyfile", &a.caddyfile, &mut paths.caddyfile);
    set("caddy_site", &a.caddy_site, &mut paths.caddy_site);
    set("caddy_pid", &a.caddy_pid, &mut paths.caddy_pid);
    set("caddy_log", &a.caddy_log, &mut paths.caddy_log);
    set("caddy_admin", &a.caddy_admin, &mut paths.caddy_admin);
    set("acme_webroot", &a.acme_webroot, &mut paths.acme_webroot);
    set("letsencrypt", &a.letsencrypt, &mut paths.letsencrypt);
    set("nginx_site_link", &a.nginx_site_link, &mut paths.nginx_site_link);
    set("apt_keyring", &a.apt_keyring, &mut paths.apt_keyring);
    set("apt_source", &a.apt_source, &mut paths.apt_source);
    set("state", &a.state, &mut paths.state);
    set("renewal_cron", &a.renewal_cron, &mut paths.renewal_cron);
    set("renewal_dropin", &a.renewal_dropin, &mut paths.renewal_dropin);
    set("ollama_dropin", &a.ollama_dropin, &mut paths.ollama_dropin);
    set("fail2ban", &a.fail2ban, &mut paths.fail2ban);
    set("lock", &a.lock, &mut paths.lock);
    set("journal", &a.journal, &mut paths.journal);
    set("certbot_work", &a.certbot_work, &mut paths.certbot_work);
    set("certbot_logs", &a.certbot_logs, &mut paths.certbot_logs);
    if let Err(e) = fields::auth_socket(&paths.auth_socket, &paths.auth_cache) {
        p.add("paths.auth_socket", e);
    }
    // apt reads an armored key only from a `.asc` file, a source only from a `.list`.
    for (field, path, extension) in
        [("apt_keyring", &paths.apt_keyring, "asc"), ("apt_source", &paths.apt_source, "list")]
    {
        if path.extension().is_none_or(|e| e != extension) {
            p.add(
                &format!("paths.{field}"),
                format!("{} must end in .{extension}: apt reads no other", path.display()),
            );
        }
    }
    if let Err(e) = fields::unix_socket_path(&paths.caddy_admin) {
        p.add("paths.caddy_admin", e);
    }
    for (field, problem) in distinct_files(&paths) {
        p.add(&format!("paths.{field}"), problem);
    }
    paths
}

/// The files ollama-secure writes, by field: no two may be one file.
fn distinct_files(paths: &Paths) -> Vec<(&'static str, String)> {
    let files = [
        ("nginx_site", &paths.nginx_site),
        ("nginx_site_link", &paths.nginx_site_link),
        ("htpasswd", &paths.htpasswd),
        ("api_keys", &paths.api_keys),
        ("access_log", &paths.access_log),
        ("caddyfile", &paths.caddyfile),
        ("caddy_site", &paths.caddy_site),
        ("caddy_log", &paths.caddy_log),
        ("caddy_admin", &paths.caddy_admin),
        ("state", &paths.state),
        ("renewal_cron", &paths.renewal_cron),
        ("renewal_dropin", &paths.renewal_dropin),
        ("ollama_dropin", &paths.ollama_dropin),
        ("lock", &paths.lock),
        ("journal", &paths.journal),
        ("auth_socket", &paths.auth_socket),
        ("auth_cache", &paths.auth_cache),
        ("apt_keyring", &paths.apt_keyring),
        ("apt_source", &paths.apt_source),
    ];
    let mut problems = Vec::new();
    for (i, (field, path)) in files.iter().enumerate() {
        if let Some((first, _)) = files[..i].iter().find(|(_, other)| other == path) {
            problems.push((*field, format!("{} is also paths.{first}: each file needs its own path", path.display())));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    struct FakeSecrets(HashMap<String, String>);

    impl SecretSource for FakeSecrets {
        fn env(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
        fn read_file(&self, path: &Path) -> io::Result<String> {
            self.0.get(path.to_str().unwrap()).cloned().ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }
    }

    fn load(yaml: &str) -> Result<Config> {
        let secrets = FakeSecrets(HashMap::from([
            ("BOB_PASSWORD".to_string(), "bob's long password, 24ch".to_string()),
            ("/run/secrets/dave".to_string(), "dave's password from a file\n".to_string()),
        ]));
        Config::from_answers(&Answers::from_yaml(yaml, "t.yaml")?, "t.yaml", Os::Debian, &secrets)
    }

    #[test]
    fn defaults_are_filled_in() {
        let c = load("proxy: nginx\nusers: [{username: alice, generate: true}]\n").unwrap();
        assert_eq!(c.settings.site.port, 8080);
        assert_eq!(c.settings.site.upstream.url(), "http://127.0.0.1:11434");
        assert_eq!(c.settings.site.timeout_secs, 600);
        assert_eq!(c.settings.file_group.as_str(), "www-data");
        assert_eq!(c.install, None);
        assert_eq!(c.settings.site.public_url(), "http://127.0.0.1:8080");
    }

    #[test]
    fn upstream_takes_one_address_or_several_ollama_servers_each_once() {
        let base = "proxy: nginx\nusers: [{username: a, generate: true}]\n";
        let site = |yaml: &str| load(&format!("{base}{yaml}")).map(|c| c.settings.site);
        let one = site("upstream: 10.0.0.11:11434\n").unwrap();
        assert_eq!((one.upstream.host_port(), one.other_upstreams.len()), ("10.0.0.11:11434".to_string(), 0));
        assert_eq!(site("upstream: [10.0.0.11:11434]\n").unwrap(), one, "a list of one is the one");
        let three = site("upstream: [10.0.0.11:11434, 'http://10.0.0.12:11434', '[::1]:11435']\n").unwrap();
        let others: Vec<String> = three.other_upstreams.iter().map(|u| u.host_port()).collect();
        assert_eq!(
            (three.upstream.host_port(), others),
            ("10.0.0.11:11434".to_string(), vec!["10.0.0.12:11434".to_string(), "[::1]:11435".to_string()])
        );
        let err = |yaml: &str| site(yaml).unwrap_err().to_string();
        assert!(err("upstream: []\n").contains("upstream: is an empty list"), "{}", err("upstream: []\n"));
        let twice = err("upstream: [10.0.0.11:11434, 10.0.0.12:11434, 'http://10.0.0.11:11434/']\n");
        assert!(twice.contains("upstream[2]: 10.0.0.11:11434 is listed twice"), "{twice}");
        for (entry, at) in [("gpu2.example.com:11434", 1), ("'https://10.0.0.12:11434'", 1)] {
            let text = err(&format!("upstream: [10.0.0.11:11434, {entry}]\n"));
            assert!(
                text.contains(&format!("upstream[{at}]:")) && text.contains("give each as IP:PORT over http"),
                "{entry}: {text}"
            );
        }
        let bad = err("upstream: [10.0.0.11:11434, 'unix:/x', 10.0.0.13:99999]\n");
        assert!(bad.contains("upstream[1]:") && bad.contains("upstream[2]:"), "every bad entry named: {bad}");
        let many: Vec<String> =
            (0..=fields::MAX_UPSTREAMS).map(|i| format!("10.0.{}.{}:11434", i / 200, i % 200 + 1)).collect();
        assert!(err(&format!("upstream: [{}]\n", many.join(", "))).contains("at most 64"));
        assert!(
            err("upstream: {address: 10.0.0.11:11434}\n").contains("an address (host:port) or a list of addresses")
        );
    }

    #[test]
    fn each_of_several_servers_may_have_a_weight_and_a_limit_as_the_proxy_can_express_them() {
        let site = |proxy: &str, list: &str| {
            load(&format!("proxy: {proxy}\nusers: [{{username: a, generate: true}}]\nupstream: {list}\n"))
                .map(|c| c.settings.site)
        };
        let nginx = site("nginx", "[{address: 10.0.0.11:11434, weight: 3, max_conns: 4}, 10.0.0.12:11434]").unwrap();
        assert_eq!(nginx.share(0), Share { weight: Some(3), max_conns: Some(4) });
        assert_eq!(
            (nginx.share(1), nginx.other_upstreams[0].host_port()),
            (Share::default(), "10.0.0.12:11434".into())
        );
        assert_eq!(
            site("nginx", "[10.0.0.11:11434, 10.0.0.12:11434]").unwrap().shares,
            vec![],
            "none given: none kept"
        );
        let err = |proxy: &str, list: &str| site(proxy, list).unwrap_err().to_string();
        let one = err("nginx", "[{address: 10.0.0.11:11434, weight: 2}]");
        assert!(one.contains("upstream[0].weight: applies when there are several Ollama servers"), "{one}");
        let range =
            err("nginx", "[{address: 10.0.0.11:11434, weight: 0}, {address: 10.0.0.12:11434, max_conns: 10001}]");
        assert!(range.contains("upstream[0].weight: 0 is not between 1 and 100"), "{range}");
        assert!(range.contains("upstream[1].max_conns: 10001 is not between 1 and 10000"), "{range}");
        let typo = err("nginx", "[{address: 10.0.0.11:11434, wieght: 2}, 10.0.0.12:11434]");
        assert!(typo.contains("unknown field `wieght`") && typo.contains("max_conns"), "{typo}");
        let caddy = err("caddy", "[{address: 10.0.0.11:11434, weight: 2}, 10.0.0.12:11434]");
        assert!(caddy.contains("upstream[0].weight: Caddy cannot weigh servers"), "{caddy}");
        let uneven = err("caddy", "[{address: 10.0.0.11:11434, max_conns: 2}, 10.0.0.12:11434]");
        assert!(uneven.contains("upstream[1].max_conns: missing: Caddy sets one limit for every server"), "{uneven}");
        let even =
            site("caddy", "[{address: 10.0.0.11:11434, max_conns: 2}, {address: 10.0.0.12:11434, max_conns: 2}]");
        assert_eq!(even.unwrap().share(1).max_conns, Some(2));
    }

    #[test]
    fn sticky_credential_needs_several_servers() {
        let base = "proxy: nginx\nusers: [{username: a, generate: true}]\n";
        let site = |yaml: &str| load(&format!("{base}{yaml}")).map(|c| c.settings.site);
        assert!(site("upstream: [10.0.0.11:11434, 10.0.0.12:11434]\nsticky: credential\n").unwrap().sticky_credential);
        assert!(!site("upstream: [10.0.0.11:11434, 10.0.0.12:11434]\n").unwrap().sticky_credential);
        let one = site("sticky: credential\n").unwrap_err().to_string();
        assert!(one.contains("sticky: needs several Ollama servers"), "{one}");
        let other = site("upstream: [10.0.0.11:11434, 10.0.0.12:11434]\nsticky: ip\n").unwrap_err().to_string();
        assert!(other.contains("the one choice is `credential`"), "{other}");
    }

    #[test]
    fn allow_from_refuses_a_network_listed_twice_by_entry() {
        let base = "proxy: nginx\nusers: [{username: a, generate: true}]\n";
        let err =
            load(&format!("{base}allow_from: [192.0.2.10, 10.0.0.0/8, 192.0.2.10/32]\n")).unwrap_err().to_string();
        assert!(err.contains("allow_from[2]: is allow_from[0] again"), "{err}");
        let ok = load(&format!("{base}allow_from: [192.0.2.10, \"2001:db8::/48\"]\n")).unwrap();
        assert_eq!(ok.settings.site.allow_from.len(), 2);
    }

    #[test]
    fn bans_default_to_fail2bans_own_numbers_and_refuse_what_is_out_of_range() {
        let base = "proxy: nginx\nusers: [{username: a, generate: true}]\n";
        let ban = |yaml: &str| load(&format!("{base}{yaml}")).map(|c| c.settings.site.ban);
        assert_eq!(ban("").unwrap(), None);
        assert_eq!(ban("ban: {}\n").unwrap(), Some(Ban { after: 10, within_secs: 600, for_secs: 3600 }));
        assert_eq!(
            ban("ban: {after: 3, within: 90s, for: 7d}\n").unwrap(),
            Some(Ban { after: 3, within_secs: 90, for_secs: 604_800 })
        );
        for (yaml, field) in [
            ("ban: {after: 0}", "ban.after"),
            ("ban: {after: 1001}", "ban.after"),
            ("ban: {within: 25h}", "ban.within"),
            ("ban: {within: 0s}", "ban.within"),
            ("ban: {for: 400d}", "ban.for"),
            ("ban: {for: forever}", "ban.for"),
            ("ban: {for: \"1h; }\"}", "ban.for"),
            ("ban: {bantime: 1h}", "bantime"),
        ] {
            let err = ban(&format!("{yaml}\n")).unwrap_err().to_string();
            assert!(err.contains(field), "{yaml}: {err}");
        }
    }

    #[test]
    fn https_for_localhost_is_refused_before_anything_is_written() {
        for name in ["localhost", "ollama.localhost", "LOCALHOST"] {
            let yaml = format!(
                "proxy: nginx\ndomain: {name}\nhttps: {{enabled: true}}\nusers: [{{username: a, generate: true}}]\n"
            );
            let err = load(&yaml).unwrap_err().to_string();
            assert!(err.contains("domain: ") && err.contains("cannot get a certificate"), "{name}: {err}");
        }
        // Without https, localhost is a fine name.
        assert!(load("proxy: nginx\ndomain: localhost\nusers: [{username: a, generate: true}]\n").is_ok());
    }

    #[test]
    fn https_defaults_to_443_and_needs_a_name() {
        let c = load("proxy: caddy\ndomain: ollama.example.com\nhttps: {enabled: true}\nusers: [{username: a, generate: true}]\n").unwrap();
        assert_eq!((c.settings.site.port, c.settings.site.https.as_ref().unwrap().http_port), (443, 80));
        assert_eq!(c.settings.site.public_url(), "https://ollama.example.com");

        let err = load("proxy: caddy\nhttps: {enabled: true}\nusers: [{username: a, generate: true}]\n").unwrap_err();
        assert!(err.to_string().contains("https.enabled: needs a domain"), "{err}");
        let err =
            load("proxy: caddy\ndomain: 192.0.2.1\nhttps: {enabled: true}\nusers: [{username: a, generate: true}]\n")
                .unwrap_err();
        assert!(err.to_string().contains("t.yaml:2:9: domain: must be a host name"), "{err}");
    }

    #[test]
    fn password_sources_resolve() {
        let c = load(
            "proxy: nginx\nusers:\n  - {username: bob, password_env: BOB_PASSWORD}\n  - {username: dave, password_file: /run/secrets/dave}\n",
        )
        .unwrap();
        assert_eq!(c.users[0].password, PasswordSource::Given(Secret::new("bob's long password, 24ch")));
        assert_eq!(c.users[1].password, PasswordSource::Given(Secret::new("dave's password from a file")));
    }

    #[test]
    fn every_problem_is_reported_with_file_and_field() {
        let err = load(
            "proxy: apache\ndomain: \"a.com; }\"\nport: 0\nusers:\n  - {username: \"bo:b\", password: x}\n  - {username: carol}\n  - {username: erin, password_env: NOPE}\n  - {username: frank, password: a, generate: true}\n",
        )
        .unwrap_err();
        let m = &err.to_string();
        for expected in [
            "t.yaml:1:8: proxy: \"apache\" is not supported",
            "t.yaml:2:9: domain: ",
            "t.yaml:3:7: port: 0 is not a TCP port: use a number from 1 to 65535\n 3 | port: 0\n   |       ^",
            "t.yaml:5:16: users[0].username: \"bo:b\" contains ':'",
            "t.yaml:6:5: users[1]: give exactly one of",
            "t.yaml:7:36: users[2].password_env: the environment variable NOPE is not set",
            "t.yaml:8:5: users[3]: give exactly one of",
        ] {
            assert!(m.contains(expected), "missing {expected:?} in:\n{m}");
        }
        assert_eq!(err.exit_code(), crate::error::exit::INPUT);
    }

    #[test]
    fn duplicate_users_and_short_passwords() {
        let err =
            load("proxy: nginx\nusers: [{username: a, generate: true}, {username: a, generate: true}]\n").unwrap_err();
        assert!(err.to_string().contains("users[1].username: \"a\" appears twice"), "{err}");
        let c = load("proxy: nginx\nusers: [{username: a, password: short}]\n").unwrap();
        assert!(c.warnings.iter().any(|w| w.text.contains("5 characters")), "{:?}", c.warnings);
        assert!(!c.warnings.iter().any(|w| w.text.contains("short")), "the password leaked into a warning");
    }

    #[test]
    fn wizard_defaults_judge_only_what_they_give() {
        let check =
            |yaml: &str| check_wizard_defaults(&Answers::from_yaml(yaml, "d.yaml").unwrap(), "d.yaml", Os::Debian);
        // Nothing the wizard asks is required, and HTTPS may wait for the domain question.
        check("bcrypt_cost: 6\ntimeout: 5m\n").unwrap();
        check("https: {enabled: true, email: ops@example.com}\n").unwrap();
        let err = check("users: [{username: a, generate: true}]\n").unwrap_err();
        assert!(err.to_string().starts_with("d.yaml:1:8: users: the wizard asks"), "{err}");
        let err = check("proxy: apache\nlisten_address: \"0.0.0.0; x\"\npaths: {htpasswd: relative}\n").unwrap_err();
        for field in ["d.yaml:1:8: proxy:", "d.yaml:2:17: listen_address:", "d.yaml:3:19: paths.htpasswd:"] {
            assert!(err.to_string().contains(field), "{field} missing in {err}");
        }
    }

    #[test]
    fn paths_are_validated_and_overridable() {
        let c = load("proxy: nginx\nusers: [{username: a, generate: true}]\npaths: {htpasswd: /tmp/x/h, nginx_site_link: /tmp/x/l}\n").unwrap();
        assert_eq!(c.settings.paths.htpasswd, PathBuf::from("/tmp/x/h"));
        assert_eq!(c.settings.paths.nginx_site_link, PathBuf::from("/tmp/x/l"));
        let err = load("proxy: nginx\nusers: [{username: a, generate: true}]\npaths: {htpasswd: \"/tmp/x;h\"}\n")
            .unwrap_err();
        assert!(err.to_string().contains("paths.htpasswd"), "{err}");
    }

    #[test]
    fn warnings_after_the_wizard_use_its_words() {
        let c = load(
            "proxy: nginx\nlisten_address: 127.0.0.1\nupstream: localhost:11434\nusers: [{username: a, password: short}]\n",
        )
        .unwrap();
        let texts: Vec<&str> = c.warnings.iter().map(|w| w.text.as_str()).collect();
        let wizard: Vec<&str> = c.warnings.iter().filter_map(|w| w.wizard_text()).collect();
        assert!(texts.iter().any(|t| t.starts_with("users[0]: the password for a has 5 characters")), "{texts:?}");
        assert!(
            texts.iter().any(|t| t.starts_with("upstream: using 127.0.0.1:11434 instead of localhost")),
            "{texts:?}"
        );
        // The wizard said the short password when it was typed; its user
        // never saw the keys `users[0]` or `upstream`.
        assert_eq!(
            wizard,
            vec![
                "Ollama's address: using 127.0.0.1:11434 instead of localhost: proxies may try ::1 first, where Ollama does not listen by default"
            ]
        );
    }
}
