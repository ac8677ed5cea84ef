use crate::cli::HardenArgs;
use crate::error::{Error, Result};
use crate::facts;
use crate::plan::{self, Hardening, describe};
use crate::system::System;

pub fn run(args: HardenArgs, system: &dyn System) -> Result<()> {
    let (paths, answers) = super::locate(args.answers.as_deref())?;
    // The proxy's upstream, when a setup is installed: Ollama must stay
    // where the proxy connects.
    let upstream = super::installed_at(system, paths.clone(), answers)
        .ok()
        .and_then(|installed| installed.state.settings)
        .map(|settings| settings.site.upstream);
    let what = if args.undo { "take out the drop-in that keeps Ollama on loopback" } else { "keep Ollama on loopback" };
    crate::say!("ollama-secure {}: {what}\n", env!("CARGO_PKG_VERSION"));
    let decide = || {
        let service = facts::ollama_service(system, &paths.ollama_dropin, None);
        if args.undo {
            plan::soften(&service, &paths.ollama_dropin)
        } else {
            plan::harden(&service, &paths.ollama_dropin, upstream.as_ref())
        }
    };
    let Some(plan) = plan_of(decide()?)? else { return Ok(()) };
    if args.dry_run {
        crate::out!("{}", describe(&plan));
        crate::outln!("\nDry run: nothing was changed.");
        return Ok(());
    }
    if !system.is_root() {
        return Err(Error::input("harden-ollama needs root; run it with sudo, or add --dry-run to only see the plan"));
    }
    let _changing = super::begin_changes(system, &paths)?;
    // Undoing an interrupted run (begin_changes) may have changed what is there.
    let Some(plan) = plan_of(decide()?)? else { return Ok(()) };
    super::apply_journaled(system, &paths, &plan, "harden-ollama", "Changing")?;
    if args.undo {
        crate::say!("\nDone: Ollama listens where its unit says without ollama-secure's drop-in.");
    } else {
        crate::say!("\nDone: Ollama listens on loopback only; clients reach it through the proxy.");
    }
    Ok(())
}

/// The plan, or what is said instead of one: nothing to change (`None`),
/// or the fix this tool cannot apply (an error: exit 3).
fn plan_of(hardening: Hardening) -> Result<Option<crate::plan::Plan>> {
    match hardening {
        Hardening::Nothing(why) => {
            crate::say!("Nothing to change: {why}");
            Ok(None)
        }
        Hardening::Advice { found, fix } => {
            crate::outln!("Found: {found}.\n\n{fix}");
            Err(Error::check_failed(
                "Ollama can be reached without the proxy's password; nothing was changed (the fix is above)",
            ))
        }
        Hardening::Plan(plan) => Ok(Some(plan)),
    }
}
