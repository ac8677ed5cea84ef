//! One run at a time: runs that change files hold an exclusive lock, so two
//! concurrent `users add` (or an `init` beside them) cannot lose an update.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

/// Released when dropped (and by the kernel if the process dies).
pub struct Lock {
    _file: Flock<fs::File>,
}

/// Its folder must exist (`/run` does): ollama-secure creates no folder
/// it would not remove again.
pub fn acquire(path: &Path) -> Result<Lock> {
    let open = || {
        OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(path).map_err(|e| match e.kind() {
            // The first thing a run that changes the system does: as
            // another user, this is where it learns it is not root.
            std::io::ErrorKind::PermissionDenied => Error::input(format!(
                "changing the system needs root (the lock file {} cannot be opened as this user); \
                     run it with sudo, or add --dry-run to only see the plan",
                path.display()
            )),
            _ => Error::failed(format!("cannot open the lock file {}: {e}", path.display())),
        })
    };
    match Flock::lock(open()?, FlockArg::LockExclusiveNonblock) {
        Ok(file) => Ok(Lock { _file: file }),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            crate::errln!("waiting for another ollama-secure run to finish (lock {})", path.display());
            Flock::lock(open()?, FlockArg::LockExclusive)
                .map(|file| Lock { _file: file })
                .map_err(|(_, e)| Error::failed(format!("cannot lock {}: {e}", path.display())))
        }
        Err((_, e)) => Err(Error::failed(format!("cannot lock {}: {e}", path.display()))),
    }
}
