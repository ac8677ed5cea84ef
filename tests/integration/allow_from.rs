//! `allow_from`: clients outside the listed networks get the proxy's own 403
//! before any password is checked, with or without credentials; listed
//! ones get the usual 401/200. Loopback aliases stand in for other hosts:
//! a client bound to 127.0.0.3 reaches the site on 127.0.0.1 from there.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::support::deployment::{ALICE, ALICE_ONLY, DOMAIN, Deployment};

/// A client that connects from `source`.
fn client_from(d: &Deployment, source: Ipv4Addr) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .local_address(IpAddr::V4(source))
        .resolve(DOMAIN, SocketAddr::new(d.address, d.port))
        .build()
        .unwrap()
}

fn allow_from(d: &Deployment, networks: &str) {
    d.write_answers(ALICE_ONLY);
    let answers = fs::read_to_string(&d.answers).unwrap();
    fs::write(&d.answers, format!("{answers}allow_from: {networks}\n")).unwrap();
}

fn only_the_listed_networks_may_try_a_password(proxy: &'static str) {
    let d = Deployment::prepare(proxy, ALICE_ONLY);

    // This machine itself is not listed: init says so before it starts,
    // proves the refusal instead of a password prompt, and does not
    // pretend to have checked the rest.
    allow_from(&d, "[192.0.2.0/24]");
    d.init()
        .args(["--dry-run"])
        .stderr_has("warning: allow_from leaves out 127.0.0.1, the address this machine reaches the site from")
        .stdout_has("gets allow_from's 403, as this machine is not in it")
        .run();
    d.init()
        .stderr_has("warning: allow_from leaves out 127.0.0.1")
        .stdout_has("refuses this machine's address (403, allow_from)")
        .stdout_has("Not checked: allow_from leaves out this machine's address (127.0.0.1).")
        .run();
    // A change of users cannot be proven from here either, and says so.
    d.tool()
        .env("BOB_PASSWORD", "bob's password is long enough too")
        .args(["users", "add", "bob", "--password-env", "BOB_PASSWORD", "--answers", &d.answers])
        .stdout_has("Not checked: allow_from leaves out this machine's address (127.0.0.1); bob can be checked")
        .run();
    // `status`: the 403 to this machine is the protection working.
    d.tool()
        .args(["status", "--answers", &d.answers])
        .stdout_has("  site:        refuses this machine's address (403, allow_from)\n")
        .stdout_has("All is well.")
        .run();
    // `check` from here names the cause.
    d.check()
        .status(3)
        .stdout_has("403 from the proxy's allow_from, expected 401")
        .stdout_has("add this machine's address to `allow_from`")
        .any_stderr()
        .run();

    // Listed: 127.0.0.1 (init's own check) and 127.0.0.2.
    allow_from(&d, "[127.0.0.1, 127.0.0.2/32]");
    d.init().stdout_has("checks passed").run();

    let inside = client_from(&d, Ipv4Addr::new(127, 0, 0, 2));
    let asked = inside.get(d.url("/api/version")).send().unwrap();
    assert_eq!(asked.status().as_u16(), 401);
    let answered = inside.get(d.url("/api/version")).basic_auth("alice", Some(ALICE)).send().unwrap();
    assert_eq!(answered.status().as_u16(), 200);

    let outside = client_from(&d, Ipv4Addr::new(127, 0, 0, 3));
    for with_password in [false, true] {
        for (method, path) in [("GET", "/api/version"), ("POST", "/api/generate"), ("GET", "/.ollama-secure-outsider")]
        {
            let mut request = outside.request(method.parse().unwrap(), d.url(path)).body("{}");
            if with_password {
                request = request.basic_auth("alice", Some(ALICE));
            }
            let refused = request.send().unwrap();
            let what = format!("{proxy}: {method} {path} from 127.0.0.3 (password: {with_password})");
            assert_eq!(refused.status().as_u16(), 403, "{what}");
            assert!(refused.headers().get("www-authenticate").is_none(), "{what}: asked for a password");
            assert_eq!(refused.headers()["content-type"], "application/json", "{what}");
            let body: serde_json::Value = refused.json().unwrap();
            assert_eq!(body["error"], "forbidden: this server does not accept requests from your address", "{what}");
        }
    }
    // No request from outside reached Ollama.
    assert!(d.ollama.seen().iter().all(|r| r.path != "/api/generate"), "{proxy}: a refused request reached Ollama");

    // Without allow_from, everyone is asked for a password again.
    d.write_answers(ALICE_ONLY);
    d.init().stdout_has("checks passed").run();
    assert_eq!(outside.get(d.url("/api/version")).send().unwrap().status().as_u16(), 401);
}

#[test]
fn nginx_refuses_addresses_outside_allow_from() {
    only_the_listed_networks_may_try_a_password("nginx");
}

#[test]
fn caddy_refuses_addresses_outside_allow_from() {
    only_the_listed_networks_may_try_a_password("caddy");
}
