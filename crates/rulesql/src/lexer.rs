//! Tokens of a rule statement (pure).

use crate::SqlError;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A name: a field, a function or a keyword (compared case-insensitively).
    Ident(String),
    /// A `'single-quoted'` string (`''` is one quote).
    Str(String),
    /// A number literal as written.
    Num(serde_json::Number),
    /// One of `* , . ( ) [ ] = <> != < > <= >= + - / %`.
    Sym(&'static str),
}

const SYMBOLS: [&str; 16] = [
    "<>", "!=", "<=", ">=", "*", ",", ".", "(", ")", "[", "]", "=", "<", ">", "+", "-",
];
const MORE_SYMBOLS: [&str; 2] = ["/", "%"];

/// Splits `sql` into tokens; the error names the first character that is
/// not part of the subset.
pub(crate) fn tokens(sql: &str) -> Result<Vec<Tok>, SqlError> {
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
        } else if c == '\'' {
            let (s, tail) = string(rest)?;
            out.push(Tok::Str(s));
            rest = tail;
        } else if c.is_ascii_digit() {
            let (n, tail) = number(rest)?;
            out.push(Tok::Num(n));
            rest = tail;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.push(Tok::Ident(rest[..end].to_string()));
            rest = &rest[end..];
        } else if let Some(sym) = SYMBOLS
            .iter()
            .chain(&MORE_SYMBOLS)
            .find(|s| rest.starts_with(**s))
        {
            out.push(Tok::Sym(sym));
            rest = &rest[sym.len()..];
        } else {
            return Err(SqlError(format!(
                "'{c}' is not part of the SQL the local rules engine runs"
            )));
        }
    }
    Ok(out)
}

fn string(s: &str) -> Result<(String, &str), SqlError> {
    let mut value = String::new();
    let mut chars = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\'' {
            value.push(c);
        } else if chars.peek().is_some_and(|(_, n)| *n == '\'') {
            value.push('\'');
            chars.next();
        } else {
            return Ok((value, &s[i + 1..]));
        }
    }
    Err(SqlError("a string literal is not closed with '".into()))
}

fn number(s: &str) -> Result<(serde_json::Number, &str), SqlError> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let text = &s[..end];
    let n = if text.contains('.') {
        text.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
    } else {
        text.parse::<i64>().ok().map(serde_json::Number::from)
    };
    n.map(|n| (n, &s[end..]))
        .ok_or_else(|| SqlError(format!("{text} is not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_statement() {
        let t = tokens("SELECT a.b AS x FROM 'r/+' WHERE t >= 2.5 AND s <> 'it''s'").unwrap();
        assert_eq!(t[0], Tok::Ident("SELECT".into()));
        assert_eq!(t[2], Tok::Sym("."));
        assert_eq!(t[7], Tok::Str("r/+".into()));
        assert!(t.contains(&Tok::Sym(">=")));
        assert_eq!(t.last(), Some(&Tok::Str("it's".into())));
        assert_eq!(tokens("x = 1.2.3").unwrap_err().0, "1.2.3 is not a number");
        assert!(tokens("a ; b").unwrap_err().0.contains("';'"));
        assert!(tokens("'open").unwrap_err().0.contains("not closed"));
    }
}
