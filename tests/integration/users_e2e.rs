//! `users` against real nginx and Caddy: add, rotate and remove take effect
//! at once, other users are unaffected throughout (checked by request), hand
//! edits survive byte for byte, bad files are left alone, concurrent runs
//! lose nothing, and no sequence of edits breaks Apache's `htpasswd -v`.

use std::fs;

use crate::support::deployment::{ALICE, ALICE_ONLY, Deployment};
use crate::support::{Ran, Tool, sh};

const BOB: &str = "bob's first password, long enough";
const BOB_NEW: &str = "bob's second password, long enough";
const USERS: &str =
    "  - {username: alice, password_env: ALICE_PASSWORD}\n  - {username: bob, password_env: BOB_PASSWORD}\n";

fn users(d: &Deployment, args: &[&str]) -> Tool {
    d.tool().env("BOB_PASSWORD", BOB).env("BOB_NEW", BOB_NEW).args(["users"]).args(args).args(["--answers", &d.answers])
}

fn generated(ran: &Ran, name: &str) -> String {
    let prefix = format!("Generated password for {name} (shown once; store it now): ");
    let line = ran
        .stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no password printed:\n{}", ran.stdout));
    line[prefix.len()..].to_string()
}

fn manages_users(proxy: &'static str) {
    let d = {
        // deploy() runs init with ALICE_PASSWORD only; bob's comes from here.
        let d = Deployment::prepare(proxy, USERS);
        d.init().env("BOB_PASSWORD", BOB).any_stdout().run();
        d
    };
    users(&d, &["list"]).stdout("alice\nbob\n").run();

    // add: the new user works at once; nobody else is affected.
    let before = fs::read(d.users_file()).unwrap();
    let ran = users(&d, &["add", "carol", "--dry-run"]).any_stdout().run();
    assert!(ran.stdout.contains("carol $2y$") || ran.stdout.contains("carol:$2y$"), "{}", ran.stdout);
    assert_eq!(fs::read(d.users_file()).unwrap(), before, "--dry-run changed the users file");
    let ran = users(&d, &["add", "carol"]).stdout_has("Checked: carol gets 200").run();
    let carol = generated(&ran, "carol");
    assert_eq!(ran.stdout.matches(&carol).count(), 1, "the password is shown exactly once");
    assert_eq!(d.status("/api/version", Some(("carol", &carol))), 200);
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    assert_eq!(d.status("/api/version", Some(("bob", BOB))), 200);
    users(&d, &["add", "carol"])
        .status(2)
        .stderr("error: carol already exists: `users rotate carol` gives a new password (or add --force)\n")
        .run();

    // rotate: the old password stops working, the new one works.
    let ran = users(&d, &["rotate", "bob", "--password-env", "BOB_NEW"]).any_stdout().run();
    assert!(!ran.all().contains(BOB_NEW), "a chosen password was printed");
    assert_eq!(d.status("/api/version", Some(("bob", BOB))), 401);
    assert_eq!(d.status("/api/version", Some(("bob", BOB_NEW))), 200);
    assert_eq!(d.status("/api/version", Some(("carol", &carol))), 200);
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);

    // remove: that user is refused; the others are not.
    users(&d, &["remove", "carol"]).any_stdout().run();
    assert_eq!(d.status("/api/version", Some(("carol", &carol))), 401);
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    assert_eq!(d.status("/api/version", Some(("bob", BOB_NEW))), 200);
    users(&d, &["remove", "bob"]).any_stdout().run();
    users(&d, &["remove", "alice"]).status(2).stderr_has("the last user").stderr_has("uninstall").run();
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    users(&d, &["rotate", "nobody"])
        .status(2)
        .stderr("error: there is no user nobody (see `ollama-secure users list`)\n")
        .run();
    users(&d, &["list"]).stdout("alice\n").run();

    // init again keeps the users added since (and says so), without prompting.
    let dave = generated(&users(&d, &["add", "dave"]).any_stdout().run(), "dave");
    d.init()
        .env("BOB_PASSWORD", BOB)
        .stdout_has("Keeping 1 installed user(s) that the answers file does not list: dave")
        .run();
    assert_eq!(d.status("/api/version", Some(("dave", &dave))), 200);
}

#[test]
fn nginx_users_add_rotate_remove() {
    manages_users("nginx");
}

#[test]
fn caddy_users_add_rotate_remove() {
    manages_users("caddy");
}

#[test]
fn hand_made_lines_survive_byte_for_byte_and_still_log_in() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    let path = d.users_file();
    let (_, apr1) = sh("htpasswd", &["-nbm", "hand-apr1", "apr1 password, long enough"]);
    let (_, sha) = sh("htpasswd", &["-nbs", "hand-sha", "sha password, long enough"]);
    let (_, bcrypt) = sh("htpasswd", &["-nbB", "hand-bcrypt", "bcrypt password, long enough"]);
    let hand = format!("# added by hand, keep this comment\n{}\n{}\n{}\n", apr1.trim(), sha.trim(), bcrypt.trim());
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str(&hand);
    fs::write(&path, &text).unwrap();

    let ran = users(&d, &["add", "erin"]).any_stdout().run();
    let after = fs::read_to_string(&path).unwrap();
    let erin = generated(&ran, "erin");
    assert!(after.starts_with(&text), "a line before the new one changed:\n{text}\n---\n{after}");
    assert_eq!(after.lines().count(), text.lines().count() + 1);
    for (user, password) in [
        ("hand-apr1", "apr1 password, long enough"),
        ("hand-sha", "sha password, long enough"),
        ("hand-bcrypt", "bcrypt password, long enough"),
        ("alice", ALICE),
        ("erin", erin.as_str()),
    ] {
        assert_eq!(d.status("/api/version", Some((user, password))), 200, "{user} cannot log in");
    }
}

#[test]
fn a_malformed_users_file_is_reported_by_line_and_left_alone() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    let path = d.users_file();
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("this line has no colon\n");
    fs::write(&path, &text).unwrap();
    let line = text.lines().count();
    users(&d, &["add", "frank"])
        .status(2)
        .stderr(&format!(
            "error: {}:{line}: not an htpasswd line (expected user:hash); the file was left untouched\n",
            path.display()
        ))
        .run();
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn concurrent_adds_lose_no_update() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    let bin = crate::support::BIN;
    let children: Vec<_> = (0..6)
        .map(|i| {
            std::process::Command::new(bin)
                .args(["users", "add", &format!("user{i}"), "--answers", &d.answers])
                .env("NO_COLOR", "1")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let listed = users(&d, &["list"]).any_stdout().run().stdout;
    for i in 0..6 {
        assert!(listed.lines().any(|l| l == format!("user{i}")), "user{i} was lost:\n{listed}");
    }
}
