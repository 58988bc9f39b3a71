//! `gopigo check`: the seed's `openssl s_client` test as a command, step by
//! step, each a PASS or FAIL line with the likely fix: files, certificate
//! validity (clock), DNS, TCP, TLS (server chain, verification against the CA
//! file, version, ALPN), client certificate accepted, MQTT CONNECT, then a
//! subscribe / publish / receive round trip on `gopigo/{thing}/check`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use gopigo_client::MqttSettings;
use rumqttc::mqttbytes::v4::{
    Connect, ConnectReturnCode, Packet, Publish, Subscribe, SubscribeReasonCode,
};
use rumqttc::mqttbytes::QoS;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// One step's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepResult {
    /// Short step name (`dns`, `tcp`, `tls`, ...).
    pub step: &'static str,
    /// Whether the step passed (a PASS line) or failed (FAIL, with `fix`).
    pub ok: bool,
    /// What the step saw, e.g. the address a name resolved to.
    pub detail: String,
    /// The likely fix, on failure.
    pub fix: Option<String>,
}

impl fmt::Display for StepResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match (self.ok, &self.fix) {
            (true, _) => "PASS",
            (false, None) => "WAIT",
            (false, Some(_)) => "FAIL",
        };
        write!(f, "{mark} {:<12} {}", self.step, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n     fix: {fix}")?;
        }
        Ok(())
    }
}

fn pass(step: &'static str, detail: impl Into<String>) -> StepResult {
    StepResult {
        step,
        ok: true,
        detail: detail.into(),
        fix: None,
    }
}

fn failed(step: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> StepResult {
    StepResult {
        step,
        ok: false,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// Time limits of the check.
#[derive(Clone, Copy, Debug)]
pub struct CheckTimeouts {
    /// TCP connect, TLS handshake, each MQTT answer.
    pub step: Duration,
    /// How long to wait after the handshake for a rejection of the client certificate.
    pub probe: Duration,
    /// How long to keep retrying when a fresh certificate's policy is not in
    /// force yet (connect, subscribe or round trip refused); 0 = no retry.
    pub propagation: Duration,
    /// The pause between those retries.
    pub retry_every: Duration,
}

impl Default for CheckTimeouts {
    fn default() -> Self {
        CheckTimeouts {
            step: Duration::from_secs(10),
            probe: Duration::from_millis(700),
            propagation: Duration::ZERO,
            retry_every: Duration::from_secs(10),
        }
    }
}

/// How long AWS may take to put a policy change in force: "anywhere between
/// 6 and 8 minutes" (AWS IoT Developer Guide, AWS IoT Core policies).
pub const AWS_POLICY_PROPAGATION: Duration = Duration::from_secs(8 * 60);

/// A certificate file written this recently counts as freshly provisioned.
const FRESH: Duration = Duration::from_secs(15 * 60);

/// Whether a failure is one a policy not yet in force gives.
fn policy_failure(f: &StepResult) -> bool {
    matches!(f.step, "connect" | "subscribe" | "round trip")
}

/// Whether `cert_file` was written within [`FRESH`] (by `gopigo provision`).
fn freshly_provisioned(cert_file: &std::path::Path) -> bool {
    std::fs::metadata(cert_file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < FRESH)
}

/// A step's value, or its FAIL line with the likely fix.
type Step<T> = Result<T, StepResult>;

/// Runs every step for `thing` with `settings`, calling `report` after
/// each; stops at the first failure. Returns whether all passed.
///
/// A fresh certificate (written in the last 15 minutes) whose connect,
/// subscribe or round trip is refused is retried every
/// `timeouts.retry_every` for up to `timeouts.propagation`, with a WAIT line
/// each time: its policy may not have reached the broker yet.
pub async fn run_check(
    thing: &str,
    settings: &MqttSettings,
    timeouts: CheckTimeouts,
    report: &mut dyn FnMut(&StepResult),
) -> bool {
    let started = std::time::Instant::now();
    let fresh = freshly_provisioned(&settings.cert_file);
    let mut shown: Vec<&'static str> = Vec::new();
    loop {
        let mut once = |r: &StepResult| {
            if !(r.ok && shown.contains(&r.step)) {
                shown.push(r.step);
                report(r);
            }
        };
        let failure = match check_steps(thing, settings, timeouts, &mut once).await {
            Ok(()) => return true,
            Err(f) => f,
        };
        let waited = started.elapsed();
        if fresh
            && policy_failure(&failure)
            && waited + timeouts.retry_every <= timeouts.propagation
        {
            report(&waiting(&failure, waited, timeouts));
            tokio::time::sleep(timeouts.retry_every).await;
            continue;
        }
        report(&gave_up(failure, fresh, waited, timeouts));
        return false;
    }
}

/// The WAIT line while a fresh policy may still be on its way.
fn waiting(f: &StepResult, waited: Duration, t: CheckTimeouts) -> StepResult {
    StepResult {
        step: f.step,
        ok: false,
        detail: format!(
            "{}; the certificate is new and AWS IoT takes up to 8 minutes to put a new policy \
             in force, so this is not a fault yet: retrying in {} s ({} s of {} s waited)",
            f.detail,
            t.retry_every.as_secs(),
            waited.as_secs(),
            t.propagation.as_secs()
        ),
        fix: None,
    }
}

/// The final FAIL line; after a wait for propagation it says so first.
fn gave_up(mut f: StepResult, fresh: bool, waited: Duration, t: CheckTimeouts) -> StepResult {
    if fresh && policy_failure(&f) && !t.propagation.is_zero() {
        f.fix = Some(format!(
            "still refused after {} s of waiting for the policy to take effect; if the \
             certificate was provisioned less than 8 minutes ago, run `gopigo check` again in a \
             few minutes before changing anything. Otherwise: {}",
            waited.as_secs(),
            f.fix.unwrap_or_default()
        ));
    }
    f
}

/// The steps in order: files → validity → dns → tcp → tls → client cert →
/// connect → subscribe → round trip. Each PASS is reported as it comes;
/// the first FAIL comes back as the error.
async fn check_steps(
    thing: &str,
    settings: &MqttSettings,
    timeouts: CheckTimeouts,
    report: &mut dyn FnMut(&StepResult),
) -> Step<()> {
    let files = load_files(settings)?;
    report(&files_passed(settings, &files));
    report(&passed(validity(
        files.not_before,
        files.not_after,
        now_unix(),
    ))?);
    let addr = resolve(settings, timeouts.step).await?;
    report(&pass("dns", format!("{} -> {addr}", settings.host)));
    let tcp = connect_tcp(settings, addr, timeouts.step).await?;
    report(&pass("tcp", format!("connected to {addr}")));
    let (mut tls, tls_line) = handshake(settings, &files, tcp, timeouts.step).await?;
    report(&tls_line);

    let mut conn = Mqtt::new(&mut tls);
    client_cert_accepted(&mut conn, &files, timeouts.probe).await?;
    report(&pass(
        "client cert",
        format!("certificate {} accepted", files.cert_id),
    ));
    mqtt_connect(&mut conn, thing, settings, &files, timeouts.step).await?;
    report(&pass(
        "connect",
        format!("CONNACK accepted, client id {}", settings.client_id),
    ));
    // The device's own check topic.
    let topic =
        gopigo_protocol::Topic::robot(thing, gopigo_protocol::RobotTopic::Check).to_string();
    subscribe(&mut conn, &topic, timeouts.step).await?;
    report(&pass("subscribe", topic.clone()));
    round_trip(&mut conn, &topic, timeouts.step).await?;
    report(&pass(
        "round trip",
        format!("published and received on {topic}"),
    ));
    let _ = conn.send(Packet::Disconnect).await;
    let _ = tls.shutdown().await;
    Ok(())
}

/// A finished step's line as a [`Step`]: `Ok` when it passed.
fn passed(line: StepResult) -> Step<StepResult> {
    if line.ok {
        Ok(line)
    } else {
        Err(line)
    }
}

fn files_passed(settings: &MqttSettings, files: &Files) -> StepResult {
    pass(
        "files",
        format!(
            "certificate {} (CN={}) matches key {}; CA {}",
            settings.cert_file.display(),
            files.cert_cn,
            settings.key_file.display(),
            settings.ca_file.display()
        ),
    )
}

/// dns: the endpoint's first address.
async fn resolve(settings: &MqttSettings, wait: Duration) -> Step<SocketAddr> {
    let lookup = tokio::net::lookup_host((settings.host.as_str(), settings.port));
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(wait, lookup).await {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => return Err(failed(
                "dns",
                format!("cannot resolve {}: {e}", settings.host),
                "check [mqtt] host: on AWS it is what `aws iot describe-endpoint --endpoint-type \
                 iot:Data-ATS` prints (xxxx-ats.iot.REGION.amazonaws.com); check the machine's DNS \
                 (/etc/resolv.conf) and network",
            )),
            Err(_) => {
                return Err(failed(
                    "dns",
                    format!("no answer resolving {} within {wait:?}", settings.host),
                    "check the machine's DNS server (/etc/resolv.conf) and network",
                ))
            }
        };
    addrs.first().copied().ok_or_else(|| {
        failed(
            "dns",
            format!("{} has no address", settings.host),
            "check [mqtt] host",
        )
    })
}

/// tcp: a connection to the endpoint.
async fn connect_tcp(settings: &MqttSettings, addr: SocketAddr, wait: Duration) -> Step<TcpStream> {
    match tokio::time::timeout(wait, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(failed(
            "tcp",
            format!("connection to {addr} refused"),
            format!(
                "nothing listens on port {}: wrong port? AWS IoT takes MQTT on 8883 (or 443 \
                 with alpn = true); the local core prints its MQTT port on start and writes it \
                 to endpoints.json",
                settings.port
            ),
        )),
        Ok(Err(e)) => Err(failed(
            "tcp",
            format!("cannot connect to {addr}: {e}"),
            "check the network route and firewall",
        )),
        Err(_) => Err(failed(
            "tcp",
            format!("no answer from {addr} within {wait:?}"),
            format!(
                "a firewall probably drops outbound port {}; try port 443 with alpn = true",
                settings.port
            ),
        )),
    }
}

/// tls: the handshake, verified against the CA file; the PASS line names
/// the version, ALPN and the chain the server sent.
async fn handshake(
    settings: &MqttSettings,
    files: &Files,
    tcp: TcpStream,
    wait: Duration,
) -> Step<(TlsStream<TcpStream>, StepResult)> {
    let seen = Arc::new(Mutex::new(SeenChain::default()));
    let config = tls_config(settings, files, seen.clone())?;
    let name = ServerName::try_from(settings.host.clone()).map_err(|e| {
        failed(
            "tls",
            format!("{:?} is not a valid TLS server name: {e}", settings.host),
            "check [mqtt] host",
        )
    })?;
    let connect = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
    let handshake = tokio::time::timeout(wait, connect).await;
    let chain_text = seen.lock().map(|s| s.describe()).unwrap_or_default();
    let tls = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(match seen.lock() {
                Ok(seen) => tls_failure(&e, &seen, settings, files),
                Err(_) => failed("tls", e.to_string(), "see the error"),
            })
        }
        Err(_) => {
            return Err(failed(
                "tls",
                format!("no TLS handshake within {wait:?}"),
                format!("port {} does not answer TLS: wrong port?", settings.port),
            ))
        }
    };
    let line = tls_passed(&tls, settings, &chain_text);
    Ok((tls, line))
}

fn tls_passed(tls: &TlsStream<TcpStream>, settings: &MqttSettings, chain: &str) -> StepResult {
    let (_, conn) = tls.get_ref();
    let version = conn
        .protocol_version()
        .map(|v| match v {
            rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_string(),
            rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_string(),
            other => format!("{other:?}"),
        })
        .unwrap_or_else(|| "?".into());
    let alpn = conn
        .alpn_protocol()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_else(|| "none".into());
    pass(
        "tls",
        format!(
            "{version}, ALPN {alpn}; server chain verifies against {}:\n{chain}",
            settings.ca_file.display()
        ),
    )
}

/// client cert: did the server keep the connection after seeing our
/// certificate? (TLS 1.3 servers reject a client certificate after the
/// handshake.)
async fn client_cert_accepted(conn: &mut Mqtt<'_>, files: &Files, wait: Duration) -> Step<()> {
    match conn.probe(wait).await {
        Probe::Open => Ok(()),
        Probe::Closed(why) => Err(cert_rejected(&why, files)),
    }
}

/// connect: MQTT CONNECT with the thing's client id, answered by an
/// accepting CONNACK.
async fn mqtt_connect(
    conn: &mut Mqtt<'_>,
    thing: &str,
    settings: &MqttSettings,
    files: &Files,
    wait: Duration,
) -> Step<()> {
    let mut connect = Connect::new(settings.client_id.clone());
    connect.keep_alive = 30;
    connect.clean_session = true;
    conn.send(Packet::Connect(connect))
        .await
        .map_err(|e| failed("connect", format!("cannot send CONNECT: {e}"), "retry"))?;
    match conn.recv(wait).await {
        Ok(Some(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => Ok(()),
        Ok(Some(Packet::ConnAck(ack))) => Err(failed(
            "connect",
            format!("CONNACK refused: {:?}", ack.code),
            "the policy attached to this certificate does not allow iot:Connect for this \
             client id",
        )),
        Ok(other) => Err(failed(
            "connect",
            format!("connection closed after CONNECT ({})", describe_end(&other)),
            format!(
                "the policy denies iot:Connect on client/{}: the client id must be the thing \
                 name the certificate is attached to, and the certificate needs the role \
                 policy (re-run `gopigo provision --thing {thing}`; `aws iot \
                 list-attached-policies --target <cert arn>`). Less likely: the certificate \
                 {} is not ACTIVE in this account and region (`aws iot describe-certificate \
                 --certificate-id {}`), or another client with the same id keeps taking over",
                settings.client_id, files.cert_id, files.cert_id
            ),
        )),
        Err(e) => Err(failed("connect", e, "retry; check the network")),
    }
}

/// subscribe: a QoS 1 subscription to `topic`, granted.
async fn subscribe(conn: &mut Mqtt<'_>, topic: &str, wait: Duration) -> Step<()> {
    let mut sub = Subscribe::new(topic, QoS::AtLeastOnce);
    sub.pkid = 1;
    conn.send(Packet::Subscribe(sub))
        .await
        .map_err(|e| failed("subscribe", e, "retry"))?;
    match conn.recv(wait).await {
        Ok(Some(Packet::SubAck(ack)))
            if ack
                .return_codes
                .iter()
                .all(|c| matches!(c, SubscribeReasonCode::Success(_))) =>
        {
            Ok(())
        }
        other => Err(failed(
            "subscribe",
            format!(
                "subscription to {topic} refused ({})",
                describe_answer(&other)
            ),
            format!("the policy does not allow iot:Subscribe on topicfilter/{topic}"),
        )),
    }
}

/// round trip: a QoS 1 PUBLISH to `topic`, its PUBACK, and the message
/// coming back on our own subscription.
async fn round_trip(conn: &mut Mqtt<'_>, topic: &str, wait: Duration) -> Step<()> {
    let payload = format!("gopigo check {}", now_unix());
    let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload.clone().into_bytes());
    publish.pkid = 2;
    conn.send(Packet::Publish(publish))
        .await
        .map_err(|e| failed("publish", e, "retry"))?;
    let mut acked = false;
    let mut received = false;
    let deadline = tokio::time::Instant::now() + wait;
    while !(acked && received) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match conn.recv(left).await {
            Ok(Some(Packet::PubAck(_))) => acked = true,
            Ok(Some(Packet::Publish(p))) if p.topic == topic && p.payload == payload.as_bytes() => {
                received = true;
                if p.qos == QoS::AtLeastOnce {
                    let _ = conn
                        .send(Packet::PubAck(rumqttc::mqttbytes::v4::PubAck::new(p.pkid)))
                        .await;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(failed(
                    "publish",
                    format!("connection closed after PUBLISH to {topic}"),
                    format!("the policy does not allow iot:Publish on topic/{topic}"),
                ))
            }
            Err(_) if acked => {
                return Err(failed(
                    "receive",
                    format!("published to {topic} (PUBACK) but the message never came back"),
                    format!("the policy does not allow iot:Receive on topic/{topic}"),
                ))
            }
            Err(e) => {
                return Err(failed(
                    "publish",
                    format!("no PUBACK: {e}"),
                    "retry; check the network",
                ))
            }
        }
    }
    Ok(())
}

struct Files {
    roots: rustls::RootCertStore,
    ca_subjects: Vec<String>,
    chain: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    cert_id: String,
    cert_cn: String,
    not_before: i64,
    not_after: i64,
}

fn load_files(s: &MqttSettings) -> Result<Files, StepResult> {
    let bad = |e: gopigo_client::ClientError| {
        failed(
            "files",
            e.to_string(),
            "re-run `gopigo provision`, or fix the path in [mqtt] of the config",
        )
    };
    let cas = gopigo_client::load_certs("CA certificate", "ca_file", &s.ca_file).map_err(bad)?;
    let chain =
        gopigo_client::load_certs("device certificate", "cert_file", &s.cert_file).map_err(bad)?;
    let key = gopigo_client::load_key(&s.key_file).map_err(bad)?;
    let mut roots = rustls::RootCertStore::empty();
    let mut ca_subjects = Vec::new();
    for ca in cas {
        if let Ok(info) = gopigo_pki::parse_certificate_der(ca.as_ref()) {
            ca_subjects.push(info.subject);
        }
        roots.add(ca).map_err(|e| {
            failed(
                "files",
                format!(
                    "{} is not a usable CA certificate: {e}",
                    s.ca_file.display()
                ),
                "use ca.pem from the bundle `gopigo provision` wrote",
            )
        })?;
    }
    let first = chain
        .first()
        .ok_or_else(|| failed("files", "no certificate", "re-run provision"))?;
    let info = gopigo_pki::parse_certificate_der(first.as_ref()).map_err(|e| {
        failed(
            "files",
            format!("{}: {e}", s.cert_file.display()),
            "re-run provision",
        )
    })?;
    let key_text = std::fs::read_to_string(&s.key_file).unwrap_or_default();
    match gopigo_pki::private_key_public_key_der(&key_text) {
        Ok(pk) if pk == info.public_key_der => {}
        Ok(_) => {
            return Err(failed(
                "files",
                format!(
                    "{} is not the certificate of key {}",
                    s.cert_file.display(),
                    s.key_file.display()
                ),
                "the bundle is mixed up: use the cert.pem written together with this key.pem (or \
                 re-run `gopigo provision`, which signs a new one for this key)",
            ))
        }
        Err(e) => {
            return Err(failed(
                "files",
                format!("{}: {e}", s.key_file.display()),
                "re-run provision",
            ))
        }
    }
    Ok(Files {
        roots,
        ca_subjects,
        chain,
        key,
        cert_id: info.id,
        cert_cn: info.common_name.unwrap_or_default(),
        not_before: info.not_before,
        not_after: info.not_after,
    })
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The validity step: is `now` inside the certificate's validity?
pub fn validity(not_before: i64, not_after: i64, now: i64) -> StepResult {
    let fmt = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .ok()
            .and_then(|d| {
                d.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| t.to_string())
    };
    if now < not_before {
        failed(
            "validity",
            format!(
                "the certificate is not valid yet: valid from {} but this machine's clock says {}",
                fmt(not_before),
                fmt(now)
            ),
            "clock skew: set the clock (`timedatectl set-ntp true`, or `date -u -s ...`); a \
             Raspberry Pi has no RTC and needs network time before connecting",
        )
    } else if now > not_after {
        failed(
            "validity",
            format!("the certificate expired on {}", fmt(not_after)),
            "sign a new one: remove cert.pem and re-run `gopigo provision` (the key is kept)",
        )
    } else {
        pass(
            "validity",
            format!("valid {} .. {}", fmt(not_before), fmt(not_after)),
        )
    }
}

#[derive(Default)]
struct SeenChain {
    subjects: Vec<(String, String)>,
}

impl SeenChain {
    fn describe(&self) -> String {
        self.subjects
            .iter()
            .enumerate()
            .map(|(i, (s, iss))| format!("       {i} s:{s}\n         i:{iss}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
    fn top_issuer(&self) -> Option<&str> {
        self.subjects.last().map(|(_, i)| i.as_str())
    }
}

/// Verifies like rustls's web PKI verifier, and records the chain it saw.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Arc<Mutex<SeenChain>>,
}

impl fmt::Debug for SeenChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeenChain")
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.subjects = std::iter::once(end_entity)
                .chain(intermediates)
                .filter_map(|c| gopigo_pki::parse_certificate_der(c.as_ref()).ok())
                .map(|i| (i.subject, i.issuer))
                .collect();
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn tls_config(
    s: &MqttSettings,
    files: &Files,
    seen: Arc<Mutex<SeenChain>>,
) -> Result<Arc<rustls::ClientConfig>, StepResult> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let bad = |e: String| {
        failed(
            "tls",
            format!("TLS set-up failed: {e}"),
            "re-run `gopigo provision`",
        )
    };
    let inner = WebPkiServerVerifier::builder_with_provider(
        Arc::new(files.roots.clone()),
        provider.clone(),
    )
    .build()
    .map_err(|e| bad(e.to_string()))?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordingVerifier { inner, seen }))
        .with_client_auth_cert(files.chain.clone(), files.key.clone_key())
        .map_err(|e| bad(e.to_string()))?;
    if s.alpn {
        cfg.alpn_protocols = vec![gopigo_client::ALPN_MQTT_CA.to_vec()];
    }
    Ok(Arc::new(cfg))
}

fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
}

const CERT_REJECTED_FIX: &str = "the server refused the client certificate: it is INACTIVE, \
     REVOKED or not registered in this account and region (`aws iot describe-certificate \
     --certificate-id ID`; activate it with `aws iot update-certificate --new-status ACTIVE`, or \
     re-run `gopigo provision`, which signs a new one)";

fn cert_rejected(why: &str, files: &Files) -> StepResult {
    failed(
        "client cert",
        format!(
            "the server closed the connection right after the handshake ({why}); certificate id {}",
            files.cert_id
        ),
        CERT_REJECTED_FIX.replace("ID", &files.cert_id),
    )
}

fn tls_failure(
    e: &std::io::Error,
    seen: &SeenChain,
    s: &MqttSettings,
    files: &Files,
) -> StepResult {
    let chain = seen.describe();
    let top = seen.top_issuer().unwrap_or("?");
    let ours = if files.ca_subjects.is_empty() {
        "nothing usable".to_string()
    } else {
        files.ca_subjects.join("; ")
    };
    match rustls_error(e) {
        Some(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        )) => failed(
            "tls",
            format!(
                "the server's chain ends at issuer {top:?}, which {} (holding {ours}) does not \
                 vouch for; server chain:\n{chain}",
                s.ca_file.display()
            ),
            "wrong CA file: for AWS IoT (ATS endpoint) use Amazon Root CA 1 and 3 (the ca.pem \
             `gopigo provision --aws` writes); for the local core use DATA_DIR/ca/ca.pem (the ca.pem \
             `gopigo provision` writes)",
        ),
        Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForName)) => failed(
            "tls",
            format!("the server's certificate is not for host {:?}; chain:\n{chain}", s.host),
            "use the host name `describe-endpoint` gives (local core: localhost), not an IP address",
        ),
        Some(rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::NotValidYet)) => failed(
            "tls",
            format!("the server's certificate is outside its validity by this machine's clock; chain:\n{chain}"),
            "clock skew: set the clock (`timedatectl set-ntp true`)",
        ),
        Some(rustls::Error::AlertReceived(a)) if is_cert_alert(*a) => failed(
            "tls",
            format!("the server rejected the client certificate during the handshake (alert {a:?})"),
            CERT_REJECTED_FIX.replace("ID", &files.cert_id),
        ),
        Some(rustls::Error::AlertReceived(AlertDescription::NoApplicationProtocol)) => failed(
            "tls",
            "the server wants an ALPN protocol we did not offer".to_string(),
            "on port 443 set alpn = true in [mqtt]",
        ),
        Some(rustls::Error::InvalidMessage(m)) => failed(
            "tls",
            format!("the server did not answer in TLS ({m:?})"),
            format!(
                "port {} is not a TLS port (an HTTP port?): AWS IoT MQTT is 8883, or 443 with alpn = true",
                s.port
            ),
        ),
        Some(other) => failed("tls", format!("handshake failed: {other}"), "see the error"),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof
            || e.kind() == std::io::ErrorKind::ConnectionReset =>
        {
            failed(
                "tls",
                format!("the server closed the connection during the handshake ({e})"),
                format!(
                    "on port 443 AWS needs alpn = true; otherwise the client certificate may be \
                     unknown or inactive: {}",
                    CERT_REJECTED_FIX.replace("ID", &files.cert_id)
                ),
            )
        }
        None => failed("tls", format!("handshake failed: {e}"), "see the error"),
    }
}

fn is_cert_alert(a: AlertDescription) -> bool {
    matches!(
        a,
        AlertDescription::BadCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateRequired
            | AlertDescription::HandshakeFailure
    )
}

enum Probe {
    Open,
    Closed(String),
}

struct Mqtt<'a> {
    io: &'a mut TlsStream<TcpStream>,
    buf: BytesMut,
}

impl<'a> Mqtt<'a> {
    fn new(io: &'a mut TlsStream<TcpStream>) -> Self {
        Mqtt {
            io,
            buf: BytesMut::with_capacity(4096),
        }
    }

    /// Reads briefly: a server that rejects our certificate closes now.
    async fn probe(&mut self, wait: Duration) -> Probe {
        let mut tmp = [0u8; 1024];
        match tokio::time::timeout(wait, self.io.read(&mut tmp)).await {
            Err(_) => Probe::Open,
            Ok(Ok(0)) => Probe::Closed("connection closed".into()),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Probe::Open
            }
            Ok(Err(e)) => Probe::Closed(match rustls_error(&e) {
                Some(rustls::Error::AlertReceived(a)) => format!("TLS alert {a:?}"),
                _ => e.to_string(),
            }),
        }
    }

    async fn send(&mut self, p: Packet) -> Result<(), String> {
        let mut out = BytesMut::new();
        p.write(&mut out, 256 * 1024)
            .map_err(|e| format!("{e:?}"))?;
        self.io.write_all(&out).await.map_err(|e| e.to_string())?;
        self.io.flush().await.map_err(|e| e.to_string())
    }

    /// The next packet; `Ok(None)` when the server closed the connection.
    async fn recv(&mut self, wait: Duration) -> Result<Option<Packet>, String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match Packet::read(&mut self.buf, 256 * 1024) {
                Ok(p) => return Ok(Some(p)),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => return Err(format!("bad MQTT packet from the server: {e:?}")),
            }
            let mut tmp = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.io.read(&mut tmp)).await {
                Err(_) => return Err(format!("no answer within {wait:?}")),
                Ok(Ok(0)) => return Ok(None),
                Ok(Ok(n)) => self.buf.extend_from_slice(&tmp[..n]),
                Ok(Err(_)) => return Ok(None),
            }
        }
    }
}

fn describe_end(p: &Option<Packet>) -> String {
    match p {
        None => "no CONNACK".into(),
        Some(p) => format!("unexpected {p:?}"),
    }
}

fn describe_answer(r: &Result<Option<Packet>, String>) -> String {
    match r {
        Ok(None) => "connection closed".into(),
        Ok(Some(Packet::SubAck(a))) => format!("SUBACK {:?}", a.return_codes),
        Ok(Some(p)) => format!("unexpected {p:?}"),
        Err(e) => e.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_table() {
        let cases = [
            (100, 200, 150, true, None),
            (100, 200, 50, false, Some("clock skew")),
            (100, 200, 250, false, Some("expired")),
        ];
        for (nb, na, now, ok, needle) in cases {
            let r = validity(nb, na, now);
            assert_eq!(r.ok, ok);
            if let Some(n) = needle {
                let text = r.to_string();
                assert!(text.contains(n), "{text}");
                assert!(text.starts_with("FAIL validity"), "{text}");
            }
        }
    }

    #[test]
    fn lines_read_pass_and_fail() {
        assert_eq!(
            pass("tcp", "connected").to_string(),
            "PASS tcp          connected"
        );
        let f = failed("dns", "cannot resolve x", "check host").to_string();
        assert_eq!(
            f,
            "FAIL dns          cannot resolve x\n     fix: check host"
        );
    }

    #[test]
    fn seen_chain_top_issuer() {
        let s = SeenChain {
            subjects: vec![
                ("CN=a".into(), "CN=b".into()),
                ("CN=b".into(), "CN=root".into()),
            ],
        };
        assert_eq!(s.top_issuer(), Some("CN=root"));
        assert!(s.describe().contains("1 s:CN=b"));
    }
}
