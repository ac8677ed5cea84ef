//! The systemd tier: the tool as an operator runs it on a Debian 12 server
//! whose PID 1 is systemd, in a container (`support::container`) booted from
//! the tree `.ci/systemd-root` builds, with Debian's own units for nginx,
//! Caddy and certbot, and a stand-in `ollama.service`. Default paths, the
//! real /etc of the container, real requests. Each scenario boots its own
//! machine, runs phases inside it (this binary's `inside` test), and
//! reboots it once to prove what starts at boot.
//!
//! Only `.ci/run` enables it (OLLAMA_SECURE_SYSTEMD_TEST=1); it needs root,
//! systemd-nspawn and the tree (OLLAMA_SECURE_SYSTEMD_ROOT, default
//! /var/cache/ollama-secure/bookworm-systemd).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::support::acme::Pebble;
use crate::support::container::{Container, PHASE};
use crate::support::standin::StandIn;
use crate::support::{Sandbox, Tool};

const ALICE: &str = "alice's password inside the container";
const BOB: &str = "bob's password inside the container";
const BOB_NEW: &str = "bob's second password inside the container";
const DOMAIN: &str = "ollama.test";
/// Where a phase leaves what a later phase compares with.
const RECORDS: &str = "/root/ollama-secure-test";

fn root_tree() -> Option<PathBuf> {
    if std::env::var("OLLAMA_SECURE_SYSTEMD_TEST").as_deref() != Ok("1") {
        eprintln!("systemd tier skipped: only .ci/run enables it (OLLAMA_SECURE_SYSTEMD_TEST=1)");
        return None;
    }
    let root = std::env::var("OLLAMA_SECURE_SYSTEMD_ROOT")
        .unwrap_or_else(|_| "/var/cache/ollama-secure/bookworm-systemd".to_string());
    Some(PathBuf::from(root))
}

#[test]
fn systemd_nginx_from_install_to_uninstall() {
    let Some(root) = root_tree() else { return };
    let mut machine = Container::boot(&root, "nginx-server");
    machine.phase("nginx-install");
    machine.reboot();
    machine.phase("nginx-after-reboot");
    machine.phase("nginx-https");
    machine.phase("nginx-bans");
}

#[test]
fn systemd_caddy_from_install_to_uninstall() {
    let Some(root) = root_tree() else { return };
    let mut machine = Container::boot(&root, "caddy-server");
    machine.phase("caddy-install");
    machine.reboot();
    machine.phase("caddy-after-reboot");
    machine.phase("caddy-https");
}

/// The steps inside the machine; outside it (no phase set) there is nothing
/// to do.
#[test]
fn inside() {
    let Ok(phase) = std::env::var(PHASE) else { return };
    match phase.as_str() {
        "ollama" => serve_as_ollama(),
        "nginx-install" => nginx_install(),
        "nginx-after-reboot" => after_reboot("nginx"),
        "nginx-https" => https("nginx"),
        "nginx-bans" => bans(),
        "caddy-install" => caddy_install(),
        "caddy-after-reboot" => after_reboot("caddy"),
        "caddy-https" => https("caddy"),
        other => panic!("no phase {other}"),
    }
}

// ---- the machine, as seen from inside -------------------------------------

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn systemctl(args: &[&str]) -> String {
    let (ok, out) = run("systemctl", args);
    assert!(ok, "systemctl {}: {out}", args.join(" "));
    out
}

/// `is-enabled` and `is-active` of a unit, as words (they exit non-zero
/// for "disabled" and "inactive", which are answers here).
fn unit_state(unit: &str) -> String {
    let enabled = run("systemctl", &["is-enabled", unit]).1;
    let active = run("systemctl", &["is-active", unit]).1;
    format!("{} {}", enabled.trim(), active.trim())
}

fn main_pid(unit: &str) -> i32 {
    systemctl(&["show", "--property", "MainPID", "--value", unit]).trim().parse().unwrap()
}

/// Processes of this name whose parent is PID 1: the masters, not workers.
fn masters(comm: &str) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let Some((name, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") ")) else {
                return false;
            };
            name == comm && rest.split_whitespace().nth(1) == Some("1")
        })
        .collect()
}

fn uid_of(pid: i32) -> u32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Every file, link and folder under the folders an install touches, with
/// mode, owner and a digest of the content.
fn system_state() -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for top in [
        "/etc",
        "/var/lib/ollama-secure",
        "/var/www",
        "/var/lib/caddy",
        "/var/lib/letsencrypt",
        "/run/ollama-secure-auth",
    ] {
        let mut stack = vec![PathBuf::from(top)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                let meta = fs::symlink_metadata(&path).unwrap();
                let owner = format!("{:o} {}:{}", meta.mode() & 0o7777, meta.uid(), meta.gid());
                let value = if meta.file_type().is_symlink() {
                    format!("link -> {}", fs::read_link(&path).unwrap().display())
                } else if meta.is_dir() {
                    stack.push(path.clone());
                    format!("dir {owner}")
                } else {
                    let digest = Sha256::digest(fs::read(&path).unwrap_or_default());
                    format!("file {owner} {digest:x}")
                };
                all.insert(path.display().to_string(), value);
            }
        }
        all.insert(top.to_string(), Path::new(top).exists().to_string());
    }
    for unit in ["nginx", "caddy", "ollama", "certbot.timer", "fail2ban"] {
        all.insert(format!("unit {unit}"), unit_state(unit));
    }
    all
}

/// The files the state says ollama-secure wrote in /etc.
fn files_we_wrote() -> Vec<String> {
    let state = fs::read_to_string("/var/lib/ollama-secure/state.yaml").unwrap();
    let files: Vec<String> = state
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- path: "))
        .filter(|path| path.starts_with("/etc/"))
        .map(str::to_string)
        .collect();
    assert!(!files.is_empty(), "no files in the state:\n{state}");
    files
}

fn record(name: &str, state: &BTreeMap<String, String>) {
    fs::create_dir_all(RECORDS).unwrap();
    fs::write(Path::new(RECORDS).join(name), serde_json::to_string(state).unwrap()).unwrap();
}

fn recorded(name: &str) -> BTreeMap<String, String> {
    serde_json::from_str(&fs::read_to_string(Path::new(RECORDS).join(name)).unwrap()).unwrap()
}

fn assert_state_is(before: &BTreeMap<String, String>, what: &str) {
    let now = system_state();
    let mut differences = Vec::new();
    for key in before.keys().chain(now.keys().filter(|k| !before.contains_key(*k))) {
        if before.get(key) != now.get(key) {
            differences.push(format!("{key}: {:?} -> {:?}", before.get(key), now.get(key)));
        }
    }
    assert!(differences.is_empty(), "{what}:\n{}", differences.join("\n"));
}

fn client(port: u16) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .resolve(DOMAIN, ([127, 0, 0, 1], port).into())
        .build()
        .unwrap()
}

fn status(port: u16, user: Option<(&str, &str)>) -> u16 {
    let request = client(port).get(format!("http://{DOMAIN}:{port}/api/version"));
    let request = match user {
        Some((name, password)) => request.basic_auth(name, Some(password)),
        None => request,
    };
    request.send().map(|r| r.status().as_u16()).unwrap_or_else(|e| panic!("port {port}: {e}"))
}

fn within(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until something accepts connections on this loopback port.
fn listening(port: u16, what: &str) {
    within(Duration::from_secs(20), what, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
}

fn answers(proxy: &str, port: u16, extra: &str) -> String {
    let path = format!("{RECORDS}/{proxy}.yaml");
    fs::create_dir_all(RECORDS).unwrap();
    fs::write(
        &path,
        format!(
            "proxy: {proxy}\ndomain: {DOMAIN}\nlisten_address: 127.0.0.1\nport: {port}\nupstream: 127.0.0.1:11434\n\
             users:\n  - {{username: alice, password_env: ALICE_PASSWORD}}\nbcrypt_cost: 4\n{extra}"
        ),
    )
    .unwrap();
    path
}

fn tool() -> Tool {
    Tool::new().env("ALICE_PASSWORD", ALICE).env("BOB_PASSWORD", BOB).env("BOB_NEW", BOB_NEW)
}

// ---- the stand-in Ollama, as a unit ---------------------------------------

/// `ollama.service` as Ollama's install script writes it, running the
/// stand-in (this binary), which listens where OLLAMA_HOST says, as Ollama
/// does.
fn install_ollama_unit() {
    let exe = std::env::current_exe().unwrap();
    fs::write(
        "/etc/systemd/system/ollama.service",
        format!(
            "[Unit]\nDescription=Ollama Service (the test's stand-in)\nAfter=network-online.target\n\n\
             [Service]\nExecStart={} --exact systemd::inside --nocapture\nEnvironment={PHASE}=ollama\n\
             Restart=always\nRestartSec=1\n\n[Install]\nWantedBy=default.target\n",
            exe.display()
        ),
    )
    .unwrap();
    systemctl(&["daemon-reload"]);
    systemctl(&["enable", "--now", "ollama"]);
    listening(11434, "the stand-in Ollama answers");
}

fn serve_as_ollama() {
    let address = std::env::var("OLLAMA_HOST").unwrap_or_else(|_| "127.0.0.1:11434".to_string());
    let _ollama = StandIn::start_on(&address);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// `check` as alice against the site on `port`, as JSON.
fn check_report(port: u16, exit: i32) -> serde_json::Value {
    let url = format!("http://{DOMAIN}:{port}");
    let resolve = format!("{DOMAIN}:{port}:127.0.0.1");
    let args =
        ["check", "--url", &url, "--username", "alice", "--password-env", "ALICE_PASSWORD", "--resolve", &resolve];
    let ran = tool().args(args).args(["--json"]).status(exit).any_output().run();
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {}", ran.all()))
}

fn exposure_of(report: &serde_json::Value) -> (String, String) {
    let check = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "exposure").unwrap();
    (check["status"].as_str().unwrap().to_string(), check["hint"].as_str().unwrap_or_default().to_string())
}

/// An Ollama listening on every address is caught, and the hint `check`
/// gives (a drop-in, as `systemctl edit ollama` writes it) fixes it.
fn check_exposure_hint_works() {
    let dropin = Path::new("/etc/systemd/system/ollama.service.d/override.conf");
    let set_ollama_host = |value: &str| {
        fs::create_dir_all(dropin.parent().unwrap()).unwrap();
        fs::write(dropin, format!("[Service]\nEnvironment=\"OLLAMA_HOST={value}\"\n")).unwrap();
        systemctl(&["daemon-reload"]);
        systemctl(&["restart", "ollama"]);
        listening(11434, "the stand-in Ollama answers again");
    };
    set_ollama_host("0.0.0.0:11434");
    let (verdict, hint) = exposure_of(&check_report(80, 3));
    assert_eq!(verdict, "fail");
    let advice = "`systemctl edit ollama`, add\n  [Service]\n  Environment=\"OLLAMA_HOST=127.0.0.1:11434\"\nthen `systemctl restart ollama`";
    assert!(hint.contains(advice), "{hint}");
    set_ollama_host("127.0.0.1:11434");
    assert_eq!(exposure_of(&check_report(80, 0)).0, "pass");
    fs::remove_dir_all(dropin.parent().unwrap()).unwrap();
    systemctl(&["daemon-reload"]);
    systemctl(&["restart", "ollama"]);
    listening(11434, "the stand-in Ollama answers again");
}

/// Where the stand-in Ollama listens on port 11434, from the kernel's table.
fn ollama_addresses() -> Vec<String> {
    let (ok, out) = run("ss", &["-Hltn", "sport = :11434"]);
    assert!(ok, "{out}");
    let mut found: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .map(|a| a.rsplit_once(':').unwrap().0.to_string())
        .collect();
    found.sort();
    found
}

fn restart_ollama() {
    systemctl(&["daemon-reload"]);
    systemctl(&["restart", "ollama"]);
    listening(11434, "the stand-in Ollama answers again");
}

/// `harden-ollama` on an Ollama that listens on every address: with
/// OLLAMA_HOST in `systemctl edit`'s override.conf, and in the unit file
/// itself (no drop-in folder yet); the dry run, the drop-in, the restart,
/// a re-run, `--undo` leaving the machine as it was; an environment file
/// refused; and a failed run (a later drop-in that wins) rolled back.
fn harden_ollama_works() {
    let unit_file = Path::new("/etc/systemd/system/ollama.service");
    let folder = Path::new("/etc/systemd/system/ollama.service.d");
    let ours = folder.join("zz-ollama-secure.conf");
    let unit = fs::read_to_string(unit_file).unwrap();
    let everywhere = "Environment=\"OLLAMA_HOST=0.0.0.0:11434\"";
    for in_unit_file in [false, true] {
        if folder.exists() {
            fs::remove_dir_all(folder).unwrap();
        }
        if in_unit_file {
            fs::write(unit_file, unit.replace("[Service]\n", &format!("[Service]\n{everywhere}\n"))).unwrap();
        } else {
            fs::create_dir_all(folder).unwrap();
            fs::write(folder.join("override.conf"), format!("[Service]\n{everywhere}\n")).unwrap();
        }
        restart_ollama();
        assert_eq!(ollama_addresses(), ["0.0.0.0"]);
        let before = system_state();
        let dry_run = tool()
            .args(["harden-ollama", "--dry-run"])
            .stdout_has("ollama.service listens at 0.0.0.0:11434")
            .stdout_has(&format!("write {} (new file; mode 0644, owner root:root)", ours.display()))
            .stdout_has("Environment=\"OLLAMA_HOST=127.0.0.1:11434\"")
            .stdout_has("run `systemctl daemon-reload`")
            .stdout_has("restart Ollama: run `systemctl restart ollama`")
            .stdout_has("until port 11434 listens again, on loopback addresses only")
            .stdout_has("Dry run: nothing was changed.")
            .any_stdout()
            .run();
        assert_eq!(dry_run.stdout.contains("create directory"), in_unit_file, "{}", dry_run.stdout);
        assert_state_is(&before, "after harden-ollama --dry-run");
        let pid = main_pid("ollama");
        tool()
            .args(["harden-ollama"])
            .stdout_has("ok port 11434 listens on loopback only")
            .stdout_has("Done: Ollama listens on loopback only; clients reach it through the proxy.")
            .any_stdout()
            .run();
        assert_eq!(ollama_addresses(), ["127.0.0.1"]);
        assert_ne!(main_pid("ollama"), pid, "Ollama was restarted");
        assert_eq!(exposure_of(&check_report(80, 0)).0, "pass");
        assert_eq!(status(80, Some(("alice", ALICE))), 200, "the proxy still reaches Ollama");
        tool().args(["harden-ollama"]).stdout_has("Nothing to change: ollama.service listens at 127.0.0.1:11434").run();
        tool()
            .args(["harden-ollama", "--undo"])
            .stdout_has("ok Ollama listens at 0.0.0.0:11434")
            .stdout_has("Done: Ollama listens where its unit says")
            .any_stdout()
            .run();
        assert_eq!(ollama_addresses(), ["0.0.0.0"]);
        assert_state_is(&before, "after harden-ollama --undo");
    }
    fs::write(unit_file, &unit).unwrap();

    // An environment file's OLLAMA_HOST beats every drop-in: refused, named.
    fs::write("/etc/default/ollama", "OLLAMA_HOST=0.0.0.0:11434\n").unwrap();
    fs::create_dir_all(folder).unwrap();
    fs::write(folder.join("override.conf"), "[Service]\nEnvironmentFile=/etc/default/ollama\n").unwrap();
    restart_ollama();
    let before = system_state();
    tool()
        .args(["harden-ollama"])
        .status(2)
        .stdout_has("keep Ollama on loopback")
        .stderr_has("OLLAMA_HOST=0.0.0.0:11434 is set in /etc/default/ollama")
        .run();
    assert_state_is(&before, "after a refused harden-ollama");
    fs::remove_file("/etc/default/ollama").unwrap();

    // A drop-in sorting after ours sets it again: the restart proves the
    // drop-in did not help, and everything is undone.
    fs::write(folder.join("zzz-later.conf"), format!("[Service]\n{everywhere}\n")).unwrap();
    fs::write(folder.join("override.conf"), "[Service]\n").unwrap();
    restart_ollama();
    let before = system_state();
    tool()
        .args(["harden-ollama"])
        .status(1)
        .stdout_has("Rolling back:")
        .any_stdout()
        .stderr_has("port 11434 still listens on 0.0.0.0 after the restart")
        .stderr_has("Every change was rolled back")
        .run();
    listening(11434, "the stand-in Ollama answers after the rollback");
    assert_eq!(ollama_addresses(), ["0.0.0.0"]);
    assert_state_is(&before, "after a failed harden-ollama");

    fs::remove_dir_all(folder).unwrap();
    restart_ollama();
    assert_eq!(ollama_addresses(), ["127.0.0.1"]);
}

// ---- nginx ----------------------------------------------------------------

/// nginx installed, not running, not enabled: `init` enables and starts it
/// through its unit; users, a re-run and a failed run, all through systemd.
fn nginx_install() {
    install_ollama_unit();
    assert_eq!(unit_state("nginx"), "disabled inactive");
    let before = system_state();
    record("before-init", &before);
    let answers = answers("nginx", 80, "");

    tool()
        .args(["init", "--answers", &answers])
        .stdout_has("systemd is running: nginx is managed with systemctl")
        .stdout_has("run `systemctl start nginx`")
        .stdout_has("enable nginx at boot: run `systemctl enable nginx`")
        .any_stdout()
        .run();
    assert_eq!(unit_state("nginx"), "enabled active");
    let master = main_pid("nginx");
    assert_eq!(masters("nginx"), [master], "one nginx, the unit's");
    assert_eq!(status(80, None), 401);
    assert_eq!(status(80, Some(("alice", ALICE))), 200);

    tool().args(["init", "--answers", &answers]).stdout_has("Nothing to change").run();

    check_exposure_hint_works();
    harden_ollama_works();
    users_through_the_unit("nginx", &answers, 80, master);
    a_failed_run_is_rolled_back("nginx", &answers, 80);
    assert_eq!(main_pid("nginx"), master, "nginx was restarted, not reloaded");
    connect_as_a_user_service(80);
}

/// `connect --install` for a user whose systemd manager runs (root's own,
/// `user@0.service`, as a login starts it): the unit is started and proven
/// through its port, with a password file whose path holds what systemd
/// would expand or split (the process gets it word for word); systemd
/// starts it again when it is killed, a re-run changes nothing, a stopped
/// unit is started again, a `connect` run by hand on the port is refused,
/// and `--uninstall` stops it and leaves the home folder as it was.
fn connect_as_a_user_service(port: u16) {
    let (started, why) = run("systemctl", &["start", "user@0.service"]);
    assert!(started, "{why}{}", run("journalctl", &["--no-pager", "-n", "60"]).1);
    let user = |args: &[&str]| {
        let mut all = vec!["--user"];
        all.extend(args);
        let out = Command::new("systemctl").args(&all).env("XDG_RUNTIME_DIR", "/run/user/0").output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let odd = format!("{RECORDS}/a b%h$HOME\"\\");
    fs::create_dir_all(&odd).unwrap();
    let password = format!("{odd}/alice-password");
    fs::write(&password, format!("{ALICE}\n")).unwrap();
    fs::set_permissions(&password, fs::Permissions::from_mode(0o600)).unwrap();
    let home_before = crate::support::tree(Path::new("/root"));
    let listen = "127.0.0.1:11500";
    let connect = || {
        Tool::new().env("HOME", "/root").env("XDG_RUNTIME_DIR", "/run/user/0").args([
            "connect",
            "--url",
            &format!("http://{DOMAIN}:{port}"),
            "--resolve",
            &format!("{DOMAIN}:{port}:127.0.0.1"),
            "--listen",
            listen,
            "--install",
            "--username",
            "alice",
            "--password-file",
            &password,
        ])
    };
    connect()
        .stdout_has("Installed /root/.config/systemd/user/ollama-secure-connect.service")
        .stdout_has("It runs now. Point clients at it, e.g.: OLLAMA_HOST=127.0.0.1:11500 ollama list")
        .run();
    assert_eq!(user(&["is-enabled", "ollama-secure-connect.service"]), "enabled");
    assert_eq!(user(&["is-active", "ollama-secure-connect.service"]), "active");
    let through = || {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
            .get(format!("http://{listen}/api/version"))
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(through(), 200, "no credentials sent: the service added alice's");
    let pid: i32 =
        user(&["show", "--property", "MainPID", "--value", "ollama-secure-connect.service"]).parse().unwrap();
    assert!(pid > 0);
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let words: Vec<String> =
        cmdline.split(|b| *b == 0).filter(|w| !w.is_empty()).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    let at = words.iter().position(|w| w == "--password-file").expect("no --password-file");
    assert_eq!(words[at + 1], password, "the path reached the process otherwise: {words:?}");
    assert_eq!(words[1..3], ["connect".to_string(), "--url".to_string()]);
    // Killed, it is started again (Restart=on-failure).
    run("kill", &["-KILL", &pid.to_string()]);
    within(Duration::from_secs(20), "the killed service started again", || {
        let now: i32 =
            user(&["show", "--property", "MainPID", "--value", "ollama-secure-connect.service"]).parse().unwrap_or(0);
        now > 0 && now != pid && through() == 200
    });
    connect()
        .stdout("Nothing to change: /root/.config/systemd/user/ollama-secure-connect.service is installed as asked.\n")
        .run();
    // Stopped by hand: installing again starts it, and proves it.
    user(&["stop", "ollama-secure-connect.service"]);
    assert_eq!(through(), 0);
    connect().stdout_has("It runs now.").run();
    assert_eq!(through(), 200);
    // A `connect` run by hand on another port: installing the service there is refused.
    let by_hand_port = "127.0.0.1:11501";
    let mut by_hand = Command::new(env!("CARGO_BIN_EXE_ollama-secure"))
        .args(["connect", "--url", &format!("http://{DOMAIN}:{port}"), "--resolve"])
        .arg(format!("{DOMAIN}:{port}:127.0.0.1"))
        .args(["--listen", by_hand_port, "--username", "alice", "--password-file", &password])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    listening(11501, "the connect run by hand");
    let refused = Command::new(env!("CARGO_BIN_EXE_ollama-secure"))
        .env("HOME", "/root")
        .env("XDG_RUNTIME_DIR", "/run/user/0")
        .args(["connect", "--url", &format!("http://{DOMAIN}:{port}"), "--resolve"])
        .arg(format!("{DOMAIN}:{port}:127.0.0.1"))
        .args(["--listen", by_hand_port, "--install", "--username", "alice", "--password-file", &password])
        .output()
        .unwrap();
    by_hand.kill().unwrap();
    by_hand.wait().unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(said.contains(&format!("an ollama-secure not run by the service (PID {}", by_hand.id())), "{said}");
    assert_eq!(through(), 200, "the installed service is as it was");

    Tool::new()
        .env("HOME", "/root")
        .env("XDG_RUNTIME_DIR", "/run/user/0")
        .args(["connect", "--uninstall"])
        .stdout("Removed the connect service (/root/.config/systemd/user/ollama-secure-connect.service).\n")
        .run();
    assert_ne!(user(&["is-active", "ollama-secure-connect.service"]), "active");
    assert_eq!(through(), 0, "nothing listens on {listen} any more");
    assert_eq!(
        crate::support::tree(Path::new("/root")),
        home_before,
        "connect --uninstall left /root otherwise than before"
    );
    fs::remove_dir_all(&odd).unwrap();
    systemctl(&["stop", "user@0.service"]);
}

// ---- Caddy ----------------------------------------------------------------

/// Caddy as Debian's package leaves it (enabled, running, serving its
/// default site on port 80): `init` adds our site through `systemctl
/// reload`, never a second Caddy, and Caddy, which the unit runs as user
/// `caddy`, reads every file we write.
fn caddy_install() {
    install_ollama_unit();
    systemctl(&["enable", "--now", "caddy"]);
    listening(80, "Debian's Caddy serves its default site");
    let before = system_state();
    record("before-init", &before);
    let caddy = main_pid("caddy");
    let answers = answers("caddy", 8080, "");

    tool()
        .args(["init", "--answers", &answers])
        .stdout_has("systemd is running: caddy is managed with systemctl")
        .stdout_has("systemctl reload caddy")
        .any_stdout()
        .run();
    assert_eq!(main_pid("caddy"), caddy, "Caddy was restarted, not reloaded");
    assert_eq!(masters("caddy"), [caddy], "one Caddy, the unit's");
    let caddy_uid = run("id", &["-u", "caddy"]).1.trim().parse::<u32>().unwrap();
    assert_eq!(uid_of(caddy), caddy_uid, "Debian's unit runs Caddy as user caddy");
    for file in files_we_wrote() {
        let (readable, why) = run("setpriv", &["--reuid=caddy", "--regid=caddy", "--init-groups", "cat", &file]);
        assert!(readable, "user caddy cannot read {file}: {why}");
    }
    assert_eq!(status(8080, None), 401);
    assert_eq!(status(8080, Some(("alice", ALICE))), 200);
    // A restart reads every file again, as user caddy, from nothing.
    systemctl(&["restart", "caddy"]);
    listening(8080, "Caddy serves our site after a restart");
    assert_eq!(status(8080, Some(("alice", ALICE))), 200);
    let caddy = main_pid("caddy");

    tool().args(["init", "--answers", &answers]).stdout_has("Nothing to change").run();
    users_through_the_unit("caddy", &answers, 8080, caddy);
    a_failed_run_is_rolled_back("caddy", &answers, 8080);

    // Running, but no longer enabled: init enables it, so it starts at boot,
    // and uninstall disables it again, as the operator had left it.
    systemctl(&["disable", "caddy"]);
    let mut before = recorded("before-init");
    before.remove("/etc/systemd/system/multi-user.target.wants/caddy.service");
    before.insert("unit caddy".into(), "disabled active".into());
    record("before-init", &before);
    tool().args(["init", "--answers", &answers]).stdout_has("systemctl enable caddy").any_stdout().run();
    assert_eq!(unit_state("caddy"), "enabled active");
    assert_eq!(main_pid("caddy"), caddy, "Caddy was restarted, not reloaded");
}

// ---- both -----------------------------------------------------------------

fn users_through_the_unit(proxy: &str, answers: &str, port: u16, pid: i32) {
    let users = |args: &[&str]| tool().args(["users"]).args(args).args(["--answers", answers]);
    users(&["add", "bob", "--password-env", "BOB_PASSWORD"])
        .stdout_has(&format!("systemctl reload {proxy}"))
        .any_stdout()
        .run();
    assert_eq!(status(port, Some(("bob", BOB))), 200);
    users(&["rotate", "bob", "--password-env", "BOB_NEW"]).any_stdout().run();
    assert_eq!(status(port, Some(("bob", BOB))), 401);
    assert_eq!(status(port, Some(("bob", BOB_NEW))), 200);
    users(&["remove", "bob"]).any_stdout().run();
    assert_eq!(status(port, Some(("bob", BOB_NEW))), 401);
    assert_eq!(status(port, Some(("alice", ALICE))), 200);
    assert_eq!(main_pid(proxy), pid, "{proxy} was restarted, not reloaded");
    assert_eq!(masters(proxy), [pid], "one {proxy}, the unit's");
}

/// A run that fails at validation (someone else's broken file) changes
/// nothing: the running proxy keeps serving what it served.
fn a_failed_run_is_rolled_back(proxy: &str, answers: &str, port: u16) {
    let broken = if proxy == "nginx" { "/etc/nginx/conf.d/broken.conf" } else { "/etc/caddy/broken.caddy" };
    let (content, include) = if proxy == "nginx" {
        ("this_is_not_a_directive on;\n", None)
    } else {
        (":9 {\n\tthis_is_not_a_directive\n}\n", Some("import /etc/caddy/broken.caddy\n"))
    };
    fs::write(broken, content).unwrap();
    let caddyfile = fs::read("/etc/caddy/Caddyfile").unwrap();
    if let Some(line) = include {
        fs::write("/etc/caddy/Caddyfile", [caddyfile.clone(), line.as_bytes().to_vec()].concat()).unwrap();
    }
    let before = system_state();
    let bigger = fs::read_to_string(answers).unwrap().replace("bcrypt_cost: 4", "bcrypt_cost: 5");
    fs::write(answers, bigger).unwrap();
    tool().args(["init", "--answers", answers]).status(1).any_stdout().stderr_has("rolled back").run();
    assert_state_is(&before, "a failed run left changes");
    assert_eq!(status(port, Some(("alice", ALICE))), 200);
    fs::remove_file(broken).unwrap();
    fs::write("/etc/caddy/Caddyfile", caddyfile).unwrap();
    let back = fs::read_to_string(answers).unwrap().replace("bcrypt_cost: 5", "bcrypt_cost: 4");
    fs::write(answers, back).unwrap();
}

/// After a reboot the proxy and the site are back; then `uninstall`
/// leaves the machine as before `init`, units included.
fn after_reboot(proxy: &str) {
    let port = if proxy == "nginx" { 80 } else { 8080 };
    assert_eq!(unit_state(proxy), "enabled active", "{proxy} did not start at boot");
    listening(port, "the site answers after the reboot");
    assert_eq!(status(port, None), 401);
    assert_eq!(status(port, Some(("alice", ALICE))), 200);
    let answers = format!("{RECORDS}/{proxy}.yaml");
    tool().args(["init", "--answers", &answers]).stdout_has("Nothing to change").run();

    tool().args(["uninstall", "--answers", &answers]).any_stdout().run();
    assert_state_is(&recorded("before-init"), &format!("uninstall did not leave the machine as before init ({proxy})"));
    let expected = if proxy == "nginx" { Vec::new() } else { vec![main_pid("caddy")] };
    assert_eq!(masters(proxy), expected, "after uninstall, {proxy} runs as before init");
}

/// HTTPS against pebble, in the machine: the certificate, the timer that
/// renews it, a renewal as the timer's service runs it (which reloads the
/// proxy), and an uninstall that leaves the machine as before.
fn https(proxy: &str) {
    // Outside /tmp: certbot.service and caddy.service have a private /tmp,
    // so the CA of the private ACME server must be somewhere they see it.
    let sandbox = Sandbox::in_dir(Path::new("/var/lib"));
    let pebble = Pebble::start(&sandbox, 80, 443, [127, 0, 0, 1].into());
    let before = system_state();
    let extra = format!(
        "https:\n  enabled: true\n  email: ops@example.com\n  acme_directory: {}\n  acme_ca_root: {}\n",
        pebble.directory,
        pebble.listener_ca.display()
    );
    let answers = answers(proxy, 443, &extra);
    let issuing_root = pebble.issuing_root(&sandbox);
    tool().args(["init", "--answers", &answers, "--cacert", issuing_root.to_str().unwrap()]).any_stdout().run();
    let root = reqwest::Certificate::from_pem(&fs::read(&issuing_root).unwrap()).unwrap();
    let tls = reqwest::blocking::Client::builder()
        .add_root_certificate(root)
        .timeout(Duration::from_secs(10))
        .resolve(DOMAIN, ([127, 0, 0, 1], 443).into())
        .build()
        .unwrap();
    let url = format!("https://{DOMAIN}/api/version");
    assert_eq!(tls.get(&url).send().unwrap().status(), 401);
    assert_eq!(tls.get(&url).basic_auth("alice", Some(ALICE)).send().unwrap().status(), 200);

    if proxy == "nginx" {
        let timers = systemctl(&["list-timers", "--all", "--no-pager", "certbot.timer"]);
        assert!(timers.contains("certbot.timer") && timers.contains("certbot.service"), "{timers}");
        let serial =
            || run("sh", &["-c", "openssl x509 -noout -serial < /etc/letsencrypt/live/ollama.test/cert.pem"]).1;
        let served = || {
            run("sh", &["-c", "openssl s_client -connect 127.0.0.1:443 -servername ollama.test </dev/null 2>/dev/null | openssl x509 -noout -serial"]).1
        };
        let first = serial();
        assert_eq!(served(), first);
        // The certificate is new: make it due, as time would.
        let renewal = "/etc/letsencrypt/renewal/ollama.test.conf";
        let conf = fs::read_to_string(renewal).unwrap();
        fs::write(renewal, format!("renew_before_expiry = 3650 days\n{conf}")).unwrap();
        // What the timer starts, with the unit's environment and sandbox.
        systemctl(&["start", "certbot.service"]);
        let second = serial();
        assert_ne!(
            second,
            first,
            "certbot.service did not renew: {}",
            run("journalctl", &["-u", "certbot", "--no-pager"]).1
        );
        within(Duration::from_secs(10), "nginx serves the renewed certificate (deploy hook)", || served() == second);
        fs::write(renewal, conf).unwrap();
    }

    tool().args(["uninstall", "--answers", &answers]).any_stdout().run();
    assert_state_is(&before, &format!("uninstall did not leave the machine as before the HTTPS init ({proxy})"));
}

// ---- fail2ban --------------------------------------------------------------

/// `ban:` with Debian's fail2ban, installed and stopped: on Debian 12 its
/// stock sshd jail looks for /var/log/auth.log, which a server without
/// rsyslog lacks, so `init` refuses and names the fix; with the fix, `init`
/// starts fail2ban through its unit, an address that keeps failing is
/// banned (iptables, in the machine's own network namespace), and
/// `uninstall` stops fail2ban again and leaves the machine as before.
fn bans() {
    let answers = answers("nginx", 80, "ban: {after: 3, within: 10m, for: 1m}\n");
    let before = system_state();
    tool()
        .args(["init", "--answers", &answers])
        .status(2)
        .any_stdout()
        .stderr_has("set `backend = systemd` under [sshd] in /etc/fail2ban/jail.d/defaults-debian.conf")
        .run();
    assert_state_is(&before, "a refused init changed the machine");

    // The fix, as the operator makes it; and clients that come from
    // elsewhere: only 127.0.0.1, where init checks from, is never banned
    // (Debian's `ignoreself` would spare every loopback address).
    fs::write("/etc/fail2ban/jail.d/defaults-debian.conf", "[sshd]\nenabled = true\nbackend = systemd\n").unwrap();
    fs::write("/etc/fail2ban/jail.local", "[DEFAULT]\nignoreself = false\nignoreip = 127.0.0.1\n").unwrap();
    let before = system_state();
    tool()
        .args(["init", "--answers", &answers])
        .stdout_has("start fail2ban: run `systemctl reload-or-restart fail2ban`")
        .stdout_has("fail2ban runs the ollama-secure jail")
        .any_stdout()
        .run();
    assert_eq!(unit_state("fail2ban"), "disabled active", "fail2ban runs through its unit");
    let fail2ban = main_pid("fail2ban");
    assert_eq!(masters("fail2ban-server"), [fail2ban], "one fail2ban, the unit's");

    let from = |last: u8| {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(0)
            .local_address(std::net::IpAddr::from([127, 0, 0, last]))
            .resolve(DOMAIN, ([127, 0, 0, 1], 80).into())
            .build()
            .unwrap()
    };
    let (attacker, elsewhere) = (from(2), from(3));
    let answer = |client: &reqwest::blocking::Client, password: &str| match client
        .get(format!("http://{DOMAIN}/api/version"))
        .basic_auth("alice", Some(password))
        .send()
    {
        Ok(reply) => Some(reply.status().as_u16()),
        Err(e) if e.is_connect() => None,
        Err(e) => panic!("neither an answer nor a refused connection: {e}"),
    };
    for n in 0..3 {
        assert_eq!(answer(&attacker, &format!("wrong guess {n}")), Some(401));
    }
    within(Duration::from_secs(30), "fail2ban bans the address that kept failing", || {
        answer(&attacker, ALICE).is_none()
    });
    assert_eq!(answer(&elsewhere, ALICE), Some(200), "another address is not banned");

    tool().args(["uninstall", "--answers", &answers]).stdout_has("systemctl stop fail2ban").any_stdout().run();
    // nginx, which this init started, is stopped again; the ban's rules are gone.
    let rules = run("iptables", &["-S"]).1;
    assert!(!rules.contains("f2b-"), "the ban outlived uninstall: {rules}");
    assert_state_is(&before, "uninstall did not leave the machine as before the init with bans");
}
