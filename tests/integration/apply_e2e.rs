//! `init` for real: the binary applies answers whose paths point into a
//! sandbox, starts the real nginx or Caddy on a loopback port in front of the
//! stand-in Ollama, and real HTTP requests prove the result.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::support::deployment::{ALICE, ALICE_ONLY, Deployment};
use crate::support::standin::{GATED_PROMPT, TOKENS};

fn mtimes(paths: &[&Path]) -> Vec<(i64, i64)> {
    paths.iter().map(|p| fs::symlink_metadata(p).map(|m| (m.mtime(), m.mtime_nsec())).unwrap_or((0, 0))).collect()
}

/// What a client must see through a correctly configured proxy.
fn proves_protected_ollama(d: &Deployment) {
    // Without credentials, and with wrong ones: 401 with a Basic challenge.
    let resp = d.client().get(d.url("/api/tags")).send().unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers().get("www-authenticate").expect("a WWW-Authenticate header").to_str().unwrap();
    assert!(challenge.starts_with("Basic"), "{challenge}");
    assert_eq!(d.status("/api/tags", Some(("alice", "wrong password"))), 401);
    assert_eq!(d.status("/api/tags", Some(("mallory", ALICE))), 401);

    // With them: Ollama's answers. The Host sent is the public name, which
    // Ollama would refuse with 403 if the proxy passed it on.
    let resp = d.client().get(d.url("/api/tags")).basic_auth("alice", Some(ALICE)).send().unwrap();
    assert_eq!(resp.status(), 200);
    let tags: serde_json::Value = resp.json().unwrap();
    assert_eq!(tags["models"][0]["name"], "tinyllama:latest");
    let seen = d.ollama.seen();
    let last = seen.last().unwrap();
    assert_eq!(last.path, "/api/tags");
    assert_eq!(last.authorization, None, "the password was passed on to Ollama");
    assert_eq!(last.host.as_deref(), Some(d.ollama.upstream().as_str()), "Ollama should see its own address as Host");

    // Tokens stream: the first token arrives while the stand-in still holds
    // the rest back, which a buffering proxy could not deliver.
    let mut resp = d
        .client()
        .post(d.url("/api/generate"))
        .basic_auth("alice", Some(ALICE))
        .header("Accept-Encoding", "gzip")
        .json(&serde_json::json!({"model": "tinyllama", "prompt": GATED_PROMPT}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("content-encoding").is_none(), "the stream was compressed, which delays tokens");
    // Read until the first line is complete; the stand-in sends nothing more
    // until released, so a buffering proxy would block here (and time out).
    let text = crate::support::read_first_line(&mut resp);
    assert_eq!(text.lines().count(), 1, "only the first token can have arrived: {text}");
    let first: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(first["response"], TOKENS[0]);
    d.ollama.release_stream();
    let mut rest = String::new();
    resp.read_to_string(&mut rest).unwrap();
    assert_eq!(rest.lines().count(), TOKENS.len(), "every other token, each on its own line: {rest}");

    // A 5 MB body reaches Ollama (its 404 for a model it does not have
    // proves it read the body; a proxy limit would answer 413 itself).
    let padding = "o".repeat(5 * 1024 * 1024);
    let body = format!("{{\"model\":\"none\",\"system\":\"{padding}\"}}");
    let length = body.len();
    let resp = d.client().post(d.url("/api/show")).basic_auth("alice", Some(ALICE)).body(body).send().unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.text().unwrap().contains("not found"));
    assert!(d.ollama.seen().iter().any(|s| s.body_len == length), "the whole body reached Ollama");
    // alice has the user role (the default): uploading a model is not hers.
    let resp = d
        .client()
        .post(d.url(&format!("/api/blobs/sha256:{}", "0".repeat(64))))
        .basic_auth("alice", Some(ALICE))
        .body(vec![b'o'; 1024])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().unwrap().contains("needs a credential with the admin role"));
}

fn applies_and_protects(proxy: &'static str) {
    let d = Deployment::prepare(proxy, ALICE_ONLY);
    let ran = d
        .init()
        .stdout_has("ok configuration is valid")
        .stdout_has("ok started")
        // init checks its result.
        .stdout_has("PASS  without credentials: 401")
        .stdout_has("All 9 checks passed.")
        .run();
    assert!(!ran.all().contains(ALICE), "the password was printed");
    proves_protected_ollama(&d);

    // Password-bearing files: root, the proxy's group, not world-readable.
    let meta = fs::metadata(d.users_file()).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o640);
    assert_eq!(meta.uid(), 0);
    let group = if proxy == "nginx" { "www-data" } else { "caddy" };
    assert_eq!(meta.gid(), nix::unistd::Group::from_name(group).unwrap().unwrap().gid.as_raw());

    // The proxy init started lives on without the variable it read the
    // password from (and without the password anywhere in its environment).
    // nginx writes its process title over the memory /proc shows as its
    // environment, so only Caddy's can be read there; both are started the
    // same way.
    if proxy == "caddy" {
        let pid = d.guard.pid().expect("init started the proxy");
        let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
        let environ = String::from_utf8_lossy(&environ);
        assert!(environ.contains("XDG_DATA_HOME="), "not the proxy's environment: {environ}");
        assert!(
            !environ.contains("ALICE_PASSWORD") && !environ.contains(ALICE),
            "the password is in Caddy's environment"
        );
    }
}

#[test]
fn nginx_applies_and_protects_ollama() {
    applies_and_protects("nginx");
}

#[test]
fn caddy_applies_and_protects_ollama() {
    applies_and_protects("caddy");
}

fn second_run_changes_nothing(proxy: &'static str) {
    let d = Deployment::deploy(proxy, ALICE_ONLY);
    let files: Vec<std::path::PathBuf> = if proxy == "nginx" {
        ["etc/nginx/ollama.htpasswd", "etc/nginx/sites-available/ollama", "etc/nginx/sites-enabled/ollama"]
            .map(|p| d.sandbox.path(p))
            .to_vec()
    } else {
        ["etc/caddy/ollama.caddy", "etc/caddy/Caddyfile"].map(|p| d.sandbox.path(p)).to_vec()
    };
    let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let backups = || {
        fs::read_dir(files[0].parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".bak-"))
            .count()
    };
    let (before, backups_before) = (mtimes(&paths), backups());
    let pid = d.guard.pid();
    d.init().stdout_has("Nothing to change").run();
    assert_eq!(mtimes(&paths), before, "a second run touched files");
    assert_eq!(d.guard.pid(), pid, "the proxy was restarted");
    assert_eq!(backups(), backups_before, "a run without changes made backups");
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
}

#[test]
fn nginx_second_run_changes_nothing() {
    second_run_changes_nothing("nginx");
}

#[test]
fn caddy_second_run_changes_nothing() {
    second_run_changes_nothing("caddy");
}

fn changed_answers_update_only_what_changed(proxy: &'static str) {
    let d = Deployment::deploy(proxy, ALICE_ONLY);
    let users_file = d.users_file();
    let site = (proxy == "nginx").then(|| d.sandbox.path("etc/nginx/sites-available/ollama"));
    let site_before = site.as_deref().map(|s| fs::read_to_string(s).unwrap());
    let old_users = fs::read(&users_file).unwrap();

    d.write_answers(&format!("{ALICE_ONLY}  - {{username: bob, generate: true}}\n"));
    let ran = d.init().stdout_has("ok reloaded").run();
    let bob = ran
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("bob (user role): "))
        .expect("bob's generated password is printed")
        .to_string();
    assert_eq!(bob.len(), 24);
    // The end of the run: lines to paste for each user, the new one too.
    for name in ["alice", "bob"] {
        let curl = format!("    curl -u {name} {}/api/tags", d.url("").trim_end_matches('/'));
        assert!(ran.stdout.lines().any(|l| l == curl), "{curl:?} missing:\n{}", ran.stdout);
        assert!(ran.stdout.contains(&format!("username {name}, its password")), "{}", ran.stdout);
    }

    // The users file was replaced, and its previous version kept next to it.
    let backup = fs::read_dir(users_file.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{}.bak-", users_file.file_name().unwrap().to_string_lossy()))
        })
        .expect("a backup of the users file");
    assert_eq!(fs::read(&backup).unwrap(), old_users);
    assert_eq!(fs::metadata(&backup).unwrap().mode() & 0o777, 0o640, "the backup keeps the private mode");
    if let (Some(site), Some(before)) = (site.as_deref(), site_before) {
        // A new user changes only the site's cache key (its users fingerprint).
        let after = fs::read_to_string(site).unwrap();
        let changed: Vec<(&str, &str)> = before.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert!(changed[0].0.trim_start().starts_with("proxy_cache_key \""), "{changed:?}");
    }
    // Both users work after the reload; nobody else does.
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    assert_eq!(d.status("/api/version", Some(("bob", &bob))), 200);
    assert_eq!(d.status("/api/version", Some(("bob", "not bob's password"))), 401);
}

#[test]
fn nginx_changed_answers_update_only_what_changed() {
    changed_answers_update_only_what_changed("nginx");
}

#[test]
fn caddy_changed_answers_update_only_what_changed() {
    changed_answers_update_only_what_changed("caddy");
}

#[test]
fn failed_validation_restores_the_exact_previous_bytes() {
    let d = Deployment::prepare("nginx", ALICE_ONLY);
    // The machine already has a hand-made htpasswd (which init will extend)
    // and, elsewhere, a broken site that makes `nginx -t` fail.
    let htpasswd =
        d.sandbox.write("etc/nginx/ollama.htpasswd", "# hand-made\nbob:$apr1$hJ3hV9w1$8YHcqcKgxwP/8F0p1Nb2a/\n");
    fs::set_permissions(&htpasswd, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let before = fs::read(&htpasswd).unwrap();
    d.sandbox.write("etc/nginx/sites-enabled/broken", "server { listen 127.0.0.1:1; this_is_not_a_directive on; }\n");

    d.init()
        .status(1)
        .any_stdout()
        // nginx's error is shown.
        .stderr_has("this_is_not_a_directive")
        .stderr_has(&format!(
            "The error is in {}, which is not ollama-secure's",
            d.sandbox.path("etc/nginx/sites-enabled/broken").display()
        ))
        .stderr_has("rolled back")
        .run();
    assert_eq!(fs::read(&htpasswd).unwrap(), before, "the htpasswd is not byte-identical");
    assert_eq!(fs::metadata(&htpasswd).unwrap().mode() & 0o777, 0o600, "the htpasswd mode was not restored");
    assert!(!d.sandbox.path("etc/nginx/sites-available/ollama").exists(), "the new site file was left behind");
    assert!(
        fs::symlink_metadata(d.sandbox.path("etc/nginx/sites-enabled/ollama")).is_err(),
        "the new link was left behind"
    );
    let leftovers: Vec<_> = fs::read_dir(d.sandbox.path("etc/nginx"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".bak-") || n.starts_with(".ollama-secure-"))
        .collect();
    assert!(leftovers.is_empty(), "backups or temp files were left behind: {leftovers:?}");
    assert!(!d.sandbox.path("run/nginx.pid").exists(), "nginx was started despite the failure");
}

#[test]
fn a_port_taken_by_another_program_is_refused_before_any_change() {
    let d = Deployment::prepare("nginx", ALICE_ONLY);
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", d.port)).unwrap();
    d.init().status(2).any_stdout().stderr_has(&format!("port {} is already in use", d.port)).run();
    assert!(!d.sandbox.path("etc/nginx/ollama.htpasswd").exists(), "files were written");
}
