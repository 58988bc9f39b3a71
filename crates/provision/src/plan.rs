//! What to change: the diff between what a thing should have and what the
//! registry (and the bundle on disk) already holds. Pure, so idempotence and
//! AWS's ordering rules are unit-tested without a server.

use std::fmt;

use serde_json::Value;

use crate::policy::same_document;

/// AWS IoT keeps at most this many versions of a policy.
pub const MAX_POLICY_VERSIONS: usize = 5;

/// The bundle's certificate, as found on disk and in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertState {
    /// No certificate in the bundle.
    Missing,
    /// The bundle's certificate matches its key and is registered and ACTIVE.
    Active {
        /// `certificateId`: 64 hex digits, the SHA-256 of the DER.
        id: String,
        /// `certificateArn`: what policies and things attach to.
        arn: String,
    },
    /// There is a certificate, but it cannot be used; a new one is needed.
    Unusable {
        /// Why (shown to the user).
        reason: String,
    },
}

/// One version of a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyVersion {
    /// Version id (`"1"`, `"2"`...; numeric on AWS).
    pub id: String,
    /// Whether it is the default (in force) version.
    pub is_default: bool,
}

/// The fleet policy as the registry holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedPolicy {
    /// The default version's document.
    pub document: String,
    /// All versions.
    pub versions: Vec<PolicyVersion>,
}

/// What exists before provisioning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// Whether the thing is registered.
    pub thing_exists: bool,
    /// The bundle's certificate.
    pub certificate: CertState,
    /// The fleet policy, if it exists.
    pub policy: Option<ObservedPolicy>,
    /// Policies attached to the (reusable) certificate.
    pub certificate_policies: Vec<String>,
    /// Principals (certificate ARNs) attached to the thing.
    pub thing_principals: Vec<String>,
}

/// One change to make, in the order AWS needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Sign the CSR: `CreateCertificateFromCsr?setAsActive=true`.
    CreateCertificate,
    /// `CreateThing`.
    CreateThing,
    /// `CreatePolicy` with the template.
    CreatePolicy,
    /// `DeletePolicyVersion` of an old, non-default version (to stay under 5).
    DeletePolicyVersion(String),
    /// `CreatePolicyVersion?setAsDefault=true` with the template.
    CreatePolicyVersion,
    /// `AttachPolicy` of the fleet policy to the certificate.
    AttachPolicy,
    /// `AttachThingPrincipal` of the certificate to the thing.
    AttachThingPrincipal,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::CreateCertificate => f.write_str("sign a new certificate from the CSR"),
            Step::CreateThing => f.write_str("create the thing"),
            Step::CreatePolicy => f.write_str("create the fleet policy"),
            Step::DeletePolicyVersion(v) => write!(f, "delete old policy version {v}"),
            Step::CreatePolicyVersion => {
                f.write_str("update the fleet policy (new default version)")
            }
            Step::AttachPolicy => f.write_str("attach the policy to the certificate"),
            Step::AttachThingPrincipal => f.write_str("attach the certificate to the thing"),
        }
    }
}

/// The steps that bring `observed` to the desired state for `policy_name`
/// with document `desired_policy`. Empty when there is nothing to do.
pub fn plan(observed: &Observed, policy_name: &str, desired_policy: &Value) -> Vec<Step> {
    let mut steps = Vec::new();
    let cert_arn = match &observed.certificate {
        CertState::Active { arn, .. } => Some(arn.as_str()),
        _ => {
            steps.push(Step::CreateCertificate);
            None
        }
    };
    if !observed.thing_exists {
        steps.push(Step::CreateThing);
    }
    match &observed.policy {
        None => steps.push(Step::CreatePolicy),
        Some(p) if !same_document(&p.document, desired_policy) => {
            if p.versions.len() >= MAX_POLICY_VERSIONS {
                // Oldest non-default version first (ids are numbers on AWS).
                let mut old: Vec<&PolicyVersion> =
                    p.versions.iter().filter(|v| !v.is_default).collect();
                old.sort_by_key(|v| (v.id.parse::<u64>().unwrap_or(u64::MAX), v.id.clone()));
                let excess = p.versions.len() + 1 - MAX_POLICY_VERSIONS;
                for v in old.into_iter().take(excess) {
                    steps.push(Step::DeletePolicyVersion(v.id.clone()));
                }
            }
            steps.push(Step::CreatePolicyVersion);
        }
        Some(_) => {}
    }
    match cert_arn {
        None => {
            steps.push(Step::AttachPolicy);
            steps.push(Step::AttachThingPrincipal);
        }
        Some(arn) => {
            if !observed
                .certificate_policies
                .iter()
                .any(|p| p == policy_name)
            {
                steps.push(Step::AttachPolicy);
            }
            if !observed.thing_principals.iter().any(|p| p == arn) {
                steps.push(Step::AttachThingPrincipal);
            }
        }
    }
    steps
}

/// A certificate attached to a thing being removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedPrincipal {
    /// `certificateArn`: the principal attached to the thing.
    pub arn: String,
    /// certificateId (last part of the ARN).
    pub id: String,
    /// `ACTIVE`, `INACTIVE`, `REVOKED`...; `None` when not a certificate
    /// this account can describe.
    pub status: Option<String>,
    /// Policies attached to it.
    pub policies: Vec<String>,
}

/// One change of `deprovision`, in AWS's required order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TeardownStep {
    /// `DetachPolicy`.
    DetachPolicy {
        /// Policy name.
        policy: String,
        /// Certificate ARN.
        principal: String,
    },
    /// `DetachThingPrincipal`.
    DetachThingPrincipal {
        /// Certificate ARN.
        principal: String,
    },
    /// `UpdateCertificate?newStatus=INACTIVE` (AWS refuses to delete an ACTIVE one).
    Deactivate {
        /// `certificateId`: 64 hex digits, the SHA-256 of the DER.
        id: String,
    },
    /// `DeleteCertificate`.
    DeleteCertificate {
        /// `certificateId`: 64 hex digits, the SHA-256 of the DER.
        id: String,
    },
    /// `DeleteThing` (only once no principal is attached).
    DeleteThing,
}

impl fmt::Display for TeardownStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TeardownStep::DetachPolicy { policy, principal } => {
                write!(f, "detach policy {policy} from {principal}")
            }
            TeardownStep::DetachThingPrincipal { principal } => {
                write!(f, "detach {principal} from the thing")
            }
            TeardownStep::Deactivate { id } => write!(f, "set certificate {id} INACTIVE"),
            TeardownStep::DeleteCertificate { id } => write!(f, "delete certificate {id}"),
            TeardownStep::DeleteThing => f.write_str("delete the thing"),
        }
    }
}

/// The steps that remove a thing and its certificates.
pub fn teardown(thing_exists: bool, principals: &[ObservedPrincipal]) -> Vec<TeardownStep> {
    let mut steps = Vec::new();
    for p in principals {
        for policy in &p.policies {
            steps.push(TeardownStep::DetachPolicy {
                policy: policy.clone(),
                principal: p.arn.clone(),
            });
        }
        steps.push(TeardownStep::DetachThingPrincipal {
            principal: p.arn.clone(),
        });
        let Some(status) = &p.status else { continue };
        if status == "ACTIVE" || status == "PENDING_ACTIVATION" {
            steps.push(TeardownStep::Deactivate { id: p.id.clone() });
        }
        steps.push(TeardownStep::DeleteCertificate { id: p.id.clone() });
    }
    if thing_exists {
        steps.push(TeardownStep::DeleteThing);
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:iot:us-east-1:1:cert/abc";

    fn desired() -> Value {
        json!({"Version": "2012-10-17", "Statement": []})
    }

    fn versions(n: usize, default: usize) -> Vec<PolicyVersion> {
        (1..=n)
            .map(|i| PolicyVersion {
                id: i.to_string(),
                is_default: i == default,
            })
            .collect()
    }

    fn done() -> Observed {
        Observed {
            thing_exists: true,
            certificate: CertState::Active {
                id: "abc".into(),
                arn: ARN.into(),
            },
            policy: Some(ObservedPolicy {
                document: desired().to_string(),
                versions: versions(1, 1),
            }),
            certificate_policies: vec!["p".into()],
            thing_principals: vec![ARN.into()],
        }
    }

    #[test]
    fn provision_table() {
        let fresh = Observed {
            thing_exists: false,
            certificate: CertState::Missing,
            policy: None,
            certificate_policies: vec![],
            thing_principals: vec![],
        };
        let changed_policy = |n: usize, default: usize| Observed {
            policy: Some(ObservedPolicy {
                document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow"}]}"#.into(),
                versions: versions(n, default),
            }),
            ..done()
        };
        let cases: Vec<(&str, Observed, Vec<Step>)> = vec![
            (
                "nothing exists",
                fresh.clone(),
                vec![
                    Step::CreateCertificate,
                    Step::CreateThing,
                    Step::CreatePolicy,
                    Step::AttachPolicy,
                    Step::AttachThingPrincipal,
                ],
            ),
            ("all in place", done(), vec![]),
            (
                "second robot: policy shared",
                Observed {
                    policy: done().policy,
                    ..fresh.clone()
                },
                vec![
                    Step::CreateCertificate,
                    Step::CreateThing,
                    Step::AttachPolicy,
                    Step::AttachThingPrincipal,
                ],
            ),
            (
                "policy text differs",
                changed_policy(1, 1),
                vec![Step::CreatePolicyVersion],
            ),
            (
                "policy at 5 versions: oldest non-default goes",
                changed_policy(5, 1),
                vec![
                    Step::DeletePolicyVersion("2".into()),
                    Step::CreatePolicyVersion,
                ],
            ),
            (
                "same text with other layout",
                Observed {
                    policy: Some(ObservedPolicy {
                        document: serde_json::to_string_pretty(&desired()).unwrap(),
                        versions: versions(2, 2),
                    }),
                    ..done()
                },
                vec![],
            ),
            (
                "inactive certificate: a new one, attached again",
                Observed {
                    certificate: CertState::Unusable {
                        reason: "INACTIVE".into(),
                    },
                    ..done()
                },
                vec![
                    Step::CreateCertificate,
                    Step::AttachPolicy,
                    Step::AttachThingPrincipal,
                ],
            ),
            (
                "policy detached by hand",
                Observed {
                    certificate_policies: vec!["other".into()],
                    ..done()
                },
                vec![Step::AttachPolicy],
            ),
            (
                "principal detached by hand",
                Observed {
                    thing_principals: vec!["arn:aws:iot:us-east-1:1:cert/old".into()],
                    ..done()
                },
                vec![Step::AttachThingPrincipal],
            ),
        ];
        for (name, observed, want) in cases {
            assert_eq!(plan(&observed, "p", &desired()), want, "{name}");
        }
    }

    #[test]
    fn teardown_order() {
        let p = |id: &str, status: Option<&str>, policies: &[&str]| ObservedPrincipal {
            arn: format!("arn:aws:iot:us-east-1:1:cert/{id}"),
            id: id.into(),
            status: status.map(str::to_string),
            policies: policies.iter().map(|s| s.to_string()).collect(),
        };
        let steps = teardown(
            true,
            &[
                p("a", Some("ACTIVE"), &["gopigo-robot"]),
                p("b", Some("INACTIVE"), &[]),
            ],
        );
        let a = "arn:aws:iot:us-east-1:1:cert/a".to_string();
        let b = "arn:aws:iot:us-east-1:1:cert/b".to_string();
        assert_eq!(
            steps,
            vec![
                TeardownStep::DetachPolicy {
                    policy: "gopigo-robot".into(),
                    principal: a.clone()
                },
                TeardownStep::DetachThingPrincipal { principal: a },
                TeardownStep::Deactivate { id: "a".into() },
                TeardownStep::DeleteCertificate { id: "a".into() },
                TeardownStep::DetachThingPrincipal { principal: b },
                TeardownStep::DeleteCertificate { id: "b".into() },
                TeardownStep::DeleteThing,
            ]
        );
        assert!(teardown(false, &[]).is_empty());
        // A principal we cannot describe is only detached.
        assert_eq!(
            teardown(false, &[p("x", None, &[])]),
            vec![TeardownStep::DetachThingPrincipal {
                principal: "arn:aws:iot:us-east-1:1:cert/x".into()
            }]
        );
    }
}
