//! Every file location the tool reads or writes, in one place, with per-OS
//! defaults. The answers file can override each (`paths:`), which is how the
//! tests point everything into a temporary directory.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Debian, Ubuntu and relatives: packages from apt, sites-available/enabled.
    Debian,
    /// macOS with Homebrew, installed under this prefix (`brew --prefix`).
    MacHomebrew(&'static str),
}

/// Where Homebrew installs on Apple silicon, and on Intel Macs.
pub const HOMEBREW_PREFIXES: [&str; 2] = ["/opt/homebrew", "/usr/local"];

impl Os {
    pub fn current() -> Os {
        match cfg!(target_os = "macos") {
            // Homebrew's own rule: its prefix follows the processor.
            true if cfg!(target_arch = "aarch64") => Os::MacHomebrew(HOMEBREW_PREFIXES[0]),
            true => Os::MacHomebrew(HOMEBREW_PREFIXES[1]),
            false => Os::Debian,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    /// nginx's main configuration file (passed to `nginx -t -c`).
    pub nginx_conf: PathBuf,
    /// Our nginx site file.
    pub nginx_site: PathBuf,
    /// The symlink in the directory nginx includes that enables the site.
    /// The site itself lives outside that directory, so that its backups are
    /// never loaded as a second copy.
    pub nginx_site_link: PathBuf,
    pub htpasswd: PathBuf,
    /// nginx's file of API keys (`ID:hash` lines, like htpasswd). Caddy
    /// keeps its keys in its site file. (Absent in older states: the default.)
    #[serde(default = "default_api_keys")]
    pub api_keys: PathBuf,
    /// The access log of our site: one line per request, naming the
    /// credential and its role (`ollama-secure usage` reads it). nginx's
    /// when the proxy is nginx, Caddy's otherwise. (Absent in older states.)
    #[serde(default = "default_access_log")]
    pub access_log: PathBuf,
    /// Where nginx writes its PID (tells whether it runs, without systemd).
    pub nginx_pid: PathBuf,
    /// Cache of successful password checks. nginx creates it (mode 0700,
    /// owned by its worker user); it must sit directly in a folder that
    /// exists at boot (tmpfs: see README).
    pub auth_cache: PathBuf,
    /// The unix socket of nginx's auth-only server. Never inside
    /// `auth_cache`: nginx's cache loader deletes every file there that is
    /// not a cache entry, 60 s after each start. It sits directly in a
    /// folder that exists at boot, because nginx creates the socket, not
    /// its folder.
    pub auth_socket: PathBuf,
    /// Caddy's main Caddyfile; we add one `import` line to it.
    pub caddyfile: PathBuf,
    /// Our Caddy site file, imported by the main Caddyfile.
    pub caddy_site: PathBuf,
    /// PID file for `caddy start` when there is no systemd.
    pub caddy_pid: PathBuf,
    /// Caddy's output when we start it ourselves (no systemd).
    pub caddy_log: PathBuf,
    /// The admin API's socket of a Caddy we start ourselves, when the
    /// Caddyfile leaves the API on TCP (Caddy's default).
    #[serde(default = "default_caddy_admin")]
    pub caddy_admin: PathBuf,
    /// Webroot for ACME HTTP-01 challenges (nginx + certbot).
    pub acme_webroot: PathBuf,
    /// certbot's configuration directory (`--config-dir`).
    pub letsencrypt: PathBuf,
    /// certbot's `--work-dir` and `--logs-dir`.
    pub certbot_work: PathBuf,
    pub certbot_logs: PathBuf,
    /// A cron job that renews a certificate from a private ACME server
    /// with its CA (certbot reads that only from the environment).
    /// (Absent in states written before it existed: the default.)
    #[serde(default = "default_renewal_cron")]
    pub renewal_cron: PathBuf,
    /// The same for certbot's systemd service.
    #[serde(default = "default_renewal_dropin")]
    pub renewal_dropin: PathBuf,
    /// The drop-in `harden-ollama` writes for Ollama's unit (with systemd).
    #[serde(default = "default_ollama_dropin")]
    pub ollama_dropin: PathBuf,
    /// fail2ban's configuration folder (`fail2ban-client -c`): our jail
    /// goes into its `jail.d/`, our filter into its `filter.d/`.
    #[serde(default = "default_fail2ban")]
    pub fail2ban: PathBuf,
    /// The signing key of the proxy's own apt repository (`caddy_source:
    /// caddy-repo`), armored, which apt reads as it is.
    #[serde(default = "default_apt_keyring")]
    pub apt_keyring: PathBuf,
    /// That repository's `deb` line, in apt's `sources.list.d/`.
    #[serde(default = "default_apt_source")]
    pub apt_source: PathBuf,
    /// What ollama-secure changed, for `uninstall`.
    pub state: PathBuf,
    /// Held while a run changes files, so concurrent runs take turns.
    pub lock: PathBuf,
    /// What a run in progress is doing (see `journal`): in a folder that
    /// exists before the first change, and survives a reboot.
    #[serde(default = "default_journal")]
    pub journal: PathBuf,
}

fn default_apt_keyring() -> PathBuf {
    Paths::defaults(Os::current()).apt_keyring
}

fn default_apt_source() -> PathBuf {
    Paths::defaults(Os::current()).apt_source
}

fn default_access_log() -> PathBuf {
    Paths::defaults(Os::current()).access_log
}

fn default_api_keys() -> PathBuf {
    Paths::defaults(Os::current()).api_keys
}

fn default_renewal_cron() -> PathBuf {
    Paths::defaults(Os::current()).renewal_cron
}

fn default_renewal_dropin() -> PathBuf {
    Paths::defaults(Os::current()).renewal_dropin
}

fn default_caddy_admin() -> PathBuf {
    Paths::defaults(Os::current()).caddy_admin
}

fn default_ollama_dropin() -> PathBuf {
    Paths::defaults(Os::current()).ollama_dropin
}

fn default_fail2ban() -> PathBuf {
    Paths::defaults(Os::current()).fail2ban
}

fn default_journal() -> PathBuf {
    Paths::defaults(Os::current()).journal
}

impl Paths {
    /// Our jail, in fail2ban's `jail.d/`.
    pub fn fail2ban_jail(&self) -> PathBuf {
        self.fail2ban.join("jail.d/ollama-secure.conf")
    }

    /// Our filter, in fail2ban's `filter.d/`, where the jail finds it by name.
    pub fn fail2ban_filter(&self) -> PathBuf {
        self.fail2ban.join("filter.d/ollama-secure.conf")
    }

    pub fn defaults(os: Os) -> Paths {
        match os {
            Os::Debian => Paths {
                nginx_conf: "/etc/nginx/nginx.conf".into(),
                nginx_site: "/etc/nginx/sites-available/ollama".into(),
                nginx_site_link: "/etc/nginx/sites-enabled/ollama".into(),
                htpasswd: "/etc/nginx/ollama.htpasswd".into(),
                api_keys: "/etc/nginx/ollama.keys".into(),
                access_log: "/var/log/ollama-secure.access.log".into(),
                nginx_pid: "/run/nginx.pid".into(),
                auth_cache: "/run/ollama-secure-auth".into(),
                auth_socket: "/run/ollama-secure-auth.sock".into(),
                caddyfile: "/etc/caddy/Caddyfile".into(),
                caddy_site: "/etc/caddy/ollama.caddy".into(),
                caddy_pid: "/run/caddy-ollama-secure.pid".into(),
                caddy_log: "/var/log/caddy/ollama-secure.log".into(),
                caddy_admin: "/run/ollama-secure-caddy-admin.sock".into(),
                acme_webroot: "/var/lib/ollama-secure/acme".into(),
                letsencrypt: "/etc/letsencrypt".into(),
                certbot_work: "/var/lib/letsencrypt".into(),
                certbot_logs: "/var/log/letsencrypt".into(),
                renewal_cron: "/etc/cron.d/ollama-secure-certbot".into(),
                renewal_dropin: "/etc/systemd/system/certbot.service.d/ollama-secure.conf".into(),
                // After `systemctl edit`'s override.conf: the last OLLAMA_HOST wins.
                ollama_dropin: "/etc/systemd/system/ollama.service.d/zz-ollama-secure.conf".into(),
                fail2ban: "/etc/fail2ban".into(),
                // The names Caddy's install guide uses, in the folder Debian
                // keeps for keys an administrator adds.
                apt_keyring: "/etc/apt/keyrings/caddy-stable.asc".into(),
                apt_source: "/etc/apt/sources.list.d/caddy-stable.list".into(),
                state: "/var/lib/ollama-secure/state.yaml".into(),
                lock: "/run/ollama-secure.lock".into(),
                journal: "/var/lib/ollama-secure.journal".into(),
            },
            Os::MacHomebrew(prefix) => {
                let at = |path: &str| PathBuf::from(format!("{prefix}/{path}"));
                Paths {
                    nginx_conf: at("etc/nginx/nginx.conf"),
                    nginx_site: at("etc/nginx/ollama-secure/ollama.conf"),
                    nginx_site_link: at("etc/nginx/servers/ollama.conf"),
                    htpasswd: at("etc/nginx/ollama.htpasswd"),
                    api_keys: at("etc/nginx/ollama.keys"),
                    access_log: at("var/log/ollama-secure.access.log"),
                    nginx_pid: at("var/run/nginx.pid"),
                    auth_cache: at("var/run/ollama-secure-auth"),
                    auth_socket: at("var/run/ollama-secure-auth.sock"),
                    caddyfile: at("etc/Caddyfile"),
                    caddy_site: at("etc/ollama.caddy"),
                    caddy_pid: at("var/run/caddy-ollama-secure.pid"),
                    caddy_log: at("var/log/caddy-ollama-secure.log"),
                    caddy_admin: at("var/run/ollama-secure-caddy-admin.sock"),
                    acme_webroot: at("var/ollama-secure/acme"),
                    letsencrypt: at("etc/letsencrypt"),
                    certbot_work: at("var/lib/letsencrypt"),
                    certbot_logs: at("var/log/letsencrypt"),
                    renewal_cron: at("etc/cron.d/ollama-secure-certbot"),
                    renewal_dropin: at("etc/ollama-secure/certbot-service.conf"),
                    // No systemd on macOS: harden-ollama prints the fix instead.
                    ollama_dropin: at("etc/ollama-secure/ollama-service.conf"),
                    fail2ban: at("etc/fail2ban"),
                    // No apt: Homebrew's caddy is current.
                    apt_keyring: at("etc/ollama-secure/caddy-stable.asc"),
                    apt_source: at("etc/ollama-secure/caddy-stable.list"),
                    state: at("var/ollama-secure/state.yaml"),
                    lock: at("var/run/ollama-secure.lock"),
                    journal: at("var/ollama-secure.journal"),
                }
            }
        }
    }
}
