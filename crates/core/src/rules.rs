//! Topic rules, stored and listed (CreateTopicRule, GetTopicRule,
//! ListTopicRules, ReplaceTopicRule, Enable/DisableTopicRule,
//! DeleteTopicRule), so stacks that declare rules deploy locally.
//!
//! The rules are kept as given; the SQL's `FROM` topic filter is read (the
//! list's `topicPattern`, and the `topic` filter of ListTopicRules) and a
//! statement that is not `SELECT ... FROM '<topic filter>' [WHERE ...]` is
//! refused with SqlParseException.
//!
//! [`run_engine`] runs the first step of a rules engine: an enabled rule
//! whose SQL is exactly `SELECT * FROM '<filter>'` republishes each matching
//! message with its `republish` actions. Other rules are stored only (see
//! docs/core.md).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Map, Value};

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

/// A rule the engine runs: its topic filter and `(topic, qos)` republish targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Runnable {
    /// The rule's name.
    pub name: String,
    /// The `FROM` topic filter.
    pub filter: String,
    /// Where each message goes.
    pub republish: Vec<(String, u8)>,
}

/// The rule as the engine can run it: enabled, `SELECT * FROM '<filter>'`
/// with no WHERE, and at least one republish action whose topic does not
/// match its own filter (that would loop) (pure).
pub fn runnable(name: &str, payload: &Map<String, Value>, disabled: bool) -> Option<Runnable> {
    if disabled {
        return None;
    }
    let sql = payload.get("sql")?.as_str()?;
    let filter = topic_pattern(sql).ok()?;
    let canonical = format!("SELECT * FROM '{filter}'");
    if !sql.trim().eq_ignore_ascii_case(&canonical) {
        return None;
    }
    let republish: Vec<(String, u8)> = payload
        .get("actions")?
        .as_array()?
        .iter()
        .filter_map(|a| {
            let r = a.get("republish")?;
            let topic = r.get("topic")?.as_str()?.to_string();
            let qos = r.get("qos").and_then(Value::as_u64).unwrap_or(0).min(1) as u8;
            Some((topic, qos))
        })
        .filter(|(topic, _)| !gopigo_broker::topic::matches(&filter, topic))
        .collect();
    (!republish.is_empty()).then(|| Runnable {
        name: name.to_string(),
        filter,
        republish,
    })
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
            .filter_map(|r| runnable(&r.name, &r.payload, r.disabled))
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

async fn run_rule(rule: Runnable, broker: gopigo_broker::BrokerHandle) {
    let mut rx = broker.subscribe_internal(&rule.filter);
    while let Some((_topic, payload)) = rx.recv().await {
        for (to, qos) in &rule.republish {
            broker.publish(to, payload.clone(), *qos, false);
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

    #[test]
    fn runs_only_select_star_rules_with_a_republish_that_cannot_loop() {
        let payload = |sql: &str, topic: &str| -> Map<String, Value> {
            serde_json::from_value(json!({
                "sql": sql,
                "actions": [{"republish": {"topic": topic, "qos": 1, "roleArn": "r"}}],
            }))
            .unwrap()
        };
        let r = runnable(
            "r",
            &payload("SELECT * FROM 'sensors/#'", "alerts/all"),
            false,
        )
        .unwrap();
        assert_eq!(r.filter, "sensors/#");
        assert_eq!(r.republish, vec![("alerts/all".to_string(), 1)]);
        assert!(runnable(
            "r",
            &payload("SELECT * FROM 'sensors/#'", "alerts/all"),
            true
        )
        .is_none());
        let where_clause = payload("SELECT * FROM 'sensors/#' WHERE t > 1", "alerts/all");
        assert!(runnable("r", &where_clause, false).is_none());
        let looping = payload("SELECT * FROM 'sensors/#'", "sensors/copy");
        assert!(runnable("r", &looping, false).is_none());
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
