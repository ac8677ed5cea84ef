//! Several Ollama servers behind one proxy (`upstream:` a list), real nginx
//! and Caddy in front of three stand-ins: 32 streams at once spread over
//! all three (least connections) and all complete, each server sees a Host
//! it accepts; a slow server gets fewer; one server stopped while streams
//! on it are half sent, those end with an error and are not sent again,
//! and no request started after that fails (refused connections go on to
//! the others); started again, it gets requests again.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::support::deployment::{ALICE, ALICE_ONLY, Deployment};
use crate::support::standin::{GATED_PROMPT, MODEL, StandIn, TOKENS};

fn generations(standin: &StandIn) -> usize {
    standin.seen().iter().filter(|s| s.path == "/api/generate").count()
}

fn generate(d: &Deployment, prompt: &str) -> reqwest::blocking::Response {
    let body = serde_json::json!({"model": MODEL, "prompt": prompt});
    d.client().post(d.url("/api/generate")).basic_auth("alice", Some(ALICE)).json(&body).send().unwrap()
}

fn balances_and_survives_a_server_going(proxy: &'static str) {
    let d = Deployment::prepare(proxy, ALICE_ONLY);
    let others = [StandIn::start(), StandIn::start()];
    with_upstreams(
        &d,
        &format!("upstream: [{}, {}, {}]\n", d.ollama.upstream(), others[0].upstream(), others[1].upstream()),
    );
    let init = d.init().any_stdout().run();
    for standin in [&d.ollama, &others[0], &others[1]] {
        let said = format!("Ollama 0.17.1 answers at {}\n", standin.url());
        assert!(init.stdout.contains(&said), "{proxy}: init did not ask {}:\n{}", standin.url(), init.stdout);
    }
    assert_eq!(d.status("/api/tags", None), 401, "{proxy}");
    // `check` on this machine asks each server too. (The tests' Caddy keeps
    // its admin API on TCP, which `check` rightly fails.)
    let check = d.check().args(["--answers", &d.answers]);
    let check = if proxy == "caddy" { check.status(3).stderr_has("the check found problems") } else { check };
    check
        .stdout_has(&format!(
            "PASS  every Ollama server behind the proxy answers: 3 of 3: {} (Ollama ",
            d.ollama.upstream()
        ))
        .any_stdout()
        .run();

    // 32 streams at once, each held after its first token: with least
    // connections each server gets about a third.
    let streams: Vec<_> = (0..32)
        .map(|_| {
            let mut answer = generate(&d, GATED_PROMPT);
            assert_eq!(answer.status(), 200, "{proxy}");
            let first = crate::support::read_first_line(&mut answer);
            (answer, first)
        })
        .collect();
    let all = [&d.ollama, &others[0], &others[1]];
    let counts: Vec<usize> = all.iter().map(|s| generations(s)).collect();
    assert_eq!(counts.iter().sum::<usize>(), 32, "{proxy}: {counts:?}");
    assert!(counts.iter().all(|&n| (8..=13).contains(&n)), "{proxy}: not spread by open requests: {counts:?}");
    for standin in all {
        standin.release_stream();
        assert!(standin.seen().iter().all(|s| s.status != 403), "{proxy}: a server refused the Host it was sent");
    }
    for (mut answer, first) in streams {
        let mut rest = String::new();
        answer.read_to_string(&mut rest).unwrap();
        assert_eq!(first.lines().chain(rest.lines()).count(), TOKENS.len() + 1, "{proxy}: {first}{rest}");
    }

    // A slow server (its generations held, the others' answered at once)
    // gets fewer: a request goes where the fewest are open.
    d.ollama.hold_streams();
    let before: Vec<usize> = all.iter().map(|s| generations(s)).collect();
    let mut held = Vec::new();
    for _ in 0..12 {
        let mut answer = generate(&d, GATED_PROMPT);
        assert_eq!(answer.status(), 200, "{proxy}");
        crate::support::read_first_line(&mut answer);
        held.push(answer);
        // The fast servers' answers end meanwhile.
        std::thread::sleep(Duration::from_millis(400));
    }
    // Between the two idle fast servers Caddy picks at random (nginx in
    // turn), so only the slow server's share is asserted.
    let spread: Vec<usize> = all.iter().zip(&before).map(|(s, b)| generations(s) - b).collect();
    assert!(spread[0] <= 2 && spread[1] + spread[2] >= 10, "{proxy}: the slow server got its share: {spread:?}");
    d.ollama.release_stream();
    for mut answer in held {
        let mut rest = String::new();
        answer.read_to_string(&mut rest).unwrap();
        assert!(rest.contains("\"done\":true"), "{proxy}: {rest}");
    }

    // A server dies while streams on it are half sent: those end early,
    // with an error (no final `done`), and are not sent again to another
    // server (a generation had started); the other streams complete.
    for standin in all {
        standin.hold_streams();
    }
    let before: Vec<usize> = all.iter().map(|s| generations(s)).collect();
    let streams: Vec<_> = (0..9)
        .map(|_| {
            let mut answer = generate(&d, GATED_PROMPT);
            assert_eq!(answer.status(), 200, "{proxy}");
            crate::support::read_first_line(&mut answer);
            answer
        })
        .collect();
    let on: Vec<usize> = all.iter().zip(&before).map(|(s, b)| generations(s) - b).collect();
    assert!(on[2] > 0, "{proxy}: no stream on the server that dies: {on:?}");
    let gone = others[1].upstream();
    let [kept, stopped] = others;
    drop(stopped);
    d.ollama.release_stream();
    kept.release_stream();
    let (mut complete, mut cut) = (0, 0);
    for mut answer in streams {
        let mut rest = String::new();
        match answer.read_to_string(&mut rest) {
            Ok(_) if rest.contains("\"done\":true") => complete += 1,
            _ => cut += 1,
        }
    }
    assert_eq!((complete, cut), (on[0] + on[1], on[2]), "{proxy}: streams on {gone} ended otherwise");
    assert_eq!(
        (generations(&d.ollama), generations(&kept)),
        (before[0] + on[0], before[1] + on[1]),
        "{proxy}: a cut generation was sent again"
    );

    // One server went away: every request after that is answered, by the
    // others. Caddy 2.6 cannot send a POST on after a refused connection
    // (caddyserver/caddy#7546, fixed in 2.11): its POSTs are sent once its
    // health check (every 2 s) has left that server out.
    std::thread::sleep(Duration::from_millis(700));
    for _ in 0..20 {
        assert_eq!(d.status("/api/tags", Some(("alice", ALICE))), 200, "{proxy}: a GET failed after {gone} went away");
    }
    if proxy == "caddy" && crate::support::sh("caddy", &["version"]).1.starts_with("v2.6.") {
        std::thread::sleep(Duration::from_millis(2500));
    }
    let before = (generations(&d.ollama), generations(&kept));
    for _ in 0..20 {
        let answer = generate(&d, "hi");
        assert_eq!(answer.status(), 200, "{proxy}: a POST failed after {gone} went away");
        assert_eq!(answer.text().unwrap().lines().count(), TOKENS.len() + 1, "{proxy}");
    }
    let after = (generations(&d.ollama), generations(&kept));
    assert_eq!(after.0 - before.0 + after.1 - before.1, 20, "{proxy}: the other two answered all");
    d.check()
        .args(["--answers", &d.answers])
        .status(3)
        .stderr_has("the check found problems")
        .stdout_has(&format!(
            "FAIL  every Ollama server behind the proxy answers: 1 of 3 down: {gone} (connection refused"
        ))
        .any_stdout()
        .run();

    // Back on its address: after the 10 s it is left out, it gets requests again.
    let back = StandIn::start_on(&gone);
    let deadline = Instant::now() + Duration::from_secs(30);
    while generations(&back) == 0 {
        assert!(Instant::now() < deadline, "{proxy}: {gone} never got a request again");
        assert_eq!(generate(&d, "hi").status(), 200, "{proxy}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn nginx_balances_over_several_ollama_servers() {
    balances_and_survives_a_server_going("nginx");
}

#[test]
fn caddy_balances_over_several_ollama_servers() {
    balances_and_survives_a_server_going("caddy");
}

/// Where each of `count` GETs of `user` went: the index of every server
/// that saw one.
fn servers_of(d: &Deployment, all: &[&StandIn], user: (&str, &str), count: usize) -> Vec<usize> {
    // Caddy's health checks ask /api/version: only /api/tags is ours.
    let tags = |s: &StandIn| s.seen().iter().filter(|seen| seen.path == "/api/tags").count();
    let before: Vec<usize> = all.iter().map(|s| tags(s)).collect();
    for _ in 0..count {
        assert_eq!(d.status("/api/tags", Some(user)), 200, "{}", d.proxy);
    }
    (0..all.len()).filter(|&i| tags(all[i]) > before[i]).collect()
}

fn sticky_credential_pins(proxy: &'static str) {
    const BOB: &str = "bob's password is long enough too";
    let d = Deployment::prepare(proxy, &format!("{ALICE_ONLY}  - {{username: bob, password_env: BOB_PASSWORD}}\n"));
    // Three servers of this test's own (the deployment's stand-in is not
    // among them), so that any of them can be stopped.
    let mut servers: Vec<Option<StandIn>> = (0..3).map(|_| Some(StandIn::start())).collect();
    let list: Vec<String> = servers.iter().flatten().map(StandIn::upstream).collect();
    with_upstreams(&d, &format!("upstream: [{}]\nsticky: credential\n", list.join(", ")));
    d.init().env("BOB_PASSWORD", BOB).any_stdout().run();
    let running =
        |servers: &[Option<StandIn>]| -> Vec<usize> { (0..servers.len()).filter(|&i| servers[i].is_some()).collect() };
    let pinned = |servers: &[Option<StandIn>], user: (&str, &str)| -> Vec<usize> {
        let up = running(servers);
        let all: Vec<&StandIn> = servers.iter().flatten().collect();
        servers_of(&d, &all, user, 12).into_iter().map(|i| up[i]).collect()
    };

    // Each credential's requests all reach one server, and stay there.
    let alice = pinned(&servers, ("alice", ALICE));
    assert_eq!(alice.len(), 1, "{proxy}: alice's requests went to servers {alice:?}");
    let bob = pinned(&servers, ("bob", BOB));
    assert_eq!(bob.len(), 1, "{proxy}: bob's requests went to servers {bob:?}");
    assert_eq!(pinned(&servers, ("alice", ALICE)), alice, "{proxy}: alice moved");

    // Alice's server goes away: her requests go on, and once one has found
    // it gone (Caddy 2.6 may send that one elsewhere), all to one other.
    let gone = list[alice[0]].clone();
    servers[alice[0]] = None;
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(d.status("/api/tags", Some(("alice", ALICE))), 200, "{proxy}");
    let moved = pinned(&servers, ("alice", ALICE));
    assert_eq!(moved.len(), 1, "{proxy}: with {gone} gone, alice's requests went to {moved:?}");
    assert_ne!(moved, alice, "{proxy}");
    if bob != alice {
        assert_eq!(pinned(&servers, ("bob", BOB)), bob, "{proxy}: bob's server is up: he stays");
    }
}

#[test]
fn nginx_sticky_credential_keeps_each_credential_on_one_server() {
    sticky_credential_pins("nginx");
}

#[test]
fn caddy_sticky_credential_keeps_each_credential_on_one_server() {
    sticky_credential_pins("caddy");
}

/// The deployment's answers with `upstream:` (and what follows) replaced.
fn with_upstreams(d: &Deployment, upstreams: &str) {
    let answers = std::fs::read_to_string(&d.answers).unwrap();
    let single = format!("upstream: {}\n", d.ollama.upstream());
    assert!(answers.contains(&single), "{answers}");
    std::fs::write(&d.answers, answers.replace(&single, upstreams)).unwrap();
}

/// nginx: `weight: 3` against 1, with no request open, sends three of four
/// there.
#[test]
fn nginx_weight_shares_requests_between_servers() {
    let d = Deployment::prepare("nginx", ALICE_ONLY);
    let light = StandIn::start();
    with_upstreams(
        &d,
        &format!("upstream:\n  - {{address: {}, weight: 3}}\n  - {}\n", d.ollama.upstream(), light.upstream()),
    );
    d.init().any_stdout().run();
    let tags = |s: &StandIn| s.seen().iter().filter(|seen| seen.path == "/api/tags").count();
    let before = (tags(&d.ollama), tags(&light));
    for _ in 0..40 {
        assert_eq!(d.status("/api/tags", Some(("alice", ALICE))), 200);
    }
    let (heavy, light) = (tags(&d.ollama) - before.0, tags(&light) - before.1);
    assert_eq!(heavy + light, 40);
    assert!((26..=34).contains(&heavy), "weight 3 of 4 got {heavy} of 40 (the other {light})");
}

/// `max_conns: 1` on both servers, with `sticky: credential`: alice's
/// second stream, while her first is open on her server, goes to the
/// other one; a third, with both full, is refused rather than queued on
/// a full server.
fn max_conns_overflows(proxy: &'static str) {
    let d = Deployment::prepare(proxy, ALICE_ONLY);
    let other = StandIn::start();
    with_upstreams(
        &d,
        &format!(
            "upstream:\n  - {{address: {}, max_conns: 1}}\n  - {{address: {}, max_conns: 1}}\nsticky: credential\n",
            d.ollama.upstream(),
            other.upstream()
        ),
    );
    d.init().any_stdout().run();
    let all = [&d.ollama, &other];
    let open = |n: usize| -> Vec<_> {
        (0..n)
            .map(|_| {
                let mut answer = generate(&d, GATED_PROMPT);
                assert_eq!(answer.status(), 200, "{proxy}");
                crate::support::read_first_line(&mut answer);
                answer
            })
            .collect()
    };
    let first = open(1);
    let pinned: Vec<usize> = all.iter().map(|s| generations(s)).collect();
    let second = open(1);
    let now: Vec<usize> = all.iter().map(|s| generations(s)).collect();
    assert_eq!(now.iter().sum::<usize>(), 2, "{proxy}: {now:?}");
    assert!(now[0] == 1 && now[1] == 1, "{proxy}: the second stream went to the full server: {pinned:?} then {now:?}");
    let third = generate(&d, GATED_PROMPT).status().as_u16();
    assert_eq!(all.iter().map(|s| generations(s)).sum::<usize>(), 2, "{proxy}: a full server got a third stream");
    // nginx: "no live upstreams" at once; Caddy: no server available (2.11
    // after trying for lb_try_duration, 2.6 at once).
    assert_eq!(third, if proxy == "nginx" { 502 } else { 503 }, "{proxy}: with every server full");
    for standin in all {
        standin.release_stream();
    }
    for mut answer in first.into_iter().chain(second) {
        let mut rest = String::new();
        answer.read_to_string(&mut rest).unwrap();
        assert!(rest.contains("\"done\":true"), "{proxy}: {rest}");
    }
    assert_eq!(generate(&d, "hi").status(), 200, "{proxy}: served again once the streams ended");
}

#[test]
fn nginx_max_conns_sends_the_overflow_to_another_server() {
    max_conns_overflows("nginx");
}

#[test]
fn caddy_max_conns_sends_the_overflow_to_another_server() {
    max_conns_overflows("caddy");
}
