//! Fleet indexing's query syntax, parsed (pure, no I/O).
//!
//! What AWS documents (Developer Guide, fleet indexing, "Query syntax" and
//! "Example thing queries"): terms and `"phrases"`, `field:value`, `*` and
//! `?` wildcards (a leading wildcard in at most one term, and then a query of
//! at most 100 characters), ranges `[a TO b]`, `{a TO b}` and mixed, with `*`
//! for an open end, `AND` (also a space), `OR`, `NOT` and `-`, parentheses,
//! field grouping `field:(a OR b)`, `\` escapes, at most twelve terms. Not
//! supported, as on AWS: regular expressions, fuzzy and proximity search,
//! boosting, and the characters `` ` @ # % / ' ; , ``.

/// The longest query with a leading wildcard (AWS: 100 characters).
pub const MAX_LEADING_WILDCARD_QUERY: usize = 100;
/// The most terms in one query (AWS: twelve).
pub const MAX_TERMS: usize = 12;
/// The deepest nesting of parentheses and negations: the parser and the
/// evaluation recurse, so a megabyte of `(` must not exhaust the stack.
pub const MAX_DEPTH: usize = 32;

/// One piece of a pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// A literal character (an escaped `*` or `?` is one too).
    Lit(char),
    /// `*`: any run of characters, also none.
    Any,
    /// `?`: exactly one character.
    One,
}

/// One end of a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// The value; `None` for `*` (open).
    pub value: Option<String>,
    /// `[`/`]` include the value, `{`/`}` exclude it.
    pub inclusive: bool,
}

/// What a term asks of a field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// A word, with wildcards.
    Pattern(Vec<Piece>),
    /// A quoted phrase: the whole value, no wildcards.
    Phrase(String),
    /// A range of numbers (when both ends are numbers or open) or strings.
    Range(Bound, Bound),
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// `field:value`, or a bare value (any field) when `field` is `None`.
    Term {
        /// The field, e.g. `thingName` or `attributes.color`.
        field: Option<String>,
        /// What the value must be.
        matcher: Matcher,
    },
    /// Both must match (`AND`, or two clauses side by side).
    And(Box<Query>, Box<Query>),
    /// At least one must match.
    Or(Box<Query>, Box<Query>),
    /// Must not match (`NOT`, `-`).
    Not(Box<Query>),
}

impl Query {
    /// Whether this is the bare `*` (every document).
    pub fn is_match_all(&self) -> bool {
        matches!(self, Query::Term { field: None, matcher: Matcher::Pattern(p) } if p == &[Piece::Any])
    }
}

/// A query that does not parse: AWS's InvalidQueryException.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError(msg.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Not,
    Minus,
    /// `field:(`: the `(` follows as [`Tok::Open`].
    Group(String),
    Term(Option<String>, Matcher),
}

const UNSUPPORTED: &[char] = &['`', '@', '#', '%', '/', '\'', ';', ','];

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    out: Vec<Tok>,
}

impl Lexer<'_> {
    fn run(mut self) -> Result<Vec<Tok>, QueryError> {
        while let Some(&c) = self.chars.peek() {
            match c {
                c if c.is_whitespace() => {
                    self.chars.next();
                }
                '(' | ')' => {
                    self.chars.next();
                    self.out.push(if c == '(' { Tok::Open } else { Tok::Close });
                }
                '-' => {
                    self.chars.next();
                    self.out.push(Tok::Minus);
                }
                _ => self.clause()?,
            }
        }
        Ok(self.out)
    }

    /// A word, `field:word`, `field:"phrase"`, `field:[range]` or `field:(`.
    fn clause(&mut self) -> Result<(), QueryError> {
        if self.chars.peek() == Some(&'"') {
            let phrase = self.phrase()?;
            self.out.push(Tok::Term(None, Matcher::Phrase(phrase)));
            return Ok(());
        }
        let (word, colon) = self.word(true)?;
        let Some(field) = colon.then_some(word.clone()) else {
            self.out.push(match plain(&word).as_deref() {
                Some("AND") => Tok::And,
                Some("OR") => Tok::Or,
                Some("NOT") => Tok::Not,
                _ => Tok::Term(None, Matcher::Pattern(word)),
            });
            return Ok(());
        };
        let field: String = field.iter().map(piece_char).collect();
        if field.is_empty() {
            return err("a ':' has no field name before it");
        }
        let matcher = match self.chars.peek() {
            Some('(') => {
                self.out.push(Tok::Group(field));
                return Ok(());
            }
            Some('"') => Matcher::Phrase(self.phrase()?),
            Some('[' | '{') => self.range()?,
            _ => Matcher::Pattern(self.word(false)?.0),
        };
        self.out.push(Tok::Term(Some(field), matcher));
        Ok(())
    }

    /// Characters up to a space or parenthesis (or, when `field` is true, the
    /// first unescaped `:`, reported as the second value).
    fn word(&mut self, field: bool) -> Result<(Vec<Piece>, bool), QueryError> {
        let mut out = Vec::new();
        while let Some(&c) = self.chars.peek() {
            if c.is_whitespace() || c == '(' || c == ')' {
                break;
            }
            self.chars.next();
            match c {
                ':' if field => return Ok((out, true)),
                '\\' => match self.chars.next() {
                    Some(e) => out.push(Piece::Lit(e)),
                    None => return err("the query ends with a '\\' that escapes nothing"),
                },
                '*' => out.push(Piece::Any),
                '?' => out.push(Piece::One),
                '"' | '[' | ']' | '{' | '}' => {
                    return err(format!("a '{c}' inside a word; escape it with '\\'"))
                }
                c if UNSUPPORTED.contains(&c) => {
                    return err(format!(
                        "the character '{c}' is not supported in fleet indexing queries"
                    ))
                }
                c => out.push(Piece::Lit(c)),
            }
        }
        Ok((out, false))
    }

    fn phrase(&mut self) -> Result<String, QueryError> {
        self.chars.next();
        let mut out = String::new();
        loop {
            match self.chars.next() {
                Some('"') => return Ok(out),
                Some('\\') => match self.chars.next() {
                    Some(e) => out.push(e),
                    None => break,
                },
                Some(c) => out.push(c),
                None => break,
            }
        }
        err("a '\"' is not closed")
    }

    fn range(&mut self) -> Result<Matcher, QueryError> {
        let lo_incl = self.chars.next() == Some('[');
        let mut body = String::new();
        let hi_incl = loop {
            match self.chars.next() {
                Some(']') => break true,
                Some('}') => break false,
                Some(c) => body.push(c),
                None => return err("a range's '[' or '{' is not closed with ']' or '}'"),
            }
        };
        let parts = range_parts(&body)?;
        let [lo, to, hi] = parts.as_slice() else {
            return err(format!("a range must be '[low TO high]', not '{body}'"));
        };
        if to.as_deref() != Some("TO") {
            return err(format!("a range must be '[low TO high]', not '{body}'"));
        }
        Ok(Matcher::Range(
            Bound {
                value: lo.clone(),
                inclusive: lo_incl,
            },
            Bound {
                value: hi.clone(),
                inclusive: hi_incl,
            },
        ))
    }
}

/// A range's words, quoted or not; `*` (unquoted) is `None`.
fn range_parts(body: &str) -> Result<Vec<Option<String>>, QueryError> {
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let s: String = chars.by_ref().take_while(|&c| c != '"').collect();
            out.push(Some(s));
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                s.push(c);
                chars.next();
            }
            out.push((s != "*").then_some(s));
        }
    }
    Ok(out)
}

fn piece_char(p: &Piece) -> char {
    match p {
        Piece::Lit(c) => *c,
        Piece::Any => '*',
        Piece::One => '?',
    }
}

/// The word as text when it has no wildcards.
fn plain(p: &[Piece]) -> Option<String> {
    p.iter()
        .map(|p| match p {
            Piece::Lit(c) => Some(*c),
            _ => None,
        })
        .collect()
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
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

    fn or(&mut self, field: Option<&str>) -> Result<Query, QueryError> {
        let mut q = self.and(field)?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            q = Query::Or(Box::new(q), Box::new(self.and(field)?));
        }
        Ok(q)
    }

    fn and(&mut self, field: Option<&str>) -> Result<Query, QueryError> {
        let mut q = self.unary(field)?;
        loop {
            match self.peek() {
                Some(Tok::And) => self.pos += 1,
                Some(Tok::Open | Tok::Not | Tok::Minus | Tok::Term(..) | Tok::Group(_)) => {}
                _ => return Ok(q),
            }
            q = Query::And(Box::new(q), Box::new(self.unary(field)?));
        }
    }

    fn unary(&mut self, field: Option<&str>) -> Result<Query, QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(format!(
                "the query nests parentheses and negations more than {MAX_DEPTH} deep"
            ));
        }
        let q = self.unary_inner(field);
        self.depth -= 1;
        q
    }

    fn unary_inner(&mut self, field: Option<&str>) -> Result<Query, QueryError> {
        match self.next() {
            Some(Tok::Not | Tok::Minus) => Ok(Query::Not(Box::new(self.unary(field)?))),
            Some(Tok::Open) => self.group(field),
            Some(Tok::Group(f)) => {
                if field.is_some() {
                    return err(format!(
                        "field '{f}' is grouped inside another field's group"
                    ));
                }
                self.pos += 1; // the '(' the lexer put after it
                self.group(Some(&f))
            }
            Some(Tok::Term(f, matcher)) => Ok(Query::Term {
                field: f.or_else(|| field.map(str::to_string)),
                matcher,
            }),
            Some(t) => err(format!("{} where a term should be", describe(&t))),
            None => err("the query ends where a term should be"),
        }
    }

    fn group(&mut self, field: Option<&str>) -> Result<Query, QueryError> {
        let q = self.or(field)?;
        match self.next() {
            Some(Tok::Close) => Ok(q),
            _ => err("a '(' is not closed with ')'"),
        }
    }
}

fn describe(t: &Tok) -> &'static str {
    match t {
        Tok::Open => "'('",
        Tok::Close => "a ')' without its '('",
        Tok::And => "AND",
        Tok::Or => "OR",
        Tok::Not => "NOT",
        Tok::Minus => "'-'",
        Tok::Group(_) | Tok::Term(..) => "a term",
    }
}

/// Parses a query; `Ok(None)` for one that is only white space.
pub fn parse(s: &str) -> Result<Option<Query>, QueryError> {
    let toks = Lexer {
        chars: s.chars().peekable(),
        out: Vec::new(),
    }
    .run()?;
    if toks.is_empty() {
        return Ok(None);
    }
    check_limits(s, &toks)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let q = p.or(None)?;
    match p.peek() {
        None => Ok(Some(q)),
        Some(t) => err(format!("{} after a complete query", describe(t))),
    }
}

/// AWS's limits: twelve terms; one term with a leading wildcard, and then
/// 100 characters at most.
fn check_limits(s: &str, toks: &[Tok]) -> Result<(), QueryError> {
    let terms: Vec<&Matcher> = toks
        .iter()
        .filter_map(|t| match t {
            Tok::Term(_, m) => Some(m),
            _ => None,
        })
        .collect();
    if terms.len() > MAX_TERMS {
        return err(format!(
            "the query has {} terms; fleet indexing allows at most {MAX_TERMS}",
            terms.len()
        ));
    }
    let leading = terms
        .iter()
        .filter(|m| {
            matches!(m, Matcher::Pattern(p)
            if p.len() > 1 && matches!(p[0], Piece::Any | Piece::One))
        })
        .count();
    if leading > 1 {
        return err("only one term of a query may start with a wildcard");
    }
    if leading == 1 && s.chars().count() > MAX_LEADING_WILDCARD_QUERY {
        return err(format!(
            "a query with a leading wildcard may be at most {MAX_LEADING_WILDCARD_QUERY} characters long"
        ));
    }
    Ok(())
}

/// Whether `text` matches `pattern`, ignoring case (AWS: "Search is case
/// insensitive"). Runs of `*` count as one, and a pattern that needs more
/// characters than `text` has fails at once, so a long pattern costs at most
/// about the square of the text's length.
pub fn glob(pattern: &[Piece], text: &str) -> bool {
    let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let (mut p, mut needed) = (Vec::new(), 0);
    for piece in pattern {
        match piece {
            Piece::Lit(c) => c.to_lowercase().for_each(|c| {
                p.push(Piece::Lit(c));
                needed += 1;
            }),
            Piece::Any if p.last() == Some(&Piece::Any) => {}
            Piece::Any => p.push(Piece::Any),
            Piece::One => {
                p.push(Piece::One);
                needed += 1;
            }
        }
        if needed > t.len() {
            return false;
        }
    }
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        match p.get(pi) {
            Some(Piece::One) => {
                pi += 1;
                ti += 1;
            }
            Some(Piece::Lit(c)) if *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            Some(Piece::Any) => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|p| *p == Piece::Any)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> Vec<Piece> {
        s.chars()
            .map(|c| match c {
                '*' => Piece::Any,
                '?' => Piece::One,
                c => Piece::Lit(c),
            })
            .collect()
    }

    fn term(field: &str, value: &str) -> Query {
        Query::Term {
            field: Some(field.into()),
            matcher: Matcher::Pattern(pat(value)),
        }
    }

    #[test]
    fn globs_ignore_case() {
        for (p, t, want) in [
            ("ab*", "abcefg", true),
            ("ab?", "abc", true),
            ("ab?", "abcefg", false),
            ("*", "", true),
            ("a*c*e", "abcde", true),
            ("abc", "abd", false),
            ("ABC", "abc", true),
            ("ba.", "bar", false),
            ("a**b", "ab", true),
            ("abcd", "abc", false),
        ] {
            assert_eq!(glob(&pat(p), t), want, "{p} ~ {t}");
        }
        // A megabyte of pattern against a short value answers at once.
        let long = pat(&"*a".repeat(1 << 19));
        assert!(!glob(&long, "aaaa"));
        assert!(glob(&[], ""));
    }

    #[test]
    fn parses_fields_operators_and_precedence() {
        let q = parse("thingName:a* attributes.x:1 OR NOT thingTypeName:t")
            .unwrap()
            .unwrap();
        assert_eq!(
            q,
            Query::Or(
                Box::new(Query::And(
                    Box::new(term("thingName", "a*")),
                    Box::new(term("attributes.x", "1"))
                )),
                Box::new(Query::Not(Box::new(term("thingTypeName", "t"))))
            )
        );
        // A colon after the first belongs to the value.
        assert_eq!(
            parse("thingName:a:b").unwrap().unwrap(),
            term("thingName", "a:b")
        );
    }

    #[test]
    fn field_groups_apply_their_field_inside() {
        let q = parse("thingName:(tv* AND -plasma)").unwrap().unwrap();
        assert_eq!(
            q,
            Query::And(
                Box::new(term("thingName", "tv*")),
                Box::new(Query::Not(Box::new(term("thingName", "plasma"))))
            )
        );
    }

    #[test]
    fn parses_ranges_phrases_and_escapes() {
        let q = parse("attributes.n:{75 TO 80]").unwrap().unwrap();
        let Query::Term {
            matcher: Matcher::Range(lo, hi),
            ..
        } = q
        else {
            panic!("{q:?}")
        };
        assert_eq!((lo.value.as_deref(), lo.inclusive), (Some("75"), false));
        assert_eq!((hi.value.as_deref(), hi.inclusive), (Some("80"), true));
        let q = parse("attributes.s:[\"abcd\" TO *]").unwrap().unwrap();
        assert!(
            matches!(q, Query::Term { matcher: Matcher::Range(ref lo, ref hi), .. }
                if lo.value.as_deref() == Some("abcd") && hi.value.is_none())
        );
        assert_eq!(
            parse("attributes.s:\"two words\"").unwrap().unwrap(),
            Query::Term {
                field: Some("attributes.s".into()),
                matcher: Matcher::Phrase("two words".into())
            }
        );
        assert_eq!(
            parse("thingName:a\\*").unwrap().unwrap(),
            Query::Term {
                field: Some("thingName".into()),
                matcher: Matcher::Pattern(vec![Piece::Lit('a'), Piece::Lit('*')])
            }
        );
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
            "thingName:thing1 AND NOT",
            ")thingName:thing1",
            "(thingName:thing1 thingName:thing2",
            "()",
            "attributes.n:[1 TO",
            "attributes.n:[1 2]",
            "attributes.s:\"open",
            "thingName:a@b",
            "thingName:*a OR thingGroupNames:*b",
            ":x",
            "a b c d e f g h i j k l m",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("   ").unwrap(), None);
        // A megabyte of nesting is refused, not a stack overflow.
        for deep in [
            format!("{}a{}", "(".repeat(1 << 20), ")".repeat(1 << 20)),
            format!("{}a", "NOT ".repeat(1 << 18)),
            format!("{}a", "-".repeat(1 << 20)),
        ] {
            assert!(parse(&deep).unwrap_err().0.contains("deep"));
        }
        let ok = format!(
            "{}a{}",
            "(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        );
        assert!(parse(&ok).is_ok());
        let long = format!("thingName:*x OR thingName:{}", "y".repeat(100));
        assert!(parse(&long).unwrap_err().0.contains("100"));
    }
}
