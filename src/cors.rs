//! What the proxy answers a browser's CORS preflight from an origin in
//! `cors_origins` (the origins themselves are `fields::Origin`). The proxy
//! answers it before authentication, since browsers never send credentials
//! with a preflight; every other request still needs them.

/// The methods Ollama's API uses (`DELETE /api/delete`), besides `OPTIONS`.
pub const ALLOW_METHODS: &str = "GET, HEAD, POST, DELETE";

/// The request headers a page may send: the credentials (`Authorization`
/// for Basic and Bearer, `X-API-Key`), the body's type, and those Ollama
/// itself allows (server/routes.go), which the OpenAI SDKs send
/// (`X-Stainless-*`). A header a browser asks for beyond these fails its
/// preflight, as it would against Ollama directly.
pub const ALLOW_HEADERS: &str = "Authorization, X-API-Key, Content-Type, Accept, User-Agent, X-Requested-With, \
X-Stainless-Lang, X-Stainless-Package-Version, X-Stainless-OS, X-Stainless-Arch, X-Stainless-Retry-Count, \
X-Stainless-Runtime, X-Stainless-Runtime-Version, X-Stainless-Async, X-Stainless-Helper-Method, \
X-Stainless-Poll-Helper, X-Stainless-Custom-Poll-Interval, X-Stainless-Timeout";

/// How long a browser may reuse a preflight's answer: 2 hours, Chromium's
/// own ceiling.
pub const MAX_AGE_SECS: u32 = 7200;

/// The answer to a preflight from an origin not in `cors_origins`, in
/// Ollama's error shape; no single quotes or backticks (the templates quote it so).
pub const REFUSED_BODY: &str =
    r#"{"error":"forbidden: this server does not accept requests from the origin of this page (see cors_origins)"}"#;
