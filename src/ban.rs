//! `ban`: a fail2ban jail and filter that ban an address after repeated
//! failed logins, read from the site's access log, and the commands that
//! validate, start, reload and stop fail2ban. Pure.
//!
//! The proxy's own `auth_basic` error log is not used: with nginx's cached
//! checks in an auth-only server, and with Caddy, it does not name the
//! client; our access log does, in both proxies.

use crate::paths::Paths;
use crate::plan::{Command, Purpose, Step};
use crate::render::{self, RenderedFile, Role};
use crate::setup::Settings;

/// Our jail's name (the jail file's section).
const JAIL: &str = "ollama-secure";

const TEMPLATES: &[(&str, &str)] = &[
    ("fail2ban-jail.conf", include_str!("../templates/fail2ban-jail.conf.j2")),
    ("fail2ban-filter.conf", include_str!("../templates/fail2ban-filter.conf.j2")),
];

/// The jail and the filter, when the settings ask for bans.
pub fn files(settings: &Settings) -> crate::error::Result<Vec<RenderedFile>> {
    let Some(ban) = settings.site.ban else { return Ok(Vec::new()) };
    let site = &settings.site;
    let paths = &settings.paths;
    let ports: Vec<String> =
        std::iter::once(site.port).chain(site.https.as_ref().map(|h| h.http_port)).map(|p| p.to_string()).collect();
    let env = render::environment(TEMPLATES);
    let ctx = minijinja::context! {
        proxy => settings.proxy.name(),
        access_log => paths.access_log.display().to_string(),
        after => ban.after,
        within => ban.within_secs,
        bantime => ban.for_secs,
        ports => ports.join(","),
    };
    let file = |path, content| RenderedFile {
        path,
        role: Role::Ban,
        mode: 0o644,
        group: "root".into(),
        secret: false,
        content,
    };
    Ok(vec![
        file(paths.fail2ban_jail(), render::render_template(&env, "fail2ban-jail.conf", &ctx)?),
        file(paths.fail2ban_filter(), render::render_template(&env, "fail2ban-filter.conf", &ctx)?),
    ])
}

fn client(paths: &Paths, args: &[&str]) -> Command {
    Command::new("fail2ban-client", &["-c"]).arg_path(&paths.fail2ban).args(args)
}

/// Whether fail2ban answers (exit 0: it runs).
pub fn ping(paths: &Paths) -> Command {
    client(paths, &["ping"])
}

/// Reads the whole configuration, ours and every other jail, and fails on
/// the first error.
pub fn test(paths: &Paths) -> Command {
    client(paths, &["-t"])
}

pub fn validate(paths: &Paths) -> Step {
    Step::run(test(paths), Purpose::ValidateBans { ours: vec![paths.fail2ban_jail(), paths.fail2ban_filter()] })
}

/// Whether the running fail2ban runs our jail (exit 0).
pub fn jail_status(paths: &Paths) -> Command {
    client(paths, &["status", JAIL])
}

/// How long a fail2ban just started or reloaded has to answer for our jail.
pub const VERIFY_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

/// The proof, after a start or reload, that our jail runs: a fail2ban
/// that was running already (started by its package on install) would
/// otherwise leave it out without a word.
pub fn verify(paths: &Paths) -> Step {
    Step::run(jail_status(paths), Purpose::VerifyBans)
}

/// systemd: a fail2ban its package started on install reads our jail too.
fn start(paths: &Paths, systemd: bool) -> Command {
    if systemd { Command::new("systemctl", &["reload-or-restart", "fail2ban"]) } else { client(paths, &["start"]) }
}

fn stop(paths: &Paths, systemd: bool) -> Command {
    if systemd { Command::new("systemctl", &["stop", "fail2ban"]) } else { client(paths, &["stop"]) }
}

/// The running server reads its configuration again (jails added,
/// changed or removed; a removed jail's bans are lifted).
fn reload(paths: &Paths) -> Command {
    client(paths, &["reload"])
}

pub fn start_step(paths: &Paths, systemd: bool) -> Step {
    Step::undone_by(
        crate::plan::Action::Run { command: start(paths, systemd), purpose: Purpose::StartBans },
        vec![crate::plan::Action::Run { command: stop(paths, systemd), purpose: Purpose::StopBans }],
    )
}

pub fn stop_step(paths: &Paths, systemd: bool) -> Step {
    Step::undone_by(
        crate::plan::Action::Run { command: stop(paths, systemd), purpose: Purpose::StopBans },
        vec![crate::plan::Action::Run { command: start(paths, systemd), purpose: Purpose::StartBans }],
    )
}

/// A reload is undone by reloading again, once the old files are back.
pub fn reload_step(paths: &Paths) -> Step {
    let action = || crate::plan::Action::Run { command: reload(paths), purpose: Purpose::ReloadBans };
    Step::undone_by(action(), vec![action()])
}

/// What a failing `fail2ban-client -t` most likely needs, beyond its own
/// words, when it fails before our jail is there.
pub fn broken_before_us(output: &str) -> String {
    // Its warnings about options left at their defaults are noise here.
    let errors: Vec<&str> = output.lines().filter(|line| line.contains("ERROR")).collect();
    let said: Vec<&str> = if errors.is_empty() { output.trim_end().lines().collect() } else { errors };
    // Indented under the blocker's bullet.
    let said: String = said.iter().map(|line| format!("\n    {line}")).collect();
    let mut text = format!("fail2ban's configuration fails before ollama-secure adds its jail; fix it first:{said}");
    if output.contains("Have not found any log file for sshd jail") {
        text.push_str(
            "\n    Debian's fail2ban enables an sshd jail that reads /var/log/auth.log, which only rsyslog writes. \
             With systemd, set `backend = systemd` under [sshd] in /etc/fail2ban/jail.d/defaults-debian.conf; \
             without it, install rsyslog, or set `enabled = false` there.",
        );
    }
    text
}
