//! `connect --install` / `--uninstall`: the per-user service that runs
//! `connect` at login, a systemd user unit on Linux and a launchd agent on
//! macOS. Pure: the service file's text, where it goes, and the steps that
//! install or remove it, planned from what is on disk (`Found`). The
//! command (`commands::connect_service`) gathers the facts, prints the
//! steps for `--dry-run` or performs them.
//!
//! The service file records the folders that were made for it, so that
//! `--uninstall` removes those (when empty) and never a folder that was
//! there before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The first line of every service file we write; a file without it is
/// not ours, and neither replaced nor removed.
const MARK: &str = "Written by ollama-secure (connect, install); its uninstall removes it.";
/// Each folder made for the service, one per line after the mark.
const MADE: &str = "made by ollama-secure: ";

pub const SYSTEMD_UNIT: &str = "ollama-secure-connect.service";
pub const LAUNCHD_LABEL: &str = "com.ollama-secure.connect";
/// `connect`'s flag for a launchd agent: a failure that retrying cannot
/// mend (exit status 2 or 3) ends with status 0.
pub const LAUNCHD_AGENT_FLAG: &str = "--as-launchd-agent";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    /// A systemd user unit, enabled for `default.target` (login).
    Systemd,
    /// A launchd agent in `~/Library/LaunchAgents`, loaded at login.
    Launchd,
}

/// Where the service's files go, from the user's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub manager: Manager,
    /// The service file.
    pub file: PathBuf,
    /// systemd: the `default.target.wants` link that enables it.
    pub link: Option<PathBuf>,
    /// The folders the files need, outermost first; the first is one that
    /// must exist already (the home folder, or `$XDG_CONFIG_HOME`'s parent).
    pub folders: Vec<PathBuf>,
    /// launchd's domain (`gui/UID`).
    pub domain: String,
}

impl Location {
    /// systemd: `$XDG_CONFIG_HOME/systemd/user` (`~/.config` without it,
    /// or when it is not absolute, as the XDG specification says).
    pub fn systemd(home: &Path, xdg_config_home: Option<&str>) -> Result<Location> {
        let config = match xdg_config_home.map(PathBuf::from) {
            Some(dir) if dir.is_absolute() => dir,
            _ => home.join(".config"),
        };
        let user = config.join("systemd").join("user");
        let wants = user.join("default.target.wants");
        let mut folders: Vec<PathBuf> = config.ancestors().skip(1).take(1).map(Path::to_path_buf).collect();
        folders.extend([config.clone(), config.join("systemd"), user.clone(), wants.clone()]);
        let location = Location {
            manager: Manager::Systemd,
            file: user.join(SYSTEMD_UNIT),
            link: Some(wants.join(SYSTEMD_UNIT)),
            folders,
            domain: String::new(),
        };
        location.check_paths()?;
        Ok(location)
    }

    /// launchd: `~/Library/LaunchAgents`, in the domain of the user's login.
    pub fn launchd(home: &Path, uid: u32) -> Result<Location> {
        let agents = home.join("Library").join("LaunchAgents");
        let location = Location {
            manager: Manager::Launchd,
            file: agents.join(format!("{LAUNCHD_LABEL}.plist")),
            link: None,
            folders: vec![home.to_path_buf(), home.join("Library"), agents],
            domain: format!("gui/{uid}"),
        };
        location.check_paths()?;
        Ok(location)
    }

    /// Folders are recorded in the file, one per line: a path that cannot
    /// be written there (a line break, an XML comment's `--`) is refused.
    fn check_paths(&self) -> Result<()> {
        for path in self.folders.iter().chain([&self.file]) {
            let text = path.to_str().ok_or_else(|| Error::input(format!("{}: not UTF-8", path.display())))?;
            if text.chars().any(char::is_control) || text.contains("--") {
                return Err(Error::input(format!(
                    "{text:?}: the service's folder cannot be recorded (a control character or \"--\" in it)"
                )));
            }
        }
        Ok(())
    }
}

/// The service file's text: the mark, the folders made for it, and what
/// runs `program` with `args` at login, restarting it when it fails.
pub fn service_text(manager: Manager, program: &str, args: &[String], made: &[PathBuf]) -> Result<String> {
    for word in std::iter::once(program).chain(args.iter().map(String::as_str)) {
        if word.chars().any(char::is_control) {
            return Err(Error::input(format!("{word:?}: a control character cannot go in the service's command")));
        }
    }
    // systemd takes the program's path literally: no `$$` or `%%` escapes there.
    if manager == Manager::Systemd && (program.contains('$') || program.contains('%')) {
        return Err(Error::input(format!(
            "{program}: a systemd unit cannot run a program whose path holds `$` or `%`; install ollama-secure elsewhere"
        )));
    }
    let made: Vec<String> = made.iter().map(|p| p.display().to_string()).collect();
    Ok(match manager {
        Manager::Systemd => systemd_unit(program, args, &made),
        Manager::Launchd => launchd_plist(program, args, &made),
    })
}

fn systemd_unit(program: &str, args: &[String], made: &[String]) -> String {
    let mut text = format!("# {MARK}\n");
    for folder in made {
        text.push_str(&format!("# {MADE}{folder}\n"));
    }
    let command: Vec<String> =
        std::iter::once(program).chain(args.iter().map(String::as_str)).map(systemd_word).collect();
    text.push_str(&format!(
        "[Unit]\n\
         Description=ollama-secure connect: a local port to a protected Ollama server\n\
         \n\
         [Service]\n\
         ExecStart={}\n\
         # A user manager cannot wait for the system's network: a server\n\
         # unreachable at login is tried again. Wrong credentials (3) or a\n\
         # wrong command (2) stay wrong: stop.\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         RestartPreventExitStatus=2 3\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        command.join(" ")
    ));
    text
}

/// One word of `ExecStart=`, double-quoted: systemd expands `%` specifiers
/// and `$` variables inside quotes too, so both are doubled.
fn systemd_word(word: &str) -> String {
    let mut quoted = String::from("\"");
    for c in word.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            '%' => quoted.push_str("%%"),
            '$' => quoted.push_str("$$"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn launchd_plist(program: &str, args: &[String], made: &[String]) -> String {
    let mut text = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    text.push_str(&format!("<!-- {MARK} -->\n"));
    for folder in made {
        text.push_str(&format!("<!-- {MADE}{} -->\n", xml_text(folder)));
    }
    text.push_str(
        "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n",
    );
    text.push_str(&format!("  <key>Label</key>\n  <string>{LAUNCHD_LABEL}</string>\n"));
    text.push_str("  <key>ProgramArguments</key>\n  <array>\n");
    for word in std::iter::once(program).chain(args.iter().map(String::as_str)).chain([LAUNCHD_AGENT_FLAG]) {
        text.push_str(&format!("    <string>{}</string>\n", xml_text(word)));
    }
    text.push_str(
        "  </array>\n  <key>RunAtLoad</key>\n  <true/>\n\
         \x20 <!-- Started again when it fails (an unreachable server at login), at most every 10 s.\n\
         \x20      launchd cannot be told which exit statuses are final: with the last argument,\n\
         \x20      wrong credentials or a wrong command end with status 0, and it is not restarted. -->\n\
         \x20 <key>KeepAlive</key>\n  <dict>\n    <key>SuccessfulExit</key>\n    <false/>\n  </dict>\n\
         \x20 <key>ThrottleInterval</key>\n  <integer>10</integer>\n\
         </dict>\n</plist>\n",
    );
    text
}

fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The folders a service file says were made for it.
pub fn made_folders(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            // Only the plist's XML comments are escaped; a unit's lines hold the path as it is.
            if let Some(folder) = line.strip_prefix("# ").and_then(|rest| rest.strip_prefix(MADE)) {
                return Some(PathBuf::from(folder));
            }
            let folder = line.strip_prefix("<!-- ")?.strip_prefix(MADE)?;
            let folder = folder.strip_suffix(" -->").unwrap_or(folder);
            let folder = folder.replace("&quot;", "\"").replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&");
            Some(PathBuf::from(folder))
        })
        .collect()
}

/// Whether a service file is one we wrote.
pub fn is_ours(text: &str) -> bool {
    text.lines().take(2).any(|line| line.contains(MARK))
}

/// What is on disk where the service goes, and what its manager says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Found {
    /// The service file: `None` when missing, else its text (`Err` when it
    /// is not a regular readable UTF-8 file).
    pub file: Option<std::result::Result<String, String>>,
    /// Where the enabling link points, when there is one (`Err`: something
    /// else is there).
    pub link: Option<std::result::Result<PathBuf, String>>,
    /// Which of the location's folders exist (a link to a folder counts).
    pub existing_folders: Vec<PathBuf>,
    /// What else each folder holds (for removing a folder only when empty).
    pub folder_entries: Vec<(PathBuf, Vec<PathBuf>)>,
    /// The service manager runs for this user now (systemd: its private
    /// socket listens; launchd: always, in a login session).
    pub manager_running: bool,
    /// The manager runs the service now (systemd: active; launchd: a
    /// process runs for the agent).
    pub service_running: bool,
    /// launchd: the agent is loaded, whether or not a process runs for it
    /// (one that ended with status 0 stays loaded). systemd: as running.
    pub service_loaded: bool,
}

/// One thing `--install` or `--uninstall` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Does nothing; when a later step fails, runs these, in this order,
    /// after every later step is undone (the old unit back in place).
    OnFailure(Vec<Vec<String>>),
    MakeFolder(PathBuf),
    /// Writes the service file (mode 0644: it holds no secret, only the
    /// paths of the files that do). `previous`: the text it replaces.
    Write {
        path: PathBuf,
        text: String,
        previous: Option<String>,
    },
    Link {
        link: PathBuf,
        target: PathBuf,
    },
    /// Removes the service file (`text`, to restore on failure) or a link.
    RemoveFile {
        path: PathBuf,
        text: Option<String>,
        link_target: Option<PathBuf>,
    },
    RemoveFolder(PathBuf),
    /// A command, and the one that undoes it (if any).
    Run {
        args: Vec<String>,
        undo: Option<Vec<String>>,
    },
    /// A real request through the new service's port answers 200, and the
    /// process listening there is the one the manager runs (`pid_query`
    /// prints its PID, read by `service_pid`), not a `connect` run by hand.
    Prove {
        listen: SocketAddr,
        manager: Manager,
        pid_query: Vec<String>,
    },
}

/// What undoes a performed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    RemoveFolder(PathBuf),
    MakeFolder(PathBuf),
    Remove(PathBuf),
    Write(PathBuf, String),
    Link(PathBuf, PathBuf),
    Run(Vec<String>),
}

/// What undoes `step`, in the order it is undone.
pub fn undo_of(step: &Step) -> Vec<Undo> {
    match step {
        Step::OnFailure(commands) => commands.iter().cloned().map(Undo::Run).collect(),
        Step::MakeFolder(path) => vec![Undo::RemoveFolder(path.clone())],
        Step::Write { path, previous: Some(previous), .. } => vec![Undo::Write(path.clone(), previous.clone())],
        Step::Write { path, previous: None, .. } | Step::Link { link: path, .. } => vec![Undo::Remove(path.clone())],
        Step::RemoveFile { path, text: Some(text), .. } => vec![Undo::Write(path.clone(), text.clone())],
        Step::RemoveFile { path, text: None, link_target: Some(target) } => {
            vec![Undo::Link(path.clone(), target.clone())]
        }
        Step::RemoveFile { .. } | Step::Prove { .. } => vec![],
        Step::RemoveFolder(path) => vec![Undo::MakeFolder(path.clone())],
        Step::Run { undo, .. } => undo.iter().cloned().map(Undo::Run).collect(),
    }
}

/// Everything that undoes the steps performed before one failed, newest
/// first.
pub fn rollback(performed: &[Step]) -> Vec<Undo> {
    performed.iter().rev().flat_map(undo_of).collect()
}

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn systemctl(args: &[&str]) -> Vec<String> {
    words(&[&["systemctl", "--user"], args].concat())
}

impl Location {
    fn launchd_service(&self) -> String {
        format!("{}/{LAUNCHD_LABEL}", self.domain)
    }

    /// The command whose output says whether the manager runs the service
    /// (its exit status, and for systemd its output: `active`).
    pub fn state_query(&self) -> Vec<String> {
        match self.manager {
            Manager::Systemd => systemctl(&["is-active", SYSTEMD_UNIT]),
            Manager::Launchd => words(&["launchctl", "print", &self.launchd_service()]),
        }
    }

    /// The command that prints the PID of the service's process.
    pub fn pid_query(&self) -> Vec<String> {
        match self.manager {
            Manager::Systemd => systemctl(&["show", "--property", "MainPID", "--value", SYSTEMD_UNIT]),
            Manager::Launchd => words(&["launchctl", "print", &self.launchd_service()]),
        }
    }

    /// The steps that start the service from the file on disk and prove it.
    fn start(&self, listen: SocketAddr, undo: Option<Vec<String>>) -> Vec<Step> {
        let args = match self.manager {
            Manager::Systemd => systemctl(&["restart", SYSTEMD_UNIT]),
            Manager::Launchd => words(&["launchctl", "bootstrap", &self.domain, &self.file.display().to_string()]),
        };
        vec![Step::Run { args, undo }, Step::Prove { listen, manager: self.manager, pid_query: self.pid_query() }]
    }

    fn stop(&self) -> Vec<String> {
        match self.manager {
            Manager::Systemd => systemctl(&["stop", SYSTEMD_UNIT]),
            Manager::Launchd => words(&["launchctl", "bootout", &self.launchd_service()]),
        }
    }
}

/// The configuration folder in a systemd user manager's unit path (its
/// entries separated by spaces): the one whose `systemd/user` has
/// `systemd/user.control` listed too.
pub fn config_home_in_unit_path(unit_path: &str) -> Option<String> {
    let entries: Vec<&str> = unit_path.split_whitespace().collect();
    entries.iter().find_map(|entry| {
        let config = entry.strip_suffix("/systemd/user")?;
        entries.contains(&format!("{entry}.control").as_str()).then(|| config.to_string())
    })
}

/// Whether the output of `state_query` (with its exit status) says the
/// service runs.
pub fn service_running(manager: Manager, success: bool, output: &str) -> bool {
    match manager {
        Manager::Systemd => matches!(output.trim(), "active" | "activating" | "reloading"),
        Manager::Launchd => success && service_pid(manager, output).is_some(),
    }
}

/// The service's PID from the output of `pid_query` (systemd: the bare
/// number, 0 when it runs nothing; launchd: the `pid = N` line).
pub fn service_pid(manager: Manager, output: &str) -> Option<u32> {
    let pid = match manager {
        Manager::Systemd => output.trim().parse().ok(),
        Manager::Launchd => {
            output.lines().find_map(|line| line.trim().strip_prefix("pid = ")).and_then(|pid| pid.trim().parse().ok())
        }
    };
    pid.filter(|pid| *pid > 0)
}

/// The steps that install the service so that its file says what `render`
/// makes (given the folders made for it) and, where the manager runs,
/// (re)start it and prove it answers on `listen`. A failure puts the old
/// file back and the old service in the state it was: running, or not.
/// No steps: nothing to change.
pub fn install(
    location: &Location,
    found: &Found,
    render: impl Fn(&[PathBuf]) -> Result<String>,
    listen: SocketAddr,
) -> Result<Vec<Step>> {
    let previous = match &found.file {
        None => None,
        Some(Err(why)) => return Err(Error::failed(format!("{}: {why}; remove it first", location.file.display()))),
        Some(Ok(text)) if !is_ours(text) => {
            return Err(Error::failed(format!(
                "{} exists and was not written by ollama-secure: move it away or remove it first",
                location.file.display()
            )));
        }
        Some(Ok(text)) => Some(text.clone()),
    };
    let mut steps = Vec::new();
    // The outermost folder must be there (the home folder); the others are
    // made, and recorded, as needed.
    let (root, inner) = location.folders.split_first().ok_or_else(|| Error::failed("no folder for the service"))?;
    if !found.existing_folders.contains(root) {
        return Err(Error::failed(format!("{} does not exist: set HOME to your home folder", root.display())));
    }
    let mut made = previous.as_deref().map(made_folders).unwrap_or_default();
    for folder in inner {
        if !found.existing_folders.contains(folder) {
            steps.push(Step::MakeFolder(folder.clone()));
            if !made.contains(folder) {
                made.push(folder.clone());
            }
        }
    }
    let text = render(&made)?;
    if previous.as_deref() != Some(text.as_str()) {
        steps.push(Step::Write { path: location.file.clone(), text, previous: previous.clone() });
    }
    if let Some(link) = &location.link {
        match &found.link {
            Some(Ok(target)) if target == &location.file => {}
            Some(Ok(target)) => {
                return Err(Error::failed(format!(
                    "{} points to {}, not to our unit: remove it first",
                    link.display(),
                    target.display()
                )));
            }
            Some(Err(why)) => return Err(Error::failed(format!("{}: {why}; remove it first", link.display()))),
            None => steps.push(Step::Link { link: link.clone(), target: location.file.clone() }),
        }
    }
    if !found.manager_running {
        return Ok(steps);
    }
    if steps.is_empty() {
        // Installed as asked; stopped (wrong credentials at its last start,
        // or stopped by hand) it is started again, and proven.
        if found.service_running {
            return Ok(steps);
        }
        if location.manager == Manager::Launchd && found.service_loaded {
            steps.push(Step::Run { args: location.stop(), undo: None });
        }
        steps.extend(location.start(listen, Some(location.stop())));
        return Ok(steps);
    }
    let running = found.service_running;
    let mut all = Vec::new();
    match location.manager {
        Manager::Systemd => {
            // Undone last: the manager reads the old unit again, and runs
            // it if it ran.
            let mut again = vec![systemctl(&["daemon-reload"])];
            if running {
                again.push(systemctl(&["restart", SYSTEMD_UNIT]));
            }
            all.push(Step::OnFailure(again));
            all.extend(steps);
            all.push(Step::Run { args: systemctl(&["daemon-reload"]), undo: None });
        }
        Manager::Launchd => {
            if found.service_loaded {
                let Some(_) = &previous else {
                    return Err(Error::failed(format!(
                        "the launchd agent {LAUNCHD_LABEL} is loaded but {} is gone: unload it first (launchctl bootout {})",
                        location.file.display(),
                        location.launchd_service()
                    )));
                };
                all.push(Step::Run { args: location.stop(), undo: None });
                // After the unload: were that to fail, nothing is to be loaded again.
                if running {
                    let file = location.file.display().to_string();
                    all.push(Step::OnFailure(vec![words(&["launchctl", "bootstrap", &location.domain, &file])]));
                }
            }
            all.extend(steps);
        }
    }
    // A service that ran before is brought back by `OnFailure`; one that
    // did not is stopped again. launchd loads an agent only once: the new
    // one is always unloaded first.
    let undo_start = match location.manager {
        Manager::Systemd => (!running).then(|| location.stop()),
        Manager::Launchd => Some(location.stop()),
    };
    all.extend(location.start(listen, undo_start));
    Ok(all)
}

/// The steps that stop the service and remove its files, and the folders
/// made for it that nothing else has filled since. No steps: nothing is
/// installed.
pub fn uninstall(location: &Location, found: &Found) -> Result<Vec<Step>> {
    let text = match &found.file {
        None => None,
        Some(Err(why)) => return Err(Error::failed(format!("{}: {why}; not removed", location.file.display()))),
        Some(Ok(text)) if !is_ours(text) => {
            return Err(Error::failed(format!(
                "{} was not written by ollama-secure: not removed",
                location.file.display()
            )));
        }
        Some(Ok(text)) => Some(text.clone()),
    };
    let mut steps = Vec::new();
    let mut removed = Vec::new();
    // Only ours: a unit of that name from elsewhere, without our file, is left alone.
    if found.manager_running && found.service_loaded && text.is_some() {
        let start_again = match location.manager {
            Manager::Systemd => systemctl(&["start", SYSTEMD_UNIT]),
            Manager::Launchd => {
                words(&["launchctl", "bootstrap", &location.domain, &location.file.display().to_string()])
            }
        };
        steps.push(Step::Run { args: location.stop(), undo: found.service_running.then_some(start_again) });
    }
    if let (Some(link), Some(Ok(target))) = (&location.link, &found.link)
        && target == &location.file
    {
        steps.push(Step::RemoveFile { path: link.clone(), text: None, link_target: Some(target.clone()) });
        removed.push(link.clone());
    }
    let Some(text) = text else {
        return Ok(steps);
    };
    steps.push(Step::RemoveFile { path: location.file.clone(), text: Some(text.clone()), link_target: None });
    removed.push(location.file.clone());
    // Innermost first; a folder goes only when all it holds goes too.
    let made = made_folders(&text);
    for folder in location.folders.iter().rev().filter(|f| made.contains(f) && found.existing_folders.contains(f)) {
        let entries =
            found.folder_entries.iter().find(|(dir, _)| dir == folder).map(|(_, e)| e.as_slice()).unwrap_or(&[]);
        if entries.iter().all(|entry| removed.contains(entry)) {
            steps.push(Step::RemoveFolder(folder.clone()));
            removed.push(folder.clone());
        }
    }
    if found.manager_running && location.manager == Manager::Systemd {
        steps.push(Step::Run { args: systemctl(&["daemon-reload"]), undo: None });
    }
    Ok(steps)
}

/// The steps in words, as `--dry-run` prints them (the service file whole:
/// it holds no secret).
pub fn describe(steps: &[Step]) -> String {
    let mut text = String::new();
    for step in steps {
        match step {
            Step::OnFailure(commands) => {
                let commands: Vec<String> = commands.iter().map(|c| c.join(" ")).collect();
                text.push_str(&format!("if a later step fails, once all is put back: run {}\n", commands.join("; ")))
            }
            Step::MakeFolder(path) => text.push_str(&format!("create folder {} (mode 0755)\n", path.display())),
            Step::Write { path, text: content, previous } => {
                let verb = if previous.is_some() { "replace" } else { "write" };
                text.push_str(&format!("{verb} {} (mode 0644):\n", path.display()));
                for line in content.lines() {
                    text.push_str(&format!("    {line}\n"));
                }
            }
            Step::Link { link, target } => {
                text.push_str(&format!("link {} -> {} (enables it at login)\n", link.display(), target.display()))
            }
            Step::RemoveFile { path, .. } => text.push_str(&format!("remove {}\n", path.display())),
            Step::RemoveFolder(path) => {
                text.push_str(&format!("remove folder {} (made for it, now empty)\n", path.display()))
            }
            Step::Run { args, .. } => text.push_str(&format!("run: {}\n", args.join(" "))),
            Step::Prove { listen, .. } => text.push_str(&format!(
                "check: GET http://{listen}/api/version answers 200, from the process the manager runs\n"
            )),
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Vec<String> {
        words(&[
            "connect",
            "--url",
            "https://o.example.com/a b",
            "--listen",
            "127.0.0.1:11434",
            "--api-key-file",
            "/home/al ice/k%h$HOME\"\\",
        ])
    }

    fn listen() -> SocketAddr {
        "127.0.0.1:11434".parse().unwrap()
    }

    fn location() -> Location {
        Location::systemd(Path::new("/home/al"), None).unwrap()
    }

    fn render(made: &[PathBuf]) -> Result<String> {
        service_text(Manager::Systemd, "/usr/bin/ollama-secure", &args(), made)
    }

    #[test]
    fn exec_start_quotes_every_word_the_way_systemd_reads_it() {
        let text = render(&[]).unwrap();
        let exec = text.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
        assert_eq!(
            exec,
            r#"ExecStart="/usr/bin/ollama-secure" "connect" "--url" "https://o.example.com/a b" "--listen" "127.0.0.1:11434" "--api-key-file" "/home/al ice/k%%h$$HOME\"\\""#
        );
        assert!(text.contains("RestartPreventExitStatus=2 3\n") && text.contains("WantedBy=default.target\n"));
        let bad = service_text(Manager::Systemd, "/bin/x", &words(&["a\nExecStartPre=/bin/evil"]), &[]);
        assert!(bad.is_err());
    }

    #[test]
    fn xdg_config_home_is_used_only_when_absolute() {
        let l = Location::systemd(Path::new("/home/al"), Some("/srv/cfg")).unwrap();
        assert_eq!(l.file, Path::new("/srv/cfg/systemd/user/ollama-secure-connect.service"));
        assert_eq!(l.folders[0], Path::new("/srv"));
        let l = Location::systemd(Path::new("/home/al"), Some("relative")).unwrap();
        assert_eq!(
            l.link.unwrap(),
            Path::new("/home/al/.config/systemd/user/default.target.wants/ollama-secure-connect.service")
        );
        assert!(Location::systemd(Path::new("/home/a--b"), None).is_err());
        assert!(Location::systemd(Path::new("/home/a\nb"), None).is_err());
    }

    fn fresh() -> Found {
        Found { existing_folders: vec!["/home".into(), "/home/al".into()], ..Found::default() }
    }

    #[test]
    fn a_first_install_makes_and_records_the_folders_it_needs() {
        let steps = install(&location(), &fresh(), render, listen()).unwrap();
        let made: Vec<&Path> =
            steps.iter().filter_map(|s| if let Step::MakeFolder(p) = s { Some(p.as_path()) } else { None }).collect();
        let expected = [
            "/home/al/.config",
            "/home/al/.config/systemd",
            "/home/al/.config/systemd/user",
            "/home/al/.config/systemd/user/default.target.wants",
        ];
        assert_eq!(made, expected.map(Path::new));
        let Some(Step::Write { text, previous: None, .. }) = steps.iter().find(|s| matches!(s, Step::Write { .. }))
        else {
            panic!()
        };
        assert_eq!(made_folders(text), expected.map(PathBuf::from));
        assert!(is_ours(text));
        assert!(matches!(steps.last(), Some(Step::Link { .. })), "no manager: nothing started, nothing proven");
    }

    fn installed(found: &Found) -> Found {
        let steps = install(&location(), found, render, listen()).unwrap();
        let mut after = found.clone();
        for step in steps {
            match step {
                Step::MakeFolder(p) => after.existing_folders.push(p),
                Step::Write { text, .. } => after.file = Some(Ok(text)),
                Step::Link { target, .. } => after.link = Some(Ok(target)),
                _ => {}
            }
        }
        let l = location();
        after.folder_entries = vec![
            (l.folders[4].clone(), vec![l.link.clone().unwrap()]),
            (l.folders[3].clone(), vec![l.file.clone(), l.folders[4].clone()]),
            (l.folders[2].clone(), vec![l.folders[3].clone()]),
            (l.folders[1].clone(), vec![l.folders[2].clone()]),
        ];
        after
    }

    #[test]
    fn a_second_install_changes_nothing_and_uninstall_removes_what_install_made() {
        let mut found = installed(&fresh());
        assert_eq!(install(&location(), &found, render, listen()).unwrap(), vec![]);
        found.manager_running = true;
        found.service_running = true;
        found.service_loaded = true;
        assert_eq!(
            install(&location(), &found, render, listen()).unwrap(),
            vec![],
            "running as asked: nothing to change"
        );
        let steps = uninstall(&location(), &found).unwrap();
        let text = describe(&steps);
        assert_eq!(
            text,
            "run: systemctl --user stop ollama-secure-connect.service\n\
             remove /home/al/.config/systemd/user/default.target.wants/ollama-secure-connect.service\n\
             remove /home/al/.config/systemd/user/ollama-secure-connect.service\n\
             remove folder /home/al/.config/systemd/user/default.target.wants (made for it, now empty)\n\
             remove folder /home/al/.config/systemd/user (made for it, now empty)\n\
             remove folder /home/al/.config/systemd (made for it, now empty)\n\
             remove folder /home/al/.config (made for it, now empty)\n\
             run: systemctl --user daemon-reload\n"
        );
        assert_eq!(uninstall(&location(), &fresh()).unwrap(), vec![], "nothing installed: nothing to do");
    }

    #[test]
    fn folders_that_were_there_or_hold_something_else_stay() {
        let mut before = fresh();
        before.existing_folders.push("/home/al/.config".into());
        let mut found = installed(&before);
        // Something else moved into ~/.config/systemd since.
        found.folder_entries[2].1.push("/home/al/.config/systemd/system.conf".into());
        let steps = uninstall(&location(), &found).unwrap();
        let folders: Vec<&Path> =
            steps.iter().filter_map(|s| if let Step::RemoveFolder(p) = s { Some(p.as_path()) } else { None }).collect();
        assert_eq!(
            folders,
            ["/home/al/.config/systemd/user/default.target.wants", "/home/al/.config/systemd/user"].map(Path::new)
        );
    }

    #[test]
    fn a_running_manager_restarts_the_service_and_the_answer_is_proven() {
        let mut found = installed(&fresh());
        found.manager_running = true;
        found.service_running = true;
        found.service_loaded = true;
        let changed = |made: &[PathBuf]| {
            service_text(
                Manager::Systemd,
                "/usr/bin/ollama-secure",
                &words(&["connect", "--listen", "127.0.0.1:9"]),
                made,
            )
        };
        let steps = install(&location(), &found, changed, "127.0.0.1:9".parse().unwrap()).unwrap();
        assert_eq!(
            describe(&steps).lines().filter(|l| !l.starts_with("    ")).collect::<Vec<_>>(),
            [
                "if a later step fails, once all is put back: run systemctl --user daemon-reload; systemctl --user restart ollama-secure-connect.service",
                "replace /home/al/.config/systemd/user/ollama-secure-connect.service (mode 0644):",
                "run: systemctl --user daemon-reload",
                "run: systemctl --user restart ollama-secure-connect.service",
                "check: GET http://127.0.0.1:9/api/version answers 200, from the process the manager runs",
            ]
        );
        let Step::Write { text, previous: Some(old), .. } = &steps[1] else { panic!() };
        assert_eq!(made_folders(text).len(), 4, "the folders made by the first install stay recorded");
        // The proof fails: the old unit is back, read again and running.
        assert_eq!(
            rollback(&steps[..4]),
            [
                Undo::Write(location().file, old.clone()),
                Undo::Run(systemctl(&["daemon-reload"])),
                Undo::Run(systemctl(&["restart", SYSTEMD_UNIT])),
            ]
        );
    }

    #[test]
    fn a_failed_install_of_a_service_that_did_not_run_leaves_it_stopped_and_unread() {
        let mut found = fresh();
        found.manager_running = true;
        let steps = install(&location(), &found, render, listen()).unwrap();
        let l = location();
        let performed = &steps[..steps.len() - 1];
        assert!(matches!(steps.last(), Some(Step::Prove { .. })));
        let undo = rollback(performed);
        assert_eq!(undo[0], Undo::Run(systemctl(&["stop", SYSTEMD_UNIT])), "stopped before its file goes");
        assert_eq!(undo[1], Undo::Remove(l.link.clone().unwrap()));
        assert_eq!(undo[2], Undo::Remove(l.file.clone()));
        assert_eq!(undo.last(), Some(&Undo::Run(systemctl(&["daemon-reload"]))), "read again once the files are gone");
        assert_eq!(undo.iter().filter(|u| matches!(u, Undo::RemoveFolder(_))).count(), 4);
    }

    #[test]
    fn an_installed_service_that_stopped_is_started_again_and_proven() {
        let mut found = installed(&fresh());
        found.manager_running = true;
        assert_eq!(
            describe(&install(&location(), &found, render, listen()).unwrap()),
            "run: systemctl --user restart ollama-secure-connect.service\n\
             check: GET http://127.0.0.1:11434/api/version answers 200, from the process the manager runs\n"
        );
        // A launchd agent that is loaded but ended (status 0 after refused
        // credentials) is unloaded and loaded again.
        let agent = Location::launchd(Path::new("/Users/al"), 501).unwrap();
        let plist = |made: &[PathBuf]| service_text(Manager::Launchd, "/opt/homebrew/bin/ollama-secure", &[], made);
        let mut ended = Found {
            existing_folders: agent.folders.clone(),
            manager_running: true,
            service_loaded: true,
            ..Found::default()
        };
        ended.file = Some(Ok(plist(&[]).unwrap()));
        assert_eq!(
            describe(&install(&agent, &ended, plist, listen()).unwrap()).lines().collect::<Vec<_>>(),
            [
                "run: launchctl bootout gui/501/com.ollama-secure.connect",
                "run: launchctl bootstrap gui/501 /Users/al/Library/LaunchAgents/com.ollama-secure.connect.plist",
                "check: GET http://127.0.0.1:11434/api/version answers 200, from the process the manager runs",
            ]
        );
        // Loaded, with our file gone: refused, not unloaded.
        ended.file = None;
        assert!(install(&agent, &ended, plist, listen()).unwrap_err().to_string().contains("is loaded but"));
        // Nor does uninstall stop a unit of that name that is not from our file.
        let mut elsewhere = fresh();
        elsewhere.manager_running = true;
        elsewhere.service_running = true;
        elsewhere.service_loaded = true;
        assert_eq!(uninstall(&location(), &elsewhere).unwrap(), vec![]);
        // Uninstalling a stopped service does not stop it, nor start it on failure.
        assert!(!uninstall(&location(), &found).unwrap().iter().any(|s| matches!(s, Step::Run { undo: Some(_), .. })));
    }

    #[test]
    fn the_service_pid_and_state_are_read_from_what_the_manager_prints() {
        assert_eq!(service_pid(Manager::Systemd, "4242\n"), Some(4242));
        assert_eq!(service_pid(Manager::Systemd, "0\n"), None, "systemd prints 0 when nothing runs");
        let print = "gui/501/com.ollama-secure.connect = {\n\tactive count = 1\n\tpath = /Users/al/x.plist\n\tpid = 977\n\tstate = running\n}\n";
        assert_eq!(service_pid(Manager::Launchd, print), Some(977));
        assert_eq!(service_pid(Manager::Launchd, "\tstate = not running\n"), None);
        assert!(service_running(Manager::Systemd, true, "active\n"));
        assert!(!service_running(Manager::Systemd, false, "failed\n"));
        assert!(service_running(Manager::Launchd, true, print));
    }

    #[test]
    fn the_configuration_folder_is_read_from_the_managers_unit_path() {
        // As systemd 252 prints it for root, with XDG_CONFIG_HOME=/srv/cfg in the manager.
        let path = "/srv/cfg/systemd/user.control /run/user/0/systemd/user.control /run/user/0/systemd/transient \
                    /run/user/0/systemd/generator.early /srv/cfg/systemd/user /etc/systemd/user /run/systemd/user \
                    /root/.local/share/systemd/user /usr/lib/systemd/user\n";
        assert_eq!(config_home_in_unit_path(path).as_deref(), Some("/srv/cfg"));
        assert_eq!(config_home_in_unit_path("/etc/systemd/user /usr/lib/systemd/user"), None);
    }

    #[test]
    fn a_program_path_systemd_would_expand_is_refused() {
        for program in ["/opt/$HOME/ollama-secure", "/opt/100%/ollama-secure"] {
            let err = service_text(Manager::Systemd, program, &args(), &[]).unwrap_err();
            assert!(err.to_string().contains("`$` or `%`"), "{err}");
        }
        assert!(service_text(Manager::Launchd, "/opt/100%/ollama-secure", &args(), &[]).is_ok());
    }

    #[test]
    fn files_that_are_not_ours_are_neither_replaced_nor_removed() {
        let mut found = fresh();
        found.file = Some(Ok("[Service]\nExecStart=/bin/true\n".into()));
        assert!(
            install(&location(), &found, render, listen())
                .unwrap_err()
                .to_string()
                .contains("not written by ollama-secure")
        );
        assert!(uninstall(&location(), &found).unwrap_err().to_string().contains("not removed"));
        let mut found = installed(&fresh());
        found.link = Some(Ok("/elsewhere".into()));
        assert!(install(&location(), &found, render, listen()).is_err());
        assert!(!uninstall(&location(), &found).unwrap().iter().any(|s| matches!(s, Step::RemoveFile { path, .. } if path.ends_with("default.target.wants/ollama-secure-connect.service"))));
        let mut homeless = fresh();
        homeless.existing_folders.clear();
        assert!(install(&location(), &homeless, render, listen()).is_err());
    }

    #[test]
    fn the_launchd_agent_runs_the_same_command_and_is_loaded_into_the_login_domain() {
        let location = Location::launchd(Path::new("/Users/al"), 501).unwrap();
        let found = Found {
            existing_folders: vec!["/Users/al".into(), "/Users/al/Library".into()],
            manager_running: true,
            ..Found::default()
        };
        let render = |made: &[PathBuf]| {
            service_text(
                Manager::Launchd,
                "/opt/homebrew/bin/ollama-secure",
                &words(&["connect", "--url", "https://a.example/<&>"]),
                made,
            )
        };
        let steps = install(&location, &found, render, listen()).unwrap();
        let Some(Step::Write { text, path, .. }) = steps.iter().find(|s| matches!(s, Step::Write { .. })) else {
            panic!()
        };
        assert_eq!(path, Path::new("/Users/al/Library/LaunchAgents/com.ollama-secure.connect.plist"));
        assert_eq!(
            text.as_str(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <!-- Written by ollama-secure (connect, install); its uninstall removes it. -->\n\
             <!-- made by ollama-secure: /Users/al/Library/LaunchAgents -->\n\
             <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
             <plist version=\"1.0\">\n<dict>\n\
             \x20 <key>Label</key>\n  <string>com.ollama-secure.connect</string>\n\
             \x20 <key>ProgramArguments</key>\n  <array>\n\
             \x20   <string>/opt/homebrew/bin/ollama-secure</string>\n    <string>connect</string>\n\
             \x20   <string>--url</string>\n    <string>https://a.example/&lt;&amp;&gt;</string>\n\
             \x20   <string>--as-launchd-agent</string>\n\
             \x20 </array>\n  <key>RunAtLoad</key>\n  <true/>\n\
             \x20 <!-- Started again when it fails (an unreachable server at login), at most every 10 s.\n\
             \x20      launchd cannot be told which exit statuses are final: with the last argument,\n\
             \x20      wrong credentials or a wrong command end with status 0, and it is not restarted. -->\n\
             \x20 <key>KeepAlive</key>\n  <dict>\n    <key>SuccessfulExit</key>\n    <false/>\n  </dict>\n\
             \x20 <key>ThrottleInterval</key>\n  <integer>10</integer>\n\
             </dict>\n</plist>\n"
        );
        assert_eq!(made_folders(text), [PathBuf::from("/Users/al/Library/LaunchAgents")]);
        assert_eq!(
            describe(&steps).lines().filter(|l| !l.starts_with("    ")).collect::<Vec<_>>(),
            [
                "create folder /Users/al/Library/LaunchAgents (mode 0755)",
                "write /Users/al/Library/LaunchAgents/com.ollama-secure.connect.plist (mode 0644):",
                "run: launchctl bootstrap gui/501 /Users/al/Library/LaunchAgents/com.ollama-secure.connect.plist",
                "check: GET http://127.0.0.1:11434/api/version answers 200, from the process the manager runs",
            ]
        );
        let mut after = found.clone();
        after.existing_folders.push("/Users/al/Library/LaunchAgents".into());
        after.file = Some(Ok(text.clone()));
        after.service_running = true;
        after.service_loaded = true;
        // A new command for a loaded agent: unloaded, replaced, loaded; on
        // failure the new one is unloaded and the old one loaded again.
        let other = |made: &[PathBuf]| service_text(Manager::Launchd, "/opt/homebrew/bin/ollama-secure", &[], made);
        let again = install(&location, &after, other, listen()).unwrap();
        assert_eq!(
            describe(&again).lines().filter(|l| !l.starts_with("    ")).collect::<Vec<_>>(),
            [
                "run: launchctl bootout gui/501/com.ollama-secure.connect",
                "if a later step fails, once all is put back: run launchctl bootstrap gui/501 /Users/al/Library/LaunchAgents/com.ollama-secure.connect.plist",
                "replace /Users/al/Library/LaunchAgents/com.ollama-secure.connect.plist (mode 0644):",
                "run: launchctl bootstrap gui/501 /Users/al/Library/LaunchAgents/com.ollama-secure.connect.plist",
                "check: GET http://127.0.0.1:11434/api/version answers 200, from the process the manager runs",
            ]
        );
        assert_eq!(
            rollback(&again[..4]),
            [
                Undo::Run(words(&["launchctl", "bootout", "gui/501/com.ollama-secure.connect"])),
                Undo::Write(path.clone(), text.clone()),
                Undo::Run(words(&["launchctl", "bootstrap", "gui/501", &path.display().to_string()])),
            ]
        );
        after.folder_entries = vec![("/Users/al/Library/LaunchAgents".into(), vec![path.clone()])];
        assert_eq!(
            describe(&uninstall(&location, &after).unwrap()),
            "run: launchctl bootout gui/501/com.ollama-secure.connect\n\
             remove /Users/al/Library/LaunchAgents/com.ollama-secure.connect.plist\n\
             remove folder /Users/al/Library/LaunchAgents (made for it, now empty)\n"
        );
    }
}
