//! Test harness: run the real binary, build sandboxes whose paths point into
//! a temporary directory, and load configs for library-level tests.

#![allow(dead_code)]

pub mod acme;
pub mod browser;
pub mod container;
pub mod deployment;
pub mod proxies;
pub mod screen;
pub mod standin;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ollama_secure::answers::Answers;
use ollama_secure::config::{Config, SecretSource};
use ollama_secure::credentials::SeededEntropy;
use ollama_secure::facts::Facts;
use ollama_secure::paths::Os;
use ollama_secure::plan::{Action, Goal, Plan};
use ollama_secure::render::RenderedFile;
use ollama_secure::setup::{Resolution, Setup};

pub const BIN: &str = env!("CARGO_BIN_EXE_ollama-secure");

/// What init, render and check say on stderr for answers without HTTPS
/// that listen beyond loopback.
pub const HTTPS_OFF: &str = "warning: https is off: passwords cross the network readable by anyone on the path; \
                             enable https for anything reachable from the internet\n";
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What a run must print on one stream.
#[derive(Debug, Clone)]
enum Expect {
    /// Exactly this (after redactions). The default: nothing.
    Exactly(String),
    /// Each of these, somewhere.
    Containing(Vec<String>),
    /// Anything: the test looks at it itself.
    Anything,
}

impl Expect {
    fn contain(self, part: &str) -> Expect {
        match self {
            Expect::Containing(mut parts) => {
                parts.push(part.to_string());
                Expect::Containing(parts)
            }
            _ => Expect::Containing(vec![part.to_string()]),
        }
    }

    /// Why `text` does not meet this expectation, if it does not.
    fn mismatch(&self, name: &str, text: &str) -> Option<String> {
        match self {
            Expect::Exactly(want) if want != text => {
                Some(format!("{name} differs:\n--- wanted:\n{want}\n--- got:\n{text}"))
            }
            Expect::Containing(parts) => {
                let missing: Vec<&String> = parts.iter().filter(|p| !text.contains(p.as_str())).collect();
                (!missing.is_empty()).then(|| format!("{name} lacks {missing:?}:\n{text}"))
            }
            _ => None,
        }
    }
}

/// A run of the real binary, builder style (after casey/just's tests):
/// unless told otherwise it must exit 0 and print nothing on either
/// stream, so a test states everything it expects. Redactions replace
/// what changes from run to run (ports, times, paths) before comparing.
#[must_use]
pub struct Tool {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
    /// Run as `nobody`, without root's groups.
    nobody: bool,
    /// Standard output is a pipe whose reader has gone (`| head`, ended).
    stdout_closed: bool,
    status: i32,
    stdout: Expect,
    stderr: Expect,
    redactions: Vec<(regex::Regex, String)>,
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl Tool {
    pub fn new() -> Tool {
        Tool {
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            nobody: false,
            stdout_closed: false,
            status: 0,
            stdout: Expect::Exactly(String::new()),
            stderr: Expect::Exactly(String::new()),
            redactions: Vec::new(),
        }
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Tool {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Tool {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Keeps Caddy's config and data (which `caddy` finds through these)
    /// inside the sandbox.
    pub fn caddy_home(mut self, sandbox: &Sandbox) -> Tool {
        self.env.extend(proxies::caddy_env(sandbox));
        self
    }

    /// Runs as the unprivileged user `nobody`, with no supplementary group.
    pub fn unprivileged(mut self) -> Tool {
        self.nobody = true;
        self
    }

    /// Standard output a pipe nobody reads any more: every write fails.
    pub fn stdout_closed(mut self) -> Tool {
        self.stdout_closed = true;
        self
    }

    pub fn stdin(mut self, text: &str) -> Tool {
        self.stdin = Some(text.into());
        self
    }

    pub fn status(mut self, code: i32) -> Tool {
        self.status = code;
        self
    }

    pub fn stdout(mut self, text: &str) -> Tool {
        self.stdout = Expect::Exactly(text.to_string());
        self
    }

    pub fn stderr(mut self, text: &str) -> Tool {
        self.stderr = Expect::Exactly(text.to_string());
        self
    }

    pub fn stdout_has(mut self, part: &str) -> Tool {
        self.stdout = self.stdout.contain(part);
        self
    }

    pub fn stderr_has(mut self, part: &str) -> Tool {
        self.stderr = self.stderr.contain(part);
        self
    }

    pub fn any_stdout(mut self) -> Tool {
        self.stdout = Expect::Anything;
        self
    }

    pub fn any_stderr(mut self) -> Tool {
        self.stderr = Expect::Anything;
        self
    }

    /// Whatever it prints: the test judges the output itself.
    pub fn any_output(self) -> Tool {
        self.any_stdout().any_stderr()
    }

    /// Replaces every match of `pattern` with `with` before comparing.
    pub fn redact(mut self, pattern: &str, with: &str) -> Tool {
        self.redactions.push((regex::Regex::new(pattern).expect("a valid pattern"), with.to_string()));
        self
    }

    fn redacted(&self, text: &str) -> String {
        self.redactions.iter().fold(text.to_string(), |t, (re, with)| re.replace_all(&t, with.as_str()).into_owned())
    }

    /// Runs the binary and asserts status, stdout and stderr.
    #[track_caller]
    pub fn run(self) -> Ran {
        let mut command = if self.nobody {
            let mut setpriv = Command::new("setpriv");
            setpriv.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", BIN]);
            setpriv
        } else {
            Command::new(BIN)
        };
        command.args(&self.args).current_dir(ROOT).env("NO_COLOR", "1");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        if self.stdout_closed {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            command.stdout(writer);
        } else {
            command.stdout(Stdio::piped());
        }
        command.stderr(Stdio::piped());
        let mut child = command.spawn().expect("the binary runs");
        if let Some(text) = &self.stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        let Output { status, stdout, stderr } = child.wait_with_output().expect("the binary finishes");
        let ran = Ran {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        let mut problems = Vec::new();
        if ran.code != self.status {
            problems.push(format!("exit code {} instead of {}", ran.code, self.status));
        }
        problems.extend(self.stdout.mismatch("stdout", &self.redacted(&ran.stdout)));
        problems.extend(self.stderr.mismatch("stderr", &self.redacted(&ran.stderr)));
        assert!(
            problems.is_empty(),
            "`ollama-secure {}`:\n{}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.args.join(" "),
            problems.join("\n"),
            ran.stdout,
            ran.stderr
        );
        ran
    }
}

/// A temporary directory that nginx's workers (www-data) and Caddy (caddy)
/// can read: tempfile makes 0700 folders, which would lock them out.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

/// A tmpfs init mounted in the sandbox (the cache of password checks, on a
/// disk) and a failed test did not unmount: lazily, so the folder goes.
impl Drop for Sandbox {
    fn drop(&mut self) {
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let root = self.root().to_string_lossy().into_owned();
        for point in mounts.lines().filter_map(|l| l.split(' ').nth(1)) {
            if point.starts_with(&format!("{root}/")) {
                let _ = std::process::Command::new("umount").args(["-l", point]).status();
            }
        }
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox::in_dir(&std::env::temp_dir())
    }

    /// A sandbox in `base` (to choose the filesystem it is on).
    pub fn in_dir(base: &Path) -> Sandbox {
        let dir = tempfile::Builder::new().prefix("ollama-secure-test-").tempdir_in(base).expect("temp dir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let sandbox = Sandbox { dir };
        // What every machine has: /run (the lock) and /var/lib (the journal).
        sandbox.mkdir("run");
        sandbox.mkdir("var/lib");
        sandbox
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (creating folders, 0755) and returns its path.
    pub fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.path(relative);
        self.mkdir(path.parent().unwrap().strip_prefix(self.root()).unwrap().to_str().unwrap());
        fs::write(&path, content).unwrap();
        path
    }

    pub fn mkdir(&self, relative: &str) -> PathBuf {
        let path = self.path(relative);
        fs::create_dir_all(&path).unwrap();
        let mut current = path.as_path();
        while current != self.root() {
            fs::set_permissions(current, fs::Permissions::from_mode(0o755)).unwrap();
            current = current.parent().unwrap();
        }
        path
    }

    /// `tree` of each of these folders of the sandbox, in one map keyed
    /// `DIR/relative/path`: how tests compare the sandbox before and after.
    pub fn trees(&self, dirs: &[&str]) -> std::collections::BTreeMap<String, String> {
        dirs.iter()
            .flat_map(|dir| tree(&self.path(dir)).into_iter().map(move |(k, v)| (format!("{dir}/{k}"), v)))
            .collect()
    }

    /// The `paths:` section that keeps every file of the tool in here.
    pub fn paths_yaml(&self) -> String {
        let p = |rel: &str| self.path(rel).display().to_string();
        format!(
            "paths:\n  nginx_conf: {}\n  nginx_site: {}\n  nginx_site_link: {}\n  htpasswd: {}\n  api_keys: {}\n  access_log: {}\n  nginx_pid: {}\n  auth_cache: {}\n  auth_socket: {}\n  caddyfile: {}\n  caddy_site: {}\n  caddy_pid: {}\n  caddy_log: {}\n  acme_webroot: {}\n  letsencrypt: {}\n  certbot_work: {}\n  certbot_logs: {}\n  renewal_cron: {}\n  renewal_dropin: {}\n  ollama_dropin: {}\n  state: {}\n  lock: {}\n  journal: {}\n  fail2ban: {}\n  caddy_admin: {}\n  apt_keyring: {}\n  apt_source: {}\n",
            p("etc/nginx/nginx.conf"),
            p("etc/nginx/sites-available/ollama"),
            p("etc/nginx/sites-enabled/ollama"),
            p("etc/nginx/ollama.htpasswd"),
            p("etc/nginx/ollama.keys"),
            p("log/ollama-secure.access.log"),
            p("run/nginx.pid"),
            p("run/ollama-secure-auth"),
            p("run/ollama-secure-auth.sock"),
            p("etc/caddy/Caddyfile"),
            p("etc/caddy/ollama.caddy"),
            p("run/caddy.pid"),
            p("log/caddy.log"),
            p("var/lib/ollama-secure/acme"),
            p("etc/letsencrypt"),
            p("var/lib/letsencrypt"),
            p("log/letsencrypt"),
            p("etc/cron.d/ollama-secure-certbot"),
            p("etc/systemd/system/certbot.service.d/ollama-secure.conf"),
            p("etc/systemd/system/ollama.service.d/zz-ollama-secure.conf"),
            p("var/lib/ollama-secure/state.yaml"),
            p("run/ollama-secure.lock"),
            p("var/lib/ollama-secure.journal"),
            p("etc/fail2ban"),
            p("run/caddy-admin.sock"),
            p("etc/apt/keyrings/caddy-stable.asc"),
            p("etc/apt/sources.list.d/caddy-stable.list"),
        )
    }
}

/// Secrets for library-level loads: env vars from a map, files from disk.
pub struct MapSecrets(pub HashMap<String, String>);

impl SecretSource for MapSecrets {
    fn env(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        fs::read_to_string(path)
    }
}

pub fn load_config(yaml: &str, source: &str) -> ollama_secure::error::Result<Config> {
    let answers = Answers::from_yaml(yaml, source)?;
    Config::from_answers(&answers, source, Os::Debian, &MapSecrets(HashMap::new()))
}

/// The desired state for `config` on `facts`, with salts and generated
/// passwords from a seed, and the plan `init` would make for it.
pub fn plan_for(config: &Config, facts: &Facts, seed: u64) -> (Setup, Resolution, Plan) {
    plan_for_goal(config, facts, seed, Goal::Init { install: None })
}

/// The same, for `goal` (`init` that may install packages, say).
pub fn plan_for_goal(config: &Config, facts: &Facts, seed: u64, goal: Goal) -> (Setup, Resolution, Plan) {
    let (setup, resolution) = ollama_secure::setup::from_config(
        config,
        ollama_secure::setup::Installed::default(),
        "2026-11-30T17:52:00Z",
        &mut SeededEntropy(seed),
    )
    .unwrap();
    let plan = ollama_secure::plan::for_setup(&setup, facts, goal).unwrap();
    (setup, resolution, plan)
}

/// The files a plan writes, in order.
pub fn written(plan: &Plan) -> Vec<&RenderedFile> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Write { file, .. } => Some(file),
            _ => None,
        })
        .collect()
}

/// Every answers file in tests/render-inputs, sorted.
/// Snapshots live in the top-level snapshots/ folder, named without the
/// test module (a test moved to another file keeps its snapshot).
pub fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(format!("{ROOT}/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}

pub fn render_inputs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(Path::new(ROOT).join("tests/render-inputs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// A free TCP port on 127.0.0.1 for a server a test starts.
///
/// Not port 0's pick: between releasing such a port and nginx or Caddy
/// binding it, the kernel may give the same ephemeral port to an outgoing
/// connection or another test's listener. Ports below the ephemeral range
/// are never handed out that way; each is given out once per test run.
pub fn free_port() -> u16 {
    use std::sync::Mutex;
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
        .unwrap_or(32768);
    let (first, last) = (10_000u16, low.saturating_sub(1).max(10_001));
    let mut given = GIVEN.lock().unwrap();
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    for n in 0..u64::from(last - first) {
        let port = first + ((seed.wrapping_add(n.wrapping_mul(7919))) % u64::from(last - first)) as u16;
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port between {first} and {last}");
}

/// Runs a command, returning (success, combined output).
pub fn sh(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program} cannot run: {e}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A self-signed certificate and key for `name` (for `nginx -t` with TLS).
pub fn self_signed(cert: &Path, key: &Path, name: &str) {
    fs::create_dir_all(cert.parent().unwrap()).unwrap();
    let (ok, out) = sh(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            &format!("subjectAltName=DNS:{name}"),
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    assert!(ok, "openssl failed: {out}");
}

/// Every file, link and folder below `dir` with its content (or link target)
/// and mode, for "exactly as before" comparisons.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let key = path.strip_prefix(dir).unwrap().display().to_string();
            let value = if meta.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                format!("dir {:o}", meta.mode() & 0o7777)
            } else if meta.is_file() {
                format!("file {:o} {}:{} {:?}", meta.mode() & 0o7777, meta.uid(), meta.gid(), fs::read(&path).unwrap())
            } else {
                format!("special {:o}", meta.mode())
            };
            out.insert(key, value);
        }
    }
    out
}

/// Reads until the first line break (a single read may return part of a line).
pub fn read_first_line(reader: &mut impl std::io::Read) -> String {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while !text.contains(&b'\n') {
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended before its first line");
        text.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(text).unwrap()
}
