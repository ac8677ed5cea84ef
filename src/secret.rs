//! A plaintext password in memory. It has no `Display`, and its `Debug` shows
//! nothing, so it cannot end up in dry-run output, logs or snapshots by
//! accident; the one place that prints it calls `expose` on purpose.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.chars().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_does_not_show_the_value() {
        let shown = format!("{:?}", super::Secret::new("hunter2hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
