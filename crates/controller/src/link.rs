//! The dashboard's broker link: one MQTT session (rumqttc over mutual TLS,
//! the controller's own identity) that subscribes to the fleet's topics,
//! feeds every message to the [`Hub`], publishes what the pages ask for, and
//! reconnects with a short back-off, telling the pages while it is down.
//!
//! What it holds (see [`crate::onscreen`] for the arithmetic against AWS's
//! 50 subscriptions per connection):
//! - the low-rate wildcard filters, all the time;
//! - exact topics the hub asks for ([`Outgoing::Subscribe`]: the full-rate
//!   topics of the robots on screen, a watched robot's video) until it
//!   lets them go ([`Outgoing::Unsubscribe`]), again after a reconnect;
//! - each known robot's `gopigo/{thing}/status` for a moment
//!   ([`Outgoing::Follow`]): retained messages reach only
//!   subscriptions that name their topic exactly (AWS IoT's rule, which
//!   the local core follows), so the link subscribes to at most
//!   [`RETAINED_WINDOW`] of them at a time and unsubscribes each once its
//!   retained status came or [`RETAINED_WAIT`] passed; after a reconnect
//!   it reads them all again. Later status changes come through the
//!   wildcard filter. With each read it asks for the robot's shadow. The
//!   reads start at most one per [`READ_EVERY`]: each brings up to two
//!   messages (the status, the shadow), so a dashboard starting with a
//!   hundred robots stays at 20 a second instead of a burst that AWS's
//!   100 publishes a second per connection would cut (and the local core
//!   with `--limits aws` does: the statuses were lost).

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use gopigo_protocol::{RobotTopic, ShadowMsg, Topic, FLEET_FILTERS, PRESENCE_FILTERS};
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubAck, SubscribeFilter,
    SubscribeReasonCode,
};
use tokio::sync::mpsc;

use crate::hub::{Hub, Outgoing};
use crate::onscreen::RETAINED_WINDOW;

/// The topic filters the dashboard needs ([`FLEET_FILTERS`]).
pub fn subscriptions() -> Vec<String> {
    FLEET_FILTERS.iter().map(ToString::to_string).collect()
}

/// The lifecycle-event filters ([`PRESENCE_FILTERS`]), subscribed
/// separately after the others: a policy that does not grant them makes the
/// broker (AWS and the local core alike) close the connection, and then the
/// dashboard goes on without them, relying on the robots' retained status
/// and last will.
pub fn presence_subscriptions() -> Vec<String> {
    PRESENCE_FILTERS.iter().map(ToString::to_string).collect()
}

/// AWS IoT accepts at most 8 topic filters in one SUBSCRIBE.
pub const MAX_FILTERS_PER_SUBSCRIBE: usize = 8;

/// How long an exact status subscription waits for a retained status (a
/// robot that never connected has none).
pub const RETAINED_WAIT: Duration = Duration::from_secs(5);
/// The pace of the retained reads: at most ten robots a second.
pub const READ_EVERY: Duration = Duration::from_millis(100);

/// The one-shot reads of robots' retained status (see the module docs):
/// pure bookkeeping, the link does the I/O.
#[derive(Debug, Default)]
pub struct RetainedReads {
    /// Every topic ever asked for: read again after a reconnect.
    all: BTreeSet<String>,
    /// Waiting for a slot.
    queue: VecDeque<String>,
    /// Subscribed now, with the time each gives up.
    active: Vec<(String, Instant)>,
    /// No read starts before this (the pace, [`READ_EVERY`]).
    next_start: Option<Instant>,
}

impl RetainedReads {
    /// Asks for `topic`'s retained message; false when already asked.
    pub fn want(&mut self, topic: String) -> bool {
        if !self.all.insert(topic.clone()) {
            return false;
        }
        self.queue.push_back(topic);
        true
    }

    /// A new connection: every topic is read again (nothing is subscribed).
    pub fn restart(&mut self) {
        self.active.clear();
        self.next_start = None;
        self.queue = self.all.iter().cloned().collect();
    }

    /// The connection is gone: nothing is subscribed any more.
    pub fn drop_active(&mut self) {
        self.active.clear();
    }

    /// The topic to subscribe now, if the window has room and the pace allows.
    pub fn start(&mut self, now: Instant) -> Option<String> {
        if self.active.len() >= RETAINED_WINDOW || self.next_start.is_some_and(|t| now < t) {
            return None;
        }
        let t = self.queue.pop_front()?;
        self.active.push((t.clone(), now + RETAINED_WAIT));
        self.next_start = Some(now + READ_EVERY);
        Some(t)
    }

    /// A message came on `topic`: true when it was a read in progress
    /// (which is now done and should be unsubscribed).
    pub fn arrived(&mut self, topic: &str) -> bool {
        let before = self.active.len();
        self.active.retain(|(t, _)| t != topic);
        self.active.len() != before
    }

    /// Reads that waited long enough (to unsubscribe).
    pub fn expired(&mut self, now: Instant) -> Vec<String> {
        let (gone, keep) = std::mem::take(&mut self.active)
            .into_iter()
            .partition(|(_, deadline)| *deadline <= now);
        self.active = keep;
        gone.into_iter().map(|(t, _)| t).collect()
    }

    /// How many exact status topics are subscribed now.
    pub fn active(&self) -> usize {
        self.active.len()
    }
}

/// How long to wait before reconnecting after the connection failed.
const RETRY: Duration = Duration::from_secs(1);
/// The pause before reconnecting without the refused presence filters.
const RETRY_WITHOUT_PRESENCE: Duration = Duration::from_millis(100);

/// Where the subscriptions of the current connection stand.
#[derive(Debug, Default)]
struct Subscribing {
    /// SUBSCRIBEs sent and not yet acknowledged, in order.
    pending: VecDeque<Vec<String>>,
    /// Filters the broker refused in a SUBACK.
    refused: Vec<String>,
    /// The presence SUBSCRIBE is out and unanswered.
    presence_in_flight: bool,
    /// The presence filters were sent on this connection.
    presence_sent: bool,
}

fn subscribe(
    client: &AsyncClient,
    filters: &[String],
    sub: &mut Subscribing,
) -> Result<(), String> {
    for chunk in filters.chunks(MAX_FILTERS_PER_SUBSCRIBE) {
        let subs = chunk
            .iter()
            .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
        client
            .try_subscribe_many(subs)
            .map_err(|e| format!("cannot subscribe: {e}"))?;
        sub.pending.push_back(chunk.to_vec());
    }
    Ok(())
}

/// The link's state between events; each `on_*` step handles one event.
struct Link {
    client: AsyncClient,
    hub: Arc<Hub>,
    filters: Vec<String>,
    /// False once the broker closed the connection on the presence filters.
    presence_allowed: bool,
    sub: Subscribing,
    /// Exact topics (the robots on screen) kept across reconnects.
    exact: BTreeSet<String>,
    /// Robots' retained status, read a few at a time.
    retained: RetainedReads,
    connected: bool,
}

impl Link {
    fn new(client: AsyncClient, hub: Arc<Hub>) -> Self {
        Link {
            client,
            hub,
            filters: subscriptions(),
            presence_allowed: true,
            sub: Subscribing::default(),
            exact: BTreeSet::new(),
            retained: RetainedReads::default(),
            connected: false,
        }
    }

    fn subscribe_now(&mut self, filters: &[String]) {
        if self.connected && !filters.is_empty() {
            if let Err(e) = subscribe(&self.client, filters, &mut self.sub) {
                tracing::warn!(error = %e, "cannot subscribe");
            }
        }
    }

    fn unsubscribe_now(&mut self, filter: String) {
        if self.connected {
            if let Err(e) = self.client.try_unsubscribe(filter) {
                tracing::warn!(error = %e, "cannot unsubscribe");
            }
        }
    }

    /// Starts the next retained read when the window and the pace allow,
    /// and asks for that robot's shadow.
    fn read_retained(&mut self) {
        if !self.connected {
            return;
        }
        let Some(topic) = self.retained.start(Instant::now()) else {
            return;
        };
        self.subscribe_now(std::slice::from_ref(&topic));
        if let Ok(Topic::Robot { thing, .. }) = Topic::parse(&topic) {
            self.publish(
                Topic::shadow(thing, ShadowMsg::Get).to_string(),
                b"{}".to_vec(),
            );
        }
    }

    fn publish(&self, topic: String, payload: Vec<u8>) {
        if let Err(e) = self
            .client
            .try_publish(topic.clone(), QoS::AtLeastOnce, false, payload)
        {
            tracing::warn!(topic = %topic, error = %e, "publish not queued");
        }
    }

    /// A message: a retained read in progress is done (and unsubscribed);
    /// the hub gets it either way.
    fn on_publish(&mut self, topic: &str, payload: &[u8]) {
        if self.retained.arrived(topic) {
            self.unsubscribe_now(topic.to_string());
            self.read_retained();
        }
        self.hub.ingest(topic, payload);
    }

    /// Every [`READ_EVERY`]: retained reads that waited in vain are
    /// dropped, and the next one starts.
    fn on_tick(&mut self) {
        for topic in self.retained.expired(Instant::now()) {
            self.unsubscribe_now(topic);
        }
        self.read_retained();
    }

    /// What the hub asks for: a publish, an exact topic to hold or let go,
    /// or a retained status to read.
    fn on_outgoing(&mut self, out: Outgoing) {
        match out {
            Outgoing::Publish { topic, payload } => self.publish(topic, payload),
            Outgoing::Subscribe { filter } => {
                if self.exact.insert(filter.clone()) {
                    self.subscribe_now(&[filter]);
                }
            }
            Outgoing::Unsubscribe { filter } => {
                if self.exact.remove(&filter) {
                    self.unsubscribe_now(filter);
                }
            }
            Outgoing::Follow { thing } => {
                if self
                    .retained
                    .want(Topic::robot(&thing, RobotTopic::Status).to_string())
                {
                    self.read_retained();
                }
            }
        }
    }

    /// Connected: subscribe to the filters and every exact topic again,
    /// and read the robots' retained status again.
    fn on_connack(&mut self) {
        tracing::info!("connected to the broker");
        self.connected = true;
        self.sub = Subscribing::default();
        self.retained.restart();
        let all: Vec<String> = self.filters.iter().chain(&self.exact).cloned().collect();
        if let Err(e) = subscribe(&self.client, &all, &mut self.sub) {
            self.hub.set_broker(false, Some(e));
        }
        self.read_retained();
    }

    /// A SUBACK (they come back in the order the SUBSCRIBEs went out): note
    /// refusals; once all are answered, try the presence filters, then tell
    /// the pages how the subscriptions stand.
    fn on_suback(&mut self, ack: &SubAck) {
        let chunk = self.sub.pending.pop_front().unwrap_or_default();
        self.sub.refused.extend(
            ack.return_codes
                .iter()
                .zip(chunk)
                .filter(|(c, _)| matches!(c, SubscribeReasonCode::Failure))
                .map(|(_, f)| f),
        );
        if !self.sub.pending.is_empty() {
            return;
        }
        self.sub.presence_in_flight = false;
        if self.presence_allowed && !self.sub.presence_sent {
            self.sub.presence_sent = true;
            self.sub.presence_in_flight = true;
            if let Err(e) = subscribe(&self.client, &presence_subscriptions(), &mut self.sub) {
                tracing::warn!(error = %e, "cannot subscribe to lifecycle events");
            }
        }
        if self.sub.refused.is_empty() {
            self.hub.set_broker(true, None);
        } else {
            tracing::warn!(refused = ?self.sub.refused, "subscriptions refused by the policy");
            self.hub.set_broker(
                true,
                Some(format!(
                    "the broker refused these subscriptions (check the controller's policy): {}",
                    self.sub.refused.join(", ")
                )),
            );
        }
    }

    /// The connection failed: tell the pages; returns the pause before the
    /// next attempt (short when it failed on the presence filters, which
    /// are then left out).
    fn on_error(&mut self, e: &rumqttc::ConnectionError) -> Duration {
        if self.sub.presence_in_flight {
            self.presence_allowed = false;
            tracing::warn!(
                "the broker closed the connection on the lifecycle-event subscription \
                 ($aws/events/presence/...); going on without it (grant iot:Subscribe \
                 and iot:Receive on it to the controller's policy for faster offline \
                 detection)"
            );
        } else {
            tracing::warn!(error = %e, "broker connection failed; retrying");
        }
        self.sub = Subscribing::default();
        self.connected = false;
        self.retained.drop_active();
        self.hub.set_broker(false, Some(e.to_string()));
        if self.presence_allowed {
            RETRY
        } else {
            RETRY_WITHOUT_PRESENCE
        }
    }

    /// Sends DISCONNECT when connected and lets the event loop write it (bounded).
    async fn disconnect(&self, events: &mut EventLoop) {
        if self.hub.broker_connected() && self.client.try_disconnect().is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Ok(ev) = events.poll().await {
                    if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                        break;
                    }
                }
            })
            .await;
        }
        self.hub
            .set_broker(false, Some("dashboard stopping".into()));
    }
}

/// Runs the link until `shutdown` completes, then disconnects cleanly.
pub async fn run(
    options: MqttOptions,
    hub: Arc<Hub>,
    mut outgoing: mpsc::Receiver<Outgoing>,
    shutdown: impl Future<Output = ()>,
) {
    // Nagle off: a `stop` right after a heartbeat must not wait for a delayed ACK.
    let (client, mut events) = gopigo_client::new_client(options, 256);
    let mut link = Link::new(client, hub);
    let mut tick = tokio::time::interval(READ_EVERY);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => link.on_tick(),
            out = outgoing.recv() => match out {
                None => break,
                Some(out) => link.on_outgoing(out),
            },
            ev = events.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => link.on_connack(),
                Ok(Event::Incoming(Packet::SubAck(ack))) => link.on_suback(&ack),
                Ok(Event::Incoming(Packet::Publish(p))) => link.on_publish(&p.topic, &p.payload),
                Ok(_) => {}
                Err(e) => {
                    let pause = link.on_error(&e);
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }
    link.disconnect(&mut events).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retained_reads_hold_a_window_at_a_pace_and_free_it_on_arrival_or_timeout() {
        let mut r = RetainedReads::default();
        for i in 0..RETAINED_WINDOW + 3 {
            assert!(r.want(format!("gopigo/r{i}/status")));
        }
        assert!(!r.want("gopigo/r0/status".into()), "asked once");
        let t0 = Instant::now();
        let at = |n: u32| t0 + READ_EVERY * n;
        assert_eq!(r.start(t0).as_deref(), Some("gopigo/r0/status"));
        assert_eq!(r.start(t0), None, "one per READ_EVERY");
        for n in 1..RETAINED_WINDOW as u32 {
            assert!(r.start(at(n)).is_some());
        }
        assert_eq!(r.active(), RETAINED_WINDOW);
        assert_eq!(r.start(at(20)), None, "the window is full");
        // a status came: that slot is free for the next
        assert!(r.arrived("gopigo/r0/status"));
        assert!(!r.arrived("gopigo/r0/status"), "once");
        assert!(!r.arrived("gopigo/r99/status"));
        let next = format!("gopigo/r{RETAINED_WINDOW}/status");
        assert_eq!(r.start(at(20)), Some(next));
        // the others give up after RETAINED_WAIT
        assert!(r.expired(t0 + RETAINED_WAIT / 4).is_empty());
        let gone = r.expired(at(20) + RETAINED_WAIT);
        assert_eq!(gone.len(), RETAINED_WINDOW);
        assert!(r.start(at(80)).is_some());
        assert!(r.start(at(81)).is_some());
        assert_eq!(r.start(at(82)), None, "all read");
        // a reconnect reads every robot again
        r.restart();
        assert_eq!(r.active(), 0);
        assert!(r.start(t0).is_some());
    }
}
