//! The pure planners, judged on facts made by hand: a fresh machine, the
//! same machine after a plan was carried out (simulated here), a running
//! proxy that lost its socket, an installed setup to remove.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::config::{Config, ProcessSecrets};
use crate::credentials::SeededEntropy;
use crate::facts::SiteAnswer;
use crate::paths::Os;
use crate::state::{Owned, OwnedKind};
use crate::system::{Filesystem, SocketState};

fn config(yaml: &str) -> Config {
    let answers = crate::answers::Answers::from_yaml(yaml, "t.yaml").unwrap();
    Config::from_answers(&answers, "t.yaml", Os::Debian, &ProcessSecrets).unwrap()
}

const NGINX: &str = "proxy: nginx\nport: 8081\nusers: [{username: alice, password_hash: \"$2y$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234\"}]\n";
const CADDY: &str = "proxy: caddy\nport: 8081\nusers: [{username: alice, password_hash: \"$2y$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234\"}]\n";

const ROOTS_DIR: Existing = Existing::Dir { mode: 0o755, uid: 0, gid: 0 };

/// A Debian machine with the proxy installed and nothing of ours.
fn fresh() -> Facts {
    let mut facts = Facts::empty("20261130T175200Z");
    for dir in ["/etc", "/etc/nginx", "/etc/nginx/sites-available", "/etc/nginx/sites-enabled", "/etc/caddy", "/var"]
        .into_iter()
        .chain(["/var/lib", "/var/log", "/var/log/caddy", "/run"])
    {
        facts.files.insert(dir.into(), ROOTS_DIR);
    }
    // As on a Debian with systemd: /run is a tmpfs.
    facts.mounts.insert("/run".into(), (Filesystem::Memory, true));
    facts.groups = BTreeMap::from([("root".into(), 0), ("www-data".into(), 33), ("caddy".into(), 995)]);
    facts
}

/// The facts after `plan` ran: its writes, links and folders are there,
/// and the proxy runs and protects the site.
fn after(plan: &Plan, mut facts: Facts) -> Facts {
    for step in &plan.steps {
        match &step.action {
            Action::CreateDir { path, .. } => drop(facts.files.insert(path.clone(), ROOTS_DIR)),
            Action::Run { purpose: Purpose::Mount, command } => {
                let at = PathBuf::from(command.args.last().unwrap());
                facts.mounts.insert(at, (Filesystem::Memory, true));
            }
            Action::Write { file, change } => {
                if let Change::Replace { backup } | Change::Edit { backup, .. } = change {
                    let before = facts.file(&file.path).clone();
                    facts.files.insert(backup.clone(), before);
                }
                let (mode, gid) = match change {
                    Change::Overwrite { previous } | Change::Edit { previous, .. } => {
                        (previous.ownership.mode, previous.ownership.gid)
                    }
                    _ => (file.mode, facts.groups[&file.group]),
                };
                let existing = Existing::File { content: file.content.clone().into_bytes(), mode, uid: 0, gid };
                facts.files.insert(file.path.clone(), existing);
            }
            Action::Link { link, target } => {
                facts.files.insert(link.clone(), Existing::Symlink { target: target.clone() });
            }
            Action::Run { purpose: Purpose::Start, .. } => facts.proxy_running = true,
            Action::Run { purpose: Purpose::Enable, .. } => facts.service_enabled = true,
            _ => {}
        }
    }
    facts.site = SiteAnswer::AsksForCredentials;
    if facts.auth_socket.is_some() {
        facts.auth_socket = Some(SocketState::Listening);
    }
    facts.stamp = "20261130T180000Z".into();
    facts
}

fn nginx_fresh() -> Facts {
    Facts { auth_socket: Some(SocketState::Missing), ..fresh() }
}

fn setup_for(config: &Config, facts: &Facts) -> Setup {
    let installed = crate::setup::Installed::from_facts(config.settings.proxy, &config.settings.paths, facts).unwrap();
    crate::setup::from_config(config, installed, "2026-11-30T17:52:00Z", &mut SeededEntropy(1)).unwrap().0
}

/// The kind of each step, in order: what a reader of the plan sees first.
fn kinds(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|s| match &s.action {
            Action::CreateDir { path, .. } => format!("mkdir {}", path.display()),
            Action::Write { file, .. } => format!("write {}", file.path.display()),
            Action::Link { link, .. } => format!("link {}", link.display()),
            Action::Run { purpose, .. } => format!("{purpose:?}").split([' ', '{']).next().unwrap().to_lowercase(),
            Action::Verify { .. } => "verify".into(),
            other => format!("{other:?}").split([' ', '{']).next().unwrap().to_lowercase(),
        })
        .collect()
}

#[test]
fn a_fresh_machine_gets_files_a_start_and_a_verification() {
    let config = config(NGINX);
    let facts = nginx_fresh();
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    assert_eq!(
        kinds(&plan),
        [
            "mkdir /run/ollama-secure-auth",
            "write /etc/nginx/ollama.htpasswd",
            "write /etc/nginx/ollama.keys",
            "write /etc/nginx/sites-available/ollama",
            "link /etc/nginx/sites-enabled/ollama",
            "mkdir /var/lib/ollama-secure",
            "write /var/lib/ollama-secure/state.yaml",
            "validate",
            "start",
            "verify",
        ]
    );
    // Every change carries its undo; the start's undo stops the proxy again.
    let start = plan.steps.iter().find(|s| matches!(s.action, Action::Run { purpose: Purpose::Start, .. })).unwrap();
    assert!(matches!(&start.undo[..], [Action::Run { purpose: Purpose::Stop { .. }, .. }]), "{:?}", start.undo);
    assert!(plan.steps.iter().filter(|s| s.action.changes_files()).all(|s| !s.undo.is_empty()));
    // The cache is ours from the start (0700; nginx gives it to its
    // workers), so a rollback removes it with what nginx put in it.
    let cache = &plan.steps[0];
    assert_eq!(cache.action, Action::CreateDir { path: "/run/ollama-secure-auth".into(), mode: 0o700 });
    assert_eq!(cache.undo, [Action::RemoveTree { path: "/run/ollama-secure-auth".into(), unless_entries_in: None }]);
}

#[test]
fn running_again_on_the_result_changes_nothing() {
    for (yaml, facts) in [(NGINX, nginx_fresh()), (CADDY, fresh())] {
        let config = config(yaml);
        let first = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
        let facts = after(&first, facts);
        let again = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
        assert!(again.is_empty(), "{}", describe(&again));
        // A changed answer replaces what changed, with a backup, and reloads.
        let changed = super::super::config::Config {
            settings: Settings {
                site: Site { timeout_secs: 90, ..config.settings.site.clone() },
                ..config.settings.clone()
            },
            ..config.clone()
        };
        let plan = for_setup(&setup_for(&changed, &facts), &facts, Goal::Init { install: None }).unwrap();
        let kinds = kinds(&plan);
        assert!(kinds.iter().any(|k| k == "reload"), "{kinds:?}");
        assert!(!kinds.iter().any(|k| k == "start"), "{kinds:?}");
        assert_eq!(plan.backups().len(), 1, "{kinds:?}");
    }
}

use crate::setup::{Settings, Site};

#[test]
fn a_running_nginx_that_lost_its_socket_is_restarted() {
    let config = config(NGINX);
    let first = for_setup(&setup_for(&config, &nginx_fresh()), &nginx_fresh(), Goal::Init { install: None }).unwrap();
    let mut facts = after(&first, nginx_fresh());
    facts.auth_socket = Some(SocketState::Missing);
    facts.site = SiteAnswer::Status(500);
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    assert_eq!(kinds(&plan), ["validate", "stop", "start", "verify"]);
    assert!(plan.findings.iter().any(|f| f.text.contains("restarted")), "{:?}", plan.findings);
    // Not serving the site at all: a reload creates the socket.
    facts.site = SiteAnswer::Unreachable("connection refused".into());
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    assert_eq!(kinds(&plan), ["validate", "reload", "verify"]);
    // A stale socket of a stopped nginx goes before the start.
    facts.proxy_running = false;
    facts.auth_socket = Some(SocketState::Stale);
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    assert_eq!(kinds(&plan), ["removestalesocket", "validate", "start", "verify"]);
}

#[test]
fn a_users_change_never_starts_the_proxy() {
    let config = config(NGINX);
    let first = for_setup(&setup_for(&config, &nginx_fresh()), &nginx_fresh(), Goal::Init { install: None }).unwrap();
    let mut facts = after(&first, nginx_fresh());
    let mut setup = setup_for(&config, &facts);
    setup.users.set(
        &crate::fields::Username::parse("bob").unwrap(),
        "$2y$04$zbcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
    );
    let plan = for_setup(&setup, &facts, Goal::Users).unwrap();
    assert_eq!(
        kinds(&plan),
        [
            "write /etc/nginx/ollama.htpasswd",
            "write /etc/nginx/sites-available/ollama",
            "write /var/lib/ollama-secure/state.yaml",
            "validate",
            "reload",
            "verify"
        ],
        "the users file and the site's cache key change, and the state records their backups"
    );
    let state = State::parse(&written(&plan, "/var/lib/ollama-secure/state.yaml"), Path::new("s")).unwrap();
    assert_eq!(state.backups, plan.backups());
    facts.proxy_running = false;
    let plan = for_setup(&setup, &facts, Goal::Users).unwrap();
    assert_eq!(
        kinds(&plan),
        [
            "write /etc/nginx/ollama.htpasswd",
            "write /etc/nginx/sites-available/ollama",
            "write /var/lib/ollama-secure/state.yaml",
            "validate"
        ]
    );
    assert!(plan.findings.iter().any(|f| f.text.contains("takes effect when it starts")));
}

fn installed(yaml: &str, facts: Facts) -> (Config, Facts) {
    let config = config(yaml);
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    (config, after(&plan, facts))
}

#[test]
fn removal_undoes_what_the_state_records() {
    let mut facts = nginx_fresh();
    let own_site = Path::new("/etc/nginx/sites-available/ollama");
    facts.files.insert(own_site.into(), Existing::File { content: b"mine\n".to_vec(), mode: 0o644, uid: 0, gid: 0 });
    let (config, facts) = installed(NGINX, facts);
    let paths = &config.settings.paths;
    let plan = removal(paths, &facts).unwrap();
    let texts: Vec<String> = plan.steps.iter().map(|s| format!("{:?}", s.action).chars().take(40).collect()).collect();
    assert!(matches!(&plan.steps[0].action, Action::Remove { path } if path == &paths.nginx_site_link), "{texts:?}");
    let restore = plan.steps.iter().find_map(|s| match &s.action {
        Action::Restore { path, from } if path == own_site => Some(from.clone()),
        _ => None,
    });
    assert_eq!(restore, Some(PathBuf::from("/etc/nginx/sites-available/ollama.bak-20261130T175200Z")));
    assert!(plan.steps.iter().any(|s| matches!(&s.action, Action::Remove { path } if path == &paths.htpasswd)));
    assert!(
        plan.steps
            .iter()
            .any(|s| matches!(&s.action, Action::RemoveDir { path } if path == Path::new("/var/lib/ollama-secure")))
    );
    // init started nginx and nothing else was added: uninstall stops it.
    assert!(matches!(kinds(&plan).iter().rev().find(|k| *k == "stop" || *k == "reload"), Some(k) if k == "stop"));
    assert!(plan.findings.iter().any(|f| f.text == "ollama-secure started nginx, so it stops it"));
}

#[test]
fn removal_reloads_a_proxy_that_serves_something_new_since() {
    let (config, mut facts) = installed(NGINX, nginx_fresh());
    facts.listings.insert("/etc/nginx/sites-enabled".into(), vec!["/etc/nginx/sites-enabled/other".into()]);
    let plan = removal(&config.settings.paths, &facts).unwrap();
    let kinds = kinds(&plan);
    assert!(kinds.contains(&"reload".to_string()) && !kinds.contains(&"stop".to_string()), "{kinds:?}");
    let finding = plan.findings.iter().find(|f| f.text.contains("so it is reloaded, not stopped")).unwrap();
    assert!(finding.text.contains("added: /etc/nginx/sites-enabled/other"), "{}", finding.text);
}

#[test]
fn removal_takes_our_lines_out_of_the_users_caddyfile() {
    let mut facts = fresh();
    let caddyfile = Path::new("/etc/caddy/Caddyfile");
    let theirs = b":80 {\n\trespond \"hi\"\n}\n".to_vec();
    facts.files.insert(caddyfile.into(), Existing::File { content: theirs.clone(), mode: 0o640, uid: 0, gid: 995 });
    let (config, facts) = installed(CADDY, facts);
    let plan = removal(&config.settings.paths, &facts).unwrap();
    let rewrite = plan.steps.iter().find_map(|s| match &s.action {
        Action::Write { file, change: Change::Overwrite { previous } } if file.path == caddyfile => {
            Some((file.content.clone(), previous.ownership))
        }
        _ => None,
    });
    let (content, ownership) = rewrite.expect("the main Caddyfile is rewritten without our lines");
    assert_eq!(content.as_bytes(), theirs);
    assert_eq!((ownership.mode, ownership.gid), (0o640, 995), "the user's mode and group are kept");
    // Its backup says what the Caddyfile will say again, so it goes too.
    let backup = PathBuf::from("/etc/caddy/Caddyfile.bak-20261130T175200Z");
    assert!(plan.steps.iter().any(|s| matches!(&s.action, Action::Remove { path } if *path == backup)));
}

#[test]
fn nothing_to_remove_without_a_state_file() {
    let err = removal(&Paths::defaults(Os::Debian), &fresh()).unwrap_err();
    assert!(err.to_string().starts_with("nothing to uninstall"), "{err}");
}

#[test]
fn backups_sit_next_to_the_file() {
    assert_eq!(
        backup_path(Path::new("/etc/caddy/Caddyfile"), "20261130T175200Z"),
        PathBuf::from("/etc/caddy/Caddyfile.bak-20261130T175200Z")
    );
}

use crate::paths::Paths;

#[test]
fn renewal_is_described_as_this_machine_would_run_it() {
    let private = "proxy: nginx\ndomain: ollama.test\nhttps: {enabled: true, acme_ca_root: /etc/pebble/root.pem}\nusers: [{username: a, generate: true}]\n";
    let config = config(private);
    let renewal = |facts: &Facts| {
        let plan = for_setup(&setup_for(&config, facts), facts, Goal::Init { install: None }).unwrap();
        let finding = plan.findings.iter().find(|f| f.text.contains("renew")).cloned().unwrap();
        (finding, plan)
    };
    // No systemd, no cron: said plainly, as a warning.
    let (finding, plan) = renewal(&nginx_fresh());
    assert_eq!(finding.severity, crate::error::Severity::Warning);
    assert!(finding.text.starts_with("nothing here will renew the certificate"), "{}", finding.text);
    assert!(finding.text.contains("no cron daemon is installed"), "{}", finding.text);
    // The private CA's job is planned all the same, for when cron runs.
    let cron = crate::plan::tests::written(&plan, "/etc/cron.d/ollama-secure-certbot");
    assert!(cron.contains("REQUESTS_CA_BUNDLE=/etc/pebble/root.pem\n"), "{cron}");
    assert!(cron.contains("certbot -q renew --cert-name ollama.test --config-dir /etc/letsencrypt"), "{cron}");
    // With cron installed but stopped, and running.
    let (finding, _) = renewal(&Facts { cron_installed: true, ..nginx_fresh() });
    assert!(finding.text.contains("cron is installed but not running"), "{}", finding.text);
    // With systemd: a drop-in for certbot.service, read after daemon-reload.
    let (finding, plan) = renewal(&Facts { systemd: true, ..nginx_fresh() });
    assert!(finding.text.contains("a drop-in gives it the private ACME server's CA"), "{}", finding.text);
    let dropin = written(&plan, "/etc/systemd/system/certbot.service.d/ollama-secure.conf");
    assert!(dropin.contains("[Service]\nEnvironment=REQUESTS_CA_BUNDLE=/etc/pebble/root.pem\n"), "{dropin}");
    assert!(kinds(&plan).contains(&"reloadunits".to_string()), "{:?}", kinds(&plan));
    let (finding, _) = renewal(&Facts { cron_installed: true, cron_running: true, ..nginx_fresh() });
    assert_eq!(finding.severity, crate::error::Severity::Info);
    assert!(
        finding.text.contains("/etc/cron.d/ollama-secure-certbot, with the private ACME server's CA"),
        "{}",
        finding.text
    );
}

/// The content a plan writes to `path`.
fn written(plan: &Plan, path: &str) -> String {
    plan.steps
        .iter()
        .find_map(|s| match &s.action {
            Action::Write { file, .. } if file.path == Path::new(path) => Some(file.content.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{path} is not written:\n{}", describe(plan)))
}

#[test]
fn the_cache_of_password_checks_gets_a_tmpfs_of_its_own_on_a_disk() {
    let config = config(NGINX);
    let mut facts = nginx_fresh();
    facts.mounts.insert("/run".into(), (Filesystem::Disk, false));
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    let first = kinds(&plan);
    assert_eq!(first[..2], ["mkdir /run/ollama-secure-auth", "mount"], "before nginx reads the site: {first:?}");
    let mount = plan.steps.iter().find(|s| matches!(&s.action, Action::Run { purpose: Purpose::Mount, .. })).unwrap();
    assert_eq!(
        describe(&Plan { steps: vec![mount.clone()], findings: vec![], ..plan.clone() }).lines().nth(1).unwrap(),
        " 1. mount a private tmpfs (memory, root only): run `mount -t tmpfs -o size=32m,mode=0700 ollama-secure-auth /run/ollama-secure-auth`"
    );
    assert!(matches!(&mount.undo[..], [Action::Run { purpose: Purpose::Unmount { .. }, .. }]));
    assert!(plan.findings.iter().any(|f| f.text.starts_with("/run is on a disk")), "{:?}", plan.findings);
    let state = State::parse(&written(&plan, "/var/lib/ollama-secure/state.yaml"), Path::new("s")).unwrap();
    assert!(state.owned.contains(&Owned::new(Path::new("/run/ollama-secure-auth"), OwnedKind::Mount)));

    // Mounted, it is left alone; after a reboot (a folder on the disk
    // again) it is emptied and mounted again.
    let mut facts = after(&plan, facts);
    assert!(for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap().is_empty());
    facts.mounts.insert("/run/ollama-secure-auth".into(), (Filesystem::Disk, false));
    let again = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    // nginx gives the new tmpfs to its workers when it loads its
    // configuration: it reloads.
    assert_eq!(
        kinds(&again),
        ["removecache", "mkdir /run/ollama-secure-auth", "mount", "validate", "reload", "verify"]
    );

    // Uninstall unmounts it once nginx is stopped, then removes the folder.
    facts.mounts.insert("/run/ollama-secure-auth".into(), (Filesystem::Memory, true));
    let removal = removal(&config.settings.paths, &facts).unwrap();
    let steps = kinds(&removal);
    let at = |k: &str| steps.iter().position(|x| x == k).unwrap_or_else(|| panic!("no {k}: {steps:?}"));
    assert!(at("stop") < at("unmount") && at("unmount") < at("removetree"), "{steps:?}");
}

#[test]
fn a_cache_folder_that_is_not_ours_is_refused() {
    let config = config(NGINX);
    for existing in [ROOTS_DIR, Existing::Other] {
        let mut facts = nginx_fresh();
        facts.files.insert("/run/ollama-secure-auth".into(), existing);
        let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
        assert_eq!(plan.blockers.len(), 1, "{:?}", plan.blockers);
        assert!(plan.blockers[0].starts_with("/run/ollama-secure-auth exists and is not"), "{}", plan.blockers[0]);
        assert!(plan.refusal().is_some());
    }
    // paths.auth_cache: /run itself, say.
    let config = self::config(&format!("{NGINX}paths: {{auth_cache: /run, auth_socket: /tmp/a.sock}}\n"));
    let plan = for_setup(&setup_for(&config, &nginx_fresh()), &nginx_fresh(), Goal::Init { install: None }).unwrap();
    assert!(plan.blockers.iter().any(|b| b.starts_with("/run exists and is not a folder ollama-secure made")));
}

#[test]
fn what_caddy_writes_of_its_own_is_ours_until_uninstall_stops_it() {
    let config = config(CADDY);
    let mut facts = fresh();
    facts.files.insert("/root".into(), ROOTS_DIR);
    let started = |path: &str, kind| Owned { until_stopped: true, ..Owned::new(Path::new(path), kind) };
    facts.own_writes = vec![
        Owned::new(Path::new("/root/.step"), OwnedKind::Tree),
        started("/root/.config", OwnedKind::Dir),
        started("/root/.config/caddy", OwnedKind::Tree),
        started("/root/.config/caddy/autosave.json", OwnedKind::File),
    ];
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    let state = State::parse(&written(&plan, "/var/lib/ollama-secure/state.yaml"), Path::new("s")).unwrap();
    let owned: Vec<(&Path, OwnedKind, bool)> =
        state.owned.iter().map(|o| (o.path.as_path(), o.kind, o.until_stopped)).collect();
    assert_eq!(
        owned,
        [
            (Path::new("/root/.step"), OwnedKind::Tree, false),
            // The site's access log: made by whatever loads the site first.
            (Path::new("/var/log/ollama-secure.access.log"), OwnedKind::File, false),
            (Path::new("/root/.config"), OwnedKind::Dir, true),
            (Path::new("/root/.config/caddy"), OwnedKind::Tree, true),
            (Path::new("/var/log/caddy/ollama-secure.log"), OwnedKind::File, true),
        ],
        "autosave.json goes with its folder"
    );
    let mut facts = after(&plan, facts);
    for dir in ["/root/.step", "/root/.config", "/root/.config/caddy"] {
        facts.files.insert(dir.into(), ROOTS_DIR);
    }
    let log = Existing::File { content: b"{}\n".to_vec(), mode: 0o644, uid: 0, gid: 0 };
    facts.files.insert("/var/log/caddy/ollama-secure.log".into(), log);
    let steps = kinds(&removal(&config.settings.paths, &facts).unwrap());
    // The log, Caddy's folder and the one above, ~/.step, then ours.
    let last = ["stop", "remove", "removetree", "removedir", "removetree", "removedir"];
    assert!(steps.ends_with(&last.map(String::from)), "{steps:?}");
    // A Caddy that serves more since goes on running, with its folders.
    let mut grown = facts.clone();
    grown.files.insert(
        "/etc/caddy/Caddyfile".into(),
        Existing::File { content: b":9000 {\n}\n".to_vec(), mode: 0o644, uid: 0, gid: 0 },
    );
    let plan = removal(&config.settings.paths, &grown).unwrap();
    let trees: Vec<&Path> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::RemoveTree { path, .. } => Some(path.as_path()),
            _ => None,
        })
        .collect();
    assert_eq!(trees, [Path::new("/root/.step")], "what any run of caddy makes goes all the same");
    assert!(plan.findings.iter().any(|f| f.text.starts_with("keeping /root/.config/caddy: caddy made it")));
    // Stopped by hand since, it keeps them all the same: started again, it
    // would use them for what it serves now.
    grown.proxy_running = false;
    let plan = removal(&config.settings.paths, &grown).unwrap();
    assert!(plan.findings.iter().any(|f| f.text.starts_with("keeping /root/.config/caddy: caddy made it")));
}

#[test]
fn a_file_ollama_secure_did_not_write_is_replaced_with_a_word_and_a_backup() {
    let config = config(NGINX);
    let mut facts = nginx_fresh();
    let site = Path::new("/etc/nginx/sites-available/ollama");
    facts.files.insert(site.into(), Existing::File { content: b"mine\n".to_vec(), mode: 0o644, uid: 0, gid: 0 });
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    assert!(
        plan.findings.iter().any(|f| f.text
            == "/etc/nginx/sites-available/ollama is there and was not written by ollama-secure: it is replaced, and kept as \
                /etc/nginx/sites-available/ollama.bak-20261130T175200Z until `ollama-secure uninstall` puts it back"),
        "{:?}",
        plan.findings
    );
    // Our own file, changed later, gets no such word.
    let facts = after(&plan, facts);
    let changed = self::config(&NGINX.replace("8081", "8082"));
    let plan = for_setup(&setup_for(&changed, &facts), &facts, Goal::Init { install: None }).unwrap();
    assert!(!plan.backups().is_empty());
    assert!(!plan.findings.iter().any(|f| f.text.contains("not written by ollama-secure")), "{:?}", plan.findings);
}

#[test]
fn certbots_folders_made_for_us_go_with_the_last_certificate() {
    let https = "proxy: nginx\ndomain: ollama.test\nhttps: {enabled: true}\nusers: [{username: a, generate: true}]\n";
    let config = config(https);
    let mut facts = nginx_fresh();
    facts.files.insert("/var/log/letsencrypt".into(), ROOTS_DIR);
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    let state = State::parse(&written(&plan, "/var/lib/ollama-secure/state.yaml"), Path::new("s")).unwrap();
    assert_eq!(state.certbot_dirs, [PathBuf::from("/etc/letsencrypt"), PathBuf::from("/var/lib/letsencrypt")]);
    assert!(state.owned.contains(&Owned::new(Path::new("/var/lib/ollama-secure/acme"), OwnedKind::Tree)));
    let mut facts = after(&plan, facts);
    for dir in ["/etc/letsencrypt", "/var/lib/letsencrypt"] {
        facts.files.insert(dir.into(), ROOTS_DIR);
    }
    let plan = removal(&config.settings.paths, &facts).unwrap();
    let trees: Vec<(PathBuf, Option<PathBuf>)> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::RemoveTree { path, unless_entries_in }
                if path.starts_with("/etc") || path.ends_with("letsencrypt") =>
            {
                Some((path.clone(), unless_entries_in.clone()))
            }
            _ => None,
        })
        .collect();
    let renewal = Some(PathBuf::from("/etc/letsencrypt/renewal"));
    assert_eq!(
        trees,
        [(PathBuf::from("/var/lib/letsencrypt"), renewal.clone()), (PathBuf::from("/etc/letsencrypt"), renewal)],
        "after `certbot delete`, the config folder last"
    );
}

/// Debian's certbot package ships /etc/letsencrypt with only its cli.ini:
/// what certbot makes in it for our certificate is ours all the same.
#[test]
fn certbots_folders_in_debians_etc_letsencrypt_are_ours() {
    let https = "proxy: nginx\ndomain: ollama.test\nhttps: {enabled: true}\nusers: [{username: a, generate: true}]\n";
    let config = config(https);
    let mut facts = nginx_fresh();
    facts.files.insert("/etc/letsencrypt".into(), ROOTS_DIR);
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    let state = State::parse(&written(&plan, "/var/lib/ollama-secure/state.yaml"), Path::new("s")).unwrap();
    let inside = ["accounts", "archive", "csr", "keys", "live", "renewal", "renewal-hooks"];
    let expected: Vec<PathBuf> = inside
        .iter()
        .map(|name| Path::new("/etc/letsencrypt").join(name))
        .chain(["/var/lib/letsencrypt".into(), "/var/log/letsencrypt".into()])
        .collect();
    assert_eq!(state.certbot_dirs, expected);
    assert!(!state.certbot_dirs.contains(&PathBuf::from("/etc/letsencrypt")), "Debian's folder is not ours");
}

/// A users file from before roles: the users it keeps, and those the answers
/// list without `role: admin`, are named, since they could manage models.
#[test]
fn users_from_before_roles_are_told_they_lost_model_management() {
    let users = crate::userfile::Users::parse(
        "alice:$2y$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234\nbob:$2y$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234\n",
        crate::userfile::Format::Htpasswd,
        "u",
    )
    .unwrap();
    let installed = |before_roles| crate::setup::Installed {
        users: users.clone(),
        keys: None,
        access: crate::access::Access::default(),
        before_roles,
    };
    let narrowed = |yaml: &str, before_roles| {
        let (_, resolution) =
            crate::setup::from_config(&config(yaml), installed(before_roles), "now", &mut SeededEntropy(1)).unwrap();
        resolution.narrowed.iter().map(|n| n.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(narrowed(NGINX, true), ["alice", "bob"]);
    assert_eq!(narrowed(&NGINX.replace("}]", ", role: admin}]"), true), ["bob"]);
    assert!(narrowed(NGINX, false).is_empty(), "a state with roles recorded has nothing to say");
}

#[test]
fn an_ollama_with_a_known_critical_advisory_is_named_before_anything_is_done() {
    let config = config(NGINX);
    let words = |version: &str| {
        let mut facts = nginx_fresh();
        facts.ollama = vec![crate::facts::OllamaProbe::Answers { version: version.into() }];
        let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
        plan.findings.iter().map(|f| f.to_string()).filter(|f| f.contains("Ollama ")).collect::<Vec<_>>().join("\n")
    };
    let old = words("0.17.0");
    assert!(old.starts_with("warning: Ollama 0.17.0 answers at http://127.0.0.1:11434"), "{old}");
    assert!(old.contains("CVE-2026-7482: upgrade it to 0.17.1 or later"), "{old}");
    assert_eq!(words("0.17.1"), "Ollama 0.17.1 answers at http://127.0.0.1:11434");
}

#[test]
fn every_ollama_server_is_said_before_anything_is_done() {
    let config = config(&format!("{NGINX}upstream: [10.0.0.11:11434, 10.0.0.12:11434, 10.0.0.13:11434]\n"));
    let mut facts = nginx_fresh();
    facts.ollama = vec![
        crate::facts::OllamaProbe::Answers { version: "0.17.1".into() },
        crate::facts::OllamaProbe::NotReachable("connection refused".into()),
        crate::facts::OllamaProbe::Answers { version: "0.17.0".into() },
    ];
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    let said: Vec<String> = plan.findings.iter().map(|f| f.to_string()).filter(|f| f.contains("Ollama ")).collect();
    assert_eq!(said.len(), 3, "{said:?}");
    assert_eq!(said[0], "Ollama 0.17.1 answers at http://10.0.0.11:11434");
    assert_eq!(
        said[1],
        "warning: Ollama does not answer at http://10.0.0.12:11434 (connection refused); the proxy sends requests to the other servers until it does"
    );
    assert!(
        said[2].starts_with("warning: Ollama 0.17.0 answers at http://10.0.0.13:11434, and it is affected by"),
        "{}",
        said[2]
    );
}

#[test]
fn bans_start_fail2ban_once_reload_it_on_changes_and_leave_with_the_answers() {
    let with_ban = format!("{NGINX}ban: {{after: 5}}\n");
    let mut facts = nginx_fresh();
    facts.files.extend([("/etc/fail2ban/jail.d".into(), ROOTS_DIR), ("/etc/fail2ban/filter.d".into(), ROOTS_DIR)]);
    let config = config(&with_ban);
    let first = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    let kinds_first = kinds(&first);
    let tail: Vec<&str> = kinds_first.iter().rev().take(5).rev().map(String::as_str).collect();
    assert_eq!(tail, ["start", "verify", "validatebans", "startbans", "verifybans"], "{kinds_first:?}");
    assert!(kinds_first.contains(&"write /etc/fail2ban/jail.d/ollama-secure.conf".to_string()), "{kinds_first:?}");
    let start =
        first.steps.iter().find(|s| matches!(s.action, Action::Run { purpose: Purpose::StartBans, .. })).unwrap();
    assert!(matches!(&start.undo[..], [Action::Run { purpose: Purpose::StopBans, .. }]), "{:?}", start.undo);
    let jail = written(&first, "/etc/fail2ban/jail.d/ollama-secure.conf");
    assert!(jail.contains("maxretry = 5\nfindtime = 600\nbantime = 3600\nport = 8081\n"), "{jail}");

    // Done: nothing to do again while fail2ban runs our jail.
    let mut facts = after(&first, facts);
    facts.fail2ban.running = true;
    facts.fail2ban.jail_loaded = true;
    let again = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    assert!(again.is_empty(), "{}", describe(&again));
    // A fail2ban that runs without it (started by its package before our
    // jail was there) reads its jails again, and is asked for ours.
    let without_jail = Facts {
        fail2ban: crate::facts::Fail2banFacts { jail_loaded: false, ..facts.fail2ban.clone() },
        ..facts.clone()
    };
    let repair = for_setup(&setup_for(&config, &without_jail), &without_jail, Goal::Init { install: None }).unwrap();
    assert_eq!(kinds(&repair), ["validatebans", "reloadbans", "verifybans"], "{}", describe(&repair));

    // A changed ban is read by a reload; the proxy is left alone.
    let stricter = super::super::config::Config {
        settings: Settings {
            site: Site {
                ban: Some(crate::setup::Ban { after: 3, within_secs: 60, for_secs: 60 }),
                ..config.settings.site.clone()
            },
            ..config.settings.clone()
        },
        ..config.clone()
    };
    let changed = for_setup(&setup_for(&stricter, &facts), &facts, Goal::Init { install: None }).unwrap();
    let kinds_changed = kinds(&changed);
    assert!(
        kinds_changed.ends_with(&["validatebans".into(), "reloadbans".into(), "verifybans".into()]),
        "{kinds_changed:?}"
    );
    assert!(!kinds_changed.iter().any(|k| k == "reload" || k == "start"), "{kinds_changed:?}");

    // Without `ban` in the answers, our jail and filter go; the fail2ban
    // init started goes with them, one that ran before reloads.
    let without = for_setup(&setup_for(&self::config(NGINX), &facts), &facts, Goal::Init { install: None }).unwrap();
    let kinds_without = kinds(&without);
    assert!(kinds_without.contains(&"remove".to_string()), "{kinds_without:?}");
    assert_eq!(kinds_without.last().map(String::as_str), Some("stopbans"), "{kinds_without:?}");
    let ran_before = {
        let mut facts = facts.clone();
        let mut state = facts.state(&config.settings.paths).unwrap().unwrap();
        state.started_bans = false;
        let text = state.to_text();
        facts.files.insert(
            config.settings.paths.state.clone(),
            Existing::File { content: text.into_bytes(), mode: 0o644, uid: 0, gid: 0 },
        );
        facts
    };
    let without =
        for_setup(&setup_for(&self::config(NGINX), &ran_before), &ran_before, Goal::Init { install: None }).unwrap();
    assert_eq!(kinds(&without).last().map(String::as_str), Some("reloadbans"), "{:?}", kinds(&without));

    // uninstall stops the fail2ban that init started.
    let plan = removal(&config.settings.paths, &facts).unwrap();
    assert!(kinds(&plan).contains(&"stopbans".to_string()), "{:?}", kinds(&plan));
}

#[test]
fn a_fail2ban_that_is_broken_before_us_is_a_blocker_that_says_why() {
    let mut facts = nginx_fresh();
    facts.fail2ban.broken =
        Some("ERROR   Failed during configuration: Have not found any log file for sshd jail\n".into());
    let config = config(&format!("{NGINX}ban: {{}}\n"));
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    let refusal = plan.refusal().expect("a blocker").to_string();
    assert!(refusal.contains("fail2ban's configuration fails before ollama-secure adds its jail"), "{refusal}");
    assert!(refusal.contains("backend = systemd"), "{refusal}");
    // And fail2ban missing: installed with the proxy's packages, if allowed.
    let mut facts = nginx_fresh();
    facts.fail2ban.installed = false;
    facts.package_manager = Some(crate::facts::PackageManager::Apt);
    let plan = for_setup(
        &setup_for(&config, &facts),
        &facts,
        Goal::Init { install: Some(crate::proxy::PackageSource::Distribution) },
    )
    .unwrap();
    let install: Vec<String> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Run { command, purpose: Purpose::Install } => Some(command.to_string()),
            _ => None,
        })
        .collect();
    // The package lists first: a fresh machine has none.
    assert_eq!(
        install,
        [
            "DEBIAN_FRONTEND=noninteractive apt-get update -q",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y fail2ban"
        ]
    );
}

fn commands(plan: &Plan) -> Vec<(String, Vec<String>)> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Run { command, .. } if command.program == "systemctl" => {
                let undo = s.undo.iter().filter_map(|u| match u {
                    Action::Run { command, .. } => Some(command.to_string()),
                    _ => None,
                });
                Some((command.to_string(), undo.collect()))
            }
            _ => None,
        })
        .collect()
}

/// With systemd, a proxy that neither runs nor starts at boot is started
/// through its unit, then enabled, each with its undo; uninstall stops it
/// and disables it again, leaving the unit as it found it.
#[test]
fn with_systemd_init_enables_what_it_starts_and_uninstall_disables_it() {
    let config = config(NGINX);
    let facts = Facts { systemd: true, ..nginx_fresh() };
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        commands(&plan),
        [
            ("systemctl start nginx".to_string(), strings(&["systemctl stop nginx"])),
            ("systemctl enable nginx".to_string(), strings(&["systemctl disable nginx"])),
        ]
    );
    let facts = after(&plan, facts);
    let plan = removal(&config.settings.paths, &facts).unwrap();
    assert_eq!(
        commands(&plan),
        [
            ("systemctl stop nginx".to_string(), strings(&["systemctl start nginx"])),
            ("systemctl disable nginx".to_string(), strings(&["systemctl enable nginx"])),
        ]
    );
    assert!(plan.findings.iter().any(|f| f.text == "ollama-secure enabled nginx at boot, so it disables it again"));

    // Enabled already (as Debian's package leaves it): neither enabled nor disabled.
    let facts = Facts { systemd: true, service_enabled: true, ..nginx_fresh() };
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    assert_eq!(commands(&plan), [("systemctl start nginx".to_string(), strings(&["systemctl stop nginx"]))]);
    let plan = removal(&config.settings.paths, &after(&plan, facts)).unwrap();
    assert_eq!(commands(&plan), [("systemctl stop nginx".to_string(), strings(&["systemctl start nginx"]))]);
}

/// What the Caddy that systemd runs writes when it first loads our site
/// (its data, in the caddy user's home) is ours: removed if that reload is
/// rolled back, and at uninstall while Caddy serves nothing new.
#[test]
fn what_the_systemd_caddy_writes_for_our_site_goes_with_it() {
    let config = config(CADDY);
    let mut facts = Facts { systemd: true, proxy_running: true, service_enabled: true, ..fresh() };
    facts.files.insert("/var/lib/caddy".into(), ROOTS_DIR);
    let started = |path: &str, kind| Owned { until_stopped: true, ..Owned::new(Path::new(path), kind) };
    facts.own_writes =
        vec![started("/var/lib/caddy/.local", OwnedKind::Dir), started("/var/lib/caddy/.local/share", OwnedKind::Dir)]
            .into_iter()
            .chain([started("/var/lib/caddy/.local/share/caddy", OwnedKind::Tree)])
            .collect();
    let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
    let reload =
        plan.steps.iter().find(|s| matches!(&s.action, Action::Run { purpose: Purpose::Reload { .. }, .. })).unwrap();
    assert!(
        reload.undo.iter().any(
            |u| matches!(u, Action::RemoveTree { path, .. } if path == Path::new("/var/lib/caddy/.local/share/caddy"))
        ),
        "{:?}",
        reload.undo
    );
    let mut facts = after(&plan, facts);
    for dir in ["/var/lib/caddy/.local", "/var/lib/caddy/.local/share", "/var/lib/caddy/.local/share/caddy"] {
        facts.files.insert(dir.into(), ROOTS_DIR);
    }
    let plan = removal(&config.settings.paths, &facts).unwrap();
    let removed: Vec<&Path> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::RemoveTree { path, .. } | Action::RemoveDir { path } if path.starts_with("/var/lib/caddy") => {
                Some(path.as_path())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        removed,
        [
            Path::new("/var/lib/caddy/.local/share/caddy"),
            Path::new("/var/lib/caddy/.local/share"),
            Path::new("/var/lib/caddy/.local")
        ]
    );
}

#[test]
fn a_taken_port_says_what_can_be_done_about_it() {
    use crate::facts::PortUse;
    use crate::system::Owner;
    let https = "domain: ollama.example.com\nhttps: {enabled: true, http_port: 8082}\n";
    let taken = |port| PortUse {
        port,
        address: "0.0.0.0".parse().unwrap(),
        owner: Some(Owner { pid: 7, name: "other".into() }),
    };
    for (yaml, port, remedy) in [
        (NGINX, 8081, "stop it, or choose another port (`port` in the answers; the wizard asks for it)"),
        (&format!("{NGINX}{https}") as &str, 8082, "stop it, or give another https.http_port in the answers"),
        (
            &format!("{CADDY}domain: ollama.example.com\nhttps: {{enabled: true}}\n") as &str,
            80,
            "stop it: Caddy answers its certificate's HTTP challenge and the redirect on port 80",
        ),
    ] {
        let config = config(yaml);
        let mut facts = fresh();
        facts.is_root = true;
        facts.port_uses = vec![taken(port)];
        let plan = for_setup(&setup_for(&config, &facts), &facts, Goal::Init { install: None }).unwrap();
        let blocker =
            plan.blockers.iter().find(|b| b.starts_with(&format!("port {port} is already in use by other (pid 7)")));
        assert!(blocker.is_some_and(|b| b.contains(remedy)), "{yaml}: {:?}", plan.blockers);
    }
}

const KEY: &str =
    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGSLW5sBEAC4test\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n";

/// A Debian machine without Caddy, where apt installs it.
fn without_caddy() -> Facts {
    let mut facts = fresh();
    facts.proxy_installed = false;
    facts.package_manager = Some(crate::facts::PackageManager::Apt);
    facts.files.insert("/etc/apt".into(), ROOTS_DIR);
    facts.files.insert("/etc/apt/sources.list.d".into(), ROOTS_DIR);
    facts
}

const CADDY_REPO: Goal = Goal::Init { install: Some(crate::proxy::PackageSource::OwnRepository) };

#[test]
fn caddy_from_its_own_repository_gets_the_fetched_key_and_one_deb_line_before_apt() {
    let config = config(&format!("{CADDY}install: true\ncaddy_source: caddy-repo\n"));
    assert_eq!(config.install, Some(crate::proxy::PackageSource::OwnRepository));
    let mut facts = without_caddy();
    facts.repository_key = Some(Ok(KEY.to_string()));
    let plan = for_setup(&setup_for(&config, &facts), &facts, CADDY_REPO).unwrap();
    assert!(plan.refusal().is_none(), "{:?}", plan.refusal().map(|r| r.to_string()));
    // The keyrings folder is made (Debian 12 has it; older systems may not),
    // the key and the line written, then apt asked, in that order.
    assert_eq!(
        kinds(&plan)[..5],
        [
            "mkdir /etc/apt/keyrings",
            "write /etc/apt/keyrings/caddy-stable.asc",
            "write /etc/apt/sources.list.d/caddy-stable.list",
            "install",
            "install",
        ]
    );
    assert_eq!(written(&plan, "/etc/apt/keyrings/caddy-stable.asc"), KEY);
    assert_eq!(
        written(&plan, "/etc/apt/sources.list.d/caddy-stable.list"),
        "# caddy's own repository, from https://dl.cloudsmith.io/public/caddy/stable/gpg.key; added by ollama-secure \
         (caddy_source: caddy-repo), removed by its uninstall\n\
         deb [signed-by=/etc/apt/keyrings/caddy-stable.asc] https://dl.cloudsmith.io/public/caddy/stable/deb/debian any-version main\n"
    );
    // The dry run shows both files in full, the key too (it is public).
    let described = describe(&plan);
    assert!(described.contains("mQINBGSLW5sBEAC4test"), "{described}");
    assert!(described.contains("apt-get install -y caddy"), "{described}");

    // uninstall removes both, and the folder it made.
    let after = after(&plan, facts);
    let removal = removal(&config.settings.paths, &after).unwrap();
    for path in ["/etc/apt/keyrings/caddy-stable.asc", "/etc/apt/sources.list.d/caddy-stable.list"] {
        assert!(
            removal.steps.iter().any(|s| matches!(&s.action, Action::Remove { path: p } if p == Path::new(path))),
            "{path} is not removed: {:?}",
            kinds(&removal)
        );
    }
    assert!(
        removal
            .steps
            .iter()
            .any(|s| matches!(&s.action, Action::RemoveDir { path } if path == Path::new("/etc/apt/keyrings")))
    );
    assert!(removal.findings.iter().any(|f| f.text.contains("apt no longer upgrades it (`apt-get purge caddy`")));
}

#[test]
fn a_key_that_cannot_be_fetched_or_is_no_key_stops_the_plan_with_the_way_out() {
    let config = config(&format!("{CADDY}install: true\ncaddy_source: caddy-repo\n"));
    for (key, said) in [
        (Err("dns error: failed to lookup address information".to_string()), "cannot fetch caddy's signing key"),
        (Ok("<html>Moved</html>".to_string()), "is not an armored PGP public key"),
        (Ok(format!("{KEY}\u{e9}")), "is not an armored PGP public key"),
    ] {
        let mut facts = without_caddy();
        facts.repository_key = Some(key);
        let plan = for_setup(&setup_for(&config, &facts), &facts, CADDY_REPO).unwrap();
        let refusal = plan.refusal().expect("a blocker").to_string();
        assert!(refusal.contains(said), "{refusal}");
        assert!(refusal.contains("caddy_source: debian"), "{refusal}");
    }
}

#[test]
fn caddy_source_keeps_the_repository_there_and_a_second_run_changes_nothing() {
    let config = config(&format!("{CADDY}install: true\ncaddy_source: caddy-repo\n"));
    let mut facts = without_caddy();
    facts.repository_key = Some(Ok(KEY.to_string()));
    // What facts::probe renders for before the repository's Caddy is there.
    facts.proxy_version = Some("2.8.0".into());
    let plan = for_setup(&setup_for(&config, &facts), &facts, CADDY_REPO).unwrap();
    assert!(written(&plan, "/etc/caddy/ollama.caddy").contains("\tbasic_auth @"));
    // Installed from there (a newer version, as the repository ships): nothing to do.
    let mut again = after(&plan, facts);
    (again.proxy_installed, again.proxy_version, again.repository_key) = (true, Some("2.10.2".into()), None);
    let plan = for_setup(&setup_for(&config, &again), &again, CADDY_REPO).unwrap();
    assert!(plan.is_empty(), "{:?}", kinds(&plan));

    // A run rolled back after apt installed Caddy took the repository's
    // files away: the next run puts them back, and installs nothing.
    for path in ["/etc/apt/keyrings/caddy-stable.asc", "/etc/apt/sources.list.d/caddy-stable.list"] {
        again.files.remove(Path::new(path));
    }
    again.repository_key = Some(Ok(KEY.to_string()));
    let plan = for_setup(&setup_for(&config, &again), &again, CADDY_REPO).unwrap();
    let kinds = kinds(&plan);
    assert!(kinds.contains(&"write /etc/apt/sources.list.d/caddy-stable.list".to_string()), "{kinds:?}");
    assert!(!kinds.iter().any(|k| k == "install"), "{kinds:?}");
    assert!(plan.findings.iter().any(|f| f.text.contains("so that apt upgrades it from there")));

    // A source list already there (the operator followed Caddy's guide) is
    // theirs: nothing is fetched or written, apt installs from it.
    let mut theirs = without_caddy();
    let list = Existing::File {
        content: b"deb [signed-by=/usr/share/keyrings/caddy.gpg] https://x any-version main\n".to_vec(),
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    theirs.files.insert("/etc/apt/sources.list.d/caddy-stable.list".into(), list);
    let plan = for_setup(&setup_for(&config, &theirs), &theirs, CADDY_REPO).unwrap();
    assert!(plan.refusal().is_none(), "no key is needed: {:?}", plan.refusal().map(|r| r.to_string()));
    let kinds = self::kinds(&plan);
    assert!(!kinds.iter().any(|k| k.contains("/etc/apt")), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "install").count(), 2, "{kinds:?}");

    // Without apt, caddy_source changes nothing.
    let facts = fresh();
    let plan = for_setup(&setup_for(&config, &facts), &facts, CADDY_REPO).unwrap();
    assert!(!self::kinds(&plan).iter().any(|k| k == "install" || k.contains("/etc/apt")), "{:?}", self::kinds(&plan));
}

#[test]
fn caddy_source_is_for_caddy_and_for_install() {
    let load = |yaml: &str| {
        let answers = crate::answers::Answers::from_yaml(yaml, "t.yaml").unwrap();
        Config::from_answers(&answers, "t.yaml", Os::Debian, &ProcessSecrets)
    };
    let err = load(&format!("{NGINX}install: true\ncaddy_source: caddy-repo\n")).unwrap_err().to_string();
    assert!(err.contains("caddy_source: is for proxy: caddy; nginx is installed from the system's packages"), "{err}");
    let err = load(&format!("{CADDY}install: true\ncaddy_source: github\n")).unwrap_err().to_string();
    assert!(err.contains("\"github\" is not a source: use debian or caddy-repo"), "{err}");
    let err =
        load(&format!("{CADDY}paths: {{apt_source: /etc/apt/sources.list.d/caddy.txt}}\n")).unwrap_err().to_string();
    assert!(err.contains("caddy.txt must end in .list: apt reads no other"), "{err}");
    let config = load(&format!("{CADDY}caddy_source: caddy-repo\n")).unwrap();
    assert_eq!(config.install, None);
    assert!(config.warnings.iter().any(|w| w.text.contains("Caddy is installed only with `install: true`")));
    assert_eq!(
        load(&format!("{CADDY}install: true\n")).unwrap().install,
        Some(crate::proxy::PackageSource::Distribution)
    );
}
