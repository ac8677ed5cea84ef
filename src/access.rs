//! Who may do what: the two roles, the endpoints a `user` credential
//! reaches, and API keys (their format, how one is made, what is recorded
//! of it). Pure.
//!
//! A key is `osk_` followed by the base64 of `ID:SECRET`. The proxies turn
//! `Authorization: Bearer osk_…` or `X-API-Key: osk_…` into
//! `Authorization: Basic …` and check it, against the keys' own file, with
//! the same cached bcrypt check as a password: no other verifier runs. The
//! ID is random (so `keys new` can make a key before its name is known) and
//! names the key's line in the keys file; the name and role are recorded in
//! the state file and rendered into the site.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::credentials::Entropy;
use crate::fields::Username;
use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Inference and reading: the endpoints in `USER_ENDPOINTS`.
    #[default]
    User,
    /// Everything, model management included.
    Admin,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::User, Role::Admin];

    pub fn parse(text: &str) -> Result<Role, String> {
        Role::ALL.into_iter().find(|r| r.name() == text).ok_or_else(|| {
            format!("{text:?} is not a role: use `user` (inference and reading) or `admin` (model management too)")
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The paths a `user` credential reaches, exactly; every other path (model
/// management, and whatever a later Ollama adds) needs `admin`: an
/// allowlist, so that a new endpoint is closed until it is known.
pub const USER_ENDPOINTS: &[&str] = &[
    "/",
    "/api/generate",
    "/api/chat",
    "/api/embed",
    "/api/embeddings",
    "/api/tags",
    "/api/show",
    "/api/ps",
    "/api/version",
];

/// Path prefixes a `user` credential reaches: the OpenAI-compatible API
/// (chat, completions, embeddings, models, responses) and the
/// Anthropic-compatible `/v1/messages`.
pub const USER_PREFIXES: &[&str] = &["/v1/"];

/// Ollama's model-management endpoints (admin only), for messages and tests.
pub const MANAGEMENT_ENDPOINTS: &[&str] =
    &["/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete", "/api/blobs/"];

/// Whether `role` reaches `path` (a normalized path, as the proxy matches it).
pub fn allows(role: Role, path: &str) -> bool {
    role == Role::Admin || USER_ENDPOINTS.contains(&path) || USER_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// What a client reads when its credential's role is not enough.
pub const NEEDS_ADMIN: &str = "forbidden: this endpoint needs a credential with the admin role (model management, \
     and endpoints ollama-secure does not know); this credential has the user role";

pub const KEY_PREFIX: &str = "osk_";
const ID_LENGTH: usize = 12;
const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// 43 characters from 62: log2(62^43) ≈ 256 bits.
const SECRET_LENGTH: usize = 43;
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// The shortest secret a key brought in from outside may have.
const SECRET_MIN: usize = 32;

/// The format, for errors.
pub const KEY_FORMAT: &str = "`osk_` followed by the base64 of `ID:SECRET`, where ID is 12 lowercase letters or \
     digits and SECRET at least 32 letters or digits; `ollama-secure keys new` prints one";

/// An API key: its ID (public, in the keys file) and its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Username,
    pub secret: Secret,
}

fn pick(entropy: &mut dyn Entropy, alphabet: &[u8], length: usize) -> String {
    let mut out = String::with_capacity(length);
    let mut byte = [0u8; 1];
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - 256 % alphabet.len();
    while out.len() < length {
        entropy.fill(&mut byte);
        if usize::from(byte[0]) < limit {
            out.push(alphabet[usize::from(byte[0]) % alphabet.len()] as char);
        }
    }
    out
}

impl ApiKey {
    pub fn generate(entropy: &mut dyn Entropy) -> ApiKey {
        let id = pick(entropy, ID_ALPHABET, ID_LENGTH);
        let secret = pick(entropy, SECRET_ALPHABET, SECRET_LENGTH);
        ApiKey { id: Username::parse(&id).expect("letters and digits make a username"), secret: Secret::new(secret) }
    }

    /// A key as a client sends it. The error says the format, never the text.
    pub fn parse(text: &str) -> Result<ApiKey, String> {
        let wrong = || format!("is not an ollama-secure API key: a key is {KEY_FORMAT}");
        let encoded = text.trim().strip_prefix(KEY_PREFIX).ok_or_else(wrong)?;
        let decoded = STANDARD.decode(encoded).map_err(|_| wrong())?;
        let decoded = String::from_utf8(decoded).map_err(|_| wrong())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(wrong)?;
        let id_ok = id.len() == ID_LENGTH && id.bytes().all(|b| ID_ALPHABET.contains(&b));
        let secret_ok =
            secret.len() >= SECRET_MIN && secret.len() <= 64 && secret.bytes().all(|b| b.is_ascii_alphanumeric());
        if !id_ok || !secret_ok {
            return Err(wrong());
        }
        Ok(ApiKey { id: Username::parse(id).map_err(|_| wrong())?, secret: Secret::new(secret) })
    }

    /// The key as clients send it.
    pub fn text(&self) -> Secret {
        Secret::new(format!("{KEY_PREFIX}{}", STANDARD.encode(format!("{}:{}", self.id, self.secret.expose()))))
    }
}

/// What is recorded of a key: never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    pub name: Username,
    pub id: Username,
    pub role: Role,
    /// When it was made or last rotated (UTC, `YYYY-MM-DDTHH:MM:SSZ`).
    pub created: String,
}

/// Roles of users and the keys' records: the part of the desired state
/// that no users or keys file holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// Users' roles; a user not listed (added by hand) has the user role.
    #[serde(default)]
    pub roles: BTreeMap<Username, Role>,
    #[serde(default)]
    pub keys: Vec<KeyRecord>,
}

impl Access {
    pub fn role_of_user(&self, name: &str) -> Role {
        self.roles.iter().find(|(n, _)| n.as_str() == name).map(|(_, r)| *r).unwrap_or_default()
    }

    pub fn key(&self, name: &str) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.name.as_str() == name)
    }

    pub fn key_by_id(&self, id: &str) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.id.as_str() == id)
    }

    /// Adds or replaces the record of the key called `record.name`.
    pub fn set_key(&mut self, record: KeyRecord) {
        match self.keys.iter_mut().find(|k| k.name == record.name) {
            Some(existing) => *existing = record,
            None => self.keys.push(record),
        }
    }

    pub fn remove_key(&mut self, name: &str) -> Option<KeyRecord> {
        let i = self.keys.iter().position(|k| k.name.as_str() == name)?;
        Some(self.keys.remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u8);
    impl Entropy for Counter {
        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                self.0 = self.0.wrapping_add(37);
                *b = self.0;
            }
        }
    }

    #[test]
    fn a_generated_key_reads_back_and_says_nothing_when_wrong() {
        let key = ApiKey::generate(&mut Counter(0));
        let text = key.text();
        assert!(text.expose().starts_with("osk_"));
        assert_eq!(ApiKey::parse(text.expose()), Ok(key.clone()));
        assert_eq!(key.id.as_str().len(), 12);
        for bad in ["", "osk_", "osk_!!!", "sk-abc", "osk_YWxpY2U6c2hvcnQ=", &text.expose().replace("osk_", "osx_")] {
            let error = ApiKey::parse(bad).unwrap_err();
            assert!(error.contains("ID:SECRET"), "{error}");
            assert!(bad.len() < 8 || !error.contains(bad), "the error repeats the key: {error}");
        }
        // A password sent in the key's format is not a key (its "ID" is a username).
        let basic_like = format!("osk_{}", STANDARD.encode("alice:a chosen password"));
        assert!(ApiKey::parse(&basic_like).is_err());
    }

    #[test]
    fn the_user_role_reaches_inference_and_reading_only() {
        for path in
            ["/", "/api/chat", "/api/generate", "/api/tags", "/v1/chat/completions", "/v1/messages", "/v1/models"]
        {
            assert!(allows(Role::User, path), "{path}");
        }
        for path in
            MANAGEMENT_ENDPOINTS.iter().copied().chain(["/api/blobs/sha256:00", "/api/unknown", "/v2/x", "/api/chat/x"])
        {
            assert!(!allows(Role::User, path), "{path}");
            assert!(allows(Role::Admin, path), "{path}");
        }
        assert_eq!(Role::parse("admin"), Ok(Role::Admin));
        assert!(Role::parse("root").unwrap_err().contains("use `user`"));
    }
}
