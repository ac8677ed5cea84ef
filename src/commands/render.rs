use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::SystemTime;

use crate::cli::RenderArgs;
use crate::credentials::OsEntropy;
use crate::error::{Error, Result};
use crate::facts::{self, Facts};
use crate::plan::Step;
use crate::setup;

pub fn run(args: RenderArgs) -> Result<()> {
    let config = super::load_config(&args.answers)?;
    super::print_warnings(&config);
    // Planned against an empty system: every file is new, nothing is probed.
    let facts = Facts::empty(&facts::stamp(SystemTime::now()));
    let prepared = setup::prepare(&config, &facts, &mut OsEntropy)?;
    for step in &prepared.plan.steps {
        match step {
            // The state file records changes to a system; a folder of files has none.
            Step::Write { file, .. } if file.role != crate::render::Role::State => {
                let relative = file.path.strip_prefix("/").unwrap_or(&file.path);
                let target = args.out.join(relative);
                if let Some(dir) = target.parent() {
                    fs::create_dir_all(dir)
                        .map_err(|e| Error::failed(format!("cannot create {}: {e}", dir.display())))?;
                }
                fs::write(&target, &file.content)
                    .map_err(|e| Error::failed(format!("cannot write {}: {e}", target.display())))?;
                // The copy is for review: hashes stay private to the user who rendered them.
                let mode = if file.secret { 0o600 } else { 0o644 };
                fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                    .map_err(|e| Error::failed(format!("cannot set the mode of {}: {e}", target.display())))?;
                println!(
                    "wrote {} (installs as {}, mode {:04o}, owner root:{})",
                    target.display(),
                    file.path.display(),
                    file.mode,
                    file.group
                );
            }
            Step::Link { link, target } => {
                println!("(when installing, also link {} -> {})", link.display(), target.display())
            }
            _ => {}
        }
    }
    super::print_generated(&prepared.credentials);
    Ok(())
}
