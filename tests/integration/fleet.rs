//! The Ansible role (`ansible/`), driven by the real ansible-core (PyPI,
//! `.ci/install-clients`) over SSH: Debian's sshd, started by the test on
//! three loopback addresses, one inventory host per address, each host's
//! tool and files in a sandbox of its own (its `paths:`) with its own nginx
//! and stand-in Ollama. Check mode changes nothing and reports changed;
//! the first run changes every host and the endpoints answer 401/200; the
//! second reports 0 changed; a host whose `nginx -t` fails is rolled back
//! and reported failed while the others take the change; a password
//! rotated in the vault is rotated on every host.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::clients::installed;
use crate::support::deployment::{ALICE, ALICE_ONLY, Deployment};
use crate::support::{ROOT, Sandbox, free_port};

const BOB: &str = "bob's password is long enough too";

/// sshd in a mount namespace of its own, where `/run` is an empty tmpfs:
/// it insists on `/run/sshd`, which the test does not create on the real
/// machine. Stopped by PID when dropped.
struct Sshd {
    child: Child,
    port: u16,
    key: PathBuf,
}

impl Sshd {
    fn start(sandbox: &Sandbox, addresses: &[&str]) -> Sshd {
        let dir = sandbox.mkdir("ssh");
        let keygen = |name: &str| {
            let path = dir.join(name);
            let out = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&path).output();
            assert!(out.unwrap().status.success(), "ssh-keygen");
            path
        };
        let host_key = keygen("host_key");
        let key = keygen("client_key");
        let authorized = dir.join("authorized_keys");
        fs::copy(key.with_extension("pub"), &authorized).unwrap();
        fs::set_permissions(&authorized, fs::Permissions::from_mode(0o600)).unwrap();
        let port = free_port();
        let mut config: String = addresses.iter().map(|a| format!("ListenAddress {a}:{port}\n")).collect();
        config.push_str(&format!(
            "HostKey {}\nAuthorizedKeysFile {}\nPidFile {}\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPrintLastLog no\n",
            host_key.display(),
            authorized.display(),
            dir.join("sshd.pid").display()
        ));
        let config_path = dir.join("sshd_config");
        fs::write(&config_path, config).unwrap();
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd && exec /usr/sbin/sshd -D -e -f "$0""#)
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        for address in addresses {
            while std::net::TcpStream::connect((*address, port)).is_err() {
                assert!(Instant::now() < deadline, "sshd does not listen on {address}:{port}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Sshd { child, port, key }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // `sh` became sshd (exec): its PID is the daemon's.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One inventory host: a sandboxed nginx deployment, not applied yet.
struct Host {
    name: String,
    address: &'static str,
    d: Deployment,
    bin: PathBuf,
}

/// The answers of a deployment as the role's `ollama_secure_answers`, with
/// the passwords from the vault.
fn answers_for(d: &Deployment, users: &[&str]) -> serde_yaml::Value {
    let mut answers: serde_yaml::Value = serde_yaml::from_str(&fs::read_to_string(&d.answers).unwrap()).unwrap();
    let users: Vec<serde_yaml::Value> = users
        .iter()
        .map(|user| {
            serde_yaml::from_str(&format!("{{username: {user}, password: '{{{{ vault_{user}_password }}}}'}}")).unwrap()
        })
        .collect();
    answers["users"] = serde_yaml::Value::Sequence(users);
    answers
}

fn inventory(hosts: &[Host], sshd: &Sshd, users: &[&str]) -> String {
    let mut all = BTreeMap::new();
    for host in hosts {
        let vars = serde_yaml::to_value(BTreeMap::from([
            ("ansible_host", serde_yaml::Value::from(host.address)),
            ("ansible_port", sshd.port.into()),
            ("ansible_user", "root".into()),
            ("ansible_become", false.into()),
            ("ansible_ssh_private_key_file", sshd.key.display().to_string().into()),
            (
                "ansible_ssh_common_args",
                "-F /dev/null -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no".into(),
            ),
            // No pty: sshd would record the login in the machine's wtmp.
            ("ansible_ssh_use_tty", false.into()),
            ("ansible_python_interpreter", "/usr/bin/python3".into()),
            ("ansible_remote_tmp", host.d.sandbox.path("ansible-tmp").display().to_string().into()),
            ("ollama_secure_binary", env!("CARGO_BIN_EXE_ollama-secure").into()),
            ("ollama_secure_bin", host.bin.display().to_string().into()),
        ]))
        .unwrap();
        let mut vars = vars;
        vars["ollama_secure_answers"] = answers_for(&host.d, users);
        all.insert(host.name.clone(), vars);
    }
    let inventory = serde_yaml::to_value(BTreeMap::from([(
        "ollama_servers",
        BTreeMap::from([("hosts", serde_yaml::to_value(all).unwrap())]),
    )]))
    .unwrap();
    serde_yaml::to_string(&inventory).unwrap()
}

/// What `ansible-playbook` printed, and each host's `changed` and `failed`
/// counts from its PLAY RECAP line.
struct Played {
    output: String,
    recap: BTreeMap<String, (usize, usize)>,
}

fn play(control: &Sandbox, inventory: &str, extra: &[&str]) -> Played {
    let inventory_path = control.write("inventory.yml", inventory);
    let ansible = installed("venv/bin/ansible-playbook");
    let out = Command::new(&ansible)
        .current_dir(control.path(""))
        .args(["-i"])
        .arg(&inventory_path)
        .args(["-e", &format!("@{}", control.path("secrets.yml").display())])
        .arg("--vault-password-file")
        .arg(control.path("vault-password"))
        .args(extra)
        .arg(format!("{ROOT}/ansible/playbook.yml"))
        .env("ANSIBLE_HOME", control.path("ansible-home"))
        .env("ANSIBLE_LOCAL_TEMP", control.path("ansible-local"))
        .env("ANSIBLE_SSH_CONTROL_PATH_DIR", control.path("ansible-cp"))
        .env("ANSIBLE_ROLES_PATH", format!("{ROOT}/ansible/roles"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_FORKS", "3")
        // No master connection lingering after the play (ControlPersist).
        .env("ANSIBLE_SSH_ARGS", "-o ControlMaster=no")
        .output()
        .expect("ansible-playbook runs");
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let mut recap = BTreeMap::new();
    let after = output.split("PLAY RECAP").nth(1).unwrap_or_else(|| panic!("no PLAY RECAP:\n{output}"));
    for line in after.lines().filter(|l| l.contains(" : ok=")) {
        let (host, counts) = line.split_once(" : ").unwrap();
        let count = |name: &str| -> usize {
            counts
                .split_whitespace()
                .find_map(|c| c.strip_prefix(&format!("{name}=")))
                .and_then(|n| n.parse().ok())
                .unwrap()
        };
        recap.insert(host.trim().to_string(), (count("changed"), count("failed")));
    }
    Played { output, recap }
}

#[test]
fn ansible_rolls_ollama_secure_out_to_every_host() {
    let control = Sandbox::new();
    let addresses = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
    let hosts: Vec<Host> = addresses
        .iter()
        .enumerate()
        .map(|(i, address)| {
            let d = Deployment::prepare("nginx", ALICE_ONLY);
            let bin = d.sandbox.mkdir("bin").join("ollama-secure");
            d.sandbox.mkdir("ansible-tmp");
            Host { name: format!("ollama{}", i + 1), address, d, bin }
        })
        .collect();
    // Login records of the machine, which sshd writes for a session with a pty.
    let records = || -> Vec<Option<u64>> {
        ["/var/log/wtmp", "/var/log/lastlog", "/var/log/btmp"]
            .iter()
            .map(|f| fs::metadata(f).ok().map(|m| m.len()))
            .collect()
    };
    let records_before = records();
    let sshd = Sshd::start(&control, &addresses);
    // The passwords, in a file that Ansible Vault encrypted.
    let secrets =
        control.write("secrets.yml", &format!("vault_alice_password: \"{ALICE}\"\nvault_bob_password: \"{BOB}\"\n"));
    control.write("vault-password", "a vault password of the test\n");
    vault_encrypt(&control, &secrets);
    let trees = || -> Vec<_> { hosts.iter().map(|h| h.d.sandbox.trees(&["etc", "run", "var"])).collect() };
    let alice_only = inventory(&hosts, &sshd, &["alice"]);

    // Check mode: the binary is not there yet, so init is not asked, and
    // nothing is written; with it there, init --dry-run says what would
    // change, and still nothing is.
    let before = trees();
    let checked = play(&control, &alice_only, &["--check"]);
    assert!(checked.recap.values().all(|&(_, failed)| failed == 0), "{}", checked.output);
    assert!(hosts.iter().all(|h| !h.bin.exists()), "check mode copied the binary");
    for host in &hosts {
        fs::copy(env!("CARGO_BIN_EXE_ollama-secure"), &host.bin).unwrap();
    }
    let checked = play(&control, &alice_only, &["--check"]);
    for host in &hosts {
        assert_eq!(checked.recap[&host.name], (1, 0), "{}: check mode\n{}", host.name, checked.output);
    }
    assert_eq!(trees(), before, "check mode changed a host");
    for host in &hosts {
        assert!(!host.d.sandbox.path("etc/nginx/sites-available/ollama").exists(), "{}", host.name);
    }

    // The first run changes every host; each endpoint asks for a password
    // and lets alice in.
    for host in &hosts {
        fs::remove_file(&host.bin).unwrap();
    }
    let first = play(&control, &alice_only, &[]);
    for host in &hosts {
        let (changed, failed) = first.recap[&host.name];
        assert_eq!((changed, failed), (2, 0), "{}: the copy and init changed\n{}", host.name, first.output);
        assert_eq!(host.d.status("/api/tags", None), 401, "{}", host.name);
        assert_eq!(host.d.status("/api/tags", Some(("alice", ALICE))), 200, "{}", host.name);
    }
    assert!(!first.output.contains(ALICE), "alice's password in Ansible's output");

    // Again: nothing changes anywhere.
    let again = play(&control, &alice_only, &[]);
    for host in &hosts {
        assert_eq!(again.recap[&host.name], (0, 0), "{}: the second run\n{}", host.name, again.output);
    }

    // A change (bob added) where one host's nginx no longer passes
    // `nginx -t`: that host fails and is rolled back, serving as before;
    // the others take the change.
    let broken = &hosts[2];
    broken
        .d
        .sandbox
        .write("etc/nginx/sites-enabled/broken", "server { listen 127.0.0.1:1; this_is_not_a_directive on; }\n");
    let broken_before = broken.d.sandbox.trees(&["etc"]);
    let with_bob = inventory(&hosts, &sshd, &["alice", "bob"]);
    let third = play(&control, &with_bob, &[]);
    for host in &hosts[..2] {
        assert_eq!(third.recap[&host.name], (1, 0), "{}: bob added\n{}", host.name, third.output);
        assert_eq!(host.d.status("/api/tags", Some(("bob", BOB))), 200, "{}", host.name);
    }
    assert_eq!(third.recap[&broken.name], (0, 1), "the broken host\n{}", third.output);
    assert!(third.output.contains("this_is_not_a_directive"), "nginx's error is not shown:\n{}", third.output);
    assert_eq!(broken.d.sandbox.trees(&["etc"]), broken_before, "the broken host was not rolled back");
    assert_eq!(broken.d.status("/api/tags", Some(("alice", ALICE))), 200, "the broken host stopped serving");
    assert_eq!(broken.d.status("/api/tags", Some(("bob", BOB))), 401, "the broken host took the change");
    assert!(!third.output.contains(BOB), "bob's password in Ansible's output");

    // A password rotated on every host: a new one in the vault, the same
    // playbook (the broken site fixed first).
    fs::remove_file(broken.d.sandbox.path("etc/nginx/sites-enabled/broken")).unwrap();
    const ROTATED: &str = "alice's rotated password, long enough";
    let secrets_text = format!("vault_alice_password: \"{ROTATED}\"\nvault_bob_password: \"{BOB}\"\n");
    fs::write(&secrets, secrets_text).unwrap();
    vault_encrypt(&control, &secrets);
    let rotated = play(&control, &with_bob, &[]);
    for (run, output) in [("check", &checked.output), ("again", &again.output), ("rotated", &rotated.output)] {
        for secret in [ALICE, BOB, ROTATED] {
            assert!(!output.contains(secret), "a password in Ansible's output ({run})");
        }
    }

    // A generated password would be shown only in Ansible's output: refused.
    let generated = with_bob.replace("password: '{{ vault_bob_password }}'", "generate: true");
    assert_ne!(generated, with_bob);
    let refused = play(&control, &generated, &["--check"]);
    for host in &hosts {
        assert_eq!(refused.recap[&host.name].1, 1, "{}: generate not refused\n{}", host.name, refused.output);
    }
    assert!(refused.output.contains("`generate` in ollama_secure_answers"), "{}", refused.output);
    assert_eq!(records(), records_before, "the machine's login records changed");
    for host in &hosts {
        assert_eq!(rotated.recap[&host.name], (1, 0), "{}: alice rotated\n{}", host.name, rotated.output);
        assert_eq!(host.d.status("/api/tags", Some(("alice", ROTATED))), 200, "{}", host.name);
        assert_eq!(host.d.status("/api/tags", Some(("alice", ALICE))), 401, "{}: the old password", host.name);
        assert_eq!(host.d.status("/api/tags", Some(("bob", BOB))), 200, "{}", host.name);
    }
}

fn vault_encrypt(control: &Sandbox, file: &std::path::Path) {
    let vault = Command::new(installed("venv/bin/ansible-vault"))
        .arg("encrypt")
        .arg(file)
        .arg("--vault-password-file")
        .arg(control.path("vault-password"))
        .env("ANSIBLE_HOME", control.path("ansible-home"))
        .output()
        .unwrap();
    assert!(vault.status.success(), "{}", String::from_utf8_lossy(&vault.stderr));
    assert!(fs::read_to_string(file).unwrap().starts_with("$ANSIBLE_VAULT;"));
}
