//! Each client id's last known connectivity, as AWS IoT's fleet indexing
//! reports it (`connectivity.connected`, `timestamp`, `disconnectReason`):
//! the ledger the router keeps under its lock (pure, no I/O).
//!
//! Connected client ids are bounded by the connection cap; disconnected ones
//! are kept up to [`MAX_DISCONNECTED`], the oldest disconnect forgotten
//! first (AWS too says the values "might be missing" for a thing
//! disconnected long ago). The ledger lives in memory: after a restart every
//! client id is unknown to it until it connects again (the core keeps its
//! own copy from the lifecycle events to answer for that time).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::events::DisconnectReason;

/// Most disconnected client ids remembered; past it the oldest disconnect
/// is forgotten (about 200 bytes each, so 2 MB at most).
pub const MAX_DISCONNECTED: usize = 10_000;

/// What is known of one client id's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connectivity {
    /// Whether a connection with this client id is open now.
    pub connected: bool,
    /// When it last connected or disconnected, Unix milliseconds (the
    /// `timestamp` of its last lifecycle event).
    pub timestamp_ms: u64,
    /// Why its last connection ended; `None` while connected.
    pub disconnect_reason: Option<DisconnectReason>,
}

/// The ledger: one record per client id seen since start (bounded).
#[derive(Debug)]
pub(crate) struct Ledger {
    records: HashMap<Arc<str>, Connectivity>,
    /// The disconnected records by (timestamp, order of arrival), oldest
    /// first, for forgetting.
    disconnected: BTreeSet<(u64, u64, Arc<str>)>,
    /// Arrival order of each disconnected record (its key in `disconnected`).
    order: HashMap<Arc<str>, u64>,
    next: u64,
    cap: usize,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::with_cap(MAX_DISCONNECTED)
    }
}

impl Ledger {
    /// A ledger that remembers at most `cap` disconnected client ids.
    pub fn with_cap(cap: usize) -> Self {
        Ledger {
            records: HashMap::new(),
            disconnected: BTreeSet::new(),
            order: HashMap::new(),
            next: 0,
            cap,
        }
    }

    /// A connection with `client_id` opened at `at_ms`.
    pub fn connected(&mut self, client_id: &Arc<str>, at_ms: u64) {
        self.unlist(client_id);
        self.records.insert(
            client_id.clone(),
            Connectivity {
                connected: true,
                timestamp_ms: at_ms,
                disconnect_reason: None,
            },
        );
    }

    /// The current connection of `client_id` ended at `at_ms` for `reason`
    /// (the caller checked that it was the current one, not one taken over).
    pub fn disconnected(&mut self, client_id: &Arc<str>, reason: DisconnectReason, at_ms: u64) {
        self.unlist(client_id);
        self.records.insert(
            client_id.clone(),
            Connectivity {
                connected: false,
                timestamp_ms: at_ms,
                disconnect_reason: Some(reason),
            },
        );
        self.next += 1;
        self.order.insert(client_id.clone(), self.next);
        self.disconnected
            .insert((at_ms, self.next, client_id.clone()));
        while self.disconnected.len() > self.cap {
            if let Some((_, _, oldest)) = self.disconnected.pop_first() {
                self.order.remove(&oldest);
                self.records.remove(&oldest);
            }
        }
    }

    /// Takes a disconnected record of `client_id` off the forgetting list.
    fn unlist(&mut self, client_id: &Arc<str>) {
        if let Some(n) = self.order.remove(client_id) {
            if let Some(r) = self.records.get(client_id) {
                self.disconnected
                    .remove(&(r.timestamp_ms, n, client_id.clone()));
            }
        }
    }

    /// What is known of `client_id`; `None` when it never connected since
    /// start (or was forgotten).
    pub fn get(&self, client_id: &str) -> Option<Connectivity> {
        self.records.get(client_id).copied()
    }

    /// Client ids connected now.
    #[cfg(test)]
    fn connected_ids(&self) -> impl Iterator<Item = &Arc<str>> {
        self.records
            .iter()
            .filter(|(_, r)| r.connected)
            .map(|(id, _)| id)
    }

    /// How many client ids are remembered (connected and disconnected).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn records_the_last_connect_and_disconnect() {
        let mut l = Ledger::default();
        assert_eq!(l.get("r1"), None, "never connected");
        l.connected(&id("r1"), 100);
        assert_eq!(
            l.get("r1"),
            Some(Connectivity {
                connected: true,
                timestamp_ms: 100,
                disconnect_reason: None
            })
        );
        l.disconnected(&id("r1"), DisconnectReason::ConnectionLost, 250);
        assert_eq!(
            l.get("r1"),
            Some(Connectivity {
                connected: false,
                timestamp_ms: 250,
                disconnect_reason: Some(DisconnectReason::ConnectionLost)
            })
        );
        // A new connection clears the reason: it has not dropped.
        l.connected(&id("r1"), 300);
        assert_eq!(l.get("r1").map(|r| r.disconnect_reason), Some(None));
        assert_eq!(l.connected_ids().count(), 1);
    }

    #[test]
    fn forgets_the_oldest_disconnect_past_the_cap_never_a_connected_one() {
        let mut l = Ledger::with_cap(2);
        l.connected(&id("live"), 1);
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            l.connected(&id(name), 10 + i as u64);
            l.disconnected(&id(name), DisconnectReason::ClientInitiated, 20 + i as u64);
        }
        assert_eq!(l.get("a"), None, "the oldest disconnect is forgotten");
        assert!(l.get("b").is_some() && l.get("c").is_some());
        assert!(l.get("live").is_some_and(|r| r.connected));
        // Reconnecting takes a record off the forgetting list.
        l.connected(&id("b"), 40);
        l.connected(&id("d"), 41);
        l.disconnected(&id("d"), DisconnectReason::KeepAliveTimeout, 42);
        l.connected(&id("e"), 43);
        l.disconnected(&id("e"), DisconnectReason::KeepAliveTimeout, 44);
        assert_eq!(l.get("c"), None);
        assert!(l.get("b").is_some_and(|r| r.connected));
        assert_eq!(l.len(), 4, "live, b (connected), d and e");
    }

    #[test]
    fn a_flood_of_client_ids_stays_bounded() {
        let mut l = Ledger::with_cap(100);
        for i in 0..10_000u64 {
            let c = id(&format!("flood-{i}"));
            l.connected(&c, i);
            l.disconnected(&c, DisconnectReason::ConnectionLost, i);
        }
        assert_eq!(l.len(), 100);
        assert!(l.get("flood-9999").is_some());
        assert_eq!(l.get("flood-0"), None);
    }
}
