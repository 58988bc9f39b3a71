//! Policy documents: validation on parse, evaluation per request.

use serde_json::{Map, Value};

use crate::condition::{parse_conditions, Condition};
use crate::context::Context;
use crate::error::{PolicyError, MAX_POLICY_CHARS};
use crate::glob::glob_match;
use crate::template::Template;

/// Policy language versions AWS accepts.
const VERSIONS: &[&str] = &["2012-10-17", "2008-10-17"];
const TOP_KEYS: &[&str] = &["Version", "Statement", "Id"];
const STATEMENT_KEYS: &[&str] = &[
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// The outcome of evaluating one request against policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// At least one statement allows the request and none denies it.
    Allow,
    /// A `Deny` statement matches: nothing else can allow the request.
    ExplicitDeny,
    /// No statement matches: denied by default.
    ImplicitDeny,
}

impl Decision {
    /// True only for [`Decision::Allow`].
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    effect: Effect,
    /// `NotAction` when true.
    not_action: bool,
    /// Lower-cased action patterns (`iot:publish`, `iot:*`, `*`).
    actions: Vec<String>,
    /// `NotResource` when true.
    not_resource: bool,
    resources: Vec<Template>,
    conditions: Vec<Condition>,
}

/// A validated AWS IoT policy document, ready to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    statements: Vec<Statement>,
}

impl PolicyDocument {
    /// Parses and validates a policy document the way AWS IoT's
    /// `CreatePolicy` does; the error says which element is at fault.
    pub fn parse(json: &str) -> Result<Self, PolicyError> {
        let chars = json.chars().filter(|c| !c.is_whitespace()).count();
        if chars == 0 {
            return Err(PolicyError::Empty);
        }
        if chars > MAX_POLICY_CHARS {
            return Err(PolicyError::TooLong { chars });
        }
        let root: Value =
            serde_json::from_str(json).map_err(|e| PolicyError::Json(e.to_string()))?;
        let root = root
            .as_object()
            .ok_or_else(|| PolicyError::invalid("(document)", "must be a JSON object"))?;
        check_keys(root, TOP_KEYS, "(document)")?;
        if let Some(v) = root.get("Version") {
            match v.as_str() {
                Some(s) if VERSIONS.contains(&s) => {}
                _ => {
                    return Err(PolicyError::invalid(
                        "Version",
                        format!("{v} is not a policy language version; use \"2012-10-17\""),
                    ))
                }
            }
        }
        if let Some(v) = root.get("Id") {
            if !v.is_string() {
                return Err(PolicyError::invalid("Id", "must be a string"));
            }
        }
        let stmts = match root.get("Statement") {
            None => {
                return Err(PolicyError::invalid(
                    "Statement",
                    "is missing; add a Statement object or list",
                ))
            }
            Some(Value::Array(list)) if list.is_empty() => {
                return Err(PolicyError::invalid(
                    "Statement",
                    "must not be an empty list",
                ))
            }
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, s)| parse_statement(s, &format!("Statement[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(obj @ Value::Object(_)) => vec![parse_statement(obj, "Statement")?],
            Some(_) => {
                return Err(PolicyError::invalid(
                    "Statement",
                    "must be an object or a list of objects",
                ))
            }
        };
        Ok(Self { statements: stmts })
    }

    /// Evaluates one request against this document alone.
    ///
    /// `action` is e.g. `iot:Publish`; `resource` the full ARN, e.g.
    /// `arn:aws:iot:us-east-1:123456789012:topic/a/b` (see [`crate::arn`]).
    /// Policy variables in `Resource` and `Condition` values are replaced
    /// from `ctx`; an unresolvable one stays literal text.
    pub fn evaluate(&self, action: &str, resource: &str, ctx: &Context) -> Decision {
        let action = action.to_lowercase();
        let mut allowed = false;
        for st in &self.statements {
            if st.applies(&action, resource, ctx) {
                match st.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::ImplicitDeny
        }
    }
}

impl Statement {
    fn applies(&self, action: &str, resource: &str, ctx: &Context) -> bool {
        let action_hit = self.actions.iter().any(|p| glob_match(p, action));
        if action_hit == self.not_action {
            return false;
        }
        let resource_hit = self
            .resources
            .iter()
            .any(|t| t.is_star() || t.glob(resource, ctx, false));
        if resource_hit == self.not_resource {
            return false;
        }
        self.conditions.iter().all(|c| c.holds(ctx))
    }
}

/// Evaluates a request against several policies (all those attached to the
/// principal): any explicit deny wins, then any allow, else implicit deny.
pub fn evaluate<'a>(
    policies: impl IntoIterator<Item = &'a PolicyDocument>,
    action: &str,
    resource: &str,
    ctx: &Context,
) -> Decision {
    let mut allowed = false;
    for p in policies {
        match p.evaluate(action, resource, ctx) {
            Decision::ExplicitDeny => return Decision::ExplicitDeny,
            Decision::Allow => allowed = true,
            Decision::ImplicitDeny => {}
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

fn check_keys(obj: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), PolicyError> {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            let path = if at == "(document)" {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            return Err(PolicyError::invalid(
                path,
                format!("unknown key {k:?}; allowed keys are {}", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

fn parse_statement(v: &Value, at: &str) -> Result<Statement, PolicyError> {
    let obj = v
        .as_object()
        .ok_or_else(|| PolicyError::invalid(at, "must be an object"))?;
    check_keys(obj, STATEMENT_KEYS, at)?;
    if let Some(sid) = obj.get("Sid") {
        if !sid.is_string() {
            return Err(PolicyError::invalid(
                format!("{at}.Sid"),
                "must be a string",
            ));
        }
    }
    let effect = match obj.get("Effect") {
        Some(Value::String(s)) if s == "Allow" => Effect::Allow,
        Some(Value::String(s)) if s == "Deny" => Effect::Deny,
        Some(other) => {
            return Err(PolicyError::invalid(
                format!("{at}.Effect"),
                format!("{other} is not an effect; use \"Allow\" or \"Deny\""),
            ))
        }
        None => {
            return Err(PolicyError::invalid(
                format!("{at}.Effect"),
                "is missing; add \"Effect\": \"Allow\" or \"Deny\"",
            ))
        }
    };
    let (not_action, actions) = one_of(obj, "Action", "NotAction", at)?;
    let action_key = if not_action { "NotAction" } else { "Action" };
    for (i, a) in actions.iter().enumerate() {
        if !valid_action(a) {
            return Err(PolicyError::invalid(
                format!("{at}.{action_key}[{i}]"),
                format!(
                    "{a:?} is not an AWS IoT action; write \"iot:Name\" (e.g. \"iot:Publish\", \
                     \"iot:*\") or \"*\""
                ),
            ));
        }
    }
    let (not_resource, resources) = one_of(obj, "Resource", "NotResource", at)?;
    let resource_key = if not_resource {
        "NotResource"
    } else {
        "Resource"
    };
    for (i, r) in resources.iter().enumerate() {
        if r != "*" && !r.starts_with("arn:") {
            return Err(PolicyError::invalid(
                format!("{at}.{resource_key}[{i}]"),
                format!(
                    "{r:?} is not a resource; write an ARN like \
                     \"arn:aws:iot:us-east-1:123456789012:topic/my/topic\" or \"*\""
                ),
            ));
        }
    }
    let conditions = match obj.get("Condition") {
        Some(c) => parse_conditions(c, &format!("{at}.Condition"))?,
        None => Vec::new(),
    };
    Ok(Statement {
        effect,
        not_action,
        actions: actions.iter().map(|a| a.to_lowercase()).collect(),
        not_resource,
        resources: resources.iter().map(|r| Template::parse(r)).collect(),
        conditions,
    })
}

/// Reads exactly one of `key` / `not_key` as a string or non-empty list of
/// strings; returns (is the `Not` form, values).
fn one_of(
    obj: &Map<String, Value>,
    key: &str,
    not_key: &str,
    at: &str,
) -> Result<(bool, Vec<String>), PolicyError> {
    let (negated, k, v) = match (obj.get(key), obj.get(not_key)) {
        (Some(_), Some(_)) => {
            return Err(PolicyError::invalid(
                format!("{at}.{key}"),
                format!("give either {key} or {not_key}, not both"),
            ))
        }
        (None, None) => {
            return Err(PolicyError::invalid(
                format!("{at}.{key}"),
                format!("is missing; add {key} (or {not_key})"),
            ))
        }
        (Some(v), None) => (false, key, v),
        (None, Some(v)) => (true, not_key, v),
    };
    let path = format!("{at}.{k}");
    let list = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if items.is_empty() => {
            return Err(PolicyError::invalid(path, "must not be an empty list"))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| PolicyError::invalid(format!("{path}[{i}]"), "must be a string"))
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(PolicyError::invalid(
                path,
                "must be a string or a list of strings",
            ))
        }
    };
    if let Some(i) = list.iter().position(String::is_empty) {
        return Err(PolicyError::invalid(
            format!("{path}[{i}]"),
            "must not be empty",
        ));
    }
    Ok((negated, list))
}

/// `*`, or `iot:` (any case) followed by letters, digits and wildcards.
fn valid_action(a: &str) -> bool {
    if a == "*" {
        return true;
    }
    match a.split_once(':') {
        Some((service, name)) => {
            service.eq_ignore_ascii_case("iot")
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
        }
        None => false,
    }
}
