//! What ollama-secure set up and changed on this system: the settings of
//! the setup (the desired state without its users, who live in the users
//! file), and every change `uninstall` must undo: files created or
//! replaced (and where the original is kept), links, folders, the main
//! configuration file we added lines to, backups, whether we started the
//! proxy and what else it served then. Written as a step of the same plan
//! that makes the changes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::proxy::{ProxyKind, Served};
use crate::setup::Settings;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecord {
    pub path: PathBuf,
    /// Where the file that was there before ollama-secure is kept; `None`
    /// when ollama-secure created the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<PathBuf>,
}

/// Something ollama-secure owns and uninstall removes, beyond the files
/// and folders it wrote itself: folders the proxy or certbot made for it,
/// a tmpfs it mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owned {
    pub path: PathBuf,
    pub kind: OwnedKind,
    /// Written by the proxy ollama-secure started: removed only when
    /// uninstall stops it (a proxy that serves other sites since goes on
    /// using it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub until_stopped: bool,
}

impl Owned {
    pub fn new(path: &Path, kind: OwnedKind) -> Owned {
        Owned { path: path.to_path_buf(), kind, until_stopped: false }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnedKind {
    /// A file.
    File,
    /// A folder, removed if it is empty.
    Dir,
    /// A folder and everything in it (a cache, the proxy's data for us).
    Tree,
    /// A tmpfs mounted on a folder we made: unmounted, then the folder goes.
    Mount,
}

/// What the proxy served besides our site, as state files of version 1
/// wrote it (a list of paths, or one "PATH FINGERPRINT"), or typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum ServedRecord {
    Typed(Served),
    Version1(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    pub proxy: ProxyKind,
    /// The setup's settings; absent in state files of version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Settings>,
    /// Users' roles and the API keys' records (never a key). Absent in
    /// states written before roles existed, when every user could do all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<crate::access::Access>,
    #[serde(default)]
    pub files: Vec<FileRecord>,
    #[serde(default)]
    pub links: Vec<PathBuf>,
    /// Folders we created, parents first.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// The proxy's main configuration file we added our lines to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caddyfile_import: Option<PathBuf>,
    /// Every backup we made (`PATH.bak-STAMP`).
    #[serde(default)]
    pub backups: Vec<PathBuf>,
    /// We started the proxy (it was not running).
    #[serde(default)]
    pub started: bool,
    /// What else the proxy served when we started it (or, run by systemd,
    /// first reloaded it): uninstall stops the proxy we started only if
    /// this is unchanged, so sites added since are not taken down, and
    /// removes what the proxy wrote for our site only then.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "served_besides_us")]
    served: Option<ServedRecord>,
    /// We enabled the proxy's unit at boot (systemd), and what else it
    /// served then: uninstall disables it again if that is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_at_boot: Option<Served>,
    /// We started fail2ban (it was not running): uninstall stops it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub started_bans: bool,
    /// Certificates certbot obtained for us (by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<String>,
    /// What else is ours to remove (see `Owned`), in the order it came.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owned: Vec<Owned>,
    /// certbot's folders that did not exist before it obtained our
    /// certificate: removed once no other certificate is left in them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certbot_dirs: Vec<PathBuf>,
    /// Version 1 recorded where users checks a change; it now comes from
    /// the settings.
    #[serde(default, skip_serializing)]
    url: Option<String>,
    #[serde(default, skip_serializing)]
    connect: Option<std::net::IpAddr>,
    /// Read from a state file written before `owned` was recorded
    /// (versions 1 and 2).
    #[serde(skip)]
    recorded_no_ownership: bool,
}

const HEADER: &str = "# Written by ollama-secure: what `ollama-secure uninstall` undoes. Do not edit.\n";
/// 2 added the settings, 3 what else is ours (`owned`, `certbot_dirs`).
const VERSION: u32 = 3;

impl State {
    pub fn new(settings: &Settings) -> State {
        State {
            version: VERSION,
            proxy: settings.proxy,
            settings: Some(settings.clone()),
            access: None,
            files: Vec::new(),
            links: Vec::new(),
            dirs: Vec::new(),
            caddyfile_import: None,
            backups: Vec::new(),
            started: false,
            started_bans: false,
            enabled_at_boot: None,
            served: None,
            certificates: Vec::new(),
            owned: Vec::new(),
            certbot_dirs: Vec::new(),
            url: None,
            connect: None,
            recorded_no_ownership: false,
        }
    }

    pub fn parse(text: &str, source: &Path) -> Result<State> {
        serde_yaml::from_str::<State>(text)
            .map_err(|e| {
                Error::input(format!(
                    "{}: not an ollama-secure state file ({e}); it was left untouched",
                    source.display()
                ))
            })
            .map(|mut state| {
                state.recorded_no_ownership = state.version < 3;
                state.version = VERSION;
                state
            })
    }

    pub fn to_text(&self) -> String {
        format!("{HEADER}{}", serde_yaml::to_string(self).expect("state always serializes"))
    }

    /// What else the proxy served when we started it. A version-1 record
    /// is read in the proxy's terms.
    pub fn served_besides_us(&self, paths: &crate::paths::Paths) -> Option<Served> {
        match self.served.as_ref()? {
            ServedRecord::Typed(served) => Some(served.clone()),
            ServedRecord::Version1(items) => Some(self.proxy.module().served_from_version_1(items, paths)),
        }
    }

    pub fn note_started(&mut self, served: Served) {
        self.started = true;
        self.served = Some(ServedRecord::Typed(served));
    }

    /// What else a running proxy served when ollama-secure first reloaded
    /// it (kept from then on).
    pub fn note_served(&mut self, served: Served) {
        if self.served.is_none() {
            self.served = Some(ServedRecord::Typed(served));
        }
    }

    pub fn record(&self, path: &Path) -> Option<&FileRecord> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Notes a file we are about to write; the first write decides whether
    /// it was created or replaced.
    pub fn note_write(&mut self, path: &Path, original: Option<&Path>) {
        if self.record(path).is_none() {
            self.files.push(FileRecord { path: path.to_path_buf(), original: original.map(Path::to_path_buf) });
        }
    }

    pub fn note_backup(&mut self, backup: &Path) {
        if !self.backups.iter().any(|b| b == backup) {
            self.backups.push(backup.to_path_buf());
        }
    }

    pub fn note_link(&mut self, link: &Path) {
        if !self.links.iter().any(|l| l == link) {
            self.links.push(link.to_path_buf());
        }
    }

    /// Read from a state file written before ownership was recorded: the
    /// proxy says what such a setup owns (`Proxy::owned_without_records`).
    pub fn recorded_no_ownership(&self) -> bool {
        self.recorded_no_ownership
    }

    /// Records `owned`; what is recorded already takes the new kind (a
    /// cache of an older setup that is now a mounted tmpfs).
    pub fn note_owned(&mut self, owned: Owned) {
        match self.owned.iter_mut().find(|o| o.path == owned.path) {
            Some(known) => *known = owned,
            None => self.owned.push(owned),
        }
    }

    /// Whether `path` is recorded as ours beyond the files we wrote.
    pub fn owns(&self, path: &Path) -> bool {
        self.owned.iter().any(|o| o.path == path)
    }

    pub fn note_dir(&mut self, dir: &Path) {
        if !self.dirs.iter().any(|d| d == dir) {
            self.dirs.push(dir.to_path_buf());
        }
    }

    /// Every path this state mentions (for probing before uninstall).
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> =
            self.files.iter().flat_map(|f| [Some(f.path.clone()), f.original.clone()]).flatten().collect();
        paths.extend(self.links.iter().cloned());
        paths.extend(self.dirs.iter().cloned());
        paths.extend(self.caddyfile_import.iter().cloned());
        paths.extend(self.backups.iter().cloned());
        paths.extend(self.owned.iter().map(|o| o.path.clone()));
        paths.extend(self.certbot_dirs.iter().cloned());
        paths
    }

    /// The path a backup was made of (`X.bak-STAMP` → `X`).
    pub fn backed_up_path(backup: &Path) -> Option<PathBuf> {
        let name = backup.file_name()?.to_string_lossy().into_owned();
        let (original, _) = name.rsplit_once(".bak-")?;
        Some(backup.with_file_name(original))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        let answers =
            crate::answers::Answers::from_yaml("proxy: nginx\nusers: [{username: a, generate: true}]\n", "t").unwrap();
        crate::config::Config::from_answers(&answers, "t", crate::paths::Os::Debian, &crate::config::ProcessSecrets)
            .unwrap()
            .settings
    }

    #[test]
    fn round_trips_and_keeps_the_first_record() {
        let mut s = State::new(&settings());
        s.note_write(Path::new("/etc/a"), None);
        s.note_write(Path::new("/etc/b"), Some(Path::new("/etc/b.bak-1")));
        s.note_write(Path::new("/etc/a"), Some(Path::new("/etc/a.bak-2")));
        s.note_backup(Path::new("/etc/a.bak-2"));
        s.note_started(Served::Sites { sites: vec!["/etc/nginx/sites-enabled/default".into()] });
        let text = s.to_text();
        assert!(text.starts_with(HEADER));
        let back = State::parse(&text, Path::new("/s")).unwrap();
        assert_eq!(back, s);
        assert_eq!(
            back.record(Path::new("/etc/a")).unwrap().original,
            None,
            "a later backup does not make a created file 'replaced'"
        );
        assert_eq!(State::backed_up_path(Path::new("/etc/a.bak-2")), Some(PathBuf::from("/etc/a")));
        assert!(State::parse("files: 3", Path::new("/s")).is_err());
    }

    /// As the version that introduced the settings wrote it (before the
    /// renewal paths, the journal and ownership records existed).
    #[test]
    fn version_2_files_are_read_and_own_what_that_version_removed() {
        let state = State::parse(include_str!("../tests/states/version-2.yaml"), Path::new("/s")).unwrap();
        let settings = state.settings.as_ref().expect("settings");
        assert_eq!(settings.paths, crate::paths::Paths::defaults(crate::paths::Os::Debian));
        assert!(state.recorded_no_ownership());
        assert!(state.owned.is_empty());
    }

    #[test]
    fn version_1_files_are_read() {
        let text = "version: 1\nproxy: caddy\nfiles:\n- path: /etc/caddy/ollama.caddy\nlinks: []\ndirs: []\n\
                    caddyfile_import: /etc/caddy/Caddyfile\nbackups: []\nstarted: true\n\
                    served_besides_us:\n- /etc/caddy/Caddyfile 0123456789abcdef\nurl: http://127.0.0.1:8080\nconnect: 127.0.0.1\n";
        let state = State::parse(text, Path::new("/s")).unwrap();
        assert_eq!(state.proxy, ProxyKind::Caddy);
        assert_eq!(state.settings, None);
        assert_eq!(
            state.served_besides_us(&crate::paths::Paths::defaults(crate::paths::Os::Debian)),
            Some(Served::MainConfig {
                path: "/etc/caddy/Caddyfile".into(),
                fingerprint: Some("0123456789abcdef".into())
            })
        );
        let nginx =
            State::parse("version: 1\nproxy: nginx\nstarted: true\nserved_besides_us: [/a, /b]\n", Path::new("/s"))
                .unwrap();
        assert_eq!(
            nginx.served_besides_us(&crate::paths::Paths::defaults(crate::paths::Os::Debian)),
            Some(Served::Sites { sites: vec!["/a".into(), "/b".into()] })
        );
    }
}
