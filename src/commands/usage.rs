//! `usage`: reads the end of the installed site's access log and prints
//! the summary per credential and endpoint.

use std::time::UNIX_EPOCH;

use crate::cli::UsageArgs;
use crate::error::{Error, Result};
use crate::system::System;
use crate::usage;

/// The end of the log that is read: recent enough for any `--since` a
/// person asks, and bounded however large the log has grown.
const LOG_TAIL: u64 = 64 * 1024 * 1024;

pub fn run(args: UsageArgs, system: &dyn System) -> Result<()> {
    let since = humantime::parse_duration(&args.since)
        .map_err(|e| Error::input(format!("--since {:?}: {e} (write 90m, 24h, 7d)", args.since)))?;
    let installed = super::find_installed(system, args.setup.answers.as_deref())?;
    let log = installed.settings()?.paths.access_log;
    let bytes = crate::system::read_tail(&log, LOG_TAIL).map_err(|e| {
        Error::input(format!("cannot read the access log {}: {e} (it appears with the first request)", log.display()))
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let now = system.now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let from = now.saturating_sub(since).as_secs_f64();
    let rows = usage::summarize(text.lines().filter_map(usage::parse_line), from);
    if args.json {
        crate::outln!("{}", serde_json::to_string(&rows).expect("rows serialize"));
    } else if rows.is_empty() {
        crate::outln!("No requests in the last {} ({}).", args.since, log.display());
    } else {
        crate::out!("{}", usage::table(&rows));
    }
    Ok(())
}
