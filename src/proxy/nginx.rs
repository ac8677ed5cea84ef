//! nginx: a site in sites-available enabled by a link, users in an
//! htpasswd file checked by an auth-only server behind a unix socket (its
//! successes cached), certificates from certbot.

use std::path::{Path, PathBuf};

use minijinja::Value;

use super::{Certificates, Disabled, Enable, Proxy, ProxyKind, Repair, Served, Service, Stage};
use crate::error::{Error, Finding, Result};
use crate::facts::{Facts, SiteAnswer};
use crate::fields::Host;
use crate::paths::{Os, Paths};
use crate::plan::{Action, Command, Step};
use crate::render::{self, RenderedFile, Role, path_text};
use crate::setup::{Https, Setup};
use crate::state::State;
use crate::system::{Existing, SocketState};
use crate::userfile::Format;

pub struct Nginx;

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

/// Changes whenever a user does, so that cached logins never outlive a
/// credential change: the first word of the cache key.
fn users_fingerprint(setup: &Setup) -> String {
    render::fingerprint(
        setup.users.entries().flat_map(|e| [e.username.as_bytes(), b":", e.hash.as_bytes(), b"\n"]).flatten(),
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
            auth_cache => path_text(&paths.auth_cache),
            auth_socket => path_text(&paths.auth_socket),
            users_fingerprint => users_fingerprint(setup),
            acme_bootstrap => stage == Stage::AwaitingCertificate,
        }
    }
}

impl Proxy for Nginx {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Nginx
    }

    fn default_group(&self, os: Os) -> &'static str {
        match os {
            Os::Debian => "www-data",
            Os::MacHomebrew => "staff",
        }
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

    fn keeps_last_user_because(&self) -> &'static str {
        "nginx would then refuse everyone (an empty user file locks the proxy)"
    }

    fn paths_to_inspect(&self, paths: &Paths) -> Vec<PathBuf> {
        vec![
            paths.nginx_site.clone(),
            paths.nginx_site_link.clone(),
            paths.nginx_conf.clone(),
            paths.auth_cache.clone(),
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

    fn render(&self, setup: &Setup, stage: Stage) -> Result<Vec<RenderedFile>> {
        let env = render::environment(TEMPLATES);
        let paths = &setup.settings.paths;
        let users = minijinja::context! {
            version => env!("CARGO_PKG_VERSION"),
            new_file => !setup.users.was_read(),
            user_lines => render::user_lines(setup),
        };
        let htpasswd = render::render_template(&env, "htpasswd", &users)?;
        let site = render::render_template(&env, "nginx-site.conf", &site_context(setup, stage))?;
        Ok(vec![
            RenderedFile::ours(&paths.htpasswd, Role::Users, setup, true, htpasswd),
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
        let (start, reload, stop, enable) = if systemd {
            (
                Command::new("systemctl", &["enable", "--now", "nginx"]),
                Command::new("systemctl", &["reload", "nginx"]),
                Command::new("systemctl", &["stop", "nginx"]),
                Some(Command::new("systemctl", &["enable", "nginx"])),
            )
        } else {
            (direct(&[]), direct(&["-s", "reload"]), direct(&["-s", "quit"]), None)
        };
        Service {
            validate,
            start,
            reload,
            stop,
            enable,
            pid_file: paths.nginx_pid.clone(),
            reload_is_graceful: true,
            log: None,
            ours: vec![paths.nginx_site.clone(), paths.htpasswd.clone()],
        }
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

    fn disable(&self, _state: &State, _paths: &Paths, _facts: &Facts) -> Result<Disabled> {
        // The link is one of the links init recorded; uninstall removes those.
        Ok(Disabled { steps: Vec::new(), main_config_after: None })
    }

    fn leftovers(&self, paths: &Paths, facts: &Facts) -> Vec<Step> {
        let mut steps = Vec::new();
        // nginx deletes its socket when it stops or reloads without our
        // site; one left behind by an nginx that did not exit cleanly goes.
        if facts.auth_socket.is_some_and(|s| s != SocketState::Missing) {
            steps.push(Step::final_(Action::RemoveStaleSocket { path: paths.auth_socket.clone() }));
        }
        if !matches!(facts.file(&paths.auth_cache), Existing::Missing) {
            steps.push(Step::final_(Action::RemoveCache { path: paths.auth_cache.clone() }));
        }
        steps
    }
}
