//! Shared test helpers: an in-test PKI (rcgen), an in-test Authority with
//! real policy JSON, a broker on 127.0.0.1:0, rumqttc clients and a raw
//! TLS MQTT client for what rumqttc will not send.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use gopigo_broker::{server_tls_config, Authority, Broker, BrokerConfig, BrokerHandle};
use gopigo_policy::PolicyDocument;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rumqttc::mqttbytes::v4::{Connect, Packet};
use rumqttc::mqttbytes::Protocol;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A CA able to sign leaf certificates.
pub struct Ca {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A client certificate with this common name.
    pub fn client(&self, cn: &str) -> Identity {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Identity::new(cert, key)
    }

    /// A server certificate for 127.0.0.1 / localhost.
    pub fn server(&self) -> Identity {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "broker");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Identity::new(cert, key)
    }
}

/// A certificate with its key.
#[derive(Clone)]
pub struct Identity {
    pub cert_der: Vec<u8>,
    pub cert_pem: String,
    pub key_der: Vec<u8>,
    pub key_pem: String,
}

impl Identity {
    fn new(cert: rcgen::Certificate, key: KeyPair) -> Identity {
        Identity {
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }

    pub fn id(&self) -> String {
        gopigo_broker::certificate_id(&self.cert_der)
    }
}

#[derive(Default, Clone)]
struct CertEntry {
    active: bool,
    policies: Vec<Arc<PolicyDocument>>,
    things: Vec<String>,
}

/// An in-memory registry.
#[derive(Default)]
pub struct TestAuthority {
    certs: Mutex<HashMap<String, CertEntry>>,
}

fn id_of(principal: &str) -> &str {
    principal
        .rsplit_once("cert/")
        .map(|(_, id)| id)
        .unwrap_or("")
}

impl TestAuthority {
    pub fn register(&self, who: &Identity, policy_json: &str, things: &[&str]) {
        let doc = Arc::new(PolicyDocument::parse(policy_json).unwrap());
        self.certs.lock().unwrap().insert(
            who.id(),
            CertEntry {
                active: true,
                policies: vec![doc],
                things: things.iter().map(|s| s.to_string()).collect(),
            },
        );
    }

    pub fn set_active(&self, who: &Identity, active: bool) {
        if let Some(e) = self.certs.lock().unwrap().get_mut(&who.id()) {
            e.active = active;
        }
    }
}

impl Authority for TestAuthority {
    fn certificate_active(&self, certificate_id: &str) -> bool {
        self.certs
            .lock()
            .unwrap()
            .get(certificate_id)
            .is_some_and(|e| e.active)
    }

    fn policies_for(&self, principal_arn: &str) -> Vec<Arc<PolicyDocument>> {
        self.certs
            .lock()
            .unwrap()
            .get(id_of(principal_arn))
            .map(|e| e.policies.clone())
            .unwrap_or_default()
    }

    fn things_for(&self, principal_arn: &str) -> Vec<String> {
        self.certs
            .lock()
            .unwrap()
            .get(id_of(principal_arn))
            .map(|e| e.things.clone())
            .unwrap_or_default()
    }
}

pub const ADMIN_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#;

pub const ROBOT_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect",
     "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive", "iot:RetainPublish"],
     "Resource": "arn:aws:iot:us-east-1:123456789012:topic/gopigo/${iot:Connection.Thing.ThingName}/*"},
    {"Effect": "Allow", "Action": "iot:Subscribe",
     "Resource": "arn:aws:iot:us-east-1:123456789012:topicfilter/gopigo/${iot:Connection.Thing.ThingName}/*"}
  ]
}"#;

/// Subscribe anywhere, receive only under `public/`.
pub const LIMITED_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["iot:Connect", "iot:Subscribe", "iot:Publish"], "Resource": "*"},
    {"Effect": "Allow", "Action": "iot:Receive", "Resource": "arn:aws:iot:us-east-1:123456789012:topic/public/*"}
  ]
}"#;

/// A running broker on 127.0.0.1:0.
pub struct TestBroker {
    pub addr: SocketAddr,
    pub handle: BrokerHandle,
    pub ca: Arc<Ca>,
    pub authority: Arc<TestAuthority>,
    pub admin: Identity,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

pub struct Setup {
    pub ca: Arc<Ca>,
    pub server: Identity,
    pub authority: Arc<TestAuthority>,
    pub admin: Identity,
}

impl Setup {
    pub fn new() -> Setup {
        let ca = Arc::new(Ca::new("test CA"));
        let server = ca.server();
        let authority = Arc::new(TestAuthority::default());
        let admin = ca.client("admin");
        authority.register(&admin, ADMIN_POLICY, &[]);
        Setup {
            ca,
            server,
            authority,
            admin,
        }
    }

    pub fn config() -> BrokerConfig {
        BrokerConfig {
            region: REGION.into(),
            account_id: ACCOUNT.into(),
            policy_refresh: Duration::ZERO,
            ..BrokerConfig::default()
        }
    }

    pub fn server_tls(&self, alpn: Option<Vec<Vec<u8>>>) -> Arc<rustls::ServerConfig> {
        let authority: Arc<dyn Authority> = self.authority.clone();
        server_tls_config(
            self.ca.der(),
            &self.server.cert_pem,
            &self.server.key_pem,
            authority,
            alpn,
        )
        .unwrap()
    }

    pub async fn start(&self, config: BrokerConfig, store: Option<PathBuf>) -> TestBroker {
        self.start_alpn(config, store, None).await
    }

    pub async fn start_alpn(
        &self,
        config: BrokerConfig,
        store: Option<PathBuf>,
        alpn: Option<Vec<Vec<u8>>>,
    ) -> TestBroker {
        let authority: Arc<dyn Authority> = self.authority.clone();
        let tls = server_tls_config(
            self.ca.der(),
            &self.server.cert_pem,
            &self.server.key_pem,
            authority.clone(),
            alpn,
        )
        .unwrap();
        let broker = Broker::new(config, authority, store).unwrap();
        let handle = broker.handle();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            broker
                .serve(listener, tls, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        TestBroker {
            addr,
            handle,
            ca: self.ca.clone(),
            authority: self.authority.clone(),
            admin: self.admin.clone(),
            stop: Some(stop),
            task: Some(task),
        }
    }
}

impl TestBroker {
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Simulates `kill -9` as far as the store is concerned: the serve task
    /// is aborted and the broker's state (with its SQLite connection) is
    /// leaked, never closed or flushed.
    pub fn crash(mut self) {
        std::mem::forget(self.handle.clone());
        self.stop.take();
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Waits until the broker has no open connection task.
    pub async fn wait_idle(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.handle.stats().connections == 0 {
                return true;
            }
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn client_config(
        &self,
        who: &Identity,
        alpn: Option<Vec<Vec<u8>>>,
    ) -> Arc<rustls::ClientConfig> {
        client_config(&self.ca.der(), who, alpn)
    }

    pub fn options(&self, client_id: &str, who: &Identity) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, "127.0.0.1", self.addr.port());
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            self.client_config(who, None),
        )));
        o.set_keep_alive(Duration::from_secs(30));
        o.set_max_packet_size(256 * 1024, 256 * 1024);
        o
    }

    pub fn client(&self, client_id: &str, who: &Identity) -> TestClient {
        TestClient::start(self.options(client_id, who))
    }

    pub async fn raw(&self, who: &Identity) -> std::io::Result<Raw> {
        Raw::connect(self.addr, self.client_config(who, None)).await
    }
}

pub fn client_config(
    ca_der: &[u8],
    who: &Identity,
    alpn: Option<Vec<Vec<u8>>>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der.to_vec())).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from(who.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(who.key_der.clone())),
        )
        .unwrap();
    if let Some(alpn) = alpn {
        cfg.alpn_protocols = alpn;
    }
    Arc::new(cfg)
}

/// A rumqttc client whose event loop runs in a task until its first error.
pub struct TestClient {
    pub client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Event, String>>,
    task: JoinHandle<()>,
}

pub const WAIT: Duration = Duration::from_secs(5);

impl TestClient {
    pub fn start(options: MqttOptions) -> TestClient {
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let (tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(ev) => {
                        if tx.send(Ok(ev)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                }
            }
        });
        TestClient {
            client,
            events,
            task,
        }
    }

    /// Next incoming packet (outgoing events skipped); `Err` when the
    /// connection ended, `None` on timeout.
    pub async fn next_incoming(&mut self, within: Duration) -> Option<Result<Packet, String>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => return None,
                Ok(None) => return Some(Err("event loop ended".into())),
                Ok(Some(Err(e))) => return Some(Err(e)),
                Ok(Some(Ok(Event::Incoming(p)))) => return Some(Ok(p)),
                Ok(Some(Ok(Event::Outgoing(_)))) => {}
            }
        }
    }

    /// Waits for CONNACK; returns session_present.
    pub async fn connected(&mut self) -> bool {
        match self.next_incoming(WAIT).await {
            Some(Ok(Incoming::ConnAck(a))) => {
                assert_eq!(a.code, rumqttc::ConnectReturnCode::Success);
                a.session_present
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Waits for the next packet of a kind, skipping others.
    pub async fn wait_for(
        &mut self,
        within: Duration,
        want: fn(&Packet) -> bool,
    ) -> Option<Packet> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_incoming(left).await {
                Some(Ok(p)) if want(&p) => return Some(p),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    }

    pub async fn suback(&mut self) -> rumqttc::SubAck {
        match self
            .wait_for(WAIT, |p| matches!(p, Packet::SubAck(_)))
            .await
        {
            Some(Packet::SubAck(s)) => s,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    pub async fn subscribe(&mut self, filter: &str, qos: rumqttc::QoS) {
        self.client.subscribe(filter, qos).await.unwrap();
        let s = self.suback().await;
        assert!(
            matches!(s.return_codes[0], rumqttc::SubscribeReasonCode::Success(_)),
            "subscribe {filter} refused: {s:?}"
        );
    }

    /// Next PUBLISH within `within`, `None` if none came (or the connection ended).
    pub async fn publish_within(&mut self, within: Duration) -> Option<rumqttc::Publish> {
        match self
            .wait_for(within, |p| matches!(p, Packet::Publish(_)))
            .await
        {
            Some(Packet::Publish(p)) => Some(p),
            _ => None,
        }
    }

    /// Whether the connection ends (error event) within `within`.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Drops the TCP connection without DISCONNECT.
    pub fn kill(self) {
        self.task.abort();
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a raw read saw.
#[derive(Debug)]
pub enum RawEvent {
    Packet(Packet),
    Closed,
    Timeout,
}

/// A bare TLS connection speaking MQTT through the v4 codec.
pub struct Raw {
    pub stream: TlsStream<TcpStream>,
    buf: BytesMut,
}

impl Raw {
    pub async fn connect(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>) -> std::io::Result<Raw> {
        let tcp = TcpStream::connect(addr).await?;
        let connector = tokio_rustls::TlsConnector::from(cfg);
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let stream = connector.connect(name, tcp).await?;
        Ok(Raw {
            stream,
            buf: BytesMut::new(),
        })
    }

    pub async fn send(&mut self, p: Packet) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        p.write(&mut out, usize::MAX).unwrap();
        self.send_bytes(&out).await
    }

    pub async fn send_bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(b).await?;
        self.stream.flush().await
    }

    pub async fn recv(&mut self, within: Duration) -> RawEvent {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match Packet::read(&mut self.buf, usize::MAX >> 1) {
                Ok(p) => return RawEvent::Packet(p),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(_) => return RawEvent::Closed,
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return RawEvent::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return RawEvent::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Whether the broker closes the connection within `within` (packets before that are skipped).
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                RawEvent::Closed => return true,
                RawEvent::Timeout => return false,
                RawEvent::Packet(_) => {}
            }
        }
    }

    /// Sends CONNECT and returns the CONNACK (or what came instead).
    pub async fn mqtt_connect(&mut self, connect: Connect) -> RawEvent {
        self.send(Packet::Connect(connect)).await.unwrap();
        self.recv(WAIT).await
    }
}

pub fn connect_packet(client_id: &str, keep_alive: u16, clean: bool) -> Connect {
    Connect {
        protocol: Protocol::V4,
        keep_alive,
        client_id: client_id.into(),
        clean_session: clean,
        last_will: None,
        login: None,
    }
}

pub fn is_connack_ok(ev: &RawEvent) -> bool {
    matches!(ev, RawEvent::Packet(Packet::ConnAck(a)) if a.code == rumqttc::ConnectReturnCode::Success)
}
