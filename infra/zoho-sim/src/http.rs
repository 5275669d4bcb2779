//! Serving an axum router over HTTP/1.1 with a header-read timeout, which `axum::serve` lacks: a
//! client that opens a connection and sends its request line or headers slowly (or idles between
//! keep-alive requests) is cut off after the timeout instead of holding the connection for ever.
//! The simulator serves with it, and so does `tds up`.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

/// How long a client may take to send a request's headers (and may idle between requests).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` and serves `app` on each, for as long as the task runs; a
/// connection whose request headers take longer than `header_timeout` is closed.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, header_timeout: Duration) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                eprintln!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}
