//! The answers file (version 1) as the user writes it: raw values, no I/O
//! beyond reading the file, no validation beyond YAML types. `config` turns it
//! into a checked `Config`. The wizard produces the same structure.

mod position;
mod wording;

use std::path::Path;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Position, Problem, Result};

/// No answers file comes near this size; a bigger one is refused unread.
const ANSWERS_LIMIT: u64 = 1024 * 1024;
/// The `--answers` value that means standard input, and its name in messages.
pub const STDIN: &str = "-";
const STDIN_NAME: &str = "<stdin>";
/// How long a pipe may take to deliver the answers and close.
const STDIN_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Answers files are a handful of keys a few levels deep; deeper nesting
/// is refused before the YAML parser (whose time grows with it) sees it.
const NESTING_LIMIT: usize = 32;
/// More problems than this and the file is not an answers file.
const PROBLEMS_LIMIT: usize = 20;
/// Each problem placed in the file reads it again; past this many, the
/// rest are reported without their line.
const PLACED_LIMIT: usize = 12;

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

/// A problem found while reading the YAML, named by its field, in words,
/// and placed at the line it is about.
fn problem(source: &str, text: &str, err: serde_path_to_error::Error<serde_yaml::Error>) -> Problem {
    let field = err.path().to_string();
    let err = err.into_inner();
    let location = err.location().map(|l| (l.line(), l.column()));
    let mut message = err.to_string();
    // serde_yaml writes "FIELD: MESSAGE at line L column C"; the field and
    // the position are printed once, in front.
    if let Some(rest) = message.strip_prefix(&format!("{field}: ")) {
        message = rest.to_string();
    }
    if let Some((line, column)) = location {
        message = message.replacen(&format!(" at line {line} column {column}"), "", 1);
    }
    // The reader's own errors (a control character) give a byte offset.
    let mut location = location;
    if let Some((before, offset)) = message.rsplit_once(" at position ")
        && let Ok(offset) = offset.parse::<usize>()
    {
        location = line_and_column(text, offset);
        message = before.to_string();
    }
    let unknown_key = message.starts_with("unknown field `");
    // serde places a key given twice at the start of its mapping.
    let repeated = message.strip_prefix("duplicate field `").and_then(|rest| rest.split_once('`')).map(|(k, _)| k);
    let at_root = matches!(field.as_str(), "" | "." | "?");
    let position = match (repeated, location) {
        (Some(key), _) => position::locate_repeated(text, &field, key),
        (None, Some((line, column))) => Position::at(text, line, column),
        (None, None) if at_root => None,
        (None, None) => position::locate(text, &field, unknown_key),
    };
    let message = wording::in_words(&message);
    let field = (!at_root).then_some(field);
    Problem { source: Some(source.to_string()), field, message, position }
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> Option<(usize, usize)> {
    let before = text.get(..offset)?;
    let on_its_line = before.rsplit('\n').next().unwrap_or_default();
    Some((before.matches('\n').count() + 1, on_its_line.chars().count() + 1))
}

/// Sets aside what `path` names in `value`, so that reading it again
/// finds the next problem: the key is removed (every field has a default),
/// a list entry of the wrong type becomes an empty mapping (the entry's
/// own defaults). False if the path names nothing.
fn set_aside(value: &mut serde_yaml::Value, path: &serde_path_to_error::Path) -> bool {
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
    match (last, current) {
        (Segment::Map { key }, serde_yaml::Value::Mapping(map)) => map.remove(key.as_str()).is_some(),
        (Segment::Seq { index }, serde_yaml::Value::Sequence(list)) => list
            .get_mut(*index)
            .filter(|entry| !entry.is_mapping())
            .map(|entry| *entry = serde_yaml::Value::Mapping(Default::default()))
            .is_some(),
        _ => false,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    /// The answers file format; 1, the only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::version")]
    pub version: Option<i64>,
    /// The proxy that serves the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::proxy")]
    pub proxy: Option<String>,
    /// The name clients use (required with HTTPS); absent: any name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::domain")]
    pub domain: Option<String>,
    /// The address the site listens on; absent: every address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::listen_address")]
    pub listen_address: Option<String>,
    /// The site's port (default 8080, or 443 with HTTPS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::port")]
    pub port: Option<i64>,
    /// Client addresses that may even try a password; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::allow_from")]
    pub allow_from: Vec<String>,
    /// Browser origins whose pages may call the API (CORS): the proxy answers their preflights; empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::cors_origins")]
    pub cors_origins: Vec<String>,
    /// Where Ollama listens: host:port, http://host:port or https://host:port (default 127.0.0.1:11434); or a list of IP:PORT, for several Ollama servers behind the proxy, each also as {address: IP:PORT, weight: N, max_conns: N}.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::upstream")]
    pub upstream: Option<Upstreams>,
    /// With several upstreams: `credential` keeps each user's or key's requests on one Ollama server while it is up (its caches stay warm); absent: the server with the fewest open requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::sticky")]
    pub sticky: Option<String>,
    /// Who may log in with a password (at least one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::at_most_max_users::<UserAnswer>")]
    pub users: Vec<UserAnswer>,
    /// API keys, sent as `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::at_most_max_users::<KeyAnswer>")]
    pub api_keys: Vec<KeyAnswer>,
    /// A certificate from an ACME CA (Let's Encrypt by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https: Option<HttpsAnswers>,
    /// fail2ban bans of addresses that keep failing to log in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban: Option<BanAnswers>,
    /// How long a request to Ollama may take: seconds, or a duration such as 10m (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::timeout")]
    pub timeout: Option<Scalar>,
    /// The bcrypt cost of new password hashes (default: measured on this machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::bcrypt_cost")]
    pub bcrypt_cost: Option<i64>,
    /// Install the proxy with apt if it is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<bool>,
    /// Where `install: true` takes Caddy from: `debian` (the system's
    /// packages, the default) or `caddy-repo` (Caddy's own apt repository,
    /// a current 2.x).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::caddy_source")]
    pub caddy_source: Option<String>,
    /// The group the proxy's workers run as, which may read the users file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::group_name")]
    pub file_group: Option<String>,
    /// Where every file goes; each defaults per system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<PathAnswers>,
    /// Keys the file has that no version-1 answers file knows: reported
    /// with every other problem of the file, not instead of them.
    #[serde(skip)]
    pub unknown: Vec<Problem>,
    /// The text the answers were read from: where problems found later
    /// (by validation) are placed.
    #[serde(skip)]
    pub text: Option<Arc<str>>,
}

/// A user who logs in with a password: a name, a role, and exactly one
/// source of the password.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// Exactly one source of the password, as `config::user_spec` counts them
// (`key:` with no value is absent).
#[schemars(extend("required" = ["username"], "oneOf" = [
    {"required": ["password"], "properties": {"password": {"type": ["string", "number", "boolean"]}}},
    {"required": ["password_env"], "properties": {"password_env": {"type": ["string", "number", "boolean"]}}},
    {"required": ["password_file"], "properties": {"password_file": {"type": ["string", "number", "boolean"]}}},
    {"required": ["password_hash"], "properties": {"password_hash": {"type": ["string", "number", "boolean"]}}},
    {"required": ["generate"], "properties": {"generate": {"const": true}}}
]))]
pub struct UserAnswer {
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::username")]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::password")]
    pub password: Option<String>,
    /// The environment variable that holds the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::env_var_name")]
    pub password_env: Option<String>,
    /// A file that holds the password (one trailing line break is not part of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_text")]
    pub password_file: Option<String>,
    /// A bcrypt hash, e.g. from `htpasswd -nB NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::password_hash")]
    pub password_hash: Option<String>,
    /// Generate a password, shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<bool>,
    /// `user` (the default) or `admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::role")]
    pub role: Option<String>,
}

/// An API key: a name, a role, and exactly one source of the key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// Exactly one source of the key, as `config::key_spec` counts them.
#[schemars(extend("required" = ["name"], "oneOf" = [
    {"required": ["key_env"], "properties": {"key_env": {"type": ["string", "number", "boolean"]}}},
    {"required": ["key_file"], "properties": {"key_file": {"type": ["string", "number", "boolean"]}}},
    {"required": ["key_hash"], "properties": {"key_hash": {"type": ["string", "number", "boolean"]}}},
    {"required": ["generate"], "properties": {"generate": {"const": true}}}
]))]
pub struct KeyAnswer {
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::username")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::role")]
    pub role: Option<String>,
    /// Generate the key, shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<bool>,
    /// The environment variable that holds the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::env_var_name")]
    pub key_env: Option<String>,
    /// A file that holds the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_text")]
    pub key_file: Option<String>,
    /// `ID:BCRYPT`, the key's line in the keys file (what --save-answers writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::key_hash")]
    pub key_hash: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpsAnswers {
    #[serde(default)]
    pub enabled: bool,
    /// Where the CA sends expiry notices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::email")]
    pub email: Option<String>,
    /// The ACME directory URL (default: Let's Encrypt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::acme_directory")]
    pub acme_directory: Option<String>,
    /// The CA certificate of a private ACME server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub acme_ca_root: Option<String>,
    /// The plain-HTTP port for challenges and the redirect (default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::port")]
    pub http_port: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BanAnswers {
    /// Failed logins (a wrong password or key) that earn a ban.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::ban_after")]
    pub after: Option<i64>,
    /// The window those failures count in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::ban_within")]
    pub within: Option<Scalar>,
    /// How long the address is refused.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::ban_for")]
    pub duration: Option<Scalar>,
}

/// Every file location the tool uses; each defaults per OS (see `paths`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathAnswers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub nginx_conf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub nginx_site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub nginx_site_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub htpasswd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub api_keys: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub access_log: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub nginx_pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub auth_cache: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::socket_path")]
    pub auth_socket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub caddyfile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub caddy_site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub caddy_pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub caddy_log: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::socket_path")]
    pub caddy_admin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub acme_webroot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub letsencrypt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub certbot_work: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub certbot_logs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub renewal_cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub renewal_dropin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub ollama_dropin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub fail2ban: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub apt_keyring: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub apt_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
    pub lock: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::path")]
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
            return Err(Error::Input(vec![Problem {
                source: Some(source.to_string()),
                position: Position::at(text, line, 1),
                ..Problem::new(format!(
                    "nested more than {NESTING_LIMIT} levels deep; an answers file is a few levels deep"
                ))
            }]));
        }
        let text_kept: Arc<str> = Arc::from(text);
        let with_text = |answers: Answers| Answers { text: Some(text_kept.clone()), ..answers };
        let first = serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text));
        let mut err = match first {
            Ok(answers) => return Ok(with_text(answers)),
            Err(err) => err,
        };
        // Read again with each problem set aside, to report them all at
        // once; a file that is not YAML at all has only the one.
        let Ok(mut value) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
            return Err(Error::Input(vec![problem(source, text, err)]));
        };
        let mut problems = Vec::new();
        let mut set_aside_paths = Vec::new();
        let mut only_unknown_keys = true;
        loop {
            let path = err.path().to_string();
            // A value made empty can fail again (a required one): reported once.
            if set_aside_paths.contains(&path) {
                break;
            }
            only_unknown_keys &= err.inner().to_string().contains("unknown field `");
            let removed = set_aside(&mut value, err.path());
            problems.push(problem(source, text, err));
            if !removed || problems.len() > PROBLEMS_LIMIT {
                break;
            }
            set_aside_paths.push(path);
            match serde_path_to_error::deserialize::<_, Answers>(value.clone()) {
                // Only unknown keys: reported with validation's problems.
                Ok(answers) if only_unknown_keys => {
                    return Ok(with_text(Answers { unknown: problems, ..answers }));
                }
                Ok(_) => break,
                Err(next) => err = next,
            }
        }
        problems.sort_by_key(Problem::place_in_file);
        Err(Error::Input(problems))
    }

    /// Places each problem about these answers at the line of its field,
    /// when they were read from a file (the first few: each reads it again).
    pub fn place(&self, problems: Vec<Problem>) -> Vec<Problem> {
        let Some(text) = &self.text else { return problems };
        let mut placed = 0;
        let mut problems: Vec<Problem> = problems
            .into_iter()
            .map(|mut problem| {
                if let (None, Some(field)) = (&problem.position, &problem.field)
                    && placed < PLACED_LIMIT
                {
                    placed += 1;
                    problem.position = position::locate(text, field, false);
                }
                problem
            })
            .collect();
        problems.sort_by_key(Problem::place_in_file);
        problems
    }

    /// How messages name the answers at `path`.
    pub fn source_name(path: &Path) -> String {
        if path == Path::new(STDIN) { STDIN_NAME.to_string() } else { path.display().to_string() }
    }

    /// `-` is standard input (a pipe or a redirected file; a terminal is
    /// refused, since nobody types YAML at a prompt that does not say it
    /// waits), named `<stdin>` in messages.
    pub fn load(path: &Path) -> Result<Answers> {
        let from_stdin = path == Path::new(STDIN);
        if from_stdin && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return Err(Error::input(
                "`-` reads the answers from standard input, which is a terminal here: pipe them in \
                 (`ollama-secure init --answers - < answers.yaml`) or give the file's path",
            ));
        }
        let name = Answers::source_name(path);
        let bytes = if from_stdin {
            crate::system::read_stdin_limited(ANSWERS_LIMIT, STDIN_WAIT)
        } else {
            crate::system::read_limited(path, ANSWERS_LIMIT)
        };
        let text = bytes
            .and_then(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
            })
            .map_err(|e| Error::input(format!("cannot read answers file {name}: {e}")))?;
        Answers::from_yaml(&text, &name)
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
        assert!(
            unknown.to_string().starts_with(
                "a.yaml:2:1: domian: unknown key `domian`; did you mean `domain`?\n 2 | domian: x\n   | ^"
            ),
            "{unknown}"
        );

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
        assert_eq!(
            err.to_string(),
            "a.yaml:1:7: port: expected a whole number, found a list\n 1 | port: [1]\n   |       ^"
        );
        // Found on the second reading (from a value without positions):
        // placed all the same, with the field named once.
        let err = Answers::from_yaml("x: 1\nusers:\n  - username: a\n    generate: \"yes\"\n", "a.yaml").unwrap_err();
        let [_, generate] = err.problems() else { panic!("{err}") };
        assert_eq!(
            generate.to_string(),
            "a.yaml:4:15: users[0].generate: expected true or false, found the text \"yes\" (YAML 1.2 reads yes, no, on and off as text)\n 4 |     generate: \"yes\"\n   |               ^"
        );
        // A value no field can do without (a bool, a list, a list entry) hides nothing after it.
        let err = Answers::from_yaml(
            "https: {enabled: yes}\nusers: [alice, {username: b, generate: maybe}]\nallow_from: x\nport: p\n",
            "a.yaml",
        )
        .unwrap_err();
        let fields: Vec<_> = err.problems().iter().map(|p| p.field.clone().unwrap()).collect();
        assert_eq!(fields, ["https.enabled", "users[0]", "users[1].generate", "allow_from", "port"], "{err}");
        let err = Answers::from_yaml("proxy: nginx\nport: 1\nport: 2\n", "a.yaml").unwrap_err();
        assert!(
            err.to_string().starts_with("a.yaml:3:1: the key `port` is given twice; keep one\n 3 | port: 2\n"),
            "{err}"
        );
        let err = Answers::from_yaml("proxy: nginx\n  port: 1\n", "a.yaml").unwrap_err();
        assert!(err.to_string().starts_with("a.yaml:2:7: mapping values are not allowed in this context"), "{err}");
    }

    #[test]
    fn byte_offsets_become_lines_and_columns() {
        assert_eq!(line_and_column("a: é\nb: \u{1b}", 9), Some((2, 4)));
        assert_eq!(line_and_column("é", 1), None, "inside a character: no position, no panic");
        assert_eq!(line_and_column("a", 5), None);
        let err = Answers::from_yaml("proxy: nginx\ndomain: \"é\u{1b}\"\n", "a.yaml").unwrap_err();
        assert!(err.to_string().starts_with("a.yaml:2:11: control characters"), "{err}");
    }

    #[test]
    fn timeout_as_number_or_text() {
        let a = Answers::from_yaml("timeout: 600\n", "a").unwrap();
        assert_eq!(a.timeout, Some(Scalar::Int(600)));
        let a = Answers::from_yaml("timeout: 10m\n", "a").unwrap();
        assert_eq!(a.timeout, Some(Scalar::Text("10m".into())));
    }
}

/// `upstream:` as written: one address, or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Upstreams {
    One(String),
    Several(Vec<UpstreamEntry>),
}

/// One server of an `upstream:` list: its address, or the address with
/// how the proxy shares requests with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum UpstreamEntry {
    Address(String),
    Detailed(UpstreamDetail),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamDetail {
    /// IP:PORT, as a plain entry.
    pub address: String,
    /// Its share of requests against the others' (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    /// At most this many requests at once go to it (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_conns: Option<i64>,
}

impl UpstreamEntry {
    pub fn address(&self) -> &str {
        match self {
            UpstreamEntry::Address(address) | UpstreamEntry::Detailed(UpstreamDetail { address, .. }) => address,
        }
    }

    /// `weight` and `max_conns`, when given.
    pub fn shares(&self) -> (Option<i64>, Option<i64>) {
        match self {
            UpstreamEntry::Address(_) => (None, None),
            UpstreamEntry::Detailed(detail) => (detail.weight, detail.max_conns),
        }
    }
}

impl<'de> Deserialize<'de> for UpstreamEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<UpstreamEntry, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UpstreamEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an address (IP:PORT) or a mapping with address, weight and max_conns")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<UpstreamEntry, E> {
                Ok(UpstreamEntry::Address(value.to_string()))
            }
            // Through serde's own map reader: an unknown or misspelt key is
            // named, with the keys that are known.
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<UpstreamEntry, A::Error> {
                UpstreamDetail::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(UpstreamEntry::Detailed)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Upstreams {
    /// Each address as written, in order.
    pub fn texts(&self) -> Vec<&str> {
        match self {
            Upstreams::One(one) => vec![one.as_str()],
            Upstreams::Several(several) => several.iter().map(UpstreamEntry::address).collect(),
        }
    }
}

impl<'de> Deserialize<'de> for Upstreams {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Upstreams, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Upstreams;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an address (host:port) or a list of addresses")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Upstreams, E> {
                Ok(Upstreams::One(value.to_string()))
            }
            // YAML reads `upstream: 11434` as a number; it is judged as the
            // text it is, as every other text field's is.
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Upstreams, E> {
                Ok(Upstreams::One(value.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Upstreams, E> {
                Ok(Upstreams::One(value.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Upstreams, E> {
                Ok(Upstreams::One(value.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Upstreams, E> {
                Ok(Upstreams::One(value.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Upstreams, A::Error> {
                let mut several = Vec::new();
                while let Some(one) = seq.next_element::<UpstreamEntry>()? {
                    several.push(one);
                }
                Ok(Upstreams::Several(several))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}
