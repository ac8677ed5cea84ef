//! What a run that changes the system is in the middle of: the plan, and
//! how far it got. Written before every step, removed once the run is
//! done, so that a run killed at any point (SIGKILL, a power cut) is
//! rolled back by the next one, which finds the journal first. It holds
//! the plan's files, hashes included: root's eyes only.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plan::Step;
use crate::system::{Existing, Ownership, System};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    /// The command that wrote it (`init`, `users`, `uninstall`).
    pub command: String,
    pub steps: Vec<Step>,
    /// Steps before this one are done; this one may be half done.
    pub doing: usize,
    /// When the run was rolling back: how many of the done steps, from the
    /// newest, it had undone.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub undone: usize,
    /// Users whose generated passwords the run shows once it is done: if
    /// it was killed before, nobody saw them, and undoing it drops their
    /// hashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generated: Vec<String>,
}

/// What this version writes; a journal of another version is refused.
const RECORD_VERSION: u32 = 1;

fn is_zero(n: &usize) -> bool {
    *n == 0
}

pub struct Journal<'a> {
    system: &'a dyn System,
    path: PathBuf,
    command: String,
    generated: Vec<String>,
}

impl<'a> Journal<'a> {
    pub fn at(system: &'a dyn System, path: &Path, command: &str) -> Journal<'a> {
        Journal { system, path: path.to_path_buf(), command: command.to_string(), generated: Vec::new() }
    }

    /// The run generates passwords for these users (shown at its end).
    pub fn generating(mut self, users: impl IntoIterator<Item = String>) -> Journal<'a> {
        self.generated = users.into_iter().collect();
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records that `steps[..doing]` are done and `steps[doing]` is next.
    pub fn write(&self, steps: &[Step], doing: usize) -> Result<()> {
        self.write_undoing(steps, doing, 0)
    }

    /// Records that the run, at `doing`, is rolling back and has undone
    /// the newest `undone` of the steps it did.
    pub fn write_undoing(&self, steps: &[Step], doing: usize, undone: usize) -> Result<()> {
        let record = Record {
            version: RECORD_VERSION,
            command: self.command.clone(),
            steps: steps.to_vec(),
            doing,
            undone,
            generated: self.generated.clone(),
        };
        let text = serde_json::to_vec(&record).expect("plans serialize");
        // Reads stop there: a journal the next run could not read is not written.
        if text.len() as u64 > crate::system::READ_LIMIT {
            return Err(Error::input(format!(
                "this plan is too large to record in the journal ({} bytes, at most {})",
                text.len(),
                crate::system::READ_LIMIT
            )));
        }
        let root_only = Ownership { mode: 0o600, uid: 0, gid: 0 };
        self.system.write_atomic(&self.path, &text, root_only).map_err(|e| {
            Error::io("cannot write the journal of this run (its folder must exist; see paths.journal)", &self.path, e)
        })
    }

    /// The run is over: nothing is left to finish or undo.
    pub fn commit(&self) -> Result<()> {
        match self.system.remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("cannot remove the journal of this run", &self.path, e))
            }
            _ => Ok(()),
        }
    }

    /// The journal an interrupted run left, if there is one.
    pub fn left_behind(&self) -> Result<Option<Record>> {
        match self.system.inspect(&self.path) {
            Existing::Missing => Ok(None),
            Existing::File { content, .. } => {
                let record: Record = serde_json::from_slice(&content).map_err(|e| {
                    Error::input(format!(
                        "{} is not a journal ollama-secure can read ({e}); it was left untouched: move it away to go on",
                        self.path.display()
                    ))
                })?;
                if record.version != RECORD_VERSION {
                    return Err(Error::input(format!(
                        "{} was written by another version of ollama-secure (journal version {}); undo that run with \
                         it, or move the file away to go on",
                        self.path.display(),
                        record.version
                    )));
                }
                Ok(Some(record))
            }
            _ => Err(Error::input(format!(
                "{} is not a journal of ollama-secure; it was left untouched: move it away to go on",
                self.path.display()
            ))),
        }
    }
}
