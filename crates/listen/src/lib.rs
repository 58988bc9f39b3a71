//! The accept loop every listener of the project shares.
//!
//! A listener holds at most a fixed number of connections, so that a flood
//! of peers can never use up the process's file descriptors or memory.
//! [`CappedListener::accept`] owns that bound: it accepts, hands out one
//! [`Permit`] per admitted connection (held as long as the connection
//! lives), and answers every connection past the cap with the listener's
//! [`Refusal`] without waiting for the peer. Accept errors (out of file
//! descriptors and the like) are logged and backed off, never fatal.
//! [`drain`] ends a listener's connection tasks on shutdown within a bound.
//!
//! Users: the broker's MQTT and HTTPS-publish listeners and the core's
//! control plane (refusal: close), the camera's MJPEG server (refusal: a
//! 503 answer) and the dashboard (refusal: close).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// How often a full listener logs that it refuses connections: a flood
/// past the cap must not flood the log too.
const CAP_WARN_EVERY: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (out of file descriptors and the like),
/// so that a persistent error does not spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Room for one connection; the connection's slot frees when it drops.
pub type Permit = OwnedSemaphorePermit;

/// What a connection past the cap gets before it is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Closed at once. For TLS listeners (nothing can be said before a
    /// handshake the listener will not spend time on) and plain ones whose
    /// clients retry by themselves.
    Close,
    /// These bytes (a whole HTTP response, say) are written if the socket
    /// takes them at once, then the connection is closed. Never waits for
    /// the peer.
    Answer(Vec<u8>),
}

impl Refusal {
    fn apply(&self, stream: TcpStream) {
        match self {
            Refusal::Close => drop(stream),
            Refusal::Answer(bytes) => {
                // Read what already arrived, so that closing sends FIN
                // rather than RST and the peer can read the answer.
                let mut sink = [0u8; 4096];
                let _ = stream.try_read(&mut sink);
                let _ = stream.try_write(bytes);
            }
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
    /// A cap of `max` (at least 1) connections for the listener named
    /// `what` in the log.
    pub fn new(what: &'static str, max: usize) -> Self {
        let max = max.max(1);
        ConnectionCap {
            what,
            max,
            permits: Arc::new(Semaphore::new(max)),
            last_warn: Mutex::new(None),
        }
    }

    /// A permit for one more connection, or `None` when the listener is
    /// full (logged at most every [`CAP_WARN_EVERY`]).
    pub fn admit(&self, peer: SocketAddr) -> Option<Permit> {
        match self.permits.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                self.warn_full(peer);
                None
            }
        }
    }

    fn warn_full(&self, peer: SocketAddr) {
        let mut last = self.last_warn.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= CAP_WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                listener = self.what,
                max = self.max,
                %peer,
                "connection cap reached; refusing new connections until some end"
            );
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    /// Connections allowed open at once; one more is refused.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// A bound listener with a connection cap and the refusal that peers past
/// it get.
#[derive(Debug)]
pub struct CappedListener {
    listener: TcpListener,
    cap: ConnectionCap,
    refusal: Refusal,
}

impl CappedListener {
    /// Wraps `listener` (named `what` in the log) so that at most `max`
    /// connections hold a permit at once.
    pub fn new(listener: TcpListener, what: &'static str, max: usize, refusal: Refusal) -> Self {
        CappedListener {
            listener,
            cap: ConnectionCap::new(what, max),
            refusal,
        }
    }

    /// The next admitted connection with its permit. Connections past the
    /// cap are refused here and failed accepts backed off, so this only
    /// returns a connection to serve. Cancel-safe (no connection is lost
    /// when the future is dropped), so it can sit in a `select!`.
    pub async fn accept(&self) -> (TcpStream, SocketAddr, Permit) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(listener = self.cap.what, error = %e, "accept failed; backing off");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            match self.cap.admit(peer) {
                Some(permit) => return (stream, peer, permit),
                None => {
                    self.refusal.apply(stream);
                    tracing::debug!(listener = self.cap.what, %peer, "connection refused: cap reached");
                }
            }
        }
    }

    /// The cap and its count of open connections.
    pub fn cap(&self) -> &ConnectionCap {
        &self.cap
    }

    /// Where the listener is bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Waits up to `within` for `tasks` to end, then aborts the rest and waits
/// for them to unwind, so that a stopping server returns promptly whatever
/// its peers do.
pub async fn drain<T: 'static>(tasks: &mut JoinSet<T>, within: Duration) {
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(within, all).await.is_err() {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

    #[test]
    fn a_cap_of_zero_still_admits_one() {
        let cap = ConnectionCap::new("test", 0);
        assert_eq!(cap.max(), 1);
        assert!(cap.admit("127.0.0.1:1".parse().unwrap()).is_some());
    }

    async fn listener(max: usize, refusal: Refusal) -> (CappedListener, SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        (CappedListener::new(l, "test", max, refusal), addr)
    }

    /// Reads what the listener sent until it closed (EOF or reset).
    async fn read_to_close(c: &mut TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut got)).await;
        got
    }

    #[tokio::test]
    async fn a_peer_past_the_cap_is_closed_and_a_freed_slot_admits_the_next() {
        let (l, addr) = listener(1, Refusal::Close).await;
        let l = Arc::new(l);
        let _first = TcpStream::connect(addr).await.unwrap();
        let (_s, _, permit) = l.accept().await;
        assert_eq!(l.cap().open(), 1);
        // The second peer is refused inside accept, which goes on waiting.
        let mut second = TcpStream::connect(addr).await.unwrap();
        let waiting = l.clone();
        let next = tokio::spawn(async move {
            let (_s, peer, _p) = waiting.accept().await;
            peer
        });
        assert!(
            read_to_close(&mut second).await.is_empty(),
            "closed, nothing said"
        );
        assert!(!next.is_finished(), "a refused peer is never handed out");
        drop(permit);
        assert_eq!(l.cap().open(), 0);
        let third = TcpStream::connect(addr).await.unwrap();
        assert_eq!(
            next.await.unwrap(),
            third.local_addr().unwrap(),
            "admitted once a slot freed"
        );
    }

    #[tokio::test]
    async fn a_peer_past_the_cap_gets_the_answer_then_eof() {
        let answer = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec();
        let (l, addr) = listener(1, Refusal::Answer(answer.clone())).await;
        let _first = TcpStream::connect(addr).await.unwrap();
        let (_s, _, _permit) = l.accept().await;
        let mut second = TcpStream::connect(addr).await.unwrap();
        second.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let _waiting = tokio::spawn(async move { l.accept().await });
        assert_eq!(read_to_close(&mut second).await, answer);
    }

    #[tokio::test(start_paused = true)]
    async fn drain_aborts_tasks_that_outlive_it() {
        let mut tasks = JoinSet::new();
        tasks.spawn(async {});
        tasks.spawn(std::future::pending::<()>());
        let t0 = tokio::time::Instant::now();
        drain(&mut tasks, Duration::from_millis(800)).await;
        assert!(tasks.is_empty(), "the stuck task was aborted");
        assert_eq!(
            t0.elapsed(),
            Duration::from_millis(800),
            "after the bound, not before"
        );
    }
}
