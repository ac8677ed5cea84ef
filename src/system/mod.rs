//! The edge: every effect the tool has on the machine, and every question it
//! asks of it, goes through `System`. Facts, apply, check and users are
//! written against this trait, so the core above it stays pure and its
//! tests can answer for the machine. `RealSystem` is the machine.

pub mod forward;
mod http;
mod real;

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use http::{Body, Credentials, HttpReply, HttpRequest, Method, Trust};
pub use real::{RealSystem, read_limited, read_stdin_limited, read_tail};

use crate::plan::Command;

/// Files bigger than this are not read whole: no file the tool reads
/// (answers, users files, sites, the state) comes near it.
pub const READ_LIMIT: u64 = 8 * 1024 * 1024;

/// A path as found on disk, without following a final symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    Missing,
    File {
        content: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        target: PathBuf,
    },
    /// A regular file this user may not read (a dry run without root).
    Unreadable {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// A socket, a device, a file too big to read, or something else we
    /// must not replace.
    Other,
}

/// Mode and owner of a file to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ownership {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The outcome of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    pub success: bool,
    /// What the command printed (stdout and stderr), or where it went.
    pub output: String,
}

/// A running process, as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub parent: u32,
    /// `/proc/PID/comm`.
    pub name: String,
    /// The command line, arguments joined by spaces (nginx writes its
    /// role there: "nginx: worker process is shutting down").
    pub command_line: String,
}

/// A listening TCP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub address: IpAddr,
    pub port: u16,
    pub inode: u64,
}

/// The process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// The process name (`/proc/PID/comm`).
    pub name: String,
}

/// A unix socket file, and whether anything listens on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketState {
    Missing,
    /// Something accepts connections on it.
    Listening,
    /// A socket file nobody listens on: left by a process that did not exit
    /// cleanly. nginx refuses to start while it is there.
    Stale,
    /// A file that is not a socket: nothing could listen there.
    NotASocket,
}

/// What kind of filesystem a path is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filesystem {
    /// tmpfs or ramfs: memory, gone at reboot.
    Memory,
    Disk,
}

pub trait System {
    // Files. Reads never follow a final symlink, never read a file that is
    // not regular, and never read more than `READ_LIMIT`.
    fn inspect(&self, path: &Path) -> Existing;
    fn list_dir(&self, dir: &Path) -> Vec<PathBuf>;
    /// The last `max` bytes of a regular file (a log, which may be huge).
    fn tail(&self, path: &Path, max: u64) -> io::Result<Vec<u8>>;
    /// Writes through a temporary file in the same folder (mode and owner
    /// set before any byte), then renames it into place.
    fn write_atomic(&self, path: &Path, content: &[u8], ownership: Ownership) -> io::Result<()>;
    /// Creates `path`, failing if anything is there already (backups).
    fn write_new(&self, path: &Path, content: &[u8], ownership: Ownership) -> io::Result<()>;
    fn create_dir(&self, path: &Path, mode: u32) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    fn remove_tree(&self, path: &Path) -> io::Result<()>;
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()>;
    /// The filesystem `path` (which must exist) is on.
    fn filesystem(&self, path: &Path) -> Option<Filesystem>;
    /// Something is mounted at `path`.
    fn is_mountpoint(&self, path: &Path) -> bool;

    // Users, groups and programs.
    fn is_root(&self) -> bool;
    fn group_id(&self, name: &str) -> Option<u32>;
    fn group_name(&self, gid: u32) -> Option<String>;
    /// A variable of our own environment.
    fn env_var(&self, name: &str) -> Option<String>;
    /// The home folder of the user `name`.
    fn user_home(&self, name: &str) -> Option<PathBuf>;
    fn installed(&self, program: &str) -> bool;

    // Processes.
    fn run(&self, command: &Command) -> RunOutput;
    /// `None` when the process is gone, or a zombie waiting to be reaped.
    fn process(&self, pid: u32) -> Option<Process>;
    /// Every process there is (zombies aside).
    fn processes(&self) -> Vec<Process>;
    fn children(&self, parent: u32) -> Vec<Process> {
        self.processes().into_iter().filter(|p| p.parent == parent).collect()
    }

    // Clock.
    fn now(&self) -> SystemTime;
    fn sleep(&self, duration: Duration);

    // Network. An HTTP failure comes back in words a user understands.
    fn http(&self, request: &HttpRequest) -> Result<HttpReply, String>;
    fn tcp_listeners(&self) -> Vec<Listener>;
    fn socket_owner(&self, inode: u64) -> Option<Owner>;
    fn unix_socket(&self, path: &Path) -> SocketState;

    /// SIGINT or SIGTERM arrived while changes are being made.
    fn interrupted(&self) -> bool;
}

/// Reads a PID file: its first word, as a number.
pub fn read_pid(system: &dyn System, pid_file: &Path) -> Option<u32> {
    match system.inspect(pid_file) {
        Existing::File { content, .. } => String::from_utf8_lossy(&content).trim().parse().ok(),
        _ => None,
    }
}

/// The process named in `pid_file`, if it runs and is called `name`.
pub fn running_from_pid_file(system: &dyn System, pid_file: &Path, name: &str) -> Option<Process> {
    let pid = read_pid(system, pid_file)?;
    system.process(pid).filter(|p| p.name == name)
}
