//! One module per proxy, behind the `Proxy` trait: everything that differs
//! between nginx and Caddy (their files and templates, where the users
//! live, how the site is switched on in the main configuration, how the
//! proxy is validated, started, reloaded and stopped, how it gets its
//! certificates, what else it serves, what uninstall leaves). The planner,
//! apply and the commands ask the trait and never name a proxy. A third
//! proxy is one more module here, its templates, and a line in `ProxyKind`.

mod caddy;
mod nginx;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Finding, Result};
use crate::facts::Facts;
use crate::paths::{Os, Paths};
use crate::plan::{Command, Step};
use crate::render::RenderedFile;
use crate::setup::{Https, Setup};
use crate::state::State;
use crate::system::System;
use crate::userfile::Format;

/// Where `install: true` takes the proxy from (`caddy_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PackageSource {
    /// The system's own packages (Debian's archive, Homebrew).
    Distribution,
    /// The proxy project's own apt repository (`Proxy::own_repository`).
    OwnRepository,
}

impl PackageSource {
    pub const ALL: [PackageSource; 2] = [PackageSource::Distribution, PackageSource::OwnRepository];

    /// Its name in the answers file (`caddy_source`).
    pub fn name(self) -> &'static str {
        match self {
            PackageSource::Distribution => "debian",
            PackageSource::OwnRepository => "caddy-repo",
        }
    }

    pub fn parse(name: &str) -> Option<PackageSource> {
        PackageSource::ALL.into_iter().find(|source| source.name() == name)
    }
}

/// A proxy project's own apt repository, as its install guide adds it:
/// its signing key (fetched, then written like any file of ours, so the
/// dry run shows it) and one `deb` line that trusts only that key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AptRepository {
    /// Where the armored signing key is published.
    pub key_url: &'static str,
    /// The repository's URL, suite and component, as its `deb` line has them.
    pub url: &'static str,
    pub suite: &'static str,
    pub component: &'static str,
    /// The oldest version it installs: what the files are rendered for
    /// before the proxy is there to be asked.
    pub oldest_version: &'static str,
}

impl AptRepository {
    /// The `deb` line, trusting only the key at `keyring`.
    pub fn source_line(&self, keyring: &Path) -> String {
        format!("deb [signed-by={}] {} {} {}", keyring.display(), self.url, self.suite, self.component)
    }
}

/// The proxies ollama-secure can set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyKind {
    Nginx,
    Caddy,
}

impl ProxyKind {
    pub const ALL: [ProxyKind; 2] = [ProxyKind::Nginx, ProxyKind::Caddy];

    /// The one place a proxy's name is read.
    pub fn parse(name: &str) -> Option<ProxyKind> {
        ProxyKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    pub fn module(self) -> &'static dyn Proxy {
        match self {
            ProxyKind::Nginx => &nginx::Nginx,
            ProxyKind::Caddy => &caddy::Caddy,
        }
    }

    /// The proxy's name, which is also its binary and its Debian package.
    pub fn name(self) -> &'static str {
        match self {
            ProxyKind::Nginx => "nginx",
            ProxyKind::Caddy => "caddy",
        }
    }

    /// The proxy's name in a sentence.
    pub fn title(self) -> &'static str {
        match self {
            ProxyKind::Nginx => "nginx",
            ProxyKind::Caddy => "Caddy",
        }
    }

    /// "nginx or caddy", for messages.
    pub fn choices() -> String {
        let names: Vec<&str> = ProxyKind::ALL.iter().map(|k| k.name()).collect();
        names.join(" or ")
    }
}

impl fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which stage of the site to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The whole site.
    Final,
    /// What can load before the certificate exists (only for proxies whose
    /// certificates come from certbot through the site's own webroot).
    AwaitingCertificate,
}

/// How a proxy gets its HTTPS certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certificates {
    /// certbot through the webroot; the site first loads without TLS.
    Certbot,
    /// The proxy obtains and renews them itself (ACME built in).
    BuiltIn,
}

/// How the proxy is controlled, with systemd or directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub validate: Command,
    pub start: Command,
    pub reload: Command,
    pub stop: Command,
    /// `systemctl enable` and `systemctl disable` where there is systemd
    /// (starting never enables: whether it starts at boot is a step of its
    /// own, with its own undo).
    pub enable: Option<Command>,
    pub disable: Option<Command>,
    /// Where the running proxy's PID is: to see it run, to wait for its
    /// old workers after a reload and for it to exit after a stop.
    pub pid_file: PathBuf,
    /// A reload returns before the old workers have left (nginx).
    pub reload_is_graceful: bool,
    /// The validator makes an empty PID file where there is none (nginx).
    pub validate_makes_pid_file: bool,
    /// Where its output goes when we start it ourselves.
    pub log: Option<PathBuf>,
    /// The files of ours its validator reads (an error elsewhere is in a
    /// file of the user's).
    pub ours: Vec<PathBuf>,
}

/// What the proxy serves besides our site, to compare later: uninstall
/// stops a proxy that init started only if this is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Served {
    /// The other site files it loads.
    Sites { sites: Vec<PathBuf> },
    /// A fingerprint of the main configuration without our lines (comments
    /// and blank lines aside); `None` when nothing else is in it.
    MainConfig { path: PathBuf, fingerprint: Option<String> },
}

impl Served {
    /// What changed between `self` (then) and `now`, in words.
    pub fn change_since(&self, now: &Served) -> String {
        match (self, now) {
            (Served::Sites { sites: then }, Served::Sites { sites: now }) => {
                let list = |a: &[PathBuf], b: &[PathBuf]| -> Vec<String> {
                    a.iter().filter(|s| !b.contains(s)).map(|s| s.display().to_string()).collect()
                };
                let (added, removed) = (list(now, then), list(then, now));
                let mut parts = Vec::new();
                if !added.is_empty() {
                    parts.push(format!("added: {}", added.join(", ")));
                }
                if !removed.is_empty() {
                    parts.push(format!("removed: {}", removed.join(", ")));
                }
                parts.join("; ")
            }
            (_, Served::MainConfig { path, .. }) => format!("{} was changed", path.display()),
            _ => "its configuration was changed".to_string(),
        }
    }
}

/// A running instance of the proxy, however it was started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detection {
    pub running: bool,
    /// Where the running process keeps its PID (for the waits after a
    /// reload or a stop), when it is not the one `service` names.
    pub pid_file: Option<PathBuf>,
    /// How it was found, when that is worth saying (started by someone else).
    pub note: Option<Finding>,
    /// It runs, but ollama-secure cannot reach it to reload it.
    pub blocker: Option<String>,
}

/// Folders the proxy needs that ollama-secure must own: made (or a tmpfs
/// mounted) before the proxy starts, recorded so uninstall removes them,
/// refused when they are someone else's.
#[derive(Default)]
pub struct Folders {
    pub steps: Vec<Step>,
    /// Ours once the plan ran.
    pub owned: Vec<crate::state::Owned>,
    /// Ours if the plan starts the proxy, or reloads the one systemd runs
    /// (it writes them then, for our site).
    pub owned_if_started: Vec<crate::state::Owned>,
    /// What the proxy's validator makes where it was missing (Caddy's
    /// `~/.step` and local CA), in the order made: the validation's undo
    /// removes them.
    pub made_by_validation: Vec<crate::state::Owned>,
    pub findings: Vec<Finding>,
    pub blockers: Vec<String>,
}

impl Folders {
    /// The access log of our site is the proxy's to write, and ours: made
    /// when the proxy first loads the site (its validator too), it is
    /// undone with that validation, and uninstall removes it.
    fn with_access_log(mut self, paths: &Paths, facts: &Facts) -> Folders {
        if matches!(facts.file(&paths.access_log), crate::system::Existing::Missing) {
            let log = crate::state::Owned::new(&paths.access_log, crate::state::OwnedKind::File);
            self.owned.push(log.clone());
            self.made_by_validation.push(log);
        }
        self
    }
}

/// What switches the site on: files of the user's to change (written like
/// ours, with a backup), and steps.
#[derive(Default)]
pub struct Enable {
    pub files: Vec<RenderedFile>,
    pub steps: Vec<Step>,
}

/// What taking the site out of the proxy's main configuration means
/// (uninstall): the steps, and the main configuration's text afterwards
/// when ollama-secure edits it (to judge the user's backups of it).
pub struct Disabled {
    pub steps: Vec<Step>,
    pub main_config_after: Option<(PathBuf, String)>,
}

/// How the running proxy must be treated before it serves our files.
pub enum Repair {
    /// Nothing beyond start or reload.
    None,
    /// Steps to run before it starts (a stale socket to remove).
    BeforeStart(Vec<Step>, Finding),
    /// It runs but must be restarted: a reload would not help.
    Restart(Finding),
}

pub trait Proxy: Sync {
    fn kind(&self) -> ProxyKind;

    fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The group of the proxy's workers, which may read the hashes.
    fn default_group(&self, os: Os) -> &'static str;

    /// What this proxy cannot do with these HTTPS settings: (field, why).
    fn https_problem(&self, https: &Https) -> Option<(&'static str, String)>;
    /// Why this proxy cannot share requests over several servers as asked
    /// (`weight`, `max_conns`), naming the field.
    fn shares_problem(&self, shares: &[crate::setup::Share]) -> Option<(String, String)>;

    /// Where the users live, and in which format.
    fn users_file<'a>(&self, paths: &'a Paths) -> &'a Path;
    fn users_format(&self) -> Format;
    /// Where the API keys' lines live, and in which format.
    fn keys_file<'a>(&self, paths: &'a Paths) -> &'a Path;
    fn keys_format(&self) -> Format;
    /// Why the last user cannot be removed.
    fn keeps_last_user_because(&self) -> &'static str;

    /// The files and folders the plan must see, besides the users file.
    fn paths_to_inspect(&self, paths: &Paths) -> Vec<PathBuf>;
    /// Folders whose entries say what else the proxy serves.
    fn dirs_to_list(&self, paths: &Paths) -> Vec<PathBuf>;
    /// The auth-only server's unix socket, for a proxy that has one.
    fn auth_socket<'a>(&self, paths: &'a Paths) -> Option<&'a Path>;

    /// The files of the site, users included, in the order they are
    /// written (users before the site that refers to them). `facts`: what
    /// else the main configuration serves, where that shapes our site.
    fn render(&self, setup: &Setup, facts: &Facts, stage: Stage) -> Result<Vec<RenderedFile>>;
    /// What switches the site on in the proxy's main configuration (a
    /// link, a line in the main file), after its files are written.
    fn enable(&self, setup: &Setup, facts: &Facts) -> Result<Enable>;
    fn service(&self, paths: &Paths, systemd: bool) -> Service;
    /// Where its admin API is, if it has one, as its configuration here says
    /// (`check` asks whether it answers without a password).
    fn admin_api(&self, _system: &dyn System, _paths: &Paths) -> Option<crate::check::AdminApi> {
        None
    }
    /// The project's own apt repository, when it has one ollama-secure
    /// can install from (`caddy_source: caddy-repo`).
    fn own_repository(&self) -> Option<AptRepository> {
        None
    }
    /// The version installed here, where what is rendered depends on it
    /// (Caddy renamed a directive); `None` when not installed, or when
    /// nothing depends on it.
    fn installed_version(&self, _system: &dyn System) -> Option<String> {
        None
    }
    /// The file the proxy writes its errors to here, as its configuration
    /// says (`check` shows its last error when the proxy answers 500).
    fn error_log(&self, _system: &dyn System, _paths: &Paths) -> Option<PathBuf> {
        None
    }
    /// `service`, as it reaches the proxy that runs here now (Caddy: its
    /// admin API where the Caddyfile says ollama-secure put it, even after
    /// uninstall took that line out again).
    fn service_here(&self, paths: &Paths, facts: &Facts) -> Service {
        self.service(paths, facts.systemd)
    }
    /// Finds a running instance: one started by ollama-secure, by systemd,
    /// or by hand (which is reloaded, never started a second time).
    fn detect(&self, system: &dyn System, paths: &Paths, systemd: bool) -> Detection;
    fn certificates(&self) -> Certificates;
    /// What else the proxy serves, from the facts.
    fn served_besides_us(&self, paths: &Paths, facts: &Facts) -> Served;
    /// What the running proxy needs beyond a start or a reload.
    fn repair(&self, paths: &Paths, facts: &Facts) -> Result<Repair>;
    /// Folders (and files) it writes of its own, found on the machine
    /// (Caddy's config and data folders): `until_stopped` marks what the
    /// proxy writes once ollama-secure starts it; the rest, any run of its
    /// commands writes.
    fn writes_of_its_own(&self, system: &dyn System, paths: &Paths, systemd: bool) -> Vec<crate::state::Owned>;
    /// Folders it needs that must be ours (nginx's cache of passwords).
    fn folders(&self, paths: &Paths, facts: &Facts, state: Option<&State>) -> Folders;
    /// What a setup whose state recorded no ownership (versions 1 and 2)
    /// owns: what those versions removed at uninstall.
    fn owned_without_records(&self, paths: &Paths) -> Vec<crate::state::Owned>;

    /// Uninstall: taking the site out of the main configuration.
    fn disable(&self, state: &State, paths: &Paths, facts: &Facts) -> Result<Disabled>;
    /// Uninstall, after the proxy stopped or reloaded: what it leaves that
    /// is not a recorded folder (a stale socket).
    fn leftovers(&self, paths: &Paths, facts: &Facts) -> Vec<Step>;

    /// What state files of version 1 recorded as served besides us, read.
    fn served_from_version_1(&self, items: &[String], paths: &Paths) -> Served;

    /// What in the proxy's own configuration lets other local users around
    /// the site (Caddy's admin API), said before anything is changed.
    fn warnings(&self, _paths: &Paths, _facts: &Facts) -> Vec<crate::error::Finding> {
        Vec::new()
    }

    /// The first ACME error the proxy logged about `domain` since `since`
    /// (proxies with built-in ACME), from its log's text.
    fn acme_error_in_log(&self, _log: &str, _domain: &str, _since: SystemTime) -> Option<String> {
        None
    }
}
