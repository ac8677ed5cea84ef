//! `users`: change the users of the installed setup's model, then render,
//! plan and apply it like `init` does.

use std::io;

use crate::apply;
use crate::cli::{PasswordArgs, SetupArgs, UsersCommand};
use crate::credentials::{self, OsEntropy};
use crate::error::{Error, Problem, Result};
use crate::facts::{self, Probe};
use crate::fields::{self, Username};
use crate::paths::Paths;
use crate::plan::{self, Goal, describe};
use crate::proxy::ProxyKind;
use crate::secret::Secret;
use crate::setup::{Settings, Setup};
use crate::system::{Existing, System};
use crate::userfile::Users;

/// The recorded settings, with `bcrypt_cost` from `--answers` when it sets one.
fn settings(installed: &super::Installed) -> Result<Settings> {
    let mut settings = installed.settings()?;
    if let Some((answers, source)) = &installed.answers
        && let Some(cost) = answers.bcrypt_cost
    {
        let cost = fields::bcrypt_cost(cost).map_err(|e| Error::Input(vec![Problem::at(source, "bcrypt_cost", e)]))?;
        settings.cost.fixed = Some(cost);
    }
    Ok(settings)
}

fn read_users(proxy: ProxyKind, paths: &Paths, facts: &facts::Facts) -> Result<Users> {
    let proxy = proxy.module();
    let path = proxy.users_file(paths);
    let missing = || Error::input(format!("the users file {} does not exist; run init again", path.display()));
    match facts.file(path) {
        Existing::File { content, .. } => {
            Users::parse(&String::from_utf8_lossy(content), proxy.users_format(), &path.display().to_string())?
                .ok_or_else(missing)
        }
        _ => Err(missing()),
    }
}

/// The new password: from the environment, a file, or generated (the default).
fn new_password(args: &PasswordArgs) -> Result<(Secret, bool)> {
    match super::password_from(args.password_env.as_deref(), args.password_file.as_deref())? {
        Some(secret) => non_empty(secret).map(|s| (s, false)),
        None => Ok((credentials::generate_password(&mut OsEntropy), true)),
    }
}

fn non_empty(secret: Secret) -> Result<Secret> {
    fields::password(secret.expose()).map_err(Error::input)?;
    if secret.len() < crate::config::SHORT_PASSWORD {
        eprintln!(
            "warning: the password has {} characters; use at least {}",
            secret.len(),
            crate::config::SHORT_PASSWORD
        );
    }
    Ok(secret)
}

pub fn run(command: UsersCommand, system: &dyn System) -> Result<()> {
    match command {
        UsersCommand::List { setup } => list(system, &setup),
        UsersCommand::Add { name, password, force, dry_run, setup } => {
            change(system, &setup, &name, Op::Add { force, password }, dry_run)
        }
        UsersCommand::Rotate { name, password, dry_run, setup } => {
            change(system, &setup, &name, Op::Rotate { password }, dry_run)
        }
        UsersCommand::Remove { name, dry_run, setup } => change(system, &setup, &name, Op::Remove, dry_run),
    }
}

fn list(system: &dyn System, setup: &SetupArgs) -> Result<()> {
    let installed = super::find_installed(system, setup.answers.as_deref())?;
    let (proxy, paths) = (installed.state.proxy, &installed.paths);
    let facts = facts::probe(system, Probe::for_installed(proxy, paths, None));
    // stdout stays the plain list; the word about an interrupted run goes to stderr.
    let now = "this list is the users file as that run left it";
    if let Some(warning) = super::journal_warning_at(system, &paths.journal, now) {
        eprintln!("{warning}");
    }
    for entry in read_users(proxy, paths, &facts)?.entries() {
        println!("{}", entry.username);
    }
    Ok(())
}

enum Op {
    Add { force: bool, password: PasswordArgs },
    Rotate { password: PasswordArgs },
    Remove,
}

/// Applies `op` to the users; returns the new password, and whether it
/// was generated.
fn edit(users: &mut Users, name: &Username, op: &Op, settings: &Settings) -> Result<Option<(Secret, bool)>> {
    let exists = users.get(name).is_some();
    match op {
        Op::Add { force: false, .. } if exists => Err(Error::input(format!(
            "{name} already exists: `users rotate {name}` gives a new password (or add --force)"
        ))),
        Op::Rotate { .. } | Op::Remove if !exists => {
            Err(Error::input(format!("there is no user {name} (see `ollama-secure users list`)")))
        }
        Op::Remove if users.len() == 1 => Err(Error::input(format!(
            "refusing to remove {name}, the last user: {}. To take the password protection away entirely, use `ollama-secure uninstall`",
            settings.proxy.module().keeps_last_user_because()
        ))),
        Op::Remove => {
            users.remove(name);
            Ok(None)
        }
        Op::Add { password, .. } | Op::Rotate { password } => {
            let (secret, generated) = new_password(password)?;
            let cost = if generated { settings.cost.for_generated() } else { settings.cost.for_chosen() };
            users.set(name, &credentials::hash_password(&secret, cost, &mut OsEntropy)?);
            Ok(Some((secret, generated)))
        }
    }
}

fn change(system: &dyn System, setup_args: &SetupArgs, name: &str, op: Op, dry_run: bool) -> Result<()> {
    let name = Username::parse(name)
        .map_err(|message| Error::Input(vec![Problem { source: None, field: Some("username".into()), message }]))?;
    let (paths, answers) = super::locate(setup_args.answers.as_deref())?;
    // Held from reading the file to the reload: a concurrent run waits.
    let _lock = if dry_run { None } else { Some(super::begin_changes(system, &paths)?) };
    // Where the lock and the recovery looked: where a later one looks.
    let journal_path = paths.journal.clone();
    let installed = super::installed_at(system, paths, answers)?;
    let settings = settings(&installed)?;
    let facts = facts::probe(system, Probe::for_installed(settings.proxy, &settings.paths, Some(&settings)));
    let mut users = read_users(settings.proxy, &settings.paths, &facts)?;
    let existed = users.get(&name).is_some();
    let new_secret = edit(&mut users, &name, &op, &settings)?;
    let setup = Setup { settings, users };
    let plan = plan::for_setup(&setup, &facts, Goal::Users)?;
    if dry_run {
        if let Some(warning) = super::journal_warning_at(system, &journal_path, super::PLAN_AS_IT_IS) {
            println!("{warning}\n");
        }
        print!("{}", describe(&plan));
        if new_secret.as_ref().is_some_and(|(_, generated)| *generated) {
            println!("\nA password will be generated for {name} (shown once, when applied).");
        }
        println!("\nDry run: nothing was changed.");
        return Ok(());
    }
    if !facts.is_root {
        return Err(Error::input("changing users needs root; run it with sudo, or add --dry-run"));
    }
    if let Some(refusal) = plan.refusal() {
        return Err(refusal);
    }
    let generating = matches!(&new_secret, Some((_, true))).then(|| name.to_string());
    let journal = crate::journal::Journal::at(system, &journal_path, "users").generating(generating);
    {
        let _catching = crate::interrupt::catch();
        apply::apply(&plan, system, &journal, &mut io::stdout())?;
    }
    let verb = match op {
        Op::Add { .. } if !existed => "added",
        Op::Add { .. } | Op::Rotate { .. } => "gave a new password to",
        Op::Remove => "removed",
    };
    println!("\n{verb} {name}.");
    if let Some((secret, true)) = &new_secret {
        println!("Generated password for {name} (shown once; store it now): {}", secret.expose());
    }
    journal.commit()?;
    match (&new_secret, facts.proxy_running) {
        (Some((secret, _)), true) => prove_login(system, &setup, &name, secret),
        _ => Ok(()),
    }
}

/// The changed password gets 200 at the site, asked on this machine.
fn prove_login(system: &dyn System, setup: &Setup, name: &Username, secret: &Secret) -> Result<()> {
    let site = &setup.settings.site;
    let url = site.public_url();
    let request = facts::site_request(&url, site.local_address())
        .ok_or_else(|| Error::failed(format!("{url} is not a URL")))?
        .basic_auth(name, secret);
    match system.http(&request) {
        Ok(reply) if reply.status == 200 => {
            println!("Checked: {name} gets 200 at {url}.");
            Ok(())
        }
        Ok(reply) => {
            Err(Error::check_failed(format!("the change was applied, but {name} gets {} at {url}", reply.status)))
        }
        Err(why) => Err(Error::check_failed(format!("the change was applied, but {url} could not be checked: {why}"))),
    }
}
