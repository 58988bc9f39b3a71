//! Topic rules, stored and listed (CreateTopicRule, GetTopicRule,
//! ListTopicRules, ReplaceTopicRule, Enable/DisableTopicRule,
//! DeleteTopicRule), so stacks that declare rules deploy locally.
//!
//! The rules are kept as given; the SQL's `FROM` topic filter is read (the
//! list's `topicPattern`, and the `topic` filter of ListTopicRules) and a
//! statement that is not `SELECT ... FROM '<topic filter>' [WHERE ...]` is
//! refused with SqlParseException.
//!
//! [`run_engine`] runs a local rules engine: an enabled rule whose SQL is in
//! the subset `gopigo-rulesql` evaluates republishes what its SELECT makes
//! of each message its WHERE accepts, to its `republish` actions' topics
//! (with `${...}` substitution templates). Other rules and actions are
//! stored only (see docs/core.md, "Topic rules").

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Map, Value};

use gopigo_rulesql::{Message, Output, Statement};

use crate::control::{body_object, empty, ok, ApiResult, Q};
use crate::error::ApiError;
use crate::store::now_secs;
use crate::CoreState;

/// Tables of this module (created with the store's).
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS topic_rules (
    name TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    disabled INTEGER NOT NULL,
    created REAL NOT NULL
);
"#;

/// The topic-rule routes.
pub fn router() -> Router<Arc<CoreState>> {
    Router::new()
        .route("/rules", get(list_topic_rules))
        .route(
            "/rules/{name}",
            post(create_topic_rule)
                .get(get_topic_rule)
                .patch(replace_topic_rule)
                .delete(delete_topic_rule),
        )
        .route("/rules/{name}/enable", post(enable_topic_rule))
        .route("/rules/{name}/disable", post(disable_topic_rule))
}

struct Rule {
    name: String,
    payload: Map<String, Value>,
    disabled: bool,
    created: f64,
}

/// AWS's pattern for rule names.
fn check_rule_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{name}' at 'ruleName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_]+$"
        )))
    }
}

fn sql_error(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "SqlParseException", message)
}

/// The topic filter in a rule's `SELECT ... FROM '<filter>' [WHERE ...]` (pure).
pub fn topic_pattern(sql: &str) -> Result<String, ApiError> {
    let trimmed = sql.trim_start();
    if !trimmed
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("select"))
    {
        return Err(sql_error(format!(
            "Expected SELECT at the start of the statement: {sql}"
        )));
    }
    let upper = sql.to_ascii_uppercase();
    let from = upper
        .find(" FROM ")
        .ok_or_else(|| sql_error(format!("Expected FROM '<topic filter>' in: {sql}")))?;
    let rest = sql[from + 6..].trim_start();
    let quoted = rest
        .strip_prefix('\'')
        .and_then(|r| r.split_once('\''))
        .map(|(topic, _)| topic)
        .ok_or_else(|| {
            sql_error(format!(
                "Expected a quoted topic filter after FROM, e.g. FROM 'sensors/#', in: {sql}"
            ))
        })?;
    if quoted.is_empty() {
        return Err(sql_error("The topic filter after FROM is empty"));
    }
    Ok(quoted.to_string())
}

/// Checks a `topicRulePayload` (the whole request body, as botocore sends
/// it) and returns it with `ruleDisabled` read out.
fn check_payload(payload: Map<String, Value>) -> Result<(Map<String, Value>, bool), ApiError> {
    if payload.is_empty() {
        return Err(ApiError::invalid(
            "topicRulePayload is required: a JSON object with sql and actions",
        ));
    }
    match payload.get("sql") {
        Some(Value::String(sql)) => {
            topic_pattern(sql)?;
        }
        _ => return Err(ApiError::invalid("topicRulePayload.sql is required")),
    }
    if !matches!(payload.get("actions"), Some(Value::Array(_))) {
        return Err(ApiError::invalid(
            "topicRulePayload.actions is required: a list of actions (it may be empty)",
        ));
    }
    let disabled = payload
        .get("ruleDisabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((payload, disabled))
}

fn rule_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Rule> {
    let payload: String = r.get(1)?;
    Ok(Rule {
        name: r.get(0)?,
        payload: serde_json::from_str(&payload).unwrap_or_default(),
        disabled: r.get(2)?,
        created: r.get(3)?,
    })
}

fn find_rule(state: &CoreState, name: &str) -> Result<Option<Rule>, ApiError> {
    state.store.tx(|tx| {
        Ok(tx
            .query_row(
                "SELECT name, payload, disabled, created FROM topic_rules WHERE name=?1",
                [name],
                rule_row,
            )
            .optional()?)
    })
}

fn existing_rule(state: &CoreState, name: &str) -> Result<Rule, ApiError> {
    find_rule(state, name)?
        .ok_or_else(|| ApiError::not_found(format!("Rule {name} does not exist")))
}

fn rule_arn(state: &CoreState, name: &str) -> String {
    state.arn(&format!("rule/{name}"))
}

async fn create_topic_rule(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    check_rule_name(&name)?;
    let (payload, disabled) = check_payload(body_object(&body)?)?;
    note_if_stored_only(&name, &payload, disabled);
    let inserted = state.store.tx(|tx| {
        Ok(tx.execute(
            "INSERT INTO topic_rules(name,payload,disabled,created) VALUES(?1,?2,?3,?4)
             ON CONFLICT(name) DO NOTHING",
            params![
                name,
                Value::Object(payload).to_string(),
                disabled,
                now_secs()
            ],
        )?)
    })?;
    state.changed();
    if inserted == 0 {
        return Err(
            ApiError::already_exists(format!("Rule {name} already exists"))
                .with("resourceArn", rule_arn(&state, &name)),
        );
    }
    empty()
}

async fn get_topic_rule(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
) -> ApiResult {
    let r = existing_rule(&state, &name)?;
    let mut rule = r.payload.clone();
    rule.insert("ruleName".into(), json!(r.name));
    rule.insert("ruleDisabled".into(), json!(r.disabled));
    rule.insert("createdAt".into(), json!(r.created));
    rule.entry("awsIotSqlVersion")
        .or_insert(json!("2015-10-08"));
    rule.entry("description").or_insert(json!(""));
    ok(json!({ "ruleArn": rule_arn(&state, &r.name), "rule": rule }))
}

async fn list_topic_rules(State(state): State<Arc<CoreState>>, q: Q) -> ApiResult {
    let rules: Vec<Rule> = state.store.tx(|tx| {
        let mut stmt =
            tx.prepare("SELECT name, payload, disabled, created FROM topic_rules ORDER BY name")?;
        let rows = stmt.query_map([], rule_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })?;
    let only_disabled = match q.get("ruleDisabled").map(String::as_str) {
        None => None,
        Some(_) => Some(crate::control::query_bool(&q, "ruleDisabled")?),
    };
    let items: Vec<(String, Value)> = rules
        .iter()
        .filter(|r| only_disabled.is_none_or(|d| d == r.disabled))
        .filter_map(|r| {
            let sql = r.payload.get("sql").and_then(Value::as_str).unwrap_or("");
            let pattern = topic_pattern(sql).ok()?;
            if q.get("topic").is_some_and(|t| *t != pattern) {
                return None;
            }
            Some((
                r.name.clone(),
                json!({
                    "ruleArn": rule_arn(&state, &r.name),
                    "ruleName": r.name,
                    "topicPattern": pattern,
                    "createdAt": r.created,
                    "ruleDisabled": r.disabled,
                }),
            ))
        })
        .collect();
    let names: Vec<String> = items.iter().map(|(n, _)| n.clone()).collect();
    let (page, next) = crate::control::paginate(&names, &q, "maxResults", "nextToken", 250)?;
    let list: Vec<Value> = items
        .into_iter()
        .filter(|(n, _)| page.contains(n))
        .map(|(_, v)| v)
        .collect();
    crate::control::page_response("rules", json!(list), "nextToken", next)
}

async fn replace_topic_rule(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let (payload, disabled) = check_payload(body_object(&body)?)?;
    existing_rule(&state, &name)?;
    note_if_stored_only(&name, &payload, disabled);
    state.store.tx(|tx| {
        tx.execute(
            "UPDATE topic_rules SET payload=?2, disabled=?3 WHERE name=?1",
            params![name, Value::Object(payload).to_string(), disabled],
        )?;
        Ok(())
    })?;
    state.changed();
    empty()
}

fn set_disabled(state: &CoreState, name: &str, disabled: bool) -> ApiResult {
    existing_rule(state, name)?;
    state.store.tx(|tx| {
        tx.execute(
            "UPDATE topic_rules SET disabled=?2 WHERE name=?1",
            params![name, disabled],
        )?;
        Ok(())
    })?;
    state.changed();
    empty()
}

async fn enable_topic_rule(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
) -> ApiResult {
    set_disabled(&state, &name, false)
}

async fn disable_topic_rule(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
) -> ApiResult {
    set_disabled(&state, &name, true)
}

async fn delete_topic_rule(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
) -> ApiResult {
    existing_rule(&state, &name)?;
    state.store.tx(|tx| {
        tx.execute("DELETE FROM topic_rules WHERE name=?1", [&name])?;
        Ok(())
    })?;
    state.changed();
    empty()
}

/// A rule the engine runs: its parsed statement and `(topic, qos)`
/// republish targets (topics may hold `${...}` substitution templates).
#[derive(Debug, Clone, PartialEq)]
pub struct Runnable {
    /// The rule's name.
    pub name: String,
    /// The rule's SQL, parsed.
    pub statement: Statement,
    /// Where each message goes.
    pub republish: Vec<(String, u8)>,
}

/// The rule as the engine can run it: enabled, its SQL inside the subset
/// that `gopigo-rulesql` evaluates, and at least one republish action
/// whose topic (when it has no template) does not match its own filter,
/// which would loop (pure). The error says why a rule is stored only.
pub fn runnable(
    name: &str,
    payload: &Map<String, Value>,
    disabled: bool,
) -> Result<Runnable, String> {
    if disabled {
        return Err("it is disabled".into());
    }
    let sql = payload
        .get("sql")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let statement = gopigo_rulesql::parse(sql).map_err(|e| e.to_string())?;
    let republish: Vec<(String, u8)> = payload
        .get("actions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let r = a.get("republish")?;
            let topic = r.get("topic")?.as_str()?.to_string();
            let qos = r.get("qos").and_then(Value::as_u64).unwrap_or(0).min(1) as u8;
            Some((topic, qos))
        })
        .filter(|(topic, _)| {
            topic.contains("${") || !gopigo_broker::topic::matches(&statement.filter, topic)
        })
        .collect();
    if republish.is_empty() {
        return Err("it has no republish action the local engine can run (the others are stored only; a republish to a topic its own FROM filter matches would loop)".into());
    }
    Ok(Runnable {
        name: name.to_string(),
        statement,
        republish,
    })
}

/// Logs, when a rule is created or replaced, why it will not fire here.
fn note_if_stored_only(name: &str, payload: &Map<String, Value>, disabled: bool) {
    if let (false, Err(why)) = (disabled, runnable(name, payload, disabled)) {
        tracing::warn!(
            rule = name,
            "topic rule stored, but the local rules engine will not run it: {why}"
        );
    }
}

fn runnable_rules(state: &CoreState) -> Vec<Runnable> {
    let rules: Result<Vec<Rule>, ApiError> = state.store.tx(|tx| {
        let mut stmt = tx.prepare("SELECT name, payload, disabled, created FROM topic_rules")?;
        let rows = stmt.query_map([], rule_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    });
    match rules {
        Ok(rules) => rules
            .iter()
            .filter_map(|r| runnable(&r.name, &r.payload, r.disabled).ok())
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read topic rules; running none");
            Vec::new()
        }
    }
}

/// Runs the runnable rules until the registry's event channel closes,
/// restarting them whenever the registry changes.
pub async fn run_engine(state: Arc<CoreState>, broker: gopigo_broker::BrokerHandle) {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = state.events();
    loop {
        let tasks: Vec<_> = runnable_rules(&state)
            .into_iter()
            .map(|rule| tokio::spawn(run_rule(rule, broker.clone())))
            .collect();
        let closed = loop {
            match events.recv().await {
                Ok(crate::CoreEvent::RegistryChanged) | Err(RecvError::Lagged(_)) => break false,
                Ok(_) => {}
                Err(RecvError::Closed) => break true,
            }
        };
        for t in tasks {
            t.abort();
        }
        if closed {
            return;
        }
    }
}

/// Where one message goes under `rule`: `(topic, payload, qos)` for each
/// republish action whose topic renders (pure). A rendered topic that
/// the rule's own filter matches, or that is reserved (`$...`), is left out.
pub fn deliveries(rule: &Runnable, msg: Message<'_>) -> Vec<(String, Vec<u8>, u8)> {
    let Output::Publish(out) = rule.statement.apply(msg) else {
        return Vec::new();
    };
    rule.republish
        .iter()
        .filter_map(|(template, qos)| match gopigo_rulesql::render(template, msg) {
            Ok(topic) if topic.starts_with('$') || topic.is_empty() => None,
            Ok(topic) if gopigo_broker::topic::matches(&rule.statement.filter, &topic) => None,
            Ok(topic) => Some((topic, out.clone(), *qos)),
            Err(e) => {
                tracing::debug!(rule = %rule.name, error = %e, "republish topic does not render for this message");
                None
            }
        })
        .collect()
}

async fn run_rule(rule: Runnable, broker: gopigo_broker::BrokerHandle) {
    let mut rx = broker.subscribe_internal(&rule.statement.filter);
    while let Some((topic, payload)) = rx.recv().await {
        let msg = Message {
            topic: &topic,
            payload: &payload,
            now_ms: (now_secs() * 1000.0) as i64,
        };
        for (to, out, qos) in deliveries(&rule, msg) {
            broker.publish(&to, Bytes::from(out), qos, false);
        }
    }
    tracing::debug!(rule = %rule.name, "rule stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_topic_filter_of_rule_sql() {
        let ok = [
            ("SELECT * FROM 'topic/#'", "topic/#"),
            ("select temp FROM 'a/+/b' WHERE temp > 50", "a/+/b"),
            ("  SELECT * from 'x'", "x"),
        ];
        for (sql, want) in ok {
            assert_eq!(topic_pattern(sql).unwrap(), want, "{sql}");
        }
        for bad in [
            "",
            "DELETE FROM 'x'",
            "SELECT *",
            "SELECT * FROM x",
            "SELECT * FROM ''",
        ] {
            assert_eq!(
                topic_pattern(bad).unwrap_err().kind,
                "SqlParseException",
                "{bad}"
            );
        }
    }

    fn payload(sql: &str, topic: &str) -> Map<String, Value> {
        serde_json::from_value(json!({
            "sql": sql,
            "actions": [{"republish": {"topic": topic, "qos": 1, "roleArn": "r"}}],
        }))
        .unwrap()
    }

    fn msg<'a>(topic: &'a str, payload: &'a str) -> Message<'a> {
        Message {
            topic,
            payload: payload.as_bytes(),
            now_ms: 0,
        }
    }

    #[test]
    fn runs_rules_in_the_subset_with_a_republish_that_cannot_loop() {
        let r = runnable(
            "r",
            &payload("SELECT * FROM 'sensors/#'", "alerts/all"),
            false,
        )
        .unwrap();
        assert_eq!(r.statement.filter, "sensors/#");
        assert_eq!(r.republish, vec![("alerts/all".to_string(), 1)]);
        let off = runnable(
            "r",
            &payload("SELECT * FROM 'sensors/#'", "alerts/all"),
            true,
        );
        assert_eq!(off.unwrap_err(), "it is disabled");
        let filtered = payload("SELECT t FROM 'sensors/#' WHERE t > 1", "alerts/all");
        assert!(runnable("r", &filtered, false).is_ok());
        let looping = payload("SELECT * FROM 'sensors/#'", "sensors/copy");
        assert!(runnable("r", &looping, false)
            .unwrap_err()
            .contains("would loop"));
        let outside = payload("SELECT VALUE t FROM 'sensors/#'", "alerts/all");
        assert!(runnable("r", &outside, false)
            .unwrap_err()
            .contains("VALUE is AWS IoT SQL"));
    }

    #[test]
    fn a_message_goes_where_the_where_and_the_template_say() {
        let sql = "SELECT distance_mm, topic(2) AS robot FROM 'gopigo/+/telemetry' WHERE distance_mm < 100";
        let r = runnable("near", &payload(sql, "alerts/${topic(2)}/near"), false).unwrap();
        let near = deliveries(
            &r,
            msg("gopigo/r1/telemetry", r#"{"distance_mm":80,"speed":3}"#),
        );
        assert_eq!(near.len(), 1);
        assert_eq!(near[0].0, "alerts/r1/near");
        let body: Value = serde_json::from_slice(&near[0].1).unwrap();
        assert_eq!(body, json!({"distance_mm": 80, "robot": "r1"}));
        assert!(deliveries(&r, msg("gopigo/r1/telemetry", r#"{"distance_mm":500}"#)).is_empty());
        // A template that renders into the rule's own filter is not republished.
        let r = runnable(
            "echo",
            &payload("SELECT * FROM 'a/#'", "${topic()}/again"),
            false,
        )
        .unwrap();
        assert!(deliveries(&r, msg("a/b", "{}")).is_empty());
        // Nor into a reserved topic.
        let r = runnable(
            "res",
            &payload("SELECT * FROM 'x/+'", "$${topic(2)}"),
            false,
        )
        .unwrap();
        assert!(deliveries(&r, msg("x/aws", "{}")).is_empty());
    }

    #[test]
    fn rule_names_follow_aws_pattern() {
        assert!(check_rule_name("my_rule1").is_ok());
        for bad in ["t-r", "t.r", "t r", ""] {
            let e = check_rule_name(bad).unwrap_err();
            assert!(e
                .message
                .contains("Member must satisfy regular expression pattern"));
        }
    }
}
