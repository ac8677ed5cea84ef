use std::io;

use crate::answers::Answers;
use crate::apply::{self, ServiceHooks};
use crate::cli::UninstallArgs;
use crate::error::{Error, Result};
use crate::facts::{self, Existing};
use crate::paths::{Os, Paths};
use crate::plan::describe;
use crate::removal;
use crate::runner::ProcessRunner;
use crate::state::State;

pub fn run(args: UninstallArgs) -> Result<()> {
    let paths = match &args.answers {
        Some(path) => {
            crate::config::paths_from_answers(&Answers::load(path)?, &path.display().to_string(), Os::current())?
        }
        None => Paths::defaults(Os::current()),
    };
    // The state file says which proxy was set up; probe that one.
    let state = match facts::read_existing(&paths.state) {
        Existing::File { content, .. } => State::parse(&String::from_utf8_lossy(&content), &paths.state)?,
        _ => {
            return Err(Error::input(format!(
                "nothing to uninstall: {} does not exist (was ollama-secure used with these paths?)",
                paths.state.display()
            )));
        }
    };
    let proxy = removal::proxy_of(&state)?;
    let _lock = if args.dry_run { None } else { Some(crate::lock::acquire(&paths.lock)?) };
    let facts = facts::probe_installed(proxy, &paths);
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
