//! The JSON Schema of the answers file (`ollama-secure schema`), for editors
//! (`# yaml-language-server: $schema=...`). Its keys, types and nesting are
//! derived from `answers` (the structs serde reads), so they cannot drift;
//! its value rules restate those of `fields` that a pattern can state.
//!
//! The schema never refuses what the tool accepts. What only the tool can
//! judge it judges alone: bits set past a network's prefix, an IPv4-mapped
//! network, an origin's host and where its wildcard stands, a
//! duration's range, a name or network given twice, two paths
//! naming one file, the socket inside the cache folder, Caddy's fixed
//! `http_port`, the password's length in bytes (the schema counts
//! characters), and whatever needs the machine (environment variables,
//! files, ports).

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Value, json};

use crate::access::Role;
use crate::answers::Answers;
use crate::config::MAX_USERS;
use crate::fields;
use crate::proxy::{PackageSource, ProxyKind};

/// The two documents the tool reads: an answers file, and the wizard's
/// `--defaults` file (the same keys; users are asked, not given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    Answers,
    WizardDefaults,
}

impl Document {
    /// Where the schema is published in the repository and in the package
    /// (beside `examples/`, which refer to it relatively).
    pub fn file_name(self) -> &'static str {
        match self {
            Document::Answers => "answers.schema.json",
            Document::WizardDefaults => "wizard-defaults.schema.json",
        }
    }
}

/// The schema, as `ollama-secure schema` prints it. Draft 7: what every
/// editor's YAML support reads.
pub fn schema(document: Document) -> Value {
    let mut root = SchemaSettings::draft07().into_generator().into_root_schema_for::<Answers>().to_value();
    root["title"] = json!(match document {
        Document::Answers => "ollama-secure answers file (version 1)",
        Document::WizardDefaults => "ollama-secure wizard defaults (--defaults)",
    });
    let https_on = json!({
        "required": ["https"],
        "properties": {"https": {"type": "object", "required": ["enabled"], "properties": {"enabled": {"const": true}}}}
    });
    let https_domain = https_domain();
    // `caddy_source` names a repository only a proxy with one has.
    let without_repository: Vec<&str> =
        ProxyKind::ALL.iter().filter(|kind| kind.module().own_repository().is_none()).map(|kind| kind.name()).collect();
    let caddy_source = json!({
        "if": {"required": ["proxy"], "properties": {"proxy": {"enum": without_repository}}},
        "then": {"properties": {"caddy_source": {"type": "null"}}}
    });
    match document {
        Document::Answers => {
            root["required"] = json!(["proxy", "users"]);
            root["properties"]["users"]["minItems"] = json!(1);
            root["properties"]["users"]["type"] = json!("array");
            root["allOf"] = json!([
                {"if": https_on, "then": {"required": ["domain"], "properties": {"domain": https_domain}}},
                caddy_source
            ]);
        }
        Document::WizardDefaults => {
            // The wizard asks for the users, and fills in a domain it asks for.
            root["properties"]["users"]["maxItems"] = json!(0);
            root["allOf"] = json!([{"if": https_on, "then": {"properties": {"domain": https_domain}}}, caddy_source]);
        }
    }
    root
}

fn schema_of(value: Value) -> Schema {
    Schema::try_from(value).expect("every schema here is a JSON object")
}

/// A key that may also be written empty (`key:` is YAML's null, read as absent).
fn optional(mut value: Value) -> Schema {
    if let Some(one) = value.as_object_mut().and_then(|v| v.remove("const")) {
        value["enum"] = json!([one]);
    }
    if let Some(Value::Array(choices)) = value.get_mut("enum") {
        choices.push(Value::Null);
    }
    match value["type"].take() {
        Value::String(kind) => value["type"] = json!([kind, "null"]),
        Value::Array(mut kinds) => {
            kinds.push(json!("null"));
            value["type"] = Value::Array(kinds);
        }
        other => unreachable!("every schema made optional here has a type, not {other}"),
    }
    schema_of(value)
}

// The patterns are in the syntax both ECMA-262 (editors) and Rust's regex
// read: classes, groups, counted repeats, and no look-around.

/// A port as `fields` reads it: an integer, so a sign and leading zeros too.
const PORT_TEXT: &str = "\\+?0*([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
const LABEL: &str = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
/// A name whose last label is all digits looks like an address; `fields::host` refuses it.
const DIGITS_LAST: &str = "([A-Za-z0-9-]+\\.)*[0-9]+";
const LOCALHOST: &str = "(^|\\.)[Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]$";

fn ipv4() -> String {
    let octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    format!("{octet}(\\.{octet}){{3}}")
}

/// Every form Rust's `Ipv6Addr` parses: eight groups, or fewer around one
/// `::`, the last two groups optionally written as an IPv4 address.
fn ipv6() -> String {
    let (group, v4) = ("[0-9A-Fa-f]{1,4}", ipv4());
    let groups = |n: usize| match n {
        0 => String::new(),
        n => format!("{group}(:{group}){{{}}}", n - 1),
    };
    let mut forms = vec![format!("({group}:){{7}}{group}"), format!("({group}:){{6}}{v4}")];
    for before in 0..=7 {
        let after = 7 - before;
        let tail = match after {
            0 => String::new(),
            n => format!("({group}(:{group}){{0,{}}})?", n - 1),
        };
        forms.push(format!("{}::{tail}", groups(before)));
        if before <= 5 {
            forms.push(format!("{}::({group}:){{0,{}}}{v4}", groups(before), 5 - before));
        }
    }
    format!("({})", forms.join("|"))
}

/// An IP address, bare or in brackets (`fields::ip_literal`).
fn ip_literal() -> String {
    let (v4, v6) = (ipv4(), ipv6());
    format!("({v4}|{v6}|\\[({v4}|{v6})\\])")
}

/// A text field: `pattern`, and what it takes in words, which editors show
/// instead of the pattern (VS Code's `patternErrorMessage`, `errorMessage`;
/// other validators ignore both).
fn text(pattern: String, words: &str) -> Value {
    json!({"type": TEXT, "pattern": pattern, "patternErrorMessage": words, "errorMessage": words})
}

/// A text as YAML may spell it: editors read `1001` as a number and `true`
/// as a boolean, and serde reads either as the text written, so the schema
/// takes them too (the tool judges their text; a pattern only a string).
const TEXT: [&str; 3] = ["string", "number", "boolean"];

/// Any text (a file to read a secret from: the tool tries to read it).
pub fn any_text(_: &mut SchemaGenerator) -> Schema {
    optional(json!({"type": TEXT}))
}

/// `before`, a host as a URL has it (a name as `fields::host` takes it, an
/// IPv4 address, or an address in brackets), `after`.
fn with_host(before: &str, after: &str, words: &str) -> Value {
    let (v4, v6) = (ipv4(), ipv6());
    let mut value = text(format!("^{before}({v4}|\\[({v4}|{v6})\\]|{LABEL}(\\.{LABEL})*){after}$"), words);
    value["not"] = looks_like_an_address(before, after);
    value
}

/// A name whose last label is all digits, between `before` and `after`,
/// that is no IPv4 address: `fields::host` refuses it.
fn looks_like_an_address(before: &str, after: &str) -> Value {
    json!({"type": "string", "allOf": [
        {"pattern": format!("^{before}{DIGITS_LAST}{after}$")},
        {"not": {"pattern": format!("^{before}{}{after}$", ipv4())}}
    ]})
}

/// `domain`: a name (RFC 1123, at most 253 characters) or an address; empty
/// is the same as leaving it out.
pub fn domain(_: &mut SchemaGenerator) -> Schema {
    let mut value = text(format!("^({}|{LABEL}(\\.{LABEL})*)?$", ip_literal()), fields::HOST_FORM);
    value["maxLength"] = json!(253);
    value["not"] = looks_like_an_address("", "");
    optional(value)
}

/// `domain` with HTTPS: a name, not this machine's own: certificates are
/// issued for public names.
fn https_domain() -> Value {
    let words = "a host name such as ollama.example.com: with https, a name a public CA issues certificates for \
                 (not an IP address, not localhost)";
    let mut value = text(format!("^{LABEL}(\\.{LABEL})*$"), words);
    value["maxLength"] = json!(253);
    value["not"] =
        json!({"type": "string", "anyOf": [{"pattern": format!("^{DIGITS_LAST}$")}, {"pattern": LOCALHOST}]});
    value
}

pub fn listen_address(_: &mut SchemaGenerator) -> Schema {
    optional(text(format!("^{}$", ip_literal()), "an IP address, e.g. 127.0.0.1, 192.0.2.10 or ::1"))
}

pub fn network(_: &mut SchemaGenerator) -> Schema {
    let (v4, v6) = (ipv4(), ipv6());
    // The prefix as a u8 reads it: leading zeros, no sign.
    schema_of(text(
        format!(
            "^(({v4}|\\[{v4}\\])(/0*(3[0-2]|[12]?[0-9]))?|({v6}|\\[{v6}\\])(/0*(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)$"
        ),
        fields::NETWORK_FORM,
    ))
}

/// `allow_from:` with nothing after it is the empty list.
pub fn allow_from(generator: &mut SchemaGenerator) -> Schema {
    schema_of(json!({"type": ["array", "null"], "items": network(generator)}))
}

/// An origin's outline: a scheme, `://`, and a host (a name, a wildcard
/// label, an address, an extension's ID) with an optional port, no path.
/// Where the wildcard may stand, extension IDs and default ports are the
/// tool's to judge.
pub fn cors_origins(_: &mut SchemaGenerator) -> Schema {
    let mut origin = text("^[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9.*:\\[\\]-]+$".to_string(), fields::ORIGIN_FORM);
    origin["not"] = json!({"type": "string", "pattern": "^[Ff][Ii][Ll][Ee]://"});
    schema_of(json!({"type": ["array", "null"], "items": origin}))
}

/// One address, or a list of them (several Ollama servers; that each is
/// then an IP over http, and none twice, is the tool's to judge).
pub fn upstream(_: &mut SchemaGenerator) -> Schema {
    let words = format!("{} (an IPv6 address in brackets: [::1]:11434)", fields::UPSTREAM_FORMS);
    let one = with_host("(https?://)?", &format!(":{PORT_TEXT}/?"), &words);
    let detailed = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["address"],
        "properties": {
            "address": one.clone(),
            "weight": {
                "description": "Its share of requests against the others' (default 1; nginx only).",
                "type": "integer", "minimum": fields::WEIGHTS.start(), "maximum": fields::WEIGHTS.end(),
            },
            "max_conns": {
                "description": "At most this many requests at once go to it (default: no limit; with Caddy, the same on every entry).",
                "type": "integer", "minimum": fields::MAX_CONNS.start(), "maximum": fields::MAX_CONNS.end(),
            },
        },
    });
    let several = json!({
        "type": "array", "minItems": 1, "maxItems": fields::MAX_UPSTREAMS,
        "items": {"anyOf": [one.clone(), detailed]},
    });
    schema_of(json!({"anyOf": [one, several, {"type": "null"}]}))
}

pub fn acme_directory(_: &mut SchemaGenerator) -> Schema {
    optional(with_host("https://", &format!("(:{PORT_TEXT})?(/[A-Za-z0-9/._~-]*)?"), fields::ACME_FORM))
}

pub fn email(_: &mut SchemaGenerator) -> Schema {
    let mut value = text(format!("^[A-Za-z0-9._%+-]+@{LABEL}(\\.{LABEL})+$"), fields::EMAIL_FORM);
    value["not"] = json!({"type": "string", "pattern": "\\.[0-9]+$"});
    optional(value)
}

const NAME: &str = "[A-Za-z0-9._@+-]{1,64}";

/// A username, and an API key's name (`fields::username`).
pub fn username(_: &mut SchemaGenerator) -> Schema {
    schema_of(text(format!("^{NAME}$"), &format!("1 to 64 of {}", fields::USERNAME_ALPHABET)))
}

fn bcrypt() -> String {
    let costs: Vec<String> = fields::BCRYPT_COSTS.map(|cost| format!("{cost:02}")).collect();
    format!("\\$2[aby]\\$({})\\$[./A-Za-z0-9]{{53}}", costs.join("|"))
}

fn bcrypt_words() -> String {
    format!("{}, of cost {} to {}", fields::BCRYPT_FORM, fields::BCRYPT_COSTS.start(), fields::BCRYPT_COSTS.end())
}

pub fn password_hash(_: &mut SchemaGenerator) -> Schema {
    optional(text(format!("^{}$", bcrypt()), &bcrypt_words()))
}

/// `ID:BCRYPT`, a key's line in the keys file.
pub fn key_hash(_: &mut SchemaGenerator) -> Schema {
    let words =
        format!("`ID:BCRYPT`, the key's line in the keys file (as --save-answers writes it): {}", bcrypt_words());
    optional(text(format!("^{NAME}:{}$", bcrypt()), &words))
}

/// A password a person chose (`fields::password`; its limit is in bytes,
/// which a schema cannot count, so characters stand in: never stricter).
pub fn password(_: &mut SchemaGenerator) -> Schema {
    let words = format!("a password: not empty, no NUL, at most {} bytes", fields::PASSWORD_MAX_BYTES);
    let mut value = text("^[^\\x00]*$".to_string(), &words);
    value["minLength"] = json!(1);
    value["maxLength"] = json!(fields::PASSWORD_MAX_BYTES);
    optional(value)
}

pub fn env_var_name(_: &mut SchemaGenerator) -> Schema {
    let words = format!("an environment variable name: {}", fields::ENV_VAR_ALPHABET);
    optional(text("^[A-Za-z_][A-Za-z0-9_]*$".to_string(), &words))
}

pub fn group_name(_: &mut SchemaGenerator) -> Schema {
    let words = format!("a group name: {}", fields::GROUP_ALPHABET);
    optional(text("^[A-Za-z_][A-Za-z0-9_-]{0,31}$".to_string(), &words))
}

pub fn role(_: &mut SchemaGenerator) -> Schema {
    let names: Vec<&str> = Role::ALL.iter().map(|role| role.name()).collect();
    optional(json!({"type": "string", "enum": names}))
}

pub fn proxy(_: &mut SchemaGenerator) -> Schema {
    let names: Vec<&str> = ProxyKind::ALL.iter().map(|kind| kind.name()).collect();
    optional(json!({"type": "string", "enum": names}))
}

pub fn caddy_source(_: &mut SchemaGenerator) -> Schema {
    let names: Vec<&str> = PackageSource::ALL.iter().map(|source| source.name()).collect();
    optional(json!({"type": "string", "enum": names}))
}

pub fn sticky(_: &mut SchemaGenerator) -> Schema {
    optional(json!({"type": "string", "enum": ["credential"]}))
}

pub fn version(_: &mut SchemaGenerator) -> Schema {
    optional(json!({"type": "integer", "const": 1}))
}

pub fn port(_: &mut SchemaGenerator) -> Schema {
    optional(json!({"type": "integer", "minimum": 1, "maximum": 65535}))
}

pub fn bcrypt_cost(_: &mut SchemaGenerator) -> Schema {
    optional(json!({"type": "integer", "minimum": fields::BCRYPT_COSTS.start(), "maximum": fields::BCRYPT_COSTS.end()}))
}

pub fn ban_after(_: &mut SchemaGenerator) -> Schema {
    optional(json!({"type": "integer", "minimum": 1, "maximum": fields::MAX_BAN_AFTER}))
}

/// A list of at most `MAX_USERS` entries of `T`.
/// A list of at most `MAX_USERS` entries of `T` (`key:` alone: none).
pub fn at_most_max_users<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    schema_of(json!({"type": ["array", "null"], "maxItems": MAX_USERS, "items": generator.subschema_for::<T>()}))
}

/// An absolute path safe in both proxies' files (`fields::absolute_path`):
/// no `..` part, no `/` at the end.
fn path_pattern() -> String {
    let part = "([A-Za-z0-9._+-]{3,}|[A-Za-z0-9_+-][A-Za-z0-9._+-]|\\.[A-Za-z0-9_+-]|[A-Za-z0-9._+-])";
    format!("^(/|(/+{part})+)$")
}

fn path_words() -> String {
    format!("an absolute path of {}, with no '..' and no '/' at the end", fields::PATH_ALPHABET)
}

pub fn path(_: &mut SchemaGenerator) -> Schema {
    optional(text(path_pattern(), &path_words()))
}

/// A unix socket's path, which also fits `sun_path`.
pub fn socket_path(_: &mut SchemaGenerator) -> Schema {
    let max = fields::UNIX_SOCKET_PATH_MAX;
    let mut value = text(path_pattern(), &format!("{}, at most {max} bytes (a unix socket)", path_words()));
    value["maxLength"] = json!(max);
    optional(value)
}

const UNITS: &str = "(nanos|nsec|ns|usec|us|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|\
                     hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)";

/// A number of seconds, or a duration as `fields::duration_seconds` reads
/// it (`90s`, `10m`, `1h 30m`); its range is judged by the tool alone.
fn duration(max: std::time::Duration) -> Schema {
    let number = "[0-9]( *[0-9])*";
    let words = format!(
        "a number of seconds, or a duration such as 90s, 10m or 1h (from 1s to {})",
        fields::duration_words(max)
    );
    // Each keyword judges its own type: the range a number, the pattern a text.
    optional(json!({
        "type": ["integer", "string"],
        "minimum": 1,
        "maximum": max.as_secs(),
        "pattern": format!("^([0-9]+|{number} *{UNITS}( *{number} *{UNITS})*)$"),
        "patternErrorMessage": words,
        "errorMessage": words
    }))
}

pub fn timeout(_: &mut SchemaGenerator) -> Schema {
    duration(fields::MAX_TIMEOUT)
}

pub fn ban_within(_: &mut SchemaGenerator) -> Schema {
    duration(fields::MAX_BAN_WINDOW)
}

pub fn ban_for(_: &mut SchemaGenerator) -> Schema {
    duration(fields::MAX_BAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, value: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(value)
    }

    #[test]
    fn the_ipv6_pattern_takes_what_rust_parses() {
        let pattern = format!("^{}$", ipv6());
        let samples = [
            "::",
            "::1",
            "1::",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "2001:db8::1",
            "::ffff:192.0.2.1",
            "1:2:3:4:5:6:1.2.3.4",
            "1::2:1.2.3.4",
            "1:2:3:4:5::1.2.3.4",
            "fe80::0001",
            ":::",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "12345::",
            "1:2:3:4:5:6:7:1.2.3.4",
            "::1.2.3",
            "g::",
            "1:2:3:4:5:6::1.2.3.4",
            "::01.2.3.4",
            "1:2:3:4:5:6:7:8::",
        ];
        for sample in samples {
            assert_eq!(
                matches(&pattern, sample),
                sample.parse::<std::net::Ipv6Addr>().is_ok(),
                "{sample}: the pattern and Ipv6Addr disagree"
            );
        }
    }

    #[test]
    fn the_ipv4_pattern_takes_what_rust_parses() {
        let pattern = format!("^{}$", ipv4());
        for sample in ["0.0.0.0", "255.255.255.255", "192.0.2.1", "256.0.0.1", "01.2.3.4", "1.2.3", "1.2.3.4.5"] {
            assert_eq!(matches(&pattern, sample), sample.parse::<std::net::Ipv4Addr>().is_ok(), "{sample}");
        }
    }

    #[test]
    fn the_path_pattern_agrees_with_absolute_path() {
        for sample in
            ["/", "/etc/x", "/a//b", "/a/.x", "/a/..x", "/a/x..", "/a/.", "/a/..", "/../a", "//", "/a/", "a", ""]
        {
            assert_eq!(
                matches(&path_pattern(), sample),
                fields::absolute_path(sample).is_ok(),
                "{sample:?}: the pattern and fields::absolute_path disagree"
            );
        }
    }
}
