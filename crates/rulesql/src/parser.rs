//! A statement's syntax tree, and the parser from tokens (pure).

use serde_json::Value;

use crate::lexer::{tokens, Tok};
use crate::{SqlError, MAX_DEPTH, MAX_OPERATORS};

/// A parsed `SELECT ... FROM '<filter>' [WHERE ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// What the outgoing message holds.
    pub items: Vec<Item>,
    /// The `FROM` topic filter.
    pub filter: String,
    /// The `WHERE` condition, if any.
    pub condition: Option<Expr>,
}

/// One SELECT item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `*`: every key of the incoming JSON object (or the payload itself).
    Star,
    /// An expression and the key it is written under.
    Named {
        /// The value.
        expr: Expr,
        /// The `AS` name, else the field's last key or the function's name.
        name: String,
    },
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal number, string or boolean.
    Lit(Value),
    /// A field of the incoming payload: keys and array indexes.
    Path(Vec<Seg>),
    /// A function call.
    Call(Func, Vec<Expr>),
    /// `NOT e`.
    Not(Box<Expr>),
    /// `-e`.
    Neg(Box<Expr>),
    /// `l op r`.
    Bin(BinOp, Box<Expr>, Box<Expr>),
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    /// `.key` (or the first name).
    Key(String),
    /// `[n]`.
    Index(usize),
}

/// The functions of the subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `topic()` the whole topic, `topic(n)` its n-th level (from 1).
    Topic,
    /// `timestamp()`: milliseconds since the epoch, when the rule runs.
    Timestamp,
    /// `lower(s)`.
    Lower,
    /// `upper(s)`.
    Upper,
    /// `abs(n)`.
    Abs,
}

impl Func {
    fn named(name: &str) -> Option<(Func, &'static str, std::ops::RangeInclusive<usize>)> {
        Some(match name.to_ascii_lowercase().as_str() {
            "topic" => (Func::Topic, "topic", 0..=1),
            "timestamp" => (Func::Timestamp, "timestamp", 0..=0),
            "lower" => (Func::Lower, "lower", 1..=1),
            "upper" => (Func::Upper, "upper", 1..=1),
            "abs" => (Func::Abs, "abs", 1..=1),
            _ => return None,
        })
    }
}

/// Binary operators, by precedence from loosest: OR, AND, comparisons,
/// `+ -`, `* / %`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// Keywords of AWS's SQL that the subset does not run.
const UNSUPPORTED: [&str; 10] = [
    "VALUE",
    "CASE",
    "SET",
    "IN",
    "IS",
    "LIKE",
    "BETWEEN",
    "NULL",
    "ISUNDEFINED",
    "GET",
];

/// Parses a rule statement; the error says what is outside the subset.
pub fn parse(sql: &str) -> Result<Statement, SqlError> {
    let mut p = Parser {
        toks: tokens(sql)?,
        pos: 0,
        depth: 0,
        operators: 0,
    };
    p.keyword("SELECT")?;
    let items = p.items()?;
    p.keyword("FROM")?;
    let filter = match p.next() {
        Some(Tok::Str(f)) if !f.is_empty() => f,
        _ => return Err(SqlError("expected a quoted topic filter after FROM".into())),
    };
    let condition = if p.peek_keyword("WHERE") {
        p.pos += 1;
        Some(p.expr()?)
    } else {
        None
    };
    if let Some(t) = p.toks.get(p.pos) {
        return Err(unexpected(t, "at the end"));
    }
    Ok(Statement {
        items,
        filter,
        condition,
    })
}

/// Parses one expression (a substitution template's `${...}`).
pub fn parse_expr(text: &str) -> Result<Expr, SqlError> {
    let mut p = Parser {
        toks: tokens(text)?,
        pos: 0,
        depth: 0,
        operators: 0,
    };
    let e = p.expr()?;
    match p.toks.get(p.pos) {
        None => Ok(e),
        Some(t) => Err(unexpected(t, &format!("in ${{{text}}}"))),
    }
}

/// A token where the statement should have ended: AWS SQL the subset
/// lacks is named as such.
fn unexpected(t: &Tok, place: &str) -> SqlError {
    match t {
        Tok::Ident(k) if UNSUPPORTED.contains(&k.to_ascii_uppercase().as_str()) => {
            SqlError(format!(
                "{} is AWS IoT SQL that the local rules engine does not run",
                k.to_ascii_uppercase()
            ))
        }
        _ => SqlError(format!("unexpected {} {place}", show(t))),
    }
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => s.clone(),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Num(n) => n.to_string(),
        Tok::Sym(s) => (*s).to_string(),
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    /// Current nesting of parentheses, NOT, minus and calls.
    depth: usize,
    /// Binary operators so far: a chain `a + a + ...` nests its tree
    /// without nesting the parser, so it is bounded apart.
    operators: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek_sym(&self, sym: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Sym(s)) if *s == sym)
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_sym(&mut self, sym: &str) -> bool {
        let hit = self.peek_sym(sym);
        self.pos += usize::from(hit);
        hit
    }

    fn keyword(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.peek_keyword(kw) {
            self.pos += 1;
            Ok(())
        } else {
            let found = self.toks.get(self.pos).map_or("the end".into(), show);
            Err(SqlError(format!("expected {kw}, found {found}")))
        }
    }

    fn items(&mut self) -> Result<Vec<Item>, SqlError> {
        let mut items = Vec::new();
        loop {
            if self.eat_sym("*") {
                items.push(Item::Star);
            } else {
                let expr = self.expr()?;
                let name = if self.peek_keyword("AS") {
                    self.pos += 1;
                    match self.next() {
                        Some(Tok::Ident(n)) => n,
                        _ => return Err(SqlError("expected a name after AS".into())),
                    }
                } else {
                    default_name(&expr)?
                };
                items.push(Item::Named { expr, name });
            }
            if !self.eat_sym(",") {
                return Ok(items);
            }
        }
    }

    fn deeper(&mut self) -> Result<(), SqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SqlError(format!(
                "the statement nests deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, SqlError> {
        self.deeper()?;
        let e = self.binary(0);
        self.depth -= 1;
        e
    }

    /// Precedence climbing over [`LEVELS`].
    fn binary(&mut self, level: usize) -> Result<Expr, SqlError> {
        if level == LEVELS.len() {
            return self.unary();
        }
        if level == NOT_LEVEL && self.peek_keyword("NOT") {
            // NOT binds looser than comparisons: NOT a = b is NOT (a = b).
            self.pos += 1;
            self.deeper()?;
            let e = self.binary(NOT_LEVEL).map(|e| Expr::Not(Box::new(e)));
            self.depth -= 1;
            return e;
        }
        let mut left = self.binary(level + 1)?;
        while let Some(op) = self.operator(LEVELS[level]) {
            self.operators += 1;
            if self.operators > MAX_OPERATORS {
                return Err(SqlError(format!(
                    "the statement has more than {MAX_OPERATORS} operators"
                )));
            }
            let right = self.binary(level + 1)?;
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn operator(&mut self, ops: &[(&str, BinOp)]) -> Option<BinOp> {
        let (_, op) = ops.iter().find(|(text, _)| match self.toks.get(self.pos) {
            Some(Tok::Sym(s)) => s == text,
            Some(Tok::Ident(s)) => s.eq_ignore_ascii_case(text),
            _ => false,
        })?;
        self.pos += 1;
        Some(*op)
    }

    fn unary(&mut self) -> Result<Expr, SqlError> {
        if self.eat_sym("-") {
            self.deeper()?;
            let e = self.unary().map(|e| Expr::Neg(Box::new(e)));
            self.depth -= 1;
            return e;
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, SqlError> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(Expr::Lit(Value::Number(n))),
            Some(Tok::Str(s)) => Ok(Expr::Lit(Value::String(s))),
            Some(Tok::Sym("(")) => {
                let e = self.expr()?;
                if self.eat_sym(")") {
                    Ok(e)
                } else {
                    Err(SqlError("a ( is not closed".into()))
                }
            }
            Some(Tok::Ident(name)) => self.named(name),
            Some(t) => Err(SqlError(format!("unexpected {}", show(&t)))),
            None => Err(SqlError(
                "the statement ends in the middle of an expression".into(),
            )),
        }
    }

    fn named(&mut self, name: String) -> Result<Expr, SqlError> {
        let upper = name.to_ascii_uppercase();
        match upper.as_str() {
            "TRUE" => return Ok(Expr::Lit(Value::Bool(true))),
            "FALSE" => return Ok(Expr::Lit(Value::Bool(false))),
            k if UNSUPPORTED.contains(&k) => {
                return Err(SqlError(format!(
                    "{upper} is AWS IoT SQL that the local rules engine does not run"
                )))
            }
            _ => {}
        }
        if self.eat_sym("(") {
            return self.call(&name);
        }
        let mut path = vec![Seg::Key(name)];
        loop {
            if self.eat_sym(".") {
                match self.next() {
                    Some(Tok::Ident(k)) => path.push(Seg::Key(k)),
                    _ => return Err(SqlError("expected a key after '.'".into())),
                }
            } else if self.eat_sym("[") {
                let i = match self.next() {
                    Some(Tok::Num(n)) => n.as_u64().map(|i| i as usize),
                    _ => None,
                };
                match (i, self.eat_sym("]")) {
                    (Some(i), true) => path.push(Seg::Index(i)),
                    _ => return Err(SqlError("expected [index] with a whole number".into())),
                }
            } else {
                return Ok(Expr::Path(path));
            }
        }
    }

    fn call(&mut self, name: &str) -> Result<Expr, SqlError> {
        let (func, canonical, arity) = Func::named(name).ok_or_else(|| {
            SqlError(format!(
                "{name}() is not one of the functions the local rules engine runs (topic, timestamp, lower, upper, abs)"
            ))
        })?;
        let mut args = Vec::new();
        if !self.eat_sym(")") {
            loop {
                args.push(self.expr()?);
                if self.eat_sym(")") {
                    break;
                }
                if !self.eat_sym(",") {
                    return Err(SqlError(format!("expected , or ) in {canonical}()")));
                }
            }
        }
        if !arity.contains(&args.len()) {
            return Err(SqlError(format!(
                "{canonical}() takes {} to {} arguments, not {}",
                arity.start(),
                arity.end(),
                args.len()
            )));
        }
        Ok(Expr::Call(func, args))
    }
}

/// The level NOT prefixes: under AND, over the comparisons.
const NOT_LEVEL: usize = 2;

const LEVELS: [&[(&str, BinOp)]; 5] = [
    &[("OR", BinOp::Or)],
    &[("AND", BinOp::And)],
    &[
        ("=", BinOp::Eq),
        ("<>", BinOp::Ne),
        ("!=", BinOp::Ne),
        ("<=", BinOp::Le),
        (">=", BinOp::Ge),
        ("<", BinOp::Lt),
        (">", BinOp::Gt),
    ],
    &[("+", BinOp::Add), ("-", BinOp::Sub)],
    &[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Rem)],
];

fn default_name(expr: &Expr) -> Result<String, SqlError> {
    match expr {
        Expr::Path(p) => match p.iter().rev().find_map(|s| match s {
            Seg::Key(k) => Some(k.clone()),
            Seg::Index(_) => None,
        }) {
            Some(k) => Ok(k),
            None => Err(SqlError("name this item with AS".into())),
        },
        Expr::Call(f, _) => Ok(Func::named(&format!("{f:?}"))
            .map(|(_, n, _)| n.to_string())
            .unwrap_or_default()),
        _ => Err(SqlError(
            "an item that is not a field or a function needs a name: add AS <name>".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_items_filter_and_condition() {
        let s = parse("select *, a.b, topic(2) AS robot, 15 as speed FROM 'gopigo/+/telemetry' where distance_mm < 100 AND NOT stopped").unwrap();
        assert_eq!(s.filter, "gopigo/+/telemetry");
        assert_eq!(s.items[0], Item::Star);
        let names: Vec<_> = s.items[1..]
            .iter()
            .map(|i| match i {
                Item::Named { name, .. } => name.as_str(),
                Item::Star => "*",
            })
            .collect();
        assert_eq!(names, ["b", "robot", "speed"]);
        assert!(matches!(s.condition, Some(Expr::Bin(BinOp::And, _, _))));
    }

    #[test]
    fn precedence_binds_multiplication_before_comparison_before_and() {
        let s = parse("SELECT * FROM 't' WHERE a + 2 * 3 > 7 OR b = 1 AND c = 2").unwrap();
        let Some(Expr::Bin(BinOp::Or, left, right)) = s.condition else {
            panic!("OR is loosest")
        };
        assert!(matches!(*right, Expr::Bin(BinOp::And, _, _)));
        let Expr::Bin(BinOp::Gt, sum, _) = *left else {
            panic!("> under OR")
        };
        assert!(
            matches!(*sum, Expr::Bin(BinOp::Add, _, ref m) if matches!(**m, Expr::Bin(BinOp::Mul, _, _)))
        );
    }

    #[test]
    fn what_is_outside_the_subset_is_named() {
        for (sql, says) in [
            ("SELECT VALUE color FROM 't'", "VALUE is AWS IoT SQL"),
            ("SELECT * FROM 't' WHERE x IN (1, 2)", "IN is AWS IoT SQL"),
            ("SELECT newuuid() AS id FROM 't'", "newuuid() is not one of"),
            ("SELECT topic(1, 2) FROM 't'", "takes 0 to 1 arguments"),
            ("SELECT 1 + 1 FROM 't'", "add AS <name>"),
            ("SELECT * FROM t", "quoted topic filter"),
            ("SELECT * FROM 't' WHERE (a = 1", "not closed"),
            ("SELECT * FROM 't' WHERE a = 1 b", "unexpected b at the end"),
            ("DELETE FROM 't'", "expected SELECT"),
        ] {
            let e = parse(sql).unwrap_err().0;
            assert!(e.contains(says), "{sql}: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!(
            "SELECT * FROM 't' WHERE {}1{}",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert!(parse(&deep).unwrap_err().0.contains("nests deeper"));
        let nots = format!("SELECT * FROM 't' WHERE {} true", "NOT ".repeat(10_000));
        assert!(parse(&nots).unwrap_err().0.contains("nests deeper"));
        let chain = format!("SELECT * FROM 't' WHERE a{} > 0", " + a".repeat(100_000));
        assert!(parse(&chain)
            .unwrap_err()
            .0
            .contains("more than 256 operators"));
        let negs = format!("SELECT * FROM 't' WHERE {}1 > 0", "- ".repeat(10_000));
        assert!(parse(&negs).unwrap_err().0.contains("nests deeper"));
        let ok = format!(
            "SELECT * FROM 't' WHERE {}1{} = 1",
            "(".repeat(20),
            ")".repeat(20)
        );
        assert!(parse(&ok).is_ok());
    }
}
