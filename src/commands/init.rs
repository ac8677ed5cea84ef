use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::apply::{self, ServiceHooks};
use crate::check;
use crate::cli::InitArgs;
use crate::config::{Config, PasswordSource};
use crate::credentials::Credential;
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
    // From reading the system to the reload: a concurrent `users` run waits.
    let _lock = if args.dry_run { None } else { Some(crate::lock::acquire(&config.paths.lock)?) };
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
        let hooks = ServiceHooks::new(config.proxy, &config.paths, Some(commands.stop));
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
    if args.no_check {
        return Ok(());
    }
    match self_check_options(&config, &prepared.credentials, args.cacert.clone()) {
        None => {
            println!(
                "\nNot checked: this run knows no user's password (only hashes). Run `ollama-secure check --url {} --username NAME`.",
                config.public_url()
            );
            Ok(())
        }
        Some(options) => {
            println!();
            let report = check::run(&options)?;
            print!("{}", report.text());
            if report.passed {
                Ok(())
            } else {
                Err(Error::check_failed("the setup was applied, but the check found problems (see above)"))
            }
        }
    }
}

/// How `init` checks the server it just set up: as a client would, but
/// connected to this machine whatever DNS says, with a password this run
/// knows (given in the answers, or generated now).
fn self_check_options(config: &Config, credentials: &[Credential], cacert: Option<PathBuf>) -> Option<check::Options> {
    let (username, password) = config.users.iter().find_map(|u| match &u.password {
        PasswordSource::Given(secret) => Some((u.username.clone(), secret.clone())),
        _ => credentials
            .iter()
            .find(|c| c.username == u.username)
            .and_then(|c| c.generated.clone())
            .map(|p| (u.username.clone(), p)),
    })?;
    let address = crate::plan::local_address(config);
    let resolve =
        config.domain.iter().map(|domain| (domain.to_string(), SocketAddr::new(address, config.port))).collect();
    Some(check::Options {
        url: reqwest::Url::parse(&config.public_url()).expect("public URLs parse"),
        username,
        password,
        cacert,
        timeout: Duration::from_secs(30),
        model: None,
        resolve,
        http_port: config.https.as_ref().map_or(80, |h| h.http_port),
        ollama_port: config.upstream.port,
        body_bytes: 5 * 1024 * 1024,
    })
}
