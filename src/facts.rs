//! What the system looks like now: the one place that probes it before a plan
//! is made (read-only). The plan is computed from these facts, so `--dry-run`
//! and apply see the same thing.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::{Config, Proxy};
use crate::paths::Paths;
use crate::sockets::{self, Owner};
use crate::state::State;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    Apt,
    Brew,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    Missing,
    File {
        content: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        target: PathBuf,
    },
    /// A directory or something else we must not replace.
    Other,
}

/// A process already listening on a port we want.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortUse {
    pub port: u16,
    pub address: std::net::IpAddr,
    pub owner: Option<Owner>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OllamaProbe {
    Answers {
        version: String,
    },
    /// Something answered, but not like Ollama (status or body).
    Unexpected(String),
    NotReachable(String),
    NotProbed,
}

/// The auth-only server's unix socket (nginx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketState {
    Missing,
    /// Something accepts connections on it.
    Listening,
    /// A socket file nobody listens on: left by an nginx that did not exit
    /// cleanly. nginx refuses to start while it is there.
    Stale,
    /// A file that is not a socket: nginx could not bind there.
    NotASocket,
}

/// What the running proxy answers at our site to a request without
/// credentials, connected to this machine whatever DNS says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteAnswer {
    /// 401 with a Basic challenge: the site is served and protected.
    AsksForCredentials,
    /// Any other answer (500 when the auth-only server is unreachable, 200
    /// when something unprotected answers).
    Status(u16),
    Unreachable(String),
    /// The proxy is not running, or nothing was asked.
    NotProbed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub is_root: bool,
    /// PID 1 is systemd (`/run/systemd/system` exists, as sd_booted(3) checks).
    pub systemd: bool,
    pub package_manager: Option<PackageManager>,
    pub proxy_installed: bool,
    pub certbot_installed: bool,
    /// Debian's certbot package schedules renewals from cron without systemd.
    pub certbot_cron: bool,
    pub proxy_running: bool,
    /// Enabled at boot (systemd only).
    pub service_enabled: bool,
    pub files: BTreeMap<PathBuf, Existing>,
    /// nginx only: what else nginx loads sites from, other than our link:
    /// the entries of the folder our site is enabled in and of `conf.d`
    /// beside nginx.conf (Debian's nginx.conf includes both), sorted.
    pub other_nginx_sites: Vec<PathBuf>,
    /// Group name → gid, for the groups files are given to.
    pub groups: BTreeMap<String, u32>,
    pub port_uses: Vec<PortUse>,
    pub ollama: OllamaProbe,
    /// nginx only: the auth-only server's socket.
    pub auth_socket: SocketState,
    /// What the running proxy answers at our site (see `SiteProbe`).
    pub site: SiteAnswer,
    /// UTC time as `YYYYMMDDTHHMMSSZ`, for backup names.
    pub stamp: String,
}

impl Facts {
    pub fn file(&self, path: &Path) -> &Existing {
        self.files.get(path).unwrap_or(&Existing::Missing)
    }

    /// A system where nothing exists yet: what `render --out` plans against.
    pub fn empty(stamp: &str) -> Facts {
        Facts {
            is_root: true,
            systemd: false,
            package_manager: None,
            proxy_installed: true,
            certbot_installed: true,
            certbot_cron: false,
            proxy_running: false,
            service_enabled: false,
            files: BTreeMap::from([(PathBuf::from("/"), Existing::Other)]),
            other_nginx_sites: Vec::new(),
            groups: BTreeMap::new(),
            port_uses: Vec::new(),
            ollama: OllamaProbe::NotProbed,
            auth_socket: SocketState::Missing,
            site: SiteAnswer::NotProbed,
            stamp: stamp.to_string(),
        }
    }
}

pub fn stamp(now: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(now).to_string(); // 2026-11-30T17:52:00Z
    text.replace(['-', ':'], "")
}

pub fn read_existing(path: &Path) -> Existing {
    let Ok(meta) = fs::symlink_metadata(path) else { return Existing::Missing };
    if meta.file_type().is_symlink() {
        return fs::read_link(path).map(|target| Existing::Symlink { target }).unwrap_or(Existing::Other);
    }
    if !meta.is_file() {
        return Existing::Other;
    }
    match fs::read(path) {
        Ok(content) => Existing::File { content, mode: meta.mode() & 0o7777, uid: meta.uid(), gid: meta.gid() },
        Err(_) => Existing::Other,
    }
}

/// Every path the plan for `config` may read or replace, with all their
/// parent folders (so the plan knows which folders it creates).
pub fn paths_of_interest(config: &Config) -> Vec<PathBuf> {
    let p = &config.paths;
    let mut paths = match config.proxy {
        Proxy::Nginx => vec![p.htpasswd.clone(), p.nginx_site.clone(), p.nginx_site_link.clone(), p.nginx_conf.clone()],
        Proxy::Caddy => vec![p.caddy_site.clone(), p.caddyfile.clone()],
    };
    paths.push(p.state.clone());
    if config.https.is_some() {
        paths.push(p.acme_webroot.clone());
        if let Some((cert, key)) = crate::render::certificate_paths(config) {
            paths.extend([cert, key]);
        }
    }
    let ancestors: Vec<PathBuf> =
        paths.iter().flat_map(|x| x.ancestors().skip(1).map(Path::to_path_buf).collect::<Vec<_>>()).collect();
    paths.extend(ancestors);
    paths.sort();
    paths.dedup();
    paths
}

/// The recorded state, if the state file exists and parses.
pub fn state(paths: &Paths, facts: &Facts) -> crate::error::Result<Option<State>> {
    match facts.file(&paths.state) {
        Existing::File { content, .. } => State::parse(&String::from_utf8_lossy(content), &paths.state).map(Some),
        _ => Ok(None),
    }
}

/// A timestamp for backup names that no existing file uses yet.
fn unique_stamp(now: SystemTime, paths: &[PathBuf]) -> String {
    let base = stamp(now);
    (0..)
        .map(|n| if n == 0 { base.clone() } else { format!("{base}-{n}") })
        .find(|candidate| paths.iter().all(|p| fs::symlink_metadata(crate::plan::backup_path(p, candidate)).is_err()))
        .expect("some suffix is free")
}

fn systemctl_ok(args: &[&str]) -> bool {
    duct::cmd("systemctl", args).stdout_null().stderr_null().unchecked().run().is_ok_and(|o| o.status.success())
}

pub fn read_pid(pid_file: &Path) -> Option<u32> {
    fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

/// The process is gone, or a zombie that only waits to be reaped.
pub fn process_gone(pid: u32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"));
    // The state letter follows the name, which may itself contain ')'.
    stat.map_or(true, |s| s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
}

fn pid_alive(pid_file: &Path, name: &str) -> bool {
    read_pid(pid_file).is_some_and(|pid| {
        !process_gone(pid) && fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == name)
    })
}

pub fn probe_ollama(base_url: &str, timeout: Duration) -> OllamaProbe {
    let client = match reqwest::blocking::Client::builder().timeout(timeout).build() {
        Ok(c) => c,
        Err(e) => return OllamaProbe::NotReachable(e.to_string()),
    };
    match client.get(format!("{base_url}/api/version")).send() {
        Ok(resp) if resp.status().is_success() => match resp.json::<serde_json::Value>() {
            Ok(v) => match v.get("version").and_then(|v| v.as_str()) {
                Some(version) => OllamaProbe::Answers { version: version.to_string() },
                None => OllamaProbe::Unexpected("no version in its answer to /api/version".into()),
            },
            Err(_) => OllamaProbe::Unexpected("its answer to /api/version is not JSON".into()),
        },
        Ok(resp) => OllamaProbe::Unexpected(format!("/api/version answered {}", resp.status())),
        Err(e) => OllamaProbe::NotReachable(crate::check::describe_request_error(&e)),
    }
}

/// What to look at; `probe` fills it from a config, `probe_installed`
/// from paths alone (uninstall, users).
pub struct Probe<'a> {
    pub proxy: Proxy,
    pub paths: &'a Paths,
    pub interest: Vec<PathBuf>,
    pub ports: Vec<u16>,
    pub groups: Vec<String>,
    /// Ollama's URL, to see whether it answers.
    pub upstream: Option<String>,
    /// Where our site is served, to ask the running proxy.
    pub site: Option<SiteProbe>,
}

/// Our site's public URL and the local address that serves it.
pub struct SiteProbe {
    pub url: String,
    pub connect: std::net::IpAddr,
}

pub fn probe(config: &Config) -> Facts {
    let mut ports = vec![config.port];
    ports.extend(config.https.as_ref().map(|h| h.http_port));
    run_probe(Probe {
        proxy: config.proxy,
        paths: &config.paths,
        interest: paths_of_interest(config),
        ports,
        groups: vec![config.file_group.clone()],
        upstream: Some(config.upstream.url()),
        site: Some(SiteProbe { url: config.public_url(), connect: crate::plan::local_address(config) }),
    })
}

/// Facts about an installed setup: the proxy, the state file and every
/// path it mentions, and, when the state says where, what the site answers.
pub fn probe_installed(proxy: Proxy, paths: &Paths, state: &State) -> Facts {
    let interest = match proxy {
        Proxy::Nginx => {
            vec![
                paths.htpasswd.clone(),
                paths.nginx_site.clone(),
                paths.nginx_site_link.clone(),
                paths.auth_cache.clone(),
            ]
        }
        Proxy::Caddy => vec![paths.caddy_site.clone(), paths.caddyfile.clone()],
    };
    let site = match (&state.url, state.connect) {
        (Some(url), Some(connect)) => Some(SiteProbe { url: url.clone(), connect }),
        _ => None,
    };
    run_probe(Probe { proxy, paths, interest, ports: Vec::new(), groups: Vec::new(), upstream: None, site })
}

pub fn run_probe(probe: Probe) -> Facts {
    let proxy = probe.proxy.name();
    let systemd = Path::new("/run/systemd/system").is_dir();
    let package_manager = if which::which("apt-get").is_ok() {
        Some(PackageManager::Apt)
    } else if which::which("brew").is_ok() {
        Some(PackageManager::Brew)
    } else {
        None
    };
    let proxy_running = if systemd {
        systemctl_ok(&["is-active", "--quiet", proxy])
    } else {
        let pid_file = match probe.proxy {
            Proxy::Nginx => &probe.paths.nginx_pid,
            Proxy::Caddy => &probe.paths.caddy_pid,
        };
        pid_alive(pid_file, proxy)
    };
    let mut interest = probe.interest;
    interest.push(probe.paths.state.clone());
    // Everything the state file mentions, for uninstall and for keeping records.
    if let Existing::File { content, .. } = read_existing(&probe.paths.state)
        && let Ok(state) = State::parse(&String::from_utf8_lossy(&content), &probe.paths.state)
    {
        interest.extend(state.paths());
    }
    let files = interest.iter().map(|p| (p.clone(), read_existing(p))).collect();
    let groups = probe
        .groups
        .iter()
        .map(String::as_str)
        .chain(["root"])
        .filter_map(|g| nix::unistd::Group::from_name(g).ok().flatten().map(|grp| (g.to_string(), grp.gid.as_raw())))
        .collect();
    let port_uses = sockets::listeners()
        .into_iter()
        .filter(|l| probe.ports.contains(&l.port))
        .map(|l| PortUse { port: l.port, address: l.address, owner: sockets::owner(l.inode) })
        .collect();
    let site = match probe.site {
        Some(site) if proxy_running => match crate::check::unauthenticated_answer(&site.url, Some(site.connect)) {
            Ok(answer) if answer.asks_for_basic() => SiteAnswer::AsksForCredentials,
            Ok(answer) => SiteAnswer::Status(answer.status),
            Err(why) => SiteAnswer::Unreachable(why),
        },
        _ => SiteAnswer::NotProbed,
    };
    Facts {
        is_root: nix::unistd::geteuid().is_root(),
        systemd,
        package_manager,
        proxy_installed: which::which(proxy).is_ok(),
        certbot_installed: which::which("certbot").is_ok(),
        certbot_cron: Path::new("/etc/cron.d/certbot").is_file(),
        proxy_running,
        service_enabled: systemd && systemctl_ok(&["is-enabled", "--quiet", proxy]),
        files,
        other_nginx_sites: match probe.proxy {
            Proxy::Nginx => other_nginx_sites(probe.paths),
            Proxy::Caddy => Vec::new(),
        },
        groups,
        port_uses,
        ollama: probe.upstream.map_or(OllamaProbe::NotProbed, |url| probe_ollama(&url, Duration::from_secs(3))),
        auth_socket: match probe.proxy {
            Proxy::Nginx => socket_state(&probe.paths.auth_socket),
            Proxy::Caddy => SocketState::Missing,
        },
        site,
        stamp: unique_stamp(SystemTime::now(), &interest),
    }
}

/// Whether anything listens on the unix socket at `path`.
pub fn socket_state(path: &Path) -> SocketState {
    use std::os::unix::fs::FileTypeExt;
    match fs::symlink_metadata(path) {
        Err(_) => SocketState::Missing,
        Ok(meta) if !meta.file_type().is_socket() => SocketState::NotASocket,
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => SocketState::Listening,
            Err(_) => SocketState::Stale,
        },
    }
}

fn other_nginx_sites(paths: &Paths) -> Vec<PathBuf> {
    let conf_d = paths.nginx_conf.parent().map(|d| d.join("conf.d"));
    let dirs = [paths.nginx_site_link.parent(), conf_d.as_deref()];
    let mut sites: Vec<PathBuf> = dirs
        .into_iter()
        .flatten()
        .filter_map(|dir| fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|path| *path != paths.nginx_site_link)
        .collect();
    sites.sort();
    sites.dedup();
    sites
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_compact_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_061_120);
        assert_eq!(stamp(t), "20261130T175200Z");
    }
}
