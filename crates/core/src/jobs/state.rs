//! The rules of AWS IoT Jobs as pure functions: names, targets, the moves a
//! device may make with an execution, which execution is next, the counts
//! of a job, and the device topics (`$aws/things/{thing}/jobs/...`).

use gopigo_protocol::{valid_job_id, JobsMsg, JobsRequest, Topic};
use serde_json::{json, Map, Value};

use super::store::Execution;
use crate::error::ApiError;

/// Execution states from which nothing moves.
pub const TERMINAL: [&str; 6] = [
    "SUCCEEDED",
    "FAILED",
    "REJECTED",
    "TIMED_OUT",
    "CANCELED",
    "REMOVED",
];

/// Whether an execution in `status` is finished.
pub fn is_terminal(status: &str) -> bool {
    TERMINAL.contains(&status)
}

/// Whether an execution in `status` still waits for the device.
pub fn is_pending(status: &str) -> bool {
    matches!(status, "QUEUED" | "IN_PROGRESS")
}

/// Why a device request on MQTT was refused: AWS's `code` and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// InvalidTopic, InvalidJson, InvalidRequest, InvalidStateTransition,
    /// ResourceNotFound, VersionMismatch, InternalError, TerminalStateReached.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Reject {
    /// A refusal with `code`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Reject {
            code,
            message: message.into(),
        }
    }
}

/// The moves `UpdateJobExecution` allows a device: from QUEUED or
/// IN_PROGRESS to IN_PROGRESS, SUCCEEDED, FAILED or REJECTED. TIMED_OUT,
/// CANCELED and REMOVED are set by the service, never by a device.
pub fn device_move(from: &str, to: &str) -> Result<(), Reject> {
    if is_terminal(from) {
        return Err(Reject::new(
            "TerminalStateReached",
            format!("the job execution is already {from}; a finished execution cannot change"),
        ));
    }
    match to {
        "IN_PROGRESS" | "SUCCEEDED" | "FAILED" | "REJECTED" => Ok(()),
        "QUEUED" | "TIMED_OUT" | "CANCELED" | "REMOVED" => Err(Reject::new(
            "InvalidStateTransition",
            format!("a device cannot move a job execution from {from} to {to}; use IN_PROGRESS, SUCCEEDED, FAILED or REJECTED"),
        )),
        other => Err(Reject::new(
            "InvalidRequest",
            format!("status '{other}' is not a job execution status; use IN_PROGRESS, SUCCEEDED, FAILED or REJECTED"),
        )),
    }
}

/// The next execution for a device: IN_PROGRESS ones first, then QUEUED,
/// each oldest first (AWS's `$next`).
pub fn next_pending(execs: &[Execution]) -> Option<&Execution> {
    let oldest = |status: &str| {
        execs
            .iter()
            .filter(|e| e.status == status)
            .min_by(|a, b| a.queued.total_cmp(&b.queued).then(a.number.cmp(&b.number)))
    };
    oldest("IN_PROGRESS").or_else(|| oldest("QUEUED"))
}

/// Ids of the pending executions, in the order a device gets them.
pub fn pending_order(execs: &[Execution]) -> Vec<String> {
    let mut p: Vec<&Execution> = execs.iter().filter(|e| is_pending(&e.status)).collect();
    p.sort_by(|a, b| {
        (a.status != "IN_PROGRESS")
            .cmp(&(b.status != "IN_PROGRESS"))
            .then(a.queued.total_cmp(&b.queued))
            .then(a.number.cmp(&b.number))
    });
    p.into_iter().map(|e| e.job_id.clone()).collect()
}

/// A job's `jobProcessDetails`: how many of its executions are in each state.
pub fn process_details(execs: &[Execution]) -> Value {
    let count = |s: &str| execs.iter().filter(|e| e.status == s).count();
    json!({
        "numberOfCanceledThings": count("CANCELED"),
        "numberOfSucceededThings": count("SUCCEEDED"),
        "numberOfFailedThings": count("FAILED"),
        "numberOfRejectedThings": count("REJECTED"),
        "numberOfQueuedThings": count("QUEUED"),
        "numberOfInProgressThings": count("IN_PROGRESS"),
        "numberOfRemovedThings": count("REMOVED"),
        "numberOfTimedOutThings": count("TIMED_OUT"),
    })
}

/// `jobId` and `jobTemplateId`: 1 to 64 of `[a-zA-Z0-9_-]`.
pub fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    if valid_job_id(id) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{what} '{id}' is not valid: use 1 to 64 of a-z A-Z 0-9 _ -"
        )))
    }
}

/// Checks `statusDetails`: at most 10 entries, keys `[a-zA-Z0-9:_-]{1,128}`,
/// values non-empty strings of at most 1,024 characters (AWS's limits).
pub fn check_details(v: &Value) -> Result<Map<String, Value>, String> {
    let Some(m) = v.as_object() else {
        return Err("statusDetails must be an object of strings".into());
    };
    if m.len() > 10 {
        return Err(format!(
            "statusDetails has {} entries; at most 10 are allowed",
            m.len()
        ));
    }
    for (k, val) in m {
        let key_ok = (1..=128).contains(&k.len())
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":_-".contains(&b));
        if !key_ok {
            return Err(format!(
                "statusDetails key '{k}' is not valid: use 1 to 128 of a-z A-Z 0-9 : _ -"
            ));
        }
        match val.as_str() {
            Some(s) if !s.is_empty() && s.chars().count() <= 1024 => {}
            _ => {
                return Err(format!(
                    "statusDetails.{k} must be a string of 1 to 1024 characters"
                ))
            }
        }
    }
    Ok(m.clone())
}

/// A job target, from its ARN.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `arn:aws:iot:REGION:ACCOUNT:thing/NAME`.
    Thing(String),
    /// `arn:aws:iot:REGION:ACCOUNT:thinggroup/NAME`.
    Group(String),
}

/// Reads a target ARN of this core's region and account.
pub fn parse_target(arn: &str, region: &str, account: &str) -> Result<Target, ApiError> {
    let prefix = format!("arn:aws:iot:{region}:{account}:");
    let bad = || {
        ApiError::invalid(format!(
            "target '{arn}' is not a thing or thing group ARN of this account: use {prefix}thing/NAME or {prefix}thinggroup/NAME"
        ))
    };
    let rest = arn.strip_prefix(&prefix).ok_or_else(bad)?;
    if let Some(name) = rest.strip_prefix("thing/").filter(|n| !n.is_empty()) {
        Ok(Target::Thing(name.to_string()))
    } else if let Some(name) = rest.strip_prefix("thinggroup/").filter(|n| !n.is_empty()) {
        Ok(Target::Group(name.to_string()))
    } else {
        Err(bad())
    }
}

/// A request a device publishes under `$aws/things/{thing}/jobs/`.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceOp {
    /// `jobs/get`: GetPendingJobExecutions.
    GetPending,
    /// `jobs/start-next`: StartNextPendingJobExecution.
    StartNext,
    /// `jobs/{jobId}/get`: DescribeJobExecution (`$next` allowed).
    Describe(String),
    /// `jobs/{jobId}/update`: UpdateJobExecution.
    Update(String),
}

impl DeviceOp {
    /// The request as the typed topic spells it.
    pub fn request(&self) -> JobsRequest<'_> {
        match self {
            DeviceOp::GetPending => JobsRequest::GetPending,
            DeviceOp::StartNext => JobsRequest::StartNext,
            DeviceOp::Describe(id) => JobsRequest::Describe(id),
            DeviceOp::Update(id) => JobsRequest::Update(id),
        }
    }
}

/// The thing and request of a device topic; `None` for the service's own
/// responses and notifications (`.../accepted`, `notify-next`, ...) and for
/// what [`Topic::parse`] refuses (a bad thing name or job id).
pub fn parse_device_topic(topic: &str) -> Option<(&str, DeviceOp)> {
    let Ok(Topic::Jobs {
        thing,
        msg: JobsMsg::Request(request),
    }) = Topic::parse(topic)
    else {
        return None;
    };
    let op = match request {
        JobsRequest::GetPending => DeviceOp::GetPending,
        JobsRequest::StartNext => DeviceOp::StartNext,
        JobsRequest::Describe(id) => DeviceOp::Describe(id.to_string()),
        JobsRequest::Update(id) => DeviceOp::Update(id.to_string()),
    };
    Some((thing, op))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn exec(job: &str, status: &str, queued: f64, number: i64) -> Execution {
        Execution {
            job_id: job.into(),
            thing: "r1".into(),
            number,
            status: status.into(),
            details: Map::new(),
            queued,
            started: None,
            updated: queued,
            version: 1,
            force_canceled: false,
            timeout_at: None,
        }
    }

    #[test]
    fn device_moves_follow_aws() {
        let table = [
            ("QUEUED", "IN_PROGRESS", Ok(())),
            ("QUEUED", "SUCCEEDED", Ok(())),
            ("QUEUED", "REJECTED", Ok(())),
            ("IN_PROGRESS", "IN_PROGRESS", Ok(())),
            ("IN_PROGRESS", "FAILED", Ok(())),
            ("IN_PROGRESS", "QUEUED", Err("InvalidStateTransition")),
            ("IN_PROGRESS", "CANCELED", Err("InvalidStateTransition")),
            ("IN_PROGRESS", "TIMED_OUT", Err("InvalidStateTransition")),
            ("IN_PROGRESS", "DONE", Err("InvalidRequest")),
            ("SUCCEEDED", "IN_PROGRESS", Err("TerminalStateReached")),
            ("CANCELED", "SUCCEEDED", Err("TerminalStateReached")),
            ("TIMED_OUT", "FAILED", Err("TerminalStateReached")),
        ];
        for (from, to, want) in table {
            assert_eq!(
                device_move(from, to).map_err(|r| r.code),
                want,
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn in_progress_comes_before_queued_and_old_before_new() {
        let execs = vec![
            exec("b", "QUEUED", 2.0, 2),
            exec("a", "QUEUED", 1.0, 1),
            exec("c", "IN_PROGRESS", 3.0, 3),
            exec("d", "SUCCEEDED", 0.5, 4),
        ];
        assert_eq!(next_pending(&execs).unwrap().job_id, "c");
        assert_eq!(pending_order(&execs), ["c", "a", "b"]);
        let done = vec![exec("d", "FAILED", 0.5, 4)];
        assert!(next_pending(&done).is_none());
    }

    #[test]
    fn device_topics() {
        let table = [
            (
                "$aws/things/r1/jobs/get",
                Some(("r1", DeviceOp::GetPending)),
            ),
            (
                "$aws/things/r1/jobs/start-next",
                Some(("r1", DeviceOp::StartNext)),
            ),
            (
                "$aws/things/r1/jobs/j1/update",
                Some(("r1", DeviceOp::Update("j1".into()))),
            ),
            (
                "$aws/things/r1/jobs/$next/get",
                Some(("r1", DeviceOp::Describe("$next".into()))),
            ),
            ("$aws/things/r1/jobs/get/accepted", None),
            ("$aws/things/r1/jobs/j1/update/rejected", None),
            ("$aws/things/r1/jobs/notify-next", None),
            ("$aws/things/r1/jobs/j.1/update", None),
            ("$aws/things/r 1/jobs/get", None),
            ("$aws/things/r1/shadow/get", None),
        ];
        for (topic, want) in table {
            assert_eq!(parse_device_topic(topic), want, "{topic}");
        }
    }

    #[test]
    fn targets_and_ids() {
        let t = |a: &str| parse_target(a, "us-east-1", "123456789012");
        assert_eq!(
            t("arn:aws:iot:us-east-1:123456789012:thing/r1").unwrap(),
            Target::Thing("r1".into())
        );
        assert_eq!(
            t("arn:aws:iot:us-east-1:123456789012:thinggroup/g").unwrap(),
            Target::Group("g".into())
        );
        assert!(t("arn:aws:iot:eu-west-1:123456789012:thing/r1").is_err());
        assert!(t("r1").is_err());
        assert!(check_id("jobId", "update-0_2-a").is_ok());
        assert!(check_id("jobId", "update-0.2").is_err());
        assert!(check_id("jobId", "a/b").is_err());
        assert!(check_id("jobId", &"x".repeat(65)).is_err());
    }

    #[test]
    fn status_details_are_bounded_strings() {
        assert!(check_details(&json!({"step": "download", "a:b-c": "x"})).is_ok());
        assert!(check_details(&json!({"n": 1})).is_err());
        assert!(check_details(&json!({"bad key": "x"})).is_err());
        assert!(check_details(&json!({"k": ""})).is_err());
        let many: Map<String, Value> = (0..11).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(check_details(&Value::Object(many)).is_err());
        assert!(check_details(&json!("x")).is_err());
    }
}
