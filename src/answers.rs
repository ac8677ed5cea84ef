//! The answers file (version 1) as the user writes it: raw values, no I/O
//! beyond reading the file, no validation beyond YAML types. `config` turns it
//! into a checked `Config`. The wizard produces the same structure.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Problem, Result};

/// No answers file comes near this size; a bigger one is refused unread.
const ANSWERS_LIMIT: u64 = 1024 * 1024;

/// Answers files are a handful of keys a few levels deep; deeper nesting
/// is refused before the YAML parser (whose time grows with it) sees it.
const NESTING_LIMIT: usize = 32;
/// More unknown keys than this and the file is not an answers file.
const UNKNOWN_KEYS_LIMIT: usize = 20;

/// A YAML scalar that may be written as a number or a string (`timeout: 600`
/// or `timeout: 10m`); anything else is kept to be refused by validation
/// with a message about the value rather than about YAML types.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Text(String),
    Other(serde_yaml::Value),
}

impl Scalar {
    pub fn as_text(&self) -> String {
        match self {
            Scalar::Int(n) => n.to_string(),
            Scalar::Text(s) => s.clone(),
            Scalar::Other(serde_yaml::Value::Number(n)) => n.to_string(),
            Scalar::Other(other) => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
        }
    }
}

/// The deepest nesting of flow collections (`[`, `{`) outside quotes and
/// comments, and the line where it is first over `limit`.
fn too_deep(text: &str, limit: usize) -> Option<usize> {
    let (mut depth, mut line, mut quote, mut comment) = (0usize, 1usize, None, false);
    let mut previous = ' ';
    for c in text.chars() {
        match (c, quote) {
            ('\n', _) => {
                line += 1;
                comment = false;
            }
            _ if comment => {}
            (q, Some(open)) if q == open => quote = None,
            (_, Some(_)) => {}
            ('#', None) if previous.is_whitespace() => comment = true,
            ('"' | '\'', None) => quote = Some(c),
            ('[' | '{', None) => {
                depth += 1;
                if depth > limit {
                    return Some(line);
                }
            }
            (']' | '}', None) => depth = depth.saturating_sub(1),
            _ => {}
        }
        previous = c;
    }
    None
}

/// A problem found while reading the YAML, named by its field.
fn problem(source: &str, err: serde_path_to_error::Error<serde_yaml::Error>) -> Problem {
    let field = err.path().to_string();
    // serde_yaml appends " at line L column C"; keep it, it helps.
    let message = err.into_inner().to_string();
    if field == "." || field.is_empty() {
        Problem { source: Some(source.to_string()), field: None, message }
    } else {
        Problem::at(source, &field, message)
    }
}

/// Removes what `path` names from `value`; false if it names nothing.
fn remove_at(value: &mut serde_yaml::Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((last, parents)) = segments.split_last() else { return false };
    let mut current = value;
    for segment in parents {
        let next = match segment {
            Segment::Seq { index } => current.get_mut(*index),
            Segment::Map { key } => current.get_mut(key.as_str()),
            _ => None,
        };
        match next {
            Some(next) => current = next,
            None => return false,
        }
    }
    match (last, current.as_mapping_mut()) {
        (Segment::Map { key }, Some(map)) => map.remove(key.as_str()).is_some(),
        _ => false,
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
    /// Client addresses that may even try a password; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_from: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserAnswer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<KeyAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https: Option<HttpsAnswers>,
    /// fail2ban bans of addresses that keep failing to log in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban: Option<BanAnswers>,
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
    /// Keys the file has that no version-1 answers file knows: reported
    /// with every other problem of the file, not instead of them.
    #[serde(skip)]
    pub unknown: Vec<Problem>,
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
    /// `user` (the default) or `admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// An API key: a name, a role, and exactly one source of the key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAnswer {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// `ID:BCRYPT`, the key's line in the keys file (what --save-answers writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hash: Option<String>,
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BanAnswers {
    /// Failed logins (a wrong password or key) that earn a ban.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// The window those failures count in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Scalar>,
    /// How long the address is refused.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub duration: Option<Scalar>,
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
    pub api_keys: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<String>,
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
    pub caddy_admin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_webroot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub letsencrypt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certbot_work: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certbot_logs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_dropin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ollama_dropin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail2ban: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
}

impl Answers {
    /// Parses answers from YAML text; `source` names the file in errors.
    /// Errors name the field (`users[1].pasword`) and the line.
    /// An unknown key is set aside (and reported with the other problems
    /// of the file); any other YAML error ends the reading.
    pub fn from_yaml(text: &str, source: &str) -> Result<Answers> {
        // A byte order mark is how some editors start UTF-8; it is not YAML.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if let Some(line) = too_deep(text, NESTING_LIMIT) {
            return Err(Error::Input(vec![Problem::at(
                source,
                &format!("line {line}"),
                format!("nested more than {NESTING_LIMIT} levels deep; an answers file is a few levels deep"),
            )]));
        }
        let first = serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text));
        let err = match first {
            Ok(answers) => return Ok(answers),
            Err(err) if err.inner().to_string().contains("unknown field `") => err,
            Err(err) => return Err(Error::Input(vec![problem(source, err)])),
        };
        // Read again without each unknown key, to report them all.
        let mut value: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| Error::input(format!("{source}: {e}")))?;
        let mut unknown = Vec::new();
        let mut err = err;
        loop {
            let removed = remove_at(&mut value, err.path());
            unknown.push(problem(source, err));
            if !removed || unknown.len() > UNKNOWN_KEYS_LIMIT {
                return Err(Error::Input(unknown));
            }
            match serde_path_to_error::deserialize::<_, Answers>(value.clone()) {
                Ok(answers) => return Ok(Answers { unknown, ..answers }),
                Err(next) if next.inner().to_string().contains("unknown field `") => err = next,
                Err(next) => {
                    unknown.push(problem(source, next));
                    return Err(Error::Input(unknown));
                }
            }
        }
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
    pub fn with_hashes(&self, resolution: &crate::setup::Resolution, shown: bool) -> Answers {
        let hashes = &resolution.hashes;
        let mut saved = self.clone();
        for key in &mut saved.api_keys {
            let line = resolution.key_hashes.iter().find(|(name, _)| name.as_str() == key.name).map(|(_, l)| l.clone());
            let generated = key.generate == Some(true);
            if generated && shown {
                *key =
                    KeyAnswer { name: key.name.clone(), role: key.role.clone(), key_hash: line, ..Default::default() };
            }
        }
        for user in &mut saved.users {
            let hash = hashes.iter().find(|(name, _)| name.as_str() == user.username).map(|(_, h)| h.clone());
            let generated = user.generate == Some(true);
            if user.password.is_some() || (generated && shown) {
                *user = UserAnswer {
                    username: user.username.clone(),
                    password_hash: hash,
                    role: user.role.clone(),
                    ..Default::default()
                };
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
    fn unknown_keys_are_named_and_set_aside() {
        let answers = Answers::from_yaml("proxy: nginx\ndomian: x\n", "a.yaml").unwrap();
        assert_eq!(answers.proxy.as_deref(), Some("nginx"));
        let [unknown] = &answers.unknown[..] else { panic!("{:?}", answers.unknown) };
        assert!(unknown.to_string().starts_with("a.yaml: domian: unknown field `domian`"), "{unknown}");

        let answers =
            Answers::from_yaml("users:\n  - username: a\n    pasword: x\n  - {username: b, pw: y}\n", "a.yaml")
                .unwrap();
        let fields: Vec<_> = answers.unknown.iter().map(|p| p.field.clone().unwrap()).collect();
        assert_eq!(fields, ["users[0].pasword", "users[1].pw"]);
        assert_eq!(answers.users[1].username, "b");
        // A type error still ends the reading, after the unknown keys.
        let err = Answers::from_yaml("proxy: nginx\nx: 1\nport: [1]\n", "a.yaml").unwrap_err();
        assert_eq!(err.problems().len(), 2, "{err}");
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
