//! Durable broker state in SQLite (tables prefixed `broker_`, WAL mode):
//! retained messages, persistent sessions, their subscriptions and their
//! queued QoS 1 messages. Writes are synchronous and small, so what a
//! publisher has seen acknowledged survives `kill -9`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};

use crate::BrokerError;

/// A retained message as stored.
#[derive(Debug, Clone)]
pub(crate) struct StoredRetained {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
}

/// A queued QoS 1 message as stored.
#[derive(Debug, Clone)]
pub(crate) struct StoredMessage {
    pub id: i64,
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
}

/// A persistent session as stored.
#[derive(Debug, Clone)]
pub(crate) struct StoredSession {
    pub client_id: String,
    /// Epoch ms after which the session is gone; `None` while it was connected.
    pub expires_at_ms: Option<i64>,
    pub subscriptions: Vec<(String, u8)>,
    pub queue: Vec<StoredMessage>,
}

/// Everything loaded at start.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub retained: Vec<StoredRetained>,
    pub sessions: Vec<StoredSession>,
}

/// The SQLite file behind the broker.
pub(crate) struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS broker_retained(
    topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS broker_sessions(
    client_id TEXT PRIMARY KEY, expires_at_ms INTEGER);
CREATE TABLE IF NOT EXISTS broker_subscriptions(
    client_id TEXT NOT NULL, filter TEXT NOT NULL, qos INTEGER NOT NULL,
    PRIMARY KEY(client_id, filter));
CREATE TABLE IF NOT EXISTS broker_queue(
    id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL,
    topic TEXT NOT NULL, payload BLOB NOT NULL, retain INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS broker_queue_client ON broker_queue(client_id, id);
";

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, BrokerError> {
        let err = |source| BrokerError::Store {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Store {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, what: &str, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
        let conn = match self.conn.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        match f(&conn) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "broker store: {what} failed");
                None
            }
        }
    }

    /// Reads everything back.
    pub fn load(&self) -> Result<Loaded, BrokerError> {
        let conn = match self.conn.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        let err = |source| BrokerError::Store {
            path: self.path.clone(),
            source,
        };
        let load = || -> rusqlite::Result<Loaded> {
            let mut loaded = Loaded::default();
            let mut stmt = conn.prepare("SELECT topic, payload, qos FROM broker_retained")?;
            let rows = stmt.query_map([], |r| {
                Ok(StoredRetained {
                    topic: r.get(0)?,
                    payload: Bytes::from(r.get::<_, Vec<u8>>(1)?),
                    qos: r.get(2)?,
                })
            })?;
            for row in rows {
                loaded.retained.push(row?);
            }
            let mut stmt = conn.prepare("SELECT client_id, expires_at_ms FROM broker_sessions")?;
            let rows = stmt.query_map([], |r| {
                Ok(StoredSession {
                    client_id: r.get(0)?,
                    expires_at_ms: r.get(1)?,
                    subscriptions: Vec::new(),
                    queue: Vec::new(),
                })
            })?;
            for row in rows {
                loaded.sessions.push(row?);
            }
            let mut subs =
                conn.prepare("SELECT filter, qos FROM broker_subscriptions WHERE client_id = ?1")?;
            let mut queue = conn.prepare(
                "SELECT id, topic, payload, retain FROM broker_queue WHERE client_id = ?1 ORDER BY id",
            )?;
            for s in &mut loaded.sessions {
                for row in subs.query_map([&s.client_id], |r| Ok((r.get(0)?, r.get(1)?)))? {
                    s.subscriptions.push(row?);
                }
                for row in queue.query_map([&s.client_id], |r| {
                    Ok(StoredMessage {
                        id: r.get(0)?,
                        topic: r.get(1)?,
                        payload: Bytes::from(r.get::<_, Vec<u8>>(2)?),
                        retain: r.get(3)?,
                    })
                })? {
                    s.queue.push(row?);
                }
            }
            // Queue rows of sessions that no longer exist are garbage.
            conn.execute(
                "DELETE FROM broker_queue WHERE client_id NOT IN (SELECT client_id FROM broker_sessions)",
                [],
            )?;
            Ok(loaded)
        };
        load().map_err(err)
    }

    pub fn save_retained(&self, topic: &str, payload: &[u8], qos: u8) {
        self.with("save retained", |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO broker_retained(topic, payload, qos) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![topic, payload, qos])
        });
    }

    pub fn delete_retained(&self, topic: &str) {
        self.with("delete retained", |c| {
            c.prepare_cached("DELETE FROM broker_retained WHERE topic = ?1")?
                .execute([topic])
        });
    }

    /// Creates or updates a persistent session row.
    pub fn save_session(&self, client_id: &str, expires_at_ms: Option<i64>) {
        self.with("save session", |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO broker_sessions(client_id, expires_at_ms) VALUES (?1, ?2)",
            )?
            .execute(params![client_id, expires_at_ms])
        });
    }

    /// Deletes a session with its subscriptions and queue.
    pub fn delete_session(&self, client_id: &str) {
        self.with("delete session", |c| {
            let exists: Option<i64> = c
                .prepare_cached("SELECT 1 FROM broker_sessions WHERE client_id = ?1")?
                .query_row([client_id], |r| r.get(0))
                .optional()?;
            if exists.is_none() {
                return Ok(());
            }
            c.execute(
                "DELETE FROM broker_sessions WHERE client_id = ?1",
                [client_id],
            )?;
            c.execute(
                "DELETE FROM broker_subscriptions WHERE client_id = ?1",
                [client_id],
            )?;
            c.execute("DELETE FROM broker_queue WHERE client_id = ?1", [client_id])?;
            Ok(())
        });
    }

    pub fn save_subscription(&self, client_id: &str, filter: &str, qos: u8) {
        self.with("save subscription", |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO broker_subscriptions(client_id, filter, qos) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![client_id, filter, qos])
        });
    }

    pub fn delete_subscription(&self, client_id: &str, filter: &str) {
        self.with("delete subscription", |c| {
            c.prepare_cached(
                "DELETE FROM broker_subscriptions WHERE client_id = ?1 AND filter = ?2",
            )?
            .execute([client_id, filter])
        });
    }

    /// Queues a QoS 1 message for a persistent session; returns its row id.
    pub fn enqueue(
        &self,
        client_id: &str,
        topic: &str,
        payload: &[u8],
        retain: bool,
    ) -> Option<i64> {
        self.with("queue message", |c| {
            c.prepare_cached("INSERT INTO broker_queue(client_id, topic, payload, retain) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![client_id, topic, payload, retain])?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Removes an acknowledged (or dropped) queued message.
    pub fn dequeue(&self, id: i64) {
        self.with("dequeue message", |c| {
            c.prepare_cached("DELETE FROM broker_queue WHERE id = ?1")?
                .execute([id])
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sqlite");
        {
            let s = Store::open(&path).unwrap();
            s.save_retained("a/b", b"x", 1);
            s.save_retained("a/c", b"y", 0);
            s.delete_retained("a/c");
            s.save_session("c1", Some(5));
            s.save_subscription("c1", "a/#", 1);
            let id1 = s.enqueue("c1", "a/b", b"1", false).unwrap();
            s.enqueue("c1", "a/b", b"2", false).unwrap();
            s.dequeue(id1);
            s.save_session("gone", None);
            s.enqueue("gone", "t", b"z", false);
            s.delete_session("gone");
        }
        let s = Store::open(&path).unwrap();
        let l = s.load().unwrap();
        assert_eq!(l.retained.len(), 1);
        assert_eq!(l.retained[0].topic, "a/b");
        assert_eq!(l.sessions.len(), 1);
        let c1 = &l.sessions[0];
        assert_eq!(c1.client_id, "c1");
        assert_eq!(c1.expires_at_ms, Some(5));
        assert_eq!(c1.subscriptions, vec![("a/#".to_owned(), 1)]);
        assert_eq!(c1.queue.len(), 1);
        assert_eq!(&c1.queue[0].payload[..], b"2");
    }
}
