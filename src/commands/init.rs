use std::io;

use crate::apply::{self, ServiceHooks};
use crate::cli::InitArgs;
use crate::config::{Config, Proxy};
use crate::credentials::OsEntropy;
use crate::error::{Error, Result};
use crate::facts;
use crate::plan::{describe, service_commands};
use crate::runner::ProcessRunner;
use crate::setup;

fn headline(config: &Config) -> String {
    format!(
        "ollama-secure {}: {} at {} in front of Ollama at {}",
        env!("CARGO_PKG_VERSION"),
        config.proxy,
        config.public_url(),
        config.upstream.url()
    )
}

pub fn run(args: InitArgs) -> Result<()> {
    let Some(answers_path) = args.answers.as_deref() else {
        return Err(Error::input("pass --answers FILE (see examples/nginx.yaml)"));
    };
    let config = super::load_config(answers_path)?;
    super::print_warnings(&config);
    let facts = facts::probe(&config);
    let prepared = setup::prepare(&config, &facts, &mut OsEntropy)?;
    println!("{}\n", headline(&config));
    if !prepared.kept_users.is_empty() {
        println!(
            "Keeping {} installed user(s) that the answers file does not list: {} (remove with `ollama-secure users remove NAME`)\n",
            prepared.kept_users.len(),
            prepared.kept_users.join(", ")
        );
    }

    if args.dry_run {
        print!("{}", describe(&prepared.plan));
        let to_generate: Vec<_> =
            prepared.credentials.iter().filter(|c| c.generated.is_some()).map(|c| c.username.as_str()).collect();
        if !to_generate.is_empty() {
            println!("\nPasswords will be generated for: {} (shown once, when applied).", to_generate.join(", "));
        }
        if !facts.is_root {
            println!("\nApplying needs root (sudo).");
        }
        println!("\nDry run: nothing was changed.");
        return Ok(());
    }

    if !facts.is_root {
        return Err(Error::input(format!(
            "init needs root to apply: it writes under /etc and reloads {}; run it with sudo, or add --dry-run to only see the plan",
            config.proxy
        )));
    }
    for finding in &prepared.plan.findings {
        println!("  - {finding}");
    }
    println!();
    if prepared.plan.is_empty() {
        println!("Nothing to change: the system already matches the answers.");
    } else {
        let commands = service_commands(config.proxy, &config.paths, facts.systemd);
        let hooks = ServiceHooks {
            nginx_pid: (config.proxy == Proxy::Nginx).then(|| config.paths.nginx_pid.clone()),
            stop: Some(commands.stop),
        };
        println!("Applying:");
        let report = apply::apply(&prepared.plan, &hooks, &mut ProcessRunner, &mut io::stdout())?;
        println!("\nDone: {} file change(s).", report.changed);
        if !report.backups.is_empty() {
            println!("Previous versions were kept:");
            for backup in &report.backups {
                println!("  {}", backup.display());
            }
        }
    }
    super::print_generated(&prepared.credentials);
    Ok(())
}
