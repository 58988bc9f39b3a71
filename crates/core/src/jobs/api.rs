//! The jobs operations of the control plane, with botocore's `iot` routes
//! and shapes: jobs, job executions, job documents and job templates.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::state::{self, Target};
use super::store::{self as js, Execution, Job, Template};
use crate::control::{body_object, page_response};
use crate::error::ApiError;
use crate::store::now_secs;
use crate::CoreState;

type Q = Query<HashMap<String, String>>;
type ApiResult = Result<Response, ApiError>;

/// Largest job document, as on AWS.
pub const MAX_DOCUMENT: usize = 32 * 1024;

/// Settings stored as given and returned by DescribeJob / DescribeJobTemplate.
const CONFIG_KEYS: [&str; 8] = [
    "presignedUrlConfig",
    "jobExecutionsRolloutConfig",
    "abortConfig",
    "timeoutConfig",
    "jobExecutionsRetryConfig",
    "documentParameters",
    "schedulingConfig",
    "maintenanceWindows",
];

/// The jobs routes (merged into the control plane, behind its SigV4 check).
pub fn router() -> Router<Arc<CoreState>> {
    Router::new()
        .route("/jobs", get(list_jobs))
        .route(
            "/jobs/{id}",
            put(create_job)
                .get(describe_job)
                .delete(delete_job)
                .patch(update_job),
        )
        .route("/jobs/{id}/cancel", put(cancel_job))
        .route("/jobs/{id}/things", get(list_executions_for_job))
        .route("/jobs/{id}/job-document", get(get_job_document))
        .route("/things/{name}/jobs", get(list_executions_for_thing))
        .route("/things/{name}/jobs/{id}", get(describe_execution))
        .route("/things/{name}/jobs/{id}/cancel", put(cancel_execution))
        .route(
            "/things/{name}/jobs/{id}/executionNumber/{number}",
            delete(delete_execution),
        )
        .route("/job-templates", get(list_templates))
        .route(
            "/job-templates/{id}",
            put(create_template)
                .get(describe_template)
                .delete(delete_template),
        )
}

fn ok(v: Value) -> ApiResult {
    Ok(Json(v).into_response())
}

fn empty() -> ApiResult {
    ok(json!({}))
}

fn conflict(kind: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(409, kind, message)
}

fn invalid_transition(message: impl Into<String>) -> ApiError {
    conflict("InvalidStateTransitionException", message)
}

fn flag(q: &HashMap<String, String>, key: &str) -> Result<bool, ApiError> {
    match q.get(key).map(String::as_str) {
        None | Some("false") | Some("False") => Ok(false),
        Some("true") | Some("True") => Ok(true),
        Some(v) => Err(ApiError::invalid(format!(
            "{key} must be true or false, not '{v}'"
        ))),
    }
}

/// One page of `items` (sorted by `key`) after `nextToken`.
fn page<T>(
    items: Vec<T>,
    q: &HashMap<String, String>,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = match q.get("maxResults") {
        None => 250,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=250).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "maxResults must be a number from 1 to 250, not '{v}'"
                ))
            })?,
    };
    let after = match q.get("nextToken").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            hex::decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "nextToken '{t}' is not a token this API returned; list again without it"
                    ))
                })?,
        ),
    };
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|i| after.as_ref().is_none_or(|a| key(i) > *a))
        .collect();
    let next = if rest.len() > limit {
        rest.truncate(limit);
        rest.last().map(|i| hex::encode(key(i)))
    } else {
        None
    };
    Ok((rest, next))
}

fn job_arn(state: &CoreState, id: &str) -> String {
    state.arn(&format!("job/{id}"))
}

fn existing_job(c: &rusqlite::Connection, id: &str) -> Result<Job, ApiError> {
    js::job(c, id)?.ok_or_else(|| ApiError::not_found(format!("Job {id} does not exist.")))
}

fn existing_execution(
    c: &rusqlite::Connection,
    job: &str,
    thing: &str,
) -> Result<Execution, ApiError> {
    js::execution(c, job, thing)?.ok_or_else(|| {
        ApiError::not_found(format!(
            "Job Execution for job {job} on thing {thing} does not exist."
        ))
    })
}

// ------------------------------------------------------------------ shapes

fn job_json(state: &CoreState, j: &Job, execs: &[Execution]) -> Value {
    let mut v = json!({
        "jobArn": job_arn(state, &j.id),
        "jobId": j.id,
        "targetSelection": j.target_selection,
        "status": j.status,
        "forceCanceled": j.force_canceled,
        "targets": j.targets,
        "createdAt": j.created,
        "lastUpdatedAt": j.updated,
        "jobProcessDetails": state::process_details(execs),
        "isConcurrent": false,
    });
    let opt = [
        ("description", j.description.clone().map(Value::from)),
        ("completedAt", j.completed.map(Value::from)),
        ("reasonCode", j.reason_code.clone().map(Value::from)),
        ("comment", j.comment.clone().map(Value::from)),
    ];
    for (k, val) in opt {
        if let Some(val) = val {
            v[k] = val;
        }
    }
    for (k, val) in &j.config {
        v[k] = val.clone();
    }
    v
}

fn job_summary(state: &CoreState, j: &Job) -> Value {
    let mut v = json!({
        "jobArn": job_arn(state, &j.id),
        "jobId": j.id,
        "targetSelection": j.target_selection,
        "status": j.status,
        "createdAt": j.created,
        "lastUpdatedAt": j.updated,
        "isConcurrent": false,
    });
    if let Some(c) = j.completed {
        v["completedAt"] = json!(c);
    }
    v
}

/// `JobExecutionSummary`.
fn execution_summary(e: &Execution) -> Value {
    let mut v = json!({
        "status": e.status,
        "queuedAt": e.queued,
        "lastUpdatedAt": e.updated,
        "executionNumber": e.number,
        "retryAttempt": 0,
    });
    if let Some(s) = e.started {
        v["startedAt"] = json!(s);
    }
    v
}

/// `JobExecution`.
fn execution_json(state: &CoreState, e: &Execution) -> Value {
    let mut v = json!({
        "jobId": e.job_id,
        "status": e.status,
        "forceCanceled": e.force_canceled,
        "statusDetails": { "detailsMap": e.details },
        "thingArn": state.arn(&format!("thing/{}", e.thing)),
        "queuedAt": e.queued,
        "lastUpdatedAt": e.updated,
        "executionNumber": e.number,
        "versionNumber": e.version,
    });
    if let Some(s) = e.started {
        v["startedAt"] = json!(s);
    }
    if let (Some(t), "IN_PROGRESS") = (e.timeout_at, e.status.as_str()) {
        v["approximateSecondsBeforeTimedOut"] = json!((t - now_secs()).max(0.0).round() as i64);
    }
    v
}

// ------------------------------------------------------------------- jobs

/// The things behind a thing-group target: the group's things and those of
/// its child groups, as AWS sends a job for a parent group to its children.
fn group_things(state: &CoreState, group: &str) -> Result<Vec<String>, ApiError> {
    crate::fleet::thing_groups::things_in_tree(state, group)
}

/// Queues `thing` on every IN_PROGRESS CONTINUOUS job that targets
/// `group_arn` and has no execution for it yet: call it when a thing joins
/// a thing group (AWS does so for continuous jobs). Returns how many.
pub fn thing_joined_group(
    state: &CoreState,
    thing: &str,
    group_arn: &str,
) -> Result<usize, ApiError> {
    let before = super::device::pending_before(state, &[thing.to_string()])?;
    let n = state.store.tx(|tx| {
        let mut n = 0;
        for j in js::jobs(tx)? {
            let wants = j.status == "IN_PROGRESS"
                && j.target_selection == "CONTINUOUS"
                && j.targets.iter().any(|t| t == group_arn);
            if wants && js::execution(tx, &j.id, thing)?.is_none() {
                let now = now_secs();
                js::put_execution(
                    tx,
                    &queued(&j.id, thing, js::next_execution_number(tx, thing)?, now),
                )?;
                n += 1;
            }
        }
        Ok(n)
    })?;
    super::device::announce(state, before);
    Ok(n)
}

/// A QUEUED execution number 1 (tests).
#[cfg(test)]
pub(crate) fn queued_for_tests(job: &str, thing: &str, now: f64) -> Execution {
    queued(job, thing, 1, now)
}

fn queued(job: &str, thing: &str, number: i64, now: f64) -> Execution {
    Execution {
        job_id: job.to_string(),
        thing: thing.to_string(),
        number,
        status: "QUEUED".into(),
        details: Map::new(),
        queued: now,
        started: None,
        updated: now,
        version: 1,
        force_canceled: false,
        timeout_at: None,
    }
}

/// The things a job's targets name, each once, in order.
fn resolve_targets(state: &CoreState, targets: &[String]) -> Result<Vec<String>, ApiError> {
    let mut things: Vec<String> = Vec::new();
    for arn in targets {
        let names = match state::parse_target(arn, &state.region, &state.account_id)? {
            Target::Thing(name) => {
                if state.store.thing(&name)?.is_none() {
                    return Err(ApiError::not_found(format!(
                        "Thing {name} cannot be found (target {arn})"
                    )));
                }
                vec![name]
            }
            Target::Group(g) => group_things(state, &g)?,
        };
        for n in names {
            if !things.contains(&n) {
                things.push(n);
            }
        }
    }
    Ok(things)
}

fn string_list(body: &Map<String, Value>, key: &str) -> Result<Vec<String>, ApiError> {
    let list = body
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid(format!("{key} is required: a list of ARNs")))?;
    let out: Option<Vec<String>> = list
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect();
    match out {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ApiError::invalid(format!(
            "{key} must be a non-empty list of ARN strings"
        ))),
    }
}

fn optional_str(body: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(format!("{key} must be a string"))),
    }
}

fn check_document(doc: &str) -> Result<(), ApiError> {
    if doc.len() > MAX_DOCUMENT {
        return Err(ApiError::invalid(format!(
            "the job document is {} bytes; at most {MAX_DOCUMENT} are allowed",
            doc.len()
        )));
    }
    match serde_json::from_str::<Value>(doc) {
        Ok(Value::Object(_)) => Ok(()),
        _ => Err(ApiError::invalid("the job document must be a JSON object")),
    }
}

/// The document of a new job or template: inline, or from a template / job.
fn document_from(
    state: &CoreState,
    body: &Map<String, Value>,
    from_key: &str,
) -> Result<String, ApiError> {
    if body.contains_key("documentSource") {
        return Err(ApiError::invalid(
            "documentSource (a document in S3) is not supported by the local core: pass the document itself with --document",
        ));
    }
    if let Some(doc) = optional_str(body, "document")? {
        check_document(&doc)?;
        return Ok(doc);
    }
    let Some(arn) = optional_str(body, from_key)? else {
        return Err(ApiError::invalid(format!(
            "document is required (or {from_key})"
        )));
    };
    let id = arn.rsplit('/').next().unwrap_or_default().to_string();
    state.store.tx(|tx| {
        let doc = if from_key == "jobTemplateArn" {
            js::template(tx, &id)?.and_then(|t| t.document)
        } else {
            js::job(tx, &id)?.map(|j| j.document)
        };
        doc.ok_or_else(|| ApiError::not_found(format!("{arn} does not exist or has no document")))
    })
}

fn config_of(body: &Map<String, Value>) -> Map<String, Value> {
    CONFIG_KEYS
        .iter()
        .filter_map(|k| body.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

/// `timeoutConfig.inProgressTimeoutInMinutes` of a job's settings.
pub(crate) fn in_progress_timeout_minutes(config: &Map<String, Value>) -> Option<f64> {
    config
        .get("timeoutConfig")?
        .get("inProgressTimeoutInMinutes")?
        .as_f64()
        .filter(|m| *m > 0.0)
}

async fn create_job(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    state::check_id("jobId", &id)?;
    let body = body_object(&body)?;
    let targets = string_list(&body, "targets")?;
    let selection = optional_str(&body, "targetSelection")?.unwrap_or_else(|| "SNAPSHOT".into());
    if !matches!(selection.as_str(), "SNAPSHOT" | "CONTINUOUS") {
        return Err(ApiError::invalid(format!(
            "targetSelection '{selection}' is not valid: use SNAPSHOT or CONTINUOUS"
        )));
    }
    let document = document_from(&state, &body, "jobTemplateArn")?;
    let things = resolve_targets(&state, &targets)?;
    let now = now_secs();
    let mut config = config_of(&body);
    if let Some(t) = optional_str(&body, "jobTemplateArn")? {
        config.insert("jobTemplateArn".into(), json!(t));
    }
    let job = Job {
        id: id.clone(),
        status: "IN_PROGRESS".into(),
        document,
        description: optional_str(&body, "description")?,
        targets,
        target_selection: selection,
        created: now,
        updated: now,
        completed: None,
        force_canceled: false,
        reason_code: None,
        comment: None,
        config,
    };
    let before = super::device::pending_before(&state, &things)?;
    state.store.tx(|tx| {
        if js::job(tx, &id)?.is_some() {
            return Err(ApiError::already_exists(format!(
                "Job {id} already exists; choose another jobId"
            )));
        }
        js::put_job(tx, &job)?;
        for thing in &things {
            let number = js::next_execution_number(tx, thing)?;
            js::put_execution(tx, &queued(&id, thing, number, now))?;
        }
        Ok(())
    })?;
    tracing::info!(job = %id, things = things.len(), "job created");
    super::device::announce(&state, before);
    if let Err(e) = super::staged::sweep(&state, super::staged::ORPHAN_AGE) {
        tracing::warn!(job = %id, error = %e, "cannot sweep staged files");
    }
    let mut out = json!({ "jobArn": job_arn(&state, &id), "jobId": id });
    if let Some(d) = &job.description {
        out["description"] = json!(d);
    }
    ok(out)
}

async fn describe_job(State(state): State<Arc<CoreState>>, Path(id): Path<String>) -> ApiResult {
    let (job, execs) = state.store.tx(|tx| {
        let j = existing_job(tx, &id)?;
        Ok((j, js::executions_for_job(tx, &id)?))
    })?;
    ok(json!({ "job": job_json(&state, &job, &execs) }))
}

async fn get_job_document(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
) -> ApiResult {
    let job = state.store.tx(|tx| existing_job(tx, &id))?;
    ok(json!({ "document": job.document }))
}

async fn list_jobs(State(state): State<Arc<CoreState>>, q: Q) -> ApiResult {
    let group_arn = q
        .get("thingGroupName")
        .map(|g| state.arn(&format!("thinggroup/{g}")));
    let all = state.store.tx(|tx| js::jobs(tx))?;
    let wanted: Vec<Job> = all
        .into_iter()
        .filter(|j| q.get("status").is_none_or(|s| j.status == *s))
        .filter(|j| {
            q.get("targetSelection")
                .is_none_or(|s| j.target_selection == *s)
        })
        .filter(|j| group_arn.as_ref().is_none_or(|g| j.targets.contains(g)))
        .collect();
    let (page, next) = page(wanted, &q, |j| j.id.clone())?;
    let jobs: Vec<Value> = page.iter().map(|j| job_summary(&state, j)).collect();
    page_response("jobs", json!(jobs), "nextToken", next)
}

async fn update_job(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let description = optional_str(&body, "description")?;
    state.store.tx(|tx| {
        let mut j = existing_job(tx, &id)?;
        if description.is_some() {
            j.description = description;
        }
        j.config.extend(config_of(&body));
        j.updated = now_secs();
        js::put_job(tx, &j)
    })?;
    empty()
}

/// Marks `job` COMPLETED once every execution of a SNAPSHOT job is finished.
pub(crate) fn refresh_job(c: &rusqlite::Connection, job: &str) -> Result<(), ApiError> {
    let Some(mut j) = js::job(c, job)? else {
        return Ok(());
    };
    let execs = js::executions_for_job(c, job)?;
    if j.status == "IN_PROGRESS"
        && j.target_selection == "SNAPSHOT"
        && execs.iter().all(|e| state::is_terminal(&e.status))
    {
        let now = now_secs();
        j.status = "COMPLETED".into();
        j.completed = Some(now);
        j.updated = now;
        js::put_job(c, &j)?;
        tracing::info!(job, "job completed");
    }
    Ok(())
}

/// Cancels one execution (the caller checked it may be).
fn cancel(e: &mut Execution, force: bool, now: f64) {
    e.status = "CANCELED".into();
    e.force_canceled = force;
    e.updated = now;
    e.version += 1;
    e.timeout_at = None;
}

async fn cancel_job(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    q: Q,
    body: Bytes,
) -> ApiResult {
    let force = flag(&q, "force")?;
    let body = body_object(&body)?;
    let reason = optional_str(&body, "reasonCode")?;
    let comment = optional_str(&body, "comment")?;
    let things: Vec<String> = state.store.tx(|tx| {
        Ok(js::executions_for_job(tx, &id)?
            .into_iter()
            .map(|e| e.thing)
            .collect())
    })?;
    let before = super::device::pending_before(&state, &things)?;
    let job = state.store.tx(|tx| {
        let mut j = existing_job(tx, &id)?;
        if j.status == "COMPLETED" {
            return Err(invalid_transition(format!(
                "Job {id} is COMPLETED and cannot be canceled"
            )));
        }
        let now = now_secs();
        for mut e in js::executions_for_job(tx, &id)? {
            if e.status == "QUEUED" || (force && e.status == "IN_PROGRESS") {
                cancel(&mut e, force, now);
                js::put_execution(tx, &e)?;
            }
        }
        j.status = "CANCELED".into();
        j.force_canceled = j.force_canceled || force;
        j.reason_code = reason.or(j.reason_code);
        j.comment = comment.or(j.comment);
        j.completed = Some(now);
        j.updated = now;
        js::put_job(tx, &j)?;
        Ok(j)
    })?;
    super::device::announce(&state, before);
    if let Err(e) = super::staged::sweep(&state, super::staged::ORPHAN_AGE) {
        tracing::warn!(job = %id, error = %e, "cannot sweep staged files");
    }
    let mut out = json!({ "jobArn": job_arn(&state, &id), "jobId": id });
    if let Some(d) = job.description {
        out["description"] = json!(d);
    }
    ok(out)
}

async fn delete_job(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult {
    let force = flag(&q, "force")?;
    let things: Vec<String> = state.store.tx(|tx| {
        Ok(js::executions_for_job(tx, &id)?
            .into_iter()
            .map(|e| e.thing)
            .collect())
    })?;
    let before = super::device::pending_before(&state, &things)?;
    let document = state.store.tx(|tx| {
        let j = existing_job(tx, &id)?;
        if j.status == "IN_PROGRESS" && !force {
            return Err(invalid_transition(format!(
                "Job {id} is IN_PROGRESS: cancel it first, or delete it with --force"
            )));
        }
        js::delete_job(tx, &id)?;
        Ok(j.document)
    })?;
    tracing::info!(job = %id, force, "job deleted");
    super::device::announce(&state, before);
    if let Err(e) = super::staged::release(&state, &super::staged::tokens_in(&document)) {
        tracing::warn!(job = %id, error = %e, "cannot release staged files");
    }
    empty()
}

// ------------------------------------------------------------- executions

fn thing_exists(state: &CoreState, name: &str) -> Result<(), ApiError> {
    match state.store.thing(name)? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!(
            "Thing {name} cannot be found."
        ))),
    }
}

async fn describe_execution(
    State(state): State<Arc<CoreState>>,
    Path((thing, id)): Path<(String, String)>,
    q: Q,
) -> ApiResult {
    let e = state.store.tx(|tx| existing_execution(tx, &id, &thing))?;
    if let Some(n) = q.get("executionNumber") {
        if n.parse::<i64>().ok() != Some(e.number) {
            return Err(ApiError::not_found(format!(
                "Job Execution {n} for job {id} on thing {thing} does not exist."
            )));
        }
    }
    ok(json!({ "execution": execution_json(&state, &e) }))
}

async fn list_executions_for_job(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult {
    let execs = state.store.tx(|tx| {
        existing_job(tx, &id)?;
        js::executions_for_job(tx, &id)
    })?;
    let execs: Vec<Execution> = execs
        .into_iter()
        .filter(|e| q.get("status").is_none_or(|s| e.status == *s))
        .collect();
    let (page, next) = page(execs, &q, |e| e.thing.clone())?;
    let list: Vec<Value> = page
        .iter()
        .map(|e| {
            json!({
                "thingArn": state.arn(&format!("thing/{}", e.thing)),
                "jobExecutionSummary": execution_summary(e),
            })
        })
        .collect();
    page_response("executionSummaries", json!(list), "nextToken", next)
}

async fn list_executions_for_thing(
    State(state): State<Arc<CoreState>>,
    Path(thing): Path<String>,
    q: Q,
) -> ApiResult {
    thing_exists(&state, &thing)?;
    let execs = state.store.tx(|tx| js::executions_for_thing(tx, &thing))?;
    let execs: Vec<Execution> = execs
        .into_iter()
        .filter(|e| q.get("status").is_none_or(|s| e.status == *s))
        .filter(|e| q.get("jobId").is_none_or(|j| e.job_id == *j))
        .collect();
    let (page, next) = page(execs, &q, |e| format!("{:020}", e.number))?;
    let list: Vec<Value> = page
        .iter()
        .map(|e| json!({ "jobId": e.job_id, "jobExecutionSummary": execution_summary(e) }))
        .collect();
    page_response("executionSummaries", json!(list), "nextToken", next)
}

async fn cancel_execution(
    State(state): State<Arc<CoreState>>,
    Path((thing, id)): Path<(String, String)>,
    q: Q,
    body: Bytes,
) -> ApiResult {
    let force = flag(&q, "force")?;
    let body = body_object(&body)?;
    let details = match body.get("statusDetails") {
        None | Some(Value::Null) => None,
        Some(v) => Some(state::check_details(v).map_err(ApiError::invalid)?),
    };
    let expected = body.get("expectedVersion").and_then(Value::as_i64);
    let before = super::device::pending_before(&state, std::slice::from_ref(&thing))?;
    state.store.tx(|tx| {
        let mut e = existing_execution(tx, &id, &thing)?;
        if let Some(v) = expected.filter(|v| *v != e.version) {
            return Err(conflict(
                "VersionConflictException",
                format!(
                    "expectedVersion {v} does not match the job execution's version {}",
                    e.version
                ),
            ));
        }
        if state::is_terminal(&e.status) {
            return Err(invalid_transition(format!(
                "the job execution of {id} on {thing} is {} and cannot be canceled",
                e.status
            )));
        }
        if e.status == "IN_PROGRESS" && !force {
            return Err(invalid_transition(format!(
                "the job execution of {id} on {thing} is IN_PROGRESS: cancel it with --force"
            )));
        }
        if let Some(d) = details {
            e.details.extend(d);
        }
        cancel(&mut e, force, now_secs());
        js::put_execution(tx, &e)?;
        refresh_job(tx, &id)
    })?;
    super::device::announce(&state, before);
    empty()
}

async fn delete_execution(
    State(state): State<Arc<CoreState>>,
    Path((thing, id, number)): Path<(String, String, String)>,
    q: Q,
) -> ApiResult {
    let force = flag(&q, "force")?;
    let before = super::device::pending_before(&state, std::slice::from_ref(&thing))?;
    state.store.tx(|tx| {
        let e = existing_execution(tx, &id, &thing)?;
        if number.parse::<i64>().ok() != Some(e.number) {
            return Err(ApiError::not_found(format!(
                "Job Execution {number} for job {id} on thing {thing} does not exist."
            )));
        }
        if !state::is_terminal(&e.status) && !force {
            return Err(invalid_transition(format!(
                "the job execution of {id} on {thing} is {}: delete it with --force, or cancel it first",
                e.status
            )));
        }
        js::delete_execution(tx, &id, &thing)?;
        refresh_job(tx, &id)
    })?;
    super::device::announce(&state, before);
    empty()
}

// -------------------------------------------------------------- templates

fn template_arn(state: &CoreState, id: &str) -> String {
    state.arn(&format!("jobtemplate/{id}"))
}

async fn create_template(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    state::check_id("jobTemplateId", &id)?;
    let body = body_object(&body)?;
    let description = optional_str(&body, "description")?
        .ok_or_else(|| ApiError::invalid("description is required"))?;
    let document = document_from(&state, &body, "jobArn")?;
    let t = Template {
        id: id.clone(),
        description,
        document: Some(document),
        created: now_secs(),
        config: config_of(&body),
    };
    state.store.tx(|tx| {
        if js::template(tx, &id)?.is_some() {
            return Err(conflict(
                "ConflictException",
                format!("Job template {id} already exists; choose another jobTemplateId"),
            ));
        }
        js::insert_template(tx, &t)
    })?;
    ok(json!({ "jobTemplateArn": template_arn(&state, &id), "jobTemplateId": id }))
}

async fn describe_template(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
) -> ApiResult {
    let t = state
        .store
        .tx(|tx| js::template(tx, &id))?
        .ok_or_else(|| ApiError::not_found(format!("Job template {id} does not exist.")))?;
    let mut v = json!({
        "jobTemplateArn": template_arn(&state, &id),
        "jobTemplateId": t.id,
        "description": t.description,
        "createdAt": t.created,
    });
    if let Some(d) = t.document {
        v["document"] = json!(d);
    }
    for (k, val) in t.config {
        v[k] = val;
    }
    ok(v)
}

async fn list_templates(State(state): State<Arc<CoreState>>, q: Q) -> ApiResult {
    let all = state.store.tx(|tx| js::templates(tx))?;
    let (page, next) = page(all, &q, |t| t.id.clone())?;
    let list: Vec<Value> = page
        .iter()
        .map(|t| {
            json!({
                "jobTemplateArn": template_arn(&state, &t.id),
                "jobTemplateId": t.id,
                "description": t.description,
                "createdAt": t.created,
            })
        })
        .collect();
    page_response("jobTemplates", json!(list), "nextToken", next)
}

async fn delete_template(State(state): State<Arc<CoreState>>, Path(id): Path<String>) -> ApiResult {
    if !state.store.tx(|tx| js::delete_template(tx, &id))? {
        return Err(ApiError::not_found(format!(
            "Job template {id} does not exist."
        )));
    }
    empty()
}
