//! Replies → verdicts: what each answer proves, and what a failure means.
//! Pure; the whole table is unit-tested with recorded replies.

use std::time::Duration;

use super::probe::{AdminApi, ERROR_LOG_TAIL, NOT_SENT, Options, Replies};
use super::report::{Outcome, Status};
use crate::fields;
use crate::system::{HttpReply, Listener, SocketState};

type Reply = Result<HttpReply, String>;

/// Ollama's 403 for a Host it does not accept has an empty body.
fn is_ollama_host_refusal(reply: &HttpReply) -> bool {
    reply.status == 403 && reply.body.trim().is_empty()
}

const OUTSIDER_HINT: &str = "The proxy refuses the address this check comes from: it is not in the answers' `allow_from`.\n\
    Run the check from an allowed address, or add this machine's address to `allow_from` \
    (127.0.0.1 when checking on the server itself through loopback).";

fn status_text(status: u16) -> String {
    crate::facts::status_text(status)
}

const HOST_FIX: &str = "Ollama refuses a Host that is not local: the proxy forwards the public name.\n\
    Fix: nginx `proxy_set_header Host 127.0.0.1:11434;` (the upstream address), Caddy `header_up Host {upstream_hostport}`.";

/// What a 500 from the proxy most likely means, as precisely as this
/// machine lets us say.
fn server_error_hint(auth_socket: Option<SocketState>, options: &Options) -> String {
    match (auth_socket, &options.auth_socket) {
        (Some(state), Some(socket)) if state != SocketState::Listening => format!(
            "nginx's auth-only server cannot be reached: its socket {} is missing or nothing listens on it, \
             so every login that is not cached fails. Run `ollama-secure init` again with the same answers: \
             it restarts nginx, which creates the socket (a reload does not).",
            socket.display()
        ),
        (Some(_), _) => "The proxy failed internally, although its auth-only server's socket is in place: \
             nginx's error log says why."
            .to_string(),
        (None, _) => "The proxy failed internally: its error log says why. With ollama-secure's nginx site, \
             `connect() to unix:... failed` there means the auth-only server's socket is gone; \
             run `ollama-secure check --answers FILE` on the server to find out, or `ollama-secure init` to repair it."
            .to_string(),
    }
}

/// An answer that is not what a check wanted: its status, and for a 500
/// the likely cause.
fn unexpected(
    name: &'static str,
    title: &'static str,
    reply: &HttpReply,
    wanted: u16,
    r: &Replies,
    o: &Options,
) -> Outcome {
    if crate::facts::refuses_outsider(reply) {
        return Outcome::new(name, title, Status::Fail, format!("403 from the proxy's allow_from, expected {wanted}"))
            .hint(OUTSIDER_HINT);
    }
    let outcome = Outcome::new(name, title, Status::Fail, format!("{}, expected {wanted}", status_text(reply.status)));
    if reply.status != 500 {
        return outcome;
    }
    let hint = server_error_hint(r.auth_socket, o);
    match &r.error_log {
        Some((path, tail)) => outcome.hint(format!("{hint}\n{}", last_error(path, tail))),
        None => outcome.hint(hint),
    }
}

/// What the proxy's error log says last, in one line: where it is, and
/// its last error (a line nginx marks `[error]` or worse, or one Caddy
/// logs at level error; a cause before its consequence), shown without
/// control characters and cut short.
fn last_error(path: &std::path::Path, tail: &std::io::Result<Vec<u8>>) -> String {
    const SEVERE: [&str; 5] = ["[error]", "[crit]", "[alert]", "[emerg]", "\"level\":\"error\""];
    const SHOWN: usize = 400;
    let log = path.display();
    let text = match tail {
        Ok(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Err(e) => return format!("The proxy's error log {log} cannot be read: {e}."),
    };
    // nginx follows a failed auth request's cause with this line: the cause says more.
    const CONSEQUENCE: &str = "auth request unexpected status";
    let severe = || text.lines().rev().filter(|line| SEVERE.iter().any(|s| line.contains(s)));
    match severe().find(|line| !line.contains(CONSEQUENCE)).or_else(|| severe().next()) {
        Some(line) => {
            let clean: String = line.chars().map(|c| if crate::error::unprintable(c) { ' ' } else { c }).collect();
            let cut = clean.chars().count() > SHOWN;
            let shown: String = clean.chars().take(SHOWN).collect();
            format!(
                "The last error in {log}:\n  {}{}",
                shown.trim(),
                if cut { format!(" {}", crate::style::stdout().ellipsis()) } else { String::new() }
            )
        }
        None => format!("{log} (the proxy's error log) has no error in its last {} KiB.", ERROR_LOG_TAIL / 1024),
    }
}

/// A request that got no answer fails; one not sent (the first request
/// got none) is skipped, so a hung server costs one timeout, not one each.
fn unanswered(name: &'static str, title: &'static str, why: &str) -> Outcome {
    if why == NOT_SENT {
        Outcome::new(name, title, Status::Skip, "not sent: the first request got no answer (above)")
    } else {
        Outcome::new(name, title, Status::Fail, why)
    }
}

fn took(outcome: Outcome, reply: &Reply) -> Outcome {
    match reply {
        Ok(reply) => outcome.took(reply.elapsed),
        Err(_) => outcome,
    }
}

fn no_credentials(r: &Replies, o: &Options) -> Outcome {
    const NAME: &str = "no_credentials";
    const TITLE: &str = "without credentials";
    let reply = match &r.no_credentials {
        Err(why) => return unanswered(NAME, TITLE, why),
        Ok(reply) => reply,
    };
    let challenge = reply.header("www-authenticate").unwrap_or("");
    let outcome = if reply.status == 401 && challenge.to_ascii_lowercase().starts_with("basic") {
        Outcome::new(NAME, TITLE, Status::Pass, format!("401, asks for {challenge}"))
    } else if reply.status == 401 {
        Outcome::new(NAME, TITLE, Status::Fail, "401 but without a `WWW-Authenticate: Basic` header")
            .hint("Clients will not know to send a password.")
    } else if (200..300).contains(&reply.status) && reply.body.trim().is_empty() {
        Outcome::new(NAME, TITLE, Status::Fail, format!("{} with an empty body", status_text(reply.status))).hint(
            "No site answers for this host name (Caddy answers an empty 200 then): check the URL's host and port.",
        )
    } else if (200..300).contains(&reply.status) {
        Outcome::new(NAME, TITLE, Status::Fail, format!("{}: the server is OPEN TO ANYONE", status_text(reply.status)))
            .hint("Anyone who can reach this URL can use Ollama. Put the proxy's auth in front of it (ollama-secure init).")
    } else if is_ollama_host_refusal(reply) {
        Outcome::new(NAME, TITLE, Status::Fail, "403 from Ollama: the proxy did not ask for a password")
            .hint(format!("The request reached Ollama without authentication.\n{HOST_FIX}"))
    } else {
        unexpected(NAME, TITLE, reply, 401, r, o)
    };
    took(outcome, &r.no_credentials)
}

fn wrong_password(r: &Replies, o: &Options) -> Outcome {
    const NAME: &str = "wrong_password";
    let (title, accepted) = if o.uses_key() {
        ("with a wrong or revoked key", "a wrong key is accepted")
    } else {
        ("with a wrong password", "a wrong password is accepted")
    };
    let outcome = match &r.wrong_password {
        Err(why) => unanswered(NAME, title, why),
        Ok(reply) if reply.status == 401 => Outcome::new(NAME, title, Status::Pass, "401"),
        Ok(reply) if (200..300).contains(&reply.status) => {
            Outcome::new(NAME, title, Status::Fail, format!("{}: {accepted}", status_text(reply.status)))
        }
        Ok(reply) => unexpected(NAME, title, reply, 401, r, o),
    };
    took(outcome, &r.wrong_password)
}

fn version(r: &Replies, o: &Options) -> Outcome {
    const NAME: &str = "version";
    const TITLE: &str = "with the right password: version";
    let title = if o.uses_key() { "with the key: version" } else { TITLE };
    let reply = match &r.version {
        Err(why) => return unanswered(NAME, TITLE, why),
        Ok(reply) => reply,
    };
    let outcome = match (reply.status, reported_version(reply)) {
        (200, Some(version)) => Outcome::new(NAME, TITLE, Status::Pass, format!("200, Ollama {version}")),
        (200, None) => Outcome::new(NAME, TITLE, Status::Fail, "200, but the answer is not Ollama's /api/version"),
        (401, _) if o.uses_key() => Outcome::new(NAME, TITLE, Status::Fail, "401: the key is refused")
            .hint("Check the key (`ollama-secure keys list` on the server shows the keys that exist)."),
        (401, _) => Outcome::new(NAME, TITLE, Status::Fail, "401: the password is refused")
            .hint(format!("Check the username ({}) and password.", o.user_name())),
        _ if is_ollama_host_refusal(reply) => Outcome::new(NAME, TITLE, Status::Fail, "403 from Ollama"),
        (502, _) => Outcome::new(NAME, TITLE, Status::Fail, "502: the proxy cannot reach Ollama").hint(format!(
            "Is Ollama running at the upstream address? On the server, `ss -ltn 'sport = :{}'` shows whether \
             anything listens on Ollama's port (with systemd: `systemctl status ollama`).",
            o.ollama_port
        )),
        _ => unexpected(NAME, TITLE, reply, 200, r, o),
    };
    took(Outcome { title, ..outcome }, &r.version)
}

/// The version in Ollama's answer to `/api/version`.
fn reported_version(reply: &HttpReply) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_string))
}

/// Known critical advisories of the Ollama behind the proxy. A version
/// that cannot be read was already failed by `version`: skipped here.
fn advisories(r: &Replies) -> Outcome {
    const NAME: &str = "advisories";
    const TITLE: &str = "Ollama without known critical advisories";
    let Some(version) = r.version.as_ref().ok().filter(|reply| reply.status == 200).and_then(reported_version) else {
        return Outcome::new(NAME, TITLE, Status::Skip, "the version is not known");
    };
    match crate::advisories::judge(&version) {
        crate::advisories::Verdict::Clean => {
            Outcome::new(NAME, TITLE, Status::Pass, format!("none known for Ollama {version}"))
        }
        crate::advisories::Verdict::Unknown(why) => {
            Outcome::new(NAME, TITLE, Status::Skip, format!("Ollama {version} is {why}: not judged"))
        }
        crate::advisories::Verdict::Affected(found) => {
            let list: Vec<String> =
                found.iter().map(|a| format!("{} ({}; fixed in {})", a.id, a.summary, a.fixed_in)).collect();
            let upgrade_to = found.iter().map(|a| a.fixed_in).next_back().unwrap_or_default();
            Outcome::new(NAME, TITLE, Status::Fail, format!("Ollama {version} is affected by {}", list.join(", ")))
                .hint(format!(
                    "Upgrade Ollama to {upgrade_to} or later: `curl -fsSL https://ollama.com/install.sh | sh` \
                     (Linux), `docker pull ollama/ollama` and re-create the container (Docker), or `brew upgrade \
                     ollama` (macOS). Until then keep model management to the admin role: the user role cannot \
                     reach /api/create or /api/push through this proxy."
                ))
        }
    }
}

fn models(r: &Replies, o: &Options) -> Outcome {
    const NAME: &str = "models";
    const TITLE: &str = "with the right password: models";
    let title = if o.uses_key() { "with the key: models" } else { TITLE };
    let outcome = match &r.models {
        Err(why) => unanswered(NAME, TITLE, why),
        Ok(reply) if reply.status == 200 => match model_names(reply) {
            Some(names) => {
                let list = if names.is_empty() { String::new() } else { format!(": {}", names.join(", ")) };
                Outcome::new(NAME, TITLE, Status::Pass, format!("200, {} model(s){list}", names.len()))
            }
            None => Outcome::new(NAME, TITLE, Status::Fail, "200, but the answer is not Ollama's model list"),
        },
        Ok(reply) => Outcome::new(NAME, TITLE, Status::Fail, format!("{}, expected 200", status_text(reply.status))),
    };
    took(Outcome { title, ..outcome }, &r.models)
}

/// The model names in Ollama's `/api/tags` answer; `None` if it is not one.
fn model_names(reply: &HttpReply) -> Option<Vec<String>> {
    let v = serde_json::from_str::<serde_json::Value>(&reply.body).ok()?;
    let models = v.get("models")?.as_array()?;
    Some(models.iter().filter_map(|m| m["name"].as_str().map(str::to_string)).collect())
}

/// What the credential's role allows: a model-management request (deleting
/// a model nobody has) is refused for the user role with the proxy's 403,
/// and reaches Ollama (its 404) for admin.
fn role(r: &Replies) -> Outcome {
    const NAME: &str = "role";
    const TITLE: &str = "model management (DELETE /api/delete)";
    let outcome = match &r.role {
        Err(why) => unanswered(NAME, TITLE, why),
        Ok(reply) if reply.status == 403 && reply.body.contains("admin role") => Outcome::new(
            NAME,
            TITLE,
            Status::Pass,
            "403: refused to this credential (user role); inference and reading only",
        ),
        Ok(reply) if reply.status == 404 => Outcome::new(
            NAME,
            TITLE,
            Status::Pass,
            "reaches Ollama (its 404 for a model it does not have): this credential may manage models (admin role)",
        ),
        Ok(reply) => Outcome::new(
            NAME,
            TITLE,
            Status::Fail,
            format!("{}, expected the proxy's 403 (user role) or Ollama's 404 (admin)", status_text(reply.status)),
        ),
    };
    took(outcome, &r.role)
}

/// Whether Ollama accepted the Host header, judged from the version answer.
fn host_header(r: &Replies, o: &Options, version: &Outcome) -> Outcome {
    const NAME: &str = "host_header";
    const TITLE: &str = "Host header accepted by Ollama";
    if r.version.as_ref().is_ok_and(is_ollama_host_refusal) {
        Outcome::new(NAME, TITLE, Status::Fail, "Ollama answered 403 with an empty body").hint(HOST_FIX)
    } else if version.status == Status::Pass {
        Outcome::new(NAME, TITLE, Status::Pass, format!("sent Host: {}", o.url.host_str().unwrap_or("")))
    } else {
        Outcome::new(NAME, TITLE, Status::Skip, "no authenticated answer to judge by")
    }
}

/// A multi-megabyte JSON body for a model that does not exist: Ollama
/// reads it all and answers 404, changing nothing; a proxy limit answers
/// 413 first. (`/api/show` is an endpoint every role reaches.)
fn large_body(r: &Replies, o: &Options) -> Outcome {
    const NAME: &str = "large_body";
    const TITLE: &str = "large request body";
    let megabytes = o.body_bytes as f64 / (1024.0 * 1024.0);
    let outcome = match &r.large_body {
        Err(why) => unanswered(NAME, TITLE, why),
        Ok(reply) if reply.status == 404 && reply.body.contains("not found") => Outcome::new(
            NAME,
            TITLE,
            Status::Pass,
            format!("{megabytes:.0} MB reached Ollama (its 404 for a model it does not have; nothing changed)"),
        ),
        Ok(reply) if reply.status == 413 => Outcome::new(
            NAME,
            TITLE,
            Status::Fail,
            format!("413: the proxy refuses a {megabytes:.0} MB body"),
        )
        .hint(
            "Image chats and `ollama create` need large bodies. nginx: `client_max_body_size 0;` in the Ollama server.",
        ),
        Ok(reply) => Outcome::new(
            NAME,
            TITLE,
            Status::Fail,
            format!("{}, expected Ollama's 404 \"model not found\"", status_text(reply.status)),
        ),
    };
    took(outcome, &r.large_body)
}

/// Bursts of arrivals: pieces less than `gap` apart count as one.
pub fn bursts(arrivals: &[Duration], gap: Duration) -> usize {
    arrivals.windows(2).filter(|w| w[1].saturating_sub(w[0]) > gap).count() + usize::from(!arrivals.is_empty())
}

fn streaming(r: &Replies, o: &Options) -> Outcome {
    const NAME: &str = "streaming";
    const TITLE: &str = "streamed generation";
    let (Some(reply), Some(model)) = (&r.streaming, &o.model) else {
        return Outcome::new(
            NAME,
            TITLE,
            Status::Skip,
            "a tiny generation needs a model: `ollama-secure check ... --model NAME`",
        );
    };
    let reply = match reply {
        Err(why) => return unanswered(NAME, TITLE, why),
        Ok(reply) if reply.status == 404 && reply.body.contains("not found") => {
            let installed = r.models.as_ref().ok().filter(|m| m.status == 200).and_then(model_names);
            let hint = match installed {
                Some(names) if names.is_empty() => "This Ollama has no models yet.".to_string(),
                Some(names) => format!("This Ollama has: {}.", names.join(", ")),
                None => "The list of models could not be read (above).".to_string(),
            };
            return Outcome::new(NAME, TITLE, Status::Fail, format!("404: the model {model} is not installed")).hint(
                format!("{hint} Give one of them to --model, or install it on the server: `ollama pull {model}`."),
            );
        }
        Ok(reply) if reply.status != 200 => {
            return Outcome::new(NAME, TITLE, Status::Fail, status_text(reply.status)).hint(reply.body.clone());
        }
        Ok(reply) => reply,
    };
    if let Some(error) = &reply.body_error {
        return Outcome::new(NAME, TITLE, Status::Fail, format!("the stream broke off: {error}"));
    }
    let chunks = reply.body.lines().filter(|l| !l.trim().is_empty()).count();
    let Some(first) = reply.arrivals.first() else {
        return Outcome::new(NAME, TITLE, Status::Fail, "the response was empty");
    };
    let ttft = reply.elapsed + *first;
    let pieces = bursts(&reply.arrivals, Duration::from_millis(10));
    let detail = format!("first chunk after {} ms, {chunks} chunks in {pieces} burst(s)", ttft.as_millis());
    if chunks >= 3 && pieces == 1 {
        Outcome::new(NAME, TITLE, Status::Fail, format!("{detail}: everything arrived at once")).hint(
            "The proxy holds the stream back. nginx: `proxy_buffering off;` and `gzip off;` in the Ollama location; Caddy: `flush_interval -1`.",
        )
    } else {
        Outcome::new(NAME, TITLE, Status::Pass, detail)
    }
}

/// Is Ollama on this machine listening beyond loopback, where it can be
/// reached without the proxy's password?
/// Ollama's ports on this machine: `--ollama-port`, and those of the
/// servers on loopback a setup here balances over.
fn local_ports(o: &Options) -> Vec<u16> {
    let mut ports = vec![o.ollama_port];
    for url in &o.backends {
        let ip = url.host_str().and_then(|host| host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().ok());
        let local = ip.is_some_and(fields::is_loopback);
        if let (true, Some(port)) = (local, url.port_or_known_default())
            && !ports.contains(&port)
        {
            ports.push(port);
        }
    }
    ports
}

pub fn exposure(listeners: &[Listener], ports: &[u16]) -> Outcome {
    const NAME: &str = "exposure";
    const TITLE: &str = "Ollama reachable only through the proxy";
    let listening: Vec<u16> = ports.iter().copied().filter(|&port| listeners.iter().any(|l| l.port == port)).collect();
    let words = |ports: &[u16]| ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
    if listening.is_empty() {
        return Outcome::new(
            NAME,
            TITLE,
            Status::Skip,
            format!("nothing listens on port {} on this machine", words(ports)),
        );
    }
    let exposed: Vec<(u16, String)> = listening
        .iter()
        .filter_map(|&port| {
            let wide: Vec<String> = listeners
                .iter()
                .filter(|l| l.port == port && !fields::is_loopback(l.address))
                .map(|l| l.address.to_string())
                .collect();
            (!wide.is_empty()).then(|| (port, wide.join(", ")))
        })
        .collect();
    let Some((first, _)) = exposed.first() else {
        return Outcome::new(NAME, TITLE, Status::Pass, format!("port {} listens on loopback only", words(&listening)));
    };
    let said: Vec<String> = exposed.iter().map(|(port, on)| format!("port {port} also listens on {on}")).collect();
    Outcome::new(NAME, TITLE, Status::Fail, format!("{}: the password can be bypassed", said.join("; ")))
        .hint(crate::ollama::exposure_fix(*first))
}

/// Each Ollama server behind a proxy that balances over several: up (its
/// version and how many models) or down (why). The proxy leaves a down
/// one out, so requests still work; it is a failure all the same, for the
/// capacity it costs.
fn backends(r: &Replies) -> Option<Outcome> {
    const NAME: &str = "backends";
    const TITLE: &str = "every Ollama server behind the proxy answers";
    if r.backends.is_empty() {
        return None;
    }
    let mut up = Vec::new();
    let mut down = Vec::new();
    for backend in &r.backends {
        let address = backend.url.as_str().trim_end_matches('/').trim_start_matches("http://").to_string();
        let version = backend.version.as_ref().ok().filter(|reply| reply.status == 200).and_then(|reply| {
            serde_json::from_str::<serde_json::Value>(&reply.body).ok()?.get("version")?.as_str().map(str::to_string)
        });
        match (version, &backend.version) {
            (Some(version), _) => {
                let models = backend.models.as_ref().ok().filter(|reply| reply.status == 200).and_then(|reply| {
                    Some(serde_json::from_str::<serde_json::Value>(&reply.body).ok()?.get("models")?.as_array()?.len())
                });
                let models = models.map_or("its models unknown".to_string(), |n| {
                    format!("{n} model{}", if n == 1 { "" } else { "s" })
                });
                up.push(format!("{address} (Ollama {version}, {models})"));
            }
            (None, Ok(reply)) => down.push(format!("{address} ({}, not Ollama's answer)", status_text(reply.status))),
            (None, Err(why)) => down.push(format!("{address} ({why})")),
        }
    }
    let total = r.backends.len();
    if down.is_empty() {
        return Some(Outcome::new(NAME, TITLE, Status::Pass, format!("{total} of {total}: {}", up.join(", "))));
    }
    let mut said = format!("{} of {total} down: {}", down.len(), down.join(", "));
    if !up.is_empty() {
        said.push_str(&format!("; up: {}", up.join(", ")));
    }
    Some(Outcome::new(NAME, TITLE, Status::Fail, said).hint(
        "The proxy leaves a server out while it fails and sends its requests to the others, with less capacity. \
         Start Ollama there (reachable from this machine), or take it out of `upstream` and run `ollama-secure init` again.",
    ))
}

/// The certificate, judged from the answer without credentials (made with
/// trust verified).
fn tls(r: &Replies, o: &Options) -> Outcome {
    const NAME: &str = "tls";
    const TITLE: &str = "TLS certificate";
    let reply = match &r.no_credentials {
        Err(why) => {
            return Outcome::new(NAME, TITLE, Status::Fail, why.clone()).hint(
                "The certificate must be valid for the host name and signed by a trusted CA (--cacert for a private one).",
            );
        }
        Ok(reply) => reply,
    };
    match reply.peer_certificate.as_deref().and_then(|der| super::tls::days_left(der, r.now)) {
        Some(days) if days < 0 => Outcome::new(NAME, TITLE, Status::Fail, "expired"),
        Some(days) if days < 14 => {
            Outcome::new(NAME, TITLE, Status::Fail, format!("valid for the name, but expires in {days} days"))
                .hint("Renewal is not working: look at `certbot renew --dry-run` (nginx) or Caddy's log.")
        }
        Some(days) => Outcome::new(
            NAME,
            TITLE,
            Status::Pass,
            format!("valid for {}, expires in {days} days", o.url.host_str().unwrap_or("")),
        ),
        None => Outcome::new(NAME, TITLE, Status::Pass, "valid for the name (expiry not readable)"),
    }
}

fn redirect(r: &Replies, o: &Options) -> Option<Outcome> {
    const NAME: &str = "redirect";
    const TITLE: &str = "plain HTTP redirects to HTTPS";
    let outcome = match r.redirect.as_ref()? {
        Err(why) => Outcome::new(NAME, TITLE, Status::Fail, format!("{}: {why}", super::probe::redirect_url(o))),
        Ok(reply) if (300..400).contains(&reply.status) => {
            let location = reply.header("location").unwrap_or("").to_string();
            // A relative Location is resolved against the plain-HTTP URL asked.
            let target = super::probe::redirect_url(o).join(&location).ok();
            let (status, to) = (reply.status, &location);
            match target {
                Some(t) if t.scheme() != "https" => {
                    Outcome::new(NAME, TITLE, Status::Fail, format!("{status} to {to:?}, not https"))
                }
                Some(t) if t.host_str() != o.url.host_str() || t.port_or_known_default() != o.url.port_or_known_default() => {
                    Outcome::new(NAME, TITLE, Status::Fail, format!("{status} to {to}, another server than {}", o.url))
                        .hint("Clients that follow it send their password to that server: the redirect must keep the host name and go to the HTTPS port checked.")
                }
                Some(_) => Outcome::new(NAME, TITLE, Status::Pass, format!("{status} to {location}")),
                None => Outcome::new(NAME, TITLE, Status::Fail, format!("{status} to {to:?}, which is not a URL")),
            }
        }
        Ok(reply) => Outcome::new(
            NAME,
            TITLE,
            Status::Fail,
            format!("{}: plain HTTP is served, not redirected", status_text(reply.status)),
        )
        .hint("Passwords sent over plain HTTP can be read on the way."),
    };
    Some(outcome)
}

/// Every verdict, in the report's order.
pub fn judge(r: &Replies, o: &Options) -> Vec<Outcome> {
    let mut checks = Vec::new();
    if o.is_https() {
        checks.push(tls(r, o));
    }
    checks.push(no_credentials(r, o));
    checks.push(wrong_password(r, o));
    let version = version(r, o);
    let host = host_header(r, o, &version);
    checks.extend([
        version,
        advisories(r),
        models(r, o),
        role(r),
        host,
        large_body(r, o),
        streaming(r, o),
        exposure(&r.listeners, &local_ports(o)),
    ]);
    checks.extend(backends(r));
    checks.extend(redirect(r, o));
    checks.extend(caddy_admin(r, o));
    checks
}

/// A Caddy on this machine whose admin API is on TCP: it asks for no
/// password, so any local user can read the hashes and take the password
/// off. Judged only for a Caddy setup found here (`--answers`).
fn caddy_admin(r: &Replies, o: &Options) -> Option<Outcome> {
    const NAME: &str = "admin_api";
    const TITLE: &str = "Caddy's admin API";
    Some(match (o.caddy_admin.as_ref()?, &r.caddy_admin) {
        (AdminApi::Closed, _) => Outcome::new(NAME, TITLE, Status::Pass, "on a unix socket, or off"),
        (AdminApi::Tcp(address), Some(Ok(reply))) if reply.status == 200 => Outcome::new(
            NAME,
            TITLE,
            Status::Fail,
            format!("answers at {address} without a password: any user of this machine can read the hashes and rewrite the configuration"),
        )
        .hint(
            "Put it on a socket only Caddy's user can use, with a global option at the top of the Caddyfile: \
             `{ admin unix//run/caddy-admin.sock }` (`/var/lib/caddy/admin.sock` when systemd runs Caddy), \
             then restart Caddy; or `{ admin off }` (then every change needs a restart).",
        ),
        (AdminApi::Tcp(address), _) => {
            Outcome::new(NAME, TITLE, Status::Pass, format!("nothing answers at {address}, where the Caddyfile puts it"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn options(url: &str) -> Options {
        Options {
            url: url.parse().unwrap(),
            credentials: crate::system::Credentials::Basic("alice".into(), Secret::new("pw")),
            cacert_pem: None,
            timeout: Duration::from_secs(1),
            model: Some("tinyllama".into()),
            resolve: vec![],
            http_port: 80,
            ollama_port: 11434,
            body_bytes: 5 * 1024 * 1024,
            auth_socket: None,
            caddy_admin: None,
            error_log: None,
            backends: vec![],
        }
    }

    fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Result<HttpReply, String> {
        Ok(HttpReply {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.into(),
            elapsed: Duration::from_millis(2),
            ..Default::default()
        })
    }

    fn stream(chunks: usize, gap_ms: u64) -> Result<HttpReply, String> {
        let mut r = reply(200, &[], &"{\"response\":\"x\"}\n".repeat(chunks)).unwrap();
        r.arrivals = (0..chunks as u64).map(|i| Duration::from_millis(40 + i * gap_ms)).collect();
        Ok(r)
    }

    /// Replies of a correctly protected endpoint.
    fn healthy() -> Replies {
        Replies {
            no_credentials: reply(401, &[("www-authenticate", "Basic realm=\"Ollama\"")], ""),
            wrong_password: reply(401, &[], ""),
            version: reply(200, &[], "{\"version\":\"0.17.1\"}"),
            models: reply(200, &[], "{\"models\":[{\"name\":\"tinyllama:latest\"}]}"),
            large_body: reply(404, &[], "{\"error\":\"model 'ollama-secure-check-nonexistent' not found\"}"),
            role: reply(403, &[], &format!("{{\"error\":\"{}\"}}", crate::access::NEEDS_ADMIN)),
            streaming: Some(stream(6, 40)),
            redirect: None,
            listeners: vec![Listener { address: "127.0.0.1".parse().unwrap(), port: 11434, inode: 1 }],
            auth_socket: None,
            caddy_admin: None,
            error_log: None,
            backends: vec![],
            now: std::time::SystemTime::now(),
        }
    }

    fn verdict(replies: &Replies, options: &Options, name: &str) -> Outcome {
        judge(replies, options).into_iter().find(|o| o.name == name).unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn a_healthy_endpoint_passes_everything() {
        let o = options("http://ollama.example.com:8080");
        let outcomes = judge(&healthy(), &o);
        let names: Vec<&str> = outcomes.iter().map(|o| o.name).collect();
        assert_eq!(
            names,
            [
                "no_credentials",
                "wrong_password",
                "version",
                "advisories",
                "models",
                "role",
                "host_header",
                "large_body",
                "streaming",
                "exposure"
            ]
        );
        for outcome in &outcomes {
            assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
        }
        assert_eq!(verdict(&healthy(), &o, "streaming").detail, "first chunk after 42 ms, 6 chunks in 6 burst(s)");
    }

    const OUTSIDER: &str = r#"{"error":"forbidden: this server does not accept requests from your address"}"#;

    #[test]
    fn each_failure_is_caught_by_its_check_with_its_hint() {
        let o = options("http://ollama.example.com:8080");
        type Breaks = fn(&mut Replies);
        let table: &[(&str, Breaks, &str)] = &[
            ("no_credentials", |r| r.no_credentials = reply(200, &[], "{\"version\":\"0.13.0\"}"), "OPEN TO ANYONE"),
            ("no_credentials", |r| r.no_credentials = reply(200, &[], ""), "No site answers"),
            ("no_credentials", |r| r.no_credentials = reply(401, &[], ""), "without a `WWW-Authenticate: Basic`"),
            ("no_credentials", |r| r.no_credentials = reply(403, &[], ""), "proxy_set_header Host"),
            (
                "no_credentials",
                |r| r.no_credentials = Err("connection refused: nothing listens there".into()),
                "refused",
            ),
            ("no_credentials", |r| r.no_credentials = reply(500, &[], "<html>"), "connect() to unix:"),
            ("no_credentials", |r| r.no_credentials = reply(403, &[], OUTSIDER), "not in the answers' `allow_from`"),
            ("version", |r| r.version = reply(403, &[], OUTSIDER), "Run the check from an allowed address"),
            ("wrong_password", |r| r.wrong_password = reply(200, &[], ""), "a wrong password is accepted"),
            ("version", |r| r.version = reply(401, &[], ""), "Check the username (alice)"),
            ("version", |r| r.version = reply(502, &[], ""), "cannot reach Ollama"),
            ("version", |r| r.version = reply(200, &[], "<html>"), "not Ollama's /api/version"),
            ("host_header", |r| r.version = reply(403, &[], ""), "header_up Host"),
            ("advisories", |r| r.version = reply(200, &[], "{\"version\":\"0.17.0\"}"), "Upgrade Ollama to 0.17.1"),
            ("models", |r| r.models = reply(200, &[], "nope"), "not Ollama's model list"),
            ("large_body", |r| r.large_body = reply(413, &[], ""), "client_max_body_size 0"),
            ("role", |r| r.role = reply(200, &[], ""), "expected the proxy's 403 (user role) or Ollama's 404"),
            ("role", |r| r.role = reply(403, &[], ""), "expected the proxy's 403"),
            ("streaming", |r| r.streaming = Some(stream(6, 0)), "proxy_buffering off"),
            ("streaming", |r| r.streaming = Some(reply(404, &[], "model not found")), "ollama pull tinyllama"),
            (
                "exposure",
                |r| r.listeners.push(Listener { address: "0.0.0.0".parse().unwrap(), port: 11434, inode: 2 }),
                "OLLAMA_HOST=127.0.0.1:11434",
            ),
        ];
        for (name, breaks, words) in table {
            let mut replies = healthy();
            breaks(&mut replies);
            let outcome = verdict(&replies, &o, name);
            assert_eq!(outcome.status, Status::Fail, "{name}: {outcome:?}");
            let said = format!("{} {}", outcome.detail, outcome.hint.clone().unwrap_or_default());
            assert!(said.contains(words), "{name}: expected {words:?} in {said}");
        }
    }

    #[test]
    fn a_key_is_judged_as_a_key_and_an_admin_may_manage_models() {
        let mut o = options("http://ollama.example.com:8080");
        let key = crate::access::ApiKey::generate(&mut crate::credentials::OsEntropy);
        o.credentials = crate::system::Credentials::Bearer(key.text());
        let wrong = o.wrong_credentials();
        let crate::system::Credentials::Bearer(wrong) = wrong else { panic!("a key is checked as a key") };
        let wrong = crate::access::ApiKey::parse(wrong.expose()).unwrap();
        assert_eq!(wrong.id, key.id, "the same key ID with another secret, as a revoked key looks");
        assert_ne!(wrong.secret, key.secret);
        let mut replies = healthy();
        assert_eq!(verdict(&replies, &o, "wrong_password").title, "with a wrong or revoked key");
        assert_eq!(verdict(&replies, &o, "version").title, "with the key: version");
        replies.version = reply(401, &[], "");
        assert!(verdict(&replies, &o, "version").hint.unwrap().contains("keys list"));
        replies.role = reply(404, &[], "{\"error\":\"model not found\"}");
        let role = verdict(&replies, &o, "role");
        assert_eq!(role.status, Status::Pass);
        assert!(role.detail.contains("admin role"), "{role:?}");
    }

    #[test]
    fn a_500_names_a_missing_auth_socket_when_it_can() {
        let mut o = options("http://ollama.example.com:8080");
        o.auth_socket = Some("/run/ollama-secure-auth.sock".into());
        let mut replies = healthy();
        replies.no_credentials = reply(500, &[], "");
        replies.auth_socket = Some(SocketState::Missing);
        let hint = verdict(&replies, &o, "no_credentials").hint.unwrap();
        assert!(hint.contains("its socket /run/ollama-secure-auth.sock is missing"), "{hint}");
        replies.auth_socket = Some(SocketState::Listening);
        let hint = verdict(&replies, &o, "no_credentials").hint.unwrap();
        assert!(hint.contains("although its auth-only server's socket is in place"), "{hint}");
    }

    #[test]
    fn a_500_shows_the_last_error_of_the_proxy_log() {
        let o = options("http://ollama.example.com:8080");
        let mut replies = healthy();
        replies.no_credentials = reply(500, &[], "");
        let log = std::path::PathBuf::from("/var/log/nginx/error.log");
        let lines = "2026/12/03 10:00:00 [error] 7#7: *1 first\n2026/12/03 10:00:01 [error] 7#7: *2 connect() to unix:/run/x.sock failed (2: No such file or directory)\x1b[2J\n2026/12/03 10:00:01 [error] 7#7: *2 auth request unexpected status: 502 while sending to client\n2026/12/03 10:00:02 [notice] 7#7: signal process started\n";
        replies.error_log = Some((log.clone(), Ok(lines.as_bytes().to_vec())));
        let hint = verdict(&replies, &o, "no_credentials").hint.unwrap();
        assert!(
            hint.ends_with("The last error in /var/log/nginx/error.log:\n  2026/12/03 10:00:01 [error] 7#7: *2 connect() to unix:/run/x.sock failed (2: No such file or directory) [2J"),
            "{hint}"
        );
        replies.error_log = Some((log.clone(), Ok(b"[notice] started\n".to_vec())));
        let hint = verdict(&replies, &o, "no_credentials").hint.unwrap();
        assert!(
            hint.ends_with("/var/log/nginx/error.log (the proxy's error log) has no error in its last 64 KiB."),
            "{hint}"
        );
        replies.error_log = Some((log, Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))));
        let hint = verdict(&replies, &o, "no_credentials").hint.unwrap();
        assert!(
            hint.contains("The proxy's error log /var/log/nginx/error.log cannot be read: permission denied"),
            "{hint}"
        );
        let caddy = "{\"level\":\"info\",\"msg\":\"x\"}\n{\"level\":\"error\",\"msg\":\"dial tcp 127.0.0.1:11434: connect: connection refused\"}\n";
        replies.error_log = Some(("/var/log/caddy.log".into(), Ok(caddy.as_bytes().to_vec())));
        let hint = verdict(&replies, &o, "no_credentials").hint.unwrap();
        assert!(hint.ends_with("connect: connection refused\"}"), "{hint}");
        // Long lines are cut.
        let long = format!("[error] {}\n", "x".repeat(2000));
        replies.error_log = Some(("/l".into(), Ok(long.into_bytes())));
        let hint = verdict(&replies, &o, "no_credentials").hint.unwrap();
        assert!(hint.ends_with("x ...") && hint.len() < 1500, "{hint}");
    }

    #[test]
    fn a_model_that_is_not_installed_is_named_with_those_that_are() {
        let o = options("http://ollama.example.com");
        let mut replies = healthy();
        replies.streaming = Some(reply(404, &[], "{\"error\":\"model 'tinyllama' not found\"}"));
        let v = verdict(&replies, &o, "streaming");
        assert_eq!((v.status, v.detail.as_str()), (Status::Fail, "404: the model tinyllama is not installed"));
        assert!(v.hint.as_deref().unwrap().starts_with("This Ollama has: tinyllama:latest. Give one"), "{v:?}");
        replies.models = reply(200, &[], "{\"models\":[]}");
        assert!(verdict(&replies, &o, "streaming").hint.unwrap().starts_with("This Ollama has no models yet."));
    }

    #[test]
    fn a_server_that_does_not_answer_is_asked_once() {
        let o = options("http://ollama.example.com");
        let mut replies = healthy();
        replies.no_credentials = Err("no answer before the timeout".into());
        for r in [&mut replies.wrong_password, &mut replies.version, &mut replies.models, &mut replies.role] {
            *r = Err(NOT_SENT.into());
        }
        replies.large_body = Err(NOT_SENT.into());
        replies.streaming = Some(Err(NOT_SENT.into()));
        let outcomes = judge(&replies, &o);
        let failed: Vec<&str> = outcomes.iter().filter(|v| v.status == Status::Fail).map(|v| v.name).collect();
        assert_eq!(failed, ["no_credentials"]);
        let v = verdict(&replies, &o, "models");
        assert_eq!((v.status, v.detail.as_str()), (Status::Skip, "not sent: the first request got no answer (above)"));
    }

    #[test]
    fn https_adds_tls_and_redirect() {
        let o = options("https://ollama.example.com");
        let mut replies = healthy();
        replies.redirect = Some(reply(308, &[("location", "https://ollama.example.com/api/version")], ""));
        let outcomes = judge(&replies, &o);
        assert_eq!(outcomes.first().unwrap().name, "tls");
        assert_eq!(outcomes.last().unwrap().name, "redirect");
        assert_eq!(outcomes.last().unwrap().status, Status::Pass);
        // The default port, written out, is the same server.
        replies.redirect = Some(reply(301, &[("location", "https://ollama.example.com:443/x")], ""));
        assert_eq!(verdict(&replies, &o, "redirect").status, Status::Pass);
        for elsewhere in [
            "https://evil.example/api/version",
            "https://ollama.example.com:8443/api/version",
            "https://ollama.example.com.evil.example/",
        ] {
            replies.redirect = Some(reply(302, &[("location", elsewhere)], ""));
            let v = verdict(&replies, &o, "redirect");
            assert_eq!(v.status, Status::Fail, "{elsewhere}");
            assert!(v.detail.contains("another server"), "{elsewhere}: {}", v.detail);
        }
        // Relative ones resolve against the plain-HTTP URL: still http.
        for relative in ["/api/version", "//evil.example/"] {
            replies.redirect = Some(reply(302, &[("location", relative)], ""));
            assert!(verdict(&replies, &o, "redirect").detail.contains("not https"), "{relative}");
        }
        replies.redirect = Some(reply(200, &[], "{}"));
        assert_eq!(verdict(&replies, &o, "redirect").status, Status::Fail);
        replies.no_credentials = Err("TLS failed: invalid peer certificate: UnknownIssuer".into());
        let tls = verdict(&replies, &o, "tls");
        assert_eq!(tls.status, Status::Fail);
        assert!(tls.hint.unwrap().contains("--cacert"));
    }

    #[test]
    fn each_ollama_server_behind_the_proxy_is_reported_up_or_down() {
        use super::super::probe::BackendReplies;
        let backend = |url: &str, version: Result<HttpReply, String>, models: Result<HttpReply, String>| {
            BackendReplies { url: url.parse().unwrap(), version, models }
        };
        let mut r = healthy();
        assert_eq!(backends(&r), None, "one server: no such check");
        r.backends = vec![
            backend(
                "http://10.0.0.11:11434",
                reply(200, &[], "{\"version\":\"0.17.1\"}"),
                reply(200, &[], "{\"models\":[{},{}]}"),
            ),
            backend("http://127.0.0.1:11435/", reply(200, &[], "{\"version\":\"0.17.2\"}"), Err("timed out".into())),
        ];
        let up = backends(&r).unwrap();
        assert_eq!(
            (up.status, up.detail.as_str()),
            (
                Status::Pass,
                "2 of 2: 10.0.0.11:11434 (Ollama 0.17.1, 2 models), 127.0.0.1:11435 (Ollama 0.17.2, its models unknown)"
            )
        );
        r.backends.push(backend(
            "http://10.0.0.13:11434",
            Err("connection refused: nothing listens there".into()),
            Err(NOT_SENT.into()),
        ));
        r.backends.push(backend("http://10.0.0.14:11434", reply(403, &[], ""), Err(NOT_SENT.into())));
        let down = backends(&r).unwrap();
        assert_eq!(down.status, Status::Fail);
        assert!(
            down.detail.starts_with(
                "2 of 4 down: 10.0.0.13:11434 (connection refused: nothing listens there), 10.0.0.14:11434 (403"
            ),
            "{}",
            down.detail
        );
        assert!(down.detail.contains("; up: 10.0.0.11:11434"), "{}", down.detail);
        // The local one's port is among those the exposure check looks at.
        let mut o = options("http://127.0.0.1:8080");
        o.backends = r.backends.iter().map(|b| b.url.clone()).collect();
        assert_eq!(local_ports(&o), vec![11434, 11435]);
    }

    #[test]
    fn exposure_is_judged_from_listeners() {
        let l = |a: &str, port| Listener { address: a.parse().unwrap(), port, inode: 1 };
        assert_eq!(exposure(&[l("127.0.0.1", 8080)], &[11434]).status, Status::Skip);
        assert_eq!(exposure(&[l("127.0.0.1", 11434), l("::1", 11434)], &[11434]).status, Status::Pass);
        assert_eq!(exposure(&[l("::", 11434)], &[11434]).status, Status::Fail);
        // A second local server's port is judged too.
        let two = exposure(&[l("127.0.0.1", 11434), l("0.0.0.0", 11435)], &[11434, 11435]);
        assert_eq!(
            (two.status, two.detail.as_str()),
            (Status::Fail, "port 11435 also listens on 0.0.0.0: the password can be bypassed")
        );
    }

    #[test]
    fn bursts_group_close_arrivals() {
        let ms = Duration::from_millis;
        assert_eq!(bursts(&[], ms(10)), 0);
        assert_eq!(bursts(&[ms(100), ms(101), ms(103)], ms(10)), 1);
        assert_eq!(bursts(&[ms(100), ms(130), ms(160), ms(161)], ms(10)), 3);
    }

    #[test]
    fn a_caddy_admin_api_on_tcp_that_answers_fails_with_the_fix() {
        let mut o = options("http://ollama.example.com:8080");
        assert!(judge(&healthy(), &o).iter().all(|c| c.name != "admin_api"), "judged without a Caddy setup");
        o.caddy_admin = Some(AdminApi::Tcp("localhost:2019".into()));
        let mut r = healthy();
        r.caddy_admin = Some(reply(200, &[], "{\"apps\":{}}"));
        let open = verdict(&r, &o, "admin_api");
        assert_eq!(open.status, Status::Fail, "{open:?}");
        assert!(open.detail.contains("answers at localhost:2019 without a password"), "{open:?}");
        assert!(open.hint.unwrap_or_default().contains("admin unix//run/caddy-admin.sock"));
        r.caddy_admin = Some(Err("connection refused".into()));
        assert_eq!(verdict(&r, &o, "admin_api").status, Status::Pass);
        o.caddy_admin = Some(AdminApi::Closed);
        assert_eq!(verdict(&healthy(), &o, "admin_api").status, Status::Pass);
    }
}
