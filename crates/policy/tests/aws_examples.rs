//! Table tests built from the example policies of the AWS IoT Core developer
//! guide (https://docs.aws.amazon.com/iot/latest/developerguide/…). Each
//! case names the page it comes from; `DG` below abbreviates that prefix.
//! Region `us-east-1` and account `123456789012` as in the guide.

use gopigo_policy::{arn, evaluate, Context, Decision, PolicyDocument};

use Decision::{Allow, ExplicitDeny, ImplicitDeny};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

// ---- policies, as printed in the guide ------------------------------------

/// DG connect-policy.html, first example.
const CONNECT_CLIENT1: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:client/client1"]}]}"#;

/// DG connect-policy.html, deny client1/client2, allow thing-name client ids.
const CONNECT_DENY_TWO: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Deny","Action":["iot:Connect"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:client/client1",
              "arn:aws:iot:us-east-1:123456789012:client/client2"]},
 {"Effect":"Allow","Action":["iot:Connect"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]}]}"#;

/// DG connect-and-pub.html, registered devices.
const CONNECT_PUB_THING: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Publish"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}"]},
 {"Effect":"Allow","Action":["iot:Connect"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]}]}"#;

/// DG connect-and-pub.html, unregistered devices.
const CONNECT_PUB_CLIENTID: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Publish"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}"]},
 {"Effect":"Allow","Action":["iot:Connect"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:client/client1"]}]}"#;

/// DG pub-sub-policy.html, registered devices: publish under the thing name.
const PUB_THING_PREFIX: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]},
 {"Effect":"Allow","Action":["iot:Publish"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/*"]}]}"#;

/// DG pub-sub-policy.html, registered devices: `room*` topic filters.
const SUB_ROOM: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]},
 {"Effect":"Allow","Action":["iot:Subscribe"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/${iot:Connection.Thing.ThingName}/room*"]},
 {"Effect":"Allow","Action":["iot:Receive"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/room*"]}]}"#;

/// DG pub-sub-policy.html: `+` in a policy is a literal character.
const SUB_PLUS_LITERAL: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Subscribe"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/some/+/topic"]}]}"#;

/// DG pub-sub-policy.html: `*` in a topic filter resource is a wildcard.
const SUB_STAR: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Subscribe"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/some/*/topic"]}]}"#;

/// DG pub-sub-policy.html: "#" is literal too (same section), written
/// here for the `a/#` filter.
const SUB_HASH_LITERAL: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"iot:Subscribe",
  "Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/a/#"}]}"#;

/// DG pub-sub-policy.html, unregistered devices: everything under the client
/// id except `…/bar`.
const PUB_EXCEPT_BAR: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:client/client1",
              "arn:aws:iot:us-east-1:123456789012:client/client2"]},
 {"Effect":"Allow","Action":["iot:Publish"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/*"]},
 {"Effect":"Deny","Action":["iot:Publish"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/bar"]}]}"#;

/// DG pub-sub-policy.html, receive policy examples: subscribe + receive.
const SUB_RECEIVE: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:client/client1"]},
 {"Effect":"Allow","Action":["iot:Subscribe"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/my/topic"]},
 {"Effect":"Allow","Action":["iot:Receive"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/my/topic"]}]}"#;

/// DG pub-sub-policy.html, MQTT over WebSocket with Cognito identities.
const COGNITO: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Publish"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/${cognito-identity.amazonaws.com:sub}"]},
 {"Effect":"Allow","Action":["iot:Connect"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:client/${cognito-identity.amazonaws.com:sub}"]}]}"#;

/// DG basic-policy-variables.html.
const BASIC_VARS: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],
  "Resource":["arn:aws:iot:us-east-1:123451234510:client/${iot:ClientId}"]},
 {"Effect":"Allow","Action":["iot:Publish"],
  "Resource":["arn:aws:iot:us-east-1:123451234510:topic/my/topic/${iot:ClientId}"]}]}"#;

/// DG basic-policy-variables.html: the `+` client id warning.
const SUB_CLIENTID_FILTER: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Subscribe"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/my/${iot:ClientId}/topic"]}]}"#;

/// DG thing-policy-examples.html: connect only when attached.
const THING_ATTACHED: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":["*"],
  "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":["true"]}}}]}"#;

/// DG thing-policy-examples.html: thing type and attribute conditions.
const THING_TYPE_ATTR: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Publish"],
  "Resource":"arn:aws:iot:us-east-1:123456789012:topic/device/stats",
  "Condition":{
    "StringEquals":{"iot:Connection.Thing.Attributes[attributeName]":"attributeValue",
                    "iot:Connection.Thing.ThingTypeName":"Thing_Type_Name"},
    "Bool":{"iot:Connection.Thing.IsAttached":"true"}}}]}"#;

/// DG thing-policy-examples.html: topic prefixed by a thing attribute.
const THING_ATTR_TOPIC: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Publish"],
  "Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.Attributes[attributeName]}/*"}]}"#;

/// DG certificate-policy-examples.html: topic named after the subject CN.
const CERT_CN_TOPIC: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Publish"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Certificate.Subject.CommonName}"]},
 {"Effect":"Allow","Action":["iot:Connect"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]}]}"#;

/// DG certificate-policy-examples.html: topic named after the certificate id.
const CERT_ID_TOPIC: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Publish"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:CertificateId}"]}]}"#;

/// DG certificate-policy-examples.html: `Subject.CommonName.2` = Administrator.
const CERT_CN2_ADMIN: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Publish"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/admin/*"],
  "Condition":{"StringEquals":{"iot:Certificate.Subject.CommonName.2":"Administrator"}}}]}"#;

/// DG certificate-policy-examples.html: any CN is Administrator.
const CERT_CN_LIST_ADMIN: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Publish"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/admin/${iot:Connection.Thing.ThingName}"],
  "Condition":{"ForAnyValue:StringEquals":{"iot:Certificate.Subject.CommonName.List":"Administrator"}}}]}"#;

/// DG cert-policy-variables.html: all organizations must be in the list.
const CERT_ORG_LIST: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Publish"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/my/topic/${iot:ClientId}"],
  "Condition":{"ForAllValues:StringEquals":{
    "iot:Certificate.Subject.Organization.List":["Example Corp","AnyCompany"]}}}]}"#;

/// DG connect-policy.html, persistent sessions: allows `PersistentConnect`.
const PERSISTENT_ALLOWED: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":"*",
  "Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":["PersistentConnect"]}}}]}"#;

/// DG connect-policy.html, persistent sessions: everything but `PersistentConnect`.
const PERSISTENT_DENIED: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":"*"},
 {"Effect":"Deny","Action":["iot:Connect"],"Resource":"*",
  "Condition":{"ForAnyValue:StringEquals":{"iot:ConnectAttributes":["PersistentConnect"]}}}]}"#;

/// DG connect-policy.html, persistent sessions: default features only.
const DEFAULT_FEATURES_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":"*",
  "Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":[]}}}]}"#;

/// DG retained-message-policy-examples.html: connect, publish and retain.
const RETAIN: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:client/device1"]},
 {"Effect":"Allow","Action":["iot:Publish","iot:RetainPublish"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/device/sample/configuration"]}]}"#;

/// DG device-shadow-mqtt.html, /get/accepted example policy (thing name
/// filled in as `robot1`).
const SHADOW_GET_ACCEPTED: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Subscribe"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/things/robot1/shadow/get/accepted"]},
 {"Effect":"Allow","Action":["iot:Receive"],
  "Resource":["arn:aws:iot:us-east-1:123456789012:topic/$aws/things/robot1/shadow/get/accepted"]}]}"#;

/// Shadow access for the connected thing, the pattern of the AWS IoT Device
/// SDK for Embedded C demo policy (demos/shadow/…/aws_iot_policy_example_shadow.json)
/// with the per-topic list folded into `shadow/*` as in DG pub-sub-policy.html.
const SHADOW_OWN_THING: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"iot:Connect",
  "Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
 {"Effect":"Allow","Action":"iot:Subscribe",
  "Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"},
 {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],
  "Resource":"arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"}]}"#;

/// Allow everything (`iot:*` on `*`), as in Pulumi's aws.iot.Policy
/// "PubSubToAnyTopic" example.
const ALLOW_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Action":["iot:*"],"Effect":"Allow","Resource":"*"}]}"#;

/// IAM user guide, reference_policies_variables.html "Special characters":
/// `${*}` is a literal `*`.
const LITERAL_STAR: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"iot:Publish",
  "Resource":"arn:aws:iot:us-east-1:123456789012:topic/odd/${*}/${?}"}]}"#;

/// IAM user guide, reference_policies_elements_notaction.html and
/// …_notresource.html: allow all but Connect, on all but one topic.
const NOT_ACTION_NOT_RESOURCE: &str = r#"{"Version":"2012-10-17","Statement":
 {"Effect":"Allow","NotAction":"iot:Connect",
  "NotResource":"arn:aws:iot:us-east-1:123456789012:topic/secret"}}"#;

/// IAM user guide, reference_policies_condition-keys.html (aws:SourceIp)
/// with DG basic-policy-variables.html: connect only from one network.
const SOURCE_IP: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"iot:Connect","Resource":"*",
  "Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}"#;

// ---- the table --------------------------------------------------------------

struct Case {
    source: &'static str,
    policies: &'static [&'static str],
    action: &'static str,
    /// The part after `arn:aws:iot:us-east-1:123456789012:`.
    resource: &'static str,
    /// Context entries; a key given twice becomes multi-valued.
    ctx: &'static [(&'static str, &'static str)],
    want: Decision,
}

const THING: &[(&str, &str)] = &[
    ("iot:ClientId", "robot1"),
    ("iot:Connection.Thing.ThingName", "robot1"),
    ("iot:Connection.Thing.IsAttached", "true"),
];

const CASES: &[Case] = &[
    Case {
        source: "DG connect-policy.html (client1)",
        policies: &[CONNECT_CLIENT1],
        action: "iot:Connect",
        resource: "client/client1",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "DG connect-policy.html (client1): other id",
        policies: &[CONNECT_CLIENT1],
        action: "iot:Connect",
        resource: "client/client2",
        ctx: &[],
        want: ImplicitDeny,
    },
    Case {
        source: "DG connect-policy.html (client1): action names are case-insensitive",
        policies: &[CONNECT_CLIENT1],
        action: "IOT:CONNECT",
        resource: "client/client1",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "DG connect-policy.html (client1): resource is case-sensitive",
        policies: &[CONNECT_CLIENT1],
        action: "iot:Connect",
        resource: "client/Client1",
        ctx: &[],
        want: ImplicitDeny,
    },
    Case {
        source: "DG connect-policy.html (client1): Publish not granted",
        policies: &[CONNECT_CLIENT1],
        action: "iot:Publish",
        resource: "topic/client1",
        ctx: &[],
        want: ImplicitDeny,
    },
    Case {
        source: "DG connect-policy.html (deny client1/2): denied id",
        policies: &[CONNECT_DENY_TWO],
        action: "iot:Connect",
        resource: "client/client1",
        ctx: &[("iot:Connection.Thing.ThingName", "client1")],
        want: ExplicitDeny,
    },
    Case {
        source: "DG connect-policy.html (deny client1/2): thing name",
        policies: &[CONNECT_DENY_TWO],
        action: "iot:Connect",
        resource: "client/robot1",
        ctx: THING,
        want: Allow,
    },
    Case {
        source: "DG connect-policy.html (deny client1/2): not attached, variable unresolved",
        policies: &[CONNECT_DENY_TWO],
        action: "iot:Connect",
        resource: "client/robot1",
        ctx: &[("iot:ClientId", "robot1")],
        want: ImplicitDeny,
    },
    Case {
        source:
            "DG connect-policy.html (deny client1/2): unresolved variable matches only its own text",
        policies: &[CONNECT_DENY_TWO],
        action: "iot:Connect",
        resource: "client/${iot:Connection.Thing.ThingName}",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "DG connect-and-pub.html (registered)",
        policies: &[CONNECT_PUB_THING],
        action: "iot:Publish",
        resource: "topic/robot1",
        ctx: THING,
        want: Allow,
    },
    Case {
        source: "DG connect-and-pub.html (registered): other thing's topic",
        policies: &[CONNECT_PUB_THING],
        action: "iot:Publish",
        resource: "topic/robot2",
        ctx: THING,
        want: ImplicitDeny,
    },
    Case {
        source: "DG connect-and-pub.html (registered): no subtopics",
        policies: &[CONNECT_PUB_THING],
        action: "iot:Publish",
        resource: "topic/robot1/x",
        ctx: THING,
        want: ImplicitDeny,
    },
    Case {
        source: "DG connect-and-pub.html (unregistered)",
        policies: &[CONNECT_PUB_CLIENTID],
        action: "iot:Publish",
        resource: "topic/client1",
        ctx: &[("iot:ClientId", "client1")],
        want: Allow,
    },
    Case {
        source: "DG connect-and-pub.html (unregistered): client id with * is literal",
        policies: &[CONNECT_PUB_CLIENTID],
        action: "iot:Publish",
        resource: "topic/anything",
        ctx: &[("iot:ClientId", "*")],
        want: ImplicitDeny,
    },
    Case {
        source: "DG connect-and-pub.html (unregistered): client id with * names only topic *",
        policies: &[CONNECT_PUB_CLIENTID],
        action: "iot:Publish",
        resource: "topic/*",
        ctx: &[("iot:ClientId", "*")],
        want: Allow,
    },
    Case {
        source: "DG pub-sub-policy.html (registered, thing prefix)",
        policies: &[PUB_THING_PREFIX],
        action: "iot:Publish",
        resource: "topic/robot1/telemetry/battery",
        ctx: THING,
        want: Allow,
    },
    Case {
        source: "DG pub-sub-policy.html (registered, thing prefix): * matches the empty run",
        policies: &[PUB_THING_PREFIX],
        action: "iot:Publish",
        resource: "topic/robot1/",
        ctx: THING,
        want: Allow,
    },
    Case {
        source: "DG pub-sub-policy.html (registered, thing prefix): bare thing topic",
        policies: &[PUB_THING_PREFIX],
        action: "iot:Publish",
        resource: "topic/robot1",
        ctx: THING,
        want: ImplicitDeny,
    },
    Case {
        source: "DG pub-sub-policy.html (registered, thing prefix): prefix of another name",
        policies: &[PUB_THING_PREFIX],
        action: "iot:Publish",
        resource: "topic/robot10/x",
        ctx: THING,
        want: ImplicitDeny,
    },
    Case {
        source: "DG pub-sub-policy.html (room*): subscribe",
        policies: &[SUB_ROOM],
        action: "iot:Subscribe",
        resource: "topicfilter/robot1/room1",
        ctx: THING,
        want: Allow,
    },
    Case {
        source: "DG pub-sub-policy.html (room*): receive",
        policies: &[SUB_ROOM],
        action: "iot:Receive",
        resource: "topic/robot1/room2",
        ctx: THING,
        want: Allow,
    },
    Case {
        source: "DG pub-sub-policy.html (room*): topicfilter grant is not a topic grant",
        policies: &[SUB_ROOM],
        action: "iot:Subscribe",
        resource: "topic/robot1/room1",
        ctx: THING,
        want: ImplicitDeny,
    },
    Case {
        source: "DG pub-sub-policy.html (room*): publish not granted",
        policies: &[SUB_ROOM],
        action: "iot:Publish",
        resource: "topic/robot1/room1",
        ctx: THING,
        want: ImplicitDeny,
    },
    Case {
        source: "DG pub-sub-policy.html (some/+/topic): exact filter",
        policies: &[SUB_PLUS_LITERAL],
        action: "iot:Subscribe",
        resource: "topicfilter/some/+/topic",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "DG pub-sub-policy.html (some/+/topic): + is not a wildcard",
        policies: &[SUB_PLUS_LITERAL],
        action: "iot:Subscribe",
        resource: "topicfilter/some/x/topic",
        ctx: &[],
        want: ImplicitDeny,
    },
    Case {
        source: "DG pub-sub-policy.html (some/*/topic)",
        policies: &[SUB_STAR],
        action: "iot:Subscribe",
        resource: "topicfilter/some/string1/topic",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "DG pub-sub-policy.html (some/*/topic): * also matches the filter some/+/topic",
        policies: &[SUB_STAR],
        action: "iot:Subscribe",
        resource: "topicfilter/some/+/topic",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "DG pub-sub-policy.html (some/*/topic): * spans levels (IAM globbing)",
        policies: &[SUB_STAR],
        action: "iot:Subscribe",
        resource: "topicfilter/some/a/b/topic",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "DG pub-sub-policy.html (# literal): filter a/#",
        policies: &[SUB_HASH_LITERAL],
        action: "iot:Subscribe",
        resource: "topicfilter/a/#",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "DG pub-sub-policy.html (# literal): filter a/b",
        policies: &[SUB_HASH_LITERAL],
        action: "iot:Subscribe",
        resource: "topicfilter/a/b",
        ctx: &[],
        want: ImplicitDeny,
    },
    Case {
        source: "DG pub-sub-policy.html (except bar): other subtopic",
        policies: &[PUB_EXCEPT_BAR],
        action: "iot:Publish",
        resource: "topic/client1/foo",
        ctx: &[("iot:ClientId", "client1")],
        want: Allow,
    },
    Case {
        source: "DG pub-sub-policy.html (except bar): bar denied",
        policies: &[PUB_EXCEPT_BAR],
        action: "iot:Publish",
        resource: "topic/client1/bar",
        ctx: &[("iot:ClientId", "client1")],
        want: ExplicitDeny,
    },
    Case {
        source: "DG pub-sub-policy.html (except bar): deny wins over another policy's allow",
        policies: &[PUB_EXCEPT_BAR, ALLOW_ALL],
        action: "iot:Publish",
        resource: "topic/client1/bar",
        ctx: &[("iot:ClientId", "client1")],
        want: ExplicitDeny,
    },
    Case {
        source: "DG pub-sub-policy.html (except bar): connect client2",
        policies: &[PUB_EXCEPT_BAR],
        action: "iot:Connect",
        resource: "client/client2",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "DG pub-sub-policy.html (receive policy): receive",
        policies: &[SUB_RECEIVE],
        action: "iot:Receive",
        resource: "topic/my/topic",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "DG pub-sub-policy.html (receive policy): receive elsewhere",
        policies: &[SUB_RECEIVE],
        action: "iot:Receive",
        resource: "topic/my/other",
        ctx: &[],
        want: ImplicitDeny,
    },
    Case {
        source: "DG pub-sub-policy.html (Cognito over WebSocket)",
        policies: &[COGNITO],
        action: "iot:Connect",
        resource: "client/us-east-1:abcd-1234",
        ctx: &[("cognito-identity.amazonaws.com:sub", "us-east-1:abcd-1234")],
        want: Allow,
    },
    Case {
        source: "DG basic-policy-variables.html (other account's ARN)",
        policies: &[BASIC_VARS],
        action: "iot:Publish",
        resource: "topic/my/topic/dev1",
        ctx: &[("iot:ClientId", "dev1")],
        want: ImplicitDeny,
    },
    Case {
        source: "DG basic-policy-variables.html (+ as client id: filter my/+/topic)",
        policies: &[SUB_CLIENTID_FILTER],
        action: "iot:Subscribe",
        resource: "topicfilter/my/+/topic",
        ctx: &[("iot:ClientId", "+")],
        want: Allow,
    },
    Case {
        source: "DG basic-policy-variables.html (+ as client id: still not my/x/topic)",
        policies: &[SUB_CLIENTID_FILTER],
        action: "iot:Subscribe",
        resource: "topicfilter/my/x/topic",
        ctx: &[("iot:ClientId", "+")],
        want: ImplicitDeny,
    },
    Case {
        source: "DG thing-policy-examples.html (IsAttached): attached",
        policies: &[THING_ATTACHED],
        action: "iot:Connect",
        resource: "client/robot1",
        ctx: THING,
        want: Allow,
    },
    Case {
        source: "DG thing-policy-examples.html (IsAttached): not attached",
        policies: &[THING_ATTACHED],
        action: "iot:Connect",
        resource: "client/robot1",
        ctx: &[("iot:Connection.Thing.IsAttached", "false")],
        want: ImplicitDeny,
    },
    Case {
        source: "DG thing-policy-examples.html (IsAttached): key absent",
        policies: &[THING_ATTACHED],
        action: "iot:Connect",
        resource: "client/robot1",
        ctx: &[],
        want: ImplicitDeny,
    },
    Case {
        source: "DG thing-policy-examples.html (type + attribute)",
        policies: &[THING_TYPE_ATTR],
        action: "iot:Publish",
        resource: "topic/device/stats",
        ctx: &[
            (
                "iot:Connection.Thing.Attributes[attributeName]",
                "attributeValue",
            ),
            ("iot:Connection.Thing.ThingTypeName", "Thing_Type_Name"),
            ("iot:Connection.Thing.IsAttached", "true"),
        ],
        want: Allow,
    },
    Case {
        source: "DG thing-policy-examples.html (type + attribute): wrong type",
        policies: &[THING_TYPE_ATTR],
        action: "iot:Publish",
        resource: "topic/device/stats",
        ctx: &[
            (
                "iot:Connection.Thing.Attributes[attributeName]",
                "attributeValue",
            ),
            ("iot:Connection.Thing.ThingTypeName", "Other"),
            ("iot:Connection.Thing.IsAttached", "true"),
        ],
        want: ImplicitDeny,
    },
    Case {
        source: "DG thing-policy-examples.html (attribute topic)",
        policies: &[THING_ATTR_TOPIC],
        action: "iot:Publish",
        resource: "topic/blue/x",
        ctx: &[("iot:Connection.Thing.Attributes[attributeName]", "blue")],
        want: Allow,
    },
    Case {
        source: "DG thing-policy-examples.html (attribute topic): not associated, access denied",
        policies: &[THING_ATTR_TOPIC],
        action: "iot:Publish",
        resource: "topic/blue/x",
        ctx: &[],
        want: ImplicitDeny,
    },
    Case {
        source: "DG certificate-policy-examples.html (subject CN topic)",
        policies: &[CERT_CN_TOPIC],
        action: "iot:Publish",
        resource: "topic/robot1.example.com",
        ctx: &[("iot:Certificate.Subject.CommonName", "robot1.example.com")],
        want: Allow,
    },
    Case {
        source: "DG cert-policy-variables.html limitations: CN with a wildcard is not substituted",
        policies: &[CERT_CN_TOPIC],
        action: "iot:Publish",
        resource: "topic/dev*",
        ctx: &[("iot:Certificate.Subject.CommonName", "dev*")],
        want: ImplicitDeny,
    },
    Case {
        source: "DG certificate-policy-examples.html (certificate id topic)",
        policies: &[CERT_ID_TOPIC],
        action: "iot:Publish",
        resource: "topic/3f2a",
        ctx: &[("iot:CertificateId", "3f2a")],
        want: Allow,
    },
    Case {
        source: "DG certificate-policy-examples.html (CommonName.2 = Administrator)",
        policies: &[CERT_CN2_ADMIN],
        action: "iot:Publish",
        resource: "topic/admin/reboot",
        ctx: &[
            ("iot:Certificate.Subject.CommonName", "dev"),
            ("iot:Certificate.Subject.CommonName", "ops"),
            ("iot:Certificate.Subject.CommonName", "Administrator"),
        ],
        want: Allow,
    },
    Case {
        source: "DG certificate-policy-examples.html (CommonName.2 = Administrator): only one CN",
        policies: &[CERT_CN2_ADMIN],
        action: "iot:Publish",
        resource: "topic/admin/reboot",
        ctx: &[("iot:Certificate.Subject.CommonName", "Administrator")],
        want: ImplicitDeny,
    },
    Case {
        source: "DG certificate-policy-examples.html (any CN Administrator)",
        policies: &[CERT_CN_LIST_ADMIN],
        action: "iot:Publish",
        resource: "topic/admin/robot1",
        ctx: &[
            ("iot:Connection.Thing.ThingName", "robot1"),
            ("iot:Certificate.Subject.CommonName", "dev"),
            ("iot:Certificate.Subject.CommonName", "Administrator"),
        ],
        want: Allow,
    },
    Case {
        source: "DG cert-policy-variables.html (Organization.List): all listed",
        policies: &[CERT_ORG_LIST],
        action: "iot:Publish",
        resource: "topic/my/topic/c1",
        ctx: &[
            ("iot:ClientId", "c1"),
            ("iot:Certificate.Subject.Organization", "Example Corp"),
            ("iot:Certificate.Subject.Organization", "AnyCompany"),
        ],
        want: Allow,
    },
    Case {
        source: "DG cert-policy-variables.html (Organization.List): one unlisted",
        policies: &[CERT_ORG_LIST],
        action: "iot:Publish",
        resource: "topic/my/topic/c1",
        ctx: &[
            ("iot:ClientId", "c1"),
            ("iot:Certificate.Subject.Organization", "Example Corp"),
            ("iot:Certificate.Subject.Organization", "Evil Corp"),
        ],
        want: ImplicitDeny,
    },
    Case {
        source: "DG connect-policy.html (persistent sessions): PersistentConnect allowed",
        policies: &[PERSISTENT_ALLOWED],
        action: "iot:Connect",
        resource: "client/c1",
        ctx: &[("iot:ConnectAttributes", "PersistentConnect")],
        want: Allow,
    },
    Case {
        source: "DG connect-policy.html (persistent sessions): LastWill not allowed",
        policies: &[PERSISTENT_ALLOWED],
        action: "iot:Connect",
        resource: "client/c1",
        ctx: &[
            ("iot:ConnectAttributes", "PersistentConnect"),
            ("iot:ConnectAttributes", "LastWill"),
        ],
        want: ImplicitDeny,
    },
    Case {
        source: "DG connect-policy.html (persistent sessions): PersistentConnect denied",
        policies: &[PERSISTENT_DENIED],
        action: "iot:Connect",
        resource: "client/c1",
        ctx: &[
            ("iot:ConnectAttributes", "LastWill"),
            ("iot:ConnectAttributes", "PersistentConnect"),
        ],
        want: ExplicitDeny,
    },
    Case {
        source: "DG connect-policy.html (persistent sessions): clean session allowed",
        policies: &[PERSISTENT_DENIED],
        action: "iot:Connect",
        resource: "client/c1",
        ctx: &[("iot:ConnectAttributes", "LastWill")],
        want: Allow,
    },
    Case {
        source: "DG connect-policy.html (default features only): no attributes",
        policies: &[DEFAULT_FEATURES_ONLY],
        action: "iot:Connect",
        resource: "client/c1",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "DG connect-policy.html (default features only): LastWill",
        policies: &[DEFAULT_FEATURES_ONLY],
        action: "iot:Connect",
        resource: "client/c1",
        ctx: &[("iot:ConnectAttributes", "LastWill")],
        want: ImplicitDeny,
    },
    Case {
        source: "DG retained-message-policy-examples.html: RetainPublish",
        policies: &[RETAIN],
        action: "iot:RetainPublish",
        resource: "topic/device/sample/configuration",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "DG retained-message-policy-examples.html: RetainPublish elsewhere",
        policies: &[RETAIN],
        action: "iot:RetainPublish",
        resource: "topic/device/sample/other",
        ctx: &[],
        want: ImplicitDeny,
    },
    Case {
        source: "DG device-shadow-mqtt.html (/get/accepted): subscribe",
        policies: &[SHADOW_GET_ACCEPTED],
        action: "iot:Subscribe",
        resource: "topicfilter/$aws/things/robot1/shadow/get/accepted",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "DG device-shadow-mqtt.html (/get/accepted): wildcard filter not granted",
        policies: &[SHADOW_GET_ACCEPTED],
        action: "iot:Subscribe",
        resource: "topicfilter/$aws/things/robot1/shadow/#",
        ctx: &[],
        want: ImplicitDeny,
    },
    Case {
        source: "Embedded C SDK shadow demo policy: own shadow delta",
        policies: &[SHADOW_OWN_THING],
        action: "iot:Subscribe",
        resource: "topicfilter/$aws/things/robot1/shadow/update/delta",
        ctx: THING,
        want: Allow,
    },
    Case {
        source: "Embedded C SDK shadow demo policy: named shadow",
        policies: &[SHADOW_OWN_THING],
        action: "iot:Publish",
        resource: "topic/$aws/things/robot1/shadow/name/cam/update",
        ctx: THING,
        want: Allow,
    },
    Case {
        source: "Embedded C SDK shadow demo policy: another thing's shadow",
        policies: &[SHADOW_OWN_THING],
        action: "iot:Publish",
        resource: "topic/$aws/things/robot2/shadow/update",
        ctx: THING,
        want: ImplicitDeny,
    },
    Case {
        source: "Pulumi aws.iot.Policy PubSubToAnyTopic (iot:* on *)",
        policies: &[ALLOW_ALL],
        action: "iot:UpdateThingShadow",
        resource: "thing/robot1",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "IAM reference_policies_variables.html special characters: ${*} literal",
        policies: &[LITERAL_STAR],
        action: "iot:Publish",
        resource: "topic/odd/*/?",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "IAM reference_policies_variables.html special characters: ${*} is no wildcard",
        policies: &[LITERAL_STAR],
        action: "iot:Publish",
        resource: "topic/odd/x/y",
        ctx: &[],
        want: ImplicitDeny,
    },
    Case {
        source: "IAM NotAction/NotResource: other action, other topic",
        policies: &[NOT_ACTION_NOT_RESOURCE],
        action: "iot:Publish",
        resource: "topic/open",
        ctx: &[],
        want: Allow,
    },
    Case {
        source: "IAM NotAction/NotResource: excluded topic",
        policies: &[NOT_ACTION_NOT_RESOURCE],
        action: "iot:Publish",
        resource: "topic/secret",
        ctx: &[],
        want: ImplicitDeny,
    },
    Case {
        source: "IAM NotAction/NotResource: excluded action",
        policies: &[NOT_ACTION_NOT_RESOURCE],
        action: "iot:Connect",
        resource: "client/c1",
        ctx: &[],
        want: ImplicitDeny,
    },
    Case {
        source: "IAM aws:SourceIp with IpAddress: inside",
        policies: &[SOURCE_IP],
        action: "iot:Connect",
        resource: "client/c1",
        ctx: &[("aws:SourceIp", "203.0.113.7")],
        want: Allow,
    },
    Case {
        source: "IAM aws:SourceIp with IpAddress: outside",
        policies: &[SOURCE_IP],
        action: "iot:Connect",
        resource: "client/c1",
        ctx: &[("aws:SourceIp", "198.51.100.7")],
        want: ImplicitDeny,
    },
    Case {
        source: "default deny: no policies at all",
        policies: &[],
        action: "iot:Connect",
        resource: "client/c1",
        ctx: &[],
        want: ImplicitDeny,
    },
    Case {
        source: "union of policies: connect from one, publish from another",
        policies: &[CONNECT_CLIENT1, CONNECT_PUB_CLIENTID],
        action: "iot:Publish",
        resource: "topic/client1",
        ctx: &[("iot:ClientId", "client1")],
        want: Allow,
    },
];

fn context(entries: &[(&str, &str)]) -> Context {
    let mut ctx = Context::new();
    let mut keys: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
    keys.dedup();
    for key in keys {
        let values: Vec<String> = entries
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
            .collect();
        if values.len() == 1 {
            ctx.set(key, values[0].clone());
        } else {
            ctx.set_multi(key, values);
        }
    }
    ctx
}

#[test]
fn aws_example_policies() {
    assert!(CASES.len() >= 40, "{} cases", CASES.len());
    let mut failures = Vec::new();
    for case in CASES {
        let docs: Vec<PolicyDocument> = case
            .policies
            .iter()
            .map(|p| {
                PolicyDocument::parse(p)
                    .unwrap_or_else(|e| panic!("{}: policy does not parse: {e}", case.source))
            })
            .collect();
        let ctx = context(case.ctx);
        let got = evaluate(
            &docs,
            case.action,
            &arn(REGION, ACCOUNT, case.resource),
            &ctx,
        );
        if got != case.want {
            failures.push(format!(
                "{}: {} on {}: got {got:?}, want {:?}",
                case.source, case.action, case.resource, case.want
            ));
        }
        assert_eq!(got.is_allowed(), case.want == Allow);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---- malformed documents ------------------------------------------------------

#[test]
fn malformed_documents_name_the_element_at_fault() {
    let big_resource = format!(
        "arn:aws:iot:us-east-1:123456789012:topic/{}",
        "x".repeat(2100)
    );
    let too_long = format!(
        r#"{{"Statement":{{"Effect":"Allow","Action":"iot:Publish","Resource":"{big_resource}"}}}}"#
    );
    // (document, text the error message must contain)
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "empty"),
        ("   \n ".into(), "empty"),
        (too_long, "2048"),
        ("{not json".into(), "not valid JSON"),
        ("[]".into(), "JSON object"),
        (r#"{"Version":"2012-10-17"}"#.into(), "Statement: is missing"),
        (r#"{"Version":"2019-01-01","Statement":[]}"#.into(), "Version"),
        (r#"{"Version":20121017,"Statement":[]}"#.into(), "Version"),
        (r#"{"Statement":[]}"#.into(), "Statement: must not be an empty list"),
        (r#"{"Statement":"x"}"#.into(), "Statement: must be an object or a list"),
        (r#"{"Statment":[]}"#.into(), "Statment"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"},"x"]}"#.into(),
            "Statement[1]: must be an object"),
        (r#"{"Statement":[{"Action":"iot:Connect","Resource":"*"}]}"#.into(), "Statement[0].Effect"),
        (r#"{"Statement":[{"Effect":"allow","Action":"iot:Connect","Resource":"*"}]}"#.into(),
            "Statement[0].Effect"),
        (r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#.into(), "Statement[0].Action: is missing"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Connect"}]}"#.into(),
            "Statement[0].Resource: is missing"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Connect","NotAction":"iot:Publish","Resource":"*"}]}"#.into(),
            "not both"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*","NotResource":"*"}]}"#.into(),
            "Statement[0].Resource"),
        (r#"{"Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}"#.into(),
            "Statement[0].Action: must not be an empty list"),
        (r#"{"Statement":[{"Effect":"Allow","Action":7,"Resource":"*"}]}"#.into(), "Statement[0].Action"),
        (r#"{"Statement":[{"Effect":"Allow","Action":["iot:Connect",3],"Resource":"*"}]}"#.into(),
            "Statement[0].Action[1]"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#.into(),
            "Statement[0].Action[0]"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"Publish","Resource":"*"}]}"#.into(),
            "Statement[0].Action[0]"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:","Resource":"*"}]}"#.into(),
            "Statement[0].Action[0]"),
        (r#"{"Statement":[{"Effect":"Allow","NotAction":"iot:Pub/lish","Resource":"*"}]}"#.into(),
            "Statement[0].NotAction[0]"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"topic/a"}]}"#.into(),
            "Statement[0].Resource[0]"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":["*",""]}]}"#.into(),
            "Statement[0].Resource[1]"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Principal":"*"}]}"#.into(),
            "Statement[0].Principal"),
        (r#"{"Statement":[{"Sid":1,"Effect":"Allow","Action":"iot:Publish","Resource":"*"}]}"#.into(),
            "Statement[0].Sid"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":"x"}]}"#.into(),
            "Statement[0].Condition"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"NumericLessThan":{"k":"1"}}}]}"#.into(),
            "Statement[0].Condition.NumericLessThan"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"ForSomeValues:StringEquals":{"k":"1"}}}]}"#.into(),
            "Statement[0].Condition.ForSomeValues:StringEquals"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"StringEquals":"k"}}]}"#.into(),
            "Statement[0].Condition.StringEquals"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"StringEquals":{}}}]}"#.into(),
            "Statement[0].Condition.StringEquals: names no condition key"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"StringEquals":{"k":{"a":1}}}}]}"#.into(),
            "Statement[0].Condition.StringEquals.k"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"Bool":{"k":"yes"}}}]}"#.into(),
            "Statement[0].Condition.Bool.k"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}}]}"#.into(),
            "Statement[0].Condition.IpAddress.aws:SourceIp"),
        (r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"ForAnyValue:Null":{"k":"true"}}}]}"#.into(),
            "Statement[0].Condition.ForAnyValue:Null"),
    ];
    for (doc, needle) in &cases {
        match PolicyDocument::parse(doc) {
            Ok(_) => panic!("accepted a malformed policy (expected {needle:?}): {doc}"),
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(needle),
                    "error {msg:?} does not mention {needle:?} for {doc}"
                );
            }
        }
    }
}

#[test]
fn accepted_shapes() {
    let ok = [
        // No Version, Statement as a single object.
        r#"{"Statement":{"Effect":"Allow","Action":"iot:Publish","Resource":"*"}}"#,
        // Old version, Id, Sid, glob actions, NotResource, IfExists.
        r#"{"Version":"2008-10-17","Id":"p","Statement":[{"Sid":"s","Effect":"Deny","Action":["iot:Pub*","*"],
            "NotResource":"arn:aws:iot:*:*:topic/x",
            "Condition":{"StringLikeIfExists":{"iot:ClientId":"a*"},"ForAllValues:StringNotEqualsIfExists":{"k":["a"]}}}]}"#,
        // Boolean and numeric JSON condition values, ArnEquals from the
        // guide's LastWillTopic example.
        r#"{"Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*",
            "Condition":{"Bool":{"aws:SecureTransport":true},"StringEquals":{"n":5},
            "ArnEquals":{"iot:LastWillTopic":"arn:aws:iot:*:*:topic/my/lastwill/*"}}}]}"#,
    ];
    for doc in ok {
        if let Err(e) = PolicyDocument::parse(doc) {
            panic!("refused a valid policy: {e}\n{doc}");
        }
    }
    // Exactly 2048 characters without whitespace is still accepted; padding
    // with whitespace does not count.
    let head = r#"{"Statement":{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:r:a:topic/"#;
    let tail = r#""}}"#;
    let pad = 2048 - head.len() - tail.len();
    let doc = format!("{head}{}{tail}      \n\n", "y".repeat(pad));
    assert!(PolicyDocument::parse(&doc).is_ok());
    let doc = format!("{head}{}{tail}", "y".repeat(pad + 1));
    assert!(matches!(
        PolicyDocument::parse(&doc),
        Err(gopigo_policy::PolicyError::TooLong { chars: 2049 })
    ));
}

#[test]
fn arn_helper() {
    assert_eq!(
        arn("eu-west-1", "000000000000", "topicfilter/a/#"),
        "arn:aws:iot:eu-west-1:000000000000:topicfilter/a/#"
    );
}
