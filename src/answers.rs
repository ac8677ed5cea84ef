//! The answers file (version 1) as the user writes it: raw values, no I/O
//! beyond reading the file, no validation beyond YAML types. `config` turns it
//! into a checked `Config`. The wizard produces the same structure.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Problem, Result};

/// No answers file comes near this size; a bigger one is refused unread.
const ANSWERS_LIMIT: u64 = 1024 * 1024;

/// A YAML scalar that may be written as a number or a string (`timeout: 600`
/// or `timeout: 10m`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Text(String),
}

impl Scalar {
    pub fn as_text(&self) -> String {
        match self {
            Scalar::Int(n) => n.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https: Option<HttpsAnswers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bcrypt_cost: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<PathAnswers>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserAnswer {
    #[serde(default)]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsAnswers {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_ca_root: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_port: Option<i64>,
}

/// Every file location the tool uses; each defaults per OS (see `paths`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PathAnswers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx_conf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx_site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx_site_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub htpasswd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx_pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_cache: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_socket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caddyfile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caddy_site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caddy_pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caddy_log: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_webroot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub letsencrypt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certbot_work: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certbot_logs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
}

impl Answers {
    /// Parses answers from YAML text; `source` names the file in errors.
    /// Errors name the field (`users[1].pasword`) and the line.
    pub fn from_yaml(text: &str, source: &str) -> Result<Answers> {
        let deserializer = serde_yaml::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let field = err.path().to_string();
            let inner = err.into_inner();
            let message = inner.to_string();
            // serde_yaml appends " at line L column C"; keep it, it helps.
            let problem = if field == "." || field.is_empty() {
                Problem { source: Some(source.to_string()), field: None, message }
            } else {
                Problem::at(source, &field, message)
            };
            Error::Input(vec![problem])
        })
    }

    pub fn load(path: &Path) -> Result<Answers> {
        let text = crate::system::read_limited(path, ANSWERS_LIMIT)
            .and_then(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
            })
            .map_err(|e| Error::input(format!("cannot read answers file {}: {e}", path.display())))?;
        Answers::from_yaml(&text, &path.display().to_string())
    }

    /// These answers with every typed password, and every generated one
    /// that has been shown (`shown`), replaced by its hash: what
    /// `--save-answers` writes, so the file repeats the run without any
    /// plaintext password. A generated password nobody has seen (a dry
    /// run) stays `generate: true`.
    pub fn with_hashes(&self, hashes: &[(crate::fields::Username, String)], shown: bool) -> Answers {
        let mut saved = self.clone();
        for user in &mut saved.users {
            let hash = hashes.iter().find(|(name, _)| name.as_str() == user.username).map(|(_, h)| h.clone());
            let generated = user.generate == Some(true);
            if user.password.is_some() || (generated && shown) {
                *user = UserAnswer { username: user.username.clone(), password_hash: hash, ..Default::default() };
            }
        }
        saved
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("answers always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = Answers::from_yaml("proxy: nginx\ndomian: x\n", "a.yaml").unwrap_err();
        assert!(err.to_string().starts_with("a.yaml: "), "{err}");
        assert!(err.to_string().contains("unknown field `domian`"), "{err}");

        let err = Answers::from_yaml("users:\n  - username: a\n    pasword: x\n", "a.yaml").unwrap_err();
        assert!(err.to_string().contains("users[0]"), "{err}");
        assert!(err.to_string().contains("pasword"), "{err}");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = Answers::from_yaml("port: [1]\n", "a.yaml").unwrap_err();
        assert!(err.to_string().contains("a.yaml: port: "), "{err}");
    }

    #[test]
    fn timeout_as_number_or_text() {
        let a = Answers::from_yaml("timeout: 600\n", "a").unwrap();
        assert_eq!(a.timeout, Some(Scalar::Int(600)));
        let a = Answers::from_yaml("timeout: 10m\n", "a").unwrap();
        assert_eq!(a.timeout, Some(Scalar::Text("10m".into())));
    }
}
