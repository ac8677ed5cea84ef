use crate::cli::UninstallArgs;
use crate::error::{Error, Result};
use crate::facts::{self, Probe};
use crate::plan::{self, Plan, describe};
use crate::system::System;
use crate::wizard;

/// On a terminal (unless `--yes`), asks first, as `certbot delete` does:
/// with what cannot be had back by running `init` again said first.
/// After undoing an interrupted run (`recovered`), a no says so: that
/// was a change already.
fn confirm(args: &UninstallArgs, plan: &Plan, recovered: bool) -> Result<()> {
    if plan.is_empty() || args.yes || !wizard::interactive() {
        return Ok(());
    }
    // With the question, on standard error.
    for consequence in plan::removal_consequences(plan) {
        crate::errln!("{consequence}");
    }
    crate::errln!("Steps (see them in full with --dry-run):\n{}", plan::summary(plan));
    if wizard::confirm("Uninstall?")? {
        return Ok(());
    }
    Err(Error::input(if recovered {
        "not confirmed; only the interrupted run was undone, nothing else was changed"
    } else {
        "not confirmed; nothing was changed"
    }))
}

/// `--json`: what the run removed, restored and ran (or would);
/// `recovered`: it began by undoing an interrupted run, a change too.
fn json_summary(plan: &Plan, dry_run: bool, recovered: bool) -> serde_json::Value {
    serde_json::json!({
        "dry_run": dry_run,
        "changed": recovered || !plan.is_empty(),
        "touched": plan::touched(plan),
        "blockers": plan.blockers,
    })
}

pub fn run(args: UninstallArgs, system: &dyn System) -> Result<()> {
    if args.json {
        crate::verbosity::set_json_output();
    }
    let (paths, answers) = super::locate(args.answers.as_deref())?;
    let changing = if args.dry_run { None } else { Some(super::begin_changes(system, &paths)?) };
    let recovered = changing.as_ref().is_some_and(|c| c.recovered);
    // Undoing an interrupted init can leave nothing to uninstall.
    if recovered && system.inspect(&paths.state) == crate::system::Existing::Missing {
        crate::say!("Nothing else to uninstall.");
        if args.json {
            // What the undoing did is in its lines (standard error).
            let nothing = plan::Touched::default();
            crate::outln!(
                "{}",
                serde_json::json!({"dry_run": false, "changed": true, "touched": nothing, "blockers": []})
            );
        }
        return Ok(());
    }
    // The state file says which proxy was set up; probe that one.
    let installed = super::installed_at(system, paths, answers)?;
    let proxy = installed.state.proxy;
    let paths = &installed.paths;
    let facts = facts::probe(system, Probe::for_installed(proxy, paths, None));
    let plan = plan::removal(paths, &facts)?;
    crate::say!("ollama-secure {}: uninstall the Ollama site from {proxy}\n", env!("CARGO_PKG_VERSION"));
    if args.dry_run {
        if let Some(warning) = super::journal_warning_at(system, &paths.journal, super::PLAN_AS_IT_IS) {
            crate::show!("{warning}\n");
        }
        crate::show!("{}", describe(&plan).trim_end());
        crate::show!("\nDry run: nothing was changed.");
        if args.json {
            crate::outln!("{}", json_summary(&plan, true, false));
        }
        return Ok(());
    }
    if !facts.is_root {
        return Err(Error::input("uninstall needs root; run it with sudo, or add --dry-run to only see the plan"));
    }
    if let Some(refusal) = plan.refusal() {
        return Err(refusal);
    }
    // Not after undoing an interrupted run: that was a change, and Ctrl-C
    // then keeps its usual effect.
    let prompting = (wizard::interactive() && !recovered).then(crate::interrupt::prompting);
    confirm(&args, &plan, recovered)?;
    drop(prompting);
    super::apply_journaled(system, paths, &plan, "uninstall", "Removing")?;
    crate::say!("\nDone: ollama-secure's changes are undone; {proxy} itself stays installed.");
    if args.json {
        crate::outln!("{}", json_summary(&plan, false, recovered));
    }
    Ok(())
}
