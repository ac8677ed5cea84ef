use std::io;

use crate::apply::{self, ServiceHooks};
use crate::cli::UninstallArgs;
use crate::error::{Error, Result};
use crate::facts;
use crate::plan::describe;
use crate::removal;
use crate::runner::ProcessRunner;

pub fn run(args: UninstallArgs) -> Result<()> {
    // The state file says which proxy was set up; probe that one.
    let super::Installed { paths, proxy, state, .. } = super::find_installed(args.answers.as_deref())?;
    let _lock = if args.dry_run { None } else { Some(crate::lock::acquire(&paths.lock)?) };
    let facts = facts::probe_installed(proxy, &paths, &state);
    let plan = removal::build(&paths, &facts)?;
    println!("ollama-secure {}: uninstall the Ollama site from {proxy}\n", env!("CARGO_PKG_VERSION"));
    if args.dry_run {
        print!("{}", describe(&plan));
        println!("\nDry run: nothing was changed.");
        return Ok(());
    }
    if !facts.is_root {
        return Err(Error::input("uninstall needs root; run it with sudo, or add --dry-run to only see the plan"));
    }
    for finding in &plan.findings {
        println!("  - {finding}");
    }
    let hooks = ServiceHooks::new(proxy, &paths, None);
    println!("\nRemoving:");
    apply::apply(&plan, &hooks, &mut ProcessRunner, &mut io::stdout())?;
    println!("\nDone: ollama-secure's changes are undone; {proxy} itself stays installed.");
    Ok(())
}
