use std::io::IsTerminal;
use std::time::Duration;

use crate::check::{self, Options};
use crate::cli::CheckArgs;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The password: from the environment, a file, or a hidden prompt. Never
/// from the command line, where `ps` shows it.
fn password(args: &CheckArgs) -> Result<Secret> {
    if let Some(secret) = super::password_from(args.password_env.as_deref(), args.password_file.as_deref())? {
        return Ok(secret);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::input(
            "no password: give --password-env VAR or --password-file FILE (there is no terminal to ask on)",
        ));
    }
    dialoguer::Password::new()
        .with_prompt(format!("Password for {}", args.username))
        .interact()
        .map(Secret::new)
        .map_err(|e| Error::input(format!("no password read: {e}")))
}

/// The auth socket of an nginx setup installed on this machine, found from
/// `--answers` (which must then describe one) or at the default paths.
fn local_auth_socket(answers: Option<&std::path::Path>) -> Result<Option<std::path::PathBuf>> {
    let installed = match super::find_installed(answers) {
        Ok(installed) => installed,
        Err(e) if answers.is_some() => return Err(e),
        Err(_) => return Ok(None),
    };
    Ok((installed.proxy == crate::config::Proxy::Nginx).then_some(installed.paths.auth_socket))
}

pub fn run(args: CheckArgs) -> Result<()> {
    let url = reqwest::Url::parse(&args.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| Error::input(format!("--url {:?}: give an http:// or https:// URL", args.url)))?;
    let resolve = args.resolve.iter().map(|r| check::parse_resolve(r)).collect::<Result<Vec<_>>>()?;
    let options = Options {
        url,
        username: args.username.clone(),
        password: password(&args)?,
        cacert: args.cacert.clone(),
        timeout: Duration::from_secs(args.timeout.max(1)),
        model: args.model.clone(),
        resolve,
        http_port: args.http_port,
        ollama_port: args.ollama_port,
        body_bytes: 5 * 1024 * 1024,
        auth_socket: local_auth_socket(args.answers.as_deref())?,
    };
    let report = check::run(&options)?;
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    if report.passed { Ok(()) } else { Err(Error::check_failed("the check found problems (see above)")) }
}
