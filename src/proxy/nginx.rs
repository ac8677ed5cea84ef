//! nginx: a site in sites-available enabled by a link, users in an
//! htpasswd file checked by an auth-only server behind a unix socket (its
//! successes cached), certificates from certbot.

use std::path::{Path, PathBuf};

use minijinja::Value;

use super::{Certificates, Detection, Disabled, Enable, Folders, Proxy, ProxyKind, Repair, Served, Service, Stage};
use crate::error::{Error, Finding, Result};
use crate::facts::{Facts, SiteAnswer};
use crate::fields::Host;
use crate::paths::{Os, Paths};
use crate::plan::{Action, Command, Purpose, Step};
use crate::render::{self, RenderedFile, Role, path_text};
use crate::setup::{Https, Setup};
use crate::state::{Owned, OwnedKind, State};
use crate::system::{Existing, Filesystem, SocketState, System};
use crate::userfile::Format;

pub struct Nginx;

/// The cache's own limit is 16m (`max_size`); the tmpfs leaves room for
/// its folders.
const CACHE_SIZE: &str = "32m";

const TEMPLATES: &[(&str, &str)] = &[
    ("nginx-site.conf", include_str!("../../templates/nginx-site.conf.j2")),
    ("htpasswd", include_str!("../../templates/htpasswd.j2")),
];

/// `listen` addresses for a port: the one address asked for, or every IPv4
/// and IPv6 address.
fn listen(setup: &Setup, port: u16) -> Vec<String> {
    match setup.settings.site.listen_address {
        Some(addr) => vec![format!("{}:{port}", Host::Ip(addr).url_form())],
        None => vec![port.to_string(), format!("[::]:{port}")],
    }
}

/// Changes whenever a user or a key does, so that cached logins never
/// outlive a credential change: the first word of the cache key.
fn users_fingerprint(setup: &Setup) -> String {
    // Users as before keys existed (the same value for the same users), then keys.
    let users = setup.users.entries().map(|e| (&b""[..], e));
    let keys = setup.keys.entries().map(|e| (&b"key:"[..], e));
    render::fingerprint(
        users.chain(keys).flat_map(|(kind, e)| [kind, e.username.as_bytes(), b":", e.hash.as_bytes(), b"\n"]).flatten(),
    )
}

fn site_context(setup: &Setup, stage: Stage) -> Value {
    let paths = &setup.settings.paths;
    let https_port = setup.settings.site.https.as_ref().map(|h| h.http_port);
    minijinja::context! {
        ..render::site_context(setup),
        ..minijinja::context! {
            listen => listen(setup, setup.settings.site.port),
            http_listen => https_port.map(|port| listen(setup, port)).unwrap_or_default(),
            htpasswd => path_text(&paths.htpasswd),
            api_keys => path_text(&paths.api_keys),
            auth_cache => path_text(&paths.auth_cache),
            auth_socket => path_text(&paths.auth_socket),
            users_fingerprint => users_fingerprint(setup),
            acme_bootstrap => stage == Stage::AwaitingCertificate,
        }
    }
}

/// The `pid` directive of nginx.conf (top level, outside any block).
fn pid_directive(conf: &str) -> Option<PathBuf> {
    top_level_directive(conf, "pid").map(PathBuf::from)
}

/// The value of a directive of nginx.conf at the top level (outside any
/// block), without its `;`.
fn top_level_directive<'a>(conf: &'a str, name: &str) -> Option<&'a str> {
    let mut depth = 0usize;
    for line in conf.lines() {
        let code = line.split('#').next().unwrap_or_default().trim();
        if depth == 0
            && let Some(rest) = code.strip_prefix(name)
            && rest.starts_with(char::is_whitespace)
        {
            return Some(rest.trim().trim_end_matches(';').trim());
        }
        depth = (depth + code.matches('{').count()).saturating_sub(code.matches('}').count());
    }
    None
}

/// Where nginx writes its errors, as nginx.conf's top-level `error_log`
/// says (its first word; `stderr` and `syslog:` are no file), or nginx's
/// built-in default.
fn error_log_file(conf: &str) -> Option<PathBuf> {
    match top_level_directive(conf, "error_log") {
        Some(value) => value.split_whitespace().next().filter(|f| f.starts_with('/')).map(PathBuf::from),
        None => Some(PathBuf::from("/var/log/nginx/error.log")),
    }
}

/// nginx's own default configuration file on Debian.
const DEFAULT_CONF: &str = "/etc/nginx/nginx.conf";

/// An nginx master process that reads `conf`: started with `-c conf`, or
/// without `-c` when `conf` is the default.
fn master_of(system: &dyn System, conf: &Path) -> Option<u32> {
    let conf = conf.to_string_lossy();
    system.processes().into_iter().find_map(|p| {
        let line = &p.command_line;
        let words: Vec<&str> = line.split_whitespace().collect();
        let with_c = words.windows(2).any(|w| w[0] == "-c" && w[1] == conf);
        let without_c = !words.contains(&"-c") && conf == DEFAULT_CONF;
        (p.name == "nginx" && line.contains("master process") && (with_c || without_c)).then_some(p.pid)
    })
}

impl Nginx {
    /// The cache of password checks holds credentials (base64 in its keys):
    /// it must be a folder of ours, and in memory. We make it (0700; nginx
    /// gives it to its workers when it loads the site), and on a disk mount
    /// a tmpfs of our own on it; undone, it goes with what nginx put in it.
    fn cache_folder(&self, paths: &Paths, facts: &Facts, state: Option<&State>) -> Folders {
        let cache = &paths.auth_cache;
        let ours = state.is_some_and(|s| s.owns(cache) || s.recorded_no_ownership());
        let parent_in_memory = cache.parent().and_then(|p| facts.filesystem(p)) == Some(Filesystem::Memory);
        let mut folders = Folders::default();
        let create = || {
            let remove = Action::RemoveTree { path: cache.clone(), unless_entries_in: None };
            Step::undone_by(Action::CreateDir { path: cache.clone(), mode: 0o700 }, vec![remove])
        };
        let mount = || -> Vec<Step> {
            let options = format!("size={},mode=0700", CACHE_SIZE);
            let mount = Action::Run {
                command: Command::new("mount", &["-t", "tmpfs", "-o", &options, "ollama-secure-auth"]).arg_path(cache),
                purpose: Purpose::Mount,
            };
            vec![create(), Step::undone_by(mount, vec![Action::unmount(cache)])]
        };
        let parent = cache.parent().unwrap_or(cache);
        let on_disk_without_tmpfs = || {
            format!(
                "{} is on a disk, where the cache of password checks would keep credentials, and this system cannot \
                 mount a tmpfs there (macOS has none): set paths.auth_cache to a folder in memory (a RAM disk you \
                 mount), or use Caddy, which keeps no such cache",
                parent.display()
            )
        };
        if !matches!(facts.file(parent), Existing::Dir { .. }) {
            folders.blockers.push(format!(
                "{} is not a folder: paths.auth_cache must sit directly in a folder that exists",
                parent.display()
            ));
            return folders;
        }
        match facts.file(cache) {
            Existing::Missing if parent_in_memory => {
                folders.steps.push(create());
                folders.owned.push(Owned::new(cache, OwnedKind::Tree));
            }
            Existing::Missing if !facts.tmpfs => folders.blockers.push(on_disk_without_tmpfs()),
            Existing::Missing => {
                folders.findings.push(Finding::info(format!(
                    "{} is on a disk, and the cache of password checks holds credentials: a private tmpfs is mounted at {} \
                     (it is gone after a reboot; running init again mounts it again)",
                    parent.display(),
                    cache.display()
                )));
                folders.steps.extend(mount());
                folders.owned.push(Owned::new(cache, OwnedKind::Mount));
            }
            Existing::Dir { .. } if !ours => folders.blockers.push(format!(
                "{} exists and is not a folder ollama-secure made: nginx would make it its own and its cache loader would \
                 delete what is in it; set paths.auth_cache to a folder that does not exist yet",
                cache.display()
            )),
            Existing::Dir { .. } if parent_in_memory || facts.is_mountpoint(cache) => {}
            Existing::Dir { .. } if !facts.tmpfs => folders.blockers.push(on_disk_without_tmpfs()),
            Existing::Dir { .. } => {
                folders.findings.push(Finding::warning(format!(
                    "the cache of password checks {} is on a disk again (after a reboot?): what it holds is removed, \
                     and a tmpfs is mounted there again",
                    cache.display()
                )));
                folders.steps.push(Step::final_(Action::RemoveCache { path: cache.clone() }));
                folders.steps.extend(mount());
                folders.owned.push(Owned::new(cache, OwnedKind::Mount));
            }
            _ => folders.blockers.push(format!(
                "{} exists and is not a folder: set paths.auth_cache to a folder that does not exist yet",
                cache.display()
            )),
        }
        folders
    }
}

impl Proxy for Nginx {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Nginx
    }

    fn default_group(&self, os: Os) -> &'static str {
        match os {
            Os::Debian => "www-data",
            Os::MacHomebrew(_) => "staff",
        }
    }

    /// nginx takes both on each `server` line, with `least_conn` and with
    /// `hash ... consistent`.
    fn shares_problem(&self, _shares: &[crate::setup::Share]) -> Option<(String, String)> {
        None
    }

    fn https_problem(&self, _https: &Https) -> Option<(&'static str, String)> {
        None
    }

    fn users_file<'a>(&self, paths: &'a Paths) -> &'a Path {
        &paths.htpasswd
    }

    fn users_format(&self) -> Format {
        Format::Htpasswd
    }

    fn keys_file<'a>(&self, paths: &'a Paths) -> &'a Path {
        &paths.api_keys
    }

    fn keys_format(&self) -> Format {
        Format::Htpasswd
    }

    fn keeps_last_user_because(&self) -> &'static str {
        "nginx would then refuse everyone (an empty user file locks the proxy)"
    }

    fn paths_to_inspect(&self, paths: &Paths) -> Vec<PathBuf> {
        vec![
            paths.nginx_site.clone(),
            paths.nginx_site_link.clone(),
            paths.nginx_conf.clone(),
            paths.auth_cache.clone(),
            paths.access_log.clone(),
        ]
    }

    fn dirs_to_list(&self, paths: &Paths) -> Vec<PathBuf> {
        // Debian's nginx.conf includes both.
        let conf_d = paths.nginx_conf.parent().map(|d| d.join("conf.d"));
        paths.nginx_site_link.parent().map(Path::to_path_buf).into_iter().chain(conf_d).collect()
    }

    fn auth_socket<'a>(&self, paths: &'a Paths) -> Option<&'a Path> {
        Some(&paths.auth_socket)
    }

    fn error_log(&self, system: &dyn System, paths: &Paths) -> Option<PathBuf> {
        let Existing::File { content, .. } = system.inspect(&paths.nginx_conf) else { return None };
        error_log_file(&String::from_utf8_lossy(&content))
    }

    fn render(&self, setup: &Setup, _facts: &Facts, stage: Stage) -> Result<Vec<RenderedFile>> {
        let env = render::environment(TEMPLATES);
        let paths = &setup.settings.paths;
        let users = minijinja::context! {
            version => env!("CARGO_PKG_VERSION"),
            new_file => !setup.users.was_read(),
            user_lines => render::user_lines(setup),
        };
        let htpasswd = render::render_template(&env, "htpasswd", &users)?;
        let keys = minijinja::context! {
            version => env!("CARGO_PKG_VERSION"),
            new_file => !setup.keys.was_read(),
            user_lines => render::key_lines(setup),
            keys => true,
        };
        let keys = render::render_template(&env, "htpasswd", &keys)?;
        let site = render::render_template(&env, "nginx-site.conf", &site_context(setup, stage))?;
        Ok(vec![
            RenderedFile::ours(&paths.htpasswd, Role::Users, setup, true, htpasswd),
            RenderedFile::ours(&paths.api_keys, Role::Users, setup, true, keys),
            RenderedFile::ours(&paths.nginx_site, Role::Site, setup, false, site),
        ])
    }

    fn enable(&self, setup: &Setup, facts: &Facts) -> Result<Enable> {
        let (link, target) = (&setup.settings.paths.nginx_site_link, &setup.settings.paths.nginx_site);
        let problem = match facts.file(link) {
            Existing::Missing => return Ok(Enable { files: Vec::new(), steps: vec![Step::link(link, target)] }),
            Existing::Symlink { target: current } if current == target => return Ok(Enable::default()),
            Existing::Symlink { target: current } => {
                format!("points to {}, not to {}", current.display(), target.display())
            }
            _ => format!("is not ollama-secure's link to {}", target.display()),
        };
        Err(Error::input(format!(
            "{} already exists and {problem}: move it away or set paths.nginx_site_link",
            link.display()
        )))
    }

    fn service(&self, paths: &Paths, systemd: bool) -> Service {
        let conf = &paths.nginx_conf;
        let direct = |args: &[&str]| Command::new("nginx", args).args(&["-c"]).arg_path(conf);
        let validate = Command::new("nginx", &["-t", "-c"]).arg_path(conf);
        let (start, reload, stop, enable, disable) = if systemd {
            (
                Command::new("systemctl", &["start", "nginx"]),
                Command::new("systemctl", &["reload", "nginx"]),
                Command::new("systemctl", &["stop", "nginx"]),
                Some(Command::new("systemctl", &["enable", "nginx"])),
                Some(Command::new("systemctl", &["disable", "nginx"])),
            )
        } else {
            (direct(&[]), direct(&["-s", "reload"]), direct(&["-s", "quit"]), None, None)
        };
        Service {
            validate,
            start,
            reload,
            stop,
            enable,
            disable,
            pid_file: paths.nginx_pid.clone(),
            reload_is_graceful: true,
            validate_makes_pid_file: true,
            log: None,
            ours: vec![paths.nginx_site.clone(), paths.htpasswd.clone(), paths.api_keys.clone()],
        }
    }

    fn detect(&self, system: &dyn System, paths: &Paths, systemd: bool) -> Detection {
        if systemd {
            let active = system.run(&Command::new("systemctl", &["is-active", "--quiet", "nginx"])).success;
            return Detection { running: active, ..Detection::default() };
        }
        // The PID file nginx itself uses is the one its configuration names.
        let conf = match system.inspect(&paths.nginx_conf) {
            Existing::File { content, .. } => String::from_utf8_lossy(&content).into_owned(),
            _ => String::new(),
        };
        let pid_file = pid_directive(&conf).unwrap_or_else(|| paths.nginx_pid.clone());
        let running = crate::system::running_from_pid_file(system, &pid_file, "nginx").is_some();
        let blocker = match master_of(system, &paths.nginx_conf) {
            Some(pid) if !running => Some(format!(
                "an nginx (pid {pid}) runs with {}, but its PID file {} does not name it, so `nginx -s reload` cannot \
                 reach it: stop it, or write its PID there",
                paths.nginx_conf.display(),
                pid_file.display()
            )),
            _ => None,
        };
        let pid_file = (pid_file != paths.nginx_pid).then_some(pid_file);
        Detection { running, pid_file, note: None, blocker }
    }

    fn certificates(&self) -> Certificates {
        Certificates::Certbot
    }

    fn served_besides_us(&self, paths: &Paths, facts: &Facts) -> Served {
        let mut sites: Vec<PathBuf> = self
            .dirs_to_list(paths)
            .iter()
            .flat_map(|dir| facts.listing(dir).iter().cloned())
            .filter(|path| *path != paths.nginx_site_link)
            .collect();
        sites.sort();
        sites.dedup();
        Served::Sites { sites }
    }

    /// Version 1 recorded the other sites' paths.
    fn served_from_version_1(&self, items: &[String], _paths: &Paths) -> Served {
        Served::Sites { sites: items.iter().map(PathBuf::from).collect() }
    }

    fn repair(&self, paths: &Paths, facts: &Facts) -> Result<Repair> {
        let socket = &paths.auth_socket;
        let state = facts.auth_socket.unwrap_or(SocketState::Missing);
        match state {
            SocketState::NotASocket => {
                return Err(Error::input(format!(
                    "{} exists and is not a socket, so nginx could not listen there: move it away or set paths.auth_socket",
                    socket.display()
                )));
            }
            SocketState::Stale if !facts.proxy_running => {
                let finding = Finding::info(format!(
                    "{} is left from an nginx that did not exit cleanly (nothing listens on it); nginx cannot start until it is removed",
                    socket.display()
                ));
                return Ok(Repair::BeforeStart(
                    vec![Step::final_(Action::RemoveStaleSocket { path: socket.clone() })],
                    finding,
                ));
            }
            _ => {}
        }
        // The running nginx serves our site (it answers there, and the
        // installed site names the socket) but the socket file is gone: a
        // reload keeps the old, unlinked socket, so only a restart brings it
        // back. When the site is not served at all, a reload creates it.
        let site_names_socket = matches!(facts.file(&paths.nginx_site), Existing::File { content, .. }
            if String::from_utf8_lossy(content).contains(&format!("unix:{}", socket.display())));
        let site_answers = !matches!(facts.site, SiteAnswer::Unreachable(_));
        if facts.proxy_running && state == SocketState::Missing && site_names_socket && site_answers {
            return Ok(Repair::Restart(Finding::info(format!(
                "nginx runs, but the auth-only server's socket {} is gone, so every login that is not cached fails with 500; \
                 nginx is restarted to create it again (a reload would not)",
                socket.display()
            ))));
        }
        Ok(Repair::None)
    }

    fn writes_of_its_own(&self, _system: &dyn System, _paths: &Paths, _systemd: bool) -> Vec<Owned> {
        Vec::new()
    }

    fn folders(&self, paths: &Paths, facts: &Facts, state: Option<&State>) -> Folders {
        self.cache_folder(paths, facts, state).with_access_log(paths, facts)
    }

    fn owned_without_records(&self, paths: &Paths) -> Vec<Owned> {
        // Versions 1 and 2 always deleted the cache, wherever it was.
        vec![Owned::new(&paths.auth_cache, OwnedKind::Tree)]
    }

    fn disable(&self, _state: &State, _paths: &Paths, _facts: &Facts) -> Result<Disabled> {
        // The link is one of the links init recorded; uninstall removes those.
        Ok(Disabled { steps: Vec::new(), main_config_after: None })
    }

    fn leftovers(&self, paths: &Paths, facts: &Facts) -> Vec<Step> {
        // nginx deletes its socket when it stops or reloads without our
        // site; one left behind by an nginx that did not exit cleanly goes.
        let stale = facts.auth_socket.is_some_and(|s| s != SocketState::Missing);
        stale.then(|| Step::final_(Action::RemoveStaleSocket { path: paths.auth_socket.clone() })).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_log_is_where_nginx_conf_says() {
        assert_eq!(error_log_file("error_log /var/log/nginx/error.log;\n"), Some("/var/log/nginx/error.log".into()));
        assert_eq!(error_log_file("user x;\nerror_log  /l/e.log warn; # level\n"), Some("/l/e.log".into()));
        assert_eq!(error_log_file("http {\n error_log /in/http.log;\n}\n"), Some("/var/log/nginx/error.log".into()));
        assert_eq!(error_log_file("error_log stderr;\n"), None);
        assert_eq!(error_log_file("error_log syslog:server=unix:/dev/log;\n"), None);
    }
}
