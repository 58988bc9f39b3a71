//! The Jobs device API over MQTT, as AWS IoT serves it on
//! `$aws/things/{thing}/jobs/...`: `get`, `start-next`, `{jobId}/get` and
//! `{jobId}/update` requests answered on `/accepted` or `/rejected`, and the
//! `notify` / `notify-next` messages whenever a thing's pending executions
//! change. The broker has already checked the device's policy for each
//! request topic; the replies go to the same thing's topics.

use std::sync::Arc;
use std::time::Duration;

use gopigo_broker::BrokerHandle;
use gopigo_protocol::{JobsFilter, JobsMsg, Topic};
use serde_json::{json, Map, Value};

use super::state::{self, DeviceOp, Reject};
use super::store::{self as js, Execution};
use crate::error::ApiError;
use crate::store::now_secs;
use crate::CoreState;

/// How often IN_PROGRESS executions are checked for their timeout.
const SWEEP: Duration = Duration::from_secs(1);

/// Longest `stepTimeoutInMinutes` AWS accepts (7 days).
const MAX_STEP_MINUTES: i64 = 10_080;

fn secs(t: f64) -> i64 {
    t as i64
}

/// The pending executions of some things before a change, to tell
/// afterwards whom to notify.
pub(crate) struct Before(Vec<(String, Vec<String>)>);

/// Records the pending order of `things` (see [`announce`]).
pub(crate) fn pending_before(state: &CoreState, things: &[String]) -> Result<Before, ApiError> {
    state.store.tx(|tx| {
        let mut out = Vec::new();
        for t in things {
            out.push((
                t.clone(),
                state::pending_order(&js::executions_for_thing(tx, t)?),
            ));
        }
        Ok(Before(out))
    })
}

/// Publishes `notify` to each thing whose pending list changed, and
/// `notify-next` to each whose next execution changed.
pub(crate) fn announce(state: &CoreState, before: Before) {
    for (thing, old) in before.0 {
        let execs = match state.store.tx(|tx| js::executions_for_thing(tx, &thing)) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(thing, error = %e, "cannot read job executions to notify");
                continue;
            }
        };
        let new = state::pending_order(&execs);
        if new == old {
            continue;
        }
        let now = secs(now_secs());
        let summaries = |status: &str| -> Vec<Value> {
            let mut v: Vec<&Execution> = execs.iter().filter(|e| e.status == status).collect();
            v.sort_by(|a, b| a.queued.total_cmp(&b.queued));
            v.into_iter().map(pending_summary).collect()
        };
        let mut jobs = Map::new();
        for s in ["QUEUED", "IN_PROGRESS"] {
            let l = summaries(s);
            if !l.is_empty() {
                jobs.insert(s.to_string(), json!(l));
            }
        }
        publish(
            state,
            &Topic::jobs(&thing, JobsMsg::Notify).to_string(),
            json!({ "timestamp": now, "jobs": jobs }),
        );
        if new.first() != old.first() {
            let mut msg = json!({ "timestamp": now });
            if let Some(next) = state::next_pending(&execs) {
                msg["execution"] = device_execution(state, next, true);
            }
            publish(
                state,
                &Topic::jobs(&thing, JobsMsg::NotifyNext).to_string(),
                msg,
            );
        }
    }
}

fn publish(state: &CoreState, topic: &str, v: Value) {
    state.publish(topic, v.to_string().into_bytes(), 1, false);
}

/// `JobExecutionSummary` of the device API.
fn pending_summary(e: &Execution) -> Value {
    let mut v = json!({
        "jobId": e.job_id,
        "queuedAt": secs(e.queued),
        "lastUpdatedAt": secs(e.updated),
        "versionNumber": e.version,
        "executionNumber": e.number,
    });
    if let Some(s) = e.started {
        v["startedAt"] = json!(secs(s));
    }
    v
}

/// `JobExecution` of the device API, with the job document if asked.
fn device_execution(state: &CoreState, e: &Execution, with_document: bool) -> Value {
    let mut v = json!({
        "jobId": e.job_id,
        "thingName": e.thing,
        "status": e.status,
        "statusDetails": e.details,
        "queuedAt": secs(e.queued),
        "lastUpdatedAt": secs(e.updated),
        "versionNumber": e.version,
        "executionNumber": e.number,
    });
    if let Some(s) = e.started {
        v["startedAt"] = json!(secs(s));
    }
    if let Some(t) = e.timeout_at {
        v["approximateSecondsBeforeTimedOut"] = json!((secs(t) - secs(now_secs())).max(0));
    }
    if with_document {
        if let Ok(Some(j)) = state.store.tx(|tx| js::job(tx, &e.job_id)) {
            v["jobDocument"] = serde_json::from_str(&j.document).unwrap_or(Value::Null);
        }
    }
    v
}

/// A device request's payload, parsed.
struct Request {
    body: Map<String, Value>,
    token: Option<String>,
}

fn parse_request(payload: &[u8]) -> Result<Request, Reject> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(Request {
            body: Map::new(),
            token: None,
        });
    }
    let body = match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(Reject::new(
                "InvalidJson",
                "the request is not a JSON object",
            ))
        }
    };
    let token = body
        .get("clientToken")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Request { body, token })
}

/// What answering one request produced: the reply topic suffix and body.
type Reply = Result<Value, Reject>;

/// Answers one device request and publishes the reply (and notifications).
pub fn handle(state: &CoreState, thing: &str, op: &DeviceOp, payload: &[u8]) {
    let req = parse_request(payload);
    let token = req.as_ref().ok().and_then(|r| r.token.clone());
    let before = pending_before(state, &[thing.to_string()]);
    let reply = req.and_then(|r| answer(state, thing, op, &r));
    let now = secs(now_secs());
    let (msg, mut body) = match reply {
        Ok(v) => (JobsMsg::Accepted(op.request()), v),
        Err(r) => (
            JobsMsg::Rejected(op.request()),
            json!({ "code": r.code, "message": r.message }),
        ),
    };
    body["timestamp"] = json!(now);
    if let Some(t) = token {
        body["clientToken"] = json!(t);
    }
    publish(state, &Topic::jobs(thing, msg).to_string(), body);
    if let Ok(b) = before {
        announce(state, b);
    }
}

fn internal(e: ApiError) -> Reject {
    Reject::new("InternalError", e.message)
}

fn answer(state: &CoreState, thing: &str, op: &DeviceOp, req: &Request) -> Reply {
    match op {
        DeviceOp::GetPending => get_pending(state, thing),
        DeviceOp::StartNext => start_next(state, thing, req),
        DeviceOp::Describe(id) => describe(state, thing, id, req),
        DeviceOp::Update(id) => update(state, thing, id, req),
    }
}

fn get_pending(state: &CoreState, thing: &str) -> Reply {
    let execs = state
        .store
        .tx(|tx| js::executions_for_thing(tx, thing))
        .map_err(internal)?;
    let of = |s: &str| -> Vec<Value> {
        execs
            .iter()
            .filter(|e| e.status == s)
            .map(pending_summary)
            .collect()
    };
    Ok(json!({ "inProgressJobs": of("IN_PROGRESS"), "queuedJobs": of("QUEUED") }))
}

/// `stepTimeoutInMinutes` of a request, checked.
fn step_minutes(body: &Map<String, Value>) -> Result<Option<i64>, Reject> {
    match body.get("stepTimeoutInMinutes") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(-1) => Ok(None),
            Some(m) if (1..=MAX_STEP_MINUTES).contains(&m) => Ok(Some(m)),
            _ => Err(Reject::new(
                "InvalidRequest",
                format!("stepTimeoutInMinutes must be 1 to {MAX_STEP_MINUTES} (or -1 for none)"),
            )),
        },
    }
}

fn details_of(body: &Map<String, Value>) -> Result<Option<Map<String, Value>>, Reject> {
    match body.get("statusDetails") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => state::check_details(v)
            .map(Some)
            .map_err(|m| Reject::new("InvalidRequest", m)),
    }
}

/// When an IN_PROGRESS execution times out: the step timeout from now, or
/// the job's in-progress timeout from its start, whichever comes first.
fn timeout_at(c: &rusqlite::Connection, e: &Execution, step: Option<i64>, now: f64) -> Option<f64> {
    let job = js::job(c, &e.job_id)
        .ok()
        .flatten()
        .and_then(|j| super::api::in_progress_timeout_minutes(&j.config))
        .map(|m| e.started.unwrap_or(now) + m * 60.0);
    let step = step.map(|m| now + m as f64 * 60.0);
    match (job, step) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b).or(e.timeout_at),
    }
}

fn start_next(state: &CoreState, thing: &str, req: &Request) -> Reply {
    let details = details_of(&req.body)?;
    let step = step_minutes(&req.body)?;
    let started = state
        .store
        .tx(|tx| {
            let execs = js::executions_for_thing(tx, thing)?;
            let Some(mut e) = state::next_pending(&execs).cloned() else {
                return Ok(None);
            };
            if e.status == "QUEUED" {
                let now = now_secs();
                e.status = "IN_PROGRESS".into();
                e.started = Some(now);
                e.updated = now;
                e.version += 1;
                if let Some(d) = details {
                    e.details = d;
                }
                e.timeout_at = timeout_at(tx, &e, step, now);
                js::put_execution(tx, &e)?;
                tracing::info!(job = %e.job_id, thing, "job execution started");
            }
            Ok(Some(e))
        })
        .map_err(internal)?;
    Ok(match started {
        Some(e) => json!({ "execution": device_execution(state, &e, true) }),
        None => json!({}),
    })
}

fn describe(state: &CoreState, thing: &str, id: &str, req: &Request) -> Reply {
    let with_doc = req
        .body
        .get("includeJobDocument")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let e = state
        .store
        .tx(|tx| {
            if id == "$next" {
                Ok(state::next_pending(&js::executions_for_thing(tx, thing)?).cloned())
            } else {
                js::execution(tx, id, thing)
            }
        })
        .map_err(internal)?;
    match e {
        Some(e) => Ok(json!({ "execution": device_execution(state, &e, with_doc) })),
        None if id == "$next" => Ok(json!({})),
        None => Err(Reject::new(
            "ResourceNotFound",
            format!("job execution {id} of {thing} does not exist"),
        )),
    }
}

/// Checks and applies an UpdateJobExecution to `e`.
fn apply_update(
    e: &mut Execution,
    body: &Map<String, Value>,
    c: &rusqlite::Connection,
) -> Result<(), Reject> {
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| Reject::new("InvalidRequest", "status is required"))?;
    if let Some(v) = body.get("expectedVersion").and_then(Value::as_i64) {
        if v != e.version {
            return Err(Reject::new(
                "VersionMismatch",
                format!(
                    "expectedVersion {v} does not match the execution's version {}",
                    e.version
                ),
            ));
        }
    }
    if let Some(n) = body.get("executionNumber").and_then(Value::as_i64) {
        if n != e.number {
            return Err(Reject::new(
                "ResourceNotFound",
                format!(
                    "execution number {n} of job {} does not exist on this thing",
                    e.job_id
                ),
            ));
        }
    }
    state::device_move(&e.status, status)?;
    let details = details_of(body)?;
    let step = step_minutes(body)?;
    let now = now_secs();
    if status == "IN_PROGRESS" && e.started.is_none() {
        e.started = Some(now);
    }
    e.status = status.to_string();
    if let Some(d) = details {
        e.details = d;
    }
    e.updated = now;
    e.version += 1;
    e.timeout_at = if state::is_terminal(status) {
        None
    } else {
        timeout_at(c, e, step, now)
    };
    Ok(())
}

fn update(state: &CoreState, thing: &str, id: &str, req: &Request) -> Reply {
    let e = state.store.tx(|tx| {
        let Some(mut e) = js::execution(tx, id, thing)? else {
            return Ok(Err(Reject::new(
                "ResourceNotFound",
                format!("job execution {id} of {thing} does not exist"),
            )));
        };
        if let Err(r) = apply_update(&mut e, &req.body, tx) {
            return Ok(Err(r));
        }
        js::put_execution(tx, &e)?;
        super::api::refresh_job(tx, id)?;
        Ok(Ok(e))
    });
    let e = e.map_err(internal)??;
    tracing::info!(job = %id, thing, status = %e.status, "job execution updated");
    let mut out = json!({});
    if req
        .body
        .get("includeJobExecutionState")
        .and_then(Value::as_bool)
        == Some(true)
    {
        out["executionState"] = json!({
            "status": e.status, "statusDetails": e.details, "versionNumber": e.version,
        });
    }
    if req.body.get("includeJobDocument").and_then(Value::as_bool) == Some(true) {
        if let Some(doc) = device_execution(state, &e, true).get("jobDocument") {
            out["jobDocument"] = doc.clone();
        }
    }
    Ok(out)
}

/// Moves IN_PROGRESS executions past their timeout to TIMED_OUT.
pub fn time_out_expired(state: &CoreState) -> Result<usize, ApiError> {
    let now = now_secs();
    let expired = state.store.tx(|tx| js::expired_executions(tx, now))?;
    let things: Vec<String> = expired.iter().map(|e| e.thing.clone()).collect();
    if things.is_empty() {
        return Ok(0);
    }
    let before = pending_before(state, &things)?;
    state.store.tx(|tx| {
        for mut e in expired.clone() {
            e.status = "TIMED_OUT".into();
            e.updated = now;
            e.version += 1;
            e.timeout_at = None;
            js::put_execution(tx, &e)?;
            super::api::refresh_job(tx, &e.job_id)?;
            tracing::info!(job = %e.job_id, thing = %e.thing, "job execution timed out");
        }
        Ok(())
    })?;
    announce(state, before);
    Ok(expired.len())
}

/// Ticks of [`SWEEP`] between two sweeps of staged files.
const FILES_SWEEP_TICKS: u64 = 10;

/// One tick of the sweep: timeouts every time, staged files (those whose
/// jobs ended, and old orphans) every [`FILES_SWEEP_TICKS`], first on the
/// first tick.
fn sweep_once(state: &CoreState, ticks: u64) -> Result<(), ApiError> {
    time_out_expired(state)?;
    if ticks % FILES_SWEEP_TICKS == 1 {
        super::staged::sweep(state, super::staged::ORPHAN_AGE)?;
    }
    Ok(())
}

/// Serves the device API until the broker stops: requests in order, one at
/// a time (as the shadow service), and the timeout sweep every second.
pub async fn service(state: Arc<CoreState>, broker: BrokerHandle) {
    let mut requests = broker.subscribe_internal(&JobsFilter::EVERY_THING.to_string());
    let mut sweep = tokio::time::interval(SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            msg = requests.recv() => {
                let Some((topic, payload)) = msg else { return };
                let Some((thing, op)) = state::parse_device_topic(&topic) else {
                    continue; // our own replies and notifications
                };
                let (st, thing) = (state.clone(), thing.to_string());
                if let Err(e) = tokio::task::spawn_blocking(move || handle(&st, &thing, &op, &payload)).await {
                    tracing::error!(topic = %topic, error = %e, "jobs request task failed");
                }
            }
            _ = sweep.tick() => {
                ticks = ticks.wrapping_add(1);
                let st = state.clone();
                match tokio::task::spawn_blocking(move || sweep_once(&st, ticks)).await {
                    Ok(Err(e)) => tracing::error!(error = %e, "job sweep failed"),
                    Err(e) => tracing::error!(error = %e, "job sweep task failed"),
                    Ok(Ok(())) => {}
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::Thing;

    /// A core's state over a fresh data dir, with thing `r1` and one job on it.
    fn state_with_job(dir: &std::path::Path) -> Arc<CoreState> {
        let core = crate::Core::open(crate::CoreConfig::new(dir.join("core"))).unwrap();
        let state = core.state();
        state
            .store
            .insert_thing(&Thing {
                name: "r1".into(),
                id: "1".into(),
                type_name: None,
                attributes: Map::new(),
                version: 1,
            })
            .unwrap();
        let now = now_secs();
        state
            .store
            .tx(|tx| {
                js::put_job(
                    tx,
                    &js::Job {
                        id: "j".into(),
                        status: "IN_PROGRESS".into(),
                        document: "{}".into(),
                        description: None,
                        targets: vec![state.arn("thing/r1")],
                        target_selection: "SNAPSHOT".into(),
                        created: now,
                        updated: now,
                        completed: None,
                        force_canceled: false,
                        reason_code: None,
                        comment: None,
                        config: Map::new(),
                    },
                )?;
                js::put_execution(tx, &super::super::api::queued_for_tests("j", "r1", now))
            })
            .unwrap();
        state
    }

    #[test]
    fn a_step_timeout_moves_the_execution_to_timed_out_and_completes_the_job() {
        let t = tempfile::tempdir().unwrap();
        let state = state_with_job(t.path());
        let req = |v: Value| Request {
            body: v.as_object().unwrap().clone(),
            token: None,
        };
        let started = start_next(&state, "r1", &req(json!({"stepTimeoutInMinutes": 1}))).unwrap();
        assert_eq!(started["execution"]["status"], "IN_PROGRESS");
        assert!(
            started["execution"]["approximateSecondsBeforeTimedOut"]
                .as_i64()
                .unwrap()
                > 50
        );
        // Not yet due: nothing moves.
        assert_eq!(time_out_expired(&state).unwrap(), 0);
        // Make it due, as a minute later.
        state
            .store
            .tx(|tx| {
                let mut e = js::execution(tx, "j", "r1")?.unwrap();
                e.timeout_at = Some(now_secs() - 1.0);
                js::put_execution(tx, &e)
            })
            .unwrap();
        assert_eq!(time_out_expired(&state).unwrap(), 1);
        let (e, j) = state
            .store
            .tx(|tx| {
                Ok((
                    js::execution(tx, "j", "r1")?.unwrap(),
                    js::job(tx, "j")?.unwrap(),
                ))
            })
            .unwrap();
        assert_eq!(e.status, "TIMED_OUT");
        assert_eq!(j.status, "COMPLETED");
        // The device can no longer finish it.
        let late = update(&state, "r1", "j", &req(json!({"status": "SUCCEEDED"})));
        assert_eq!(late.unwrap_err().code, "TerminalStateReached");
        // A step timeout out of range is refused.
        let bad = step_minutes(&req(json!({"stepTimeoutInMinutes": 0})).body);
        assert_eq!(bad.unwrap_err().code, "InvalidRequest");
    }
}
