//! `connect`: a local loopback port in front of a protected server, for
//! clients that send no credentials. Real nginx and Caddy with the stand-in
//! behind them; requests through `connect` carry none. Tokens arrive one by
//! one, 32 streams run at once, a client that goes away ends its upstream
//! generation, a 50 MiB upload passes without being held in memory, and
//! the official Python client works unchanged. Start-up refuses wrong
//! credentials, a non-loopback `--listen` and a server that is not there,
//! in words; a secret from the environment is not left in the process's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::clients::installed;
use crate::keys_e2e::{CI_KEY, CREDENTIALS};
use crate::support::deployment::{ALICE, DOMAIN, Deployment};
use crate::support::standin::{GATED_PROMPT, MODEL, TOKENS};
use crate::support::{BIN, ROOT, Tool, free_port};

/// A running `connect`, stopped by its PID when dropped.
struct Connect {
    child: Child,
    /// `127.0.0.1:PORT`, as OLLAMA_HOST takes it.
    address: String,
    /// What it printed on starting.
    said: String,
}

impl Connect {
    fn start(d: &Deployment, credentials: &[&str], env: &[(&str, &str)]) -> Connect {
        Connect::start_at(&d.url(""), &format!("{}:{}:{}", d.domain, d.port, d.address), credentials, env)
    }

    /// `connect` to `url`, its host connected as `resolve` says.
    fn start_at(url: &str, resolve: &str, credentials: &[&str], env: &[(&str, &str)]) -> Connect {
        let address = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(BIN);
        command
            .args(["connect", "--url", url, "--listen", &address, "--resolve", resolve])
            .args(credentials)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .current_dir(ROOT);
        Connect::spawn(command, address)
    }

    /// Runs `command` (a `connect` listening on `address`) until it says it
    /// listens; stopped by its PID when dropped.
    fn spawn(mut command: Command, address: String) -> Connect {
        let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // It prints once it listens; a failed start ends the output instead.
        let mut said = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut said).unwrap();
        if !said.starts_with("Forwarding") {
            let _ = child.kill();
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            panic!("connect did not start: {said}{stderr}");
        }
        Connect { child, address, said }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn proc(&self, what: &str) -> Vec<u8> {
        std::fs::read(format!("/proc/{}/{what}", self.child.id())).unwrap()
    }

    /// The most memory it has held, in KiB.
    fn peak_kib(&self) -> u64 {
        let status = String::from_utf8(self.proc("status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Connect {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn plain_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// A gated generation through `connect`, read up to its first token (the
/// stand-in holds the rest until released).
fn first_token(connect: &Connect) -> (reqwest::blocking::Response, String) {
    let body = serde_json::json!({"model": MODEL, "prompt": GATED_PROMPT});
    let mut answer = plain_client().post(connect.url("/api/generate")).json(&body).send().unwrap();
    assert_eq!(answer.status(), 200);
    let first = crate::support::read_first_line(&mut answer);
    (answer, first)
}

/// One request on an open connection, read to the end of its body.
fn exchange(stream: &mut TcpStream, path: &str) -> (String, String) {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the connection closed: {head}");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no Content-Length: {head}"));
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (head, String::from_utf8(body).unwrap())
}

fn forwards_without_credentials(proxy: &'static str) {
    let d = Deployment::prepare(proxy, CREDENTIALS);
    d.init().env("BOB_PASSWORD", "bob's password is long enough").env("CI_KEY", CI_KEY).any_stdout().run();

    // The key comes from the environment; the forwarder's own has none of it.
    let connect = Connect::start(&d, &["--api-key-env", "CI_KEY"], &[("CI_KEY", CI_KEY)]);
    assert!(connect.said.contains("with an API key"), "{}", connect.said);
    for what in ["environ", "cmdline"] {
        let text = String::from_utf8_lossy(&connect.proc(what)).into_owned();
        assert!(!text.contains(&CI_KEY["osk_".len()..]), "{proxy}: the key is in /proc/PID/{what}");
    }

    // Without credentials, through connect: the proxy let it through.
    let tags: serde_json::Value = plain_client().get(connect.url("/api/tags")).send().unwrap().json().unwrap();
    assert_eq!(tags["models"][0]["name"], MODEL, "{proxy}");
    // And directly, without: refused, so connect added them.
    assert_eq!(d.status("/api/tags", None), 401, "{proxy}");

    // Keep-alive: two requests on one local connection.
    let mut stream = TcpStream::connect(&connect.address).unwrap();
    for _ in 0..2 {
        let (head, body) = exchange(&mut stream, "/api/version");
        assert!(head.starts_with("HTTP/1.1 200"), "{proxy}: {head}");
        assert!(body.contains("version"), "{proxy}: {body}");
    }

    // The official Python client, OLLAMA_HOST only. The key it would send is
    // replaced by connect's: a "wrong key" of its own is not what counts.
    let out = Command::new(installed("venv/bin/python"))
        .args([format!("{ROOT}/tests/clients/ollama_python.py"), MODEL.to_string()])
        .env("OLLAMA_HOST", &connect.address)
        .env_remove("OLLAMA_API_KEY")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{proxy}: {printed}{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_str(printed.trim().lines().last().unwrap()).unwrap();
    assert_eq!(got["models"], serde_json::json!([MODEL]), "{proxy}: ollama (Python) through connect");
    assert_eq!(got["tokens"], serde_json::json!(TOKENS), "{proxy}: its streamed chat");
    assert_eq!(got["wrong_key"], "accepted", "{proxy}: connect's credentials replace the client's");

    // 32 streams at once, each with only its first token while the stand-in
    // holds the rest back (a buffering forwarder would block here), and
    // one more whose client goes away.
    let streams: Vec<_> = (0..32).map(|_| first_token(&connect)).collect();
    for (_, first) in &streams {
        assert_eq!(first.lines().count(), 1, "{proxy}: only the first token can have arrived: {first}");
        let piece: serde_json::Value = serde_json::from_str(first.trim_end()).unwrap();
        assert_eq!(piece["response"], TOKENS[0], "{proxy}");
    }
    let (abandoned, _) = first_token(&connect);
    drop(abandoned);
    d.ollama.release_stream();
    for (mut answer, _) in streams {
        let mut rest = String::new();
        answer.read_to_string(&mut rest).unwrap();
        assert_eq!(rest.lines().count(), TOKENS.len(), "{proxy}: every other token: {rest}");
    }
    // The abandoned generation's upstream was closed: the stand-in could not
    // send it the rest.
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.ollama.cut_off() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.ollama.cut_off(), 1, "{proxy}: a client that went away did not end its generation");
    drop(connect);

    // alice (admin role, Basic) uploads a 50 MiB blob: it streams through,
    // the forwarder's memory never holds it.
    let connect =
        Connect::start(&d, &["--username", "alice", "--password-env", "ALICE_PASSWORD"], &[("ALICE_PASSWORD", ALICE)]);
    assert!(connect.said.contains("as alice"), "{}", connect.said);
    let blob: Vec<u8> = (0..50 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    let digest = format!("{:x}", Sha256::digest(&blob));
    let length = blob.len();
    let upload = plain_client()
        .post(connect.url(&format!("/api/blobs/sha256:{digest}")))
        .timeout(Duration::from_secs(120))
        .body(blob)
        .send()
        .unwrap();
    assert_eq!(upload.status().as_u16(), 201, "{proxy}: {}", upload.text().unwrap());
    assert!(d.ollama.seen().iter().any(|s| s.body_len == length), "{proxy}: the whole blob reached Ollama");
    let peak = connect.peak_kib();
    assert!(peak < 40 * 1024, "{proxy}: connect held {peak} KiB for a 50 MiB upload");

    // Wrong credentials: said at start-up, nothing listens.
    let wrong = || {
        Tool::new()
            .args(["connect", "--url", &format!("http://{DOMAIN}:{}", d.port), "--api-key-env", "WRONG"])
            .args(["--resolve", &format!("{DOMAIN}:{}:127.0.0.1", d.port), "--listen", "127.0.0.1:0"])
            .env("WRONG", "osk_d3JvbmcwMDAwMDAwOndyb25nd3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3h4")
    };
    wrong().status(3).stderr_has("refused these credentials (401)").run();
    // As the launchd agent: status 0, so that launchd does not retry them every 10 s.
    wrong()
        .args(["--as-launchd-agent"])
        .status(0)
        .stderr_has("refused these credentials (401)")
        .stderr_has("Not retried: this would fail again.")
        .run();
}

#[test]
fn nginx_connect_forwards_without_credentials() {
    forwards_without_credentials("nginx");
}

#[test]
fn caddy_connect_forwards_without_credentials() {
    forwards_without_credentials("caddy");
}

#[test]
fn connect_refuses_what_would_not_work() {
    let key = [("KEY", CI_KEY)];
    let connect = |listen: &str, url: &str| {
        key.iter().fold(Tool::new(), |t, (k, v)| t.env(k, v)).args([
            "connect",
            "--url",
            url,
            "--api-key-env",
            "KEY",
            "--listen",
            listen,
        ])
    };
    for listen in ["0.0.0.0:11434", "[::]:11434", "192.0.2.1:11434"] {
        connect(listen, "http://127.0.0.1:1").status(2).stderr_has("not a loopback address").run();
    }
    connect("localhost", "http://127.0.0.1:1").status(2).stderr_has("give a loopback address and port").run();
    connect("127.0.0.1:0", "https://alice:pw@ollama.example.com")
        .status(2)
        .stderr_has("credentials do not go in the URL")
        .run();
    // Nothing listens there.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    connect("127.0.0.1:0", &nobody).status(1).stderr_has(&format!("cannot reach {nobody}/")).run();
    // As the launchd agent, an unreachable server is still a failure (retried), a wrong command not.
    connect("127.0.0.1:0", &nobody).args(["--as-launchd-agent"]).status(1).stderr_has("cannot reach").run();
    // A command it cannot parse, too (an upgrade that dropped a flag).
    Tool::new().args(["connect", "--as-launchd-agent", "--no-such-flag"]).status(0).stderr_has("--no-such-flag").run();
    connect("localhost", &nobody)
        .args(["--as-launchd-agent"])
        .status(0)
        .stderr_has("give a loopback address and port")
        .stderr_has("Not retried")
        .run();
    connect("127.0.0.1:0", &nobody)
        .args(["--dry-run"])
        .status(2)
        .stderr_has("--dry-run goes with --install or --uninstall")
        .run();
    Tool::new().args(["connect", "--uninstall", "--url", &nobody]).status(2).stderr_has("cannot be used with").run();
    Tool::new().args(["connect", "--url", &nobody]).status(2).stderr_has("give --username NAME").run();
    // No key in the variable.
    Tool::new()
        .args(["connect", "--url", &nobody, "--api-key-env", "UNSET_KEY"])
        .status(2)
        .stderr_has("UNSET_KEY is not set")
        .run();
}

/// The words of a unit's `ExecStart=`, unquoted as systemd reads the
/// quoting the tool writes (every word in double quotes, `%` and `$`
/// doubled).
fn exec_start(unit: &str) -> Vec<String> {
    let line = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("an ExecStart= line");
    let (mut words, mut chars) = (Vec::new(), line.chars());
    while let Some(c) = chars.next() {
        match c {
            ' ' => continue,
            '"' => {}
            c => panic!("an unquoted word at {c:?}: {line}"),
        }
        let mut word = String::new();
        loop {
            match chars.next().expect("a closing quote") {
                '"' => break,
                '\\' => word.push(chars.next().unwrap()),
                c @ ('%' | '$') => {
                    assert_eq!(chars.next(), Some(c), "a lone {c}: {line}");
                    word.push(c);
                }
                c => word.push(c),
            }
        }
        words.push(word);
    }
    words
}

/// `connect --install` on a machine whose user has no systemd manager
/// running (this one): the unit and its enabling link are written where
/// systemd looks, the folders made for them are recorded and are all that
/// `--uninstall` removes, a re-run changes nothing, and the unit's command,
/// run from elsewhere with nothing of this shell's environment, forwards
/// with the key it reads from its file.
#[test]
fn connect_install_writes_a_user_service_and_uninstall_takes_it_away() {
    use std::os::unix::fs::PermissionsExt;
    let d = Deployment::prepare("nginx", CREDENTIALS);
    d.init().env("BOB_PASSWORD", "bob's password is long enough").env("CI_KEY", CI_KEY).any_stdout().run();
    let home = d.sandbox.mkdir("home/al");
    let runtime = d.sandbox.mkdir("home/run");
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let secret = |name: &str, text: &str, mode: u32| {
        let path = d.sandbox.write(&format!("secrets/{name}"), &format!("{text}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.display().to_string()
    };
    let key = secret("key", CI_KEY, 0o600);
    let readable = secret("readable", CI_KEY, 0o644);
    let wrong = secret("wrong", "osk_d3JvbmcwMDAwMDAwOndyb25nd3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3h4", 0o600);
    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{DOMAIN}:{}", d.port);
    let resolve = format!("{DOMAIN}:{}:127.0.0.1", d.port);
    let connect = |extra: &[&str]| {
        Tool::new()
            .env("HOME", home.to_str().unwrap())
            // The shell's, not the user manager's (none runs here): not used.
            .env("XDG_CONFIG_HOME", "/nonexistent/config")
            .env("XDG_RUNTIME_DIR", runtime.to_str().unwrap())
            .args(["connect", "--url", &url, "--resolve", &resolve, "--listen", &listen])
            .args(extra)
    };
    let home_tree = || crate::support::tree(&home);
    let empty = home_tree();
    assert!(empty.is_empty());

    // What the service could not use is refused, and nothing is written.
    connect(&["--install", "--api-key-env", "CI_KEY"])
        .env("CI_KEY", CI_KEY)
        .status(2)
        .stderr_has("the service has neither this shell's environment nor a terminal")
        .run();
    connect(&["--install", "--api-key-file", &readable]).status(2).stderr_has(&format!("chmod 600 {readable}")).run();
    connect(&["--install", "--api-key-file", &wrong]).status(3).stderr_has("refused these credentials (401)").run();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_at = taken.local_addr().unwrap().to_string();
    Tool::new()
        .env("HOME", home.to_str().unwrap())
        .args([
            "connect",
            "--url",
            &url,
            "--resolve",
            &resolve,
            "--listen",
            &taken_at,
            "--install",
            "--api-key-file",
            &key,
        ])
        .status(1)
        .stderr_has(&format!("something else listens on {taken_at}"))
        .run();
    drop(taken);
    assert_eq!(home_tree(), empty);

    let unit_path = home.join(".config/systemd/user/ollama-secure-connect.service");
    let link_path = home.join(".config/systemd/user/default.target.wants/ollama-secure-connect.service");
    let dry = connect(&["--install", "--api-key-file", &key, "--dry-run"]).any_stdout().run();
    for part in [
        "connect --install would:\n",
        &format!("create folder {}/.config (mode 0755)\n", home.display()),
        &format!("write {} (mode 0644):\n", unit_path.display()),
        &format!("    # made by ollama-secure: {}/.config/systemd/user/default.target.wants\n", home.display()),
        &format!("link {} -> {} (enables it at login)\n", link_path.display(), unit_path.display()),
        "Nothing was changed (dry run).\n",
    ] {
        assert!(dry.stdout.contains(part), "no {part:?} in:\n{}", dry.stdout);
    }
    assert!(!dry.stdout.contains(&CI_KEY["osk_".len()..]), "the key in the dry run");
    assert_eq!(home_tree(), empty, "the dry run changed something");

    connect(&["--install", "--api-key-file", &key])
        .stdout_has(&format!(
            "Installed {}: http://{listen} forwards to {url}/, from every login on.",
            unit_path.display()
        ))
        .stdout_has("Not started: no systemd user manager runs for you now")
        .stdout_has("this one's PID 1 is not systemd")
        .run();
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    assert!(!unit.contains(&CI_KEY["osk_".len()..]), "the key in the unit");
    assert_eq!(std::fs::metadata(&unit_path).unwrap().permissions().mode() & 0o7777, 0o644);
    assert_eq!(std::fs::read_link(&link_path).unwrap(), unit_path);
    // systemd's own reading of the unit finds nothing wrong.
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--user"])
        .arg(&unit_path)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert_eq!(
        exec_start(&unit),
        [
            BIN,
            "connect",
            "--url",
            &format!("{url}/"),
            "--listen",
            &listen,
            "--api-key-file",
            &key,
            "--resolve",
            &resolve
        ]
    );

    // The unit's command as systemd would run it: another folder, no
    // environment of ours. Without credentials, through it: the models.
    let words = exec_start(&unit);
    let mut command = Command::new(&words[0]);
    command.args(&words[1..]).env_clear().current_dir("/");
    let service = Connect::spawn(command, listen.clone());
    assert!(service.said.starts_with(&format!("Forwarding http://{listen}")), "{}", service.said);
    let tags: serde_json::Value = plain_client().get(service.url("/api/tags")).send().unwrap().json().unwrap();
    assert_eq!(tags["models"][0]["name"], MODEL);
    drop(service);

    let installed = home_tree();
    connect(&["--install", "--api-key-file", &key])
        .stdout(&format!("Nothing to change: {} is installed as asked.\n", unit_path.display()))
        .run();
    assert_eq!(home_tree(), installed);

    let uninstall = || {
        Tool::new()
            .env("HOME", home.to_str().unwrap())
            .env("XDG_CONFIG_HOME", "/nonexistent/config")
            .env("XDG_RUNTIME_DIR", runtime.to_str().unwrap())
            .args(["connect", "--uninstall"])
    };
    uninstall()
        .args(["--dry-run"])
        .stdout_has(&format!("remove folder {}/.config (made for it, now empty)\n", home.display()))
        .stdout_has("Nothing was changed (dry run).")
        .run();
    assert_eq!(home_tree(), installed);
    uninstall().stdout(&format!("Removed the connect service ({}).\n", unit_path.display())).run();
    assert_eq!(home_tree(), empty, "uninstall left something");
    uninstall()
        .stdout(&format!(
            "Nothing to change: no connect service is installed ({} does not exist).\n",
            unit_path.display()
        ))
        .run();

    // Folders that were there before, and what else is in them, stay.
    d.sandbox.write("home/al/.config/systemd/user/other.service", "[Service]\nExecStart=/bin/true\n");
    let before = home_tree();
    connect(&["--install", "--api-key-file", &key]).any_stdout().run();
    assert_ne!(home_tree(), before);
    uninstall().any_stdout().run();
    assert_eq!(home_tree(), before, "uninstall removed what it did not make");

    // A unit of the same name that is not ours is neither replaced nor removed.
    std::fs::write(&unit_path, "[Service]\nExecStart=/bin/true\n").unwrap();
    connect(&["--install", "--api-key-file", &key]).status(1).stderr_has("was not written by ollama-secure").run();
    uninstall().status(1).stderr_has("not removed").run();
    assert_eq!(std::fs::read_to_string(&unit_path).unwrap(), "[Service]\nExecStart=/bin/true\n");

    // A ~/.config that is a link to a folder elsewhere is used, not recorded
    // as made, and left as it was.
    let linked = d.sandbox.mkdir("home/bo");
    let elsewhere = d.sandbox.mkdir("disk/bo-config");
    std::os::unix::fs::symlink(&elsewhere, linked.join(".config")).unwrap();
    let both = || (crate::support::tree(&linked), crate::support::tree(&elsewhere));
    let before = both();
    let as_bo = |extra: &[&str]| connect(extra).env("HOME", linked.to_str().unwrap());
    as_bo(&["--install", "--api-key-file", &key]).any_stdout().run();
    let unit = std::fs::read_to_string(elsewhere.join("systemd/user/ollama-secure-connect.service")).unwrap();
    assert!(!unit.contains(&format!("made by ollama-secure: {}\n", linked.join(".config").display())), "{unit}");
    uninstall().env("HOME", linked.to_str().unwrap()).any_stdout().run();
    assert_eq!(both(), before, "the link and the folder it leads to are as before");
}

/// The launchd agent `--install` writes on macOS, read by Python's
/// plistlib (the format's reader here, where there is no Mac): launchd's
/// keys, the command word for word, the folders it made.
#[test]
fn connect_launchd_agent_is_a_property_list_launchd_reads() {
    use ollama_secure::user_service::{Manager, made_folders, service_text};
    let args: Vec<String> = ["connect", "--url", "https://o.example.com/", "--api-key-file", "/Users/a l/k<&>\"'"]
        .map(String::from)
        .to_vec();
    let made = [std::path::PathBuf::from("/Users/a l/Library/LaunchAgents")];
    let text = service_text(Manager::Launchd, "/opt/homebrew/bin/ollama-secure", &args, &made).unwrap();
    let mut python = Command::new("python3")
        .args(["-c", "import json, plistlib, sys; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    python.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
    let plist: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut program = vec!["/opt/homebrew/bin/ollama-secure".to_string()];
    program.extend(args);
    program.push("--as-launchd-agent".into());
    assert_eq!(
        plist,
        serde_json::json!({
            "Label": "com.ollama-secure.connect",
            "ProgramArguments": program,
            "RunAtLoad": true,
            "KeepAlive": {"SuccessfulExit": false},
            "ThrottleInterval": 10,
        })
    );
    assert_eq!(made_folders(&text), made);
}

/// Over HTTPS (nginx with a certificate from pebble, whose root no system
/// trusts): without `--cacert` the start-up check says the TLS failure in
/// words and nothing listens; with it, requests without credentials go
/// through.
#[test]
fn connect_over_https_trusts_a_private_ca_only_when_told() {
    let d = Deployment::prepare_https("nginx");
    d.init().any_stdout().run();
    let root = d.tls.as_ref().unwrap().root.display().to_string();
    let resolve = format!("{}:{}:{}", d.domain, d.port, d.address);
    let alice = ["--username", "alice", "--password-env", "ALICE_PASSWORD"];
    Tool::new()
        .env("ALICE_PASSWORD", ALICE)
        .args(["connect", "--url", &d.url(""), "--resolve", &resolve, "--listen", "127.0.0.1:0"])
        .args(alice)
        .status(1)
        .stderr_has(&format!("cannot reach {}/: TLS failed", d.url("")))
        .run();
    let connect = Connect::start_at(
        &d.url(""),
        &resolve,
        &[&["--cacert", root.as_str()][..], &alice].concat(),
        &[("ALICE_PASSWORD", ALICE)],
    );
    let tags: serde_json::Value = plain_client().get(connect.url("/api/tags")).send().unwrap().json().unwrap();
    assert_eq!(tags["models"][0]["name"], MODEL);
    assert_eq!(d.status("/api/tags", None), 401, "directly, without credentials");
    let (mut answer, first) = first_token(&connect);
    assert_eq!(first.lines().count(), 1, "{first}");
    d.ollama.release_stream();
    let mut rest = String::new();
    answer.read_to_string(&mut rest).unwrap();
    assert_eq!(rest.lines().count(), TOKENS.len(), "every other token over TLS: {rest}");
}
