//! Desired state + facts → the steps that make the system match. Pure.
//! `--dry-run` prints this plan; apply executes this same plan, step by
//! step, and undoes it with the steps' own undo actions.

mod describe;
mod harden;
mod preflight;
mod removal;
mod service;
mod step;

use std::path::{Path, PathBuf};

pub use describe::{Touched, describe, removal_consequences, summary, touched, undo_text};
pub use harden::{Hardening, harden, soften};
pub use removal::removal;
pub use service::renewal_finding;
pub use step::{
    Action, Change, Command, EXIT_LIMIT, LISTEN_LIMIT, OLD_WORKERS_LIMIT, Output, Purpose, Snapshot, Step, VERIFY_LIMIT,
};

use crate::error::{Error, Finding, Result};
use crate::facts::Facts;
use crate::proxy::{Certificates, Folders, ProxyKind, Service, Stage};
use crate::render::{RenderedFile, Role};
use crate::setup::Setup;
use crate::state::{Owned, OwnedKind, State};
use crate::system::{Existing, Ownership};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The proxy the plan starts, reloads or stops (none: Ollama's own
    /// service, for `harden-ollama`).
    pub proxy: Option<ProxyKind>,
    /// What was found, in words (printed before the steps).
    pub findings: Vec<Finding>,
    /// What makes the plan impossible to apply now (a port in use, a
    /// package missing): a dry run lists them; apply refuses to start.
    pub blockers: Vec<String>,
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// An error naming every blocker, if there is one: nothing was changed.
    pub fn refusal(&self) -> Option<Error> {
        (!self.blockers.is_empty())
            .then(|| Error::input(format!("cannot apply; nothing was changed:\n  - {}", self.blockers.join("\n  - "))))
    }

    /// The backups this plan makes.
    pub fn backups(&self) -> Vec<&Path> {
        self.steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Write { change: Change::Replace { backup } | Change::Edit { backup, .. }, .. } => {
                    Some(backup.as_path())
                }
                _ => None,
            })
            .collect()
    }
}

/// What the plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// The whole setup: preflight, files, the proxy started or reloaded,
    /// certificates, the state file. `install`: packages may be installed,
    /// the proxy from there.
    Init { install: Option<crate::proxy::PackageSource> },
    /// A change to the users of an installed setup: its files, and a reload
    /// when the proxy runs (it is never started).
    Users,
}

pub fn backup_path(path: &Path, stamp: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".bak-{stamp}"));
    path.with_file_name(name)
}

/// The step that writes `file`: nothing if the system already has exactly
/// this content, mode and group.
fn write_step(file: RenderedFile, facts: &Facts) -> Result<Option<Step>> {
    let wanted_gid = facts.groups.get(&file.group).copied();
    match facts.file(&file.path) {
        Existing::Missing => Ok(Some(Step::write(file, Change::Create))),
        Existing::File { content, .. } if file.role == Role::MainConfig && *content == file.content.as_bytes() => {
            Ok(None)
        }
        Existing::File { content, mode, uid, gid } => {
            let same = *content == file.content.as_bytes()
                && *mode == file.mode
                && *uid == 0
                && wanted_gid.is_some_and(|g| g == *gid);
            if same {
                return Ok(None);
            }
            let backup = backup_path(&file.path, &facts.stamp);
            if file.role == Role::MainConfig {
                let previous = Snapshot::of(facts.file(&file.path)).expect("a file");
                return Ok(Some(Step::write(file, Change::Edit { backup, previous })));
            }
            Ok(Some(Step::write(file, Change::Replace { backup })))
        }
        // Without root a dry run cannot compare: it plans the replacement
        // (the finding says why); as root, an equal file is left alone.
        Existing::Unreadable { .. } => {
            let backup = backup_path(&file.path, &facts.stamp);
            Ok(Some(Step::write(file, Change::Replace { backup })))
        }
        Existing::Symlink { target } => Err(Error::input(format!(
            "{} is a symbolic link (to {}); refusing to write through it: move it away or choose another path in `paths:`",
            file.path.display(),
            target.display()
        ))),
        Existing::Dir { .. } | Existing::Other => Err(Error::input(format!(
            "{} exists and is not a regular file; choose another path in `paths:`",
            file.path.display()
        ))),
    }
}

/// Steps creating every missing folder above `paths`, outermost first.
fn parent_dirs(paths: &[&Path], facts: &Facts, steps: &mut Vec<Step>) {
    for path in paths {
        let mut missing: Vec<&Path> =
            path.ancestors().skip(1).take_while(|dir| matches!(facts.file(dir), Existing::Missing)).collect();
        missing.reverse();
        for dir in missing {
            if !steps.iter().any(|s| matches!(&s.action, Action::CreateDir { path, .. } if path == dir)) {
                steps.push(Step::create_dir(dir));
            }
        }
    }
}

/// certbot's `live/` files are links into `archive/`; a link counts.
fn certificate_present(setup: &Setup, facts: &Facts) -> bool {
    let present = |path: &Path| matches!(facts.file(path), Existing::File { .. } | Existing::Symlink { .. });
    crate::certbot::live_paths(&setup.settings).is_some_and(|(cert, key)| present(&cert) && present(&key))
}

/// The state after `steps`. What a path was before ollama-secure first
/// touched it stays recorded as first seen.
fn record_state(setup: &Setup, facts: &Facts, previous: Option<State>, steps: &[Step], folders: &Folders) -> State {
    let mut state = previous.unwrap_or_else(|| State::new(&setup.settings));
    state.settings = Some(setup.settings.clone());
    state.access = Some(setup.access.clone());
    let paths = &setup.settings.paths;
    if state.recorded_no_ownership() {
        setup.proxy().owned_without_records(paths).into_iter().for_each(|owned| state.note_owned(owned));
    }
    folders.owned.iter().for_each(|owned| state.note_owned(owned.clone()));
    for step in steps {
        note_step(&mut state, &step.action, setup, facts, folders);
    }
    // What the validator makes (in a Caddy that was running already, say),
    // unless the started proxy's record took it.
    if steps.iter().any(|s| matches!(&s.action, Action::Run { purpose: Purpose::Validate { .. }, .. })) {
        folders.made_by_validation.iter().for_each(|made| state.note_owned(made.clone()));
    }
    state
}

/// What one step makes ollama-secure's, for uninstall to take back.
fn note_step(state: &mut State, action: &Action, setup: &Setup, facts: &Facts, folders: &Folders) {
    let paths = &setup.settings.paths;
    match action {
        // certbot writes the challenges' folders into the webroot.
        Action::CreateDir { path, .. } if *path == paths.acme_webroot => {
            state.note_dir(path);
            state.note_owned(Owned::new(path, OwnedKind::Tree));
        }
        // A folder recorded as owned goes as that (after the proxy stopped).
        Action::CreateDir { path, .. } if folders.owned.iter().any(|o| o.path == *path) => {}
        Action::CreateDir { path, .. } => state.note_dir(path),
        Action::Write { file, change } => {
            let main_config = file.role == Role::MainConfig;
            if main_config {
                state.caddyfile_import = Some(file.path.clone());
            }
            match change {
                Change::Create => state.note_write(&file.path, None),
                // The main configuration stays the user's: uninstall removes our lines only.
                Change::Edit { backup, .. } => state.note_backup(backup),
                Change::Replace { backup } => {
                    state.note_write(&file.path, Some(backup));
                    state.note_backup(backup);
                }
                Change::Overwrite { .. } => {}
            }
        }
        Action::Link { link, .. } => state.note_link(link),
        // The unit systemd runs writes where we know (its user's home), for
        // our site, as one we start does: ours while it serves nothing new.
        Action::Run { purpose: Purpose::Reload { .. }, .. } if facts.systemd => {
            state.note_served(setup.proxy().served_besides_us(paths, facts));
            for owned in &folders.owned_if_started {
                state.note_owned(Owned { until_stopped: true, ..owned.clone() });
            }
        }
        Action::Run { command, purpose: Purpose::Start } => {
            if !state.started {
                state.note_started(setup.proxy().served_besides_us(paths, facts));
            }
            for owned in &folders.owned_if_started {
                state.note_owned(Owned { until_stopped: true, ..owned.clone() });
            }
            if let Output::LogFile(log) = &command.output
                && matches!(facts.file(log), Existing::Missing)
            {
                state.note_owned(Owned { until_stopped: true, ..Owned::new(log, OwnedKind::File) });
            }
        }
        Action::Run { purpose: Purpose::Enable, .. } if state.enabled_at_boot.is_none() => {
            state.enabled_at_boot = Some(setup.proxy().served_besides_us(paths, facts));
        }
        Action::Run { purpose: Purpose::StartBans, .. } => state.started_bans = true,
        Action::Run { purpose: Purpose::StopBans, .. } => state.started_bans = false,
        Action::Run { purpose: Purpose::ObtainCertificate { domain, .. }, .. } => {
            if !state.certificates.contains(domain) {
                state.certificates.push(domain.clone());
            }
            for dir in crate::certbot::folders_made_for_us(paths, facts) {
                if !state.certbot_dirs.contains(&dir) {
                    state.certbot_dirs.push(dir);
                }
            }
        }
        _ => {}
    }
}

/// The step that writes `state`, unless the state file already says exactly that.
fn state_step(setup: &Setup, state: &State, facts: &Facts) -> Option<Step> {
    let path = &setup.settings.paths.state;
    let content = state.to_text();
    let change = match facts.file(path) {
        Existing::File { content: current, .. } if *current == content.as_bytes() => return None,
        existing @ Existing::File { .. } => Change::Overwrite { previous: Snapshot::of(existing)? },
        _ => Change::Create,
    };
    let file = RenderedFile {
        path: path.clone(),
        role: Role::State,
        mode: 0o644,
        group: "root".into(),
        secret: false,
        content,
    };
    Some(Step::write(file, change))
}

/// After a certbot certificate arrives: the whole site replaces the stage
/// written for the ACME challenge, and the proxy reloads onto it.
fn certbot_steps(setup: &Setup, facts: &Facts, service: &Service, stage_site: &RenderedFile) -> Result<Vec<Step>> {
    let site = &setup.settings.site;
    let domain = site.domain.as_ref().map(|d| d.to_string()).unwrap_or_default();
    let http_port = site.https.as_ref().map_or(80, |h| h.http_port);
    let obtain = crate::certbot::obtain(&setup.settings, &domain, &service.reload);
    let full_site = setup
        .proxy()
        .render(setup, facts, Stage::Final)?
        .into_iter()
        .find(|f| f.role == Role::Site)
        .expect("every proxy renders a site");
    let previous = Snapshot {
        content: stage_site.content.clone().into_bytes(),
        ownership: Ownership {
            mode: stage_site.mode,
            uid: 0,
            gid: facts.groups.get(&stage_site.group).copied().unwrap_or(0),
        },
    };
    // certbot makes its folders (an account, logs) even when it fails:
    // those it made go with the certificate, unless another is there.
    let paths = &setup.settings.paths;
    let renewal = paths.letsencrypt.join("renewal");
    let made = crate::certbot::folders_made_for_us(paths, facts)
        .into_iter()
        .map(|dir| Action::RemoveTree { path: dir, unless_entries_in: Some(renewal.clone()) });
    let delete = Action::Run { command: crate::certbot::delete(paths, &domain), purpose: Purpose::DeleteCertificate };
    Ok(vec![
        Step::undone_by(
            Action::Run { command: obtain, purpose: Purpose::ObtainCertificate { domain: domain.clone(), http_port } },
            std::iter::once(delete).chain(made).collect(),
        ),
        Step::write(full_site, Change::Overwrite { previous }),
        service::validate(service),
        service::reload(service),
    ])
}

/// The files' steps: folders, writes (with backups) and what switches the
/// site on; and the site of the challenge stage, when certbot must run.
struct FileSteps {
    steps: Vec<Step>,
    stage_site: Option<RenderedFile>,
}

fn file_steps(setup: &Setup, facts: &Facts, goal: Goal, service: &Service) -> Result<FileSteps> {
    let proxy = setup.proxy();
    let paths = &setup.settings.paths;
    let certbot = setup.settings.site.https.is_some() && proxy.certificates() == Certificates::Certbot;
    // A proxy that cannot load its TLS server without the certificate gets
    // the challenge stage first, then certbot, then the whole site.
    let awaiting = certbot && goal != Goal::Users && !certificate_present(setup, facts);
    let mut files = proxy.render(setup, facts, if awaiting { Stage::AwaitingCertificate } else { Stage::Final })?;
    let stage_site = awaiting.then(|| files.iter().find(|f| f.role == Role::Site).cloned()).flatten();
    let enable = proxy.enable(setup, facts)?;
    files.extend(enable.files);
    if certbot && goal != Goal::Users {
        files.extend(crate::certbot::renewal_files(&setup.settings, facts.systemd));
    }
    if goal != Goal::Users {
        files.extend(crate::ban::files(&setup.settings)?);
    }

    let mut dirs: Vec<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    dirs.extend(enable.steps.iter().filter_map(|step| match &step.action {
        Action::Link { link, .. } => Some(link.as_path()),
        _ => None,
    }));
    let webroot_entry = paths.acme_webroot.join("x");
    if certbot {
        dirs.push(&webroot_entry);
    }
    // The folder of the log the proxy writes when we start it ourselves.
    if let Some(log) = service.log.as_deref().filter(|_| goal != Goal::Users) {
        dirs.push(log);
    }
    let mut steps = Vec::new();
    parent_dirs(&dirs, facts, &mut steps);
    for file in files {
        steps.extend(write_step(file, facts)?);
    }
    steps.extend(enable.steps);
    // systemd reads a changed drop-in only when told to (again on undo).
    let dropin = |s: &Step| matches!(&s.action, Action::Write { file, .. } if file.path == paths.renewal_dropin);
    if facts.systemd && steps.iter().any(dropin) {
        let reload =
            || Action::Run { command: Command::new("systemctl", &["daemon-reload"]), purpose: Purpose::ReloadUnits };
        steps.push(Step::undone_by(reload(), vec![reload()]));
    }
    Ok(FileSteps { steps, stage_site })
}

/// The proxy's steps after the files (`changed`: they, or the folders
/// before them, change something it reads): start, reload or repair; the
/// certificate; and the proof that the site asks for credentials.
fn service_steps(
    setup: &Setup,
    facts: &Facts,
    goal: Goal,
    service: &Service,
    files: &FileSteps,
    changed: bool,
    findings: &mut Vec<Finding>,
) -> Result<Vec<Step>> {
    let proxy = setup.proxy();
    let may_start = goal != Goal::Users;
    let mut steps = service::bring_up(proxy, &setup.settings.paths, facts, service, changed, may_start, findings)?;
    if let Some(stage_site) = &files.stage_site {
        steps.extend(certbot_steps(setup, facts, service, stage_site)?);
    }
    let https = setup.settings.site.https.is_some();
    if https && proxy.certificates() == Certificates::BuiltIn && !steps.is_empty() && may_start {
        steps.push(service::await_certificate(setup, service));
    }
    let serves = |s: &Step| matches!(&s.action, Action::Run { purpose: Purpose::Start | Purpose::Reload { .. }, .. });
    if steps.iter().any(serves) {
        let site = &setup.settings.site;
        steps.push(Step::final_(Action::Verify {
            url: site.public_url(),
            connect: site.local_address(),
            outsider: !site.allows(site.local_address()),
        }));
    }
    if https && may_start {
        findings.push(service::renewal_finding(proxy, facts, &setup.settings));
    }
    Ok(steps)
}

/// fail2ban's steps, after the proxy's: our jail and filter are read
/// (validated, fail2ban started or reloaded, our jail asked for); or, once
/// `ban` has left the answers, the jail and filter we wrote go, with the
/// fail2ban we started (one that ran before reloads).
fn ban_steps(
    setup: &Setup,
    facts: &Facts,
    files: &FileSteps,
    findings: &mut Vec<Finding>,
    blockers: &mut Vec<String>,
) -> Result<Vec<Step>> {
    let paths = &setup.settings.paths;
    let running = facts.fail2ban.running;
    if setup.settings.site.ban.is_none() {
        let state = facts.state(paths)?;
        let ours: Vec<PathBuf> = [paths.fail2ban_jail(), paths.fail2ban_filter()]
            .into_iter()
            .filter(|path| !matches!(facts.file(path), Existing::Missing))
            .filter(|path| state.as_ref().is_some_and(|s| s.record(path).is_some()))
            .collect();
        if ours.is_empty() {
            return Ok(Vec::new());
        }
        findings.push(Finding::info("`ban` is no longer in the answers: the fail2ban jail ollama-secure wrote goes"));
        let mut steps: Vec<Step> = ours.iter().map(|path| Step::remove(path, facts.file(path))).collect();
        // The fail2ban we started goes with our jail; one that ran before reloads.
        match (running, state.as_ref().is_some_and(|s| s.started_bans)) {
            (true, true) => steps.push(crate::ban::stop_step(paths, facts.systemd)),
            (true, false) => steps.push(crate::ban::reload_step(paths)),
            (false, _) => {}
        }
        return Ok(steps);
    }
    if let Some(output) = &facts.fail2ban.broken {
        blockers.push(crate::ban::broken_before_us(output));
    }
    let changed = files.steps.iter().any(|s| matches!(&s.action, Action::Write { file, .. } if file.role == Role::Ban));
    if !changed && facts.fail2ban.jail_loaded {
        return Ok(Vec::new());
    }
    if !changed {
        findings.push(Finding::info(if running {
            "fail2ban runs without the ollama-secure jail: it reads its jails again"
        } else {
            "fail2ban is not running: it is started"
        }));
    }
    let bring_up = if running { crate::ban::reload_step(paths) } else { crate::ban::start_step(paths, facts.systemd) };
    Ok(vec![crate::ban::validate(paths), bring_up, crate::ban::verify(paths)])
}

/// Builds the plan that makes the system match `setup`.
pub fn for_setup(setup: &Setup, facts: &Facts, goal: Goal) -> Result<Plan> {
    let paths = &setup.settings.paths;
    let service = service::of(setup.proxy(), paths, facts);
    let mut findings = unreadable_findings(facts);
    let mut blockers = Vec::new();
    service::detection(facts, &mut findings, &mut blockers);
    let mut steps = Vec::new();
    let mut folders = Folders::default();
    if let Goal::Init { install } = goal {
        steps.extend(preflight::check(setup, install, facts, &mut findings, &mut blockers));
        // Before the proxy reads the site (`nginx -t` makes its folders too).
        folders = setup.proxy().folders(paths, facts, facts.state(paths)?.as_ref());
        steps.append(&mut folders.steps);
        findings.append(&mut folders.findings);
        blockers.append(&mut folders.blockers);
    }
    let files = file_steps(setup, facts, goal, &service)?;
    // A folder made or mounted again (the cache after a reboot) is read
    // only when the proxy loads its configuration: it reloads.
    let for_the_proxy = |s: &Step| !matches!(&s.action, Action::Write { file, .. } if file.role == Role::Ban);
    let changed = files.steps.iter().any(for_the_proxy) || !steps.is_empty();
    let mut service_steps = service_steps(setup, facts, goal, &service, &files, changed, &mut findings)?;
    if goal != Goal::Users {
        service_steps.extend(ban_steps(setup, facts, &files, &mut findings, &mut blockers)?);
        // Last: what starts at boot is what was proven to start now.
        service_steps.extend(service::enable_at_boot(facts, &service));
    }
    steps.extend(files.steps);
    // Recorded before the proxy is touched, so a failure rolls it back too.
    if changed && goal != Goal::Users {
        parent_dirs(&[paths.state.as_path()], facts, &mut steps);
    }
    let all: Vec<Step> = steps.iter().chain(&service_steps).cloned().collect();
    let state = record_state(setup, facts, facts.state(paths)?, &all, &folders);
    // `users` records its backups too (they hold every user's hash).
    if goal != Goal::Users || facts.state(paths)?.is_some() {
        steps.extend(state_step(setup, &state, facts));
    }
    steps.extend(service_steps);
    undo_what_the_proxy_makes(&mut steps, &folders, facts);
    findings.extend(writable_parents(&steps, facts));
    findings.extend(replaced_files_of_others(&steps, facts, facts.state(paths)?.as_ref()));
    Ok(Plan { proxy: Some(setup.settings.proxy), findings, blockers, steps })
}

/// The first validation makes what `folders` says it makes, and the start
/// what the started proxy makes (its log too, if there was none): their
/// undos remove it again, innermost first, a start's after the stop.
fn undo_what_the_proxy_makes(steps: &mut [Step], folders: &Folders, facts: &Facts) {
    let removal = |made: &Owned| match made.kind {
        OwnedKind::Dir => Action::RemoveDir { path: made.path.clone() },
        _ => Action::RemoveTree { path: made.path.clone(), unless_entries_in: None },
    };
    let is = |step: &Step, validate: bool| match &step.action {
        Action::Run { purpose: Purpose::Validate { .. }, .. } => validate,
        Action::Run { purpose: Purpose::Start, .. } => !validate,
        // The unit systemd runs writes them when it first loads our site.
        Action::Run { purpose: Purpose::Reload { .. }, .. } => !validate && facts.systemd,
        _ => false,
    };
    if let Some(validation) = steps.iter_mut().find(|s| is(s, true)) {
        validation.undo.extend(folders.made_by_validation.iter().rev().map(removal));
    }
    if let Some(start) = steps.iter_mut().find(|s| is(s, false)) {
        if let Action::Run { command: Command { output: Output::LogFile(log), .. }, .. } = &start.action
            && matches!(facts.file(log), Existing::Missing)
        {
            let log = Owned::new(log, OwnedKind::File);
            start.undo.push(removal(&log));
        }
        start.undo.extend(folders.owned_if_started.iter().rev().map(removal));
    }
}

/// A folder others may write to lets them swap what is below it (a link
/// planted where we write). A sticky folder (like /tmp) is safe only for
/// what root already owns below it.
fn unsafe_parent(path: &Path, facts: &Facts) -> Option<(PathBuf, u32)> {
    let ancestors: Vec<&Path> = path.ancestors().skip(1).collect();
    for (i, dir) in ancestors.iter().enumerate() {
        let Existing::Dir { mode, gid, .. } = facts.file(dir) else { continue };
        let others_write = mode & 0o002 != 0 || (mode & 0o020 != 0 && *gid != 0);
        if !others_write {
            continue;
        }
        let child = if i == 0 { path } else { ancestors[i - 1] };
        let child_is_roots = matches!(facts.file(child), Existing::Dir { uid: 0, .. } | Existing::File { uid: 0, .. });
        if mode & 0o1000 == 0 || !child_is_roots {
            return Some((dir.to_path_buf(), *mode));
        }
    }
    None
}

fn writable_parents(steps: &[Step], facts: &Facts) -> Vec<Finding> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut findings = Vec::new();
    for step in steps {
        let path = match &step.action {
            Action::Write { file, .. } => &file.path,
            Action::Link { link, .. } => link,
            Action::CreateDir { path, .. } => path,
            _ => continue,
        };
        if let Some((dir, mode)) = unsafe_parent(path, facts)
            && !seen.contains(&dir)
        {
            findings.push(Finding::warning(format!(
                "{} is writable by other users (mode {mode:04o}): they could replace what is written below it ({}); \
                 make it writable by root only, or choose paths elsewhere",
                dir.display(),
                path.display()
            )));
            seen.push(dir);
        }
    }
    findings
}

/// A file that is there and that ollama-secure did not write (a site
/// written by hand) is replaced only with a word about it: its backup
/// stays until uninstall puts it back.
fn replaced_files_of_others(steps: &[Step], facts: &Facts, state: Option<&State>) -> Vec<Finding> {
    steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::Write { file, change: Change::Replace { backup } }
                if matches!(facts.file(&file.path), Existing::File { .. })
                    && state.is_none_or(|s| s.record(&file.path).is_none()) =>
            {
                Some(Finding::warning(format!(
                    "{} is there and was not written by ollama-secure: it is replaced, and kept as {} until \
                     `ollama-secure uninstall` puts it back",
                    file.path.display(),
                    backup.display()
                )))
            }
            _ => None,
        })
        .collect()
}

/// What this user could not read, said once per file: the plan around it
/// is what root would do if the file were not ours.
fn unreadable_findings(facts: &Facts) -> Vec<Finding> {
    facts
        .files
        .iter()
        .filter(|(_, existing)| matches!(existing, Existing::Unreadable { .. }))
        .map(|(path, _)| {
            Finding::warning(format!(
                "{} needs root to read: this plan treats it as a file to replace; run with sudo to see the real plan",
                path.display()
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests;
