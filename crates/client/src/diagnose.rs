//! What a failed MQTT connection most likely means, in words a user can act on.
//!
//! MQTT 3.1.1 has no reason code on a broker's disconnect (AWS IoT Core and
//! the local core just close the socket), so the cause is inferred from when
//! the connection ended: before the TCP connect, during TLS, after TLS but
//! before CONNACK (a certificate that is no longer ACTIVE, or a policy that
//! denies `iot:Connect`), or after a session was up (on a broker that still
//! takes connections, most often another client that connected with the same
//! client id). The words say "probably" where the pattern is all there is.

use std::io;
use std::path::Path;

use rumqttc::{ConnectionError, StateError};

/// When and how a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nobody accepted the TCP connection (the broker is not running, or the
    /// port is wrong).
    Refused,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed.
    Tls,
    /// The broker closed the connection after TLS, before accepting the
    /// session (no CONNACK).
    ClosedBeforeSession,
    /// The broker refused the session in its CONNACK.
    NotAuthorized,
    /// An accepted session was closed by the broker (or the network).
    ClosedSession,
    /// No answer in time (connect or keep-alive).
    Timeout,
    /// Anything else.
    Other,
}

/// Whether an I/O error means the peer went away.
fn is_close(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    ) || e.to_string().contains("close_notify")
}

/// Whether the server sent a TLS alert that refuses our certificate (how a
/// broker answers a certificate that is INACTIVE, REVOKED or unknown to it).
fn is_certificate_alert(e: &io::Error) -> bool {
    let text = e.to_string();
    text.contains("fatal alert")
        && ["Certificate", "UnknownCA", "AccessDenied"]
            .iter()
            .any(|w| text.contains(w))
}

fn classify_io(e: &io::Error, session_up: bool) -> Failure {
    if is_certificate_alert(e) {
        Failure::ClosedBeforeSession
    } else if e.kind() == io::ErrorKind::ConnectionRefused {
        Failure::Refused
    } else if e.kind() == io::ErrorKind::TimedOut {
        Failure::Timeout
    } else if is_close(e) {
        closed(session_up)
    } else if e.to_string().contains("lookup") || e.to_string().contains("not known") {
        Failure::Dns
    } else {
        Failure::Other
    }
}

fn closed(session_up: bool) -> Failure {
    if session_up {
        Failure::ClosedSession
    } else {
        Failure::ClosedBeforeSession
    }
}

/// Classifies a rumqttc error; `session_up` says whether a CONNACK had
/// arrived on this connection.
pub fn classify(e: &ConnectionError, session_up: bool) -> Failure {
    match e {
        ConnectionError::Io(io) => classify_io(io, session_up),
        ConnectionError::Tls(rumqttc::TlsError::Io(io))
            if is_close(io) || is_certificate_alert(io) =>
        {
            // The server hung up during the handshake: with TLS 1.3 that is
            // also how a refused client certificate looks.
            Failure::ClosedBeforeSession
        }
        ConnectionError::Tls(_) => Failure::Tls,
        ConnectionError::MqttState(StateError::ConnectionAborted) => closed(session_up),
        ConnectionError::MqttState(StateError::Io(io)) => classify_io(io, session_up),
        ConnectionError::MqttState(StateError::Deserialization(rumqttc::mqttbytes::Error::Io(
            io,
        ))) => classify_io(io, session_up),
        ConnectionError::MqttState(StateError::AwaitPingResp) => Failure::Timeout,
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => Failure::Timeout,
        ConnectionError::ConnectionRefused(_) => Failure::NotAuthorized,
        _ => Failure::Other,
    }
}

/// Who was connecting, for the words.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// `host:port`.
    pub endpoint: &'a str,
    /// The MQTT client id.
    pub client_id: &'a str,
    /// The config file, for the `gopigo check` hint.
    pub config: Option<&'a Path>,
}

impl Subject<'_> {
    fn check_command(&self) -> String {
        match self.config {
            Some(p) => format!("`gopigo check --config {}`", p.display()),
            None => "`gopigo check --config CONFIG`".to_string(),
        }
    }
}

/// What to tell the user about a failure (without the raw error).
pub fn explain(f: Failure, s: &Subject<'_>) -> String {
    match f {
        Failure::Refused => format!(
            "nothing accepts connections at {}: is the broker running? For the local core start \
             `gopigo core` (or `gopigo demo`); otherwise check [mqtt] host and port",
            s.endpoint
        ),
        Failure::Dns => format!(
            "cannot resolve the host of {}: check [mqtt] host (AWS: `aws iot describe-endpoint \
             --endpoint-type iot:Data-ATS`)",
            s.endpoint
        ),
        Failure::Tls => format!(
            "the TLS handshake with {} failed: check [mqtt] ca_file and port; {} says which",
            s.endpoint,
            s.check_command()
        ),
        Failure::ClosedBeforeSession | Failure::NotAuthorized => format!(
            "the broker at {} refused the session for client id {}: its certificate is probably \
             INACTIVE, REVOKED or deleted, or the policy does not let this client id connect; \
             {} says which (re-run `gopigo provision` to get a fresh certificate)",
            s.endpoint,
            s.client_id,
            s.check_command()
        ),
        Failure::ClosedSession => format!("the broker at {} closed the session", s.endpoint),
        Failure::Timeout => format!(
            "no answer from {} in time (network down, or a firewall dropping the port?)",
            s.endpoint
        ),
        Failure::Other => format!("the connection to {} failed", s.endpoint),
    }
}

/// The words for a session the broker closed while it still takes
/// connections: the pattern of a client-id takeover.
pub fn takeover(client_id: &str) -> String {
    format!(
        "the broker closed the session although it still takes connections: probably another \
         client connected with the same client id ({client_id}); each running program needs its \
         own identity (`gopigo provision --thing NAME --role controller` for one more \
         controller), or stop the other one"
    )
}

/// Whether something accepts TCP connections at `host:port` within two
/// seconds (to tell a closed session on a live broker from a stopped one).
pub async fn accepts_tcp(host: &str, port: u16) -> bool {
    matches!(
        tokio::time::timeout(
            std::time::Duration::from_secs(2),
            tokio::net::TcpStream::connect((host, port)),
        )
        .await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: io::ErrorKind) -> io::Error {
        io::Error::new(kind, "x")
    }

    #[test]
    fn classifies_by_when_the_connection_ended() {
        use io::ErrorKind::*;
        let table: Vec<(ConnectionError, bool, Failure)> = vec![
            (
                ConnectionError::Io(io(ConnectionRefused)),
                false,
                Failure::Refused,
            ),
            (
                ConnectionError::Io(io::Error::other("failed to lookup address information")),
                false,
                Failure::Dns,
            ),
            (
                ConnectionError::MqttState(StateError::ConnectionAborted),
                false,
                Failure::ClosedBeforeSession,
            ),
            (
                ConnectionError::MqttState(StateError::ConnectionAborted),
                true,
                Failure::ClosedSession,
            ),
            (
                ConnectionError::MqttState(StateError::Io(io::Error::new(
                    UnexpectedEof,
                    "peer closed connection without sending TLS close_notify",
                ))),
                false,
                Failure::ClosedBeforeSession,
            ),
            (
                ConnectionError::Tls(rumqttc::TlsError::Io(io(ConnectionReset))),
                false,
                Failure::ClosedBeforeSession,
            ),
            (
                ConnectionError::Tls(rumqttc::TlsError::Io(io(InvalidData))),
                false,
                Failure::Tls,
            ),
            (
                ConnectionError::MqttState(StateError::Deserialization(
                    rumqttc::mqttbytes::Error::Io(io::Error::new(
                        InvalidData,
                        "received fatal alert: CertificateRevoked",
                    )),
                )),
                false,
                Failure::ClosedBeforeSession,
            ),
            (
                ConnectionError::Tls(rumqttc::TlsError::Io(io::Error::new(
                    InvalidData,
                    "received fatal alert: BadCertificate",
                ))),
                false,
                Failure::ClosedBeforeSession,
            ),
            (ConnectionError::NetworkTimeout, false, Failure::Timeout),
            (
                ConnectionError::MqttState(StateError::AwaitPingResp),
                true,
                Failure::Timeout,
            ),
        ];
        for (e, up, want) in table {
            assert_eq!(classify(&e, up), want, "{e}");
        }
    }

    #[test]
    fn words_name_the_client_id_and_the_check_command() {
        let s = Subject {
            endpoint: "localhost:8883",
            client_id: "robot1",
            config: Some(Path::new("/etc/gopigo/robot.toml")),
        };
        let w = explain(Failure::ClosedBeforeSession, &s);
        assert!(w.contains("robot1") && w.contains("INACTIVE"), "{w}");
        assert!(
            w.contains("gopigo check --config /etc/gopigo/robot.toml"),
            "{w}"
        );
        assert!(explain(Failure::Refused, &s).contains("gopigo core"));
        let t = takeover("operator");
        assert!(
            t.contains("probably another client connected with the same client id (operator)"),
            "{t}"
        );
    }
}
