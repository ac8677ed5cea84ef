//! What `users` and `keys` share: take the installed setup's model, let the
//! command change it, then plan and apply it as `init` does (lock, journal,
//! dry run, root check, refusal), and say what was done.

use crate::apply;
use crate::cli::SetupArgs;
use crate::error::{Error, Problem, Result};
use crate::facts::{self, Facts, Probe};
use crate::fields;
use crate::plan::{self, Goal, describe};
use crate::setup::{Installed, Settings, Setup};
use crate::system::{Credentials, System};

/// What a command made of the model.
pub struct Edited {
    /// Said after it is applied ("added alice.").
    pub done: String,
    /// A generated secret, shown once after it is applied: (who, lines to print).
    pub generated: Option<(String, String)>,
    /// What a dry run says instead of the secret.
    pub dry_run_note: Option<String>,
}

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

/// The installed setup as the model: its recorded settings, the users and
/// keys files, the recorded roles and keys.
pub fn installed_setup(system: &dyn System, installed: &super::Installed) -> Result<(Setup, Facts)> {
    let settings = settings(installed)?;
    let facts = facts::probe(system, Probe::for_installed(settings.proxy, &settings.paths, Some(&settings)));
    let found = Installed::from_facts(settings.proxy, &settings.paths, &facts)?;
    let users_file = settings.proxy.module().users_file(&settings.paths);
    let users = found.users.ok_or_else(|| {
        Error::input(format!("the users file {} does not exist; run init again", users_file.display()))
    })?;
    let keys = found.keys.unwrap_or_else(|| crate::userfile::Users::new(settings.proxy.module().keys_format()));
    Ok((Setup { settings, users, keys, access: found.access }, facts))
}

/// The installed setup, for a list. stdout stays the plain list: the word
/// about an interrupted run (what `now` is then about) goes to stderr.
pub fn setup_to_list(system: &dyn System, setup_args: &SetupArgs, now: &str) -> Result<Setup> {
    let installed = super::find_installed(system, setup_args.answers.as_deref())?;
    if let Some(warning) = super::journal_warning_at(system, &installed.paths.journal, now) {
        crate::errln!("{warning}");
    }
    installed_setup(system, &installed).map(|(setup, _)| setup)
}

/// Changes the installed setup with `edit` and applies it (or, with
/// `dry_run`, prints the plan). Returns the new setup and whether the
/// proxy runs, for the command's own proof afterwards.
pub fn run(
    system: &dyn System,
    setup_args: &SetupArgs,
    dry_run: bool,
    label: &str,
    edit: impl FnOnce(&mut Setup) -> Result<Edited>,
) -> Result<Option<(Setup, bool)>> {
    let (paths, answers) = super::locate(setup_args.answers.as_deref())?;
    // Held from reading the files to the reload: a concurrent run waits.
    let _lock = if dry_run { None } else { Some(super::begin_changes(system, &paths)?) };
    // Where the lock and the recovery looked: where a later one looks.
    let journal_path = paths.journal.clone();
    let installed = super::installed_at(system, paths, answers)?;
    let (mut setup, facts) = installed_setup(system, &installed)?;
    let edited = edit(&mut setup)?;
    let plan = plan::for_setup(&setup, &facts, Goal::Users)?;
    if dry_run {
        if let Some(warning) = super::journal_warning_at(system, &journal_path, super::PLAN_AS_IT_IS) {
            crate::show!("{warning}\n");
        }
        crate::show!("{}", describe(&plan).trim_end());
        if let Some(note) = &edited.dry_run_note {
            crate::show!("\n{note}");
        }
        crate::show!("\nDry run: nothing was changed.");
        return Ok(None);
    }
    if !facts.is_root {
        return Err(Error::input(format!("changing {label} needs root; run it with sudo, or add --dry-run")));
    }
    if let Some(refusal) = plan.refusal() {
        return Err(refusal);
    }
    let generating = edited.generated.as_ref().map(|(who, _)| who.clone());
    let journal = crate::journal::Journal::at(system, &journal_path, label).generating(generating);
    {
        let _catching = crate::interrupt::catch();
        // With --json, stdout carries only the generated secret.
        apply::apply(&plan, system, &journal, &mut crate::verbosity::progress())?;
    }
    crate::say!("\n{}", edited.done);
    if let Some((_, lines)) = &edited.generated {
        crate::verbosity::print_secret(lines).map_err(|why| super::unshown_secrets(system, &journal, why))?;
    }
    // Shown before the journal ends: a run killed before this is undone by
    // the next one, so no generated hash stays whose secret nobody saw.
    journal.commit()?;
    Ok(Some((setup, facts.proxy_running)))
}

/// The changed credential gets 200 at the site, asked on this machine;
/// `say` prints the proof (stdout, or stderr where stdout is JSON).
pub fn prove(
    system: &dyn System,
    setup: &Setup,
    who: &str,
    credentials: Credentials,
    say: impl Fn(&str),
) -> Result<()> {
    // What it proved is progress (nothing with -q); a failure is an error.
    let say = |line: &str| {
        if !crate::verbosity::quiet() {
            say(line)
        }
    };
    let site = &setup.settings.site;
    let url = site.public_url();
    if !site.allows(site.local_address()) {
        say(&format!(
            "Not checked: allow_from leaves out this machine's address ({}); {who} can be checked from an allowed one.",
            site.local_address()
        ));
        return Ok(());
    }
    let request = facts::site_request(&url, site.local_address())
        .ok_or_else(|| Error::failed(format!("{url} is not a URL")))?
        .credentials(Some(credentials));
    match system.http(&request) {
        Ok(reply) if reply.status == 200 => {
            say(&format!("Checked: {who} gets 200 at {url}."));
            Ok(())
        }
        Ok(reply) => {
            Err(Error::check_failed(format!("the change was applied, but {who} gets {} at {url}", reply.status)))
        }
        Err(why) => Err(Error::check_failed(format!("the change was applied, but {url} could not be checked: {why}"))),
    }
}
