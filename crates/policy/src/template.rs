//! Resource and condition values with policy variables (`${iot:ClientId}`)
//! and wildcards, parsed once and expanded per request.

use crate::context::Context;
use crate::glob::{match_tokens, Tok};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Literal text (including `${*}` → `*`, `${?}` → `?`, `${$}` → `$`).
    Text(String),
    /// A `*` written in the policy: a wildcard.
    Star,
    /// A `?` written in the policy: a wildcard.
    One,
    /// `${name}`: replaced by the context value, matched literally.
    Var(String),
}

/// A policy string split into literal text, wildcards and variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Splits `s`. A `${` without a closing `}` is literal text.
    pub(crate) fn parse(s: &str) -> Self {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("${") {
                if let Some(end) = after.find('}') {
                    let name = &after[..end];
                    rest = &after[end + 1..];
                    match name {
                        "*" | "?" | "$" => text.push_str(name),
                        _ => {
                            flush(&mut text, &mut pieces);
                            pieces.push(Piece::Var(name.to_owned()));
                        }
                    }
                    continue;
                }
            }
            rest = &rest[c.len_utf8()..];
            match c {
                '*' => {
                    flush(&mut text, &mut pieces);
                    pieces.push(Piece::Star);
                }
                '?' => {
                    flush(&mut text, &mut pieces);
                    pieces.push(Piece::One);
                }
                c => text.push(c),
            }
        }
        flush(&mut text, &mut pieces);
        Self { pieces }
    }

    /// True when the template is exactly `*`.
    pub(crate) fn is_star(&self) -> bool {
        self.pieces == [Piece::Star]
    }

    /// The string after substitution, wildcards as plain characters (for
    /// `StringEquals` and friends). Unresolved variables stay as `${name}`.
    pub(crate) fn render(&self, ctx: &Context) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Star => out.push('*'),
                Piece::One => out.push('?'),
                Piece::Var(name) => push_var(&mut out, name, ctx),
            }
        }
        out
    }

    /// Wildcard match of `text` against the template after substitution.
    /// Only `*`/`?` written in the policy are wildcards; substituted values
    /// and `${*}`-style escapes match literally.
    pub(crate) fn glob(&self, text: &str, ctx: &Context, ignore_case: bool) -> bool {
        let mut toks = Vec::new();
        let lit = |s: &str, toks: &mut Vec<Tok>| {
            if ignore_case {
                toks.extend(s.chars().flat_map(char::to_lowercase).map(Tok::Char));
            } else {
                toks.extend(s.chars().map(Tok::Char));
            }
        };
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => lit(t, &mut toks),
                Piece::Star => toks.push(Tok::Star),
                Piece::One => toks.push(Tok::One),
                Piece::Var(name) => {
                    let mut s = String::new();
                    push_var(&mut s, name, ctx);
                    lit(&s, &mut toks);
                }
            }
        }
        let text: Vec<char> = if ignore_case {
            text.chars().flat_map(char::to_lowercase).collect()
        } else {
            text.chars().collect()
        };
        match_tokens(&toks, &text)
    }
}

fn flush(text: &mut String, pieces: &mut Vec<Piece>) {
    if !text.is_empty() {
        pieces.push(Piece::Text(std::mem::take(text)));
    }
}

fn push_var(out: &mut String, name: &str, ctx: &Context) {
    match ctx.variable(name) {
        Some(v) => out.push_str(v),
        None => {
            out.push_str("${");
            out.push_str(name);
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_variables() {
        let ctx = Context::new().with("iot:ClientId", "c*1");
        let t = Template::parse("a/${*}/${?}/${$}/${iot:ClientId}/${nope}/${open");
        assert_eq!(t.render(&ctx), "a/*/?/$/c*1/${nope}/${open");
        // `${*}` is a literal star, the substituted `*` too.
        assert!(t.glob("a/*/?/$/c*1/${nope}/${open", &ctx, false));
        assert!(!t.glob("a/x/?/$/c*1/${nope}/${open", &ctx, false));
        assert!(!t.glob("a/*/?/$/cX1/${nope}/${open", &ctx, false));
        assert!(Template::parse("*").is_star());
        assert!(!Template::parse("${*}").is_star());
    }
}
