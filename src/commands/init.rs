use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::answers::Answers;
use crate::apply::{self, ServiceHooks};
use crate::check;
use crate::cli::InitArgs;
use crate::config::{Config, PasswordSource, ProcessSecrets};
use crate::credentials::Credential;
use crate::credentials::OsEntropy;
use crate::error::{Error, Result};
use crate::facts;
use crate::paths::Os;
use crate::plan::{self, describe, service_commands};
use crate::runner::ProcessRunner;
use crate::setup;
use crate::wizard;

fn users_summary(answers: &Answers) -> String {
    let how = |u: &crate::answers::UserAnswer| {
        if u.generate == Some(true) {
            "generated password"
        } else if u.password.is_some() {
            "typed password"
        } else if u.password_hash.is_some() {
            "given hash"
        } else {
            "password from the environment or a file"
        }
    };
    answers.users.iter().map(|u| format!("{} ({})", u.username, how(u))).collect::<Vec<_>>().join(", ")
}

fn headline(config: &Config) -> String {
    format!(
        "ollama-secure {}: {} at {} in front of Ollama at {}",
        env!("CARGO_PKG_VERSION"),
        config.proxy,
        config.public_url(),
        config.upstream.url()
    )
}

/// Writes `--save-answers` (mode 0600, atomically, keeping a previous
/// file as a backup).
fn save_answers(path: &Path, answers: &Answers) -> Result<()> {
    let text = format!(
        "# Saved by ollama-secure {}: `ollama-secure init --answers {}` repeats this setup.\n# Passwords appear only as bcrypt hashes.\n{}",
        env!("CARGO_PKG_VERSION"),
        path.display(),
        answers.to_yaml()
    );
    if path.exists() {
        let backup = crate::plan::backup_path(path, &facts::stamp(std::time::SystemTime::now()));
        std::fs::copy(path, &backup)
            .map_err(|e| Error::failed(format!("cannot keep {} as {}: {e}", path.display(), backup.display())))?;
        println!("The previous {} is kept as {}.", path.display(), backup.display());
    }
    let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    apply::write_atomic(path, text.as_bytes(), 0o600, uid, gid)?;
    println!(
        "Saved the answers to {} (run `ollama-secure init --answers {}` to repeat this setup).",
        path.display(),
        path.display()
    );
    Ok(())
}

pub fn run(args: InitArgs) -> Result<()> {
    let (answers, source) = match args.answers.as_deref() {
        Some(path) => (Answers::load(path)?, path.display().to_string()),
        None if wizard::interactive() => {
            let defaults = match args.defaults.as_deref() {
                Some(path) => {
                    let defaults = Answers::load(path)?;
                    crate::config::check_wizard_defaults(&defaults, &path.display().to_string(), Os::current())?;
                    defaults
                }
                None => Answers::default(),
            };
            (wizard::ask(&defaults)?, "wizard".to_string())
        }
        None => {
            return Err(Error::input(
                "no --answers FILE, and no terminal to ask on: pass --answers FILE (see examples/nginx.yaml), or run init in a terminal for the wizard",
            ));
        }
    };
    let config = Config::from_answers(&answers, &source, Os::current(), &ProcessSecrets)?;
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
        if let Some(path) = &args.save_answers {
            save_answers(path, &setup::answers_to_save(&answers, &prepared.credentials, false))?;
        }
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
    if !prepared.plan.is_empty() && wizard::interactive() && !args.yes {
        println!("Users: {}", users_summary(&answers));
        println!("Steps (see them in full with --dry-run):\n{}", plan::summary(&prepared.plan));
        if !wizard::confirm("Apply these changes?")? {
            return Err(Error::input("not confirmed; nothing was changed"));
        }
    }
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
    if let Some(path) = &args.save_answers {
        save_answers(path, &setup::answers_to_save(&answers, &prepared.credentials, true))?;
    }
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
        auth_socket: (config.proxy == crate::config::Proxy::Nginx).then(|| config.paths.auth_socket.clone()),
    })
}
