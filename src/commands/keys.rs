//! `keys`: API keys of the installed setup (add, rotate, revoke, list),
//! changed in its model and applied like `users`; and `keys new`, which
//! only prints a fresh key.

use crate::access::{ApiKey, KeyRecord, Role};
use crate::cli::{KeysCommand, SetupArgs};
use crate::credentials::{self, OsEntropy};
use crate::error::{Error, Problem, Result};
use crate::fields::Username;
use crate::setup::Setup;
use crate::system::{Credentials, System};

pub fn run(command: KeysCommand, system: &dyn System) -> Result<()> {
    match command {
        KeysCommand::New { json } => {
            let key = ApiKey::generate(&mut OsEntropy);
            if json {
                crate::outln!("{}", serde_json::json!({ "key": key.text().expose() }));
            } else {
                crate::outln!("{}", key.text().expose());
            }
            Ok(())
        }
        KeysCommand::List { json, setup } => list(system, &setup, json),
        KeysCommand::Add { name, role, json, dry_run, setup } => {
            if json {
                // Before anything is printed (an interrupted run's undoing).
                crate::verbosity::set_json_output();
            }
            change(system, &setup, &name, Op::Add(role), json, dry_run)
        }
        KeysCommand::Rotate { name, json, dry_run, setup } => {
            if json {
                crate::verbosity::set_json_output();
            }
            change(system, &setup, &name, Op::Rotate, json, dry_run)
        }
        KeysCommand::Revoke { name, dry_run, setup } => change(system, &setup, &name, Op::Revoke, false, dry_run),
    }
}

fn list(system: &dyn System, setup: &SetupArgs, json: bool) -> Result<()> {
    let setup = super::change::setup_to_list(system, setup, "this list is the keys as that run left them")?;
    if json {
        crate::outln!("{}", serde_json::to_string(&setup.access.keys).expect("records serialize"));
        return Ok(());
    }
    if setup.access.keys.is_empty() {
        crate::outln!("No API keys (add one with `ollama-secure keys add NAME`).");
    }
    for key in &setup.access.keys {
        crate::outln!("{}\t{}\t{}", key.name, key.role, key.created);
    }
    Ok(())
}

enum Op {
    Add(Role),
    Rotate,
    Revoke,
}

/// Applies `op`; returns the new key, if one was made.
fn edit(setup: &mut Setup, name: &Username, op: &Op, now: &str) -> Result<Option<ApiKey>> {
    let recorded = setup.access.key(name).cloned();
    let role = match (op, &recorded) {
        (Op::Add(_), Some(_)) => {
            return Err(Error::input(format!(
                "there is a key called {name} already: `keys rotate {name}` gives it a new secret"
            )));
        }
        (Op::Rotate | Op::Revoke, None) => {
            return Err(Error::input(format!("there is no key {name} (see `ollama-secure keys list`)")));
        }
        (Op::Revoke, Some(record)) => {
            setup.keys.remove(&record.id);
            setup.access.remove_key(name);
            return Ok(None);
        }
        (Op::Add(role), None) => *role,
        (Op::Rotate, Some(record)) => {
            setup.keys.remove(&record.id);
            record.role
        }
    };
    let key = ApiKey::generate(&mut OsEntropy);
    // A key carries 256 bits: the cost only has to keep checks cheap.
    let hash = credentials::hash_password(&key.secret, setup.settings.cost.for_generated(), &mut OsEntropy)?;
    setup.keys.set(&key.id, &hash);
    setup.access.set_key(KeyRecord { name: name.clone(), id: key.id.clone(), role, created: now.to_string() });
    Ok(Some(key))
}

/// How the key is shown, once: as text (with how to use it) or as JSON.
fn shown(name: &Username, role: Role, key: &ApiKey, json: bool, url: &str) -> String {
    let text = key.text();
    if json {
        return serde_json::json!({ "name": name.as_str(), "role": role, "key": text.expose() }).to_string();
    }
    format!(
        "API key {name} ({role} role), shown once; store it now:\n  {}\n{}",
        text.expose(),
        super::usage_lines(url, &format!("key {name}"))
    )
}

fn change(system: &dyn System, setup_args: &SetupArgs, name: &str, op: Op, json: bool, dry_run: bool) -> Result<()> {
    let name = Username::parse(name)
        .map_err(|message| Error::Input(vec![Problem { field: Some("name".into()), ..Problem::new(message) }]))?;
    let now = humantime::format_rfc3339_seconds(system.now()).to_string();
    let mut made = None;
    let changed = super::change::run(system, setup_args, dry_run, "keys", |setup| {
        made = edit(setup, &name, &op, &now)?;
        let done = match op {
            Op::Add(_) => format!("added the key {name}."),
            Op::Rotate => format!("gave the key {name} a new secret; the old one no longer works."),
            Op::Revoke => format!("revoked the key {name}; it no longer works."),
        };
        let url = setup.settings.site.public_url();
        let role = setup.access.key(&name).map(|k| k.role).unwrap_or_default();
        let generated = made.as_ref().map(|key| (name.to_string(), shown(&name, role, key, json, &url)));
        let dry_run_note = made.as_ref().map(|_| format!("A key will be made for {name} (shown once, when applied)."));
        Ok(super::change::Edited { done, generated, dry_run_note })
    })?;
    match (changed, &made) {
        // On stderr: with --json, stdout holds only the key.
        (Some((setup, true)), Some(key)) => {
            super::change::prove(system, &setup, &format!("the key {name}"), Credentials::Bearer(key.text()), |line| {
                crate::errln!("{line}")
            })
        }
        _ => Ok(()),
    }
}
