//! init killed at every point where it renames a file into place (SIGKILL,
//! injected by strace, as with a power cut or `kill -9`), and interrupted
//! with SIGINT: the next run undoes what it had done, so the sandbox comes
//! back exactly, with no temporary file (they hold hashes) left anywhere.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::deployment::{ALICE, ALICE_ONLY, Deployment};
use crate::support::proxies::caddy_env;
use crate::support::{BIN, tree};

/// Every rename init makes: the journal before each step and the files.
const RENAMES: &[&str] = &["rename", "renameat", "renameat2"];

/// Runs `init` under strace, which sends `signal` to it at its `when`-th
/// rename (before the rename happens). Only init itself is traced: strace
/// would otherwise wait for the nginx daemon init starts. Returns the exit
/// status and stderr.
fn init_hit(d: &Deployment, when: usize, signal: &str) -> (Option<i32>, String) {
    run_hit(d, &["init", "--no-check"], when, signal)
}

/// `ollama-secure ARGS --answers ...`, hit as `init_hit` hits init.
fn run_hit(d: &Deployment, args: &[&str], when: usize, signal: &str) -> (Option<i32>, String) {
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let calls = RENAMES.join(",");
    let status = Command::new("strace")
        .args(["-o", "/dev/null", "-e", &format!("trace={calls}")])
        .args(["-e", &format!("inject={calls}:signal={signal}:when={when}")])
        .arg(BIN)
        .args(args)
        .args(["--answers", &d.answers])
        .env("ALICE_PASSWORD", ALICE)
        .env("NO_COLOR", "1")
        .envs(caddy_env(&d.sandbox))
        // Files, not pipes: nginx, started by init, would hold a pipe open.
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr.reopen().unwrap())
        .status()
        .unwrap();
    (status.code(), fs::read_to_string(stderr.path()).unwrap())
}

/// Files below `dir` whose names start like ollama-secure's temporary files.
fn temporary_files(dir: &Path) -> Vec<String> {
    tree(dir).into_keys().filter(|k| k.rsplit('/').next().unwrap().starts_with(".ollama-secure-")).collect()
}

fn killed_anywhere_is_undone_by_the_next_run(proxy: &'static str) {
    for when in 1..=30 {
        let d = Deployment::prepare(proxy, ALICE_ONLY);
        let before = d.machine();
        let (code, stderr) = init_hit(&d, when, "SIGKILL");
        if code == Some(0) {
            // init made fewer renames than `when`: every point was hit.
            assert!(when > 10, "init made only {} renames", when - 1);
            return;
        }
        assert_eq!(code, None, "rename {when}: init was not killed: {stderr}");
        // Every other run undoes the interrupted one first: here uninstall.
        // Killed before its first journal was in place, init had changed
        // nothing but that journal's temporary file: nothing to uninstall.
        let journal_left = d.sandbox.path("var/lib/ollama-secure.journal").exists();
        let ran = if journal_left {
            d.uninstall(false).stdout_has("An interrupted `ollama-secure init`").run()
        } else {
            d.uninstall(false).status(2).stderr_has("no ollama-secure setup found").any_stdout().run()
        };
        let differences = d.differences_from(&before);
        assert!(differences.is_empty(), "rename {when}: {differences:?} after\n{}{}", ran.stdout, ran.stderr);
        assert_eq!(temporary_files(d.sandbox.root()), Vec::<String>::new(), "rename {when}: a temporary file stayed");
        assert!(d.client().get(d.url("/api/version")).send().is_err(), "rename {when}: {proxy} still serves the site");
    }
    panic!("init still had renames left after 30");
}

#[test]
fn nginx_init_killed_anywhere_is_undone_by_the_next_run() {
    killed_anywhere_is_undone_by_the_next_run("nginx");
}

#[test]
fn caddy_init_killed_anywhere_is_undone_by_the_next_run() {
    killed_anywhere_is_undone_by_the_next_run("caddy");
}

/// A `users` run killed halfway: dry runs say so, and the next run undoes
/// it first (here the next `users add`, which then adds the user).
#[test]
fn users_killed_halfway_is_undone_by_the_next_run() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    let before = std::fs::read(d.users_file()).unwrap();
    // Its journal, the users file's temporary file, then killed at the
    // journal before the site.
    let (code, _) = run_hit(&d, &["users", "add", "carol"], 3, "SIGKILL");
    assert_eq!(code, None, "users was not killed");
    let journal = d.sandbox.path("var/lib/ollama-secure.journal");
    let warning = format!("an interrupted run left {}", journal.display());
    d.tool().args(["users", "add", "dave", "--dry-run", "--answers", &d.answers]).stdout_has(&warning).run();
    d.uninstall(true).stdout_has(&warning).run();
    // The list is the file as the killed run left it, and says so.
    d.tool()
        .args(["users", "list", "--answers", &d.answers])
        .stdout("alice\ncarol\n")
        .stderr(&format!(
            "warning: {warning}: the next run that changes something undoes it first; this list is the users file as \
             that run left it\n"
        ))
        .run();
    assert_ne!(std::fs::read(d.users_file()).unwrap(), before, "killed before it changed the users file");
    d.tool()
        .args(["users", "add", "carol", "--answers", &d.answers])
        .stdout_has("An interrupted `ollama-secure users` left its journal")
        .stdout_has("It had generated passwords or keys for carol")
        .stdout_has("Checked: carol gets 200")
        .run();
    assert!(!journal.exists());
}

#[test]
fn init_killed_halfway_can_simply_be_run_again() {
    let d = Deployment::prepare("nginx", ALICE_ONLY);
    let before = d.machine();
    let (code, _) = init_hit(&d, 6, "SIGKILL");
    assert_eq!(code, None, "init was not killed");
    let warning = format!("an interrupted run left {}", d.sandbox.path("var/lib/ollama-secure.journal").display());
    d.init().args(["--dry-run"]).stdout_has(&warning).run();
    d.init().stdout_has("An interrupted `ollama-secure init`").stdout_has("The interrupted run is undone.").run();
    assert_eq!(d.status("/api/version", None), 401);
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    d.uninstall(false).any_stdout().run();
    d.assert_as_before(&before);
}

/// How many renames a whole `init` makes (traced, not interrupted).
fn renames_of_init(d: &Deployment) -> usize {
    let trace = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new("strace")
        .args(["-o", trace.path().to_str().unwrap(), "-e", &format!("trace={}", RENAMES.join(","))])
        .args([BIN, "init", "--no-check", "--answers", &d.answers])
        .env("ALICE_PASSWORD", ALICE)
        .envs(caddy_env(&d.sandbox))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    fs::read_to_string(trace.path()).unwrap().lines().filter(|l| RENAMES.iter().any(|r| l.starts_with(r))).count()
}

/// Killed after its last change and before it showed bob's generated
/// password, init leaves nobody knowing it: the next run drops the hash
/// with the rest, says so, and shows the password it generates anew.
#[test]
fn a_generated_password_nobody_saw_is_not_kept() {
    let users = format!("{ALICE_ONLY}  - {{username: bob, generate: true}}\n");
    let last = {
        let d = Deployment::prepare("nginx", &users);
        renames_of_init(&d)
    };
    let d = Deployment::prepare("nginx", &users);
    let (code, _) = init_hit(&d, last, "SIGKILL");
    assert_eq!(code, None, "init was not killed at its last rename ({last})");
    assert!(fs::read_to_string(d.users_file()).unwrap().contains("bob:"), "killed before bob's hash was written");
    let ran = d
        .init()
        .stdout_has(
            "It had generated passwords or keys for bob and was stopped before it showed them: nobody knows them",
        )
        .run();
    let password =
        ran.stdout.lines().find_map(|l| l.strip_prefix("  bob (user role): ")).expect("bob's new password is shown");
    assert_eq!(d.status("/api/version", Some(("bob", password))), 200);
}

#[test]
fn ctrl_c_or_sigterm_during_init_rolls_back_and_exits_130() {
    for (when, signal) in [(4, "SIGINT"), (12, "SIGINT"), (6, "SIGTERM")] {
        let d = Deployment::prepare("nginx", ALICE_ONLY);
        let before = d.machine();
        // init is writing files (at its 12th rename, nginx runs already);
        // the signal is noted, the step finishes, and the run stops there
        // and undoes itself.
        let (code, stderr) = init_hit(&d, when, signal);
        assert_eq!(code, Some(130), "{signal} at {when}: {stderr}");
        assert_eq!(stderr, "error: interrupted; every change was rolled back, the previous files are in place\n");
        d.assert_as_before(&before);
        assert_eq!(temporary_files(d.sandbox.root()), Vec::<String>::new());
        assert!(!d.sandbox.path("run/nginx.pid").exists(), "{signal} at {when}: nginx was left running");
    }
}
