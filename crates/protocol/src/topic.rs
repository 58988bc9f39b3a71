//! Every MQTT topic the product publishes or reads, parsed by
//! [`Topic::parse`] and printed by `Display` (the one spelling of each), and
//! the wildcard [`Filter`]s that subscribe to them. A new topic is a new
//! variant here plus a row in the tests; its users then `match` on it.
//!
//! | topic | value |
//! | --- | --- |
//! | `gopigo/{thing}/cmd`, `cmd/result`, `telemetry`, `status`, `detections`, `check`, `video`, `video/request` | [`Topic::Robot`] with a [`RobotTopic`] |
//! | `$aws/things/{thing}/shadow[/name/{shadow}]/{get,update,delete}[/...]` | [`Topic::Shadow`] with a [`ShadowMsg`] |
//! | `$aws/things/{thing}/jobs/{notify,notify-next}`, `jobs/{get,start-next,{jobId}/get,{jobId}/update}[/accepted,/rejected]` | [`Topic::Jobs`] with a [`JobsMsg`] |
//! | `$aws/events/presence/{connected,disconnected}/{clientId}` | [`Topic::Presence`] |
//!
//! Parsing refuses wildcards, empty segments (they fail the name rules or
//! the suffix match) and names that break [`crate::valid_thing_name`] /
//! [`crate::valid_shadow_name`] / [`valid_job_id`], so a parsed topic
//! names exactly one thing.

use std::fmt;

use crate::name::{valid_shadow_name, valid_thing_name};

const ROBOT_PREFIX: &str = "gopigo/";
const SHADOW_PREFIX: &str = "$aws/things/";
const PRESENCE_PREFIX: &str = "$aws/events/presence/";

/// The topics under `gopigo/{thing}/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RobotTopic {
    /// `cmd`: commands to the robot (QoS 1).
    Command,
    /// `cmd/result`: what became of each command (QoS 1).
    CommandResult,
    /// `telemetry`: battery, wheels, distance, motion (QoS 0; QoS 1 while
    /// the wheels turn, so that the PUBACKs feed the agent's link watchdog).
    Telemetry,
    /// `status`: retained online/offline, also the MQTT will (QoS 1).
    Status,
    /// `detections`: what the detector found in the robot's video (QoS 0).
    Detections,
    /// `check`: `gopigo check`'s round trip (the device hears itself).
    Check,
    /// `video`: camera frames in the binary [`crate::video`] format
    /// (QoS 0), published only while a viewer's request is fresh.
    Video,
    /// `video/request`: a viewer asks for `video` for a while
    /// ([`crate::video::VideoRequest`]); it expires unless renewed.
    VideoRequest,
}

impl RobotTopic {
    /// Every kind, for tables and tests.
    pub const ALL: [RobotTopic; 8] = [
        RobotTopic::Command,
        RobotTopic::CommandResult,
        RobotTopic::Telemetry,
        RobotTopic::Status,
        RobotTopic::Detections,
        RobotTopic::Check,
        RobotTopic::Video,
        RobotTopic::VideoRequest,
    ];

    /// The segments after the thing name.
    pub fn as_str(self) -> &'static str {
        match self {
            RobotTopic::Command => "cmd",
            RobotTopic::CommandResult => "cmd/result",
            RobotTopic::Telemetry => "telemetry",
            RobotTopic::Status => "status",
            RobotTopic::Detections => "detections",
            RobotTopic::Check => "check",
            RobotTopic::Video => "video",
            RobotTopic::VideoRequest => "video/request",
        }
    }

    fn from_suffix(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A shadow request, or the service's answer to one ("Device Shadow MQTT
/// topics"). Only the combinations AWS uses exist: there is no `get/delta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShadowMsg {
    /// `get`: ask for the whole document.
    Get,
    /// `update`: merge a state document.
    Update,
    /// `delete`: delete the shadow.
    Delete,
    /// `get/accepted`: the document.
    GetAccepted,
    /// `get/rejected`: no document (404) or refused.
    GetRejected,
    /// `update/accepted`: the merged request, with metadata.
    UpdateAccepted,
    /// `update/rejected`: the update was refused.
    UpdateRejected,
    /// `update/delta`: desired differs from reported (what a device acts on).
    UpdateDelta,
    /// `update/documents`: the document before and after an update.
    UpdateDocuments,
    /// `delete/accepted`.
    DeleteAccepted,
    /// `delete/rejected`.
    DeleteRejected,
}

impl ShadowMsg {
    /// Every message, for tables and tests.
    pub const ALL: [ShadowMsg; 11] = [
        ShadowMsg::Get,
        ShadowMsg::Update,
        ShadowMsg::Delete,
        ShadowMsg::GetAccepted,
        ShadowMsg::GetRejected,
        ShadowMsg::UpdateAccepted,
        ShadowMsg::UpdateRejected,
        ShadowMsg::UpdateDelta,
        ShadowMsg::UpdateDocuments,
        ShadowMsg::DeleteAccepted,
        ShadowMsg::DeleteRejected,
    ];

    /// The segments after `shadow` (or after `shadow/name/{shadow}`).
    pub fn as_str(self) -> &'static str {
        match self {
            ShadowMsg::Get => "get",
            ShadowMsg::Update => "update",
            ShadowMsg::Delete => "delete",
            ShadowMsg::GetAccepted => "get/accepted",
            ShadowMsg::GetRejected => "get/rejected",
            ShadowMsg::UpdateAccepted => "update/accepted",
            ShadowMsg::UpdateRejected => "update/rejected",
            ShadowMsg::UpdateDelta => "update/delta",
            ShadowMsg::UpdateDocuments => "update/documents",
            ShadowMsg::DeleteAccepted => "delete/accepted",
            ShadowMsg::DeleteRejected => "delete/rejected",
        }
    }

    /// Whether a client sends it (`get`, `update`, `delete`) rather than the service.
    pub fn is_request(self) -> bool {
        matches!(self, ShadowMsg::Get | ShadowMsg::Update | ShadowMsg::Delete)
    }

    fn from_suffix(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// A request of the AWS IoT Jobs device API ("Jobs device MQTT API").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobsRequest<'a> {
    /// `get`: GetPendingJobExecutions.
    GetPending,
    /// `start-next`: StartNextPendingJobExecution.
    StartNext,
    /// `{jobId}/get`: DescribeJobExecution; the id may be `$next`.
    Describe(&'a str),
    /// `{jobId}/update`: UpdateJobExecution.
    Update(&'a str),
}

impl JobsRequest<'_> {
    /// Whether the id in `{jobId}/...` may be `$next` (only for `get`).
    fn allows_next(self) -> bool {
        matches!(self, JobsRequest::Describe(_))
    }
}

impl fmt::Display for JobsRequest<'_> {
    /// The segments after `jobs/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobsRequest::GetPending => f.write_str("get"),
            JobsRequest::StartNext => f.write_str("start-next"),
            JobsRequest::Describe(id) => write!(f, "{id}/get"),
            JobsRequest::Update(id) => write!(f, "{id}/update"),
        }
    }
}

/// A message on a thing's `jobs/` topics: a device's request, the
/// service's answer to one, or a notification of pending executions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobsMsg<'a> {
    /// `notify`: the pending list changed.
    Notify,
    /// `notify-next`: the next pending execution changed.
    NotifyNext,
    /// The request itself (device → service).
    Request(JobsRequest<'a>),
    /// `{request}/accepted`.
    Accepted(JobsRequest<'a>),
    /// `{request}/rejected`.
    Rejected(JobsRequest<'a>),
}

impl fmt::Display for JobsMsg<'_> {
    /// The segments after `jobs/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobsMsg::Notify => f.write_str("notify"),
            JobsMsg::NotifyNext => f.write_str("notify-next"),
            JobsMsg::Request(r) => write!(f, "{r}"),
            JobsMsg::Accepted(r) => write!(f, "{r}/accepted"),
            JobsMsg::Rejected(r) => write!(f, "{r}/rejected"),
        }
    }
}

/// AWS's job-id rule: 1 to 64 of `a-z A-Z 0-9 _ -`.
pub fn valid_job_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The two lifecycle events the broker publishes for every client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceEvent {
    /// `connected`.
    Connected,
    /// `disconnected` (the payload's `disconnectReason` says why).
    Disconnected,
}

impl PresenceEvent {
    /// The topic segment.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceEvent::Connected => "connected",
            PresenceEvent::Disconnected => "disconnected",
        }
    }
}

/// One concrete topic (no wildcards), borrowing its names from the string
/// it was parsed from. `Display` prints it back byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic<'a> {
    /// `gopigo/{thing}/{kind}`: a robot's own topics.
    Robot {
        /// A valid thing name.
        thing: &'a str,
        /// Which of them.
        kind: RobotTopic,
    },
    /// `$aws/things/{thing}/shadow[/name/{name}]/{msg}`.
    Shadow {
        /// A valid thing name.
        thing: &'a str,
        /// `None` for the classic shadow (the only one robots use).
        name: Option<&'a str>,
        /// Request or answer.
        msg: ShadowMsg,
    },
    /// `$aws/things/{thing}/jobs/{msg}`: AWS IoT Jobs' device API.
    Jobs {
        /// A valid thing name.
        thing: &'a str,
        /// Request, answer or notification.
        msg: JobsMsg<'a>,
    },
    /// `$aws/events/presence/{event}/{client_id}`, published by the broker.
    Presence {
        /// Connected or disconnected.
        event: PresenceEvent,
        /// The MQTT client id (a robot's is its thing name); any one
        /// segment without wildcards, as AWS sends events for those only.
        client_id: &'a str,
    },
}

/// Why a string is not one of the product's topics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum TopicError {
    /// `+` or `#`: a filter, not a topic.
    #[error("{0:?} holds a wildcard ('+' or '#'): a topic names one thing; wildcards belong in subscription filters")]
    Wildcard(String),
    /// The thing segment breaks the thing-name rule (empty included).
    #[error(
        "{topic:?}: {thing:?} is not a thing name (1 to 128 letters, digits, ':', '_' or '-')"
    )]
    ThingName {
        topic: String,
        /// The segment in the thing's place.
        thing: String,
    },
    /// The shadow-name segment breaks the shadow-name rule (empty included).
    #[error(
        "{topic:?}: {name:?} is not a shadow name (1 to 64 letters, digits, '$', ':', '_' or '-')"
    )]
    ShadowName {
        topic: String,
        /// The segment in the shadow name's place.
        name: String,
    },
    /// The job-id segment breaks AWS's job-id rule.
    #[error("{topic:?}: {id:?} is not a job id (1 to 64 letters, digits, '_' or '-'; '$next' only before 'get')")]
    JobId {
        /// The topic.
        topic: String,
        /// The segment in the job id's place.
        id: String,
    },
    /// None of the shapes in the module docs.
    #[error("{0:?} is not a gopigo topic (gopigo/{{thing}}/cmd|cmd/result|telemetry|status|detections|check|video|video/request, $aws/things/{{thing}}/shadow/..., $aws/things/{{thing}}/jobs/..., $aws/events/presence/connected|disconnected/{{client id}})")]
    Unknown(String),
}

impl<'a> Topic<'a> {
    /// A robot topic, e.g. `Topic::robot("r1", RobotTopic::Command)` is `gopigo/r1/cmd`.
    pub fn robot(thing: &'a str, kind: RobotTopic) -> Self {
        Topic::Robot { thing, kind }
    }

    /// A topic of the thing's classic (unnamed) shadow.
    pub fn shadow(thing: &'a str, msg: ShadowMsg) -> Self {
        Topic::Shadow {
            thing,
            name: None,
            msg,
        }
    }

    /// A topic of the thing's Jobs device API.
    pub fn jobs(thing: &'a str, msg: JobsMsg<'a>) -> Self {
        Topic::Jobs { thing, msg }
    }

    /// Reads a topic (see the module docs for what is refused).
    pub fn parse(topic: &'a str) -> Result<Self, TopicError> {
        if topic.contains(['+', '#']) {
            return Err(TopicError::Wildcard(topic.to_string()));
        }
        let unknown = || TopicError::Unknown(topic.to_string());
        if let Some(rest) = topic.strip_prefix(ROBOT_PREFIX) {
            let (thing, suffix) = rest.split_once('/').ok_or_else(unknown)?;
            let kind = RobotTopic::from_suffix(suffix).ok_or_else(unknown)?;
            return Ok(Topic::Robot {
                thing: check_thing(topic, thing)?,
                kind,
            });
        }
        if let Some(rest) = topic.strip_prefix(SHADOW_PREFIX) {
            return parse_thing_service(topic, rest);
        }
        if let Some(rest) = topic.strip_prefix(PRESENCE_PREFIX) {
            let (event, client_id) = rest.split_once('/').ok_or_else(unknown)?;
            let event = match event {
                "connected" => PresenceEvent::Connected,
                "disconnected" => PresenceEvent::Disconnected,
                _ => return Err(unknown()),
            };
            if client_id.is_empty() || client_id.contains('/') {
                return Err(unknown());
            }
            return Ok(Topic::Presence { event, client_id });
        }
        Err(unknown())
    }

    /// The thing a robot or shadow topic is about, or the client id of a
    /// presence event (a robot's client id is its thing name).
    pub fn subject(&self) -> &'a str {
        match *self {
            Topic::Robot { thing, .. }
            | Topic::Shadow { thing, .. }
            | Topic::Jobs { thing, .. } => thing,
            Topic::Presence { client_id, .. } => client_id,
        }
    }
}

fn check_thing<'a>(topic: &str, thing: &'a str) -> Result<&'a str, TopicError> {
    if valid_thing_name(thing) {
        Ok(thing)
    } else {
        Err(TopicError::ThingName {
            topic: topic.to_string(),
            thing: thing.to_string(),
        })
    }
}

/// `rest` is what follows `$aws/things/`: `{thing}/shadow/...` or `{thing}/jobs/...`.
fn parse_thing_service<'a>(topic: &str, rest: &'a str) -> Result<Topic<'a>, TopicError> {
    let unknown = || TopicError::Unknown(topic.to_string());
    let (thing, rest) = rest.split_once('/').ok_or_else(unknown)?;
    if let Some(rest) = rest.strip_prefix("shadow/") {
        return parse_shadow(topic, thing, rest);
    }
    let rest = rest.strip_prefix("jobs/").ok_or_else(unknown)?;
    let msg = parse_jobs(topic, rest)?;
    Ok(Topic::Jobs {
        thing: check_thing(topic, thing)?,
        msg,
    })
}

/// `rest` is what follows `jobs/`.
fn parse_jobs<'a>(topic: &str, rest: &'a str) -> Result<JobsMsg<'a>, TopicError> {
    match rest {
        "notify" => return Ok(JobsMsg::Notify),
        "notify-next" => return Ok(JobsMsg::NotifyNext),
        _ => {}
    }
    if let Some(req) = rest.strip_suffix("/accepted") {
        return parse_jobs_request(topic, req).map(JobsMsg::Accepted);
    }
    if let Some(req) = rest.strip_suffix("/rejected") {
        return parse_jobs_request(topic, req).map(JobsMsg::Rejected);
    }
    parse_jobs_request(topic, rest).map(JobsMsg::Request)
}

/// `get`, `start-next`, `{jobId}/get` or `{jobId}/update`.
fn parse_jobs_request<'a>(topic: &str, s: &'a str) -> Result<JobsRequest<'a>, TopicError> {
    let (id, request) = match s.split_once('/') {
        None if s == "get" => return Ok(JobsRequest::GetPending),
        None if s == "start-next" => return Ok(JobsRequest::StartNext),
        Some((id, "get")) => (id, JobsRequest::Describe(id)),
        Some((id, "update")) => (id, JobsRequest::Update(id)),
        _ => return Err(TopicError::Unknown(topic.to_string())),
    };
    if valid_job_id(id) || (id == "$next" && request.allows_next()) {
        Ok(request)
    } else {
        Err(TopicError::JobId {
            topic: topic.to_string(),
            id: id.to_string(),
        })
    }
}

/// `rest` is what follows `{thing}/shadow/`: `[name/{name}/]{msg}`.
fn parse_shadow<'a>(topic: &str, thing: &'a str, rest: &'a str) -> Result<Topic<'a>, TopicError> {
    let unknown = || TopicError::Unknown(topic.to_string());
    let (name, suffix) = match rest.strip_prefix("name/") {
        Some(named) => {
            let (name, suffix) = named.split_once('/').ok_or_else(unknown)?;
            if !valid_shadow_name(name) {
                return Err(TopicError::ShadowName {
                    topic: topic.to_string(),
                    name: name.to_string(),
                });
            }
            (Some(name), suffix)
        }
        None => (None, rest),
    };
    let msg = ShadowMsg::from_suffix(suffix).ok_or_else(unknown)?;
    Ok(Topic::Shadow {
        thing: check_thing(topic, thing)?,
        name,
        msg,
    })
}

impl fmt::Display for Topic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Robot { thing, kind } => write!(f, "{ROBOT_PREFIX}{thing}/{}", kind.as_str()),
            Topic::Shadow {
                thing,
                name: None,
                msg,
            } => write!(f, "{SHADOW_PREFIX}{thing}/shadow/{}", msg.as_str()),
            Topic::Shadow {
                thing,
                name: Some(name),
                msg,
            } => write!(
                f,
                "{SHADOW_PREFIX}{thing}/shadow/name/{name}/{}",
                msg.as_str()
            ),
            Topic::Jobs { thing, msg } => write!(f, "{SHADOW_PREFIX}{thing}/jobs/{msg}"),
            Topic::Presence { event, client_id } => {
                write!(f, "{PRESENCE_PREFIX}{}/{client_id}", event.as_str())
            }
        }
    }
}

/// A subscription to one kind of topic from every thing or client: `+` in
/// the name's place. (A single topic is subscribed to by its `Display`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    /// `gopigo/+/{kind}`.
    EveryRobot(RobotTopic),
    /// `$aws/things/+/shadow/{msg}`: classic shadows only.
    EveryShadow(ShadowMsg),
    /// `$aws/events/presence/{event}/+`.
    EveryClient(PresenceEvent),
}

impl Filter {
    /// Whether a message on `topic` reaches this subscription.
    pub fn matches(self, topic: &Topic<'_>) -> bool {
        match (self, *topic) {
            (Filter::EveryRobot(k), Topic::Robot { kind, .. }) => k == kind,
            (
                Filter::EveryShadow(m),
                Topic::Shadow {
                    name: None, msg, ..
                },
            ) => m == msg,
            (Filter::EveryClient(e), Topic::Presence { event, .. }) => e == event,
            _ => false,
        }
    }

    /// The topic this filter receives from the thing (or client) `subject`.
    pub fn topic_of(self, subject: &str) -> Topic<'_> {
        match self {
            Filter::EveryRobot(kind) => Topic::robot(subject, kind),
            Filter::EveryShadow(msg) => Topic::shadow(subject, msg),
            Filter::EveryClient(event) => Topic::Presence {
                event,
                client_id: subject,
            },
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.topic_of("+"), f)
    }
}

/// Every Jobs topic of one thing, `$aws/things/{thing}/jobs/#` (what a
/// robot subscribes to, as one filter so that its SUBACK says whether its
/// policy allows jobs), or of every thing (`+`, the local core's service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobsFilter<'a> {
    /// `None` for every thing.
    pub thing: Option<&'a str>,
}

impl<'a> JobsFilter<'a> {
    /// The jobs topics of `thing`.
    pub fn of(thing: &'a str) -> Self {
        JobsFilter { thing: Some(thing) }
    }

    /// The jobs topics of every thing.
    pub const EVERY_THING: JobsFilter<'static> = JobsFilter { thing: None };

    /// Whether a message on `topic` reaches this subscription.
    pub fn matches(self, topic: &Topic<'_>) -> bool {
        match *topic {
            Topic::Jobs { thing, .. } => self.thing.is_none_or(|t| t == thing),
            _ => false,
        }
    }
}

impl fmt::Display for JobsFilter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SHADOW_PREFIX}{}/jobs/#", self.thing.unwrap_or("+"))
    }
}

/// What the fleet dashboard subscribes to for every robot: the low-rate
/// messages the fleet list is made of (status, command results) and the
/// shadow documents it shows. Its policy must grant `iot:Subscribe` on each.
/// The full-rate topics ([`ON_SCREEN_TOPICS`]) are subscribed per robot,
/// only while the robot is on screen.
pub const FLEET_FILTERS: [Filter; 5] = [
    Filter::EveryRobot(RobotTopic::Status),
    Filter::EveryRobot(RobotTopic::CommandResult),
    Filter::EveryShadow(ShadowMsg::UpdateDocuments),
    Filter::EveryShadow(ShadowMsg::GetAccepted),
    Filter::EveryShadow(ShadowMsg::GetRejected),
];

/// The full-rate topics of one robot that the dashboard subscribes to by
/// their exact name while a page shows that robot: its telemetry and the
/// detections on its video (a few messages a second each).
pub const ON_SCREEN_TOPICS: [RobotTopic; 2] = [RobotTopic::Telemetry, RobotTopic::Detections];

/// The lifecycle events the dashboard also reads when its policy allows
/// (a broker closes the connection on a refused one, so they go apart).
pub const PRESENCE_FILTERS: [Filter; 2] = [
    Filter::EveryClient(PresenceEvent::Connected),
    Filter::EveryClient(PresenceEvent::Disconnected),
];

/// What a robot subscribes to: its commands, viewers' video requests and
/// its classic shadow's answers (the desired state at connect, and each delta).
pub fn robot_subscriptions(thing: &str) -> [Topic<'_>; 5] {
    [
        Topic::robot(thing, RobotTopic::Command),
        Topic::robot(thing, RobotTopic::VideoRequest),
        Topic::shadow(thing, ShadowMsg::UpdateDelta),
        Topic::shadow(thing, ShadowMsg::GetAccepted),
        Topic::shadow(thing, ShadowMsg::GetRejected),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One of every shape, with the string each prints as.
    fn every_topic() -> Vec<(Topic<'static>, String)> {
        let mut all = Vec::new();
        for kind in RobotTopic::ALL {
            all.push((
                Topic::robot("r1", kind),
                format!("gopigo/r1/{}", kind.as_str()),
            ));
        }
        for msg in ShadowMsg::ALL {
            all.push((
                Topic::shadow("r1", msg),
                format!("$aws/things/r1/shadow/{}", msg.as_str()),
            ));
            all.push((
                Topic::Shadow {
                    thing: "r1",
                    name: Some("$package"),
                    msg,
                },
                format!("$aws/things/r1/shadow/name/$package/{}", msg.as_str()),
            ));
        }
        for (msg, suffix) in every_jobs_msg("j-1_a", "j-1_a") {
            all.push((
                Topic::jobs("r1", msg),
                format!("$aws/things/r1/jobs/{suffix}"),
            ));
        }
        for event in [PresenceEvent::Connected, PresenceEvent::Disconnected] {
            all.push((
                Topic::Presence {
                    event,
                    client_id: "any.client@id",
                },
                format!("$aws/events/presence/{}/any.client@id", event.as_str()),
            ));
        }
        all
    }

    /// Every Jobs message with the suffix AWS spells it with: the
    /// notifications, and each request with its two answers.
    fn every_jobs_msg<'a>(id: &'a str, describe_id: &'a str) -> Vec<(JobsMsg<'a>, String)> {
        let mut all = vec![
            (JobsMsg::Notify, "notify".to_string()),
            (JobsMsg::NotifyNext, "notify-next".to_string()),
        ];
        let requests = [
            (JobsRequest::GetPending, "get".to_string()),
            (JobsRequest::StartNext, "start-next".to_string()),
            (
                JobsRequest::Describe(describe_id),
                format!("{describe_id}/get"),
            ),
            (JobsRequest::Update(id), format!("{id}/update")),
        ];
        for (r, text) in requests {
            all.push((JobsMsg::Request(r), text.clone()));
            all.push((JobsMsg::Accepted(r), format!("{text}/accepted")));
            all.push((JobsMsg::Rejected(r), format!("{text}/rejected")));
        }
        all
    }

    #[test]
    fn every_topic_prints_as_aws_spells_it_and_parses_back() {
        let all = every_topic();
        assert_eq!(all.len(), 8 + 2 * 11 + 2 + 4 * 3 + 2);
        for (topic, text) in all {
            assert_eq!(topic.to_string(), text);
            assert_eq!(Topic::parse(&text), Ok(topic), "{text}");
        }
        // spot checks against the architecture's table
        assert_eq!(
            Topic::robot("r1", RobotTopic::CommandResult).to_string(),
            "gopigo/r1/cmd/result"
        );
        assert_eq!(
            Topic::shadow("r1", ShadowMsg::UpdateDelta).to_string(),
            "$aws/things/r1/shadow/update/delta"
        );
        assert_eq!(
            Topic::jobs("r1", JobsMsg::Accepted(JobsRequest::StartNext)).to_string(),
            "$aws/things/r1/jobs/start-next/accepted"
        );
        assert_eq!(
            Topic::jobs("r1", JobsMsg::Request(JobsRequest::Update("j1"))).to_string(),
            "$aws/things/r1/jobs/j1/update"
        );
    }

    #[test]
    fn jobs_describe_may_ask_for_next_and_nothing_else_may() {
        for suffix in ["", "/accepted", "/rejected"] {
            let text = format!("$aws/things/r1/jobs/$next/get{suffix}");
            let t = Topic::parse(&text).unwrap();
            assert_eq!(t.to_string(), text);
            let next = JobsRequest::Describe("$next");
            let want = match suffix {
                "" => JobsMsg::Request(next),
                "/accepted" => JobsMsg::Accepted(next),
                _ => JobsMsg::Rejected(next),
            };
            assert_eq!(t, Topic::jobs("r1", want));
            let update = format!("$aws/things/r1/jobs/$next/update{suffix}");
            let e = Topic::parse(&update).unwrap_err().to_string();
            assert!(e.contains("not a job id"), "{update}: {e}");
        }
        // ids that spell a request are still ids
        assert_eq!(
            Topic::parse("$aws/things/r1/jobs/get/get"),
            Ok(Topic::jobs(
                "r1",
                JobsMsg::Request(JobsRequest::Describe("get"))
            ))
        );
        assert_eq!(
            Topic::parse("$aws/things/r1/jobs/notify-next/update/accepted"),
            Ok(Topic::jobs(
                "r1",
                JobsMsg::Accepted(JobsRequest::Update("notify-next"))
            ))
        );
    }

    #[test]
    fn malformed_topics_are_refused_with_the_reason() {
        let table: &[(&str, &str)] = &[
            ("", "not a gopigo topic"),
            ("gopigo", "not a gopigo topic"),
            ("gopigo/r1", "not a gopigo topic"),
            ("gopigo/r1/", "not a gopigo topic"),
            ("gopigo//cmd", "not a thing name"),
            ("gopigo/r1//cmd", "not a gopigo topic"),
            ("gopigo/r1/cmd/", "not a gopigo topic"),
            ("gopigo/r1/cmd/results", "not a gopigo topic"),
            ("gopigo/r1/videos", "not a gopigo topic"),
            ("gopigo/r1/video/", "not a gopigo topic"),
            ("gopigo/r 1/cmd", "not a thing name"),
            ("gopigo/r.1/status", "not a thing name"),
            (
                &format!("gopigo/{}/cmd", "a".repeat(129)),
                "not a thing name",
            ),
            ("/gopigo/r1/cmd", "not a gopigo topic"),
            ("Gopigo/r1/cmd", "not a gopigo topic"),
            ("other/r1/cmd", "not a gopigo topic"),
            ("gopigo/+/cmd", "wildcard"),
            ("gopigo/r1/#", "wildcard"),
            ("$aws/things/+/shadow/get", "wildcard"),
            ("$aws/events/presence/connected/+", "wildcard"),
            ("$aws/things/r1/shadow", "not a gopigo topic"),
            ("$aws/things/r1/shadow/", "not a gopigo topic"),
            ("$aws/things/r1/shadow/list", "not a gopigo topic"),
            ("$aws/things/r1/shadow/get/delta", "not a gopigo topic"),
            ("$aws/things/r1/shadow/get/", "not a gopigo topic"),
            ("$aws/things//shadow/get", "not a thing name"),
            ("$aws/things/r1/jobs", "not a gopigo topic"),
            ("$aws/things/r1/jobs/", "not a gopigo topic"),
            ("$aws/things/r1/jobs/list", "not a gopigo topic"),
            ("$aws/things/r1/jobs/get/", "not a gopigo topic"),
            ("$aws/things/r1/jobs/notify/accepted", "not a gopigo topic"),
            (
                "$aws/things/r1/jobs/notify-next/rejected",
                "not a gopigo topic",
            ),
            (
                "$aws/things/r1/jobs/get/accepted/accepted",
                "not a gopigo topic",
            ),
            ("$aws/things/r1/jobs/j1/get/delta", "not a gopigo topic"),
            ("$aws/things/r1/jobs/j1/delete", "not a gopigo topic"),
            ("$aws/things/r1/jobs/j1/j2/get", "not a gopigo topic"),
            (
                "$aws/things/r1/jobs/start-next/update/x",
                "not a gopigo topic",
            ),
            ("$aws/things/r1/jobs//get", "not a job id"),
            ("$aws/things/r1/jobs/j.1/update", "not a job id"),
            ("$aws/things/r1/jobs/$j1/get", "not a job id"),
            ("$aws/things/r1/jobs/$next/update", "not a job id"),
            (
                &format!("$aws/things/r1/jobs/{}/get/accepted", "j".repeat(65)),
                "not a job id",
            ),
            ("$aws/things//jobs/get", "not a thing name"),
            ("$aws/things/r 1/jobs/notify-next", "not a thing name"),
            ("$aws/things/r1/jobs/#", "wildcard"),
            ("$aws/things/+/jobs/get", "wildcard"),
            ("aws/things/r1/shadow/get", "not a gopigo topic"),
            ("$aws/things/r1/shadow/name/get", "not a gopigo topic"),
            ("$aws/things/r1/shadow/name//get", "not a shadow name"),
            (
                "$aws/things/r1/shadow/name/bad~name/get",
                "not a shadow name",
            ),
            ("$aws/events/presence/connected", "not a gopigo topic"),
            ("$aws/events/presence/connected/", "not a gopigo topic"),
            ("$aws/events/presence/connected/a/b", "not a gopigo topic"),
            ("$aws/events/presence/subscribed/r1", "not a gopigo topic"),
        ];
        for (topic, needle) in table {
            let e = Topic::parse(topic).unwrap_err().to_string();
            assert!(e.contains(needle), "{topic:?}: {e}");
        }
    }

    #[test]
    fn a_thing_called_name_or_shadow_is_still_a_thing() {
        assert_eq!(
            Topic::parse("$aws/things/name/shadow/get"),
            Ok(Topic::shadow("name", ShadowMsg::Get))
        );
        assert_eq!(
            Topic::parse("gopigo/shadow/status"),
            Ok(Topic::robot("shadow", RobotTopic::Status))
        );
        assert_eq!(
            Topic::parse("$aws/things/r1/shadow/name/name/update/delta"),
            Ok(Topic::Shadow {
                thing: "r1",
                name: Some("name"),
                msg: ShadowMsg::UpdateDelta
            })
        );
    }

    /// MQTT's matching rule (`+` = one segment, `#` = the rest), written
    /// out on strings so the typed filters are checked against it.
    fn mqtt_matches(filter: &str, topic: &str) -> bool {
        let (mut f, mut t) = (filter.split('/'), topic.split('/'));
        loop {
            match (f.next(), t.next()) {
                (Some("#"), _) => return true,
                (Some("+"), Some(_)) => {}
                (Some(a), Some(b)) if a == b => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    fn every_filter() -> Vec<Filter> {
        let mut all: Vec<Filter> = RobotTopic::ALL.map(Filter::EveryRobot).to_vec();
        all.extend(ShadowMsg::ALL.map(Filter::EveryShadow));
        all.extend(PRESENCE_FILTERS);
        all
    }

    #[test]
    fn filters_match_exactly_the_topics_mqtt_delivers_to_them() {
        for filter in every_filter() {
            let mut hits = 0;
            for (topic, text) in every_topic() {
                let by_mqtt = mqtt_matches(&filter.to_string(), &text);
                assert_eq!(filter.matches(&topic), by_mqtt, "{filter} vs {text}");
                hits += usize::from(by_mqtt);
            }
            // each filter takes its one kind, from the one subject in the table
            assert_eq!(hits, 1, "{filter}");
            let mine = filter.topic_of("r2");
            assert!(filter.matches(&mine), "{filter}");
            assert_eq!(Topic::parse(&mine.to_string()), Ok(mine));
        }
    }

    #[test]
    fn the_jobs_filters_match_exactly_what_mqtt_delivers_to_them() {
        let mut topics = every_topic();
        for (msg, suffix) in every_jobs_msg("j2", "$next") {
            topics.push((
                Topic::jobs("r2", msg),
                format!("$aws/things/r2/jobs/{suffix}"),
            ));
        }
        for (filter, want) in [
            (JobsFilter::of("r1"), 14),
            (JobsFilter::of("r2"), 14),
            (JobsFilter::of("r3"), 0),
            (JobsFilter::EVERY_THING, 28),
        ] {
            let mut hits = 0;
            for (topic, text) in &topics {
                let by_mqtt = mqtt_matches(&filter.to_string(), text);
                assert_eq!(filter.matches(topic), by_mqtt, "{filter} vs {text}");
                hits += usize::from(by_mqtt);
            }
            assert_eq!(hits, want, "{filter}");
        }
        // the robot's one subscription and the local core's, as before
        assert_eq!(JobsFilter::of("r1").to_string(), "$aws/things/r1/jobs/#");
        assert_eq!(JobsFilter::EVERY_THING.to_string(), "$aws/things/+/jobs/#");
    }

    #[test]
    fn the_subscription_lists_are_spelled_as_before() {
        let fleet: Vec<String> = FLEET_FILTERS.iter().map(Filter::to_string).collect();
        assert_eq!(
            fleet,
            [
                "gopigo/+/status",
                "gopigo/+/cmd/result",
                "$aws/things/+/shadow/update/documents",
                "$aws/things/+/shadow/get/accepted",
                "$aws/things/+/shadow/get/rejected",
            ]
        );
        let presence: Vec<String> = PRESENCE_FILTERS.iter().map(Filter::to_string).collect();
        assert_eq!(
            presence,
            [
                "$aws/events/presence/connected/+",
                "$aws/events/presence/disconnected/+",
            ]
        );
        let robot: Vec<String> = robot_subscriptions("r1")
            .iter()
            .map(Topic::to_string)
            .collect();
        assert_eq!(
            robot,
            [
                "gopigo/r1/cmd",
                "gopigo/r1/video/request",
                "$aws/things/r1/shadow/update/delta",
                "$aws/things/r1/shadow/get/accepted",
                "$aws/things/r1/shadow/get/rejected",
            ]
        );
    }

    fn any_topic(
        thing: String,
        shadow: Option<String>,
        client: String,
        job: String,
    ) -> Vec<String> {
        let mut texts: Vec<String> = RobotTopic::ALL
            .iter()
            .map(|&k| Topic::robot(&thing, k).to_string())
            .collect();
        for msg in ShadowMsg::ALL {
            let t = Topic::Shadow {
                thing: &thing,
                name: shadow.as_deref(),
                msg,
            };
            texts.push(t.to_string());
        }
        for describe in [job.as_str(), "$next"] {
            for (msg, _) in every_jobs_msg(&job, describe) {
                texts.push(Topic::jobs(&thing, msg).to_string());
            }
        }
        for event in [PresenceEvent::Connected, PresenceEvent::Disconnected] {
            texts.push(
                Topic::Presence {
                    event,
                    client_id: &client,
                }
                .to_string(),
            );
        }
        texts
    }

    const SEGMENTS: &[&str] = &[
        "gopigo",
        "$aws",
        "things",
        "events",
        "presence",
        "shadow",
        "name",
        "r1",
        "cmd",
        "result",
        "telemetry",
        "status",
        "get",
        "update",
        "delete",
        "delta",
        "documents",
        "accepted",
        "connected",
        "disconnected",
        "jobs",
        "notify",
        "notify-next",
        "start-next",
        "rejected",
        "$next",
        "j1",
        "j.1",
        "",
        "+",
        "#",
        "r 1",
    ];

    proptest! {
        /// parse ∘ display is the identity for every valid name.
        #[test]
        fn display_then_parse_is_the_identity(
            thing in "[a-zA-Z0-9:_-]{1,128}",
            shadow in proptest::option::of("[$a-zA-Z0-9:_-]{1,64}"),
            client in "[^/+#]{1,64}",
            job in "[a-zA-Z0-9_-]{1,64}",
        ) {
            for text in any_topic(thing, shadow, client, job) {
                let parsed = Topic::parse(&text);
                prop_assert!(parsed.is_ok(), "{text}: {parsed:?}");
                prop_assert_eq!(parsed.unwrap().to_string(), text);
            }
        }

        /// display ∘ parse is the identity: whatever parses prints back as
        /// given, over strings made of the segments topics are made of.
        #[test]
        fn parse_then_display_is_the_identity(
            segments in proptest::collection::vec(proptest::sample::select(SEGMENTS), 1..8)
        ) {
            let text = segments.join("/");
            if let Ok(t) = Topic::parse(&text) {
                prop_assert_eq!(t.to_string(), text);
            }
        }
    }
}
