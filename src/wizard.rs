//! The `init` wizard: asks on the terminal what an answers file says, with
//! a default and inline validation for every question (a bad answer is
//! asked again, with the reason). It produces the same `Answers` as a YAML
//! file, so everything after it (validation, render, plan) is shared.
//! Nothing on the system changes while it asks.

use std::io::IsTerminal;
use std::time::Duration;

use dialoguer::theme::{ColorfulTheme, SimpleTheme, Theme};
use dialoguer::{Confirm, Input, Password, Select};

use crate::answers::{Answers, HttpsAnswers, UserAnswer};
use crate::error::{Error, Result};
use crate::facts::{self, OllamaProbe};
use crate::fields;

/// Colours and symbols only on a terminal, and never with NO_COLOR set.
pub fn theme() -> Box<dyn Theme> {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if no_color || !std::io::stderr().is_terminal() {
        Box::new(SimpleTheme)
    } else {
        Box::new(ColorfulTheme::default())
    }
}

/// Whether there is someone to ask: stdin and stderr (where the prompts go)
/// are both terminals.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Any prompt error (Ctrl-C, a closed terminal) ends the run before it
/// changed anything.
fn cancelled(e: dialoguer::Error) -> Error {
    Error::input(format!("the wizard was cancelled ({e}); nothing was changed"))
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
    let mut input = Input::with_theme(theme)
        .with_prompt(prompt)
        .allow_empty(true)
        .validate_with(move |v: &String| if v.is_empty() { Ok(()) } else { check(v) });
    if let Some(default) = default.filter(|d| !d.is_empty()) {
        input = input.with_initial_text(default);
    }
    let answer: String = input.interact_text().map_err(cancelled)?;
    Ok(answer.trim().to_string())
}

/// Asks the questions, starting from `defaults` (a `--defaults` file, or
/// empty): its values are the questions' defaults, and what the wizard does
/// not ask (paths, listen_address, timeout, bcrypt_cost, file_group, install,
/// the ACME server) is taken from it as it is.
pub fn ask(defaults: &Answers) -> Result<Answers> {
    let theme = theme();
    let theme = theme.as_ref();
    eprintln!("ollama-secure {}: protect Ollama with a password.\n", env!("CARGO_PKG_VERSION"));

    let installed = |name: &str| which::which(name).is_ok();
    let proxies = ["nginx", "caddy"];
    let labels: Vec<String> =
        proxies.iter().map(|p| if installed(p) { format!("{p} (installed)") } else { p.to_string() }).collect();
    let preselect = match defaults.proxy.as_deref() {
        Some("caddy") => 1,
        Some(_) => 0,
        None if !installed("nginx") && installed("caddy") => 1,
        None => 0,
    };
    let proxy = Select::with_theme(theme)
        .with_prompt("Proxy")
        .items(&labels)
        .default(preselect)
        .interact()
        .map_err(cancelled)?;
    let proxy = proxies[proxy];

    let domain = optional(theme, "Domain name (empty: answer on any host name)", defaults.domain.as_deref(), |v| {
        fields::host(v).map(|_| ())
    })?;

    let is_name = !domain.is_empty() && fields::host(&domain).is_ok_and(|h| h.is_name());
    let https_defaults = defaults.https.clone().unwrap_or(HttpsAnswers { enabled: true, ..Default::default() });
    let https = if is_name {
        let enabled = Confirm::with_theme(theme)
            .with_prompt(format!("HTTPS with a certificate for {domain}? (needs DNS pointing here and port 80 open)"))
            .default(https_defaults.enabled)
            .interact()
            .map_err(cancelled)?;
        if enabled {
            let email = optional(
                theme,
                "Email for the certificate account (empty: none)",
                https_defaults.email.as_deref(),
                |v| fields::email(v).map(|_| ()),
            )?;
            Some(HttpsAnswers { enabled: true, email: (!email.is_empty()).then_some(email), ..https_defaults })
        } else {
            None
        }
    } else {
        if defaults.https.as_ref().is_some_and(|h| h.enabled) {
            eprintln!("  HTTPS needs a domain name (certificates are issued for names); it is not set up.");
        }
        None
    };

    let default_port = match defaults.port {
        Some(port) => port.to_string(),
        None if https.is_some() => "443".to_string(),
        None => "8080".to_string(),
    };
    let port: String = Input::with_theme(theme)
        .with_prompt("Port to listen on")
        .default(default_port)
        .validate_with(|v: &String| {
            v.trim().parse::<i64>().map_err(|_| format!("{v:?} is not a number")).and_then(fields::port).map(|_| ())
        })
        .interact_text()
        .map_err(cancelled)?;

    let upstream: String = Input::with_theme(theme)
        .with_prompt("Where Ollama listens")
        .default(defaults.upstream.clone().unwrap_or_else(|| "127.0.0.1:11434".to_string()))
        .validate_with(|v: &String| fields::upstream(v).map(|_| ()))
        .interact_text()
        .map_err(cancelled)?;
    let url = fields::upstream(&upstream).map(|u| u.url()).unwrap_or_default();
    match facts::probe_ollama(&url, Duration::from_secs(3)) {
        OllamaProbe::Answers { version } => eprintln!("  Ollama {version} answers at {url}."),
        OllamaProbe::Unexpected(why) => eprintln!("  Something answers at {url}, but not like Ollama ({why})."),
        OllamaProbe::NotReachable(why) => {
            eprintln!("  Ollama does not answer at {url} ({why}); the proxy will answer 502 until it does.")
        }
        OllamaProbe::NotProbed => {}
    }

    let mut users: Vec<UserAnswer> = Vec::new();
    loop {
        let taken: Vec<String> = users.iter().map(|u| u.username.clone()).collect();
        let username: String = Input::with_theme(theme)
            .with_prompt("Username")
            .default(if users.is_empty() { "ollama".to_string() } else { String::new() })
            .show_default(users.is_empty())
            .validate_with(move |v: &String| {
                fields::username(v)?;
                if taken.contains(v) { Err(format!("{v} is already in the list")) } else { Ok(()) }
            })
            .interact_text()
            .map_err(cancelled)?;
        let choice = Select::with_theme(theme)
            .with_prompt(format!("How should {username} get a password?"))
            .items(["generate a strong password (shown once at the end)", "type a password"])
            .default(0)
            .interact()
            .map_err(cancelled)?;
        let user = if choice == 0 {
            UserAnswer { username, generate: Some(true), ..Default::default() }
        } else {
            let password = Password::with_theme(theme)
                .with_prompt(format!("Password for {username}"))
                .with_confirmation("Repeat it", "The two passwords differ; try again.")
                .interact()
                .map_err(cancelled)?;
            if password.chars().count() < crate::config::SHORT_PASSWORD {
                eprintln!(
                    "  That password has fewer than {} characters; a generated one is stronger.",
                    crate::config::SHORT_PASSWORD
                );
            }
            UserAnswer { username, password: Some(password), ..Default::default() }
        };
        users.push(user);
        let more =
            Confirm::with_theme(theme).with_prompt("Add another user?").default(false).interact().map_err(cancelled)?;
        if !more {
            break;
        }
    }

    Ok(Answers {
        version: Some(1),
        proxy: Some(proxy.to_string()),
        domain: (!domain.is_empty()).then_some(domain),
        port: port.trim().parse().ok(),
        upstream: Some(upstream),
        users,
        https,
        install: Some(defaults.install.unwrap_or(true)),
        ..defaults.clone()
    })
}

/// The final question before anything changes.
pub fn confirm(question: &str) -> Result<bool> {
    Confirm::with_theme(theme().as_ref()).with_prompt(question).default(false).interact().map_err(cancelled)
}
