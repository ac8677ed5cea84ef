//! The users of an installed setup: nginx's htpasswd, or the `basicauth`
//! block of our Caddy site file. Read for `init` (to keep matching hashes),
//! and edited in place by `users`: every line that is not the one changed
//! stays byte for byte (comments, hand-added users with apr1, {SHA} or
//! bcrypt hashes, the rest of the Caddy site).

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub username: String,
    /// As stored: bcrypt, or any other format nginx accepts in htpasswd
    /// (apr1, {SHA}, crypt) for users added by hand.
    pub hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `user:hash` lines; `#` lines are comments.
    Htpasswd,
    /// `user hash` lines inside `basicauth { ... }`.
    CaddyBasicauth,
}

/// A users file as lines, so that an edit touches one line only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFile {
    format: Format,
    /// Each line with its own terminator, exactly as read.
    lines: Vec<String>,
    /// For each line, the user it defines.
    users: Vec<Option<Entry>>,
    /// Caddy: index of the `basicauth {` line and of its closing `}`.
    block: Option<(usize, usize)>,
}

/// The line that opens the users block of a Caddy site (either spelling).
fn opens_basicauth(line: &str) -> bool {
    matches!(line.trim(), "basicauth {" | "basic_auth {")
}

/// A hash from an existing file is copied back verbatim; it must stay one
/// token on one line.
fn plausible_hash(hash: &str) -> bool {
    !hash.is_empty() && !hash.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn malformed(source: &str, number: usize, what: &str) -> Error {
    Error::input(format!("{source}:{number}: {what}; the file was left untouched"))
}

impl UserFile {
    pub fn parse(text: &str, format: Format, source: &str) -> Result<UserFile> {
        let lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
        let mut users = Vec::with_capacity(lines.len());
        let mut block = None;
        let mut open: Option<usize> = None;
        for (i, line) in lines.iter().enumerate() {
            let content = line.trim_end_matches(['\n', '\r']);
            let entry = match format {
                Format::Htpasswd => {
                    if content.trim().is_empty() || content.starts_with('#') {
                        None
                    } else {
                        match content.split_once(':') {
                            Some((user, hash)) if crate::fields::username(user).is_ok() && plausible_hash(hash) => {
                                Some(Entry { username: user.to_string(), hash: hash.to_string() })
                            }
                            _ => return Err(malformed(source, i + 1, "not an htpasswd line (expected user:hash)")),
                        }
                    }
                }
                Format::CaddyBasicauth => {
                    let trimmed = content.trim();
                    match (open, block) {
                        (None, None) if opens_basicauth(trimmed) => {
                            open = Some(i);
                            None
                        }
                        (Some(start), None) if trimmed == "}" => {
                            block = Some((start, i));
                            open = None;
                            None
                        }
                        (Some(_), None) if trimmed.is_empty() || trimmed.starts_with('#') => None,
                        (Some(_), None) => match trimmed.split_whitespace().collect::<Vec<_>>()[..] {
                            [user, hash]
                                if crate::fields::username(user).is_ok()
                                    && crate::fields::bcrypt_hash(hash).is_ok() =>
                            {
                                Some(Entry { username: user.to_string(), hash: hash.to_string() })
                            }
                            _ => {
                                return Err(malformed(
                                    source,
                                    i + 1,
                                    "not a `username bcrypt-hash` line in the basicauth block",
                                ));
                            }
                        },
                        _ => None,
                    }
                }
            };
            if let Some(entry) = &entry
                && users.iter().flatten().any(|e: &Entry| e.username == entry.username)
            {
                return Err(malformed(source, i + 1, &format!("{} is defined twice", entry.username)));
            }
            users.push(entry);
        }
        if format == Format::CaddyBasicauth && block.is_none() {
            return Err(Error::input(format!("{source}: no basicauth block found; the file was left untouched")));
        }
        Ok(UserFile { format, lines, users, block })
    }

    pub fn entries(&self) -> Vec<&Entry> {
        self.users.iter().flatten().collect()
    }

    pub fn get(&self, username: &str) -> Option<&Entry> {
        self.users.iter().flatten().find(|e| e.username == username)
    }

    pub fn text(&self) -> String {
        self.lines.concat()
    }

    fn line_for(&self, username: &str, hash: &str, like: Option<&str>) -> String {
        match self.format {
            Format::Htpasswd => format!("{username}:{hash}\n"),
            Format::CaddyBasicauth => {
                // The indentation of the line it replaces, or of the block's contents.
                let indent: String = like
                    .map(|l| l.chars().take_while(|c| c.is_whitespace() && *c != '\n').collect())
                    .unwrap_or_else(|| {
                        let (start, _) = self.block.expect("parsed caddy files have a block");
                        let open: String = self.lines[start].chars().take_while(|c| *c == ' ' || *c == '\t').collect();
                        format!("{open}\t")
                    });
                format!("{indent}{username} {hash}\n")
            }
        }
    }

    /// Sets `username`'s hash: replaces its line, or adds one at the end
    /// (of the file, or of the basicauth block).
    pub fn set(&mut self, username: &str, hash: &str) {
        let entry = Some(Entry { username: username.to_string(), hash: hash.to_string() });
        if let Some(i) = self.users.iter().position(|e| e.as_ref().is_some_and(|e| e.username == username)) {
            let old = self.lines[i].clone();
            let ending = &old[old.trim_end_matches(['\n', '\r']).len()..];
            let line = self.line_for(username, hash, Some(&old));
            self.lines[i] = format!("{}{ending}", line.trim_end_matches('\n'));
            self.users[i] = entry;
            return;
        }
        let line = self.line_for(username, hash, None);
        let at = match (self.format, self.block) {
            (Format::CaddyBasicauth, Some((_, end))) => end,
            _ => {
                // Keep the file's last line terminated before appending to it.
                if let Some(last) = self.lines.last_mut()
                    && !last.ends_with('\n')
                {
                    last.push('\n');
                }
                self.lines.len()
            }
        };
        self.lines.insert(at, line);
        self.users.insert(at, entry);
        if let Some((start, end)) = self.block {
            self.block = Some((start, end + 1));
        }
    }

    /// Removes `username`'s line; false if there was none.
    pub fn remove(&mut self, username: &str) -> bool {
        let Some(i) = self.users.iter().position(|e| e.as_ref().is_some_and(|e| e.username == username)) else {
            return false;
        };
        self.lines.remove(i);
        self.users.remove(i);
        if let Some((start, end)) = self.block {
            self.block = Some((start, end - 1));
        }
        true
    }
}

/// Users in htpasswd text. `source` names the file in errors.
pub fn parse_htpasswd(text: &str, source: &str) -> Result<Vec<Entry>> {
    Ok(UserFile::parse(text, Format::Htpasswd, source)?.entries().into_iter().cloned().collect())
}

/// Users in the `basicauth` block of a Caddy site file. A file without one
/// is not ours (init will back it up and replace it): it has no users.
pub fn parse_caddy_site(text: &str, source: &str) -> Result<Vec<Entry>> {
    if !text.lines().any(opens_basicauth) {
        return Ok(Vec::new());
    }
    Ok(UserFile::parse(text, Format::CaddyBasicauth, source)?.entries().into_iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2y$05$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";
    const OTHER: &str = "$2y$05$zbcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";

    #[test]
    fn htpasswd_with_comments_and_other_formats() {
        let text = "# users\nalice:$2y$05$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234\n\nbob:$apr1$xyz$abc/def\ncarol:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n";
        let e = parse_htpasswd(text, "h").unwrap();
        assert_eq!(e.iter().map(|e| e.username.as_str()).collect::<Vec<_>>(), ["alice", "bob", "carol"]);
        assert_eq!(e[2].hash, "{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=");
        let err = parse_htpasswd("alice:x\nno colon here\n", "/etc/nginx/ollama.htpasswd").unwrap_err();
        assert!(err.message.starts_with("/etc/nginx/ollama.htpasswd:2: "), "{err}");
        assert!(parse_htpasswd("a:x\na:y\n", "h").unwrap_err().message.contains("a is defined twice"));
    }

    #[test]
    fn htpasswd_edits_touch_one_line() {
        let text = "# hand-made, CRLF below\r\nbob:$apr1$xyz$abc/def\r\n\ncarol:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=";
        let mut f = UserFile::parse(text, Format::Htpasswd, "h").unwrap();
        f.set("alice", HASH);
        assert_eq!(f.text(), format!("{text}\nalice:{HASH}\n"));
        f.set("bob", OTHER);
        assert_eq!(
            f.text(),
            format!(
                "# hand-made, CRLF below\r\nbob:{OTHER}\r\n\ncarol:{{SHA}}qUqP5cyxm6YcTAhz05Hph5gvu9M=\nalice:{HASH}\n"
            )
        );
        assert!(f.remove("carol"));
        assert!(!f.remove("carol"));
        assert_eq!(f.text(), format!("# hand-made, CRLF below\r\nbob:{OTHER}\r\n\nalice:{HASH}\n"));
    }

    #[test]
    fn caddy_block_edits_keep_the_rest() {
        let text = format!(":8080 {{\n\tbasicauth {{\n\t\talice {HASH}\n\t}}\n\treverse_proxy x\n}}\n");
        let mut f = UserFile::parse(&text, Format::CaddyBasicauth, "c").unwrap();
        f.set("bob", OTHER);
        assert_eq!(
            f.text(),
            format!(":8080 {{\n\tbasicauth {{\n\t\talice {HASH}\n\t\tbob {OTHER}\n\t}}\n\treverse_proxy x\n}}\n")
        );
        f.set("alice", OTHER);
        assert!(f.remove("bob"));
        assert_eq!(f.text(), format!(":8080 {{\n\tbasicauth {{\n\t\talice {OTHER}\n\t}}\n\treverse_proxy x\n}}\n"));
        assert!(parse_caddy_site("basicauth {\n\tal ice x y\n}\n", "c").is_err());
        assert_eq!(parse_caddy_site(":80 {\n}\n", "c").unwrap(), vec![], "not our file: no users");
        let err = UserFile::parse(":80 {\n}\n", Format::CaddyBasicauth, "c").unwrap_err();
        assert!(err.message.contains("no basicauth block"), "{err}");
    }
}
