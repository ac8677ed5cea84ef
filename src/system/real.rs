//! `System` for the machine the tool runs on (Linux; /proc for processes
//! and sockets).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{
    Existing, Filesystem, HttpReply, HttpRequest, Listener, Owner, Ownership, Process, READ_LIMIT, RunOutput,
    SocketState, System,
};
use crate::plan::{Command, Output};

pub struct RealSystem;

/// A regular file opened for reading, never through a final link, never
/// blocking on a FIFO.
fn open_regular(path: &Path) -> io::Result<(std::fs::File, std::fs::Metadata)> {
    let file = OpenOptions::new().read(true).custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok((file, meta))
}

/// The last `limit` bytes of a regular file (a log): a log grows without
/// bound, and its end is what is recent.
pub fn read_tail(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let (mut file, meta) = open_regular(path)?;
    file.seek(SeekFrom::Start(meta.len().saturating_sub(limit)))?;
    let mut content = Vec::new();
    Read::by_ref(&mut file).take(limit).read_to_end(&mut content)?;
    Ok(content)
}

/// Reads a whole regular file, refusing one larger than `limit`.
pub fn read_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let (mut file, meta) = open_regular(path)?;
    if meta.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} bytes is larger than the {} bytes allowed", meta.len(), limit),
        ));
    }
    let mut content = Vec::with_capacity(meta.len() as usize);
    // `take`: a file that grows while it is read still stops at the limit.
    Read::by_ref(&mut file).take(limit + 1).read_to_end(&mut content)?;
    if content.len() as u64 > limit {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("larger than the {limit} bytes allowed")));
    }
    Ok(content)
}

/// Reads standard input to its end (`--answers -`), refusing more than
/// `limit` bytes, and a writer that neither finishes nor closes the pipe
/// within `within`: the run never hangs on input that does not come.
pub fn read_stdin_limited(limit: u64, within: std::time::Duration) -> io::Result<Vec<u8>> {
    let (sender, receiver) = std::sync::mpsc::channel();
    // The thread is left blocked in read() if the time runs out; the run
    // then ends with the error, and the thread with the process.
    std::thread::spawn(move || {
        let mut content = Vec::new();
        let result = io::stdin().lock().take(limit + 1).read_to_end(&mut content).map(|_| content);
        let _ = sender.send(result);
    });
    let content = receiver.recv_timeout(within).map_err(|_| {
        io::Error::new(io::ErrorKind::TimedOut, format!("standard input was not closed within {} s", within.as_secs()))
    })??;
    if content.len() as u64 > limit {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("larger than the {limit} bytes allowed")));
    }
    Ok(content)
}

fn write_temp_then_rename(path: &Path, content: &[u8], ownership: Ownership) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent folder"))?;
    // A bare file name (`--save-answers saved.yaml`) is in the current folder.
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let mut temp = tempfile::Builder::new().prefix(crate::apply::TEMPORARY_PREFIX).tempfile_in(dir)?;
    let file = temp.as_file_mut();
    // Mode first: the temp file must never be readable by others, not even briefly.
    file.set_permissions(fs::Permissions::from_mode(ownership.mode))?;
    std::os::unix::fs::fchown(&*file, Some(ownership.uid), Some(ownership.gid))?;
    file.write_all(content)?;
    file.sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

/// Field 4 of /proc/PID/stat is the parent and field 3 the state; the name
/// in field 2 may itself contain spaces and ')'.
fn stat_fields(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

fn process_info(pid: u32) -> Option<Process> {
    let (state, parent) = stat_fields(pid)?;
    if state == 'Z' {
        return None;
    }
    let name = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string();
    let command_line = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).split('\0').filter(|a| !a.is_empty()).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    Some(Process { pid, parent, name, command_line })
}

fn pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|entries| entries.flatten().filter_map(|e| e.file_name().to_string_lossy().parse().ok()).collect())
        .unwrap_or_default()
}

/// Output goes to files, never pipes: `nginx` and `caddy start` leave
/// daemons behind that inherit the descriptors and would keep a pipe open.
fn run_command(command: &Command) -> RunOutput {
    let failed = |output: String| RunOutput { success: false, output };
    let mut expression = duct::cmd(&command.program, &command.args).stdin_null().unchecked();
    // A proxy we start lives on with this environment: no password in it.
    for name in crate::secret::variables() {
        expression = expression.env_remove(name);
    }
    for (key, value) in &command.env {
        expression = expression.env(key, value);
    }
    let (file, log_path) = match &command.output {
        Output::Capture | Output::Private => match tempfile::tempfile() {
            Ok(f) => (f, None),
            Err(e) => return failed(format!("cannot create a temporary file: {e}")),
        },
        Output::LogFile(path) => match OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => (f, Some(path.clone())),
            Err(e) => return failed(format!("cannot open {}: {e}", path.display())),
        },
    };
    let writer = match file.try_clone() {
        Ok(w) => w,
        Err(e) => return failed(e.to_string()),
    };
    let expression = expression.stderr_to_stdout().stdout_file(writer);
    let result = if crate::verbosity::verbose() {
        crate::errln!("  + {command}");
        match &command.output {
            Output::Capture => run_echoing(&expression, &file),
            Output::LogFile(path) => {
                crate::errln!("    (its output goes to {})", path.display());
                expression.run()
            }
            Output::Private => {
                crate::errln!("    (its output is not shown: it holds another program's settings)");
                expression.run()
            }
        }
    } else {
        expression.run()
    };
    let output = match log_path {
        Some(path) => format!("(output in {})", path.display()),
        None => {
            let mut text = Vec::new();
            let mut file = file;
            let _ = file.rewind().and_then(|_| file.take(READ_LIMIT).read_to_end(&mut text));
            String::from_utf8_lossy(&text).into_owned()
        }
    };
    match result {
        Ok(o) => RunOutput { success: o.status.success(), output },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            failed(format!("{} is not installed (command not found)", command.program))
        }
        Err(e) => failed(format!("could not run {}: {e}", command.program)),
    }
}

/// `-v`: runs the command and copies what it writes to `output` onto
/// standard error as it comes (indented), reading with `pread` so the
/// command's own write position is left alone.
fn run_echoing(expression: &duct::Expression, output: &File) -> io::Result<std::process::Output> {
    use std::os::unix::fs::FileExt;
    let handle = expression.start()?;
    // A command that writes without end (or no newline) is echoed up to
    // READ_LIMIT, in lines of at most 8 KiB.
    const LINE: usize = 8192;
    let mut shown = 0u64;
    let mut pending = Vec::new();
    let mut echo = |last: bool| {
        let mut chunk = [0u8; LINE];
        while shown < READ_LIMIT
            && let Ok(n @ 1..) = output.read_at(&mut chunk, shown)
        {
            shown += n as u64;
            pending.extend_from_slice(&chunk[..n]);
        }
        let say = |bytes: &[u8]| {
            crate::errln!("    {}", crate::error::printable(String::from_utf8_lossy(bytes).trim_end()));
        };
        loop {
            match pending.iter().position(|b| *b == b'\n') {
                Some(end) if end < LINE => {
                    say(&pending[..end]);
                    pending.drain(..=end);
                }
                _ if pending.len() >= LINE => {
                    say(&pending[..LINE]);
                    pending.drain(..LINE);
                }
                _ => break,
            }
        }
        if last && !pending.is_empty() {
            say(&pending);
            pending.clear();
        }
    };
    loop {
        let finished = handle.try_wait()?.cloned();
        echo(finished.is_some());
        if let Some(finished) = finished {
            return Ok(finished);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl System for RealSystem {
    fn inspect(&self, path: &Path) -> Existing {
        let Ok(meta) = fs::symlink_metadata(path) else { return Existing::Missing };
        if meta.file_type().is_symlink() {
            return fs::read_link(path).map(|target| Existing::Symlink { target }).unwrap_or(Existing::Other);
        }
        let (mode, uid, gid) = (meta.mode() & 0o7777, meta.uid(), meta.gid());
        if meta.is_dir() {
            return Existing::Dir { mode, uid, gid };
        }
        if !meta.is_file() {
            return Existing::Other;
        }
        match read_limited(path, READ_LIMIT) {
            Ok(content) => Existing::File { content, mode, uid, gid },
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Existing::Unreadable { mode, uid, gid },
            Err(_) => Existing::Other,
        }
    }

    fn tail(&self, path: &Path, max: u64) -> io::Result<Vec<u8>> {
        read_tail(path, max)
    }

    fn list_dir(&self, dir: &Path) -> Vec<PathBuf> {
        let mut entries: Vec<PathBuf> =
            fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        entries.sort();
        entries
    }

    fn write_atomic(&self, path: &Path, content: &[u8], ownership: Ownership) -> io::Result<()> {
        write_temp_then_rename(path, content, ownership)
    }

    fn write_new(&self, path: &Path, content: &[u8], ownership: Ownership) -> io::Result<()> {
        // Exclusive and without following links: a name planted by someone
        // else makes this fail instead of writing through it.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)?;
        std::os::unix::fs::fchown(&file, Some(ownership.uid), Some(ownership.gid))?;
        file.set_permissions(fs::Permissions::from_mode(ownership.mode))?;
        file.write_all(content)?;
        file.sync_all()
    }

    fn create_dir(&self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        // Made with its mode (the umask may take more away: set it again).
        fs::DirBuilder::new().mode(mode).create(path)?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }

    fn remove_tree(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, link)
    }

    fn filesystem(&self, path: &Path) -> Option<Filesystem> {
        use nix::sys::statfs::{TMPFS_MAGIC, statfs};
        // ramfs (0x858458f6, linux/magic.h) has no constant in nix.
        const RAMFS_MAGIC: i64 = 0x8584_58f6;
        let kind = statfs(path).ok()?.filesystem_type();
        // f_type is an i64 here, an i32 on some other architectures.
        #[allow(clippy::useless_conversion)]
        let memory = kind == TMPFS_MAGIC || i64::from(kind.0) == RAMFS_MAGIC;
        Some(if memory { Filesystem::Memory } else { Filesystem::Disk })
    }

    fn is_mountpoint(&self, path: &Path) -> bool {
        // A mount point is on another device than its parent (or is /).
        let (Ok(this), Some(Ok(parent))) = (fs::metadata(path), path.parent().map(fs::metadata)) else { return false };
        this.dev() != parent.dev()
    }

    fn is_root(&self) -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// `root` is the superuser's group, gid 0, wherever it goes by another
    /// name (macOS and the BSDs call it wheel).
    fn group_id(&self, name: &str) -> Option<u32> {
        let found = nix::unistd::Group::from_name(name).ok().flatten().map(|g| g.gid.as_raw());
        found.or_else(|| (name == "root").then_some(0))
    }

    fn group_name(&self, gid: u32) -> Option<String> {
        nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)).ok().flatten().map(|g| g.name)
    }

    fn env_var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn user_home(&self, name: &str) -> Option<PathBuf> {
        nix::unistd::User::from_name(name).ok().flatten().map(|u| u.dir)
    }

    fn installed(&self, program: &str) -> bool {
        which::which(program).is_ok()
    }

    fn run(&self, command: &Command) -> RunOutput {
        run_command(command)
    }

    fn process(&self, pid: u32) -> Option<Process> {
        process_info(pid)
    }

    fn processes(&self) -> Vec<Process> {
        pids().into_iter().filter_map(process_info).collect()
    }

    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration)
    }

    fn http(&self, request: &HttpRequest) -> Result<HttpReply, String> {
        super::http::send(request)
    }

    fn tcp_listeners(&self) -> Vec<Listener> {
        ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|path| read_limited(Path::new(path), READ_LIMIT).ok())
            .flat_map(|table| crate::sockets::parse_listeners(&String::from_utf8_lossy(&table)))
            .collect()
    }

    fn socket_owner(&self, inode: u64) -> Option<Owner> {
        let wanted = format!("socket:[{inode}]");
        pids().into_iter().find_map(|pid| {
            let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
            let holds =
                fds.flatten().any(|fd| fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == wanted.as_str()));
            holds.then(|| Owner {
                pid,
                name: fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string(),
            })
        })
    }

    fn interrupted(&self) -> bool {
        crate::interrupt::received()
    }

    fn unix_socket(&self, path: &Path) -> SocketState {
        match fs::symlink_metadata(path) {
            Err(_) => SocketState::Missing,
            Ok(meta) if !meta.file_type().is_socket() => SocketState::NotASocket,
            Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => SocketState::Listening,
                Err(_) => SocketState::Stale,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded_and_regular_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_limited(&file, 10).unwrap(), b"0123456789");
        assert!(read_limited(&file, 9).is_err());
        assert!(read_limited(dir.path(), 100).is_err(), "a folder is not read");
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(read_limited(&link, 100).is_err(), "a link is not followed");
        let fifo = dir.path().join("p");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(read_limited(&fifo, 100).is_err(), "a FIFO is refused, without waiting for a writer");
        assert_eq!(RealSystem.inspect(&fifo), Existing::Other);
        assert!(matches!(RealSystem.inspect(dir.path()), Existing::Dir { .. }));
    }

    #[test]
    fn new_files_never_replace_anything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup");
        let own = Ownership { mode: 0o640, uid: nix::unistd::geteuid().as_raw(), gid: nix::unistd::getegid().as_raw() };
        RealSystem.write_new(&path, b"one", own).unwrap();
        assert!(RealSystem.write_new(&path, b"two", own).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        let planted = dir.path().join("planted");
        std::os::unix::fs::symlink(dir.path().join("victim"), &planted).unwrap();
        assert!(RealSystem.write_new(&planted, b"x", own).is_err());
        assert!(!dir.path().join("victim").exists(), "a planted link was followed");
    }
}
