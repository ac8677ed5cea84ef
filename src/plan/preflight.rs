//! Before anything is written: is the proxy (and certbot) installed, or
//! may it be; which init system runs; is the port free; does Ollama
//! answer. Problems stop the plan; the rest are findings. Pure.

use super::{Command, Purpose, Step};
use crate::error::Finding;
use crate::facts::{Facts, OllamaProbe, PackageManager};
use crate::proxy::Certificates;
use crate::setup::Setup;

/// The commands that install what is missing, if anything is and may be.
fn install(setup: &Setup, allowed: bool, facts: &Facts, findings: &mut Vec<Finding>) -> Result<Vec<Step>, String> {
    let proxy = setup.proxy();
    let mut packages = Vec::new();
    if facts.proxy_installed {
        findings.push(Finding::info(format!("{} is installed", proxy.name())));
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
        return Ok(Vec::new());
    }
    let list = packages.join(" ");
    let commands = match (allowed, facts.package_manager) {
        (true, Some(PackageManager::Apt)) => {
            findings.push(Finding::info(format!("not installed: {list}; it will be installed with apt-get")));
            // A fresh machine (a container, a new VM) has no package lists yet.
            vec![
                Command::new("apt-get", &["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive"),
                Command::new("apt-get", &["install", "-y"]).args(&packages).env("DEBIAN_FRONTEND", "noninteractive"),
            ]
        }
        (true, Some(PackageManager::Brew)) => {
            findings.push(Finding::info(format!("not installed: {list}; it will be installed with Homebrew")));
            vec![Command::new("brew", &["install"]).args(&packages)]
        }
        (true, None) => {
            return Err(format!(
                "{list} not installed and no known package manager (apt-get, brew) was found: install it yourself, then run this again"
            ));
        }
        (false, _) => {
            return Err(format!(
                "{list} not installed: install it (e.g. `apt-get install {list}`) or set `install: true` in the answers file"
            ));
        }
    };
    Ok(commands.into_iter().map(|command| Step::run(command, Purpose::Install)).collect())
}

fn ollama_finding(setup: &Setup, facts: &Facts) -> Finding {
    let url = setup.settings.site.upstream.url();
    match &facts.ollama {
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
        OllamaProbe::NotReachable(why) => Finding::warning(format!(
            "Ollama does not answer at {url} ({why}); the proxy will answer 502 until it does"
        )),
        OllamaProbe::NotProbed => Finding::info(format!("Ollama at {url} was not probed")),
    }
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
    allowed: bool,
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
    findings.push(ollama_finding(setup, facts));
    findings.extend(setup.proxy().warnings(&setup.settings.paths, facts));
    install
}
