//! certbot, for proxies that do not obtain certificates themselves: where
//! it keeps them, the commands that obtain and delete them, and its
//! failures in words. Pure.

use std::path::PathBuf;

use crate::facts::Facts;
use crate::paths::Paths;
use crate::plan::Command;
use crate::render::{RenderedFile, Role};
use crate::setup::Settings;
use crate::system::Existing;

/// certbot's names for the certificate of the site's domain.
pub fn live_paths(settings: &Settings) -> Option<(PathBuf, PathBuf)> {
    let domain = settings.site.domain.as_ref()?;
    let live = settings.paths.letsencrypt.join("live").join(domain.to_string());
    Some((live.join("fullchain.pem"), live.join("privkey.pem")))
}

/// What certbot makes of its own when it first obtains a certificate: its
/// work and log folders, /etc/letsencrypt, and the folders in it. Debian's
/// package ships /etc/letsencrypt (its cli.ini) but nothing certbot makes
/// in it, so those go with our certificate too.
pub fn folders(paths: &Paths) -> Vec<PathBuf> {
    let inside = ["accounts", "archive", "csr", "keys", "live", "renewal", "renewal-hooks"];
    std::iter::once(paths.letsencrypt.clone())
        .chain(inside.iter().map(|name| paths.letsencrypt.join(name)))
        .chain([paths.certbot_work.clone(), paths.certbot_logs.clone()])
        .collect()
}

/// Of `folders`, those certbot would make here (missing now); a folder in
/// one that is missing goes with it.
pub fn folders_made_for_us(paths: &Paths, facts: &Facts) -> Vec<PathBuf> {
    let missing = |dir: &PathBuf| matches!(facts.file(dir), Existing::Missing);
    let all = folders(paths);
    let made: Vec<PathBuf> = all.iter().filter(|dir| missing(dir)).cloned().collect();
    made.iter().filter(|dir| !made.iter().any(|other| other != *dir && dir.starts_with(other))).cloned().collect()
}

fn with_dirs(command: Command, paths: &Paths) -> Command {
    command
        .args(&["--config-dir"])
        .arg_path(&paths.letsencrypt)
        .args(&["--work-dir"])
        .arg_path(&paths.certbot_work)
        .args(&["--logs-dir"])
        .arg_path(&paths.certbot_logs)
}

/// Obtains the certificate through the webroot; `reload` is saved in the
/// renewal configuration, so every renewal reloads the proxy.
pub fn obtain(settings: &Settings, domain: &str, reload: &Command) -> Command {
    let paths = &settings.paths;
    let https = settings.site.https.as_ref().expect("only for https");
    let mut command = Command::new("certbot", &["certonly", "--webroot", "-w"]).arg_path(&paths.acme_webroot).args(&[
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
    command = with_dirs(command, paths).args(&["--deploy-hook", &reload.to_string()]);
    if let Some(root) = &https.acme_ca_root {
        command = command.env("REQUESTS_CA_BUNDLE", &root.to_string_lossy());
    }
    command
}

/// Deletes a certificate (and its renewal) that init obtained.
pub fn delete(paths: &Paths, name: &str) -> Command {
    with_dirs(Command::new("certbot", &["delete", "--cert-name", name, "--non-interactive"]), paths)
}

/// The CA of a private ACME server reaches certbot only through
/// REQUESTS_CA_BUNDLE, which the scheduled `certbot renew` never has: these
/// files renew this certificate with it (cron, and systemd's timer when
/// there is systemd). Nothing for the public CAs, which certbot trusts.
pub fn renewal_files(settings: &Settings, systemd: bool) -> Vec<RenderedFile> {
    let (Some(https), Some(domain)) = (&settings.site.https, &settings.site.domain) else { return Vec::new() };
    let Some(root) = &https.acme_ca_root else { return Vec::new() };
    let paths = &settings.paths;
    let renew = with_dirs(Command::new("certbot", &["-q", "renew", "--cert-name", &domain.to_string()]), paths)
        .args(&["--no-random-sleep-on-renew"]);
    let file = |path: &std::path::Path, content: String| RenderedFile {
        path: path.to_path_buf(),
        role: Role::Renewal,
        mode: 0o644,
        group: "root".into(),
        secret: false,
        content,
    };
    let cron = format!(
        "# Added by ollama-secure: renews the certificate for {domain} from a private ACME\n\
         # server, whose CA certbot reads only from REQUESTS_CA_BUNDLE.\n\
         SHELL=/bin/sh\n\
         PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n\
         REQUESTS_CA_BUNDLE={}\n\
         0 */12 * * * root test -x /usr/bin/certbot -a \\! -d /run/systemd/system && {renew}\n",
        root.display()
    );
    let mut files = vec![file(&paths.renewal_cron, cron)];
    if systemd {
        let dropin = format!(
            "# Added by ollama-secure: the private ACME server's CA for certbot renew ({domain}).\n\
             [Service]\nEnvironment=REQUESTS_CA_BUNDLE={}\n",
            root.display()
        );
        files.push(file(&paths.renewal_dropin, dropin));
    }
    files
}

pub fn reachability_hint(domain: &str, http_port: u16) -> String {
    let port = if http_port == 80 { String::new() } else { format!(":{http_port}") };
    format!(
        "The ACME server must reach http://{domain}{port}/.well-known/acme-challenge/: is port {http_port} open to the internet, \
         and does {domain} resolve to this server?"
    )
}

/// certbot's failure in words: the likely cause first, then the lines of
/// its output that carry the detail.
pub fn explain_failure(output: &str, domain: &str, http_port: u16) -> String {
    let details: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with("Type:") || l.starts_with("Detail:") || l.starts_with("Domain:") || l.contains("Error")
        })
        .collect();
    let lower = output.to_lowercase();
    let cause = if ["connection refused", "timeout", "no such host", "nxdomain", "no valid ip", "connection reset"]
        .iter()
        .any(|needle| lower.contains(needle))
    {
        format!("the ACME server could not reach this server for {domain}. {}", reachability_hint(domain, http_port))
    } else if lower.contains("unauthorized") || lower.contains("404") {
        format!(
            "the ACME server reached {domain} but did not find the challenge file: does {domain} point to this server, \
             and does nothing else answer on port {http_port}?"
        )
    } else if lower.contains("ratelimit") || lower.contains("too many") {
        "the ACME server's rate limit was hit: wait, or test with https.acme_directory set to Let's Encrypt staging"
            .to_string()
    } else if lower.contains("certificate verify failed") || lower.contains("ssl") {
        "certbot could not connect securely to the ACME server: for a private ACME server, set https.acme_ca_root"
            .to_string()
    } else {
        format!("certbot could not obtain a certificate for {domain}")
    };
    let detail = if details.is_empty() { output.trim().to_string() } else { details.join("\n") };
    format!("{cause}\ncertbot said:\n{detail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_explained() {
        let output = "Certbot failed to authenticate some domains (authenticator: webroot).\n  Domain: ollama.test\n  Type:   connection\n  Detail: Get \"http://ollama.test:5002/.well-known/acme-challenge/x\": dial tcp 127.0.0.254:5002: connect: connection refused\n\nHint: ...";
        let text = explain_failure(output, "ollama.test", 5002);
        assert!(text.starts_with("the ACME server could not reach this server for ollama.test."), "{text}");
        assert!(text.contains("http://ollama.test:5002/.well-known/acme-challenge/: is port 5002 open"), "{text}");
        assert!(text.contains("Detail: Get"), "{text}");
        let text = explain_failure("Type: unauthorized\nDetail: 404", "a.b", 80);
        assert!(text.contains("did not find the challenge file"), "{text}");
    }
}
