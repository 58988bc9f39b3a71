//! Parse, validate and evaluate AWS IoT policy documents. Pure Rust, no I/O.
//!
//! The broker asks "may this connection do `iot:Publish` on
//! `arn:aws:iot:…:topic/a/b`?"; the control plane refuses malformed
//! documents with `MalformedPolicyException`. Both use this crate.
//!
//! # Parts
//! - [`PolicyDocument::parse`]: validation the way AWS IoT's `CreatePolicy`
//!   does it (`Version`, `Statement` object or list, `Effect`,
//!   `Action`/`NotAction`, `Resource`/`NotResource`, `Condition`, the
//!   2048-character limit excluding whitespace). Errors are
//!   [`PolicyError`]s naming the element at fault (`Statement[1].Action`).
//! - [`PolicyDocument::evaluate`] and [`evaluate`] (several policies):
//!   default deny, any matching `Deny` wins, union of all allows; returns a
//!   [`Decision`].
//! - [`glob_match`]: IAM wildcards on the whole string, `*` any run
//!   (including `/` and empty), `?` one character, case-sensitive; MQTT `+`
//!   and `#` are ordinary characters. Actions match case-insensitively.
//! - [`Context`] (with well-known [`keys`]): the values for policy
//!   variables (`${iot:ClientId}`, `${iot:Connection.Thing.ThingName}`,
//!   `${iot:Certificate.Subject.CommonName}`, …) and condition keys.
//! - [`arn`]: builds `arn:aws:iot:{region}:{account}:{resource}`.
//!
//! # Variables
//! `${name}` in a `Resource` or `Condition` value is replaced by the
//! context value and then matched *literally*: a client id `a*` grants
//! nothing beyond the topic named `a*`. An unresolvable variable stays as its
//! own text, so it only matches that literal. `${*}`, `${?}` and `${$}` are
//! a literal `*`, `?` and `$`. Following the AWS IoT guide ("X.509
//! Certificate AWS IoT Core policy variables", limitations), an
//! `iot:Certificate.*` value containing `*`, `$`, `+`, `?` or `#`, or longer
//! than 1024 characters, is not substituted. `KEY.List` and `KEY.N` read all
//! values / the value at index N of a multi-valued key.
//!
//! # Conditions
//! Operators: `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`,
//! `StringNotEqualsIgnoreCase`, `StringLike`, `StringNotLike`, `Bool`,
//! `ArnEquals`, `ArnLike`, `ArnNotEquals`, `ArnNotLike` (whole-string
//! wildcard match), `IpAddress`, `NotIpAddress`, `Null`; each (but `Null`)
//! with an optional `ForAnyValue:` / `ForAllValues:` prefix and `IfExists`
//! suffix. A key absent from the context makes positive operators false and
//! negated ones true (IAM user guide, "Condition operators"); `IfExists`
//! and `ForAllValues:` are true, `ForAnyValue:` false.

mod condition;
mod context;
mod document;
mod error;
mod glob;
mod template;

pub use context::{keys, Context};
pub use document::{evaluate, Decision, PolicyDocument};
pub use error::{PolicyError, MAX_POLICY_CHARS};
pub use glob::glob_match;

/// The ARN of an AWS IoT resource:
/// `arn:{partition}:iot:{region}:{account}:{resource}`, e.g.
/// `arn("us-east-1", "123456789012", "topic/a/b")`; the partition follows
/// the region ([`partition`]).
pub fn arn(region: &str, account: &str, resource: &str) -> String {
    format!(
        "arn:{}:iot:{region}:{account}:{resource}",
        partition(region)
    )
}

/// The AWS partition of a region, by the region patterns of botocore's
/// `endpoints.json`: `cn-*` is `aws-cn`, `us-gov-*` is `aws-us-gov`, the
/// rest `aws`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The DNS suffix of a region's endpoints (botocore's `endpoints.json`
/// `dnsSuffix`): `amazonaws.com.cn` in `aws-cn`, `amazonaws.com` elsewhere
/// (`aws-us-gov` included).
pub fn dns_suffix(region: &str) -> &'static str {
    if partition(region) == "aws-cn" {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

#[cfg(test)]
mod partition_tests {
    use super::*;

    #[test]
    fn arns_and_endpoints_follow_the_partition() {
        for (region, arn_prefix, suffix) in [
            ("us-east-1", "arn:aws:iot:us-east-1:", "amazonaws.com"),
            (
                "ap-southeast-2",
                "arn:aws:iot:ap-southeast-2:",
                "amazonaws.com",
            ),
            (
                "cn-north-1",
                "arn:aws-cn:iot:cn-north-1:",
                "amazonaws.com.cn",
            ),
            (
                "cn-northwest-1",
                "arn:aws-cn:iot:cn-northwest-1:",
                "amazonaws.com.cn",
            ),
            (
                "us-gov-west-1",
                "arn:aws-us-gov:iot:us-gov-west-1:",
                "amazonaws.com",
            ),
            (
                "us-gov-east-1",
                "arn:aws-us-gov:iot:us-gov-east-1:",
                "amazonaws.com",
            ),
        ] {
            assert_eq!(
                arn(region, "123456789012", "client/r1"),
                format!("{arn_prefix}123456789012:client/r1")
            );
            assert_eq!(dns_suffix(region), suffix, "{region}");
        }
    }
}
