use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::access::ApiKey;
use crate::check::{self, AdminApi, Options};
use crate::cli::{CheckArgs, ClientCredentials};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::system::{Credentials, System};

/// The key (from the environment or a file), or the user's password.
pub fn client_credentials(args: &ClientCredentials) -> Result<Credentials> {
    if let Some(key) = super::password_from(args.api_key_env.as_deref(), args.api_key_file.as_deref())? {
        let which = if args.api_key_env.is_some() { "--api-key-env" } else { "--api-key-file" };
        ApiKey::parse(key.expose()).map_err(|e| Error::input(format!("{which}: the key {e}")))?;
        return Ok(Credentials::Bearer(key));
    }
    let Some(username) = args.username.clone() else {
        return Err(Error::input(
            "give --username NAME (with --password-env VAR or --password-file FILE), or an API key: --api-key-env VAR or --api-key-file FILE",
        ));
    };
    Ok(Credentials::Basic(username, password(args)?))
}

/// The password: from the environment, a file, or a hidden prompt. Never
/// from the command line, where `ps` shows it.
fn password(args: &ClientCredentials) -> Result<Secret> {
    if let Some(secret) = super::password_from(args.password_env.as_deref(), args.password_file.as_deref())? {
        return Ok(secret);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::input(
            "no password: give --password-env VAR or --password-file FILE (there is no terminal to ask on)",
        ));
    }
    dialoguer::Password::new()
        .with_prompt(format!("Password for {}", args.username.as_deref().unwrap_or_default()))
        .interact()
        .map(Secret::new)
        .map_err(|e| Error::input(format!("no password read: {e}")))
}

/// `--cacert FILE`: read (bounded) and checked to be PEM certificates.
pub fn read_cacert(path: &Path) -> Result<Vec<u8>> {
    let pem = crate::system::read_limited(path, 1024 * 1024)
        .map_err(|e| Error::input(format!("cannot read --cacert {}: {e}", path.display())))?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| Error::input(format!("--cacert {}: not a PEM certificate: {e}", path.display())))?;
    Ok(pem)
}

/// What `check` learns from a setup installed on this machine, found from
/// `--answers` (which must then describe one) or at the default paths:
/// nginx's auth socket, Caddy's admin API, the proxy's error log.
fn local_setup(system: &dyn System, answers: Option<&Path>) -> Result<LocalSetup> {
    let installed = match super::find_installed(system, answers) {
        Ok(installed) => installed,
        Err(e) if answers.is_some() => return Err(e),
        Err(_) => return Ok(LocalSetup::default()),
    };
    let (paths, proxy) = (&installed.paths, installed.state.proxy.module());
    // With several Ollama servers, each is asked too.
    let site = installed.state.settings.as_ref().map(|settings| &settings.site);
    let backends = site
        .filter(|site| !site.other_upstreams.is_empty())
        .map(|site| site.upstreams().filter_map(|u| reqwest::Url::parse(&u.url()).ok()).collect())
        .unwrap_or_default();
    Ok(LocalSetup {
        auth_socket: proxy.auth_socket(paths).map(Path::to_path_buf),
        caddy_admin: proxy.admin_api(system, paths),
        error_log: proxy.error_log(system, paths),
        backends,
    })
}

/// What a setup installed here tells `check` (nothing, when none is).
#[derive(Default)]
struct LocalSetup {
    auth_socket: Option<PathBuf>,
    caddy_admin: Option<AdminApi>,
    error_log: Option<PathBuf>,
    backends: Vec<reqwest::Url>,
}

pub fn run(args: CheckArgs, system: &dyn System) -> Result<()> {
    let url = reqwest::Url::parse(&args.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| Error::input(format!("--url {:?}: give an http:// or https:// URL", args.url)))?;
    let LocalSetup { auth_socket, caddy_admin, error_log, backends } = local_setup(system, args.answers.as_deref())?;
    let overrides = args.resolve.iter().map(|r| check::parse_resolve(r)).collect::<Result<Vec<_>>>()?;
    let options = Options {
        url,
        credentials: client_credentials(&args.credentials)?,
        cacert_pem: args.cacert.as_deref().map(read_cacert).transpose()?,
        timeout: Duration::from_secs(args.timeout.max(1)),
        model: args.model.clone(),
        resolve: check::resolve_hosts(&overrides)?,
        http_port: args.http_port,
        ollama_port: args.ollama_port,
        body_bytes: 5 * 1024 * 1024,
        auth_socket,
        caddy_admin,
        error_log,
        backends,
    };
    let report = check::run(system, &options);
    if args.json {
        crate::outln!("{}", report.json());
    } else if !report.passed || !crate::verbosity::quiet() {
        // Quiet: the report only when something failed.
        crate::out!("{}", report.text());
    }
    if report.passed { Ok(()) } else { Err(Error::check_failed("the check found problems (see above)")) }
}
