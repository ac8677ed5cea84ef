//! `ban`: the real fail2ban, started by `init`, reads the site's access log
//! and bans an address after repeated failed logins, through iptables.
//! Each test runs itself again inside a network namespace of its own
//! (`unshare --net`, only loopback), so no firewall rule reaches the
//! machine's own network, and parallel tests do not see each other's.
//! 127.0.0.2 plays the attacker, 127.0.0.3 a legitimate client elsewhere.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::deployment::{ALICE, ALICE_ONLY, DOMAIN, Deployment};
use crate::support::proxies::DaemonGuard;

const INSIDE: &str = "OLLAMA_SECURE_TEST_NETWORK_NAMESPACE";

/// Runs `test` again in a new network namespace; true when this call was
/// the one outside it (the caller then returns).
fn ran_in_its_own_network_namespace(test: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        return false;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", r#"ip link set lo up && exec "$0" --exact "$1" --nocapture --test-threads 1"#])
        .arg(&exe)
        .arg(test)
        .env(INSIDE, "1")
        .output()
        .expect("unshare runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{test} failed in its network namespace:\n{stdout}\n{stderr}");
    assert!(stdout.contains("test result: ok. 1 passed"), "{test} did not run:\n{stdout}\n{stderr}");
    true
}

/// fail2ban's configuration as Debian's package installs it (its jail.conf,
/// paths and iptables actions; no jail enabled), in the sandbox, with the
/// server's socket, PID file and log there too. A jail.local makes it a
/// server whose clients come from elsewhere: only 127.0.0.1, where `init`
/// checks from, is never banned (Debian's `ignoreself` would spare every
/// loopback address).
fn fail2ban_config(d: &Deployment) -> std::path::PathBuf {
    let stock = Path::new("/etc/fail2ban");
    let dir = d.sandbox.path("etc/fail2ban");
    for sub in ["jail.d", "filter.d", "action.d"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for file in ["jail.conf", "paths-common.conf", "paths-debian.conf"] {
        fs::copy(stock.join(file), dir.join(file)).unwrap();
    }
    for action in ["iptables-multiport.conf", "iptables.conf"] {
        fs::copy(stock.join("action.d").join(action), dir.join("action.d").join(action)).unwrap();
    }
    fs::create_dir_all(d.sandbox.path("run")).unwrap();
    fs::write(
        dir.join("fail2ban.conf"),
        format!(
            "[Definition]\nloglevel = INFO\nlogtarget = {}\nsocket = {}\npidfile = {}\ndbfile = :memory:\n",
            d.sandbox.path("log/fail2ban.log").display(),
            d.sandbox.path("run/fail2ban.sock").display(),
            d.sandbox.path("run/fail2ban.pid").display()
        ),
    )
    .unwrap();
    fs::write(dir.join("jail.local"), "[DEFAULT]\nignoreself = false\nignoreip = 127.0.0.1\n").unwrap();
    dir
}

/// A new connection per request: a ban refuses new connections at once,
/// while packets of one already open only go unanswered until it ends.
fn client_from(d: &Deployment, source: Ipv4Addr) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .local_address(IpAddr::V4(source))
        .resolve(DOMAIN, SocketAddr::new(d.address, d.port))
        .build()
        .unwrap()
}

/// The status, or `None` when the connection is refused (banned).
fn status(client: &reqwest::blocking::Client, d: &Deployment, password: Option<&str>) -> Option<u16> {
    let mut request = client.get(d.url("/api/version"));
    if let Some(password) = password {
        request = request.basic_auth("alice", Some(password));
    }
    match request.send() {
        Ok(reply) => Some(reply.status().as_u16()),
        Err(e) if e.is_connect() => None,
        Err(e) => panic!("neither an answer nor a refused connection: {e}"),
    }
}

fn within(limit: Duration, what: impl Fn() -> String, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "not within {} s: {}", limit.as_secs(), what());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn iptables_rules() -> String {
    String::from_utf8_lossy(&Command::new("iptables").args(["-S"]).output().unwrap().stdout).into_owned()
}

fn an_address_that_keeps_failing_is_banned_for_a_while(proxy: &'static str) {
    let d = Deployment::prepare(proxy, ALICE_ONLY);
    let config = fail2ban_config(&d);
    let fail2ban = DaemonGuard { pid_file: d.sandbox.path("run/fail2ban.pid") };
    let answers = fs::read_to_string(&d.answers).unwrap();
    fs::write(&d.answers, format!("{answers}ban: {{after: 3, within: 10m, for: 6s}}\n")).unwrap();

    d.init()
        .args(["--dry-run"])
        .stdout_has(&format!("validate fail2ban's configuration: run `fail2ban-client -c {} -t`", config.display()))
        .stdout_has(&format!("start fail2ban: run `fail2ban-client -c {} start`", config.display()))
        .stdout_has(&format!(
            "verify that fail2ban runs our jail: run `fail2ban-client -c {} status ollama-secure`, until it answers (up to 15 s)",
            config.display()
        ))
        .run();
    d.init()
        .stdout_has("fail2ban started")
        .stdout_has("fail2ban runs the ollama-secure jail")
        .stdout_has("checks passed")
        .run();
    assert!(fail2ban.pid().is_some(), "fail2ban does not run");
    d.init().stdout_has("Nothing to change").run();

    let attacker = client_from(&d, Ipv4Addr::new(127, 0, 0, 2));
    let elsewhere = client_from(&d, Ipv4Addr::new(127, 0, 0, 3));
    // Requests without credentials are a client's first try: no failure.
    for _ in 0..5 {
        assert_eq!(status(&attacker, &d, None), Some(401));
    }
    for n in 0..2 {
        assert_eq!(status(&attacker, &d, Some(&format!("wrong guess {n}"))), Some(401));
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(status(&attacker, &d, Some(ALICE)), Some(200), "{proxy}: banned before the third failure");

    assert_eq!(status(&attacker, &d, Some("wrong guess 2")), Some(401));
    let logs = || {
        let read = |p: &str| fs::read_to_string(d.sandbox.path(p)).unwrap_or_else(|e| format!("({e})"));
        let status = Command::new("fail2ban-client")
            .args(["-c", &config.display().to_string(), "status", "ollama-secure"])
            .output()
            .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
            .unwrap_or_default();
        format!(
            "the attacker is banned\n--- access log:\n{}\n--- fail2ban's log:\n{}\n--- its status:\n{status}",
            read("log/ollama-secure.access.log"),
            read("log/fail2ban.log")
        )
    };
    within(Duration::from_secs(15), logs, || status(&attacker, &d, None).is_none());
    assert!(iptables_rules().contains("-A f2b-ollama-secure -s 127.0.0.2/32 -j REJECT"), "{}", iptables_rules());
    // Refused even with the right password; everyone else is served.
    assert_eq!(status(&attacker, &d, Some(ALICE)), None);
    assert_eq!(status(&elsewhere, &d, None), Some(401));
    assert_eq!(status(&elsewhere, &d, Some(ALICE)), Some(200));

    // The ban ends after `for`.
    within(Duration::from_secs(30), || "the ban expires".into(), || status(&attacker, &d, None) == Some(401));

    // Without `ban` in the answers, the jail and filter go, and so does
    // the fail2ban that init started; with it again, it starts again.
    fs::write(&d.answers, &answers).unwrap();
    d.init().stdout_has("the fail2ban jail ollama-secure wrote goes").stdout_has("fail2ban stopped").run();
    assert!(!config.join("jail.d/ollama-secure.conf").exists());
    within(Duration::from_secs(10), || "fail2ban exits".into(), || fail2ban.pid().is_none_or(|pid| !pid_alive(pid)));
    assert!(!iptables_rules().contains("f2b-ollama-secure"), "{}", iptables_rules());
    fs::write(&d.answers, format!("{answers}ban: {{after: 3, within: 10m, for: 6s}}\n")).unwrap();
    d.init().stdout_has("fail2ban started").run();
    // A fail2ban running without our jail (started before it was there)
    // is found and told to read it.
    let client = |verb: &str| {
        let out = Command::new("fail2ban-client").arg("-c").arg(&config).args(verb.split(' ')).output().unwrap();
        assert!(out.status.success(), "{verb}: {}", String::from_utf8_lossy(&out.stderr));
    };
    client("stop ollama-secure");
    d.init()
        .stdout_has("fail2ban runs without the ollama-secure jail")
        .stdout_has("fail2ban runs the ollama-secure jail")
        .run();

    // uninstall stops the fail2ban it started; its rules go with it.
    d.uninstall(false).stdout_has("fail2ban stopped").run();
    assert!(!d.sandbox.path("etc/fail2ban/jail.d/ollama-secure.conf").exists());
    assert!(!d.sandbox.path("etc/fail2ban/filter.d/ollama-secure.conf").exists());
    within(Duration::from_secs(10), || "fail2ban exits".into(), || fail2ban.pid().is_none_or(|pid| !pid_alive(pid)));
    assert!(!iptables_rules().contains("f2b-ollama-secure"), "{}", iptables_rules());
}

fn pid_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
}

#[test]
fn nginx_bans_an_address_that_keeps_failing() {
    if ran_in_its_own_network_namespace("bans::nginx_bans_an_address_that_keeps_failing") {
        return;
    }
    an_address_that_keeps_failing_is_banned_for_a_while("nginx");
}

#[test]
fn caddy_bans_an_address_that_keeps_failing() {
    if ran_in_its_own_network_namespace("bans::caddy_bans_an_address_that_keeps_failing") {
        return;
    }
    an_address_that_keeps_failing_is_banned_for_a_while("caddy");
}

/// Debian's own sshd jail cannot start where no /var/log/auth.log exists
/// (no rsyslog): init says so, names the fix, and changes nothing. No
/// fail2ban is started here, so no namespace is needed.
#[test]
fn a_fail2ban_that_fails_before_our_jail_is_refused_with_the_fix() {
    let d = Deployment::prepare("nginx", ALICE_ONLY);
    let config = fail2ban_config(&d);
    for filter in ["sshd.conf", "common.conf"] {
        fs::copy(Path::new("/etc/fail2ban/filter.d").join(filter), config.join("filter.d").join(filter)).unwrap();
    }
    let missing = d.sandbox.path("log/auth.log");
    fs::write(
        config.join("jail.d/defaults-debian.conf"),
        format!("[sshd]\nenabled = true\nbackend = polling\nlogpath = {}\n", missing.display()),
    )
    .unwrap();
    let answers = fs::read_to_string(&d.answers).unwrap();
    fs::write(&d.answers, format!("{answers}ban: {{}}\n")).unwrap();
    let before = d.machine();
    d.init()
        .status(2)
        .any_stdout()
        .stderr_has("fail2ban's configuration fails before ollama-secure adds its jail; fix it first:")
        .stderr_has("Have not found any log file for sshd jail")
        .stderr_has("install rsyslog, or set `enabled = false` there")
        .run();
    d.assert_as_before(&before);
}
