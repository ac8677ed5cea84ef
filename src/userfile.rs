//! Reads the users of an installed setup: nginx's htpasswd, or the
//! `basicauth` block of our Caddy site file.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub username: String,
    /// As stored: bcrypt, or any other format nginx accepts in htpasswd
    /// (apr1, {SHA}, crypt) for users added by hand.
    pub hash: String,
}

/// A hash from an existing file is copied back verbatim; it must stay one
/// token on one line.
fn plausible_hash(hash: &str) -> bool {
    !hash.is_empty() && !hash.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Users in htpasswd text. `#` lines and blank lines are comments to nginx
/// and Apache alike. `source` names the file in errors.
pub fn parse_htpasswd(text: &str, source: &str) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_end_matches('\r');
        if trimmed.trim().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.split_once(':') {
            Some((user, hash)) if crate::fields::username(user).is_ok() && plausible_hash(hash) => {
                entries.push(Entry { username: user.to_string(), hash: hash.to_string() });
            }
            _ => {
                return Err(Error::input(format!(
                    "{source}:{}: not an htpasswd line (expected user:hash); the file was left untouched",
                    number + 1
                )));
            }
        }
    }
    Ok(entries)
}

/// Users in the first `basicauth` block of a Caddy site file we wrote.
pub fn parse_caddy_site(text: &str, source: &str) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut inside = false;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if !inside {
            inside = trimmed == "basicauth {" || trimmed == "basic_auth {";
            continue;
        }
        if trimmed == "}" {
            return Ok(entries);
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.split_whitespace().collect::<Vec<_>>()[..] {
            [user, hash] if crate::fields::username(user).is_ok() && crate::fields::bcrypt_hash(hash).is_ok() => {
                entries.push(Entry { username: user.to_string(), hash: hash.to_string() })
            }
            _ => {
                return Err(Error::input(format!(
                    "{source}:{}: not a `username bcrypt-hash` line in the basicauth block; the file was left untouched",
                    number + 1
                )));
            }
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_with_comments_and_other_formats() {
        let text = "# users\nalice:$2y$05$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234\n\nbob:$apr1$xyz$abc/def\ncarol:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n";
        let e = parse_htpasswd(text, "h").unwrap();
        assert_eq!(e.iter().map(|e| e.username.as_str()).collect::<Vec<_>>(), ["alice", "bob", "carol"]);
        assert_eq!(e[2].hash, "{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=");
        let err = parse_htpasswd("alice:x\nno colon here\n", "/etc/nginx/ollama.htpasswd").unwrap_err();
        assert!(err.message.starts_with("/etc/nginx/ollama.htpasswd:2: "), "{err}");
    }

    #[test]
    fn caddy_basicauth_block() {
        let hash = "$2y$05$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";
        let text = format!(":8080 {{\n\tbasicauth {{\n\t\talice {hash}\n\t\tbob {hash}\n\t}}\n\treverse_proxy x\n}}\n");
        let e = parse_caddy_site(&text, "c").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1], Entry { username: "bob".into(), hash: hash.into() });
        assert!(parse_caddy_site("basicauth {\n\tal ice x y\n}\n", "c").is_err());
    }
}
