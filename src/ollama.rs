//! Ollama's own service: where `OLLAMA_HOST` makes it listen (read as
//! Ollama reads it), what systemd says about `ollama.service`, and the
//! drop-in that keeps it on loopback. Pure: `facts::ollama_service` asks
//! the machine, `plan::harden` decides.

use std::net::IpAddr;
use std::path::PathBuf;

/// The unit Ollama's install script writes.
pub const UNIT: &str = "ollama.service";

/// Ollama's port when `OLLAMA_HOST` names none.
pub const DEFAULT_PORT: u16 = 11434;

/// Where Ollama listens, as `OLLAMA_HOST` says (Ollama's
/// `envconfig.Host`: quotes and spaces trimmed, an optional scheme, host
/// and port; a missing or invalid port is the scheme's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// An address, a name, or empty (every address, as Go's `net.Listen`
    /// reads `:PORT`).
    pub host: String,
    pub port: u16,
}

impl Bind {
    pub fn from_env(value: Option<&str>) -> Bind {
        let value = value.unwrap_or_default().trim().trim_matches(|c| c == '"' || c == '\'').trim();
        let (default_port, rest) = match value.split_once("://") {
            Some(("http", rest)) => (80, rest),
            Some(("https", rest)) => (443, rest),
            Some((_, rest)) => (DEFAULT_PORT, rest),
            None => (DEFAULT_PORT, value),
        };
        let hostport = rest.split('/').next().unwrap_or_default();
        match split_host_port(hostport) {
            Some((host, port)) => Bind { host: host.to_string(), port: port.parse().unwrap_or(default_port) },
            None => {
                let bare = hostport.trim_start_matches('[').trim_end_matches(']');
                let host = if bare.is_empty() { "127.0.0.1" } else { bare };
                Bind { host: host.to_string(), port: default_port }
            }
        }
    }

    /// Only this machine can connect: a loopback address, or `localhost`.
    pub fn is_loopback_only(&self) -> bool {
        match self.host.parse::<IpAddr>() {
            Ok(ip) => crate::fields::is_loopback(ip),
            Err(_) => self.host.eq_ignore_ascii_case("localhost"),
        }
    }

    /// As `OLLAMA_HOST` would be written for it.
    pub fn text(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// Go's `net.SplitHostPort`, for the forms that matter here: `host:port`,
/// `[v6]:port`, `:port`. `None` when there is no port (or two colons
/// outside brackets: a bare IPv6 address).
fn split_host_port(text: &str) -> Option<(&str, &str)> {
    if let Some(inner) = text.strip_prefix('[') {
        let (host, after) = inner.split_once(']')?;
        return Some((host, after.strip_prefix(':')?));
    }
    let (host, port) = text.rsplit_once(':')?;
    (!host.contains(':')).then_some((host, port))
}

/// `ollama.service` as `systemctl show` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unit {
    /// `loaded`, `not-found`, `masked`, ...
    pub load_state: String,
    /// `active`, `inactive`, `failed`, ...
    pub active_state: String,
    pub main_pid: u32,
    /// `Environment=` assignments, in order (a later one wins).
    pub environment: Vec<(String, String)>,
    /// `EnvironmentFile=` files: what they set overrides `Environment=`.
    pub environment_files: Vec<PathBuf>,
    /// A unit file or drop-in changed since systemd read them.
    pub need_daemon_reload: bool,
}

/// The properties `Unit::parse` reads.
const SHOWN: &str = "LoadState,ActiveState,MainPID,Environment,EnvironmentFiles,NeedDaemonReload";

/// The command whose output `Unit::parse` reads.
pub fn show_command() -> crate::plan::Command {
    crate::plan::Command::new("systemctl", &["show", "--property", SHOWN, UNIT]).private_output()
}

impl Unit {
    /// Parses `systemctl show --property SHOWN ollama.service`.
    pub fn parse(shown: &str) -> Unit {
        let mut unit = Unit::default();
        for line in shown.lines() {
            let Some((key, value)) = line.split_once('=') else { continue };
            match key {
                "LoadState" => unit.load_state = value.to_string(),
                "ActiveState" => unit.active_state = value.to_string(),
                "MainPID" => unit.main_pid = value.trim().parse().unwrap_or(0),
                "NeedDaemonReload" => unit.need_daemon_reload = value == "yes",
                "Environment" => unit.environment.extend(assignments(value)),
                // One line per file: `PATH (ignore_errors=no)`.
                "EnvironmentFiles" => {
                    let path = value.split(" (").next().unwrap_or_default();
                    if !path.is_empty() {
                        unit.environment_files.push(PathBuf::from(path));
                    }
                }
                _ => {}
            }
        }
        unit
    }

    pub fn exists(&self) -> bool {
        self.load_state == "loaded"
    }

    pub fn is_active(&self) -> bool {
        matches!(self.active_state.as_str(), "active" | "activating" | "reloading")
    }

    /// The last `Environment=` value of `name`.
    pub fn environment_value(&self, name: &str) -> Option<&str> {
        self.environment.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// `NAME=value` words as `systemctl show` joins them: separated by spaces,
/// a word with spaces in double quotes.
fn assignments(value: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => words.push(std::mem::take(&mut word)),
            c => word.push(c),
        }
    }
    words.push(word);
    words
        .into_iter()
        .filter_map(|w| w.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// The last value of `name` in an environment file, as systemd reads it
/// (`NAME=value` lines, `#` and `;` comments, optional quotes).
pub fn environment_file_value(content: &str, name: &str) -> Option<String> {
    content
        .lines()
        .rev()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        .next()
}

/// The first line of every drop-in `harden-ollama` writes: a file at its
/// path without it is someone else's and is never replaced.
pub const DROPIN_MARKER: &str = "# Written by `ollama-secure harden-ollama`";

/// The drop-in that makes Ollama listen at `bind`.
pub fn dropin(bind: &Bind) -> String {
    format!(
        "{DROPIN_MARKER}: Ollama listens on loopback only, so that\n\
         # clients reach it through the proxy, which asks for credentials.\n\
         # Named to sort after `systemctl edit`'s override.conf: the last\n\
         # OLLAMA_HOST systemd reads wins. `ollama-secure harden-ollama --undo`\n\
         # removes this file.\n\
         [Service]\n\
         Environment=\"OLLAMA_HOST={}\"\n",
        bind.text()
    )
}

/// How to keep Ollama on loopback, for each way it is started.
pub fn exposure_fix(port: u16) -> String {
    format!(
        "Make Ollama listen on loopback only: set OLLAMA_HOST=127.0.0.1:{port}.\n\
         With systemd: `systemctl edit ollama`, add\n  [Service]\n  Environment=\"OLLAMA_HOST=127.0.0.1:{port}\"\n\
         then `systemctl restart ollama` (or let `ollama-secure harden-ollama` do it, with a backup and rollback).\n\
         With Docker: publish the port on loopback only, `docker run ... -p 127.0.0.1:{port}:11434 ollama/ollama` \
         (a bare `-p {port}:11434` listens on every address, past the host's firewall).\n\
         Started by hand: `OLLAMA_HOST=127.0.0.1:{port} ollama serve`."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_settings_are_never_echoed() {
        // `Environment=` of ollama.service may hold tokens: `-v` must not show them.
        assert_eq!(show_command().output, crate::plan::Output::Private);
    }

    fn bind(value: &str) -> (String, u16) {
        let b = Bind::from_env(Some(value));
        (b.host, b.port)
    }

    #[test]
    fn ollama_host_is_read_as_ollama_reads_it() {
        let own = |h: &str, p| (h.to_string(), p);
        assert_eq!(Bind::from_env(None), Bind { host: "127.0.0.1".into(), port: 11434 });
        assert_eq!(bind(""), own("127.0.0.1", 11434));
        assert_eq!(bind("0.0.0.0"), own("0.0.0.0", 11434));
        assert_eq!(bind("0.0.0.0:8080"), own("0.0.0.0", 8080));
        assert_eq!(bind("\"0.0.0.0:11434\""), own("0.0.0.0", 11434));
        assert_eq!(bind(" '127.0.0.1:11434' "), own("127.0.0.1", 11434));
        assert_eq!(bind(":11434"), own("", 11434));
        assert_eq!(bind("http://0.0.0.0"), own("0.0.0.0", 80));
        assert_eq!(bind("https://10.0.0.2/"), own("10.0.0.2", 443));
        assert_eq!(bind("http://127.0.0.1:11434/"), own("127.0.0.1", 11434));
        assert_eq!(bind("[::]:11434"), own("::", 11434));
        assert_eq!(bind("::1"), own("::1", 11434));
        assert_eq!(bind("[::1]"), own("::1", 11434));
        assert_eq!(bind("localhost:99999"), own("localhost", 11434));
        assert_eq!(bind("ollama.internal"), own("ollama.internal", 11434));
        for (value, loopback) in [
            ("", true),
            ("127.0.0.1:1", true),
            ("127.8.9.10", true),
            ("[::1]:1", true),
            ("LOCALHOST", true),
            ("0.0.0.0", false),
            (":11434", false),
            ("[::]:11434", false),
            ("192.0.2.1", false),
            ("ollama.internal", false),
        ] {
            assert_eq!(Bind::from_env(Some(value)).is_loopback_only(), loopback, "{value:?}");
        }
        assert_eq!(Bind::from_env(Some("[::1]:8")).text(), "[::1]:8");
        assert_eq!(Bind::from_env(Some("127.0.0.1")).text(), "127.0.0.1:11434");
    }

    #[test]
    fn systemctl_show_is_parsed() {
        let unit = Unit::parse(
            "LoadState=loaded\nActiveState=active\nMainPID=4242\n\
             Environment=PATH=/usr/bin \"OLLAMA_MODELS=/srv/my models\" OLLAMA_HOST=0.0.0.0 OLLAMA_HOST=127.0.0.1:11434\n\
             EnvironmentFiles=/etc/default/ollama (ignore_errors=yes)\nNeedDaemonReload=no\n",
        );
        assert!(unit.exists() && unit.is_active());
        assert_eq!(unit.main_pid, 4242);
        assert_eq!(unit.environment_value("OLLAMA_HOST"), Some("127.0.0.1:11434"));
        assert_eq!(unit.environment_value("OLLAMA_MODELS"), Some("/srv/my models"));
        assert_eq!(unit.environment_files, [PathBuf::from("/etc/default/ollama")]);
        assert!(!unit.need_daemon_reload);
        let missing = Unit::parse("LoadState=not-found\nActiveState=inactive\nMainPID=0\nEnvironment=\n");
        assert!(!missing.exists() && !missing.is_active());
        assert!(missing.environment.is_empty());
    }

    #[test]
    fn environment_files_are_read_as_systemd_reads_them() {
        let file = "# OLLAMA_HOST=1.2.3.4\nOLLAMA_MODELS=/srv\nOLLAMA_HOST=\"0.0.0.0:11434\"\n; OLLAMA_HOST=x\n";
        assert_eq!(environment_file_value(file, "OLLAMA_HOST").as_deref(), Some("0.0.0.0:11434"));
        assert_eq!(environment_file_value("OLLAMA_MODELS=/srv\n", "OLLAMA_HOST"), None);
    }

    #[test]
    fn the_dropin_says_whose_it_is() {
        let text = dropin(&Bind { host: "127.0.0.1".into(), port: 11434 });
        assert!(text.starts_with(DROPIN_MARKER));
        assert!(text.ends_with("[Service]\nEnvironment=\"OLLAMA_HOST=127.0.0.1:11434\"\n"), "{text}");
    }
}
