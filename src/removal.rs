//! The state file + facts → the plan that undoes what ollama-secure did:
//! links and files it created are removed, files it replaced are restored
//! from their original backups, its line leaves the main Caddyfile, its own
//! backups and folders go, and the proxy is reloaded (or stopped, if
//! ollama-secure had started it). Pure, like `plan::build`; packages stay.

use std::path::Path;

use crate::config::Proxy;
use crate::error::{Error, Result};
use crate::facts::{self, Existing, Facts, SocketState};
use crate::paths::Paths;
use crate::plan::{self, Change, Plan, Step, service_commands};
use crate::render::{RenderedFile, Role};
use crate::state::State;

pub fn proxy_of(state: &State) -> Result<Proxy> {
    match state.proxy.as_str() {
        "nginx" => Ok(Proxy::Nginx),
        "caddy" => Ok(Proxy::Caddy),
        other => Err(Error::input(format!("the state file names an unknown proxy {other:?}"))),
    }
}

fn exists(facts: &Facts, path: &Path) -> bool {
    !matches!(facts.file(path), Existing::Missing)
}

/// What changed besides our site since the proxy was started, in words.
fn describe_change(proxy: Proxy, then: &[String], now: &[String]) -> String {
    match proxy {
        Proxy::Nginx => {
            let added: Vec<&str> = now.iter().filter(|s| !then.contains(s)).map(String::as_str).collect();
            let removed: Vec<&str> = then.iter().filter(|s| !now.contains(s)).map(String::as_str).collect();
            let mut parts = Vec::new();
            if !added.is_empty() {
                parts.push(format!("added: {}", added.join(", ")));
            }
            if !removed.is_empty() {
                parts.push(format!("removed: {}", removed.join(", ")));
            }
            parts.join("; ")
        }
        Proxy::Caddy => "the main Caddyfile was changed".to_string(),
    }
}

pub fn build(paths: &Paths, facts: &Facts) -> Result<Plan> {
    let Some(state) = facts::state(paths, facts)? else {
        return Err(Error::input(format!(
            "nothing to uninstall: {} does not exist (was ollama-secure used with these paths?)",
            paths.state.display()
        )));
    };
    let proxy = proxy_of(&state)?;
    let mut findings = Vec::new();
    let mut steps = Vec::new();

    for link in &state.links {
        if matches!(facts.file(link), Existing::Symlink { .. }) {
            steps.push(Step::Remove { path: link.clone() });
        }
    }

    // The main Caddyfile is the user's: only our lines leave it (or the whole
    // file, if we created it and nothing else was added since).
    let mut caddyfile_after = None;
    if let Some(caddyfile) = &state.caddyfile_import
        && let Existing::File { content, mode, .. } = facts.file(caddyfile)
    {
        let current = String::from_utf8_lossy(content).into_owned();
        let without = plan::caddyfile_without_import(paths, &current);
        let created = state.record(caddyfile).is_some_and(|r| r.original.is_none());
        if created && without.trim().is_empty() {
            steps.push(Step::Remove { path: caddyfile.clone() });
        } else if without != current {
            let file = RenderedFile {
                path: caddyfile.clone(),
                role: Role::MainConfig,
                mode: *mode,
                group: "root".into(),
                secret: false,
                content: without.clone(),
            };
            steps.push(Step::Write { file, change: Change::Overwrite });
        }
        caddyfile_after = Some(without);
    }

    let mut consumed = Vec::new();
    for record in state.files.iter().rev() {
        if Some(&record.path) == state.caddyfile_import.as_ref() {
            continue;
        }
        match &record.original {
            Some(original) if matches!(facts.file(original), Existing::File { .. }) => {
                steps.push(Step::Restore { path: record.path.clone(), from: original.clone() });
                consumed.push(original.clone());
            }
            Some(original) => {
                findings.push(format!(
                    "the file that was at {} before ollama-secure was kept as {}, which is gone; {} is removed",
                    record.path.display(),
                    original.display(),
                    record.path.display()
                ));
                if exists(facts, &record.path) {
                    steps.push(Step::Remove { path: record.path.clone() });
                }
            }
            None if exists(facts, &record.path) => steps.push(Step::Remove { path: record.path.clone() }),
            None => {}
        }
    }

    for backup in &state.backups {
        let Existing::File { content, .. } = facts.file(backup) else { continue };
        if consumed.contains(backup) {
            continue;
        }
        let of = State::backed_up_path(backup);
        let of_users_file = of.is_some() && of == state.caddyfile_import;
        // Backups of our own files hold only what we generated; a backup of
        // the user's Caddyfile goes only if it says what the Caddyfile will say.
        if !of_users_file || caddyfile_after.as_deref().is_some_and(|after| after.as_bytes() == content.as_slice()) {
            steps.push(Step::Remove { path: backup.clone() });
        } else {
            findings.push(format!(
                "keeping {}: an earlier version of your Caddyfile that differs from it",
                backup.display()
            ));
        }
    }

    if exists(facts, &paths.state) {
        steps.push(Step::Remove { path: paths.state.clone() });
    }
    for dir in state.dirs.iter().rev() {
        if exists(facts, dir) {
            steps.push(Step::RemoveDir { path: dir.clone() });
        }
    }

    let service = service_commands(proxy, paths, facts.systemd);
    if facts.proxy_running {
        let now = plan::served_besides_us(proxy, paths, facts);
        let changed_since = state.served_besides_us.as_ref().filter(|then| **then != now);
        if state.started && changed_since.is_none() {
            findings.push(format!("ollama-secure started {proxy}, so it stops it"));
            steps.push(Step::Stop { command: service.stop });
        } else {
            if let Some(then) = changed_since {
                findings.push(format!(
                    "ollama-secure started {proxy}, but what else it serves has changed since ({}), so it is reloaded, not stopped",
                    describe_change(proxy, then, &now)
                ));
            }
            steps.push(Step::Validate { command: service.validate });
            steps.push(Step::Reload { command: service.reload });
        }
    } else {
        findings.push(format!("{proxy} is not running"));
    }
    // nginx deletes its socket when it stops or reloads without our site; one
    // left behind by an nginx that did not exit cleanly is removed here.
    if proxy == Proxy::Nginx && facts.auth_socket != SocketState::Missing {
        steps.push(Step::RemoveStaleSocket { path: paths.auth_socket.clone() });
    }
    // Last: neither a certificate nor the cache can be put back once deleted.
    if proxy == Proxy::Nginx && exists(facts, &paths.auth_cache) {
        steps.push(Step::RemoveCache { path: paths.auth_cache.clone() });
    }
    for name in &state.certificates {
        let command =
            crate::plan::Command::new("certbot", &["delete", "--cert-name", name, "--non-interactive", "--config-dir"])
                .arg_path(&paths.letsencrypt)
                .args(&["--work-dir"])
                .arg_path(&paths.certbot_work)
                .args(&["--logs-dir"])
                .arg_path(&paths.certbot_logs);
        steps.push(Step::DeleteCertificate { command });
    }
    Ok(Plan { proxy, findings, steps })
}
