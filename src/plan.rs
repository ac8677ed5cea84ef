//! Rendered files + facts about the system → the list of steps that make the
//! system match. Pure. `--dry-run` prints this plan; apply executes this same
//! plan, step by step.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::config::{Config, Proxy};
use crate::error::{Error, Result};
use crate::facts::{Existing, Facts, OllamaProbe, PackageManager, SiteAnswer, SocketState};
use crate::paths::Paths;
use crate::render::{RenderedFile, Role, redact_hashes};
use crate::state::State;

/// Where a command's output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Captured and shown when the command fails.
    Capture,
    /// Appended to a log file: for commands that leave a daemon behind, which
    /// would otherwise hold our pipe open.
    LogFile(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
    /// Extra environment (never secrets: it is printed).
    pub env: Vec<(String, String)>,
    pub output: Output,
}

impl Command {
    pub fn new(program: &str, args: &[&str]) -> Command {
        Command {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
            output: Output::Capture,
        }
    }

    pub fn arg_path(mut self, path: &Path) -> Command {
        self.args.push(path.to_string_lossy().into_owned());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Command {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Command {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn log_to(mut self, path: &Path) -> Command {
        self.output = Output::LogFile(path.to_path_buf());
        self
    }
}

/// Quotes a word for display the way a POSIX shell would need it.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c));
    if plain { word.to_string() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={}", shell_word(v))).collect();
        words.push(shell_word(&self.program));
        words.extend(self.args.iter().map(|a| shell_word(a)));
        f.write_str(&words.join(" "))?;
        if let Output::LogFile(path) = &self.output {
            write!(f, " >>{} 2>&1", shell_word(&path.to_string_lossy()))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Create,
    /// Replace an existing file, keeping its current bytes at `backup`.
    Replace {
        backup: PathBuf,
    },
    /// Replace a file of our own (the state file), or remove our own lines
    /// from one (uninstall): the previous bytes are held for rollback only.
    Overwrite,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Install {
        command: Command,
    },
    CreateDir {
        path: PathBuf,
    },
    Write {
        file: RenderedFile,
        change: Change,
    },
    Link {
        link: PathBuf,
        target: PathBuf,
    },
    /// Checks the whole configuration; on failure everything is rolled back.
    Validate {
        command: Command,
    },
    Start {
        command: Command,
    },
    Reload {
        command: Command,
    },
    Enable {
        command: Command,
    },
    /// Removes a file or link that ollama-secure created.
    Remove {
        path: PathBuf,
    },
    /// Removes a folder that ollama-secure created, if it is empty.
    RemoveDir {
        path: PathBuf,
    },
    /// Puts back the file that was there before ollama-secure, from its backup.
    Restore {
        path: PathBuf,
        from: PathBuf,
    },
    Stop {
        command: Command,
    },
    /// nginx: certbot fetches the certificate through the webroot.
    ObtainCertificate {
        command: Command,
        domain: String,
        http_port: u16,
    },
    /// Caddy: wait until it serves a certificate for `domain` at `address`.
    AwaitCertificate {
        domain: String,
        address: SocketAddr,
        timeout_secs: u64,
        /// Where Caddy's messages are, to report the ACME error.
        log: Option<PathBuf>,
    },
    /// uninstall: remove a certificate (and its renewal) that init obtained.
    DeleteCertificate {
        command: Command,
    },
    /// uninstall: remove nginx's cache of password checks (its keys hold
    /// credentials), once nginx no longer uses it.
    RemoveCache {
        path: PathBuf,
    },
    /// Removes the auth-only server's socket file when nothing listens on
    /// it: nginx leaves it behind when it does not exit cleanly, and then
    /// refuses to start (bind: address in use).
    RemoveStaleSocket {
        path: PathBuf,
    },
    /// Proves the running proxy serves and protects the site: a request
    /// without credentials to `url`, connected to `connect`, gets 401 with
    /// a Basic challenge. On failure everything is rolled back.
    Verify {
        url: String,
        connect: IpAddr,
    },
}

impl Step {
    /// Steps that change files, as opposed to running the proxy.
    pub fn changes_files(&self) -> bool {
        matches!(
            self,
            Step::CreateDir { .. }
                | Step::Write { .. }
                | Step::Link { .. }
                | Step::Remove { .. }
                | Step::RemoveDir { .. }
                | Step::Restore { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub proxy: Proxy,
    /// What was found, in words (printed before the steps).
    pub findings: Vec<String>,
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

pub fn backup_path(path: &Path, stamp: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".bak-{stamp}"));
    path.with_file_name(name)
}

/// The commands that validate, start and reload the proxy, by init system.
pub struct ServiceCommands {
    pub validate: Command,
    pub start: Command,
    pub reload: Command,
    /// Undoes `start` when a later step fails.
    pub stop: Command,
    pub enable: Option<Command>,
}

pub fn service_commands(proxy: Proxy, p: &Paths, systemd: bool) -> ServiceCommands {
    let name = proxy.name();
    let (validate, direct_start, direct_reload, direct_stop) = match proxy {
        Proxy::Nginx => (
            Command::new("nginx", &["-t", "-c"]).arg_path(&p.nginx_conf),
            Command::new("nginx", &["-c"]).arg_path(&p.nginx_conf),
            Command::new("nginx", &["-s", "reload", "-c"]).arg_path(&p.nginx_conf),
            Command::new("nginx", &["-s", "quit", "-c"]).arg_path(&p.nginx_conf),
        ),
        Proxy::Caddy => (
            Command::new("caddy", &["validate", "--config"]).arg_path(&p.caddyfile).args(&["--adapter", "caddyfile"]),
            Command::new("caddy", &["start", "--config"])
                .arg_path(&p.caddyfile)
                .args(&["--adapter", "caddyfile", "--pidfile"])
                .arg_path(&p.caddy_pid)
                .log_to(&p.caddy_log),
            Command::new("caddy", &["reload", "--config"]).arg_path(&p.caddyfile).args(&["--adapter", "caddyfile"]),
            Command::new("caddy", &["stop", "--config"]).arg_path(&p.caddyfile).args(&["--adapter", "caddyfile"]),
        ),
    };
    if systemd {
        ServiceCommands {
            validate,
            start: Command::new("systemctl", &["enable", "--now", name]),
            reload: Command::new("systemctl", &["reload", name]),
            stop: Command::new("systemctl", &["stop", name]),
            enable: Some(Command::new("systemctl", &["enable", name])),
        }
    } else {
        ServiceCommands { validate, start: direct_start, reload: direct_reload, stop: direct_stop, enable: None }
    }
}

/// The line we add to the main Caddyfile.
pub fn caddy_import_line(paths: &Paths) -> String {
    format!("import {}", paths.caddy_site.display())
}

const IMPORT_COMMENT: &str = "# Added by ollama-secure: the Ollama site lives in its own file.";

/// The main Caddyfile without what `caddyfile_with_import` added.
pub fn caddyfile_without_import(paths: &Paths, text: &str) -> String {
    let line = caddy_import_line(paths);
    let block = format!("{IMPORT_COMMENT}\n{line}\n");
    if text == block {
        return String::new();
    }
    if let Some(original) = text.strip_suffix(&format!("\n{block}")) {
        return original.to_string();
    }
    // Edited since: drop just our two lines, wherever they are now.
    text.lines().filter(|l| l.trim() != line && *l != IMPORT_COMMENT).map(|l| format!("{l}\n")).collect()
}

/// The main Caddyfile with our `import` line, or `None` if it is there already.
fn caddyfile_with_import(config: &Config, existing: Option<&[u8]>) -> Option<String> {
    let line = caddy_import_line(&config.paths);
    let current = existing.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
    if current.lines().any(|l| l.trim() == line) {
        return None;
    }
    let mut text = current;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(IMPORT_COMMENT);
    text.push('\n');
    text.push_str(&line);
    text.push('\n');
    Some(text)
}

/// Plans the writes for `file`: nothing if the system already has exactly
/// this content, mode and group.
fn plan_write(file: RenderedFile, facts: &Facts, steps: &mut Vec<Step>) -> Result<()> {
    let wanted_gid = facts.groups.get(&file.group).copied();
    match facts.file(&file.path) {
        Existing::Missing => steps.push(Step::Write { file, change: Change::Create }),
        Existing::File { content, mode, uid, gid } => {
            let same = *content == file.content.as_bytes()
                && *mode == file.mode
                && *uid == 0
                && wanted_gid.is_some_and(|g| g == *gid);
            if !same {
                let backup = backup_path(&file.path, &facts.stamp);
                steps.push(Step::Write { file, change: Change::Replace { backup } });
            }
        }
        Existing::Symlink { target } => {
            return Err(Error::input(format!(
                "{} is a symbolic link (to {}); refusing to write through it: move it away or choose another path in `paths:`",
                file.path.display(),
                target.display()
            )));
        }
        Existing::Other => {
            return Err(Error::input(format!(
                "{} exists and is not a regular file; choose another path in `paths:`",
                file.path.display()
            )));
        }
    }
    Ok(())
}

/// Plans every missing folder above `paths`, outermost first.
fn plan_parent_dirs(paths: &[&Path], facts: &Facts, steps: &mut Vec<Step>) {
    for path in paths {
        let mut missing: Vec<&Path> =
            path.ancestors().skip(1).take_while(|dir| matches!(facts.file(dir), Existing::Missing)).collect();
        missing.reverse();
        for dir in missing {
            if !steps.iter().any(|s| matches!(s, Step::CreateDir { path } if path == dir)) {
                steps.push(Step::CreateDir { path: dir.to_path_buf() });
            }
        }
    }
}

/// What the proxy serves besides our site, in a form to compare later: the
/// other site files nginx loads, or a fingerprint of the main Caddyfile's
/// directives without our import line (comments and blank lines aside).
pub fn served_besides_us(proxy: Proxy, paths: &Paths, facts: &Facts) -> Vec<String> {
    match proxy {
        Proxy::Nginx => facts.other_nginx_sites.iter().map(|p| p.display().to_string()).collect(),
        Proxy::Caddy => {
            let Existing::File { content, .. } = facts.file(&paths.caddyfile) else { return Vec::new() };
            let rest = caddyfile_without_import(paths, &String::from_utf8_lossy(content));
            let directives: String = rest
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| format!("{l}\n"))
                .collect();
            if directives.is_empty() {
                Vec::new()
            } else {
                vec![format!("{} {}", paths.caddyfile.display(), crate::render::fingerprint(directives.as_bytes()))]
            }
        }
    }
}

/// The state after `steps`. What a path was before ollama-secure first
/// touched it stays recorded as first seen.
fn record_state<'a>(
    previous: Option<State>,
    config: &Config,
    facts: &Facts,
    steps: impl IntoIterator<Item = &'a Step>,
) -> State {
    let mut state = previous.unwrap_or_else(|| State::new(config.proxy.name()));
    state.url = Some(config.public_url());
    state.connect = Some(local_address(config));
    for step in steps {
        match step {
            Step::CreateDir { path } => state.note_dir(path),
            Step::Write { file, change } => {
                let main_config = file.role == Role::MainConfig;
                if main_config {
                    state.caddyfile_import = Some(file.path.clone());
                }
                match change {
                    Change::Create => state.note_write(&file.path, None),
                    Change::Replace { backup } => {
                        // The main Caddyfile stays the user's: uninstall removes our lines only.
                        if !main_config {
                            state.note_write(&file.path, Some(backup));
                        }
                        state.note_backup(backup);
                    }
                    Change::Overwrite => {}
                }
            }
            Step::Link { link, .. } => state.note_link(link),
            Step::Start { .. } => {
                state.started = true;
                state.served_besides_us = Some(served_besides_us(config.proxy, &config.paths, facts));
            }
            Step::ObtainCertificate { domain, .. } if !state.certificates.contains(domain) => {
                state.certificates.push(domain.clone())
            }
            _ => {}
        }
    }
    state
}

/// The step that writes `state`, unless the state file already says exactly that.
fn state_step(config: &Config, state: &State, facts: &Facts) -> Option<Step> {
    let content = state.to_text();
    let change = match facts.file(&config.paths.state) {
        Existing::File { content: current, .. } if *current == content.as_bytes() => return None,
        Existing::File { .. } => Change::Overwrite,
        _ => Change::Create,
    };
    let file = RenderedFile {
        path: config.paths.state.clone(),
        role: Role::State,
        mode: 0o644,
        group: "root".into(),
        secret: false,
        content,
    };
    Some(Step::Write { file, change })
}

fn preflight(config: &Config, facts: &Facts, findings: &mut Vec<String>) -> Result<Option<Command>> {
    let proxy = config.proxy.name();
    let mut problems = Vec::new();
    let mut packages = Vec::new();
    if facts.proxy_installed {
        findings.push(format!("{proxy} is installed"));
    } else {
        packages.push(config.proxy.package());
    }
    // nginx gets its certificate from certbot; Caddy fetches its own.
    if config.proxy == Proxy::Nginx && config.https.is_some() && !facts.certbot_installed {
        packages.push("certbot");
    }
    let install = if packages.is_empty() {
        None
    } else {
        let list = packages.join(" ");
        match (config.install, facts.package_manager) {
            (true, Some(PackageManager::Apt)) => {
                findings.push(format!("not installed: {list}; it will be installed with apt-get"));
                Some(
                    Command::new("apt-get", &["install", "-y"])
                        .args(&packages)
                        .env("DEBIAN_FRONTEND", "noninteractive"),
                )
            }
            (true, Some(PackageManager::Brew)) => {
                findings.push(format!("not installed: {list}; it will be installed with Homebrew"));
                Some(Command::new("brew", &["install"]).args(&packages))
            }
            (true, None) => {
                problems.push(format!(
                    "{list} not installed and no known package manager (apt-get, brew) was found: install it yourself, then run this again"
                ));
                None
            }
            (false, _) => {
                problems.push(format!(
                    "{list} not installed: install it (e.g. `apt-get install {list}`) or set `install: true` in the answers file"
                ));
                None
            }
        }
    };
    findings.push(if facts.systemd {
        format!("systemd is running: {proxy} is managed with systemctl")
    } else {
        format!("systemd is not running (PID 1 is something else): {proxy} is started and reloaded directly")
    });
    findings.push(if facts.proxy_running { format!("{proxy} is running") } else { format!("{proxy} is not running") });
    for used in &facts.port_uses {
        match &used.owner {
            Some(owner) if owner.name == proxy => {}
            Some(owner) => problems.push(format!(
                "port {} is already in use by {} (pid {}) on {}: stop it, or choose another port",
                used.port, owner.name, owner.pid, used.address
            )),
            None => problems.push(format!(
                "port {} is already in use on {} by a process we cannot see: choose another port",
                used.port, used.address
            )),
        }
    }
    findings.push(match &facts.ollama {
        OllamaProbe::Answers { version } => format!("Ollama {version} answers at {}", config.upstream.url()),
        OllamaProbe::Unexpected(why) => {
            format!("warning: something answers at {} but not like Ollama ({why})", config.upstream.url())
        }
        OllamaProbe::NotReachable(why) => {
            format!(
                "warning: Ollama does not answer at {} ({why}); the proxy will answer 502 until it does",
                config.upstream.url()
            )
        }
        OllamaProbe::NotProbed => format!("Ollama at {} was not probed", config.upstream.url()),
    });
    if !problems.is_empty() {
        return Err(Error::input(format!("cannot apply; nothing was changed:\n  - {}", problems.join("\n  - "))));
    }
    Ok(install)
}

/// Builds the plan. `rendered` comes from `render::render`.
/// Plans a folder and every missing folder above it.
fn plan_dir(dir: &Path, facts: &Facts, steps: &mut Vec<Step>) {
    plan_parent_dirs(&[&dir.join("x")], facts, steps);
}

/// The address on this machine that serves the site (for checks from here).
pub fn local_address(config: &Config) -> IpAddr {
    match config.listen_address {
        Some(addr) if !addr.is_unspecified() => addr,
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

/// certbot's command that obtains the certificate for the site.
fn certbot_command(config: &Config, domain: &str, reload: &Command) -> Command {
    let p = &config.paths;
    let https = config.https.as_ref().expect("only for https");
    let mut command = Command::new("certbot", &["certonly", "--webroot", "-w"]).arg_path(&p.acme_webroot).args(&[
        "-d",
        domain,
        "--cert-name",
        domain,
    ]);
    command = match &https.email {
        Some(email) => command.args(&["--email", email]),
        None => command.args(&["--register-unsafely-without-email"]),
    };
    command = command.args(&["--agree-tos", "--no-eff-email", "--non-interactive"]);
    if let Some(directory) = &https.acme_directory {
        command = command.args(&["--server", directory]);
    }
    command = command
        .args(&["--config-dir"])
        .arg_path(&p.letsencrypt)
        .args(&["--work-dir"])
        .arg_path(&p.certbot_work)
        .args(&["--logs-dir"])
        .arg_path(&p.certbot_logs)
        // Saved in the renewal configuration: every renewal reloads nginx.
        .args(&["--deploy-hook", &reload.to_string()]);
    if let Some(root) = &https.acme_ca_root {
        command = command.env("REQUESTS_CA_BUNDLE", &root.to_string_lossy());
    }
    command
}

/// certbot's `live/` files are links into `archive/`; a link counts.
fn certificate_present(config: &Config, facts: &Facts) -> bool {
    let present = |path: &Path| matches!(facts.file(path), Existing::File { .. } | Existing::Symlink { .. });
    crate::render::certificate_paths(config).is_some_and(|(cert, key)| present(&cert) && present(&key))
}

/// Builds the plan. `rendered` comes from `render::render`.
pub fn build(config: &Config, rendered: Vec<RenderedFile>, facts: &Facts) -> Result<Plan> {
    let mut findings = Vec::new();
    let mut steps = Vec::new();
    if let Some(command) = preflight(config, facts, &mut findings)? {
        steps.push(Step::Install { command });
    }
    let domain = config.domain.as_ref().map(|d| d.to_string()).unwrap_or_default();
    let nginx_https = config.proxy == Proxy::Nginx && config.https.is_some();
    // nginx cannot load a TLS server without its certificate: first a site
    // with only the challenge server, then certbot, then the full site.
    let acme_bootstrap = nginx_https && !certificate_present(config, facts);

    let mut files = rendered;
    let mut final_site = None;
    if acme_bootstrap {
        let bootstrap = crate::render::render_nginx_acme_bootstrap(config)?;
        if let Some(site) = files.iter_mut().find(|f| f.role == Role::Site) {
            final_site = Some(std::mem::replace(site, bootstrap));
        }
    }
    if config.proxy == Proxy::Caddy {
        let existing = match facts.file(&config.paths.caddyfile) {
            Existing::File { content, .. } => Some(content.as_slice()),
            _ => None,
        };
        if let Some(content) = caddyfile_with_import(config, existing) {
            let mode = match facts.file(&config.paths.caddyfile) {
                Existing::File { mode, .. } => *mode,
                _ => 0o644,
            };
            files.push(RenderedFile {
                path: config.paths.caddyfile.clone(),
                role: Role::MainConfig,
                mode,
                group: "root".to_string(),
                secret: false,
                content,
            });
        }
    }

    let mut dirs: Vec<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    if config.proxy == Proxy::Nginx {
        dirs.push(&config.paths.nginx_site_link);
    }
    plan_parent_dirs(&dirs, facts, &mut steps);
    if nginx_https {
        plan_dir(&config.paths.acme_webroot, facts, &mut steps);
    }
    for file in files {
        plan_write(file, facts, &mut steps)?;
    }

    if config.proxy == Proxy::Nginx {
        let link = &config.paths.nginx_site_link;
        let target = &config.paths.nginx_site;
        match facts.file(link) {
            Existing::Missing => steps.push(Step::Link { link: link.clone(), target: target.clone() }),
            Existing::Symlink { target: current } if current == target => {}
            Existing::Symlink { target: current } => {
                return Err(Error::input(format!(
                    "{} already exists and points to {}, not to {}: move it away or set paths.nginx_site_link",
                    link.display(),
                    current.display(),
                    target.display()
                )));
            }
            _ => {
                return Err(Error::input(format!(
                    "{} already exists and is not ollama-secure's link to {}: move it away or set paths.nginx_site_link",
                    link.display(),
                    target.display()
                )));
            }
        }
    }

    let service = service_commands(config.proxy, &config.paths, facts.systemd);
    let changed = !steps.is_empty();
    let mut service_steps = bring_up(config.proxy, &config.paths, facts, &service, changed, &mut findings)?;
    if let Some(final_site) = final_site {
        service_steps.push(Step::ObtainCertificate {
            command: certbot_command(config, &domain, &service.reload),
            domain: domain.clone(),
            http_port: config.https.as_ref().map_or(80, |h| h.http_port),
        });
        service_steps.push(Step::Write { file: final_site, change: Change::Overwrite });
        service_steps.push(Step::Validate { command: service.validate.clone() });
        service_steps.push(Step::Reload { command: service.reload.clone() });
    }
    if config.proxy == Proxy::Caddy && config.https.is_some() && !service_steps.is_empty() {
        service_steps.push(Step::AwaitCertificate {
            domain: domain.clone(),
            address: SocketAddr::new(local_address(config), config.port),
            timeout_secs: 120,
            log: (!facts.systemd).then(|| config.paths.caddy_log.clone()),
        });
    }
    if !service_steps.is_empty() {
        service_steps.push(Step::Verify { url: config.public_url(), connect: local_address(config) });
    }
    if config.https.is_some() {
        findings.push(renewal_finding(config, facts));
    }
    // Recorded before the proxy is touched, so a failure rolls it back too.
    if changed {
        plan_parent_dirs(&[config.paths.state.as_path()], facts, &mut steps);
    }
    let previous = crate::facts::state(&config.paths, facts)?;
    let state = record_state(previous, config, facts, steps.iter().chain(&service_steps));
    steps.extend(state_step(config, &state, facts));
    steps.extend(service_steps);
    if facts.systemd
        && facts.proxy_running
        && !facts.service_enabled
        && let Some(command) = service.enable
    {
        steps.push(Step::Enable { command });
    }
    Ok(Plan { proxy: config.proxy, findings, steps })
}

/// The steps that make the running proxy serve the files as planned:
/// start it, reload it after a change, or repair what runs when the files
/// already match but the proxy does not serve them (a lost auth socket
/// needs a restart: nginx creates it only when it starts).
fn bring_up(
    proxy: Proxy,
    paths: &Paths,
    facts: &Facts,
    service: &ServiceCommands,
    changed: bool,
    findings: &mut Vec<String>,
) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    let socket = &paths.auth_socket;
    if proxy == Proxy::Nginx {
        match facts.auth_socket {
            SocketState::NotASocket => {
                return Err(Error::input(format!(
                    "{} exists and is not a socket, so nginx could not listen there: move it away or set paths.auth_socket",
                    socket.display()
                )));
            }
            SocketState::Stale if !facts.proxy_running => {
                findings.push(format!(
                    "{} is left from an nginx that did not exit cleanly (nothing listens on it); nginx cannot start until it is removed",
                    socket.display()
                ));
                steps.push(Step::RemoveStaleSocket { path: socket.clone() });
            }
            _ => {}
        }
    }
    if !facts.proxy_running {
        steps.push(Step::Validate { command: service.validate.clone() });
        steps.push(Step::Start { command: service.start.clone() });
        return Ok(steps);
    }
    // The running nginx serves our site (it answers there, and the installed
    // site names the socket) but the socket file is gone: a reload keeps the
    // old, unlinked socket, so only a restart brings it back. When the site
    // is not served at all, the reload below creates the socket.
    let site_names_socket = matches!(facts.file(&paths.nginx_site), Existing::File { content, .. }
        if String::from_utf8_lossy(content).contains(&format!("unix:{}", socket.display())));
    let site_answers = !matches!(facts.site, SiteAnswer::Unreachable(_));
    if proxy == Proxy::Nginx && facts.auth_socket == SocketState::Missing && site_names_socket && site_answers {
        findings.push(format!(
            "nginx runs, but the auth-only server's socket {} is gone, so every login that is not cached fails with 500; \
             nginx is restarted to create it again (a reload would not)",
            socket.display()
        ));
        steps.push(Step::Validate { command: service.validate.clone() });
        steps.push(Step::Stop { command: service.stop.clone() });
        steps.push(Step::Start { command: service.start.clone() });
        return Ok(steps);
    }
    if !changed {
        let answer = match &facts.site {
            SiteAnswer::AsksForCredentials | SiteAnswer::NotProbed => return Ok(steps),
            SiteAnswer::Status(status) => format!("answers {status}"),
            SiteAnswer::Unreachable(why) => format!("cannot be reached ({why})"),
        };
        findings.push(format!(
            "the files match the answers, but the site {answer} without credentials instead of asking for them (401): \
             {proxy} is not serving them, so it is reloaded"
        ));
    }
    steps.push(Step::Validate { command: service.validate.clone() });
    steps.push(Step::Reload { command: service.reload.clone() });
    Ok(steps)
}

/// The plan for a change to the users file of an installed setup: write it
/// (with a backup), validate, reload. Without a running proxy the change
/// waits for its next start.
pub fn users_change(proxy: Proxy, paths: &Paths, facts: &Facts, files: Vec<RenderedFile>) -> Result<Plan> {
    let mut steps = Vec::new();
    let mut findings = Vec::new();
    for file in files {
        plan_write(file, facts, &mut steps)?;
    }
    if !steps.is_empty() {
        let service = service_commands(proxy, paths, facts.systemd);
        if facts.proxy_running {
            steps.extend(bring_up(proxy, paths, facts, &service, true, &mut findings)?);
        } else {
            steps.push(Step::Validate { command: service.validate });
            findings.push(format!("{proxy} is not running: the change takes effect when it starts"));
        }
    }
    Ok(Plan { proxy, findings, steps })
}

/// How the certificate will be renewed, in words.
fn renewal_finding(config: &Config, facts: &Facts) -> String {
    match config.proxy {
        Proxy::Caddy => "renewal: Caddy renews its certificates itself while it runs".to_string(),
        Proxy::Nginx if facts.systemd => {
            "renewal: Debian's certbot.timer runs `certbot renew` twice a day; each renewal reloads nginx (deploy hook)"
                .to_string()
        }
        Proxy::Nginx if facts.certbot_cron => {
            "renewal: /etc/cron.d/certbot runs `certbot renew` twice a day when cron runs \
             (there is no systemd here); each renewal reloads nginx (deploy hook)"
                .to_string()
        }
        Proxy::Nginx => "renewal: nothing schedules `certbot renew` here (no systemd timer, no /etc/cron.d/certbot): \
             add it to cron, e.g. `0 3,15 * * * certbot -q renew`"
            .to_string(),
    }
}

/// One line per step, without file contents: the wizard's summary before
/// its final question (`--dry-run` shows everything).
pub fn summary(plan: &Plan) -> String {
    plan.steps
        .iter()
        .map(|step| match step {
            Step::Install { command } => format!("  - install: {command}\n"),
            Step::CreateDir { path } => format!("  - create {}\n", path.display()),
            Step::Write { file, change: Change::Replace { backup } } => {
                format!("  - replace {} (kept as {})\n", file.path.display(), backup.display())
            }
            Step::Write { file, .. } => format!("  - write {}\n", file.path.display()),
            Step::Link { link, target } => format!("  - link {} -> {}\n", link.display(), target.display()),
            Step::Validate { command }
            | Step::Start { command }
            | Step::Reload { command }
            | Step::Enable { command }
            | Step::Stop { command }
            | Step::ObtainCertificate { command, .. }
            | Step::DeleteCertificate { command } => format!("  - run: {command}\n"),
            Step::Remove { path } | Step::RemoveDir { path } | Step::RemoveCache { path } => {
                format!("  - remove {}\n", path.display())
            }
            Step::Restore { path, .. } => format!("  - restore {}\n", path.display()),
            Step::AwaitCertificate { domain, .. } => format!("  - wait for Caddy's certificate for {domain}\n"),
            Step::RemoveStaleSocket { path } => format!("  - remove the stale socket {}\n", path.display()),
            Step::Verify { url, .. } => format!("  - verify: {url} asks for credentials (401)\n"),
        })
        .collect()
}

fn owner_text(file: &RenderedFile) -> String {
    format!("root:{}", file.group)
}

/// The plan as `--dry-run` prints it. File contents are shown in full, with
/// password hashes redacted (plaintext passwords never reach a plan).
pub fn describe(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.findings.is_empty() {
        out.push_str("Found:\n");
        for finding in &plan.findings {
            let _ = writeln!(out, "  - {finding}");
        }
        out.push('\n');
    }
    if plan.is_empty() {
        out.push_str("Nothing to change: the system already matches the answers.\n");
        return out;
    }
    out.push_str("Steps:\n");
    for (i, step) in plan.steps.iter().enumerate() {
        let n = i + 1;
        let _ = match step {
            Step::Install { command } => writeln!(out, "{n:>2}. install {}: run `{command}`", plan.proxy),
            Step::CreateDir { path } => {
                writeln!(out, "{n:>2}. create directory {} (mode 0755, owner root:root)", path.display())
            }
            Step::Write { file, change } => {
                let what = match change {
                    Change::Create => "new file".to_string(),
                    Change::Replace { backup } => {
                        format!("replaces the current file, which is kept as {}", backup.display())
                    }
                    Change::Overwrite => "replaces ollama-secure's own content".to_string(),
                };
                let _ = writeln!(
                    out,
                    "{n:>2}. write {} ({what}; mode {:04o}, owner {}){}",
                    file.path.display(),
                    file.mode,
                    owner_text(file),
                    if file.secret { "; password hashes shown redacted" } else { "" }
                );
                let content = if file.secret { redact_hashes(&file.content) } else { file.content.clone() };
                for line in content.lines() {
                    let _ = writeln!(out, "      | {line}");
                }
                Ok(())
            }
            Step::Link { link, target } => writeln!(out, "{n:>2}. link {} -> {}", link.display(), target.display()),
            Step::Validate { command } => {
                writeln!(out, "{n:>2}. validate: run `{command}` (if it fails, every change above is undone)")
            }
            Step::Start { command } => writeln!(out, "{n:>2}. start {}: run `{command}`", plan.proxy),
            Step::Reload { command } => writeln!(out, "{n:>2}. reload {}: run `{command}`", plan.proxy),
            Step::Enable { command } => writeln!(out, "{n:>2}. enable {} at boot: run `{command}`", plan.proxy),
            Step::Remove { path } => writeln!(out, "{n:>2}. remove {}", path.display()),
            Step::RemoveDir { path } => writeln!(out, "{n:>2}. remove the folder {} if it is empty", path.display()),
            Step::Restore { path, from } => {
                writeln!(
                    out,
                    "{n:>2}. restore {} from {} (the file that was there before)",
                    path.display(),
                    from.display()
                )
            }
            Step::Stop { command } => writeln!(out, "{n:>2}. stop {}: run `{command}`", plan.proxy),
            Step::ObtainCertificate { command, .. } => {
                writeln!(
                    out,
                    "{n:>2}. obtain the certificate: run `{command}` (if it fails, every change above is undone)"
                )
            }
            Step::AwaitCertificate { domain, address, timeout_secs, .. } => writeln!(
                out,
                "{n:>2}. wait (up to {timeout_secs} s) until Caddy serves a certificate for {domain} at {address} \
                 (if it does not, every change above is undone)"
            ),
            Step::DeleteCertificate { command } => writeln!(out, "{n:>2}. delete the certificate: run `{command}`"),
            Step::RemoveCache { path } => {
                writeln!(out, "{n:>2}. remove the cache of password checks {}", path.display())
            }
            Step::RemoveStaleSocket { path } => writeln!(
                out,
                "{n:>2}. remove the socket {} if nothing listens on it (nginx cannot start while a stale one is there)",
                path.display()
            ),
            Step::Verify { url, connect } => writeln!(
                out,
                "{n:>2}. verify: a request without credentials to {url} (connected to {connect}) gets 401 \
                 (if it does not, every change above is undone)"
            ),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_display_as_shell_lines() {
        let c = Command::new("nginx", &["-t", "-c", "/tmp/a b/nginx.conf"]).env("A", "x y");
        assert_eq!(c.to_string(), "A='x y' nginx -t -c '/tmp/a b/nginx.conf'");
        let c = Command::new("caddy", &["start"]).log_to(Path::new("/var/log/c.log"));
        assert_eq!(c.to_string(), "caddy start >>/var/log/c.log 2>&1");
    }

    #[test]
    fn backups_sit_next_to_the_file() {
        assert_eq!(
            backup_path(Path::new("/etc/caddy/Caddyfile"), "20261130T175200Z"),
            PathBuf::from("/etc/caddy/Caddyfile.bak-20261130T175200Z")
        );
    }

    #[test]
    fn the_import_line_is_added_once() {
        let config = crate::config::Config::from_answers(
            &crate::answers::Answers::from_yaml("proxy: caddy\nusers: [{username: a, generate: true}]\n", "t").unwrap(),
            "t",
            crate::paths::Os::Debian,
            &crate::config::ProcessSecrets,
        )
        .unwrap();
        let added = caddyfile_with_import(&config, Some(b":80 {\n\tfile_server\n}")).unwrap();
        assert_eq!(
            added,
            ":80 {\n\tfile_server\n}\n\n# Added by ollama-secure: the Ollama site lives in its own file.\nimport /etc/caddy/ollama.caddy\n"
        );
        assert_eq!(caddyfile_with_import(&config, Some(added.as_bytes())), None);
        assert_eq!(caddyfile_without_import(&config.paths, &added), ":80 {\n\tfile_server\n}\n");
        let fresh = caddyfile_with_import(&config, None).unwrap();
        assert_eq!(caddyfile_without_import(&config.paths, &fresh), "");
        let edited = format!("{{\n\temail a@b.c\n}}\n{added}:81 {{\n}}\n");
        assert_eq!(
            caddyfile_without_import(&config.paths, &edited),
            "{\n\temail a@b.c\n}\n:80 {\n\tfile_server\n}\n\n:81 {\n}\n"
        );
    }
}
