//! `status`: what is set up on this machine, read from the state file
//! `init` wrote and from the machine itself (never changed): the proxy and
//! its files, whether it runs and asks for credentials at the site, who
//! may log in (names and roles, never a secret), the certificate's days
//! left and what renews it. Every problem found is listed; exit 3 then.

use std::path::PathBuf;

use serde::Serialize;

use crate::cli::StatusArgs;
use crate::error::{Error, Result, Severity};
use crate::facts::SiteAnswer;
use crate::system::System;

/// A certificate due within this many days is a problem: renewal should
/// have replaced it 30 days before the end (certbot's and Caddy's rule).
const DAYS_WARNED: i64 = 14;

#[derive(Debug, Serialize)]
struct Account {
    name: String,
    role: String,
}

#[derive(Debug, Serialize)]
struct Certificate {
    domain: String,
    /// Days until it expires, from the certificate the site serves.
    days_left: Option<i64>,
    renewal: String,
}

#[derive(Debug, Serialize)]
struct Status {
    proxy: String,
    url: String,
    upstream: String,
    state_file: PathBuf,
    files: Vec<PathBuf>,
    links: Vec<PathBuf>,
    running: bool,
    pid: Option<u32>,
    /// What the site answers to a request without credentials.
    site: String,
    /// It answers 401 with a Basic challenge.
    protected: bool,
    users: Vec<Account>,
    keys: Vec<Account>,
    certificate: Option<Certificate>,
    problems: Vec<String>,
}

fn gather(system: &dyn System, args: &StatusArgs) -> Result<Status> {
    let installed = super::find_installed(system, args.setup.answers.as_deref())?;
    if !system.is_root() {
        // The users file is 0640: without root, a setup reads as broken.
        return Err(Error::input(
            "status needs root to read the setup's files (the users file is 0640); run it with sudo",
        ));
    }
    // A setup whose files are not as init left them is a problem found.
    let (setup, facts) = super::change::installed_setup(system, &installed)
        .map_err(|e| Error::check_failed(format!("the setup at {} is broken: {e}", installed.paths.state.display())))?;
    let settings = &setup.settings;
    let proxy = setup.proxy();
    let mut problems = Vec::new();
    if let Some(journal) =
        super::journal_warning_at(system, &installed.paths.journal, "this status is of the system as it is now")
    {
        problems.push(journal.text);
    }
    let service = proxy.service_here(&settings.paths, &facts);
    let pid_file = facts.detection.pid_file.clone().unwrap_or(service.pid_file.clone());
    let pid = crate::system::read_pid(system, &pid_file).filter(|pid| system.process(*pid).is_some());
    if !facts.proxy_running {
        problems.push(format!("{} is not running: the site does not answer", settings.proxy));
    }
    // This machine's own address may be outside allow_from: then the
    // site's 403 to it is the protection working.
    let outsider = !settings.site.allows(settings.site.local_address());
    let site = match &facts.site {
        SiteAnswer::AsksForCredentials => "asks for credentials (401)".to_string(),
        SiteAnswer::Status(403) if outsider => "refuses this machine's address (403, allow_from)".to_string(),
        SiteAnswer::Status(code) => {
            problems.push(format!(
                "the site answers {code} without credentials, not 401: run `ollama-secure check` for the cause"
            ));
            format!("answers {code} without credentials")
        }
        SiteAnswer::Unreachable(why) => {
            problems.push(format!("the site cannot be reached: {why}"));
            format!("cannot be reached: {why}")
        }
        SiteAnswer::NotProbed => "not asked (the proxy is not running)".to_string(),
    };
    let certificate = match (&settings.site.https, &settings.site.domain) {
        (Some(_), Some(domain)) => {
            let days_left =
                facts.site_certificate.as_ref().and_then(|der| crate::check::tls::days_left(der, system.now()));
            match days_left {
                Some(days) if days < 0 => problems.push(format!("the certificate for {domain} has expired")),
                Some(days) if days < DAYS_WARNED => {
                    problems.push(format!("the certificate for {domain} expires in {days} days and was not renewed"))
                }
                None if facts.proxy_running => problems.push(format!("the site serves no certificate for {domain}")),
                _ => {}
            }
            let renewal = crate::plan::renewal_finding(proxy, &facts, settings);
            if renewal.severity == Severity::Warning {
                problems.push(renewal.text.clone());
            }
            let renewal = renewal.text.trim_start_matches("renewal: ").to_string();
            Some(Certificate { domain: domain.to_string(), days_left, renewal })
        }
        _ => None,
    };
    let users = setup
        .users
        .entries()
        .map(|u| Account { name: u.username.to_string(), role: setup.access.role_of_user(&u.username).to_string() })
        .collect();
    let keys =
        setup.access.keys.iter().map(|k| Account { name: k.name.to_string(), role: k.role.to_string() }).collect();
    Ok(Status {
        proxy: settings.proxy.to_string(),
        url: settings.site.public_url(),
        // Several Ollama servers: all of them, the first first.
        upstream: settings.site.upstreams().map(|u| u.url()).collect::<Vec<_>>().join(", "),
        state_file: installed.paths.state.clone(),
        files: installed.state.files.iter().map(|f| f.path.clone()).collect(),
        links: installed.state.links.clone(),
        running: facts.proxy_running,
        pid,
        protected: facts.site == SiteAnswer::AsksForCredentials || (outsider && facts.site == SiteAnswer::Status(403)),
        site,
        users,
        keys,
        certificate,
        problems,
    })
}

fn names(accounts: &[Account]) -> String {
    if accounts.is_empty() {
        return "none".to_string();
    }
    accounts.iter().map(|a| format!("{} ({})", a.name, a.role)).collect::<Vec<_>>().join(", ")
}

fn text(status: &Status) -> String {
    let mut out = format!("{} at {} in front of Ollama at {}\n", status.proxy, status.url, status.upstream);
    let line = |out: &mut String, label: &str, value: String| out.push_str(&format!("  {label:<12} {value}\n"));
    line(&mut out, "state:", status.state_file.display().to_string());
    for file in &status.files {
        line(&mut out, "file:", file.display().to_string());
    }
    for link in &status.links {
        line(&mut out, "link:", link.display().to_string());
    }
    let running = match (status.running, status.pid) {
        (true, Some(pid)) => format!("running (pid {pid})"),
        (true, None) => "running".to_string(),
        (false, _) => "not running".to_string(),
    };
    line(&mut out, "proxy:", running);
    line(&mut out, "site:", status.site.clone());
    line(&mut out, "users:", names(&status.users));
    line(&mut out, "keys:", names(&status.keys));
    if let Some(cert) = &status.certificate {
        let days = cert.days_left.map_or_else(|| "not served".to_string(), |d| format!("{d} days left"));
        line(&mut out, "certificate:", format!("{}, {days}", cert.domain));
        line(&mut out, "renewal:", cert.renewal.clone());
    }
    if status.problems.is_empty() {
        out.push_str("All is well.\n");
    } else {
        out.push_str(&format!("{} problem(s):\n", status.problems.len()));
        for problem in &status.problems {
            out.push_str(&format!("  - {problem}\n"));
        }
    }
    out
}

pub fn run(args: StatusArgs, system: &dyn System) -> Result<()> {
    let status = gather(system, &args)?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&status).expect("the status serializes"));
    } else {
        crate::out!("{}", text(&status));
    }
    match status.problems.len() {
        0 => Ok(()),
        n => Err(Error::check_failed(format!("{n} problem(s) found (listed above)"))),
    }
}
