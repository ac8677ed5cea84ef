//! Authentication must never be the bottleneck: measures, for the nginx and
//! Caddy configurations the tool generates (bcrypt cost 10), on loopback:
//!   - req/s without auth, with a password (Basic), with an API key (Bearer),
//!     and their ratios to no auth (wrk, a trivial upstream);
//!   - a legitimate user's latency (p50/p99) and failures while 8 connections
//!     flood wrong passwords for the same username from the same address;
//!   - streaming: time to first token direct to the stand-in Ollama vs through
//!     the proxy, and whether every token arrives as its own chunk.
//!
//!   - floods as a guesser sends them (a new wrong password every request,
//!     which no cache answers), with chosen passwords at bcrypt cost 12: from
//!     one address (8 connections), unknown usernames (32 connections), and
//!     16 addresses (4 connections each); meanwhile a cached user's p50/p99
//!     and failures, and how long a new login takes, from another address;
//!   - the timing oracle: a wrong password for a known user vs an unknown user;
//!   - `connect` (a local forwarder adding alice's password): req/s and time
//!     to first token through it to the proxy vs directly to the proxy
//!     (goals: req/s at least 0.9 of direct, TTFT within 2 ms);
//!   - several Ollama servers: generations per second with three servers
//!     vs one, each serving one generation at a time (about 3x).
//!
//! Run: `cargo bench --bench auth` (needs nginx, caddy and wrk from apt).
//! BENCH_SECONDS sets the length of each wrk run and flood (default 10);
//! BENCH_FLOODS_ONLY=1 runs the floods alone, BENCH_CONNECT_ONLY=1 `connect`,
//! BENCH_BACKENDS_ONLY=1 several Ollama servers (generations per second
//! with one and with three, each serving one generation at a time).
//! Numbers are printed, never asserted: a test must not depend on timing.

// Test code slices text it made itself; the lint guards the tool's own code.
#![allow(clippy::string_slice)]

#[path = "../tests/integration/support/mod.rs"]
mod support;

use std::fs;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::proxies::{DaemonGuard, write_caddy_main, write_nginx_main_conf};
use support::standin::StandIn;
use support::{Sandbox, Tool, free_port, sh};

const PASSWORD: &str = "a chosen password, hashed at cost 10";
/// A second user, who logs in for the first time during a flood.
const NEWCOMER: &str = "a newcomer's chosen password, cost 12";
/// The key wrk sends as a Bearer token (hashed at cost 10 too).
static KEY: std::sync::LazyLock<ollama_secure::access::ApiKey> =
    std::sync::LazyLock::new(|| ollama_secure::access::ApiKey::generate(&mut ollama_secure::credentials::OsEntropy));

fn seconds() -> u64 {
    std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10)
}

fn basic(user: &str, password: &str) -> String {
    // A tiny base64 for the Authorization header wrk sends.
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

/// A trivial upstream: an nginx answering /api/version from memory, so the
/// proxy in front of it is what gets measured.
fn trivial_upstream(sandbox: &Sandbox) -> (u16, DaemonGuard) {
    let port = free_port();
    let root = sandbox.root().display().to_string();
    sandbox.mkdir("upstream");
    let conf = sandbox.write(
        "upstream/nginx.conf",
        &format!(
            "worker_processes 1;\npid {root}/upstream/nginx.pid;\nerror_log {root}/upstream/error.log;\nevents {{ worker_connections 1024; }}\n\
             http {{ access_log off; client_body_temp_path {root}/upstream/b; proxy_temp_path {root}/upstream/p; fastcgi_temp_path {root}/upstream/f; uwsgi_temp_path {root}/upstream/u; scgi_temp_path {root}/upstream/s;\n\
             server {{ listen 127.0.0.1:{port}; keepalive_requests 100000; location / {{ default_type application/json; return 200 '{{\"version\":\"0.13.0\"}}'; }} }} }}\n"
        ),
    );
    let (ok, out) = sh("nginx", &["-c", conf.to_str().unwrap()]);
    assert!(ok, "{out}");
    (port, DaemonGuard { pid_file: sandbox.path("upstream/nginx.pid") })
}

/// A reference forwarder: an nginx (2 workers, as connect has 2 threads)
/// adding alice's password to every request it passes to `proxy_port`,
/// unbuffered both ways, as connect does. What any forwarder costs here.
fn nginx_forwarder(sandbox: &Sandbox, proxy_port: u16) -> (u16, DaemonGuard) {
    let port = free_port();
    let root = sandbox.root().display().to_string();
    sandbox.mkdir("forwarder");
    let conf = sandbox.write(
        "forwarder/nginx.conf",
        &format!(
            "worker_processes 2;\npid {root}/forwarder/nginx.pid;\nerror_log {root}/forwarder/error.log;\nevents {{ worker_connections 1024; }}\n\
             http {{ access_log off; client_body_temp_path {root}/forwarder/b; proxy_temp_path {root}/forwarder/p; fastcgi_temp_path {root}/forwarder/f; uwsgi_temp_path {root}/forwarder/u; scgi_temp_path {root}/forwarder/s;\n\
             upstream site {{ server 127.0.0.1:{proxy_port}; keepalive 64; }}\n\
             server {{ listen 127.0.0.1:{port}; keepalive_requests 100000; location / {{ proxy_pass http://site; proxy_http_version 1.1; \
             proxy_set_header Connection \"\"; proxy_set_header Host 127.0.0.1:{proxy_port}; proxy_set_header Authorization \"{}\"; \
             proxy_buffering off; proxy_request_buffering off; }} }} }}\n",
            basic("alice", PASSWORD)
        ),
    );
    let (ok, out) = sh("nginx", &["-c", conf.to_str().unwrap()]);
    assert!(ok, "{out}");
    (port, DaemonGuard { pid_file: sandbox.path("forwarder/nginx.pid") })
}

struct Proxy {
    _guard: DaemonGuard,
    sandbox: Sandbox,
    proxy: &'static str,
    port: u16,
}

impl Proxy {
    fn start(proxy: &'static str, upstream: &str) -> Proxy {
        Proxy::start_with_cost(proxy, upstream, 10)
    }

    fn start_with_cost(proxy: &'static str, upstream: &str, cost: u32) -> Proxy {
        let sandbox = Sandbox::new();
        let pid = if proxy == "nginx" {
            write_nginx_main_conf(&sandbox);
            // The benchmark measures the proxy, not its access log.
            let conf = sandbox.path("etc/nginx/nginx.conf");
            let text = fs::read_to_string(&conf).unwrap();
            fs::write(
                &conf,
                text.replace(
                    &format!("access_log {}/log/nginx-access.log;", sandbox.root().display()),
                    "access_log off;",
                ),
            )
            .unwrap();
            "run/nginx.pid"
        } else {
            write_caddy_main(&sandbox, "");
            sandbox.mkdir("run");
            "run/caddy.pid"
        };
        let port = free_port();
        let answers = sandbox.write(
            "answers.yaml",
            &format!(
                "proxy: {proxy}\nlisten_address: 127.0.0.1\nport: {port}\nupstream: {upstream}\n\
                 users:\n  - {{username: alice, password_env: BENCH_PASSWORD}}\n  - {{username: bob, password_env: BENCH_NEWCOMER}}\n\
                 api_keys:\n  - {{name: bench, key_env: BENCH_KEY}}\nbcrypt_cost: {cost}\n{}",
                sandbox.paths_yaml()
            ),
        );
        Tool::new()
            .env("BENCH_PASSWORD", PASSWORD)
            .env("BENCH_NEWCOMER", NEWCOMER)
            .env("BENCH_KEY", KEY.text().expose())
            .caddy_home(&sandbox)
            .args(["init", "--no-check", "--answers", answers.to_str().unwrap()])
            .any_stdout()
            .run();
        Proxy { _guard: DaemonGuard { pid_file: sandbox.path(pid) }, sandbox, proxy, port }
    }

    fn site(&self) -> std::path::PathBuf {
        self.sandbox.path(if self.proxy == "nginx" {
            "etc/nginx/sites-available/ollama"
        } else {
            "etc/caddy/ollama.caddy"
        })
    }

    /// Reloads the proxy with `text` as its site file.
    fn load_site(&self, text: &str) {
        fs::write(self.site(), text).unwrap();
        if self.proxy == "nginx" {
            let conf = self.sandbox.path("etc/nginx/nginx.conf");
            let out = Command::new("nginx").args(["-s", "reload", "-c", conf.to_str().unwrap()]).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(700)); // old workers leave
        } else {
            support::proxies::reload_caddy(&self.sandbox);
        }
    }

    /// The generated site with authentication taken out (the baseline).
    fn without_auth(text: &str) -> String {
        let mut out = String::new();
        let mut skipping = false;
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with("auth_request ") || t.starts_with("error_page 403") {
                continue;
            }
            // Without a checked credential there is no role: go where an
            // allowed request goes, as the authenticated runs do.
            if t.starts_with("try_files /.ollama-secure-nonexistent @ollama_secure_$") {
                out.push_str("        try_files /.ollama-secure-nonexistent @ollama_secure_allowed;\n");
                continue;
            }
            if t.starts_with("basicauth ") && t.ends_with('{') {
                skipping = true;
                continue;
            }
            if skipping {
                skipping = t != "}";
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

struct Wrk {
    requests_per_second: f64,
    p99_ms: f64,
    non_2xx: u64,
}

fn wrk(url: &str, connections: u32, secs: u64, authorization: Option<&str>) -> Wrk {
    let mut c = Command::new("wrk");
    c.args(["-t2", &format!("-c{connections}"), &format!("-d{secs}s"), "--latency", url]);
    if let Some(a) = authorization {
        c.args(["-H", &format!("Authorization: {a}")]);
    }
    let out = c.output().expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let number_after = |label: &str| -> Option<f64> {
        text.lines().find(|l| l.trim_start().starts_with(label)).and_then(|l| l.split_whitespace().nth(1)).and_then(
            |v| {
                let (num, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
                let n: f64 = num.parse().ok()?;
                Some(match unit {
                    "us" => n / 1000.0,
                    "s" => n * 1000.0,
                    _ => n,
                })
            },
        )
    };
    Wrk {
        requests_per_second: text
            .lines()
            .find(|l| l.starts_with("Requests/sec:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        p99_ms: number_after("99%").unwrap_or(f64::NAN),
        non_2xx: text
            .lines()
            .find(|l| l.contains("Non-2xx"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A legitimate user's sequential requests while a flood of wrong passwords
/// for the same username runs from the same address.
fn under_flood(p: &Proxy, secs: u64) -> (f64, f64, usize, usize) {
    let url = format!("http://127.0.0.1:{}/api/version", p.port);
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    // Warm: the first check of the right password is the only one to pay bcrypt.
    assert_eq!(client.get(&url).basic_auth("alice", Some(PASSWORD)).send().unwrap().status(), 200);
    let mut flood = Command::new("wrk")
        .args([
            "-t1",
            "-c8",
            &format!("-d{}s", secs + 2),
            &url,
            "-H",
            &format!("Authorization: {}", basic("alice", "a wrong guess")),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let (mut latencies, mut failures) = (Vec::new(), 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        let t = Instant::now();
        let ok = client.get(&url).basic_auth("alice", Some(PASSWORD)).send().is_ok_and(|r| r.status() == 200);
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        failures += usize::from(!ok);
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = flood.kill();
    let _ = flood.wait();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (percentile(&latencies, 0.5), percentile(&latencies, 0.99), failures, latencies.len())
}

/// The credentials of guess number `n`.
type Guess = fn(u64) -> (String, String);

/// Guessers: `per_source` connections from each of `sources`, each request
/// with credentials no one has sent before (`guess(n)`), until dropped.
struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Flood {
    fn start(url: &str, sources: &[Ipv4Addr], per_source: usize, guess: Guess) -> Flood {
        let (stop, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let mut threads = Vec::new();
        for source in sources {
            for _ in 0..per_source {
                let (stop, sent, url, source) = (stop.clone(), sent.clone(), url.to_string(), *source);
                threads.push(std::thread::spawn(move || {
                    let client = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(30))
                        .local_address(IpAddr::V4(source))
                        .build()
                        .unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        let (user, password) = guess(sent.fetch_add(1, Ordering::Relaxed));
                        let _ = client.get(&url).basic_auth(user, Some(password)).send();
                    }
                }));
            }
        }
        Flood { stop, sent, threads }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn wrong_password(n: u64) -> (String, String) {
    ("alice".into(), format!("wrong guess number {n}"))
}

fn unknown_user(n: u64) -> (String, String) {
    (format!("nobody{n}"), format!("a guess {n}"))
}

struct UnderFlood {
    p50: f64,
    p99: f64,
    failures: usize,
    total: usize,
    /// The newcomer's first login: its status (0: no answer) and time.
    newcomer: (u16, f64),
    guesses_per_second: f64,
}

/// A cached user's requests from 127.0.0.9 during `flood`, and, half way,
/// a user who logs in for the first time (bob, not cached).
fn legit_during(url: &str, secs: u64, flood: Flood) -> UnderFlood {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)))
        .build()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let before = flood.sent.load(Ordering::Relaxed);
    // The newcomer asks on its own, half way, whatever the cached user waits for.
    let newcomer = {
        let (client, url) = (client.clone(), url.to_string());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(secs / 2));
            let t = Instant::now();
            let status = client.get(&url).basic_auth("bob", Some(NEWCOMER)).send().map_or(0, |r| r.status().as_u16());
            (status, t.elapsed().as_secs_f64() * 1000.0)
        })
    };
    let (mut latencies, mut failures) = (Vec::new(), 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        let t = Instant::now();
        let ok = client.get(url).basic_auth("alice", Some(PASSWORD)).send().is_ok_and(|r| r.status() == 200);
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        failures += usize::from(!ok);
        std::thread::sleep(Duration::from_millis(20));
    }
    let guesses = flood.sent.load(Ordering::Relaxed) - before;
    let elapsed = start.elapsed().as_secs_f64();
    let newcomer = newcomer.join().unwrap();
    drop(flood);
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    UnderFlood {
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        failures,
        total: latencies.len(),
        newcomer,
        guesses_per_second: guesses as f64 / elapsed,
    }
}

/// Median answer time of a wrong password for alice, and for unknown
/// users, asked one at a time from 127.0.0.8 with nothing else running.
fn oracle(url: &str) -> (f64, f64) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 8)))
        .build()
        .unwrap();
    let median = |guess: Guess, offset: u64| {
        let mut times: Vec<f64> = (0..9)
            .map(|i| {
                let (user, password) = guess(offset + i);
                let t = Instant::now();
                let _ = client.get(url).basic_auth(user, Some(password)).send();
                // Past the per-address pace of misses (nginx: 2/s).
                std::thread::sleep(Duration::from_millis(600));
                t.elapsed().as_secs_f64() * 1000.0 - 600.0
            })
            .collect();
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        times[times.len() / 2]
    };
    (median(wrong_password, 1 << 40), median(unknown_user, 1 << 41))
}

fn floods(proxy: &'static str, upstream: &str, secs: u64) {
    let p = Proxy::start_with_cost(proxy, upstream, 12);
    let url = format!("http://127.0.0.1:{}/api/version", p.port);
    let warm = reqwest::blocking::Client::new().get(&url).basic_auth("alice", Some(PASSWORD)).send().unwrap();
    assert_eq!(warm.status(), 200);
    let (known, unknown) = oracle(&url);
    let one = [Ipv4Addr::new(127, 0, 0, 2)];
    let sixteen: Vec<Ipv4Addr> = (10..26).map(|i| Ipv4Addr::new(127, 0, 0, i)).collect();
    let scenarios: [(&str, &[Ipv4Addr], usize, Guess); 3] = [
        ("distinct wrong passwords, 1 address x 8", &one, 8, wrong_password),
        ("unknown usernames, 1 address x 32", &one, 32, unknown_user),
        ("distinct wrong passwords, 16 addresses x 4", &sixteen, 4, wrong_password),
    ];
    for (i, (name, sources, per_source, guess)) in scenarios.into_iter().enumerate() {
        // A fresh proxy per flood: no scenario inherits another's queue.
        let p = if i == 0 { None } else { Some(Proxy::start_with_cost(proxy, upstream, 12)) };
        let url = p.as_ref().map_or(url.clone(), |p| format!("http://127.0.0.1:{}/api/version", p.port));
        let warm = reqwest::blocking::Client::new().get(&url).basic_auth("alice", Some(PASSWORD)).send().unwrap();
        assert_eq!(warm.status(), 200);
        let r = legit_during(&url, secs, Flood::start(&url, sources, per_source, guess));
        println!(
            "| {proxy} | {name} | {:.0} | {:.1} / {:.1} ms | {} of {} | {} |",
            r.guesses_per_second,
            r.p50,
            r.p99,
            r.failures,
            r.total,
            match r.newcomer {
                (0, ms) => format!("no answer after {ms:.0} ms"),
                (status, ms) => format!("{status} in {ms:.0} ms"),
            }
        );
    }
    println!(
        "| {proxy} | timing oracle: wrong password, known user / unknown user | | {known:.1} / {unknown:.1} ms | | |"
    );
}

/// Median time to the first streamed token, and the median number of
/// bursts the 6 ndjson lines of a generation arrive in (6 = every token
/// its own chunk; the stand-in paces tokens 40 ms apart).
fn ttft(url: &str, auth: bool) -> (f64, usize) {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut firsts = Vec::new();
    let mut all_bursts = Vec::new();
    for _ in 0..25 {
        let mut request =
            client.post(format!("{url}/api/generate")).json(&serde_json::json!({"model": "tinyllama", "prompt": "hi"}));
        if auth {
            request = request.basic_auth("alice", Some(PASSWORD));
        }
        let start = Instant::now();
        let mut resp = request.send().unwrap();
        let mut buf = [0u8; 4096];
        let mut arrivals = Vec::new();
        loop {
            let n = resp.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            arrivals.push(start.elapsed());
        }
        firsts.push(arrivals[0].as_secs_f64() * 1000.0);
        all_bursts.push(arrivals.windows(2).filter(|w| w[1] - w[0] > Duration::from_millis(10)).count() + 1);
    }
    firsts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    all_bursts.sort();
    (percentile(&firsts, 0.5), all_bursts[all_bursts.len() / 2])
}

/// A running `ollama-secure connect` with alice's password, on a free port.
struct Connect(std::process::Child, u16);

impl Connect {
    fn start(proxy_port: u16) -> Connect {
        let port = free_port();
        let mut child = Command::new(support::BIN)
            .args(["connect", "--url", &format!("http://127.0.0.1:{proxy_port}"), "--username", "alice"])
            .args(["--password-env", "BENCH_PASSWORD", "--listen", &format!("127.0.0.1:{port}")])
            .env("BENCH_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // It prints its first line once it listens.
        let mut line = [0u8; 1];
        child.stdout.as_mut().unwrap().read_exact(&mut line).expect("connect starts");
        Connect(child, port)
    }
}

impl Drop for Connect {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Through `connect` vs directly to the proxy, alternating runs, medians.
/// Requests per second directly to the proxy (with alice's password),
/// through `connect` and through the reference nginx forwarder (both with
/// none), alternating runs, medians.
fn connect_throughput(proxy: &'static str, upstream: &str, secs: u64) -> [f64; 3] {
    let p = Proxy::start(proxy, upstream);
    let connect = Connect::start(p.port);
    let forwarder_sandbox = Sandbox::new();
    let (forwarder, _forwarder) = nginx_forwarder(&forwarder_sandbox, p.port);
    let authorization = basic("alice", PASSWORD);
    let mut runs = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..5 {
        let direct = wrk(&format!("http://127.0.0.1:{}/api/version", p.port), 32, secs, Some(&authorization));
        assert_eq!(direct.non_2xx, 0, "direct requests failed");
        runs[0].push(direct.requests_per_second);
        let forwarded = wrk(&format!("http://127.0.0.1:{}/api/version", connect.1), 32, secs, None);
        assert_eq!(forwarded.non_2xx, 0, "requests through connect failed");
        runs[1].push(forwarded.requests_per_second);
        let reference = wrk(&format!("http://127.0.0.1:{forwarder}/api/version"), 32, secs, None);
        assert_eq!(reference.non_2xx, 0, "requests through the nginx forwarder failed");
        runs[2].push(reference.requests_per_second);
    }
    runs.map(|mut runs| {
        runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        runs[runs.len() / 2]
    })
}

/// Through `connect` vs directly to the proxy: throughput behind the
/// stand-in Ollama and behind a trivial upstream (where the proxy's and
/// connect's own work is all there is), time to first token.
fn through_connect(proxy: &'static str, upstream_port: u16, ollama: &StandIn, secs: u64) {
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    let streaming = Proxy::start(proxy, &ollama.upstream());
    let connect = Connect::start(streaming.port);
    let (direct_ttft, direct_bursts) = ttft(&format!("http://127.0.0.1:{}", streaming.port), true);
    let (forwarded_ttft, forwarded_bursts) = ttft(&format!("http://127.0.0.1:{}", connect.1), false);
    drop((connect, streaming));
    for (behind, upstream) in
        [("stand-in Ollama", ollama.upstream()), ("trivial upstream", format!("127.0.0.1:{upstream_port}"))]
    {
        let [direct, forwarded, reference] = connect_throughput(proxy, &upstream, secs);
        let ratio = forwarded / direct;
        println!(
            "| {proxy} | {behind} | {direct:.0} | {forwarded:.0} | {ratio:.2} ({}) | {reference:.0} ({:.2}) | {direct_ttft:.2} ms | {forwarded_ttft:.2} ms | {:+.2} ms ({}) | {direct_bursts} / {forwarded_bursts} |",
            verdict(ratio >= 0.9),
            reference / direct,
            forwarded_ttft - direct_ttft,
            verdict(forwarded_ttft - direct_ttft <= 2.0),
        );
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would run this too.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs = seconds();
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        sh("nginx", &["-v"]).1.trim().replace("nginx version: ", "")
    );
    println!(
        "ollama-secure auth benchmark ({machine}; caddy {}), bcrypt cost 10; req/s are medians of 5 alternating {secs} s wrk runs (2 threads, 32 connections)\n",
        sh("caddy", &["version"]).1.trim()
    );
    println!(
        "| proxy | no auth req/s | Basic req/s | ratio | Bearer key req/s | ratio | legit p50 / p99 under flood | legit failures | TTFT direct | TTFT proxied | bursts per 6 tokens (direct / proxied) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let upstream_sandbox = Sandbox::new();
    let (upstream_port, _upstream) = trivial_upstream(&upstream_sandbox);
    let ollama = StandIn::start();
    let (direct_ttft, direct_bursts) = ttft(&ollama.url(), false);
    if std::env::var_os("BENCH_BACKENDS_ONLY").is_some() {
        backends_table(secs);
        return;
    }
    if std::env::var_os("BENCH_CONNECT_ONLY").is_some() {
        connect_table(upstream_port, &ollama, secs);
        return;
    }
    // BENCH_FLOODS_ONLY=1: the flood table alone.
    let throughput = std::env::var_os("BENCH_FLOODS_ONLY").is_none();
    for proxy in ["nginx", "caddy"].into_iter().filter(|_| throughput) {
        let p = Proxy::start(proxy, &format!("127.0.0.1:{upstream_port}"));
        let url = format!("http://127.0.0.1:{}/api/version", p.port);
        let generated = fs::read_to_string(p.site()).unwrap();
        // Alternating runs, medians of five: the machine's noise hits both sides alike.
        let (mut no_auth_runs, mut auth_runs, mut key_runs) = (Vec::new(), Vec::new(), Vec::new());
        let bearer = format!("Bearer {}", KEY.text().expose());
        for _ in 0..5 {
            p.load_site(&Proxy::without_auth(&generated));
            let no_auth = wrk(&url, 32, secs, None);
            assert_eq!(no_auth.non_2xx, 0, "requests without authentication failed: the baseline is broken");
            no_auth_runs.push(no_auth);
            p.load_site(&generated);
            let warm = reqwest::blocking::Client::new().get(&url).basic_auth("alice", Some(PASSWORD)).send().unwrap();
            assert_eq!(warm.status(), 200);
            let auth = wrk(&url, 32, secs, Some(&basic("alice", PASSWORD)));
            assert_eq!(auth.non_2xx, 0, "authenticated requests failed");
            auth_runs.push(auth);
            let warm = reqwest::blocking::Client::new().get(&url).header("Authorization", &bearer).send().unwrap();
            assert_eq!(warm.status(), 200);
            let key = wrk(&url, 32, secs, Some(&bearer));
            assert_eq!(key.non_2xx, 0, "requests with the key failed");
            key_runs.push(key);
        }
        let median = |runs: &mut Vec<Wrk>| {
            runs.sort_by(|a, b| a.requests_per_second.partial_cmp(&b.requests_per_second).unwrap());
            runs.remove(runs.len() / 2)
        };
        let (no_auth, auth, key) = (median(&mut no_auth_runs), median(&mut auth_runs), median(&mut key_runs));
        let (p50, p99, failures, total) = under_flood(&p, secs);
        drop(p);
        let streaming = Proxy::start(proxy, &ollama.upstream());
        let (proxied_ttft, bursts) = ttft(&format!("http://127.0.0.1:{}", streaming.port), true);
        println!(
            "| {proxy} | {:.0} | {:.0} (p99 {:.1} ms) | {:.2} | {:.0} (p99 {:.1} ms) | {:.2} | {p50:.1} / {p99:.1} ms | {failures} of {total} | {direct_ttft:.2} ms | {proxied_ttft:.2} ms | {direct_bursts} / {bursts} |",
            no_auth.requests_per_second,
            auth.requests_per_second,
            auth.p99_ms,
            auth.requests_per_second / no_auth.requests_per_second,
            key.requests_per_second,
            key.p99_ms,
            key.requests_per_second / no_auth.requests_per_second,
        );
    }
    if throughput {
        connect_table(upstream_port, &ollama, secs);
        backends_table(secs);
    }
    println!(
        "\nFloods, chosen passwords at bcrypt cost 12; a cached user (alice) asks from 127.0.0.9 every 20 ms; half way, bob logs in for the first time\n"
    );
    println!("| proxy | flood | guesses/s answered | cached user p50 / p99 | failures | new login |");
    println!("|---|---|---|---|---|---|");
    for proxy in ["nginx", "caddy"] {
        floods(proxy, &format!("127.0.0.1:{upstream_port}"), secs);
    }
}

/// Generations per second through the proxy with one and with three
/// stand-ins that each generate for one request at a time (Ollama's
/// default), 12 clients asking in a loop: a backend-bound workload, where
/// three servers should give about three times one.
fn backends_table(secs: u64) {
    println!(
        "\nSeveral Ollama servers (each one generation at a time, about 0.3 s each), 12 clients, alice's password\n"
    );
    println!("| proxy | 1 server, generations/s | 3 servers, generations/s | ratio (about 3) | spread over the 3 |");
    println!("|---|---|---|---|---|");
    for proxy in ["nginx", "caddy"] {
        let run = |servers: &[StandIn]| -> f64 {
            let list: Vec<String> = servers.iter().map(StandIn::upstream).collect();
            let p = Proxy::start(proxy, &format!("[{}]", list.join(", ")));
            let url = format!("http://127.0.0.1:{}/api/generate", p.port);
            let done = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let clients: Vec<_> = (0..12)
                .map(|_| {
                    let (url, done, stop) = (url.clone(), done.clone(), stop.clone());
                    std::thread::spawn(move || {
                        let client =
                            reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
                        let body = serde_json::json!({"model": "tinyllama", "prompt": "hi"});
                        while !stop.load(Ordering::SeqCst) {
                            let answer =
                                client.post(&url).basic_auth("alice", Some(PASSWORD)).json(&body).send().unwrap();
                            assert_eq!(answer.status(), 200, "a generation failed");
                            answer.text().unwrap();
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            // Counted after a second of warm-up, over the run.
            std::thread::sleep(Duration::from_secs(1));
            let (start, before) = (Instant::now(), done.load(Ordering::SeqCst));
            std::thread::sleep(Duration::from_secs(secs));
            let rate = (done.load(Ordering::SeqCst) - before) as f64 / start.elapsed().as_secs_f64();
            stop.store(true, Ordering::SeqCst);
            for client in clients {
                client.join().unwrap();
            }
            rate
        };
        let one = run(&[StandIn::start_one_at_a_time()]);
        let three_servers =
            [StandIn::start_one_at_a_time(), StandIn::start_one_at_a_time(), StandIn::start_one_at_a_time()];
        let three = run(&three_servers);
        let spread: Vec<String> = three_servers
            .iter()
            .map(|s| s.seen().iter().filter(|seen| seen.path == "/api/generate").count().to_string())
            .collect();
        println!("| {proxy} | {one:.1} | {three:.1} | {:.2} | {} |", three / one, spread.join(" / "));
    }
}

fn connect_table(upstream_port: u16, ollama: &StandIn, secs: u64) {
    println!(
        "\n`connect` (alice's password added by a local forwarder) vs directly to the proxy with it; 32 connections\n"
    );
    println!(
        "| proxy | behind the proxy | direct req/s | through connect req/s | ratio (goal >= 0.9) | an nginx forwarder instead req/s (ratio) | TTFT direct | TTFT through connect | difference (goal <= 2 ms) | bursts per 6 tokens (direct / connect) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for proxy in ["nginx", "caddy"] {
        through_connect(proxy, upstream_port, ollama, secs);
    }
}
