//! What ollama-secure changed on this system, so that `uninstall` can undo
//! exactly that: files it created, files it replaced (and where the
//! original is kept), links, folders, the import line in the main Caddyfile,
//! its backups, and whether it started the proxy. Written as a step of the
//! same plan that makes the changes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecord {
    pub path: PathBuf,
    /// Where the file that was there before ollama-secure is kept; `None`
    /// when ollama-secure created the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    pub proxy: String,
    #[serde(default)]
    pub files: Vec<FileRecord>,
    #[serde(default)]
    pub links: Vec<PathBuf>,
    /// Folders we created, parents first.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// The main Caddyfile we added our `import` line to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caddyfile_import: Option<PathBuf>,
    /// Every backup we made (`PATH.bak-STAMP`).
    #[serde(default)]
    pub backups: Vec<PathBuf>,
    /// We started the proxy (it was not running).
    #[serde(default)]
    pub started: bool,
    /// What else the proxy served when we started it (see
    /// `plan::served_besides_us`): uninstall stops the proxy only if this is
    /// unchanged, so sites added since are not taken down. Absent in state
    /// files from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_besides_us: Option<Vec<String>>,
    /// Certificates certbot obtained for us (by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<String>,
    /// Where clients reach the site, and the local address that serves it:
    /// how `users` checks a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<std::net::IpAddr>,
}

const HEADER: &str = "# Written by ollama-secure: what `ollama-secure uninstall` undoes. Do not edit.\n";

impl State {
    pub fn new(proxy: &str) -> State {
        State { version: 1, proxy: proxy.to_string(), ..Default::default() }
    }

    pub fn parse(text: &str, source: &Path) -> Result<State> {
        serde_yaml::from_str(text).map_err(|e| {
            Error::input(format!("{}: not an ollama-secure state file ({e}); it was left untouched", source.display()))
        })
    }

    pub fn to_text(&self) -> String {
        format!("{HEADER}{}", serde_yaml::to_string(self).expect("state always serializes"))
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

    #[test]
    fn round_trips_and_keeps_the_first_record() {
        let mut s = State::new("nginx");
        s.note_write(Path::new("/etc/a"), None);
        s.note_write(Path::new("/etc/b"), Some(Path::new("/etc/b.bak-1")));
        s.note_write(Path::new("/etc/a"), Some(Path::new("/etc/a.bak-2")));
        s.note_backup(Path::new("/etc/a.bak-2"));
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
}
