//! The integration tests: one binary (`cargo test --test integration`), one
//! module per capability, sharing the harness in `support`.

// Test code slices text it made itself; the lint guards the tool's own code.
#![allow(clippy::string_slice)]

mod support;

mod allow_from;
mod apply_e2e;
mod auth_cache;
mod backends;
mod bans;
mod caddy_admin;
mod check_e2e;
mod cli;
mod clients;
mod connect;
mod conventions;
mod cors;
mod fleet;
mod harden;
mod hostile_input;
mod https_e2e;
mod interrupted;
mod json_e2e;
mod keys_e2e;
mod long_running;
mod macos;
mod render_snapshots;
mod repair;
mod schema;
mod standin_fidelity;
mod started_by_hand;
mod status_e2e;
mod system;
mod systemd;
mod uninstall_e2e;
mod users_e2e;
mod users_property;
mod validators;
mod wizard_pty;
