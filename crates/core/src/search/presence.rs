//! Thing connectivity that survives a restart: the broker keeps each client
//! id's last connect or disconnect in memory; the core also writes it to
//! `core.db` from the broker's lifecycle events
//! (`$aws/events/presence/{connected,disconnected}/{clientId}`), for
//! registered things only, so the table is bounded by the registry.
//!
//! When the core opens its data dir, a thing still recorded as connected
//! lost that connection when the previous run ended: it is recorded as
//! disconnected at the start, with reason SERVER_INITIATED_DISCONNECT (the
//! server ended the connection), which is what AWS reports once a device's
//! connection has ended. Fleet indexing reads the broker's record first and
//! this one for a thing the broker has not seen since the start.

use gopigo_broker::{Connectivity, DisconnectReason};
use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use crate::error::ApiError;
use crate::store::Store;

/// The table, run with the registry's schema.
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS thing_connectivity (
    thing TEXT PRIMARY KEY REFERENCES things(name) ON DELETE CASCADE,
    connected INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    reason TEXT
);
"#;

/// The client id and connectivity a lifecycle event says (pure); `None`
/// for anything else.
pub fn parse_event(payload: &[u8]) -> Option<(String, Connectivity)> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let client = v.get("clientId")?.as_str()?.to_string();
    let timestamp_ms = v.get("timestamp")?.as_u64()?;
    let c = match v.get("eventType")?.as_str()? {
        "connected" => Connectivity {
            connected: true,
            timestamp_ms,
            disconnect_reason: None,
        },
        "disconnected" => Connectivity {
            connected: false,
            timestamp_ms,
            disconnect_reason: v
                .get("disconnectReason")
                .and_then(Value::as_str)
                .and_then(DisconnectReason::from_name),
        },
        _ => return None,
    };
    Some((client, c))
}

impl Store {
    /// Records a thing's last connect or disconnect (ignored for a client
    /// id that is no registered thing, and for one older than the record).
    pub fn record_connectivity(&self, thing: &str, c: &Connectivity) -> Result<(), ApiError> {
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO thing_connectivity(thing,connected,timestamp_ms,reason)
                 SELECT ?1,?2,?3,?4 WHERE EXISTS (SELECT 1 FROM things WHERE name=?1)
                 ON CONFLICT(thing) DO UPDATE SET connected=excluded.connected,
                   timestamp_ms=excluded.timestamp_ms, reason=excluded.reason
                 WHERE excluded.timestamp_ms >= thing_connectivity.timestamp_ms",
                params![
                    thing,
                    c.connected,
                    c.timestamp_ms as i64,
                    c.disconnect_reason.map(DisconnectReason::as_str)
                ],
            )?;
            Ok(())
        })
    }

    /// A thing's recorded connectivity, if any.
    pub fn stored_connectivity(&self, thing: &str) -> Result<Option<Connectivity>, ApiError> {
        self.tx(|tx| {
            Ok(tx
                .query_row(
                    "SELECT connected,timestamp_ms,reason FROM thing_connectivity WHERE thing=?1",
                    [thing],
                    |r| {
                        let reason: Option<String> = r.get(2)?;
                        Ok(Connectivity {
                            connected: r.get(0)?,
                            timestamp_ms: r.get::<_, i64>(1)? as u64,
                            disconnect_reason: reason
                                .as_deref()
                                .and_then(DisconnectReason::from_name),
                        })
                    },
                )
                .optional()?)
        })
    }

    /// At start: every thing still recorded as connected lost its
    /// connection when the last run ended, at `now_ms` as far as anyone
    /// here can tell.
    pub fn connections_ended_by_restart(&self, now_ms: u64) -> Result<usize, ApiError> {
        self.tx(|tx| {
            Ok(tx.execute(
                "UPDATE thing_connectivity SET connected=0, timestamp_ms=?1, reason=?2 WHERE connected=1",
                params![
                    now_ms as i64,
                    DisconnectReason::ServerInitiated.as_str()
                ],
            )?)
        })
    }
}

/// Writes the broker's lifecycle events to the store while the core runs.
pub async fn record(state: std::sync::Arc<crate::CoreState>, broker: gopigo_broker::BrokerHandle) {
    let mut events = broker.subscribe_internal("$aws/events/presence/+/+");
    while let Some((_, payload)) = events.recv().await {
        let Some((thing, c)) = parse_event(&payload) else {
            continue;
        };
        let st = state.clone();
        match tokio::task::spawn_blocking(move || st.store.record_connectivity(&thing, &c)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot record a thing's connectivity"),
            Err(e) => tracing::error!(error = %e, "connectivity record task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Thing;

    #[test]
    fn events_parse() {
        let (id, c) =
            parse_event(br#"{"clientId":"r1","timestamp":5,"eventType":"connected"}"#).unwrap();
        assert_eq!((id.as_str(), c.connected, c.timestamp_ms), ("r1", true, 5));
        let (_, c) = parse_event(
            br#"{"clientId":"r1","timestamp":6,"eventType":"disconnected","disconnectReason":"CONNECTION_LOST"}"#,
        )
        .unwrap();
        assert_eq!(c.disconnect_reason, Some(DisconnectReason::ConnectionLost));
        assert!(parse_event(b"not json").is_none());
        assert!(
            parse_event(br#"{"clientId":"r1","timestamp":6,"eventType":"subscribed"}"#).is_none()
        );
    }

    #[test]
    fn records_survive_and_a_restart_ends_connections() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("core.db")).unwrap();
        store
            .insert_thing(&Thing {
                name: "r1".into(),
                id: "1".into(),
                type_name: None,
                attributes: Default::default(),
                version: 1,
            })
            .unwrap();
        let up = |t| Connectivity {
            connected: true,
            timestamp_ms: t,
            disconnect_reason: None,
        };
        store.record_connectivity("r1", &up(10)).unwrap();
        store.record_connectivity("stranger", &up(10)).unwrap();
        assert_eq!(store.stored_connectivity("stranger").unwrap(), None);
        // An older event does not overwrite a newer one.
        let down = Connectivity {
            connected: false,
            timestamp_ms: 5,
            disconnect_reason: Some(DisconnectReason::ConnectionLost),
        };
        store.record_connectivity("r1", &down).unwrap();
        assert_eq!(store.stored_connectivity("r1").unwrap(), Some(up(10)));
        drop(store);
        let store = Store::open(&dir.path().join("core.db")).unwrap();
        assert_eq!(store.connections_ended_by_restart(99).unwrap(), 1);
        assert_eq!(
            store.stored_connectivity("r1").unwrap(),
            Some(Connectivity {
                connected: false,
                timestamp_ms: 99,
                disconnect_reason: Some(DisconnectReason::ServerInitiated),
            })
        );
        store.delete_thing("r1").unwrap();
        assert_eq!(store.stored_connectivity("r1").unwrap(), None);
    }
}
