//! serde's and serde_yaml's messages in the words of the answers file:
//! "a whole number", not `i64`; "unknown key `dommain`; did you mean
//! `domain`?", not the list of every field of a Rust struct.

/// A message about the value read, without the field and position that
/// serde_yaml puts around it (they are printed once, in front).
pub fn in_words(message: &str) -> String {
    let backquoted_key = |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split_once('`'));
    if let Some((found, expected)) = message.strip_prefix("invalid type: ").and_then(|r| r.split_once(", expected ")) {
        return wrong_type(found, expected);
    }
    if let Some((key, known)) = backquoted_key("unknown field `") {
        return unknown_key(key, &backquoted(known));
    }
    if let Some((key, _)) = backquoted_key("missing field `") {
        return format!("`{key}` is required here");
    }
    if let Some((key, _)) = backquoted_key("duplicate field `") {
        return format!("the key `{key}` is given twice; keep one");
    }
    if message == "control characters are not allowed" {
        return "control characters (an escape, a NUL) are not allowed; remove it".to_string();
    }
    // The YAML parser's own messages name a second place ("while parsing
    // a block mapping at line 1 column 1"): in the form used in front.
    let mut parts = message.split(" at line ");
    let mut words = parts.next().unwrap_or_default().to_string();
    for part in parts {
        match part.split_once(" column ") {
            Some((line, after)) if !line.is_empty() && line.chars().all(|c| c.is_ascii_digit()) => {
                let rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
                let column = after.strip_suffix(rest).unwrap_or_default();
                words.push_str(&format!(" started at {line}:{column}{rest}"));
            }
            _ => words.push_str(&format!(" at line {part}")),
        }
    }
    words
}

/// The words inside backquotes: the keys serde lists as expected.
fn backquoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn wrong_type(found: &str, expected: &str) -> String {
    let wanted = match expected {
        "i64" | "i32" | "u64" | "u32" | "u16" | "u8" => "a whole number",
        "a boolean" => "true or false",
        "a string" => "text",
        "a sequence" => "a list",
        e if e.starts_with("struct ") || e == "a map" => "a group of `key: value` lines",
        e => e,
    };
    let (what, hint) = match found.split_once(' ') {
        Some(("string", text)) => (format!("the text {text}"), bool_hint(expected, text)),
        Some(("integer" | "floating", number)) => {
            (format!("the number {}", number.trim_start_matches("point ").trim_matches('`')), "")
        }
        Some(("boolean", value)) => (value.trim_matches('`').to_string(), ""),
        _ => match found {
            "unit value" => ("nothing (an empty value)".to_string(), ""),
            "sequence" => ("a list".to_string(), ""),
            "map" => ("a group of `key: value` lines".to_string(), ""),
            other => (other.to_string(), ""),
        },
    };
    format!("expected {wanted}, found {what}{hint}")
}

/// YAML 1.1 read `yes`, `on` as true; this file is YAML 1.2, where they are text.
fn bool_hint(expected: &str, text: &str) -> &'static str {
    let words = ["\"yes\"", "\"no\"", "\"on\"", "\"off\"", "\"y\"", "\"n\""];
    if expected == "a boolean" && words.iter().any(|w| w.eq_ignore_ascii_case(text)) {
        " (YAML 1.2 reads yes, no, on and off as text)"
    } else {
        ""
    }
}

/// Suggests the known key closest to a misspelt one, or lists them.
fn unknown_key(key: &str, known: &[&str]) -> String {
    let closest = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|(distance, k)| *distance <= 2.max(k.len() / 4) && *distance < k.len())
        .min();
    match closest {
        Some((_, k)) => format!("unknown key `{key}`; did you mean `{k}`?"),
        None if known.is_empty() => format!("unknown key `{key}`: nothing else is allowed here"),
        None => format!("unknown key `{key}`; the keys allowed here are {}", known.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_in_words() {
        assert_eq!(
            in_words("invalid type: string \"eighty\", expected i64"),
            "expected a whole number, found the text \"eighty\""
        );
        assert_eq!(
            in_words("invalid type: string \"yes\", expected a boolean"),
            "expected true or false, found the text \"yes\" (YAML 1.2 reads yes, no, on and off as text)"
        );
        assert_eq!(in_words("invalid type: integer `5`, expected a string"), "expected text, found the number 5");
        assert_eq!(
            in_words("invalid type: floating point `1.5`, expected i64"),
            "expected a whole number, found the number 1.5"
        );
        assert_eq!(in_words("invalid type: sequence, expected a string"), "expected text, found a list");
        assert_eq!(
            in_words("invalid type: string \"x\", expected struct HttpsAnswers"),
            "expected a group of `key: value` lines, found the text \"x\""
        );
        assert_eq!(
            in_words("invalid type: unit value, expected a sequence"),
            "expected a list, found nothing (an empty value)"
        );
        assert_eq!(in_words("missing field `username`"), "`username` is required here");
        assert_eq!(in_words("duplicate field `port`"), "the key `port` is given twice; keep one");
        assert_eq!(in_words("something else"), "something else");
        assert_eq!(
            in_words("did not find expected key, while parsing a block mapping at line 1 column 1"),
            "did not find expected key, while parsing a block mapping started at 1:1"
        );
        assert_eq!(in_words("x at line 2"), "x at line 2");
    }

    #[test]
    fn unknown_keys_suggest_the_closest() {
        let known = "expected one of `version`, `proxy`, `domain`, `port`, `users`";
        assert_eq!(
            in_words(&format!("unknown field `dommain`, {known}")),
            "unknown key `dommain`; did you mean `domain`?"
        );
        assert_eq!(in_words(&format!("unknown field `prot`, {known}")), "unknown key `prot`; did you mean `port`?");
        assert_eq!(
            in_words(&format!("unknown field `colour`, {known}")),
            "unknown key `colour`; the keys allowed here are version, proxy, domain, port, users"
        );
        assert_eq!(in_words("unknown field `x`, there are no fields"), "unknown key `x`: nothing else is allowed here");
        assert_eq!(
            in_words("unknown field `pw`, expected `username`"),
            "unknown key `pw`; the keys allowed here are username"
        );
    }
}
