//! macOS with Homebrew, simulated (no Mac runs these tests): what `init`
//! plans there for both proxies and both Homebrew prefixes (Apple silicon's
//! /opt/homebrew, Intel's /usr/local), from facts made by hand; and the
//! nginx files it renders pass the real `nginx -t` here once moved from the
//! prefix into a sandbox, under a main configuration laid out as Homebrew's
//! (`include servers/*;`).

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use ollama_secure::answers::Answers;
use ollama_secure::config::Config;
use ollama_secure::facts::{Facts, PackageManager};
use ollama_secure::paths::{HOMEBREW_PREFIXES, Os};
use ollama_secure::plan::{Action, Goal, Plan, describe};
use ollama_secure::system::{Existing, Filesystem};

use crate::support::{MapSecrets, Sandbox, free_port, plan_for_goal, sh, snapshot_settings, written};

/// A Mac with Homebrew under `prefix`, the proxy installed (by its user,
/// with `brew install`), nothing of ours.
fn mac(prefix: &str) -> Facts {
    let mut facts = Facts::empty("20261130T175200Z");
    facts.package_manager = Some(PackageManager::Brew);
    for dir in ["", "/etc", "/etc/nginx", "/etc/nginx/servers", "/var", "/var/log", "/var/run"] {
        facts.files.insert(format!("{prefix}{dir}").into(), Existing::Dir { mode: 0o755, uid: 501, gid: 80 });
    }
    // macOS's groups: users are in staff, gid 0 is wheel (which the tool
    // asks for as root: `RealSystem::group_id`), there is no www-data.
    facts.groups.extend([("root", 0), ("wheel", 0), ("staff", 20), ("_www", 70)].map(|(g, id)| (g.to_string(), id)));
    // No tmpfs on macOS.
    facts.tmpfs = false;
    // A RAM disk the operator mounted, for nginx's cache of password checks.
    facts.files.insert(RAM_DISK.into(), Existing::Dir { mode: 0o755, uid: 0, gid: 0 });
    facts.mounts.insert(RAM_DISK.into(), (Filesystem::Memory, true));
    facts
}

fn mac_config(yaml: &str, prefix: &'static str) -> Config {
    let answers = Answers::from_yaml(yaml, "mac.yaml").unwrap();
    Config::from_answers(&answers, "mac.yaml", Os::MacHomebrew(prefix), &MapSecrets(HashMap::new())).unwrap()
}

const RAM_DISK: &str = "/Volumes/ollama-secure-ram";

fn answers(proxy: &str) -> String {
    let mut yaml = format!(
        "proxy: {proxy}\nusers: [{{username: alice, password: correct horse battery staple}}]\nbcrypt_cost: 4\ninstall: true\n"
    );
    if proxy == "nginx" {
        yaml.push_str(&format!("paths: {{auth_cache: {RAM_DISK}/auth}}\n"));
    }
    yaml
}

fn mac_plan(yaml: &str, prefix: &'static str) -> (Config, Plan) {
    let config = mac_config(yaml, prefix);
    let (_, _, plan) = plan_for_goal(&config, &mac(prefix), 42, Goal::Init { install: config.install });
    (config, plan)
}

#[test]
fn on_a_mac_everything_is_under_the_homebrew_prefix() {
    for prefix in HOMEBREW_PREFIXES {
        for proxy in ["nginx", "caddy"] {
            let (config, plan) = mac_plan(&answers(proxy), prefix);
            assert!(plan.refusal().is_none(), "{prefix} {proxy}: {:?}", plan.refusal().map(|r| r.to_string()));
            let text = describe(&plan);
            // No apt, no policy-rc.d, no systemd, no Debian path or group.
            for debian in ["apt-get", "policy-rc.d", "systemctl", " /etc/", " /run/", " /var/", "www-data"] {
                assert!(!text.contains(debian), "{prefix} {proxy}: {debian:?} in the plan:\n{text}");
            }
            let other = HOMEBREW_PREFIXES.iter().find(|p| **p != prefix).unwrap();
            assert!(!text.contains(other), "{prefix} {proxy}: the other prefix {other} in the plan");
            for step in &plan.steps {
                let path = match &step.action {
                    Action::Write { file, .. } => &file.path,
                    Action::CreateDir { path, .. } => path,
                    Action::Link { link, .. } => link,
                    _ => continue,
                };
                assert!(
                    path.starts_with(prefix) || path.starts_with(RAM_DISK),
                    "{prefix} {proxy}: {} is outside the prefix",
                    path.display()
                );
            }
            // The hashes are for the group macOS users are in.
            let users =
                ollama_secure::proxy::ProxyKind::parse(proxy).unwrap().module().users_file(&config.settings.paths);
            let file = written(&plan).into_iter().find(|f| f.path == users).unwrap();
            assert_eq!((file.mode, file.group.as_str()), (0o640, "staff"));
            if prefix == HOMEBREW_PREFIXES[0] {
                snapshot_settings().bind(|| insta::assert_snapshot!(format!("plan-macos-{proxy}"), text));
            }
        }
    }
}

/// Homebrew refuses to run as root, and ollama-secure runs as root: a
/// missing proxy is for its user to install.
#[test]
fn on_a_mac_a_missing_proxy_is_left_to_brew_install_by_its_user() {
    for proxy in ["nginx", "caddy"] {
        let config = mac_config(&answers(proxy), HOMEBREW_PREFIXES[0]);
        let facts = Facts { proxy_installed: false, ..mac(HOMEBREW_PREFIXES[0]) };
        let (_, _, plan) = plan_for_goal(&config, &facts, 42, Goal::Init { install: config.install });
        let refusal = plan.refusal().expect("a blocker").to_string();
        let says = format!("Homebrew does not run as root, so install it yourself with `brew install {proxy}`");
        assert!(refusal.contains(&says), "{refusal}");
        assert!(!describe(&plan).contains("run `brew"), "no step runs brew");
    }
}

/// nginx's cache of password checks keeps credentials, so it lives in memory;
/// macOS cannot mount a tmpfs, so a cache on a disk is refused, in words.
#[test]
fn on_a_mac_nginx_refuses_a_cache_of_password_checks_on_a_disk() {
    for prefix in HOMEBREW_PREFIXES {
        let yaml = answers("nginx").replace(&format!("paths: {{auth_cache: {RAM_DISK}/auth}}\n"), "");
        let (_, plan) = mac_plan(&yaml, prefix);
        let refusal = plan.refusal().expect("a blocker").to_string();
        assert!(refusal.contains(&format!("{prefix}/var/run is on a disk")), "{refusal}");
        assert!(refusal.contains("cannot mount a tmpfs there (macOS has none)"), "{refusal}");
        assert!(!describe(&plan).contains("mount -t tmpfs"));
    }
}

#[test]
fn the_nginx_files_rendered_for_a_mac_pass_nginx_t_once_moved_out_of_the_prefix() {
    let prefix = HOMEBREW_PREFIXES[0];
    let sandbox = Sandbox::new();
    let root = sandbox.root().display().to_string();
    // `nginx -t` binds what the site listens on: loopback, a free port.
    let yaml = format!("{}listen_address: 127.0.0.1\nport: {}\n", answers("nginx"), free_port());
    let (_, plan) = mac_plan(&yaml, prefix);
    let moved = |path: &Path| {
        let inside = path.strip_prefix(prefix).or_else(|_| path.strip_prefix("/")).unwrap();
        sandbox.path(inside.to_str().unwrap())
    };
    for step in &plan.steps {
        match &step.action {
            Action::Write { file, .. } => {
                let path = moved(&file.path);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                let content = file.content.replace(prefix, &root).replace(RAM_DISK, &format!("{root}{RAM_DISK}"));
                fs::write(&path, content).unwrap();
            }
            Action::Link { link, target } => {
                let link = moved(link);
                fs::create_dir_all(link.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(moved(target), link).unwrap();
            }
            _ => {}
        }
    }
    // Homebrew's nginx.conf, less its example server on 8080: its `servers/`
    // include is where the site's link goes.
    let conf = sandbox.write(
        "etc/nginx/nginx.conf",
        &format!(
            "worker_processes 1;\nerror_log {root}/var/log/nginx/error.log;\npid {root}/var/run/nginx.pid;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n    default_type application/octet-stream;\n    sendfile on;\n    keepalive_timeout 65;\n    include servers/*;\n}}\n"
        ),
    );
    // What Homebrew makes under its prefix.
    sandbox.mkdir("var/log/nginx");
    sandbox.mkdir("var/run");
    // The RAM disk the operator mounted.
    sandbox.mkdir(&RAM_DISK[1..]);
    let link = sandbox.path("etc/nginx/servers/ollama.conf");
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the site is linked into servers/");
    let (ok, output) = sh("nginx", &["-t", "-c", conf.to_str().unwrap()]);
    assert!(ok, "nginx -t refused the macOS files:\n{output}");
}
