//! The wizard, driven through a pseudo-terminal as a user would type: full
//! nginx and Caddy runs ending in `--dry-run`, bad answers asked again, and
//! `--save-answers` producing a file that repeats the run exactly, and
//! `--defaults` giving the questions' defaults. Every run gets a `--defaults`
//! file whose `paths:` point into a sandbox, so the tool never reads or
//! writes the machine's /etc here.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use expectrl::process::Termios;
use expectrl::session::OsSession;
use expectrl::{Eof, Expect, Session};

use crate::support::{BIN, HTTPS_OFF, ROOT, Sandbox, Tool};

const DOWN: &str = "\x1b[B";
const ENTER: &str = "\r";

/// The tool in a pseudo-terminal, set up before it starts (`stty`):
/// - `echo`, as a person's terminal has (`ptyprocess` turns it off), so
///   `answer_hidden` can see the wizard turn it off for a password;
/// - `-icanon`: the wizard reads one key at a time in raw mode and puts the
///   terminal back in between. A test types a whole answer at once, and keys
///   that land in between would be edited by the terminal's line discipline
///   (a Backspace erasing nothing and vanishing) instead of reaching the
///   wizard. A person's keys are far enough apart; a test's are not.
fn terminal(args: &[&str]) -> OsSession {
    let mut command = Command::new("sh");
    command
        .args(["-c", "stty echo -icanon && exec \"$0\" \"$@\"", BIN])
        .args(args)
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    let mut session = Session::spawn(command).expect("the tool starts in a pseudo-terminal");
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    session
}

/// A `--defaults` file in the sandbox: `extra` (YAML keys) and the paths.
fn defaults(sandbox: &Sandbox, extra: &str) -> String {
    let path = sandbox.write("defaults.yaml", &format!("{extra}{}", sandbox.paths_yaml()));
    path.display().to_string()
}

fn wizard(sandbox: &Sandbox, args: &[&str]) -> OsSession {
    let defaults = defaults(sandbox, "");
    terminal(&[&["init", "--dry-run", "--defaults", defaults.as_str()], args].concat())
}

fn answer(session: &mut OsSession, prompt: &str, keys: &str) {
    session.expect(prompt).unwrap_or_else(|e| panic!("no prompt {prompt:?}: {e}"));
    session.send(keys).unwrap();
}

/// Answers a hidden (password) prompt. The wizard prints the prompt and then
/// turns echo off with `tcsetattr(TCSAFLUSH)` (in the `console` crate), which
/// throws away input already typed; keys sent as soon as the prompt shows can
/// be lost, and the wizard then waits for ever. (This failed in CI once.) A
/// person cannot type that fast; a test waits until echo is off.
fn answer_hidden(session: &mut OsSession, prompt: &str, keys: &str) {
    session.expect(prompt).unwrap_or_else(|e| panic!("no prompt {prompt:?}: {e}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while session.is_echo().expect("the terminal's settings can be read") {
        assert!(std::time::Instant::now() < deadline, "echo never went off at {prompt:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    session.send(keys).unwrap();
}

/// What the run printed from its headline to the end, as plain lines.
fn plan_output(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let start = text.find("ollama-secure 0.1.0: ").map(|i| &text[i..]).unwrap_or(&text);
    let start = start.find("\nollama-secure ").map(|i| &start[i + 1..]).unwrap_or(start);
    let end = start
        .find("Dry run: nothing was changed.")
        .map(|i| i + "Dry run: nothing was changed.".len())
        .unwrap_or(start.len());
    let stamps = regex_free_stamp_filter(&start[..end]);
    stamps.lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

/// What differs between two runs by design: backup names carry the time
/// (`bak-YYYYMMDDTHHMMSSZ` → `bak-STAMP`), and nginx's cache key carries a
/// fingerprint of the hashes (a generated password is new in every run).
fn regex_free_stamp_filter(text: &str) -> String {
    const KEY: &str = "proxy_cache_key \"";
    let text = match text.find(KEY) {
        Some(i) => {
            let start = i + KEY.len();
            let end = start + text[start..].find(' ').unwrap_or(0);
            format!("{}FINGERPRINT{}", &text[..start], &text[end..])
        }
        None => text.to_string(),
    };
    let text = text.as_str();
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(".bak-") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).unwrap_or(rest.len());
        out.push_str("STAMP");
        rest = &rest[len..];
    }
    out.push_str(rest);
    out
}

#[test]
fn nginx_through_the_wizard_and_back_through_saved_answers() {
    let sandbox = Sandbox::new();
    let saved = sandbox.path("saved.yaml");
    let mut s = wizard(&sandbox, &["--save-answers", saved.to_str().unwrap()]);
    answer(&mut s, "Proxy", ENTER); // nginx is preselected when installed
    // A domain with a space and a semicolon is refused, with the reason, and asked again.
    answer(&mut s, "Domain name", "ollama example.com;\r");
    s.expect("a space is not allowed").unwrap();
    answer(&mut s, "Domain name", "ollama.example.com\r");
    answer(&mut s, "HTTPS with a certificate for ollama.example.com?", "n");
    answer(&mut s, "Port to listen on", ENTER); // default 8080
    answer(&mut s, "Where Ollama listens", ENTER);
    s.expect("127.0.0.1:11434").unwrap();
    answer(&mut s, "Username", "alice\r"); // typing replaces the default "ollama"
    answer(&mut s, "How should alice get a password?", &format!("{DOWN}{ENTER}")); // type a password
    // A mismatched confirmation is asked again.
    answer_hidden(&mut s, "Password for alice", "the first typed password\r");
    answer_hidden(&mut s, "Repeat it", "a different password\r");
    s.expect("The two passwords differ").unwrap();
    answer_hidden(&mut s, "Password for alice", "the first typed password\r");
    answer_hidden(&mut s, "Repeat it", "the first typed password\r");
    answer(&mut s, "What may alice do?", &format!("{DOWN}{ENTER}")); // admin
    answer(&mut s, "Add another user?", "y");
    answer(&mut s, "Username", "bob\r");
    answer(&mut s, "How should bob get a password?", ENTER); // generate
    answer(&mut s, "What may bob do?", ENTER); // the user role, the default
    answer(&mut s, "Add another user?", "n");
    let rest = s.expect(Eof).unwrap();
    let wizard_text = String::from_utf8_lossy(rest.as_bytes()).into_owned();
    assert!(wizard_text.contains("Dry run: nothing was changed."), "{wizard_text}");
    assert!(wizard_text.contains("Passwords will be generated for: bob"), "{wizard_text}");
    assert!(!wizard_text.contains("the first typed password"), "the typed password was printed");

    // The saved answers: private, no plaintext, and they repeat the run.
    let text = fs::read_to_string(&saved).unwrap();
    assert_eq!(fs::metadata(&saved).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!text.contains("first typed password"), "{text}");
    assert!(text.contains("password_hash: $2y$12$"), "{text}");
    assert!(text.contains("generate: true"), "bob's password was never shown, so it stays generated: {text}");
    assert_eq!(text.matches("role: admin").count(), 1, "alice is the one admin: {text}");
    let again = Tool::new()
        .args(["init", "--dry-run", "--answers", saved.to_str().unwrap()])
        .any_stdout()
        .stderr(HTTPS_OFF)
        .run();
    assert_eq!(plan_output(&wizard_text), plan_output(&again.stdout), "the saved answers plan something else");
    let site = format!("write {}", sandbox.path("etc/nginx/sites-available/ollama").display());
    assert!(plan_output(&again.stdout).contains(&site), "{}", again.stdout);
}

#[test]
fn caddy_through_the_wizard_from_defaults() {
    let sandbox = Sandbox::new();
    // Defaults for asked questions (proxy, port), and keys the wizard does not ask.
    let defaults =
        defaults(&sandbox, "proxy: caddy\nport: 8443\nlisten_address: 127.0.0.1\ntimeout: 5m\nbcrypt_cost: 6\n");
    let mut s = terminal(&["init", "--dry-run", "--defaults", &defaults]);
    answer(&mut s, "Proxy", ENTER); // caddy, from the defaults
    answer(&mut s, "Domain name", ENTER); // any host name: no HTTPS question
    answer(&mut s, "Port to listen on", ENTER); // 8443, from the defaults
    answer(&mut s, "Where Ollama listens", ENTER);
    answer(&mut s, "Username", ENTER); // default "ollama"
    answer(&mut s, "How should ollama get a password?", ENTER);
    answer(&mut s, "What may ollama do?", ENTER);
    answer(&mut s, "Add another user?", ENTER); // default no
    let rest = s.expect(Eof).unwrap();
    let text = String::from_utf8_lossy(rest.as_bytes()).replace("\r\n", "\n");
    for expected in [
        "caddy at http://127.0.0.1:8443 in front of Ollama at http://127.0.0.1:11434",
        &format!("write {}", sandbox.path("etc/caddy/ollama.caddy").display()),
        "| :8443 {",
        "| \tbind 127.0.0.1",
        "| \t\t\tollama $2y$06$<redacted>",
        "| \t\t\t\tresponse_header_timeout 300s",
        "Passwords will be generated for: ollama",
        "Dry run: nothing was changed.",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
    }
    assert!(!text.contains("HTTPS with a certificate"), "HTTPS was offered without a domain");
}

#[test]
fn a_default_domain_is_kept_with_enter_and_cleared_with_backspace() {
    let sandbox = Sandbox::new();
    let defaults = defaults(&sandbox, "domain: ollama.example.com\nhttps: {enabled: false}\n");
    let run = |domain_keys: &str| {
        let mut s = terminal(&["init", "--dry-run", "--defaults", &defaults]);
        answer(&mut s, "Proxy", ENTER);
        answer(&mut s, "Domain name", domain_keys);
        s
    };
    let finish = |mut s: OsSession| {
        answer(&mut s, "Port to listen on", ENTER);
        answer(&mut s, "Where Ollama listens", ENTER);
        answer(&mut s, "Username", ENTER);
        answer(&mut s, "How should ollama get a password?", ENTER);
        answer(&mut s, "What may ollama do?", ENTER);
        answer(&mut s, "Add another user?", ENTER);
        let rest = s.expect(Eof).unwrap();
        String::from_utf8_lossy(rest.as_bytes()).into_owned()
    };

    // Enter keeps the domain; HTTPS is offered, with the defaults' "no" preselected.
    let mut s = run(ENTER);
    answer(&mut s, "HTTPS with a certificate for ollama.example.com?", ENTER);
    let text = finish(s);
    assert!(text.contains("nginx at http://ollama.example.com:8080 in front of"), "{text}");
    assert!(text.contains("server_name ollama.example.com;"), "{text}");

    // Emptying the line means any host name, as without defaults.
    let text = finish(run(&format!("{}{ENTER}", "\x7f".repeat("ollama.example.com".len()))));
    assert!(!text.contains("HTTPS with a certificate"), "HTTPS was offered without a domain: {text}");
    assert!(text.contains("server_name _;"), "{text}");
}

#[test]
fn a_defaults_file_is_checked_before_any_question() {
    let sandbox = Sandbox::new();
    let listing_users = defaults(&sandbox, "users: [{username: alice, generate: true}]\n");
    let mut s = terminal(&["init", "--dry-run", "--defaults", &listing_users]);
    let rest = s.expect(Eof).unwrap();
    let text = String::from_utf8_lossy(rest.as_bytes()).into_owned();
    assert!(text.contains("defaults.yaml:1:8: users: the wizard asks for the users"), "{text}");
    assert!(!text.contains("Proxy"), "the wizard asked before refusing the defaults: {text}");

    let bad = defaults(&sandbox, "timeout: soon\nbcrypt_cost: 40\n");
    let mut s = terminal(&["init", "--dry-run", "--defaults", &bad]);
    let rest = s.expect(Eof).unwrap();
    let text = String::from_utf8_lossy(rest.as_bytes()).into_owned();
    assert!(text.contains("defaults.yaml:1:10: timeout:"), "{text}");
    assert!(text.contains("defaults.yaml:2:14: bcrypt_cost:"), "{text}");
    assert!(!text.contains("Proxy"), "the wizard asked before refusing the defaults: {text}");

    Tool::new()
        .args(["init", "--answers", "examples/nginx.yaml", "--defaults", &bad])
        .status(2)
        .stderr_has("cannot be used with")
        .run();
}

/// Everything the tool would write, with its paths in the sandbox.
fn tool_files(sandbox: &Sandbox) -> std::collections::BTreeMap<String, String> {
    sandbox.trees(&["etc", "var"])
}

/// Ctrl-C at a list prompt (in raw mode, the cursor hidden) and at a text
/// prompt: the terminal is put back (echo on, checked through the PTY; the
/// cursor shown after the prompt hid it), the run says so and exits 130,
/// and nothing is written.
#[test]
fn ctrl_c_leaves_everything_as_it_was() {
    let sandbox = Sandbox::new();
    let saved = sandbox.path("saved.yaml");
    let defaults = defaults(&sandbox, "");
    let before = tool_files(&sandbox);
    for keys in [&["\x03"][..], &[ENTER, "\x03"]] {
        let mut s = terminal(&["init", "--defaults", &defaults, "--save-answers", saved.to_str().unwrap()]);
        answer(&mut s, "Proxy", keys[0]);
        if let Some(more) = keys.get(1) {
            answer(&mut s, "Domain name", more);
        }
        let rest = s.expect(Eof).unwrap();
        let text = String::from_utf8_lossy(rest.as_bytes()).into_owned();
        assert!(text.ends_with("interrupted; nothing was changed\r\n"), "{keys:?}: {text:?}");
        let status = format!("{:?}", s.get_process().wait().unwrap());
        assert!(status.starts_with("Exited(") && status.ends_with(", 130)"), "{keys:?}: {status}");
        assert!(s.is_echo().unwrap(), "{keys:?}: echo was left off");
        assert!(!saved.exists(), "an interrupted wizard saved answers");
        assert_eq!(tool_files(&sandbox), before, "an interrupted wizard changed the system");
    }
    // The cursor: shown again after the list prompt hid it.
    let mut s = terminal(&["init", "--defaults", &defaults]);
    let prompt = s.expect("Proxy").unwrap();
    assert!(
        String::from_utf8_lossy(prompt.before()).contains("\x1b[?25l"),
        "the list prompt no longer hides the cursor"
    );
    s.send("\x03").unwrap();
    let rest = s.expect(Eof).unwrap();
    let text = String::from_utf8_lossy(rest.as_bytes()).into_owned();
    assert!(text.contains("\x1b[?25h"), "the cursor stays hidden: {text:?}");
}

#[test]
fn declining_the_final_question_changes_nothing() {
    let sandbox = Sandbox::new();
    let defaults = defaults(&sandbox, "");
    let before = tool_files(&sandbox);
    let mut s = terminal(&["init", "--no-check", "--defaults", &defaults]);
    answer(&mut s, "Proxy", ENTER);
    answer(&mut s, "Domain name", ENTER);
    answer(&mut s, "Port to listen on", ENTER);
    answer(&mut s, "Where Ollama listens", ENTER);
    answer(&mut s, "Username", ENTER);
    answer(&mut s, "How should ollama get a password?", ENTER);
    answer(&mut s, "What may ollama do?", ENTER);
    answer(&mut s, "Add another user?", ENTER);
    s.expect("Steps (see them in full with --dry-run):").unwrap();
    answer(&mut s, "Apply these changes?", ENTER); // the default is no
    let rest = s.expect(Eof).unwrap();
    let text = String::from_utf8_lossy(rest.as_bytes()).into_owned();
    assert!(text.contains("not confirmed; nothing was changed"), "{text}");
    assert_eq!(tool_files(&sandbox), before, "declining changed the system");
}

#[test]
fn without_a_terminal_or_answers_it_says_what_to_do() {
    Tool::new()
        .args(["init"])
        .status(2)
        .stderr(
            "error: no --answers FILE, and no terminal to ask on: pass --answers FILE (see examples/nginx.yaml), \
             or run init in a terminal for the wizard\n",
        )
        .run();
}

/// `uninstall` on a terminal says what cannot be had back, asks, and
/// changes nothing when the answer is no; `--yes` does not ask.
#[test]
fn uninstall_on_a_terminal_asks_first() {
    use crate::support::deployment::{ALICE, ALICE_ONLY, Deployment};
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    let installed = d.machine();
    let mut s = terminal(&["uninstall", "--answers", &d.answers]);
    let asked = s.expect("Uninstall?").unwrap();
    let shown = String::from_utf8_lossy(asked.before()).into_owned();
    assert!(shown.contains("This stops the proxy ollama-secure started (`nginx -s quit"), "{shown}");
    assert!(shown.contains("Steps (see them in full with --dry-run):"), "{shown}");
    s.send("n").unwrap();
    let rest = String::from_utf8_lossy(s.expect(Eof).unwrap().as_bytes()).into_owned();
    assert!(rest.contains("error: not confirmed; nothing was changed"), "{rest:?}");
    let status = format!("{:?}", s.get_process().wait().unwrap());
    assert!(status.ends_with(", 2)"), "{status}");
    assert_eq!(d.machine(), installed, "a declined uninstall changed files");
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200, "a declined uninstall stopped the site");

    let mut s = terminal(&["uninstall", "--answers", &d.answers, "--yes"]);
    let rest = String::from_utf8_lossy(s.expect(Eof).unwrap().as_bytes()).into_owned();
    assert!(!rest.contains("Uninstall?") && rest.contains("Done: ollama-secure's changes are undone"), "{rest:?}");
    let status = format!("{:?}", s.get_process().wait().unwrap());
    assert!(status.ends_with(", 0)"), "{status}");
}

/// A port another program listens on is refused at the port question,
/// with the program named, not after every other question.
#[test]
fn a_busy_port_is_refused_when_it_is_asked() {
    let sandbox = Sandbox::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let mut s = wizard(&sandbox, &[]);
    answer(&mut s, "Proxy", ENTER);
    answer(&mut s, "Domain name", ENTER);
    answer(&mut s, "Port to listen on", &format!("{busy_port}\r"));
    s.expect(format!("port {busy_port} is in use by integration")).unwrap();
    s.expect("choose another port, or stop it and press Enter again").unwrap();
    // Once its program has stopped, Enter takes the port typed before.
    drop(busy);
    answer(&mut s, "Port to listen on", ENTER);
    s.expect(format!("Port to listen on: {busy_port}")).unwrap();
    answer(&mut s, "Where Ollama listens", "\x03");
    s.expect(Eof).unwrap();
}

/// After the last question, a plan that cannot apply (here: HTTPS's
/// plain-HTTP port, which the wizard does not ask, is taken) offers to
/// keep the answers; nothing else is written, and the saved file repeats
/// the run once the port is free.
#[test]
fn a_refused_plan_offers_to_save_the_answers() {
    let sandbox = Sandbox::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let defaults = defaults(&sandbox, &format!("https: {{enabled: true, http_port: {busy_port}}}\n"));
    let before = tool_files(&sandbox);
    let saved = sandbox.path("kept.yaml");
    let mut s = terminal(&["init", "--defaults", &defaults]);
    answer(&mut s, "Proxy", ENTER);
    answer(&mut s, "Domain name", "ollama.test\r");
    answer(&mut s, "HTTPS with a certificate for ollama.test?", ENTER);
    answer(&mut s, "Email for the certificate account", ENTER);
    // Said at once, with what can be done.
    s.expect(format!("Note: port {busy_port} is in use by integration")).unwrap();
    s.expect("give another https.http_port in a --defaults file").unwrap();
    answer(&mut s, "Port to listen on", &format!("{}\r", crate::support::free_port()));
    answer(&mut s, "Where Ollama listens", ENTER);
    answer(&mut s, "Username", "alice\r");
    answer(&mut s, "How should alice get a password?", ENTER);
    answer(&mut s, "What may alice do?", ENTER);
    answer(&mut s, "Add another user?", "n");
    s.expect("Applying would be refused now:").unwrap();
    s.expect(format!("port {busy_port} is already in use by integration")).unwrap();
    answer(&mut s, "Save these answers", ENTER); // yes, the default
    answer(&mut s, "Save them to", &format!("{}\r", saved.display()));
    let rest = String::from_utf8_lossy(s.expect(Eof).unwrap().as_bytes()).replace("\r\n", "\n");
    assert!(rest.contains(&format!("Saved the answers to {}", saved.display())), "{rest}");
    assert!(
        rest.contains(&format!(
            "error: cannot apply; nothing was changed (the reasons are above): the answers are in {}",
            saved.display()
        )),
        "{rest}"
    );
    let status = format!("{:?}", s.get_process().wait().unwrap());
    assert!(status.ends_with(", 2)"), "{status}");
    assert_eq!(fs::metadata(&saved).unwrap().permissions().mode() & 0o777, 0o600);
    let mut after = tool_files(&sandbox);
    after.retain(|k, _| !k.contains("kept.yaml"));
    assert_eq!(after, before, "a refused run wrote something besides the answers");
    let text = fs::read_to_string(&saved).unwrap();
    assert!(text.contains("generate: true") && text.contains("domain: ollama.test"), "{text}");
    drop(busy);
    Tool::new().args(["init", "--dry-run", "--answers", saved.to_str().unwrap()]).stdout_has("ollama.test").run();
}

/// On a terminal of 80 columns (the classic width; every prompt fits in
/// it), what stays on the screen: a refusal
/// wider than the terminal stays whole (dialoguer's own error line was
/// half overwritten by the next prompt), and after two passwords that
/// differ no stale password prompt is left, only the reason and the
/// answered question; a warning about an answer is in the wizard's words.
#[test]
fn refusals_and_mismatches_leave_a_clean_screen() {
    let sandbox = Sandbox::new();
    let defaults = defaults(&sandbox, "");
    let mut command = Command::new("sh");
    command
        .args(["-c", "stty echo -icanon cols 80 rows 60 && exec \"$0\" \"$@\"", BIN])
        .args(["init", "--dry-run", "--defaults", &defaults])
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    let mut s = Session::spawn(command).unwrap();
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    let mut shown: Vec<u8> = Vec::new();
    let mut until = |s: &mut OsSession, text: &str| {
        let found = s.expect(text).unwrap_or_else(|e| panic!("no {text:?}: {e}"));
        shown.extend_from_slice(found.as_bytes());
    };
    let bad = "ollama example.com;";
    let refusal = ollama_secure::fields::host(bad).expect_err("a space is refused");
    assert!(refusal.chars().count() > 80, "the refusal must be wider than the terminal: {refusal}");
    until(&mut s, "Proxy");
    s.send(ENTER).unwrap();
    until(&mut s, "Domain name");
    s.send(format!("{bad}\r")).unwrap();
    until(&mut s, "Domain name");
    s.send("ollama.example.com\r").unwrap();
    until(&mut s, "HTTPS with a certificate");
    s.send("n").unwrap();
    until(&mut s, "Port to listen on");
    s.send(format!("{}\r", crate::support::free_port())).unwrap();
    until(&mut s, "Where Ollama listens");
    s.send(ENTER).unwrap();
    until(&mut s, "Username");
    s.send("alice\r").unwrap();
    until(&mut s, "How should alice get a password?");
    s.send(format!("{DOWN}{ENTER}")).unwrap();
    // A password bcrypt would cut is refused as soon as it is typed.
    until(&mut s, "Password for alice");
    while s.is_echo().unwrap() {
        std::thread::sleep(Duration::from_millis(10));
    }
    s.send(format!("{}\r", "x".repeat(73))).unwrap();
    until(&mut s, "bcrypt reads only the first 72");
    for (first, second) in [("one password typed", "another password"), ("the agreed password", "the agreed password")]
    {
        for (prompt, keys) in [("Password for alice", first), ("Repeat it", second)] {
            until(&mut s, prompt);
            while s.is_echo().unwrap() {
                std::thread::sleep(Duration::from_millis(10));
            }
            s.send(format!("{keys}\r")).unwrap();
        }
    }
    until(&mut s, "What may alice do?");
    s.send(ENTER).unwrap();
    until(&mut s, "Add another user?");
    s.send("n").unwrap();
    shown.extend_from_slice(s.expect(Eof).unwrap().as_bytes());

    // Taller than the terminal, so the plan's lines do not scroll the
    // questions away; dialoguer moves only relative to the cursor.
    let mut screen = crate::support::screen::Screen::new(2000, 80);
    screen.feed(&shown);
    let lines = screen.text();
    let all = lines.join("\n");
    // The refusal, wrapped by the terminal, is all there: its words in order.
    let words = |text: &str| text.split_whitespace().collect::<String>();
    assert!(words(&all).contains(&words(&refusal)), "the refusal was cut:\n{all}");
    assert_eq!(lines.iter().filter(|l| l.contains("Domain name")).count(), 1, "one answered domain question:\n{all}");
    assert!(lines.iter().any(|l| l.contains("Domain name") && l.contains("ollama.example.com")), "{all}");
    assert_eq!(lines.iter().filter(|l| l.contains("Password for alice")).count(), 1, "stale password prompts:\n{all}");
    assert!(!lines.iter().any(|l| l.contains("Repeat it")), "a stale confirmation prompt:\n{all}");
    assert_eq!(lines.iter().filter(|l| l.contains("The two passwords differ")).count(), 1, "{all}");
    assert_eq!(lines.iter().filter(|l| l.contains("bcrypt reads only the first 72")).count(), 1, "{all}");
    // The short password is said once, in the wizard's words, not again
    // in the answers file's (`users[0]: ... or generate: true`).
    assert_eq!(lines.iter().filter(|l| l.contains("fewer than 20 characters")).count(), 1, "{all}");
    assert!(!all.contains("users[0]") && !all.contains("generate: true"), "{all}");
    assert!(all.contains("Dry run: nothing was changed."), "{all}");
}
