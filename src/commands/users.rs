//! `users`: change the users of the installed setup's model, then render,
//! plan and apply it like `init` does.

use crate::access::Role;
use crate::cli::{PasswordArgs, SetupArgs, UsersCommand};
use crate::credentials::{self, OsEntropy};
use crate::error::{Error, Problem, Result};
use crate::fields::{self, Username};
use crate::secret::Secret;
use crate::setup::Setup;
use crate::system::{Credentials, System};

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
        crate::errln!(
            "warning: the password has {} characters; use at least {}",
            secret.len(),
            crate::config::SHORT_PASSWORD
        );
    }
    Ok(secret)
}

pub fn run(command: UsersCommand, system: &dyn System) -> Result<()> {
    match command {
        UsersCommand::List { json, setup } => list(system, &setup, json),
        UsersCommand::Add { name, password, role, force, dry_run, setup } => {
            change(system, &setup, &name, Op::Add { force, password, role }, dry_run)
        }
        UsersCommand::Rotate { name, password, dry_run, setup } => {
            change(system, &setup, &name, Op::Rotate { password }, dry_run)
        }
        UsersCommand::Remove { name, dry_run, setup } => change(system, &setup, &name, Op::Remove, dry_run),
        UsersCommand::Role { name, role, dry_run, setup } => change(system, &setup, &name, Op::Role(role), dry_run),
    }
}

fn list(system: &dyn System, setup: &SetupArgs, json: bool) -> Result<()> {
    let setup = super::change::setup_to_list(system, setup, "this list is the users file as that run left it")?;
    let users: Vec<(&Username, Role)> =
        setup.users.entries().map(|e| (&e.username, setup.access.role_of_user(&e.username))).collect();
    if json {
        let list: Vec<_> =
            users.iter().map(|(name, role)| serde_json::json!({"name": name.as_str(), "role": role})).collect();
        crate::outln!("{}", serde_json::Value::Array(list));
    } else {
        users.iter().for_each(|(name, _)| crate::outln!("{name}"));
    }
    Ok(())
}

enum Op {
    Add { force: bool, password: PasswordArgs, role: Role },
    Rotate { password: PasswordArgs },
    Remove,
    Role(Role),
}

/// Applies `op` to the setup; returns the new password, and whether it
/// was generated.
fn edit(setup: &mut Setup, name: &Username, op: &Op) -> Result<Option<(Secret, bool)>> {
    let (users, settings) = (&mut setup.users, &setup.settings);
    let exists = users.get(name).is_some();
    match op {
        Op::Add { force: false, .. } if exists => Err(Error::input(format!(
            "{name} already exists: `users rotate {name}` gives a new password (or add --force)"
        ))),
        Op::Rotate { .. } | Op::Remove | Op::Role(_) if !exists => {
            Err(Error::input(format!("there is no user {name} (see `ollama-secure users list`)")))
        }
        Op::Remove if users.len() == 1 => Err(Error::input(format!(
            "refusing to remove {name}, the last user: {}. To take the password protection away entirely, use `ollama-secure uninstall`",
            settings.proxy.module().keeps_last_user_because()
        ))),
        Op::Remove => {
            users.remove(name);
            setup.access.roles.remove(name);
            Ok(None)
        }
        Op::Role(role) => {
            setup.access.roles.insert(name.clone(), *role);
            Ok(None)
        }
        Op::Add { password, .. } | Op::Rotate { password } => {
            let (secret, generated) = new_password(password)?;
            let cost = if generated { settings.cost.for_generated() } else { settings.cost.for_chosen() };
            users.set(name, &credentials::hash_password(&secret, cost, &mut OsEntropy)?);
            if let Op::Add { role, .. } = op {
                setup.access.roles.insert(name.clone(), *role);
            }
            Ok(Some((secret, generated)))
        }
    }
}

fn change(system: &dyn System, setup_args: &SetupArgs, name: &str, op: Op, dry_run: bool) -> Result<()> {
    let name = Username::parse(name)
        .map_err(|message| Error::Input(vec![Problem { field: Some("username".into()), ..Problem::new(message) }]))?;
    let mut new_secret = None;
    let changed = super::change::run(system, setup_args, dry_run, "users", |setup| {
        let existed = setup.users.get(&name).is_some();
        new_secret = edit(setup, &name, &op)?;
        let verb = match &op {
            Op::Add { .. } if !existed => "added",
            Op::Add { .. } | Op::Rotate { .. } => "gave a new password to",
            Op::Remove => "removed",
            Op::Role(role) => return Ok(edited(format!("{name} has the {role} role now."), None)),
        };
        let generated = new_secret.as_ref().filter(|(_, generated)| *generated).map(|(secret, _)| {
            format!("Generated password for {name} (shown once; store it now): {}", secret.expose())
        });
        Ok(edited(format!("{verb} {name}."), generated.map(|lines| (name.to_string(), lines))))
    })?;
    match (changed, &new_secret) {
        (Some((setup, true)), Some((secret, _))) => super::change::prove(
            system,
            &setup,
            name.as_str(),
            Credentials::Basic(name.to_string(), secret.clone()),
            |line| crate::outln!("{line}"),
        ),
        _ => Ok(()),
    }
}

fn edited(done: String, generated: Option<(String, String)>) -> super::change::Edited {
    let dry_run_note = generated
        .as_ref()
        .map(|(who, _)| format!("A password will be generated for {who} (shown once, when applied)."));
    super::change::Edited { done, generated, dry_run_note }
}
