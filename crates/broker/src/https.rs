//! HTTPS publish, AWS IoT style: `POST /topics/{url-encoded topic}?qos=0|1&retain=true`
//! over mutual TLS (the same verifier as MQTT), authorized with the same
//! `iot:Publish` / `iot:RetainPublish` checks, answered with
//! `{"message":"OK","traceId":"<uuid>"}`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use gopigo_listen::{CappedListener, Refusal};

use crate::limits::{self, HttpLimits};
use crate::tls::ClientIdentity;
use crate::{client_identity, topic, BrokerError, BrokerHandle};

/// A parsed publish request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The decoded topic.
    pub topic: String,
    /// 0 or 1.
    pub qos: u8,
    /// `retain=true` in the query: the broker keeps the message for later subscribers.
    pub retain: bool,
}

/// Why a request was refused, with the HTTP status to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// HTTP status to answer with (400, 403, 413, ...).
    pub status: u16,
    /// `message` of the JSON body.
    pub message: String,
}

fn bad(message: impl Into<String>) -> HttpError {
    HttpError {
        status: 400,
        message: message.into(),
    }
}

/// Parses the method, path and query of a publish request (pure).
pub fn parse_publish(
    method: &str,
    path: &str,
    query: Option<&str>,
) -> Result<PublishRequest, HttpError> {
    let Some(raw_topic) = path.strip_prefix("/topics/") else {
        return Err(HttpError {
            status: 404,
            message: "Not Found: use POST /topics/{topic}".into(),
        });
    };
    if method != "POST" {
        return Err(HttpError {
            status: 405,
            message: "Method Not Allowed: use POST".into(),
        });
    }
    let topic = percent_encoding::percent_decode_str(raw_topic)
        .decode_utf8()
        .map_err(|_| bad("the topic is not valid UTF-8 after percent-decoding"))?
        .into_owned();
    topic::validate_topic(&topic).map_err(|e| bad(e.to_string()))?;
    let mut qos = 0;
    let mut retain = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "qos" => {
                qos = match v {
                    "0" => 0,
                    "1" => 1,
                    _ => return Err(bad(format!("qos must be 0 or 1, got `{v}`"))),
                }
            }
            "retain" => {
                retain = match v.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" | "" => false,
                    _ => return Err(bad(format!("retain must be true or false, got `{v}`"))),
                }
            }
            _ => {}
        }
    }
    if retain && topic.starts_with('$') {
        return Err(bad(format!(
            "retained messages are not supported on reserved topic `{topic}`"
        )));
    }
    Ok(PublishRequest { topic, qos, retain })
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn error(e: HttpError, trace_id: &str) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    json(
        status,
        serde_json::json!({"message": e.message, "traceId": trace_id}),
    )
}

async fn handle(
    req: Request<Incoming>,
    identity: Arc<ClientIdentity>,
    broker: BrokerHandle,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let parsed = parse_publish(req.method().as_str(), req.uri().path(), req.uri().query());
    let publish = match parsed {
        Ok(p) => p,
        Err(e) => return Ok(error(e, &trace_id)),
    };
    if !broker.authorize_publish(&identity, None, &publish.topic, publish.retain) {
        return Ok(error(
            HttpError {
                status: 403,
                message: "Forbidden".into(),
            },
            &trace_id,
        ));
    }
    let limit = broker.config().max_payload;
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(error(body_error(e.as_ref(), limit), &trace_id)),
    };
    broker.publish(&publish.topic, body, publish.qos, publish.retain);
    Ok(json(
        StatusCode::OK,
        serde_json::json!({"message": "OK", "traceId": trace_id}),
    ))
}

/// The answer to a body that could not be read: 413 past the limit, 400
/// for a malformed one (bad chunked encoding, a body cut short).
fn body_error(e: &(dyn std::error::Error + 'static), limit: usize) -> HttpError {
    if limits::is_length_limit(e) {
        HttpError {
            status: 413,
            message: format!("Payload Too Large: the limit is {limit} bytes"),
        }
    } else {
        bad(format!("the request body is malformed: {e}"))
    }
}

/// [`handle`] with the request timeout of `limits` (408 past it).
async fn handle_within(
    req: Request<Incoming>,
    identity: Arc<ClientIdentity>,
    broker: BrokerHandle,
    within: std::time::Duration,
) -> Result<Response<Full<Bytes>>, Infallible> {
    match tokio::time::timeout(within, handle(req, identity, broker)).await {
        Ok(r) => r,
        Err(_) => Ok(error(
            HttpError {
                status: 408,
                message: format!(
                    "Request Timeout: the request took longer than {} s",
                    within.as_secs()
                ),
            },
            &uuid::Uuid::new_v4().to_string(),
        )),
    }
}

/// Serves HTTPS publish on `listener` with `tls` (from
/// [`crate::server_tls_config`]) and the default [`HttpLimits`] until
/// `shutdown` completes.
pub async fn serve_https_publish(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    broker: BrokerHandle,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BrokerError> {
    serve_https_publish_with(listener, tls, broker, HttpLimits::default(), shutdown).await
}

/// Serves HTTPS publish with the given bounds: at most
/// `limits.max_connections` open, the TLS handshake within the broker's
/// `handshake_timeout`, headers (and keep-alive idle) within
/// `limits.header_read_timeout`, each request within
/// `limits.request_timeout`. On `shutdown`, connections get
/// [`limits::DRAIN`] to finish.
pub async fn serve_https_publish_with(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    broker: BrokerHandle,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BrokerError> {
    let acceptor = TlsAcceptor::from(tls);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let listener = CappedListener::new(
        listener,
        "HTTPS publish",
        limits.max_connections,
        Refusal::Close,
    );
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            (stream, peer, permit) = listener.accept() => {
                let conn = https_connection(
                    stream,
                    peer,
                    acceptor.clone(),
                    broker.clone(),
                    limits.clone(),
                    stop_rx.clone(),
                );
                tasks.spawn(async move {
                    conn.await;
                    drop(permit);
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    let _ = stop_tx.send(true);
    limits::drain(&mut tasks).await;
    Ok(())
}

/// One HTTPS publish connection: handshake (bounded, abandoned on stop),
/// then HTTP/1.1 with the listener's limits.
async fn https_connection(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    acceptor: TlsAcceptor,
    broker: BrokerHandle,
    limits: Arc<HttpLimits>,
    mut stop: watch::Receiver<bool>,
) {
    let hs = broker.config().handshake_timeout;
    let handshake = tokio::select! {
        r = tokio::time::timeout(hs, acceptor.accept(stream)) => r,
        _ = limits::stopped(&mut stop) => return,
    };
    let Ok(Ok(tls)) = handshake else {
        tracing::debug!(%peer, "HTTPS publish handshake failed or timed out");
        return;
    };
    let Some(identity) = client_identity(tls.get_ref().1) else {
        return;
    };
    let identity = Arc::new(identity);
    let within = limits.request_timeout;
    let service =
        service_fn(move |req| handle_within(req, identity.clone(), broker.clone(), within));
    limits::serve_http_connection(tls, service, &limits, stop).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = |t: &str, q: u8, r: bool| {
            Ok(PublishRequest {
                topic: t.into(),
                qos: q,
                retain: r,
            })
        };
        let cases = [
            (
                "POST",
                "/topics/gopigo%2Fr1%2Fcmd",
                Some("qos=1"),
                ok("gopigo/r1/cmd", 1, false),
            ),
            ("POST", "/topics/a/b", None, ok("a/b", 0, false)),
            (
                "POST",
                "/topics/a",
                Some("qos=0&retain=true"),
                ok("a", 0, true),
            ),
            (
                "POST",
                "/topics/%24aws%2Fthings%2Fr1%2Fshadow%2Fupdate",
                Some("qos=1"),
                ok("$aws/things/r1/shadow/update", 1, false),
            ),
        ];
        for (m, p, q, want) in cases {
            assert_eq!(parse_publish(m, p, q), want, "{p}");
        }
        let errs = [
            ("POST", "/topics/a", Some("qos=2"), 400),
            ("POST", "/topics/a%2F%2B", None, 400),
            ("POST", "/topics/", None, 400),
            ("GET", "/topics/a", None, 405),
            ("POST", "/other", None, 404),
            ("POST", "/topics/%24aws%2Fx", Some("retain=true"), 400),
        ];
        for (m, p, q, status) in errs {
            assert_eq!(
                parse_publish(m, p, q).unwrap_err().status,
                status,
                "{m} {p} {q:?}"
            );
        }
    }
}
