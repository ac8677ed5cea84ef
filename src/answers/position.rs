//! Where a field of the answers file is written: the line and column that
//! an error about `users[1].username` points at, found by walking the YAML
//! text with serde_yaml itself (which marks an error with the position of
//! the value being read), so flow style, quoting and comments are read
//! exactly as the parser reads them.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::Position;

/// Raised by the walk where the field is: only its position is kept.
const HERE: &str = "ollama-secure: the field is here";

/// One step of a field's path: a key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `users[1].username` as steps; `None` for a path this tool never writes.
fn steps(field: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    for part in field.split('.') {
        let (key, mut indexes) = part.split_once('[').map_or((part, ""), |(k, rest)| (k, rest));
        if key.is_empty() {
            return None;
        }
        steps.push(Step::Key(key.to_string()));
        while !indexes.is_empty() {
            let (index, rest) = indexes.split_once(']')?;
            steps.push(Step::Index(index.parse().ok()?));
            indexes = rest.strip_prefix('[').unwrap_or(rest);
            if !rest.is_empty() && !rest.starts_with('[') {
                return None;
            }
        }
    }
    Some(steps)
}

/// Where `field` is written in `text`: at its value, or at its key when
/// `at_key` (an unknown key is the key's fault, not its value's). A field
/// that is not in the file (a required key left out) is placed at the
/// closest part of its path that is, or nowhere.
pub fn locate(text: &str, field: &str, at_key: bool) -> Option<Position> {
    locate_nth(text, field, at_key, 0)
}

/// Where the second `key` of the mapping at `parent` is written: a key
/// given twice is the second one's fault.
pub fn locate_repeated(text: &str, parent: &str, key: &str) -> Option<Position> {
    let field = if parent.is_empty() || parent == "." { key.to_string() } else { format!("{parent}.{key}") };
    locate_nth(text, &field, true, 1)
}

/// `locate`, at the key's `repeat`-th repetition (0: where it first is).
fn locate_nth(text: &str, field: &str, at_key: bool, repeat: usize) -> Option<Position> {
    let steps = steps(field)?;
    (1..=steps.len()).rev().find_map(|n| {
        let on_key = at_key && n == steps.len();
        let deserializer = serde_yaml::Deserializer::from_str(text);
        let walk = Walk { rest: &steps[..n], at_key: on_key, repeat: if n == steps.len() { repeat } else { 0 } };
        let err = walk.deserialize(deserializer).err()?;
        if !err.to_string().contains(HERE) {
            return None;
        }
        let location = err.location()?;
        Position::at(text, location.line(), location.column())
    })
}

/// Follows the steps through the document and fails, with the position
/// serde_yaml attaches, where they end.
struct Walk<'a> {
    rest: &'a [Step],
    at_key: bool,
    /// Passes over this many earlier copies of the last key.
    repeat: usize,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        match self.rest.first() {
            None => deserializer.deserialize_any(Here),
            Some(Step::Key(_)) => deserializer.deserialize_map(self),
            Some(Step::Index(_)) => deserializer.deserialize_seq(self),
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the field's parent")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Step::Key(wanted), rest)) = self.rest.split_first() else { return Ok(()) };
        let last = rest.is_empty();
        let mut skip = if last { self.repeat } else { 0 };
        while let Some(matched) = map.next_key_seed(Key { wanted, here: self.at_key && last && skip == 0 })? {
            if matched && skip == 0 {
                return map.next_value_seed(Walk { rest, ..self });
            }
            skip -= usize::from(matched);
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Step::Index(wanted), rest)) = self.rest.split_first() else { return Ok(()) };
        for _ in 0..*wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Walk { rest, ..self }).map(|_| ())
    }
}

/// A mapping key: is it the one wanted (and, with `here`, stop on it)?
struct Key<'a> {
    wanted: &'a str,
    here: bool,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        match key == self.wanted {
            true if self.here => Err(E::custom(HERE)),
            matched => Ok(matched),
        }
    }

    fn visit_i64<E: de::Error>(self, key: i64) -> Result<bool, E> {
        self.visit_str(&key.to_string())
    }

    fn visit_u64<E: de::Error>(self, key: u64) -> Result<bool, E> {
        self.visit_str(&key.to_string())
    }

    fn visit_bool<E: de::Error>(self, key: bool) -> Result<bool, E> {
        self.visit_str(&key.to_string())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

/// The value the path ends at: fail on whatever it is.
struct Here;

impl<'de> Visitor<'de> for Here {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_some<D: de::Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
        Err(de::Error::custom(HERE))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(HERE))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(HERE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, field: &str, at_key: bool) -> Option<(usize, usize)> {
        locate(text, field, at_key).map(|p| (p.line, p.column))
    }

    #[test]
    fn values_and_keys_in_block_and_flow_style() {
        let text = "# comment\nproxy: nginx\nport: eighty\nusers:\n  - username: a\n    pasword: x\n  - {username: b, pw: y}\nhttps:\n  enabled: yes\n";
        assert_eq!(at(text, "port", false), Some((3, 7)));
        assert_eq!(at(text, "port", true), Some((3, 1)));
        assert_eq!(at(text, "users[0].pasword", true), Some((6, 5)));
        assert_eq!(at(text, "users[1].pw", true), Some((7, 19)));
        assert_eq!(at(text, "users[1].pw", false), Some((7, 23)));
        assert_eq!(at(text, "https.enabled", false), Some((9, 12)));
        // Not written: the closest part of the path that is.
        assert_eq!(at(text, "users[1].password_env", false), Some((7, 5)));
        assert_eq!(at(text, "users[5].username", false), Some((5, 3)));
        assert_eq!(at(text, "domain", false), None);
        assert_eq!(at(text, "", false), None);
        assert_eq!(at("- a\n", "port", false), None);
        assert_eq!(at("port: [1, 2", "port", false), Some((1, 7)));
        assert_eq!(at("port: 1\nport: 2\n", "port", true), Some((1, 1)));
        let repeated = |text, parent, key| locate_repeated(text, parent, key).map(|p| (p.line, p.column));
        assert_eq!(repeated("port: 1\nport: 2\n", ".", "port"), Some((2, 1)));
        assert_eq!(repeated("users:\n- {username: a, username: b}\n", "users[0]", "username"), Some((2, 17)));
        assert_eq!(repeated("port: 1\n", ".", "port"), None);
    }

    #[test]
    fn paths_as_problems_spell_them() {
        assert_eq!(
            steps("users[1].username"),
            Some(vec![Step::Key("users".into()), Step::Index(1), Step::Key("username".into())])
        );
        assert_eq!(steps("a[0][2]"), Some(vec![Step::Key("a".into()), Step::Index(0), Step::Index(2)]));
        assert_eq!(steps("a[x]"), None);
        assert_eq!(steps("a[0]b"), None);
        assert_eq!(steps("line 3"), Some(vec![Step::Key("line 3".into())]));
    }
}
