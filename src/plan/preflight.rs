//! Before anything is written: is the proxy (and certbot) installed, or
//! may it be; which init system runs; is the port free; does Ollama
//! answer. Problems stop the plan; the rest are findings. Pure.

use super::{Command, Purpose, Step};
use crate::error::Finding;
use crate::facts::{Facts, OllamaProbe, PackageManager, RepositoryFiles};
use crate::proxy::{Certificates, PackageSource};
use crate::render::{RenderedFile, Role};
use crate::setup::Setup;

/// A signing key is a few KiB of armored text; more is not one.
const KEY_LIMIT: usize = 64 * 1024;

/// The fetched signing key, if it is one: armored (which apt reads as it
/// is, from a `.asc` file), ASCII, and small.
fn armored_key(text: &str) -> Result<&str, String> {
    let text = text.trim();
    let armored = text.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
        && text.ends_with("-----END PGP PUBLIC KEY BLOCK-----")
        && text.is_ascii()
        && text.len() <= KEY_LIMIT;
    if armored { Ok(text) } else { Err("what came back is not an armored PGP public key".to_string()) }
}

/// The proxy project's own repository, before apt is asked for the proxy:
/// its key (as fetched, shown in the dry run) and its `deb` line, written
/// like every file of ours (uninstall removes both).
fn repository_steps(setup: &Setup, facts: &Facts, wanted: RepositoryFiles) -> Result<Vec<Step>, String> {
    let (proxy, paths) = (setup.proxy(), &setup.settings.paths);
    let name = proxy.name();
    let repository = proxy.own_repository().ok_or_else(|| format!("{name} has no repository of its own"))?;
    let fallback = "with `caddy_source: debian` it is installed from Debian's archive instead";
    let key = match (&facts.repository_key, wanted.key) {
        (_, false) => None,
        (Some(Ok(text)), true) => {
            Some(armored_key(text).map_err(|why| format!("{}: {why}; {fallback}", repository.key_url))?)
        }
        (Some(Err(why)), true) => {
            return Err(format!("cannot fetch {name}'s signing key from {}: {why}; {fallback}", repository.key_url));
        }
        (None, true) => return Err(format!("{name}'s signing key was not fetched from {}", repository.key_url)),
    };
    let file = |path: &std::path::Path, content: String| RenderedFile {
        path: path.to_path_buf(),
        role: Role::PackageSource,
        mode: 0o644,
        group: "root".to_string(),
        secret: false,
        content,
    };
    let files = [
        key.map(|key| file(&paths.apt_keyring, format!("{key}\n"))),
        wanted.list.then(|| file(
            &paths.apt_source,
            format!(
                "# {name}'s own repository, from {}; added by ollama-secure (caddy_source: {}), removed by its uninstall\n{}\n",
                repository.key_url,
                PackageSource::OwnRepository.name(),
                repository.source_line(&paths.apt_keyring)
            ),
        )),
    ];
    let files: Vec<RenderedFile> = files.into_iter().flatten().collect();
    let mut steps = Vec::new();
    super::parent_dirs(&files.iter().map(|f| f.path.as_path()).collect::<Vec<_>>(), facts, &mut steps);
    for file in files {
        steps.extend(super::write_step(file, facts).map_err(|e| e.to_string())?);
    }
    Ok(steps)
}

/// The commands that install what is missing, if anything is and may be
/// (`allowed`: from where the proxy is installed).
fn install(
    setup: &Setup,
    allowed: Option<PackageSource>,
    facts: &Facts,
    findings: &mut Vec<Finding>,
) -> Result<Vec<Step>, String> {
    let (proxy, paths) = (setup.proxy(), &setup.settings.paths);
    // The repository is there whenever caddy_source asks for it: a Caddy
    // installed from it by a run rolled back later is upgraded from it too.
    let wanted = crate::facts::repository_files(facts.package_manager, &facts.files, paths);
    let add_repository = allowed == Some(PackageSource::OwnRepository) && wanted.list;
    let mut steps = if add_repository { repository_steps(setup, facts, wanted)? } else { Vec::new() };
    let mut packages = Vec::new();
    if facts.proxy_installed {
        findings.push(Finding::info(format!("{} is installed", proxy.name())));
        if add_repository {
            findings.push(Finding::info(format!(
                "caddy_source: {}'s own repository is added ({}), so that apt upgrades it from there",
                proxy.name(),
                paths.apt_source.display()
            )));
        }
    } else {
        packages.push(proxy.name());
    }
    if setup.settings.site.https.is_some() && proxy.certificates() == Certificates::Certbot && !facts.certbot_installed
    {
        packages.push("certbot");
    }
    if setup.settings.site.ban.is_some() && !facts.fail2ban.installed {
        packages.push("fail2ban");
    }
    if packages.is_empty() {
        return Ok(steps);
    }
    let list = packages.join(" ");
    let commands = match (allowed, facts.package_manager) {
        (Some(_), Some(PackageManager::Apt)) => {
            if allowed == Some(PackageSource::OwnRepository) && !facts.proxy_installed {
                findings.push(Finding::info(format!(
                    "not installed: {list}; it will be installed with apt-get, {} from its own repository",
                    proxy.name()
                )));
            } else {
                findings.push(Finding::info(format!("not installed: {list}; it will be installed with apt-get")));
            }
            // A fresh machine (a container, a new VM) has no package lists yet.
            vec![
                Command::new("apt-get", &["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive"),
                Command::new("apt-get", &["install", "-y"]).args(&packages).env("DEBIAN_FRONTEND", "noninteractive"),
            ]
        }
        // ollama-secure runs as root, and Homebrew refuses to.
        (Some(_), Some(PackageManager::Brew)) => {
            return Err(format!(
                "{list} not installed: Homebrew does not run as root, so install it yourself with `brew install {list}` \
                 (as the user who owns Homebrew's folder), then run this again"
            ));
        }
        (Some(_), None) => {
            return Err(format!(
                "{list} not installed and no known package manager (apt-get, brew) was found: install it yourself, then run this again"
            ));
        }
        (None, _) => {
            return Err(format!(
                "{list} not installed: install it (e.g. `apt-get install {list}`) or set `install: true` in the answers file"
            ));
        }
    };
    steps.extend(commands.into_iter().map(|command| Step::run(command, Purpose::Install)));
    Ok(steps)
}

/// What each Ollama server answered before anything is changed.
fn ollama_findings(setup: &Setup, facts: &Facts) -> Vec<Finding> {
    let site = &setup.settings.site;
    let several = !site.other_upstreams.is_empty();
    let urls: Vec<String> = site.upstreams().map(|u| u.url()).collect();
    urls.iter()
        .enumerate()
        .map(|(i, url)| match facts.ollama.get(i).unwrap_or(&OllamaProbe::NotProbed) {
            OllamaProbe::Answers { version } => match crate::advisories::judge(version) {
                crate::advisories::Verdict::Affected(found) => Finding::warning(format!(
                    "Ollama {version} answers at {url}, and it is affected by {}: upgrade it to {} or later \
                     (`ollama-secure check` says how); meanwhile only the admin role reaches model management",
                    found.iter().map(|a| a.id).collect::<Vec<_>>().join(", "),
                    found.iter().map(|a| a.fixed_in).next_back().unwrap_or_default(),
                )),
                _ => Finding::info(format!("Ollama {version} answers at {url}")),
            },
            OllamaProbe::Unexpected(why) => {
                Finding::warning(format!("something answers at {url} but not like Ollama ({why})"))
            }
            OllamaProbe::NotReachable(why) if several => Finding::warning(format!(
                "Ollama does not answer at {url} ({why}); the proxy sends requests to the other servers until it does"
            )),
            OllamaProbe::NotReachable(why) => Finding::warning(format!(
                "Ollama does not answer at {url} ({why}); the proxy will answer 502 until it does"
            )),
            OllamaProbe::NotProbed => Finding::info(format!("Ollama at {url} was not probed")),
        })
        .collect()
}

/// What can be done about another program on `port`: what can be
/// changed differs for the site's port and the plain-HTTP one.
fn port_remedy(setup: &Setup, port: u16) -> String {
    let http_port = setup.settings.site.https.as_ref().map(|h| h.http_port);
    match setup.proxy().certificates() {
        // Its own ACME client uses its global HTTP port, which is not ours.
        Certificates::BuiltIn if http_port == Some(port) => format!(
            "stop it: {} answers its certificate's HTTP challenge and the redirect on port {port} \
             (a global option of its own, which ollama-secure leaves alone), or turn https off",
            setup.settings.proxy.title()
        ),
        Certificates::Certbot if http_port == Some(port) => format!(
            "stop it, or give another https.http_port in the answers (the HTTP challenge still comes to \
             port 80: forward it there); port {port} serves the challenge and the redirect"
        ),
        _ => "stop it, or choose another port (`port` in the answers; the wizard asks for it)".to_string(),
    }
}

/// The install step, if one is needed; what makes the plan impossible
/// goes to `blockers`.
pub fn check(
    setup: &Setup,
    allowed: Option<PackageSource>,
    facts: &Facts,
    findings: &mut Vec<Finding>,
    problems: &mut Vec<String>,
) -> Vec<Step> {
    let name = setup.proxy().name();
    let install = install(setup, allowed, facts, findings).unwrap_or_else(|problem| {
        problems.push(problem);
        Vec::new()
    });
    findings.push(Finding::info(if facts.systemd {
        format!("systemd is running: {name} is managed with systemctl")
    } else {
        format!("systemd is not running (PID 1 is something else): {name} is started and reloaded directly")
    }));
    findings.push(Finding::info(if facts.proxy_running {
        format!("{name} is running")
    } else {
        format!("{name} is not running")
    }));
    for used in &facts.port_uses {
        match &used.owner {
            Some(owner) if owner.name == name => {}
            Some(owner) => problems.push(format!(
                "port {} is already in use by {} (pid {}) on {}: {}",
                used.port,
                owner.name,
                owner.pid,
                used.address,
                port_remedy(setup, used.port)
            )),
            // Without root, other users' processes are invisible: say so
            // rather than refuse what may be the proxy itself.
            None if !facts.is_root => findings.push(Finding::warning(format!(
                "port {} is in use on {} by a process this user cannot see; with root, init tells whether it is {name}",
                used.port, used.address
            ))),
            None => problems.push(format!(
                "port {} is already in use on {} by a process we cannot see: {}",
                used.port,
                used.address,
                port_remedy(setup, used.port)
            )),
        }
    }
    findings.extend(ollama_findings(setup, facts));
    findings.extend(setup.proxy().warnings(&setup.settings.paths, facts));
    install
}
