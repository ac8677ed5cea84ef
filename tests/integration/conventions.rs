//! The conventions of a command-line tool: colours and symbols on a
//! terminal only, never with `NO_COLOR` (no-color.org) or `TERM=dumb`, and
//! plain ASCII words into a pipe, a file or a log.

use std::process::Command;
use std::time::Duration;

use expectrl::{Eof, Expect, Session};

use crate::support::{BIN, ROOT, Sandbox, free_port};

/// Everything the tool printed, run in a pseudo-terminal with `env` set
/// (and `NO_COLOR` unset unless given).
fn on_a_terminal(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(ROOT).env_remove("NO_COLOR").env("TERM", "xterm").env("SECRET", "wrong");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut session = Session::spawn(command).expect("the tool starts in a pseudo-terminal");
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    let all = session.expect(Eof).unwrap();
    String::from_utf8_lossy(all.as_bytes()).into_owned()
}

fn bad_answers(sandbox: &Sandbox) -> String {
    sandbox.write("bad.yaml", "proxy: nginx\nport: eighty\n").display().to_string()
}

/// A check of a port nothing listens on: its first check fails.
fn check_args(port: u16) -> Vec<String> {
    ["check", "--url", &format!("http://127.0.0.1:{port}"), "--username", "alice", "--password-env", "SECRET"]
        .map(str::to_string)
        .to_vec()
}

#[test]
fn a_terminal_gets_colour() {
    let sandbox = Sandbox::new();
    let text = on_a_terminal(&["init", "--answers", &bad_answers(&sandbox), "--dry-run"], &[]);
    assert!(text.contains("\x1b[1;31merror:\x1b[0m"), "{text:?}");
    let args = check_args(free_port());
    let text = on_a_terminal(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert!(text.contains("\x1b[1;31mFAIL\x1b[0m"), "{text:?}");
}

#[test]
fn no_color_or_a_dumb_terminal_gets_plain_ascii() {
    let sandbox = Sandbox::new();
    let answers = bad_answers(&sandbox);
    let args = check_args(free_port());
    let check: Vec<&str> = args.iter().map(String::as_str).collect();
    for env in [("NO_COLOR", "1"), ("TERM", "dumb")] {
        for run in [&["init", "--answers", &answers, "--dry-run"][..], &check] {
            let text = on_a_terminal(run, &[env]);
            assert!(text.contains("error:") || text.contains("FAIL"), "{env:?} {run:?}: {text:?}");
            assert!(text.is_ascii() && !text.contains('\x1b'), "{env:?} {run:?}: {text:?}");
        }
    }
}

/// Into pipes, without `NO_COLOR` (the harness's `Tool` always sets it).
#[test]
fn a_pipe_gets_plain_ascii() {
    let sandbox = Sandbox::new();
    let piped = |args: &[String]| {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(ROOT)
            .env_remove("NO_COLOR")
            .env("TERM", "xterm")
            .env("SECRET", "wrong")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, stderr) = piped(&["init", "--answers", &bad_answers(&sandbox), "--dry-run"].map(str::to_string));
    assert_eq!(code, Some(2));
    assert!(stderr.starts_with("error: ") && stderr.is_ascii(), "{stderr:?}");
    let (code, stdout, stderr) = piped(&check_args(free_port()));
    assert_eq!(code, Some(3), "the check failed: {stdout}{stderr}");
    assert!(stdout.contains("  FAIL  ") && stdout.is_ascii() && !stdout.contains('\x1b'), "{stdout:?}");
}
