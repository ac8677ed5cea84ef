//! SIGINT and SIGTERM while the system is being changed: noted instead of
//! ending the process halfway, so apply stops at the next step and rolls
//! back. Only while `Catching` lives; prompts keep their usual Ctrl-C.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static RECEIVED: AtomicBool = AtomicBool::new(false);

extern "C" fn note(_: nix::libc::c_int) {
    // An atomic store is all a signal handler may safely do here.
    RECEIVED.store(true, Ordering::SeqCst);
}

/// Whether SIGINT or SIGTERM arrived since `catch`.
pub fn received() -> bool {
    RECEIVED.load(Ordering::SeqCst)
}

/// While alive, SIGINT and SIGTERM are noted; then the old handlers return.
pub struct Catching {
    previous: Vec<(Signal, SigAction)>,
}

pub fn catch() -> Catching {
    RECEIVED.store(false, Ordering::SeqCst);
    let action = SigAction::new(SigHandler::Handler(note), SaFlags::empty(), SigSet::empty());
    let previous = [Signal::SIGINT, Signal::SIGTERM]
        .into_iter()
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        .filter_map(|signal| unsafe { sigaction(signal, &action) }.ok().map(|old| (signal, old)))
        .collect();
    Catching { previous }
}

impl Drop for Catching {
    fn drop(&mut self) {
        for (signal, old) in &self.previous {
            // SAFETY: putting back the handler that was there before.
            let _ = unsafe { sigaction(*signal, old) };
        }
    }
}
