//! One module per subcommand: each reads its flags, runs the stages in order
//! and prints the result. The logic lives in the stage modules.

mod change;
mod check;
mod connect;
mod connect_service;
mod docs;
mod harden;
mod init;
mod keys;
mod render;
mod schema;
mod status;
mod uninstall;
mod usage;
mod users;

use std::path::Path;

use crate::access::Role;
use crate::answers::Answers;
use crate::cli::Command;
use crate::error::{Error, Result};
use crate::paths::{Os, Paths};
use crate::secret::Secret;
use crate::setup::Settings;
use crate::state::State;
use crate::system::{Existing, System};

pub fn dispatch(command: Command, system: &dyn System) -> Result<()> {
    match command {
        Command::Init(args) => init::run(args, system),
        Command::Render(args) => render::run(args, system),
        Command::Check(args) => check::run(args, system),
        Command::Connect(args) => connect::run(args, system),
        Command::Uninstall(args) => uninstall::run(args, system),
        Command::HardenOllama(args) => harden::run(args, system),
        Command::Users(command) => users::run(command, system),
        Command::Keys(command) => keys::run(command, system),
        Command::Usage(args) => usage::run(args, system),
        Command::GenerateDocs(args) => docs::run(args, system),
        Command::Status(args) => status::run(args, system),
        Command::Schema(args) => schema::run(args),
    }
}

/// What the plan found, before its steps: all of it as a list, or with
/// `-q` only the warnings (on stderr, as the answers' warnings are).
fn print_findings(findings: &[crate::error::Finding]) {
    if !crate::verbosity::quiet() {
        findings.iter().for_each(|finding| crate::say!("  - {finding}"));
        return;
    }
    let warnings: Vec<_> = findings.iter().filter(|f| f.severity == crate::error::Severity::Warning).cloned().collect();
    print_warnings(&warnings, false);
}

/// The answers' warnings; `from_wizard`: in the words of its questions.
fn print_warnings(warnings: &[crate::error::Finding], from_wizard: bool) {
    let style = crate::style::stderr();
    for warning in warnings {
        let text = if from_wizard { warning.wizard_text() } else { Some(warning.text.as_str()) };
        let Some(text) = text else { continue };
        match warning.severity {
            crate::error::Severity::Warning => {
                crate::errln!("{} {text}", style.paint("warning:", crate::style::Tone::Warn))
            }
            crate::error::Severity::Info => crate::errln!("{text}"),
        }
    }
}

/// An installed setup, found from the answers' paths (or the defaults) and
/// the state file `init` wrote there.
struct Installed {
    paths: Paths,
    state: State,
    /// The answers file given, for settings beyond its paths.
    answers: Option<(Answers, String)>,
}

impl Installed {
    /// The setup's settings as init recorded them.
    fn settings(&self) -> Result<Settings> {
        self.state.settings.clone().ok_or_else(|| {
            Error::input(format!(
                "{} was written by an older ollama-secure and does not record the setup: run `ollama-secure init --answers FILE` \
                 with the answers it was set up with once more, then try again",
                self.paths.state.display()
            ))
        })
    }
}

/// The answers file given (if any), and the paths it names (or the defaults).
fn locate(answers_path: Option<&Path>) -> Result<(Paths, Option<(Answers, String)>)> {
    let answers = match answers_path {
        Some(path) => Some((Answers::load(path)?, Answers::source_name(path))),
        None => None,
    };
    let paths = match &answers {
        Some((answers, source)) => crate::config::paths_from_answers(answers, source, Os::current())?,
        None => Paths::defaults(Os::current()),
    };
    Ok((paths, answers))
}

fn find_installed(system: &dyn System, answers_path: Option<&Path>) -> Result<Installed> {
    let (paths, answers) = locate(answers_path)?;
    installed_at(system, paths, answers)
}

fn installed_at(system: &dyn System, paths: Paths, answers: Option<(Answers, String)>) -> Result<Installed> {
    let state = match system.inspect(&paths.state) {
        Existing::File { content, .. } => State::parse(&String::from_utf8_lossy(&content), &paths.state)?,
        _ => {
            return Err(Error::input(format!(
                "no ollama-secure setup found: {} does not exist (run init first, or pass the --answers FILE init used)",
                paths.state.display()
            )));
        }
    };
    Ok(Installed { paths, state, answers })
}

/// Before a run changes anything: the lock (a concurrent run waits), and
/// the undoing of a run that was interrupted, whose journal is found here.
fn begin_changes(system: &dyn System, paths: &Paths) -> Result<Changing> {
    let lock = crate::lock::acquire(&paths.lock)?;
    let journal = crate::journal::Journal::at(system, &paths.journal, "recovery");
    // What an interrupted run's undoing did is shown even with -q.
    let mut out = crate::verbosity::shown();
    let recovered = crate::apply::recover(system, &journal, &mut out)?;
    if !recovered {
        let leftovers = crate::apply::remove_temporary_files(system, &[], &paths.journal, &mut out);
        if !leftovers.is_empty() {
            return Err(Error::failed(leftovers.join("\n")));
        }
    }
    Ok(Changing { _lock: lock, recovered })
}

/// A run that may change the system: it holds the lock.
struct Changing {
    _lock: crate::lock::Lock,
    /// It began by undoing an interrupted run.
    recovered: bool,
}

/// What a run that changes nothing says about a journal an interrupted
/// run left at `path`: `now` says what its own output is about.
/// Says what the plan found, then carries it out under `heading` with a
/// journal named `label`, catching SIGINT and SIGTERM, and ends the journal.
fn apply_journaled(
    system: &dyn System,
    paths: &Paths,
    plan: &crate::plan::Plan,
    label: &str,
    heading: &str,
) -> Result<()> {
    print_findings(&plan.findings);
    crate::say!("\n{heading}:");
    let journal = crate::journal::Journal::at(system, &paths.journal, label);
    {
        let _catching = crate::interrupt::catch();
        crate::apply::apply(plan, system, &journal, &mut crate::verbosity::progress())?;
    }
    journal.commit()
}

fn journal_warning_at(system: &dyn System, path: &Path, now: &str) -> Option<crate::error::Finding> {
    let journal = crate::journal::Journal::at(system, path, "dry run");
    matches!(journal.left_behind(), Ok(Some(_)) | Err(_)).then(|| {
        crate::error::Finding::warning(format!(
            "an interrupted run left {}: the next run that changes something undoes it first; {now}",
            path.display()
        ))
    })
}

/// What a dry run's plan is about while an interrupted run's journal is there.
const PLAN_AS_IT_IS: &str = "this plan is for the system as it is now";

/// A password from `--password-env VAR` or the first line of
/// `--password-file FILE`; `None` when neither is given.
fn password_from(env: Option<&str>, file: Option<&Path>) -> Result<Option<Secret>> {
    if let Some(var) = env {
        return crate::secret::from_env(var)
            .map(Some)
            .ok_or_else(|| Error::input(format!("--password-env: the environment variable {var} is not set")));
    }
    if let Some(path) = file {
        let bytes = crate::system::read_limited(path, 64 * 1024)
            .map_err(|e| Error::input(format!("--password-file: cannot read {}: {e}", path.display())))?;
        let text = String::from_utf8_lossy(&bytes);
        return Ok(Some(Secret::new(text.lines().next().unwrap_or_default())));
    }
    Ok(None)
}

/// Prints the passwords and keys generated by this run: the only time they
/// are shown.
fn print_generated(resolution: &crate::setup::Resolution, access: &crate::access::Access) -> std::io::Result<()> {
    let mut text = String::new();
    if !resolution.generated.is_empty() {
        text.push_str("\nGenerated passwords (shown once; store them now, they cannot be recovered):\n");
        for (user, password) in &resolution.generated {
            text.push_str(&format!("  {user} ({} role): {}\n", access.role_of_user(user), password.expose()));
        }
    }
    if !resolution.generated_keys.is_empty() {
        text.push_str("\nGenerated API keys (shown once; store them now, they cannot be recovered):\n");
        for (name, key) in &resolution.generated_keys {
            let role = access.key(name).map(|k| k.role).unwrap_or_default();
            text.push_str(&format!("  {name} ({role} role): {}\n", key.text().expose()));
        }
    }
    match text.strip_suffix('\n') {
        Some(text) => crate::verbosity::show_secret(text),
        None => Ok(()),
    }
}

/// When the generated secrets could not be shown: the run is undone now
/// (its journal says how), so that no hash stays whose secret nobody saw.
fn unshown_secrets(system: &dyn System, journal: &crate::journal::Journal, why: std::io::Error) -> Error {
    let undone = crate::apply::recover(system, journal, &mut std::io::sink());
    let after = match undone {
        Ok(true) => "so this run was undone",
        _ => "and this run could not be undone now: the next ollama-secure run undoes it",
    };
    Error::failed(format!("the generated passwords or keys could not be shown ({why}), {after}"))
}

/// How clients use the credentials of `setup` at its URL: a user's
/// password, and the keys if there are any.
fn print_how_to_connect(setup: &crate::setup::Setup) {
    let url = setup.settings.site.public_url();
    let users: Vec<(String, Role)> = setup
        .users
        .entries()
        .map(|user| (user.username.to_string(), setup.access.role_of_user(user.username.as_str())))
        .collect();
    crate::say!("{}", how_to_connect(&url, &users, !setup.access.keys.is_empty()));
}

/// Past this many users, the rest are counted rather than listed.
const CONNECT_USERS_SHOWN: usize = 5;

/// How clients reach `url`: for each user (the first few), lines ready to
/// paste, with the password left for the reader to fill in; then the keys'.
fn how_to_connect(url: &str, users: &[(String, Role)], keys: bool) -> String {
    let mut out = format!("\nHow clients connect to {url}:");
    for (name, role) in users.iter().take(CONNECT_USERS_SHOWN) {
        out.push('\n');
        out.push_str(&usage_lines(url, &format!("user {name}")));
        out.push_str(&format!("\n    OllaMan: server {url}, username {name}, its password"));
        if *role != Role::Admin {
            out.push_str(" (to pull or delete models there, a user with the admin role)");
        }
    }
    if users.len() > CONNECT_USERS_SHOWN {
        out.push_str(&format!("\n  ... and {} more users, the same way.", users.len() - CONNECT_USERS_SHOWN));
    }
    if keys {
        out.push('\n');
        out.push_str(&usage_lines(url, "key"));
    }
    out
}

/// Who a run generates secrets for, for the journal.
fn generating(resolution: &crate::setup::Resolution) -> impl Iterator<Item = String> + '_ {
    let users = resolution.generated.iter().map(|(user, _)| user.to_string());
    users.chain(resolution.generated_keys.iter().map(|(name, _)| format!("the key {name}")))
}

/// How a client uses a credential at `url`: `who` is `user NAME` or `key NAME`.
fn usage_lines(url: &str, who: &str) -> String {
    match who.split_once(' ').unwrap_or((who, "")) {
        ("key", _) => format!(
            "  With an API key (`Authorization: Bearer KEY` or `X-API-Key: KEY`):\n    \
             curl -H \"Authorization: Bearer $KEY\" {url}/api/tags\n    \
             OLLAMA_HOST={url} OLLAMA_API_KEY=$KEY python app.py      (the ollama Python client, unchanged)\n    \
             openai.OpenAI(base_url=\"{url}/v1\", api_key=KEY)        (any OpenAI-compatible client)"
        ),
        (_, name) => format!(
            "  As {name} (HTTP Basic; curl asks for the password):\n    \
             curl -u {name} {url}/api/tags\n    \
             ollama.Client(host=\"{url}\", auth=(\"{name}\", PASSWORD))"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_ends_with_lines_to_paste_for_every_user_and_the_keys() {
        let users = [("alice".to_string(), Role::Admin), ("bob".to_string(), Role::User)];
        let text = how_to_connect("https://o.example.com", &users, true);
        for line in [
            "How clients connect to https://o.example.com:",
            "  As alice (HTTP Basic; curl asks for the password):",
            "    curl -u alice https://o.example.com/api/tags",
            "    ollama.Client(host=\"https://o.example.com\", auth=(\"alice\", PASSWORD))",
            "    OllaMan: server https://o.example.com, username alice, its password",
            "    curl -u bob https://o.example.com/api/tags",
            "    OllaMan: server https://o.example.com, username bob, its password (to pull or delete models there, a user with the admin role)",
            "    curl -H \"Authorization: Bearer $KEY\" https://o.example.com/api/tags",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing in\n{text}");
        }
        assert!(!text.contains("alice, its password (to pull"), "{text}");
        let many: Vec<(String, Role)> = (0..8).map(|i| (format!("u{i}"), Role::User)).collect();
        let text = how_to_connect("http://h:8080", &many, false);
        assert_eq!(text.matches("curl -u ").count(), CONNECT_USERS_SHOWN);
        assert!(text.ends_with("... and 3 more users, the same way."), "{text}");
        assert!(!text.contains("Bearer"), "no keys, no key lines: {text}");
    }
}
