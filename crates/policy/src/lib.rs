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

/// The ARN of an AWS IoT resource: `arn:aws:iot:{region}:{account}:{resource}`,
/// e.g. `arn("us-east-1", "123456789012", "topic/a/b")`.
pub fn arn(region: &str, account: &str, resource: &str) -> String {
    format!("arn:aws:iot:{region}:{account}:{resource}")
}
