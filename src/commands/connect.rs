use std::io::Write;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use crate::access::ApiKey;
use crate::cli::ConnectArgs;
use crate::connect;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::system::{Credentials, HttpRequest, System, Trust, forward};

/// The longest secret handed to the second run (a key is 50 bytes).
const SECRET_LIMIT: usize = 16 * 1024;

pub fn run(args: ConnectArgs, system: &dyn System) -> Result<()> {
    if !args.as_launchd_agent {
        return forward_or_install(args, system);
    }
    match forward_or_install(args, system) {
        Err(e) if matches!(e.exit_code(), crate::error::exit::INPUT | crate::error::exit::CHECK_FAILED) => {
            crate::errln!("{}", e.report(crate::style::stderr()));
            crate::errln!(
                "Not retried: this would fail again. Mend it, then run `ollama-secure connect --install` again."
            );
            Ok(())
        }
        other => other,
    }
}

fn forward_or_install(args: ConnectArgs, system: &dyn System) -> Result<()> {
    if args.uninstall {
        return super::connect_service::uninstall(args.dry_run, system);
    }
    if args.dry_run && !args.install {
        return Err(Error::input("--dry-run goes with --install or --uninstall (connect itself changes nothing)"));
    }
    // Everything given is checked before anything is read or asked.
    let listen = connect::listen_address(&args.listen)?;
    let server = connect::server_url(args.url.as_deref().unwrap_or_default())?;
    let overrides = args.resolve.iter().map(|r| crate::check::parse_resolve(r)).collect::<Result<Vec<_>>>()?;
    let resolve = crate::check::resolve_hosts(&overrides)?;
    let extra_roots_pem = args.cacert.as_deref().map(super::check::read_cacert).transpose()?;

    let credentials = if args.secret_on_stdin {
        credentials_from_stdin(&args)?
    } else if args.install {
        super::connect_service::credentials_from_files(&args.credentials)?
    } else {
        let credentials = super::check::client_credentials(&args.credentials)?;
        let variables = crate::secret::variables();
        if !variables.is_empty() {
            return Err(run_again_without(&variables, secret_of(&credentials)));
        }
        credentials
    };
    let authorization = connect::authorization(&credentials)?;

    // Once, before listening: wrong credentials are said now, not as a
    // 401 inside whatever the local client makes of it.
    let probe = HttpRequest {
        auth: Some(credentials),
        timeout: Duration::from_secs(15),
        resolve: resolve.clone(),
        trust: Trust::Verify { extra_roots_pem: extra_roots_pem.clone() },
        follow_redirects: false,
        ..HttpRequest::get(connect::upstream_url(&server, "/api/version"))
    };
    if let Some(warning) = connect::startup_verdict(&server, system.http(&probe))? {
        crate::errln!("warning: {warning}");
    }

    if args.install {
        return super::connect_service::install(&args, listen, &server, system);
    }
    let listener = forward::listen(listen).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => Error::failed(format!(
            "cannot listen on {listen}: something else listens there (a local Ollama?); give another port with --listen 127.0.0.1:PORT"
        )),
        _ => Error::failed(format!("cannot listen on {listen}: {e}")),
    })?;
    let listen = listener.local_addr().unwrap_or(listen);
    let who = match &args.credentials.username {
        Some(user) if args.credentials.api_key_env.is_none() && args.credentials.api_key_file.is_none() => {
            format!("as {user}")
        }
        _ => "with an API key".to_string(),
    };
    crate::outln!("Forwarding http://{listen} to {server} {who}. Stop with Ctrl-C.");
    crate::outln!("Point clients at it, e.g.: OLLAMA_HOST={listen} ollama list");
    forward::serve(listener, forward::Forward { server, authorization, extra_roots_pem, resolve })
        .map_err(|e| Error::failed(format!("the forwarder stopped: {e}")))
}

fn secret_of(credentials: &Credentials) -> &Secret {
    match credentials {
        Credentials::Basic(_, secret) | Credentials::Bearer(secret) | Credentials::ApiKeyHeader(secret) => secret,
    }
}

/// Runs `connect` again, the same arguments, without the variables the
/// secret came from; the secret goes on its standard input. A process
/// keeps the environment it started with in `/proc/PID/environ` whatever
/// it unsets, and this one runs for days. Returns only on failure.
fn run_again_without(variables: &[String], secret: &Secret) -> Error {
    let failed = |e: std::io::Error| Error::failed(format!("cannot start connect without the secret's variable: {e}"));
    if secret.expose().len() > SECRET_LIMIT {
        return Error::input(format!("the secret is longer than {SECRET_LIMIT} bytes"));
    }
    let (reader, mut writer) = match std::io::pipe() {
        Ok(pipe) => pipe,
        Err(e) => return failed(e),
    };
    // It fits the pipe's buffer: written whole before the second run starts.
    if let Err(e) = writer.write_all(secret.expose().as_bytes()) {
        return failed(e);
    }
    drop(writer);
    let program = match std::env::current_exe() {
        Ok(program) => program,
        Err(e) => return failed(e),
    };
    let mut command = std::process::Command::new(program);
    command.args(std::env::args_os().skip(1)).arg("--secret-on-stdin").stdin(reader);
    for variable in variables {
        command.env_remove(variable);
    }
    failed(command.exec())
}

/// The second run's credentials: the secret from standard input, of the
/// kind the (unchanged) flags say.
fn credentials_from_stdin(args: &ConnectArgs) -> Result<Credentials> {
    let bytes = crate::system::read_stdin_limited(SECRET_LIMIT as u64, Duration::from_secs(5))
        .map_err(|e| Error::input(format!("--secret-on-stdin: {e}")))?;
    let secret = Secret::new(String::from_utf8(bytes).map_err(|_| Error::input("--secret-on-stdin: not UTF-8"))?);
    let flags = &args.credentials;
    if flags.api_key_env.is_some() {
        ApiKey::parse(secret.expose()).map_err(|e| Error::input(format!("--api-key-env: the key {e}")))?;
        return Ok(Credentials::Bearer(secret));
    }
    match (&flags.username, &flags.password_env) {
        (Some(user), Some(_)) => Ok(Credentials::Basic(user.clone(), secret)),
        _ => Err(Error::input("--secret-on-stdin is for connect's own use, with --api-key-env or --password-env")),
    }
}
