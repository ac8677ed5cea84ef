//! The steps that run the proxy: start it, reload it after a change, or
//! repair what runs when the files already match but the proxy does not
//! serve them; each with its undo. Pure.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Action, Purpose, Step};
use crate::error::{Finding, Result};
use crate::facts::{Facts, SiteAnswer};
use crate::paths::Paths;
use crate::proxy::{Certificates, Proxy, Repair, Service};
use crate::setup::{Settings, Setup};

/// How to control the proxy that runs here: the commands the proxy module
/// gives, waiting on the PID file the running instance really uses.
pub fn of(proxy: &dyn Proxy, paths: &Paths, facts: &Facts) -> Service {
    let mut service = proxy.service_here(paths, facts);
    if let Some(pid_file) = &facts.detection.pid_file {
        service.pid_file = pid_file.clone();
    }
    service
}

/// What the detection of the running proxy adds: a finding, and a refusal
/// when it runs where it cannot be reloaded.
pub fn detection(facts: &Facts, findings: &mut Vec<Finding>, blockers: &mut Vec<String>) {
    findings.extend(facts.detection.note.clone());
    blockers.extend(facts.detection.blocker.clone());
}

pub fn validate(service: &Service) -> Step {
    let empty_pid_file = service.validate_makes_pid_file.then(|| service.pid_file.clone());
    Step::run(service.validate.clone(), Purpose::Validate { ours: service.ours.clone(), empty_pid_file })
}

fn reload_action(service: &Service) -> Action {
    Action::Run {
        command: service.reload.clone(),
        purpose: Purpose::Reload {
            pid_file: service.pid_file.clone(),
            wait_for_old_workers: service.reload_is_graceful,
        },
    }
}

fn stop_action(service: &Service) -> Action {
    Action::Run { command: service.stop.clone(), purpose: Purpose::Stop { pid_file: service.pid_file.clone() } }
}

fn start_action(service: &Service) -> Action {
    Action::Run { command: service.start.clone(), purpose: Purpose::Start }
}

/// A reload is undone by reloading again, once the old files are back.
pub fn reload(service: &Service) -> Step {
    Step::undone_by(reload_action(service), vec![reload_action(service)])
}

fn start(service: &Service) -> Step {
    Step::undone_by(start_action(service), vec![stop_action(service)])
}

pub fn stop(service: &Service) -> Step {
    Step::undone_by(stop_action(service), vec![start_action(service)])
}

/// How the proxy comes to serve the planned files. Without `may_start` (a
/// users change), a proxy that is not running is left for its next start.
pub fn bring_up(
    proxy: &dyn Proxy,
    paths: &Paths,
    facts: &Facts,
    service: &Service,
    changed: bool,
    may_start: bool,
    findings: &mut Vec<Finding>,
) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    let repair = proxy.repair(paths, facts)?;
    if !facts.proxy_running {
        if !may_start {
            if changed {
                steps.push(validate(service));
                findings.push(Finding::info(format!(
                    "{} is not running: the change takes effect when it starts",
                    proxy.name()
                )));
            }
            return Ok(steps);
        }
        if let Repair::BeforeStart(before, finding) = repair {
            findings.push(finding);
            steps.extend(before);
        }
        steps.push(validate(service));
        steps.push(start(service));
        return Ok(steps);
    }
    if let Repair::Restart(finding) = repair {
        findings.push(finding);
        steps.extend([validate(service), stop(service), start(service)]);
        return Ok(steps);
    }
    if !changed {
        let answer = match &facts.site {
            SiteAnswer::AsksForCredentials | SiteAnswer::NotProbed => return Ok(steps),
            SiteAnswer::Status(status) => format!("answers {status}"),
            SiteAnswer::Unreachable(why) => format!("cannot be reached ({why})"),
        };
        findings.push(Finding::info(format!(
            "the files match the answers, but the site {answer} without credentials instead of asking for them (401): \
             {} is not serving them, so it is reloaded",
            proxy.name()
        )));
    }
    steps.push(validate(service));
    steps.push(reload(service));
    Ok(steps)
}

/// A proxy with built-in ACME: wait until it serves a certificate.
pub fn await_certificate(setup: &Setup, service: &Service) -> Step {
    let site = &setup.settings.site;
    Step::final_(Action::AwaitCertificate {
        proxy: setup.settings.proxy,
        domain: site.domain.as_ref().map(|d| d.to_string()).unwrap_or_default(),
        address: SocketAddr::new(site.local_address(), site.port),
        limit: Duration::from_secs(120),
        log: service.log.clone(),
    })
}

/// `systemctl enable` for a proxy whose unit would not start at boot
/// (whether it runs or is started now); undone by `systemctl disable`.
pub fn enable_at_boot(facts: &Facts, service: &Service) -> Option<Step> {
    let (enable, disable) = (service.enable.clone()?, service.disable.clone()?);
    (facts.systemd && !facts.service_enabled).then(|| {
        Step::undone_by(
            Action::Run { command: enable, purpose: Purpose::Enable },
            vec![Action::Run { command: disable, purpose: Purpose::Disable }],
        )
    })
}

/// `systemctl disable` for a unit ollama-secure enabled, at uninstall;
/// undone by enabling it again.
pub fn disable_at_boot(service: &Service) -> Option<Step> {
    let (enable, disable) = (service.enable.clone()?, service.disable.clone()?);
    Some(Step::undone_by(
        Action::Run { command: disable, purpose: Purpose::Disable },
        vec![Action::Run { command: enable, purpose: Purpose::Enable }],
    ))
}

/// How the certificate will be renewed, in words; a warning when nothing
/// here would renew it.
pub fn renewal_finding(proxy: &dyn Proxy, facts: &Facts, settings: &Settings) -> Finding {
    let name = proxy.name();
    let private = settings.site.https.as_ref().is_some_and(|h| h.acme_ca_root.is_some());
    let own_cron = settings.paths.renewal_cron.display();
    match proxy.certificates() {
        Certificates::BuiltIn => {
            Finding::info(format!("renewal: {} renews its certificates itself while it runs", proxy.kind().title()))
        }
        Certificates::Certbot if facts.systemd => Finding::info(format!(
            "renewal: Debian's certbot.timer runs `certbot renew` twice a day; each renewal reloads {name} (deploy hook){}",
            if private { "; a drop-in gives it the private ACME server's CA" } else { "" }
        )),
        Certificates::Certbot if facts.cron_running && (facts.certbot_cron || private) => Finding::info(format!(
            "renewal: cron runs `certbot renew` twice a day ({}); each renewal reloads {name} (deploy hook)",
            if private {
                format!("{own_cron}, with the private ACME server's CA")
            } else {
                "/etc/cron.d/certbot".to_string()
            }
        )),
        Certificates::Certbot => {
            let cron = if facts.cron_installed {
                "cron is installed but not running: start it (run `cron`)".to_string()
            } else {
                "no cron daemon is installed: `apt-get install cron`, then start it (run `cron`)".to_string()
            };
            Finding::warning(format!(
                "nothing here will renew the certificate: there is no systemd, and {cron}; \
                 or run `certbot renew` twice a day from whatever starts jobs on this machine{}. \
                 Certificates from Let's Encrypt expire after 90 days",
                if private { format!(" (with REQUESTS_CA_BUNDLE set, as in {own_cron})") } else { String::new() }
            ))
        }
    }
}
