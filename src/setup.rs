//! The desired state: one model of the whole setup. `init` builds it from
//! validated answers and the users already installed; `users` changes its
//! users; the state file records its settings; rendering, planning and
//! uninstalling all start from it. Pure.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::access::{Access, ApiKey, KeyRecord, Role};
use crate::config::{Config, KeySource, KeySpec, PasswordSource};
use crate::credentials::{self, Entropy};
use crate::error::Result;
use crate::fields::{self, AcmeUrl, Email, GroupName, Host, Upstream, Username};
use crate::paths::Paths;
use crate::proxy::ProxyKind;
use crate::secret::Secret;
use crate::userfile::Users;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Https {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_directory: Option<AcmeUrl>,
    /// A PEM file with the root of a private ACME server (pebble in tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_ca_root: Option<PathBuf>,
    /// Port of the plain-HTTP server: ACME challenges and the redirect.
    pub http_port: u16,
}

/// Where and how the site is served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// `None`: answer on any host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Host>,
    /// `None`: all addresses (IPv4 and IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<IpAddr>,
    pub port: u16,
    /// Client addresses that may even try a password; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_from: Vec<crate::fields::Network>,
    /// Browser origins whose pages may call the API; empty: no CORS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cors_origins: Vec<crate::fields::Origin>,
    /// Where Ollama listens; with several servers, the first of them.
    pub upstream: Upstream,
    /// The other Ollama servers, when the proxy balances over several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_upstreams: Vec<Upstream>,
    /// With several: each credential's requests go to one server while it
    /// is up (`sticky: credential`), instead of the least busy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sticky_credential: bool,
    /// With several: each server's share, in order (`upstream` first);
    /// empty when none has a `weight` or `max_conns`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<Share>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https: Option<Https>,
    pub timeout_secs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban: Option<Ban>,
}

/// How the proxy shares requests with one of several Ollama servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share {
    /// Its share against the others' (nginx's `weight`; none: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// At most this many requests at once (none: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_conns: Option<u32>,
}

impl Site {
    /// Every Ollama server, `upstream` first.
    pub fn upstreams(&self) -> impl Iterator<Item = &Upstream> {
        std::iter::once(&self.upstream).chain(&self.other_upstreams)
    }

    /// The `i`th server's share (`upstream` is 0).
    pub fn share(&self, i: usize) -> Share {
        self.shares.get(i).copied().unwrap_or_default()
    }
}

/// fail2ban bans an address after `after` failed logins within
/// `within_secs`, for `for_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ban {
    pub after: u32,
    pub within_secs: u64,
    pub for_secs: u64,
}

impl Site {
    /// The URL clients use, for messages and the check at the end.
    pub fn public_url(&self) -> String {
        let scheme = if self.https.is_some() { "https" } else { "http" };
        let host = match (&self.domain, self.listen_address) {
            (Some(domain), _) => domain.url_form(),
            (None, Some(addr)) if !addr.is_unspecified() => Host::Ip(addr).url_form(),
            (None, _) => "127.0.0.1".to_string(),
        };
        let default_port = if self.https.is_some() { 443 } else { 80 };
        if self.port == default_port {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{}", self.port)
        }
    }

    /// Whether `allow_from` lets a client at `ip` even try a password.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_from.is_empty() || self.allow_from.iter().any(|network| network.contains(ip))
    }

    /// The address on this machine that serves the site (checks from here).
    pub fn local_address(&self) -> IpAddr {
        match self.listen_address {
            Some(addr) if !addr.is_unspecified() => addr,
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

/// bcrypt cost for new hashes. Generated passwords carry 142 bits of entropy,
/// so a low cost loses nothing and keeps nginx's per-request check cheap;
/// passwords people choose need the slower hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<u32>,
}

impl CostPolicy {
    pub const GENERATED_DEFAULT: u32 = 5;
    pub const CHOSEN_DEFAULT: u32 = 12;

    pub fn for_generated(self) -> u32 {
        self.fixed.unwrap_or(Self::GENERATED_DEFAULT)
    }

    pub fn for_chosen(self) -> u32 {
        self.fixed.unwrap_or(Self::CHOSEN_DEFAULT)
    }
}

/// Everything about the setup except its users: what the state file
/// records, so that `users` can render the same site again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub proxy: ProxyKind,
    pub site: Site,
    /// Group that owns the password-bearing files (the proxy's worker user).
    pub file_group: GroupName,
    pub cost: CostPolicy,
    pub paths: Paths,
}

/// The desired state: settings, users, API keys, and who may do what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    pub settings: Settings,
    pub users: Users,
    /// The keys' lines (ID and hash), in the proxy's keys format.
    pub keys: Users,
    pub access: Access,
}

impl Setup {
    pub fn proxy(&self) -> &'static dyn crate::proxy::Proxy {
        self.settings.proxy.module()
    }
}

/// What is installed already: the users and keys files as read, and the
/// roles and key records of the state file.
#[derive(Debug, Default)]
pub struct Installed {
    pub users: Option<Users>,
    pub keys: Option<Users>,
    pub access: Access,
    /// The users file was installed by a version without roles, when every
    /// user could manage models.
    pub before_roles: bool,
}

impl Installed {
    /// What the facts show of `proxy`'s users and keys files and the state file.
    pub fn from_facts(proxy: crate::proxy::ProxyKind, paths: &Paths, facts: &crate::facts::Facts) -> Result<Installed> {
        let module = proxy.module();
        let read = |path: &std::path::Path, format| match facts.file(path) {
            crate::system::Existing::File { content, .. } => {
                Users::parse(&String::from_utf8_lossy(content), format, &path.display().to_string())
            }
            _ => Ok(None),
        };
        let users = read(module.users_file(paths), module.users_format())?;
        let keys = read(module.keys_file(paths), module.keys_format())?;
        let state = facts.state(paths)?;
        let before_roles = users.is_some() && state.as_ref().is_some_and(|s| s.access.is_none());
        let access = state.and_then(|s| s.access).unwrap_or_default();
        Ok(Installed { users, keys, access, before_roles })
    }
}

/// What building the setup from answers decided about the credentials.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Passwords generated now: shown once, never stored.
    pub generated: Vec<(Username, Secret)>,
    /// Keys generated now (name, key): shown once, never stored.
    pub generated_keys: Vec<(Username, ApiKey)>,
    /// Installed users the answers do not list: kept, and named.
    pub kept: Vec<Username>,
    /// Installed keys the answers do not list: kept, and named.
    pub kept_keys: Vec<Username>,
    /// Users installed before roles existed (who could do all) that now
    /// have the user role.
    pub narrowed: Vec<Username>,
    /// Every answered user's hash, for `--save-answers`.
    pub hashes: Vec<(Username, String)>,
    /// Every answered key's line (`ID:BCRYPT`), for `--save-answers`.
    pub key_hashes: Vec<(Username, String)>,
}

/// The setup the answers ask for, on a system where `installed` is. Users
/// and keys the answers leave out stay (they were added with `users` or
/// `keys`, or by hand); an installed hash is kept when it still matches,
/// so that running init again changes nothing. `now` dates new keys.
pub fn from_config(
    config: &Config,
    installed: Installed,
    now: &str,
    entropy: &mut dyn Entropy,
) -> Result<(Setup, Resolution)> {
    let proxy = config.settings.proxy.module();
    let mut users = installed.users.unwrap_or_else(|| Users::new(proxy.users_format()));
    let mut access = installed.access;
    let mut resolution = Resolution::default();
    for spec in &config.users {
        let existing = users.get(&spec.username).map(|e| e.hash.clone());
        let hash = match (&spec.password, existing) {
            (PasswordSource::Hash(hash), _) => hash.clone(),
            // `generate` means "make sure this user has a generated password":
            // an existing user keeps theirs (rotation is `users rotate`).
            (PasswordSource::Generate, Some(hash)) => hash,
            (PasswordSource::Generate, None) => {
                let password = credentials::generate_password(entropy);
                let hash = credentials::hash_password(&password, config.settings.cost.for_generated(), entropy)?;
                resolution.generated.push((spec.username.clone(), password));
                hash
            }
            (PasswordSource::Given(password), existing) => {
                let cost = config.settings.cost.for_chosen();
                match existing {
                    Some(hash)
                        if fields::bcrypt_cost_of(&hash) == Some(cost) && credentials::verify(password, &hash) =>
                    {
                        hash
                    }
                    _ => credentials::hash_password(password, cost, entropy)?,
                }
            }
        };
        if installed.before_roles && spec.role == Role::User && users.get(&spec.username).is_some() {
            resolution.narrowed.push(spec.username.clone());
        }
        users.set(&spec.username, &hash);
        access.roles.insert(spec.username.clone(), spec.role);
        resolution.hashes.push((spec.username.clone(), hash));
    }
    resolution.kept = users
        .entries()
        .filter(|e| !config.users.iter().any(|u| u.username == e.username))
        .map(|e| e.username.clone())
        .collect();
    if installed.before_roles {
        resolution.narrowed.extend(resolution.kept.iter().cloned());
    }
    // Roles of users that are gone (removed by hand) go with them.
    access.roles.retain(|name, _| users.get(name).is_some());
    let mut keys = installed.keys.unwrap_or_else(|| Users::new(proxy.keys_format()));
    for spec in &config.keys {
        resolve_key(spec, &mut keys, &mut access, now, config.settings.cost.for_generated(), entropy, &mut resolution)?;
    }
    resolution.kept_keys =
        access.keys.iter().filter(|k| !config.keys.iter().any(|s| s.name == k.name)).map(|k| k.name.clone()).collect();
    Ok((Setup { settings: config.settings.clone(), users, keys, access }, resolution))
}

/// Gives the key called `spec.name` what the answers say: its line in the
/// keys file and its record. A key the answers give again (or ask to be
/// generated, when one exists) keeps its line and date.
fn resolve_key(
    spec: &KeySpec,
    keys: &mut Users,
    access: &mut Access,
    now: &str,
    cost: u32,
    entropy: &mut dyn Entropy,
    resolution: &mut Resolution,
) -> Result<()> {
    let recorded = access.key(&spec.name).cloned();
    let installed_hash = |id: &Username| keys.get(id).map(|e| e.hash.clone());
    let (id, hash) = match (&spec.key, &recorded) {
        (KeySource::Generate, Some(record)) if installed_hash(&record.id).is_some() => {
            (record.id.clone(), installed_hash(&record.id).expect("checked"))
        }
        (KeySource::Generate, _) => {
            let key = ApiKey::generate(entropy);
            let hash = credentials::hash_password(&key.secret, cost, entropy)?;
            resolution.generated_keys.push((spec.name.clone(), key.clone()));
            (key.id, hash)
        }
        (KeySource::Given(key), _) => match installed_hash(&key.id) {
            Some(hash) if credentials::verify(&key.secret, &hash) => (key.id.clone(), hash),
            _ => (key.id.clone(), credentials::hash_password(&key.secret, cost, entropy)?),
        },
        (KeySource::Hash { id, hash }, _) => (id.clone(), hash.clone()),
    };
    if let Some(record) = &recorded
        && record.id != id
    {
        keys.remove(&record.id);
    }
    if let Some(other) = access.key_by_id(&id)
        && other.name != spec.name
    {
        return Err(crate::error::Error::input(format!(
            "api_keys: the key given for {} is already installed as {}; give each key once",
            spec.name, other.name
        )));
    }
    keys.set(&id, &hash);
    let created = match &recorded {
        Some(record) if record.id == id => record.created.clone(),
        _ => now.to_string(),
    };
    access.set_key(KeyRecord { name: spec.name.clone(), id: id.clone(), role: spec.role, created });
    resolution.key_hashes.push((spec.name.clone(), format!("{id}:{hash}")));
    Ok(())
}
