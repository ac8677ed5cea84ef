//! What the system looks like now: the one place that probes it before a plan
//! is made (read-only). The plan is computed from these facts, so `--dry-run`
//! and apply see the same thing.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::{Config, Proxy};
use crate::sockets::{self, Owner};

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub is_root: bool,
    /// PID 1 is systemd (`/run/systemd/system` exists, as sd_booted(3) checks).
    pub systemd: bool,
    pub package_manager: Option<PackageManager>,
    pub proxy_installed: bool,
    pub proxy_running: bool,
    /// Enabled at boot (systemd only).
    pub service_enabled: bool,
    pub files: BTreeMap<PathBuf, Existing>,
    /// Group name → gid, for the groups files are given to.
    pub groups: BTreeMap<String, u32>,
    pub port_uses: Vec<PortUse>,
    pub ollama: OllamaProbe,
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
            proxy_running: false,
            service_enabled: false,
            files: BTreeMap::new(),
            groups: BTreeMap::new(),
            port_uses: Vec::new(),
            ollama: OllamaProbe::NotProbed,
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

/// Every path the plan for `config` may read or replace.
pub fn paths_of_interest(config: &Config) -> Vec<PathBuf> {
    let p = &config.paths;
    let mut paths = match config.proxy {
        Proxy::Nginx => vec![p.htpasswd.clone(), p.nginx_site.clone(), p.nginx_site_link.clone(), p.nginx_conf.clone()],
        Proxy::Caddy => vec![p.caddy_site.clone(), p.caddyfile.clone()],
    };
    let parents: Vec<PathBuf> = paths.iter().filter_map(|x| x.parent().map(Path::to_path_buf)).collect();
    paths.extend(parents);
    if config.https.is_some() {
        paths.push(p.acme_webroot.clone());
        if let Some((cert, key)) = crate::render::certificate_paths(config) {
            paths.extend([cert, key]);
        }
    }
    paths
}

fn systemctl_ok(args: &[&str]) -> bool {
    duct::cmd("systemctl", args).stdout_null().stderr_null().unchecked().run().is_ok_and(|o| o.status.success())
}

fn pid_alive(pid_file: &Path, name: &str) -> bool {
    let Ok(text) = fs::read_to_string(pid_file) else { return false };
    let Ok(pid) = text.trim().parse::<u32>() else { return false };
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == name)
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

pub fn probe(config: &Config) -> Facts {
    let proxy = config.proxy.name();
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
        let pid_file = match config.proxy {
            Proxy::Nginx => &config.paths.nginx_pid,
            Proxy::Caddy => &config.paths.caddy_pid,
        };
        pid_alive(pid_file, proxy)
    };
    let files = paths_of_interest(config).into_iter().map(|p| (p.clone(), read_existing(&p))).collect();
    let groups = [config.file_group.as_str(), "root"]
        .iter()
        .filter_map(|g| nix::unistd::Group::from_name(g).ok().flatten().map(|grp| (g.to_string(), grp.gid.as_raw())))
        .collect();
    let mut ports = vec![config.port];
    ports.extend(config.https.as_ref().map(|h| h.http_port));
    let port_uses = sockets::listeners()
        .into_iter()
        .filter(|l| ports.contains(&l.port))
        .map(|l| PortUse { port: l.port, address: l.address, owner: sockets::owner(l.inode) })
        .collect();
    Facts {
        is_root: nix::unistd::geteuid().is_root(),
        systemd,
        package_manager,
        proxy_installed: which::which(proxy).is_ok(),
        proxy_running,
        service_enabled: systemd && systemctl_ok(&["is-enabled", "--quiet", proxy]),
        files,
        groups,
        port_uses,
        ollama: probe_ollama(&config.upstream.url(), Duration::from_secs(3)),
        stamp: stamp(SystemTime::now()),
    }
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
