//! Both proxies, kept running past nginx's cache loader, which starts 60 s
//! after nginx and deletes whatever is not a cache file in every
//! `proxy_cache_path` folder. Afterwards a login never seen before still
//! gets 200, a wrong password 401 and a request without credentials 401.
//! The wait is a wait, not a timing assertion: nothing here measures speed.

use std::time::{Duration, Instant};

use crate::support::deployment::{ALICE, Deployment};

const BOB: &str = "bob's password, not used before the wait";
const USERS: &str =
    "  - {username: alice, password_env: ALICE_PASSWORD}\n  - {username: bob, password_env: BOB_PASSWORD}\n";

/// nginx's cache loader runs once, 60 s after start; 66 s leaves it time to finish.
const PAST_THE_CACHE_LOADER: Duration = Duration::from_secs(66);

fn still_authenticates_past_the_cache_loader(proxy: &'static str) {
    let d = Deployment::prepare(proxy, USERS);
    // The proxy starts during this run, so it has run at least as long as
    // the time measured from here.
    let started = Instant::now();
    d.init().env("BOB_PASSWORD", BOB).any_stdout().run();
    let pid = d.guard.pid().expect("init started the proxy");
    std::thread::sleep(PAST_THE_CACHE_LOADER.saturating_sub(started.elapsed()));
    assert_eq!(d.guard.pid(), Some(pid), "the proxy was restarted during the wait");

    let resp = d.client().get(d.url("/api/version")).send().unwrap();
    assert_eq!(resp.status(), 401, "without credentials: {:?}", resp.text());
    assert_eq!(d.status("/api/version", Some(("bob", BOB))), 200, "a login never seen before");
    assert_eq!(d.status("/api/version", Some(("bob", "a wrong password"))), 401);
    assert_eq!(d.status("/api/version", Some(("carol", BOB))), 401, "an unknown user");
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
}

#[test]
fn nginx_still_authenticates_past_the_cache_loader() {
    still_authenticates_past_the_cache_loader("nginx");
}

#[test]
fn caddy_still_authenticates_past_the_cache_loader() {
    still_authenticates_past_the_cache_loader("caddy");
}
