//! `connect --install` / `--uninstall`: what is on disk where the service
//! goes (the facts `user_service` plans from), then the plan printed
//! (`--dry-run`) or performed, each step undone again, newest first, when
//! a later one fails.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

use crate::cli::{ClientCredentials, ConnectArgs};
use crate::error::{Error, Result};
use crate::paths::Os;
use crate::plan::Command;
use crate::system::{Credentials, Existing, HttpRequest, Owner, Ownership, SocketState, System};
use crate::user_service::{self, Found, Location, Manager, Step, Undo};

/// How long a freshly started service has to answer through its port.
const PROOF_TIMEOUT: Duration = Duration::from_secs(20);

/// The secret as the service will read it: from a file only (a service has
/// neither this shell's environment nor a terminal to ask on), one that
/// nobody else can read.
pub fn credentials_from_files(flags: &ClientCredentials) -> Result<Credentials> {
    if flags.api_key_env.is_some()
        || flags.password_env.is_some()
        || (flags.username.is_some() && flags.password_file.is_none())
    {
        return Err(Error::input(
            "--install: the service has neither this shell's environment nor a terminal to ask on: \
             give the secret in a file it reads at each start, --api-key-file FILE or --username NAME --password-file FILE (chmod 600 FILE)",
        ));
    }
    for (flag, file) in [("--api-key-file", &flags.api_key_file), ("--password-file", &flags.password_file)] {
        if let Some(file) = file {
            let mode = std::fs::metadata(file)
                .map_err(|e| Error::input(format!("{flag} {}: {e}", file.display())))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(Error::input(format!(
                    "{flag} {}: others may read it (mode {:04o}); the service keeps using it: chmod 600 {}",
                    file.display(),
                    mode & 0o7777,
                    file.display()
                )));
            }
        }
    }
    super::check::client_credentials(flags)
}

/// Whether this user's service manager runs now: launchd always does in
/// a login session; systemd's user manager answers on its private socket.
fn manager_running(system: &dyn System) -> bool {
    match Os::current() {
        Os::MacHomebrew(_) => true,
        Os::Debian => system.unix_socket(&user_manager_socket(system)) == SocketState::Listening,
    }
}

/// Where this user's service goes on this operating system. systemd's
/// user manager looks under its own `XDG_CONFIG_HOME` (not this shell's):
/// read from its unit path when it runs, else the default a login starts
/// it with.
fn location(system: &dyn System, manager_running: bool) -> Result<Location> {
    let home =
        system.env_var("HOME").map(PathBuf::from).filter(|home| home.is_absolute()).ok_or_else(|| {
            Error::input("HOME is not set to an absolute path: the service goes under your home folder")
        })?;
    match Os::current() {
        Os::MacHomebrew(_) => Location::launchd(&home, nix::unistd::getuid().as_raw()),
        Os::Debian => {
            let config_home = if manager_running { manager_config_home(system)? } else { None };
            Location::systemd(&home, config_home.as_deref())
        }
    }
}

/// The configuration folder the running systemd user manager loads units
/// from (its `XDG_CONFIG_HOME`): the entry of its unit path that has
/// `user.control` beside it, which only the configuration folder has.
fn manager_config_home(system: &dyn System) -> Result<Option<String>> {
    let output = system.run(&Command::new("systemctl", &["--user", "show", "--property=UnitPath", "--value"]));
    if !output.success {
        return Err(Error::failed(format!(
            "`systemctl --user show --property=UnitPath` failed: {}",
            output.output.trim()
        )));
    }
    Ok(user_service::config_home_in_unit_path(&output.output))
}

/// A folder, or a link that leads to one (a home on another disk).
fn is_folder(system: &dyn System, path: &Path) -> bool {
    let mut path = path.to_path_buf();
    // Links of links, up to the kernel's own limit.
    for _ in 0..40 {
        match system.inspect(&path) {
            Existing::Dir { .. } => return true,
            Existing::Symlink { target } => {
                path = path.parent().map(|parent| parent.join(&target)).unwrap_or(target);
            }
            _ => return false,
        }
    }
    false
}

/// systemd's user manager answers on its private socket.
fn user_manager_socket(system: &dyn System) -> PathBuf {
    let runtime = system
        .env_var("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{}", nix::unistd::getuid().as_raw())));
    runtime.join("systemd").join("private")
}

fn found(system: &dyn System, location: &Location, manager_running: bool) -> Found {
    let file = match system.inspect(&location.file) {
        Existing::Missing => None,
        Existing::File { content, .. } => Some(String::from_utf8(content).map_err(|_| "not UTF-8 text".to_string())),
        Existing::Symlink { target } => Some(Err(format!("a link to {}", target.display()))),
        _ => Some(Err("not a regular file we can read".to_string())),
    };
    let link = location.link.as_ref().and_then(|link| match system.inspect(link) {
        Existing::Missing => None,
        Existing::Symlink { target } => Some(Ok(target)),
        _ => Some(Err("not a link".to_string())),
    });
    let existing_folders: Vec<PathBuf> =
        location.folders.iter().filter(|folder| is_folder(system, folder)).cloned().collect();
    let folder_entries = existing_folders.iter().map(|folder| (folder.clone(), system.list_dir(folder))).collect();
    let state = manager_running.then(|| query(system, &location.state_query()));
    let service_running = state
        .as_ref()
        .is_some_and(|output| user_service::service_running(location.manager, output.success, &output.output));
    let service_loaded = match location.manager {
        Manager::Systemd => service_running,
        Manager::Launchd => state.as_ref().is_some_and(|output| output.success),
    };
    Found { file, link, existing_folders, folder_entries, manager_running, service_running, service_loaded }
}

/// Runs a planned command (its words), whatever its exit status.
fn query(system: &dyn System, words: &[String]) -> crate::system::RunOutput {
    let Some((program, args)) = words.split_first() else {
        return crate::system::RunOutput { success: false, output: "no command".to_string() };
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    system.run(&Command::new(program, &args))
}

/// The PID of the process the manager runs for the service, if any.
fn service_pid(system: &dyn System, manager: Manager, pid_query: &[String]) -> Option<u32> {
    let output = query(system, pid_query);
    if output.success { user_service::service_pid(manager, &output.output) } else { None }
}

/// The arguments the service runs `connect` with: these, with every file
/// named by its absolute path (the service starts elsewhere).
fn service_args(args: &ConnectArgs, listen: SocketAddr, server: &Url) -> Result<Vec<String>> {
    let absolute = |flag: &str, path: &Path| -> Result<String> {
        let path = std::path::absolute(path).map_err(|e| Error::input(format!("{flag} {}: {e}", path.display())))?;
        path.to_str().map(str::to_string).ok_or_else(|| Error::input(format!("{flag} {}: not UTF-8", path.display())))
    };
    let mut words =
        vec!["connect".to_string(), "--url".into(), server.as_str().into(), "--listen".into(), listen.to_string()];
    let flags = &args.credentials;
    if let Some(file) = &flags.api_key_file {
        words.extend(["--api-key-file".into(), absolute("--api-key-file", file)?]);
    }
    if let (Some(user), Some(file)) = (&flags.username, &flags.password_file) {
        words.extend(["--username".into(), user.clone(), "--password-file".into(), absolute("--password-file", file)?]);
    }
    if let Some(file) = &args.cacert {
        words.extend(["--cacert".into(), absolute("--cacert", file)?]);
    }
    for resolve in &args.resolve {
        words.extend(["--resolve".into(), resolve.clone()]);
    }
    Ok(words)
}

/// Who listens on the port: nobody (`None`), a process, or one we may not see (`Err`).
fn listener(system: &dyn System, listen: SocketAddr) -> Option<std::result::Result<Owner, ()>> {
    let taken = system
        .tcp_listeners()
        .into_iter()
        .find(|l| l.port == listen.port() && (l.address == listen.ip() || l.address.is_unspecified()))?;
    Some(system.socket_owner(taken.inode).ok_or(()))
}

/// Anything but the service itself on the port (another program, or a
/// `connect` run by hand) would keep the service from ever listening.
fn port_is_free_or_ours(system: &dyn System, listen: SocketAddr, service: Option<u32>) -> Result<()> {
    match listener(system, listen) {
        None => Ok(()),
        Some(Ok(owner)) if Some(owner.pid) == service => Ok(()),
        Some(Ok(owner)) if owner.name == "ollama-secure" => Err(Error::failed(format!(
            "an ollama-secure not run by the service (PID {}, perhaps a `connect` started by hand) listens on {listen}: \
             the service could never listen there; stop it (kill {}) or give another port with --listen 127.0.0.1:PORT",
            owner.pid, owner.pid
        ))),
        owner => Err(Error::failed(format!(
            "something else listens on {listen}{}: the service could never listen there; give another port with --listen 127.0.0.1:PORT",
            owner.and_then(Result::ok).map(|o| format!(" ({}, PID {})", o.name, o.pid)).unwrap_or_default()
        ))),
    }
}

pub fn install(args: &ConnectArgs, listen: SocketAddr, server: &Url, system: &dyn System) -> Result<()> {
    let manager_running = manager_running(system);
    let location = location(system, manager_running)?;
    let program =
        std::env::current_exe().map_err(|e| Error::failed(format!("cannot tell where this program is: {e}")))?;
    let program =
        program.to_str().ok_or_else(|| Error::failed(format!("{}: not UTF-8", program.display())))?.to_string();
    let words = service_args(args, listen, server)?;
    let found = found(system, &location, manager_running);
    let running_pid =
        if found.service_running { service_pid(system, location.manager, &location.pid_query()) } else { None };
    port_is_free_or_ours(system, listen, running_pid)?;
    let render = |made: &[PathBuf]| user_service::service_text(location.manager, &program, &words, made);
    let steps = user_service::install(&location, &found, render, listen)?;
    if steps.is_empty() {
        crate::outln!("Nothing to change: {} is installed as asked.", location.file.display());
        return Ok(());
    }
    if args.dry_run {
        crate::outln!("connect --install would:\n{}Nothing was changed (dry run).", user_service::describe(&steps));
        return Ok(());
    }
    perform(system, &steps)?;
    crate::outln!("Installed {}: http://{listen} forwards to {server}, from every login on.", location.file.display());
    if found.manager_running {
        crate::outln!("It runs now. Point clients at it, e.g.: OLLAMA_HOST={listen} ollama list");
    } else {
        let booted = matches!(system.inspect(Path::new("/run/systemd/system")), Existing::Dir { .. });
        crate::outln!(
            "Not started: no systemd user manager runs for you now ({} does not answer); it starts at your next login{}.",
            user_manager_socket(system).display(),
            if booted {
                ""
            } else {
                " on a machine that runs systemd (this one's PID 1 is not systemd: run `ollama-secure connect` in your session here)"
            }
        );
    }
    if location.manager == Manager::Systemd {
        crate::outln!(
            "To start it at boot rather than at login: loginctl enable-linger $USER. Remove it with: ollama-secure connect --uninstall"
        );
    }
    Ok(())
}

pub fn uninstall(dry_run: bool, system: &dyn System) -> Result<()> {
    let manager_running = manager_running(system);
    let location = location(system, manager_running)?;
    let steps = user_service::uninstall(&location, &found(system, &location, manager_running))?;
    if steps.is_empty() {
        crate::outln!(
            "Nothing to change: no connect service is installed ({} does not exist).",
            location.file.display()
        );
        return Ok(());
    }
    if dry_run {
        crate::outln!("connect --uninstall would:\n{}Nothing was changed (dry run).", user_service::describe(&steps));
        return Ok(());
    }
    perform(system, &steps)?;
    crate::outln!("Removed the connect service ({}).", location.file.display());
    Ok(())
}

/// Performs the steps; when one fails, undoes those before it, newest
/// first, as `user_service::rollback` says.
fn perform(system: &dyn System, steps: &[Step]) -> Result<()> {
    for (done, step) in steps.iter().enumerate() {
        if let Err(cause) = perform_one(system, step) {
            let leftovers: Vec<String> = user_service::rollback(&steps[..done])
                .into_iter()
                .filter_map(|undo| undo_one(system, undo).err())
                .collect();
            if leftovers.is_empty() {
                return Err(Error::failed(format!("{cause}; everything this run changed is as it was")));
            }
            return Err(Error::RollbackIncomplete { cause: Box::new(Error::failed(cause)), leftovers });
        }
    }
    Ok(())
}

fn ownership(mode: u32) -> Ownership {
    Ownership { mode, uid: nix::unistd::getuid().as_raw(), gid: nix::unistd::getgid().as_raw() }
}

fn run(system: &dyn System, words: &[String]) -> std::result::Result<(), String> {
    let output = query(system, words);
    if output.success { Ok(()) } else { Err(format!("`{}` failed: {}", words.join(" "), output.output.trim())) }
}

/// An I/O error in words, naming the path.
fn io<'a>(what: &'a str, path: &'a Path) -> impl Fn(std::io::Error) -> String + 'a {
    move |e| format!("cannot {what} {}: {e}", path.display())
}

fn perform_one(system: &dyn System, step: &Step) -> std::result::Result<(), String> {
    match step {
        Step::OnFailure(_) => Ok(()),
        Step::MakeFolder(path) => system.create_dir(path, 0o755).map_err(io("create", path)),
        Step::Write { path, text, .. } => {
            system.write_atomic(path, text.as_bytes(), ownership(0o644)).map_err(io("write", path))
        }
        Step::Link { link, target } => system.symlink(target, link).map_err(io("link", link)),
        Step::RemoveFile { path, .. } => system.remove_file(path).map_err(io("remove", path)),
        Step::RemoveFolder(path) => system.remove_dir(path).map_err(io("remove", path)),
        Step::Run { args, .. } => run(system, args),
        Step::Prove { listen, manager, pid_query } => prove(system, *listen, *manager, pid_query),
    }
}

fn undo_one(system: &dyn System, undo: Undo) -> std::result::Result<(), String> {
    match undo {
        Undo::RemoveFolder(path) => system.remove_dir(&path).map_err(io("restore", &path)),
        Undo::MakeFolder(path) => system.create_dir(&path, 0o755).map_err(io("restore", &path)),
        Undo::Remove(path) => system.remove_file(&path).map_err(io("restore", &path)),
        Undo::Write(path, text) => {
            system.write_atomic(&path, text.as_bytes(), ownership(0o644)).map_err(io("restore", &path))
        }
        Undo::Link(link, target) => system.symlink(&target, &link).map_err(io("restore", &link)),
        Undo::Run(words) => run(system, &words),
    }
}

/// A real request through the service's port, without credentials: the
/// service adds them, so a 200 from the process the manager runs (not
/// from a `connect` someone else started on the port) proves it runs and
/// logs in.
fn prove(
    system: &dyn System,
    listen: SocketAddr,
    manager: Manager,
    pid_query: &[String],
) -> std::result::Result<(), String> {
    let url = Url::parse(&format!("http://{listen}/api/version")).map_err(|e| e.to_string())?;
    let request =
        HttpRequest { timeout: Duration::from_secs(2), follow_redirects: false, ..HttpRequest::get(url.clone()) };
    let start = system.now();
    loop {
        let service = service_pid(system, manager, pid_query);
        let last = match (system.http(&request), listener(system, listen)) {
            (Ok(reply), Some(Ok(owner))) if reply.status == 200 && Some(owner.pid) == service => return Ok(()),
            // macOS has no /proc to tell a port's owner by: the agent runs
            // and the port answers for it.
            (Ok(reply), _) if reply.status == 200 && manager == Manager::Launchd && service.is_some() => {
                return Ok(());
            }
            (Ok(reply), Some(Ok(owner))) if reply.status == 200 => {
                format!("PID {} answers there, the service is {service:?}", owner.pid)
            }
            (Ok(reply), _) => format!("it answered {}", reply.status),
            (Err(e), _) => e,
        };
        if system.now().duration_since(start).unwrap_or_default() > PROOF_TIMEOUT {
            let why = match manager {
                Manager::Systemd => format!("`journalctl --user -u {}` says why", user_service::SYSTEMD_UNIT),
                Manager::Launchd => {
                    format!("`{}` shows its last exit status", pid_query.join(" "))
                }
            };
            return Err(format!(
                "the service did not answer 200 at {url} within {} s ({last}); {why}",
                PROOF_TIMEOUT.as_secs()
            ));
        }
        system.sleep(Duration::from_millis(200));
    }
}
