//! One snapshot per answers file in tests/render-inputs: every template
//! variant (nginx/caddy × http/https × domain or not × one or several users).
//! Salts come from seeded entropy, so hashes are stable; no plaintext
//! password appears in any snapshot.

use ollama_secure::facts::Facts;
use ollama_secure::plan::{Goal, describe};
use ollama_secure::render::Role;
use ollama_secure::system::Existing;

use crate::support::{ROOT, load_config, plan_for, plan_for_goal, snapshot_settings, written};

/// Every file `yaml` renders to on a machine with `facts`, in order, with
/// a check that no secret reached one.
fn rendered(yaml: &str, facts: &Facts) -> String {
    let config = load_config(yaml, "input.yaml").unwrap();
    let (_, resolution, plan) = plan_for(&config, facts, 42);
    let mut out = String::new();
    for file in written(&plan) {
        if file.role != Role::State {
            out.push_str(&format!(
                "=== {} (mode {:04o}, owner root:{}) ===\n{}\n",
                file.path.display(),
                file.mode,
                file.group,
                file.content
            ));
        }
    }
    assert!(!out.contains("correct horse battery staple"), "a plaintext password reached a rendered file");
    for (_, generated) in &resolution.generated {
        assert!(!out.contains(generated.expose()), "a generated password reached a rendered file");
    }
    for (_, key) in &resolution.generated_keys {
        assert!(!out.contains(key.secret.expose()), "a generated key reached a rendered file");
        assert!(!out.contains(key.text().expose()), "a generated key reached a rendered file");
    }
    out
}

#[test]
fn every_template_variant_renders_as_snapshotted() {
    snapshot_settings().bind(|| {
        insta::glob!("../render-inputs", "*.yaml", |path| {
            let yaml = std::fs::read_to_string(path).unwrap();
            let out = rendered(&yaml, &Facts::empty("20261130T175200Z"));
            insta::assert_snapshot!("render", out);
        });
    });
}

/// Caddy 2.8 and later get `basic_auth` (2.6 knows only `basicauth`, which
/// the others load with a deprecation warning); users and keys both.
#[test]
fn a_current_caddy_gets_basic_auth() {
    snapshot_settings().bind(|| {
        let yaml = std::fs::read_to_string(format!("{ROOT}/tests/render-inputs/caddy-http-keys-roles.yaml")).unwrap();
        let facts = Facts { proxy_version: Some("2.11.7".into()), ..Facts::empty("20261130T175200Z") };
        let out = rendered(&yaml, &facts);
        assert_eq!(out.matches("\tbasic_auth @ollama_secure_").count(), 2, "{out}");
        assert!(!out.contains("basicauth @"), "{out}");
        insta::assert_snapshot!("render-caddy-2.11-keys-roles", out);
        let old = Facts { proxy_version: Some("2.6.2".into()), ..Facts::empty("20261130T175200Z") };
        assert_eq!(rendered(&yaml, &old).matches("\tbasicauth @ollama_secure_").count(), 2);
    });
}

/// A fresh Debian machine with both proxies installed and nothing of ours.
fn fresh_debian() -> Facts {
    let mut facts = Facts::empty("20261130T175200Z");
    for dir in [
        "/etc",
        "/etc/nginx",
        "/etc/nginx/sites-available",
        "/etc/nginx/sites-enabled",
        "/etc/caddy",
        "/var",
        "/var/lib",
        "/var/log",
        "/var/log/caddy",
        "/run",
    ] {
        facts.files.insert(dir.into(), Existing::Dir { mode: 0o755, uid: 0, gid: 0 });
    }
    // /run is a tmpfs (as with systemd): nothing is mounted for the cache.
    facts.mounts.insert("/run".into(), (ollama_secure::system::Filesystem::Memory, true));
    facts.groups.extend([("root".to_string(), 0), ("www-data".to_string(), 33), ("caddy".to_string(), 995)]);
    // Debian's nginx package enables its default site.
    facts.listings.insert("/etc/nginx/sites-enabled".into(), vec!["/etc/nginx/sites-enabled/default".into()]);
    facts
}

#[test]
fn the_dry_run_plan_is_snapshotted_for_both_proxies() {
    snapshot_settings().bind(|| {
        for name in ["nginx-http-any-several", "caddy-https-domain-one"] {
            let yaml = std::fs::read_to_string(format!("{ROOT}/tests/render-inputs/{name}.yaml")).unwrap();
            let config = load_config(&yaml, "input.yaml").unwrap();
            let (_, resolution, plan) = plan_for(&config, &fresh_debian(), 42);
            let text = describe(&plan);
            assert!(text.contains("<redacted>"), "hashes are redacted in plans:\n{text}");
            for (username, hash) in &resolution.hashes {
                assert!(!text.contains(hash), "the hash of {username} is shown in the plan");
            }
            insta::assert_snapshot!(format!("plan-{name}"), text);
        }
    });
}

/// `install: true` with `caddy_source: caddy-repo` on a machine without
/// Caddy, whose key came back from Cloudsmith (simulated: this machine
/// cannot reach it): the dry run shows the key, the `deb` line and apt's
/// commands, in order.
#[test]
fn the_dry_run_of_caddy_from_its_own_repository_is_snapshotted() {
    let key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZCaddyKeyForTheSnapshotOnly\n=AbCd\n-----END PGP PUBLIC KEY BLOCK-----\n";
    let yaml = "proxy: caddy\nusers: [{username: alice, password: correct horse battery staple}]\nbcrypt_cost: 4\ninstall: true\ncaddy_source: caddy-repo\n";
    let config = load_config(yaml, "input.yaml").unwrap();
    let mut facts = fresh_debian();
    facts.proxy_installed = false;
    facts.package_manager = Some(ollama_secure::facts::PackageManager::Apt);
    for dir in ["/etc/apt", "/etc/apt/keyrings", "/etc/apt/sources.list.d"] {
        facts.files.insert(dir.into(), Existing::Dir { mode: 0o755, uid: 0, gid: 0 });
    }
    facts.repository_key = Some(Ok(key.to_string()));
    // As facts::probe has it: the repository's oldest version, before it is installed.
    let repository = ollama_secure::proxy::ProxyKind::Caddy.module().own_repository().unwrap();
    facts.proxy_version = Some(repository.oldest_version.to_string());
    let goal = Goal::Init { install: config.install };
    let (_, _, plan) = plan_for_goal(&config, &facts, 42, goal);
    let text = describe(&plan);
    assert!(text.contains("      | mDMEZCaddyKeyForTheSnapshotOnly\n"), "{text}");
    snapshot_settings().bind(|| insta::assert_snapshot!("plan-caddy-own-repository", text));
}
