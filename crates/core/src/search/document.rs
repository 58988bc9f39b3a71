//! A thing (or thing group) as the index holds it: searchable fields with
//! typed values, and the query evaluated over them (pure, no I/O).

use serde_json::Value;

use super::query::{glob, Bound, Matcher, Piece, Query};

/// A searchable value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// Text (names, registry attributes, shadow strings).
    Str(String),
    /// A number (shadow numbers).
    Num(f64),
    /// A boolean (`connectivity.connected`, shadow booleans).
    Bool(bool),
}

impl Val {
    fn text(&self) -> String {
        match self {
            Val::Str(s) => s.clone(),
            Val::Num(n) => n.to_string(),
            Val::Bool(b) => b.to_string(),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Str(s) => s.trim().parse().ok(),
            Val::Bool(_) => None,
        }
    }
}

/// The searchable fields of one document, e.g. `thingName`,
/// `attributes.color`, `shadow.reported.battery`; a field may repeat
/// (`thingGroupNames`, arrays).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Doc {
    fields: Vec<(String, Val)>,
}

impl Doc {
    /// Adds one field.
    pub fn push(&mut self, field: impl Into<String>, value: Val) {
        self.fields.push((field.into(), value));
    }

    /// Adds a JSON value under `prefix`: objects by dotted path, arrays as
    /// repeats of their elements, nulls not at all.
    pub fn push_json(&mut self, prefix: &str, v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    self.push_json(&format!("{prefix}.{k}"), v);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| self.push_json(prefix, v)),
            Value::String(s) => self.push(prefix, Val::Str(s.clone())),
            Value::Number(n) => self.push(prefix, Val::Num(n.as_f64().unwrap_or(f64::NAN))),
            Value::Bool(b) => self.push(prefix, Val::Bool(*b)),
            Value::Null => {}
        }
    }

    /// Whether the document matches `q`.
    pub fn matches(&self, q: &Query) -> bool {
        match q {
            Query::And(a, b) => self.matches(a) && self.matches(b),
            Query::Or(a, b) => self.matches(a) || self.matches(b),
            Query::Not(a) => !self.matches(a),
            Query::Term { field: None, .. } if q.is_match_all() => true,
            Query::Term { field, matcher } => self
                .fields
                .iter()
                .filter(|(f, _)| field.as_ref().is_none_or(|want| want == f))
                .any(|(_, v)| value_matches(matcher, v)),
        }
    }
}

fn value_matches(m: &Matcher, v: &Val) -> bool {
    match m {
        Matcher::Pattern(p) if p.is_empty() => false,
        Matcher::Pattern(p) => match (literal_number(p), v) {
            (Some(n), Val::Num(x)) => n == *x,
            _ => glob(p, &v.text()),
        },
        Matcher::Phrase(s) => v.text().to_lowercase() == s.to_lowercase(),
        Matcher::Range(lo, hi) => in_range(lo, hi, v),
    }
}

/// A pattern without wildcards that reads as a number.
fn literal_number(p: &[Piece]) -> Option<f64> {
    let s: Option<String> = p
        .iter()
        .map(|p| match p {
            Piece::Lit(c) => Some(*c),
            _ => None,
        })
        .collect();
    s?.parse().ok()
}

/// Numbers compare as numbers when both ends are numbers (or open) and the
/// value reads as one; otherwise as text, ignoring case.
fn in_range(lo: &Bound, hi: &Bound, v: &Val) -> bool {
    let num = |b: &Bound| b.value.as_ref().map(|s| s.parse::<f64>().ok());
    let (nlo, nhi) = (num(lo), num(hi));
    let numeric = !matches!(nlo, Some(None)) && !matches!(nhi, Some(None));
    if numeric {
        let Some(x) = v.number() else { return false };
        let above = nlo
            .flatten()
            .is_none_or(|l| x > l || (lo.inclusive && x == l));
        let below = nhi
            .flatten()
            .is_none_or(|h| x < h || (hi.inclusive && x == h));
        return above && below;
    }
    let x = v.text().to_lowercase();
    let above = lo.value.as_ref().is_none_or(|l| {
        let l = l.to_lowercase();
        x > l || (lo.inclusive && x == l)
    });
    let below = hi.value.as_ref().is_none_or(|h| {
        let h = h.to_lowercase();
        x < h || (hi.inclusive && x == h)
    });
    above && below
}

#[cfg(test)]
mod tests {
    use super::super::query::parse;
    use super::*;
    use serde_json::json;

    fn doc(name: &str, ty: &str, groups: &[&str], attrs: Value, shadow: Value) -> Doc {
        let mut d = Doc::default();
        d.push("thingName", Val::Str(name.into()));
        d.push("thingTypeName", Val::Str(ty.into()));
        for g in groups {
            d.push("thingGroupNames", Val::Str((*g).into()));
        }
        d.push_json("attributes", &attrs);
        d.push_json("shadow", &shadow);
        d.push("connectivity.connected", Val::Bool(name == "thing1"));
        d
    }

    fn fleet() -> Vec<Doc> {
        vec![
            doc(
                "thing1",
                "type1",
                &["group1", "billing1"],
                json!({"attr1": "val1", "n": "75"}),
                json!({"reported": {"battery": 80, "mode": "Eco"}, "hasDelta": false}),
            ),
            doc(
                "thing2",
                "type2",
                &["group2"],
                json!({"attr1": "val1", "n": "80"}),
                json!({"reported": {"battery": 20.5, "tags": ["a", "b"]}, "hasDelta": true}),
            ),
            doc(
                "Thing3",
                "type1",
                &["group1"],
                json!({"attr1": "val4", "n": "9"}),
                json!({}),
            ),
        ]
    }

    #[test]
    fn evaluates_queries_over_the_fields() {
        let table = [
            ("thingTypeName:type1 AND attributes.attr1:val1", "1"),
            ("thingTypeName:type1 attributes.attr1:val4", "3"),
            ("thingGroupNames:group1 OR thingGroupNames:billing*", "13"),
            ("NOT (thingGroupNames:group1 OR thingGroupNames:group2)", ""),
            ("-thingGroupNames:group2", "13"),
            ("thingName:thing?", "123"),
            ("thingName:THING1", "1"),
            ("connectivity.connected:true", "1"),
            ("connectivity.connected:false", "23"),
            ("attributes.n:[75 TO 80]", "12"),
            ("attributes.n:{75 TO 80]", "2"),
            ("attributes.n:[* TO 10}", "3"),
            ("attributes.attr1:[\"val1\" TO \"val2\"]", "12"),
            ("shadow.reported.battery:[50 TO *]", "1"),
            ("shadow.reported.battery:20.5", "2"),
            ("shadow.reported.mode:eco", "1"),
            ("shadow.reported.tags:b", "2"),
            ("shadow.hasDelta:true", "2"),
            ("shadow.reported.battery:*", "12"),
            ("val4", "3"),
            ("group*", "123"),
            ("*", "123"),
            ("attributes.attr1:", ""),
            ("attributes.missing:*", ""),
            ("thingTypeName:ba.", ""),
        ];
        for (query, want) in table {
            let q = parse(query).unwrap().unwrap();
            let got: String = fleet()
                .iter()
                .enumerate()
                .filter(|(_, d)| d.matches(&q))
                .map(|(i, _)| (i + 1).to_string())
                .collect();
            assert_eq!(got, want, "{query}");
        }
    }
}
