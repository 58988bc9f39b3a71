//! The fleet registry's tables: thing types, thing and billing groups with
//! their members, tags and role aliases, in the same SQLite database as the
//! rest of the registry (so they survive restarts and `kill -9` alike).
//!
//! Thing and billing groups share one table, told apart by [`GroupKind`];
//! memberships vanish with their thing or group through foreign keys.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::store::{now_secs, Store};

/// Tables of the fleet APIs, run after the registry's own schema.
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS thing_types (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    properties TEXT NOT NULL,
    deprecated INTEGER NOT NULL DEFAULT 0,
    deprecation_date REAL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS fleet_groups (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    id TEXT NOT NULL,
    parent TEXT,
    properties TEXT NOT NULL,
    version INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS fleet_group_members (
    kind TEXT NOT NULL,
    grp TEXT NOT NULL,
    thing TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,
    PRIMARY KEY (kind, grp, thing),
    FOREIGN KEY (kind, grp) REFERENCES fleet_groups(kind, name) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS fleet_group_members_by_thing ON fleet_group_members(thing);
CREATE TABLE IF NOT EXISTS fleet_tags (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, name, key)
);
CREATE TRIGGER IF NOT EXISTS policies_drop_tags AFTER DELETE ON policies BEGIN
    DELETE FROM fleet_tags WHERE kind = 'policy' AND name = old.name;
END;
CREATE TABLE IF NOT EXISTS role_aliases (
    name TEXT PRIMARY KEY,
    role_arn TEXT NOT NULL,
    duration INTEGER NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dynamic_thing_groups (
    name TEXT PRIMARY KEY,
    index_name TEXT NOT NULL,
    query_string TEXT NOT NULL,
    query_version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS domain_configurations (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    document TEXT NOT NULL,
    created REAL NOT NULL
);
"#;

/// A stored domain configuration: its id (the ARN's last part) and the
/// fields DescribeDomainConfiguration returns.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainConfiguration {
    /// Name (unique).
    pub name: String,
    /// Random id, the last part of its ARN.
    pub id: String,
    /// Described fields, as given or defaulted.
    pub document: Map<String, Value>,
}

/// A thing type.
#[derive(Debug, Clone, PartialEq)]
pub struct ThingType {
    /// Name (unique).
    pub name: String,
    /// Random id AWS calls `thingTypeId`.
    pub id: String,
    /// `thingTypeProperties` as given (description, searchable attributes).
    pub properties: Map<String, Value>,
    /// Whether new things may no longer use it.
    pub deprecated: bool,
    /// When it was last deprecated, epoch seconds.
    pub deprecation_date: Option<f64>,
    /// Epoch seconds.
    pub created: f64,
}

/// Which family a group belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// A static thing group (hierarchical; its policies apply to its things).
    Thing,
    /// A billing group (flat; a thing is in at most one).
    Billing,
}

impl GroupKind {
    /// The key in the tables, also the ARN's resource type.
    pub fn key(self) -> &'static str {
        match self {
            GroupKind::Thing => "thinggroup",
            GroupKind::Billing => "billinggroup",
        }
    }
}

/// A thing group or billing group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Name (unique within its kind).
    pub name: String,
    /// Random id.
    pub id: String,
    /// Parent thing group, if any.
    pub parent: Option<String>,
    /// `thingGroupProperties` / `billingGroupProperties` as stored.
    pub properties: Map<String, Value>,
    /// Bumped on every update.
    pub version: i64,
    /// Epoch seconds.
    pub created: f64,
}

/// A role alias.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleAlias {
    /// `roleAlias`: 1 to 128 of letters, digits and `_=,@-`; unique.
    pub name: String,
    /// The IAM role it stands for.
    pub role_arn: String,
    /// Lifetime of credentials issued through it, seconds.
    pub duration: i64,
    /// Epoch seconds.
    pub created: f64,
    /// Epoch seconds.
    pub modified: f64,
}

fn json_map(text: String) -> Map<String, Value> {
    serde_json::from_str(&text).unwrap_or_default()
}

fn map_text(m: &Map<String, Value>) -> String {
    Value::Object(m.clone()).to_string()
}

fn type_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ThingType> {
    Ok(ThingType {
        name: r.get(0)?,
        id: r.get(1)?,
        properties: json_map(r.get(2)?),
        deprecated: r.get::<_, i64>(3)? != 0,
        deprecation_date: r.get(4)?,
        created: r.get(5)?,
    })
}

fn group_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Group> {
    Ok(Group {
        name: r.get(0)?,
        id: r.get(1)?,
        parent: r.get(2)?,
        properties: json_map(r.get(3)?),
        version: r.get(4)?,
        created: r.get(5)?,
    })
}

const TYPE_COLS: &str = "name,id,properties,deprecated,deprecation_date,created";
const GROUP_COLS: &str = "name,id,parent,properties,version,created";

fn get_type(conn: &Connection, name: &str) -> Result<Option<ThingType>, ApiError> {
    Ok(conn
        .query_row(
            &format!("SELECT {TYPE_COLS} FROM thing_types WHERE name=?1"),
            [name],
            type_row,
        )
        .optional()?)
}

pub(super) fn get_group(
    conn: &Connection,
    kind: GroupKind,
    name: &str,
) -> Result<Option<Group>, ApiError> {
    Ok(conn
        .query_row(
            &format!("SELECT {GROUP_COLS} FROM fleet_groups WHERE kind=?1 AND name=?2"),
            params![kind.key(), name],
            group_row,
        )
        .optional()?)
}

fn strings(
    conn: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<String>, ApiError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(p, |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

impl Store {
    // ------------------------------------------------------------ thing types

    /// Stores a new thing type, or returns the one already of that name.
    pub fn create_thing_type(
        &self,
        t: &ThingType,
        tags: &[(String, String)],
    ) -> Result<Option<ThingType>, ApiError> {
        self.tx(|tx| {
            if let Some(existing) = get_type(tx, &t.name)? {
                return Ok(Some(existing));
            }
            tx.execute(
                "INSERT INTO thing_types(name,id,properties,deprecated,created) VALUES(?1,?2,?3,0,?4)",
                params![t.name, t.id, map_text(&t.properties), t.created],
            )?;
            put_tags(tx, "thingtype", &t.name, tags)?;
            Ok(None)
        })
    }

    /// Looks a thing type up.
    pub fn thing_type(&self, name: &str) -> Result<Option<ThingType>, ApiError> {
        self.tx(|tx| get_type(tx, name))
    }

    /// Thing types whose names start with `prefix`, in creation order, with
    /// their position; those after position `after`, at most `limit`.
    pub fn list_thing_types(
        &self,
        prefix: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, ThingType)>, ApiError> {
        self.tx(|tx| {
            let mut stmt = tx.prepare(&format!(
                "SELECT {TYPE_COLS}, rowid FROM thing_types WHERE rowid > ?1 AND substr(name,1,length(?2)) = ?2 ORDER BY rowid LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![after, prefix, limit as i64], |r| {
                Ok((r.get(6)?, type_row(r)?))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Deprecates (or undeprecates) a thing type; false when it does not exist.
    pub fn set_thing_type_deprecated(
        &self,
        name: &str,
        deprecated: bool,
    ) -> Result<bool, ApiError> {
        self.tx(|tx| {
            let date = deprecated.then(now_secs);
            Ok(tx.execute(
                "UPDATE thing_types SET deprecated=?2, deprecation_date=coalesce(?3, deprecation_date) WHERE name=?1",
                params![name, deprecated as i64, date],
            )? > 0)
        })
    }

    /// Replaces a thing type's properties; false when it does not exist.
    pub fn set_thing_type_properties(
        &self,
        name: &str,
        properties: &Map<String, Value>,
    ) -> Result<bool, ApiError> {
        self.tx(|tx| {
            Ok(tx.execute(
                "UPDATE thing_types SET properties=?2 WHERE name=?1",
                params![name, map_text(properties)],
            )? > 0)
        })
    }

    /// Deletes a thing type after `check` approves it, given the type and
    /// how many things still use it (one transaction, so no thing can take
    /// the type between the check and the delete).
    pub fn delete_thing_type(
        &self,
        name: &str,
        check: impl FnOnce(&ThingType, i64) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        self.tx(|tx| {
            let Some(t) = get_type(tx, name)? else {
                return Err(ApiError::not_found(format!(
                    "Thing Type {name} does not exist"
                )));
            };
            let users: i64 = tx.query_row(
                "SELECT count(*) FROM things WHERE type_name=?1",
                [name],
                |r| r.get(0),
            )?;
            check(&t, users)?;
            tx.execute("DELETE FROM thing_types WHERE name=?1", [name])?;
            drop_tags(tx, "thingtype", name)
        })
    }

    // ----------------------------------------------------------------- groups

    /// Stores a new group, or returns the one already of that name.
    pub fn create_group(
        &self,
        kind: GroupKind,
        g: &Group,
        tags: &[(String, String)],
    ) -> Result<Option<Group>, ApiError> {
        self.tx(|tx| {
            if let Some(existing) = get_group(tx, kind, &g.name)? {
                return Ok(Some(existing));
            }
            tx.execute(
                "INSERT INTO fleet_groups(kind,name,id,parent,properties,version,created) VALUES(?1,?2,?3,?4,?5,?6,?7)",
                params![kind.key(), g.name, g.id, g.parent, map_text(&g.properties), g.version, g.created],
            )?;
            put_tags(tx, kind.key(), &g.name, tags)?;
            Ok(None)
        })
    }

    /// Looks a group up.
    pub fn group(&self, kind: GroupKind, name: &str) -> Result<Option<Group>, ApiError> {
        self.tx(|tx| get_group(tx, kind, name))
    }

    /// Every group of a kind, in creation order.
    pub fn groups(&self, kind: GroupKind) -> Result<Vec<Group>, ApiError> {
        self.tx(|tx| {
            let mut stmt = tx.prepare(&format!(
                "SELECT {GROUP_COLS} FROM fleet_groups WHERE kind=?1 ORDER BY rowid"
            ))?;
            let rows = stmt.query_map([kind.key()], group_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Applies `change` to a group's properties and bumps its version, if
    /// `expected` (when given) is its version. Returns the new version.
    pub fn update_group(
        &self,
        kind: GroupKind,
        name: &str,
        expected: Option<i64>,
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<i64, ApiError> {
        self.tx(|tx| {
            let Some(mut g) = get_group(tx, kind, name)? else {
                return Err(missing_group(kind, name));
            };
            check_version(kind, name, expected, g.version)?;
            change(&mut g.properties);
            tx.execute(
                "UPDATE fleet_groups SET properties=?3, version=version+1 WHERE kind=?1 AND name=?2",
                params![kind.key(), name, map_text(&g.properties)],
            )?;
            Ok(g.version + 1)
        })
    }

    /// Deletes a group with its memberships, tags and policy attachments
    /// (`arn` is its ARN). Refuses while it has child groups. Returns
    /// whether it existed.
    pub fn delete_group(
        &self,
        kind: GroupKind,
        name: &str,
        arn: &str,
        expected: Option<i64>,
    ) -> Result<bool, ApiError> {
        self.tx(|tx| {
            let Some(g) = get_group(tx, kind, name)? else {
                return Ok(false);
            };
            check_version(kind, name, expected, g.version)?;
            let children: i64 = tx.query_row(
                "SELECT count(*) FROM fleet_groups WHERE kind=?1 AND parent=?2",
                params![kind.key(), name],
                |r| r.get(0),
            )?;
            if children > 0 {
                // AWS's text as moto records it.
                return Err(ApiError::invalid(format!(
                    "Cannot delete thing group : {name} when there are still child groups attached to it"
                )));
            }
            tx.execute(
                "DELETE FROM fleet_groups WHERE kind=?1 AND name=?2",
                params![kind.key(), name],
            )?;
            tx.execute("DELETE FROM policy_targets WHERE target=?1", [arn])?;
            if kind == GroupKind::Thing {
                tx.execute("DELETE FROM dynamic_thing_groups WHERE name=?1", [name])?;
            }
            drop_tags(tx, kind.key(), name)?;
            Ok(true)
        })
    }

    /// Adds a thing to a group (idempotent). A billing group takes the thing
    /// from any other billing group, since a thing has at most one.
    pub fn add_group_member(
        &self,
        kind: GroupKind,
        grp: &str,
        thing: &str,
    ) -> Result<(), ApiError> {
        self.tx(|tx| {
            if kind == GroupKind::Billing {
                tx.execute(
                    "DELETE FROM fleet_group_members WHERE kind=?1 AND thing=?2",
                    params![kind.key(), thing],
                )?;
            }
            tx.execute(
                "INSERT OR IGNORE INTO fleet_group_members(kind,grp,thing) VALUES(?1,?2,?3)",
                params![kind.key(), grp, thing],
            )?;
            Ok(())
        })
    }

    /// Removes a thing from a group (idempotent).
    pub fn remove_group_member(
        &self,
        kind: GroupKind,
        grp: &str,
        thing: &str,
    ) -> Result<(), ApiError> {
        self.tx(|tx| {
            tx.execute(
                "DELETE FROM fleet_group_members WHERE kind=?1 AND grp=?2 AND thing=?3",
                params![kind.key(), grp, thing],
            )?;
            Ok(())
        })
    }

    /// Things directly in any of `groups`, in name order, without repeats.
    pub fn group_members(
        &self,
        kind: GroupKind,
        groups: &[String],
    ) -> Result<Vec<String>, ApiError> {
        self.tx(|tx| {
            let mut all = Vec::new();
            for g in groups {
                all.extend(strings(
                    tx,
                    "SELECT thing FROM fleet_group_members WHERE kind=?1 AND grp=?2",
                    params![kind.key(), g],
                )?);
            }
            all.sort();
            all.dedup();
            Ok(all)
        })
    }

    /// Groups a thing is directly in, in name order.
    pub fn groups_of_thing(&self, kind: GroupKind, thing: &str) -> Result<Vec<String>, ApiError> {
        self.tx(|tx| {
            strings(
                tx,
                "SELECT grp FROM fleet_group_members WHERE kind=?1 AND thing=?2 ORDER BY grp",
                params![kind.key(), thing],
            )
        })
    }

    /// Default-version documents of the policies attached to the thing
    /// groups (and their ancestors) of every thing `principal` is attached
    /// to; `group_arn_prefix` is `arn:aws:iot:{region}:{account}:thinggroup/`.
    pub fn group_policy_documents_for_principal(
        &self,
        principal: &str,
        group_arn_prefix: &str,
    ) -> Result<Vec<(String, String)>, ApiError> {
        self.tx(|tx| {
            let mut stmt = tx.prepare(
                "WITH RECURSIVE g(name) AS (
                     SELECT m.grp FROM fleet_group_members m
                       JOIN thing_principals tp ON tp.thing = m.thing
                      WHERE tp.principal = ?1 AND m.kind = 'thinggroup'
                     UNION
                     SELECT fg.parent FROM fleet_groups fg JOIN g ON fg.name = g.name
                      WHERE fg.kind = 'thinggroup' AND fg.parent IS NOT NULL
                 )
                 SELECT DISTINCT p.name, v.document FROM g
                   JOIN policy_targets t ON t.target = ?2 || g.name
                   JOIN policies p ON p.name = t.policy
                   JOIN policy_versions v ON v.policy = p.name AND v.version = p.default_version
                  ORDER BY p.name",
            )?;
            let rows = stmt.query_map(params![principal, group_arn_prefix], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    // ------------------------------------------------------------------- tags

    /// Adds or replaces tags of a resource (`kind` is the ARN's resource type).
    pub fn tag(&self, kind: &str, name: &str, tags: &[(String, String)]) -> Result<(), ApiError> {
        self.tx(|tx| put_tags(tx, kind, name, tags))
    }

    /// Removes tags by key (missing keys are ignored).
    pub fn untag(&self, kind: &str, name: &str, keys: &[String]) -> Result<(), ApiError> {
        self.tx(|tx| {
            for k in keys {
                tx.execute(
                    "DELETE FROM fleet_tags WHERE kind=?1 AND name=?2 AND key=?3",
                    params![kind, name, k],
                )?;
            }
            Ok(())
        })
    }

    /// A resource's tags in key order.
    pub fn tags(&self, kind: &str, name: &str) -> Result<Vec<(String, String)>, ApiError> {
        self.tx(|tx| {
            let mut stmt = tx.prepare(
                "SELECT key, value FROM fleet_tags WHERE kind=?1 AND name=?2 ORDER BY key",
            )?;
            let rows = stmt.query_map(params![kind, name], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    // ----------------------------------------------------------- role aliases

    /// Stores a new role alias; false when the name is taken.
    pub fn create_role_alias(
        &self,
        a: &RoleAlias,
        tags: &[(String, String)],
    ) -> Result<bool, ApiError> {
        self.tx(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO role_aliases(name,role_arn,duration,created,modified) VALUES(?1,?2,?3,?4,?4)",
                params![a.name, a.role_arn, a.duration, a.created],
            )?;
            if n > 0 {
                put_tags(tx, "rolealias", &a.name, tags)?;
            }
            Ok(n > 0)
        })
    }

    /// Looks a role alias up.
    pub fn role_alias(&self, name: &str) -> Result<Option<RoleAlias>, ApiError> {
        self.tx(|tx| {
            Ok(tx
                .query_row(
                    "SELECT name,role_arn,duration,created,modified FROM role_aliases WHERE name=?1",
                    [name],
                    |r| {
                        Ok(RoleAlias {
                            name: r.get(0)?,
                            role_arn: r.get(1)?,
                            duration: r.get(2)?,
                            created: r.get(3)?,
                            modified: r.get(4)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    /// Role alias names in name order.
    pub fn role_aliases(&self) -> Result<Vec<String>, ApiError> {
        self.tx(|tx| strings(tx, "SELECT name FROM role_aliases ORDER BY name", []))
    }

    /// Replaces a role alias's role and duration.
    pub fn update_role_alias(&self, a: &RoleAlias) -> Result<(), ApiError> {
        self.tx(|tx| {
            tx.execute(
                "UPDATE role_aliases SET role_arn=?2, duration=?3, modified=?4 WHERE name=?1",
                params![a.name, a.role_arn, a.duration, now_secs()],
            )?;
            Ok(())
        })
    }

    /// Deletes a role alias; false when it did not exist.
    pub fn delete_role_alias(&self, name: &str) -> Result<bool, ApiError> {
        self.tx(|tx| {
            let n = tx.execute("DELETE FROM role_aliases WHERE name=?1", [name])?;
            drop_tags(tx, "rolealias", name)?;
            Ok(n > 0)
        })
    }
}

impl Store {
    /// Stores a new domain configuration; false when the name is taken.
    pub fn create_domain_configuration(
        &self,
        d: &DomainConfiguration,
        tags: &[(String, String)],
    ) -> Result<bool, ApiError> {
        self.tx(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO domain_configurations(name,id,document,created) VALUES(?1,?2,?3,?4)",
                params![d.name, d.id, map_text(&d.document), now_secs()],
            )?;
            if n > 0 {
                put_tags(tx, "domainconfiguration", &d.name, tags)?;
            }
            Ok(n > 0)
        })
    }

    /// Domain configurations in creation order.
    pub fn domain_configurations(&self) -> Result<Vec<DomainConfiguration>, ApiError> {
        self.tx(|tx| {
            let mut stmt =
                tx.prepare("SELECT name,id,document FROM domain_configurations ORDER BY rowid")?;
            let rows = stmt.query_map([], |r| {
                Ok(DomainConfiguration {
                    name: r.get(0)?,
                    id: r.get(1)?,
                    document: json_map(r.get(2)?),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Looks a domain configuration up.
    pub fn domain_configuration(
        &self,
        name: &str,
    ) -> Result<Option<DomainConfiguration>, ApiError> {
        Ok(self
            .domain_configurations()?
            .into_iter()
            .find(|d| d.name == name))
    }

    /// Replaces a domain configuration's described fields.
    pub fn set_domain_configuration(&self, d: &DomainConfiguration) -> Result<(), ApiError> {
        self.tx(|tx| {
            tx.execute(
                "UPDATE domain_configurations SET document=?2 WHERE name=?1",
                params![d.name, map_text(&d.document)],
            )?;
            Ok(())
        })
    }

    /// Deletes a domain configuration; false when it did not exist.
    pub fn delete_domain_configuration(&self, name: &str) -> Result<bool, ApiError> {
        self.tx(|tx| {
            let n = tx.execute("DELETE FROM domain_configurations WHERE name=?1", [name])?;
            drop_tags(tx, "domainconfiguration", name)?;
            Ok(n > 0)
        })
    }
}

pub(super) fn put_tags(
    conn: &Connection,
    kind: &str,
    name: &str,
    tags: &[(String, String)],
) -> Result<(), ApiError> {
    for (k, v) in tags {
        conn.execute(
            "INSERT INTO fleet_tags(kind,name,key,value) VALUES(?1,?2,?3,?4)
             ON CONFLICT(kind,name,key) DO UPDATE SET value=excluded.value",
            params![kind, name, k, v],
        )?;
    }
    Ok(())
}

fn drop_tags(conn: &Connection, kind: &str, name: &str) -> Result<(), ApiError> {
    conn.execute(
        "DELETE FROM fleet_tags WHERE kind=?1 AND name=?2",
        params![kind, name],
    )?;
    Ok(())
}

fn missing_group(kind: GroupKind, name: &str) -> ApiError {
    match kind {
        GroupKind::Thing => ApiError::not_found(format!("Thing Group {name} does not exist")),
        GroupKind::Billing => ApiError::not_found(format!("Billing Group {name} does not exist")),
    }
}

fn check_version(
    kind: GroupKind,
    name: &str,
    expected: Option<i64>,
    actual: i64,
) -> Result<(), ApiError> {
    match expected {
        Some(e) if e != actual => Err(ApiError::new(
            409,
            "VersionConflictException",
            format!(
                "expectedVersion {e} does not match the version {actual} of {} {name}; describe it again and retry",
                match kind {
                    GroupKind::Thing => "thing group",
                    GroupKind::Billing => "billing group",
                }
            ),
        )),
        _ => Ok(()),
    }
}

/// The "not found" error of a group of `kind`.
pub fn group_not_found(kind: GroupKind, name: &str) -> ApiError {
    missing_group(kind, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Thing;

    const PREFIX: &str = "arn:aws:iot:us-east-1:1:thinggroup/";
    const CERT: &str = "arn:aws:iot:us-east-1:1:cert/abc";

    fn group(name: &str, parent: Option<&str>) -> Group {
        Group {
            name: name.into(),
            id: name.into(),
            parent: parent.map(str::to_string),
            properties: Map::new(),
            version: 1,
            created: 0.0,
        }
    }

    fn setup(store: &Store) {
        store
            .insert_thing(&Thing {
                name: "robot".into(),
                id: "1".into(),
                type_name: None,
                attributes: Map::new(),
                version: 1,
            })
            .unwrap();
        store.attach_thing_principal("robot", CERT).unwrap();
        store
            .create_group(GroupKind::Thing, &group("fleet", None), &[])
            .unwrap();
        store
            .create_group(GroupKind::Thing, &group("lab", Some("fleet")), &[])
            .unwrap();
        store.insert_policy("fleet-pol", "{}").unwrap();
        store
            .attach_policy("fleet-pol", &format!("{PREFIX}fleet"))
            .unwrap();
    }

    #[test]
    fn parent_group_policies_reach_the_things_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("core.db")).unwrap();
        setup(&store);
        let docs = |s: &Store| {
            s.group_policy_documents_for_principal(CERT, PREFIX)
                .unwrap()
        };
        assert!(docs(&store).is_empty(), "the thing is in no group yet");
        store
            .add_group_member(GroupKind::Thing, "lab", "robot")
            .unwrap();
        assert_eq!(
            docs(&store),
            vec![("fleet-pol".to_string(), "{}".to_string())]
        );
        // A billing group of the same name gives no policies.
        store
            .remove_group_member(GroupKind::Thing, "lab", "robot")
            .unwrap();
        store
            .create_group(GroupKind::Billing, &group("lab", None), &[])
            .unwrap();
        store
            .add_group_member(GroupKind::Billing, "lab", "robot")
            .unwrap();
        assert!(docs(&store).is_empty());
        // Survives a reopen; deleting the thing clears its memberships.
        store
            .add_group_member(GroupKind::Thing, "lab", "robot")
            .unwrap();
        drop(store);
        let store = Store::open(&dir.path().join("core.db")).unwrap();
        assert_eq!(docs(&store).len(), 1);
        store.detach_thing_principal("robot", CERT).unwrap();
        store.delete_thing("robot").unwrap();
        assert!(store
            .group_members(GroupKind::Thing, &["lab".into()])
            .unwrap()
            .is_empty());
        assert!(store
            .group_members(GroupKind::Billing, &["lab".into()])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn groups_with_children_stay_and_tags_go_with_their_resource() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("core.db")).unwrap();
        setup(&store);
        let e = store
            .delete_group(GroupKind::Thing, "fleet", &format!("{PREFIX}fleet"), None)
            .unwrap_err();
        assert!(e.message.contains("child groups"), "{}", e.message);
        store
            .tag("policy", "fleet-pol", &[("env".into(), "lab".into())])
            .unwrap();
        store
            .detach_policy("fleet-pol", &format!("{PREFIX}fleet"))
            .unwrap();
        store.delete_policy("fleet-pol").unwrap();
        assert!(store.tags("policy", "fleet-pol").unwrap().is_empty());
        let e = store
            .delete_group(GroupKind::Thing, "lab", &format!("{PREFIX}lab"), Some(7))
            .unwrap_err();
        assert_eq!(e.kind, "VersionConflictException");
        assert!(store
            .delete_group(GroupKind::Thing, "lab", &format!("{PREFIX}lab"), Some(1))
            .unwrap());
    }
}
