//! Command-line flags as typed values, without any I/O. Help text here is the
//! user's reference: every flag says what it does.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::access::Role;

#[derive(Debug, Parser)]
#[command(
    name = "ollama-secure",
    version,
    about = "Put passwords and API keys (and HTTPS) in front of an Ollama server, with nginx or Caddy.",
    long_about = "Put passwords and API keys (and, when asked, HTTPS) in front of an Ollama server, with nginx or Caddy.\n\n\
        Ollama listens on 127.0.0.1:11434 without authentication. ollama-secure renders a reverse-proxy \
        configuration with HTTP Basic Auth for users, Bearer or X-API-Key for API keys, and roles that keep \
        model management to admins; installs it safely (backups, validation, rollback) and checks that it works.",
    after_help = "Exit codes: 0 success; 1 failed (changes rolled back); 2 bad input (nothing changed); \
        3 a check found a problem (after init: the changes were applied); 4 rollback incomplete (look at the listed files); \
        130 interrupted (changes rolled back)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Say only what matters: errors, warnings, generated passwords and
    /// keys (shown once), a check's failures, a dry run's plan.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Also show every command run (probes included) and its output as it
    /// comes, on standard error.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up the proxy: from an answers file, or by asking questions.
    Init(InitArgs),
    /// Write the files `init` would install into a folder, for review or other tools.
    Render(RenderArgs),
    /// Prove that a protected Ollama endpoint works, the way a client sees it.
    Check(CheckArgs),
    /// Forward a local loopback port to a protected server, adding the
    /// credentials, for clients that send none (the `ollama` CLI).
    Connect(ConnectArgs),
    /// Add, remove, rotate and list the users of an installed setup.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage API keys: clients send one as `Authorization: Bearer KEY` or
    /// `X-API-Key: KEY`.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Requests, bytes and answers per credential and endpoint, from the
    /// site's access log.
    Usage(UsageArgs),
    /// Make the Ollama on this machine listen on loopback only, where only
    /// the proxy reaches it: with systemd, a drop-in for ollama.service
    /// (OLLAMA_HOST), then a restart, proven and rolled back on failure;
    /// otherwise, the fix for the way Ollama is started.
    HardenOllama(HardenArgs),
    /// What is set up here: the proxy and its files, whether it runs and
    /// asks for credentials, the users and keys (names and roles), the
    /// certificate's days left and what renews it. Exit 0 when all is well,
    /// 3 when something is wrong, 2 when nothing is set up (or not root).
    Status(StatusArgs),
    /// Undo what `init` changed: remove its files and links, restore the files it
    /// replaced, reload (or stop) the proxy. Packages stay installed.
    Uninstall(UninstallArgs),
    /// Print the JSON Schema of the answers file (or of the wizard's
    /// `--defaults` file), for editors: refer to it from a YAML file with
    /// `# yaml-language-server: $schema=PATH`.
    Schema(SchemaArgs),
    /// Write the man pages and the bash, zsh and fish completions, made from
    /// these very definitions (for packaging: `.ci/build-deb`).
    #[command(hide = true)]
    GenerateDocs(GenerateDocsArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print it as JSON, for scripts.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub setup: SetupArgs,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The schema of a `--defaults` file (init's wizard) instead.
    #[arg(long)]
    pub defaults: bool,
}

#[derive(Debug, Args)]
pub struct GenerateDocsArgs {
    /// Folder to write into: `man/*.1` and `completions/` below it.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// YAML answers file (see examples/), or `-` for standard input; without it, the wizard asks on the terminal.
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,

    /// Start the wizard from this answers file without users: its values
    /// become the questions' defaults, and the keys the wizard does not ask
    /// (paths, listen_address, allow_from, cors_origins, ban, timeout, bcrypt_cost,
    /// file_group, install, https.acme_directory, https.acme_ca_root) are
    /// used as they are.
    #[arg(long, value_name = "FILE", conflicts_with = "answers")]
    pub defaults: Option<PathBuf>,

    /// Write the answers to FILE (mode 0600) as an answers file that repeats
    /// this run with --answers; passwords are stored as bcrypt hashes, never
    /// in plain text. With --dry-run too: FILE (and a backup of a previous
    /// one) is then the only thing written.
    #[arg(long, value_name = "FILE")]
    pub save_answers: Option<PathBuf>,

    /// Apply without asking for confirmation (the question is only asked on
    /// a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Print every file and command the setup would write or run, then stop. Changes nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: exit 2 when applying would be refused now (a busy
    /// port, a file in the way), after printing the plan and what blocks it.
    #[arg(long, requires = "dry_run")]
    pub strict: bool,

    /// Do not run `check` against the result at the end.
    #[arg(long)]
    pub no_check: bool,

    /// Print, on standard output, one JSON object saying what changed (or,
    /// with --dry-run, would change): files, links, commands, backups, the
    /// check's result; everything else goes to standard error.
    #[arg(long)]
    pub json: bool,

    /// With --json: put generated passwords and keys in it (otherwise they
    /// are shown on standard error, once, as without --json).
    #[arg(long, requires = "json")]
    pub show_secrets: bool,

    /// Trust this CA certificate (PEM) in the check at the end: for
    /// certificates from a private ACME server or Let's Encrypt staging.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HardenArgs {
    /// The answers file `init` used, if it set `paths:`: Ollama is then
    /// bound to the proxy's upstream address (on loopback).
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,

    /// Take out the drop-in harden-ollama wrote (and restart Ollama), so
    /// that OLLAMA_HOST is what it was before.
    #[arg(long)]
    pub undo: bool,

    /// Print the drop-in and every command, then stop. Changes nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The credentials a client command sends: a user's password or an API key.
#[derive(Debug, Args)]
pub struct ClientCredentials {
    /// The user to log in as (or send an API key instead: --api-key-env,
    /// --api-key-file).
    #[arg(long, conflicts_with_all = ["api_key_env", "api_key_file"])]
    pub username: Option<String>,

    /// Send the API key in this environment variable (as
    /// `Authorization: Bearer`), instead of a user's password.
    #[arg(long, value_name = "VAR", conflicts_with = "api_key_file")]
    pub api_key_env: Option<String>,

    /// Send the API key in this file (its first line).
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,

    /// Read the password from this environment variable. Without this and
    /// --password-file, the password is asked for (hidden); never pass it
    /// as an argument, where `ps` would show it.
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    pub password_env: Option<String>,

    /// Read the password from the first line of this file.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The protected server, e.g. https://ollama.example.com.
    #[arg(long, required_unless_present = "uninstall")]
    pub url: Option<String>,

    #[command(flatten)]
    pub credentials: ClientCredentials,

    /// Where local clients connect: a loopback address and port only (any
    /// other would open the server, with these credentials, to the network).
    #[arg(long, value_name = "ADDRESS:PORT", default_value = "127.0.0.1:11434")]
    pub listen: String,

    /// Trust this CA certificate (PEM) as well, for private CAs.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Connect HOST to ADDRESS instead of asking DNS (curl's syntax).
    #[arg(long, value_name = "HOST:PORT:ADDRESS")]
    pub resolve: Vec<String>,

    /// The secret comes on standard input, from the process that read it
    /// from the environment: `connect` runs itself again without that
    /// variable, so that a long-running process's environment (which
    /// `/proc/PID/environ` shows) never holds it.
    #[arg(long, hide = true)]
    pub secret_on_stdin: bool,

    /// Run as the launchd agent `--install` writes: launchd restarts an
    /// agent after any failing exit status and cannot be told which ones
    /// are final, so a failure that retrying cannot mend (wrong
    /// credentials, 3; a wrong command, 2) ends with status 0.
    #[arg(long, hide = true, conflicts_with_all = ["install", "uninstall"])]
    pub as_launchd_agent: bool,

    /// Instead of forwarding now, install a service of this user's that
    /// runs this `connect` at every login (a systemd user unit; a launchd
    /// agent on macOS), and start it when the user's service manager runs.
    /// The secret must be in a file (--api-key-file or --password-file,
    /// mode 0600), which the service reads at each start.
    #[arg(long, conflicts_with_all = ["uninstall", "secret_on_stdin"])]
    pub install: bool,

    /// Stop and remove the service --install wrote, and the folders it
    /// made for it (when nothing else is in them).
    #[arg(long, conflicts_with_all = ["url", "username", "api_key_env", "api_key_file", "password_env", "password_file", "cacert", "resolve", "listen", "secret_on_stdin"])]
    pub uninstall: bool,

    /// With --install or --uninstall: print the files and commands, then
    /// stop. Changes nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The protected endpoint, e.g. https://ollama.example.com or http://192.0.2.10:8080.
    #[arg(long)]
    pub url: String,

    #[command(flatten)]
    pub credentials: ClientCredentials,

    /// Trust this CA certificate (PEM) as well, for private CAs.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Seconds to wait for each answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,

    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,

    /// Also run a tiny streamed generation with this model (time to first
    /// chunk, chunk count, buffering).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,

    /// Connect HOST to ADDRESS instead of asking DNS (curl's syntax), to
    /// check a server before DNS points to it. One address per host; it
    /// serves every port of that host (HTTPS and the plain-HTTP redirect).
    #[arg(long, value_name = "HOST:PORT:ADDRESS")]
    pub resolve: Vec<String>,

    /// Port of the plain-HTTP server, for the redirect check of https URLs.
    #[arg(long, value_name = "PORT", default_value_t = 80)]
    pub http_port: u16,

    /// Port Ollama listens on, when it runs on this machine (exposure check).
    #[arg(long, value_name = "PORT", default_value_t = 11434)]
    pub ollama_port: u16,

    /// On the server itself: the answers file `init` used (only its `paths:`
    /// matter), so that failures can be traced to their local cause (a
    /// missing auth socket, say). Without it, the default paths are used
    /// when a setup is installed there.
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// How far back: 90m, 24h, 7d.
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub since: String,
    /// Print the rows as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub setup: SetupArgs,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// The answers file used for `init` (only its `paths:` matter); without it,
    /// the default paths are used.
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,

    /// Print what would be removed and restored, then stop. Changes nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Uninstall without asking (the question, which names a proxy to stop
    /// and a certificate to delete, is only asked on a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Print, on standard output, one JSON object saying what was (or, with
    /// --dry-run, would be) removed, restored and run; everything else goes
    /// to standard error.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// YAML answers file.
    #[arg(long, value_name = "FILE")]
    pub answers: PathBuf,

    /// Folder to write into; each file lands at its target path below it
    /// (e.g. OUT/etc/nginx/sites-available/ollama).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The answers file used for `init` (its `paths:` and `bcrypt_cost`); without
    /// it, the default paths are used.
    #[arg(long, value_name = "FILE", global = true)]
    pub answers: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Generate a strong password (the default), printed once.
    #[arg(long, conflicts_with_all = ["password_env", "password_file"])]
    pub generate: bool,

    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    pub password_env: Option<String>,

    /// Read the password from the first line of this file.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List the usernames (never the hashes).
    List {
        /// Print `[{"name": ..., "role": ...}]` instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        setup: SetupArgs,
    },
    /// Add a user.
    Add {
        /// The new username.
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// `user`: inference and reading; `admin`: model management too.
        #[arg(long, value_parser = role, default_value = "user")]
        role: Role,
        /// Replace the password of an existing user instead of refusing.
        #[arg(long)]
        force: bool,
        /// Print the change, then stop. Changes nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        setup: SetupArgs,
    },
    /// Give a user a new password; the old one stops working at the reload.
    Rotate {
        /// The user whose password changes.
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// Print the change, then stop. Changes nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        setup: SetupArgs,
    },
    /// Remove a user (never the last one).
    Remove {
        /// The user to remove.
        name: String,
        /// Print the change, then stop. Changes nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        setup: SetupArgs,
    },
    /// Give a user another role; it takes effect at the reload.
    Role {
        /// The user whose role changes.
        name: String,
        /// `user` or `admin`.
        #[arg(value_parser = role)]
        role: Role,
        /// Print the change, then stop. Changes nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        setup: SetupArgs,
    },
}

fn role(text: &str) -> Result<Role, String> {
    Role::parse(text)
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the keys: names, roles, when made (never a key).
    List {
        /// Print `[{"name", "role", "id", "created"}]` instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        setup: SetupArgs,
    },
    /// Make a key and print it once.
    Add {
        /// A name for the key (who or what uses it: `open-webui`, `ci`).
        name: String,
        /// `user`: inference and reading; `admin`: model management too.
        #[arg(long, value_parser = role, default_value = "user")]
        role: Role,
        /// Print `{"name", "role", "key"}`.
        #[arg(long)]
        json: bool,
        /// Print the change, then stop. Changes nothing (no key is made).
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        setup: SetupArgs,
    },
    /// Give a key a new secret; the old key stops working at the reload.
    Rotate {
        /// The key whose secret changes.
        name: String,
        /// Print `{"name", "role", "key"}`.
        #[arg(long)]
        json: bool,
        /// Print the change, then stop. Changes nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        setup: SetupArgs,
    },
    /// Remove a key; it stops working at the reload.
    Revoke {
        /// The key to remove.
        name: String,
        /// Print the change, then stop. Changes nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        setup: SetupArgs,
    },
    /// Print a fresh valid key, for `key_env` or `key_file` in an answers
    /// file. Changes nothing.
    New {
        /// Print `{"key": ...}`.
        #[arg(long)]
        json: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// `--help` is the reference: no flag, argument or subcommand in it
    /// without a word of what it does.
    #[test]
    fn every_flag_argument_and_subcommand_says_what_it_does() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if !matches!(id, "help" | "version") && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "ollama-secure", &mut missing);
        assert!(missing.is_empty(), "no help text for:\n{}", missing.join("\n"));
    }
}
