//! The dashboard's listener: accepts connections up to a cap, does the TLS
//! handshake (when configured) inside each connection's task with a
//! timeout, and serves HTTP/1.1 with a header-read timeout that also closes
//! idle keep-alive connections. On shutdown every connection is asked to
//! close, WebSockets and video streams end, and whatever is left after
//! [`Limits::drain`] is dropped, so the process exits promptly whatever its
//! clients do.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use gopigo_listen::{CappedListener, Refusal};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Bounds of the listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// Longest wait for a request's headers, including the wait for the
    /// next request on an idle keep-alive connection.
    pub header_timeout: Duration,
    /// Longest TLS handshake.
    pub handshake_timeout: Duration,
    /// How long connections get to close after shutdown before they are dropped.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            header_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            drain: Duration::from_millis(800),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then cancels
/// `stop` (which ends WebSockets and streams) and returns within
/// [`Limits::drain`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    stop: CancellationToken,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = CappedListener::new(
        listener,
        "dashboard",
        limits.max_connections,
        Refusal::Close,
    );
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            (tcp, peer, permit) = listener.accept() => {
                let _ = tcp.set_nodelay(true);
                let (app, stop, acceptor, limits) = (app.clone(), stop.clone(), acceptor.clone(), limits.clone());
                conns.spawn(async move {
                    let _permit = permit;
                    let span = tracing::debug_span!("dashboard connection", %peer);
                    let _ = tracing::Instrument::instrument(
                        connection(tcp, app, acceptor, &limits, stop),
                        span,
                    )
                    .await;
                });
            }
        }
    }
    stop.cancel();
    gopigo_listen::drain(&mut conns, limits.drain).await;
    Ok(())
}

/// One connection: TLS (if any), then HTTP/1.1 with upgrades.
async fn connection(
    tcp: TcpStream,
    app: Router,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    limits: &Limits,
    stop: CancellationToken,
) {
    match acceptor {
        None => http(tcp, app, limits, stop).await,
        Some(acceptor) => {
            let handshake = tokio::select! {
                r = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)) => r,
                _ = stop.cancelled() => return,
            };
            match handshake {
                Ok(Ok(stream)) => http(stream, app, limits, stop).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

async fn http<S>(io: S, app: Router, limits: &Limits, stop: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| tower::ServiceExt::oneshot(app.clone(), req));
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(64 * 1024)
        .header_read_timeout(limits.header_timeout)
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(hyper_util::rt::TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "dashboard connection ended");
    }
}
