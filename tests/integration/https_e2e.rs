//! HTTPS against a real ACME server (pebble): nginx with certbot through the
//! webroot, Caddy with its own ACME client. Proves the certificate comes
//! from pebble's root for the domain, 401/200 over HTTPS, the redirect from
//! HTTP, the challenge path open despite auth, no new certificate on a
//! second run, renewal reloading nginx, and a clean rollback when issuance
//! fails.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::acme::{Pebble, private_loopback};
use crate::support::proxies::{DaemonGuard, caddy_env, write_caddy_main, write_nginx_main_conf};
use crate::support::standin::StandIn;
use crate::support::{Ran, Sandbox, Tool, free_port, tree};

const DOMAIN: &str = "ollama.test";
const PASSWORD: &str = "a long https test password";

struct Site {
    // Dropped first: they need the PID files in the sandbox.
    _proxy: DaemonGuard,
    pebble: Pebble,
    _ollama: StandIn,
    sandbox: Sandbox,
    address: IpAddr,
    http_port: u16,
    https_port: u16,
    answers: PathBuf,
    root: PathBuf,
}

impl Site {
    fn new(proxy: &str) -> Site {
        let sandbox = Sandbox::new();
        let ollama = StandIn::start();
        // nginx: any ports (the answers choose them). Caddy: the real 80 and
        // 443, on a loopback address of this test's own (see the README).
        let (address, http_port, https_port, pid) = if proxy == "nginx" {
            write_nginx_main_conf(&sandbox);
            (IpAddr::V4(Ipv4Addr::LOCALHOST), free_port(), free_port(), "run/nginx.pid")
        } else {
            write_caddy_main(&sandbox, "");
            sandbox.mkdir("run");
            (private_loopback(), 80, 443, "run/caddy.pid")
        };
        let pebble = Pebble::start(&sandbox, http_port, https_port, address);
        let root = pebble.issuing_root(&sandbox);
        let answers = sandbox.write(
            "answers.yaml",
            &format!(
                "proxy: {proxy}\ndomain: {DOMAIN}\nlisten_address: {address}\nport: {https_port}\nupstream: {}\n\
                 users:\n  - {{username: alice, password_env: ALICE_PASSWORD}}\nbcrypt_cost: 4\n\
                 https:\n  enabled: true\n  email: ops@example.com\n  acme_directory: {}\n  acme_ca_root: {}\n  http_port: {http_port}\n{}",
                ollama.upstream(),
                pebble.directory,
                pebble.listener_ca.display(),
                sandbox.paths_yaml()
            ),
        );
        Site {
            _proxy: DaemonGuard { pid_file: sandbox.path(pid) },
            pebble,
            _ollama: ollama,
            address,
            http_port,
            https_port,
            answers,
            root,
            sandbox,
        }
    }

    fn init(&self) -> Ran {
        let mut tool = Tool::new().env("ALICE_PASSWORD", PASSWORD);
        for (k, v) in caddy_env(&self.sandbox) {
            tool = tool.env(&k, &v);
        }
        tool.args(["init", "--answers", self.answers.to_str().unwrap(), "--cacert", self.root.to_str().unwrap()]).run()
    }

    /// A client that trusts only pebble's issuing root and connects the
    /// domain to this site's address.
    fn client(&self) -> reqwest::blocking::Client {
        let root = reqwest::Certificate::from_pem(&fs::read(&self.root).unwrap()).unwrap();
        reqwest::blocking::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root)
            .tls_info(true)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(DOMAIN, SocketAddr::new(self.address, self.https_port))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    fn https(&self, path: &str) -> String {
        format!("https://{DOMAIN}:{}{path}", self.https_port)
    }

    fn http(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.address, self.http_port)
    }

    /// The certificate the site serves now (DER).
    fn served_certificate(&self) -> Vec<u8> {
        let resp = self
            .client()
            .get(self.https("/"))
            .send()
            .expect("the HTTPS site answers with a certificate from pebble's root");
        resp.extensions().get::<reqwest::tls::TlsInfo>().and_then(|t| t.peer_certificate()).unwrap().to_vec()
    }

    fn proves_https(&self) {
        let client = self.client();
        // Trusting only pebble's root: the chain and the name must be right.
        assert_eq!(client.get(self.https("/api/version")).send().unwrap().status(), 401);
        let resp = client.get(self.https("/api/version")).basic_auth("alice", Some(PASSWORD)).send().unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.text().unwrap().contains("0.13.0"));
        // Plain HTTP redirects to HTTPS, without asking for a password.
        let resp = client.get(self.http("/api/tags")).header("Host", DOMAIN).send().unwrap();
        assert_eq!(resp.status(), 308, "plain HTTP redirects");
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        let port = if self.https_port == 443 { String::new() } else { format!(":{}", self.https_port) };
        assert_eq!(location, format!("https://{DOMAIN}{port}/api/tags"));
    }
}

#[test]
fn nginx_gets_a_certificate_from_pebble_with_certbot() {
    let site = Site::new("nginx");
    let ran = site.init();
    ran.assert_code(0);
    for expected in [
        "✓ certificate obtained for ollama.test",
        "PASS  TLS certificate: valid for ollama.test",
        "PASS  plain HTTP redirects to HTTPS",
        "All 9 checks passed",
    ] {
        assert!(ran.stdout.contains(expected), "{expected:?} missing:\n{}", ran.stdout);
    }
    site.proves_https();

    // The challenge path stays open to the ACME server despite the password.
    let webroot = site.sandbox.path("var/lib/ollama-secure/acme/.well-known/acme-challenge");
    fs::create_dir_all(&webroot).unwrap();
    fs::write(webroot.join("probe-token"), "probe-content").unwrap();
    let resp =
        site.client().get(site.http("/.well-known/acme-challenge/probe-token")).header("Host", DOMAIN).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), "probe-content");
    fs::remove_file(webroot.join("probe-token")).unwrap();

    // A second run requests no new certificate and changes nothing.
    let live = site.sandbox.path("etc/letsencrypt/live/ollama.test/fullchain.pem");
    let before = (fs::read(&live).unwrap(), site.served_certificate());
    let ran = site.init();
    ran.assert_code(0);
    assert!(ran.stdout.contains("Nothing to change"), "{}", ran.stdout);
    assert!(!ran.stdout.contains("obtaining a certificate"), "a second run asked for a certificate: {}", ran.stdout);
    assert_eq!((fs::read(&live).unwrap(), site.served_certificate()), before);

    // Renewal with the saved configuration reloads nginx (deploy hook),
    // which then serves the new certificate.
    let le = |rel: &str| site.sandbox.path(rel).display().to_string();
    let renew = std::process::Command::new("certbot")
        // Without a terminal, certbot renew first sleeps up to 8 minutes to spread load.
        .args(["renew", "--force-renewal", "--non-interactive", "--no-random-sleep-on-renew"])
        .args([
            "--config-dir",
            &le("etc/letsencrypt"),
            "--work-dir",
            &le("var/lib/letsencrypt"),
            "--logs-dir",
            &le("log/letsencrypt"),
        ])
        .env("REQUESTS_CA_BUNDLE", &site.pebble.listener_ca)
        .output()
        .unwrap();
    assert!(renew.status.success(), "{}", String::from_utf8_lossy(&renew.stderr));
    assert_ne!(fs::read(&live).unwrap(), before.0, "certbot did not renew");
    // nginx's reload is graceful: new workers take over shortly after the
    // renewal hook returns. The limit only keeps a broken hook from hanging.
    let start = Instant::now();
    while site.served_certificate() == before.1 {
        assert!(start.elapsed() < Duration::from_secs(30), "nginx still serves the old certificate after renewal");
        std::thread::sleep(Duration::from_millis(100));
    }
    site.proves_https();

    // uninstall removes the site and the certificate it obtained.
    let mut tool = Tool::new();
    for (k, v) in caddy_env(&site.sandbox) {
        tool = tool.env(&k, &v);
    }
    let ran = tool.args(["uninstall", "--answers", site.answers.to_str().unwrap()]).run();
    ran.assert_code(0);
    assert!(ran.stdout.contains("✓ deleted the certificate"), "{}", ran.stdout);
    assert!(!site.sandbox.path("etc/letsencrypt/live/ollama.test").exists(), "the certificate is still there");
    assert!(!site.sandbox.path("etc/letsencrypt/renewal/ollama.test.conf").exists(), "its renewal is still configured");
    assert!(!site.sandbox.path("etc/nginx/sites-available/ollama").exists());
}

#[test]
fn caddy_gets_a_certificate_from_pebble_by_itself() {
    let site = Site::new("caddy");
    let ran = site.init();
    ran.assert_code(0);
    for expected in [
        "✓ Caddy serves a certificate for ollama.test",
        "PASS  TLS certificate: valid for ollama.test",
        "All 9 checks passed",
    ] {
        assert!(ran.stdout.contains(expected), "{expected:?} missing:\n{}", ran.stdout);
    }
    site.proves_https();
    let before = site.served_certificate();
    let ran = site.init();
    ran.assert_code(0);
    assert!(ran.stdout.contains("Nothing to change"), "{}", ran.stdout);
    assert_eq!(site.served_certificate(), before, "a second run changed the certificate");
}

#[test]
fn failed_issuance_restores_everything_and_says_why() {
    let site = Site::new("nginx");
    // DNS points the domain at an address where nothing answers.
    site.pebble.resolve_everything_to(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 254)));
    let state = site.sandbox.trees(&["etc", "var/lib"]);
    let ran = site.init();
    ran.assert_code(1);
    assert!(ran.stderr.contains("the ACME server could not reach this server for ollama.test"), "{}", ran.stderr);
    assert!(ran.stderr.contains(&format!("is port {} open", site.http_port)), "{}", ran.stderr);
    assert!(ran.stderr.contains("rolled back"), "{}", ran.stderr);
    let mut after = site.sandbox.trees(&["etc", "var/lib"]);
    // certbot keeps its account and logs; every file of ours is gone.
    after.retain(|k, _| !k.starts_with("etc/letsencrypt") && !k.starts_with("var/lib/letsencrypt"));
    assert_eq!(after, state, "a failed issuance left changes behind");
    assert!(!site.sandbox.path("run/nginx.pid").exists(), "nginx, started for the challenge, was not stopped again");
}

#[test]
fn caddy_failed_issuance_reports_the_acme_error_and_restores_everything() {
    let site = Site::new("caddy");
    site.pebble.resolve_everything_to(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 254)));
    let before = tree(&site.sandbox.path("etc"));
    let ran = site.init();
    ran.assert_code(1);
    // The wait ended at the ACME error Caddy logged, not at its time limit.
    assert!(!ran.stderr.contains("no certificate after"), "{}", ran.stderr);
    assert!(ran.stderr.contains("Caddy did not obtain a certificate for ollama.test"), "{}", ran.stderr);
    assert!(ran.stderr.contains("127.0.0.254"), "the ACME server's words are shown: {}", ran.stderr);
    assert!(ran.stderr.contains("rolled back"), "{}", ran.stderr);
    assert_eq!(tree(&site.sandbox.path("etc")), before, "a failed issuance left changes behind");
}
