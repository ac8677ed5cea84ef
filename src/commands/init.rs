use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::answers::Answers;
use crate::apply;
use crate::check;
use crate::cli::InitArgs;
use crate::config::{Config, PasswordSource, ProcessSecrets};
use crate::credentials::OsEntropy;
use crate::error::{Error, Result};
use crate::facts::{self, Probe};
use crate::paths::Os;
use crate::plan::{self, Goal, Plan, describe};
use crate::secret::Secret;
use crate::setup::{self, Resolution, Setup};
use crate::system::{Ownership, System};
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
    let site = &config.settings.site;
    format!(
        "ollama-secure {}: {} at {} in front of Ollama at {}",
        env!("CARGO_PKG_VERSION"),
        config.settings.proxy,
        site.public_url(),
        site.upstream.url()
    )
}

/// Writes `--save-answers` (mode 0600, atomically, keeping a previous
/// file as a backup).
fn save_answers(system: &dyn System, path: &Path, answers: &Answers) -> Result<()> {
    let text = format!(
        "# Saved by ollama-secure {}: `ollama-secure init --answers {}` repeats this setup.\n# Passwords appear only as bcrypt hashes.\n{}",
        env!("CARGO_PKG_VERSION"),
        path.display(),
        answers.to_yaml()
    );
    let me = Ownership { mode: 0o600, uid: nix::unistd::geteuid().as_raw(), gid: nix::unistd::getegid().as_raw() };
    if let Some(previous) = crate::plan::Snapshot::of(&system.inspect(path)) {
        let backup = keep_backup(system, path, &previous)?;
        crate::say!("The previous {} is kept as {}.", path.display(), backup.display());
    }
    system.write_atomic(path, text.as_bytes(), me).map_err(|e| Error::io("cannot write", path, e))?;
    crate::say!(
        "Saved the answers to {} (run `ollama-secure init --answers {}` to repeat this setup).",
        path.display(),
        path.display()
    );
    Ok(())
}

/// Copies `previous` to a new `PATH.bak-STAMP[-N]`: never through a name
/// that exists (or a link planted there).
fn keep_backup(system: &dyn System, path: &Path, previous: &crate::plan::Snapshot) -> Result<PathBuf> {
    let stamp = facts::stamp(system.now());
    for n in 0..100 {
        let name = if n == 0 { stamp.clone() } else { format!("{stamp}-{n}") };
        let backup = crate::plan::backup_path(path, &name);
        match system.write_new(&backup, &previous.content, previous.ownership) {
            Ok(()) => return Ok(backup),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::failed(format!("cannot keep {} as {}: {e}", path.display(), backup.display())));
            }
        }
    }
    Err(Error::failed(format!("cannot keep {}: every backup name for this second is taken", path.display())))
}

/// The source of answers the wizard gave, in messages.
const WIZARD: &str = "wizard";

/// The answers: from the file, or from the wizard on a terminal.
fn answers(args: &InitArgs) -> Result<(Answers, String)> {
    match args.answers.as_deref() {
        Some(path) => Ok((Answers::load(path)?, Answers::source_name(path))),
        None if wizard::interactive() => {
            let defaults = match args.defaults.as_deref() {
                Some(path) if path == Path::new(crate::answers::STDIN) => {
                    return Err(Error::input(
                        "--defaults -: the wizard reads its answers from the terminal on standard input, so the \
                         defaults cannot come from it too; give the file's path",
                    ));
                }
                Some(path) => {
                    let defaults = Answers::load(path)?;
                    crate::config::check_wizard_defaults(&defaults, &Answers::source_name(path), Os::current())?;
                    defaults
                }
                None => Answers::default(),
            };
            Ok((wizard::ask(&defaults)?, WIZARD.to_string()))
        }
        None => Err(Error::input(
            "no --answers FILE, and no terminal to ask on: pass --answers FILE (see examples/nginx.yaml), or run init in a terminal for the wizard",
        )),
    }
}

fn print_dry_run(plan: &Plan, resolution: &Resolution, is_root: bool) {
    crate::show!("{}", describe(plan).trim_end());
    if !resolution.generated.is_empty() {
        let names: Vec<&str> = resolution.generated.iter().map(|(name, _)| name.as_str()).collect();
        crate::show!("\nPasswords will be generated for: {} (shown once, when applied).", names.join(", "));
    }
    if !resolution.generated_keys.is_empty() {
        let names: Vec<&str> = resolution.generated_keys.iter().map(|(name, _)| name.as_str()).collect();
        crate::show!("\nAPI keys will be generated for: {} (shown once, when applied).", names.join(", "));
    }
    if !is_root {
        crate::show!("\nApplying needs root (sudo).");
    }
    crate::show!("\nDry run: nothing was changed.");
}

/// Whether answers the wizard just took would be lost by a refusal: not
/// when they are being saved anyway, and not after undoing an interrupted
/// run (that was a change; the question would then not be the first).
fn offers_to_save(args: &InitArgs, source: &str, recovered: bool) -> bool {
    source == WIZARD && args.save_answers.is_none() && !recovered && wizard::interactive()
}

/// Applying is refused after the wizard's questions: the reasons, then an
/// offer to keep the answers (typed passwords as their hashes), so that
/// no answer is lost. The error returned only points back at the reasons.
/// (On standard error, with the questions: the reasons must be seen even
/// with standard output sent elsewhere.)
fn refused_after_wizard(system: &dyn System, answers: &Answers, resolution: &Resolution, reasons: &[String]) -> Error {
    crate::errln!("Applying would be refused now:");
    for reason in reasons {
        crate::errln!("  - {reason}");
    }
    let _prompting = crate::interrupt::prompting();
    let refused = "cannot apply; nothing was changed (the reasons are above)";
    match wizard::ask_to_save() {
        Ok(Some(path)) => match save_answers(system, &path, &answers.with_hashes(resolution, false)) {
            Ok(()) => Error::input(format!("{refused}: the answers are in {}", path.display())),
            // Still the refusal, with why the answers are not kept.
            Err(e) => Error::input(format!("{refused}; the answers could not be saved: {e}")),
        },
        Ok(None) => Error::input(refused),
        Err(e) => e,
    }
}

/// Asks before changing anything, on a terminal (unless `--yes`).
fn confirm(args: &InitArgs, answers: &Answers, plan: &Plan) -> Result<()> {
    if plan.is_empty() || !wizard::interactive() || args.yes {
        return Ok(());
    }
    // With the question, on standard error.
    crate::errln!("Users: {}", users_summary(answers));
    crate::errln!("Steps (see them in full with --dry-run):\n{}", plan::summary(plan));
    if wizard::confirm("Apply these changes?")? {
        Ok(())
    } else {
        Err(Error::input("not confirmed; nothing was changed"))
    }
}

fn apply_plan(system: &dyn System, plan: &Plan, journal: &crate::journal::Journal) -> Result<()> {
    if plan.is_empty() {
        crate::say!("Nothing to change: the system already matches the answers.");
        return Ok(());
    }
    crate::say!("Applying:");
    let _catching = crate::interrupt::catch();
    let report = apply::apply(plan, system, journal, &mut crate::verbosity::progress())?;
    crate::say!("\nDone: {} file change(s).", report.changed);
    if !report.backups.is_empty() {
        crate::say!("Previous versions were kept:");
        for backup in &report.backups {
            crate::say!("  {}", backup.display());
        }
    }
    Ok(())
}

fn print_narrowed(resolution: &setup::Resolution) {
    if resolution.narrowed.is_empty() {
        return;
    }
    let names: Vec<&str> = resolution.narrowed.iter().map(|n| n.as_str()).collect();
    crate::show!(
        "warning: {} could manage models before this version; now the user role (inference and reading):          give `role: admin` in the answers (or `ollama-secure users role NAME admin`) to whoever must pull, create          or delete models\n",
        names.join(", ")
    );
}

fn print_kept(resolution: &setup::Resolution) {
    if resolution.kept.is_empty() {
        return;
    }
    let names: Vec<&str> = resolution.kept.iter().map(|n| n.as_str()).collect();
    crate::say!(
        "Keeping {} installed user(s) that the answers file does not list: {} (remove with `ollama-secure users remove NAME`)\n",
        names.len(),
        names.join(", ")
    );
}

/// `--json`: what the run changed (or would), for scripts such as an
/// Ansible module, which reports `changed` from it.
/// `recovered`: the run began by undoing an interrupted one, a change too.
fn json_summary(
    plan: &Plan,
    dry_run: bool,
    recovered: bool,
    resolution: &Resolution,
    secrets: bool,
    check: Option<&check::Report>,
) -> serde_json::Value {
    let generated: Vec<&str> = resolution.generated.iter().map(|(name, _)| name.as_str()).collect();
    let generated_keys: Vec<&str> = resolution.generated_keys.iter().map(|(name, _)| name.as_str()).collect();
    let mut summary = serde_json::json!({
        "dry_run": dry_run,
        "changed": recovered || !plan.is_empty(),
        "touched": plan::touched(plan),
        "backups": plan.backups(),
        "blockers": plan.blockers,
        "generated_passwords_for": generated,
        "generated_keys_for": generated_keys,
        "check": check,
    });
    if secrets && !dry_run {
        let passwords: serde_json::Map<String, serde_json::Value> =
            resolution.generated.iter().map(|(name, p)| (name.to_string(), p.expose().into())).collect();
        let keys: serde_json::Map<String, serde_json::Value> =
            resolution.generated_keys.iter().map(|(name, k)| (name.to_string(), k.text().expose().into())).collect();
        summary["passwords"] = passwords.into();
        summary["keys"] = keys.into();
    }
    summary
}

pub fn run(args: InitArgs, system: &dyn System) -> Result<()> {
    if args.json {
        crate::verbosity::set_json_output();
    }
    // Read now: a bad --cacert found by the check at the end would come
    // after everything was applied.
    let cacert_pem = args.cacert.as_deref().map(super::check::read_cacert).transpose()?;
    // At the questions nothing has changed yet: Ctrl-C ends the run there
    // and then, with the terminal put back.
    let asking = args.answers.is_none() && wizard::interactive();
    // Said before the first question, not after the last one.
    if asking && !args.dry_run && !system.is_root() {
        return Err(Error::input(
            "init needs root to apply: run it with sudo, or add --dry-run to answer the questions and only see the plan",
        ));
    }
    let prompting = asking.then(crate::interrupt::prompting);
    let (answers, source) = answers(&args)?;
    drop(prompting);
    let config = Config::from_answers(&answers, &source, Os::current(), &ProcessSecrets)?;
    super::print_warnings(&config.warnings, source == WIZARD);
    // From reading the system to the reload: a concurrent `users` run waits.
    let paths = &config.settings.paths;
    let changing = if args.dry_run { None } else { Some(super::begin_changes(system, paths)?) };
    let facts = facts::probe(system, Probe::for_settings(&config.settings).installing_from(config.install));
    let installed = setup::Installed::from_facts(config.settings.proxy, &config.settings.paths, &facts)?;
    let now = humantime::format_rfc3339_seconds(system.now()).to_string();
    let (setup, resolution) = setup::from_config(&config, installed, &now, &mut OsEntropy)?;
    let plan = plan::for_setup(&setup, &facts, Goal::Init { install: config.install })?;
    crate::say!("{}\n", headline(&config));
    print_kept(&resolution);
    print_narrowed(&resolution);
    if args.dry_run {
        if let Some(warning) = super::journal_warning_at(system, &paths.journal, super::PLAN_AS_IT_IS) {
            crate::show!("{warning}\n");
        }
        print_dry_run(&plan, &resolution, facts.is_root);
        if let Some(path) = &args.save_answers {
            save_answers(system, path, &answers.with_hashes(&resolution, false))?;
        }
        if args.json {
            crate::outln!("{}", json_summary(&plan, true, false, &resolution, false, None));
        }
        if args.strict && !plan.blockers.is_empty() {
            return Err(Error::input("--strict: applying would be refused now, for the reasons listed above"));
        }
        return Ok(());
    }
    let recovered = changing.as_ref().is_some_and(|c| c.recovered);
    // (The wizard refuses a run without root before its first question.)
    if !facts.is_root {
        return Err(Error::input(format!(
            "init needs root to apply: it writes under /etc and reloads {}; run it with sudo, or add --dry-run to only see the plan",
            config.settings.proxy
        )));
    }
    if let Some(refusal) = plan.refusal() {
        if offers_to_save(&args, &source, recovered) {
            return Err(refused_after_wizard(system, &answers, &resolution, &plan.blockers));
        }
        return Err(refusal);
    }
    super::print_findings(&plan.findings);
    crate::say!();
    // The final question, before any change of this run: but not after it
    // undid an interrupted run (that was a change), when Ctrl-C keeps its
    // usual effect.
    let prompting = (wizard::interactive() && !recovered).then(crate::interrupt::prompting);
    confirm(&args, &answers, &plan)?;
    drop(prompting);
    let journal =
        crate::journal::Journal::at(system, &paths.journal, "init").generating(super::generating(&resolution));
    apply_plan(system, &plan, &journal)?;
    // Shown before the journal ends: a run killed before this is undone by
    // the next one, so no generated hash stays whose secret nobody saw.
    // With --json --show-secrets they are in the JSON, printed (after the
    // check it reports) before the journal ends too.
    let in_json = args.json && args.show_secrets;
    if !in_json {
        super::print_generated(&resolution, &setup.access)
            .map_err(|why| super::unshown_secrets(system, &journal, why))?;
    }
    if !plan.is_empty() && !crate::verbosity::quiet() {
        super::print_how_to_connect(&setup);
    }
    // With --json the check comes first: the JSON reports it.
    let check = |system| self_check(system, &config, &setup, &resolution, cacert_pem.clone());
    let mut report = None;
    if args.json && !args.no_check {
        // A signal now is noted, not fatal: the check ends, the JSON (with
        // any secrets in it) is printed and the journal ends.
        let _catching = crate::interrupt::catch();
        report = check(system)?;
    }
    if args.json {
        let summary = json_summary(&plan, false, recovered, &resolution, args.show_secrets, report.as_ref());
        let shown = crate::verbosity::print_secret(&summary.to_string());
        // Only a JSON with secrets in it must be seen; a summary is a report.
        if in_json {
            shown.map_err(|why| super::unshown_secrets(system, &journal, why))?;
        }
    }
    journal.commit()?;
    if let Some(path) = &args.save_answers {
        save_answers(system, path, &answers.with_hashes(&resolution, true))?;
    }
    if !args.json && !args.no_check {
        report = check(system)?;
    }
    match report {
        Some(report) if !report.passed => {
            Err(Error::check_failed("the setup was applied, but the check found problems (see above)"))
        }
        _ => Ok(()),
    }
}

/// How `init` checks the server it just set up: as a client would, but
/// connected to this machine whatever DNS says, with a password this run
/// knows (given in the answers, or generated now).
fn self_check(
    system: &dyn System,
    config: &Config,
    setup: &Setup,
    resolution: &Resolution,
    cacert_pem: Option<Vec<u8>>,
) -> Result<Option<check::Report>> {
    let known = config.users.iter().find_map(|u| match &u.password {
        PasswordSource::Given(secret) => Some((u.username.to_string(), secret.clone())),
        _ => resolution.generated.iter().find(|(name, _)| *name == u.username).map(|(n, p)| (n.to_string(), p.clone())),
    });
    let site = &setup.settings.site;
    if !site.allows(site.local_address()) {
        crate::say!(
            "\nNot checked: allow_from leaves out this machine's address ({}). From an allowed address, run \
             `ollama-secure check --url {} --username NAME`.",
            site.local_address(),
            site.public_url()
        );
        return Ok(None);
    }
    let Some((username, password)) = known else {
        crate::say!(
            "\nNot checked: this run knows no user's password (only hashes). Run `ollama-secure check --url {} --username NAME`.",
            site.public_url()
        );
        return Ok(None);
    };
    let mut options = check_options(setup, username, password, cacert_pem);
    options.error_log = setup.proxy().error_log(system, &setup.settings.paths);
    crate::say!();
    let report = check::run(system, &options);
    // Quiet: the report only when something failed (the error points to it).
    if !report.passed || !crate::verbosity::quiet() {
        crate::show!("{}", report.text().trim_end());
    }
    Ok(Some(report))
}

fn check_options(setup: &Setup, username: String, password: Secret, cacert_pem: Option<Vec<u8>>) -> check::Options {
    let site = &setup.settings.site;
    let resolve = site.domain.iter().map(|domain| (domain.to_string(), site.local_address())).collect();
    check::Options {
        url: reqwest::Url::parse(&site.public_url()).expect("public URLs parse"),
        credentials: crate::system::Credentials::Basic(username, password),
        cacert_pem,
        timeout: Duration::from_secs(30),
        model: None,
        resolve,
        http_port: site.https.as_ref().map_or(80, |h| h.http_port),
        ollama_port: site.upstream.port,
        body_bytes: 5 * 1024 * 1024,
        auth_socket: setup.proxy().auth_socket(&setup.settings.paths).map(Path::to_path_buf),
        // Its plan has said so already, with the fix; `check` judges it.
        caddy_admin: None,
        error_log: None,
        // Requests through the proxy prove the site; each of several
        // Ollama servers is `check`'s to report (one may be down for a
        // while, which the proxy copes with).
        backends: Vec::new(),
    }
}
