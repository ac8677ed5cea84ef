//! The state file + facts → the plan that undoes what ollama-secure did:
//! links and files it created are removed, files it replaced are restored
//! from their original backups, its lines leave the main configuration,
//! its own backups and folders go, and the proxy is reloaded (or stopped,
//! if ollama-secure had started it and it serves nothing new since).
//! Packages stay. Pure.

use std::path::{Path, PathBuf};

use super::{Action, Plan, Purpose, Snapshot, Step, service};
use crate::error::{Error, Finding, Result};
use crate::facts::Facts;
use crate::paths::Paths;
use crate::state::{FileRecord, Owned, OwnedKind, State};
use crate::system::Existing;

fn exists(facts: &Facts, path: &Path) -> bool {
    !matches!(facts.file(path), Existing::Missing)
}

/// Restores `path` from `from`; undone by putting both back as they are.
fn restore(path: &Path, from: &Path, facts: &Facts) -> Step {
    let undo = [(path, facts.file(path)), (from, facts.file(from))]
        .into_iter()
        .filter_map(|(p, existing)| Snapshot::of(existing).map(|snapshot| Action::PutBack { path: p.into(), snapshot }))
        .collect();
    Step::undone_by(Action::Restore { path: path.into(), from: from.into() }, undo)
}

/// Our files, newest first: created ones go, replaced ones come back.
fn files(state: &State, facts: &Facts, findings: &mut Vec<Finding>, steps: &mut Vec<Step>) -> Vec<PathBuf> {
    let mut consumed = Vec::new();
    for FileRecord { path, original } in state.files.iter().rev() {
        if Some(path) == state.caddyfile_import.as_ref() {
            continue;
        }
        match original {
            Some(original) if matches!(facts.file(original), Existing::File { .. }) => {
                steps.push(restore(path, original, facts));
                consumed.push(original.clone());
            }
            Some(original) => {
                findings.push(Finding::info(format!(
                    "the file that was at {} before ollama-secure was kept as {}, which is gone; {} is removed",
                    path.display(),
                    original.display(),
                    path.display()
                )));
                if exists(facts, path) {
                    steps.push(Step::remove(path, facts.file(path)));
                }
            }
            None if exists(facts, path) => steps.push(Step::remove(path, facts.file(path))),
            None => {}
        }
    }
    consumed
}

/// Backups of our own files hold only what we generated and go; a backup
/// of the user's main configuration goes only if it says what that file
/// will say.
fn backups(
    state: &State,
    facts: &Facts,
    consumed: &[PathBuf],
    main_config_after: Option<&(PathBuf, String)>,
    findings: &mut Vec<Finding>,
    steps: &mut Vec<Step>,
) {
    for backup in &state.backups {
        let Existing::File { content, .. } = facts.file(backup) else { continue };
        if consumed.contains(backup) {
            continue;
        }
        let of = State::backed_up_path(backup);
        let of_main_config = of.is_some() && of == state.caddyfile_import;
        let same_as_after = main_config_after.is_some_and(|(_, text)| text.as_bytes() == content.as_slice());
        if !of_main_config || same_as_after {
            steps.push(Step::remove(backup, facts.file(backup)));
        } else {
            findings.push(Finding::info(format!(
                "keeping {}: an earlier version of your Caddyfile that differs from it",
                backup.display()
            )));
        }
    }
}

/// A proxy init started is stopped, unless it serves something new since
/// (then, like a proxy init found running, it is reloaded without our site).
fn stop_or_reload(state: &State, paths: &Paths, facts: &Facts, findings: &mut Vec<Finding>) -> Vec<Step> {
    let proxy = state.proxy.module();
    let name = proxy.name();
    if !facts.proxy_running {
        findings.push(Finding::info(format!("{name} is not running")));
        return Vec::new();
    }
    let service = service::of(proxy, paths, facts);
    let now = proxy.served_besides_us(paths, facts);
    let changed_since = state.served_besides_us(paths).filter(|then| *then != now);
    if state.started && changed_since.is_none() {
        findings.push(Finding::info(format!("ollama-secure started {name}, so it stops it")));
        return vec![service::stop(&service)];
    }
    if let Some(then) = changed_since.filter(|_| state.started) {
        findings.push(Finding::info(format!(
            "ollama-secure started {name}, but what else it serves has changed since ({}), so it is reloaded, not stopped",
            then.change_since(&now)
        )));
    }
    vec![service::validate(&service), service::reload(&service)]
}

pub fn removal(paths: &Paths, facts: &Facts) -> Result<Plan> {
    let Some(state) = facts.state(paths)? else {
        return Err(Error::input(format!(
            "nothing to uninstall: {} does not exist (was ollama-secure used with these paths?)",
            paths.state.display()
        )));
    };
    let proxy = state.proxy.module();
    let mut findings = Vec::new();
    let mut blockers = Vec::new();
    service::detection(facts, &mut findings, &mut blockers);
    let mut steps = Vec::new();

    for link in &state.links {
        if matches!(facts.file(link), Existing::Symlink { .. }) {
            steps.push(Step::remove(link, facts.file(link)));
        }
    }
    let disabled = proxy.disable(&state, paths, facts)?;
    steps.extend(disabled.steps);
    let consumed = files(&state, facts, &mut findings, &mut steps);
    if steps.iter().any(|s| matches!(&s.action, Action::Remove { path } if *path == paths.apt_source)) {
        findings.push(Finding::info(format!(
            "{} is removed, with its key: the {} package init installed from there stays, and apt no longer upgrades it \
             (`apt-get purge {}` removes it)",
            paths.apt_source.display(),
            state.proxy.name(),
            state.proxy.name()
        )));
    }
    backups(&state, facts, &consumed, disabled.main_config_after.as_ref(), &mut findings, &mut steps);
    if exists(facts, &paths.state) {
        steps.push(Step::remove(&paths.state, facts.file(&paths.state)));
    }

    let stop_or_reload = stop_or_reload(&state, paths, facts, &mut findings);
    let stops = stop_or_reload.iter().any(|s| matches!(&s.action, Action::Run { purpose: Purpose::Stop { .. }, .. }));
    // What the proxy made when we started it stays while it runs, and
    // while it serves more than then (started again, it uses it for that).
    let serves_more = state.served_besides_us(paths).is_some_and(|then| then != proxy.served_besides_us(paths, facts));
    // The unit systemd ran before us wrote them for our site only (it is
    // reloaded without it now, and serves nothing new).
    let reloaded_unit = facts.systemd && !state.started;
    let still_needed = serves_more || (facts.proxy_running && !stops && !reloaded_unit);
    steps.extend(stop_or_reload);
    steps.extend(disable_at_boot(&state, paths, facts, &mut findings));
    steps.extend(bans_without_us(&state, paths, facts));
    // Last, once the proxy no longer uses them: what cannot be put back
    // once deleted (caches, the proxy's data for us, certificates).
    steps.extend(proxy.leftovers(paths, facts));
    steps.extend(recorded_folders(&state, paths, facts, still_needed, &mut findings));
    Ok(Plan { proxy: Some(state.proxy), findings, blockers, steps })
}

/// A unit ollama-secure enabled at boot is disabled again, unless the
/// proxy serves something new since (that may need it at boot).
fn disable_at_boot(state: &State, paths: &Paths, facts: &Facts, findings: &mut Vec<Finding>) -> Option<Step> {
    let then = state.enabled_at_boot.as_ref()?;
    if !facts.systemd || !facts.service_enabled {
        return None;
    }
    let proxy = state.proxy.module();
    let now = proxy.served_besides_us(paths, facts);
    if *then != now {
        findings.push(Finding::info(format!(
            "ollama-secure enabled {} at boot, but what else it serves has changed since ({}), so it stays enabled",
            proxy.name(),
            then.change_since(&now)
        )));
        return None;
    }
    findings.push(Finding::info(format!("ollama-secure enabled {} at boot, so it disables it again", proxy.name())));
    service::disable_at_boot(&service::of(proxy, paths, facts))
}

/// fail2ban once our jail is gone: stopped if we started it, otherwise
/// told to read its jails again (which lifts our jail's bans).
fn bans_without_us(state: &State, paths: &Paths, facts: &Facts) -> Vec<Step> {
    let ours = state.record(&paths.fail2ban_jail()).is_some();
    if !facts.fail2ban.running || !(ours || state.started_bans) {
        return Vec::new();
    }
    if state.started_bans {
        vec![crate::ban::stop_step(paths, facts.systemd)]
    } else {
        vec![crate::ban::reload_step(paths)]
    }
}

/// What ollama-secure made and recorded, newest first: the proxy's own
/// folders (kept while the proxy still needs them), certificates,
/// certbot's folders, and the folders made for our files.
fn recorded_folders(
    state: &State,
    paths: &Paths,
    facts: &Facts,
    still_needed: bool,
    findings: &mut Vec<Finding>,
) -> Vec<Step> {
    let proxy = state.proxy.module();
    let mut steps = Vec::new();
    let owned = if state.recorded_no_ownership() { proxy.owned_without_records(paths) } else { state.owned.clone() };
    for owned in owned.iter().rev() {
        if owned.until_stopped && still_needed && exists(facts, &owned.path) {
            findings.push(Finding::info(format!(
                "keeping {}: {} made it for ollama-secure's site, and it serves more now, which may need it",
                owned.path.display(),
                proxy.name()
            )));
            continue;
        }
        steps.extend(owned_removal(owned, facts));
    }
    for certificate in &state.certificates {
        steps.push(Step::run(crate::certbot::delete(paths, certificate), Purpose::DeleteCertificate));
    }
    // certbot's folders go with the last certificate in them.
    let renewal = paths.letsencrypt.join("renewal");
    for dir in state.certbot_dirs.iter().rev() {
        if exists(facts, dir) {
            let unless_entries_in = Some(renewal.clone());
            steps.push(Step::final_(Action::RemoveTree { path: dir.clone(), unless_entries_in }));
        }
    }
    for dir in state.dirs.iter().rev() {
        if exists(facts, dir) {
            steps.push(Step::undone_by(
                Action::RemoveDir { path: dir.clone() },
                vec![Action::CreateDir { path: dir.clone(), mode: 0o755 }],
            ));
        }
    }
    steps
}

/// Removes something recorded as ours: a mounted tmpfs is unmounted first.
fn owned_removal(owned: &Owned, facts: &Facts) -> Vec<Step> {
    let path = &owned.path;
    let remove_tree = || Step::final_(Action::RemoveTree { path: path.clone(), unless_entries_in: None });
    match (owned.kind, facts.file(path)) {
        (_, Existing::Missing) => Vec::new(),
        (OwnedKind::File, existing) => vec![Step::remove(path, existing)],
        (OwnedKind::Dir, _) => vec![Step::final_(Action::RemoveDir { path: path.clone() })],
        (OwnedKind::Tree, _) => vec![remove_tree()],
        (OwnedKind::Mount, _) if facts.is_mountpoint(path) => {
            vec![Step::final_(Action::unmount(path)), remove_tree()]
        }
        (OwnedKind::Mount, _) => vec![remove_tree()],
    }
}
