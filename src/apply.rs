//! Carries out a `Plan`: the same steps `--dry-run` prints, in order. Every
//! change is journaled; if a step fails, the journal is undone in reverse so
//! the previous files come back byte for byte, and the proxy is reloaded with
//! them if it had already been reloaded.

use std::fs::{self, File};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::config::Proxy;
use crate::error::{Error, Result};
use crate::plan::{Change, Command, Plan, Step};
use crate::render::RenderedFile;
use crate::runner::Runner;

/// A file or link as it was, held in memory so a rollback can put it back.
#[derive(Debug)]
enum Snapshot {
    File { content: Vec<u8>, mode: u32, uid: u32, gid: u32 },
    Symlink { target: PathBuf },
    Missing,
}

fn snapshot(path: &Path) -> Result<Snapshot> {
    Ok(match crate::facts::read_existing(path) {
        crate::facts::Existing::File { content, mode, uid, gid } => Snapshot::File { content, mode, uid, gid },
        crate::facts::Existing::Symlink { target } => Snapshot::Symlink { target },
        crate::facts::Existing::Missing => Snapshot::Missing,
        crate::facts::Existing::Other => {
            return Err(Error::failed(format!("{} is not a regular file or link; leaving it alone", path.display())));
        }
    })
}

fn put_back(path: &Path, snapshot: &Snapshot) -> Result<()> {
    let _ = fs::remove_file(path);
    match snapshot {
        Snapshot::File { content, mode, uid, gid } => write_atomic(path, content, *mode, *uid, *gid),
        Snapshot::Symlink { target } => {
            std::os::unix::fs::symlink(target, path).map_err(|e| io_error("cannot recreate the link", path, e))
        }
        Snapshot::Missing => Ok(()),
    }
}

/// How to undo one change that was made.
#[derive(Debug)]
enum Undo {
    RemoveFile(PathBuf),
    Restore {
        path: PathBuf,
        backup: PathBuf,
    },
    RemoveDir(PathBuf),
    RemoveLink(PathBuf),
    /// Put a file or link back exactly as it was.
    PutBack {
        path: PathBuf,
        snapshot: Snapshot,
    },
    CreateDir(PathBuf),
    /// The proxy was reloaded: after restoring the files, reload again.
    ReloadAgain(Command),
    /// The proxy was started by us: stop it again.
    Stop(Command),
}

/// What apply did, for the summary.
#[derive(Debug, Default)]
pub struct Report {
    pub backups: Vec<PathBuf>,
    pub changed: usize,
}

fn gid_of(group: &str) -> Result<u32> {
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        _ => Err(Error::failed(format!(
            "the group {group} does not exist; it should have come with the proxy package (or set file_group in the answers file)"
        ))),
    }
}

fn io_error(what: &str, path: &Path, e: io::Error) -> Error {
    Error::failed(format!("{what} {}: {e}", path.display()))
}

/// Writes `content` to `path` atomically: a temporary file in the same
/// folder, with mode and owner set before any byte is visible, then a rename.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32, uid: u32, gid: u32) -> Result<()> {
    let dir = path.parent().ok_or_else(|| Error::failed(format!("{} has no parent folder", path.display())))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".ollama-secure-")
        .tempfile_in(dir)
        .map_err(|e| io_error("cannot create a temporary file next to", path, e))?;
    let file = temp.as_file_mut();
    // Mode first: the temp file must never be readable by others, not even briefly.
    file.set_permissions(fs::Permissions::from_mode(mode)).map_err(|e| io_error("cannot set the mode of", path, e))?;
    std::os::unix::fs::fchown(&*file, Some(uid), Some(gid))
        .map_err(|e| io_error("cannot set the owner of", path, e))?;
    file.write_all(content).map_err(|e| io_error("cannot write", path, e))?;
    file.sync_all().map_err(|e| io_error("cannot flush", path, e))?;
    temp.persist(path).map_err(|e| io_error("cannot move the new file into place at", path, e.error))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error("cannot flush the folder", dir, e))?;
    Ok(())
}

/// Copies `path` to `backup` with the same bytes, mode and owner. Never
/// overwrites an existing file: a later backup gets a numbered name.
fn make_backup(path: &Path, backup: &Path) -> Result<PathBuf> {
    let meta = fs::metadata(path).map_err(|e| io_error("cannot read", path, e))?;
    let content = fs::read(path).map_err(|e| io_error("cannot read", path, e))?;
    let mut target = backup.to_path_buf();
    for n in 1.. {
        if fs::symlink_metadata(&target).is_err() {
            break;
        }
        target = PathBuf::from(format!("{}.{n}", backup.display()));
    }
    write_atomic(&target, &content, meta.mode() & 0o7777, meta.uid(), meta.gid())?;
    Ok(target)
}

/// Restores `path` from `backup` (bytes, mode, owner) and removes the backup.
fn restore(path: &Path, backup: &Path) -> Result<()> {
    let meta = fs::metadata(backup).map_err(|e| io_error("cannot read the backup", backup, e))?;
    let content = fs::read(backup).map_err(|e| io_error("cannot read the backup", backup, e))?;
    write_atomic(path, &content, meta.mode() & 0o7777, meta.uid(), meta.gid())?;
    fs::remove_file(backup).map_err(|e| io_error("cannot remove the backup", backup, e))
}

fn write_file(file: &RenderedFile, change: &Change, journal: &mut Vec<Undo>, report: &mut Report) -> Result<String> {
    let gid = gid_of(&file.group)?;
    match change {
        Change::Overwrite => {
            let before = snapshot(&file.path)?;
            // Same mode and owner as now: only the content is ours to change.
            let (mode, uid, gid) = match &before {
                Snapshot::File { mode, uid, gid, .. } => (*mode, *uid, *gid),
                _ => (file.mode, 0, gid),
            };
            journal.push(Undo::PutBack { path: file.path.clone(), snapshot: before });
            write_atomic(&file.path, file.content.as_bytes(), mode, uid, gid)?;
            Ok(format!("wrote {}", file.path.display()))
        }
        Change::Create => {
            write_atomic(&file.path, file.content.as_bytes(), file.mode, 0, gid)?;
            journal.push(Undo::RemoveFile(file.path.clone()));
            Ok(format!("wrote {} (new)", file.path.display()))
        }
        Change::Replace { backup } => {
            let backup = make_backup(&file.path, backup)?;
            journal.push(Undo::Restore { path: file.path.clone(), backup: backup.clone() });
            write_atomic(&file.path, file.content.as_bytes(), file.mode, 0, gid)?;
            report.backups.push(backup.clone());
            Ok(format!("wrote {} (previous version kept as {})", file.path.display(), backup.display()))
        }
    }
}

fn create_dirs(path: &Path, journal: &mut Vec<Undo>) -> Result<()> {
    let mut missing = Vec::new();
    let mut current = Some(path);
    while let Some(dir) = current {
        if dir.exists() {
            break;
        }
        missing.push(dir.to_path_buf());
        current = dir.parent();
    }
    for dir in missing.into_iter().rev() {
        fs::create_dir(&dir).map_err(|e| io_error("cannot create the folder", &dir, e))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| io_error("cannot set the mode of", &dir, e))?;
        journal.push(Undo::RemoveDir(dir));
    }
    Ok(())
}

/// Shows elapsed seconds on the terminal while a slow step runs (after one
/// second, so quick steps stay quiet). Off when stderr is not a terminal.
struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(label: &str) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        let thread = io::stderr().is_terminal().then(|| {
            let (done, label) = (done.clone(), label.to_string());
            std::thread::spawn(move || {
                let start = Instant::now();
                let frames = ['|', '/', '-', '\\'];
                let mut shown = false;
                for tick in 0.. {
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    if start.elapsed() >= Duration::from_secs(1) {
                        eprint!("\r    {} {label} ({} s)", frames[tick % 4], start.elapsed().as_secs());
                        shown = true;
                    }
                    std::thread::sleep(Duration::from_millis(120));
                }
                if shown {
                    eprint!("\r\x1b[2K");
                }
            })
        });
        Progress { done, thread }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run_checked(runner: &mut dyn Runner, command: &Command, what: &str) -> Result<()> {
    let progress = Progress::start(what);
    let result = runner.run(command);
    drop(progress);
    if result.success {
        Ok(())
    } else {
        let output = result.output.trim();
        Err(Error::failed(format!(
            "{what} failed: `{command}`\n{}",
            if output.is_empty() { "(no output)" } else { output }
        )))
    }
}

/// Worker processes of the nginx master named in `pid_file`.
fn nginx_workers(pid_file: &Path) -> Vec<u32> {
    let Some(master) = crate::facts::read_pid(pid_file) else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            // Field 4 of /proc/PID/stat is the parent; the name in field 2 may contain spaces.
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string))
                })
                .flatten()
                .is_some_and(|ppid| ppid == master.to_string())
        })
        .collect()
}

/// `nginx -s reload` returns before the new workers take over; waits (up to
/// `limit`) until the old ones have left, so the check that follows talks to
/// the new configuration. Old workers finishing a long stream may outlive it.
fn wait_for_old_workers(old: &[u32], limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if old.iter().all(|pid| is_exiting(*pid)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A worker that is gone, or "shutting down", accepts no new connections.
fn is_exiting(pid: u32) -> bool {
    crate::facts::process_gone(pid)
        || fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains("shutting down"))
}

/// Undoes the journal in reverse. Returns what could not be undone.
fn roll_back(journal: Vec<Undo>, hooks: &ServiceHooks, runner: &mut dyn Runner, out: &mut dyn Write) -> Vec<String> {
    let mut failures = Vec::new();
    let mut after_files = Vec::new();
    for undo in journal.into_iter().rev() {
        let result = match &undo {
            Undo::RemoveFile(path) | Undo::RemoveLink(path) => {
                fs::remove_file(path).map_err(|e| io_error("cannot remove", path, e))
            }
            Undo::Restore { path, backup } => restore(path, backup),
            // Another program (certbot, say) may have put something in a
            // folder we made: then it stays, which is not a failed rollback.
            Undo::RemoveDir(path) if fs::read_dir(path).is_ok_and(|mut d| d.next().is_some()) => {
                let _ = writeln!(out, "  kept folder {} (something else uses it now)", path.display());
                continue;
            }
            Undo::RemoveDir(path) => fs::remove_dir(path).map_err(|e| io_error("cannot remove the folder", path, e)),
            Undo::PutBack { path, snapshot } => put_back(path, snapshot),
            Undo::CreateDir(path) => fs::create_dir(path)
                .and_then(|_| fs::set_permissions(path, fs::Permissions::from_mode(0o755)))
                .map_err(|e| io_error("cannot recreate the folder", path, e)),
            Undo::ReloadAgain(_) | Undo::Stop(_) => {
                after_files.push(undo);
                continue;
            }
        };
        match result {
            Ok(()) => {
                let _ = writeln!(out, "  undone: {}", describe_undo(&undo));
            }
            Err(e) => failures.push(e.message),
        }
    }
    // Service actions run once the old files are back.
    for undo in after_files {
        let (command, what, result) = match &undo {
            Undo::ReloadAgain(c) => {
                let what = "reload with the previous configuration";
                (c, what, run_checked(runner, c, what))
            }
            Undo::Stop(c) => {
                let what = "stop the proxy we had started";
                (c, what, stop_and_wait(runner, c, hooks.pid_file.as_deref(), what))
            }
            _ => unreachable!("only service actions are deferred"),
        };
        match result {
            Ok(()) => {
                let _ = writeln!(out, "  undone: {what} (`{command}`)");
            }
            Err(e) => failures.push(e.message),
        }
    }
    failures
}

fn describe_undo(undo: &Undo) -> String {
    match undo {
        Undo::RemoveFile(p) => format!("removed new file {}", p.display()),
        Undo::RemoveLink(p) => format!("removed link {}", p.display()),
        Undo::RemoveDir(p) => format!("removed new folder {}", p.display()),
        Undo::Restore { path, .. } | Undo::PutBack { path, .. } => format!("restored {}", path.display()),
        Undo::CreateDir(p) => format!("recreated folder {}", p.display()),
        Undo::ReloadAgain(c) | Undo::Stop(c) => c.to_string(),
    }
}

fn acme_reachability_hint(domain: &str, http_port: u16) -> String {
    let port = if http_port == 80 { String::new() } else { format!(":{http_port}") };
    format!(
        "The ACME server must reach http://{domain}{port}/.well-known/acme-challenge/: is port {http_port} open to the internet, \
         and does {domain} resolve to this server?"
    )
}

/// certbot's failure in words: the likely cause first, then the lines of
/// its output that carry the detail.
pub fn explain_certbot_failure(output: &str, domain: &str, http_port: u16) -> String {
    let details: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with("Type:") || l.starts_with("Detail:") || l.starts_with("Domain:") || l.contains("Error")
        })
        .collect();
    let lower = output.to_lowercase();
    let cause = if ["connection refused", "timeout", "no such host", "nxdomain", "no valid ip", "connection reset"]
        .iter()
        .any(|needle| lower.contains(needle))
    {
        format!(
            "the ACME server could not reach this server for {domain}. {}",
            acme_reachability_hint(domain, http_port)
        )
    } else if lower.contains("unauthorized") || lower.contains("404") {
        format!(
            "the ACME server reached {domain} but did not find the challenge file: does {domain} point to this server, \
             and does nothing else answer on port {http_port}?"
        )
    } else if lower.contains("ratelimit") || lower.contains("too many") {
        "the ACME server's rate limit was hit: wait, or test with https.acme_directory set to Let's Encrypt staging"
            .to_string()
    } else if lower.contains("certificate verify failed") || lower.contains("ssl") {
        "certbot could not connect securely to the ACME server: for a private ACME server, set https.acme_ca_root"
            .to_string()
    } else {
        format!("certbot could not obtain a certificate for {domain}")
    };
    let detail = if details.is_empty() { output.trim().to_string() } else { details.join("\n") };
    format!("{cause}\ncertbot said:\n{detail}")
}

/// Polls until something at `address` completes a TLS handshake for
/// `domain` (Caddy has no certificate to offer until ACME succeeded). Trust
/// is not judged here; `check` does that afterwards. Stops early at the
/// first ACME error Caddy logs for `domain` after the wait began.
fn await_certificate(
    domain: &str,
    address: std::net::SocketAddr,
    limit: Duration,
    log: Option<&Path>,
) -> std::result::Result<(), String> {
    let start = Instant::now();
    let since = SystemTime::now();
    let client = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve(domain, address)
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("https://{domain}:{}/", address.port());
    while start.elapsed() < limit {
        if client.get(&url).send().is_ok() {
            return Ok(());
        }
        if let Some(error) = log.and_then(|log| acme_error_since(log, domain, since)) {
            return Err(error);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(match log {
        Some(_) => format!("no certificate after {} s, and no ACME error in Caddy's log", limit.as_secs()),
        None => {
            format!("no certificate after {} s; Caddy's log (journalctl -u caddy) has the ACME error", limit.as_secs())
        }
    })
}

/// The first error Caddy logged about `domain` since `since`, in its words.
fn acme_error_since(log: &Path, domain: &str, since: SystemTime) -> Option<String> {
    let since = since.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs_f64();
    let text = fs::read_to_string(log).ok()?;
    text.lines().filter(|l| l.contains("\"level\":\"error\"") && l.contains(&format!("\"{domain}\""))).find_map(
        |line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            if v.get("ts")?.as_f64()? < since {
                return None;
            }
            let msg = v.get("msg")?.as_str()?;
            let error = v.get("error").and_then(|e| e.as_str()).unwrap_or("");
            Some(format!("{msg}: {error}"))
        },
    )
}

/// Asks the site without credentials until it answers 401 with a Basic
/// challenge. A proxy that has just started or reloaded may refuse or
/// answer with its old configuration for a moment, so other answers are
/// asked again for a few seconds before they count.
fn verify_protected(url: &str, connect: std::net::IpAddr) -> Result<()> {
    let start = Instant::now();
    loop {
        let answer = crate::check::unauthenticated_answer(url, Some(connect));
        if answer.as_ref().is_ok_and(|a| a.asks_for_basic()) {
            return Ok(());
        }
        if start.elapsed() >= Duration::from_secs(10) {
            let what = match answer {
                Ok(a) if a.status == 401 => "401 without a Basic challenge".to_string(),
                Ok(a) if (200..300).contains(&a.status) => format!("{}: the site is OPEN TO ANYONE", a.status),
                Ok(a) => a.status.to_string(),
                Err(why) => why,
            };
            return Err(Error::failed(format!(
                "{url} (connected to {connect}) does not ask for credentials: a request without them got {what}, expected 401"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What apply needs to know about the running proxy beyond the plan.
pub struct ServiceHooks {
    pub proxy: Proxy,
    /// The proxy's PID file: to wait for nginx's old workers after a reload,
    /// and for the process to exit after a stop.
    pub pid_file: Option<PathBuf>,
    /// How to stop the proxy if we started it and a later step fails.
    pub stop: Option<Command>,
}

impl ServiceHooks {
    pub fn new(proxy: Proxy, paths: &crate::paths::Paths, stop: Option<Command>) -> ServiceHooks {
        let pid_file = match proxy {
            Proxy::Nginx => paths.nginx_pid.clone(),
            Proxy::Caddy => paths.caddy_pid.clone(),
        };
        ServiceHooks { proxy, pid_file: Some(pid_file), stop }
    }
}

/// Stop commands return before the process has finished (nginx's quit is
/// graceful): wait, so that what follows sees it gone and its ports free.
fn stop_and_wait(runner: &mut dyn Runner, command: &Command, pid_file: Option<&Path>, what: &str) -> Result<()> {
    let pid = pid_file.and_then(crate::facts::read_pid);
    run_checked(runner, command, what)?;
    if let Some(pid) = pid {
        let start = Instant::now();
        while !crate::facts::process_gone(pid) && start.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// Executes `plan`. On failure, rolls back and returns the error (with what
/// was undone, and what could not be).
pub fn apply(plan: &Plan, hooks: &ServiceHooks, runner: &mut dyn Runner, out: &mut dyn Write) -> Result<Report> {
    let mut journal = Vec::new();
    let mut report = Report::default();
    for step in &plan.steps {
        let result = run_step(step, hooks, runner, &mut journal, &mut report, out);
        if let Err(error) = result {
            let _ = writeln!(out, "  failed: {}", error.message.lines().next().unwrap_or_default());
            if journal.is_empty() {
                return Err(Error::failed(format!("{error}\nNothing had been changed.")));
            }
            let _ = writeln!(out, "Rolling back:");
            let failures = roll_back(journal, hooks, runner, out);
            return Err(if failures.is_empty() {
                Error::failed(format!("{error}\nEvery change was rolled back; the previous files are in place."))
            } else {
                Error::rollback_incomplete(format!(
                    "{error}\nThe rollback did not complete; check these by hand:\n  - {}",
                    failures.join("\n  - ")
                ))
            });
        }
        if step.changes_files() {
            report.changed += 1;
        }
    }
    Ok(report)
}

fn run_step(
    step: &Step,
    hooks: &ServiceHooks,
    runner: &mut dyn Runner,
    journal: &mut Vec<Undo>,
    report: &mut Report,
    out: &mut dyn Write,
) -> Result<()> {
    let announce = |out: &mut dyn Write, text: &str| {
        let _ = writeln!(out, "  … {text}");
        let _ = out.flush();
    };
    match step {
        Step::Install { command } => {
            announce(out, &format!("installing: `{command}` (this can take a minute)"));
            let start = Instant::now();
            run_checked(runner, command, "installing the proxy")?;
            let _ = writeln!(out, "  ✓ installed ({} s)", start.elapsed().as_secs());
        }
        Step::CreateDir { path } => {
            create_dirs(path, journal)?;
            let _ = writeln!(out, "  ✓ created {}", path.display());
        }
        Step::Write { file, change } => {
            let done = write_file(file, change, journal, report)?;
            let _ = writeln!(out, "  ✓ {done}");
        }
        Step::Link { link, target } => {
            std::os::unix::fs::symlink(target, link).map_err(|e| io_error("cannot create the link", link, e))?;
            journal.push(Undo::RemoveLink(link.clone()));
            let _ = writeln!(out, "  ✓ linked {} -> {}", link.display(), target.display());
        }
        Step::Validate { command } => {
            announce(out, &format!("validating: `{command}`"));
            run_checked(runner, command, "validating the configuration")?;
            let _ = writeln!(out, "  ✓ configuration is valid");
        }
        Step::Start { command } => {
            announce(out, &format!("starting: `{command}`"));
            run_checked(runner, command, "starting the proxy")?;
            if let Some(stop) = &hooks.stop {
                journal.push(Undo::Stop(stop.clone()));
            }
            let _ = writeln!(out, "  ✓ started");
        }
        Step::Reload { command } => {
            announce(out, &format!("reloading: `{command}`"));
            let old_workers = match (hooks.proxy, &hooks.pid_file) {
                (Proxy::Nginx, Some(pid_file)) => nginx_workers(pid_file),
                _ => Vec::new(),
            };
            run_checked(runner, command, "reloading the proxy")?;
            journal.push(Undo::ReloadAgain(command.clone()));
            wait_for_old_workers(&old_workers, Duration::from_secs(10));
            let _ = writeln!(out, "  ✓ reloaded");
        }
        Step::Enable { command } => {
            run_checked(runner, command, "enabling the service at boot")?;
            let _ = writeln!(out, "  ✓ enabled at boot");
        }
        Step::Remove { path } => {
            let before = snapshot(path)?;
            fs::remove_file(path).map_err(|e| io_error("cannot remove", path, e))?;
            journal.push(Undo::PutBack { path: path.clone(), snapshot: before });
            let _ = writeln!(out, "  ✓ removed {}", path.display());
        }
        Step::RemoveDir { path } => match fs::remove_dir(path) {
            Ok(()) => {
                journal.push(Undo::CreateDir(path.clone()));
                let _ = writeln!(out, "  ✓ removed folder {}", path.display());
            }
            // Something else lives there now: keeping the folder is right.
            Err(_) if fs::read_dir(path).is_ok_and(|mut d| d.next().is_some()) => {
                let _ = writeln!(out, "  - kept folder {} (not empty)", path.display());
            }
            Err(e) => return Err(io_error("cannot remove the folder", path, e)),
        },
        Step::Restore { path, from } => {
            let (current, original) = (snapshot(path)?, snapshot(from)?);
            let Snapshot::File { content, mode, uid, gid } = &original else {
                return Err(Error::failed(format!(
                    "the backup {} is missing; cannot restore {}",
                    from.display(),
                    path.display()
                )));
            };
            journal.push(Undo::PutBack { path: path.clone(), snapshot: current });
            write_atomic(path, content, *mode, *uid, *gid)?;
            journal.push(Undo::PutBack { path: from.clone(), snapshot: original });
            fs::remove_file(from).map_err(|e| io_error("cannot remove the backup", from, e))?;
            let _ = writeln!(out, "  ✓ restored {} (the file that was there before)", path.display());
        }
        Step::Stop { command } => {
            announce(out, &format!("stopping: `{command}`"));
            stop_and_wait(runner, command, hooks.pid_file.as_deref(), "stopping the proxy")?;
            let _ = writeln!(out, "  ✓ stopped");
        }
        Step::ObtainCertificate { command, domain, http_port } => {
            announce(out, &format!("obtaining a certificate for {domain} with certbot"));
            let progress = Progress::start("obtaining the certificate");
            let result = runner.run(command);
            drop(progress);
            if !result.success {
                return Err(Error::failed(explain_certbot_failure(&result.output, domain, *http_port)));
            }
            let _ = writeln!(out, "  ✓ certificate obtained for {domain}");
        }
        Step::AwaitCertificate { domain, address, timeout_secs, log } => {
            announce(out, &format!("waiting for Caddy to obtain a certificate for {domain}"));
            let progress = Progress::start("waiting for the certificate");
            let result = await_certificate(domain, *address, Duration::from_secs(*timeout_secs), log.as_deref());
            drop(progress);
            if let Err(why) = result {
                return Err(Error::failed(format!(
                    "Caddy did not obtain a certificate for {domain}: {why}\n{}",
                    acme_reachability_hint(domain, 80)
                )));
            }
            let _ = writeln!(out, "  ✓ Caddy serves a certificate for {domain}");
        }
        Step::RemoveCache { path } => {
            fs::remove_dir_all(path).map_err(|e| io_error("cannot remove the cache", path, e))?;
            let _ = writeln!(out, "  ✓ removed the cache of password checks");
        }
        Step::RemoveStaleSocket { path } => {
            // Judged again now: a proxy that stopped or reloaded since has
            // removed its socket itself, and one that listens keeps it.
            match crate::facts::socket_state(path) {
                crate::facts::SocketState::Stale => {
                    fs::remove_file(path).map_err(|e| io_error("cannot remove the stale socket", path, e))?;
                    let _ = writeln!(out, "  ✓ removed the stale socket {}", path.display());
                }
                crate::facts::SocketState::Missing => {
                    let _ = writeln!(out, "  - the socket {} is gone already", path.display());
                }
                _ => {
                    let _ = writeln!(out, "  - kept the socket {} (something listens on it)", path.display());
                }
            }
        }
        Step::Verify { url, connect } => {
            announce(out, &format!("verifying that {url} asks for credentials"));
            verify_protected(url, *connect)?;
            let _ = writeln!(out, "  ✓ {url} asks for credentials (401)");
        }
        Step::DeleteCertificate { command } => {
            run_checked(runner, command, "deleting the certificate")?;
            let _ = writeln!(out, "  ✓ deleted the certificate");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Role;
    use crate::runner::RunOutput;

    /// Records every command; fails those whose program is in `failing`.
    struct FakeRunner {
        failing: Vec<&'static str>,
        ran: Vec<String>,
    }

    impl Runner for FakeRunner {
        fn run(&mut self, command: &Command) -> RunOutput {
            self.ran.push(command.to_string());
            RunOutput { success: !self.failing.contains(&command.program.as_str()), output: "boom".into() }
        }
    }

    fn file(path: &Path, content: &str) -> RenderedFile {
        RenderedFile {
            path: path.into(),
            role: Role::Site,
            mode: 0o644,
            group: "root".into(),
            secret: false,
            content: content.into(),
        }
    }

    fn hooks() -> ServiceHooks {
        ServiceHooks { proxy: Proxy::Nginx, pid_file: None, stop: Some(Command::new("stop-proxy", &[])) }
    }

    #[test]
    fn certbot_failures_are_explained() {
        let output = "Certbot failed to authenticate some domains (authenticator: webroot).\n  Domain: ollama.test\n  Type:   connection\n  Detail: Get \"http://ollama.test:5002/.well-known/acme-challenge/x\": dial tcp 127.0.0.254:5002: connect: connection refused\n\nHint: ...";
        let text = explain_certbot_failure(output, "ollama.test", 5002);
        assert!(text.starts_with("the ACME server could not reach this server for ollama.test."), "{text}");
        assert!(text.contains("http://ollama.test:5002/.well-known/acme-challenge/: is port 5002 open"), "{text}");
        assert!(text.contains("Detail: Get"), "{text}");
        let text = explain_certbot_failure("Type: unauthorized\nDetail: 404", "a.b", 80);
        assert!(text.contains("did not find the challenge file"), "{text}");
    }

    #[test]
    fn a_failure_after_a_reload_restores_files_and_reloads_again() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        fs::write(&site, "old").unwrap();
        let backup = dir.path().join("site.bak-1");
        let plan = Plan {
            proxy: Proxy::Nginx,
            findings: vec![],
            steps: vec![
                Step::Write { file: file(&site, "new"), change: Change::Replace { backup: backup.clone() } },
                Step::Validate { command: Command::new("check-config", &[]) },
                Step::Reload { command: Command::new("reload-proxy", &[]) },
                Step::Enable { command: Command::new("enable-proxy", &[]) },
            ],
        };
        let mut runner = FakeRunner { failing: vec!["enable-proxy"], ran: vec![] };
        let mut out = Vec::new();
        let err = apply(&plan, &hooks(), &mut runner, &mut out).unwrap_err();
        assert_eq!(err.kind, crate::error::Kind::Failed);
        assert!(err.message.contains("rolled back"), "{err}");
        assert_eq!(fs::read_to_string(&site).unwrap(), "old");
        assert!(!backup.exists(), "the backup should be consumed by the restore");
        assert_eq!(runner.ran, ["check-config", "reload-proxy", "enable-proxy", "reload-proxy"]);
    }

    #[test]
    fn a_failed_start_removes_new_files_and_does_not_stop_anything() {
        let dir = tempfile::tempdir().unwrap();
        let new_dir = dir.path().join("a/b");
        let site = new_dir.join("site");
        let plan = Plan {
            proxy: Proxy::Caddy,
            findings: vec![],
            steps: vec![
                Step::CreateDir { path: new_dir.clone() },
                Step::Write { file: file(&site, "new"), change: Change::Create },
                Step::Start { command: Command::new("start-proxy", &[]) },
            ],
        };
        let mut runner = FakeRunner { failing: vec!["start-proxy"], ran: vec![] };
        let err = apply(&plan, &hooks(), &mut runner, &mut Vec::new()).unwrap_err();
        assert!(err.message.contains("start-proxy"), "{err}");
        assert!(!dir.path().join("a").exists(), "created folders are removed again");
        assert_eq!(runner.ran, ["start-proxy"]);
    }

    #[test]
    fn a_failure_after_a_start_stops_the_proxy_again() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        let plan = Plan {
            proxy: Proxy::Nginx,
            findings: vec![],
            steps: vec![
                Step::Link { link: link.clone(), target: "/nonexistent".into() },
                Step::Start { command: Command::new("start-proxy", &[]) },
                Step::Enable { command: Command::new("enable-proxy", &[]) },
            ],
        };
        let mut runner = FakeRunner { failing: vec!["enable-proxy"], ran: vec![] };
        apply(&plan, &hooks(), &mut runner, &mut Vec::new()).unwrap_err();
        assert!(fs::symlink_metadata(&link).is_err());
        assert_eq!(runner.ran, ["start-proxy", "enable-proxy", "stop-proxy"]);
    }
}
