//! Who may watch: the per-boot access token and the request parameters,
//! as pure functions (no sockets).
//!
//! A viewer proves it may watch with the server's [`AccessToken`], sent as
//! `Authorization: Bearer TOKEN` or as the query parameter `token=TOKEN`
//! (for players that cannot set headers: VLC, OpenCV, an `<img>` tag).
//! The comparison takes the same time wherever the first wrong byte is.

use std::fmt;

use http::HeaderMap;
use subtle::ConstantTimeEq;

/// Random bytes in a generated token: 256 bits, well above the 128 that
/// make guessing hopeless.
const TOKEN_BYTES: usize = 32;

/// Shortest token [`AccessToken::from_secret`] takes: 22 characters of the
/// allowed alphabet carry at least 128 bits when chosen at random.
pub const MIN_TOKEN_CHARS: usize = 22;

/// The camera's access token: a secret every request must present.
///
/// `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// Why a token could not be made or taken.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The operating system's random number generator failed.
    #[error("cannot read the OS random number generator for the camera token: {0}")]
    Random(String),
    /// A given secret is too short or has characters a URL would mangle.
    #[error("a camera token needs at least {MIN_TOKEN_CHARS} characters from A-Z a-z 0-9 - . _ ~ (got {len} characters{bad})")]
    Unusable {
        /// The given secret's length, in characters.
        len: usize,
        /// A note on a character outside the alphabet, if any.
        bad: String,
    },
}

impl AccessToken {
    /// A fresh token from the operating system's random number generator:
    /// 256 bits as 64 lowercase hex characters (safe in headers and URLs).
    pub fn generate() -> Result<Self, TokenError> {
        use rand::RngCore;
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| TokenError::Random(e.to_string()))?;
        Ok(Self(hex::encode(bytes)))
    }

    /// A token chosen elsewhere (a test, a token shared between processes).
    pub fn from_secret(secret: impl Into<String>) -> Result<Self, TokenError> {
        let secret = secret.into();
        let bad_char = secret.chars().find(|c| !is_token_char(*c));
        if secret.len() < MIN_TOKEN_CHARS || bad_char.is_some() {
            return Err(TokenError::Unusable {
                len: secret.chars().count(),
                bad: bad_char
                    .map(|c| format!(", including {c:?}"))
                    .unwrap_or_default(),
            });
        }
        Ok(Self(secret))
    }

    /// The secret, to hand to viewers that may watch (the robot's retained
    /// status). Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this token, in time that does not depend on
    /// where they differ.
    pub fn verify(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// Why a request may not watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// It presented no token at all.
    Missing,
    /// It presented a token, and not this one (or two query tokens).
    Wrong,
}

impl Denied {
    /// The message for the viewer: what is wrong and what to do.
    pub fn message(self) -> &'static str {
        match self {
            Denied::Missing => {
                "this camera needs its access token: send `Authorization: Bearer TOKEN` or add \
                 `?token=TOKEN` to the URL; controllers read the token as `camera_token` in the \
                 robot's retained gopigo/THING/status message\n"
            }
            Denied::Wrong => {
                "wrong camera access token: the robot makes a new one each time it starts; read \
                 `camera_token` again from its retained gopigo/THING/status message\n"
            }
        }
    }
}

/// Decides whether a request with these headers and query pairs may watch
/// (pure). A bearer token in `Authorization` is checked first; else the
/// query must carry exactly one `token`.
pub fn authorize<'q>(
    token: &AccessToken,
    headers: &HeaderMap,
    query: impl IntoIterator<Item = (&'q str, &'q str)>,
) -> Result<(), Denied> {
    let mut presented = false;
    for value in headers.get_all(http::header::AUTHORIZATION) {
        presented = true;
        let bearer = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        if bearer.is_some_and(|t| token.verify(t)) {
            return Ok(());
        }
    }
    let mut in_query = query.into_iter().filter(|(k, _)| *k == "token");
    match (in_query.next(), in_query.next()) {
        (Some((_, t)), None) if token.verify(t) => Ok(()),
        (None, None) if !presented => Err(Denied::Missing),
        _ => Err(Denied::Wrong),
    }
}

/// Slowest rate a viewer may ask for with `?fps=` (one frame in 10 s).
pub const MIN_VIEWER_FPS: f64 = 0.1;
/// Fastest rate a viewer may ask for with `?fps=` (a cap, not a promise:
/// the camera's own rate still limits it).
pub const MAX_VIEWER_FPS: f64 = 1000.0;

/// The parameters of a stream request, validated.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StreamParams {
    /// Most frames a second this viewer gets; `None` = every frame.
    pub fps: Option<f64>,
}

/// A query parameter the stream cannot use; its message names the
/// parameter, the value and what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum ParamError {
    /// `fps` is not a number.
    #[error("fps={value:?} is not a number: use a frame rate from {MIN_VIEWER_FPS} to {MAX_VIEWER_FPS}, e.g. ?fps=5")]
    NotANumber {
        /// The value as given (shortened).
        value: String,
    },
    /// `fps` is a number outside the allowed range (or NaN, or infinite).
    #[error("fps={value} is out of range: use a frame rate from {MIN_VIEWER_FPS} to {MAX_VIEWER_FPS}, e.g. ?fps=5")]
    OutOfRange {
        /// The value as given (shortened).
        value: String,
    },
    /// A parameter given more than once.
    #[error("{name} is given more than once: give it once")]
    Repeated { name: &'static str },
}

/// At most this many characters of a bad value are echoed back.
const ECHO_CHARS: usize = 40;

fn shortened(value: &str) -> String {
    let mut s: String = value.chars().take(ECHO_CHARS).collect();
    if value.chars().count() > ECHO_CHARS {
        s.push('…');
    }
    s
}

/// Reads the stream parameters from decoded query pairs (pure). `token` is
/// [`authorize`]'s; unknown parameters (a player's cache buster) are
/// ignored.
pub fn stream_params<'q>(
    query: impl IntoIterator<Item = (&'q str, &'q str)>,
) -> Result<StreamParams, ParamError> {
    let mut params = StreamParams::default();
    for (key, value) in query {
        if key != "fps" {
            continue;
        }
        if params.fps.is_some() {
            return Err(ParamError::Repeated { name: "fps" });
        }
        let fps: f64 = value.trim().parse().map_err(|_| ParamError::NotANumber {
            value: shortened(value),
        })?;
        // NaN fails both comparisons, infinities the range.
        if !(MIN_VIEWER_FPS..=MAX_VIEWER_FPS).contains(&fps) {
            return Err(ParamError::OutOfRange {
                value: shortened(value),
            });
        }
        params.fps = Some(fps);
    }
    Ok(params)
}

/// Decodes a raw query string into owned pairs (`+` and `%XX` undone,
/// invalid UTF-8 replaced).
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// Borrowed view of [`query_pairs`]' output.
pub fn as_str_pairs(pairs: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn token() -> AccessToken {
        AccessToken::from_secret("0123456789abcdef0123456789abcdef").unwrap()
    }

    fn headers(auth: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for a in auth {
            h.append(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(a).unwrap(),
            );
        }
        h
    }

    #[test]
    fn generated_tokens_are_long_random_and_url_safe() {
        let a = AccessToken::generate().unwrap();
        let b = AccessToken::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().chars().all(|c| c.is_ascii_hexdigit()));
        assert!(AccessToken::from_secret(a.expose()).is_ok());
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn secrets_must_be_long_and_plain() {
        assert!(AccessToken::from_secret("short").is_err());
        let e = AccessToken::from_secret("0123456789abcdef0123456789 abcdef").unwrap_err();
        assert!(e.to_string().contains("' '"), "{e}");
        assert!(AccessToken::from_secret("0123456789abcdef012345").is_ok());
    }

    #[test]
    fn authorization_table() {
        let t = token();
        let good = t.expose().to_string();
        let bearer = format!("Bearer {good}");
        let lower = format!("bearer {good}");
        let wrong_last = format!("{}0", &good[..good.len() - 1]);
        type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, Result<(), Denied>);
        let cases: Vec<Case> = vec![
            (vec![], vec![], Err(Denied::Missing)),
            (vec![], vec![("fps", "5")], Err(Denied::Missing)),
            (vec![&bearer], vec![], Ok(())),
            (vec![&lower], vec![], Ok(())),
            (vec![], vec![("token", &good)], Ok(())),
            (vec![], vec![("fps", "2"), ("token", &good)], Ok(())),
            (vec![], vec![("token", &wrong_last)], Err(Denied::Wrong)),
            (vec![], vec![("token", "")], Err(Denied::Wrong)),
            (vec![], vec![("token", &good[..10])], Err(Denied::Wrong)),
            // two query tokens: refused even if one is right
            (
                vec![],
                vec![("token", &good), ("token", "x")],
                Err(Denied::Wrong),
            ),
            (vec!["Basic Zm9vOmJhcg=="], vec![], Err(Denied::Wrong)),
            (vec!["Bearer nope"], vec![], Err(Denied::Wrong)),
            // a wrong header does not spoil a right query token
            (vec!["Bearer nope"], vec![("token", &good)], Ok(())),
            (vec![&good], vec![], Err(Denied::Wrong)),
        ];
        for (auth, query, want) in cases {
            assert_eq!(
                authorize(&t, &headers(&auth), query.iter().copied()),
                want,
                "{auth:?} {query:?}"
            );
        }
        assert!(Denied::Missing.message().contains("Authorization: Bearer"));
    }

    #[test]
    fn fps_table() {
        let ok = |q: &str| stream_params(as_str_pairs(&query_pairs(Some(q))));
        assert_eq!(ok("").unwrap().fps, None);
        assert_eq!(ok("fps=5").unwrap().fps, Some(5.0));
        assert_eq!(ok("fps=0.1").unwrap().fps, Some(0.1));
        assert_eq!(ok("fps=1000").unwrap().fps, Some(1000.0));
        assert_eq!(ok("fps=%202.5").unwrap().fps, Some(2.5));
        assert_eq!(ok("t=123&fps=5").unwrap().fps, Some(5.0));
        for bad in [
            "fps=1e-30",
            "fps=0",
            "fps=-0",
            "fps=-1",
            "fps=0.09",
            "fps=1000.5",
            "fps=1e308",
            "fps=inf",
            "fps=-inf",
            "fps=infinity",
            "fps=NaN",
            "fps=nan",
        ] {
            assert!(
                matches!(ok(bad), Err(ParamError::OutOfRange { .. })),
                "{bad}: {:?}",
                ok(bad)
            );
        }
        for bad in ["fps=", "fps=abc", "fps=5fps", "fps=0x10", "fps=1,5", "fps"] {
            assert!(
                matches!(ok(bad), Err(ParamError::NotANumber { .. })),
                "{bad}: {:?}",
                ok(bad)
            );
        }
        assert_eq!(ok("fps=1&fps=2"), Err(ParamError::Repeated { name: "fps" }));
        let long = format!("fps={}", "9".repeat(500));
        let msg = ok(&long).unwrap_err().to_string();
        assert!(msg.len() < 200 && msg.contains("out of range"), "{msg}");
        let msg = ok("fps=1e-30").unwrap_err().to_string();
        assert!(
            msg.contains("fps=1e-30") && msg.contains("0.1 to 1000"),
            "{msg}"
        );
    }
}
