//! One client connection: TLS handshake (inside the spawned task, with a
//! timeout), CONNECT, then the packet loop with keep-alive, deliveries and
//! kicks, and on the way out the will and the `disconnected` event.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, LastWill, Packet, PubAck, Publish, SubAck, SubscribeReasonCode,
    UnsubAck,
};
use rumqttc::mqttbytes::{Error as CodecError, Protocol, QoS};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::authz::ConnectionAuthz;
use crate::events::{self, DisconnectReason, Presence};
use crate::outbox::Outbox;
use crate::router::{Delivery, Kick, Live};
use crate::tls::client_identity;
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

/// Runs one accepted TCP connection to its end.
pub(crate) async fn run(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    shutdown: watch::Receiver<bool>,
) {
    shared.connections.fetch_add(1, Ordering::Relaxed);
    let _guard = ConnGuard(shared.clone());
    let hs = shared.config.handshake_timeout;
    let mut stop = shutdown.clone();
    let handshake = tokio::select! {
        r = timeout(hs, acceptor.accept(stream)) => r,
        _ = crate::limits::stopped(&mut stop) => return,
    };
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let Some(identity) = client_identity(tls.get_ref().1) else {
        return;
    };
    let (mut rd, wr) = tokio::io::split(tls);
    // Small to start: most connections are idle robots; BytesMut grows on demand.
    let mut buf = BytesMut::with_capacity(256);
    let max_packet = shared.config.max_payload + 1024;
    let first = tokio::select! {
        r = timeout(hs, read_packet(&mut rd, &mut buf, max_packet)) => r,
        _ = crate::limits::stopped(&mut stop) => return,
    };
    let connect = match first {
        Ok(Ok(Some(Packet::Connect(c)))) => c,
        _ => {
            tracing::debug!(%peer, "no valid CONNECT; closing");
            return;
        }
    };
    let mut conn = Conn {
        wr,
        out: BytesMut::new(),
    };
    if connect.protocol != Protocol::V4 {
        // MQTT 5 is not implemented yet: refuse with "unacceptable protocol".
        conn.queue(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::RefusedProtocolVersion,
            false,
        )));
        let _ = conn.flush().await;
        return;
    }
    let mut client_id = connect.client_id.clone();
    if client_id.len() > MAX_CLIENT_ID_BYTES {
        tracing::info!(%peer, "client id longer than 128 bytes; closing");
        return;
    }
    if client_id.is_empty() {
        if !connect.clean_session {
            conn.queue(Packet::ConnAck(ConnAck::new(
                ConnectReturnCode::BadClientId,
                false,
            )));
            let _ = conn.flush().await;
            return;
        }
        client_id = format!("gopigo-{}", uuid::Uuid::new_v4().simple());
    }
    if connect
        .last_will
        .as_ref()
        .is_some_and(|w| w.qos == QoS::ExactlyOnce)
    {
        // AWS IoT supports QoS 0 and 1 only and disconnects a client that
        // asks for QoS 2; accepting the will and never sending it would break
        // [MQTT-3.1.2-8], so the CONNECT is refused (closed, no CONNACK).
        tracing::info!(%peer, client_id = %client_id, "CONNECT with a QoS 2 will refused (AWS IoT supports QoS 0 and 1); closing");
        return;
    }
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
        return;
    }

    let keep_alive = topic::clamp_keep_alive(
        connect.keep_alive,
        shared.config.keep_alive_min,
        shared.config.keep_alive_max,
    );
    let deadline = topic::keep_alive_deadline(keep_alive);
    let client_key: Arc<str> = Arc::from(client_id.as_str());
    let conn_id = shared.next_conn_id.fetch_add(1, Ordering::Relaxed);
    let outbox = Arc::new(Outbox::new(
        shared.config.max_queued_qos0,
        shared.config.qos0_byte_cap(),
        shared.outbox.clone(),
    ));
    let kick = Arc::new(Kick::default());
    let attached = shared.router.connect(
        &client_key,
        connect.clean_session,
        Live {
            conn_id,
            outbox: outbox.clone(),
            kick: kick.clone(),
            certificate_id: Arc::from(identity.certificate_id.as_str()),
        },
    );
    conn.queue(Packet::ConnAck(ConnAck::new(
        ConnectReturnCode::Success,
        attached.session_present,
    )));
    let session_identifier = uuid::Uuid::new_v4().to_string();
    let ip = peer.ip().to_string();
    let span = tracing::info_span!("mqtt", client_id = %client_id, %peer);
    tracing::debug!(
        keep_alive_s = keep_alive.as_secs(),
        session_present = attached.session_present,
        "connected"
    );

    let mut session = SessionLoop {
        shared: shared.clone(),
        client_key: client_key.clone(),
        conn_id,
        authz,
        congested: false,
        routed: false,
    };
    let reason = if conn.flush().await.is_err() {
        DisconnectReason::ConnectionLost
    } else {
        publish_presence(
            &shared,
            "connected",
            &client_id,
            &session_identifier,
            &identity.certificate_id,
            &ip,
            None,
        );
        session
            .run(
                &mut rd, &mut conn, buf, &outbox, kick, shutdown, deadline, max_packet,
            )
            .instrument(span)
            .await
    };

    // A stopping server leaves a stalled reader quickly (see limits::DRAIN).
    let grace = if matches!(reason, DisconnectReason::ServerInitiated) {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(1)
    };
    let _ = timeout(grace, conn.flush()).await;
    let _ = timeout(grace, conn.wr.shutdown()).await;
    shared.router.disconnect(&client_key, conn_id);
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
        if let Some(will) = connect.last_will {
            publish_will(&shared, &mut session.authz, will);
        }
    }
    publish_presence(
        &shared,
        "disconnected",
        &client_id,
        &session_identifier,
        &identity.certificate_id,
        &ip,
        Some(reason),
    );
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

fn publish_presence(
    shared: &Shared,
    kind: &str,
    client_id: &str,
    session_identifier: &str,
    principal: &str,
    ip: &str,
    reason: Option<DisconnectReason>,
) {
    if !shared.config.lifecycle_events {
        return;
    }
    let Some(topic) = events::presence_topic(kind, client_id) else {
        return;
    };
    let p = Presence {
        client_id,
        session_identifier,
        principal_identifier: principal,
        ip_address: ip,
        version_number: shared.router.next_version(client_id),
    };
    let body = match reason {
        None => events::connected_event(&p, events::now_ms()),
        Some(r) => events::disconnected_event(&p, r, events::now_ms()),
    };
    let _ = shared.router.publish(&topic, Bytes::from(body), 1, false);
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

struct SessionLoop {
    shared: Arc<Shared>,
    client_key: Arc<str>,
    conn_id: u64,
    authz: ConnectionAuthz,
    /// A publish found a subscriber's queue congested.
    congested: bool,
    /// A PUBLISH was routed since the last read.
    routed: bool,
}

impl SessionLoop {
    #[allow(clippy::too_many_arguments)]
    async fn run<S: AsyncRead + AsyncWrite>(
        &mut self,
        rd: &mut ReadHalf<S>,
        conn: &mut Conn<S>,
        mut buf: BytesMut,
        outbox: &Outbox,
        kick: Arc<Kick>,
        mut shutdown: watch::Receiver<bool>,
        deadline: Duration,
        max_packet: usize,
    ) -> DisconnectReason {
        let mut last_recv = Instant::now();
        let mut batch = Vec::new();
        // Packets that arrived right behind the CONNECT.
        if let Err(reason) = self.process(&mut buf, conn, max_packet) {
            return reason;
        }
        loop {
            if conn.flush().await.is_err() {
                return DisconnectReason::ConnectionLost;
            }
            // Unbiased: neither a flood of input nor of deliveries starves the other.
            tokio::select! {
                _ = kick.notify.notified() => {
                    return kick.reason().unwrap_or(DisconnectReason::ServerInitiated);
                }
                _ = shutdown.changed() => return DisconnectReason::ServerInitiated,
                r = rd.read_buf(&mut buf) => {
                    match r {
                        Ok(0) | Err(_) => return DisconnectReason::ConnectionLost,
                        Ok(_) => {
                            last_recv = Instant::now();
                            if let Err(reason) = self.process(&mut buf, conn, max_packet) {
                                return reason;
                            }
                            if std::mem::take(&mut self.routed) {
                                // Deliver before acknowledging, as Mosquitto does: the
                                // woken subscriber tasks sit in this worker's queue, and
                                // yielding lets them write first. Flushing the PUBACK
                                // first would wake the publisher ahead of the subscriber.
                                tokio::task::yield_now().await;
                            }
                            if std::mem::take(&mut self.congested) {
                                // Backpressure: let slow subscribers drain before
                                // reading more from this publisher (bounded wait).
                                let drained = self.shared.router.congestion.notified();
                                if conn.flush().await.is_err() {
                                    return DisconnectReason::ConnectionLost;
                                }
                                let _ = timeout(CONGESTION_WAIT, drained).await;
                            }
                        }
                    }
                }
                _ = outbox.ready() => {
                    outbox.take(WRITE_BATCH_BYTES, WRITE_BATCH, &mut batch);
                    for d in batch.drain(..) {
                        self.write_delivery(d, conn);
                    }
                }
                _ = sleep_until(last_recv + deadline) => return DisconnectReason::KeepAliveTimeout,
            }
        }
    }

    fn write_delivery<S: AsyncRead + AsyncWrite>(&mut self, d: Delivery, conn: &mut Conn<S>) {
        if !self.authz.receive(&d.topic) {
            if d.qos == 1 {
                self.shared
                    .router
                    .acked(&self.client_key, self.conn_id, d.pkid);
            }
            return;
        }
        let publish = Publish {
            dup: d.dup,
            qos: qos_of(d.qos),
            retain: d.retain,
            topic: d.topic.to_string(),
            pkid: d.pkid,
            payload: d.payload,
        };
        conn.queue(Packet::Publish(publish));
        tracing::trace!(target: "latency", topic = %d.topic, "broker delivery out");
        self.shared.messages_out.fetch_add(1, Ordering::Relaxed);
    }

    /// Handles every whole packet in `buf`.
    fn process<S: AsyncRead + AsyncWrite>(
        &mut self,
        buf: &mut BytesMut,
        conn: &mut Conn<S>,
        max_packet: usize,
    ) -> Result<(), DisconnectReason> {
        loop {
            let packet = match Packet::read(buf, max_packet) {
                Ok(p) => p,
                Err(CodecError::InsufficientBytes(_)) => return Ok(()),
                Err(e) => {
                    tracing::info!(error = %e, "malformed packet; disconnecting");
                    return Err(DisconnectReason::ClientError);
                }
            };
            self.handle(packet, conn)?;
        }
    }

    fn handle<S: AsyncRead + AsyncWrite>(
        &mut self,
        packet: Packet,
        conn: &mut Conn<S>,
    ) -> Result<(), DisconnectReason> {
        match packet {
            Packet::Publish(p) => {
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
                self.shared.messages_in.fetch_add(1, Ordering::Relaxed);
                let qos = qos_u8(p.qos);
                self.congested |= self
                    .shared
                    .router
                    .publish(&p.topic, p.payload, qos, p.retain);
                self.routed = true;
                if qos == 1 {
                    conn.queue(Packet::PubAck(PubAck::new(p.pkid)));
                }
                Ok(())
            }
            Packet::PubAck(a) => {
                self.shared
                    .router
                    .acked(&self.client_key, self.conn_id, a.pkid);
                Ok(())
            }
            Packet::Subscribe(s) => {
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
                let codes = granted
                    .iter()
                    .map(|(_, q)| SubscribeReasonCode::Success(qos_of(*q)))
                    .collect();
                // SUBACK goes out before any retained message.
                conn.queue(Packet::SubAck(SubAck::new(s.pkid, codes)));
                self.shared
                    .router
                    .subscribe(&self.client_key, self.conn_id, &granted);
                Ok(())
            }
            Packet::Unsubscribe(u) => {
                self.shared
                    .router
                    .unsubscribe(&self.client_key, self.conn_id, &u.topics);
                conn.queue(Packet::UnsubAck(UnsubAck::new(u.pkid)));
                Ok(())
            }
            Packet::PingReq => {
                conn.queue(Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect => Err(DisconnectReason::ClientInitiated),
            other => {
                tracing::info!(packet = ?other, "unexpected packet; disconnecting");
                Err(DisconnectReason::ClientError)
            }
        }
    }
}
