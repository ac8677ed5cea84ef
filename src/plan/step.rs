//! What a plan is made of: commands, and steps that each carry the actions
//! that undo them. Apply performs exactly these actions, and only these,
//! so `--dry-run` shows everything that can happen, rollback included.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::proxy::ProxyKind;
use crate::render::RenderedFile;
use crate::system::{Existing, Ownership};

/// Where a command's output goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// Captured and shown when the command fails (and as it comes, with `-v`).
    Capture,
    /// Captured for the tool to read, never echoed by `-v`: it holds another
    /// program's settings (ollama.service's `Environment=` may carry tokens).
    Private,
    /// Appended to a log file: for commands that leave a daemon behind, which
    /// would otherwise hold our pipe open.
    LogFile(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
    /// Extra environment (never secrets: it is printed).
    pub env: Vec<(String, String)>,
    pub output: Output,
}

impl Command {
    pub fn new(program: &str, args: &[&str]) -> Command {
        Command {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
            output: Output::Capture,
        }
    }

    pub fn arg_path(mut self, path: &Path) -> Command {
        self.args.push(path.to_string_lossy().into_owned());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Command {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Command {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn private_output(mut self) -> Command {
        self.output = Output::Private;
        self
    }

    pub fn log_to(mut self, path: &Path) -> Command {
        self.output = Output::LogFile(path.to_path_buf());
        self
    }
}

/// Quotes a word for display the way a POSIX shell would need it.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c));
    if plain { word.to_string() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={}", shell_word(v))).collect();
        words.push(shell_word(&self.program));
        words.extend(self.args.iter().map(|a| shell_word(a)));
        f.write_str(&words.join(" "))?;
        if let Output::LogFile(path) = &self.output {
            write!(f, " >>{} 2>&1", shell_word(&path.to_string_lossy()))?;
        }
        Ok(())
    }
}

/// A file's bytes, mode and owner, as the plan saw them: what an undo puts back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(with = "bytes_as_text")]
    pub content: Vec<u8>,
    pub ownership: Ownership,
}

/// Bytes in the journal: as a string when they are UTF-8 (config files
/// are), as numbers otherwise; a quarter of the size of numbers always.
mod bytes_as_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Bytes {
        Text(String),
        Raw(Vec<u8>),
    }

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(bytes) {
            Ok(text) => s.serialize_str(text),
            Err(_) => bytes.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(match Bytes::deserialize(d)? {
            Bytes::Text(text) => text.into_bytes(),
            Bytes::Raw(raw) => raw,
        })
    }
}

impl Snapshot {
    pub fn of(existing: &Existing) -> Option<Snapshot> {
        match existing {
            Existing::File { content, mode, uid, gid } => {
                Some(Snapshot { content: content.clone(), ownership: Ownership { mode: *mode, uid: *uid, gid: *gid } })
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Create,
    /// Replace an existing file, keeping its current bytes at `backup`.
    Replace {
        backup: PathBuf,
    },
    /// Edit a file of the user's (the proxy's main configuration): a backup
    /// is kept at `backup`, and the file keeps its mode and owner.
    Edit {
        backup: PathBuf,
        previous: Snapshot,
    },
    /// Replace content of our own (the state file; a stage written earlier
    /// in this plan), or our lines in a file of the user's: the file keeps
    /// its mode and owner, and `previous` is what an undo puts back.
    Overwrite {
        previous: Snapshot,
    },
}

/// What a command is for: how it is described, and what it waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    Install,
    /// Checks the whole configuration; on failure everything is rolled
    /// back. `ours`: the files of ours it reads, to tell an error in
    /// someone else's file from one in ours.
    Validate {
        ours: Vec<PathBuf>,
        /// A PID file the validator makes, empty, when it is missing
        /// (`nginx -t` does): removed again.
        empty_pid_file: Option<PathBuf>,
    },
    Start,
    /// `wait_for_old_workers`: the reload returns before the old workers
    /// have left; wait (up to 10 s) so what follows sees the new config.
    Reload {
        pid_file: PathBuf,
        wait_for_old_workers: bool,
    },
    /// Waits (up to 15 s) until the process in `pid_file` has exited, so
    /// what follows sees it gone and its ports free.
    Stop {
        pid_file: PathBuf,
    },
    /// `systemctl enable`: the proxy starts at boot.
    Enable,
    /// `systemctl disable`: it no longer does.
    Disable,
    /// `systemctl daemon-reload`, after a drop-in changed.
    ReloadUnits,
    /// `systemctl restart ollama`, so that it listens where its unit now says.
    RestartOllama,
    /// certbot through the webroot.
    ObtainCertificate {
        domain: String,
        http_port: u16,
    },
    DeleteCertificate,
    /// fail2ban, for `ban`: its whole configuration checked (on failure
    /// everything is rolled back; `ours`: our jail and filter), started,
    /// told to read its configuration again, stopped (each returns once
    /// done), and asked whether our jail runs (on failure, rolled back).
    ValidateBans {
        ours: Vec<PathBuf>,
    },
    VerifyBans,
    StartBans,
    ReloadBans,
    StopBans,
    /// Mounts a private tmpfs on a folder we made.
    Mount,
    /// Unmounts what is mounted at `at`, if anything is (after a reboot,
    /// nothing is).
    Unmount {
        at: PathBuf,
    },
}

/// How long waits in a plan last at most.
pub const OLD_WORKERS_LIMIT: Duration = Duration::from_secs(10);
pub const EXIT_LIMIT: Duration = Duration::from_secs(15);
pub const VERIFY_LIMIT: Duration = Duration::from_secs(10);
/// Ollama restarted: it listens within a second or two; a slow disk or a
/// GPU probe can take longer.
pub const LISTEN_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    CreateDir {
        path: PathBuf,
        /// 0755, or 0700 for a folder only root (and the proxy) may read.
        #[serde(default = "public_dir_mode")]
        mode: u32,
    },
    Write {
        file: RenderedFile,
        change: Change,
    },
    Link {
        link: PathBuf,
        target: PathBuf,
    },
    /// Removes a file or link.
    Remove {
        path: PathBuf,
    },
    /// Removes a folder if it is empty; one that holds something now (put
    /// there by another program) stays.
    RemoveDir {
        path: PathBuf,
    },
    /// Puts back the file that was there before, from its backup, which is
    /// then removed.
    Restore {
        path: PathBuf,
        from: PathBuf,
    },
    /// Writes a file back exactly as it was.
    PutBack {
        path: PathBuf,
        snapshot: Snapshot,
    },
    /// Makes a link again.
    PutBackLink {
        link: PathBuf,
        target: PathBuf,
    },
    /// Removes a cache folder and everything in it (its keys hold
    /// credentials), once the proxy no longer uses it.
    RemoveCache {
        path: PathBuf,
    },
    /// Removes a folder of ours and everything in it (what a proxy or
    /// certbot wrote there for us), or a file, if it is there; kept, if
    /// `unless_entries_in` (a folder in it) holds something: certbot's
    /// renewal configs of other certificates.
    RemoveTree {
        path: PathBuf,
        unless_entries_in: Option<PathBuf>,
    },
    /// Removes a unix socket file if nothing listens on it.
    RemoveStaleSocket {
        path: PathBuf,
    },
    Run {
        command: Command,
        purpose: Purpose,
    },
    /// Waits until something at `address` completes a TLS handshake for
    /// `domain` (a proxy with built-in ACME has no certificate before),
    /// stopping early at the first ACME error the proxy logs in `log`.
    AwaitCertificate {
        proxy: ProxyKind,
        domain: String,
        address: SocketAddr,
        limit: Duration,
        log: Option<PathBuf>,
    },
    /// Proves the running proxy serves and protects the site: a request
    /// without credentials to `url`, connected to `connect`, gets 401
    /// with a Basic challenge; or, where `allow_from` leaves out the
    /// address this machine connects from (`outsider`), its 403.
    Verify {
        url: String,
        connect: IpAddr,
        outsider: bool,
    },
    /// Waits until something listens on TCP `port`, and only on loopback
    /// addresses (Ollama, restarted with its new OLLAMA_HOST).
    AwaitLoopbackOnly {
        port: u16,
        limit: Duration,
    },
    /// Waits until ollama.service's main process listens on a TCP port
    /// again, wherever the rest of its unit says (`harden-ollama --undo`).
    AwaitOllamaListening {
        limit: Duration,
    },
}

impl Action {
    /// Unmounts the tmpfs at `at` (nothing to do where nothing is mounted).
    /// Lazily: nginx's workers keep cache files open (`open_file_cache`)
    /// until they leave, and the tmpfs goes with the last of them.
    pub fn unmount(at: &Path) -> Action {
        let command = Command::new("umount", &["--lazy"]).arg_path(at);
        Action::Run { command, purpose: Purpose::Unmount { at: at.to_path_buf() } }
    }

    /// Reads the configuration (a start, a reload): as an undo, it waits
    /// until every file is back. A stop does not: it runs in its turn, so
    /// that what the stopped proxy leaves is removed after it.
    pub fn reads_the_configuration(&self) -> bool {
        matches!(
            self,
            Action::Run {
                purpose: Purpose::Start
                    | Purpose::Reload { .. }
                    | Purpose::ReloadUnits
                    | Purpose::RestartOllama
                    | Purpose::StartBans
                    | Purpose::ReloadBans,
                ..
            }
        )
    }

    /// Counts as a file change in the summary.
    pub fn changes_files(&self) -> bool {
        matches!(
            self,
            Action::CreateDir { .. }
                | Action::Write { .. }
                | Action::Link { .. }
                | Action::Remove { .. }
                | Action::RemoveDir { .. }
                | Action::Restore { .. }
                | Action::RemoveTree { .. }
        )
    }
}

fn public_dir_mode() -> u32 {
    0o755
}

/// One step of a plan, and what undoes it if a later step fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub action: Action,
    /// Performed in this order, after every later step's undo.
    pub undo: Vec<Action>,
}

impl Step {
    /// A step that nothing needs to undo (checks, waits, and what cannot
    /// be put back: deleted certificates and caches, installed packages).
    pub fn final_(action: Action) -> Step {
        Step { action, undo: Vec::new() }
    }

    pub fn undone_by(action: Action, undo: Vec<Action>) -> Step {
        Step { action, undo }
    }

    pub fn create_dir(path: &Path) -> Step {
        Step::undone_by(
            Action::CreateDir { path: path.into(), mode: public_dir_mode() },
            vec![Action::RemoveDir { path: path.into() }],
        )
    }

    pub fn write(file: RenderedFile, change: Change) -> Step {
        let path = file.path.clone();
        let undo = match &change {
            Change::Create => Action::Remove { path },
            Change::Replace { backup } | Change::Edit { backup, .. } => Action::Restore { path, from: backup.clone() },
            Change::Overwrite { previous } => Action::PutBack { path, snapshot: previous.clone() },
        };
        Step::undone_by(Action::Write { file, change }, vec![undo])
    }

    pub fn link(link: &Path, target: &Path) -> Step {
        Step::undone_by(
            Action::Link { link: link.into(), target: target.into() },
            vec![Action::Remove { path: link.into() }],
        )
    }

    /// Removes what `existing` says is at `path`; the undo puts it back.
    pub fn remove(path: &Path, existing: &Existing) -> Step {
        let undo = match existing {
            Existing::Symlink { target } => vec![Action::PutBackLink { link: path.into(), target: target.clone() }],
            other => Snapshot::of(other)
                .map(|snapshot| Action::PutBack { path: path.into(), snapshot })
                .into_iter()
                .collect(),
        };
        Step::undone_by(Action::Remove { path: path.into() }, undo)
    }

    pub fn run(command: Command, purpose: Purpose) -> Step {
        Step::final_(Action::Run { command, purpose })
    }
}
