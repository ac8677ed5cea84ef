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
use crate::setup::Setup;

pub fn validate(service: &Service) -> Step {
    Step::run(service.validate.clone(), Purpose::Validate)
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

/// `systemctl enable` for a proxy that runs but would not start at boot.
pub fn enable_at_boot(facts: &Facts, service: &Service) -> Option<Step> {
    let command = service.enable.clone()?;
    (facts.systemd && facts.proxy_running && !facts.service_enabled).then(|| Step::run(command, Purpose::Enable))
}

/// How the certificate will be renewed, in words.
pub fn renewal_finding(proxy: &dyn Proxy, facts: &Facts) -> Finding {
    let name = proxy.name();
    Finding::info(match proxy.certificates() {
        Certificates::BuiltIn => {
            format!("renewal: {} renews its certificates itself while it runs", proxy.kind().title())
        }
        Certificates::Certbot if facts.systemd => format!(
            "renewal: Debian's certbot.timer runs `certbot renew` twice a day; each renewal reloads {name} (deploy hook)"
        ),
        Certificates::Certbot if facts.certbot_cron => format!(
            "renewal: /etc/cron.d/certbot runs `certbot renew` twice a day when cron runs \
             (there is no systemd here); each renewal reloads {name} (deploy hook)"
        ),
        Certificates::Certbot => {
            "renewal: nothing schedules `certbot renew` here (no systemd timer, no /etc/cron.d/certbot): \
             add it to cron, e.g. `0 3,15 * * * certbot -q renew`"
                .to_string()
        }
    })
}
