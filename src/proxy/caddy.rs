//! Caddy: a site file of our own, with its users in a `basicauth` block,
//! imported by two lines at the end of the user's main Caddyfile;
//! certificates from Caddy's own ACME client.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{
    AptRepository, Certificates, Detection, Disabled, Enable, Folders, Proxy, ProxyKind, Repair, Served, Service, Stage,
};
use crate::error::Result;
use crate::facts::Facts;
use crate::paths::{Os, Paths};
use crate::plan::{Command, Snapshot, Step};
use crate::render::{self, RenderedFile, Role};
use crate::setup::{Https, Setup};
use crate::state::{Owned, OwnedKind, State};
use crate::system::{Existing, System};
use crate::userfile::Format;

pub struct Caddy;

const TEMPLATES: &[(&str, &str)] = &[("caddy-site.caddy", include_str!("../../templates/caddy-site.caddy.j2"))];

const IMPORT_COMMENT: &str = "# Added by ollama-secure: the Ollama site lives in its own file.";

/// The line we add to the main Caddyfile.
fn import_line(paths: &Paths) -> String {
    format!("import {}", paths.caddy_site.display())
}

/// The main Caddyfile with our `import` line, or `None` if it is there already.
pub fn with_import(paths: &Paths, existing: Option<&[u8]>) -> Option<String> {
    let line = import_line(paths);
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

const ADMIN_COMMENT: &str = "# Added by ollama-secure: the admin API on a socket only root can use.";
const ADMIN_BLOCK_COMMENT: &str =
    "# Added by ollama-secure (this block too): the admin API on a socket only root can use.";

fn admin_line(paths: &Paths) -> String {
    format!("admin unix/{}", paths.caddy_admin.display())
}

/// Whether the Caddyfile carries our `admin` line.
fn has_our_admin(paths: &Paths, caddyfile: &str) -> bool {
    let line = admin_line(paths);
    caddyfile.lines().any(|l| l.trim() == line)
}

/// Whether the Caddyfile sets no `admin` option: Caddy's admin API is then
/// on TCP (localhost:2019), open to every local user.
fn admin_left_at_default(caddyfile: &str) -> bool {
    !global_options(caddyfile).iter().any(|words| words.first() == Some(&"admin"))
}

/// The Caddyfile with our `admin` line: in its global options block, or
/// in one of ours opening the file (global options must come first).
fn with_admin(paths: &Paths, caddyfile: &str) -> String {
    let line = admin_line(paths);
    let mut lines = caddyfile.lines();
    let opens_with_options = caddyfile
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .find(|l| !l.is_empty())
        .is_some_and(|l| l == "{");
    if opens_with_options {
        let mut text = String::new();
        for l in lines.by_ref() {
            text.push_str(l);
            text.push('\n');
            if l.split('#').next().unwrap_or_default().trim() == "{" {
                break;
            }
        }
        text.push_str(&format!("\t{ADMIN_COMMENT}\n\t{line}\n"));
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        if !caddyfile.ends_with('\n') {
            text.pop();
        }
        return text;
    }
    let block = format!("{{\n\t{ADMIN_BLOCK_COMMENT}\n\t{line}\n}}\n");
    if caddyfile.is_empty() { block } else { format!("{block}\n{caddyfile}") }
}

/// The Caddyfile without our `admin` line (and the block we made for it).
fn without_admin(paths: &Paths, caddyfile: &str) -> String {
    let line = admin_line(paths);
    let block = format!("{{\n\t{ADMIN_BLOCK_COMMENT}\n\t{line}\n}}\n");
    if let Some(rest) = caddyfile.strip_prefix(&block) {
        return rest.strip_prefix('\n').unwrap_or(rest).to_string();
    }
    if !has_our_admin(paths, caddyfile) {
        return caddyfile.to_string();
    }
    let kept: Vec<&str> = caddyfile
        .lines()
        .filter(|l| l.trim() != line && l.trim() != ADMIN_COMMENT && l.trim() != ADMIN_BLOCK_COMMENT)
        .collect();
    let mut text = kept.join("\n");
    if caddyfile.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The main Caddyfile as ollama-secure wants it: with our `import`, and,
/// when `close_admin`, our `admin` line; `None` if it is so already.
pub fn main_caddyfile(paths: &Paths, existing: Option<&[u8]>, close_admin: bool) -> Option<String> {
    let current = existing.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
    let imported = with_import(paths, Some(current.as_bytes())).unwrap_or_else(|| current.clone());
    let wanted = if close_admin && !has_our_admin(paths, &imported) { with_admin(paths, &imported) } else { imported };
    (wanted != current).then_some(wanted)
}

/// The main Caddyfile without what `with_import` and `with_admin` added.
pub fn without_import(paths: &Paths, text: &str) -> String {
    let text = without_admin(paths, text);
    let line = import_line(paths);
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

/// Whether ollama-secure closes Caddy's admin API (or has): the Caddy it
/// starts itself (no systemd, none running) gets it on a socket of ours
/// when the Caddyfile leaves it at Caddy's default; once there, it stays.
fn closes_admin(paths: &Paths, facts: &Facts) -> bool {
    let caddyfile = match facts.file(&paths.caddyfile) {
        Existing::File { content, .. } => String::from_utf8_lossy(content).into_owned(),
        _ => String::new(),
    };
    has_our_admin(paths, &caddyfile) || (!facts.systemd && !facts.proxy_running && admin_left_at_default(&caddyfile))
}

/// The Caddyfile without our lines, exactly as it was before init when it
/// differs from the oldest backup only in the line break init added at
/// its end (`with_import` ends the user's last line before its own).
fn as_before(state: &State, caddyfile: &Path, facts: &Facts, without: String) -> String {
    let oldest = state.backups.iter().find(|b| State::backed_up_path(b).as_deref() == Some(caddyfile));
    match oldest.map(|b| facts.file(b)) {
        Some(Existing::File { content, .. }) if content.trim_ascii_end() == without.as_bytes().trim_ascii_end() => {
            String::from_utf8_lossy(content).into_owned()
        }
        _ => without,
    }
}

/// The lines of the global options block that opens a Caddyfile (the
/// lines of blocks nested in it included), each as words.
fn global_options(caddyfile: &str) -> Vec<Vec<&str>> {
    let mut lines = caddyfile.lines().map(|l| l.split('#').next().unwrap_or_default().trim()).filter(|l| !l.is_empty());
    // Global options are a block that opens the file with `{` alone.
    if lines.next() != Some("{") {
        return Vec::new();
    }
    let mut depth = 1;
    let mut options = Vec::new();
    for line in lines {
        depth += line.matches('{').count();
        depth -= line.matches('}').count().min(depth);
        if depth == 0 {
            break;
        }
        options.push(line.split_whitespace().collect());
    }
    options
}

/// Where the admin API of a Caddy loaded from `caddyfile` listens: its
/// global `admin` option, or Caddy's default; `None` when it is off or on
/// a unix socket (which this cannot ask).
fn admin_address(caddyfile: &str) -> Option<String> {
    for words in global_options(caddyfile) {
        match words.as_slice() {
            ["admin", "off", ..] => return None,
            ["admin", address, ..] if address.starts_with("unix/") => return None,
            ["admin", address, ..] if *address != "{" => return Some(address.to_string()),
            _ => {}
        }
    }
    Some("localhost:2019".to_string())
}

/// The folder of the global `storage file_system` option (`storage
/// file_system PATH`, or `root PATH` in its block), which replaces Caddy's
/// data folder.
fn storage_root(caddyfile: &str) -> Option<PathBuf> {
    let options = global_options(caddyfile);
    let mut in_storage = false;
    for words in options {
        match words.as_slice() {
            ["storage", "file_system", "{"] => in_storage = true,
            ["storage", "file_system", path] => return Some(PathBuf::from(path)),
            ["root", path] if in_storage => return Some(PathBuf::from(path)),
            ["}"] => in_storage = false,
            _ => {}
        }
    }
    None
}

/// Whether a site of this Caddyfile serves plain HTTP on port 80 without
/// `bind` (on every address): `:80`, `http://`, `http://name`. Sites in
/// other files it imports are not seen.
fn plain_http_on_every_address(caddyfile: &str) -> bool {
    let mut depth = 0usize;
    let mut site_on_80 = false;
    let mut bound = false;
    let mut found = false;
    let mut first = true;
    for line in caddyfile.lines().map(|l| l.split('#').next().unwrap_or_default().trim()).filter(|l| !l.is_empty()) {
        let opens = line.matches('{').count();
        let closes = line.matches('}').count();
        if depth == 0 && opens > 0 {
            let global = first && line == "{";
            let addresses = line.trim_end_matches('{').split([' ', ',', '\t']).filter(|a| !a.is_empty());
            site_on_80 = !global && !line.starts_with('(') && addresses.into_iter().any(plain_http_port_80);
            bound = false;
        } else if depth == 1 && line.split_whitespace().next() == Some("bind") {
            bound = true;
        }
        first = false;
        depth = (depth + opens).saturating_sub(closes);
        if depth == 0 && site_on_80 {
            found |= !bound;
            site_on_80 = false;
        }
    }
    found
}

/// A site address that means plain HTTP on port 80.
fn plain_http_port_80(address: &str) -> bool {
    if let Some(rest) = address.strip_prefix("http://") {
        return rest.rsplit_once(':').is_none_or(|(_, port)| port == "80" || port.contains(']'));
    }
    !address.starts_with("https://") && (address == ":80" || address.ends_with(":80"))
}

/// Where a Caddy we start keeps what it writes.
struct CaddyFolders {
    home: PathBuf,
    /// AppConfigDir, AppDataDir, ConfigAutosavePath.
    config: PathBuf,
    data: PathBuf,
    autosave: PathBuf,
}

/// `dir` as a folder (and all in it) Caddy makes, after the folders above
/// it that it makes too (`~/.local/share`): outermost first, as uninstall
/// goes backwards.
fn with_parents(owned: &mut Vec<Owned>, dir: &Path, until_stopped: bool) {
    let above: Vec<&Path> = dir.ancestors().skip(1).collect();
    let dirs = above.iter().rev().map(|d| Owned::new(d, OwnedKind::Dir));
    owned.extend(dirs.chain([Owned::new(dir, OwnedKind::Tree)]).map(|o| Owned { until_stopped, ..o }));
}

/// The version in `caddy version`'s output: `2.6.2` (Debian's build) or
/// `v2.11.7 h1:...` (Caddy's own).
fn version_of(output: &str) -> Option<String> {
    let word = output.split_whitespace().next()?;
    let version = word.strip_prefix('v').unwrap_or(word);
    major_minor(version).map(|_| version.to_string())
}

fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut numbers = version.split('.');
    Some((numbers.next()?.parse().ok()?, numbers.next()?.parse().ok()?))
}

/// Caddy 2.8 renamed `basicauth` to `basic_auth`: 2.6 (Debian 12, Ubuntu
/// 24.04) knows only the old name, and 2.8 and later load it with a
/// deprecation warning in their log. A version not known (not installed
/// yet, `render` for another machine) gets the name every version loads.
fn basic_auth_directive(version: Option<&str>) -> &'static str {
    match version.and_then(major_minor) {
        Some(v) if v >= (2, 8) => "basic_auth",
        _ => "basicauth",
    }
}

/// For Debian's service, in the home of its `caddy` user; for a Caddy we
/// start, from our environment, by Caddy's rules on Linux (`caddy environ`
/// would say the same, but any run of `caddy` makes `~/.step`: a dry run
/// must not).
fn caddy_folders(system: &dyn System, systemd: bool) -> Option<CaddyFolders> {
    let home = if systemd { system.user_home("caddy")? } else { PathBuf::from(system.env_var("HOME")?) };
    let under = |xdg: &str, default: &str| match system.env_var(xdg) {
        Some(dir) if !systemd => PathBuf::from(dir),
        _ => home.join(default),
    };
    let config = under("XDG_CONFIG_HOME", ".config").join("caddy");
    Some(CaddyFolders {
        data: under("XDG_DATA_HOME", ".local/share").join("caddy"),
        autosave: config.join("autosave.json"),
        config,
        home,
    })
}

impl Proxy for Caddy {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Caddy
    }

    fn default_group(&self, os: Os) -> &'static str {
        match os {
            Os::Debian => "caddy",
            Os::MacHomebrew(_) => "staff",
        }
    }

    fn shares_problem(&self, shares: &[crate::setup::Share]) -> Option<(String, String)> {
        if let Some(i) = shares.iter().position(|share| share.weight.is_some()) {
            return Some((
                format!("upstream[{i}].weight"),
                "Caddy cannot weigh servers while it balances by open requests or by credential (its one weighted \
                 policy, weighted_round_robin, ignores both, and Debian's Caddy 2.6 lacks it): drop weight, or use nginx"
                    .to_string(),
            ));
        }
        // The Caddyfile has one limit for every server of a reverse_proxy
        // (`unhealthy_request_count`); per server needs Caddy's JSON.
        let first = shares.first().and_then(|share| share.max_conns);
        shares.iter().position(|share| share.max_conns != first).map(|i| {
            (
                format!("upstream[{i}].max_conns"),
                format!(
                    "{}: Caddy sets one limit for every server (unhealthy_request_count): give every entry the same max_conns",
                    match shares[i].max_conns {
                        Some(n) => format!("{n} differs from upstream[0]'s"),
                        None => "missing".to_string(),
                    }
                ),
            )
        })
    }

    fn https_problem(&self, https: &Https) -> Option<(&'static str, String)> {
        (https.http_port != 80).then(|| {
            (
                "https.http_port",
                "must be 80 with Caddy: Caddy takes the port of its HTTP redirects and ACME challenges from the global \
                 option http_port, which affects every site in your Caddyfile, and ollama-secure leaves global options alone"
                    .to_string(),
            )
        })
    }

    fn users_file<'a>(&self, paths: &'a Paths) -> &'a Path {
        &paths.caddy_site
    }

    fn users_format(&self) -> Format {
        Format::CaddyBasicauth
    }

    fn keys_file<'a>(&self, paths: &'a Paths) -> &'a Path {
        &paths.caddy_site
    }

    fn keys_format(&self) -> Format {
        Format::CaddyKeys
    }

    fn keeps_last_user_because(&self) -> &'static str {
        "Caddy would refuse to load a basicauth block without users"
    }

    fn paths_to_inspect(&self, paths: &Paths) -> Vec<PathBuf> {
        vec![paths.caddyfile.clone(), paths.access_log.clone()]
    }

    fn dirs_to_list(&self, _paths: &Paths) -> Vec<PathBuf> {
        Vec::new()
    }

    fn auth_socket<'a>(&self, _paths: &'a Paths) -> Option<&'a Path> {
        None
    }

    /// With `listen_address`, the redirect site binds it too, unless the
    /// main Caddyfile serves plain HTTP on port 80 of every address: a
    /// server of our own on that address would take it over, and Caddy
    /// would redirect every host there. Unbound, it joins theirs as one
    /// more host.
    fn render(&self, setup: &Setup, facts: &Facts, _stage: Stage) -> Result<Vec<RenderedFile>> {
        let env = render::environment(TEMPLATES);
        let paths = &setup.settings.paths;
        let shared = match facts.file(&paths.caddyfile) {
            Existing::File { content, .. } => {
                plain_http_on_every_address(&without_import(paths, &String::from_utf8_lossy(content)))
            }
            _ => false,
        };
        let ctx = minijinja::context! { ..render::site_context(setup), ..minijinja::context! {
            user_lines => render::user_lines(setup),
            key_lines => render::key_lines(setup),
            has_keys => !setup.keys.is_empty(),
            redirect_shares_port => shared,
            basic_auth => basic_auth_directive(facts.proxy_version.as_deref()),
        } };
        let site = render::render_template(&env, "caddy-site.caddy", &ctx)?;
        Ok(vec![RenderedFile::ours(&setup.settings.paths.caddy_site, Role::Site, setup, true, site)])
    }

    fn enable(&self, setup: &Setup, facts: &Facts) -> Result<Enable> {
        let paths = &setup.settings.paths;
        let (existing, mode) = match facts.file(&paths.caddyfile) {
            Existing::File { content, mode, .. } => (Some(content.as_slice()), *mode),
            _ => (None, 0o644),
        };
        let files = main_caddyfile(paths, existing, closes_admin(paths, facts))
            .map(|content| RenderedFile {
                path: paths.caddyfile.clone(),
                role: Role::MainConfig,
                mode,
                group: "root".to_string(),
                secret: false,
                content,
            })
            .into_iter()
            .collect();
        Ok(Enable { files, steps: Vec::new() })
    }

    fn service(&self, paths: &Paths, systemd: bool) -> Service {
        let config = |verb: &str| {
            Command::new("caddy", &[verb, "--config"]).arg_path(&paths.caddyfile).args(&["--adapter", "caddyfile"])
        };
        let (start, reload, stop, enable, disable) = if systemd {
            (
                Command::new("systemctl", &["start", "caddy"]),
                Command::new("systemctl", &["reload", "caddy"]),
                Command::new("systemctl", &["stop", "caddy"]),
                Some(Command::new("systemctl", &["enable", "caddy"])),
                Some(Command::new("systemctl", &["disable", "caddy"])),
            )
        } else {
            let start = config("start").args(&["--pidfile"]).arg_path(&paths.caddy_pid).log_to(&paths.caddy_log);
            (start, config("reload"), config("stop"), None, None)
        };
        Service {
            validate: config("validate"),
            start,
            reload,
            stop,
            enable,
            disable,
            pid_file: paths.caddy_pid.clone(),
            reload_is_graceful: false,
            validate_makes_pid_file: false,
            log: (!systemd).then(|| paths.caddy_log.clone()),
            ours: vec![paths.caddy_site.clone()],
        }
    }

    /// The log Caddy writes when ollama-secure starts it without systemd
    /// (under systemd, it goes to the journal).
    fn error_log(&self, system: &dyn System, paths: &Paths) -> Option<PathBuf> {
        system.tail(&paths.caddy_log, 0).is_ok().then(|| paths.caddy_log.clone())
    }

    fn admin_api(&self, system: &dyn System, paths: &Paths) -> Option<crate::check::AdminApi> {
        let Existing::File { content, .. } = system.inspect(&paths.caddyfile) else { return None };
        Some(match admin_address(&String::from_utf8_lossy(&content)) {
            Some(address) => crate::check::AdminApi::Tcp(address),
            None => crate::check::AdminApi::Closed,
        })
    }

    fn service_here(&self, paths: &Paths, facts: &Facts) -> Service {
        let mut service = self.service(paths, facts.systemd);
        let ours = matches!(facts.file(&paths.caddyfile),
            Existing::File { content, .. } if has_our_admin(paths, &String::from_utf8_lossy(content)));
        if ours && !facts.systemd {
            let address = format!("unix/{}", paths.caddy_admin.display());
            service.reload = service.reload.args(&["--address", &address]);
            service.stop = service.stop.args(&["--address", &address]);
        }
        service
    }

    fn detect(&self, system: &dyn System, paths: &Paths, systemd: bool) -> Detection {
        let ours = crate::system::running_from_pid_file(system, &paths.caddy_pid, "caddy").is_some();
        let active = systemd && system.run(&Command::new("systemctl", &["is-active", "--quiet", "caddy"])).success;
        if ours || active {
            return Detection { running: true, ..Detection::default() };
        }
        // Started by hand (`caddy start`): its admin API answers, and
        // `caddy reload` with this Caddyfile reaches it there.
        let caddyfile = match system.inspect(&paths.caddyfile) {
            Existing::File { content, .. } => String::from_utf8_lossy(&content).into_owned(),
            _ => return Detection::default(),
        };
        let Some(admin) = admin_address(&caddyfile) else { return Detection::default() };
        let Ok(url) = reqwest::Url::parse(&format!("http://{admin}/config/")) else { return Detection::default() };
        let request = crate::system::HttpRequest {
            timeout: std::time::Duration::from_secs(2),
            ..crate::system::HttpRequest::get(url)
        };
        match system.http(&request) {
            Ok(reply) if reply.status == 200 => Detection {
                running: true,
                pid_file: None,
                note: Some(crate::error::Finding::info(format!(
                    "Caddy runs (its admin API at {admin} answers) although ollama-secure did not start it: \
                     it is reloaded there, never started a second time"
                ))),
                blocker: None,
            },
            _ => Detection::default(),
        }
    }

    fn certificates(&self) -> Certificates {
        Certificates::BuiltIn
    }

    fn served_besides_us(&self, paths: &Paths, facts: &Facts) -> Served {
        let fingerprint = match facts.file(&paths.caddyfile) {
            Existing::File { content, .. } => {
                let rest = without_import(paths, &String::from_utf8_lossy(content));
                let directives: String = rest
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(|l| format!("{l}\n"))
                    .collect();
                (!directives.is_empty()).then(|| render::fingerprint(directives.as_bytes()))
            }
            _ => None,
        };
        Served::MainConfig { path: paths.caddyfile.clone(), fingerprint }
    }

    /// Version 1 recorded one "PATH FINGERPRINT" (nothing when the main
    /// Caddyfile held only our lines).
    fn served_from_version_1(&self, items: &[String], paths: &Paths) -> Served {
        match items.first().and_then(|item| item.split_once(' ')) {
            Some((path, fingerprint)) => {
                Served::MainConfig { path: path.into(), fingerprint: Some(fingerprint.to_string()) }
            }
            None => Served::MainConfig { path: paths.caddyfile.clone(), fingerprint: None },
        }
    }

    fn repair(&self, _paths: &Paths, _facts: &Facts) -> Result<Repair> {
        Ok(Repair::None)
    }

    /// The main Caddyfile is the user's: only our lines leave it (or the
    /// whole file, if we created it and nothing else was added since).
    fn disable(&self, state: &State, paths: &Paths, facts: &Facts) -> Result<Disabled> {
        let Some(caddyfile) = &state.caddyfile_import else {
            return Ok(Disabled { steps: Vec::new(), main_config_after: None });
        };
        let existing = facts.file(caddyfile);
        let Some(previous) = Snapshot::of(existing) else {
            return Ok(Disabled { steps: Vec::new(), main_config_after: None });
        };
        let current = String::from_utf8_lossy(&previous.content).into_owned();
        let without = as_before(state, caddyfile, facts, without_import(paths, &current));
        let created = state.record(caddyfile).is_some_and(|r| r.original.is_none());
        let mut steps = Vec::new();
        if created && without.trim().is_empty() {
            steps.push(Step::remove(caddyfile, existing));
        } else if without != current {
            let file = RenderedFile {
                path: caddyfile.clone(),
                role: Role::MainConfig,
                mode: previous.ownership.mode,
                group: "root".into(),
                secret: false,
                content: without.clone(),
            };
            steps.push(Step::write(file, crate::plan::Change::Overwrite { previous }));
        }
        Ok(Disabled { steps, main_config_after: Some((caddyfile.clone(), without)) })
    }

    /// Caddy keeps its config (`autosave.json`, with our hashes) and its
    /// data (locks, its local CA, ACME accounts, certificates) in folders
    /// of the user it runs as, or in the storage its Caddyfile names. Any
    /// run of `caddy` (our `caddy validate`) makes the smallstep library's
    /// `~/.step` and the local CA in the data folder, in our environment;
    /// the Caddy we start makes the rest, in its own.
    fn writes_of_its_own(&self, system: &dyn System, paths: &Paths, systemd: bool) -> Vec<Owned> {
        let storage = match system.inspect(&paths.caddyfile) {
            Existing::File { content, .. } => storage_root(&String::from_utf8_lossy(&content)),
            _ => None,
        };
        // A storage root moves the certificates, not AppDataDir: Caddy 2.11
        // writes its instance.uuid in AppDataDir even when the Caddyfile
        // names another storage (the uninstall tests found it left there).
        let data_dirs = |folders: &CaddyFolders| {
            let mut dirs = vec![folders.data.clone()];
            dirs.extend(storage.clone());
            dirs
        };
        let mut owned = Vec::new();
        if let Some(ours) = caddy_folders(system, false) {
            for dir in [vec![ours.home.join(".step")], data_dirs(&ours)].concat() {
                with_parents(&mut owned, &dir, false);
            }
        }
        if let Some(started) = caddy_folders(system, systemd) {
            for dir in [vec![started.config.clone()], data_dirs(&started), vec![started.home.join(".step")]].concat() {
                with_parents(&mut owned, &dir, true);
            }
            owned.push(Owned { until_stopped: true, ..Owned::new(&started.autosave, OwnedKind::File) });
        }
        owned.retain(|o| o.path.is_absolute());
        owned
    }

    /// What Caddy writes is ours if it was not there yet: what any run
    /// writes (undone with the validation that makes it, on a rollback),
    /// and what it writes once we start it. What the started Caddy uses
    /// goes only when uninstall stops it.
    fn folders(&self, paths: &Paths, facts: &Facts, _state: Option<&State>) -> Folders {
        let mut folders = Folders::default();
        let missing = |o: &&Owned| matches!(facts.file(&o.path), Existing::Missing);
        folders.made_by_validation =
            facts.own_writes.iter().filter(|o| !o.until_stopped).filter(missing).cloned().collect();
        let mut seen: Vec<&Owned> = Vec::new();
        // What the started Caddy makes first: where both make a folder, it
        // is the started Caddy's.
        let (by_started, by_any_run): (Vec<&Owned>, Vec<&Owned>) =
            facts.own_writes.iter().filter(missing).partition(|o| o.until_stopped);
        for owned in by_started.into_iter().chain(by_any_run) {
            // Below a folder that is ours already, it goes with it.
            let inside_ours = seen.iter().any(|o| o.kind == OwnedKind::Tree && owned.path.starts_with(&o.path));
            if inside_ours || seen.iter().any(|o| o.path == owned.path) {
                continue;
            }
            match owned.until_stopped {
                true => folders.owned_if_started.push(owned.clone()),
                false => folders.owned.push(owned.clone()),
            }
            seen.push(owned);
        }
        folders.with_access_log(paths, facts)
    }

    fn owned_without_records(&self, _paths: &Paths) -> Vec<Owned> {
        Vec::new()
    }

    fn leftovers(&self, _paths: &Paths, _facts: &Facts) -> Vec<Step> {
        Vec::new()
    }

    /// Caddy's admin API, on TCP unless the global options say otherwise,
    /// asks for no credentials: any local user can read the whole config
    /// (every hash of the site) and change it (one DELETE removes the
    /// password). `admin unix//PATH` closes it to those who cannot write
    /// the socket; `caddy reload` finds the address in the Caddyfile.
    fn warnings(&self, paths: &Paths, facts: &Facts) -> Vec<crate::error::Finding> {
        let caddyfile = match facts.file(&paths.caddyfile) {
            Existing::File { content, .. } => String::from_utf8_lossy(content).into_owned(),
            _ => String::new(),
        };
        if closes_admin(paths, facts) {
            return vec![crate::error::Finding::info(format!(
                "Caddy's admin API: on the unix socket {}, which only root can use (`{}` in the global options \
                 of {}; uninstall takes it out again), not on TCP, where any user of this machine could read the \
                 password hashes and rewrite the configuration",
                paths.caddy_admin.display(),
                admin_line(paths),
                paths.caddyfile.display()
            ))];
        }
        // A folder Caddy's user can write and others cannot: its home
        // under systemd (Debian runs it as `caddy`), /run as root otherwise.
        let socket = if facts.systemd { "/var/lib/caddy/admin.sock" } else { "/run/caddy-admin.sock" };
        admin_address(&caddyfile)
            .map(|address| {
                crate::error::Finding::warning(format!(
                    "Caddy's admin API listens on {address} and asks for no password: any user of this machine can \
                     read the site's password hashes there and rewrite its configuration (one DELETE removes the \
                     password). Close it with a global option at the top of {}: `{{ admin unix/{socket} }}` (a \
                     socket only Caddy's user can use; reloads keep working), or `{{ admin off }}` (then nothing \
                     can reload Caddy, ollama-secure included: every change needs a restart)",
                    paths.caddyfile.display()
                ))
            })
            .into_iter()
            .collect()
    }

    /// Caddy's own repository (a current 2.x; Debian 12 has 2.6.2), as
    /// caddyserver.com/docs/install adds it: the key from Cloudsmith, which
    /// hosts it, and the one line of its `debian.deb.txt` that installs.
    fn own_repository(&self) -> Option<AptRepository> {
        Some(AptRepository {
            key_url: "https://dl.cloudsmith.io/public/caddy/stable/gpg.key",
            url: "https://dl.cloudsmith.io/public/caddy/stable/deb/debian",
            suite: "any-version",
            component: "main",
            // Its stable channel has had nothing older since 2.8 (2024), the
            // version that renamed `basicauth`.
            oldest_version: "2.8.0",
        })
    }

    /// `caddy version`, run with a HOME under which nothing can be made (a
    /// file of /proc): Caddy 2.6 makes `~/.step` at every start, and a dry
    /// run must write nothing.
    fn installed_version(&self, system: &dyn System) -> Option<String> {
        let nowhere = "/proc/version";
        let command = Command::new("caddy", &["version"])
            .env("HOME", nowhere)
            .env("STEPPATH", "/proc/version/.step")
            .env("XDG_DATA_HOME", nowhere)
            .env("XDG_CONFIG_HOME", nowhere);
        let result = system.run(&command);
        result.success.then(|| version_of(&result.output)).flatten()
    }

    fn acme_error_in_log(&self, log: &str, domain: &str, since: SystemTime) -> Option<String> {
        let since = since.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs_f64();
        let quoted = format!("\"{domain}\"");
        log.lines().filter(|l| l.contains("\"level\":\"error\"") && l.contains(&quoted)).find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            if v.get("ts")?.as_f64()? < since {
                return None;
            }
            let msg = v.get("msg")?.as_str()?;
            // Caddy 2.6 gives the ACME server's words as `error`; 2.11 as
            // `problem.detail` (RFC 8555's problem document).
            let error = v
                .get("error")
                .and_then(|e| e.as_str())
                .or_else(|| v.get("problem")?.get("detail")?.as_str())
                .unwrap_or("");
            Some(format!("{msg}: {error}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_api_goes_on_our_socket_and_leaves_with_uninstall() {
        let paths = Paths::defaults(Os::Debian);
        let site = b":80 {\n\tfile_server\n}\n";
        // No global options: a block of ours opens the file.
        let closed = main_caddyfile(&paths, Some(site), true).unwrap();
        assert!(
            closed.starts_with(
                "{\n\t# Added by ollama-secure (this block too): the admin API on a socket only root can use.\n\
                 \tadmin unix//run/ollama-secure-caddy-admin.sock\n}\n\n:80 {"
            ),
            "{closed}"
        );
        assert_eq!(admin_address(&closed), None, "still on TCP:\n{closed}");
        assert_eq!(main_caddyfile(&paths, Some(closed.as_bytes()), true), None);
        assert_eq!(main_caddyfile(&paths, Some(closed.as_bytes()), false), None, "a closed API stays closed");
        assert_eq!(without_import(&paths, &closed), String::from_utf8_lossy(site));
        // Global options without `admin`: our line goes into them.
        let options = "# mine\n{\n\temail a@b.c\n}\n:80 {\n}\n";
        let closed = main_caddyfile(&paths, Some(options.as_bytes()), true).unwrap();
        assert!(closed.starts_with("# mine\n{\n\t# Added by ollama-secure: the admin API on a socket only root can use.\n\tadmin unix//run/ollama-secure-caddy-admin.sock\n\temail a@b.c\n}\n"), "{closed}");
        assert_eq!(admin_address(&closed), None);
        assert_eq!(without_import(&paths, &closed), options);
        // An `admin` the user chose is theirs: left alone.
        let theirs = "{\n\tadmin 127.0.0.1:2999\n}\n";
        assert!(!admin_left_at_default(theirs));
        assert!(admin_left_at_default(options) && admin_left_at_default(""));
        // A new Caddyfile holds only our lines, and goes with them.
        let fresh = main_caddyfile(&paths, None, true).unwrap();
        assert_eq!(without_import(&paths, &fresh), "");
    }

    #[test]
    fn the_import_line_is_added_once_and_removed_again() {
        let paths = Paths::defaults(Os::Debian);
        let added = with_import(&paths, Some(b":80 {\n\tfile_server\n}")).unwrap();
        assert_eq!(
            added,
            ":80 {\n\tfile_server\n}\n\n# Added by ollama-secure: the Ollama site lives in its own file.\nimport /etc/caddy/ollama.caddy\n"
        );
        assert_eq!(with_import(&paths, Some(added.as_bytes())), None);
        assert_eq!(without_import(&paths, &added), ":80 {\n\tfile_server\n}\n");
        let fresh = with_import(&paths, None).unwrap();
        assert_eq!(without_import(&paths, &fresh), "");
        let edited = format!("{{\n\temail a@b.c\n}}\n{added}:81 {{\n}}\n");
        assert_eq!(without_import(&paths, &edited), "{\n\temail a@b.c\n}\n:80 {\n\tfile_server\n}\n\n:81 {\n}\n");
    }

    #[test]
    fn the_admin_address_comes_from_the_global_options() {
        assert_eq!(admin_address(":80 {\n}\n").as_deref(), Some("localhost:2019"));
        assert_eq!(admin_address("{\n\tadmin 127.0.0.1:2999\n}\n:80 {\n}\n").as_deref(), Some("127.0.0.1:2999"));
        assert_eq!(admin_address("# c\n{\n\temail a@b.c\n}\n").as_deref(), Some("localhost:2019"));
        assert_eq!(admin_address("{\n\tadmin off\n}\n"), None);
        assert_eq!(admin_address("{\n\tadmin unix//run/caddy.sock\n}\n"), None);
        assert_eq!(
            admin_address("{\n\tservers {\n\t\tprotocols h1\n\t}\n}\nx {\n\tadmin 1:2\n}\n").as_deref(),
            Some("localhost:2019")
        );
    }

    #[test]
    fn a_plain_http_site_on_every_address_is_seen() {
        let global = "{\n\tadmin off\n}\n";
        for shared in [":80 {\n\trespond hi\n}\n", "http:// {\n}\n", "a.test:443, http://b.test {\n\troot * /srv\n}\n"]
        {
            assert!(plain_http_on_every_address(&format!("{global}{shared}")), "{shared}");
        }
        for not_shared in [
            ":80 {\n\tbind 10.0.0.1\n}\n",
            "a.test {\n\tfile_server\n}\n",
            "http://a.test:8080 {\n}\n",
            "(snippet) {\n\trespond x\n}\n",
            ":8080 {\n\thandle {\n\t\trespond x\n\t}\n}\n",
        ] {
            assert!(!plain_http_on_every_address(&format!("{global}{not_shared}")), "{not_shared}");
        }
        // A `bind` in a nested block is not the site's.
        assert!(plain_http_on_every_address(":80 {\n\treverse_proxy x {\n\t\tbind y\n\t}\n}\n"));
    }

    #[test]
    fn the_storage_folder_comes_from_the_global_options() {
        assert_eq!(storage_root("{\n\tstorage file_system /srv/caddy\n}\n"), Some("/srv/caddy".into()));
        let block = "{\n\temail a@b.c\n\tstorage file_system {\n\t\troot /srv/c # here\n\t}\n}\n:80 {\n}\n";
        assert_eq!(storage_root(block), Some("/srv/c".into()));
        assert_eq!(storage_root(":80 {\n\troot * /srv\n}\n"), None);
        assert_eq!(storage_root("{\n\tstorage redis\n}\n"), None);
    }

    #[test]
    fn the_basic_auth_directive_follows_the_installed_version() {
        assert_eq!(version_of("2.6.2\n").as_deref(), Some("2.6.2"));
        assert_eq!(version_of("v2.11.7 h1:yj0Y4fYZGPkSvibBJ1sTWE33xC0fxztVyXEW5iIdUT4=\n").as_deref(), Some("2.11.7"));
        assert_eq!(version_of("(devel)\n"), None);
        assert_eq!(version_of(""), None);
        for (version, directive) in [
            (Some("2.6.2"), "basicauth"),
            (Some("2.7.6"), "basicauth"),
            (Some("2.8.0"), "basic_auth"),
            (Some("2.11.7"), "basic_auth"),
            (Some("3.0.0"), "basic_auth"),
            (None, "basicauth"),
        ] {
            assert_eq!(basic_auth_directive(version), directive, "{version:?}");
        }
    }

    #[test]
    fn acme_errors_are_read_from_the_log() {
        let log = "{\"level\":\"info\",\"ts\":5.0,\"msg\":\"x\"}\n\
                   {\"level\":\"error\",\"ts\":1.0,\"msg\":\"old\",\"error\":\"e\",\"identifier\":\"a.test\"}\n\
                   {\"level\":\"error\",\"ts\":9.0,\"msg\":\"could not get certificate\",\"error\":\"dial tcp 127.0.0.254:80\",\"identifier\":\"a.test\"}\n";
        let since = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(2);
        assert_eq!(
            Caddy.acme_error_in_log(log, "a.test", since).as_deref(),
            Some("could not get certificate: dial tcp 127.0.0.254:80")
        );
        assert_eq!(Caddy.acme_error_in_log(log, "b.test", since), None);
        // As Caddy 2.11 logs it: the ACME server's problem document.
        let log = "{\"level\":\"error\",\"ts\":9.0,\"logger\":\"http.acme_client\",\"msg\":\"challenge failed\",\"identifier\":\"a.test\",\"challenge_type\":\"http-01\",\"problem\":{\"type\":\"urn:ietf:params:acme:error:connection\",\"detail\":\"dial tcp 127.0.0.254:80: connect: connection refused\"}}\n";
        assert_eq!(
            Caddy.acme_error_in_log(log, "a.test", since).as_deref(),
            Some("challenge failed: dial tcp 127.0.0.254:80: connect: connection refused")
        );
    }
}
