//! HTTPS against a real ACME server (pebble): nginx with certbot through the
//! webroot, Caddy with its own ACME client. Proves the certificate comes
//! from pebble's root for the domain, 401/200 over HTTPS, the redirect from
//! HTTP, the challenge path open despite auth, no new certificate on a
//! second run, renewal reloading nginx, and a clean rollback when issuance
//! fails.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::support::deployment::{ALICE, Deployment, TLS_DOMAIN as DOMAIN};

/// The certificate the site serves now (DER).
fn served_certificate(site: &Deployment) -> Vec<u8> {
    let resp =
        site.client().get(site.url("/")).send().expect("the HTTPS site answers with a certificate from pebble's root");
    resp.extensions().get::<reqwest::tls::TlsInfo>().and_then(|t| t.peer_certificate()).unwrap().to_vec()
}

fn proves_https(site: &Deployment) {
    let client = site.client();
    // Trusting only pebble's root: the chain and the name must be right.
    assert_eq!(client.get(site.url("/api/version")).send().unwrap().status(), 401);
    let resp = client.get(site.url("/api/version")).basic_auth("alice", Some(ALICE)).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().unwrap().contains(crate::support::standin::VERSION));
    // Plain HTTP redirects to HTTPS, without asking for a password.
    let resp = client.get(site.http_url("/api/tags")).header("Host", DOMAIN).send().unwrap();
    assert_eq!(resp.status(), 308, "plain HTTP redirects");
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let port = if site.port == 443 { String::new() } else { format!(":{}", site.port) };
    assert_eq!(location, format!("https://{DOMAIN}{port}/api/tags"));
}

/// Runs the one job of a cron.d file the way cron does: `sh -c` with the
/// file's variables as the whole environment, `extra` added to the command.
fn cron_job(file: &std::path::Path, extra: &str) -> std::process::Output {
    let text = fs::read_to_string(file).unwrap();
    let mut command = std::process::Command::new("/bin/sh");
    command.env_clear();
    let mut job = None;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        match line.split_once('=') {
            Some((key, value)) if !key.contains(' ') => drop(command.env(key, value)),
            _ => {
                job = Some(line.splitn(7, ' ').nth(6).expect("minute hour day month weekday user command").to_string())
            }
        }
    }
    let job = job.expect("a job line");
    command.args(["-c", &format!("{job} {extra}")]).output().unwrap()
}

fn http_port(site: &Deployment) -> u16 {
    site.tls.as_ref().unwrap().http_port
}

#[test]
fn nginx_gets_a_certificate_from_pebble_with_certbot() {
    let site = Deployment::prepare_https("nginx");
    site.init()
        .stdout_has("ok certificate obtained for ollama.test")
        .stdout_has("PASS  TLS certificate: valid for ollama.test")
        .stdout_has("PASS  plain HTTP redirects to HTTPS")
        .stdout_has("All 11 checks passed")
        .run();
    proves_https(&site);

    // The challenge path stays open to the ACME server despite the password.
    let webroot = site.sandbox.path("var/lib/ollama-secure/acme/.well-known/acme-challenge");
    fs::create_dir_all(&webroot).unwrap();
    fs::write(webroot.join("probe-token"), "probe-content").unwrap();
    let resp = site
        .client()
        .get(site.http_url("/.well-known/acme-challenge/probe-token"))
        .header("Host", DOMAIN)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), "probe-content");
    fs::remove_file(webroot.join("probe-token")).unwrap();

    // A second run requests no new certificate and changes nothing.
    let live = site.sandbox.path("etc/letsencrypt/live/ollama.test/fullchain.pem");
    let before = (fs::read(&live).unwrap(), served_certificate(&site));
    let ran = site.init().stdout_has("Nothing to change").run();
    assert!(!ran.stdout.contains("obtaining a certificate"), "a second run asked for a certificate: {}", ran.stdout);
    assert_eq!((fs::read(&live).unwrap(), served_certificate(&site)), before);

    // Renewal as cron runs it: the job init wrote, with only the
    // environment that file sets (cron passes nothing else), forced because
    // the certificate is not due. It reloads nginx (deploy hook), which then
    // serves the new certificate.
    let renew = cron_job(&site.sandbox.path("etc/cron.d/ollama-secure-certbot"), "--force-renewal");
    assert!(renew.status.success(), "{}", String::from_utf8_lossy(&renew.stderr));
    assert_ne!(fs::read(&live).unwrap(), before.0, "certbot did not renew");
    // nginx's reload is graceful: new workers take over shortly after the
    // renewal hook returns. The limit only keeps a broken hook from hanging.
    let start = Instant::now();
    while served_certificate(&site) == before.1 {
        assert!(start.elapsed() < Duration::from_secs(30), "nginx still serves the old certificate after renewal");
        std::thread::sleep(Duration::from_millis(100));
    }
    proves_https(&site);

    // uninstall removes the site and the certificate it obtained.
    site.uninstall(false).stdout_has("ok deleted the certificate").run();
    assert!(!site.sandbox.path("etc/letsencrypt/live/ollama.test").exists(), "the certificate is still there");
    assert!(!site.sandbox.path("etc/letsencrypt/renewal/ollama.test.conf").exists(), "its renewal is still configured");
    assert!(!site.sandbox.path("etc/nginx/sites-available/ollama").exists());
}

#[test]
fn caddy_gets_a_certificate_from_pebble_by_itself() {
    let site = Deployment::prepare_https("caddy");
    site.init()
        .stdout_has("ok Caddy serves a certificate for ollama.test")
        .stdout_has("PASS  TLS certificate: valid for ollama.test")
        .stdout_has("All 11 checks passed")
        .run();
    proves_https(&site);
    let before = served_certificate(&site);
    site.init().stdout_has("Nothing to change").run();
    assert_eq!(served_certificate(&site), before, "a second run changed the certificate");
}

#[test]
fn failed_issuance_restores_everything_and_says_why() {
    let site = Deployment::prepare_https("nginx");
    // DNS points the domain at an address where nothing answers.
    site.tls.as_ref().unwrap().pebble.resolve_everything_to(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 254)));
    let before = site.machine();
    let ran = site
        .init()
        .status(1)
        .any_stdout()
        .stderr_has("the ACME server could not reach this server for ollama.test")
        .stderr_has(&format!("is port {} open", http_port(&site)))
        .stderr_has("rolled back")
        .run();
    let said = ran.all().matches("could not reach this server").count();
    assert_eq!(said, 1, "the ACME failure is said {said} times:\n{}", ran.all());
    // certbot's account and logs, made for this certificate, are gone too.
    site.assert_as_before(&before);
    assert!(!site.sandbox.path("run/nginx.pid").exists(), "nginx, started for the challenge, was not stopped again");
}

#[test]
fn caddy_failed_issuance_reports_the_acme_error_and_restores_everything() {
    let site = Deployment::prepare_https("caddy");
    site.tls.as_ref().unwrap().pebble.resolve_everything_to(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 254)));
    let before = site.machine();
    let ran = site
        .init()
        .status(1)
        .any_stdout()
        .stderr_has("Caddy did not obtain a certificate for ollama.test")
        // The ACME server's words are shown.
        .stderr_has("127.0.0.254")
        .stderr_has("rolled back")
        .run();
    // The wait ended at the ACME error Caddy logged, not at its time limit.
    assert!(!ran.stderr.contains("no certificate after"), "{}", ran.stderr);
    let said = ran.all().matches("did not obtain a certificate").count();
    assert_eq!(said, 1, "the ACME failure is said {said} times:\n{}", ran.all());
    site.assert_as_before(&before);
}

/// The operator's own site on port 80 of every address keeps answering
/// there, on our `listen_address` too: only our domain is redirected. In a
/// network namespace of this test's own, so that its port 80 on every
/// address is no other test's business.
#[test]
fn caddy_redirects_only_our_domain_where_the_operator_serves_port_80() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("a network namespace of this thread's own");
    let up = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status().unwrap();
    assert!(up.success());
    let site = Deployment::prepare_https("caddy");
    let caddyfile = site.sandbox.path("etc/caddy/Caddyfile");
    let theirs =
        format!("{}:80 {{\n\trespond \"the operator's site\" 200\n}}\n", fs::read_to_string(&caddyfile).unwrap());
    fs::write(&caddyfile, &theirs).unwrap();

    site.init().stdout_has("All 11 checks passed").run();
    proves_https(&site);
    let plain = |host: &str| {
        let resp = site.client().get(site.http_url("/")).header("Host", host).send().unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    assert_eq!(plain("other.example"), (200, "the operator's site".to_string()), "on our address");
    let elsewhere = reqwest::blocking::Client::new().get("http://127.0.0.1/").send().unwrap();
    assert_eq!(elsewhere.text().unwrap(), "the operator's site", "on other addresses");

    site.uninstall(false).any_stdout().run();
    assert_eq!(fs::read_to_string(&caddyfile).unwrap(), theirs);
}
