//! A plaintext password in memory. It has no `Display`, and its `Debug` shows
//! nothing, so it cannot end up in dry-run output, logs or snapshots by
//! accident; the one place that prints it calls `expose` on purpose.

use std::fmt;
use std::sync::Mutex;

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

/// Names of environment variables a secret was read from. Programs we run
/// (a proxy we start lives on) get our environment without them.
static SECRET_VARIABLES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Reads a secret from the environment variable `name`, and keeps it out of
/// the environment of every program run from now on.
pub fn from_env(name: &str) -> Option<Secret> {
    let value = std::env::var(name).ok()?;
    let mut names = SECRET_VARIABLES.lock().unwrap_or_else(|e| e.into_inner());
    if !names.iter().any(|n| n == name) {
        names.push(name.to_string());
    }
    Some(Secret(value))
}

/// The variables `from_env` read: to remove from a child's environment.
pub fn variables() -> Vec<String> {
    SECRET_VARIABLES.lock().unwrap_or_else(|e| e.into_inner()).clone()
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
