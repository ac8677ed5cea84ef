//! The users as they are stored: nginx's htpasswd, or the lines inside the
//! `basicauth` block of our Caddy site. A document of lines, so that a
//! change touches one line and every other line (comments, users added by
//! hand with apr1, {SHA} or bcrypt hashes) renders back byte for byte.
//! Every line in it is checked when read or made, so the renderer can
//! write it as it is.

use crate::error::{Error, Problem, Result};
use crate::fields::{self, Username};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub username: Username,
    /// As stored: bcrypt, or any other format nginx accepts in htpasswd
    /// (apr1, {SHA}, crypt) for users added by hand.
    pub hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `user:hash` lines; `#` lines are comments.
    Htpasswd,
    /// `user hash` lines inside `basicauth { ... }` of a Caddy site.
    CaddyBasicauth,
    /// `ID hash` lines of the API keys, inside the Caddy site's
    /// `basicauth @ollama_secure_key { ... }` block.
    CaddyKeys,
}

/// The matcher of the Caddy site's keys block, and of its users block.
pub const CADDY_KEY_MATCHER: &str = "@ollama_secure_key";
pub const CADDY_USER_MATCHER: &str = "@ollama_secure_user";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// A user, with the exact text it was read as (`None`: made here).
    User { entry: Entry, text: Option<String> },
    /// A comment or blank line, with its line ending.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Users {
    format: Format,
    lines: Vec<Line>,
    /// Read from an existing file (not made fresh by this run).
    read: bool,
}

/// The line that opens the users block of a Caddy site: either spelling,
/// with or without the hash algorithm and realm (`basicauth bcrypt Ollama {`),
/// and with our users' matcher (or none, as versions before keys wrote it).
/// The keys block is the one with the keys' matcher.
fn opens_basicauth(line: &str, format: Format) -> bool {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    if !matches!(words.first(), Some(&"basicauth" | &"basic_auth")) || words.last() != Some(&"{") {
        return false;
    }
    let matcher = words.get(1).copied().filter(|w| w.starts_with('@'));
    let wanted = match format {
        Format::CaddyKeys => Some(CADDY_KEY_MATCHER),
        _ => matcher.filter(|m| *m == CADDY_USER_MATCHER),
    };
    if matcher != wanted {
        return false;
    }
    if matcher.is_some() {
        words.remove(1);
    }
    words.len() <= 4
}

/// A hash from an existing file is copied back verbatim; it must stay one
/// token on one line.
fn plausible_hash(hash: &str) -> bool {
    !hash.is_empty() && !hash.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A comment or blank line may hold anything but a control character
/// (tabs aside): it is written back inside a config file.
fn plain_text(line: &str) -> bool {
    !line.chars().any(|c| c.is_control() && c != '\t')
}

fn malformed(source: &str, number: usize, what: &str) -> Error {
    Error::Input(vec![Problem::new(format!("{source}:{number}: {what}; the file was left untouched"))])
}

/// The content of a line without its ending.
fn content(line: &str) -> &str {
    line.trim_end_matches(['\n', '\r'])
}

impl Users {
    /// No users yet: a file this run creates.
    pub fn new(format: Format) -> Users {
        Users { format, lines: Vec::new(), read: false }
    }

    /// The users in `text`: a whole htpasswd file, or a Caddy site file
    /// (only its basicauth block). `None` for a Caddy site without one:
    /// not our file (init will back it up and replace it).
    pub fn parse(text: &str, format: Format, source: &str) -> Result<Option<Users>> {
        let all: Vec<&str> = text.split_inclusive('\n').collect();
        let (first, block) = match format {
            Format::Htpasswd => (0, &all[..]),
            Format::CaddyBasicauth | Format::CaddyKeys => {
                let Some(open) = all.iter().position(|l| opens_basicauth(l, format)) else { return Ok(None) };
                let Some(len) = all[open + 1..].iter().position(|l| content(l).trim() == "}") else {
                    return Err(malformed(source, open + 1, "the basicauth block is not closed"));
                };
                (open + 1, &all[open + 1..open + 1 + len])
            }
        };
        let mut users = Users { format, lines: Vec::with_capacity(block.len()), read: true };
        for (i, line) in block.iter().enumerate() {
            let number = first + i + 1;
            let parsed = users.parse_line(line).map_err(|what| malformed(source, number, what))?;
            if let Line::User { entry, .. } = &parsed
                && users.get(&entry.username).is_some()
            {
                return Err(malformed(source, number, &format!("{} is defined twice", entry.username)));
            }
            users.lines.push(parsed);
        }
        Ok(Some(users))
    }

    fn parse_line(&self, line: &str) -> std::result::Result<Line, &'static str> {
        let text = content(line);
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return if plain_text(text) { Ok(Line::Other(line.to_string())) } else { Err("a control character") };
        }
        let (user, hash) = match self.format {
            Format::Htpasswd => match text.split_once(':') {
                Some((user, hash)) if plausible_hash(hash) => (user, hash),
                _ => return Err("not an htpasswd line (expected user:hash)"),
            },
            Format::CaddyBasicauth | Format::CaddyKeys => match trimmed.split_whitespace().collect::<Vec<_>>()[..] {
                [user, hash] if fields::bcrypt_hash(hash).is_ok() => (user, hash),
                _ => return Err("not a `username bcrypt-hash` line in the basicauth block"),
            },
        };
        let Ok(username) = Username::parse(user) else {
            return Err(match self.format {
                Format::Htpasswd => "not an htpasswd line (expected user:hash)",
                Format::CaddyBasicauth | Format::CaddyKeys => {
                    "not a `username bcrypt-hash` line in the basicauth block"
                }
            });
        };
        Ok(Line::User { entry: Entry { username, hash: hash.to_string() }, text: Some(line.to_string()) })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Read from an existing file, rather than made by this run.
    pub fn was_read(&self) -> bool {
        self.read
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.lines.iter().filter_map(|l| match l {
            Line::User { entry, .. } => Some(entry),
            Line::Other(_) => None,
        })
    }

    pub fn len(&self) -> usize {
        self.entries().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, username: &str) -> Option<&Entry> {
        self.entries().find(|e| e.username.as_str() == username)
    }

    fn position(&self, username: &str) -> Option<usize> {
        self.lines.iter().position(|l| matches!(l, Line::User { entry, .. } if entry.username.as_str() == username))
    }

    /// Gives `username` this hash: its line is replaced (in its own
    /// indentation and line ending), or a line is added at the end. A hash
    /// that is already there changes nothing.
    pub fn set(&mut self, username: &Username, hash: &str) {
        let entry = Entry { username: username.clone(), hash: hash.to_string() };
        match self.position(username) {
            Some(i) => {
                if let Line::User { entry: old, text } = &mut self.lines[i]
                    && old.hash != hash
                {
                    *text = text.as_deref().map(|t| self.format.replace_hash(t, &old.hash, hash));
                    *old = entry;
                }
            }
            None => {
                // Keep the last line terminated before adding after it.
                if let Some(Line::User { text: Some(t), .. } | Line::Other(t)) = self.lines.last_mut()
                    && !t.ends_with('\n')
                {
                    t.push('\n');
                }
                self.lines.push(Line::User { entry, text: None });
            }
        }
    }

    /// Removes `username`'s line; false if there was none.
    pub fn remove(&mut self, username: &str) -> bool {
        self.position(username).map(|i| self.lines.remove(i)).is_some()
    }

    /// The lines to write, each with its line ending.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|line| match line {
                Line::User { text: Some(text), .. } | Line::Other(text) => text.clone(),
                Line::User { entry, text: None } => self.format.line(entry),
            })
            .collect()
    }

    pub fn text(&self) -> String {
        self.lines().concat()
    }
}

impl Format {
    /// A line made here.
    fn line(self, entry: &Entry) -> String {
        match self {
            Format::Htpasswd => format!("{}:{}\n", entry.username, entry.hash),
            Format::CaddyBasicauth | Format::CaddyKeys => format!("\t\t\t{} {}\n", entry.username, entry.hash),
        }
    }

    /// `line` with its hash replaced, everything around it kept.
    fn replace_hash(self, line: &str, old: &str, new: &str) -> String {
        let at = match self {
            Format::Htpasswd => line.find(':').map(|i| i + 1),
            Format::CaddyBasicauth | Format::CaddyKeys => line.rfind(old),
        };
        // `at` is where `find` matched ASCII: a character boundary.
        let (before, rest) = at.map_or(("", ""), |start| line.split_at(start));
        match rest.strip_prefix(old) {
            Some(after) => format!("{before}{new}{after}"),
            None => line.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2y$05$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";
    const OTHER: &str = "$2y$05$zbcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234";

    fn name(n: &str) -> Username {
        Username::parse(n).unwrap()
    }

    fn htpasswd(text: &str) -> Users {
        Users::parse(text, Format::Htpasswd, "h").unwrap().unwrap()
    }

    #[test]
    fn htpasswd_with_comments_and_other_formats() {
        let text = "# users\nalice:$2y$05$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234\n\nbob:$apr1$xyz$abc/def\ncarol:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n";
        let users = htpasswd(text);
        assert_eq!(users.entries().map(|e| e.username.as_str()).collect::<Vec<_>>(), ["alice", "bob", "carol"]);
        assert_eq!(users.get("carol").unwrap().hash, "{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=");
        assert_eq!(users.text(), text);
        let err = Users::parse("alice:x\nno colon here\n", Format::Htpasswd, "/etc/nginx/ollama.htpasswd").unwrap_err();
        assert!(err.to_string().starts_with("/etc/nginx/ollama.htpasswd:2: "), "{err}");
        let err = Users::parse("a:x\na:y\n", Format::Htpasswd, "h").unwrap_err();
        assert!(err.to_string().contains("a is defined twice"), "{err}");
    }

    #[test]
    fn htpasswd_edits_touch_one_line() {
        let text = "# hand-made, CRLF below\r\nbob:$apr1$xyz$abc/def\r\n\ncarol:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=";
        let mut users = htpasswd(text);
        users.set(&name("alice"), HASH);
        assert_eq!(users.text(), format!("{text}\nalice:{HASH}\n"));
        users.set(&name("bob"), OTHER);
        assert_eq!(
            users.text(),
            format!(
                "# hand-made, CRLF below\r\nbob:{OTHER}\r\n\ncarol:{{SHA}}qUqP5cyxm6YcTAhz05Hph5gvu9M=\nalice:{HASH}\n"
            )
        );
        let before = users.text();
        users.set(&name("bob"), OTHER);
        assert_eq!(users.text(), before, "the same hash changes nothing");
        assert!(users.remove("carol"));
        assert!(!users.remove("carol"));
        assert_eq!(users.text(), format!("# hand-made, CRLF below\r\nbob:{OTHER}\r\n\nalice:{HASH}\n"));
    }

    #[test]
    fn caddy_blocks_keep_their_lines() {
        let site = format!(":8080 {{\n\tbasicauth {{\n\t\talice {HASH}\n\t  # by hand\n\t}}\n\treverse_proxy x\n}}\n");
        let mut users = Users::parse(&site, Format::CaddyBasicauth, "c").unwrap().unwrap();
        assert_eq!(users.text(), format!("\t\talice {HASH}\n\t  # by hand\n"));
        users.set(&name("bob"), OTHER);
        users.set(&name("alice"), OTHER);
        assert_eq!(users.text(), format!("\t\talice {OTHER}\n\t  # by hand\n\t\t\tbob {OTHER}\n"));
        assert!(Users::parse("basicauth {\n\tal ice x y\n}\n", Format::CaddyBasicauth, "c").is_err());
        assert_eq!(Users::parse(":80 {\n}\n", Format::CaddyBasicauth, "c").unwrap(), None, "not our file");
        let err = Users::parse("basicauth {\n\talice x\n", Format::CaddyBasicauth, "c").unwrap_err();
        assert!(err.to_string().contains("c:1: the basicauth block is not closed"), "{err}");
    }

    #[test]
    fn any_utf8_is_refused_cleanly_or_kept() {
        for text in ["é:$2y$1€\n", "bob:\u{7}x\n", "€\n", "#\u{0}\n", "a:b c\n"] {
            let _ = Users::parse(text, Format::Htpasswd, "h");
            let _ = Users::parse(&format!("basicauth {{\n{text}}}\n"), Format::CaddyBasicauth, "c");
        }
        assert_eq!(htpasswd("# café ☕\n").text(), "# café ☕\n");
    }
}
