//! Every MQTT topic the product publishes or reads, parsed by
//! [`Topic::parse`] and printed by `Display` (the one spelling of each), and
//! the wildcard [`Filter`]s that subscribe to them. A new topic is a new
//! variant here plus a row in the tests; its users then `match` on it.
//!
//! | topic | value |
//! | --- | --- |
//! | `gopigo/{thing}/cmd`, `cmd/result`, `telemetry`, `status`, `detections`, `check`, `video`, `video/request` | [`Topic::Robot`] with a [`RobotTopic`] |
//! | `$aws/things/{thing}/shadow[/name/{shadow}]/{get,update,delete}[/...]` | [`Topic::Shadow`] with a [`ShadowMsg`] |
//! | `$aws/events/presence/{connected,disconnected}/{clientId}` | [`Topic::Presence`] |
//!
//! Parsing refuses wildcards, empty segments (they fail the name rules or
//! the suffix match) and names that break [`crate::valid_thing_name`] /
//! [`crate::valid_shadow_name`], so a parsed topic names exactly one thing.

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
    /// None of the shapes in the module docs.
    #[error("{0:?} is not a gopigo topic (gopigo/{{thing}}/cmd|cmd/result|telemetry|status|detections|check|video|video/request, $aws/things/{{thing}}/shadow/..., $aws/events/presence/connected|disconnected/{{client id}})")]
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
            return parse_shadow(topic, rest);
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
            Topic::Robot { thing, .. } | Topic::Shadow { thing, .. } => thing,
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

/// `rest` is what follows `$aws/things/`: `{thing}/shadow[/name/{name}]/{msg}`.
fn parse_shadow<'a>(topic: &str, rest: &'a str) -> Result<Topic<'a>, TopicError> {
    let unknown = || TopicError::Unknown(topic.to_string());
    let (thing, rest) = rest.split_once('/').ok_or_else(unknown)?;
    let rest = rest.strip_prefix("shadow/").ok_or_else(unknown)?;
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

/// What the fleet dashboard subscribes to: every robot's messages and the
/// shadow documents it shows. Its policy must grant `iot:Subscribe` on each.
pub const FLEET_FILTERS: [Filter; 7] = [
    Filter::EveryRobot(RobotTopic::Status),
    Filter::EveryRobot(RobotTopic::Telemetry),
    Filter::EveryRobot(RobotTopic::CommandResult),
    Filter::EveryRobot(RobotTopic::Detections),
    Filter::EveryShadow(ShadowMsg::UpdateDocuments),
    Filter::EveryShadow(ShadowMsg::GetAccepted),
    Filter::EveryShadow(ShadowMsg::GetRejected),
];

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

    #[test]
    fn every_topic_prints_as_aws_spells_it_and_parses_back() {
        let all = every_topic();
        assert_eq!(all.len(), 8 + 2 * 11 + 2);
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
            ("$aws/things/r1/jobs/get", "not a gopigo topic"),
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
    fn the_subscription_lists_are_spelled_as_before() {
        let fleet: Vec<String> = FLEET_FILTERS.iter().map(Filter::to_string).collect();
        assert_eq!(
            fleet,
            [
                "gopigo/+/status",
                "gopigo/+/telemetry",
                "gopigo/+/cmd/result",
                "gopigo/+/detections",
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

    fn any_topic(thing: String, shadow: Option<String>, client: String) -> Vec<String> {
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
        ) {
            for text in any_topic(thing, shadow, client) {
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
