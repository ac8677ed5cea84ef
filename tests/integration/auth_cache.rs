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

/// The filesystem type `stat -f` names for `path`.
fn filesystem(path: &std::path::Path) -> String {
    let (ok, out) = crate::support::sh("stat", &["-f", "-c", "%T", path.to_str().unwrap()]);
    assert!(ok, "{out}");
    out.trim().to_string()
}

/// The fstype and options of what is mounted at `path`, if anything.
fn mounted_at(path: &std::path::Path) -> Option<(String, String)> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts.lines().find_map(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        (fields[1] == path.to_str().unwrap()).then(|| (fields[2].to_string(), fields[3].to_string()))
    })
}

/// The cache holds credentials (base64 in its keys): on a disk (here the
/// build folder), init mounts a private tmpfs for it before nginx reads
/// the site, running init again leaves it, and uninstall unmounts it.
#[test]
fn on_a_disk_the_cache_gets_a_private_tmpfs() {
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    assert_ne!(filesystem(base), "tmpfs", "{} must be on a disk for this test", base.display());
    let d = Deployment::prepare_in("nginx", ALICE_ONLY, base);
    let cache = d.sandbox.path("run/ollama-secure-auth");
    d.init().stdout_has("is on a disk, and the cache of password checks holds credentials").run();
    let (fstype, options) = mounted_at(&cache).expect("a tmpfs is mounted at the cache");
    assert_eq!(fstype, "tmpfs");
    assert!(options.contains("size=32768k") && options.contains("mode=700"), "{options}");
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    assert!(!crate::support::tree(&cache).is_empty(), "the login was not cached in the tmpfs");
    d.init().stdout_has("Nothing to change").run();

    // As after a reboot: the tmpfs is gone, and nginx, started again, has
    // written the cache into the folder on the disk. init empties it,
    // mounts the tmpfs again, and reloads nginx, which gives it to its
    // workers: logins are cached in memory again.
    let (ok, out) = crate::support::sh("umount", &["--lazy", cache.to_str().unwrap()]);
    assert!(ok, "{out}");
    d.sandbox.write("run/ollama-secure-auth/0/00/written-on-the-disk", "credentials\n");
    d.init().stdout_has("is on a disk again (after a reboot?)").stdout_has("ok reloaded").run();
    assert_eq!(mounted_at(&cache).map(|(fstype, _)| fstype).as_deref(), Some("tmpfs"));
    let left = crate::support::tree(&cache);
    assert!(!left.keys().any(|k| k.contains("written-on-the-disk")), "what was on the disk is still there: {left:?}");
    // init's check logged alice in: nginx's workers could cache it there.
    let workers = nix::unistd::User::from_name("www-data").unwrap().expect("nginx's worker user");
    let theirs = format!("file 600 {}:{}", workers.uid, workers.gid);
    assert!(left.values().any(|v| v.starts_with(&theirs)), "nothing was cached in the new tmpfs: {left:?}");
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    d.uninstall(false).stdout_has("ok unmounted the tmpfs").run();
    assert_eq!(mounted_at(&cache), None);
    assert!(!cache.exists());
}

/// Where the cache's folder is in memory already (a tmpfs /run), nothing
/// is mounted: init makes the folder (nginx gives it to its workers), a
/// rollback removes it again, and so does uninstall.
#[test]
fn in_memory_the_cache_needs_no_mount() {
    let base = std::path::Path::new("/dev/shm");
    assert_eq!(filesystem(base), "tmpfs");
    let d = Deployment::prepare_in("nginx", ALICE_ONLY, base);
    let cache = d.sandbox.path("run/ollama-secure-auth");
    // A site of the user's that nginx refuses: init rolls back.
    let broken = d.sandbox.write("etc/nginx/sites-enabled/broken", "server {\n");
    d.init().status(1).any_stdout().stderr_has("rolled back").run();
    assert!(!cache.exists(), "a rollback left the cache folder");
    std::fs::remove_file(broken).unwrap();
    let ran = d.init().any_stdout().run();
    assert!(!ran.stdout.contains("mount"), "{}", ran.stdout);
    assert_eq!(mounted_at(&cache), None);
    assert_eq!(d.status("/api/version", Some(("alice", ALICE))), 200);
    assert!(cache.is_dir(), "nginx made the cache");
    d.uninstall(false).any_stdout().run();
    assert!(!cache.exists(), "uninstall left the cache");
}

/// A folder that is there already is not ollama-secure's to give to nginx:
/// nginx would chown it, its cache loader would delete what is in it, and
/// uninstall would remove it. init refuses, and changes nothing.
#[test]
fn an_existing_folder_is_never_taken_for_the_cache() {
    let d = Deployment::prepare("nginx", ALICE_ONLY);
    let precious = d.sandbox.write("run/ollama-secure-auth/precious", "someone else's\n");
    let before = d.machine();
    let cache = d.sandbox.path("run/ollama-secure-auth");
    d.init()
        .status(2)
        .any_stdout()
        .stderr(&format!(
            "error: cannot apply; nothing was changed:\n  - {} exists and is not a folder ollama-secure made: nginx would \
             make it its own and its cache loader would delete what is in it; set paths.auth_cache to a folder that \
             does not exist yet\n",
            cache.display()
        ))
        .run();
    d.assert_as_before(&before);
    assert_eq!(std::fs::read_to_string(precious).unwrap(), "someone else's\n");
}
