//! The HTTP server loop: accept, cap the connections, time out slow and silent clients, and
//! shut down gracefully.
//!
//! `axum::serve` has none of the limits a public endpoint needs: measured, 2,000 connections
//! sending headers a byte at a time were never closed, idle connections stayed open for 300 s,
//! and 20,000 idle connections used up the process's file descriptors, after which every new
//! request timed out. Here each connection is served by hyper (HTTP/1.1) with a header
//! timeout that runs from the connection's first moment and again after each response (so it
//! also ends silent and idle keep-alive connections), a cap on open connections (over it, a connection is
//! closed as soon as it is accepted, so that the server keeps answering those it has), and the
//! peer's address as `ConnectInfo` for the handlers; requests whose head does not parse are
//! answered in the envelope (`head_errors`). Body reads have their own timeout and
//! memory budget (see `routes::track::read_body`).

use std::{future::Future, sync::Arc, time::Duration};

use axum::{extract::ConnectInfo, response::IntoResponse, Router};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::ServiceExt;

use crate::{error::ApiError, head_errors::HeadErrors};

/// The connection limits (`[server]`).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections one client address (an IPv6 client's network of `ipv6_prefix` bits)
    /// may hold open; 0: no limit. Peers in `trusted` are not limited (a proxy carries
    /// everyone's connections).
    pub max_per_ip: usize,
    /// The trusted proxies.
    pub trusted: Vec<ipnet::IpNet>,
    /// `rate_limit.ipv6_prefix`.
    pub ipv6_prefix: u8,
    /// Time to receive a request's headers, counted from when the connection is ready for a
    /// request (so also how long an idle keep-alive connection is kept).
    pub header_timeout: Duration,
    /// Largest request head read (hyper's read buffer; at least 8192).
    pub max_header_bytes: usize,
}

/// Open connections per client address, so that one address cannot hold every connection
/// (4,200 idle connections from one address used to lock everyone else out).
#[derive(Debug, Default)]
struct PerAddress {
    open: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One connection counted against its address; uncounted when dropped.
struct AddressSlot {
    table: Arc<PerAddress>,
    addr: std::net::IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, addr: std::net::IpAddr, max: usize) -> Option<AddressSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(addr).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: self.clone(),
            addr,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.addr) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.addr);
            }
        }
    }
}

/// About the bytes of a request's line and headers as sent.
fn head_len<B>(request: &hyper::Request<B>) -> usize {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    request
        .headers()
        .iter()
        .fold(uri + 16, |sum, (name, value)| {
            sum + name.as_str().len() + value.len() + 4
        })
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // HTTP/1.1 only: browsers speak HTTP/2 only over TLS, which a proxy in front terminates,
    // and hyper's header timer runs from a connection's first moment only when the protocol is
    // known (with `auto`, a silent connection sat in protocol detection forever; a read
    // timeout on the socket to cover that cost 2.5–5 µs a request, 15–20 % of the no-op).
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = Arc::new(PerAddress::default());
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
        let peer_ip = match peer.ip() {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
            v4 => v4,
        };
        // As with the rate limits: without declared proxies, a loopback or private peer may
        // be an undeclared proxy carrying everyone's connections, so it is not capped.
        let exempt = limits.trusted.iter().any(|net| net.contains(&peer_ip))
            || (limits.trusted.is_empty() && crate::rate_limit::may_be_a_proxy(peer_ip));
        let address_slot = if limits.max_per_ip == 0 || exempt {
            None
        } else {
            let bucket = crate::rate_limit::bucket_of(peer_ip, limits.ipv6_prefix);
            match per_address.take(bucket, limits.max_per_ip) {
                Some(taken) => Some(taken),
                None => {
                    metrics::counter!(crate::metrics::CONNECTIONS_REFUSED).increment(1);
                    drop(stream);
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let max_head = limits.max_header_bytes;
        let service = TowerToHyperService::new(tower::service_fn(
            move |request: hyper::Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                let router = router.clone();
                async move {
                    // hyper refuses a head only once its read buffer is full and the head
                    // still incomplete, which lets heads of up to about twice the limit
                    // through when they arrive fast: measure what was read.
                    if head_len(&request) > max_head {
                        return Ok(ApiError::HeadersTooLarge.into_response());
                    }
                    router.oneshot(request).await
                }
            },
        ));
        let connection = graceful
            .watch(builder.serve_connection(TokioIo::new(HeadErrors::new(stream)), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection ended with an error");
            }
            drop(slot);
            drop(address_slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
