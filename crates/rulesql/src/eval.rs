//! Evaluating a statement against one message (pure).

use serde_json::{Map, Number, Value};

use crate::parser::{parse_expr, BinOp, Expr, Func, Item, Seg, Statement};
use crate::SqlError;

/// One incoming message, as the rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The topic it was published to.
    pub topic: &'a str,
    /// Its payload.
    pub payload: &'a [u8],
    /// Now, in milliseconds since the epoch (`timestamp()`).
    pub now_ms: i64,
}

/// What a rule makes of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The WHERE condition is not true: no action runs.
    Skip,
    /// The actions run with this payload.
    Publish(Vec<u8>),
}

struct Ctx<'a> {
    msg: Message<'a>,
    json: Option<Value>,
}

impl<'a> Ctx<'a> {
    fn new(msg: Message<'a>) -> Self {
        Ctx {
            msg,
            json: serde_json::from_slice(msg.payload).ok(),
        }
    }
}

impl Statement {
    /// The outgoing payload for `msg`, or [`Output::Skip`] when the WHERE
    /// condition is not true (false or Undefined).
    pub fn apply(&self, msg: Message<'_>) -> Output {
        let ctx = Ctx::new(msg);
        if let Some(cond) = &self.condition {
            if eval(cond, &ctx) != Some(Value::Bool(true)) {
                return Output::Skip;
            }
        }
        if self.items == [Item::Star] {
            return Output::Publish(msg.payload.to_vec());
        }
        let mut out = Map::new();
        for item in &self.items {
            match item {
                Item::Star => {
                    if let Some(Value::Object(o)) = &ctx.json {
                        out.extend(o.clone());
                    }
                }
                Item::Named { expr, name } => {
                    if let Some(v) = eval(expr, &ctx) {
                        out.insert(name.clone(), v);
                    }
                }
            }
        }
        Output::Publish(Value::Object(out).to_string().into_bytes())
    }
}

/// Fills each `${expression}` of `template` from `msg` (the original
/// payload, functions and operators; not the SELECT's names, as on AWS).
/// An expression that does not parse or is Undefined is an error naming it.
pub fn render(template: &str, msg: Message<'_>) -> Result<String, SqlError> {
    let ctx = Ctx::new(msg);
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| SqlError(format!("${{ without a closing }} in {template}")))?;
        let text = &after[..end];
        let value = eval(&parse_expr(text)?, &ctx)
            .ok_or_else(|| SqlError(format!("${{{text}}} is undefined for this message")))?;
        match value {
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn eval(e: &Expr, ctx: &Ctx<'_>) -> Option<Value> {
    match e {
        Expr::Lit(v) => Some(v.clone()),
        Expr::Path(path) => lookup(ctx.json.as_ref()?, path).cloned(),
        Expr::Call(f, args) => call(*f, args, ctx),
        Expr::Not(e) => truth(&eval(e, ctx)?).map(|b| Value::Bool(!b)),
        Expr::Neg(e) => arith(BinOp::Sub, &Value::from(0), &eval(e, ctx)?),
        Expr::Bin(op, l, r) => binary(*op, eval(l, ctx)?, eval(r, ctx)?),
    }
}

fn lookup<'v>(mut v: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    for seg in path {
        v = match seg {
            Seg::Key(k) => v.as_object()?.get(k)?,
            Seg::Index(i) => v.as_array()?.get(*i)?,
        };
    }
    Some(v)
}

fn call(f: Func, args: &[Expr], ctx: &Ctx<'_>) -> Option<Value> {
    let arg = |i: usize| args.get(i).and_then(|a| eval(a, ctx));
    match f {
        Func::Topic if args.is_empty() => Some(Value::from(ctx.msg.topic)),
        Func::Topic => {
            let n = number(&arg(0)?)?;
            let level = (n.fract() == 0.0 && n >= 1.0).then_some(n as usize)?;
            ctx.msg.topic.split('/').nth(level - 1).map(Value::from)
        }
        Func::Timestamp => Some(Value::from(ctx.msg.now_ms)),
        Func::Lower => Some(Value::from(arg(0)?.as_str()?.to_lowercase())),
        Func::Upper => Some(Value::from(arg(0)?.as_str()?.to_uppercase())),
        Func::Abs => match arg(0)? {
            Value::Number(n) if n.is_i64() => n.as_i64()?.checked_abs().map(Value::from),
            v => Number::from_f64(number(&v)?.abs()).map(Value::Number),
        },
    }
}

/// A Boolean operand: a boolean, or the string "true"/"false" in any case.
fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A numeric operand: a number, or a string that is one.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn binary(op: BinOp, l: Value, r: Value) -> Option<Value> {
    use std::cmp::Ordering::*;
    let ordering = || number(&l)?.partial_cmp(&number(&r)?);
    let b = |x: bool| Some(Value::Bool(x));
    match op {
        BinOp::And => b(truth(&l)? && truth(&r)?),
        BinOp::Or => b(truth(&l)? || truth(&r)?),
        BinOp::Eq => b(equal(&l, &r)),
        BinOp::Ne => b(!equal(&l, &r)),
        BinOp::Lt => b(ordering()? == Less),
        BinOp::Le => b(ordering()? != Greater),
        BinOp::Gt => b(ordering()? == Greater),
        BinOp::Ge => b(ordering()? != Less),
        _ => arith(op, &l, &r),
    }
}

/// Numbers are equal by value (1 = 1.0); anything else by JSON equality.
fn equal(l: &Value, r: &Value) -> bool {
    match (l, r) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => l == r,
    }
}

/// `+ - * / %` on numbers (or numeric strings): whole numbers stay whole
/// unless the result is not (a division with a remainder, an overflow).
fn arith(op: BinOp, l: &Value, r: &Value) -> Option<Value> {
    let ints = l.as_i64().zip(r.as_i64());
    if let Some((a, b)) = ints {
        let exact = match op {
            BinOp::Add => a.checked_add(b),
            BinOp::Sub => a.checked_sub(b),
            BinOp::Mul => a.checked_mul(b),
            BinOp::Div if b != 0 && a % b == 0 => a.checked_div(b),
            BinOp::Rem if b != 0 => a.checked_rem(b),
            _ => None,
        };
        if let Some(v) = exact {
            return Some(Value::from(v));
        }
    }
    let (a, b) = (number(l)?, number(r)?);
    let v = match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Rem => a % b,
        _ => return None,
    };
    Number::from_f64(v).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn msg<'a>(topic: &'a str, payload: &'a str) -> Message<'a> {
        Message {
            topic,
            payload: payload.as_bytes(),
            now_ms: 1_700_000_000_000,
        }
    }

    fn run(sql: &str, topic: &str, payload: &str) -> Option<Value> {
        match parse(sql).unwrap().apply(msg(topic, payload)) {
            Output::Skip => None,
            Output::Publish(b) => Some(serde_json::from_slice(&b).unwrap_or(Value::Null)),
        }
    }

    #[test]
    fn the_developer_guide_examples() {
        let p = r#"{"color":"red","temperature":50}"#;
        let t = "topic/subtopic";
        assert_eq!(
            run("SELECT color FROM 'topic/subtopic'", t, p),
            Some(serde_json::json!({"color":"red"}))
        );
        assert_eq!(
            run(
                "SELECT color as my_color, temperature as fahrenheit FROM 'topic/subtopic'",
                t,
                p
            ),
            Some(serde_json::json!({"my_color":"red","fahrenheit":50}))
        );
        assert_eq!(
            run("SELECT *, 15 as speed FROM 'topic/subtopic'", t, p),
            Some(serde_json::json!({"color":"red","temperature":50,"speed":15}))
        );
        // WHERE first: not true, no outgoing payload.
        let hot = r#"{"color":"red","temperature":40}"#;
        assert_eq!(run("SELECT color AS my_color FROM 'topic/subtopic' WHERE temperature > 50 AND color <> 'red'", t, hot), None);
    }

    #[test]
    fn undefined_fails_a_condition_and_drops_an_item() {
        let sql = "SELECT distance_mm, missing.deep, topic(2) AS robot, topic(9) AS none FROM 'gopigo/+/telemetry' WHERE distance_mm < 100";
        let t = "gopigo/r1/telemetry";
        assert_eq!(
            run(sql, t, r#"{"distance_mm": 80}"#),
            Some(serde_json::json!({"distance_mm":80,"robot":"r1"}))
        );
        assert_eq!(run(sql, t, r#"{"distance_mm": 180}"#), None);
        assert_eq!(
            run(sql, t, r#"{"speed": 3}"#),
            None,
            "a missing field is Undefined, not less than 100"
        );
        assert_eq!(run(sql, t, "not json"), None);
        assert_eq!(
            run(sql, t, r#"{"distance_mm": "80"}"#),
            Some(serde_json::json!({"distance_mm":"80","robot":"r1"})),
            "a numeric string compares as a number"
        );
        assert_eq!(
            run("SELECT * FROM 't' WHERE NOT flag", "t", r#"{"flag": 3}"#),
            None,
            "NOT of a number is Undefined"
        );
        assert_eq!(
            run(
                "SELECT * FROM 't' WHERE NOT flag",
                "t",
                r#"{"flag": "FALSE"}"#
            ),
            Some(serde_json::json!({"flag":"FALSE"}))
        );
    }

    #[test]
    fn arithmetic_keeps_whole_numbers_whole() {
        let sql = "SELECT a + b AS s, a - b AS d, a * b AS p, a / b AS q, a % b AS r, -a AS n, abs(0 - a) AS m, b / 0 AS z FROM 't'";
        let out = run(sql, "t", r#"{"a": 7, "b": 2}"#).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"s":9,"d":5,"p":14,"q":3.5,"r":1,"n":-7,"m":7})
        );
        assert_eq!(
            run("SELECT 9223372036854775807 + 1 AS big FROM 't'", "t", "{}").unwrap()["big"],
            serde_json::json!(9.223372036854776e18)
        );
    }

    #[test]
    fn select_star_alone_passes_any_payload_through() {
        let out = parse("SELECT * FROM 'cam/#'")
            .unwrap()
            .apply(msg("cam/1", "\u{1}binary, not json"));
        assert_eq!(out, Output::Publish(b"\x01binary, not json".to_vec()));
    }

    #[test]
    fn templates_use_the_original_payload_and_functions() {
        let m = msg(
            "gopigo/r7/telemetry",
            r#"{"battery": {"volts": 9.5}, "name": "Ro"}"#,
        );
        assert_eq!(
            render("alerts/${topic(2)}/${lower(name)}", m).unwrap(),
            "alerts/r7/ro"
        );
        assert_eq!(
            render("${topic()}/copy", m).unwrap(),
            "gopigo/r7/telemetry/copy"
        );
        assert_eq!(render("v/${battery.volts}", m).unwrap(), "v/9.5");
        assert_eq!(render("plain/topic", m).unwrap(), "plain/topic");
        assert!(render("x/${missing}", m)
            .unwrap_err()
            .0
            .contains("${missing} is undefined"));
        assert!(render("x/${topic(2)", m)
            .unwrap_err()
            .0
            .contains("without a closing"));
        assert!(render("x/${newuuid()}", m)
            .unwrap_err()
            .0
            .contains("newuuid() is not one of"));
    }
}
