//! A thing's connectivity as fleet indexing shows it (pure, no I/O): the
//! broker's record of the client id equal to the thing's name (AWS ties the
//! two the same way) as searchable fields, as SearchIndex's
//! `connectivity` (botocore's ThingConnectivity) and as
//! GetThingConnectivityData's answer.

use gopigo_broker::Connectivity;
use serde_json::{json, Value};

use super::document::{Doc, Val};

/// Adds `connectivity.connected`, and when known `connectivity.timestamp`
/// (Unix ms) and `connectivity.disconnectReason`.
pub fn push_fields(doc: &mut Doc, c: Option<&Connectivity>) {
    doc.push(
        "connectivity.connected",
        Val::Bool(c.is_some_and(|c| c.connected)),
    );
    if let Some(c) = c {
        doc.push("connectivity.timestamp", Val::Num(c.timestamp_ms as f64));
        if let Some(r) = c.disconnect_reason {
            doc.push("connectivity.disconnectReason", Val::Str(r.as_str().into()));
        }
    }
}

/// ThingConnectivity: `connected`, `timestamp` (a Long of Unix ms) and
/// `disconnectReason`; a thing that never connected is only
/// `connected: false`.
pub fn thing_connectivity(c: Option<&Connectivity>) -> Value {
    let mut out = json!({ "connected": c.is_some_and(|c| c.connected) });
    if let Some(c) = c {
        out["timestamp"] = json!(c.timestamp_ms);
        if let Some(r) = c.disconnect_reason {
            out["disconnectReason"] = json!(r.as_str());
        }
    }
    out
}

/// GetThingConnectivityData's answer: `thingName`, `connected`, and when
/// known `timestamp` (a Timestamp: Unix seconds, as every REST-JSON
/// timestamp, so SDKs read the right date) and `disconnectReason`.
pub fn connectivity_data(thing: &str, c: Option<&Connectivity>) -> Value {
    let mut out = thing_connectivity(c);
    out["thingName"] = json!(thing);
    if let Some(c) = c {
        out["timestamp"] = json!(c.timestamp_ms as f64 / 1000.0);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::query::parse;
    use super::*;
    use gopigo_broker::DisconnectReason;

    const ONLINE: Connectivity = Connectivity {
        connected: true,
        timestamp_ms: 1_764_000_000_123,
        disconnect_reason: None,
    };
    const DROPPED: Connectivity = Connectivity {
        connected: false,
        timestamp_ms: 1_764_000_500_000,
        disconnect_reason: Some(DisconnectReason::ConnectionLost),
    };

    #[test]
    fn shapes_of_the_three_states() {
        assert_eq!(thing_connectivity(None), json!({ "connected": false }));
        assert_eq!(
            thing_connectivity(Some(&ONLINE)),
            json!({ "connected": true, "timestamp": 1_764_000_000_123u64 })
        );
        assert_eq!(
            thing_connectivity(Some(&DROPPED)),
            json!({ "connected": false, "timestamp": 1_764_000_500_000u64,
                    "disconnectReason": "CONNECTION_LOST" })
        );
        assert_eq!(
            connectivity_data("r1", None),
            json!({ "thingName": "r1", "connected": false })
        );
        let d = connectivity_data("r1", Some(&ONLINE));
        assert_eq!(d["timestamp"].as_f64(), Some(1_764_000_000.123));
        assert_eq!(d["connected"], true);
        assert!(d.get("disconnectReason").is_none());
    }

    #[test]
    fn queries_over_the_fields() {
        let docs: Vec<Doc> = [None, Some(&ONLINE), Some(&DROPPED)]
            .into_iter()
            .map(|c| {
                let mut d = Doc::default();
                push_fields(&mut d, c);
                d
            })
            .collect();
        let table = [
            ("connectivity.connected:true", "1"),
            ("connectivity.connected:false", "02"),
            ("connectivity.timestamp:[1764000000000 TO *]", "12"),
            ("connectivity.timestamp:{1764000000123 TO *}", "2"),
            ("connectivity.timestamp:*", "12"),
            ("connectivity.disconnectReason:CONNECTION_LOST", "2"),
            ("connectivity.disconnectReason:connection*", "2"),
            ("NOT connectivity.disconnectReason:*", "01"),
            (
                "connectivity.connected:false AND connectivity.timestamp:[* TO 1764000600000]",
                "2",
            ),
        ];
        for (q, want) in table {
            let q = parse(q).unwrap().unwrap();
            let got: String = docs
                .iter()
                .enumerate()
                .filter(|(_, d)| d.matches(&q))
                .map(|(i, _)| i.to_string())
                .collect();
            assert_eq!(got, want, "{q:?}");
        }
    }
}
