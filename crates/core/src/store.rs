//! The registry store: things, certificates, policies and their attachments in
//! an embedded SQLite database (WAL mode, one writer behind a mutex).
//!
//! Every multi-row change runs in one transaction, so a `kill -9` in the middle
//! of a request leaves either the old state or the new one, never half of it.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::error::ApiError;

/// Epoch seconds, as the AWS API reports timestamps.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64 / 1000.0)
        .unwrap_or(0.0)
}

/// Errors opening or migrating the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused to open or migrate the database file.
    #[error("cannot open the registry database {path}: {source} (is another `gopigo core` using this data dir, or is the file damaged? move it aside to start fresh)")]
    Open {
        /// The database file.
        path: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
}

/// A registered thing, as DescribeThing shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Thing {
    /// Thing name (unique).
    pub name: String,
    /// Random id AWS calls `thingId`.
    pub id: String,
    /// Thing type, if any.
    pub type_name: Option<String>,
    /// Attributes as a JSON object of strings.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Starts at 1 and goes up by one on every update (optimistic locking
    /// with `expectedVersion`).
    pub version: i64,
}

/// A registered certificate, as DescribeCertificate shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Certificate {
    /// Lowercase hex SHA-256 of the DER.
    pub id: String,
    /// PEM as issued.
    pub pem: String,
    /// ACTIVE, INACTIVE, REVOKED, ...
    pub status: String,
    /// Epoch seconds.
    pub created: f64,
    /// Epoch seconds.
    pub modified: f64,
    /// Validity start, epoch seconds.
    pub not_before: i64,
    /// Validity end, epoch seconds.
    pub not_after: i64,
    /// Bumped on every status change.
    pub customer_version: i64,
    /// Insertion order, for listing by creation date.
    pub seq: i64,
}

/// A policy with its default version's document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Unique within the account; what `AttachPolicy` and ARNs name it by.
    pub name: String,
    /// Document of the default version, as the user wrote it.
    pub document: String,
    /// Default version id.
    pub default_version: i64,
    /// Epoch seconds.
    pub created: f64,
    /// Epoch seconds.
    pub modified: f64,
    /// Changes whenever the default version changes.
    pub generation_id: String,
}

/// One version of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyVersion {
    /// Version id (1, 2, ...).
    pub version: i64,
    /// The JSON as the user sent it (whitespace kept).
    pub document: String,
    /// Whether it is the default version.
    pub is_default: bool,
    /// Epoch seconds.
    pub created: f64,
}

/// The SQLite-backed registry.
pub struct Store {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS things (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    type_name TEXT,
    attributes TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS certificates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    pem TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    customer_version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS policies (
    name TEXT PRIMARY KEY,
    default_version INTEGER NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    generation_id TEXT NOT NULL,
    next_version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS policy_versions (
    policy TEXT NOT NULL REFERENCES policies(name) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    document TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (policy, version)
);
CREATE TABLE IF NOT EXISTS policy_targets (
    policy TEXT NOT NULL REFERENCES policies(name) ON DELETE CASCADE,
    target TEXT NOT NULL,
    PRIMARY KEY (policy, target)
);
CREATE INDEX IF NOT EXISTS policy_targets_by_target ON policy_targets(target);
CREATE TABLE IF NOT EXISTS thing_principals (
    thing TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,
    principal TEXT NOT NULL,
    PRIMARY KEY (thing, principal)
);
CREATE INDEX IF NOT EXISTS thing_principals_by_principal ON thing_principals(principal);
CREATE TABLE IF NOT EXISTS shadows (
    thing TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (thing, name)
);
"#;

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        )
        .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        conn.execute_batch(crate::fleet::store::SCHEMA)
            .map_err(err)?;
        conn.execute_batch(crate::registration::SCHEMA)
            .map_err(err)?;
        conn.execute_batch(crate::rules::SCHEMA).map_err(err)?;
        conn.execute_batch(crate::search::presence::SCHEMA)
            .map_err(err)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written
        // (transactions roll back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one transaction.
    pub fn tx<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Reads a value from the meta table, or stores `make()` under `key`.
    pub fn meta_get_or_init(
        &self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String, ApiError> {
        self.tx(|tx| {
            if let Some(v) = tx
                .query_row("SELECT value FROM meta WHERE key=?1", [key], |r| r.get(0))
                .optional()?
            {
                return Ok(v);
            }
            let v = make();
            tx.execute("INSERT INTO meta(key,value) VALUES(?1,?2)", params![key, v])?;
            Ok(v)
        })
    }

    // ---------------------------------------------------------------- things

    /// The thing of that name, `None` when there is none.
    pub fn thing(&self, name: &str) -> Result<Option<Thing>, ApiError> {
        let conn = self.lock();
        get_thing(&conn, name)
    }

    /// Inserts a new thing; the caller checked it does not exist.
    pub fn insert_thing(&self, t: &Thing) -> Result<(), ApiError> {
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO things(name,id,type_name,attributes,version) VALUES(?1,?2,?3,?4,?5)",
                params![
                    t.name,
                    t.id,
                    t.type_name,
                    serde_json::Value::Object(t.attributes.clone()).to_string(),
                    t.version
                ],
            )?;
            Ok(())
        })
    }

    /// Replaces a thing's type and attributes and bumps its version.
    pub fn update_thing(&self, t: &Thing) -> Result<(), ApiError> {
        self.tx(|tx| {
            tx.execute(
                "UPDATE things SET type_name=?2, attributes=?3, version=?4 WHERE name=?1",
                params![
                    t.name,
                    t.type_name,
                    serde_json::Value::Object(t.attributes.clone()).to_string(),
                    t.version
                ],
            )?;
            Ok(())
        })
    }

    /// Deletes a thing (the caller has checked that no principal is attached;
    /// stale attachment rows are cleared). Returns whether it existed.
    pub fn delete_thing(&self, name: &str) -> Result<bool, ApiError> {
        self.tx(|tx| {
            tx.execute("DELETE FROM thing_principals WHERE thing=?1", [name])?;
            Ok(tx.execute("DELETE FROM things WHERE name=?1", [name])? > 0)
        })
    }

    /// Things with names after `after`, in name order, at most `limit`.
    pub fn list_things(&self, after: Option<&str>, limit: usize) -> Result<Vec<Thing>, ApiError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT name,id,type_name,attributes,version FROM things WHERE name > ?1 ORDER BY name LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after.unwrap_or(""), limit as i64], thing_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    // ----------------------------------------------------------- certificates

    /// Registers a certificate; one with the same id already there is an
    /// error (the id is the DER's hash, so it is the same certificate).
    pub fn insert_certificate(&self, c: &Certificate) -> Result<(), ApiError> {
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO certificates(id,pem,status,created,modified,not_before,not_after,customer_version)
                 VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                params![c.id, c.pem, c.status, c.created, c.modified, c.not_before, c.not_after, c.customer_version],
            )?;
            Ok(())
        })
    }

    /// Looks a certificate up by id.
    pub fn certificate(&self, id: &str) -> Result<Option<Certificate>, ApiError> {
        let conn = self.lock();
        get_certificate(&conn, id)
    }

    /// Certificates in creation order after sequence `after`.
    pub fn list_certificates(
        &self,
        after: Option<i64>,
        limit: usize,
        ascending: bool,
    ) -> Result<Vec<Certificate>, ApiError> {
        let conn = self.lock();
        let sql = if ascending {
            "SELECT id,pem,status,created,modified,not_before,not_after,customer_version,seq FROM certificates WHERE seq > ?1 ORDER BY seq ASC LIMIT ?2"
        } else {
            "SELECT id,pem,status,created,modified,not_before,not_after,customer_version,seq FROM certificates WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2"
        };
        let start = after.unwrap_or(if ascending { 0 } else { i64::MAX });
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map(params![start, limit as i64], cert_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Sets a certificate's status.
    pub fn set_certificate_status(&self, id: &str, status: &str) -> Result<(), ApiError> {
        self.tx(|tx| {
            tx.execute(
                "UPDATE certificates SET status=?2, modified=?3, customer_version=customer_version+1 WHERE id=?1",
                params![id, status, now_secs()],
            )?;
            Ok(())
        })
    }

    /// Deletes a certificate and any policy attachments of its ARN.
    pub fn delete_certificate(&self, id: &str, arn: &str) -> Result<(), ApiError> {
        self.tx(|tx| {
            tx.execute("DELETE FROM policy_targets WHERE target=?1", [arn])?;
            tx.execute("DELETE FROM certificates WHERE id=?1", [id])?;
            Ok(())
        })
    }

    // --------------------------------------------------------------- policies

    /// Creates a policy with version 1 as default.
    pub fn insert_policy(&self, name: &str, document: &str) -> Result<Policy, ApiError> {
        let now = now_secs();
        let generation = uuid::Uuid::new_v4().simple().to_string();
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO policies(name,default_version,created,modified,generation_id,next_version) VALUES(?1,1,?2,?2,?3,2)",
                params![name, now, generation],
            )?;
            tx.execute(
                "INSERT INTO policy_versions(policy,version,document,created) VALUES(?1,1,?2,?3)",
                params![name, document, now],
            )?;
            Ok(())
        })?;
        Ok(Policy {
            name: name.to_string(),
            document: document.to_string(),
            default_version: 1,
            created: now,
            modified: now,
            generation_id: generation,
        })
    }

    /// Looks a policy up (with its default document).
    pub fn policy(&self, name: &str) -> Result<Option<Policy>, ApiError> {
        let conn = self.lock();
        get_policy(&conn, name)
    }

    /// Policies in name order after `after`.
    pub fn list_policies(
        &self,
        after: Option<&str>,
        limit: usize,
        ascending: bool,
    ) -> Result<Vec<String>, ApiError> {
        let conn = self.lock();
        let (sql, start) = if ascending {
            (
                "SELECT name FROM policies WHERE name > ?1 ORDER BY name ASC LIMIT ?2",
                after.unwrap_or(""),
            )
        } else {
            (
                "SELECT name FROM policies WHERE name < ?1 ORDER BY name DESC LIMIT ?2",
                after.unwrap_or("\u{10FFFF}"),
            )
        };
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map(params![start, limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// All versions of a policy, newest first.
    pub fn policy_versions(&self, name: &str) -> Result<Vec<PolicyVersion>, ApiError> {
        let conn = self.lock();
        versions(&conn, name)
    }

    /// Deletes a policy: refuses while attached or while it has other versions.
    pub fn delete_policy(&self, name: &str) -> Result<(), ApiError> {
        self.tx(|tx| {
            if get_policy(tx, name)?.is_none() {
                return Err(ApiError::not_found(format!(
                    "The policy {name} does not exist"
                )));
            }
            let targets: i64 = tx.query_row(
                "SELECT count(*) FROM policy_targets WHERE policy=?1",
                [name],
                |r| r.get(0),
            )?;
            if targets > 0 {
                // AWS's text (aws-nuke issue 374, a real account's log).
                return Err(ApiError::delete_conflict(format!(
                    "The policy cannot be deleted as the policy is attached to one or more principals (name={name})"
                )));
            }
            let nversions: i64 = tx.query_row(
                "SELECT count(*) FROM policy_versions WHERE policy=?1",
                [name],
                |r| r.get(0),
            )?;
            if nversions > 1 {
                // AWS's text, typo included (aws-nuke pull request 320).
                return Err(ApiError::delete_conflict(
                    "The policy cannot be deleted as versions other than than default version exist",
                ));
            }
            tx.execute("DELETE FROM policy_versions WHERE policy=?1", [name])?;
            tx.execute("DELETE FROM policies WHERE name=?1", [name])?;
            Ok(())
        })
    }

    /// Adds a version (at most 5 per policy).
    pub fn add_policy_version(
        &self,
        name: &str,
        document: &str,
        set_default: bool,
    ) -> Result<PolicyVersion, ApiError> {
        let now = now_secs();
        self.tx(|tx| {
            let next: Option<i64> = tx
                .query_row(
                    "SELECT next_version FROM policies WHERE name=?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(next) = next else {
                return Err(ApiError::not_found(format!(
                    "The policy {name} does not exist"
                )));
            };
            let count: i64 = tx.query_row(
                "SELECT count(*) FROM policy_versions WHERE policy=?1",
                [name],
                |r| r.get(0),
            )?;
            if count >= 5 {
                return Err(ApiError::new(
                    409,
                    "VersionsLimitExceededException",
                    format!("The policy {name} already has the maximum number of versions (5)"),
                ));
            }
            tx.execute(
                "INSERT INTO policy_versions(policy,version,document,created) VALUES(?1,?2,?3,?4)",
                params![name, next, document, now],
            )?;
            tx.execute(
                "UPDATE policies SET next_version=?2, modified=?3 WHERE name=?1",
                params![name, next + 1, now],
            )?;
            if set_default {
                set_default_version(tx, name, next)?;
            }
            Ok(PolicyVersion {
                version: next,
                document: document.to_string(),
                is_default: set_default,
                created: now,
            })
        })
    }

    /// Makes `version` the default.
    pub fn set_default_policy_version(&self, name: &str, version: i64) -> Result<(), ApiError> {
        self.tx(|tx| {
            find_version(tx, name, version)?;
            set_default_version(tx, name, version)
        })
    }

    /// Deletes a non-default version.
    pub fn delete_policy_version(&self, name: &str, version: i64) -> Result<(), ApiError> {
        self.tx(|tx| {
            let v = find_version(tx, name, version)?;
            if v.is_default {
                return Err(ApiError::delete_conflict(format!(
                    "Cannot delete the default version {version} of policy {name}; make another version the default first"
                )));
            }
            tx.execute(
                "DELETE FROM policy_versions WHERE policy=?1 AND version=?2",
                params![name, version],
            )?;
            Ok(())
        })
    }

    /// Attaches a policy to a target (idempotent).
    pub fn attach_policy(&self, policy: &str, target: &str) -> Result<(), ApiError> {
        self.tx(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO policy_targets(policy,target) VALUES(?1,?2)",
                params![policy, target],
            )?;
            Ok(())
        })
    }

    /// Detaches a policy from a target. Returns whether it was attached.
    pub fn detach_policy(&self, policy: &str, target: &str) -> Result<bool, ApiError> {
        self.tx(|tx| {
            Ok(tx.execute(
                "DELETE FROM policy_targets WHERE policy=?1 AND target=?2",
                params![policy, target],
            )? > 0)
        })
    }

    /// Policy names attached to a target, in name order.
    pub fn policies_for_target(&self, target: &str) -> Result<Vec<String>, ApiError> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT policy FROM policy_targets WHERE target=?1 ORDER BY policy")?;
        let rows = stmt.query_map([target], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Default-version documents of every policy attached to a target.
    pub fn policy_documents_for_target(
        &self,
        target: &str,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT p.name, v.document FROM policy_targets t
               JOIN policies p ON p.name = t.policy
               JOIN policy_versions v ON v.policy = p.name AND v.version = p.default_version
              WHERE t.target = ?1 ORDER BY p.name",
        )?;
        let rows = stmt.query_map([target], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Targets a policy is attached to.
    pub fn targets_for_policy(&self, policy: &str) -> Result<Vec<String>, ApiError> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT target FROM policy_targets WHERE policy=?1 ORDER BY target")?;
        let rows = stmt.query_map([policy], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    // ------------------------------------------------------ thing principals

    /// Attaches a principal to a thing (idempotent).
    pub fn attach_thing_principal(&self, thing: &str, principal: &str) -> Result<(), ApiError> {
        self.tx(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO thing_principals(thing,principal) VALUES(?1,?2)",
                params![thing, principal],
            )?;
            Ok(())
        })
    }

    /// Detaches a principal from a thing (idempotent).
    pub fn detach_thing_principal(&self, thing: &str, principal: &str) -> Result<(), ApiError> {
        self.tx(|tx| {
            tx.execute(
                "DELETE FROM thing_principals WHERE thing=?1 AND principal=?2",
                params![thing, principal],
            )?;
            Ok(())
        })
    }

    /// Principals attached to a thing.
    pub fn thing_principals(&self, thing: &str) -> Result<Vec<String>, ApiError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT principal FROM thing_principals WHERE thing=?1 ORDER BY principal")?;
        let rows = stmt.query_map([thing], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Things a principal is attached to.
    pub fn principal_things(&self, principal: &str) -> Result<Vec<String>, ApiError> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT thing FROM thing_principals WHERE principal=?1 ORDER BY thing")?;
        let rows = stmt.query_map([principal], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

/// The stored shadow document (JSON) of a thing's classic (`""`) or named shadow.
pub(crate) fn get_shadow(
    conn: &Connection,
    thing: &str,
    name: &str,
) -> Result<Option<String>, ApiError> {
    Ok(conn
        .query_row(
            "SELECT document FROM shadows WHERE thing=?1 AND name=?2",
            params![thing, name],
            |r| r.get(0),
        )
        .optional()?)
}

/// Stores a shadow document.
pub(crate) fn put_shadow(
    conn: &Connection,
    thing: &str,
    name: &str,
    document: &str,
) -> Result<(), ApiError> {
    conn.execute(
        "INSERT INTO shadows(thing,name,document) VALUES(?1,?2,?3)
         ON CONFLICT(thing,name) DO UPDATE SET document=excluded.document",
        params![thing, name, document],
    )?;
    Ok(())
}

fn thing_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Thing> {
    let attrs: String = r.get(3)?;
    Ok(Thing {
        name: r.get(0)?,
        id: r.get(1)?,
        type_name: r.get(2)?,
        attributes: serde_json::from_str(&attrs).unwrap_or_default(),
        version: r.get(4)?,
    })
}

fn cert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Certificate> {
    Ok(Certificate {
        id: r.get(0)?,
        pem: r.get(1)?,
        status: r.get(2)?,
        created: r.get(3)?,
        modified: r.get(4)?,
        not_before: r.get(5)?,
        not_after: r.get(6)?,
        customer_version: r.get(7)?,
        seq: r.get(8)?,
    })
}

fn get_thing(conn: &Connection, name: &str) -> Result<Option<Thing>, ApiError> {
    Ok(conn
        .query_row(
            "SELECT name,id,type_name,attributes,version FROM things WHERE name=?1",
            [name],
            thing_row,
        )
        .optional()?)
}

fn get_certificate(conn: &Connection, id: &str) -> Result<Option<Certificate>, ApiError> {
    Ok(conn
        .query_row(
            "SELECT id,pem,status,created,modified,not_before,not_after,customer_version,seq FROM certificates WHERE id=?1",
            [id],
            cert_row,
        )
        .optional()?)
}

fn get_policy(conn: &Connection, name: &str) -> Result<Option<Policy>, ApiError> {
    Ok(conn
        .query_row(
            "SELECT p.name, v.document, p.default_version, p.created, p.modified, p.generation_id
               FROM policies p JOIN policy_versions v ON v.policy=p.name AND v.version=p.default_version
              WHERE p.name=?1",
            [name],
            |r| {
                Ok(Policy {
                    name: r.get(0)?,
                    document: r.get(1)?,
                    default_version: r.get(2)?,
                    created: r.get(3)?,
                    modified: r.get(4)?,
                    generation_id: r.get(5)?,
                })
            },
        )
        .optional()?)
}

fn versions(conn: &Connection, name: &str) -> Result<Vec<PolicyVersion>, ApiError> {
    let default: Option<i64> = conn
        .query_row(
            "SELECT default_version FROM policies WHERE name=?1",
            [name],
            |r| r.get(0),
        )
        .optional()?;
    let Some(default) = default else {
        return Err(ApiError::not_found(format!(
            "The policy {name} does not exist"
        )));
    };
    let mut stmt = conn.prepare(
        "SELECT version, document, created FROM policy_versions WHERE policy=?1 ORDER BY version DESC",
    )?;
    let rows = stmt.query_map([name], |r| {
        let version: i64 = r.get(0)?;
        Ok(PolicyVersion {
            version,
            document: r.get(1)?,
            is_default: version == default,
            created: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn find_version(conn: &Connection, name: &str, version: i64) -> Result<PolicyVersion, ApiError> {
    versions(conn, name)?
        .into_iter()
        .find(|v| v.version == version)
        .ok_or_else(|| {
            ApiError::not_found(format!("Version {version} of policy {name} does not exist"))
        })
}

fn set_default_version(tx: &Connection, name: &str, version: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE policies SET default_version=?2, modified=?3, generation_id=?4 WHERE name=?1",
        params![
            name,
            version,
            now_secs(),
            uuid::Uuid::new_v4().simple().to_string()
        ],
    )?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::open(Path::new(":memory:")).unwrap()
    }

    fn thing(name: &str) -> Thing {
        let mut attributes = serde_json::Map::new();
        attributes.insert("room".into(), "lab".into());
        Thing {
            name: name.into(),
            id: format!("id-{name}"),
            type_name: Some("robot".into()),
            attributes,
            version: 1,
        }
    }

    fn certificate(id: &str) -> Certificate {
        Certificate {
            id: id.into(),
            pem: format!("PEM {id}"),
            status: "ACTIVE".into(),
            created: 1.5,
            modified: 1.5,
            not_before: 10,
            not_after: 20,
            customer_version: 1,
            seq: 0,
        }
    }

    #[test]
    fn meta_keeps_the_first_value() {
        let s = store();
        assert_eq!(
            s.meta_get_or_init("account_id", || "111".into()).unwrap(),
            "111"
        );
        assert_eq!(
            s.meta_get_or_init("account_id", || "222".into()).unwrap(),
            "111"
        );
    }

    #[test]
    fn things_insert_get_update_delete() {
        let s = store();
        assert_eq!(s.thing("robot1").unwrap(), None, "not found");
        s.insert_thing(&thing("robot1")).unwrap();
        assert_eq!(s.thing("robot1").unwrap(), Some(thing("robot1")));
        let mut t = thing("robot1");
        t.type_name = None;
        t.attributes.clear();
        t.version = 2;
        s.update_thing(&t).unwrap();
        assert_eq!(s.thing("robot1").unwrap(), Some(t));
        assert!(s.delete_thing("robot1").unwrap());
        assert_eq!(s.thing("robot1").unwrap(), None);
        assert!(
            !s.delete_thing("robot1").unwrap(),
            "deleting twice finds nothing"
        );
    }

    #[test]
    fn a_second_thing_of_the_same_name_is_refused_and_the_first_kept() {
        let s = store();
        s.insert_thing(&thing("robot1")).unwrap();
        let mut other = thing("robot1");
        other.id = "another".into();
        assert!(s.insert_thing(&other).is_err());
        assert_eq!(s.thing("robot1").unwrap().unwrap().id, "id-robot1");
    }

    #[test]
    fn deleting_a_thing_drops_its_principal_attachments() {
        let s = store();
        s.insert_thing(&thing("robot1")).unwrap();
        s.attach_thing_principal("robot1", "arn:cert/a").unwrap();
        s.delete_thing("robot1").unwrap();
        assert!(s.principal_things("arn:cert/a").unwrap().is_empty());
    }

    #[test]
    fn things_page_in_name_order() {
        let s = store();
        for n in ["c", "a", "e", "b", "d"] {
            s.insert_thing(&thing(n)).unwrap();
        }
        let names = |v: Vec<Thing>| v.into_iter().map(|t| t.name).collect::<Vec<_>>();
        assert_eq!(names(s.list_things(None, 2).unwrap()), ["a", "b"]);
        assert_eq!(names(s.list_things(Some("b"), 2).unwrap()), ["c", "d"]);
        assert_eq!(names(s.list_things(Some("d"), 2).unwrap()), ["e"]);
        assert!(
            s.list_things(Some("e"), 2).unwrap().is_empty(),
            "past the end"
        );
    }

    #[test]
    fn certificates_insert_status_delete() {
        let s = store();
        assert_eq!(s.certificate("aa").unwrap(), None, "not found");
        s.insert_certificate(&certificate("aa")).unwrap();
        let stored = s.certificate("aa").unwrap().unwrap();
        assert_eq!(stored.pem, "PEM aa");
        assert!(stored.seq > 0, "the store numbers certificates");
        s.set_certificate_status("aa", "INACTIVE").unwrap();
        let changed = s.certificate("aa").unwrap().unwrap();
        assert_eq!(changed.status, "INACTIVE");
        assert_eq!(changed.customer_version, 2);
        assert!(changed.modified > stored.modified);
        s.attach_policy("p", "arn:cert/aa").unwrap_err(); // no policy p: foreign key
        s.insert_policy("p", "{}").unwrap();
        s.attach_policy("p", "arn:cert/aa").unwrap();
        s.delete_certificate("aa", "arn:cert/aa").unwrap();
        assert_eq!(s.certificate("aa").unwrap(), None);
        assert!(
            s.targets_for_policy("p").unwrap().is_empty(),
            "attachments go too"
        );
    }

    #[test]
    fn a_certificate_registered_twice_is_refused() {
        let s = store();
        s.insert_certificate(&certificate("aa")).unwrap();
        let mut again = certificate("aa");
        again.pem = "other".into();
        assert!(s.insert_certificate(&again).is_err());
        assert_eq!(s.certificate("aa").unwrap().unwrap().pem, "PEM aa");
    }

    #[test]
    fn certificates_page_in_creation_order_both_ways() {
        let s = store();
        for id in ["c1", "c2", "c3"] {
            s.insert_certificate(&certificate(id)).unwrap();
        }
        let ids = |v: &[Certificate]| v.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        let first = s.list_certificates(None, 2, true).unwrap();
        assert_eq!(ids(&first), ["c1", "c2"]);
        let rest = s.list_certificates(Some(first[1].seq), 2, true).unwrap();
        assert_eq!(ids(&rest), ["c3"]);
        let newest = s.list_certificates(None, 2, false).unwrap();
        assert_eq!(ids(&newest), ["c3", "c2"]);
        let older = s.list_certificates(Some(newest[1].seq), 2, false).unwrap();
        assert_eq!(ids(&older), ["c1"]);
    }

    #[test]
    fn policies_insert_get_delete() {
        let s = store();
        assert_eq!(s.policy("p").unwrap(), None, "not found");
        let p = s.insert_policy("p", r#"{"Version":"2012-10-17"}"#).unwrap();
        assert_eq!(p.default_version, 1);
        assert_eq!(s.policy("p").unwrap(), Some(p));
        assert!(s.insert_policy("p", "{}").is_err(), "a second policy p");
        s.delete_policy("p").unwrap();
        assert_eq!(s.policy("p").unwrap(), None);
        let e = s.delete_policy("p").unwrap_err();
        assert_eq!((e.status, e.kind), (404, "ResourceNotFoundException"));
    }

    #[test]
    fn an_attached_policy_or_one_with_versions_cannot_be_deleted() {
        let s = store();
        s.insert_policy("p", "{}").unwrap();
        s.attach_policy("p", "arn:cert/a").unwrap();
        let e = s.delete_policy("p").unwrap_err();
        assert_eq!((e.status, e.kind), (409, "DeleteConflictException"));
        assert!(s.detach_policy("p", "arn:cert/a").unwrap());
        s.add_policy_version("p", "{\"v\":2}", false).unwrap();
        let e = s.delete_policy("p").unwrap_err();
        assert_eq!((e.status, e.kind), (409, "DeleteConflictException"));
        assert!(s.policy("p").unwrap().is_some(), "still there");
    }

    #[test]
    fn policy_versions_add_set_default_delete() {
        let s = store();
        let first = s.insert_policy("p", "v1").unwrap();
        let v2 = s.add_policy_version("p", "v2", false).unwrap();
        assert_eq!((v2.version, v2.is_default), (2, false));
        assert_eq!(s.policy("p").unwrap().unwrap().document, "v1");
        let v3 = s.add_policy_version("p", "v3", true).unwrap();
        let now = s.policy("p").unwrap().unwrap();
        assert_eq!((now.default_version, now.document.as_str()), (3, "v3"));
        assert_ne!(now.generation_id, first.generation_id);
        let listed: Vec<(i64, bool)> = s
            .policy_versions("p")
            .unwrap()
            .iter()
            .map(|v| (v.version, v.is_default))
            .collect();
        assert_eq!(listed, [(3, true), (2, false), (1, false)], "newest first");
        s.set_default_policy_version("p", 1).unwrap();
        assert_eq!(s.policy("p").unwrap().unwrap().document, "v1");
        s.delete_policy_version("p", v3.version).unwrap();
        // Version ids are not reused after a delete.
        assert_eq!(s.add_policy_version("p", "v4", false).unwrap().version, 4);
    }

    #[test]
    fn policy_version_errors() {
        let s = store();
        let e = s.add_policy_version("nope", "{}", false).unwrap_err();
        assert_eq!(e.status, 404);
        let e = s.policy_versions("nope").unwrap_err();
        assert_eq!(e.status, 404);
        s.insert_policy("p", "v1").unwrap();
        let e = s.set_default_policy_version("p", 9).unwrap_err();
        assert_eq!((e.status, e.kind), (404, "ResourceNotFoundException"));
        let e = s.delete_policy_version("p", 1).unwrap_err();
        assert_eq!(
            (e.status, e.kind),
            (409, "DeleteConflictException"),
            "the default"
        );
        for n in 2..=5 {
            s.add_policy_version("p", &format!("v{n}"), false).unwrap();
        }
        let e = s.add_policy_version("p", "v6", false).unwrap_err();
        assert_eq!((e.status, e.kind), (409, "VersionsLimitExceededException"));
        assert_eq!(s.policy_versions("p").unwrap().len(), 5);
    }

    #[test]
    fn policy_lists_page_in_name_order_both_ways() {
        let s = store();
        for n in ["b", "a", "c"] {
            s.insert_policy(n, "{}").unwrap();
        }
        assert_eq!(s.list_policies(None, 2, true).unwrap(), ["a", "b"]);
        assert_eq!(s.list_policies(Some("b"), 2, true).unwrap(), ["c"]);
        assert_eq!(s.list_policies(None, 2, false).unwrap(), ["c", "b"]);
        assert_eq!(s.list_policies(Some("b"), 2, false).unwrap(), ["a"]);
        assert!(s.list_policies(Some("c"), 2, true).unwrap().is_empty());
    }

    #[test]
    fn policy_attachments_are_idempotent_and_listed_both_ways() {
        let s = store();
        s.insert_policy("p1", "d1").unwrap();
        s.insert_policy("p2", "d2").unwrap();
        s.attach_policy("p2", "arn:cert/a").unwrap();
        s.attach_policy("p1", "arn:cert/a").unwrap();
        s.attach_policy("p1", "arn:cert/a").unwrap();
        s.attach_policy("p1", "arn:cert/b").unwrap();
        assert_eq!(s.policies_for_target("arn:cert/a").unwrap(), ["p1", "p2"]);
        assert_eq!(
            s.targets_for_policy("p1").unwrap(),
            ["arn:cert/a", "arn:cert/b"]
        );
        assert_eq!(
            s.policy_documents_for_target("arn:cert/a").unwrap(),
            [
                ("p1".to_string(), "d1".to_string()),
                ("p2".into(), "d2".into())
            ]
        );
        assert!(s.detach_policy("p1", "arn:cert/a").unwrap());
        assert!(
            !s.detach_policy("p1", "arn:cert/a").unwrap(),
            "not attached any more"
        );
        assert_eq!(s.policies_for_target("arn:cert/a").unwrap(), ["p2"]);
        assert!(s.policies_for_target("arn:cert/none").unwrap().is_empty());
    }

    #[test]
    fn thing_principals_attach_detach_both_ways() {
        let s = store();
        s.insert_thing(&thing("r1")).unwrap();
        s.insert_thing(&thing("r2")).unwrap();
        s.attach_thing_principal("r1", "arn:cert/a").unwrap();
        s.attach_thing_principal("r1", "arn:cert/a").unwrap();
        s.attach_thing_principal("r2", "arn:cert/a").unwrap();
        assert!(
            s.attach_thing_principal("ghost", "arn:cert/a").is_err(),
            "no thing ghost"
        );
        assert_eq!(s.thing_principals("r1").unwrap(), ["arn:cert/a"]);
        assert_eq!(s.principal_things("arn:cert/a").unwrap(), ["r1", "r2"]);
        s.detach_thing_principal("r1", "arn:cert/a").unwrap();
        s.detach_thing_principal("r1", "arn:cert/a").unwrap();
        assert!(s.thing_principals("r1").unwrap().is_empty());
        assert_eq!(s.principal_things("arn:cert/a").unwrap(), ["r2"]);
    }

    #[test]
    fn shadows_are_stored_per_thing_and_name() {
        let s = store();
        let conn = s.lock();
        assert_eq!(get_shadow(&conn, "r1", "").unwrap(), None);
        put_shadow(&conn, "r1", "", "{\"v\":1}").unwrap();
        put_shadow(&conn, "r1", "lights", "{\"l\":1}").unwrap();
        put_shadow(&conn, "r1", "", "{\"v\":2}").unwrap();
        assert_eq!(get_shadow(&conn, "r1", "").unwrap().unwrap(), "{\"v\":2}");
        assert_eq!(
            get_shadow(&conn, "r1", "lights").unwrap().unwrap(),
            "{\"l\":1}"
        );
        assert_eq!(get_shadow(&conn, "r2", "").unwrap(), None);
    }
}
