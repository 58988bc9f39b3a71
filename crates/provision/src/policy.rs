//! The fleet's two policy templates: one policy per role serves every robot
//! (or controller), because each statement names the connection's own thing
//! through `${iot:Connection.Thing.ThingName}`.
//!
//! Least privilege: no `iot:*`, no bare `*` resource; every resource is a
//! full ARN in the fleet's region and account.

use std::fmt;
use std::str::FromStr;

use serde_json::{json, Value};

use crate::ProvisionError;

/// The policy variable AWS IoT resolves to the connection's thing name
/// (only when the MQTT client id equals the attached thing's name).
pub const THING_VAR: &str = "${iot:Connection.Thing.ThingName}";

/// What a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A robot: its own topics, shadow and jobs only.
    Robot,
    /// A controller (dashboard, `gopigo drive`, detector): commands to every
    /// robot, telemetry, status, results, detections and shadows of all.
    Controller,
}

impl Role {
    /// The fleet policy this role's certificates get.
    pub fn policy_name(self) -> &'static str {
        match self {
            Role::Robot => "gopigo-robot",
            Role::Controller => "gopigo-controller",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Robot => "robot",
            Role::Controller => "controller",
        })
    }
}

impl FromStr for Role {
    type Err = ProvisionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "robot" => Ok(Role::Robot),
            "controller" => Ok(Role::Controller),
            other => Err(ProvisionError::Invalid(format!(
                "unknown role {other:?}: use \"robot\" or \"controller\""
            ))),
        }
    }
}

/// The policy document for `role`, with ARNs in `region` and `account`
/// (and the region's partition: `arn:aws-cn:` in China, `arn:aws-us-gov:`
/// in GovCloud).
pub fn policy_document(role: Role, region: &str, account: &str) -> Value {
    let arn = |resource: &str| gopigo_policy::arn(region, account, resource);
    let statements = match role {
        Role::Robot => robot_statements(&arn),
        Role::Controller => controller_statements(&arn),
    };
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// A robot: its own client id, its own topics, shadow and jobs, its
/// retained status.
fn robot_statements(arn: &dyn Fn(&str) -> String) -> Value {
    let me = THING_VAR;
    json!([
        {
            "Sid": "ConnectAsOwnThing",
            "Effect": "Allow",
            "Action": "iot:Connect",
            "Resource": arn(&format!("client/{me}"))
        },
        {
            "Sid": "OwnTopicsShadowAndJobs",
            "Effect": "Allow",
            "Action": ["iot:Publish", "iot:Receive"],
            "Resource": [
                arn(&format!("topic/gopigo/{me}/*")),
                arn(&format!("topic/$aws/things/{me}/shadow/*")),
                arn(&format!("topic/$aws/things/{me}/jobs/*"))
            ]
        },
        {
            "Sid": "SubscribeOwnTopicsShadowAndJobs",
            "Effect": "Allow",
            "Action": "iot:Subscribe",
            "Resource": [
                arn(&format!("topicfilter/gopigo/{me}/*")),
                arn(&format!("topicfilter/$aws/things/{me}/shadow/*")),
                arn(&format!("topicfilter/$aws/things/{me}/jobs/*"))
            ]
        },
        {
            "Sid": "RetainOwnStatus",
            "Effect": "Allow",
            "Action": "iot:RetainPublish",
            "Resource": arn(&format!("topic/gopigo/{me}/status"))
        }
    ])
}

/// A controller: commands to, and everything read from, every robot; its
/// own check topic.
fn controller_statements(arn: &dyn Fn(&str) -> String) -> Value {
    let me = THING_VAR;
    json!([
        {
            "Sid": "Connect",
            "Effect": "Allow",
            "Action": "iot:Connect",
            "Resource": arn(&format!("client/{me}"))
        },
        {
            "Sid": "Ask",
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": [
                arn("topic/gopigo/*/cmd"),
                arn("topic/gopigo/*/video/request"),
                arn("topic/$aws/things/*/shadow/update"),
                arn("topic/$aws/things/*/shadow/get")
            ]
        },
        {
            "Sid": "Share",
            "Effect": "Allow",
            "Action": ["iot:Publish", "iot:Receive"],
            "Resource": [
                arn("topic/gopigo/*/detections"),
                arn(&format!("topic/gopigo/{me}/check"))
            ]
        },
        {
            "Sid": "Read",
            "Effect": "Allow",
            "Action": "iot:Receive",
            "Resource": [
                arn("topic/gopigo/*/telemetry"),
                arn("topic/gopigo/*/status"),
                arn("topic/gopigo/*/cmd/result"),
                arn("topic/gopigo/*/video"),
                arn("topic/$aws/things/*/shadow/*"),
                arn("topic/$aws/events/presence/*")
            ]
        },
        {
            "Sid": "Subscribe",
            "Effect": "Allow",
            "Action": "iot:Subscribe",
            // Subscribing grants nothing by itself: `Read` (iot:Receive) is
            // what lets a message through, so these filters can be broad and
            // the policy stays under AWS's 2,048 characters in every partition.
            "Resource": [
                arn("topicfilter/gopigo/*"),
                arn("topicfilter/$aws/things/*/shadow/*"),
                arn("topicfilter/$aws/events/presence/*")
            ]
        }
    ])
}

/// [`policy_document`] as indented JSON text.
pub fn policy_text(role: Role, region: &str, account: &str) -> String {
    serde_json::to_string_pretty(&policy_document(role, region, account)).unwrap_or_default()
}

/// The policy document for `role` as a Terraform `templatefile` template:
/// ARNs read `arn:${partition}:iot:${region}:${account_id}:...` and the
/// policy variable is escaped as `$${iot:Connection.Thing.ThingName}`.
/// `deploy/terraform/policies/ROLE.json.tftpl` are this, checked in.
pub fn policy_template(role: Role) -> String {
    const REGION: &str = "us-east-1";
    const ACCOUNT: &str = "000000000000";
    let text = policy_text(role, REGION, ACCOUNT).replace("${", "$${");
    let prefix = format!("arn:aws:iot:{REGION}:{ACCOUNT}:");
    format!(
        "{}\n",
        text.replace(&prefix, "arn:${partition}:iot:${region}:${account_id}:")
    )
}

/// Whether two policy documents say the same thing (JSON equality, so
/// whitespace and key order do not count as a change).
pub fn same_document(a: &str, b: &Value) -> bool {
    serde_json::from_str::<Value>(a).is_ok_and(|a| &a == b)
}

/// Splits `arn:aws:iot:REGION:ACCOUNT:...` into region and account.
pub fn region_account_of_arn(arn: &str) -> Option<(String, String)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some("iot"), Some(region), Some(account), Some(_)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if region.is_empty() || account.is_empty() {
        return None;
    }
    Some((region.to_string(), account.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gopigo_policy::{keys, Context, PolicyDocument};

    const REGION: &str = "eu-west-1";
    const ACCOUNT: &str = "123456789012";

    fn doc(role: Role) -> PolicyDocument {
        PolicyDocument::parse(&policy_document(role, REGION, ACCOUNT).to_string()).unwrap()
    }

    fn ctx(thing: &str) -> Context {
        Context::new()
            .with(keys::CLIENT_ID, thing)
            .with(keys::THING_NAME, thing)
    }

    fn allowed(d: &PolicyDocument, thing: &str, action: &str, resource: &str) -> bool {
        let arn = format!("arn:aws:iot:{REGION}:{ACCOUNT}:{resource}");
        d.evaluate(action, &arn, &ctx(thing)).is_allowed()
    }

    /// AWS counts a policy's length without whitespace.
    fn aws_length(v: &Value) -> usize {
        v.to_string().chars().filter(|c| !c.is_whitespace()).count()
    }

    #[test]
    fn every_policy_fits_aws_limit_in_the_longest_region_of_each_partition() {
        // The longest region names in botocore 1.43.11's endpoints.json:
        // us-isof-south-1 (15 characters, all partitions) and the longest of
        // the partitions we name: cn-northwest-1, us-gov-west-1; and
        // us-gov-xxxxxx-1, a made-up 15-character GovCloud name, for the
        // longest ARN prefix with the longest region.
        let mut worst = (0, "", Role::Robot);
        for region in [
            "us-isof-south-1",
            "ap-southeast-5",
            "cn-northwest-1",
            "us-gov-west-1",
            "us-gov-xxxxxx-1",
        ] {
            for role in [Role::Robot, Role::Controller] {
                let v = policy_document(role, region, "999999999999");
                let n = aws_length(&v);
                assert!(
                    n <= gopigo_policy::MAX_POLICY_CHARS,
                    "{role} in {region}: {n} characters"
                );
                // AWS's parser (ours) accepts it too
                PolicyDocument::parse(&v.to_string()).unwrap();
                if n > worst.0 {
                    worst = (n, region, role);
                }
            }
        }
        println!(
            "longest policy: {} characters ({} in {})",
            worst.0, worst.2, worst.1
        );
    }

    #[test]
    fn arns_follow_the_partition_of_the_region() {
        for (region, prefix) in [
            ("cn-north-1", "arn:aws-cn:iot:cn-north-1:123456789012:"),
            (
                "us-gov-west-1",
                "arn:aws-us-gov:iot:us-gov-west-1:123456789012:",
            ),
            ("eu-west-1", "arn:aws:iot:eu-west-1:123456789012:"),
        ] {
            for role in [Role::Robot, Role::Controller] {
                let v = policy_document(role, region, ACCOUNT);
                let text = v.to_string();
                let arns = text.matches("arn:").count();
                assert!(arns > 3);
                assert_eq!(
                    text.matches(prefix).count(),
                    arns,
                    "{role} {region}: {text}"
                );
                // and the broker's ARNs in that partition match them
                let d = PolicyDocument::parse(&text).unwrap();
                let client = gopigo_policy::arn(region, ACCOUNT, "client/r1");
                assert!(d.evaluate("iot:Connect", &client, &ctx("r1")).is_allowed());
            }
        }
    }

    #[test]
    fn terraform_uses_the_same_policies() {
        // deploy/terraform reads these files through templatefile(); they
        // must be what `gopigo policy --role R --template` prints.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/terraform/policies");
        for role in [Role::Robot, Role::Controller] {
            let path = dir.join(format!("{role}.json.tftpl"));
            let checked_in = std::fs::read_to_string(&path).unwrap();
            assert_eq!(
                checked_in,
                policy_template(role),
                "{} differs from `gopigo policy --role {role} --template`; regenerate it",
                path.display()
            );
            // Filled in as Terraform does, it is the document provision writes.
            let filled = checked_in
                .replace("${partition}", "aws-us-gov")
                .replace("${region}", "us-gov-west-1")
                .replace("${account_id}", ACCOUNT)
                .replace("$${", "${");
            assert!(same_document(
                &filled,
                &policy_document(role, "us-gov-west-1", ACCOUNT)
            ));
        }
    }

    #[test]
    fn no_wildcard_action_or_resource() {
        for role in [Role::Robot, Role::Controller] {
            let v = policy_document(role, REGION, ACCOUNT);
            for st in v["Statement"].as_array().unwrap() {
                let actions: Vec<&str> = match &st["Action"] {
                    Value::String(s) => vec![s],
                    Value::Array(a) => a.iter().map(|x| x.as_str().unwrap()).collect(),
                    _ => panic!(),
                };
                assert!(
                    actions.iter().all(|a| !a.contains('*')),
                    "{role}: {actions:?}"
                );
                let resources: Vec<&str> = match &st["Resource"] {
                    Value::String(s) => vec![s],
                    Value::Array(a) => a.iter().map(|x| x.as_str().unwrap()).collect(),
                    _ => panic!(),
                };
                for r in resources {
                    assert!(
                        r.starts_with(&format!("arn:aws:iot:{REGION}:{ACCOUNT}:")),
                        "{r}"
                    );
                }
            }
        }
    }

    #[test]
    fn robot_policy_table() {
        let d = doc(Role::Robot);
        // (thing, action, resource, allowed)
        let cases = [
            ("r1", "iot:Connect", "client/r1", true),
            ("r1", "iot:Connect", "client/r2", false),
            ("r1", "iot:Publish", "topic/gopigo/r1/telemetry", true),
            ("r1", "iot:Publish", "topic/gopigo/r2/telemetry", false),
            ("r1", "iot:Publish", "topic/gopigo/r1/check", true),
            ("r1", "iot:Subscribe", "topicfilter/gopigo/r1/cmd", true),
            ("r1", "iot:Subscribe", "topicfilter/gopigo/r2/cmd", false),
            ("r1", "iot:Subscribe", "topicfilter/gopigo/+/cmd", false),
            ("r1", "iot:Subscribe", "topicfilter/#", false),
            ("r1", "iot:Receive", "topic/gopigo/r1/cmd", true),
            ("r1", "iot:Receive", "topic/gopigo/r2/cmd", false),
            // video: its own frames out, its own viewers' requests in
            ("r1", "iot:Publish", "topic/gopigo/r1/video", true),
            ("r1", "iot:Publish", "topic/gopigo/r2/video", false),
            ("r1", "iot:Receive", "topic/gopigo/r1/video/request", true),
            ("r1", "iot:Receive", "topic/gopigo/r2/video", false),
            (
                "r1",
                "iot:Subscribe",
                "topicfilter/gopigo/r1/video/request",
                true,
            ),
            ("r1", "iot:Subscribe", "topicfilter/gopigo/r2/video", false),
            (
                "r1",
                "iot:Publish",
                "topic/$aws/things/r1/shadow/update",
                true,
            ),
            (
                "r1",
                "iot:Publish",
                "topic/$aws/things/r2/shadow/update",
                false,
            ),
            (
                "r1",
                "iot:Subscribe",
                "topicfilter/$aws/things/r1/shadow/update/delta",
                true,
            ),
            ("r1", "iot:RetainPublish", "topic/gopigo/r1/status", true),
            // the status carries the camera token: another robot may not read it
            ("r1", "iot:Receive", "topic/gopigo/r1/status", true),
            ("r2", "iot:Receive", "topic/gopigo/r1/status", false),
            ("r2", "iot:Subscribe", "topicfilter/gopigo/r1/status", false),
            ("r2", "iot:Subscribe", "topicfilter/gopigo/+/status", false),
            (
                "r1",
                "iot:RetainPublish",
                "topic/gopigo/r1/telemetry",
                false,
            ),
            ("r1", "iot:RetainPublish", "topic/gopigo/r2/status", false),
            ("r1", "iot:UpdateThingShadow", "thing/r1", false),
            // its own jobs (over-the-air updates), never another robot's
            (
                "r1",
                "iot:Publish",
                "topic/$aws/things/r1/jobs/start-next",
                true,
            ),
            (
                "r1",
                "iot:Publish",
                "topic/$aws/things/r1/jobs/j1/update",
                true,
            ),
            (
                "r1",
                "iot:Receive",
                "topic/$aws/things/r1/jobs/notify-next",
                true,
            ),
            (
                "r1",
                "iot:Subscribe",
                "topicfilter/$aws/things/r1/jobs/notify-next",
                true,
            ),
            (
                "r1",
                "iot:Publish",
                "topic/$aws/things/r2/jobs/j1/update",
                false,
            ),
            (
                "r1",
                "iot:Receive",
                "topic/$aws/things/r2/jobs/notify-next",
                false,
            ),
            (
                "r1",
                "iot:Subscribe",
                "topicfilter/$aws/things/+/jobs/notify-next",
                false,
            ),
        ];
        for (thing, action, resource, want) in cases {
            assert_eq!(
                allowed(&d, thing, action, resource),
                want,
                "{thing} {action} {resource}"
            );
        }
    }

    #[test]
    fn controller_policy_table() {
        let d = doc(Role::Controller);
        let cases = [
            ("ctl", "iot:Connect", "client/ctl", true),
            ("ctl", "iot:Connect", "client/r1", false),
            ("ctl", "iot:Publish", "topic/gopigo/r1/cmd", true),
            ("ctl", "iot:Publish", "topic/gopigo/r1/telemetry", false),
            ("ctl", "iot:Publish", "topic/gopigo/r1/status", false),
            ("ctl", "iot:Publish", "topic/gopigo/r1/detections", true),
            (
                "ctl",
                "iot:Publish",
                "topic/$aws/things/r1/shadow/update",
                true,
            ),
            (
                "ctl",
                "iot:Publish",
                "topic/$aws/things/r1/shadow/delete",
                false,
            ),
            (
                "ctl",
                "iot:Subscribe",
                "topicfilter/gopigo/+/telemetry",
                true,
            ),
            ("ctl", "iot:Subscribe", "topicfilter/gopigo/r1/status", true),
            // the robots on screen, by exact name (docs/dashboard.md)
            (
                "ctl",
                "iot:Subscribe",
                "topicfilter/gopigo/r1/telemetry",
                true,
            ),
            (
                "ctl",
                "iot:Subscribe",
                "topicfilter/gopigo/r1/detections",
                true,
            ),
            ("ctl", "iot:Receive", "topic/gopigo/r1/detections", true),
            ("ctl", "iot:Receive", "topic/gopigo/r1/status", true),
            (
                "ctl",
                "iot:Subscribe",
                "topicfilter/gopigo/r1/cmd/result",
                true,
            ),
            // broad filters are allowed; iot:Receive is what gates the
            // messages (a robot's commands never reach a controller)
            ("ctl", "iot:Subscribe", "topicfilter/gopigo/r1/cmd", true),
            ("ctl", "iot:Subscribe", "topicfilter/gopigo/#", true),
            ("ctl", "iot:Receive", "topic/gopigo/r1/cmd", false),
            ("ctl", "iot:Receive", "topic/gopigo/r1/video/request", false),
            ("ctl", "iot:Subscribe", "topicfilter/#", false),
            (
                "ctl",
                "iot:Subscribe",
                "topicfilter/$aws/things/r1/jobs/#",
                false,
            ),
            ("ctl", "iot:Receive", "topic/gopigo/r1/telemetry", true),
            (
                "ctl",
                "iot:Receive",
                "topic/$aws/things/r1/shadow/update/accepted",
                true,
            ),
            ("ctl", "iot:Receive", "topic/gopigo/r1/cmd", false),
            ("ctl", "iot:Publish", "topic/gopigo/ctl/check", true),
            // video: subscribe to frames, ask for them; never forge them
            ("ctl", "iot:Subscribe", "topicfilter/gopigo/r1/video", true),
            ("ctl", "iot:Receive", "topic/gopigo/r1/video", true),
            ("ctl", "iot:Publish", "topic/gopigo/r1/video/request", true),
            ("ctl", "iot:Publish", "topic/gopigo/r1/video", false),
            ("ctl", "iot:RetainPublish", "topic/gopigo/r1/cmd", false),
        ];
        for (thing, action, resource, want) in cases {
            assert_eq!(
                allowed(&d, thing, action, resource),
                want,
                "{thing} {action} {resource}"
            );
        }
    }

    #[test]
    fn policies_fit_aws_size_limit() {
        // AWS IoT refuses a policy document over 2,048 characters (spaces
        // not counted); a long region and account name the worst case.
        for role in [Role::Robot, Role::Controller] {
            let text = policy_document(role, "ap-southeast-2", ACCOUNT).to_string();
            let chars = text.chars().filter(|c| !c.is_whitespace()).count();
            assert!(chars <= 2048, "{role} policy is {chars} characters");
        }
    }

    #[test]
    fn same_document_ignores_layout() {
        let v = policy_document(Role::Robot, REGION, ACCOUNT);
        assert!(same_document(
            &serde_json::to_string_pretty(&v).unwrap(),
            &v
        ));
        assert!(!same_document(
            &policy_document(Role::Controller, REGION, ACCOUNT).to_string(),
            &v
        ));
        assert!(!same_document("not json", &v));
    }

    #[test]
    fn arn_parts() {
        let cases = [
            (
                "arn:aws:iot:us-east-1:123456789012:cert/abc",
                Some(("us-east-1", "123456789012")),
            ),
            (
                "arn:aws-cn:iot:cn-north-1:1:cert/x",
                Some(("cn-north-1", "1")),
            ),
            ("arn:aws:s3:::bucket", None),
            ("arn:aws:iot::123:cert/x", None),
            ("nonsense", None),
        ];
        for (arn, want) in cases {
            let got = region_account_of_arn(arn);
            assert_eq!(
                got.as_ref().map(|(r, a)| (r.as_str(), a.as_str())),
                want,
                "{arn}"
            );
        }
    }

    #[test]
    fn role_names() {
        assert_eq!("Robot".parse::<Role>().unwrap(), Role::Robot);
        assert_eq!("controller".parse::<Role>().unwrap(), Role::Controller);
        assert!("admin".parse::<Role>().is_err());
    }
}
