//! `usage`: requests, bytes and answers per credential and endpoint, from
//! the access log our site writes (nginx's JSON lines, or Caddy's JSON
//! access log with the credential in a response header). Pure: the command
//! reads the log (bounded) and prints.

use std::collections::BTreeMap;

use serde::Serialize;

/// One request, as either proxy logged it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Seconds since the epoch.
    pub time: f64,
    /// `user:NAME` or `key:NAME`; empty for requests without valid credentials.
    pub credential: String,
    pub role: String,
    pub path: String,
    pub status: u16,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// A line of either log; `None` for anything else (a line cut by the
/// bounded read, another program's line).
pub fn parse_line(line: &str) -> Option<Request> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let number = |v: &serde_json::Value| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
    if let Some(request) = v.get("request") {
        // Caddy: the credential and role come from our response header.
        let header = v["resp_headers"]["X-Ollama-Secure-Credential"][0].as_str().unwrap_or_default();
        let (credential, role) = header.split_once(' ').unwrap_or(("", ""));
        let uri = request["uri"].as_str()?;
        return Some(Request {
            time: number(&v["ts"])?,
            credential: credential.to_string(),
            role: role.to_string(),
            path: uri.split('?').next().unwrap_or_default().to_string(),
            status: u16::try_from(v["status"].as_u64()?).ok()?,
            bytes_sent: v["size"].as_u64().unwrap_or(0),
            bytes_received: v["bytes_read"].as_u64().unwrap_or(0),
        });
    }
    Some(Request {
        time: number(&v["time"])?,
        credential: v["credential"].as_str()?.to_string(),
        role: v["role"].as_str().unwrap_or_default().to_string(),
        path: v["path"].as_str()?.to_string(),
        status: u16::try_from(v["status"].as_u64()?).ok()?,
        bytes_sent: v["bytes_sent"].as_u64().unwrap_or(0),
        bytes_received: v["bytes_received"].as_u64().unwrap_or(0),
    })
}

/// An endpoint as the summary groups it: blobs by their folder.
fn endpoint(path: &str) -> String {
    if path.starts_with("/api/blobs/") { "/api/blobs/*".to_string() } else { path.to_string() }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Row {
    pub credential: String,
    pub role: String,
    pub endpoint: String,
    pub requests: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Answers by class: "2xx", "3xx", "4xx", "5xx".
    pub status: BTreeMap<String, u64>,
}

/// The requests since `since` (seconds since the epoch), summed per
/// credential, role and endpoint, in that order.
pub fn summarize(requests: impl IntoIterator<Item = Request>, since: f64) -> Vec<Row> {
    let mut rows: BTreeMap<(String, String, String), Row> = BTreeMap::new();
    for r in requests.into_iter().filter(|r| r.time >= since) {
        let credential = if r.credential.is_empty() { "(no valid credentials)".to_string() } else { r.credential };
        let key = (credential.clone(), r.role.clone(), endpoint(&r.path));
        let row = rows.entry(key).or_insert_with(|| Row {
            credential,
            role: r.role.clone(),
            endpoint: endpoint(&r.path),
            ..Row::default()
        });
        row.requests += 1;
        row.bytes_sent += r.bytes_sent;
        row.bytes_received += r.bytes_received;
        *row.status.entry(format!("{}xx", r.status / 100)).or_default() += 1;
    }
    rows.into_values().collect()
}

/// The rows as a table for a terminal.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<28} {:<6} {:<26} {:>8} {:>12} {:>12}  answers\n",
        "credential", "role", "endpoint", "requests", "bytes out", "bytes in"
    );
    for row in rows {
        let answers: Vec<String> = row.status.iter().map(|(class, n)| format!("{class} {n}")).collect();
        out.push_str(&format!(
            "{:<28} {:<6} {:<26} {:>8} {:>12} {:>12}  {}\n",
            row.credential,
            if row.role.is_empty() { "-" } else { &row.role },
            row.endpoint,
            row.requests,
            row.bytes_sent,
            row.bytes_received,
            answers.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_logs_are_read_and_summed_per_credential_and_endpoint() {
        let nginx = r#"{"time":1796000000.123,"credential":"key:ci","role":"user","method":"POST","path":"/api/chat","status":200,"bytes_sent":512,"bytes_received":90}"#;
        let refused = r#"{"time":1796000001.0,"credential":"key:ci","role":"user","method":"POST","path":"/api/pull","status":403,"bytes_sent":300,"bytes_received":20}"#;
        let anonymous = r#"{"time":1796000002.0,"credential":"","role":"user","method":"GET","path":"/api/tags","status":401,"bytes_sent":180,"bytes_received":70}"#;
        let caddy = r#"{"level":"info","ts":1796000003.5,"logger":"http.log.access","msg":"handled request","request":{"method":"GET","uri":"/api/tags?x=1","headers":{}},"bytes_read":0,"user_id":"alice","duration":0.001,"size":120,"status":200,"resp_headers":{"X-Ollama-Secure-Credential":["user:alice admin"]}}"#;
        let old = r#"{"time":1.0,"credential":"user:bob","role":"user","method":"GET","path":"/","status":200,"bytes_sent":1,"bytes_received":1}"#;
        let lines = [nginx, nginx, refused, anonymous, caddy, old, "not json", r#"{"time": 5}"#];
        let requests: Vec<Request> = lines.iter().filter_map(|l| parse_line(l)).collect();
        assert_eq!(requests.len(), 6);
        let rows = summarize(requests, 1_795_000_000.0);
        let view: Vec<(&str, &str, &str, u64, u64)> = rows
            .iter()
            .map(|r| (r.credential.as_str(), r.role.as_str(), r.endpoint.as_str(), r.requests, r.bytes_sent))
            .collect();
        assert_eq!(
            view,
            [
                ("(no valid credentials)", "user", "/api/tags", 1, 180),
                ("key:ci", "user", "/api/chat", 2, 1024),
                ("key:ci", "user", "/api/pull", 1, 300),
                ("user:alice", "admin", "/api/tags", 1, 120),
            ]
        );
        assert_eq!(rows[1].status, BTreeMap::from([("2xx".to_string(), 2)]));
        assert_eq!(rows[2].status, BTreeMap::from([("4xx".to_string(), 1)]));
        assert!(table(&rows).contains("key:ci"));
    }
}
