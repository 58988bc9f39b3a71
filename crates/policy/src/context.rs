//! The request context: the values policy variables and condition keys
//! resolve to, filled by the caller (broker, control plane).

use std::collections::BTreeMap;

/// Well-known context keys, spelled as AWS IoT spells them (without `${}`).
pub mod keys {
    /// MQTT client id of the connection.
    pub const CLIENT_ID: &str = "iot:ClientId";
    /// Name of the thing the connection's principal is attached to (only
    /// when the client id equals that thing's name).
    pub const THING_NAME: &str = "iot:Connection.Thing.ThingName";
    /// Thing type of that thing.
    pub const THING_TYPE_NAME: &str = "iot:Connection.Thing.ThingTypeName";
    /// `"true"` or `"false"`: whether the principal is attached to the thing
    /// named by the client id.
    pub const THING_IS_ATTACHED: &str = "iot:Connection.Thing.IsAttached";
    /// Certificate id (lowercase hex SHA-256 of the DER).
    pub const CERTIFICATE_ID: &str = "iot:CertificateId";
    /// Subject common name of the client certificate.
    pub const CERT_SUBJECT_CN: &str = "iot:Certificate.Subject.CommonName";
    /// Serial number of the client certificate.
    pub const CERT_SERIAL: &str = "iot:Certificate.SerialNumber";
    /// Source IP address of the client.
    pub const SOURCE_IP: &str = "aws:SourceIp";

    /// Context key for one thing attribute:
    /// `iot:Connection.Thing.Attributes[name]`.
    pub fn thing_attribute(name: &str) -> String {
        format!("iot:Connection.Thing.Attributes[{name}]")
    }
}

/// Characters that keep an `iot:Certificate.*` variable from being
/// substituted (AWS IoT developer guide, "X.509 Certificate AWS IoT Core
/// policy variables", limitations: wildcards).
const CERT_WILDCARDS: &[char] = &['*', '$', '+', '?', '#'];
/// Longest certificate attribute AWS substitutes (same page: string length).
const CERT_MAX_LEN: usize = 1024;

/// A map from context key (e.g. `iot:ClientId`, without `${}`) to one or
/// more string values.
///
/// Lookups first try the exact key, then an ASCII case-insensitive match
/// (IAM key names are case-insensitive). Two derived forms follow AWS IoT's
/// certificate variables: `KEY.List` yields every value of `KEY`, and
/// `KEY.N` (N a number) yields the value at index N of `KEY`
/// (`.1` is the second value), unless those keys were set explicitly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    values: BTreeMap<String, Vec<String>>,
}

impl Context {
    /// An empty context: every variable stays unresolved, every condition
    /// key is absent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to a single value, replacing any earlier value.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_owned(), vec![value.into()]);
    }

    /// Builder form of [`Context::set`].
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    /// Sets `key` to several values (for `ForAnyValue:` / `ForAllValues:`
    /// conditions, e.g. `iot:ConnectAttributes`). An empty list means "the
    /// key is present with no values".
    pub fn set_multi(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_owned(), values);
    }

    /// First value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values_of(key).and_then(|v| v.first().copied())
    }

    /// All values of `key`, or `None` when the key is absent.
    pub(crate) fn values_of(&self, key: &str) -> Option<Vec<&str>> {
        if let Some(v) = self.lookup(key) {
            return Some(v.iter().map(String::as_str).collect());
        }
        if let Some(base) = key.strip_suffix(".List") {
            return self
                .lookup(base)
                .map(|v| v.iter().map(String::as_str).collect());
        }
        if let Some((base, idx)) = key.rsplit_once('.') {
            if !idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()) {
                let i: usize = idx.parse().ok()?;
                return self
                    .lookup(base)
                    .and_then(|v| v.get(i))
                    .map(|s| vec![s.as_str()]);
            }
        }
        None
    }

    /// The text `${name}` is replaced with, or `None` to leave it as is.
    pub(crate) fn variable(&self, name: &str) -> Option<&str> {
        let value = self.get(name)?;
        let is_cert = name
            .get(..16)
            .is_some_and(|p| p.eq_ignore_ascii_case("iot:Certificate."));
        if is_cert && (value.contains(CERT_WILDCARDS) || value.chars().count() > CERT_MAX_LEN) {
            return None;
        }
        Some(value)
    }

    fn lookup(&self, key: &str) -> Option<&Vec<String>> {
        self.values.get(key).or_else(|| {
            self.values
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let mut ctx = Context::new().with("iot:ClientId", "dev1");
        ctx.set_multi(
            "iot:Certificate.Subject.CommonName",
            vec!["a".into(), "b".into(), "Administrator".into()],
        );
        assert_eq!(ctx.get("iot:ClientId"), Some("dev1"));
        assert_eq!(ctx.get("IOT:clientid"), Some("dev1"));
        assert_eq!(ctx.get("iot:Missing"), None);
        assert_eq!(ctx.get("iot:Certificate.Subject.CommonName"), Some("a"));
        assert_eq!(
            ctx.get("iot:Certificate.Subject.CommonName.2"),
            Some("Administrator")
        );
        assert_eq!(ctx.get("iot:Certificate.Subject.CommonName.3"), None);
        assert_eq!(
            ctx.values_of("iot:Certificate.Subject.CommonName.List"),
            Some(vec!["a", "b", "Administrator"])
        );
    }

    #[test]
    fn cert_variables_with_wildcards_stay_unresolved() {
        let ctx = Context::new()
            .with(keys::CERT_SUBJECT_CN, "dev*")
            .with(keys::CLIENT_ID, "dev*");
        assert_eq!(ctx.variable(keys::CERT_SUBJECT_CN), None);
        // Only certificate variables have that rule.
        assert_eq!(ctx.variable(keys::CLIENT_ID), Some("dev*"));
    }
}
