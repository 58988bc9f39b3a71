//! The `Condition` element: operators, set qualifiers and their IAM
//! semantics.
//!
//! Semantics (IAM user guide, "Condition operators" and "Multivalued
//! context keys"):
//! - every operator block and every key inside it must hold (AND); several
//!   values for one key are alternatives (OR), for negated operators "none
//!   of them" (NOR);
//! - key absent from the context: positive operators are false, negated
//!   ones (`StringNotEquals`, `StringNotLike`, `ArnNot*`, `NotIpAddress`)
//!   are true; `...IfExists` is true; `ForAllValues:` is true,
//!   `ForAnyValue:` false; `Null` tests presence itself.

use std::net::IpAddr;

use serde_json::Value;

use crate::context::Context;
use crate::error::PolicyError;
use crate::template::Template;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Bool,
    Arn,
    IpAddress,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Single,
    ForAnyValue,
    ForAllValues,
}

/// Operator names accepted, with their base comparison and negation.
const OPERATORS: &[(&str, Base, bool)] = &[
    ("StringEquals", Base::StringEquals, false),
    ("StringNotEquals", Base::StringEquals, true),
    (
        "StringEqualsIgnoreCase",
        Base::StringEqualsIgnoreCase,
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Base::StringEqualsIgnoreCase,
        true,
    ),
    ("StringLike", Base::StringLike, false),
    ("StringNotLike", Base::StringLike, true),
    ("Bool", Base::Bool, false),
    ("ArnEquals", Base::Arn, false),
    ("ArnLike", Base::Arn, false),
    ("ArnNotEquals", Base::Arn, true),
    ("ArnNotLike", Base::Arn, true),
    ("IpAddress", Base::IpAddress, false),
    ("NotIpAddress", Base::IpAddress, true),
    ("Null", Base::Null, false),
];

/// One `"Operator": { "key": values }` entry for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    base: Base,
    negated: bool,
    set: SetOp,
    if_exists: bool,
    key: String,
    values: Vec<Template>,
    /// Parsed networks for the IP operators.
    nets: Vec<(IpAddr, u8)>,
}

/// Parses a statement's `Condition` object; `at` is its JSON path.
pub(crate) fn parse_conditions(v: &Value, at: &str) -> Result<Vec<Condition>, PolicyError> {
    let obj = v
        .as_object()
        .ok_or_else(|| PolicyError::invalid(at, "must be an object of condition operators"))?;
    let mut out = Vec::new();
    for (op_name, block) in obj {
        let op_at = format!("{at}.{op_name}");
        let op = parse_operator(op_name, &op_at)?;
        let block = block.as_object().ok_or_else(|| {
            PolicyError::invalid(&op_at, "must be an object mapping condition keys to values")
        })?;
        if block.is_empty() {
            return Err(PolicyError::invalid(&op_at, "names no condition key"));
        }
        for (key, vals) in block {
            let key_at = format!("{op_at}.{key}");
            let raw = condition_values(vals, &key_at)?;
            let nets = check_values(op.base, &raw, &key_at)?;
            out.push(Condition {
                base: op.base,
                negated: op.negated,
                set: op.set,
                if_exists: op.if_exists,
                key: key.clone(),
                values: raw.iter().map(|s| Template::parse(s)).collect(),
                nets,
            });
        }
    }
    Ok(out)
}

/// An operator name taken apart: `ForAnyValue:`/`ForAllValues:` prefix,
/// base operator (and whether it is the negated one), `IfExists` suffix.
struct Operator {
    base: Base,
    negated: bool,
    set: SetOp,
    if_exists: bool,
}

fn parse_operator(op_name: &str, op_at: &str) -> Result<Operator, PolicyError> {
    let (set, rest) = if let Some(r) = op_name.strip_prefix("ForAnyValue:") {
        (SetOp::ForAnyValue, r)
    } else if let Some(r) = op_name.strip_prefix("ForAllValues:") {
        (SetOp::ForAllValues, r)
    } else {
        (SetOp::Single, op_name)
    };
    let (if_exists, rest) = match rest.strip_suffix("IfExists") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let &(_, base, negated) = OPERATORS
        .iter()
        .find(|(name, _, _)| *name == rest)
        .ok_or_else(|| {
            PolicyError::invalid(
                op_at,
                format!(
                    "unsupported condition operator {op_name:?}; use one of {}, \
                     optionally prefixed ForAnyValue:/ForAllValues: or suffixed IfExists",
                    OPERATORS.iter().map(|o| o.0).collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
    if base == Base::Null && (if_exists || set != SetOp::Single) {
        return Err(PolicyError::invalid(
            op_at,
            "Null takes neither a ForAnyValue:/ForAllValues: prefix nor IfExists",
        ));
    }
    Ok(Operator {
        base,
        negated,
        set,
        if_exists,
    })
}

/// Checks the values an operator compares with: booleans for `Bool` and
/// `Null`, addresses or CIDR blocks for the IP operators (returned
/// parsed); any string for the others.
fn check_values(
    base: Base,
    raw: &[String],
    key_at: &str,
) -> Result<Vec<(IpAddr, u8)>, PolicyError> {
    match base {
        Base::Bool | Base::Null => {
            if let Some(bad) = raw
                .iter()
                .find(|s| !s.eq_ignore_ascii_case("true") && !s.eq_ignore_ascii_case("false"))
            {
                return Err(PolicyError::invalid(
                    key_at,
                    format!("{bad:?} is not a boolean; use \"true\" or \"false\""),
                ));
            }
            Ok(Vec::new())
        }
        Base::IpAddress => raw
            .iter()
            .map(|s| {
                parse_cidr(s).ok_or_else(|| {
                    PolicyError::invalid(
                        key_at,
                        format!("{s:?} is not an IP address or CIDR block like 203.0.113.0/24"),
                    )
                })
            })
            .collect(),
        _ => Ok(Vec::new()),
    }
}

fn condition_values(v: &Value, at: &str) -> Result<Vec<String>, PolicyError> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(PolicyError::invalid(
            at,
            "condition values must be strings, booleans or numbers, or a list of them",
        )),
    };
    match v {
        Value::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, Some(l.parse::<u8>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then_some((addr, len))
}

fn in_net(ip: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    let (a, b, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            (u128::from(u32::from(a)), u128::from(u32::from(b)), 32u32)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128u32),
        (IpAddr::V6(a), IpAddr::V4(b)) => match a.to_ipv4_mapped() {
            Some(a) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
            None => return false,
        },
        (IpAddr::V4(_), IpAddr::V6(_)) => return false,
    };
    let len = u32::from(len);
    if len == 0 {
        return true;
    }
    let shift = bits - len;
    (a >> shift) == (b >> shift)
}

impl Condition {
    /// Whether this condition holds for the context.
    pub(crate) fn holds(&self, ctx: &Context) -> bool {
        let present = ctx.values_of(&self.key);
        if self.base == Base::Null {
            let want_absent = self
                .values
                .iter()
                .any(|t| t.render(ctx).eq_ignore_ascii_case("true"));
            return want_absent == present.is_none();
        }
        let Some(values) = present else {
            return self.if_exists
                || match self.set {
                    SetOp::ForAllValues => true,
                    SetOp::ForAnyValue => false,
                    SetOp::Single => self.negated,
                };
        };
        let one = |v: &str| self.matches_any(v, ctx) != self.negated;
        match self.set {
            SetOp::ForAnyValue => values.iter().any(|v| one(v)),
            SetOp::ForAllValues => values.iter().all(|v| one(v)),
            SetOp::Single => {
                let hit = values.iter().any(|v| self.matches_any(v, ctx));
                hit != self.negated
            }
        }
    }

    /// Whether the request value `v` matches at least one policy value.
    fn matches_any(&self, v: &str, ctx: &Context) -> bool {
        match self.base {
            Base::StringEquals => self.values.iter().any(|t| t.render(ctx) == v),
            Base::StringEqualsIgnoreCase => self
                .values
                .iter()
                .any(|t| t.render(ctx).to_lowercase() == v.to_lowercase()),
            Base::StringLike | Base::Arn => self.values.iter().any(|t| t.glob(v, ctx, false)),
            Base::Bool => self
                .values
                .iter()
                .any(|t| t.render(ctx).eq_ignore_ascii_case(v)),
            Base::IpAddress => match v.parse::<IpAddr>() {
                Ok(ip) => self.nets.iter().any(|n| in_net(ip, *n)),
                Err(_) => false,
            },
            Base::Null => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(json: &str) -> Vec<Condition> {
        let v: Value = serde_json::from_str(json).expect("test JSON");
        parse_conditions(&v, "Condition").expect("valid condition")
    }

    fn holds(json: &str, ctx: &Context) -> bool {
        cond(json).iter().all(|c| c.holds(ctx))
    }

    #[test]
    fn absent_keys_follow_iam() {
        let empty = Context::new();
        let cases: &[(&str, bool)] = &[
            (r#"{"StringEquals": {"k": "v"}}"#, false),
            (r#"{"StringNotEquals": {"k": "v"}}"#, true),
            (r#"{"StringLike": {"k": "*"}}"#, false),
            (r#"{"StringNotLike": {"k": "v*"}}"#, true),
            (r#"{"StringEqualsIfExists": {"k": "v"}}"#, true),
            (r#"{"ForAnyValue:StringEquals": {"k": "v"}}"#, false),
            (r#"{"ForAllValues:StringEquals": {"k": "v"}}"#, true),
            (r#"{"Bool": {"k": "true"}}"#, false),
            (r#"{"Null": {"k": "true"}}"#, true),
            (r#"{"Null": {"k": "false"}}"#, false),
            (r#"{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#, false),
            (r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#, true),
        ];
        for (json, want) in cases {
            assert_eq!(holds(json, &empty), *want, "{json} with the key absent");
        }
    }

    #[test]
    fn present_keys() {
        let mut ctx = Context::new()
            .with("k", "Value")
            .with("aws:SourceIp", "10.1.2.3")
            .with("ip6", "2001:db8::1");
        ctx.set_multi("attrs", vec!["PersistentConnect".into(), "LastWill".into()]);
        let cases: &[(&str, bool)] = &[
            (r#"{"StringEquals": {"k": ["x", "Value"]}}"#, true),
            (r#"{"StringEquals": {"k": "value"}}"#, false),
            (r#"{"StringEqualsIgnoreCase": {"k": "VALUE"}}"#, true),
            (r#"{"StringNotEquals": {"k": ["x", "Value"]}}"#, false),
            (r#"{"StringNotEquals": {"k": ["x", "y"]}}"#, true),
            (r#"{"StringNotEqualsIgnoreCase": {"k": "vALUE"}}"#, false),
            (r#"{"StringLike": {"k": "Va*"}}"#, true),
            (r#"{"StringLike": {"k": "Va?ue"}}"#, true),
            (r#"{"StringNotLike": {"k": "Va*"}}"#, false),
            (r#"{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#, true),
            (
                r#"{"IpAddress": {"aws:SourceIp": ["192.168.0.0/16", "10.1.2.3"]}}"#,
                true,
            ),
            (r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#, false),
            (r#"{"IpAddress": {"ip6": "2001:db8::/32"}}"#, true),
            (r#"{"IpAddress": {"ip6": "10.0.0.0/8"}}"#, false),
            (
                r#"{"ForAllValues:StringEquals": {"attrs": ["PersistentConnect", "LastWill"]}}"#,
                true,
            ),
            (
                r#"{"ForAllValues:StringEquals": {"attrs": ["PersistentConnect"]}}"#,
                false,
            ),
            (r#"{"ForAllValues:StringEquals": {"attrs": []}}"#, false),
            (
                r#"{"ForAnyValue:StringEquals": {"attrs": "LastWill"}}"#,
                true,
            ),
            (
                r#"{"ForAllValues:StringNotEquals": {"attrs": "Other"}}"#,
                true,
            ),
            (
                r#"{"ForAllValues:StringNotEquals": {"attrs": "LastWill"}}"#,
                false,
            ),
            (
                r#"{"ForAnyValue:StringNotEquals": {"attrs": "LastWill"}}"#,
                true,
            ),
            // two keys / two operators: AND
            (
                r#"{"StringEquals": {"k": "Value", "aws:SourceIp": "10.1.2.3"}}"#,
                true,
            ),
            (
                r#"{"StringEquals": {"k": "Value"}, "Bool": {"missing": "true"}}"#,
                false,
            ),
            (r#"{"Null": {"k": "false"}}"#, true),
        ];
        for (json, want) in cases {
            assert_eq!(holds(json, &ctx), *want, "{json}");
        }
        // An empty multi-valued key is present but has no values.
        let mut empty_set = Context::new();
        empty_set.set_multi("attrs", vec![]);
        assert!(holds(
            r#"{"ForAllValues:StringEquals": {"attrs": []}}"#,
            &empty_set
        ));
        assert!(!holds(
            r#"{"ForAnyValue:StringEquals": {"attrs": "x"}}"#,
            &empty_set
        ));
    }
}
