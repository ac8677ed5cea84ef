//! The binary as users run it: help, version, dry-run, render, errors.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use ollama_secure::proxy::ProxyKind;

use crate::support::{HTTPS_OFF, ROOT, Ran, Sandbox, Tool, sh};

/// examples/NAME.yaml with every path moved into the sandbox.
fn example_in_sandbox(sandbox: &Sandbox, name: &str) -> String {
    let yaml = fs::read_to_string(format!("{ROOT}/examples/{name}.yaml")).unwrap();
    sandbox.write(&format!("{name}.yaml"), &format!("{yaml}\n{}", sandbox.paths_yaml())).display().to_string()
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn help_and_version() {
    Tool::new().args(["--help"]).stdout_has("init").stdout_has("render").stdout_has("Exit codes").run();
    Tool::new()
        .args(["init", "--help"])
        .stdout_has("--answers")
        .stdout_has("--dry-run")
        // A dry run that saves answers writes that one file: said where the flag is.
        .stdout_has("With --dry-run too: FILE (and a backup of a previous one) is then the only thing written")
        .run();
    Tool::new().args(["--version"]).stdout(&format!("ollama-secure {}\n", env!("CARGO_PKG_VERSION"))).run();
    Tool::new()
        .args(["frobnicate"])
        .status(2)
        .stderr(
            "error: unrecognized subcommand 'frobnicate'\n\nUsage: ollama-secure [OPTIONS] <COMMAND>\n\nFor more information, try '--help'.\n",
        )
        .run();
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let sandbox = Sandbox::new();
    let answers = example_in_sandbox(&sandbox, "nginx");
    let answers = sandbox
        .write(
            "with-bob.yaml",
            &fs::read_to_string(&answers)
                .unwrap()
                .replace("users:\n", "users:\n  - {username: bob, password_env: BOB_PASSWORD}\n"),
        )
        .display()
        .to_string();
    let before = files_under(sandbox.root());
    let secret = "bob's password is long enough";
    let ran = Tool::new()
        .args(["init", "--answers", &answers, "--dry-run"])
        .env("BOB_PASSWORD", secret)
        .any_stdout()
        .stderr(HTTPS_OFF)
        .run();
    let out = &ran.stdout;
    for expected in [
        "ollama.htpasswd (new file; mode 0640, owner root:www-data)",
        "bob:$2y$12$<redacted>",
        "alice:$2y$05$<redacted>",
        "proxy_set_header Authorization \"\";",
        "sites-enabled/ollama -> ",
        "validate: run `nginx -t -c ",
        "Passwords will be generated for: alice",
        "Dry run: nothing was changed.",
    ] {
        assert!(out.contains(expected), "dry-run output lacks {expected:?}:\n{out}");
    }
    assert!(!ran.all().contains(secret), "the plaintext password was printed");
    assert_eq!(files_under(sandbox.root()), before, "dry-run wrote files");
}

#[test]
fn every_bundled_example_is_valid() {
    let sandbox = Sandbox::new();
    let mut names: Vec<String> = fs::read_dir(format!("{ROOT}/examples"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".yaml").map(str::to_string))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    for name in names {
        if name == "wizard-defaults" {
            let path = format!("{ROOT}/examples/{name}.yaml");
            let defaults = ollama_secure::answers::Answers::load(std::path::Path::new(&path)).unwrap();
            ollama_secure::config::check_wizard_defaults(&defaults, &path, ollama_secure::paths::Os::Debian)
                .unwrap_or_else(|e| panic!("{e}"));
            continue;
        }
        let answers = example_in_sandbox(&sandbox, &name);
        Tool::new()
            .args(["init", "--answers", &answers, "--dry-run"])
            .stdout_has("Dry run: nothing was changed.")
            .any_stderr()
            .run();
    }
}

#[test]
fn input_errors_name_file_and_field_and_exit_2() {
    let sandbox = Sandbox::new();
    let cases = [
        ("proxy: nginx\ndomian: x\nusers: [{username: a, generate: true}]\n", "domian"),
        ("proxy: nginx\nusers: [{username: \"a:b\", generate: true}]\n", "users[0].username"),
        ("proxy: nginx\ndomain: \"a.com; } server { listen 9999\"\nusers: [{username: a, generate: true}]\n", "domain"),
        ("proxy: nginx\nusers: [{username: a, password_env: SURELY_NOT_SET_ANYWHERE}]\n", "users[0].password_env"),
        ("proxy: nginx\nusers: []\n", "users"),
        ("proxy: nginx\nport: 70000\nusers: [{username: a, generate: true}]\n", "port"),
    ];
    for (yaml, field) in cases {
        let path = sandbox.write("bad.yaml", yaml).display().to_string();
        // The error names the file (at the line, when the field is in
        // it) and the field; nothing is planned.
        let ran = Tool::new().args(["init", "--answers", &path, "--dry-run"]).status(2).any_stderr().run();
        assert!(ran.stderr.starts_with(&format!("error: {path}:")), "{}", ran.stderr);
        assert!(ran.stderr.contains(&format!(" {field}: ")), "{field} not named: {}", ran.stderr);
        let out = sandbox.path("out");
        Tool::new().args(["render", "--answers", &path, "--out", out.to_str().unwrap()]).status(2).any_stderr().run();
        assert!(!out.exists(), "render wrote files for bad input {yaml:?}");
    }
    Tool::new()
        .args(["init", "--answers", "/nonexistent/answers.yaml", "--dry-run"])
        .status(2)
        .stderr("error: cannot read answers file /nonexistent/answers.yaml: No such file or directory (os error 2)\n")
        .run();
}

#[test]
fn render_writes_below_out_and_prints_generated_passwords_once() {
    let sandbox = Sandbox::new();
    let out = sandbox.path("out");
    let answers = sandbox.write(
        "answers.yaml",
        "proxy: nginx\nusers:\n  - {username: alice, generate: true}\n  - {username: bob, password_env: BOB_PASSWORD}\n",
    );
    let ran: Ran = Tool::new()
        .args(["render", "--answers", answers.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .env("BOB_PASSWORD", "bob's password is long enough")
        .any_stdout()
        .stderr(HTTPS_OFF)
        .run();
    assert_eq!(
        files_under(&out),
        ["etc/nginx/ollama.htpasswd", "etc/nginx/ollama.keys", "etc/nginx/sites-available/ollama"]
    );
    let htpasswd = out.join("etc/nginx/ollama.htpasswd");
    assert_eq!(
        fs::metadata(&htpasswd).unwrap().permissions().mode() & 0o777,
        0o600,
        "the rendered htpasswd is private"
    );
    // The generated password is printed once and verifies against the written hash.
    let line = ran
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("alice (user role): "))
        .expect("alice's password is printed");
    let password = line.trim().trim_start_matches("alice (user role): ");
    assert_eq!(password.len(), 24);
    assert_eq!(ran.stdout.matches(password).count(), 1);
    let (ok, output) = sh("htpasswd", &["-vb", htpasswd.to_str().unwrap(), "alice", password]);
    assert!(ok, "htpasswd -vb rejects the generated password: {output}");
    let (ok, _) = sh("htpasswd", &["-vb", htpasswd.to_str().unwrap(), "bob", "bob's password is long enough"]);
    assert!(ok, "htpasswd -vb rejects bob's password");
    let (ok, _) = sh("htpasswd", &["-vb", htpasswd.to_str().unwrap(), "bob", "wrong"]);
    assert!(!ok, "htpasswd -vb accepts a wrong password");
}

#[test]
fn render_for_caddy_adds_the_import_to_a_new_main_caddyfile() {
    let sandbox = Sandbox::new();
    // The example, with every path in the sandbox, where no Caddyfile exists yet.
    let answers = example_in_sandbox(&sandbox, "caddy");
    let out = sandbox.path("out");
    Tool::new().args(["render", "--answers", &answers, "--out", out.to_str().unwrap()]).any_output().run();
    let below = |p: &str| out.join(sandbox.path(p).strip_prefix("/").unwrap());
    let mut files = files_under(&out);
    files.sort();
    let mut expected: Vec<String> = ["etc/caddy/Caddyfile", "etc/caddy/ollama.caddy"]
        .iter()
        .map(|p| below(p).strip_prefix(&out).unwrap().display().to_string())
        .collect();
    expected.sort();
    assert_eq!(files, expected);
    let main = fs::read_to_string(below("etc/caddy/Caddyfile")).unwrap();
    let import = format!("import {}", sandbox.path("etc/caddy/ollama.caddy").display());
    assert!(main.contains(&import), "{main}");
    // For the Caddy installed here, as init renders it (2.8 renamed the directive).
    let site = fs::read_to_string(below("etc/caddy/ollama.caddy")).unwrap();
    let here =
        ProxyKind::Caddy.module().installed_version(&ollama_secure::system::RealSystem).expect("caddy is installed");
    let (major, minor) = here
        .split_once('.')
        .map(|(a, b)| (a.parse::<u32>().unwrap(), b.split('.').next().unwrap().parse::<u32>().unwrap()))
        .unwrap();
    let directive = if (major, minor) >= (2, 8) { "\tbasic_auth @" } else { "\tbasicauth @" };
    assert!(site.contains(directive), "Caddy {here}: no {directive:?} in\n{site}");
}

/// As the README promises, a dry run needs no root: what it cannot read is
/// said, and the plan is still printed.
#[test]
fn a_dry_run_without_root_plans_what_it_cannot_read() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    crate::support::proxies::write_nginx_main_conf(&sandbox);
    let htpasswd = sandbox.write("etc/nginx/ollama.htpasswd", "alice:$apr1$hJ3hV9w1$8YHcqcKgxwP/8F0p1Nb2a/\n");
    fs::set_permissions(&htpasswd, fs::Permissions::from_mode(0o600)).unwrap();
    // A port root holds: its owner is invisible to nobody.
    let held = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = held.local_addr().unwrap().port();
    let answers = sandbox.write(
        "answers.yaml",
        &format!(
            "proxy: nginx\nlisten_address: 127.0.0.1\nport: {port}\nusers: [{{username: alice, generate: true}}]\n{}",
            sandbox.paths_yaml()
        ),
    );
    let before = files_under(sandbox.root());
    Tool::new()
        .args(["init", "--dry-run", "--answers", answers.to_str().unwrap()])
        .unprivileged()
        .stdout_has(&format!("warning: {} needs root to read", htpasswd.display()))
        .stdout_has(&format!("write {} (replaces the current file", htpasswd.display()))
        .stdout_has(&format!("port {port} is in use on 127.0.0.1 by a process this user cannot see"))
        .stdout_has("Applying needs root (sudo).")
        .stdout_has("Dry run: nothing was changed.")
        .run();
    assert_eq!(files_under(sandbox.root()), before, "a dry run wrote files");
    // Applying as that user says what to do, and changes nothing.
    Tool::new()
        .args(["init", "--answers", answers.to_str().unwrap()])
        .unprivileged()
        .status(2)
        .any_stdout()
        .stderr_has("changing the system needs root")
        .stderr_has("run it with sudo, or add --dry-run to only see the plan")
        .run();
    assert_eq!(files_under(sandbox.root()), before, "a refused run wrote files");
    // As root, the same port is a blocker the dry run lists, and apply refuses.
    Tool::new()
        .args(["init", "--dry-run", "--answers", answers.to_str().unwrap()])
        .stdout_has("Applying would be refused now; nothing would be changed:")
        .stdout_has(&format!("port {port} is already in use by integration"))
        .run();
    // --strict: the same plan and blockers, then exit 2.
    Tool::new()
        .args(["init", "--dry-run", "--strict", "--answers", answers.to_str().unwrap()])
        .status(2)
        .stdout_has("Applying would be refused now; nothing would be changed:")
        .stdout_has("Dry run: nothing was changed.")
        .stderr("error: --strict: applying would be refused now, for the reasons listed above\n")
        .run();
    drop(held);
    // With nothing in the way, --strict passes.
    Tool::new()
        .args(["init", "--dry-run", "--strict", "--answers", answers.to_str().unwrap()])
        .stdout_has("Dry run: nothing was changed.")
        .run();
    assert_eq!(files_under(sandbox.root()), before, "a dry run wrote files");
    Tool::new().args(["init", "--strict", "--answers", answers.to_str().unwrap()]).status(2).any_stderr().run();
}

/// A folder other users may write to could let them swap what ollama-secure
/// writes below it: the plan says so.
#[test]
fn a_parent_writable_by_others_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let answers = example_in_sandbox(&sandbox, "nginx");
    let var = sandbox.mkdir("var");
    fs::set_permissions(&var, fs::Permissions::from_mode(0o777)).unwrap();
    Tool::new()
        .args(["init", "--answers", &answers, "--dry-run"])
        .env("BOB_PASSWORD", "a long password for bob ok")
        .stdout_has(&format!("warning: {} is writable by other users (mode 0777)", var.display()))
        .any_stderr()
        .run();
    fs::set_permissions(&var, fs::Permissions::from_mode(0o755)).unwrap();
    let ran = Tool::new()
        .args(["init", "--answers", &answers, "--dry-run"])
        .env("BOB_PASSWORD", "a long password for bob ok")
        .any_output()
        .run();
    assert!(!ran.stdout.contains("writable by other users"), "{}", ran.stdout);
}

/// `--save-answers` keeps the previous file as a backup; a link another
/// user planted at the backup's name is never written through.
#[test]
fn saving_answers_never_writes_through_a_planted_link() {
    let sandbox = Sandbox::new();
    let answers = example_in_sandbox(&sandbox, "nginx");
    let saved = sandbox.write("saved.yaml", "# the previous answers\n");
    let victim = sandbox.write("victim", "not yours\n");
    let now = std::time::SystemTime::now();
    for second in 0..5 {
        let stamp = ollama_secure::facts::stamp(now + std::time::Duration::from_secs(second));
        std::os::unix::fs::symlink(&victim, sandbox.path(&format!("saved.yaml.bak-{stamp}"))).unwrap();
    }
    let ran = Tool::new()
        .args(["init", "--answers", &answers, "--dry-run", "--save-answers", saved.to_str().unwrap()])
        .env("BOB_PASSWORD", "a long password for bob ok")
        .stdout_has("The previous")
        .any_stderr()
        .run();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "not yours\n", "the planted link was followed");
    let kept =
        ran.stdout.lines().find_map(|l| l.split(" is kept as ").nth(1)).unwrap().trim_end_matches('.').to_string();
    assert_eq!(fs::read_to_string(&kept).unwrap(), "# the previous answers\n");
    assert!(fs::symlink_metadata(&kept).unwrap().file_type().is_file());
}
