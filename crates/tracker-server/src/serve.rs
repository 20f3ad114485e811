//! The HTTP server loop: accept, cap the connections, time out slow and silent clients, and
//! shut down gracefully.
//!
//! `axum::serve` has none of the limits a public endpoint needs: measured, 2,000 connections
//! sending headers a byte at a time were never closed, idle connections stayed open for 300 s,
//! and 20,000 idle connections used up the process's file descriptors, after which every new
//! request timed out. Here each connection is served by hyper with a header timeout (which
//! also ends idle keep-alive connections) and a read timeout for silence, a cap on open
//! connections (over it, a connection is
//! closed as soon as it is accepted, so that the server keeps answering those it has), and the
//! peer's address as `ConnectInfo` for the handlers. Body reads have their own timeout and
//! memory budget (see `routes::track::read_body`).

use std::{future::Future, sync::Arc, time::Duration};

use axum::{extract::ConnectInfo, Router};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::ServiceExt;

/// The connection limits (`[server]`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time to receive a request's headers, counted from when the connection is ready for a
    /// request (so also how long an idle keep-alive connection is kept).
    pub header_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a little rather than spin, and go on.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Over the cap: closed at once (dropping the stream), counted.
            metrics::counter!(crate::metrics::CONNECTIONS_REFUSED).increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // No byte from the client for the header timeout: closed. hyper's own header timer
        // covers a request's headers once it knows the protocol; this also covers the first
        // bytes, which `auto` reads to tell HTTP/1 from HTTP/2 before any timer runs (a silent
        // connection was kept forever), and a body that stops arriving.
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_read_timeout(Some(limits.header_timeout));
        let stream = Box::pin(stream);
        let router = router.clone();
        let service = TowerToHyperService::new(tower::service_fn(
            move |request: hyper::Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request)
            },
        ));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
