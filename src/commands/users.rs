use std::io;

use crate::apply::{self, ServiceHooks};
use crate::cli::{PasswordArgs, SetupArgs, UsersCommand};
use crate::config::{CostPolicy, Proxy};
use crate::credentials::{self, OsEntropy};
use crate::error::{Error, Result};
use crate::facts::{self, Existing, Facts};
use crate::fields;
use crate::lock;
use crate::plan::{self, describe};
use crate::render::{RenderedFile, Role};
use crate::runner::ProcessRunner;
use crate::secret::Secret;
use crate::userfile::{Format, UserFile};

use super::Installed;

fn installed(args: &SetupArgs) -> Result<(Installed, CostPolicy)> {
    let installed = super::find_installed(args.answers.as_deref())?;
    let fixed = match &installed.answers {
        Some((answers, source)) => match answers.bcrypt_cost {
            Some(c) => Some(fields::bcrypt_cost(c).map_err(|e| Error::input(format!("{source}: bcrypt_cost: {e}")))?),
            None => None,
        },
        None => None,
    };
    Ok((installed, CostPolicy { fixed }))
}

fn users_path(installed: &Installed) -> &std::path::Path {
    match installed.proxy {
        Proxy::Nginx => &installed.paths.htpasswd,
        Proxy::Caddy => &installed.paths.caddy_site,
    }
}

fn read_users(installed: &Installed, facts: &Facts) -> Result<(UserFile, u32, u32)> {
    let path = users_path(installed);
    let format = match installed.proxy {
        Proxy::Nginx => Format::Htpasswd,
        Proxy::Caddy => Format::CaddyBasicauth,
    };
    match facts.file(path) {
        Existing::File { content, mode, gid, .. } => {
            Ok((UserFile::parse(&String::from_utf8_lossy(content), format, &path.display().to_string())?, *mode, *gid))
        }
        _ => Err(Error::input(format!("the users file {} does not exist; run init again", path.display()))),
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
    if secret.is_empty() {
        return Err(Error::input("the password is empty"));
    }
    if secret.len() < crate::config::SHORT_PASSWORD {
        eprintln!(
            "warning: the password has {} characters; use at least {}",
            secret.len(),
            crate::config::SHORT_PASSWORD
        );
    }
    Ok(secret)
}

pub fn run(command: UsersCommand) -> Result<()> {
    match command {
        UsersCommand::List { setup } => list(&setup),
        UsersCommand::Add { name, password, force, dry_run, setup } => {
            change(&setup, &name, Op::Add { force, password }, dry_run)
        }
        UsersCommand::Rotate { name, password, dry_run, setup } => {
            change(&setup, &name, Op::Rotate { password }, dry_run)
        }
        UsersCommand::Remove { name, dry_run, setup } => change(&setup, &name, Op::Remove, dry_run),
    }
}

fn list(setup: &SetupArgs) -> Result<()> {
    let (installed, _) = installed(setup)?;
    let facts = facts::probe_installed(installed.proxy, &installed.paths, &installed.state);
    let (file, _, _) = read_users(&installed, &facts)?;
    for entry in file.entries() {
        println!("{}", entry.username);
    }
    Ok(())
}

enum Op {
    Add { force: bool, password: PasswordArgs },
    Rotate { password: PasswordArgs },
    Remove,
}

fn change(setup: &SetupArgs, name: &str, op: Op, dry_run: bool) -> Result<()> {
    let name = fields::username(name).map_err(|e| Error::input(format!("username: {e}")))?;
    let (installed, cost) = installed(setup)?;
    // Held from reading the file to the reload: a concurrent run waits.
    let _lock = if dry_run { None } else { Some(lock::acquire(&installed.paths.lock)?) };
    let facts = facts::probe_installed(installed.proxy, &installed.paths, &installed.state);
    let (mut file, mode, gid) = read_users(&installed, &facts)?;
    let exists = file.get(&name).is_some();
    let mut new_secret = None;
    match &op {
        Op::Add { force: false, .. } if exists => {
            return Err(Error::input(format!(
                "{name} already exists: `users rotate {name}` gives a new password (or add --force)"
            )));
        }
        Op::Rotate { .. } | Op::Remove if !exists => {
            return Err(Error::input(format!("there is no user {name} (see `ollama-secure users list`)")));
        }
        Op::Remove if file.entries().len() == 1 => {
            return Err(Error::input(format!(
                "refusing to remove {name}, the last user: {}. To take the password protection away entirely, use `ollama-secure uninstall`",
                match installed.proxy {
                    Proxy::Nginx => "nginx would then refuse everyone (an empty user file locks the proxy)",
                    Proxy::Caddy => "Caddy would refuse to load a basicauth block without users",
                }
            )));
        }
        Op::Remove => {
            file.remove(&name);
        }
        Op::Add { password, .. } | Op::Rotate { password } => {
            let (secret, generated) = new_password(password)?;
            let cost = if generated { cost.for_generated() } else { cost.for_chosen() };
            file.set(&name, &credentials::hash_password(&secret, cost, &mut OsEntropy)?);
            new_secret = Some((secret, generated));
        }
    }
    let group =
        nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)).ok().flatten().map(|g| g.name).ok_or_else(
            || Error::failed(format!("the group (gid {gid}) of {} has no name", users_path(&installed).display())),
        )?;
    let rendered = RenderedFile {
        path: users_path(&installed).to_path_buf(),
        role: if installed.proxy == Proxy::Nginx { Role::Passwords } else { Role::Site },
        mode,
        group,
        secret: true,
        content: file.text(),
    };
    let mut files = vec![rendered];
    // nginx caches successful logins keyed on the users' fingerprint: the
    // site must carry the new one, or a rotated or removed password would
    // keep working until its cache entry expires.
    if installed.proxy == Proxy::Nginx
        && let Existing::File { content, mode, .. } = facts.file(&installed.paths.nginx_site)
    {
        let site = String::from_utf8_lossy(content);
        let fingerprint =
            crate::render::users_fingerprint(file.entries().iter().map(|e| (e.username.as_str(), e.hash.as_str())));
        match crate::render::with_users_fingerprint(&site, &fingerprint) {
            Some(updated) => files.push(RenderedFile {
                path: installed.paths.nginx_site.clone(),
                role: Role::Site,
                mode: *mode,
                group: "root".into(),
                secret: false,
                content: updated,
            }),
            None => eprintln!(
                "warning: {} has no cache key to update (run `init` again): old logins may keep working for up to 2 minutes",
                installed.paths.nginx_site.display()
            ),
        }
    }
    let plan = plan::users_change(installed.proxy, &installed.paths, &facts, files)?;
    if dry_run {
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
    // A users change never starts the proxy, so there is nothing to stop on rollback.
    let hooks = ServiceHooks::new(installed.proxy, &installed.paths, None);
    apply::apply(&plan, &hooks, &mut ProcessRunner, &mut io::stdout())?;
    let verb = match op {
        Op::Add { .. } if !exists => "added",
        Op::Add { .. } | Op::Rotate { .. } => "gave a new password to",
        Op::Remove => "removed",
    };
    println!("\n{verb} {name}.");
    if let Some((secret, true)) = &new_secret {
        println!("Generated password for {name} (shown once; store it now): {}", secret.expose());
    }
    if let (Some((secret, _)), Some(url), true) = (&new_secret, &installed.state.url, facts.proxy_running) {
        match crate::check::status_for(url, installed.state.connect, &name, secret) {
            Ok(200) => println!("Checked: {name} gets 200 at {url}."),
            Ok(status) => {
                return Err(Error::check_failed(format!("the change was applied, but {name} gets {status} at {url}")));
            }
            Err(why) => {
                return Err(Error::check_failed(format!(
                    "the change was applied, but {url} could not be checked: {why}"
                )));
            }
        }
    }
    Ok(())
}
