//! What bounds a listener: a connection cap, the time a stopping server
//! waits for its connections, and the timeouts of an HTTP/1.1 connection
//! (shared by HTTPS publish and the core's control plane).

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// Longest a stopping listener waits for its connections to close before it
/// drops them: SIGTERM ends the process within about this, whatever clients
/// are connected.
pub const DRAIN: Duration = Duration::from_millis(800);

/// How often a full listener logs that it refuses connections.
const CAP_WARN_EVERY: Duration = Duration::from_secs(10);

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

/// Caps the open connections of one listener.
#[derive(Debug)]
pub struct ConnectionCap {
    what: &'static str,
    max: usize,
    permits: Arc<Semaphore>,
    last_warn: Mutex<Option<Instant>>,
}

impl ConnectionCap {
    /// A cap of `max` (at least 1) connections for the listener `what`.
    pub fn new(what: &'static str, max: usize) -> Self {
        let max = max.max(1);
        ConnectionCap {
            what,
            max,
            permits: Arc::new(Semaphore::new(max)),
            last_warn: Mutex::new(None),
        }
    }

    /// A permit for one more connection (hold it as long as the connection
    /// lives), or `None` when the listener is full: the caller drops the
    /// stream, which closes it.
    pub fn admit(&self, peer: SocketAddr) -> Option<OwnedSemaphorePermit> {
        match self.permits.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                let mut last = self.last_warn.lock().unwrap_or_else(|p| p.into_inner());
                if last.is_none_or(|t| t.elapsed() >= CAP_WARN_EVERY) {
                    *last = Some(Instant::now());
                    tracing::warn!(
                        listener = self.what,
                        max = self.max,
                        %peer,
                        "connection cap reached; closing new connections until some end"
                    );
                }
                None
            }
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
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
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN, all).await.is_err() {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_admits_up_to_max_and_frees_on_drop() {
        let cap = ConnectionCap::new("test", 2);
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let a = cap.admit(peer).unwrap();
        let _b = cap.admit(peer).unwrap();
        assert!(cap.admit(peer).is_none());
        assert_eq!(cap.open(), 2);
        drop(a);
        assert!(cap.admit(peer).is_some());
    }
}
