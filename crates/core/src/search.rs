//! Fleet indexing: SearchIndex over the things (index `AWS_Things`) and,
//! when thing group indexing is ON, the thing groups (`AWS_ThingGroups`),
//! Get/UpdateIndexingConfiguration, and ListIndices/DescribeIndex.
//!
//! Also GetThingConnectivityData: one thing's connectivity.
//!
//! The query language is [`query`] (pure), a thing's searchable fields and
//! their evaluation [`document`] (pure), its connectivity's fields and
//! shapes [`connectivity`] (pure), the configuration [`config`] (pure);
//! this file reads the registry, shadows, groups and the broker's
//! connectivity records, and pages the answer.

pub mod config;
pub mod connectivity;
pub mod document;
pub mod presence;
pub mod query;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use gopigo_shadow::StoredShadow;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use crate::control::{body_object, ok, ApiResult};
use crate::error::ApiError;
use crate::fleet::store::{Group, GroupKind};
use crate::store::{Store, Thing};
use crate::CoreState;
use config::IndexingConfig;
use document::{Doc, Val};
use gopigo_broker::Connectivity;

/// The most results one page holds (AWS's API reference: "This maximum
/// number cannot exceed 100"); also the default.
pub const MAX_RESULTS: usize = 100;

const CONFIG_KEY: &str = "indexing_configuration";
pub(crate) const THINGS: &str = "AWS_Things";
const GROUPS: &str = "AWS_ThingGroups";

/// The fleet indexing routes.
pub fn router() -> Router<Arc<CoreState>> {
    Router::new()
        .route("/indices", get(list_indices))
        .route("/indices/search", post(search_index))
        .route("/indices/{name}", get(describe_index))
        .route(
            "/things/{name}/connectivity-data",
            post(get_thing_connectivity_data),
        )
        .route(
            "/indexing/config",
            get(get_indexing_configuration).post(update_indexing_configuration),
        )
}

/// The stored indexing configuration (the local default until an update).
pub fn load_config(store: &Store) -> Result<IndexingConfig, ApiError> {
    store.tx(|tx| {
        let text: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key=?1", [CONFIG_KEY], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(text
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .map(|v| IndexingConfig::from_json(&v))
            .unwrap_or_default())
    })
}

fn save_config(store: &Store, c: &IndexingConfig) -> Result<(), ApiError> {
    store.tx(|tx| {
        tx.execute(
            "INSERT INTO meta(key,value) VALUES(?1,?2)
             ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            params![CONFIG_KEY, c.to_json().to_string()],
        )?;
        Ok(())
    })
}

async fn get_indexing_configuration(State(state): State<Arc<CoreState>>) -> ApiResult {
    ok(load_config(&state.store)?.to_json())
}

async fn update_indexing_configuration(
    State(state): State<Arc<CoreState>>,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let mut c = load_config(&state.store)?;
    c.update(&body).map_err(ApiError::invalid)?;
    save_config(&state.store, &c)?;
    // What is indexed changed, so may what dynamic groups hold.
    state.dynamic.all();
    ok(json!({}))
}

/// The indexes that exist, as their configuration says.
fn indices(cfg: &IndexingConfig) -> Vec<&'static str> {
    [(THINGS, cfg.things_on()), (GROUPS, cfg.groups_on())]
        .into_iter()
        .filter_map(|(n, on)| on.then_some(n))
        .collect()
}

async fn list_indices(State(state): State<Arc<CoreState>>) -> ApiResult {
    ok(json!({ "indexNames": indices(&load_config(&state.store)?) }))
}

/// Always ACTIVE: the local index is the registry itself, never building.
async fn describe_index(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
) -> ApiResult {
    let cfg = load_config(&state.store)?;
    if !indices(&cfg).contains(&name.as_str()) {
        return Err(no_index(&name));
    }
    let schema = if name == THINGS {
        cfg.thing_schema()
    } else {
        "REGISTRY"
    };
    ok(json!({ "indexName": name, "indexStatus": "ACTIVE", "schema": schema }))
}

/// A SearchIndex request, validated.
struct SearchRequest {
    index: String,
    query: String,
    max: usize,
    after: Option<String>,
}

impl SearchRequest {
    fn from_body(body: &Map<String, Value>) -> Result<Self, ApiError> {
        let index = body
            .get("indexName")
            .and_then(Value::as_str)
            .unwrap_or(THINGS)
            .to_string();
        let query = body
            .get("queryString")
            .and_then(Value::as_str)
            .filter(|q| !q.is_empty())
            .ok_or_else(|| ApiError::invalid("queryString is required"))?
            .to_string();
        let max = match body.get("maxResults") {
            None | Some(Value::Null) => MAX_RESULTS,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => (n as usize).min(MAX_RESULTS),
                _ => return Err(ApiError::invalid("maxResults must be a number from 1")),
            },
        };
        let after = match body.get("nextToken").and_then(Value::as_str) {
            None | Some("") => None,
            Some(t) => Some(decode_token(t)?),
        };
        Ok(SearchRequest {
            index,
            query,
            max,
            after,
        })
    }
}

/// The token names the last result given (opaque to clients).
fn encode_token(last: &str) -> String {
    format!("n1.{}", hex::encode(last))
}

fn decode_token(t: &str) -> Result<String, ApiError> {
    t.strip_prefix("n1.")
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "nextToken {t:?} is not one this core gave; pass the nextToken of the previous page"
            ))
        })
}

pub(crate) fn no_index(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "Index {name} does not exist: turn it on with UpdateIndexingConfiguration \
         (thingIndexingMode REGISTRY or REGISTRY_AND_SHADOW for {THINGS}, \
         thingGroupIndexingMode ON for {GROUPS})"
    ))
}

/// Parses a fleet indexing query; one that does not parse is
/// InvalidQueryException naming the query (cut at 120 characters).
pub(crate) fn parse_query(text: &str) -> Result<Option<query::Query>, ApiError> {
    query::parse(text).map_err(|e| {
        let shown: String = text.chars().take(120).collect();
        let cut = if shown.len() < text.len() { "..." } else { "" };
        ApiError::new(
            400,
            "InvalidQueryException",
            format!("Syntax error in query string '{shown}{cut}': {e}"),
        )
    })
}

async fn search_index(State(state): State<Arc<CoreState>>, body: Bytes) -> ApiResult {
    let req = SearchRequest::from_body(&body_object(&body)?)?;
    let cfg = load_config(&state.store)?;
    let on = match req.index.as_str() {
        THINGS => cfg.things_on(),
        GROUPS => cfg.groups_on(),
        _ => false,
    };
    if !on {
        return Err(no_index(&req.index));
    }
    let q = parse_query(&req.query)?;
    let Some(q) = q else {
        return ok(json!({ "things": [], "thingGroups": [] }));
    };
    let (found, token) = if req.index == THINGS {
        search_things(&state, &cfg, &q, &req)?
    } else {
        search_groups(&state.store, &q, &req)?
    };
    let key = if req.index == THINGS {
        "things"
    } else {
        "thingGroups"
    };
    let mut out = json!({ "things": [], "thingGroups": [] });
    out[key] = Value::Array(found);
    if let Some(t) = token {
        out["nextToken"] = json!(t);
    }
    ok(out)
}

/// A page of matches: at most `max`, and the token when more follow.
struct Page {
    max: usize,
    found: Vec<(String, Value)>,
}

impl Page {
    /// Adds a match; false once the page is full and one more was seen.
    fn offer(&mut self, name: &str, v: impl FnOnce() -> Value) -> bool {
        if self.found.len() > self.max {
            return false;
        }
        self.found.push((name.to_string(), v()));
        self.found.len() <= self.max
    }

    fn finish(mut self) -> (Vec<Value>, Option<String>) {
        let more = self.found.len() > self.max;
        self.found.truncate(self.max);
        let token = more
            .then(|| self.found.last().map(|(n, _)| encode_token(n)))
            .flatten();
        (self.found.into_iter().map(|(_, v)| v).collect(), token)
    }
}

fn search_things(
    state: &CoreState,
    cfg: &IndexingConfig,
    q: &query::Query,
    req: &SearchRequest,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let mut page = Page {
        max: req.max,
        found: Vec::new(),
    };
    let mut cursor = req.after.clone();
    loop {
        let batch = state.store.list_things(cursor.as_deref(), 200)?;
        let Some(last) = batch.last() else { break };
        cursor = Some(last.name.clone());
        let entries = thing_entries(state, cfg, &batch, &|_| true)?;
        for (t, (doc, response)) in batch.iter().zip(entries) {
            if doc.matches(q) && !page.offer(&t.name, || response) {
                return Ok(page.finish());
            }
        }
    }
    Ok(page.finish())
}

/// The searchable fields and SearchIndex documents of `things`; their
/// `thingGroupNames` hold the groups `group_counts` approves (dynamic thing
/// groups leave their own out: see [`crate::fleet::dynamic_groups`]).
pub(crate) fn thing_entries(
    state: &CoreState,
    cfg: &IndexingConfig,
    things: &[Thing],
    group_counts: &dyn Fn(&str) -> bool,
) -> Result<Vec<(Doc, Value)>, ApiError> {
    let links = cfg
        .connectivity_on()
        .then(|| connectivity_of(state, things));
    state.store.tx(|tx| {
        things
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let link = links.as_ref().map(|l| l[i].as_ref());
                thing_entry(tx, cfg, t, link, group_counts)
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
}

/// What the broker knows of each thing's connection (its client id is the
/// thing's name), or else what [`presence`] recorded before the broker
/// started.
fn connectivity_of(state: &CoreState, things: &[Thing]) -> Vec<Option<Connectivity>> {
    let names: Vec<&str> = things.iter().map(|t| t.name.as_str()).collect();
    let live = match state.broker() {
        Some(b) => b.connectivity(&names),
        None => vec![None; names.len()],
    };
    live.into_iter()
        .zip(&names)
        .map(|(c, n)| c.or_else(|| state.store.stored_connectivity(n).ok().flatten()))
        .collect()
}

/// GetThingConnectivityData: whether the thing is connected, since when, and
/// why its last connection ended; served while connectivity is indexed.
async fn get_thing_connectivity_data(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
) -> ApiResult {
    let thing = crate::control::existing_thing(&state, &name)?;
    let cfg = load_config(&state.store)?;
    if !cfg.things_on() || !cfg.connectivity_on() {
        return Err(ApiError::invalid(format!(
            "Thing connectivity is not indexed: turn it on with UpdateIndexingConfiguration \
             (thingIndexingMode REGISTRY or REGISTRY_AND_SHADOW, thingConnectivityIndexingMode \
             STATUS) before asking for {name}'s connectivity data"
        )));
    }
    let c = connectivity_of(&state, std::slice::from_ref(&thing))
        .pop()
        .flatten();
    ok(connectivity::connectivity_data(&thing.name, c.as_ref()))
}

/// Groups and billing groups a thing is directly in, in the order it joined
/// them (thing groups first).
fn group_names(tx: &Connection, thing: &str) -> Result<Vec<String>, ApiError> {
    let mut stmt =
        tx.prepare("SELECT grp FROM fleet_group_members WHERE thing=?1 ORDER BY kind DESC, rowid")?;
    let rows = stmt.query_map([thing], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<String>, _>>()?)
}

/// A live shadow as the index holds it: `desired`, `reported`, `delta`,
/// `metadata`, `hasDelta`, `version`.
fn shadow_json(tx: &Connection, thing: &str, name: &str) -> Result<Option<Value>, ApiError> {
    let stored = crate::store::get_shadow(tx, thing, name)?
        .and_then(|s| serde_json::from_str::<StoredShadow>(&s).ok())
        .filter(StoredShadow::exists);
    Ok(stored.map(|s| {
        let delta = s.delta();
        let mut v = json!({ "hasDelta": delta.is_some(), "version": s.version });
        let mut metadata = Map::new();
        for (key, section, meta) in [
            ("desired", &s.desired, &s.metadata_desired),
            ("reported", &s.reported, &s.metadata_reported),
        ] {
            if let Some(sec) = section {
                v[key] = Value::Object(sec.clone());
            }
            if let Some(m) = meta {
                metadata.insert(key.into(), Value::Object(m.clone()));
            }
        }
        if let Some(d) = delta {
            v["delta"] = Value::Object(d);
        }
        v["metadata"] = Value::Object(metadata);
        v
    }))
}

/// The searchable fields of a thing and its SearchIndex document.
fn thing_entry(
    tx: &Connection,
    cfg: &IndexingConfig,
    t: &Thing,
    link: Option<Option<&Connectivity>>,
    group_counts: &dyn Fn(&str) -> bool,
) -> Result<(Doc, Value), ApiError> {
    let mut doc = Doc::default();
    let mut out = json!({ "thingName": t.name, "thingId": t.id, "attributes": t.attributes });
    doc.push("thingName", Val::Str(t.name.clone()));
    doc.push("thingId", Val::Str(t.id.clone()));
    if let Some(tt) = &t.type_name {
        doc.push("thingTypeName", Val::Str(tt.clone()));
        out["thingTypeName"] = json!(tt);
    }
    let mut groups = group_names(tx, &t.name)?;
    groups.retain(|g| group_counts(g));
    for g in &groups {
        doc.push("thingGroupNames", Val::Str(g.clone()));
    }
    if !groups.is_empty() {
        out["thingGroupNames"] = json!(groups);
    }
    for (k, v) in &t.attributes {
        doc.push_json(&format!("attributes.{k}"), v);
    }
    if cfg.shadow_on() {
        if let Some(shadow) = thing_shadows(tx, cfg, &t.name, &mut doc)? {
            out["shadow"] = json!(shadow.to_string());
        }
    }
    if let Some(c) = link {
        connectivity::push_fields(&mut doc, c);
        out["connectivity"] = connectivity::thing_connectivity(c);
    }
    Ok((doc, out))
}

/// The classic shadow and the configured named shadows (`name.<shadow>`),
/// added to `doc` without their versions (AWS: not searchable).
fn thing_shadows(
    tx: &Connection,
    cfg: &IndexingConfig,
    thing: &str,
    doc: &mut Doc,
) -> Result<Option<Value>, ApiError> {
    let searchable = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("version");
        }
        v
    };
    let mut all = shadow_json(tx, thing, "")?.unwrap_or_else(|| json!({}));
    doc.push_json("shadow", &searchable(&all));
    let mut named = Map::new();
    for n in cfg.named_shadows() {
        if let Some(s) = shadow_json(tx, thing, &n)? {
            doc.push_json(&format!("shadow.name.{n}"), &searchable(&s));
            named.insert(n, s);
        }
    }
    if !named.is_empty() {
        all["name"] = Value::Object(named);
    }
    Ok((all.as_object().is_some_and(|m| !m.is_empty())).then_some(all))
}

fn search_groups(
    store: &Store,
    q: &query::Query,
    req: &SearchRequest,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let mut groups = store.groups(GroupKind::Thing)?;
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let mut page = Page {
        max: req.max,
        found: Vec::new(),
    };
    let after = req.after.as_deref().unwrap_or("");
    for g in groups.iter().filter(|g| g.name.as_str() > after) {
        let (doc, response) = group_entry(g, &groups);
        if doc.matches(q) && !page.offer(&g.name, || response) {
            break;
        }
    }
    Ok(page.finish())
}

/// A thing group's searchable fields and its document; `parentGroupNames`
/// runs from the root down to the direct parent.
fn group_entry(g: &Group, all: &[Group]) -> (Doc, Value) {
    let mut parents = Vec::new();
    let mut next = g.parent.clone();
    while let Some(p) = next.filter(|p| !parents.contains(p) && parents.len() < all.len()) {
        next = all
            .iter()
            .find(|x| x.name == p)
            .and_then(|x| x.parent.clone());
        parents.insert(0, p);
    }
    let attrs = g
        .properties
        .get("attributePayload")
        .and_then(|a| a.get("attributes"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut doc = Doc::default();
    doc.push("thingGroupName", Val::Str(g.name.clone()));
    doc.push("thingGroupId", Val::Str(g.id.clone()));
    parents
        .iter()
        .for_each(|p| doc.push("parentGroupNames", Val::Str(p.clone())));
    doc.push_json("attributes", &attrs);
    let mut out = json!({
        "thingGroupName": g.name, "thingGroupId": g.id,
        "attributes": attrs, "parentGroupNames": parents,
    });
    if let Some(d) = g
        .properties
        .get("thingGroupDescription")
        .and_then(Value::as_str)
    {
        doc.push("thingGroupDescription", Val::Str(d.into()));
        out["thingGroupDescription"] = json!(d);
    }
    (doc, out)
}
