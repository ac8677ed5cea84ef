//! A real ACME server for tests: Debian's pebble, with pebble-challtestsrv
//! as its DNS (every name resolves to one loopback address), all on
//! loopback. Validation really happens (no PEBBLE_VA_ALWAYS_VALID): pebble
//! connects to the proxy's HTTP or HTTPS port for the challenge.

use std::fs;
use std::net::{IpAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Sandbox, free_port, sh};

pub struct Pebble {
    children: Vec<Child>,
    pub directory: String,
    /// CA of pebble's own HTTPS listener (certbot's REQUESTS_CA_BUNDLE, Caddy's trusted_roots).
    pub listener_ca: PathBuf,
    management: u16,
    challtestsrv_management: u16,
    dir: PathBuf,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A CA and a certificate for 127.0.0.1/localhost signed by it (the Debian
/// package ships none).
fn listener_certificate(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |name: &str| dir.join(name).display().to_string();
    let run = |args: &[&str]| {
        let (ok, out) = sh("openssl", args);
        assert!(ok, "openssl {args:?}: {out}");
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-days", "2", "-subj", "/CN=pebble listener test CA", "-keyout", &p("ca.key"), "-out", &p("ca.pem")],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-subj", "/CN=localhost", "-keyout", &p("key.pem"), "-out", &p("csr.pem")]].concat());
    fs::write(dir.join("ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        &p("csr.pem"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p("ext"),
        "-out",
        &p("cert.pem"),
    ]);
    (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"))
}

impl Pebble {
    /// Starts pebble validating HTTP-01 on `http_port` and TLS-ALPN-01 on
    /// `tls_port`, with every name resolving to `address`.
    pub fn start(sandbox: &Sandbox, http_port: u16, tls_port: u16, address: IpAddr) -> Pebble {
        let dir = sandbox.mkdir("pebble");
        let (listener_ca, cert, key) = listener_certificate(&dir);
        let (acme, management, dns, challtestsrv_management) = (free_port(), free_port(), free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": cert, "privateKey": key,
            "httpPort": http_port, "tlsPort": tls_port,
            "ocspResponderURL": "", "externalAccountBindingRequired": false
        }});
        fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
        let log = |name: &str| Stdio::from(fs::File::create(dir.join(name)).unwrap());
        let challtestsrv = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv6", "", "-defaultIPv4", &address.to_string()])
            .args(["-dns01", &format!("127.0.0.1:{dns}"), "-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{challtestsrv_management}")])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .expect("pebble-challtestsrv runs (apt-get install pebble)");
        let pebble = Command::new("pebble")
            .args(["-config", dir.join("pebble.json").to_str().unwrap(), "-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            // Pebble rejects 5% of nonces by default; clients retry, but
            // that would only add noise to these tests.
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("pebble runs (apt-get install pebble)");
        let pebble = Pebble {
            children: vec![challtestsrv, pebble],
            directory: format!("https://127.0.0.1:{acme}/dir"),
            listener_ca,
            management,
            challtestsrv_management,
            dir,
        };
        pebble.wait_until_ready();
        pebble
    }

    fn client(&self) -> reqwest::blocking::Client {
        let ca = reqwest::Certificate::from_pem(&fs::read(&self.listener_ca).unwrap()).unwrap();
        reqwest::blocking::Client::builder().add_root_certificate(ca).timeout(Duration::from_secs(5)).build().unwrap()
    }

    fn wait_until_ready(&self) {
        let start = Instant::now();
        let client = self.client();
        while start.elapsed() < Duration::from_secs(20) {
            let dns_up = std::net::TcpStream::connect(("127.0.0.1", self.challtestsrv_management)).is_ok();
            if dns_up && client.get(&self.directory).send().is_ok_and(|r| r.status().is_success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("pebble did not start: {}", fs::read_to_string(self.dir.join("pebble.err")).unwrap_or_default());
    }

    /// The root that signs the certificates pebble issues (new at each start).
    pub fn issuing_root(&self, sandbox: &Sandbox) -> PathBuf {
        let pem =
            self.client().get(format!("https://127.0.0.1:{}/roots/0", self.management)).send().unwrap().text().unwrap();
        assert!(pem.contains("BEGIN CERTIFICATE"), "{pem}");
        sandbox.write("pebble/issuing-root.pem", &pem)
    }

    /// Points every name at another address from now on.
    pub fn resolve_everything_to(&self, address: IpAddr) {
        let resp = reqwest::blocking::Client::new()
            .post(format!("http://127.0.0.1:{}/set-default-ipv4", self.challtestsrv_management))
            .body(serde_json::json!({"ip": address.to_string()}).to_string())
            .send()
            .unwrap();
        assert!(resp.status().is_success());
    }
}

/// A loopback address of this test's own (127.x.y.z) where ports 80 and 443
/// are free, so tests can use the real HTTP and HTTPS ports in parallel.
pub fn private_loopback() -> IpAddr {
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    let seed = (std::process::id() as u64) ^ clock ^ ((free_port() as u64) << 20);
    for n in 0..500u64 {
        let x = seed.wrapping_add(n.wrapping_mul(2654435761));
        let ip = IpAddr::from([127, (x % 250 + 2) as u8, (x / 250 % 250 + 1) as u8, (x / 62500 % 250 + 1) as u8]);
        if TcpListener::bind((ip, 80)).is_ok() && TcpListener::bind((ip, 443)).is_ok() {
            return ip;
        }
    }
    panic!("no free loopback address with ports 80 and 443");
}
