//! nginx's cached password checks, functionally (speed is measured by the
//! benchmark, never asserted here): a cached login does not let a wrong
//! password in, a flood of wrong passwords from one address is cut off with
//! 429 while a cached user keeps working, and requests without credentials
//! are never throttled. (A rotated or removed password stops working at
//! once: see users_e2e.)

use std::thread;

use crate::support::deployment::{ALICE, ALICE_ONLY, Deployment};

#[test]
fn a_cached_login_does_not_let_a_wrong_password_in() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200, "served from the cache");
    for wrong in ["wrong", "alice's password is long enoug", "", "alice's password is long enough "] {
        assert_eq!(d.status("/api/version", Some(("alice", wrong))), 401, "{wrong:?} was let in");
    }
    assert_eq!(d.status("/api/version", Some(("ALICE", ALICE))), 401, "usernames are case-sensitive");
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
}

#[test]
fn a_wrong_password_flood_is_paced_and_cut_off_while_a_cached_user_keeps_working() {
    let d = Deployment::deploy("nginx", ALICE_ONLY);
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200); // cached from here on
    // 40 wrong passwords at once from one address: beyond the burst (20
    // waiting, paced at 2 per second) they are refused at once with 429.
    let barrier = std::sync::Barrier::new(41);
    let (flood, legit) = thread::scope(|s| {
        let flood: Vec<_> = (0..40)
            .map(|i| {
                let (d, barrier) = (&d, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let resp = d
                        .client()
                        .get(d.url("/api/version"))
                        .basic_auth("alice", Some(format!("guess {i}")))
                        .send()
                        .unwrap();
                    let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
                    (resp.status().as_u16(), retry_after)
                })
            })
            .collect();
        barrier.wait();
        // While the flood waits in the queue, the cached user is served.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let legit: Vec<u16> = (0..5).map(|_| d.status("/api/version", Some(("alice", ALICE)))).collect();
        (flood.into_iter().map(|t| t.join().unwrap()).collect::<Vec<(u16, Option<String>)>>(), legit)
    });
    // Every refusal says when to retry.
    for (status, retry_after) in &flood {
        if *status == 429 {
            assert_eq!(retry_after.as_deref(), Some("1"), "a 429 without Retry-After");
        }
    }
    let flood: Vec<u16> = flood.into_iter().map(|(status, _)| status).collect();
    assert!(flood.iter().all(|s| *s == 401 || *s == 429), "{flood:?}");
    assert!(flood.iter().filter(|s| **s == 429).count() >= 10, "the flood was not cut off: {flood:?}");
    assert!(flood.contains(&401), "paced wrong passwords still get their 401: {flood:?}");
    assert_eq!(legit, [200; 5], "the cached user was throttled along with the flood");
    // Requests without credentials cost nothing and are never throttled.
    for _ in 0..30 {
        assert_eq!(d.status("/api/version", None), 401);
    }
}
