//! The queue between the router and one connection task: every delivery a
//! connection has yet to write. Bounded: QoS 0 messages are held up to a
//! byte and a count cap and, past them, the oldest waiting QoS 0 message is
//! dropped (AWS IoT drops QoS 0 to a slow subscriber rather than buffering);
//! QoS 1 deliveries are bounded by the session's in-flight window.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::router::Delivery;

/// Bytes a delivery is accounted for: topic and payload.
pub(crate) fn delivery_bytes(d: &Delivery) -> usize {
    d.topic.len() + d.payload.len()
}

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<Delivery>,
    qos0_count: usize,
    qos0_bytes: usize,
}

/// Broker-wide counters every outbox adds to.
#[derive(Debug, Default)]
pub(crate) struct OutboxCounters {
    /// QoS 0 messages dropped because a subscriber's queue was full.
    pub dropped: AtomicU64,
    /// Highest QoS 0 byte count any one queue ever held.
    pub peak_qos0_bytes: AtomicUsize,
}

/// The bounded delivery queue of one connection.
#[derive(Debug)]
pub(crate) struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    max_qos0: usize,
    max_qos0_bytes: usize,
    counters: Arc<OutboxCounters>,
}

impl Outbox {
    pub fn new(max_qos0: usize, max_qos0_bytes: usize, counters: Arc<OutboxCounters>) -> Self {
        Outbox {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            max_qos0: max_qos0.max(1),
            max_qos0_bytes,
            counters,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a delivery. A QoS 0 one first makes room by dropping the
    /// oldest waiting QoS 0 messages; if it alone is over the byte cap it is
    /// dropped itself.
    pub fn push(&self, d: Delivery) {
        {
            let mut g = self.lock();
            if d.qos == 0 {
                let size = delivery_bytes(&d);
                if size > self.max_qos0_bytes {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                while g.qos0_count >= self.max_qos0 || g.qos0_bytes + size > self.max_qos0_bytes {
                    if !drop_oldest_qos0(&mut g) {
                        break;
                    }
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
                g.qos0_count += 1;
                g.qos0_bytes += size;
                self.counters
                    .peak_qos0_bytes
                    .fetch_max(g.qos0_bytes, Ordering::Relaxed);
            }
            g.queue.push_back(d);
        }
        self.notify.notify_one();
    }

    /// Takes waiting deliveries, oldest first, until `max_bytes` or
    /// `max_count` are taken (at least one when any wait).
    pub fn take(&self, max_bytes: usize, max_count: usize, out: &mut Vec<Delivery>) {
        let mut g = self.lock();
        let (mut taken, mut count) = (0, 0);
        while let Some(d) = g.queue.pop_front() {
            let size = delivery_bytes(&d);
            if d.qos == 0 {
                g.qos0_count -= 1;
                g.qos0_bytes -= size;
            }
            taken += size;
            count += 1;
            out.push(d);
            if taken >= max_bytes || count >= max_count {
                break;
            }
        }
        if !g.queue.is_empty() {
            // More to write: the connection comes back without waiting.
            self.notify.notify_one();
        }
    }

    /// Waits until something may be waiting (a permit is kept when a push
    /// happened while nobody waited).
    pub async fn ready(&self) {
        self.notify.notified().await;
    }

    /// Whether deliveries are waiting.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.lock().queue.is_empty()
    }

    /// Bytes of QoS 0 messages waiting now.
    pub fn qos0_bytes(&self) -> usize {
        self.lock().qos0_bytes
    }
}

/// Removes the oldest QoS 0 delivery; false when there is none.
fn drop_oldest_qos0(g: &mut Inner) -> bool {
    let Some(pos) = g.queue.iter().position(|d| d.qos == 0) else {
        return false;
    };
    if let Some(d) = g.queue.remove(pos) {
        g.qos0_count -= 1;
        g.qos0_bytes -= delivery_bytes(&d);
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn outbox(max_qos0: usize, max_bytes: usize) -> Outbox {
        Outbox::new(max_qos0, max_bytes, Arc::default())
    }

    fn d(i: usize, qos: u8, size: usize) -> Delivery {
        Delivery {
            topic: Arc::from("t"),
            payload: Bytes::from(vec![i as u8; size]),
            qos,
            pkid: i as u16,
            retain: false,
            dup: false,
        }
    }

    #[test]
    fn qos0_bytes_stay_under_the_cap_and_the_oldest_go_first() {
        let o = outbox(1000, 10 * 101);
        for i in 0..50 {
            o.push(d(i, 0, 100));
            assert!(o.qos0_bytes() <= 1010);
        }
        assert_eq!(o.counters.dropped.load(Ordering::Relaxed), 40);
        assert!(o.counters.peak_qos0_bytes.load(Ordering::Relaxed) <= 1010);
        let mut out = Vec::new();
        o.take(usize::MAX, usize::MAX, &mut out);
        let firsts: Vec<u8> = out.iter().map(|d| d.payload[0]).collect();
        assert_eq!(firsts, (40..50).collect::<Vec<u8>>());
        assert_eq!(o.qos0_bytes(), 0);
    }

    #[test]
    fn qos1_is_never_dropped_and_the_count_cap_holds() {
        let o = outbox(2, usize::MAX);
        o.push(d(1, 1, 10));
        for i in 2..6 {
            o.push(d(i, 0, 10));
        }
        let mut out = Vec::new();
        o.take(usize::MAX, usize::MAX, &mut out);
        let ids: Vec<u16> = out.iter().map(|d| d.pkid).collect();
        assert_eq!(ids, vec![1, 4, 5]);
    }

    #[test]
    fn take_stops_after_the_byte_budget() {
        let o = outbox(100, usize::MAX);
        for i in 0..10 {
            o.push(d(i, 0, 100));
        }
        let mut out = Vec::new();
        o.take(250, 100, &mut out);
        assert_eq!(out.len(), 3);
        assert!(!o.is_empty());
        out.clear();
        o.take(usize::MAX, 2, &mut out);
        assert_eq!(out.len(), 2);
    }
}
