//! The pure core of `init` and `render`: config + facts → credentials →
//! rendered files → plan. Both `--dry-run` and apply get their plan here.

use std::collections::BTreeMap;

use crate::answers::{Answers, UserAnswer};
use crate::config::{Config, Proxy};
use crate::credentials::{self, Credential, Entropy};
use crate::error::Result;
use crate::facts::{Existing, Facts};
use crate::plan::{self, Plan};
use crate::render;
use crate::userfile::{self, Entry};

pub struct Prepared {
    pub credentials: Vec<Credential>,
    /// Users found installed but absent from the answers: kept, and named.
    pub kept_users: Vec<String>,
    pub plan: Plan,
}

/// Users in the installed user file (htpasswd, or our Caddy site), if any.
pub fn installed_users(config: &Config, facts: &Facts) -> Result<Vec<Entry>> {
    let path = match config.proxy {
        Proxy::Nginx => &config.paths.htpasswd,
        Proxy::Caddy => &config.paths.caddy_site,
    };
    let Existing::File { content, .. } = facts.file(path) else { return Ok(Vec::new()) };
    let (text, source) = (String::from_utf8_lossy(content), path.display().to_string());
    match config.proxy {
        Proxy::Nginx => userfile::parse_htpasswd(&text, &source),
        Proxy::Caddy => userfile::parse_caddy_site(&text, &source),
    }
}

/// The answers to save with `--save-answers`: the same run again, without
/// plaintext passwords. A typed password becomes its hash. A generated one
/// becomes its hash once it has been shown (`passwords_shown`); in a dry
/// run nobody has seen it, so it stays `generate: true`.
pub fn answers_to_save(answers: &Answers, credentials: &[Credential], passwords_shown: bool) -> Answers {
    let mut saved = answers.clone();
    for user in &mut saved.users {
        let hash = credentials.iter().find(|c| c.username == user.username).map(|c| c.hash.clone());
        let typed = user.password.is_some();
        let generated = user.generate == Some(true);
        if typed || (generated && passwords_shown) {
            *user = UserAnswer { username: user.username.clone(), password_hash: hash, ..Default::default() };
        }
    }
    saved
}

pub fn prepare(config: &Config, facts: &Facts, entropy: &mut dyn Entropy) -> Result<Prepared> {
    let installed = installed_users(config, facts)?;
    let existing: BTreeMap<String, String> = installed.iter().map(|e| (e.username.clone(), e.hash.clone())).collect();
    let mut credentials = credentials::resolve(&config.users, config.cost, &existing, entropy)?;
    // Users added later (by `users add` or by hand) are not in the answers
    // file; dropping them silently would lock people out.
    let mut kept_users = Vec::new();
    for entry in installed {
        if !config.users.iter().any(|u| u.username == entry.username) {
            kept_users.push(entry.username.clone());
            credentials.push(Credential { username: entry.username, hash: entry.hash, generated: None });
        }
    }
    let rendered = render::render(config, &credentials)?;
    let plan = plan::build(config, rendered, facts)?;
    Ok(Prepared { credentials, kept_users, plan })
}
