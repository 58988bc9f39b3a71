//! One client connection: TLS handshake (inside the spawned task, with a
//! timeout), CONNECT, then the packet loop with keep-alive, deliveries and
//! kicks, and on the way out the will and the `disconnected` event.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, LastWill, Packet, PubAck, Publish, SubAck, Subscribe,
    SubscribeReasonCode, UnsubAck,
};
use rumqttc::mqttbytes::{Error as CodecError, Protocol, QoS};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::authz::ConnectionAuthz;
use crate::events::{self, DisconnectReason, Presence};
use crate::outbox::Outbox;
use crate::quota::ConnectionQuota;
use crate::router::{Delivery, Kick, Live};
use crate::tls::{client_identity, ClientIdentity};
use crate::topic::{self, MAX_CLIENT_ID_BYTES, MAX_FILTERS_PER_SUBSCRIBE};
use crate::Shared;

/// Longest a write to a client may take before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a publisher is held back for a congested subscriber at a time.
const CONGESTION_WAIT: Duration = Duration::from_millis(100);
/// Most deliveries written in one batch.
const WRITE_BATCH: usize = 256;
/// Most delivery bytes put in the output buffer in one batch: a slow
/// reader holds at most this (plus one message) outside its bounded queue.
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// Output buffer capacity kept between batches; a larger one is freed.
const OUT_KEEP_CAPACITY: usize = 1024 * 1024;

fn qos_u8(q: QoS) -> u8 {
    q as u8
}

fn qos_of(q: u8) -> QoS {
    if q == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

/// Counts live connection tasks for [`crate::Stats`]; decrements on drop,
/// even when the task panics.
struct ConnGuard(Arc<Shared>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reads one whole packet, `Ok(None)` on a clean EOF.
async fn read_packet<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max_packet: usize,
) -> Result<Option<Packet>, DisconnectReason> {
    loop {
        match Packet::read(buf, max_packet) {
            Ok(p) => return Ok(Some(p)),
            Err(CodecError::InsufficientBytes(_)) => {}
            Err(_) => return Err(DisconnectReason::ClientError),
        }
        match rd.read_buf(buf).await {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(_) => return Err(DisconnectReason::ConnectionLost),
        }
    }
}

/// The TLS stream of one client.
type Stream = TlsStream<TcpStream>;

/// Runs one accepted TCP connection to its end: the [`Handshake`], then the
/// [`Session`] until either side ends it.
pub(crate) async fn run(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    shutdown: watch::Receiver<bool>,
) {
    shared.connections.fetch_add(1, Ordering::Relaxed);
    let _guard = ConnGuard(shared.clone());
    let Some(handshake) = Handshake::perform(&shared, stream, peer, acceptor, &shutdown).await
    else {
        return;
    };
    handshake.attach(shared).run(shutdown).await;
}

/// A client that got through the handshake: TLS with a client
/// certificate, a valid MQTT 3.1.1 CONNECT (read within the handshake
/// timeout) and a policy that allows `iot:Connect` for its client id.
/// Anything less was closed on the way, as AWS IoT does: without a CONNACK,
/// or with the refusal code MQTT 3.1.1 has for it.
struct Handshake {
    rd: ReadHalf<Stream>,
    conn: Conn<Stream>,
    /// Bytes read past the CONNECT: packets the client sent right behind it.
    buf: BytesMut,
    peer: SocketAddr,
    identity: ClientIdentity,
    /// The CONNECT's client id, or one made up for an empty clean one.
    client_id: String,
    connect: Connect,
    authz: ConnectionAuthz,
}

impl Handshake {
    /// The steps, in order; `None` when the connection was closed.
    async fn perform(
        shared: &Shared,
        stream: TcpStream,
        peer: SocketAddr,
        acceptor: TlsAcceptor,
        shutdown: &watch::Receiver<bool>,
    ) -> Option<Handshake> {
        let hs = shared.config.handshake_timeout;
        let mut stop = shutdown.clone();
        let tls = tls_handshake(stream, peer, acceptor, hs, &mut stop).await?;
        let identity = client_identity(tls.get_ref().1)?;
        let (mut rd, wr) = tokio::io::split(tls);
        // Small to start: most connections are idle robots; BytesMut grows on demand.
        let mut buf = BytesMut::with_capacity(256);
        let connect =
            read_connect(&mut rd, &mut buf, max_packet(shared), hs, &mut stop, peer).await?;
        let mut conn = Conn {
            wr,
            out: BytesMut::new(),
        };
        let client_id = match check_connect(&connect) {
            Ok(id) => id,
            Err(refusal) => {
                refusal.answer(&mut conn, peer).await;
                return None;
            }
        };
        let mut authz = ConnectionAuthz::new(
            shared.authority.clone(),
            shared.config.clone(),
            identity.clone(),
            &client_id,
            Some(peer.ip().to_string()),
        );
        if !authz.certificate_active() || !authz.connect() {
            // AWS IoT closes the connection without a CONNACK (MQTT 3.1.1).
            tracing::info!(%peer, client_id = %client_id, "CONNECT denied; closing");
            return None;
        }
        Some(Handshake {
            rd,
            conn,
            buf,
            peer,
            identity,
            client_id,
            connect,
            authz,
        })
    }

    /// Takes the client id's session over (an older connection with the
    /// same id is kicked, a persistent session resumed) and queues the
    /// CONNACK saying whether one was.
    fn attach(mut self, shared: Arc<Shared>) -> Session {
        let keep_alive = topic::clamp_keep_alive(
            self.connect.keep_alive,
            shared.config.keep_alive_min,
            shared.config.keep_alive_max,
        );
        let client_key: Arc<str> = Arc::from(self.client_id.as_str());
        let conn_id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
        let outbox = Arc::new(Outbox::new(
            shared.config.max_queued_qos0,
            shared.config.qos0_byte_cap(),
            shared.outbox.clone(),
        ));
        let kick = Arc::new(Kick::default());
        let connected_ms = gopigo_protocol::unix_ms();
        let attached = shared.router.connect(
            &client_key,
            self.connect.clean_session,
            Live {
                conn_id,
                outbox: outbox.clone(),
                kick: kick.clone(),
                certificate_id: Arc::from(self.identity.certificate_id.as_str()),
            },
            connected_ms,
        );
        self.conn.queue(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            attached.session_present,
        )));
        tracing::debug!(
            client_id = %self.client_id,
            peer = %self.peer,
            keep_alive_s = keep_alive.as_secs(),
            session_present = attached.session_present,
            "connected"
        );
        let quota = ConnectionQuota::new(&shared.config.limits, Instant::now().into_std());
        Session {
            max_packet: max_packet(&shared),
            presence: PresenceFacts {
                client_id: self.client_id,
                session_identifier: uuid::Uuid::new_v4().to_string(),
                certificate_id: self.identity.certificate_id,
                ip: self.peer.ip().to_string(),
                connected_ms,
            },
            shared,
            rd: self.rd,
            conn: self.conn,
            buf: self.buf,
            peer: self.peer,
            will: self.connect.last_will,
            outbox,
            kick,
            deadline: topic::keep_alive_deadline(keep_alive),
            client_key,
            conn_id,
            authz: self.authz,
            congested: false,
            routed: false,
            quota,
            read_resume: None,
            write_resume: None,
            next_report: Instant::now(),
        }
    }
}

/// The TLS handshake, bounded by `hs` and abandoned when the server stops.
async fn tls_handshake(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    hs: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Option<Stream> {
    let handshake = tokio::select! {
        r = timeout(hs, acceptor.accept(stream)) => r,
        _ = crate::limits::stopped(stop) => return None,
    };
    match handshake {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// The first packet, which must be a CONNECT and arrive within `hs`.
async fn read_connect(
    rd: &mut ReadHalf<Stream>,
    buf: &mut BytesMut,
    max_packet: usize,
    hs: Duration,
    stop: &mut watch::Receiver<bool>,
    peer: SocketAddr,
) -> Option<Connect> {
    let first = tokio::select! {
        r = timeout(hs, read_packet(rd, buf, max_packet)) => r,
        _ = crate::limits::stopped(stop) => return None,
    };
    match first {
        Ok(Ok(Some(Packet::Connect(c)))) => Some(c),
        _ => {
            tracing::debug!(%peer, "no valid CONNECT; closing");
            None
        }
    }
}

/// Why a CONNECT is refused before authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnectRefusal {
    /// MQTT 5 (not implemented yet): CONNACK "unacceptable protocol".
    Protocol,
    /// An empty client id on a persistent session: CONNACK "identifier rejected".
    EmptyPersistentId,
    /// A client id over [`MAX_CLIENT_ID_BYTES`] (AWS IoT's limit): closed.
    LongId,
    /// A QoS 2 will. AWS IoT supports QoS 0 and 1 only and disconnects a
    /// client that asks for QoS 2; accepting the will and never sending it
    /// would break [MQTT-3.1.2-8], so the CONNECT is closed, no CONNACK.
    Qos2Will,
}

impl ConnectRefusal {
    /// Tells the client, where MQTT 3.1.1 has a code for it, and logs.
    async fn answer(self, conn: &mut Conn<Stream>, peer: SocketAddr) {
        let code = match self {
            ConnectRefusal::Protocol => Some(ConnectReturnCode::RefusedProtocolVersion),
            ConnectRefusal::EmptyPersistentId => Some(ConnectReturnCode::BadClientId),
            ConnectRefusal::LongId => {
                tracing::info!(%peer, "client id longer than 128 bytes; closing");
                None
            }
            ConnectRefusal::Qos2Will => {
                tracing::info!(%peer, "CONNECT with a QoS 2 will refused (AWS IoT supports QoS 0 and 1); closing");
                None
            }
        };
        if let Some(code) = code {
            conn.queue(Packet::ConnAck(ConnAck::new(code, false)));
            let _ = conn.flush().await;
        }
    }
}

/// The client id a CONNECT may use (pure): its own, or a fresh one for an
/// empty id on a clean session.
fn check_connect(connect: &Connect) -> Result<String, ConnectRefusal> {
    if connect.protocol != Protocol::V4 {
        return Err(ConnectRefusal::Protocol);
    }
    if connect.client_id.len() > MAX_CLIENT_ID_BYTES {
        return Err(ConnectRefusal::LongId);
    }
    if connect.client_id.is_empty() && !connect.clean_session {
        return Err(ConnectRefusal::EmptyPersistentId);
    }
    if connect
        .last_will
        .as_ref()
        .is_some_and(|w| w.qos == QoS::ExactlyOnce)
    {
        return Err(ConnectRefusal::Qos2Will);
    }
    if connect.client_id.is_empty() {
        return Ok(format!("gopigo-{}", uuid::Uuid::new_v4().simple()));
    }
    Ok(connect.client_id.clone())
}

fn publish_will(shared: &Shared, authz: &mut ConnectionAuthz, will: LastWill) {
    let qos = qos_u8(will.qos);
    if qos > 1
        || topic::validate_topic(&will.topic).is_err()
        || will.message.len() > shared.config.max_payload
        || (will.retain && will.topic.starts_with('$'))
    {
        return;
    }
    if !authz.publish(&will.topic, will.retain) {
        return;
    }
    let _ = shared
        .router
        .publish(&will.topic, will.message, qos, will.retain);
}

/// What a connection's lifecycle events say about it.
struct PresenceFacts {
    client_id: String,
    /// New for each connection, as AWS IoT's `sessionIdentifier`.
    session_identifier: String,
    certificate_id: String,
    ip: String,
    /// When the connection took the client id over (Unix ms): the
    /// `connected` event's timestamp and the connectivity ledger's.
    connected_ms: u64,
}

impl PresenceFacts {
    /// Publishes `connected` (no reason) or `disconnected` (with the time it
    /// was recorded), when the broker sends lifecycle events.
    fn publish(&self, shared: &Shared, reason: Option<(DisconnectReason, u64)>) {
        if !shared.config.lifecycle_events {
            return;
        }
        let kind = if reason.is_some() {
            "disconnected"
        } else {
            "connected"
        };
        let Some(topic) = events::presence_topic(kind, &self.client_id) else {
            return;
        };
        let p = Presence {
            client_id: &self.client_id,
            session_identifier: &self.session_identifier,
            principal_identifier: &self.certificate_id,
            ip_address: &self.ip,
            version_number: shared.router.next_version(),
        };
        let body = match reason {
            None => events::connected_event(&p, self.connected_ms),
            Some((r, at_ms)) => events::disconnected_event(&p, r, at_ms),
        };
        let _ = shared.router.publish(&topic, Bytes::from(body), 1, false);
    }
}

/// The write side with its output buffer.
struct Conn<W> {
    wr: WriteHalf<W>,
    out: BytesMut,
}

impl<W: AsyncRead + AsyncWrite> Conn<W> {
    fn queue(&mut self, p: Packet) {
        // Only packets the broker built itself are written; they fit.
        let _ = p.write(&mut self.out, usize::MAX);
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let res = timeout(WRITE_TIMEOUT, async {
            self.wr.write_all(&self.out).await?;
            self.wr.flush().await
        })
        .await;
        self.out.clear();
        if self.out.capacity() > OUT_KEEP_CAPACITY {
            self.out = BytesMut::new();
        }
        match res {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "write timed out",
            )),
        }
    }
}

/// Longest MQTT packet read: the payload cap plus room for a topic and
/// the fixed header.
fn max_packet(shared: &Shared) -> usize {
    shared.config.max_payload + 1024
}

/// A connected client: the packet loop with keep-alive, deliveries and
/// kicks, then on the way out its will and the `disconnected` event.
struct Session {
    shared: Arc<Shared>,
    rd: ReadHalf<Stream>,
    conn: Conn<Stream>,
    buf: BytesMut,
    max_packet: usize,
    peer: SocketAddr,
    presence: PresenceFacts,
    will: Option<LastWill>,
    outbox: Arc<Outbox>,
    kick: Arc<Kick>,
    /// Longest silence from the client before it is dropped (1.5 × keep-alive).
    deadline: Duration,
    client_key: Arc<str>,
    conn_id: u64,
    authz: ConnectionAuthz,
    /// A publish found a subscriber's queue congested.
    congested: bool,
    /// A PUBLISH was routed since the last read.
    routed: bool,
    /// The per-connection quotas' buckets.
    quota: ConnectionQuota,
    /// Reading waits until then: the client sent faster than its quota.
    read_resume: Option<Instant>,
    /// Writing deliveries waits until then: they came faster than the quota.
    write_resume: Option<Instant>,
    /// When throttling may next be logged (at most once a second).
    next_report: Instant,
}

impl Session {
    /// Sends the CONNACK, serves until either side ends, then closes.
    async fn run(mut self, shutdown: watch::Receiver<bool>) {
        let span =
            tracing::info_span!("mqtt", client_id = %self.presence.client_id, peer = %self.peer);
        let reason = if self.conn.flush().await.is_err() {
            DisconnectReason::ConnectionLost
        } else {
            self.presence.publish(&self.shared, None);
            self.serve(shutdown).instrument(span).await
        };
        self.close(reason).await;
    }

    /// The packet loop; returns why it ended.
    async fn serve(&mut self, mut shutdown: watch::Receiver<bool>) -> DisconnectReason {
        let mut last_recv = Instant::now();
        let mut batch = Vec::new();
        // Packets that arrived right behind the CONNECT.
        if let Err(reason) = self.process() {
            return reason;
        }
        loop {
            if self.conn.flush().await.is_err() {
                return DisconnectReason::ConnectionLost;
            }
            self.report_throttling();
            // Unbiased: neither a flood of input nor of deliveries starves the other.
            // A side over its byte quota sits out until its bucket refills.
            let far = Instant::now() + self.deadline;
            tokio::select! {
                _ = self.kick.notify.notified() => {
                    return self.kick.reason().unwrap_or(DisconnectReason::ServerInitiated);
                }
                _ = shutdown.changed() => return DisconnectReason::ServerInitiated,
                r = self.rd.read_buf(&mut self.buf), if self.read_resume.is_none() => {
                    match r {
                        Ok(0) | Err(_) => return DisconnectReason::ConnectionLost,
                        Ok(n) => {
                            last_recv = Instant::now();
                            self.read_resume =
                                self.quota.read(n, last_recv.into_std()).map(|w| last_recv + w);
                            if let Err(reason) = self.after_read().await {
                                return reason;
                            }
                        }
                    }
                }
                _ = self.outbox.ready(), if self.write_resume.is_none() => {
                    self.outbox.take(WRITE_BATCH_BYTES, WRITE_BATCH, &mut batch);
                    let now = Instant::now();
                    let mut bytes = 0;
                    for d in batch.drain(..) {
                        bytes += self.write_delivery(d, now);
                    }
                    self.write_resume = self.quota.wrote(bytes, now.into_std()).map(|w| now + w);
                }
                _ = sleep_until(self.read_resume.unwrap_or(far)), if self.read_resume.is_some() => {
                    // Time spent held back is not the client's silence.
                    last_recv = Instant::now();
                    self.read_resume = None;
                }
                _ = sleep_until(self.write_resume.unwrap_or(far)), if self.write_resume.is_some() => {
                    self.write_resume = None;
                }
                _ = sleep_until(last_recv + self.deadline) => return DisconnectReason::KeepAliveTimeout,
            }
        }
    }

    /// Handles what a read brought, then yields to the subscribers it woke
    /// and, when one of them was congested, waits (bounded) for it to drain.
    async fn after_read(&mut self) -> Result<(), DisconnectReason> {
        self.process()?;
        if std::mem::take(&mut self.routed) {
            // Deliver before acknowledging, as Mosquitto does: the woken
            // subscriber tasks sit in this worker's queue, and yielding lets
            // them write first. Flushing the PUBACK first would wake the
            // publisher ahead of the subscriber.
            tokio::task::yield_now().await;
        }
        if std::mem::take(&mut self.congested) {
            // Backpressure: let slow subscribers drain before reading more
            // from this publisher (bounded wait).
            let drained = self.shared.router.congestion.notified();
            if self.conn.flush().await.is_err() {
                return Err(DisconnectReason::ConnectionLost);
            }
            let _ = timeout(CONGESTION_WAIT, drained).await;
        }
        Ok(())
    }

    /// Flushes what is left (briefly), leaves the router, publishes the
    /// will unless the client said DISCONNECT, and the `disconnected` event.
    async fn close(mut self, reason: DisconnectReason) {
        // A stopping server leaves a stalled reader quickly (see limits::DRAIN).
        let grace = if matches!(reason, DisconnectReason::ServerInitiated) {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(1)
        };
        let _ = timeout(grace, self.conn.flush()).await;
        let _ = timeout(grace, self.conn.wr.shutdown()).await;
        let at_ms = gopigo_protocol::unix_ms();
        self.shared
            .router
            .disconnect(&self.client_key, self.conn_id, reason, at_ms);
        let client_id = &self.presence.client_id;
        tracing::debug!(client_id = %client_id, reason = reason.as_str(), "disconnected");
        if reason == DisconnectReason::DuplicateClientId {
            // MQTT 3.1.1 cannot tell the closed client why; the log can.
            tracing::info!(
                client_id = %client_id,
                "another connection took this client id over; closed the older one \
                 (two programs sharing one identity?)"
            );
        }
        if reason.sends_will() {
            if let Some(will) = self.will.take() {
                publish_will(&self.shared, &mut self.authz, will);
            }
        }
        self.presence.publish(&self.shared, Some((reason, at_ms)));
    }

    /// Writes one delivery the policy lets the client receive and its
    /// outbound publish quota lets through; returns the bytes it queued.
    /// One that may not go is dropped (a QoS 1 one freed from the window).
    fn write_delivery(&mut self, d: Delivery, now: Instant) -> usize {
        let allowed = self.authz.receive(&d.topic);
        if !allowed || !self.quota.publish_out(now.into_std()) {
            if allowed {
                self.shared
                    .throttled
                    .publishes_out
                    .fetch_add(1, Ordering::Relaxed);
            }
            if d.qos == 1 {
                self.shared
                    .router
                    .acked(&self.client_key, self.conn_id, d.pkid);
            }
            return 0;
        }
        let bytes = d.topic.len() + d.payload.len();
        let publish = Publish {
            dup: d.dup,
            qos: qos_of(d.qos),
            retain: d.retain,
            topic: d.topic.to_string(),
            pkid: d.pkid,
            payload: d.payload,
        };
        self.conn.queue(Packet::Publish(publish));
        tracing::trace!(target: "latency", topic = %d.topic, "broker delivery out");
        self.shared.messages_out.fetch_add(1, Ordering::Relaxed);
        bytes
    }

    /// Logs what the quotas discarded since the last report, at most once
    /// a second.
    fn report_throttling(&mut self) {
        let q = &mut self.quota;
        if q.dropped_in == 0 && q.dropped_out == 0 {
            return;
        }
        let now = Instant::now();
        if now < self.next_report {
            return;
        }
        tracing::warn!(
            publishes_in_discarded = q.dropped_in,
            deliveries_discarded = q.dropped_out,
            "over AWS IoT's 100 publishes/s per connection; the excess was discarded, as AWS does"
        );
        (q.dropped_in, q.dropped_out) = (0, 0);
        self.next_report = now + Duration::from_secs(1);
    }

    /// Handles every whole packet in the read buffer.
    fn process(&mut self) -> Result<(), DisconnectReason> {
        loop {
            let packet = match Packet::read(&mut self.buf, self.max_packet) {
                Ok(p) => p,
                Err(CodecError::InsufficientBytes(_)) => return Ok(()),
                Err(e) => {
                    tracing::info!(error = %e, "malformed packet; disconnecting");
                    return Err(DisconnectReason::ClientError);
                }
            };
            self.handle(packet)?;
        }
    }

    fn handle(&mut self, packet: Packet) -> Result<(), DisconnectReason> {
        match packet {
            Packet::Publish(p) => self.on_publish(p),
            Packet::PubAck(a) => {
                self.shared
                    .router
                    .acked(&self.client_key, self.conn_id, a.pkid);
                Ok(())
            }
            Packet::Subscribe(s) => self.on_subscribe(s),
            Packet::Unsubscribe(u) => {
                self.shared
                    .router
                    .unsubscribe(&self.client_key, self.conn_id, &u.topics);
                self.conn.queue(Packet::UnsubAck(UnsubAck::new(u.pkid)));
                Ok(())
            }
            Packet::PingReq => {
                self.conn.queue(Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect => Err(DisconnectReason::ClientInitiated),
            other => {
                tracing::info!(packet = ?other, "unexpected packet; disconnecting");
                Err(DisconnectReason::ClientError)
            }
        }
    }

    /// Checks a PUBLISH against AWS IoT's limits and the policy, routes it
    /// and queues its PUBACK.
    fn on_publish(&mut self, p: Publish) -> Result<(), DisconnectReason> {
        // Off unless RUST_LOG enables target `latency` (bench/agent_latency.py --stages).
        tracing::trace!(target: "latency", topic = %p.topic, "broker publish in");
        if p.qos == QoS::ExactlyOnce {
            tracing::info!(topic = %p.topic, "QoS 2 PUBLISH refused; disconnecting");
            return Err(DisconnectReason::ClientError);
        }
        if let Err(e) = topic::validate_topic(&p.topic) {
            tracing::info!(error = %e, "bad PUBLISH topic; disconnecting");
            return Err(DisconnectReason::ClientError);
        }
        if p.payload.len() > self.shared.config.max_payload {
            tracing::info!(topic = %p.topic, size = p.payload.len(), "payload over the limit; disconnecting");
            return Err(DisconnectReason::ClientError);
        }
        if p.retain && p.topic.starts_with('$') {
            tracing::info!(topic = %p.topic, "retained PUBLISH to a reserved topic; disconnecting");
            return Err(DisconnectReason::ClientError);
        }
        if !self.authz.publish(&p.topic, p.retain) {
            return Err(DisconnectReason::AuthError);
        }
        if !self.quota.publish_in(std::time::Instant::now()) {
            // Discarded, as AWS IoT does; no PUBACK (MQTT 3.1.1 has no
            // failure code for one, and a PUBACK would say it was taken).
            self.shared
                .throttled
                .publishes_in
                .fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.shared.messages_in.fetch_add(1, Ordering::Relaxed);
        let qos = qos_u8(p.qos);
        self.congested |= self
            .shared
            .router
            .publish(&p.topic, p.payload, qos, p.retain);
        self.routed = true;
        if qos == 1 {
            self.conn.queue(Packet::PubAck(PubAck::new(p.pkid)));
        }
        Ok(())
    }

    /// Checks each filter (count, QoS, syntax, policy), subscribes those
    /// within the subscriptions quota and queues the SUBACK (0x80 for the
    /// others): retained messages follow the SUBACK.
    fn on_subscribe(&mut self, s: Subscribe) -> Result<(), DisconnectReason> {
        if s.filters.len() > MAX_FILTERS_PER_SUBSCRIBE {
            tracing::info!(
                n = s.filters.len(),
                "more than 8 filters in one SUBSCRIBE; disconnecting"
            );
            return Err(DisconnectReason::ClientError);
        }
        let mut granted = Vec::with_capacity(s.filters.len());
        for f in &s.filters {
            if f.qos == QoS::ExactlyOnce {
                tracing::info!(filter = %f.path, "QoS 2 SUBSCRIBE refused; disconnecting");
                return Err(DisconnectReason::ClientError);
            }
            if let Err(e) = topic::validate_filter(&f.path) {
                tracing::info!(error = %e, "bad SUBSCRIBE filter; disconnecting");
                return Err(DisconnectReason::ClientError);
            }
            if !self.authz.subscribe(&f.path) {
                return Err(DisconnectReason::AuthError);
            }
            granted.push((f.path.clone(), qos_u8(f.qos)));
        }
        let admitted = self.shared.router.subscribe(
            &self.client_key,
            self.conn_id,
            &granted,
            self.shared.config.limits.subscriptions_per_connection,
        );
        let codes = granted
            .iter()
            .zip(admitted)
            .map(|((f, q), ok)| {
                if ok {
                    return SubscribeReasonCode::Success(qos_of(*q));
                }
                tracing::warn!(
                    filter = %f,
                    "over AWS IoT's 50 subscriptions per connection; refused (SUBACK 0x80)"
                );
                self.shared
                    .throttled
                    .subscriptions
                    .fetch_add(1, Ordering::Relaxed);
                SubscribeReasonCode::Failure
            })
            .collect();
        // Queued after the router took the filters, still written before
        // their retained messages: the outbox is written after this buffer.
        self.conn.queue(Packet::SubAck(SubAck::new(s.pkid, codes)));
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn connect(id: &str, clean: bool, will_qos: Option<QoS>) -> Connect {
        let mut c = Connect::new(id);
        c.clean_session = clean;
        c.last_will = will_qos.map(|q| LastWill::new("t/will", "gone", q, false));
        c
    }

    #[test]
    fn connect_checks_table() {
        let long = "x".repeat(MAX_CLIENT_ID_BYTES + 1);
        let max = "x".repeat(MAX_CLIENT_ID_BYTES);
        let cases: &[(Connect, Result<&str, ConnectRefusal>)] = &[
            (connect("robot1", true, None), Ok("robot1")),
            (
                connect("robot1", false, Some(QoS::AtLeastOnce)),
                Ok("robot1"),
            ),
            (connect(&max, true, None), Ok(max.as_str())),
            (connect(&long, true, None), Err(ConnectRefusal::LongId)),
            (
                connect("", false, None),
                Err(ConnectRefusal::EmptyPersistentId),
            ),
            // An empty persistent id is refused with its code before the will.
            (
                connect("", false, Some(QoS::ExactlyOnce)),
                Err(ConnectRefusal::EmptyPersistentId),
            ),
            (
                connect("robot1", true, Some(QoS::ExactlyOnce)),
                Err(ConnectRefusal::Qos2Will),
            ),
        ];
        for (c, want) in cases {
            let got = check_connect(c);
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{c:?}");
        }
        let mut v5 = connect("robot1", true, None);
        v5.protocol = Protocol::V5;
        assert_eq!(check_connect(&v5), Err(ConnectRefusal::Protocol));
    }

    #[test]
    fn an_empty_clean_client_id_gets_a_fresh_one_each_time() {
        let a = check_connect(&connect("", true, None)).unwrap();
        let b = check_connect(&connect("", true, None)).unwrap();
        assert!(
            a.starts_with("gopigo-") && a.len() <= MAX_CLIENT_ID_BYTES,
            "{a}"
        );
        assert_ne!(a, b);
    }
}
