//! The plan in words: in full for `--dry-run` (file contents with hashes
//! redacted, every command, every wait, what undoes each step), and one
//! line per step for the wizard's summary, and what it touches for
//! scripts (`touched`). Pure.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Action, Change, Command, Plan, Purpose, Step};
use crate::render::{RenderedFile, redact_hashes};

/// What follows a command: the wait that is part of it.
fn wait_text(purpose: &Purpose) -> String {
    match purpose {
        Purpose::Reload { wait_for_old_workers: true, .. } => {
            format!(", then wait (up to {} s) until its old workers have left", super::OLD_WORKERS_LIMIT.as_secs())
        }
        Purpose::Stop { pid_file } => {
            format!(
                ", then wait (up to {} s) until the process in {} has exited",
                super::EXIT_LIMIT.as_secs(),
                pid_file.display()
            )
        }
        _ => String::new(),
    }
}

/// An undo action, in a few words.
pub fn undo_text(action: &Action) -> String {
    match action {
        Action::Remove { path } => format!("remove {}", path.display()),
        Action::RemoveDir { path } => format!("remove the folder {} if it is empty", path.display()),
        Action::Restore { path, from } => format!("restore {} from {}", path.display(), from.display()),
        Action::PutBack { path, .. } => format!("put {} back as it was", path.display()),
        Action::PutBackLink { link, target } => format!("link {} -> {} again", link.display(), target.display()),
        Action::CreateDir { path, .. } => format!("create the folder {} again", path.display()),
        Action::Run { command, purpose } => format!("run `{command}`{}", wait_text(purpose)),
        Action::Write { file, .. } => format!("write {}", file.path.display()),
        Action::Link { link, target } => format!("link {} -> {}", link.display(), target.display()),
        Action::RemoveCache { path } => format!("remove the cache {}", path.display()),
        Action::RemoveTree { path, .. } => format!("remove {} and anything in it", path.display()),
        Action::RemoveStaleSocket { path } => format!("remove the socket {} if nothing listens on it", path.display()),
        Action::AwaitCertificate { domain, .. } => format!("wait for a certificate for {domain}"),
        Action::Verify { url, .. } => format!("verify {url}"),
        Action::AwaitLoopbackOnly { port, .. } => format!("wait until port {port} listens on loopback only"),
        Action::AwaitOllamaListening { .. } => "wait until Ollama listens again".to_string(),
    }
}

const ROLLBACK: &str = "(if it fails, every change above is undone)";

fn run_text(command: &Command, purpose: &Purpose, proxy: &str) -> String {
    let (wait, rollback) = (wait_text(purpose), ROLLBACK);
    match purpose {
        Purpose::Install => format!("install {proxy}: run `{command}`"),
        Purpose::Validate { empty_pid_file: None, .. } => format!("validate: run `{command}` {rollback}"),
        Purpose::Validate { empty_pid_file: Some(pid_file), .. } => format!(
            "validate: run `{command}`, then remove the empty {} it makes if there was none {rollback}",
            pid_file.display()
        ),
        Purpose::Start => format!("start {proxy}: run `{command}`"),
        Purpose::Reload { .. } => format!("reload {proxy}: run `{command}`{wait}"),
        Purpose::Stop { .. } => format!("stop {proxy}: run `{command}`{wait}"),
        Purpose::Enable => format!("enable {proxy} at boot: run `{command}`"),
        Purpose::Disable => format!("no longer start {proxy} at boot: run `{command}`"),
        Purpose::ReloadUnits => format!("make systemd read the changed units: run `{command}`"),
        Purpose::RestartOllama => {
            format!("restart Ollama: run `{command}` (requests it is answering end; models load again when asked)")
        }
        Purpose::ObtainCertificate { .. } => format!("obtain the certificate: run `{command}` {rollback}"),
        Purpose::DeleteCertificate => format!("delete the certificate: run `{command}`"),
        Purpose::ValidateBans { .. } => format!("validate fail2ban's configuration: run `{command}` {rollback}"),
        Purpose::VerifyBans => format!(
            "verify that fail2ban runs our jail: run `{command}`, until it answers (up to {} s) {rollback}",
            crate::ban::VERIFY_LIMIT.as_secs()
        ),
        Purpose::StartBans => format!("start fail2ban: run `{command}`"),
        Purpose::ReloadBans => format!("make fail2ban read its jails again: run `{command}`"),
        Purpose::StopBans => format!("stop fail2ban: run `{command}`"),
        Purpose::Mount => format!("mount a private tmpfs (memory, root only): run `{command}`"),
        Purpose::Unmount { .. } => format!("unmount the tmpfs: run `{command}`"),
    }
}

/// A file step: where, how, and the content (hashes redacted).
fn write_file(out: &mut String, n: usize, file: &RenderedFile, change: &Change) {
    let what = match change {
        Change::Create => "new file".to_string(),
        Change::Replace { backup } => format!("replaces the current file, which is kept as {}", backup.display()),
        Change::Edit { backup, .. } => format!("edits your file, which is kept as {}", backup.display()),
        Change::Overwrite { .. } => "replaces ollama-secure's own content".to_string(),
    };
    let owner = match change {
        Change::Edit { previous, .. } | Change::Overwrite { previous } => format!(
            "mode {:04o}, owner {}:{} as now",
            previous.ownership.mode, previous.ownership.uid, previous.ownership.gid
        ),
        _ => format!("mode {:04o}, owner root:{}", file.mode, file.group),
    };
    let _ = writeln!(
        out,
        "{n:>2}. write {} ({what}; {owner}){}",
        file.path.display(),
        if file.secret { "; password hashes shown redacted" } else { "" }
    );
    let content = if file.secret { redact_hashes(&file.content) } else { file.content.clone() };
    for line in content.lines() {
        let _ = writeln!(out, "      | {line}");
    }
}

/// Everything but file writes, in one line.
fn action_text(action: &Action, proxy: &str) -> String {
    match action {
        Action::CreateDir { path, mode } => {
            format!("create directory {} (mode {mode:04o}, owner root:root)", path.display())
        }
        Action::Write { file, .. } => format!("write {}", file.path.display()),
        Action::Link { link, target } => format!("link {} -> {}", link.display(), target.display()),
        Action::Remove { path } => format!("remove {}", path.display()),
        Action::RemoveDir { path } => format!("remove the folder {} if it is empty", path.display()),
        Action::Restore { path, from } => {
            format!("restore {} from {} (the file that was there before)", path.display(), from.display())
        }
        Action::PutBack { path, .. } => format!("put {} back as it was", path.display()),
        Action::PutBackLink { link, target } => format!("link {} -> {} again", link.display(), target.display()),
        Action::RemoveCache { path } => format!("remove the cache of password checks {}", path.display()),
        Action::RemoveTree { path, unless_entries_in: None } => {
            format!("remove {} and everything in it", path.display())
        }
        Action::RemoveTree { path, unless_entries_in: Some(inner) } => format!(
            "remove {} and everything in it, unless {} holds something (another certificate)",
            path.display(),
            inner.display()
        ),
        Action::RemoveStaleSocket { path } => format!(
            "remove the socket {} if nothing listens on it (nginx cannot start while a stale one is there)",
            path.display()
        ),
        Action::Run { command, purpose } => run_text(command, purpose, proxy),
        Action::AwaitCertificate { proxy, domain, address, limit, .. } => format!(
            "wait (up to {} s) until {} serves a certificate for {domain} at {address} {ROLLBACK}",
            limit.as_secs(),
            proxy.title()
        ),
        Action::Verify { url, connect, outsider: false } => {
            format!("verify: a request without credentials to {url} (connected to {connect}) gets 401 {ROLLBACK}")
        }
        Action::Verify { url, connect, outsider: true } => format!(
            "verify: a request to {url} (connected to {connect}) gets allow_from's 403, as this machine is not in it {ROLLBACK}"
        ),
        Action::AwaitLoopbackOnly { port, limit } => format!(
            "verify: wait (up to {} s) until port {port} listens again, on loopback addresses only {ROLLBACK}",
            limit.as_secs()
        ),
        Action::AwaitOllamaListening { limit } => format!(
            "verify: wait (up to {} s) until ollama.service's process listens again, where its unit says {ROLLBACK}",
            limit.as_secs()
        ),
    }
}

fn write_line(out: &mut String, n: usize, step: &Step, proxy: &str) {
    match &step.action {
        Action::Write { file, change } => write_file(out, n, file, change),
        other => drop(writeln!(out, "{n:>2}. {}", action_text(other, proxy))),
    }
    if !step.undo.is_empty() {
        let undo: Vec<String> = step.undo.iter().map(undo_text).collect();
        let _ = writeln!(out, "      undo: {}", undo.join("; then "));
    }
}

/// The plan as `--dry-run` prints it. File contents are shown in full, with
/// password hashes redacted (plaintext passwords never reach a plan).
pub fn describe(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.findings.is_empty() {
        out.push_str("Found:\n");
        for finding in &plan.findings {
            let _ = writeln!(out, "  - {finding}");
        }
        out.push('\n');
    }
    if plan.is_empty() {
        out.push_str("Nothing to change: the system already matches the answers.\n");
    } else {
        out.push_str("Steps (if one fails, the `undo:` of every step before it runs, newest first):\n");
        let proxy = plan.proxy.map_or_else(|| "the proxy".to_string(), |p| p.to_string());
        for (i, step) in plan.steps.iter().enumerate() {
            write_line(&mut out, i + 1, step, &proxy);
        }
    }
    if !plan.blockers.is_empty() {
        out.push_str("\nApplying would be refused now; nothing would be changed:\n");
        for blocker in &plan.blockers {
            let _ = writeln!(out, "  - {blocker}");
        }
    }
    out
}

/// What a plan changes, for scripts (`--json`): each path and command once,
/// in the plan's order.
#[derive(Debug, Default, serde::Serialize)]
pub struct Touched {
    pub written: Vec<PathBuf>,
    pub linked: Vec<PathBuf>,
    pub removed: Vec<PathBuf>,
    pub restored: Vec<PathBuf>,
    pub created_dirs: Vec<PathBuf>,
    pub commands: Vec<String>,
}

pub fn touched(plan: &Plan) -> Touched {
    let mut touched = Touched::default();
    let add = |list: &mut Vec<PathBuf>, path: &Path| {
        if !list.iter().any(|p| p == path) {
            list.push(path.to_path_buf());
        }
    };
    for step in &plan.steps {
        match &step.action {
            Action::CreateDir { path, .. } => add(&mut touched.created_dirs, path),
            Action::Write { file, .. } => add(&mut touched.written, &file.path),
            Action::Link { link, .. } | Action::PutBackLink { link, .. } => add(&mut touched.linked, link),
            Action::Remove { path }
            | Action::RemoveDir { path }
            | Action::RemoveCache { path }
            | Action::RemoveTree { path, .. }
            | Action::RemoveStaleSocket { path } => add(&mut touched.removed, path),
            Action::Restore { path, .. } | Action::PutBack { path, .. } => add(&mut touched.restored, path),
            Action::Run { command, .. } => touched.commands.push(command.to_string()),
            Action::AwaitCertificate { .. }
            | Action::Verify { .. }
            | Action::AwaitLoopbackOnly { .. }
            | Action::AwaitOllamaListening { .. } => {}
        }
    }
    touched
}

/// What a removal does that running `init` again does not simply give
/// back, said before uninstall's question: a process stopped (with
/// whatever else it served) and a certificate deleted (a new one must be
/// issued, and certificate authorities limit how often).
pub fn removal_consequences(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .filter_map(|step| match &step.action {
            Action::Run { command, purpose: Purpose::Stop { .. } } => {
                Some(format!("This stops the proxy ollama-secure started (`{command}`): every site it serves stops."))
            }
            Action::Run { command, purpose: Purpose::StopBans } => {
                Some(format!("This stops fail2ban (`{command}`), which ollama-secure started: no jail bans any more."))
            }
            Action::Run { command, purpose: Purpose::DeleteCertificate } => Some(format!(
                "This deletes the certificate and its key (`{command}`): it cannot be had back, only issued anew."
            )),
            _ => None,
        })
        .collect()
}

/// One line per step, without file contents: the summary before a final
/// question (`--dry-run` shows everything).
pub fn summary(plan: &Plan) -> String {
    plan.steps
        .iter()
        .map(|step| match &step.action {
            Action::Run { command, purpose: Purpose::Install } => format!("  - install: {command}\n"),
            Action::CreateDir { path, .. } => format!("  - create {}\n", path.display()),
            Action::Write { file, change: Change::Replace { backup } | Change::Edit { backup, .. } } => {
                format!("  - replace {} (kept as {})\n", file.path.display(), backup.display())
            }
            Action::Write { file, .. } => format!("  - write {}\n", file.path.display()),
            Action::Link { link, target } | Action::PutBackLink { link, target } => {
                format!("  - link {} -> {}\n", link.display(), target.display())
            }
            Action::Run { command, .. } => format!("  - run: {command}\n"),
            Action::Remove { path }
            | Action::RemoveDir { path }
            | Action::RemoveCache { path }
            | Action::RemoveTree { path, .. } => {
                format!("  - remove {}\n", path.display())
            }
            Action::Restore { path, .. } | Action::PutBack { path, .. } => format!("  - restore {}\n", path.display()),
            Action::AwaitCertificate { proxy, domain, .. } => {
                format!("  - wait for {}'s certificate for {domain}\n", proxy.title())
            }
            Action::RemoveStaleSocket { path } => format!("  - remove the stale socket {}\n", path.display()),
            Action::Verify { url, outsider: false, .. } => format!("  - verify: {url} asks for credentials (401)\n"),
            Action::Verify { url, outsider: true, .. } => {
                format!("  - verify: {url} refuses this machine's address (allow_from's 403)\n")
            }
            Action::AwaitLoopbackOnly { port, .. } => format!("  - verify: port {port} listens on loopback only\n"),
            Action::AwaitOllamaListening { .. } => "  - verify: Ollama listens again\n".to_string(),
        })
        .collect()
}
