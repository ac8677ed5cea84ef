//! Real nginx and Caddy in a sandbox: the main configuration files a Debian
//! machine would have (but pointing into the sandbox), and guards that stop
//! every process a test started, even when the test fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Sandbox;

/// nginx's main config, shaped like Debian's (worker user www-data, gzip on)
/// but with every path inside the sandbox.
pub fn write_nginx_main_conf(sandbox: &Sandbox) -> PathBuf {
    let root = sandbox.root().display().to_string();
    for dir in ["run", "log", "var/nginx", "etc/nginx/sites-available", "etc/nginx/sites-enabled"] {
        sandbox.mkdir(dir);
    }
    sandbox.write(
        "etc/nginx/nginx.conf",
        &format!(
            r#"user www-data;
worker_processes 2;
pid {root}/run/nginx.pid;
error_log {root}/log/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {root}/log/nginx-access.log;
    client_body_temp_path {root}/var/nginx/body;
    proxy_temp_path {root}/var/nginx/proxy;
    fastcgi_temp_path {root}/var/nginx/fastcgi;
    uwsgi_temp_path {root}/var/nginx/uwsgi;
    scgi_temp_path {root}/var/nginx/scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;
    # As on Debian, gzip is on; streamed tokens must still arrive one by one.
    gzip on;
    gzip_types application/json application/x-ndjson text/plain;
    include {root}/etc/nginx/sites-enabled/*;
}}
"#
        ),
    )
}

/// Caddy's main Caddyfile, with its admin API on a free loopback port and
/// its storage in the sandbox. Returns (path, admin port).
pub fn write_caddy_main(sandbox: &Sandbox, extra: &str) -> (PathBuf, u16) {
    let admin = super::free_port();
    let root = sandbox.root().display();
    let path = sandbox.write(
        "etc/caddy/Caddyfile",
        &format!(
            "{{\n\tadmin 127.0.0.1:{admin}\n\tstorage file_system {root}/caddy-data\n\tskip_install_trust\n}}\n{extra}"
        ),
    );
    (path, admin)
}

/// Environment for processes that run Caddy: keep its config and data out of $HOME.
pub fn caddy_env(sandbox: &Sandbox) -> Vec<(String, String)> {
    vec![
        ("XDG_CONFIG_HOME".into(), sandbox.path("xdg-config").display().to_string()),
        ("XDG_DATA_HOME".into(), sandbox.path("xdg-data").display().to_string()),
        ("HOME".into(), sandbox.root().display().to_string()),
    ]
}

/// Runs `caddy ARGS` with its config and data kept in the sandbox. Its
/// output goes to a file, not a pipe: `caddy start` leaves a daemon behind
/// that would hold a pipe open for ever.
pub fn caddy(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
    let log = tempfile::tempfile().unwrap();
    let status = std::process::Command::new("caddy")
        .args(args)
        .envs(caddy_env(sandbox))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log.try_clone().unwrap())
        .status()
        .expect("caddy runs");
    let mut text = Vec::new();
    let mut log = log;
    use std::io::{Read, Seek};
    log.rewind().unwrap();
    log.read_to_end(&mut text).unwrap();
    std::process::Output { status, stdout: Vec::new(), stderr: text }
}

/// `caddy reload` of the sandbox's main Caddyfile (what the tool runs too).
pub fn reload_caddy(sandbox: &Sandbox) {
    let caddyfile = sandbox.path("etc/caddy/Caddyfile");
    let out = caddy(sandbox, &["reload", "--config", caddyfile.to_str().unwrap(), "--adapter", "caddyfile"]);
    assert!(out.status.success(), "caddy reload: {}", String::from_utf8_lossy(&out.stderr));
}

fn read_pid(pid_file: &Path) -> Option<i32> {
    fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    // Signal 0 checks existence; a zombie is dead for our purposes.
    let exists = send_signal(pid, 0);
    exists
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
}

fn send_signal(pid: i32, signal: i32) -> bool {
    std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Stops the daemon whose PID is in `pid_file` when dropped (TERM, then
/// KILL after 5 s), so no test leaves nginx or Caddy running. Drop it before
/// the sandbox that holds the PID file.
pub struct DaemonGuard {
    pub pid_file: PathBuf,
}

impl DaemonGuard {
    pub fn pid(&self) -> Option<i32> {
        read_pid(&self.pid_file)
    }
}

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        let Some(pid) = read_pid(&self.pid_file) else { return };
        if !alive(pid) {
            return;
        }
        send_signal(pid, 15);
        let start = Instant::now();
        while alive(pid) && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(pid) {
            send_signal(pid, 9);
        }
        // nginx workers exit with their master; wait briefly so ports are free.
        std::thread::sleep(Duration::from_millis(50));
    }
}
