//! Shadow MQTT topics and name rules.
//!
//! From "Device Shadow MQTT topics": the prefix is `$aws/things/{thing}/shadow`
//! for the classic (unnamed) shadow and `$aws/things/{thing}/shadow/name/{name}`
//! for a named one; requests are `get`, `update` and `delete`; the service
//! answers on `{op}/accepted`, `{op}/rejected`, and for updates also on
//! `update/delta` and `update/documents`.

use gopigo_protocol::{ShadowMsg, Topic};

/// The naming rules are `gopigo-protocol`'s, which every crate checks names with.
pub use gopigo_protocol::{
    valid_shadow_name, valid_thing_name, MAX_SHADOW_NAME_BYTES, MAX_THING_NAME_BYTES,
};

/// The three shadow requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShadowOp {
    /// `.../get`: read the whole document.
    Get,
    /// `.../update`: merge a request state document.
    Update,
    /// `.../delete`: delete the shadow.
    Delete,
}

impl ShadowOp {
    /// The topic segment: `get`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            ShadowOp::Get => "get",
            ShadowOp::Update => "update",
            ShadowOp::Delete => "delete",
        }
    }
}

/// A parsed shadow request topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowTopic<'a> {
    /// The `{thing}` segment of `$aws/things/{thing}/shadow/...`.
    pub thing: &'a str,
    /// `None` for the classic shadow, `Some(name)` for a named shadow.
    pub shadow_name: Option<&'a str>,
    /// The topic's last segment: get, update or delete.
    pub op: ShadowOp,
}

/// Parses a shadow *request* topic; anything else (including the service's own
/// response topics such as `.../update/accepted` or `.../update/delta`, and
/// topics with invalid thing or shadow names) gives `None`. The parsing is
/// `gopigo_protocol::Topic::parse`, the workspace's one topic reader.
pub fn parse_request_topic(topic: &str) -> Option<ShadowTopic<'_>> {
    let Topic::Shadow { thing, name, msg } = Topic::parse(topic).ok()? else {
        return None;
    };
    let op = match msg {
        ShadowMsg::Get => ShadowOp::Get,
        ShadowMsg::Update => ShadowOp::Update,
        ShadowMsg::Delete => ShadowOp::Delete,
        _ => return None,
    };
    Some(ShadowTopic {
        thing,
        shadow_name: name,
        op,
    })
}

impl ShadowOp {
    /// The request's message in the typed topic.
    pub fn request(self) -> ShadowMsg {
        match self {
            ShadowOp::Get => ShadowMsg::Get,
            ShadowOp::Update => ShadowMsg::Update,
            ShadowOp::Delete => ShadowMsg::Delete,
        }
    }

    /// The service's answer on `{op}/{suffix}`, if AWS has that topic
    /// (`accepted` and `rejected` for all three, `delta` and `documents`
    /// for `update`); an empty suffix is the request itself.
    pub fn answer(self, suffix: &str) -> Option<ShadowMsg> {
        Some(match (self, suffix) {
            (_, "") => self.request(),
            (ShadowOp::Get, "accepted") => ShadowMsg::GetAccepted,
            (ShadowOp::Get, "rejected") => ShadowMsg::GetRejected,
            (ShadowOp::Update, "accepted") => ShadowMsg::UpdateAccepted,
            (ShadowOp::Update, "rejected") => ShadowMsg::UpdateRejected,
            (ShadowOp::Update, "delta") => ShadowMsg::UpdateDelta,
            (ShadowOp::Update, "documents") => ShadowMsg::UpdateDocuments,
            (ShadowOp::Delete, "accepted") => ShadowMsg::DeleteAccepted,
            (ShadowOp::Delete, "rejected") => ShadowMsg::DeleteRejected,
            _ => return None,
        })
    }
}

/// The topic prefix: `$aws/things/{thing}/shadow[/name/{shadow}]`, as
/// [`Topic::Shadow`] prints it (its `get` topic without the `/get`).
pub fn topic_prefix(thing: &str, shadow_name: Option<&str>) -> String {
    let mut get = request_topic(thing, shadow_name, ShadowOp::Get);
    get.truncate(get.len() - "/get".len());
    get
}

/// The request topic for `op`, e.g. `$aws/things/bot/shadow/update`.
pub fn request_topic(thing: &str, shadow_name: Option<&str>, op: ShadowOp) -> String {
    shadow_topic(thing, shadow_name, op.request())
}

fn shadow_topic(thing: &str, name: Option<&str>, msg: ShadowMsg) -> String {
    Topic::Shadow { thing, name, msg }.to_string()
}

/// A response topic: `{prefix}/{op}/{suffix}` where suffix is `accepted`,
/// `rejected`, `delta` or `documents` (an empty suffix gives the request
/// topic). A pair AWS does not use (`get/delta`) is spelled the same way,
/// though no one subscribes to it.
pub fn response_topic(
    thing: &str,
    shadow_name: Option<&str>,
    op: ShadowOp,
    suffix: &str,
) -> String {
    match op.answer(suffix) {
        Some(msg) => shadow_topic(thing, shadow_name, msg),
        None => format!("{}/{suffix}", request_topic(thing, shadow_name, op)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn built_topics_are_spelled_as_aws_spells_them() {
        assert_eq!(topic_prefix("bot1", None), "$aws/things/bot1/shadow");
        assert_eq!(
            topic_prefix("bot1", Some("cfg")),
            "$aws/things/bot1/shadow/name/cfg"
        );
        for op in [ShadowOp::Get, ShadowOp::Update, ShadowOp::Delete] {
            for name in [None, Some("cfg")] {
                let prefix = topic_prefix("bot1", name);
                let request = request_topic("bot1", name, op);
                assert_eq!(request, format!("{prefix}/{}", op.as_str()));
                assert_eq!(response_topic("bot1", name, op, ""), request);
                for suffix in ["accepted", "rejected", "delta", "documents"] {
                    let t = response_topic("bot1", name, op, suffix);
                    assert_eq!(t, format!("{request}/{suffix}"));
                    // the pairs AWS uses are the typed topic's, and parse back
                    let typed = op.answer(suffix).is_some();
                    let aws = op == ShadowOp::Update || !matches!(suffix, "delta" | "documents");
                    assert_eq!(typed, aws, "{t}");
                    assert_eq!(Topic::parse(&t).is_ok(), aws, "{t}");
                }
            }
        }
    }

    #[test]
    fn request_topics_from_device_shadow_mqtt_topics_page() {
        type Want = Option<(&'static str, Option<&'static str>, ShadowOp)>;
        let table: &[(&str, Want)] = &[
            (
                "$aws/things/bot1/shadow/get",
                Some(("bot1", None, ShadowOp::Get)),
            ),
            (
                "$aws/things/bot1/shadow/update",
                Some(("bot1", None, ShadowOp::Update)),
            ),
            (
                "$aws/things/bot1/shadow/delete",
                Some(("bot1", None, ShadowOp::Delete)),
            ),
            (
                "$aws/things/bot1/shadow/name/camera/get",
                Some(("bot1", Some("camera"), ShadowOp::Get)),
            ),
            (
                "$aws/things/bot1/shadow/name/camera/update",
                Some(("bot1", Some("camera"), ShadowOp::Update)),
            ),
            (
                "$aws/things/bot1/shadow/name/$package/delete",
                Some(("bot1", Some("$package"), ShadowOp::Delete)),
            ),
            // A thing may be called "name": the classic shadow of thing "name".
            (
                "$aws/things/name/shadow/get",
                Some(("name", None, ShadowOp::Get)),
            ),
            // Response topics are not requests.
            ("$aws/things/bot1/shadow/get/accepted", None),
            ("$aws/things/bot1/shadow/get/rejected", None),
            ("$aws/things/bot1/shadow/update/accepted", None),
            ("$aws/things/bot1/shadow/update/rejected", None),
            ("$aws/things/bot1/shadow/update/delta", None),
            ("$aws/things/bot1/shadow/update/documents", None),
            ("$aws/things/bot1/shadow/delete/accepted", None),
            ("$aws/things/bot1/shadow/name/camera/update/delta", None),
            ("$aws/things/bot1/shadow/name/camera/get/accepted", None),
            // Malformed or unrelated.
            ("$aws/things/bot1/shadow/name/get", None),
            ("$aws/things/bot1/shadow/name//get", None),
            ("$aws/things/bot1/shadow/list", None),
            ("$aws/things/bot1/shadow", None),
            ("$aws/things//shadow/get", None),
            ("$aws/things/bot+1/shadow/get", None),
            ("$aws/things/bot1/jobs/get", None),
            ("aws/things/bot1/shadow/get", None),
            ("$aws/things/bot1/shadow/get/", None),
            ("$aws/things/bot1/shadow/name/bad~name/get", None),
        ];
        for (topic, want) in table {
            let got = parse_request_topic(topic).map(|t| (t.thing, t.shadow_name, t.op));
            assert_eq!(got, *want, "topic {topic}");
        }
    }

    #[test]
    fn response_topics_round_trip() {
        assert_eq!(
            response_topic("bot1", None, ShadowOp::Update, "delta"),
            "$aws/things/bot1/shadow/update/delta"
        );
        assert_eq!(
            response_topic("bot1", Some("cam"), ShadowOp::Get, "accepted"),
            "$aws/things/bot1/shadow/name/cam/get/accepted"
        );
        assert_eq!(
            response_topic("bot1", Some("cam"), ShadowOp::Delete, "rejected"),
            "$aws/things/bot1/shadow/name/cam/delete/rejected"
        );
        let req = request_topic("bot1", Some("cam"), ShadowOp::Update);
        let parsed = parse_request_topic(&req).unwrap();
        assert_eq!(parsed.shadow_name, Some("cam"));
        assert_eq!(parsed.op, ShadowOp::Update);
    }

    #[test]
    fn name_rules() {
        assert!(valid_thing_name("GoPiGo3:robot_1-a"));
        assert!(valid_thing_name(&"a".repeat(128)));
        assert!(!valid_thing_name(&"a".repeat(129)));
        assert!(!valid_thing_name(""));
        assert!(!valid_thing_name("has space"));
        assert!(!valid_thing_name("$dollar"));
        assert!(!valid_thing_name("slash/x"));
        assert!(!valid_thing_name("wild+"));
        assert!(valid_shadow_name("$package"));
        assert!(valid_shadow_name(&"s".repeat(64)));
        assert!(!valid_shadow_name(&"s".repeat(65)));
        assert!(!valid_shadow_name(""));
        assert!(!valid_shadow_name("a/b"));
        assert!(!valid_shadow_name("é"));
    }
}
