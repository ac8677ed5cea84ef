//! Proving that a protected endpoint works, the way a client sees it: the
//! requests are made (`probe`, the only part that touches the network),
//! then judged (`judge`, pure), then reported (`report`).

mod judge;
mod probe;
mod report;
pub mod tls;

pub use judge::{bursts, exposure};
pub use probe::{AdminApi, Options, Replies, collect, parse_resolve, resolve_hosts};
pub use report::{Outcome, Report, Status};
pub use tls::days_left;

use crate::system::System;

/// Runs every check against `options.url`.
pub fn run(system: &dyn System, options: &Options) -> Report {
    let replies = collect(system, options);
    Report::new(options.url.as_str(), judge::judge(&replies, options))
}
