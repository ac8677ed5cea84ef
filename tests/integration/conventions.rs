//! The conventions of a command-line tool: colours and symbols on a
//! terminal only, never with `NO_COLOR` (no-color.org) or `TERM=dumb`, and
//! plain ASCII words into a pipe, a file or a log.

use std::process::Command;
use std::time::Duration;

use expectrl::{Eof, Expect, Session};

use crate::support::{BIN, ROOT, Sandbox, Tool, free_port};

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

/// The wizard's prompts too: no symbols with `TERM=dumb` or `NO_COLOR`.
#[test]
fn the_wizard_on_a_dumb_terminal_is_plain() {
    let sandbox = Sandbox::new();
    let defaults = sandbox.write("defaults.yaml", &sandbox.paths_yaml()).display().to_string();
    for env in [("TERM", "dumb"), ("NO_COLOR", "1")] {
        let mut command = Command::new(BIN);
        command.args(["init", "--dry-run", "--defaults", &defaults]).current_dir(ROOT).env_remove("NO_COLOR");
        command.env("TERM", "xterm").env(env.0, env.1);
        let mut session = Session::spawn(command).unwrap();
        session.set_expect_timeout(Some(Duration::from_secs(30)));
        let mut all = Vec::new();
        all.extend_from_slice(session.expect("Proxy").unwrap().as_bytes());
        session.send("\r").unwrap();
        all.extend_from_slice(session.expect("Domain name").unwrap().as_bytes());
        session.send("\x03").unwrap();
        all.extend_from_slice(session.expect(Eof).unwrap().as_bytes());
        let all = String::from_utf8_lossy(&all).into_owned();
        assert!(all.contains("Proxy: nginx") && !all.contains('✔') && !all.contains('❯'), "{env:?}: {all:?}");
    }
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

/// `--answers -` reads a pipe exactly as it reads a file, names it
/// `<stdin>` in messages, and is bounded in size and in time.
#[test]
fn answers_from_standard_input() {
    let sandbox = Sandbox::new();
    let yaml = format!(
        "{}\n{}",
        std::fs::read_to_string(format!("{ROOT}/examples/nginx.yaml")).unwrap(),
        sandbox.paths_yaml()
    );
    let file = sandbox.write("nginx.yaml", &yaml);
    let (from_file, from_pipe) = (sandbox.path("from-file"), sandbox.path("from-pipe"));
    Tool::new()
        .args(["render", "--answers", file.to_str().unwrap(), "--out", from_file.to_str().unwrap()])
        .any_output()
        .run();
    Tool::new()
        .args(["render", "--answers", "-", "--out", from_pipe.to_str().unwrap()])
        .stdin(&yaml)
        .any_output()
        .run();
    let (a, b) = (crate::support::tree(&from_file), crate::support::tree(&from_pipe));
    assert!(!a.is_empty(), "render wrote nothing");
    // The same files, but for what is new in every run (bcrypt's salts,
    // the fingerprint of the hashes in nginx's cache key).
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let hashes = regex::Regex::new(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}").unwrap();
    let fingerprint = regex::Regex::new(r#"proxy_cache_key "[^ ]+ "#).unwrap();
    let same = |path: &std::path::Path| {
        let text = std::fs::read_to_string(path).unwrap();
        let text = hashes.replace_all(&text, "HASH");
        fingerprint.replace_all(&text, "proxy_cache_key FINGERPRINT ").into_owned()
    };
    let files: Vec<&String> = a.iter().filter(|(_, v)| v.starts_with("file")).map(|(k, _)| k).collect();
    assert!(!files.is_empty());
    for file in files {
        assert_eq!(same(&from_file.join(file)), same(&from_pipe.join(file)), "{file}");
    }

    Tool::new()
        .args(["init", "--answers", "-", "--dry-run"])
        .stdin("proxy: nginx\nport: eighty\n")
        .status(2)
        .stderr_has("error: <stdin>:2:7: port: expected a whole number")
        .run();
    let huge = format!("proxy: nginx\n#{}\n", " ".repeat(1024 * 1024));
    Tool::new()
        .args(["init", "--answers", "-", "--dry-run"])
        .stdin(&huge)
        .status(2)
        .stderr("error: cannot read answers file <stdin>: larger than the 1048576 bytes allowed\n")
        .run();
}

#[test]
fn answers_from_a_pipe_that_never_closes_end_the_run() {
    let mut child = Command::new(BIN)
        .args(["init", "--answers", "-", "--dry-run"])
        .current_dir(ROOT)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut writer = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut writer, b"proxy: nginx\n").unwrap();
    // The writer is kept open until the tool has given up.
    let out = child.wait_with_output().unwrap();
    drop(writer);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: cannot read answers file <stdin>: standard input was not closed within 30 s\n"
    );
}

#[test]
fn defaults_from_standard_input_are_refused() {
    Tool::new()
        .args(["init", "--defaults", "-", "--dry-run"])
        .stdin("proxy: nginx\n")
        .status(2)
        .stderr_has("error: no --answers FILE, and no terminal to ask on")
        .run();
    let text = on_a_terminal(&["init", "--defaults", "-", "--dry-run"], &[("NO_COLOR", "1")]);
    assert!(text.contains("error: --defaults -: the wizard reads its answers from the terminal"), "{text:?}");
}

#[test]
fn answers_from_a_terminal_are_refused() {
    let text = on_a_terminal(&["init", "--answers", "-", "--dry-run"], &[("NO_COLOR", "1")]);
    assert!(text.contains("error: `-` reads the answers from standard input, which is a terminal here"), "{text:?}");
}

/// `-q`: a run that succeeds prints nothing but its warnings and what
/// only it can show; `-v`: every command and its
/// output, on standard error. Against a real nginx.
#[test]
fn quiet_and_verbose() {
    use crate::support::deployment::{ALICE_ONLY, Deployment};
    let d = Deployment::prepare("nginx", ALICE_ONLY);
    // (It listens on loopback: no warning about plain HTTP.)
    d.init().args(["-q"]).stdout("").stderr("").run();
    d.check().args(["-q"]).stdout("").run();
    d.write_answers(&format!("{ALICE_ONLY}  - {{username: bob, password_env: ALICE_PASSWORD}}\n"));
    let ran = d.init().args(["-v"]).any_stdout().any_stderr().run();
    let conf = d.sandbox.path("etc/nginx/nginx.conf");
    assert!(ran.stderr.contains(&format!("  + nginx -t -c {}\n", conf.display())), "{}", ran.stderr);
    assert!(ran.stderr.contains("    nginx: configuration file"), "nginx's own output: {}", ran.stderr);
    assert!(ran.stdout.contains("ok configuration is valid"), "{}", ran.stdout);

    // Generated passwords are shown even when quiet: never silently lost.
    d.write_answers(&format!("{ALICE_ONLY}  - {{username: carol, generate: true}}\n"));
    let ran = d.init().args(["--quiet"]).any_stdout().any_stderr().run();
    let lines: Vec<&str> = ran.stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{}", ran.stdout);
    assert_eq!(lines[0], "Generated passwords (shown once; store them now, they cannot be recovered):");
    assert!(lines[1].starts_with("  carol (user role): "), "{}", ran.stdout);

    // A failed check is reported even when quiet.
    Tool::new()
        .args(check_args(free_port()))
        .args(["-q"])
        .env("SECRET", "wrong")
        .status(3)
        .stdout_has("  FAIL  without credentials")
        .any_stderr()
        .run();
    Tool::new()
        .args(["init", "-q", "-v", "--answers", &d.answers])
        .status(2)
        .stderr_has("error: the argument '--quiet' cannot be used with '--verbose'")
        .run();
}

/// `-q` keeps the plan's warnings (here: Ollama does not answer where the
/// answers say), on standard error.
#[test]
fn quiet_still_says_the_plans_warnings() {
    use crate::support::deployment::{ALICE_ONLY, Deployment};
    let d = Deployment::prepare("nginx", ALICE_ONLY);
    let closed = free_port();
    let yaml = std::fs::read_to_string(&d.answers).unwrap();
    let upstream = yaml.lines().find(|l| l.starts_with("upstream: ")).unwrap().to_string();
    std::fs::write(&d.answers, yaml.replace(&upstream, &format!("upstream: 127.0.0.1:{closed}"))).unwrap();
    // The check at the end fails (502): its report is shown, quiet or not.
    let ran = d.init().args(["-q"]).status(3).any_stdout().any_stderr().run();
    let warning = format!("warning: Ollama does not answer at http://127.0.0.1:{closed}");
    assert!(ran.stderr.starts_with(&warning), "{}", ran.stderr);
    assert!(ran.stdout.contains("  FAIL  "), "{}", ran.stdout);
    assert!(!ran.stdout.contains("Applying:"), "{}", ran.stdout);
}

/// A bare file name is a file in the current folder, as everywhere.
#[test]
fn save_answers_to_a_bare_file_name() {
    let sandbox = Sandbox::new();
    let out = Command::new(BIN)
        .args([
            "init",
            "--dry-run",
            "--answers",
            &format!("{ROOT}/examples/nginx.yaml"),
            "--save-answers",
            "saved.yaml",
        ])
        .current_dir(sandbox.root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Saved the answers to saved.yaml"), "{stdout}");
    assert!(sandbox.path("saved.yaml").exists());
}

/// A reader that went away (`| head`) does not stop a run with a panic:
/// output to a closed pipe is lost, the run goes on and ends as it would.
#[test]
fn a_closed_pipe_on_standard_output_is_no_panic() {
    let sandbox = Sandbox::new();
    let answers = sandbox.write(
        "a.yaml",
        &format!(
            "proxy: nginx\nlisten_address: 127.0.0.1\nusers: [{{username: alice, password_hash: \"{HASH}\"}}]\n{}",
            sandbox.paths_yaml()
        ),
    );
    let out = sandbox.path("out");
    let render = ["render", "--answers", answers.to_str().unwrap(), "--out", out.to_str().unwrap()];
    Tool::new().args(["schema"]).stdout_closed().run();
    Tool::new().args(render).stdout_closed().run();
    // The work was done all the same.
    assert!(out.join(sandbox.path("etc/nginx/ollama.htpasswd").strip_prefix("/").unwrap()).is_file());
}

const HASH: &str = "$2y$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";

/// A generated password that cannot be shown is not kept: with standard
/// output closed, `init` undoes its run (a real nginx), and says why.
#[test]
fn a_generated_password_that_cannot_be_shown_is_not_kept() {
    let d = crate::support::deployment::Deployment::prepare(
        "nginx",
        &format!("{}  - {{username: bob, generate: true}}\n", crate::support::deployment::ALICE_ONLY),
    );
    let before = d.machine();
    d.init()
        .stdout_closed()
        .status(1)
        .stderr_has(
            "the generated passwords or keys could not be shown (Broken pipe (os error 32)), so this run was undone",
        )
        .run();
    d.assert_as_before(&before);
    // Shown, it is kept.
    d.init().any_stdout().run();
    assert_ne!(d.machine(), before);
}
