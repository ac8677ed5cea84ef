//! SIGINT and SIGTERM while the system is being changed: noted instead of
//! ending the process halfway, so apply stops at the next step and rolls
//! back. Only while `Catching` lives. At the questions before any change
//! (`Prompting`), they end the run at once, the terminal put back.

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

/// SIGINT and SIGTERM go to a handler of ours while this lives; then the
/// handlers that were there before return.
struct Handling {
    previous: Vec<(Signal, SigAction)>,
}

/// `handler` must only call async-signal-safe functions.
fn handle_with(handler: extern "C" fn(nix::libc::c_int)) -> Handling {
    let action = SigAction::new(SigHandler::Handler(handler), SaFlags::empty(), SigSet::empty());
    let previous = [Signal::SIGINT, Signal::SIGTERM]
        .into_iter()
        // SAFETY: both handlers of this module are async-signal-safe (see each).
        .filter_map(|signal| unsafe { sigaction(signal, &action) }.ok().map(|old| (signal, old)))
        .collect();
    Handling { previous }
}

impl Drop for Handling {
    fn drop(&mut self) {
        for (signal, old) in &self.previous {
            // SAFETY: putting back the handler that was there before.
            let _ = unsafe { sigaction(*signal, old) };
        }
    }
}

/// While alive, SIGINT and SIGTERM are noted; then the old handlers return.
pub struct Catching {
    _handling: Handling,
}

pub fn catch() -> Catching {
    RECEIVED.store(false, Ordering::SeqCst);
    Catching { _handling: handle_with(note) }
}

/// The terminal's settings when the questions began, put back by
/// `leave_prompt`: a prompt may be in raw mode, without echo, when the
/// signal comes.
static TERMINAL: std::sync::OnceLock<nix::libc::termios> = std::sync::OnceLock::new();

extern "C" fn leave_prompt(_: nix::libc::c_int) {
    // The cursor back (a list prompt hides it), a fresh line, the word.
    const MESSAGE: &[u8] = b"\x1b[?25h\r\ninterrupted; nothing was changed\n";
    // SAFETY: tcsetattr, write and _exit are async-signal-safe; TERMINAL
    // is only read here (an atomic load once set).
    unsafe {
        if let Some(settings) = TERMINAL.get() {
            nix::libc::tcsetattr(0, nix::libc::TCSANOW, settings);
        }
        nix::libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
        nix::libc::_exit(crate::error::exit::INTERRUPTED);
    }
}

/// While alive (the wizard's questions, before anything is changed),
/// SIGINT and SIGTERM end the run at once with the terminal as it was, the
/// cursor shown, "interrupted; nothing was changed" and exit 130; then the
/// old handlers return.
pub struct Prompting {
    _handling: Handling,
}

pub fn prompting() -> Prompting {
    let mut settings = std::mem::MaybeUninit::<nix::libc::termios>::uninit();
    // SAFETY: tcgetattr fills the struct when it returns 0; read only then.
    if unsafe { nix::libc::tcgetattr(0, settings.as_mut_ptr()) } == 0 {
        // SAFETY: initialised by the successful tcgetattr above.
        let _ = TERMINAL.set(unsafe { settings.assume_init() });
    }
    Prompting { _handling: handle_with(leave_prompt) }
}
