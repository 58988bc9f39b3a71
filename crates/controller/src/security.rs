//! The dashboard's guards as pure functions (no sockets): who may use it
//! and what a response must say to the browser. [`crate::dashboard`] wires
//! them into the routes; every rule here is a table-driven unit test.
//!
//! - **Sign-in, as Jupyter does**: a random token (256 bits from the OS)
//!   printed in the URL; visiting `/?token=T` sets a session cookie
//!   (`HttpOnly; SameSite=Strict`, `Secure` over TLS) holding a second,
//!   per-process random secret, and redirects to the clean URL. Scripts may
//!   send `Authorization: Bearer T` instead. Secrets are compared in
//!   constant time ([`same_secret`]).
//! - **Host allow-list** against DNS rebinding: `localhost`, `127.0.0.1`,
//!   `[::1]`, the bound address and `--allow-host` names ([`Guard::host_allowed`]).
//! - **Own origin only** for the WebSocket ([`Guard::origin_ok`]) and, for
//!   every other request a browser marks as cross-site, the fetch-metadata
//!   resource-isolation rule ([`cross_site_refused`]). Note that pages on
//!   another port of the same host are *same-site* for cookies, so
//!   `SameSite` alone would not stop them: these checks do.
//! - **Response headers**: CSP, `nosniff`, frame denial, no referrer
//!   ([`Guard::security_headers`]).
//! - **Camera URLs** a robot announces ([`CameraPolicy`]): plain `http`
//!   only, never loopback (unless the demo opts in), link-local, multicast
//!   or the core's own host and ports.

use std::net::{IpAddr, SocketAddr};

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Bytes of randomness in a token or session secret (256 bits).
pub const SECRET_BYTES: usize = 32;
/// The shortest fixed token accepted (`--token`).
pub const MIN_TOKEN_CHARS: usize = 22;

/// A fresh random secret from the OS RNG, as lowercase hex.
pub fn random_secret() -> String {
    let mut b = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Why a fixed token is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenError {
    /// Too short to resist guessing.
    #[error("the dashboard token is {0} characters long; use at least {MIN_TOKEN_CHARS} (or leave it unset for a random one)")]
    TooShort(usize),
    /// A character that does not travel safely in a URL.
    #[error("the dashboard token may hold only letters, digits, '-', '_', '.' and '~' (it goes into a URL)")]
    BadChar,
}

/// Checks a token given with `--token` / `GOPIGO_DASHBOARD_TOKEN`.
pub fn check_fixed_token(token: &str) -> Result<(), TokenError> {
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Err(TokenError::TooShort(token.chars().count()));
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    {
        return Err(TokenError::BadChar);
    }
    Ok(())
}

/// Whether two secrets are equal, in time independent of where they
/// differ: both are hashed first (so lengths do not show either) and the
/// digests compared without an early exit.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The host part of a `Host` header (`name`, `1.2.3.4`, `[::1]`), without
/// the port, lowercased; `None` when it is malformed.
pub fn host_part(host_header: &str) -> Option<String> {
    let h = host_header.trim();
    if h.is_empty() || h.len() > 255 {
        return None;
    }
    let host = if let Some(rest) = h.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        format!("[{inner}]")
    } else {
        match h.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_string(),
            Some(_) => return None,
            None => h.to_string(),
        }
    };
    let ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':'));
    (ok && !host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// How an address is written in a `Host` header.
fn host_of_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(cookie_header: &'a str, name: &str) -> Option<&'a str> {
    cookie_header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The token in an `Authorization: Bearer T` header.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, rest) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The fetch-metadata resource-isolation rule: a browser request marked
/// cross-site or same-site (another port of this host is same-site) is
/// refused, except a plain top-level navigation (a link to the dashboard;
/// `SameSite=Strict` keeps the cookie off it anyway). Requests without the
/// header (curl, scripts, old browsers) pass; the other checks still apply.
pub fn cross_site_refused(site: Option<&str>, mode: Option<&str>, dest: Option<&str>) -> bool {
    match site {
        None | Some("same-origin") | Some("none") => false,
        Some(_) => mode != Some("navigate") || matches!(dest, Some("object" | "embed")),
    }
}

/// Everything the routes need to decide who may use the dashboard.
#[derive(Clone)]
pub struct Guard {
    token: String,
    session: String,
    cookie_name: String,
    hosts: Vec<String>,
    tls: bool,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("token", &"<redacted>")
            .field("cookie_name", &self.cookie_name)
            .field("hosts", &self.hosts)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Guard {
    /// A guard for a dashboard bound to `bind` and signed in with `token`.
    /// The cookie's name carries the port: browsers share cookies between
    /// ports of one host, and two dashboards must not overwrite each
    /// other's session.
    pub fn new(token: String, bind: SocketAddr, tls: bool, allow_hosts: &[String]) -> Self {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !bind.ip().is_unspecified() {
            hosts.push(host_of_ip(bind.ip()));
        }
        for h in allow_hosts {
            let h = match h.parse::<IpAddr>() {
                Ok(ip) => host_of_ip(ip),
                Err(_) => h.trim().trim_end_matches('.').to_ascii_lowercase(),
            };
            if !h.is_empty() && !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        Guard {
            token,
            session: random_secret(),
            cookie_name: format!("gopigo_dashboard_{}", bind.port()),
            hosts,
            tls,
        }
    }

    /// The sign-in token (for the printed URL).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether the dashboard is served over TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The allowed host names.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Whether a request's `Host` names this dashboard.
    pub fn host_allowed(&self, host_header: &str) -> bool {
        host_part(host_header).is_some_and(|h| self.hosts.contains(&h))
    }

    /// Whether `candidate` is the sign-in token.
    pub fn token_ok(&self, candidate: &str) -> bool {
        same_secret(candidate, &self.token)
    }

    /// Whether a request carries the session cookie or the bearer token.
    pub fn signed_in<'a>(
        &self,
        cookies: impl IntoIterator<Item = &'a str>,
        authorization: Option<&str>,
    ) -> bool {
        let by_cookie = cookies
            .into_iter()
            .filter_map(|c| cookie_value(c, &self.cookie_name))
            .any(|v| same_secret(v, &self.session));
        by_cookie
            || authorization
                .and_then(bearer)
                .is_some_and(|t| self.token_ok(t))
    }

    /// The `Set-Cookie` value that signs a browser in.
    pub fn session_cookie(&self) -> String {
        let secure = if self.tls { "; Secure" } else { "" };
        format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict{secure}",
            self.cookie_name, self.session
        )
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// The dashboard's own origin as the browser sees it (`Host` as sent).
    pub fn own_origin(&self, host_header: &str) -> String {
        format!(
            "{}://{}",
            self.scheme(),
            host_header.trim().to_ascii_lowercase()
        )
    }

    /// Whether a WebSocket upgrade's `Origin` is the dashboard's own.
    pub fn origin_ok(&self, origin: Option<&str>, host_header: &str) -> bool {
        origin.is_some_and(|o| o.trim().eq_ignore_ascii_case(&self.own_origin(host_header)))
    }

    /// The Content-Security-Policy for a page served under `host_header`:
    /// scripts, styles, fetches and the WebSocket from this origin only;
    /// decoded frames are drawn from `blob:` bitmaps.
    pub fn csp(&self, host_header: &str) -> String {
        let ws = if self.tls { "wss" } else { "ws" };
        let host = host_header.trim().to_ascii_lowercase();
        format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
             connect-src 'self' {ws}://{host}; frame-ancestors 'none'; object-src 'none'; \
             base-uri 'none'; form-action 'self'"
        )
    }

    /// Every header each response carries (name, value).
    pub fn security_headers(&self, host_header: Option<&str>) -> Vec<(&'static str, String)> {
        let csp = match host_header {
            Some(h) if self.host_allowed(h) => self.csp(h),
            // No page is served then; forbid everything.
            _ => "default-src 'none'; frame-ancestors 'none'; base-uri 'none'".to_string(),
        };
        vec![
            ("content-security-policy", csp),
            ("x-content-type-options", "nosniff".into()),
            ("x-frame-options", "DENY".into()),
            ("referrer-policy", "no-referrer".into()),
        ]
    }
}

/// Where the dashboard may fetch a robot's announced `camera_url`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraPolicy {
    /// Allow loopback cameras (the demo's robots run on this machine).
    pub allow_loopback: bool,
    /// The core's addresses (its MQTT host, resolved): never fetched from,
    /// except on loopback ports outside `core_ports` when loopback is allowed.
    pub core_addrs: Vec<IpAddr>,
    /// Ports never fetched from on the core's host or loopback: the core's
    /// listeners and the dashboard's own.
    pub core_ports: Vec<u16>,
}

/// A camera URL taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraTarget {
    /// Host as written (a name, or an address without brackets).
    pub host: String,
    /// Port (80 when absent).
    pub port: u16,
    /// Path and query.
    pub path: String,
}

/// Reads a camera URL: `http://host[:port]/path`, nothing else (no user
/// info, no other scheme). `Err` says what is wrong.
pub fn parse_camera_url(url: &str) -> Result<CameraTarget, String> {
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|e| format!("camera URL {url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(format!(
                "camera URL {url:?} uses {other:?}; only http:// MJPEG streams are fetched"
            ))
        }
        None => return Err(format!("camera URL {url:?} has no http:// scheme")),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("camera URL {url:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("camera URL {url:?} carries user info; refused"));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok(CameraTarget {
        host,
        port: authority.port_u16().unwrap_or(80),
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into()),
    })
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

impl CameraPolicy {
    /// Whether the dashboard may connect to `addr` (one resolved address of
    /// a camera URL); `Err` says why not.
    pub fn check_addr(&self, addr: SocketAddr) -> Result<(), String> {
        let ip = addr.ip().to_canonical();
        if ip.is_unspecified() || ip.is_multicast() || is_broadcast(ip) || is_link_local(ip) {
            return Err(format!(
                "{ip} is not a camera's address (unspecified, multicast or link-local)"
            ));
        }
        let core = self.core_addrs.iter().any(|c| c.to_canonical() == ip);
        if ip.is_loopback() || core {
            if !self.allow_loopback {
                let what = if core { "the core's host" } else { "loopback" };
                return Err(format!(
                    "{addr} is {what}; the dashboard fetches cameras only from robots \
                     (the demo allows loopback with --allow-loopback-camera)"
                ));
            }
            if self.core_ports.contains(&addr.port()) {
                return Err(format!(
                    "{addr} is one of the core's or the dashboard's own ports"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn guard(tls: bool) -> Guard {
        Guard::new(
            "t0ken-t0ken-t0ken-1".into(),
            "127.0.0.1:8080".parse().unwrap(),
            tls,
            &["robots.lan".into(), "10.0.0.5".into()],
        )
    }

    #[test]
    fn random_secrets_are_256_bits_and_differ() {
        let (a, b) = (random_secret(), random_secret());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn fixed_tokens_must_be_long_and_url_safe() {
        assert_eq!(check_fixed_token("short"), Err(TokenError::TooShort(5)));
        assert_eq!(
            check_fixed_token("twenty two chars here!!"),
            Err(TokenError::BadChar)
        );
        check_fixed_token("abcdefghijklmnopqrstuv").unwrap();
        assert_eq!(
            check_fixed_token("abcdefghijklmnopqrstu"),
            Err(TokenError::TooShort(21))
        );
        check_fixed_token(&random_secret()).unwrap();
    }

    #[test]
    fn secrets_compare_by_value_only() {
        assert!(same_secret("abc", "abc"));
        for other in ["abd", "ab", "abcd", ""] {
            assert!(!same_secret(other, "abc"), "{other}");
        }
    }

    #[test]
    fn host_part_drops_the_port_and_refuses_junk() {
        let table = [
            ("localhost:8080", Some("localhost")),
            ("LocalHost", Some("localhost")),
            ("127.0.0.1:1", Some("127.0.0.1")),
            ("[::1]:8080", Some("[::1]")),
            ("[::1]", Some("[::1]")),
            ("attacker.example:8080", Some("attacker.example")),
            ("", None),
            ("a b", None),
            ("host:port", None),
            ("[::1]x", None),
        ];
        for (h, want) in table {
            assert_eq!(host_part(h).as_deref(), want, "{h}");
        }
    }

    #[test]
    fn hosts_outside_the_allow_list_are_refused() {
        let g = guard(false);
        for ok in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "robots.lan:8080",
            "ROBOTS.LAN",
            "10.0.0.5:8080",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "attacker.example:8080",
            "127.0.0.2:8080",
            "evil.localhost",
            "",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
        // a specific bind address is allowed, 0.0.0.0 is not a host
        let g = Guard::new("x".repeat(16), "0.0.0.0:1".parse().unwrap(), true, &[]);
        assert!(!g.host_allowed("0.0.0.0:1"));
        let g = Guard::new("x".repeat(16), "192.0.2.7:1".parse().unwrap(), true, &[]);
        assert!(g.host_allowed("192.0.2.7:1"));
    }

    #[test]
    fn session_is_the_cookie_or_the_bearer_token_never_the_token_as_cookie() {
        let g = guard(false);
        let set = g.session_cookie();
        let pair = set.split(';').next().unwrap();
        assert!(pair.starts_with("gopigo_dashboard_8080="));
        assert!(g.signed_in([format!("a=b; {pair}").as_str()], None));
        assert!(!g.signed_in(["gopigo_dashboard_8080=t0ken-t0ken-t0ken-1"], None));
        assert!(!g.signed_in(["gopigo_dashboard_9090=x"], None));
        assert!(g.signed_in([], Some("Bearer t0ken-t0ken-t0ken-1")));
        assert!(!g.signed_in([], Some("Bearer wrong")));
        assert!(!g.signed_in([], Some("Basic t0ken-t0ken-t0ken-1")));
    }

    #[test]
    fn session_cookie_is_http_only_strict_and_secure_over_tls() {
        let c = guard(false).session_cookie();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
        assert!(guard(true).session_cookie().ends_with("; Secure"));
    }

    #[test]
    fn websocket_origin_must_be_the_dashboards_own() {
        let g = guard(false);
        assert!(g.origin_ok(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"));
        for bad in [
            None,
            Some("http://evil.example.com"),
            Some("http://127.0.0.1:9999"),
            Some("https://127.0.0.1:8080"),
            Some("null"),
        ] {
            assert!(!g.origin_ok(bad, "127.0.0.1:8080"), "{bad:?}");
        }
        assert!(guard(true).origin_ok(Some("https://localhost:8080"), "localhost:8080"));
    }

    #[test]
    fn cross_site_browser_requests_are_refused_but_navigation_and_scripts_pass() {
        let table = [
            (None, None, None, false),
            (Some("same-origin"), Some("cors"), Some("empty"), false),
            (Some("none"), Some("navigate"), Some("document"), false),
            (Some("same-site"), Some("cors"), Some("empty"), true),
            (Some("cross-site"), Some("no-cors"), Some("image"), true),
            (
                Some("cross-site"),
                Some("websocket"),
                Some("websocket"),
                true,
            ),
            (
                Some("cross-site"),
                Some("navigate"),
                Some("document"),
                false,
            ),
            (Some("cross-site"), Some("navigate"), Some("iframe"), false),
            (Some("cross-site"), Some("navigate"), Some("embed"), true),
        ];
        for (site, mode, dest, refused) in table {
            assert_eq!(
                cross_site_refused(site, mode, dest),
                refused,
                "{site:?} {mode:?} {dest:?}"
            );
        }
    }

    #[test]
    fn every_response_gets_the_security_headers() {
        let g = guard(false);
        let h = g.security_headers(Some("127.0.0.1:8080"));
        let csp = &h[0].1;
        for part in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "connect-src 'self' ws://127.0.0.1:8080",
            "img-src 'self' data: blob:",
        ] {
            assert!(csp.contains(part), "{part} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline"));
        let names: Vec<_> = h.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "content-security-policy",
                "x-content-type-options",
                "x-frame-options",
                "referrer-policy"
            ]
        );
        // a refused host does not get its name echoed into the policy
        let h = g.security_headers(Some("attacker.example"));
        assert!(!h[0].1.contains("attacker"));
        assert!(guard(true).csp("localhost:1").contains("wss://localhost:1"));
    }

    #[test]
    fn camera_urls_are_plain_http_without_user_info() {
        let t = parse_camera_url("http://10.0.0.9:8081/stream?fps=5").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("10.0.0.9", 8081, "/stream?fps=5")
        );
        assert_eq!(
            parse_camera_url("http://[fd00::1]/").unwrap().host,
            "fd00::1"
        );
        for bad in [
            "file:///etc/passwd",
            "gopher://x/",
            "https://x/",
            "http://user:pw@x/",
            "/stream",
            "not a url",
        ] {
            assert!(parse_camera_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn camera_addresses_exclude_loopback_link_local_and_the_core() {
        let p = CameraPolicy {
            allow_loopback: false,
            core_addrs: vec!["10.0.0.1".parse().unwrap()],
            core_ports: vec![8883, 8080],
        };
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        p.check_addr(a("10.0.0.9:8081")).unwrap();
        for bad in [
            "127.0.0.1:8081",
            "127.9.9.9:80",
            "[::1]:8081",
            "[::ffff:127.0.0.1]:8081",
            "0.0.0.0:80",
            "169.254.169.254:80",
            "[fe80::1]:80",
            "224.0.0.1:80",
            "10.0.0.1:9999",
        ] {
            assert!(p.check_addr(a(bad)).is_err(), "{bad}");
        }
        // the demo: loopback cameras, but never the core's or our own ports
        let demo = CameraPolicy {
            allow_loopback: true,
            core_addrs: vec!["127.0.0.1".parse().unwrap()],
            core_ports: vec![40001, 40002, 8080],
        };
        demo.check_addr(a("127.0.0.1:45000")).unwrap();
        let e = demo.check_addr(a("127.0.0.1:40001")).unwrap_err();
        assert!(e.contains("core"), "{e}");
        assert!(demo.check_addr(a("127.0.0.1:8080")).is_err());
        assert!(demo.check_addr(a("169.254.169.254:80")).is_err());
    }
}
