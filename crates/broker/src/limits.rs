//! What bounds a listener: the time a stopping server waits for its
//! connections, and the timeouts of an HTTP/1.1 connection (shared by HTTPS
//! publish and the core's control plane). The connection cap and its accept
//! loop are `gopigo-listen`'s.

use std::error::Error as StdError;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Longest a stopping listener waits for its connections to close before it
/// drops them: SIGTERM ends the process within about this, whatever clients
/// are connected.
pub const DRAIN: Duration = Duration::from_millis(800);

/// Bounds of an HTTP/1.1 listener.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Time allowed for a request's headers, counted from when the
    /// connection starts waiting for them: it is also how long a kept-alive
    /// connection may sit idle between requests.
    pub header_read_timeout: Duration,
    /// Time allowed for a whole request once its headers are in: reading
    /// the body and answering (408 past it).
    pub request_timeout: Duration,
    /// Most open connections; one past it is closed at once.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 256,
        }
    }
}

/// Whether a body-read error (or one it wraps) is a length-limit one: 413
/// then, any other (bad chunked encoding, a body cut short) is the client's
/// malformed request: 400.
pub fn is_length_limit(e: &(dyn StdError + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// How often a serving broker hands freed memory back to the system.
pub const RELEASE_EVERY: Duration = Duration::from_secs(2);

/// Hands memory the allocator holds but no longer uses back to the system.
/// glibc keeps freed large buffers (a flood's 128 KiB payloads) in its
/// arenas; without this, RSS after a flood stays near its peak.
#[allow(unsafe_code)]
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Resolves once `stop` is true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Waits up to [`DRAIN`] for `tasks` to end, then aborts the rest.
pub async fn drain<T: 'static>(tasks: &mut JoinSet<T>) {
    gopigo_listen::drain(tasks, DRAIN).await;
}

/// Serves one HTTP/1.1 connection with the header-read (and idle) timeout
/// of `limits` until the peer leaves or `stop` turns true; then it finishes
/// the request in progress, for at most [`DRAIN`].
pub async fn serve_http_connection<I, S, B>(
    io: I,
    service: S,
    limits: &HttpLimits,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
        }
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, conn).await;
        }
    }
}
