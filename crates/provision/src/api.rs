//! A small AWS IoT control-plane client: REST-JSON requests signed with
//! SigV4 (service `iot`) by the `aws-sigv4` crate, sent over hyper's HTTP/1
//! connection (plain TCP for the local core, rustls with the web PKI roots
//! for AWS). One connection per request: provisioning makes a few dozen.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use tokio::net::TcpStream;

use crate::creds::Target;
use crate::retry::{is_retryable, RetryPolicy};
use crate::ProvisionError;

/// Everything but RFC 3986 unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What to do when the control plane does not accept the connection.
fn connect_hint(e: &std::io::Error, source: &str) -> &'static str {
    match (e.kind(), source.starts_with("local core")) {
        (std::io::ErrorKind::ConnectionRefused, true) => {
            " (the local core is not running: start it with `gopigo core` in another terminal, \
             with the same --data-dir if you gave one, then run this again)"
        }
        (std::io::ErrorKind::ConnectionRefused, false) => {
            " (nothing listens there: check --endpoint-url / AWS_ENDPOINT_URL_IOT / AWS_ENDPOINT_URL)"
        }
        _ => "",
    }
}

/// How long one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Percent-encodes one path segment or query value.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// An error answer from the control plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiFailure {
    /// The operation, e.g. `CreateThing`.
    pub operation: &'static str,
    /// The HTTP status the control plane answered with.
    pub status: u16,
    /// The AWS error type, e.g. `ResourceNotFoundException`.
    pub code: String,
    /// The error message the service gave (may be empty).
    pub message: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed: HTTP {} {}: {}",
            self.operation, self.status, self.code, self.message
        )
    }
}

/// Reads the error type the way botocore does: `x-amzn-ErrorType`
/// (everything before a `:`), else the body's `__type` / `code`.
pub fn error_code(header: Option<&str>, body: &Value) -> String {
    if let Some(h) = header.filter(|h| !h.is_empty()) {
        return h.split(':').next().unwrap_or(h).to_string();
    }
    for k in ["__type", "code", "Code"] {
        if let Some(s) = body.get(k).and_then(Value::as_str) {
            return s.rsplit('#').next().unwrap_or(s).to_string();
        }
    }
    "UnknownError".to_string()
}

/// A signed-request client for one endpoint.
#[derive(Clone)]
pub struct IotClient {
    target: Target,
    tls: Arc<rustls::ClientConfig>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for IotClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IotClient")
            .field("target", &self.target)
            .finish()
    }
}

impl IotClient {
    /// A client for `target`; HTTPS is verified against the web PKI roots,
    /// or only the certificates of `target.ca_bundle`.
    pub fn new(target: Target) -> Result<Self, ProvisionError> {
        let roots = match &target.ca_bundle {
            None => {
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
            }
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                let certs = gopigo_client::load_certs("CA bundle", "AWS_CA_BUNDLE", path)
                    .map_err(|e| ProvisionError::Invalid(e.to_string()))?;
                for c in certs {
                    roots.add(c).map_err(|e| {
                        ProvisionError::Invalid(format!(
                            "{}: unusable CA certificate: {e}",
                            path.display()
                        ))
                    })?;
                }
                roots
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ProvisionError::Invalid(format!("TLS set-up: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(IotClient {
            target,
            tls: Arc::new(tls),
            retry: RetryPolicy::default(),
        })
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The target this client calls.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Sends one signed request, `path` with its segments already encoded,
    /// and retries throttling and server errors as the AWS SDKs' standard
    /// retry mode does (see [`crate::retry`]).
    pub async fn call(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        extra_headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Result<Value, ApiFailure>, ProvisionError> {
        let mut retry = 0;
        loop {
            let answer = self
                .call_once(
                    operation,
                    method.clone(),
                    path,
                    query,
                    extra_headers,
                    body.clone(),
                )
                .await?;
            match answer {
                Err(f) if is_retryable(&f) && retry + 1 < self.retry.max_attempts => {
                    let delay = self.retry.jittered_backoff(retry);
                    tracing::warn!(
                        operation,
                        status = f.status,
                        code = %f.code,
                        delay_ms = delay.as_millis() as u64,
                        "throttled or server error; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
                other => return Ok(other),
            }
        }
    }

    /// One attempt of [`IotClient::call`], bounded by `REQUEST_TIMEOUT`.
    async fn call_once(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        extra_headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Result<Value, ApiFailure>, ProvisionError> {
        tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.call_inner(operation, method, path, query, extra_headers, body),
        )
        .await
        .map_err(|_| ProvisionError::Http {
            url: self.target.endpoint_url.clone(),
            message: format!("{operation}: no answer within {REQUEST_TIMEOUT:?}"),
        })?
    }

    async fn call_inner(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        extra_headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Result<Value, ApiFailure>, ProvisionError> {
        let base = &self.target.endpoint_url;
        let http_err = |message: String| ProvisionError::Http {
            url: base.clone(),
            message,
        };
        let endpoint = Endpoint::parse(base).map_err(http_err)?;
        let path_and_query = endpoint.path_and_query(path, query);
        let (mut req, body) =
            build_request(&endpoint, method, &path_and_query, extra_headers, body)
                .map_err(http_err)?;
        self.sign(&mut req, &body, &endpoint, &path_and_query)
            .map_err(http_err)?;
        let answer = self.send_to(&endpoint, req).await.map_err(http_err)?;
        Ok(read_answer(operation, answer))
    }

    /// Adds the SigV4 headers (service `iot`), signing exactly the headers
    /// and body `req` carries.
    fn sign(
        &self,
        req: &mut Request<Full<Bytes>>,
        body: &[u8],
        endpoint: &Endpoint,
        path_and_query: &str,
    ) -> Result<(), String> {
        let identity = aws_credential_types::Credentials::new(
            self.target.key.id.clone(),
            self.target.key.secret.clone(),
            self.target.key.session_token.clone(),
            None,
            "gopigo-provision",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.target.region)
            .name("iot")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign: {e}"))?
            .into();
        let header_pairs: Vec<(String, String)> = req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let full_url = format!(
            "{}://{}{path_and_query}",
            if endpoint.https { "https" } else { "http" },
            endpoint.authority
        );
        let signable = SignableRequest::new(
            req.method().as_str(),
            full_url,
            header_pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("cannot sign: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("cannot sign: {e}"))?
            .into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }

    /// One connection (TLS for `https`), one request, the whole answer.
    async fn send_to(
        &self,
        endpoint: &Endpoint,
        req: Request<Full<Bytes>>,
    ) -> Result<Answer, String> {
        let (host, port) = (endpoint.host.as_str(), endpoint.port);
        let tcp = TcpStream::connect((host, port)).await.map_err(|e| {
            format!(
                "cannot connect to {host}:{port}: {e}{}",
                connect_hint(&e, &self.target.source)
            )
        })?;
        if !endpoint.https {
            return send(TokioIo::new(tcp), req).await;
        }
        let name = rustls_pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("bad host name: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {host}: {e}"))?;
        send(TokioIo::new(tls), req).await
    }
}

/// Where the control plane is, from its endpoint URL.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    https: bool,
    host: String,
    port: u16,
    /// `host[:port]` as the URL spells it, for the `Host` header.
    authority: String,
    /// The URL's path, without a trailing `/`, put before every request path.
    prefix: String,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => {
                return Err(format!(
                    "unsupported scheme {other:?}: use http:// or https://"
                ))
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| "the URL has no host".to_string())?
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| host.clone());
        let prefix = uri.path().trim_end_matches('/').to_string();
        Ok(Endpoint {
            https,
            host,
            port,
            authority,
            prefix,
        })
    }

    /// The request target: the prefix, `path` and the encoded `query`.
    fn path_and_query(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut out = format!("{}{path}", self.prefix);
        if !query.is_empty() {
            let q: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            out = format!("{out}?{}", q.join("&"));
        }
        out
    }
}

/// The unsigned request (`Host`, a JSON content type when there is a body,
/// then `extra_headers`) and its body bytes, to sign.
fn build_request(
    endpoint: &Endpoint,
    method: Method,
    path_and_query: &str,
    extra_headers: &[(&str, &str)],
    body: Option<Value>,
) -> Result<(Request<Full<Bytes>>, Bytes), String> {
    let body_bytes = Bytes::from(match &body {
        Some(v) => serde_json::to_vec(v).map_err(|e| e.to_string())?,
        None => Vec::new(),
    });
    let mut req = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", endpoint.authority.as_str());
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in extra_headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(body_bytes.clone()))
        .map_err(|e| format!("bad request: {e}"))?;
    Ok((req, body_bytes))
}

/// The answer as JSON on a 2xx, else the AWS error it carries.
fn read_answer(
    operation: &'static str,
    (status, error_type, bytes): Answer,
) -> Result<Value, ApiFailure> {
    let value: Value = if bytes.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            json!({ "message": String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>() })
        })
    };
    if (200..300).contains(&status) {
        tracing::debug!(operation, status, "control plane answered");
        return Ok(value);
    }
    let code = error_code(error_type.as_deref(), &value);
    let message = value
        .get("message")
        .or_else(|| value.get("Message"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Err(ApiFailure {
        operation,
        status,
        code,
        message,
    })
}

type Answer = (u16, Option<String>, Bytes);

async fn send<T>(io: TokioIo<T>, req: Request<Full<Bytes>>) -> Result<Answer, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status().as_u16();
    let error_type = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    driver.abort();
    Ok((status, error_type, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes() {
        let cases = [
            (
                Some("ResourceNotFoundException:http://internal.amazon.com/"),
                json!({}),
                "ResourceNotFoundException",
            ),
            (
                Some("ResourceAlreadyExistsException"),
                json!({}),
                "ResourceAlreadyExistsException",
            ),
            (
                None,
                json!({"__type": "com.amazon#InvalidRequestException"}),
                "InvalidRequestException",
            ),
            (
                None,
                json!({"code": "ThrottlingException"}),
                "ThrottlingException",
            ),
            (None, json!({}), "UnknownError"),
        ];
        for (h, body, want) in cases {
            assert_eq!(error_code(h, &body), want);
        }
    }

    #[test]
    fn endpoint_urls() {
        let e = Endpoint::parse("https://iot.eu-west-1.amazonaws.com").unwrap();
        assert!(e.https);
        assert_eq!(
            (e.host.as_str(), e.port),
            ("iot.eu-west-1.amazonaws.com", 443)
        );
        assert_eq!(e.path_and_query("/things/r1", &[]), "/things/r1");
        let e = Endpoint::parse("http://127.0.0.1:4566/prefix/").unwrap();
        assert!(!e.https);
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 4566));
        assert_eq!(e.authority, "127.0.0.1:4566");
        assert_eq!(
            e.path_and_query("/policies", &[("marker", "a/b c")]),
            "/prefix/policies?marker=a%2Fb%20c"
        );
        assert_eq!(Endpoint::parse("http://h").unwrap().port, 80);
        for (bad, why) in [
            ("ftp://h", "unsupported scheme"),
            ("not a url", "not a URL"),
            ("/just/a/path", "unsupported scheme"),
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn segments_are_encoded_once() {
        assert_eq!(
            encode("arn:aws:iot:us-east-1:1:cert/ab"),
            "arn%3Aaws%3Aiot%3Aus-east-1%3A1%3Acert%2Fab"
        );
        assert_eq!(encode("robot-1_a.b~"), "robot-1_a.b~");
    }

    /// A control plane on loopback that answers each connection with the
    /// next of `answers` (status, error type) and counts the requests.
    async fn scripted_server(
        answers: Vec<(u16, &'static str)>,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            for (status, code) in answers {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 8192];
                let _ = s.read(&mut buf).await.unwrap();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = if status == 200 {
                    r#"{"thingName":"r1"}"#.to_string()
                } else {
                    format!(r#"{{"message":"{code}"}}"#)
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                     x-amzn-ErrorType: {code}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                s.write_all(head.as_bytes()).await.unwrap();
                s.write_all(body.as_bytes()).await.unwrap();
            }
        });
        (url, seen)
    }

    fn client(url: String) -> IotClient {
        IotClient::new(Target {
            endpoint_url: url,
            region: "us-east-1".into(),
            key: crate::creds::AccessKey {
                id: "AKIDEXAMPLE".into(),
                secret: "secret".into(),
                session_token: None,
            },
            source: "test".into(),
            ca_bundle: None,
        })
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
        })
    }

    #[tokio::test]
    async fn throttling_and_server_errors_are_retried_until_an_answer() {
        let (url, seen) = scripted_server(vec![
            (429, "TooManyRequestsException"),
            (503, "ServiceUnavailableException"),
            (200, ""),
        ])
        .await;
        let thing = client(url).describe_thing("r1").await.unwrap().unwrap();
        assert_eq!(thing["thingName"], "r1");
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn three_attempts_at_most_then_the_error() {
        let (url, seen) = scripted_server(vec![
            (400, "ThrottlingException"),
            (400, "ThrottlingException"),
            (400, "ThrottlingException"),
            (200, ""),
        ])
        .await;
        let err = client(url).describe_thing("r1").await.unwrap_err();
        assert!(err.to_string().contains("ThrottlingException"), "{err}");
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let (url, seen) = scripted_server(vec![(400, "InvalidRequestException"), (200, "")]).await;
        let err = client(url).describe_thing("r1").await.unwrap_err();
        assert!(err.to_string().contains("InvalidRequestException"), "{err}");
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
