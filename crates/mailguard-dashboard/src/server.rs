//! The HTTP server: hyper's HTTP/1.1 connection handling on a small tokio runtime, with
//! every resource an unauthenticated peer can make it spend bounded.
//!
//! - a request head larger than [`Limits::max_head_bytes`] or with more than
//!   [`Limits::max_headers`] lines is refused by hyper's parser (431/400), never buffered;
//! - a head must arrive within [`Limits::head_timeout`] (hyper's header read timeout,
//!   also the keep-alive idle limit); a body within [`Limits::body_timeout`], at most
//!   [`MAX_BODY`] bytes; a connection lives at most [`Limits::connection_lifetime`];
//! - at most [`Limits::max_connections`] connections are open: a connection is a task on
//!   two runtime threads, not a thread, so slow peers cost a few KB each; one over the
//!   limit is closed at once;
//! - the application (store reads, PBKDF2) runs on at most [`Limits::workers`] blocking
//!   threads.
//!
//! Why hyper: it is the maintained HTTP implementation of the Rust ecosystem (it underlies
//! axum, reqwest and most Rust servers) and exposes exactly the limits above; axum would
//! only add a router the dashboard already has.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use crate::app::App;
use crate::http::{Request, Response, MAX_BODY, SECURITY_HEADERS};
use crate::router;

/// What one dashboard process may spend on its peers.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_head_bytes: usize,
    pub max_headers: usize,
    pub head_timeout: Duration,
    pub body_timeout: Duration,
    pub connection_lifetime: Duration,
    pub workers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            connection_lifetime: Duration::from_secs(120),
            workers: 4,
        }
    }
}

/// Serves `listener` until the process ends.
pub fn run(listener: std::net::TcpListener, app: Arc<App>, limits: Limits) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(limits.workers)
        .thread_keep_alive(Duration::from_secs(3600))
        .thread_name("mailguard-dashboard")
        .enable_io()
        .enable_time()
        .build()?;
    rt.block_on(accept_loop(listener, app, limits))
}

async fn accept_loop(
    listener: std::net::TcpListener,
    app: Arc<App>,
    limits: Limits,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .max_buf_size(limits.max_head_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let mut warned = false;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and the like: wait rather than spin.
                eprintln!("mailguard dashboard: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            if !warned {
                eprintln!(
                    "mailguard dashboard: {} connections open, refusing more until some close",
                    limits.max_connections
                );
                warned = true;
            }
            drop(stream);
            continue;
        };
        warned = false;
        let _ = stream.set_nodelay(true);
        let (app, builder) = (Arc::clone(&app), Arc::clone(&builder));
        let body_timeout = limits.body_timeout;
        let lifetime = limits.connection_lifetime;
        tokio::spawn(async move {
            let service = service_fn(move |rq| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(answer(app, rq, peer, body_timeout).await) }
            });
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(lifetime, conn).await;
            drop(permit);
        });
    }
}

fn plain(status: u16, text: &str) -> Response {
    Response::text(status, "text/plain; charset=utf-8", format!("{text}\n"))
}

/// Reads the body (bounded in size and time), runs the application on a blocking worker
/// (a panic becomes a 500) and adds the security headers.
async fn answer(
    app: Arc<App>,
    rq: hyper::Request<Incoming>,
    peer: SocketAddr,
    body_timeout: Duration,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = rq.into_parts();
    let method = parts.method.as_str().to_owned();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let response = if declared.is_some_and(|n| n > MAX_BODY as u64) {
        plain(413, "request body too large")
    } else {
        match tokio::time::timeout(body_timeout, Limited::new(body, MAX_BODY).collect()).await {
            Err(_) => plain(408, "request body not received in time"),
            Ok(Err(_)) => plain(413, "request body too large"),
            Ok(Ok(collected)) => {
                let headers = parts
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                let req = Request::new(
                    &method,
                    &target,
                    headers,
                    collected.to_bytes().to_vec(),
                    Some(peer.ip()),
                );
                let handled = tokio::task::spawn_blocking(move || {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        router::handle(&app, &req)
                    }))
                })
                .await;
                match handled {
                    Ok(Ok(r)) => r,
                    _ => plain(500, "internal error"),
                }
            }
        }
    };
    if response.status >= 500 {
        eprintln!(
            "mailguard dashboard: {method} {} -> {}",
            target.split('?').next().unwrap_or(""),
            response.status
        );
    }
    let mut out = hyper::Response::builder().status(response.status);
    for (k, v) in response
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(SECURITY_HEADERS)
    {
        out = out.header(k, v);
    }
    out.body(Full::new(Bytes::from(response.body)))
        .unwrap_or_else(|_| {
            let mut r = hyper::Response::new(Full::new(Bytes::from_static(b"internal error\n")));
            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
}
