//! `harden-ollama`: Ollama's service facts → the plan that keeps Ollama on
//! loopback (a systemd drop-in, systemd told, Ollama restarted, the port
//! proven loopback-only), or the plan that takes the drop-in out again; or,
//! where this tool cannot change how Ollama is started, the fix in words.
//! Pure.

use std::path::Path;

use super::{Action, Change, Command, LISTEN_LIMIT, Plan, Purpose, Snapshot, Step};
use crate::error::{Error, Finding, Result};
use crate::facts::{OllamaService, PortUse};
use crate::fields::{self, Upstream};
use crate::ollama::{self, Bind};
use crate::render::{RenderedFile, Role};
use crate::system::Existing;

/// What `harden-ollama` found to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hardening {
    Plan(Plan),
    /// Nothing to change, and why.
    Nothing(String),
    /// Ollama is reachable beyond loopback and this tool cannot change how
    /// it is started: what was found, and the fix.
    Advice {
        found: String,
        fix: String,
    },
}

/// The comment line of a drop-in whose folder `harden-ollama` made: `--undo`
/// removes that folder (when empty) and no other.
const MADE_FOLDER: &str = "# ollama-secure made this folder for it.";

fn exposed(service: &OllamaService) -> Vec<&PortUse> {
    service.listeners.iter().filter(|l| !fields::is_loopback(l.address)).collect()
}

fn describe_listener(l: &PortUse) -> String {
    match &l.owner {
        Some(owner) => format!("{} ({} PID {})", l.address, owner.name, owner.pid),
        None => l.address.to_string(),
    }
}

/// Where Ollama must listen: at the proxy's upstream when it is on this
/// machine, else on 127.0.0.1 at the port Ollama uses now.
fn target(service: &OllamaService, upstream: Option<&Upstream>) -> Result<Bind> {
    let Some(upstream) = upstream else {
        return Ok(Bind { host: "127.0.0.1".to_string(), port: service.bind().port });
    };
    let host = upstream.host.url_form().trim_start_matches('[').trim_end_matches(']').to_string();
    let bind = Bind { host, port: upstream.port };
    if !bind.is_loopback_only() {
        return Err(Error::input(format!(
            "the proxy sends requests to Ollama at {}, which is not this machine's loopback: \
             run harden-ollama on the machine Ollama runs on",
            upstream.host_port()
        )));
    }
    Ok(bind)
}

/// Our drop-in as found: `Some(made_folder)` when it is ours.
fn ours(existing: &Existing) -> Result<Option<bool>> {
    match existing {
        Existing::Missing => Ok(None),
        Existing::File { content, .. } if content.starts_with(ollama::DROPIN_MARKER.as_bytes()) => {
            Ok(Some(String::from_utf8_lossy(content).contains(MADE_FOLDER)))
        }
        _ => Err(Error::input("not written by ollama-secure (it does not start with its marker line)")),
    }
}

fn dropin_text(bind: &Bind, made_folder: bool) -> String {
    let text = ollama::dropin(bind);
    // After the marker line, which must stay first.
    if made_folder { text.replacen('\n', &format!("\n{MADE_FOLDER}\n"), 1) } else { text }
}

fn systemctl(args: &[&str]) -> Action {
    Action::Run { command: Command::new("systemctl", args), purpose: Purpose::ReloadUnits }
}

fn restart() -> Action {
    Action::Run { command: Command::new("systemctl", &["restart", "ollama"]), purpose: Purpose::RestartOllama }
}

/// systemd told, and Ollama restarted when it runs: undone in the same
/// order once the drop-in is back as it was.
fn reload_and_restart(service: &OllamaService, steps: &mut Vec<Step>) {
    let reload = || systemctl(&["daemon-reload"]);
    steps.push(Step::undone_by(reload(), vec![reload()]));
    if service.unit.as_ref().is_some_and(|u| u.is_active()) {
        steps.push(Step::undone_by(restart(), vec![reload(), restart()]));
    }
}

fn plan(findings: Vec<Finding>, steps: Vec<Step>) -> Hardening {
    Hardening::Plan(Plan { proxy: None, findings, blockers: Vec::new(), steps })
}

/// The plan that makes Ollama's unit listen on loopback only.
pub fn harden(service: &OllamaService, dropin: &Path, upstream: Option<&Upstream>) -> Result<Hardening> {
    let now = service.bind();
    let exposed = exposed(service);
    let listeners: Vec<String> = exposed.iter().map(|l| describe_listener(l)).collect();
    let Some(unit) = service.unit.as_ref().filter(|_| service.systemd) else {
        if exposed.is_empty() {
            let why =
                if service.listeners.is_empty() { "nothing listens there" } else { "it listens on loopback only" };
            return Ok(Hardening::Nothing(format!("Ollama's port {}: {why}.", now.port)));
        }
        let how = if service.systemd { "there is no ollama.service" } else { "systemd is not running" };
        return Ok(Hardening::Advice {
            found: format!(
                "port {} listens on {}, and {how}: change how Ollama is started",
                now.port,
                listeners.join(", ")
            ),
            fix: ollama::exposure_fix(now.port),
        });
    };
    let target = target(service, upstream)?;
    if let Some((file, value)) = service.environment_file_setting()
        && !Bind::from_env(Some(&value)).is_loopback_only()
    {
        return Err(Error::input(format!(
            "OLLAMA_HOST={value} is set in {} (an EnvironmentFile= of ollama.service), which overrides the \
             Environment= of any drop-in: set OLLAMA_HOST={} there, then run `systemctl restart ollama`; \
             nothing was changed",
            file.display(),
            target.text()
        )));
    }
    let foreign: Vec<String> = exposed
        .iter()
        .filter(|l| l.owner.as_ref().is_some_and(|o| unit.main_pid == 0 || o.pid != unit.main_pid))
        .map(|l| describe_listener(l))
        .collect();
    if !foreign.is_empty() {
        return Ok(Hardening::Advice {
            found: format!(
                "port {} listens on {}, which is not ollama.service's process (PID {}): \
                 ollama.service's environment does not decide that",
                now.port,
                foreign.join(", "),
                unit.main_pid
            ),
            fix: ollama::exposure_fix(now.port),
        });
    }
    if now.is_loopback_only() && exposed.is_empty() && !unit.need_daemon_reload {
        let why = format!("ollama.service listens at {} (OLLAMA_HOST), on loopback only", now.text());
        return Ok(Hardening::Nothing(why));
    }
    let existing =
        ours(&service.dropin).map_err(|e| Error::input(format!("{}: {e}; nothing was changed", dropin.display())))?;
    let made_folder = existing.unwrap_or(service.dropin_dir == Existing::Missing);
    let content = dropin_text(&target, made_folder);
    let mut findings = vec![Finding::info(format!(
        "ollama.service listens at {} (its OLLAMA_HOST): reachable without the proxy's password; {}",
        now.text(),
        if listeners.is_empty() {
            "it is not running now".to_string()
        } else {
            format!("listening now: {}", listeners.join(", "))
        }
    ))];
    if unit.need_daemon_reload {
        findings.push(Finding::warning(
            "systemd has not read a changed unit file yet: the daemon-reload below applies those changes too",
        ));
    }
    let mut steps = Vec::new();
    if service.dropin_dir == Existing::Missing
        && let Some(dir) = dropin.parent()
    {
        steps.push(Step::create_dir(dir));
    }
    let file = RenderedFile {
        path: dropin.to_path_buf(),
        role: Role::OllamaService,
        mode: 0o644,
        group: "root".to_string(),
        secret: false,
        content,
    };
    match Snapshot::of(&service.dropin) {
        Some(previous) if previous.content == file.content.as_bytes() => {}
        Some(previous) => steps.push(Step::write(file, Change::Overwrite { previous })),
        None => steps.push(Step::write(file, Change::Create)),
    }
    reload_and_restart(service, &mut steps);
    if unit.is_active() {
        steps.push(Step::final_(Action::AwaitLoopbackOnly { port: target.port, limit: LISTEN_LIMIT }));
    } else {
        findings.push(Finding::info(format!(
            "ollama.service is not running: it listens at {} when it starts",
            target.text()
        )));
    }
    Ok(plan(findings, steps))
}

/// The plan that takes our drop-in out again (`--undo`), and the folder
/// with it if we made it and it is empty.
pub fn soften(service: &OllamaService, dropin: &Path) -> Result<Hardening> {
    let made_folder = match ours(&service.dropin) {
        Err(e) => return Err(Error::input(format!("{}: {e}; nothing was changed", dropin.display()))),
        Ok(None) => return Ok(Hardening::Nothing(format!("{} is not there: nothing to undo.", dropin.display()))),
        Ok(Some(made_folder)) => made_folder,
    };
    let mut steps = vec![Step::remove(dropin, &service.dropin)];
    if made_folder && let Some(dir) = dropin.parent() {
        steps.push(Step::undone_by(
            Action::RemoveDir { path: dir.to_path_buf() },
            vec![Action::CreateDir { path: dir.to_path_buf(), mode: 0o755 }],
        ));
    }
    if service.systemd && service.unit.is_some() {
        reload_and_restart(service, &mut steps);
        if service.unit.as_ref().is_some_and(|u| u.is_active()) {
            steps.push(Step::final_(Action::AwaitOllamaListening { limit: LISTEN_LIMIT }));
        }
    }
    Ok(plan(Vec::new(), steps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ollama::Unit;
    use crate::system::Owner;

    const DROPIN: &str = "/etc/systemd/system/ollama.service.d/zz-ollama-secure.conf";

    fn listener(address: &str, pid: u32) -> PortUse {
        PortUse { port: 11434, address: address.parse().unwrap(), owner: Some(Owner { pid, name: "ollama".into() }) }
    }

    fn service(host: Option<&str>, listeners: Vec<PortUse>) -> OllamaService {
        let environment = host.map(|h| ("OLLAMA_HOST".to_string(), h.to_string())).into_iter().collect();
        OllamaService {
            systemd: true,
            unit: Some(Unit {
                load_state: "loaded".into(),
                active_state: "active".into(),
                main_pid: 7,
                environment,
                ..Unit::default()
            }),
            environment_files: Vec::new(),
            dropin: Existing::Missing,
            dropin_dir: Existing::Missing,
            listeners,
        }
    }

    fn steps(hardening: Hardening) -> Vec<Step> {
        match hardening {
            Hardening::Plan(plan) => plan.steps,
            other => panic!("no plan: {other:?}"),
        }
    }

    #[test]
    fn an_exposed_unit_gets_the_dropin_a_reload_a_restart_and_the_proof() {
        let s = service(Some("0.0.0.0"), vec![listener("0.0.0.0", 7)]);
        let steps = steps(harden(&s, Path::new(DROPIN), None).unwrap());
        let text: Vec<String> = steps.iter().map(|s| super::super::undo_text(&s.action)).collect();
        assert_eq!(
            text,
            [
                "create the folder /etc/systemd/system/ollama.service.d again",
                &format!("write {DROPIN}"),
                "run `systemctl daemon-reload`",
                "run `systemctl restart ollama`",
                "wait until port 11434 listens on loopback only",
            ]
        );
        let Action::Write { file, change: Change::Create } = &steps[1].action else { panic!() };
        assert!(file.content.starts_with(ollama::DROPIN_MARKER), "{}", file.content);
        assert!(file.content.contains(MADE_FOLDER), "{}", file.content);
        assert!(file.content.ends_with("Environment=\"OLLAMA_HOST=127.0.0.1:11434\"\n"));
        // Undone in the order systemd needs: file, reload, restart.
        assert_eq!(steps[3].undo, [systemctl(&["daemon-reload"]), restart()]);
    }

    #[test]
    fn it_keeps_the_port_and_follows_the_proxys_upstream() {
        let s = service(Some(":8080"), Vec::new());
        let Action::Write { file, .. } = &steps(harden(&s, Path::new(DROPIN), None).unwrap())[1].action else {
            panic!()
        };
        assert!(file.content.contains("OLLAMA_HOST=127.0.0.1:8080"), "{}", file.content);
        let upstream = fields::upstream("[::1]:8080").unwrap();
        let Action::Write { file, .. } = &steps(harden(&s, Path::new(DROPIN), Some(&upstream)).unwrap())[1].action
        else {
            panic!()
        };
        assert!(file.content.contains("OLLAMA_HOST=[::1]:8080"), "{}", file.content);
        let remote = fields::upstream("192.0.2.7:11434").unwrap();
        assert!(harden(&s, Path::new(DROPIN), Some(&remote)).is_err());
    }

    #[test]
    fn loopback_already_changes_nothing() {
        for host in [None, Some("127.0.0.1:11434"), Some("[::1]:11434")] {
            let s = service(host, vec![listener("127.0.0.1", 7)]);
            assert!(matches!(harden(&s, Path::new(DROPIN), None).unwrap(), Hardening::Nothing(_)), "{host:?}");
        }
    }

    #[test]
    fn what_the_unit_does_not_decide_gets_the_fix_in_words() {
        // Docker's proxy holds the port, not the unit's process.
        let mut s = service(None, vec![listener("0.0.0.0", 99)]);
        assert!(matches!(harden(&s, Path::new(DROPIN), None).unwrap(), Hardening::Advice { .. }));
        // No systemd: the fix for each way Ollama is started.
        s.systemd = false;
        let Hardening::Advice { found, fix } = harden(&s, Path::new(DROPIN), None).unwrap() else { panic!() };
        assert!(found.contains("systemd is not running"), "{found}");
        assert!(fix.contains("-p 127.0.0.1:11434:11434"), "{fix}");
        // An environment file's OLLAMA_HOST wins over any drop-in: refused.
        let mut s = service(None, vec![listener("0.0.0.0", 7)]);
        let file = std::path::PathBuf::from("/etc/default/ollama");
        s.unit.as_mut().unwrap().environment_files.push(file.clone());
        let content = b"OLLAMA_HOST=0.0.0.0\n".to_vec();
        s.environment_files.push((file, Existing::File { content, mode: 0o644, uid: 0, gid: 0 }));
        let error = harden(&s, Path::new(DROPIN), None).unwrap_err().to_string();
        assert!(error.contains("/etc/default/ollama"), "{error}");
    }

    #[test]
    fn a_dropin_of_someone_elses_is_never_replaced_and_ours_is_undone() {
        let mut s = service(Some("0.0.0.0"), vec![listener("0.0.0.0", 7)]);
        s.dropin_dir = Existing::Dir { mode: 0o755, uid: 0, gid: 0 };
        s.dropin = Existing::File { content: b"[Service]\n".to_vec(), mode: 0o644, uid: 0, gid: 0 };
        assert!(harden(&s, Path::new(DROPIN), None).is_err());
        assert!(soften(&s, Path::new(DROPIN)).is_err());
        // Ours, in a folder that was there: the folder stays at --undo.
        let content = dropin_text(&Bind { host: "127.0.0.1".into(), port: 11434 }, false).into_bytes();
        s.dropin = Existing::File { content, mode: 0o644, uid: 0, gid: 0 };
        let undo = steps(soften(&s, Path::new(DROPIN)).unwrap());
        let text: Vec<String> = undo.iter().map(|s| super::super::undo_text(&s.action)).collect();
        assert_eq!(
            text,
            [
                format!("remove {DROPIN}"),
                "run `systemctl daemon-reload`".into(),
                "run `systemctl restart ollama`".into(),
                "wait until Ollama listens again".into()
            ]
        );
        // Ours, in a folder we made: it goes too (when empty).
        let content = dropin_text(&Bind { host: "127.0.0.1".into(), port: 11434 }, true).into_bytes();
        s.dropin = Existing::File { content, mode: 0o644, uid: 0, gid: 0 };
        let undo = steps(soften(&s, Path::new(DROPIN)).unwrap());
        assert!(matches!(&undo[1].action, Action::RemoveDir { .. }));
        s.dropin = Existing::Missing;
        assert!(matches!(soften(&s, Path::new(DROPIN)).unwrap(), Hardening::Nothing(_)));
    }
}
