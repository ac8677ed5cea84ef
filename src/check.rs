//! Proving that a protected endpoint works, the way a client sees it.

/// A request error in words a user understands (no raw error chain).
pub fn describe_request_error(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let all = causes.join(": ").to_lowercase();
    if error.is_timeout() {
        "no answer before the timeout".to_string()
    } else if all.contains("connection refused") {
        "connection refused: nothing listens there".to_string()
    } else if all.contains("dns error") || all.contains("failed to lookup") || all.contains("name or service not known")
    {
        "the host name does not resolve (DNS)".to_string()
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        format!("TLS failed: {}", causes.last().cloned().unwrap_or_default())
    } else if error.is_connect() {
        format!("cannot connect: {}", causes.last().cloned().unwrap_or_default())
    } else {
        causes.last().cloned().unwrap_or_else(|| error.to_string())
    }
}
