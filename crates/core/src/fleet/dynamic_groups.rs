//! Dynamic thing groups: CreateDynamicThingGroup, UpdateDynamicThingGroup
//! and DeleteDynamicThingGroup; every other thing-group call (describe,
//! list, list things, tags, jobs) treats them as thing groups.
//!
//! A dynamic group's members are the things its fleet indexing query
//! matches, evaluated by the same evaluator as SearchIndex over the same
//! fields (registry, shadow, connectivity, as the indexing configuration
//! says). The memberships are stored like static ones (so they survive a
//! restart and ListThingsInThingGroup, ListThingGroupsForThing, SearchIndex's
//! `thingGroupNames` and job targets read them), and kept current by
//! [`run`]: a thing is re-evaluated when the registry changes it (create,
//! update, group membership), when its shadow is updated or deleted and when
//! it connects or disconnects; every thing is re-evaluated when a dynamic
//! group is created or updated and when the indexing configuration changes.
//! Each evaluation costs one document per thing and one query per dynamic
//! group (at most [`MAX_DYNAMIC_GROUPS`]); marks are coalesced for
//! [`SETTLE`], so a burst of MQTT messages costs one evaluation per thing.
//!
//! As on AWS, dynamic groups have no parent and no children, take no
//! policies, and take no things through AddThingToThingGroup.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::Router;
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Map, Value};

use super::store::{get_group, put_tags, Group, GroupKind};
use super::thing_groups::{apply_update, properties_from, MAX_GROUPS_PER_THING};
use super::{check_name, expected_version_query, parse_tags, update_body};
use crate::control::{body_object, empty, ok, ApiResult, Q};
use crate::error::ApiError;
use crate::search::document::Doc;
use crate::search::query::Query;
use crate::store::{now_secs, Store, Thing};
use crate::CoreState;

/// Most dynamic thing groups an account may have (AWS IoT Device
/// Management quotas: 100).
pub const MAX_DYNAMIC_GROUPS: usize = 100;
/// The one query version AWS supports, and the default.
pub const QUERY_VERSION: &str = "2017-09-30";
/// How long marks gather before an evaluation.
pub const SETTLE: Duration = Duration::from_millis(100);
/// Past this many marked things, one pass over every thing is cheaper.
const MAX_MARKED: usize = 10_000;

/// What defines a dynamic group's membership.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicSpec {
    /// Always `AWS_Things`.
    pub index_name: String,
    /// The fleet indexing query.
    pub query_string: String,
    /// Always [`QUERY_VERSION`].
    pub query_version: String,
}

/// Dynamic thing group routes.
pub fn routes() -> Router<Arc<CoreState>> {
    Router::new().route(
        "/dynamic-thing-groups/{name}",
        post(create).patch(update).delete(delete),
    )
}

/// The spec a create (no `current`) or an update asks for (pure, but for
/// parsing the query): `indexName` AWS_Things, `queryVersion` 2017-09-30, a
/// query that parses (InvalidQueryException otherwise).
pub fn spec_from(
    body: &Map<String, Value>,
    current: Option<&DynamicSpec>,
) -> Result<DynamicSpec, ApiError> {
    let text = |key: &str| match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(format!(
            "{key} must be a string of at least one character"
        ))),
    };
    let index_name = text("indexName")?
        .or_else(|| current.map(|c| c.index_name.clone()))
        .unwrap_or_else(|| crate::search::THINGS.to_string());
    if index_name != crate::search::THINGS {
        return Err(ApiError::invalid(format!(
            "indexName {index_name} is not supported: dynamic thing groups use the {} index",
            crate::search::THINGS
        )));
    }
    let query_version = text("queryVersion")?
        .or_else(|| current.map(|c| c.query_version.clone()))
        .unwrap_or_else(|| QUERY_VERSION.to_string());
    if query_version != QUERY_VERSION {
        return Err(ApiError::invalid(format!(
            "queryVersion {query_version} is not supported: use {QUERY_VERSION}"
        )));
    }
    let query_string = match (text("queryString")?, current) {
        (Some(q), _) => q,
        (None, Some(c)) => c.query_string.clone(),
        (None, None) => return Err(ApiError::invalid("queryString is required")),
    };
    if crate::search::parse_query(&query_string)?.is_none() {
        return Err(ApiError::new(
            400,
            "InvalidQueryException",
            format!("Syntax error in query string '{query_string}': it has no terms"),
        ));
    }
    Ok(DynamicSpec {
        index_name,
        query_string,
        query_version,
    })
}

/// The dynamic groups a thing joins and leaves (pure): it stays in the
/// matching groups it is in, then joins the other matching ones in name
/// order while it is in fewer than [`MAX_GROUPS_PER_THING`] thing groups
/// (`static_count` of them static), as AWS caps a thing's groups at 10.
pub fn decide(
    current: &BTreeSet<String>,
    matching: &BTreeSet<String>,
    static_count: usize,
) -> (Vec<String>, Vec<String>) {
    let leave: Vec<String> = current.difference(matching).cloned().collect();
    let room = MAX_GROUPS_PER_THING.saturating_sub(static_count + current.len() - leave.len());
    let join = matching.difference(current).take(room).cloned().collect();
    (join, leave)
}

// ------------------------------------------------------------------ store

fn spec_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, DynamicSpec)> {
    Ok((
        r.get(0)?,
        DynamicSpec {
            index_name: r.get(1)?,
            query_string: r.get(2)?,
            query_version: r.get(3)?,
        },
    ))
}

impl Store {
    /// Every dynamic thing group's spec, in name order.
    pub fn dynamic_groups(&self) -> Result<Vec<(String, DynamicSpec)>, ApiError> {
        self.tx(|tx| {
            let mut stmt = tx.prepare(
                "SELECT name,index_name,query_string,query_version FROM dynamic_thing_groups ORDER BY name",
            )?;
            let rows = stmt.query_map([], spec_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// A dynamic thing group's spec; `None` for a static group or none.
    pub fn dynamic_group(&self, name: &str) -> Result<Option<DynamicSpec>, ApiError> {
        self.tx(|tx| {
            Ok(tx
                .query_row(
                    "SELECT name,index_name,query_string,query_version FROM dynamic_thing_groups WHERE name=?1",
                    [name],
                    spec_row,
                )
                .optional()?
                .map(|(_, s)| s))
        })
    }

    /// Stores a new dynamic group; `Some` with the thing group already of
    /// that name (and its spec, if dynamic). LimitExceededException past
    /// [`MAX_DYNAMIC_GROUPS`].
    pub fn create_dynamic_group(
        &self,
        g: &Group,
        spec: &DynamicSpec,
        tags: &[(String, String)],
    ) -> Result<Option<(Group, Option<DynamicSpec>)>, ApiError> {
        self.tx(|tx| {
            if let Some(old) = get_group(tx, GroupKind::Thing, &g.name)? {
                let spec = tx
                    .query_row(
                        "SELECT name,index_name,query_string,query_version FROM dynamic_thing_groups WHERE name=?1",
                        [&g.name],
                        spec_row,
                    )
                    .optional()?;
                return Ok(Some((old, spec.map(|(_, s)| s))));
            }
            let n: i64 = tx.query_row("SELECT count(*) FROM dynamic_thing_groups", [], |r| {
                r.get(0)
            })?;
            if n as usize >= MAX_DYNAMIC_GROUPS {
                return Err(ApiError::new(
                    410,
                    "LimitExceededException",
                    format!("This account already has {n} dynamic thing groups, the most AWS IoT allows; delete one first"),
                ));
            }
            tx.execute(
                "INSERT INTO fleet_groups(kind,name,id,parent,properties,version,created) VALUES('thinggroup',?1,?2,NULL,?3,?4,?5)",
                params![g.name, g.id, Value::Object(g.properties.clone()).to_string(), g.version, g.created],
            )?;
            put_spec(tx, &g.name, spec)?;
            put_tags(tx, GroupKind::Thing.key(), &g.name, tags)?;
            Ok(None)
        })
    }

    /// Replaces a dynamic group's spec and applies `change` to its
    /// properties, if `expected` (when given) is its version; returns the
    /// new version.
    pub fn update_dynamic_group(
        &self,
        name: &str,
        expected: Option<i64>,
        spec: &DynamicSpec,
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<i64, ApiError> {
        self.tx(|tx| {
            let Some(mut g) = get_group(tx, GroupKind::Thing, name)? else {
                return Err(super::store::group_not_found(GroupKind::Thing, name));
            };
            if let Some(e) = expected.filter(|e| *e != g.version) {
                return Err(ApiError::new(
                    409,
                    "VersionConflictException",
                    format!("expectedVersion {e} does not match the version {} of dynamic thing group {name}; describe it again and retry", g.version),
                ));
            }
            change(&mut g.properties);
            tx.execute(
                "UPDATE fleet_groups SET properties=?2, version=version+1 WHERE kind='thinggroup' AND name=?1",
                params![name, Value::Object(g.properties.clone()).to_string()],
            )?;
            put_spec(tx, name, spec)?;
            Ok(g.version + 1)
        })
    }
}

fn put_spec(tx: &rusqlite::Connection, name: &str, spec: &DynamicSpec) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO dynamic_thing_groups(name,index_name,query_string,query_version) VALUES(?1,?2,?3,?4)
         ON CONFLICT(name) DO UPDATE SET index_name=excluded.index_name,
           query_string=excluded.query_string, query_version=excluded.query_version",
        params![name, spec.index_name, spec.query_string, spec.query_version],
    )?;
    Ok(())
}

// --------------------------------------------------------------- handlers

/// A dynamic group needs the things index (AWS: "Dynamic thing groups
/// require fleet indexing enabled"); its absence is the index's
/// ResourceNotFoundException, as SearchIndex answers.
fn check_index(state: &CoreState) -> Result<(), ApiError> {
    if crate::search::load_config(&state.store)?.things_on() {
        Ok(())
    } else {
        Err(crate::search::no_index(crate::search::THINGS))
    }
}

/// `name`'s spec, refusing a static group (or none) by name.
pub fn existing_dynamic(state: &CoreState, name: &str) -> Result<DynamicSpec, ApiError> {
    match state.store.dynamic_group(name)? {
        Some(s) => Ok(s),
        None if state.store.group(GroupKind::Thing, name)?.is_some() => {
            Err(ApiError::invalid(format!(
                "Thing group {name} is a static thing group: use UpdateThingGroup or DeleteThingGroup for it"
            )))
        }
        None => Err(super::store::group_not_found(GroupKind::Thing, name)),
    }
}

async fn create(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    check_name("thingGroupName", &name)?;
    let body = body_object(&body)?;
    let spec = spec_from(&body, None)?;
    let props = properties_from(body.get("thingGroupProperties"))?;
    let mut stored = Map::new();
    apply_update(&mut stored, &props);
    let tags = parse_tags(&body, "tags")?;
    check_index(&state)?;
    let g = Group {
        name: name.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        parent: None,
        properties: stored,
        version: 1,
        created: now_secs(),
    };
    let g = match state.store.create_dynamic_group(&g, &spec, &tags)? {
        None => g,
        Some((old, Some(s))) if s == spec && old.properties == g.properties => old,
        Some(_) => {
            return Err(ApiError::already_exists(format!(
                "Thing Group {name} already exists in current account with different properties"
            )))
        }
    };
    state.dynamic.all();
    ok(json!({
        "thingGroupName": g.name,
        "thingGroupArn": state.arn(&format!("thinggroup/{}", g.name)),
        "thingGroupId": g.id,
        "indexName": spec.index_name,
        "queryString": spec.query_string,
        "queryVersion": spec.query_version,
    }))
}

async fn update(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let (raw, expected) = update_body(&body, "thingGroupProperties")?;
    let props = properties_from(Some(raw))?;
    let current = existing_dynamic(&state, &name)?;
    let spec = spec_from(&body, Some(&current))?;
    let version = state
        .store
        .update_dynamic_group(&name, expected, &spec, |p| apply_update(p, &props))?;
    state.dynamic.all();
    ok(json!({ "version": version }))
}

async fn delete(State(state): State<Arc<CoreState>>, Path(name): Path<String>, q: Q) -> ApiResult {
    let expected = expected_version_query(&q)?;
    // Like DeleteThingGroup: success for a group that does not exist.
    if state.store.group(GroupKind::Thing, &name)?.is_none() {
        return empty();
    }
    existing_dynamic(&state, &name)?;
    let arn = state.arn(&format!("thinggroup/{name}"));
    if state
        .store
        .delete_group(GroupKind::Thing, &name, &arn, expected)?
    {
        state.changed();
    }
    empty()
}

// ------------------------------------------------------------- evaluation

/// Things waiting for evaluation, shared by the registry's handlers, the
/// broker's watcher and the evaluator.
#[derive(Default)]
pub struct Pending {
    marks: Mutex<(bool, BTreeSet<String>)>,
    wake: tokio::sync::Notify,
}

impl Pending {
    /// `thing` may have changed what dynamic groups it belongs in.
    pub fn thing(&self, thing: &str) {
        {
            let mut m = self.marks.lock().unwrap_or_else(|p| p.into_inner());
            if !m.0 {
                m.1.insert(thing.to_string());
                if m.1.len() > MAX_MARKED {
                    *m = (true, BTreeSet::new());
                }
            }
        }
        self.wake.notify_one();
    }

    /// Every thing may have.
    pub fn all(&self) {
        *self.marks.lock().unwrap_or_else(|p| p.into_inner()) = (true, BTreeSet::new());
        self.wake.notify_one();
    }

    fn take(&self) -> (bool, BTreeSet<String>) {
        std::mem::take(&mut *self.marks.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Evaluates the marked things (every thing after [`Pending::all`]) against
/// every dynamic group and stores the changes; returns how many memberships
/// changed. Nothing is evaluated while thing indexing is OFF.
pub fn evaluate_pending(state: &CoreState) -> Result<usize, ApiError> {
    let (all, marked) = state.dynamic.take();
    let groups = state.store.dynamic_groups()?;
    let cfg = crate::search::load_config(&state.store)?;
    if groups.is_empty() || !cfg.things_on() || (!all && marked.is_empty()) {
        return Ok(0);
    }
    let queries: Vec<(String, Query)> = groups
        .iter()
        .filter_map(|(n, s)| match crate::search::parse_query(&s.query_string) {
            Ok(Some(q)) => Some((n.clone(), q)),
            _ => None,
        })
        .collect();
    let names: BTreeSet<String> = groups.into_iter().map(|(n, _)| n).collect();
    let counts = |g: &str| !names.contains(g);
    let mut changed = 0;
    for_each_batch(state, all, marked, |batch| {
        let entries = crate::search::thing_entries(state, &cfg, batch, &counts)?;
        for (t, (doc, _)) in batch.iter().zip(entries) {
            changed += apply(state, &t.name, &doc, &queries, &names)?;
        }
        Ok(())
    })?;
    if changed > 0 {
        state.changed();
    }
    Ok(changed)
}

/// Calls `f` with every thing (`all`) or the `marked` ones that exist, 200
/// at a time.
fn for_each_batch(
    state: &CoreState,
    all: bool,
    marked: BTreeSet<String>,
    mut f: impl FnMut(&[Thing]) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    if !all {
        let names: Vec<String> = marked.into_iter().collect();
        for chunk in names.chunks(200) {
            let things: Vec<Thing> = chunk
                .iter()
                .filter_map(|n| state.store.thing(n).transpose())
                .collect::<Result<_, _>>()?;
            f(&things)?;
        }
        return Ok(());
    }
    let mut cursor: Option<String> = None;
    loop {
        let batch = state.store.list_things(cursor.as_deref(), 200)?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        cursor = Some(last.name.clone());
        f(&batch)?;
    }
}

/// Stores one thing's joins and leaves; a join gives it the group's
/// running CONTINUOUS jobs.
fn apply(
    state: &CoreState,
    thing: &str,
    doc: &Doc,
    queries: &[(String, Query)],
    dynamic: &BTreeSet<String>,
) -> Result<usize, ApiError> {
    let all = state.store.groups_of_thing(GroupKind::Thing, thing)?;
    let current: BTreeSet<String> = all
        .iter()
        .filter(|g| dynamic.contains(*g))
        .cloned()
        .collect();
    let matching: BTreeSet<String> = queries
        .iter()
        .filter(|(_, q)| doc.matches(q))
        .map(|(n, _)| n.clone())
        .collect();
    let (join, leave) = decide(&current, &matching, all.len() - current.len());
    for g in &leave {
        state
            .store
            .remove_group_member(GroupKind::Thing, g, thing)?;
    }
    for g in &join {
        state.store.add_group_member(GroupKind::Thing, g, thing)?;
        let arn = state.arn(&format!("thinggroup/{g}"));
        crate::jobs::api::thing_joined_group(state, thing, &arn)?;
    }
    Ok(join.len() + leave.len())
}

/// Keeps dynamic groups current while the core runs: marks things whose
/// shadow changes or who connect or disconnect (read from the broker's own
/// topics), and evaluates the marks [`SETTLE`] after they start to arrive.
pub async fn run(state: Arc<CoreState>, broker: gopigo_broker::BrokerHandle) {
    state.dynamic.all();
    tokio::join!(watch_broker(state.clone(), broker), evaluate_loop(state));
}

async fn evaluate_loop(state: Arc<CoreState>) {
    loop {
        state.dynamic.wake.notified().await;
        tokio::time::sleep(SETTLE).await;
        let st = state.clone();
        match tokio::task::spawn_blocking(move || evaluate_pending(&st)).await {
            Ok(Ok(n)) if n > 0 => tracing::debug!(changes = n, "dynamic thing groups updated"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "dynamic thing group evaluation failed"),
            Err(e) => tracing::error!(error = %e, "dynamic thing group task failed"),
        }
    }
}

async fn watch_broker(state: Arc<CoreState>, broker: gopigo_broker::BrokerHandle) {
    let mut presence = broker.subscribe_internal("$aws/events/presence/+/+");
    let mut shadows = broker.subscribe_internal("$aws/things/+/shadow/#");
    loop {
        let thing = tokio::select! {
            m = presence.recv() => match m {
                Some((topic, _)) => topic.rsplit('/').next().map(str::to_string),
                None => return,
            },
            m = shadows.recv() => match m {
                Some((topic, _)) => shadow_change(&topic),
                None => return,
            },
        };
        if let Some(t) = thing {
            state.dynamic.thing(&t);
        }
    }
}

/// The thing whose shadow a topic says changed: `update/documents` or
/// `delete/accepted`, classic or named (pure).
pub fn shadow_change(topic: &str) -> Option<String> {
    let rest = topic.strip_prefix("$aws/things/")?;
    let (thing, tail) = rest.split_once("/shadow/")?;
    (tail.ends_with("update/documents") || tail.ends_with("delete/accepted"))
        .then(|| thing.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn specs_default_and_refuse_what_aws_does_not_support() {
        let body = |v: Value| v.as_object().unwrap().clone();
        let s = spec_from(
            &body(json!({"queryString": "attributes.model:gopigo3"})),
            None,
        )
        .unwrap();
        assert_eq!(s.index_name, "AWS_Things");
        assert_eq!(s.query_version, QUERY_VERSION);
        let e = spec_from(&body(json!({})), None).unwrap_err();
        assert!(
            e.message.contains("queryString is required"),
            "{}",
            e.message
        );
        let e = spec_from(&body(json!({"queryString": "a:(b"})), None).unwrap_err();
        assert_eq!(e.kind, "InvalidQueryException");
        let e = spec_from(
            &body(json!({"queryString": "a:b", "indexName": "AWS_ThingGroups"})),
            None,
        )
        .unwrap_err();
        assert_eq!(e.kind, "InvalidRequestException");
        let e = spec_from(
            &body(json!({"queryString": "a:b", "queryVersion": "2020-01-01"})),
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("2017-09-30"), "{}", e.message);
        let updated = spec_from(&body(json!({"thingGroupProperties": {}})), Some(&s)).unwrap();
        assert_eq!(updated, s, "an update without a query keeps the old one");
    }

    #[test]
    fn a_thing_keeps_matching_groups_and_joins_up_to_ten() {
        let (join, leave) = decide(&set(&["a", "b"]), &set(&["b", "c"]), 0);
        assert_eq!(
            (join, leave),
            (vec!["c".to_string()], vec!["a".to_string()])
        );
        // Nine static groups and one dynamic: no room for another.
        let (join, leave) = decide(&set(&["a"]), &set(&["a", "b"]), 9);
        assert!(join.is_empty() && leave.is_empty());
        // Leaving one makes room for one, in name order.
        let (join, leave) = decide(&set(&["a"]), &set(&["c", "b"]), 9);
        assert_eq!(
            (join, leave),
            (vec!["b".to_string()], vec!["a".to_string()])
        );
    }

    fn thing(name: &str, site: &str) -> Thing {
        Thing {
            name: name.into(),
            id: name.into(),
            type_name: None,
            attributes: json!({ "site": site }).as_object().unwrap().clone(),
            version: 1,
        }
    }

    fn lab(state: &CoreState) -> Vec<String> {
        state
            .store
            .group_members(GroupKind::Thing, &["lab".to_string()])
            .unwrap()
    }

    #[test]
    fn evaluation_follows_marked_things_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            crate::Core::open(crate::CoreConfig::new(dir.path().join("core")))
                .unwrap()
                .state()
        };
        let state = open();
        state.store.insert_thing(&thing("r1", "lab")).unwrap();
        state.store.insert_thing(&thing("r2", "field")).unwrap();
        let g = Group {
            name: "lab".into(),
            id: "1".into(),
            parent: None,
            properties: Map::new(),
            version: 1,
            created: 0.0,
        };
        let body = json!({"queryString": "attributes.site:lab"});
        let spec = spec_from(body.as_object().unwrap(), None).unwrap();
        assert!(state
            .store
            .create_dynamic_group(&g, &spec, &[])
            .unwrap()
            .is_none());
        state.dynamic.all();
        assert_eq!(evaluate_pending(&state).unwrap(), 1);
        assert_eq!(lab(&state), vec!["r1"]);
        // Only marked things are looked at again.
        state.store.update_thing(&thing("r2", "lab")).unwrap();
        state.store.update_thing(&thing("r1", "field")).unwrap();
        state.dynamic.thing("r2");
        assert_eq!(evaluate_pending(&state).unwrap(), 1);
        assert_eq!(lab(&state), vec!["r1", "r2"]);
        state.dynamic.thing("r1");
        state.dynamic.thing("gone");
        assert_eq!(evaluate_pending(&state).unwrap(), 1);
        assert_eq!(lab(&state), vec!["r2"]);
        drop(state);
        let state = open();
        assert_eq!(state.store.dynamic_group("lab").unwrap(), Some(spec));
        assert_eq!(lab(&state), vec!["r2"]);
    }

    #[test]
    fn shadow_topics_name_their_thing() {
        assert_eq!(
            shadow_change("$aws/things/r1/shadow/update/documents").as_deref(),
            Some("r1")
        );
        assert_eq!(
            shadow_change("$aws/things/r1/shadow/name/cfg/delete/accepted").as_deref(),
            Some("r1")
        );
        assert_eq!(shadow_change("$aws/things/r1/shadow/get/accepted"), None);
        assert_eq!(shadow_change("$aws/things/r1/jobs/notify"), None);
    }
}
