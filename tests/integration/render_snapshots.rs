//! One snapshot per answers file in tests/render-inputs: every template
//! variant (nginx/caddy × http/https × domain or not × one or several users).
//! Salts come from seeded entropy, so hashes are stable; no plaintext
//! password appears in any snapshot.

use ollama_secure::credentials::SeededEntropy;
use ollama_secure::facts::Facts;
use ollama_secure::plan::describe;
use ollama_secure::setup;

use crate::support::{ROOT, load_config};

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(format!("{ROOT}/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[test]
fn every_template_variant_renders_as_snapshotted() {
    settings().bind(|| {
        insta::glob!("../render-inputs", "*.yaml", |path| {
            let yaml = std::fs::read_to_string(path).unwrap();
            let config = load_config(&yaml, "input.yaml").unwrap();
            let prepared = setup::prepare(&config, &Facts::empty("20261130T175200Z"), &mut SeededEntropy(42)).unwrap();
            let mut out = String::new();
            for step in &prepared.plan.steps {
                if let ollama_secure::plan::Step::Write { file, .. } = step
                    && file.role != ollama_secure::render::Role::State
                {
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
            for credential in &prepared.credentials {
                if let Some(generated) = &credential.generated {
                    assert!(!out.contains(generated.expose()), "a generated password reached a rendered file");
                }
            }
            insta::assert_snapshot!("render", out);
        });
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
    ] {
        facts.files.insert(dir.into(), ollama_secure::facts::Existing::Other);
    }
    facts.groups.extend([("root".to_string(), 0), ("www-data".to_string(), 33), ("caddy".to_string(), 995)]);
    // Debian's nginx package enables its default site.
    facts.other_nginx_sites.push("/etc/nginx/sites-enabled/default".into());
    facts
}

#[test]
fn the_dry_run_plan_is_snapshotted_for_both_proxies() {
    settings().bind(|| {
        for name in ["nginx-http-any-several", "caddy-https-domain-one"] {
            let yaml = std::fs::read_to_string(format!("{ROOT}/tests/render-inputs/{name}.yaml")).unwrap();
            let config = load_config(&yaml, "input.yaml").unwrap();
            let prepared = setup::prepare(&config, &fresh_debian(), &mut SeededEntropy(42)).unwrap();
            let text = describe(&prepared.plan);
            assert!(text.contains("<redacted>"), "hashes are redacted in plans:\n{text}");
            for credential in &prepared.credentials {
                assert!(!text.contains(&credential.hash), "the hash of {} is shown in the plan", credential.username);
            }
            insta::assert_snapshot!(format!("plan-{name}"), text);
        }
    });
}
