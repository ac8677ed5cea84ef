//! `harden-ollama` where systemd is not running (this machine, CI): it
//! cannot change how Ollama is started, so it says where Ollama listens and
//! gives the fix, changing nothing. (With systemd, the drop-in, restart,
//! rollback and `--undo` are proven in the systemd tier, `systemd.rs`.)
//!
//! Ollama's port is bound on every address only inside a network namespace
//! of the test thread's own, whose one interface is loopback; the tool,
//! started from that thread, reads the sockets of that namespace.

use std::net::TcpListener;

use crate::support::{Sandbox, Tool};

fn own_network() -> bool {
    // With systemd running here, the tool would ask this machine's
    // ollama.service: the systemd tier covers that, on a machine of its own.
    if std::path::Path::new("/run/systemd/system").is_dir() {
        eprintln!("skipped: systemd runs on this machine (the systemd tier covers harden-ollama there)");
        return false;
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("a network namespace of this thread's own");
    let up = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status().unwrap();
    assert!(up.success());
    true
}

fn answers(sandbox: &Sandbox) -> String {
    let path = sandbox.write("answers.yaml", &format!("proxy: nginx\n{}", sandbox.paths_yaml()));
    path.display().to_string()
}

fn header() -> String {
    format!("ollama-secure {}: keep Ollama on loopback\n\n", env!("CARGO_PKG_VERSION"))
}

#[test]
fn without_systemd_an_exposed_ollama_gets_the_fix_and_nothing_changes() {
    if !own_network() {
        return;
    }
    let sandbox = Sandbox::new();
    let answers = answers(&sandbox);
    let before = sandbox.trees(&["."]);
    let ollama = TcpListener::bind("0.0.0.0:11434").unwrap();
    let pid = std::process::id();
    for dry_run in [false, true] {
        let fix = ollama_secure::ollama::exposure_fix(11434);
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        Tool::new()
            .args(["harden-ollama", "--answers", &answers])
            .args(dry_run.then_some("--dry-run"))
            .status(3)
            .stdout(&format!(
                "{}Found: port 11434 listens on 0.0.0.0 ({} PID {pid}), and systemd is not running: \
                 change how Ollama is started.\n\n{fix}\n",
                header(),
                comm.trim()
            ))
            .stderr(
                "error: Ollama can be reached without the proxy's password; nothing was changed (the fix is above)\n",
            )
            .run();
    }
    drop(ollama);
    assert_eq!(sandbox.trees(&["."]), before, "nothing was written");
}

#[test]
fn without_systemd_an_ollama_on_loopback_is_left_alone() {
    if !own_network() {
        return;
    }
    let sandbox = Sandbox::new();
    let answers = answers(&sandbox);
    let before = sandbox.trees(&["."]);
    Tool::new()
        .args(["harden-ollama", "--answers", &answers])
        .stdout(&format!("{}Nothing to change: Ollama's port 11434: nothing listens there.\n", header()))
        .run();
    let _ollama = TcpListener::bind("127.0.0.1:11434").unwrap();
    Tool::new()
        .args(["harden-ollama", "--answers", &answers])
        .stdout(&format!("{}Nothing to change: Ollama's port 11434: it listens on loopback only.\n", header()))
        .run();
    let dropin = sandbox.path("etc/systemd/system/ollama.service.d/zz-ollama-secure.conf");
    Tool::new()
        .args(["harden-ollama", "--undo", "--answers", &answers])
        .stdout(&format!(
            "ollama-secure {}: take out the drop-in that keeps Ollama on loopback\n\n\
             Nothing to change: {} is not there: nothing to undo.\n",
            env!("CARGO_PKG_VERSION"),
            dropin.display()
        ))
        .run();
    assert_eq!(sandbox.trees(&["."]), before, "nothing was written");
}
