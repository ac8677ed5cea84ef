//! Every rendered variant passes the real validators: `nginx -t` (with a
//! Debian-like main config in a sandbox) and `caddy validate`. Hashes verify
//! with Apache's `htpasswd -v`.

use std::fs;

use ollama_secure::certbot::live_paths;
use ollama_secure::config::Config;
use ollama_secure::facts::Facts;
use ollama_secure::plan::Action;
use ollama_secure::proxy::{ProxyKind, Stage};

use crate::support::proxies::{caddy, write_caddy_main, write_nginx_main_conf};
use crate::support::{Sandbox, load_config, plan_for, render_inputs, self_signed, sh, written};

/// Loads `yaml` with every path moved into `sandbox`, and creates what the
/// config refers to (certificates, CA file) so validators can open it.
/// `nginx -t` really binds the listen addresses, so every listener moves to
/// loopback on a free port: tests never bind other addresses, and parallel
/// tests never collide on a port.
pub fn sandboxed_config(sandbox: &Sandbox, yaml: &str) -> Config {
    let mut config = load_config(&format!("{yaml}\n{}", sandbox.paths_yaml()), "input.yaml").unwrap();
    let site = &mut config.settings.site;
    if !site.listen_address.is_some_and(|a| a.is_loopback()) {
        site.listen_address = Some(std::net::Ipv4Addr::LOCALHOST.into());
    }
    site.port = crate::support::free_port();
    if let Some(https) = site.https.as_mut() {
        https.http_port = crate::support::free_port();
    }
    if let Some(https) = site.https.as_mut()
        && https.acme_ca_root.is_some()
    {
        let ca = sandbox.path("pebble-ca.pem");
        if !ca.exists() {
            self_signed(&ca, &sandbox.path("pebble-ca.key"), "ca.test");
        }
        https.acme_ca_root = Some(ca);
    }
    if config.settings.proxy == ProxyKind::Nginx
        && let Some((cert, key)) = live_paths(&config.settings)
        && !cert.exists()
    {
        self_signed(&cert, &key, &config.settings.site.domain.as_ref().unwrap().to_string());
    }
    config
}

/// Renders `config` into the sandbox, for the proxy's version installed
/// here (as `init` would), and runs the proxy's validator.
/// Returns (valid, validator output).
pub fn render_and_validate(sandbox: &Sandbox, config: &Config) -> (bool, String) {
    let installed = config.settings.proxy.module().installed_version(&ollama_secure::system::RealSystem);
    let facts = Facts { proxy_version: installed, ..Facts::empty("20261130T175200Z") };
    let (_, _, plan) = plan_for(config, &facts, 7);
    for step in &plan.steps {
        match &step.action {
            Action::Write { file, .. } => {
                fs::create_dir_all(file.path.parent().unwrap()).unwrap();
                fs::write(&file.path, &file.content).unwrap();
            }
            Action::Link { link, target } => {
                let _ = fs::remove_file(link);
                std::os::unix::fs::symlink(target, link).unwrap();
            }
            _ => {}
        }
    }
    let paths = &config.settings.paths;
    match config.settings.proxy {
        ProxyKind::Nginx => sh("nginx", &["-t", "-c", paths.nginx_conf.to_str().unwrap()]),
        ProxyKind::Caddy => {
            let out =
                caddy(sandbox, &["validate", "--config", paths.caddyfile.to_str().unwrap(), "--adapter", "caddyfile"]);
            (
                out.status.success(),
                format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
            )
        }
    }
}

pub fn prepare_main_config(sandbox: &Sandbox, proxy: ProxyKind) {
    match proxy {
        ProxyKind::Nginx => {
            write_nginx_main_conf(sandbox);
        }
        ProxyKind::Caddy => {
            write_caddy_main(sandbox, "");
        }
    }
}

#[test]
fn every_rendered_variant_passes_the_real_validator() {
    for input in render_inputs() {
        let sandbox = Sandbox::new();
        let yaml = fs::read_to_string(&input).unwrap();
        let config = sandboxed_config(&sandbox, &yaml);
        prepare_main_config(&sandbox, config.settings.proxy);
        let (ok, output) = render_and_validate(&sandbox, &config);
        assert!(ok, "{} does not validate:\n{output}", input.display());
        // Caddy 2.8 and later warn about `basicauth`: what is rendered for
        // the version installed uses the name it knows.
        assert!(!output.contains("deprecated"), "{}:\n{output}", input.display());
    }
}

#[test]
fn hashes_verify_with_apache_htpasswd() {
    let sandbox = Sandbox::new();
    let yaml = "proxy: nginx\nusers:\n  - {username: alice, password: \"correct horse battery staple\"}\n  - {username: carol, generate: true}\n";
    let config = sandboxed_config(&sandbox, yaml);
    let (_, resolution, plan) = plan_for(&config, &Facts::empty("x"), 11);
    let Some(file) = written(&plan).into_iter().find(|f| f.path == config.settings.paths.htpasswd) else {
        panic!("no htpasswd in the plan");
    };
    let path = sandbox.write("h", &file.content);
    let path = path.to_str().unwrap();
    assert!(file.content.contains("alice:$2y$12$"), "chosen passwords use cost 12:\n{}", file.content);
    assert!(file.content.contains("carol:$2y$05$"), "generated passwords use cost 5:\n{}", file.content);
    assert!(sh("htpasswd", &["-vb", path, "alice", "correct horse battery staple"]).0);
    assert!(!sh("htpasswd", &["-vb", path, "alice", "correct horse battery stapl"]).0);
    let carol = resolution.generated.iter().find(|(name, _)| name.as_str() == "carol").unwrap().1.clone();
    assert!(sh("htpasswd", &["-vb", path, "carol", carol.expose()]).0);
}

#[test]
fn the_nginx_acme_bootstrap_site_passes_nginx_t_without_a_certificate() {
    for input in
        render_inputs().into_iter().filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("nginx-https"))
    {
        let sandbox = Sandbox::new();
        let yaml = fs::read_to_string(&input).unwrap();
        let config = load_config(&format!("{yaml}\n{}", sandbox.paths_yaml()), "input.yaml").unwrap();
        let mut config = config;
        config.settings.site.listen_address = Some(std::net::Ipv4Addr::LOCALHOST.into());
        config.settings.site.https.as_mut().unwrap().http_port = crate::support::free_port();
        prepare_main_config(&sandbox, ProxyKind::Nginx);
        let (setup, _, _) = plan_for(&config, &Facts::empty("x"), 3);
        let files = ProxyKind::Nginx
            .module()
            .render(&setup, &ollama_secure::facts::Facts::empty("20261130T175200Z"), Stage::AwaitingCertificate)
            .unwrap();
        let site = files.into_iter().find(|f| f.path == config.settings.paths.nginx_site).unwrap();
        assert!(!site.content.contains("ssl_certificate"), "the bootstrap stage needs no certificate");
        assert!(site.content.contains("/.well-known/acme-challenge/"));
        let paths = &config.settings.paths;
        fs::write(&paths.nginx_site, &site.content).unwrap();
        std::os::unix::fs::symlink(&paths.nginx_site, &paths.nginx_site_link).unwrap();
        assert!(!live_paths(&config.settings).unwrap().0.exists());
        let (ok, output) = sh("nginx", &["-t", "-c", paths.nginx_conf.to_str().unwrap()]);
        assert!(ok, "{}: the bootstrap site does not validate:\n{output}", input.display());
    }
}

/// The Caddy the tests run (`caddy` on PATH): the one `.ci/run` asks for
/// when it runs the Caddy tests again with the official build
/// (`OLLAMA_SECURE_EXPECT_CADDY`), else whichever answers with a version.
#[test]
fn caddy_under_test_is_the_one_asked_for() {
    let out =
        std::process::Command::new("caddy").arg("version").env("HOME", "/proc/version").output().expect("caddy runs");
    let version = String::from_utf8_lossy(&out.stdout);
    let version = version.split_whitespace().next().unwrap_or_default().trim_start_matches('v').to_string();
    assert!(version.starts_with("2."), "caddy version said {version:?}");
    if let Ok(expected) = std::env::var("OLLAMA_SECURE_EXPECT_CADDY") {
        assert_eq!(version, expected, "the Caddy on PATH is not the one asked for");
    }
}
