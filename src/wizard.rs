//! The `init` wizard: asks on the terminal what an answers file says, with
//! a default and inline validation for every question (a bad answer is
//! asked again, with the reason). It produces the same `Answers` as a YAML
//! file, so everything after it (validation, render, plan) is shared.
//! Nothing on the system changes while it asks.

use std::io::IsTerminal;
use std::time::Duration;

use dialoguer::theme::{ColorfulTheme, SimpleTheme, Theme};
use dialoguer::{Confirm, Input, Password, Select};

use crate::access::Role;
use crate::answers::{Answers, HttpsAnswers, Upstreams, UserAnswer};
use crate::error::{Error, Result};
use crate::facts::{self, OllamaProbe};
use crate::fields;
use crate::proxy::{Certificates, ProxyKind};

/// Colours and symbols only on a terminal, and never with NO_COLOR set.
/// (The same choice as `style`: prompts go to standard error.)
pub fn theme() -> Box<dyn Theme> {
    if crate::style::stderr().is_rich() { Box::new(ColorfulTheme::default()) } else { Box::new(SimpleTheme) }
}

/// Whether there is someone to ask: stdin and stderr (where the prompts go)
/// are both terminals.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Any prompt error (Ctrl-C, a closed terminal) ends the run before it
/// changed anything.
fn cancelled(e: dialoguer::Error) -> Error {
    // A list prompt that fails returns with the cursor still hidden.
    use std::io::{IsTerminal, Write};
    if std::io::stderr().is_terminal() {
        let _ = std::io::stderr().write_all(b"\x1b[?25h");
    }
    Error::input(format!("the wizard was cancelled ({e}); nothing was changed"))
}

/// Asks the question `build` makes until `check` accepts the answer. The
/// refusal is printed here, as an ordinary line that scrolls away like any
/// other: dialoguer's own error line is redrawn in place and counted as
/// one line, so a message wider than the terminal was half overwritten by
/// the next prompt. The accepted answer stays on screen as dialoguer shows
/// one. `build` gets the answer refused last, if any.
fn ask_until_valid<'a>(
    theme: &'a dyn Theme,
    prompt: &str,
    build: impl Fn(Option<&str>) -> Input<'a, String>,
    check: impl Fn(&str) -> std::result::Result<(), String>,
) -> Result<String> {
    let mut refused: Option<String> = None;
    loop {
        let answer = build(refused.as_deref()).with_prompt(prompt).report(false).interact_text().map_err(cancelled)?;
        match check(&answer) {
            Ok(()) => {
                let mut line = String::new();
                if theme.format_input_prompt_selection(&mut line, prompt, &answer).is_ok() {
                    crate::errln!("{line}");
                }
                return Ok(answer);
            }
            Err(why) => {
                crate::errln!("  {}", crate::style::stderr().paint(&why, crate::style::Tone::Bad));
                refused = Some(answer);
            }
        }
    }
}

/// A new password, typed twice (hidden), asked again until both agree;
/// as `ask_until_valid`, a mismatch is an ordinary line and no stale
/// prompt is left behind.
fn ask_new_password(theme: &dyn Theme, username: &str) -> Result<String> {
    let prompt = format!("Password for {username}");
    loop {
        let hidden =
            |prompt: &str| Password::with_theme(theme).with_prompt(prompt).report(false).interact().map_err(cancelled);
        let first = hidden(&prompt)?;
        if let Err(why) = fields::password(&first) {
            crate::errln!("  {}", crate::style::stderr().paint(&why, crate::style::Tone::Bad));
            continue;
        }
        if hidden("Repeat it")? == first {
            let mut line = String::new();
            if theme.format_password_prompt_selection(&mut line, &prompt).is_ok() {
                crate::errln!("{line}");
            }
            return Ok(first);
        }
        crate::errln!(
            "  {}",
            crate::style::stderr().paint("The two passwords differ; try again.", crate::style::Tone::Bad)
        );
    }
}

/// A question that may be left empty; anything else must pass `check`.
/// A default (from `--defaults`) is typed in already, not hidden behind an
/// empty answer: Enter keeps it, and clearing the line still means "none".
fn optional(
    theme: &dyn Theme,
    prompt: &str,
    default: Option<&str>,
    check: fn(&str) -> std::result::Result<(), String>,
) -> Result<String> {
    let build = |_: Option<&str>| {
        let input = Input::with_theme(theme).allow_empty(true);
        match default.filter(|d| !d.is_empty()) {
            Some(default) => input.with_initial_text(default),
            None => input,
        }
    };
    let answer = ask_until_valid(theme, prompt, build, |v| if v.trim().is_empty() { Ok(()) } else { check(v) })?;
    Ok(answer.trim().to_string())
}

fn ask_proxy(theme: &dyn Theme, defaults: &Answers) -> Result<ProxyKind> {
    let installed = |kind: &ProxyKind| which::which(kind.name()).is_ok();
    let proxies = ProxyKind::ALL;
    let labels: Vec<String> =
        proxies.iter().map(|p| if installed(p) { format!("{p} (installed)") } else { p.to_string() }).collect();
    // The proxy the defaults name, else the first one installed.
    let preselect = defaults
        .proxy
        .as_deref()
        .and_then(ProxyKind::parse)
        .and_then(|named| proxies.iter().position(|p| *p == named))
        .or_else(|| proxies.iter().position(installed))
        .unwrap_or(0);
    let chosen = Select::with_theme(theme)
        .with_prompt("Proxy")
        .items(&labels)
        .default(preselect)
        .interact()
        .map_err(cancelled)?;
    Ok(proxies[chosen])
}

/// HTTPS is offered only for a host name (certificates are issued for names).
fn ask_https(theme: &dyn Theme, defaults: &Answers, domain: &str) -> Result<Option<HttpsAnswers>> {
    let is_name = !domain.is_empty() && fields::host(domain).is_ok_and(|h| h.is_name());
    if !is_name {
        if defaults.https.as_ref().is_some_and(|h| h.enabled) {
            crate::errln!("  HTTPS needs a domain name (certificates are issued for names); it is not set up.");
        }
        return Ok(None);
    }
    let https_defaults = defaults.https.clone().unwrap_or(HttpsAnswers { enabled: true, ..Default::default() });
    // Prompts stay within 80 columns: dialoguer redraws a prompt as one
    // line, and one the terminal wrapped leaves a stale copy behind.
    crate::errln!("  HTTPS needs {domain}'s DNS pointing here and port 80 open.");
    let enabled = Confirm::with_theme(theme)
        .with_prompt(format!("HTTPS with a certificate for {domain}?"))
        .default(https_defaults.enabled)
        .interact()
        .map_err(cancelled)?;
    if !enabled {
        return Ok(None);
    }
    let email =
        optional(theme, "Email for the certificate account (empty: none)", https_defaults.email.as_deref(), |v| {
            fields::email(v).map(|_| ())
        })?;
    Ok(Some(HttpsAnswers { enabled: true, email: (!email.is_empty()).then_some(email), ..https_defaults }))
}

/// The site's port: one another program listens on is refused here, as
/// the plan would refuse it after every other question.
fn ask_port(theme: &dyn Theme, defaults: &Answers, https: bool, proxy: ProxyKind) -> Result<String> {
    let default_port = match defaults.port {
        Some(port) => port.to_string(),
        None if https => "443".to_string(),
        None => "8080".to_string(),
    };
    // A port refused because it is busy is the default of the next try:
    // Enter asks again once its program is stopped.
    let build = |refused: Option<&str>| {
        Input::with_theme(theme).default(refused.map_or_else(|| default_port.clone(), |r| r.trim().to_string()))
    };
    ask_until_valid(theme, "Port to listen on", build, |v| {
        let port = v.trim().parse::<i64>().map_err(|_| format!("{v:?} is not a number")).and_then(fields::port)?;
        match facts::port_taken(&crate::system::RealSystem, port, proxy.name()) {
            Some(taken) => Err(format!("{taken}: choose another port, or stop it and press Enter again")),
            None => Ok(()),
        }
    })
}

/// The plain-HTTP port HTTPS needs (the challenge, the redirect) is not
/// asked: the wizard says at once if another program holds it, and what
/// can be done.
fn say_if_http_port_taken(defaults: &Answers, proxy: ProxyKind) {
    let port = defaults.https.as_ref().and_then(|h| h.http_port).and_then(|p| u16::try_from(p).ok()).unwrap_or(80);
    let Some(taken) = facts::port_taken(&crate::system::RealSystem, port, proxy.name()) else { return };
    crate::errln!(
        "  Note: {taken}. HTTPS needs it for the certificate's HTTP challenge and the redirect: stop that program \
         before applying (init refuses while it listens there){}.",
        match proxy.module().certificates() {
            Certificates::Certbot => {
                ", or give another https.http_port in a --defaults file, with port 80 forwarded to it".to_string()
            }
            // Its own ACME client uses its global HTTP port, which is not ours.
            Certificates::BuiltIn => format!("; {} needs it to be port 80", proxy.title()),
        }
    );
}

/// Where Ollama listens, and whether it answers there (said, not judged:
/// it may be started later).
fn ask_upstream(theme: &dyn Theme, defaults: &Answers) -> Result<Upstreams> {
    let default = match &defaults.upstream {
        // Several servers from --defaults are used as written, like the
        // settings the wizard does not ask about.
        Some(Upstreams::Several(several)) if several.len() > 1 => return Ok(Upstreams::Several(several.clone())),
        Some(up) => up.texts().first().map_or_else(|| "127.0.0.1:11434".to_string(), |t| t.to_string()),
        None => "127.0.0.1:11434".to_string(),
    };
    let build = |_: Option<&str>| Input::with_theme(theme).default(default.clone());
    let upstream = ask_until_valid(theme, "Where Ollama listens", build, |v| fields::upstream(v).map(|_| ()))?;
    let url = fields::upstream(&upstream).map(|u| u.url()).unwrap_or_default();
    match facts::probe_ollama(&crate::system::RealSystem, &url, Duration::from_secs(3)) {
        OllamaProbe::Answers { version } => crate::errln!("  Ollama {version} answers at {url}."),
        OllamaProbe::Unexpected(why) => crate::errln!("  Something answers at {url}, but not like Ollama ({why})."),
        OllamaProbe::NotReachable(why) => {
            crate::errln!("  Ollama does not answer at {url} ({why}); the proxy will answer 502 until it does.")
        }
        OllamaProbe::NotProbed => {}
    }
    Ok(Upstreams::One(upstream))
}

/// One user: a name not taken yet, and a generated or typed password.
fn ask_user(theme: &dyn Theme, taken: Vec<String>) -> Result<UserAnswer> {
    let first = taken.is_empty();
    let build = |_: Option<&str>| {
        let input = Input::with_theme(theme);
        if first { input.default("ollama".to_string()) } else { input }
    };
    let username = ask_until_valid(theme, "Username", build, |v| {
        fields::username(v)?;
        if taken.iter().any(|t| t == v) { Err(format!("{v} is already in the list")) } else { Ok(()) }
    })?;
    let choice = Select::with_theme(theme)
        .with_prompt(format!("How should {username} get a password?"))
        .items(["generate a strong password (shown once at the end)", "type a password"])
        .default(0)
        .interact()
        .map_err(cancelled)?;
    if choice == 0 {
        let role = ask_role(theme, &username)?;
        return Ok(UserAnswer { username, generate: Some(true), role, ..Default::default() });
    }
    let password = ask_new_password(theme, &username)?;
    if password.chars().count() < crate::config::SHORT_PASSWORD {
        crate::errln!(
            "  That password has fewer than {} characters; a generated one is stronger.",
            crate::config::SHORT_PASSWORD
        );
    }
    let role = ask_role(theme, &username)?;
    Ok(UserAnswer { username, password: Some(password), role, ..Default::default() })
}

/// The role: least privilege first. `None` is the user role (the answers
/// file's default), so saved answers stay as short as typed ones.
fn ask_role(theme: &dyn Theme, username: &str) -> Result<Option<String>> {
    let choice = Select::with_theme(theme)
        .with_prompt(format!("What may {username} do?"))
        .items([
            "use the models: chat, generate, embeddings, list them (role user)",
            "also manage models: pull, push, create, copy, delete (role admin)",
        ])
        .default(0)
        .interact()
        .map_err(cancelled)?;
    Ok((choice == 1).then(|| Role::Admin.name().to_string()))
}

fn ask_users(theme: &dyn Theme) -> Result<Vec<UserAnswer>> {
    let mut users: Vec<UserAnswer> = Vec::new();
    loop {
        users.push(ask_user(theme, users.iter().map(|u| u.username.clone()).collect())?);
        let more =
            Confirm::with_theme(theme).with_prompt("Add another user?").default(false).interact().map_err(cancelled)?;
        if !more {
            return Ok(users);
        }
    }
}

/// Asks the questions, starting from `defaults` (a `--defaults` file, or
/// empty): its values are the questions' defaults, and what the wizard does
/// not ask (paths, listen_address, allow_from, cors_origins, ban, timeout, bcrypt_cost, file_group, install,
/// the ACME server and its CA root) is taken from it as it is.
pub fn ask(defaults: &Answers) -> Result<Answers> {
    let theme = theme();
    let theme = theme.as_ref();
    crate::errln!("ollama-secure {}: protect Ollama with a password.\n", env!("CARGO_PKG_VERSION"));
    let proxy = ask_proxy(theme, defaults)?;
    let domain = optional(theme, "Domain name (empty: answer on any host name)", defaults.domain.as_deref(), |v| {
        fields::host(v).map(|_| ())
    })?;
    let https = ask_https(theme, defaults, &domain)?;
    if https.is_some() {
        say_if_http_port_taken(defaults, proxy);
    }
    let port = ask_port(theme, defaults, https.is_some(), proxy)?;
    let upstream = ask_upstream(theme, defaults)?;
    let users = ask_users(theme)?;
    Ok(Answers {
        version: Some(1),
        proxy: Some(proxy.name().to_string()),
        domain: (!domain.is_empty()).then_some(domain),
        port: port.trim().parse().ok(),
        upstream: Some(upstream),
        users,
        https,
        install: Some(defaults.install.unwrap_or(true)),
        // Answers the wizard gave are not at any line of the defaults file.
        text: None,
        ..defaults.clone()
    })
}

/// When the answers cannot be applied now: whether to keep them, and
/// where (`None`: not kept).
pub fn ask_to_save() -> Result<Option<std::path::PathBuf>> {
    let theme = theme();
    let keep = Confirm::with_theme(theme.as_ref())
        .with_prompt("Save these answers, to apply them later with --answers?")
        .default(true)
        .interact()
        .map_err(cancelled)?;
    if !keep {
        return Ok(None);
    }
    let build = |_: Option<&str>| Input::with_theme(theme.as_ref()).default("ollama-secure-answers.yaml".to_string());
    let path = ask_until_valid(theme.as_ref(), "Save them to", build, |v| {
        if v.trim().is_empty() { Err("give a file name".to_string()) } else { Ok(()) }
    })?;
    Ok(Some(std::path::PathBuf::from(path.trim())))
}

/// The final question before anything changes.
pub fn confirm(question: &str) -> Result<bool> {
    Confirm::with_theme(theme().as_ref()).with_prompt(question).default(false).interact().map_err(cancelled)
}
