//! Fleet indexing's SearchIndex over the registry (index `AWS_Things`),
//! with the query syntax's common subset: `thingName:`, `attributes.<key>:`,
//! `thingTypeName:`, `connectivity.connected:` terms with `*` and `?`
//! wildcards, a bare term (things whose name contains it), `*` (all), and
//! `AND` (or juxtaposition), `OR`, `NOT`, `-term` and parentheses.
//!
//! Parsing is pure ([`parse`]); evaluation reads each thing once.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use crate::control::{body_object, ok, ApiResult};
use crate::error::ApiError;
use crate::store::Thing;
use crate::CoreState;

/// The SearchIndex route.
pub fn router() -> Router<Arc<CoreState>> {
    Router::new().route("/indices/search", post(search_index))
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// `field:pattern`, or a bare pattern when `field` is `None`.
    Term {
        /// The field, e.g. `thingName` or `attributes.color`.
        field: Option<String>,
        /// The value, with `*` and `?` wildcards.
        pattern: String,
    },
    /// `a AND b`, or two terms side by side: a thing must match both.
    And(Box<Query>, Box<Query>),
    /// `a OR b`: a thing must match at least one.
    Or(Box<Query>, Box<Query>),
    /// `NOT a` or `-a`: a thing must not match.
    Not(Box<Query>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Not,
    Minus,
    Word(String),
}

fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Tok>| {
        if !word.is_empty() {
            out.push(match word.as_str() {
                "AND" => Tok::And,
                "OR" => Tok::Or,
                "NOT" => Tok::Not,
                _ => Tok::Word(std::mem::take(word)),
            });
            word.clear();
        }
    };
    for c in s.chars() {
        match c {
            '(' | ')' => {
                flush(&mut word, &mut out);
                out.push(if c == '(' { Tok::Open } else { Tok::Close });
            }
            '-' if word.is_empty() => out.push(Tok::Minus),
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Query, String> {
        let mut q = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            q = Query::Or(Box::new(q), Box::new(self.and()?));
        }
        Ok(q)
    }

    fn and(&mut self) -> Result<Query, String> {
        let mut q = self.unary()?;
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.pos += 1;
                }
                Some(Tok::Open | Tok::Not | Tok::Minus | Tok::Word(_)) => {}
                _ => return Ok(q),
            }
            q = Query::And(Box::new(q), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Query, String> {
        match self.next() {
            Some(Tok::Not | Tok::Minus) => Ok(Query::Not(Box::new(self.unary()?))),
            Some(Tok::Open) => {
                let q = self.or()?;
                match self.next() {
                    Some(Tok::Close) => Ok(q),
                    _ => Err("a '(' is not closed".into()),
                }
            }
            Some(Tok::Word(w)) => Ok(match w.split_once(':') {
                Some((field, value)) => Query::Term {
                    field: Some(field.to_string()),
                    pattern: value.to_string(),
                },
                None => Query::Term {
                    field: None,
                    pattern: w,
                },
            }),
            Some(t) => Err(format!("unexpected {t:?} where a term should be")),
            None => Err("the query ends where a term should be".into()),
        }
    }
}

/// Parses a query string; `Ok(None)` for an empty one.
pub fn parse(s: &str) -> Result<Option<Query>, String> {
    let toks = tokenize(s);
    if toks.is_empty() {
        return Ok(None);
    }
    let mut p = Parser { toks, pos: 0 };
    let q = p.or()?;
    match p.peek() {
        None => Ok(Some(q)),
        Some(t) => Err(format!("unexpected {t:?} after a complete query")),
    }
}

/// `*` any run, `?` one character, the rest literal (pure).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether `thing` (connected or not) matches `q` (pure).
pub fn matches(q: &Query, thing: &Thing, connected: bool) -> bool {
    match q {
        Query::And(a, b) => matches(a, thing, connected) && matches(b, thing, connected),
        Query::Or(a, b) => matches(a, thing, connected) || matches(b, thing, connected),
        Query::Not(a) => !matches(a, thing, connected),
        Query::Term {
            field: None,
            pattern,
        } => pattern == "*" || thing.name.contains(pattern.as_str()),
        Query::Term {
            field: Some(f),
            pattern,
        } => {
            if pattern.is_empty() {
                return false;
            }
            let value = match f.as_str() {
                "thingName" => Some(thing.name.clone()),
                "thingId" => Some(thing.id.clone()),
                "thingTypeName" => thing.type_name.clone(),
                "connectivity.connected" => Some(connected.to_string()),
                _ => f
                    .strip_prefix("attributes.")
                    .and_then(|k| thing.attributes.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            value.is_some_and(|v| glob(pattern, &v))
        }
    }
}

fn thing_document(t: &Thing, connected: bool) -> Value {
    let mut v = json!({
        "thingName": t.name,
        "thingId": t.id,
        "attributes": t.attributes,
        "connectivity": { "connected": connected },
    });
    if let Some(tt) = &t.type_name {
        v["thingTypeName"] = json!(tt);
    }
    v
}

async fn search_index(State(state): State<Arc<CoreState>>, body: Bytes) -> ApiResult {
    let body = body_object(&body)?;
    match body.get("indexName").and_then(Value::as_str) {
        None | Some("AWS_Things") => {}
        Some(other) => {
            return Err(ApiError::not_found(format!(
                "Index {other} does not exist: the local core indexes things only (AWS_Things)"
            )))
        }
    }
    let query = body
        .get("queryString")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("queryString is required"))?;
    let parsed = parse(query).map_err(|e| {
        ApiError::new(
            400,
            "InvalidQueryException",
            format!("Syntax error in query string '{query}': {e}"),
        )
    })?;
    let max = body
        .get("maxResults")
        .and_then(Value::as_u64)
        .unwrap_or(500)
        .clamp(1, 500) as usize;
    let connected: HashSet<String> = state
        .broker()
        .map(|b| b.connected_client_ids().into_iter().collect())
        .unwrap_or_default();
    let mut things = Vec::new();
    if let Some(q) = parsed {
        let mut cursor: Option<String> = None;
        loop {
            let batch = state.store.list_things(cursor.as_deref(), 500)?;
            let Some(last) = batch.last() else { break };
            cursor = Some(last.name.clone());
            for t in &batch {
                let on = connected.contains(&t.name);
                if things.len() < max && matches(&q, t, on) {
                    things.push(thing_document(t, on));
                }
            }
        }
    }
    ok(json!({ "things": things, "thingGroups": [] }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thing(name: &str, ty: Option<&str>, attrs: &[(&str, &str)]) -> Thing {
        Thing {
            name: name.into(),
            id: format!("id-{name}"),
            type_name: ty.map(str::to_string),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect(),
            version: 1,
        }
    }

    #[test]
    fn globs() {
        assert!(glob("ab*", "abcefg"));
        assert!(glob("ab?", "abc"));
        assert!(!glob("ab?", "abcefg"));
        assert!(glob("*", ""));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("abc", "abd"));
    }

    #[test]
    fn evaluates_the_common_subset() {
        let things = [
            thing(
                "thing1",
                Some("type1"),
                &[("attr1", "val1"), ("attr2", "val2")],
            ),
            thing(
                "thing2",
                Some("type2"),
                &[("attr1", "val1"), ("attr2", "val3")],
            ),
            thing(
                "thing3",
                Some("type1"),
                &[("attr1", "val4"), ("attr2", "val2")],
            ),
        ];
        let table = [
            ("thingTypeName:type1 AND attributes.attr2:val2", "13"),
            ("thingTypeName:type1 attributes.attr2:val2", "13"),
            ("thingTypeName:type2 OR attributes.attr1:val4", "23"),
            ("NOT thingTypeName:type2", "13"),
            ("-thingName:thing1", "23"),
            (
                "((thingTypeName:type1 OR thingTypeName:type2) AND -attributes.attr2:val2) AND attributes.attr1:val1",
                "2",
            ),
            ("* AND *", "123"),
            ("thing", "123"),
            ("thingName:thing?", "123"),
            ("connectivity.connected:true", "1"),
            ("attributes.attr1:", ""),
            ("attributes.attr1", ""),
        ];
        for (query, want) in table {
            let q = parse(query).unwrap().unwrap();
            let got: String = things
                .iter()
                .filter(|t| matches(&q, t, t.name == "thing1"))
                .map(|t| t.name.trim_start_matches("thing").to_string())
                .collect();
            assert_eq!(got, want, "{query}");
        }
    }

    #[test]
    fn refuses_broken_queries() {
        for bad in [
            "thingName:thing1 AND",
            "thingName:thing1 OR",
            "NOT",
            "(thingName:thing1",
            "thingName:thing1)",
            "AND thingName:thing1",
            "OR thingName:thing1",
            "thingName:thing1 AND OR thingName:thing2",
            "NOT AND thingName:thing2",
            "thingName:thing1 OR NOT",
            ")thingName:thing1",
            "(thingName:thing1 thingName:thing2",
            "()",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("   ").unwrap(), None);
    }
}
