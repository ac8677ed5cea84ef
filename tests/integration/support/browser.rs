//! A real browser for the CORS tests: Debian's `chromium`, headless, loads
//! a page that a small server here serves from a loopback origin of the
//! test's own; the page's script posts what it saw back to `/report` on
//! the same server, which is what the test asserts on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Serves one HTML page at `/` and takes the page's report at `/report`.
pub struct PageServer {
    pub addr: SocketAddr,
    /// The name the browser loads it by (`--host-resolver-rules` maps it).
    pub name: &'static str,
    reports: mpsc::Receiver<String>,
}

impl PageServer {
    /// On `address` (a loopback address) and a free port, loaded as `name`.
    pub fn start(name: &'static str, address: Ipv4Addr, html: String) -> PageServer {
        let listener = TcpListener::bind((address, super::free_port())).expect("the page server binds");
        let addr = listener.local_addr().unwrap();
        let (sender, reports) = mpsc::channel();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (html, sender) = (html.clone(), sender.clone());
                thread::spawn(move || serve(stream, &html, &sender));
            }
        });
        PageServer { addr, name, reports }
    }

    /// The page's origin, as the browser sends it in `Origin`.
    pub fn origin(&self) -> String {
        format!("http://{}:{}", self.name, self.addr.port())
    }

    /// The `--host-resolver-rules` entry that takes its name to its address.
    pub fn resolve_rule(&self) -> String {
        format!("MAP {} {}", self.name, self.addr.ip())
    }

    /// Loads the page in headless Chromium and returns its report (JSON),
    /// stopping the browser (its whole process group) either way.
    /// `resolve` maps the API's name to loopback, as DNS would.
    pub fn report_from_chromium(&self, profile: &Path, resolve: &str) -> serde_json::Value {
        let mut browser = Chromium::launch(profile, resolve, &format!("{}/", self.origin()));
        let report = self.reports.recv_timeout(Duration::from_secs(60));
        let stderr = browser.stop();
        let report = report.unwrap_or_else(|_| panic!("the page sent no report within 60 s; chromium said:\n{stderr}"));
        serde_json::from_str(&report).unwrap_or_else(|e| panic!("the page's report is no JSON ({e}): {report}"))
    }
}

fn serve(stream: TcpStream, html: &str, reports: &mpsc::Sender<String>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let (status, body) = if request_line.starts_with("POST /report ") {
        let mut body = vec![0u8; length];
        let _ = reader.read_exact(&mut body);
        let _ = reports.send(String::from_utf8_lossy(&body).into_owned());
        ("204 No Content", String::new())
    } else if request_line.starts_with("GET / ") {
        ("200 OK", html.to_string())
    } else {
        ("404 Not Found", String::new())
    };
    let _ = write!(
        writer,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

struct Chromium {
    child: Child,
    /// What it prints (a file: a pipe nobody reads could fill and stall it).
    log: std::path::PathBuf,
}

impl Chromium {
    fn launch(profile: &Path, resolve: &str, url: &str) -> Chromium {
        use std::os::unix::process::CommandExt;
        let child = Command::new("chromium")
            .args([
                "--headless=new",
                // Root has no user namespace sandbox here.
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                &format!("--user-data-dir={}", profile.display()),
                &format!("--host-resolver-rules={resolve}"),
                url,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(profile.with_extension("log")).unwrap())
            // Its own process group: the renderers go with it, by its ID.
            .process_group(0)
            .spawn()
            .expect("chromium starts (apt-get install chromium)");
        Chromium { child, log: profile.with_extension("log") }
    }

    /// Stops every process of the browser's group; returns what it printed.
    fn stop(&mut self) -> String {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}
