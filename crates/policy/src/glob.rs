//! IAM-style wildcard matching (`*` and `?`) over Unicode characters.
//!
//! Patterns are first turned into [`Tok`]ens so that text coming from a
//! substituted policy variable can be matched *literally*: a client id that
//! contains `*` must never widen a policy.

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// Exactly this character.
    Char(char),
    /// `*`: any run of characters, including `/` and the empty run.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Matches `text` against an IAM wildcard `pattern`, case-sensitively, over
/// the whole string.
///
/// `*` matches any run of characters (including `/`, `:` and the empty
/// run), `?` exactly one character (one Unicode scalar value, not one byte).
/// Every other character, MQTT `+` and `#` included, matches only itself.
/// Policy variables (`${...}`) are *not* interpreted here: see
/// [`PolicyDocument::evaluate`](crate::PolicyDocument::evaluate) for that.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let toks: Vec<Tok> = pattern
        .chars()
        .map(|c| match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Char(c),
        })
        .collect();
    let text: Vec<char> = text.chars().collect();
    match_tokens(&toks, &text)
}

/// Matches compiled tokens against text: linear-time greedy matching with a
/// single back-tracking point (the last `*` seen), which is exact for
/// patterns made of `*`, `?` and literals.
pub(crate) fn match_tokens(pat: &[Tok], text: &[char]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // (index of the last `*` in pat, text position it currently absorbs up to)
    let mut back: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(Tok::Star) => {
                back = Some((p, t));
                p += 1;
                continue;
            }
            Some(Tok::One) => {
                p += 1;
                t += 1;
                continue;
            }
            Some(Tok::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match back {
            Some((sp, st)) => {
                // Let the last `*` absorb one more character and retry.
                p = sp + 1;
                t = st + 1;
                back = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|tok| *tok == Tok::Star)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob_table() {
        // (pattern, text, expected)
        let cases: &[(&str, &str, bool)] = &[
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("**", "", true),
            ("**", "anything/at/all", true),
            ("a**b", "ab", true),
            ("a**b", "a/x/b", true),
            ("?", "", false),
            ("?", "a", true),
            ("?", "ab", false),
            ("ab?", "ab", false),
            ("ab?", "abc", true),
            ("ab?", "abcd", false),
            ("a*", "a", true),
            ("a*", "a/b/c", true),
            ("*a", "bbba", true),
            ("*a", "bbbab", false),
            ("a*b*c", "a-b-b-c", true),
            ("a*b*c", "a-b-b-", false),
            ("topic/*/x", "topic//x", true),
            ("topic/*/x", "topic/a/b/x", true),
            // case-sensitive
            ("Topic/*", "topic/a", false),
            // MQTT wildcards are literal
            ("a/#", "a/#", true),
            ("a/#", "a/b", false),
            ("a/+/c", "a/b/c", false),
            ("a/+/c", "a/+/c", true),
            // unicode: `?` is one character, not one byte
            ("caf?", "café", true),
            ("caf??", "café", false),
            ("ü*ß", "üxyzß", true),
            ("日本/*", "日本/語", true),
            ("?本", "日本", true),
            // pathological back-tracking stays correct
            ("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
            ("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", true),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(
                glob_match(pattern, text),
                *want,
                "glob_match({pattern:?}, {text:?})"
            );
        }
    }
}
