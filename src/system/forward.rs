//! `connect`'s forwarder: an HTTP/1 server on a loopback listener (hyper)
//! whose every request goes on to the server through reqwest's async
//! client, with the headers `crate::connect` decides. Both bodies stream:
//! a request body goes upstream as it arrives and each piece of an answer
//! (a token) reaches the client as it comes, so nothing is held in memory.
//! A client that goes away drops its request, which closes the upstream one.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body as _, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use reqwest::Url;
use reqwest::header::HeaderValue;

/// Where and how requests go.
pub struct Forward {
    pub server: Url,
    /// Sent with every request instead of the client's own.
    pub authorization: HeaderValue,
    /// Extra roots (PEM) beside the system's, from `--cacert`.
    pub extra_roots_pem: Option<Vec<u8>>,
    /// Host names connected to these addresses, whatever DNS says.
    pub resolve: Vec<(String, IpAddr)>,
}

/// Time to open a connection to the server; answers themselves may take
/// as long as a generation does.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn client(forward: &Forward) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        // Bodies pass as they are: a client that asked for gzip decodes it.
        .no_gzip()
        // A redirect is the client's to follow (with our credentials it
        // would go wherever the server says).
        .redirect(reqwest::redirect::Policy::none());
    for (host, ip) in &forward.resolve {
        builder = builder.resolve(host, SocketAddr::new(*ip, 0));
    }
    if let Some(pem) = &forward.extra_roots_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("not a PEM certificate: {e}"))? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

/// The loopback listener, bound before the forwarder starts so that a port
/// in use is said at once.
pub fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address)
}

/// Serves the listener until the process ends (SIGINT, SIGTERM).
pub fn serve(listener: TcpListener, forward: Forward) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the forwarder: {e}"))?;
    runtime.block_on(async move {
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let shared = Arc::new((client(&forward)?, forward));
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                // Out of file descriptors, say: the next accept may work.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| forward_one(shared.clone(), request));
                // A connection's errors are its own (a client that went away).
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    })
}

async fn forward_one(
    shared: Arc<(reqwest::Client, Forward)>,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<reqwest::Body>, Infallible> {
    let (client, forward) = (&shared.0, &shared.1);
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = crate::connect::upstream_url(&forward.server, path);
    let headers = crate::connect::request_headers(&parts.headers, &forward.authorization);
    let mut upstream = client.request(parts.method, url).headers(headers);
    // A request without a body stays without one (no `Content-Length: 0`).
    if !body.is_end_stream() {
        upstream = upstream.body(reqwest::Body::wrap(body));
    }
    let answer = match upstream.send().await {
        Ok(answer) => {
            let mut answer = hyper::Response::<reqwest::Body>::from(answer);
            *answer.headers_mut() = crate::connect::response_headers(answer.headers());
            answer
        }
        Err(error) => {
            let why = super::http::describe_request_error(&error);
            let mut answer =
                hyper::Response::new(reqwest::Body::from(crate::connect::unreachable_body(&forward.server, &why)));
            *answer.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            answer.headers_mut().insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            answer
        }
    };
    Ok(answer)
}
