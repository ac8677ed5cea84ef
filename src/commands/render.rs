use std::path::Path;

use crate::cli::RenderArgs;
use crate::config::{Config, ProcessSecrets};
use crate::credentials::OsEntropy;
use crate::error::{Error, Result};
use crate::facts::{self, Facts};
use crate::paths::Os;
use crate::plan::{self, Action, Goal};
use crate::render::Role;
use crate::setup;
use crate::system::{Ownership, System};

/// Creates `dir` and the folders above it that are missing (`--out` and
/// the tree below it).
pub(super) fn create_dirs(system: &dyn System, dir: &Path) -> Result<()> {
    let mut missing: Vec<&Path> =
        dir.ancestors().take_while(|d| system.inspect(d) == crate::system::Existing::Missing).collect();
    missing.reverse();
    for d in missing {
        system.create_dir(d, 0o755).map_err(|e| Error::io("cannot create", d, e))?;
    }
    Ok(())
}

pub fn run(args: RenderArgs, system: &dyn System) -> Result<()> {
    let answers = crate::answers::Answers::load(&args.answers)?;
    let config = Config::from_answers(
        &answers,
        &crate::answers::Answers::source_name(&args.answers),
        Os::current(),
        &ProcessSecrets,
    )?;
    super::print_warnings(&config.warnings, false);
    // Planned against an empty system: every file is new, nothing is probed
    // but the proxy's version here, which decides what Caddy is given.
    let module = config.settings.proxy.module();
    let facts = Facts { proxy_version: module.installed_version(system), ..Facts::empty(&facts::stamp(system.now())) };
    let (setup, resolution) = setup::from_config(
        &config,
        setup::Installed::default(),
        &humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        &mut OsEntropy,
    )?;
    let plan = plan::for_setup(&setup, &facts, Goal::Init { install: None })?;
    let me = |mode| Ownership { mode, uid: nix::unistd::geteuid().as_raw(), gid: nix::unistd::getegid().as_raw() };
    for step in &plan.steps {
        match &step.action {
            // The state file records changes to a system; a folder of files has none.
            Action::Write { file, .. } if file.role != Role::State => {
                let relative = file.path.strip_prefix("/").unwrap_or(&file.path);
                let target = args.out.join(relative);
                if let Some(dir) = target.parent() {
                    create_dirs(system, dir)?;
                }
                // The copy is for review: hashes stay private to the user who rendered them.
                let mode = if file.secret { 0o600 } else { 0o644 };
                system
                    .write_atomic(&target, file.content.as_bytes(), me(mode))
                    .map_err(|e| Error::io("cannot write", &target, e))?;
                crate::say!(
                    "wrote {} (installs as {}, mode {:04o}, owner root:{})",
                    target.display(),
                    file.path.display(),
                    file.mode,
                    file.group
                );
            }
            Action::Link { link, target } => {
                crate::outln!("(when installing, also link {} -> {})", link.display(), target.display())
            }
            _ => {}
        }
    }
    super::print_generated(&resolution, &setup.access).map_err(|why| {
        Error::failed(format!(
            "the generated passwords or keys could not be shown ({why}): render again for files whose passwords you know"
        ))
    })?;
    Ok(())
}
