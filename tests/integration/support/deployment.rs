//! One proxy set up by `init` in a sandbox: the main configuration a
//! Debian machine would have (pointing into the sandbox), the stand-in
//! Ollama, answers whose paths stay in the sandbox, and, for HTTPS, a real
//! ACME server (pebble). Everything it starts stops when it is dropped.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::acme::{Pebble, private_loopback};
use super::proxies::{DaemonGuard, write_caddy_main, write_nginx_main_conf};
use super::standin::StandIn;
use super::{Sandbox, Tool, free_port};

pub const ALICE: &str = "alice's password is long enough";
pub const ALICE_ONLY: &str = "  - {username: alice, password_env: ALICE_PASSWORD}\n";
/// The public name of a plain-HTTP deployment; clients connect it to loopback.
pub const DOMAIN: &str = "ollama.example.com";
/// The name pebble issues certificates for.
pub const TLS_DOMAIN: &str = "ollama.test";

/// What an HTTPS deployment has beyond a plain one.
pub struct Tls {
    pub pebble: Pebble,
    /// Pebble's issuing root: what clients trust (`init --cacert`).
    pub root: PathBuf,
    pub http_port: u16,
}

pub struct Deployment {
    /// First, so it is dropped first: it needs the PID file in the sandbox.
    pub guard: DaemonGuard,
    pub tls: Option<Tls>,
    pub ollama: StandIn,
    pub sandbox: Sandbox,
    pub proxy: &'static str,
    pub domain: &'static str,
    /// Where the site listens: 127.0.0.1, or for Caddy with HTTPS a
    /// loopback address of the test's own (its HTTP port is fixed at 80).
    pub address: IpAddr,
    pub port: u16,
    pub answers: String,
}

/// The machine's main config for `proxy` in a fresh sandbox; the PID file
/// the proxy will write.
fn machine(proxy: &str, base: &std::path::Path) -> (Sandbox, PathBuf) {
    let sandbox = Sandbox::in_dir(base);
    let pid_file = match proxy {
        "nginx" => {
            write_nginx_main_conf(&sandbox);
            sandbox.path("run/nginx.pid")
        }
        _ => {
            write_caddy_main(&sandbox, "");
            sandbox.mkdir("run");
            sandbox.path("run/caddy.pid")
        }
    };
    (sandbox, pid_file)
}

impl Deployment {
    /// A plain-HTTP setup on a free loopback port, not applied yet.
    pub fn prepare(proxy: &'static str, users_yaml: &str) -> Deployment {
        Deployment::prepare_in(proxy, users_yaml, &std::env::temp_dir())
    }

    /// `prepare`, answering on any host name (no `domain:`), so that clients
    /// that cannot be told to connect a name to loopback use 127.0.0.1.
    pub fn prepare_any_host(proxy: &'static str, users_yaml: &str) -> Deployment {
        let mut d = Deployment::prepare(proxy, users_yaml);
        d.domain = "127.0.0.1";
        d.write_answers(users_yaml);
        d
    }

    /// `prepare`, with the sandbox in `base`.
    pub fn prepare_in(proxy: &'static str, users_yaml: &str, base: &std::path::Path) -> Deployment {
        let (sandbox, pid_file) = machine(proxy, base);
        let ollama = StandIn::start();
        let port = free_port();
        let mut d = Deployment {
            guard: DaemonGuard { pid_file },
            tls: None,
            ollama,
            sandbox,
            proxy,
            domain: DOMAIN,
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            answers: String::new(),
        };
        d.answers = d.sandbox.write("answers.yaml", "").display().to_string();
        d.write_answers(users_yaml);
        d
    }

    /// An HTTPS setup for alice against pebble, not applied yet. nginx gets
    /// any ports (the answers choose them); Caddy the real 80 and 443, on a
    /// loopback address of this test's own.
    pub fn prepare_https(proxy: &'static str) -> Deployment {
        let (sandbox, pid_file) = machine(proxy, &std::env::temp_dir());
        let ollama = StandIn::start();
        let (address, http_port, port) = if proxy == "nginx" {
            (IpAddr::V4(Ipv4Addr::LOCALHOST), free_port(), free_port())
        } else {
            (private_loopback(), 80, 443)
        };
        let pebble = Pebble::start(&sandbox, http_port, port, address);
        let root = pebble.issuing_root(&sandbox);
        let answers = sandbox.write(
            "answers.yaml",
            &format!(
                "proxy: {proxy}\ndomain: {TLS_DOMAIN}\nlisten_address: {address}\nport: {port}\nupstream: {}\n\
                 users:\n{ALICE_ONLY}bcrypt_cost: 4\n\
                 https:\n  enabled: true\n  email: ops@example.com\n  acme_directory: {}\n  acme_ca_root: {}\n  http_port: {http_port}\n{}",
                ollama.upstream(),
                pebble.directory,
                pebble.listener_ca.display(),
                sandbox.paths_yaml()
            ),
        );
        Deployment {
            guard: DaemonGuard { pid_file },
            tls: Some(Tls { pebble, root, http_port }),
            ollama,
            sandbox,
            proxy,
            domain: TLS_DOMAIN,
            address,
            port,
            answers: answers.display().to_string(),
        }
    }

    /// `prepare`, then `init`, which must succeed.
    pub fn deploy(proxy: &'static str, users_yaml: &str) -> Deployment {
        let d = Deployment::prepare(proxy, users_yaml);
        d.init().any_stdout().run();
        d
    }

    /// Plain-HTTP answers with these users (the `users:` lines).
    pub fn write_answers(&self, users_yaml: &str) {
        let domain = if self.domain == DOMAIN { format!("domain: {DOMAIN}\n") } else { String::new() };
        let yaml = format!(
            "proxy: {}\n{domain}listen_address: 127.0.0.1\nport: {}\nupstream: {}\nusers:\n{users_yaml}bcrypt_cost: 4\ntimeout: 2m\n{}",
            self.proxy,
            self.port,
            self.ollama.upstream(),
            self.sandbox.paths_yaml()
        );
        fs::write(&self.answers, yaml).unwrap();
    }

    /// URLs use the public name, as real clients do; `client()` connects
    /// that name to the site's address.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}:{}{path}", self.domain, self.port)
    }

    /// Plain HTTP of an HTTPS deployment (the redirect and the challenges).
    pub fn http_url(&self, path: &str) -> String {
        let tls = self.tls.as_ref().expect("an HTTPS deployment");
        format!("http://{}:{}{path}", self.address, tls.http_port)
    }

    /// A client that connects the domain to the site's address; for HTTPS
    /// it trusts only pebble's root and follows no redirect.
    pub fn client(&self) -> reqwest::blocking::Client {
        let builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(20))
            .resolve(self.domain, SocketAddr::new(self.address, self.port));
        let builder = match &self.tls {
            None => builder,
            Some(tls) => builder
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(&fs::read(&tls.root).unwrap()).unwrap())
                .tls_info(true)
                .redirect(reqwest::redirect::Policy::none()),
        };
        builder.build().unwrap()
    }

    pub fn status(&self, path: &str, auth: Option<(&str, &str)>) -> u16 {
        let mut request = self.client().get(self.url(path));
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        request.send().unwrap().status().as_u16()
    }

    /// `check` as alice, of the site by its public name, connected to
    /// this machine.
    pub fn check(&self) -> Tool {
        let url = format!("http://{DOMAIN}:{}", self.port);
        let resolve = format!("{DOMAIN}:{}:127.0.0.1", self.port);
        self.tool().args([
            "check",
            "--url",
            &url,
            "--username",
            "alice",
            "--password-env",
            "ALICE_PASSWORD",
            "--resolve",
            &resolve,
        ])
    }

    /// The binary with this deployment's environment.
    pub fn tool(&self) -> Tool {
        Tool::new().env("ALICE_PASSWORD", ALICE).caddy_home(&self.sandbox)
    }

    /// `init` with the answers (and pebble's root for the check at its end).
    pub fn init(&self) -> Tool {
        let tool = self.tool().args(["init", "--answers", &self.answers]);
        match &self.tls {
            Some(tls) => tool.args(["--cacert", tls.root.to_str().unwrap()]),
            None => tool,
        }
    }

    /// `uninstall`, optionally as a dry run.
    pub fn uninstall(&self, dry_run: bool) -> Tool {
        let tool = self.tool().args(["uninstall", "--answers", &self.answers]);
        if dry_run { tool.args(["--dry-run"]) } else { tool }
    }

    /// The file that holds the users.
    pub fn users_file(&self) -> PathBuf {
        match self.proxy {
            "nginx" => self.sandbox.path("etc/nginx/ollama.htpasswd"),
            _ => self.sandbox.path("etc/caddy/ollama.caddy"),
        }
    }

    /// The whole sandbox: its stand-ins for /etc, /var/lib, /var/log,
    /// /run, and root's home (~/.config, ~/.local/share: Caddy's config
    /// and data, here at `xdg-config`, `xdg-data`, and the storage the main
    /// Caddyfile names, `caddy-data`), but not what the test itself keeps
    /// there (the ACME server, the answers).
    pub fn machine(&self) -> BTreeMap<String, String> {
        let mut all = super::tree(self.sandbox.root());
        all.retain(|k, _| k != "answers.yaml" && k != "pebble" && !k.starts_with("pebble/"));
        // The proxy appends to our access log after it answered, so a line
        // may land after a test took its picture: its being there counts,
        // not its lines.
        if let Some(log) = all.get_mut("log/ollama-secure.access.log") {
            *log = "(the access log)".to_string();
        }
        all
    }

    /// Everything but the allowed differences is as `before`.
    pub fn assert_as_before(&self, before: &BTreeMap<String, String>) {
        let differences = self.differences_from(before);
        assert!(differences.is_empty(), "the machine is not as before:\n{}", differences.join("\n"));
    }

    /// What is not as `before`, but for the allowed differences.
    pub fn differences_from(&self, before: &BTreeMap<String, String>) -> Vec<String> {
        let after = self.machine();
        let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        keys.into_iter()
            .filter(|k| before.get(*k) != after.get(*k) && !allowed_difference(self.proxy, k))
            .map(|k| match (before.get(k), after.get(k)) {
                (None, Some(_)) => format!("left behind: {k}"),
                (Some(_), None) => format!("gone: {k}"),
                _ => format!("changed: {k}"),
            })
            .collect()
    }
}

/// What may differ from before `init` once it is undone, each for the
/// reason the README gives: nginx's logs and temporary folders (here as in
/// Debian's nginx.conf, at log/ and var/nginx/), which nginx makes at its
/// first start whoever starts it; certbot's logs in a log folder it had
/// before (a folder made for us goes, logs and all); and the lock file
/// that makes runs take turns.
fn allowed_difference(proxy: &str, path: &str) -> bool {
    let nginx_own = ["log/nginx-error.log", "log/nginx-access.log"].contains(&path) || path.starts_with("var/nginx/");
    let certbot_log = path.starts_with("log/letsencrypt/letsencrypt.log");
    path == "run/ollama-secure.lock" || (proxy == "nginx" && (nginx_own || certbot_log))
}
