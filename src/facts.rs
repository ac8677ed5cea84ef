//! What the system looks like now: the one place that asks it before a
//! plan is made (read-only, through `System`). The plan is computed from
//! these facts, so `--dry-run` and apply see the same thing.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::paths::Paths;
use crate::plan::Command;
use crate::proxy::{PackageSource, ProxyKind};
use crate::setup::Settings;
use crate::state::State;
use crate::system::{Existing, Filesystem, HttpReply, HttpRequest, Owner, SocketState, System, Trust};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    Apt,
    Brew,
}

/// A process already listening on a port we want.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortUse {
    pub port: u16,
    pub address: IpAddr,
    pub owner: Option<Owner>,
}

/// Why `port` cannot be given to `proxy` now: a listener there that is
/// not `proxy` (with root every owner is seen; without it, one that
/// cannot be seen may be the proxy itself, so it is not held against it).
/// The same rule as the plan's, asked for one port while the wizard asks.
pub fn port_taken(system: &dyn System, port: u16, proxy: &str) -> Option<String> {
    let is_root = system.is_root();
    system.tcp_listeners().into_iter().filter(|l| l.port == port).find_map(|l| match system.socket_owner(l.inode) {
        Some(owner) if owner.name == proxy => None,
        Some(owner) => Some(format!("port {port} is in use by {} (pid {}) on {}", owner.name, owner.pid, l.address)),
        None if is_root => Some(format!("port {port} is in use on {} by a process that cannot be seen", l.address)),
        None => None,
    })
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

impl SiteAnswer {
    pub fn of(reply: &Result<HttpReply, String>) -> SiteAnswer {
        match reply {
            Ok(reply) if asks_for_basic(reply) => SiteAnswer::AsksForCredentials,
            Ok(reply) => SiteAnswer::Status(reply.status),
            Err(why) => SiteAnswer::Unreachable(why.clone()),
        }
    }
}

/// The proxy's own 403 for a client outside `allow_from`.
pub fn refuses_outsider(reply: &HttpReply) -> bool {
    reply.status == 403 && reply.body.contains(crate::render::OUTSIDER_REFUSAL)
}

/// 401 with a Basic challenge: a protected site.
pub fn asks_for_basic(reply: &HttpReply) -> bool {
    reply.status == 401 && reply.header("www-authenticate").is_some_and(|c| c.to_ascii_lowercase().starts_with("basic"))
}

/// fail2ban, asked only where bans are wanted, our jail is there, or the
/// state records one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fail2banFacts {
    pub installed: bool,
    pub running: bool,
    /// The running fail2ban runs our jail.
    pub jail_loaded: bool,
    /// What `fail2ban-client -t` says when the configuration fails before
    /// our jail is there (someone else's jail is broken).
    pub broken: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub is_root: bool,
    /// PID 1 is systemd (`/run/systemd/system` exists, as sd_booted(3) checks).
    pub systemd: bool,
    pub package_manager: Option<PackageManager>,
    pub proxy_installed: bool,
    /// What the proxy's module asked for (`Proxy::installed_version`).
    pub proxy_version: Option<String>,
    pub certbot_installed: bool,
    /// Debian's certbot package schedules renewals from cron without systemd.
    pub certbot_cron: bool,
    /// A cron daemon is installed, and one runs.
    pub cron_installed: bool,
    pub cron_running: bool,
    pub proxy_running: bool,
    /// How the running proxy was found (and where its PID is).
    pub detection: crate::proxy::Detection,
    /// Enabled at boot (systemd only).
    pub service_enabled: bool,
    pub files: BTreeMap<PathBuf, Existing>,
    /// For every folder looked at: the filesystem it is on, and whether
    /// something is mounted on it.
    pub mounts: BTreeMap<PathBuf, (Filesystem, bool)>,
    /// What the proxy writes of its own (see `Proxy::writes_of_its_own`).
    pub own_writes: Vec<crate::state::Owned>,
    /// The entries of folders the proxy asked about (what else it serves).
    pub listings: BTreeMap<PathBuf, Vec<PathBuf>>,
    /// Group name → gid, for the groups files are given to.
    pub groups: BTreeMap<String, u32>,
    pub port_uses: Vec<PortUse>,
    /// What each Ollama server answered, in the setup's order (empty: not asked).
    pub ollama: Vec<OllamaProbe>,
    pub fail2ban: Fail2banFacts,
    /// The auth-only server's socket, for a proxy that has one.
    pub auth_socket: Option<SocketState>,
    /// What the running proxy answers at our site.
    pub site: SiteAnswer,
    /// The certificate (DER) it served there, with HTTPS.
    pub site_certificate: Option<Vec<u8>>,
    /// This system can mount a tmpfs (Linux lists it in /proc/filesystems;
    /// macOS has none).
    pub tmpfs: bool,
    /// The signing key of the proxy's own repository, as its URL served it
    /// (fetched only to install from there).
    pub repository_key: Option<Result<String, String>>,
    /// UTC time as `YYYYMMDDTHHMMSSZ`, for backup names.
    pub stamp: String,
}

impl Facts {
    pub fn file(&self, path: &Path) -> &Existing {
        self.files.get(path).unwrap_or(&Existing::Missing)
    }

    pub fn filesystem(&self, dir: &Path) -> Option<Filesystem> {
        self.mounts.get(dir).map(|(fs, _)| *fs)
    }

    pub fn is_mountpoint(&self, dir: &Path) -> bool {
        self.mounts.get(dir).is_some_and(|(_, mounted)| *mounted)
    }

    pub fn listing(&self, dir: &Path) -> &[PathBuf] {
        self.listings.get(dir).map_or(&[], Vec::as_slice)
    }

    /// A system where nothing exists yet: what `render --out` plans against.
    pub fn empty(stamp: &str) -> Facts {
        Facts {
            fail2ban: Fail2banFacts { installed: true, ..Fail2banFacts::default() },
            is_root: true,
            systemd: false,
            package_manager: None,
            proxy_installed: true,
            proxy_version: None,
            certbot_installed: true,
            certbot_cron: false,
            cron_installed: false,
            cron_running: false,
            proxy_running: false,
            detection: crate::proxy::Detection::default(),
            service_enabled: false,
            files: BTreeMap::from([(PathBuf::from("/"), Existing::Dir { mode: 0o755, uid: 0, gid: 0 })]),
            mounts: BTreeMap::new(),
            own_writes: Vec::new(),
            listings: BTreeMap::new(),
            groups: BTreeMap::new(),
            port_uses: Vec::new(),
            ollama: Vec::new(),
            auth_socket: None,
            site: SiteAnswer::NotProbed,
            site_certificate: None,
            repository_key: None,
            tmpfs: true,
            stamp: stamp.to_string(),
        }
    }

    /// The recorded state, if the state file exists and parses.
    pub fn state(&self, paths: &Paths) -> crate::error::Result<Option<State>> {
        match self.file(&paths.state) {
            Existing::File { content, .. } => State::parse(&String::from_utf8_lossy(content), &paths.state).map(Some),
            _ => Ok(None),
        }
    }
}

pub fn stamp(now: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(now).to_string(); // 2026-11-30T17:52:00Z
    text.replace(['-', ':'], "")
}

/// What to look at.
pub struct Probe<'a> {
    pub proxy: ProxyKind,
    pub paths: &'a Paths,
    /// Paths beyond the proxy's own and the state's.
    pub interest: Vec<PathBuf>,
    /// Ports the site will listen on: who uses them now.
    pub ports: Vec<u16>,
    pub groups: Vec<String>,
    /// Each Ollama server's URL, to see whether it answers.
    pub upstreams: Vec<String>,
    /// Our site's public URL and the local address that serves it.
    pub site: Option<(String, IpAddr)>,
    /// Bans are wanted: fail2ban is asked about.
    pub bans: bool,
    /// The proxy is to come from its own repository: its signing key is
    /// fetched where apt is, and the repository or the proxy is missing.
    pub repository: Option<crate::proxy::AptRepository>,
}

impl Probe<'_> {
    /// Everything a plan for these settings needs.
    pub fn for_settings(settings: &Settings) -> Probe<'_> {
        let site = &settings.site;
        let mut interest = Vec::new();
        if site.https.is_some() {
            interest.push(settings.paths.acme_webroot.clone());
            // certbot's folders: those it makes for us are ours.
            let paths = &settings.paths;
            interest.extend(crate::certbot::folders(paths));
            interest.extend([settings.paths.renewal_cron.clone(), settings.paths.renewal_dropin.clone()]);
            if let Some((cert, key)) = crate::certbot::live_paths(settings) {
                interest.extend([cert, key]);
            }
        }
        Probe {
            proxy: settings.proxy,
            paths: &settings.paths,
            interest,
            ports: [site.port].into_iter().chain(site.https.as_ref().map(|h| h.http_port)).collect(),
            groups: vec![settings.file_group.to_string()],
            upstreams: site.upstreams().map(|u| u.url()).collect(),
            site: Some((site.public_url(), site.local_address())),
            bans: site.ban.is_some(),
            repository: None,
        }
    }

    /// An installed setup (users, uninstall): its files, the state's, and,
    /// when the settings are known, what the site answers.
    pub fn for_installed<'a>(proxy: ProxyKind, paths: &'a Paths, settings: Option<&Settings>) -> Probe<'a> {
        Probe {
            proxy,
            paths,
            interest: Vec::new(),
            ports: Vec::new(),
            groups: settings.map(|s| s.file_group.to_string()).into_iter().collect(),
            upstreams: Vec::new(),
            site: settings.map(|s| (s.site.public_url(), s.site.local_address())),
            bans: false,
            repository: None,
        }
    }

    /// With the proxy installed from its own repository, if it is missing:
    /// its key is fetched, and its files are looked at.
    pub fn installing_from(mut self, source: Option<PackageSource>) -> Self {
        if source == Some(PackageSource::OwnRepository)
            && let Some(repository) = self.proxy.module().own_repository()
        {
            self.repository = Some(repository);
            self.interest.extend([self.paths.apt_keyring.clone(), self.paths.apt_source.clone()]);
        }
        self
    }
}

/// The request that asks our site, on this machine, whether it wants
/// credentials (trust is not judged: `check` does that).
pub fn site_request(url: &str, connect: IpAddr) -> Option<HttpRequest> {
    let url = reqwest::Url::parse(url).ok()?.join("api/version").ok()?;
    let host = url.host_str()?.to_string();
    Some(HttpRequest {
        timeout: Duration::from_secs(10),
        resolve: vec![(host, connect)],
        trust: Trust::AcceptAny,
        ..HttpRequest::get(url)
    })
}

pub fn probe_ollama(system: &dyn System, base_url: &str, timeout: Duration) -> OllamaProbe {
    let Ok(url) = reqwest::Url::parse(&format!("{base_url}/api/version")) else {
        return OllamaProbe::NotReachable(format!("{base_url} is not a URL"));
    };
    match system.http(&HttpRequest { timeout, ..HttpRequest::get(url) }) {
        Ok(reply) if (200..300).contains(&reply.status) => {
            match serde_json::from_str::<serde_json::Value>(&reply.body) {
                Ok(v) => match v.get("version").and_then(|v| v.as_str()) {
                    Some(version) => OllamaProbe::Answers { version: version.to_string() },
                    None => OllamaProbe::Unexpected("no version in its answer to /api/version".into()),
                },
                Err(_) => OllamaProbe::Unexpected("its answer to /api/version is not JSON".into()),
            }
        }
        Ok(reply) => OllamaProbe::Unexpected(format!("/api/version answered {}", status_text(reply.status))),
        Err(why) => OllamaProbe::NotReachable(why),
    }
}

/// `404 Not Found`, as reqwest shows a status.
pub fn status_text(status: u16) -> String {
    reqwest::StatusCode::from_u16(status).map_or_else(|_| status.to_string(), |s| s.to_string())
}

/// Every path of interest with all its parent folders (so the plan knows
/// which folders it creates).
fn with_ancestors(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let ancestors: Vec<PathBuf> =
        paths.iter().flat_map(|x| x.ancestors().skip(1).map(Path::to_path_buf).collect::<Vec<_>>()).collect();
    paths.extend(ancestors);
    paths.sort();
    paths.dedup();
    paths
}

/// A timestamp for backup names that no existing file uses yet.
fn unique_stamp(system: &dyn System, paths: &[PathBuf]) -> String {
    let base = stamp(system.now());
    (0..)
        .map(|n| if n == 0 { base.clone() } else { format!("{base}-{n}") })
        .find(|candidate| {
            paths.iter().all(|p| system.inspect(&crate::plan::backup_path(p, candidate)) == Existing::Missing)
        })
        .expect("some suffix is free")
}

/// What cron daemons call themselves (Debian's cron, cronie, busybox).
const CRON_DAEMONS: [&str; 2] = ["cron", "crond"];

fn package_manager(system: &dyn System) -> Option<PackageManager> {
    if system.installed("apt-get") {
        Some(PackageManager::Apt)
    } else if system.installed("brew") {
        Some(PackageManager::Brew)
    } else {
        None
    }
}

/// The proxy's files, the state file and everything it mentions (for
/// uninstall and for keeping records), with their folders.
fn interest(system: &dyn System, probe: &Probe, own_writes: &[crate::state::Owned]) -> Vec<PathBuf> {
    let (module, paths) = (probe.proxy.module(), probe.paths);
    let mut interest = probe.interest.clone();
    interest.extend(own_writes.iter().map(|o| o.path.clone()));
    interest.push(module.users_file(paths).to_path_buf());
    interest.push(module.keys_file(paths).to_path_buf());
    interest.extend(module.paths_to_inspect(paths));
    // The log of a proxy we start ourselves: the plan creates its folder.
    interest.extend(module.service(paths, false).log);
    interest.push(paths.state.clone());
    interest.extend([paths.fail2ban_jail(), paths.fail2ban_filter()]);
    if let Existing::File { content, .. } = system.inspect(&paths.state)
        && let Ok(state) = State::parse(&String::from_utf8_lossy(&content), &paths.state)
    {
        interest.extend(state.paths());
    }
    with_ancestors(interest)
}

/// fail2ban, asked when bans are wanted, our jail is there, or the state
/// says we started fail2ban or wrote a jail (uninstall must know whether
/// it still runs).
fn fail2ban(system: &dyn System, paths: &Paths, wanted: bool, files: &BTreeMap<PathBuf, Existing>) -> Fail2banFacts {
    let ours = files.get(&paths.fail2ban_jail()).is_some_and(|e| !matches!(e, Existing::Missing));
    let recorded = match files.get(&paths.state) {
        Some(Existing::File { content, .. }) => State::parse(&String::from_utf8_lossy(content), &paths.state)
            .is_ok_and(|s| s.started_bans || s.record(&paths.fail2ban_jail()).is_some()),
        _ => false,
    };
    if !(wanted || ours || recorded) || !system.installed("fail2ban-client") {
        return Fail2banFacts::default();
    }
    let broken = match ours {
        false if wanted => Some(system.run(&crate::ban::test(paths))).filter(|r| !r.success).map(|r| r.output),
        _ => None,
    };
    let running = system.run(&crate::ban::ping(paths)).success;
    let jail_loaded = running && system.run(&crate::ban::jail_status(paths)).success;
    Fail2banFacts { installed: true, running, jail_loaded, broken }
}

/// Ollama's service, for `harden-ollama`: what systemd says about it, the
/// environment files it reads, our drop-in, and what listens on its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OllamaService {
    pub systemd: bool,
    /// `None` without systemd, or when `systemctl show` failed.
    pub unit: Option<crate::ollama::Unit>,
    /// Each of the unit's `EnvironmentFile=` files, as found.
    pub environment_files: Vec<(PathBuf, Existing)>,
    pub dropin: Existing,
    pub dropin_dir: Existing,
    /// What listens on the port `OLLAMA_HOST` gives the unit (11434 without one).
    pub listeners: Vec<PortUse>,
}

impl OllamaService {
    /// Where the unit makes Ollama listen: an environment file's
    /// OLLAMA_HOST overrides `Environment=` (systemd.exec(5)).
    pub fn bind(&self) -> crate::ollama::Bind {
        crate::ollama::Bind::from_env(self.ollama_host().as_deref())
    }

    pub fn ollama_host(&self) -> Option<String> {
        self.environment_file_setting()
            .map(|(_, value)| value)
            .or_else(|| self.unit.as_ref().and_then(|u| u.environment_value("OLLAMA_HOST")).map(str::to_string))
    }

    /// The environment file that sets OLLAMA_HOST, and its value.
    pub fn environment_file_setting(&self) -> Option<(PathBuf, String)> {
        self.environment_files.iter().rev().find_map(|(path, existing)| match existing {
            Existing::File { content, .. } => {
                crate::ollama::environment_file_value(&String::from_utf8_lossy(content), "OLLAMA_HOST")
                    .map(|value| (path.clone(), value))
            }
            _ => None,
        })
    }
}

pub fn ollama_service(system: &dyn System, dropin: &Path, port: Option<u16>) -> OllamaService {
    let systemd = matches!(system.inspect(Path::new("/run/systemd/system")), Existing::Dir { .. });
    let show = crate::ollama::show_command();
    let unit = systemd
        .then(|| system.run(&show))
        .filter(|out| out.success)
        .map(|out| crate::ollama::Unit::parse(&out.output))
        .filter(crate::ollama::Unit::exists);
    let environment_files =
        unit.iter().flat_map(|u| u.environment_files.iter()).map(|path| (path.clone(), system.inspect(path))).collect();
    let dropin_dir = dropin.parent().map_or(Existing::Missing, |dir| system.inspect(dir));
    let mut service = OllamaService {
        systemd,
        unit,
        environment_files,
        dropin: system.inspect(dropin),
        dropin_dir,
        listeners: Vec::new(),
    };
    let port = port.unwrap_or_else(|| service.bind().port);
    service.listeners = system
        .tcp_listeners()
        .into_iter()
        .filter(|l| l.port == port)
        .map(|l| PortUse { port: l.port, address: l.address, owner: system.socket_owner(l.inode) })
        .collect();
    service
}

/// Which files of the proxy's own repository are to be written, where apt
/// is: none while its source list is there (the operator's, or ours from
/// before), else the list, and the key too where that is missing. The
/// probe asks it (to fetch the key), and the plan (to write them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepositoryFiles {
    pub list: bool,
    pub key: bool,
}

pub fn repository_files(
    package_manager: Option<PackageManager>,
    files: &BTreeMap<PathBuf, Existing>,
    paths: &Paths,
) -> RepositoryFiles {
    let missing = |path: &Path| matches!(files.get(path), Some(Existing::Missing) | None);
    let list = package_manager == Some(PackageManager::Apt) && missing(&paths.apt_source);
    RepositoryFiles { list, key: list && missing(&paths.apt_keyring) }
}

/// A repository's signing key, from its URL (the system's roots).
fn fetch_key(system: &dyn System, url: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
    match system.http(&HttpRequest::get(url)) {
        Ok(HttpReply { body_error: Some(why), .. }) => Err(format!("the download broke off: {why}")),
        Ok(reply) if reply.status == 200 => Ok(reply.body),
        Ok(reply) => Err(format!("it answered {}", status_text(reply.status))),
        Err(why) => Err(why),
    }
}

pub fn probe(system: &dyn System, probe: Probe) -> Facts {
    let module = probe.proxy.module();
    let paths = probe.paths;
    let systemd = matches!(system.inspect(Path::new("/run/systemd/system")), Existing::Dir { .. });
    let detection = module.detect(system, paths, systemd);
    let proxy_running = detection.running;
    let own_writes = module.writes_of_its_own(system, paths, systemd);
    let interest = interest(system, &probe, &own_writes);
    let files: BTreeMap<PathBuf, Existing> = interest.iter().map(|p| (p.clone(), system.inspect(p))).collect();
    let mounts = files
        .iter()
        .filter(|(_, existing)| matches!(existing, Existing::Dir { .. }))
        .filter_map(|(dir, _)| Some((dir.clone(), (system.filesystem(dir)?, system.is_mountpoint(dir)))))
        .collect();
    let listings = module.dirs_to_list(paths).into_iter().map(|d| (d.clone(), system.list_dir(&d))).collect();
    let groups = probe
        .groups
        .iter()
        .map(String::as_str)
        .chain(["root"])
        .filter_map(|g| system.group_id(g).map(|gid| (g.to_string(), gid)))
        .collect();
    let port_uses = system
        .tcp_listeners()
        .into_iter()
        .filter(|l| probe.ports.contains(&l.port))
        .map(|l| PortUse { port: l.port, address: l.address, owner: system.socket_owner(l.inode) })
        .collect();
    let (site, site_certificate) = match probe.site.as_ref().and_then(|(url, connect)| site_request(url, *connect)) {
        Some(request) if proxy_running => {
            let reply = system.http(&request);
            (SiteAnswer::of(&reply), reply.ok().and_then(|reply| reply.peer_certificate))
        }
        _ => (SiteAnswer::NotProbed, None),
    };
    let fail2ban = fail2ban(system, paths, probe.bans, &files);
    let proxy_installed = system.installed(probe.proxy.name());
    let package_manager = package_manager(system);
    let repository = probe.repository.filter(|_| package_manager == Some(PackageManager::Apt));
    let wanted = repository_files(package_manager, &files, paths);
    let repository_key = repository.filter(|_| wanted.key).map(|r| fetch_key(system, r.key_url));
    // What the repository installs, before it is there to be asked.
    let proxy_version = module
        .installed_version(system)
        .or_else(|| repository.filter(|_| !proxy_installed).map(|r| r.oldest_version.to_string()));
    Facts {
        fail2ban,
        is_root: system.is_root(),
        systemd,
        package_manager,
        proxy_installed,
        proxy_version,
        certbot_installed: system.installed("certbot"),
        certbot_cron: matches!(system.inspect(Path::new("/etc/cron.d/certbot")), Existing::File { .. }),
        cron_installed: CRON_DAEMONS.iter().any(|name| system.installed(name)),
        cron_running: system.processes().iter().any(|p| CRON_DAEMONS.contains(&p.name.as_str())),
        proxy_running,
        detection,
        service_enabled: systemd
            && system.run(&Command::new("systemctl", &["is-enabled", "--quiet", probe.proxy.name()])).success,
        files,
        mounts,
        own_writes,
        listings,
        groups,
        port_uses,
        // One after another: a refused connection is said at once; only a
        // server that does not answer takes its 3 s.
        ollama: probe.upstreams.iter().map(|url| probe_ollama(system, url, Duration::from_secs(3))).collect(),
        auth_socket: module.auth_socket(paths).map(|socket| system.unix_socket(socket)),
        site,
        site_certificate,
        repository_key,
        tmpfs: matches!(system.inspect(Path::new("/proc/filesystems")),
            Existing::File { content, .. } if String::from_utf8_lossy(&content).split_whitespace().any(|fs| fs == "tmpfs")),
        stamp: unique_stamp(system, &interest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_folder_the_plan_may_create_is_looked_at() {
        let dir = tempfile::tempdir().unwrap();
        let answers = crate::answers::Answers::from_yaml(
            &format!(
                "proxy: caddy\nusers: [{{username: a, generate: true}}]\npaths: {{state: {}/state.yaml}}\n",
                dir.path().display()
            ),
            "t",
        )
        .unwrap();
        let config = crate::config::Config::from_answers(
            &answers,
            "t",
            crate::paths::Os::Debian,
            &crate::config::ProcessSecrets,
        )
        .unwrap();
        let seen = interest(&crate::system::RealSystem, &Probe::for_settings(&config.settings), &[]);
        for path in [
            "/var/log/caddy/ollama-secure.log",
            "/var/log/caddy",
            "/var/log",
            "/etc/caddy/ollama.caddy",
            "/etc/caddy/Caddyfile",
        ] {
            assert!(seen.contains(&PathBuf::from(path)), "{path} is not looked at: {seen:?}");
        }
        // With certbot: its folders, which are ours if it makes them.
        let https = crate::answers::Answers::from_yaml(
            "proxy: nginx\ndomain: a.test\nhttps: {enabled: true}\nusers: [{username: a, generate: true}]\n",
            "t",
        )
        .unwrap();
        let config =
            crate::config::Config::from_answers(&https, "t", crate::paths::Os::Debian, &crate::config::ProcessSecrets)
                .unwrap();
        let seen = interest(&crate::system::RealSystem, &Probe::for_settings(&config.settings), &[]);
        for path in ["/etc/letsencrypt", "/var/lib/letsencrypt", "/var/log/letsencrypt", "/var/lib/ollama-secure/acme"]
        {
            assert!(seen.contains(&PathBuf::from(path)), "{path} is not looked at: {seen:?}");
        }
    }

    #[test]
    fn stamps_are_compact_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_061_120);
        assert_eq!(stamp(t), "20261130T175200Z");
    }
}
