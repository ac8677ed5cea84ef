//! Carries out a `Plan`: the same steps `--dry-run` prints, in order, and
//! nothing else. Each done step's undo is journaled; if a step fails, the
//! journal runs newest first (file undos first, then the proxy's, once the
//! old files are back), so the previous files come back byte for byte and
//! the proxy is reloaded with them. Every effect goes through `System`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::plan::{
    Action, Change, Command, EXIT_LIMIT, OLD_WORKERS_LIMIT, Plan, Purpose, Snapshot, Step, VERIFY_LIMIT,
};
use crate::proxy::ProxyKind;
use crate::style;
use crate::system::{Existing, HttpRequest, Ownership, SocketState, System, Trust};

/// What apply did, for the summary.
#[derive(Debug, Default)]
pub struct Report {
    pub backups: Vec<PathBuf>,
    pub changed: usize,
}

/// What an action did, in words.
enum Outcome {
    Done(String),
    /// Nothing needed doing after all (a folder that holds something now,
    /// a socket that is gone already): there is nothing to undo either.
    Skipped(String),
}

fn io<'a>(what: &'a str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(what, path, e)
}

fn gid_of(system: &dyn System, group: &str) -> Result<u32> {
    system.group_id(group).ok_or_else(|| {
        Error::failed(format!(
            "the group {group} does not exist; it should have come with the proxy package (or set file_group in the answers file)"
        ))
    })
}

fn current_file(system: &dyn System, path: &Path, what: &str) -> Result<Snapshot> {
    Snapshot::of(&system.inspect(path))
        .ok_or_else(|| Error::failed(format!("{} is not a regular file any more; cannot {what}", path.display())))
}

/// Runs `command`; a failure is an error that names it.
fn run(system: &dyn System, command: &Command, purpose: &str) -> Result<String> {
    let result = system.run(command);
    if result.success {
        Ok(result.output)
    } else {
        Err(Error::Command { purpose: purpose.to_string(), command: command.to_string(), output: result.output })
    }
}

/// A validator names the file an error is in (`in /etc/nginx/x:3`, Caddy's
/// `/etc/caddy/x:3`): when that file is not one of ours, say so, since
/// fixing our answers will not help.
fn with_culprit(error: Error, ours: &[PathBuf]) -> Error {
    let Error::Command { purpose, command, output } = error else { return error };
    let culprit = output.split_whitespace().find_map(|word| {
        let (path, line) = word.trim_matches(|c: char| "\"'(),".contains(c)).rsplit_once(':')?;
        (path.starts_with('/') && line.chars().all(|c| c.is_ascii_digit()) && !line.is_empty()).then_some(path)
    });
    match culprit.filter(|path| !ours.iter().any(|o| o == Path::new(path))) {
        Some(path) => Error::Command {
            purpose,
            command,
            output: format!(
                "{output}\nThe error is in {path}, which is not ollama-secure's: the proxy loads no configuration \
                 while it is there; fix or disable it, then run this again."
            ),
        },
        None => Error::Command { purpose, command, output },
    }
}

/// Waits until `done` holds, checking every 50 ms, for at most `limit`.
fn wait_until(system: &dyn System, limit: Duration, done: impl Fn() -> bool) -> bool {
    let start = system.now();
    loop {
        if done() {
            return true;
        }
        if system.now().duration_since(start).unwrap_or_default() >= limit {
            return false;
        }
        system.sleep(Duration::from_millis(50));
    }
}

fn write(
    system: &dyn System,
    file: &crate::render::RenderedFile,
    change: &Change,
    report: &mut Report,
) -> Result<String> {
    let path = file.path.as_path();
    let content = file.content.as_bytes();
    let ours = || -> Result<Ownership> { Ok(Ownership { mode: file.mode, uid: 0, gid: gid_of(system, &file.group)? }) };
    match change {
        Change::Create => {
            system.write_atomic(path, content, ours()?).map_err(io("cannot write", path))?;
            Ok(format!("wrote {} (new)", path.display()))
        }
        Change::Replace { backup } => {
            let ownership = ours()?;
            let current = current_file(system, path, "keep it as a backup")?;
            replace(system, path, content, ownership, backup, &current, report)
        }
        // The user's file: its mode and owner stay as they are.
        Change::Edit { backup, previous } => {
            replace(system, path, content, previous.ownership, backup, previous, report)
        }
        Change::Overwrite { previous } => {
            // Same mode and owner as before: only the content is ours to change.
            system.write_atomic(path, content, previous.ownership).map_err(io("cannot write", path))?;
            Ok(format!("wrote {}", path.display()))
        }
    }
}

/// Keeps `current` at `backup` (the name the plan showed, or nothing: a
/// name that is taken is refused), then writes `content`. If the write
/// fails (a full disk), the file is still the old one: the backup goes
/// again and nothing is left to undo.
fn replace(
    system: &dyn System,
    path: &Path,
    content: &[u8],
    ownership: Ownership,
    backup: &Path,
    current: &Snapshot,
    report: &mut Report,
) -> Result<String> {
    system.write_new(backup, &current.content, current.ownership).map_err(io("cannot make the backup", backup))?;
    if let Err(e) = system.write_atomic(path, content, ownership) {
        let _ = system.remove_file(backup);
        return Err(Error::io(
            format!("cannot write (it is unchanged; its backup {} was removed)", backup.display()),
            path,
            e,
        ));
    }
    report.backups.push(backup.to_path_buf());
    Ok(format!("wrote {} (previous version kept as {})", path.display(), backup.display()))
}

/// nginx's workers that were running before a reload: gone, or "shutting
/// down", they accept no new connections.
fn old_workers_gone(system: &dyn System, old: &[u32]) -> bool {
    old.iter().all(|pid| system.process(*pid).is_none_or(|p| p.command_line.contains("shutting down")))
}

/// Runs a command for its purpose. Long because it is one arm per
/// `Purpose`, each a few lines; splitting it would only move the match.
fn run_action(system: &dyn System, command: &Command, purpose: &Purpose, out: &mut dyn Write) -> Result<Outcome> {
    let announce = |out: &mut dyn Write, text: String| {
        let _ = writeln!(out, "  {} {text}", style::stdout().ellipsis());
        let _ = out.flush();
    };
    let done = |text: &str| Ok(Outcome::Done(text.to_string()));
    match purpose {
        Purpose::Install => {
            announce(out, format!("installing: `{command}` (this can take a minute)"));
            let start = system.now();
            run(system, command, "installing the proxy")?;
            Ok(Outcome::Done(format!("installed ({})", took(system, start))))
        }
        Purpose::Validate { ours, empty_pid_file } => {
            announce(out, format!("validating: `{command}`"));
            let pid_file = empty_pid_file.as_deref().filter(|p| system.inspect(p) == Existing::Missing);
            let result = run(system, command, "validating the configuration").map_err(|e| with_culprit(e, ours));
            if let Some(pid_file) = pid_file
                && matches!(system.inspect(pid_file), Existing::File { content, .. } if content.is_empty())
            {
                system.remove_file(pid_file).map_err(io("cannot remove the empty PID file", pid_file))?;
            }
            result?;
            done("configuration is valid")
        }
        Purpose::Start => {
            announce(out, format!("starting: `{command}`"));
            run(system, command, "starting the proxy")?;
            done("started")
        }
        Purpose::Reload { pid_file, wait_for_old_workers } => {
            announce(out, format!("reloading: `{command}`"));
            let master = crate::system::read_pid(system, pid_file);
            let old: Vec<u32> = match master {
                Some(pid) if *wait_for_old_workers => system.children(pid).iter().map(|p| p.pid).collect(),
                _ => Vec::new(),
            };
            run(system, command, "reloading the proxy")?;
            // Old workers finishing a long stream may outlive the wait.
            wait_until(system, OLD_WORKERS_LIMIT, || old_workers_gone(system, &old));
            done("reloaded")
        }
        Purpose::Stop { pid_file } => {
            announce(out, format!("stopping: `{command}`"));
            let pid = crate::system::read_pid(system, pid_file).filter(|pid| system.process(*pid).is_some());
            match run(system, command, "stopping the proxy") {
                // Nothing was running (after a reboot, say): nothing to stop.
                Err(_) if pid.is_none() => {
                    return Ok(Outcome::Skipped(format!("not running (no process in {})", pid_file.display())));
                }
                result => drop(result?),
            }
            // What follows (removing the folders it used) needs it gone.
            if let Some(pid) = pid
                && !wait_until(system, EXIT_LIMIT, || system.process(pid).is_none())
            {
                return Err(Error::failed(format!(
                    "the proxy (PID {pid}) is still running {} s after `{command}`",
                    EXIT_LIMIT.as_secs()
                )));
            }
            done("stopped")
        }
        Purpose::Enable => {
            run(system, command, "enabling the service at boot")?;
            done("enabled at boot")
        }
        Purpose::Disable => {
            run(system, command, "disabling the service at boot")?;
            done("no longer started at boot")
        }
        Purpose::ReloadUnits => {
            run(system, command, "reloading systemd's units")?;
            done("systemd read the changed units")
        }
        Purpose::RestartOllama => {
            announce(out, format!("restarting Ollama: `{command}`"));
            run(system, command, "restarting Ollama")?;
            done("Ollama restarted")
        }
        Purpose::ObtainCertificate { domain, http_port } => {
            announce(out, format!("obtaining a certificate for {domain} with certbot"));
            let start = system.now();
            let result = system.run(command);
            if !result.success {
                return Err(Error::failed(crate::certbot::explain_failure(&result.output, domain, *http_port)));
            }
            Ok(Outcome::Done(format!("certificate obtained for {domain} ({})", took(system, start))))
        }
        Purpose::DeleteCertificate => {
            run(system, command, "deleting the certificate")?;
            done("deleted the certificate")
        }
        Purpose::ValidateBans { ours } => {
            announce(out, format!("validating fail2ban's configuration: `{command}`"));
            run(system, command, "validating fail2ban's configuration").map_err(|e| with_culprit(e, ours))?;
            done("fail2ban's configuration is valid")
        }
        Purpose::VerifyBans => {
            // The server systemd just started answers once it has read its
            // jails (`systemctl` returns before that).
            let last = std::cell::RefCell::new(None);
            let answered = wait_until(system, crate::ban::VERIFY_LIMIT, || {
                let result = system.run(command);
                let success = result.success;
                *last.borrow_mut() = Some(result);
                success
            });
            if !answered {
                return Err(Error::Command {
                    purpose: "asking fail2ban for our jail".into(),
                    command: command.to_string(),
                    output: last.into_inner().map(|r| r.output).unwrap_or_default(),
                });
            }
            done("fail2ban runs the ollama-secure jail")
        }
        Purpose::StartBans => {
            announce(out, format!("starting fail2ban: `{command}`"));
            run(system, command, "starting fail2ban")?;
            done("fail2ban started")
        }
        Purpose::ReloadBans => {
            run(system, command, "reloading fail2ban")?;
            done("fail2ban read its jails again")
        }
        Purpose::StopBans => {
            let result = system.run(command);
            // Nothing was running (after a reboot, say): nothing to stop.
            if !result.success && result.output.contains("Is fail2ban running?") {
                return Ok(Outcome::Skipped("fail2ban is not running".to_string()));
            }
            if !result.success {
                return Err(Error::Command {
                    purpose: "stopping fail2ban".into(),
                    command: command.to_string(),
                    output: result.output,
                });
            }
            done("fail2ban stopped")
        }
        Purpose::Mount => {
            run(system, command, "mounting a tmpfs")?;
            done("mounted a private tmpfs")
        }
        Purpose::Unmount { at } if !system.is_mountpoint(at) => {
            Ok(Outcome::Skipped(format!("nothing is mounted at {} (any more)", at.display())))
        }
        Purpose::Unmount { .. } => {
            run(system, command, "unmounting the tmpfs")?;
            done("unmounted the tmpfs")
        }
    }
}

/// Polls until something at `address` completes a TLS handshake for
/// `domain` (trust is judged by `check` afterwards); stops early at the
/// first ACME error the proxy logs for `domain` after the wait began.
fn await_certificate(
    system: &dyn System,
    proxy: ProxyKind,
    domain: &str,
    address: std::net::SocketAddr,
    limit: Duration,
    log: Option<&Path>,
) -> std::result::Result<(), String> {
    let since = system.now();
    let url = reqwest::Url::parse(&format!("https://{domain}:{}/", address.port())).map_err(|e| e.to_string())?;
    let request = HttpRequest {
        timeout: Duration::from_secs(5),
        resolve: vec![(domain.to_string(), address.ip())],
        trust: Trust::AcceptAny,
        ..HttpRequest::get(url)
    };
    loop {
        if system.http(&request).is_ok() {
            return Ok(());
        }
        if let Some(log) = log
            && let Existing::File { content, .. } = system.inspect(log)
            && let Some(error) = proxy.module().acme_error_in_log(&String::from_utf8_lossy(&content), domain, since)
        {
            return Err(error);
        }
        if system.now().duration_since(since).unwrap_or_default() >= limit {
            return Err(match log {
                Some(_) => format!("no certificate after {} s, and no ACME error in its log", limit.as_secs()),
                None => format!(
                    "no certificate after {} s; its log (journalctl -u {proxy}) has the ACME error",
                    limit.as_secs()
                ),
            });
        }
        system.sleep(Duration::from_millis(250));
    }
}

/// What the answer to a request without credentials must be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Proof {
    /// 401 with a Basic challenge.
    AsksForCredentials,
    /// The proxy's own 403 for an address outside `allow_from`.
    RefusesOutsider,
}

/// Asks the site without credentials until it answers as `proof` says. A
/// proxy that has just started or reloaded may refuse or answer with its
/// old configuration for a moment, so other answers are asked again for a
/// few seconds before they count.
fn verify(system: &dyn System, url: &str, connect: std::net::IpAddr, proof: Proof) -> Result<()> {
    let request =
        crate::facts::site_request(url, connect).ok_or_else(|| Error::failed(format!("{url} is not a URL")))?;
    let start = system.now();
    loop {
        let answer = system.http(&request);
        let proven = match proof {
            Proof::AsksForCredentials => answer.as_ref().is_ok_and(crate::facts::asks_for_basic),
            Proof::RefusesOutsider => answer.as_ref().is_ok_and(crate::facts::refuses_outsider),
        };
        if proven {
            return Ok(());
        }
        if system.now().duration_since(start).unwrap_or_default() >= VERIFY_LIMIT {
            let what = match answer {
                Ok(a) if a.status == 401 && proof == Proof::RefusesOutsider => {
                    "401: allow_from did not refuse this machine's address".to_string()
                }
                Ok(a) if a.status == 401 => "401 without a Basic challenge".to_string(),
                Ok(a) if (200..300).contains(&a.status) => format!("{}: the site is OPEN TO ANYONE", a.status),
                Ok(a) => a.status.to_string(),
                Err(why) => why,
            };
            return Err(Error::failed(match proof {
                Proof::AsksForCredentials => format!(
                    "{url} (connected to {connect}) does not ask for credentials: a request without them got {what}, expected 401"
                ),
                Proof::RefusesOutsider => format!(
                    "{url} (connected to {connect}) does not refuse this machine's address, which allow_from leaves out: \
                     a request got {what}, expected allow_from's 403"
                ),
            }));
        }
        system.sleep(Duration::from_millis(200));
    }
}

/// How long a long step took, for its line: the one sign of progress a log
/// keeps.
fn took(system: &dyn System, start: std::time::SystemTime) -> String {
    format!("{} s", system.now().duration_since(start).unwrap_or_default().as_secs())
}

/// Performs one action.
fn perform(action: &Action, system: &dyn System, report: &mut Report, out: &mut dyn Write) -> Result<Outcome> {
    match action {
        Action::Run { command, purpose } => run_action(system, command, purpose, out),
        Action::AwaitCertificate { proxy, domain, address, limit, log } => {
            let _ = writeln!(
                out,
                "  {} waiting for {} to obtain a certificate for {domain}",
                style::stdout().ellipsis(),
                proxy.title()
            );
            let start = system.now();
            await_certificate(system, *proxy, domain, *address, *limit, log.as_deref()).map_err(|why| {
                Error::failed(format!(
                    "{} did not obtain a certificate for {domain}: {why}\n{}",
                    proxy.title(),
                    crate::certbot::reachability_hint(domain, 80)
                ))
            })?;
            Ok(Outcome::Done(format!("{} serves a certificate for {domain} ({})", proxy.title(), took(system, start))))
        }
        Action::Verify { url, connect, outsider: false } => {
            let _ = writeln!(out, "  {} verifying that {url} asks for credentials", style::stdout().ellipsis());
            verify(system, url, *connect, Proof::AsksForCredentials)?;
            Ok(Outcome::Done(format!("{url} asks for credentials (401)")))
        }
        Action::Verify { url, connect, outsider: true } => {
            let _ =
                writeln!(out, "  {} verifying that {url} refuses this machine's address", style::stdout().ellipsis());
            verify(system, url, *connect, Proof::RefusesOutsider)?;
            Ok(Outcome::Done(format!("{url} refuses this machine's address (403, allow_from)")))
        }
        Action::AwaitLoopbackOnly { port, limit } => {
            let _ =
                writeln!(out, "  {} waiting until port {port} listens on loopback only", style::stdout().ellipsis());
            let listening = || system.tcp_listeners().into_iter().filter(|l| l.port == *port).collect::<Vec<_>>();
            let exposed =
                |found: &[crate::system::Listener]| found.iter().any(|l| !crate::fields::is_loopback(l.address));
            // `systemctl restart` returns once the old process has exited:
            // a socket beyond loopback now is the new one's, and stays.
            wait_until(system, *limit, || !listening().is_empty());
            let found = listening();
            if !found.is_empty() && !exposed(&found) {
                return Ok(Outcome::Done(format!("port {port} listens on loopback only")));
            }
            let why = if found.is_empty() {
                format!(
                    "nothing listens on port {port} {} s after the restart: look at `journalctl -u ollama`",
                    limit.as_secs()
                )
            } else {
                let addresses: Vec<String> = found.iter().map(|l| l.address.to_string()).collect();
                format!(
                    "port {port} still listens on {} after the restart: something besides the unit's environment \
                     sets where Ollama listens (its command line, a wrapper script); look at `systemctl cat ollama`",
                    addresses.join(", ")
                )
            };
            Err(Error::failed(why))
        }
        Action::AwaitOllamaListening { limit } => {
            let _ = writeln!(out, "  {} waiting until Ollama listens again", style::stdout().ellipsis());
            let show = crate::ollama::show_command();
            // The main process systemd started, and the ports it listens on.
            let ports = || {
                let out = system.run(&show);
                let pid = if out.success { crate::ollama::Unit::parse(&out.output).main_pid } else { 0 };
                let mut ports: Vec<String> = system
                    .tcp_listeners()
                    .into_iter()
                    .filter(|l| pid != 0 && system.socket_owner(l.inode).is_some_and(|o| o.pid == pid))
                    .map(|l| std::net::SocketAddr::new(l.address, l.port).to_string())
                    .collect();
                ports.dedup();
                ports
            };
            if wait_until(system, *limit, || !ports().is_empty()) {
                return Ok(Outcome::Done(format!("Ollama listens at {}", ports().join(", "))));
            }
            Err(Error::failed(format!(
                "ollama.service's process does not listen on any TCP port {} s after the restart: \
                 look at `journalctl -u ollama`",
                limit.as_secs()
            )))
        }
        files => perform_on_files(files, system, report),
    }
}

/// Performs an action on files, folders, links or sockets: one short arm
/// per `Action` kind, which is why it is long.
fn perform_on_files(action: &Action, system: &dyn System, report: &mut Report) -> Result<Outcome> {
    let done = |text: String| Ok(Outcome::Done(text));
    match action {
        // Made again by an undo that ran before (a recovered run's).
        Action::CreateDir { path, .. } if matches!(system.inspect(path), Existing::Dir { .. }) => {
            Ok(Outcome::Skipped(format!("the folder {} is there", path.display())))
        }
        Action::CreateDir { path, mode } => {
            system.create_dir(path, *mode).map_err(io("cannot create the folder", path))?;
            done(format!("created {}", path.display()))
        }
        Action::Write { file, change } => write(system, file, change, report).map(Outcome::Done),
        Action::Link { link, target } => {
            system.symlink(target, link).map_err(io("cannot create the link", link))?;
            done(format!("linked {} -> {}", link.display(), target.display()))
        }
        Action::Remove { path } => {
            system.remove_file(path).map_err(io("cannot remove", path))?;
            done(format!("removed {}", path.display()))
        }
        // Another program (certbot, say) may have put something in a folder
        // we made: then it stays, which is right.
        Action::RemoveDir { path } if system.inspect(path) == Existing::Missing => {
            Ok(Outcome::Skipped(format!("the folder {} is gone already", path.display())))
        }
        Action::RemoveDir { path } if !system.list_dir(path).is_empty() => {
            Ok(Outcome::Skipped(format!("kept folder {} (something else uses it now)", path.display())))
        }
        Action::RemoveDir { path } => {
            system.remove_dir(path).map_err(io("cannot remove the folder", path))?;
            done(format!("removed folder {}", path.display()))
        }
        Action::Restore { path, from } => {
            let original = current_file(system, from, &format!("restore {}", path.display()))?;
            system.write_atomic(path, &original.content, original.ownership).map_err(io("cannot restore", path))?;
            system.remove_file(from).map_err(io("cannot remove the backup", from))?;
            done(format!("restored {} (the file that was there before)", path.display()))
        }
        Action::PutBack { path, snapshot } => {
            system.write_atomic(path, &snapshot.content, snapshot.ownership).map_err(io("cannot put back", path))?;
            done(format!("put {} back", path.display()))
        }
        Action::PutBackLink { link, target } => {
            let _ = system.remove_file(link);
            system.symlink(target, link).map_err(io("cannot recreate the link", link))?;
            done(format!("linked {} -> {} again", link.display(), target.display()))
        }
        Action::RemoveCache { path } => {
            system.remove_tree(path).map_err(io("cannot remove the cache", path))?;
            done("removed the cache of password checks".to_string())
        }
        Action::RemoveTree { path, unless_entries_in: Some(inner) } if !system.list_dir(inner).is_empty() => {
            Ok(Outcome::Skipped(format!("kept {} ({} holds something else)", path.display(), inner.display())))
        }
        Action::RemoveTree { path, .. } if system.inspect(path) == Existing::Missing => {
            Ok(Outcome::Skipped(format!("{} is gone already", path.display())))
        }
        Action::RemoveTree { path, .. } if matches!(system.inspect(path), Existing::Dir { .. }) => {
            system.remove_tree(path).map_err(io("cannot remove", path))?;
            done(format!("removed {} and what was in it", path.display()))
        }
        Action::RemoveTree { path, .. } => {
            system.remove_file(path).map_err(io("cannot remove", path))?;
            done(format!("removed {}", path.display()))
        }
        // Judged again now: a proxy that stopped or reloaded since has
        // removed its socket itself, and one that listens keeps it.
        Action::RemoveStaleSocket { path } => match system.unix_socket(path) {
            SocketState::Stale => {
                system.remove_file(path).map_err(io("cannot remove the stale socket", path))?;
                done(format!("removed the stale socket {}", path.display()))
            }
            SocketState::Missing => Ok(Outcome::Skipped(format!("the socket {} is gone already", path.display()))),
            _ => Ok(Outcome::Skipped(format!("kept the socket {} (something listens on it)", path.display()))),
        },
        Action::Run { .. }
        | Action::AwaitCertificate { .. }
        | Action::Verify { .. }
        | Action::AwaitLoopbackOnly { .. }
        | Action::AwaitOllamaListening { .. } => {
            unreachable!("perform handles the proxy's actions")
        }
    }
}

/// One done (or half-done) step's undo, and whether failing is expected:
/// the undo of a step an interruption cut short may find nothing to undo.
/// `undone_already`: a recovered run's journal says its undo ran (all but
/// what reads the configuration, which runs at the end).
struct Undo<'a> {
    actions: &'a [Action],
    maybe_half_done: bool,
    undone_already: bool,
}

impl<'a> Undo<'a> {
    fn of(step: &'a Step) -> Undo<'a> {
        Undo { actions: &step.undo, maybe_half_done: false, undone_already: false }
    }
}

/// Undoes `done`, newest first; undos that read the configuration (a
/// reload, a start) run once every file is back. `progress` learns how
/// many steps' undos are complete, counting from the newest. Returns what
/// could not be undone.
fn roll_back(done: Vec<Undo<'_>>, system: &dyn System, out: &mut dyn Write, progress: &dyn Fn(usize)) -> Vec<String> {
    let mut failures = Vec::new();
    let mut deferred = Vec::new();
    let mut scratch = Report::default();
    for (n, undo) in done.into_iter().rev().enumerate() {
        for (i, action) in undo.actions.iter().enumerate() {
            if action.reads_the_configuration() {
                deferred.push((action, undo.maybe_half_done));
                continue;
            }
            if undo.undone_already {
                continue;
            }
            match perform(action, system, &mut scratch, out) {
                Ok(Outcome::Done(text)) => drop(writeln!(out, "  undone: {text}")),
                Ok(Outcome::Skipped(text)) => drop(writeln!(out, "  {text}")),
                Err(e) if undo.maybe_half_done => drop(writeln!(out, "  - nothing to undo: {e}")),
                Err(e) => {
                    // The rest of this undo relies on it (a stop, then the
                    // folders the stopped proxy used): it is left alone.
                    failures.push(e.to_string());
                    let rest: Vec<String> = undo.actions[i + 1..].iter().map(crate::plan::undo_text).collect();
                    if !rest.is_empty() {
                        failures.push(format!("not done, as it relies on that: {}", rest.join("; ")));
                    }
                    break;
                }
            }
        }
        progress(n + 1);
    }
    for (action, maybe_half_done) in deferred {
        match perform(action, system, &mut scratch, out) {
            Ok(Outcome::Done(text) | Outcome::Skipped(text)) => drop(writeln!(out, "  undone: {text}")),
            Err(e) if maybe_half_done => drop(writeln!(out, "  - nothing to undo: {e}")),
            Err(e) => failures.push(e.to_string()),
        }
    }
    failures
}

/// Rolls back `done` of `steps` (the run was at `doing`), recording in the
/// journal how far the undo got, then ends the journal. Returns what
/// could not be undone.
fn undo_and_close(
    done: Vec<Undo<'_>>,
    steps: &[Step],
    doing: usize,
    journal: &Journal,
    system: &dyn System,
    out: &mut dyn Write,
) -> Vec<String> {
    let _ = writeln!(out, "Rolling back:");
    // Best effort: a journal that cannot be written must not stop the undo.
    let progress = |undone: usize| drop(journal.write_undoing(steps, doing, undone));
    let mut leftovers = roll_back(done, system, out, &progress);
    if let Err(e) = journal.commit() {
        leftovers.push(e.to_string());
    }
    leftovers
}

/// Gives up the run at step `doing` because of `cause`: undoes `done` and
/// says how that went.
fn give_up(
    cause: Error,
    done: Vec<Undo<'_>>,
    steps: &[Step],
    doing: usize,
    journal: &Journal,
    system: &dyn System,
    out: &mut dyn Write,
) -> Error {
    let interrupted = system.interrupted() || matches!(cause, Error::Interrupted { .. });
    let nothing_changed = done.is_empty();
    let leftovers = if done.iter().all(|undo| undo.actions.is_empty()) {
        journal.commit().err().map(|e| e.to_string()).into_iter().collect()
    } else {
        undo_and_close(done, steps, doing, journal, system, out)
    };
    match (interrupted, leftovers.is_empty()) {
        (true, _) => Error::Interrupted { leftovers },
        (false, true) => Error::RolledBack { cause: Box::new(cause), nothing_changed },
        (false, false) => Error::RollbackIncomplete { cause: Box::new(cause), leftovers },
    }
}

/// Executes `plan`, writing the journal before every step. On failure, or
/// when SIGINT or SIGTERM arrives (up to the end of the last step), rolls
/// back and returns the error (with what was undone, and what could not
/// be). On success the journal stays until the caller has shown what only
/// this run knows (generated passwords) and calls `Journal::commit`.
pub fn apply(plan: &Plan, system: &dyn System, journal: &Journal, out: &mut dyn Write) -> Result<Report> {
    let steps = &plan.steps;
    let mut done: Vec<Undo> = Vec::new();
    let mut report = Report::default();
    for (i, step) in steps.iter().enumerate() {
        // No step without its record: a run that cannot write its journal stops.
        if let Err(e) = journal.write(steps, i) {
            return Err(give_up(e, done, steps, i, journal, system, out));
        }
        if system.interrupted() {
            return Err(give_up(Error::Interrupted { leftovers: Vec::new() }, done, steps, i, journal, system, out));
        }
        match perform(&step.action, system, &mut report, out) {
            Ok(Outcome::Done(text)) => {
                let _ = writeln!(out, "  {} {text}", style::stdout().done());
                done.push(Undo::of(step));
                if step.action.changes_files() {
                    report.changed += 1;
                }
            }
            Ok(Outcome::Skipped(text)) => {
                let _ = writeln!(out, "  - {text}");
            }
            Err(cause) => {
                let _ = writeln!(out, "  {} (the error follows)", style::stdout().failed());
                // A validator or certbot that failed has still made what it
                // makes (certbot: its account, its logs).
                let leaves_traces =
                    |p: &Purpose| matches!(p, Purpose::Validate { .. } | Purpose::ObtainCertificate { .. });
                // (fail2ban's -t writes nothing.)
                if matches!(&step.action, Action::Run { purpose, .. } if leaves_traces(purpose)) {
                    done.push(Undo { maybe_half_done: true, ..Undo::of(step) });
                }
                return Err(give_up(cause, done, steps, i, journal, system, out));
            }
        }
    }
    if system.interrupted() {
        let interrupted = Error::Interrupted { leftovers: Vec::new() };
        return Err(give_up(interrupted, done, steps, steps.len(), journal, system, out));
    }
    // The record before the last step says as much (every step may be
    // done): this one failing changes nothing.
    let _ = journal.write(steps, steps.len());
    Ok(report)
}

/// The name every temporary file of `System::write_atomic` starts with.
pub const TEMPORARY_PREFIX: &str = ".ollama-secure-";

/// A run killed while writing leaves its temporary file (hashes and all)
/// beside the file it was writing: those go, in every folder the plan wrote
/// into, and in the journal's (killed before its first journal was in
/// place, a run leaves only that one). Returns what could not be removed.
pub fn remove_temporary_files(system: &dyn System, steps: &[Step], journal: &Path, out: &mut dyn Write) -> Vec<String> {
    let mut dirs: Vec<&Path> = steps
        .iter()
        .flat_map(|s| std::iter::once(&s.action).chain(&s.undo))
        .filter_map(|a| match a {
            Action::Write { file, .. } => file.path.parent(),
            Action::Restore { path, .. } | Action::PutBack { path, .. } => path.parent(),
            _ => None,
        })
        .chain(journal.parent())
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut failures = Vec::new();
    for path in dirs.into_iter().flat_map(|dir| system.list_dir(dir)) {
        let temporary = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(TEMPORARY_PREFIX));
        if temporary && matches!(system.inspect(&path), Existing::File { .. } | Existing::Unreadable { .. }) {
            match system.remove_file(&path) {
                Ok(()) => drop(writeln!(out, "  removed {} (a temporary file it left)", path.display())),
                Err(e) => failures.push(format!("cannot remove {}: {e}", path.display())),
            }
        }
    }
    failures
}

/// A run that was killed left its journal: undo what it had done (the step
/// it was in may be half done), so this run starts from the system as it
/// was before. Returns whether there was anything to recover.
pub fn recover(system: &dyn System, journal: &Journal, out: &mut dyn Write) -> Result<bool> {
    let Some(record) = journal.left_behind()? else { return Ok(false) };
    let _ = writeln!(
        out,
        "An interrupted `ollama-secure {}` left its journal {}: undoing what it had done first.",
        record.command,
        journal.path().display()
    );
    if !record.generated.is_empty() {
        let _ = writeln!(
            out,
            "It had generated passwords or keys for {} and was stopped before it showed them: nobody knows them, so their \
             hashes go too.",
            record.generated.join(", ")
        );
    }
    let last = record.doing.min(record.steps.len());
    let steps = &record.steps[..(last + 1).min(record.steps.len())];
    // The journal says how many of them (from the newest) were undone by
    // the run itself before it was killed; the next one may be half undone.
    let undone = record.undone.min(steps.len());
    let done: Vec<Undo> = steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let from_newest = steps.len() - 1 - i;
            Undo {
                actions: &step.undo,
                maybe_half_done: i == last || (undone > 0 && from_newest == undone),
                undone_already: from_newest < undone,
            }
        })
        .collect();
    // First the temporary files: a folder to remove may hold one.
    let mut leftovers = remove_temporary_files(system, &record.steps, journal.path(), out);
    leftovers.extend(undo_and_close(done, &record.steps, record.doing, journal, system, out));
    if !leftovers.is_empty() {
        return Err(Error::RollbackIncomplete {
            cause: Box::new(Error::failed("an interrupted run could not be undone completely")),
            leftovers,
        });
    }
    let _ = writeln!(out, "The interrupted run is undone.\n");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::fs;

    use super::*;
    use crate::plan::Step;
    use crate::render::{RenderedFile, Role};
    use crate::system::{HttpReply, Listener, Owner, Process, RealSystem, RunOutput};

    /// The real filesystem (in a temporary folder), and commands recorded
    /// instead of run: those whose program is in `failing` fail.
    struct Recording {
        failing: Vec<&'static str>,
        ran: RefCell<Vec<String>>,
        /// Writes of this file fail as on a full disk, after `full_after`
        /// that succeed.
        full: Option<PathBuf>,
        full_after: usize,
        writes: RefCell<usize>,
        /// A signal arrives while this program runs.
        signalled_by: Option<&'static str>,
        /// The one process that runs, and never exits.
        alive: Option<u32>,
        /// The clock, which `sleep` moves on.
        clock: std::cell::Cell<std::time::SystemTime>,
    }

    impl System for Recording {
        fn inspect(&self, path: &Path) -> Existing {
            RealSystem.inspect(path)
        }
        fn list_dir(&self, dir: &Path) -> Vec<PathBuf> {
            RealSystem.list_dir(dir)
        }
        fn tail(&self, path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
            RealSystem.tail(path, max)
        }
        fn write_atomic(&self, path: &Path, content: &[u8], o: Ownership) -> std::io::Result<()> {
            if self.full.as_deref() == Some(path) {
                *self.writes.borrow_mut() += 1;
                if *self.writes.borrow() > self.full_after {
                    return Err(std::io::Error::from_raw_os_error(nix::libc::ENOSPC));
                }
            }
            RealSystem.write_atomic(path, content, o)
        }
        fn write_new(&self, path: &Path, content: &[u8], o: Ownership) -> std::io::Result<()> {
            RealSystem.write_new(path, content, o)
        }
        fn create_dir(&self, path: &Path, mode: u32) -> std::io::Result<()> {
            RealSystem.create_dir(path, mode)
        }
        fn remove_file(&self, path: &Path) -> std::io::Result<()> {
            RealSystem.remove_file(path)
        }
        fn remove_dir(&self, path: &Path) -> std::io::Result<()> {
            RealSystem.remove_dir(path)
        }
        fn remove_tree(&self, path: &Path) -> std::io::Result<()> {
            RealSystem.remove_tree(path)
        }
        fn symlink(&self, target: &Path, link: &Path) -> std::io::Result<()> {
            RealSystem.symlink(target, link)
        }
        fn filesystem(&self, path: &Path) -> Option<crate::system::Filesystem> {
            RealSystem.filesystem(path)
        }
        fn is_mountpoint(&self, path: &Path) -> bool {
            RealSystem.is_mountpoint(path)
        }
        fn is_root(&self) -> bool {
            true
        }
        fn group_id(&self, _name: &str) -> Option<u32> {
            Some(nix::unistd::getegid().as_raw())
        }
        fn env_var(&self, _name: &str) -> Option<String> {
            None
        }
        fn user_home(&self, _name: &str) -> Option<PathBuf> {
            None
        }
        fn group_name(&self, _gid: u32) -> Option<String> {
            None
        }
        fn installed(&self, _program: &str) -> bool {
            true
        }
        fn run(&self, command: &Command) -> RunOutput {
            self.ran.borrow_mut().push(command.to_string());
            RunOutput { success: !self.failing.contains(&command.program.as_str()), output: "boom".into() }
        }
        fn process(&self, pid: u32) -> Option<Process> {
            (self.alive == Some(pid)).then(|| Process {
                pid,
                parent: 1,
                name: "proxy".into(),
                command_line: "proxy".into(),
            })
        }
        fn processes(&self) -> Vec<Process> {
            Vec::new()
        }
        fn now(&self) -> std::time::SystemTime {
            self.clock.get()
        }
        fn sleep(&self, duration: Duration) {
            self.clock.set(self.clock.get() + duration);
        }
        fn http(&self, _request: &HttpRequest) -> std::result::Result<HttpReply, String> {
            Err("no network in unit tests".into())
        }
        fn tcp_listeners(&self) -> Vec<Listener> {
            Vec::new()
        }
        fn socket_owner(&self, _inode: u64) -> Option<Owner> {
            None
        }
        fn unix_socket(&self, _path: &Path) -> SocketState {
            SocketState::Missing
        }
        fn interrupted(&self) -> bool {
            self.signalled_by.is_some_and(|program| self.ran.borrow().iter().any(|r| r == program))
        }
    }

    /// Applies `plan` with a journal in `dir`, which must be gone afterwards.
    fn apply_in(dir: &Path, plan: &Plan, system: &Recording) -> Result<Report> {
        let journal = Journal::at(system, &dir.join("journal"), "test");
        let result = apply(plan, system, &journal, &mut Vec::new());
        if result.is_ok() {
            assert!(dir.join("journal").exists(), "the journal ends only when the caller commits");
            journal.commit().unwrap();
        }
        assert!(!dir.join("journal").exists(), "the journal outlived the run");
        result
    }

    fn recording(failing: &[&'static str]) -> Recording {
        Recording {
            failing: failing.to_vec(),
            ran: RefCell::new(Vec::new()),
            full: None,
            full_after: 0,
            writes: RefCell::new(0),
            signalled_by: None,
            alive: None,
            clock: std::cell::Cell::new(std::time::SystemTime::now()),
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

    fn command(program: &str, purpose: Purpose) -> Action {
        Action::Run { command: Command::new(program, &[]), purpose }
    }

    fn reload() -> Step {
        let purpose = || Purpose::Reload { pid_file: "/nonexistent".into(), wait_for_old_workers: true };
        Step::undone_by(command("reload-proxy", purpose()), vec![command("reload-proxy", purpose())])
    }

    fn plan(steps: Vec<Step>) -> Plan {
        Plan { proxy: Some(ProxyKind::Nginx), findings: vec![], blockers: vec![], steps }
    }

    #[test]
    fn a_failure_after_a_reload_restores_files_and_reloads_again() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        fs::write(&site, "old").unwrap();
        let backup = dir.path().join("site.bak-1");
        let plan = plan(vec![
            Step::write(file(&site, "new"), Change::Replace { backup: backup.clone() }),
            Step::run(Command::new("check-config", &[]), Purpose::Validate { ours: vec![], empty_pid_file: None }),
            reload(),
            Step::run(Command::new("enable-proxy", &[]), Purpose::Enable),
        ]);
        let system = recording(&["enable-proxy"]);
        let err = apply_in(dir.path(), &plan, &system).unwrap_err();
        assert!(matches!(err, Error::RolledBack { nothing_changed: false, .. }), "{err}");
        assert!(err.to_string().contains("rolled back"), "{err}");
        assert_eq!(fs::read_to_string(&site).unwrap(), "old");
        assert!(!backup.exists(), "the backup should be consumed by the restore");
        assert_eq!(*system.ran.borrow(), ["check-config", "reload-proxy", "enable-proxy", "reload-proxy"]);
    }

    #[test]
    fn a_failed_start_removes_new_files_and_does_not_stop_anything() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("a/b"));
        let site = b.join("site");
        let start = Step::undone_by(
            command("start-proxy", Purpose::Start),
            vec![command("stop-proxy", Purpose::Stop { pid_file: "/nonexistent".into() })],
        );
        let plan = plan(vec![
            Step::create_dir(&a),
            Step::create_dir(&b),
            Step::write(file(&site, "new"), Change::Create),
            start,
        ]);
        let system = recording(&["start-proxy"]);
        let err = apply_in(dir.path(), &plan, &system).unwrap_err();
        assert!(err.to_string().contains("start-proxy"), "{err}");
        assert!(!a.exists(), "created folders are removed again");
        assert_eq!(*system.ran.borrow(), ["start-proxy"]);
    }

    #[test]
    fn a_failure_after_a_start_stops_the_proxy_again() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        let start = Step::undone_by(
            command("start-proxy", Purpose::Start),
            vec![command("stop-proxy", Purpose::Stop { pid_file: "/nonexistent".into() })],
        );
        let plan = plan(vec![
            Step::link(&link, Path::new("/nonexistent")),
            start,
            Step::run(Command::new("enable-proxy", &[]), Purpose::Enable),
        ]);
        let system = recording(&["enable-proxy"]);
        apply_in(dir.path(), &plan, &system).unwrap_err();
        assert!(fs::symlink_metadata(&link).is_err());
        assert_eq!(*system.ran.borrow(), ["start-proxy", "enable-proxy", "stop-proxy"]);
    }

    #[test]
    fn a_full_disk_while_replacing_leaves_the_file_and_no_backup() {
        let dir = tempfile::tempdir().unwrap();
        let (first, site) = (dir.path().join("first"), dir.path().join("site"));
        fs::write(&site, "old").unwrap();
        let backup = dir.path().join("site.bak-1");
        let plan = plan(vec![
            Step::write(file(&first, "new"), Change::Create),
            Step::write(file(&site, "new"), Change::Replace { backup: backup.clone() }),
        ]);
        let system = Recording { full: Some(site.clone()), ..recording(&[]) };
        let err = apply_in(dir.path(), &plan, &system).unwrap_err();
        assert!(matches!(err, Error::RolledBack { nothing_changed: false, .. }), "{err}");
        assert_eq!(err.exit_code(), crate::error::exit::FAILED);
        assert!(err.to_string().contains("No space left on device"), "{err}");
        assert_eq!(fs::read_to_string(&site).unwrap(), "old");
        assert!(!backup.exists(), "the backup of an unchanged file was left behind");
        assert!(!first.exists(), "the earlier step was not undone");
    }

    #[test]
    fn a_signal_stops_the_run_at_the_next_step_and_undoes_it() {
        let dir = tempfile::tempdir().unwrap();
        let (site, later) = (dir.path().join("site"), dir.path().join("later"));
        fs::write(&site, "old").unwrap();
        let plan = plan(vec![
            Step::write(file(&site, "new"), Change::Replace { backup: dir.path().join("site.bak-1") }),
            reload(),
            Step::write(file(&later, "never"), Change::Create),
        ]);
        let system = Recording { signalled_by: Some("reload-proxy"), ..recording(&[]) };
        let err = apply_in(dir.path(), &plan, &system).unwrap_err();
        assert!(matches!(err, Error::Interrupted { ref leftovers } if leftovers.is_empty()), "{err}");
        assert_eq!(err.exit_code(), crate::error::exit::INTERRUPTED);
        assert_eq!(fs::read_to_string(&site).unwrap(), "old");
        assert!(!later.exists(), "a step after the signal ran");
        assert_eq!(*system.ran.borrow(), ["reload-proxy", "reload-proxy"], "reloaded onto the old files again");
    }

    #[test]
    fn a_killed_run_is_undone_by_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let (new_dir, site, users) = (dir.path().join("new"), dir.path().join("site"), dir.path().join("users"));
        // `users` is the step the run never reached: recovery leaves it be.
        fs::write(&site, "old").unwrap();
        let backup = dir.path().join("site.bak-1");
        let steps = vec![
            Step::create_dir(&new_dir),
            Step::write(file(&new_dir.join("users"), "hashes"), Change::Create),
            Step::write(file(&site, "new"), Change::Replace { backup: backup.clone() }),
            Step::write(file(&users, "more"), Change::Create),
        ];
        // Killed while replacing the site: its backup exists, the site is
        // still the old one, and the last file was never written.
        fs::create_dir(&new_dir).unwrap();
        fs::write(new_dir.join("users"), "hashes").unwrap();
        fs::write(&backup, "old").unwrap();
        let system = recording(&[]);
        let journal = Journal::at(&system, &dir.path().join("journal"), "init");
        journal.write(&steps, 2).unwrap();

        let mut out = Vec::new();
        assert!(recover(&system, &journal, &mut out).unwrap());
        assert_eq!(fs::read_to_string(&site).unwrap(), "old");
        assert!(!backup.exists() && !new_dir.exists(), "{}", String::from_utf8_lossy(&out));
        assert!(!dir.path().join("journal").exists());
        assert!(!recover(&system, &journal, &mut Vec::new()).unwrap(), "nothing is left to recover");
    }

    #[test]
    fn a_backup_name_that_is_taken_is_refused_before_anything_changes() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        fs::write(&site, "old").unwrap();
        let backup = dir.path().join("site.bak-1");
        fs::write(&backup, "someone else's").unwrap();
        let plan = plan(vec![Step::write(file(&site, "new"), Change::Replace { backup: backup.clone() })]);
        let err = apply_in(dir.path(), &plan, &recording(&[])).unwrap_err();
        assert!(matches!(err, Error::RolledBack { nothing_changed: true, .. }), "{err}");
        assert_eq!(fs::read_to_string(&site).unwrap(), "old");
        assert_eq!(fs::read_to_string(&backup).unwrap(), "someone else's");
    }

    #[test]
    fn a_run_killed_while_rolling_back_is_finished_by_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let (new_dir, site) = (dir.path().join("new"), dir.path().join("site"));
        let backup = dir.path().join("site.bak-1");
        let steps = vec![
            Step::create_dir(&new_dir),
            Step::write(file(&new_dir.join("users"), "hashes"), Change::Create),
            Step::write(file(&site, "new"), Change::Replace { backup: backup.clone() }),
            reload(),
        ];
        // Every step ran, the run was rolling back, had restored the site
        // (its backup is gone), and was killed.
        fs::create_dir(&new_dir).unwrap();
        fs::write(new_dir.join("users"), "hashes").unwrap();
        fs::write(&site, "old").unwrap();
        let system = recording(&[]);
        let journal = Journal::at(&system, &dir.path().join("journal"), "init");
        journal.write_undoing(&steps, 3, 2).unwrap();

        let mut out = Vec::new();
        let recovered = recover(&system, &journal, &mut out);
        let out = String::from_utf8_lossy(&out);
        assert!(recovered.unwrap(), "{out}");
        assert!(!out.contains("restore"), "the site was restored a second time:\n{out}");
        assert_eq!(fs::read_to_string(&site).unwrap(), "old");
        assert!(!new_dir.exists(), "{out}");
        assert_eq!(*system.ran.borrow(), ["reload-proxy"], "the reload onto the old files still runs");
    }

    #[test]
    fn a_journal_that_cannot_be_written_stops_the_run_and_undoes_it() {
        let dir = tempfile::tempdir().unwrap();
        let (site, later) = (dir.path().join("site"), dir.path().join("later"));
        let plan = plan(vec![
            Step::write(file(&site, "new"), Change::Create),
            Step::write(file(&later, "never"), Change::Create),
        ]);
        let system = Recording { full: Some(dir.path().join("journal")), full_after: 1, ..recording(&[]) };
        let err = apply_in(dir.path(), &plan, &system).unwrap_err();
        assert!(matches!(err, Error::RolledBack { nothing_changed: false, .. }), "{err}");
        assert!(err.to_string().contains("cannot write the journal"), "{err}");
        assert!(!site.exists() && !later.exists());
    }

    #[test]
    fn a_signal_during_the_last_step_undoes_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        let plan = plan(vec![Step::write(file(&site, "new"), Change::Create), reload()]);
        let system = Recording { signalled_by: Some("reload-proxy"), ..recording(&[]) };
        let err = apply_in(dir.path(), &plan, &system).unwrap_err();
        assert!(matches!(err, Error::Interrupted { ref leftovers } if leftovers.is_empty()), "{err}");
        assert!(!site.exists());
    }

    #[test]
    fn what_a_proxy_that_does_not_stop_uses_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (pid_file, data) = (dir.path().join("proxy.pid"), dir.path().join("data"));
        fs::write(&pid_file, "4242\n").unwrap();
        fs::create_dir(&data).unwrap();
        let start = Step::undone_by(
            command("start-proxy", Purpose::Start),
            vec![
                command("stop-proxy", Purpose::Stop { pid_file: pid_file.clone() }),
                Action::RemoveTree { path: data.clone(), unless_entries_in: None },
            ],
        );
        let plan = plan(vec![start, Step::run(Command::new("enable-proxy", &[]), Purpose::Enable)]);
        let system = Recording { alive: Some(4242), ..recording(&["enable-proxy"]) };
        let err = apply_in(dir.path(), &plan, &system).unwrap_err();
        let Error::RollbackIncomplete { leftovers, .. } = &err else { panic!("{err}") };
        assert!(leftovers[0].contains("(PID 4242) is still running 15 s after"), "{leftovers:?}");
        assert!(leftovers[1].starts_with("not done, as it relies on that: remove"), "{leftovers:?}");
        assert!(data.exists(), "the folder of a proxy that still runs was removed");
    }

    #[test]
    fn stopping_what_is_not_running_is_nothing_to_undo() {
        let dir = tempfile::tempdir().unwrap();
        let start = Step::undone_by(
            command("start-proxy", Purpose::Start),
            vec![command("stop-proxy", Purpose::Stop { pid_file: dir.path().join("gone.pid") })],
        );
        let plan = plan(vec![start, Step::run(Command::new("enable-proxy", &[]), Purpose::Enable)]);
        // After a reboot, say: no PID file, and the stop command fails.
        let err = apply_in(dir.path(), &plan, &recording(&["enable-proxy", "stop-proxy"])).unwrap_err();
        assert!(matches!(err, Error::RolledBack { .. }), "{err}");
    }
}
