//! Throughput, latency and idle-connection memory of this broker (policy
//! enforcement on) against Debian's mosquitto 2, with the same load
//! generator in the same run. Prints a markdown table.
//!
//! ```text
//! cargo run --release -p gopigo-broker --example bench -- [--quick] [--idle N] [--msgs N]
//! ```
//! `--quick`: 5 000 messages, 1 000 idle connections (default 20 000 / 10 000).
//!
//! `--flood [N]`: only the memory flood, on fresh brokers: a subscriber that
//! never reads, and N (default 12 000) different 128 KiB QoS 0 messages from
//! one publisher; prints each broker's peak RSS and its RSS after the
//! clients leave. Our broker runs with `BrokerConfig::default()`, the
//! configuration `gopigo core` gives it, but with `Limits::off()` (`gopigo
//! core --limits off`), in a process of its own.
//! Needs `/usr/sbin/mosquitto` (`apt-get install mosquitto`); without it only
//! our column is filled. Needs `ulimit -n` above the idle count + a margin.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use gopigo_broker::{server_tls_config, Authority, Broker, BrokerConfig};
use gopigo_policy::PolicyDocument;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rumqttc::mqttbytes::v4::{Connect, Packet, PubAck, Publish, Subscribe};
use rumqttc::mqttbytes::{Protocol, QoS};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::client::TlsStream;

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/bench-*"},
 {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:us-east-1:123456789012:topic/bench/*"},
 {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/bench/*"},
 {"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/bench/forbidden"}]}"#;

const PAYLOAD: usize = 64;

type Tls = TlsStream<TcpStream>;

// ---------------------------------------------------------------- broker side

struct BenchAuthority {
    cert_id: String,
    policy: Arc<PolicyDocument>,
}

impl Authority for BenchAuthority {
    fn certificate_active(&self, certificate_id: &str) -> bool {
        certificate_id == self.cert_id
    }
    fn policies_for(&self, _principal_arn: &str) -> Vec<Arc<PolicyDocument>> {
        vec![self.policy.clone()]
    }
    fn things_for(&self, _principal_arn: &str) -> Vec<String> {
        Vec::new()
    }
}

/// `bench --serve DIR`: run our broker, print its port, stop when stdin closes.
fn serve(dir: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        let client_der = std::fs::read(dir.join("client.der")).unwrap();
        let authority: Arc<dyn Authority> = Arc::new(BenchAuthority {
            cert_id: gopigo_broker::certificate_id(&client_der),
            policy: Arc::new(PolicyDocument::parse(POLICY).unwrap()),
        });
        let ca_der = std::fs::read(dir.join("ca.der")).unwrap();
        let tls = server_tls_config(
            ca_der,
            &read("server.pem"),
            &read("server.key"),
            authority.clone(),
            None,
        )
        .unwrap();
        // The flood is far past AWS's per-connection quotas on purpose (it
        // measures the queues' memory bounds, like Mosquitto's): off here.
        let config = BrokerConfig {
            limits: gopigo_broker::Limits::off(),
            ..BrokerConfig::default()
        };
        let broker = Broker::new(config, authority, None).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("PORT {}", listener.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        let stdin_closed = async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut s = String::new();
                let _ = std::io::stdin().read_line(&mut s);
            })
            .await;
        };
        broker.serve(listener, tls, stdin_closed).await.unwrap();
    });
}

// ---------------------------------------------------------------- PKI

fn write_pki(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "bench CA");
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = p.self_signed(&ca_key).unwrap();
    let skey = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = p.signed_by(&skey, &ca, &ca_key).unwrap();
    let ckey = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "bench-client");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = p.signed_by(&ckey, &ca, &ca_key).unwrap();
    let w = |f: &str, b: &[u8]| std::fs::write(dir.join(f), b).unwrap();
    w("ca.pem", ca.pem().as_bytes());
    w("ca.der", ca.der());
    w("server.pem", server.pem().as_bytes());
    w("server.key", skey.serialize_pem().as_bytes());
    w("client.der", client.der());
    w("client.key.der", &ckey.serialize_der());
}

fn client_tls(dir: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(
            std::fs::read(dir.join("ca.der")).unwrap(),
        ))
        .unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![CertificateDer::from(
            std::fs::read(dir.join("client.der")).unwrap(),
        )],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            std::fs::read(dir.join("client.key.der")).unwrap(),
        )),
    )
    .unwrap();
    Arc::new(cfg)
}

// ---------------------------------------------------------------- brokers

struct Running {
    name: &'static str,
    addr: SocketAddr,
    child: Child,
}

impl Running {
    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// Peak resident set since the process started.
    fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_ours(dir: &Path) -> Running {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--serve")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().trim_start_matches("PORT ").parse().unwrap();
    Running {
        name: "gopigo",
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        child,
    }
}

fn start_mosquitto(dir: &Path) -> Option<Running> {
    let bin = Path::new("/usr/sbin/mosquitto");
    if !bin.exists() {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n\
             require_certificate true\nuse_identity_as_username true\nallow_anonymous true\n\
             max_inflight_messages 100\nmax_queued_messages 10000\npersistence false\nlog_type error\nlog_dest stderr\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .spawn()
        .ok()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Some(Running {
                name: "mosquitto",
                addr,
                child,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

// ---------------------------------------------------------------- load generator

struct Conn {
    rd: ReadHalf<Tls>,
    wr: WriteHalf<Tls>,
    buf: BytesMut,
}

async fn connect(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    id: &str,
) -> std::io::Result<Conn> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await?;
    let (rd, wr) = tokio::io::split(tls);
    let mut c = Conn {
        rd,
        wr,
        buf: BytesMut::with_capacity(8192),
    };
    c.send(Packet::Connect(Connect {
        protocol: Protocol::V4,
        keep_alive: 1200,
        client_id: id.into(),
        clean_session: true,
        last_will: None,
        login: None,
    }))
    .await?;
    match c.read().await? {
        Packet::ConnAck(_) => Ok(c),
        other => Err(std::io::Error::other(format!(
            "expected CONNACK, got {other:?}"
        ))),
    }
}

impl Conn {
    async fn send(&mut self, p: Packet) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        p.write(&mut out, usize::MAX)
            .map_err(std::io::Error::other)?;
        self.wr.write_all(&out).await?;
        self.wr.flush().await
    }

    async fn read(&mut self) -> std::io::Result<Packet> {
        loop {
            match Packet::read(&mut self.buf, 1 << 20) {
                Ok(p) => return Ok(p),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
            if self.rd.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Outcome {
    msgs_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    delivered_pct: f64,
}

fn qos_of(q: u8) -> QoS {
    if q == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

/// One load: `pubs` publishers each sending `msgs_per_pub` messages at
/// `qos` to one topic that `subs` subscribers read.
#[derive(Debug, Clone, Copy)]
struct Load {
    pubs: usize,
    subs: usize,
    msgs_per_pub: usize,
    qos: u8,
}

/// Runs `load` against the broker at `addr`: subscribers first, then the
/// publishers, all connected before timing starts. Latency is each
/// message's receive time less the send time stamped in its payload.
async fn scenario(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    tag: &str,
    load: Load,
) -> Outcome {
    let base = Instant::now();
    let topic = format!("bench/{tag}/t");
    let expected_per_sub = load.pubs * load.msgs_per_pub;
    let mut sub_tasks = Vec::new();
    for s in 0..load.subs {
        let c = subscribed(
            addr,
            cfg.clone(),
            &format!("bench-{tag}-s{s}"),
            &topic,
            load.qos,
        )
        .await;
        sub_tasks.push(tokio::spawn(subscriber(c, base, expected_per_sub)));
    }
    let mut pub_conns = Vec::new();
    for p in 0..load.pubs {
        pub_conns.push(
            connect(addr, cfg.clone(), &format!("bench-{tag}-p{p}"))
                .await
                .unwrap(),
        );
    }
    // Timing starts once every connection is up.
    let start = Instant::now();
    let pub_tasks: Vec<_> = pub_conns
        .into_iter()
        .map(|c| tokio::spawn(publisher(c, topic.clone(), base, load)))
        .collect();
    for t in pub_tasks {
        t.await.unwrap();
    }
    let mut received = Vec::new();
    for t in sub_tasks {
        received.push(t.await.unwrap());
    }
    summarize(received, start, expected_per_sub)
}

/// A connection subscribed to `topic` (SUBACK read).
async fn subscribed(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    id: &str,
    topic: &str,
    qos: u8,
) -> Conn {
    let mut c = connect(addr, cfg, id).await.unwrap();
    let mut sub = Subscribe::new(topic, qos_of(qos));
    sub.pkid = 1;
    c.send(Packet::Subscribe(sub)).await.unwrap();
    match c.read().await.unwrap() {
        Packet::SubAck(_) => c,
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// Reads up to `expected` messages, acknowledging QoS 1 ones; returns each
/// one's latency (ns) and when the last arrived.
async fn subscriber(mut c: Conn, base: Instant, expected: usize) -> (Vec<u64>, Instant) {
    let mut lat = Vec::with_capacity(expected);
    let mut last = base;
    while lat.len() < expected {
        // Generous until the first message (publishers may still be
        // handshaking), then 3 s of silence ends the run.
        let wait = if lat.is_empty() { 60 } else { 3 };
        let p = match tokio::time::timeout(Duration::from_secs(wait), c.read()).await {
            Ok(Ok(p)) => p,
            _ => break,
        };
        let Packet::Publish(p) = p else { continue };
        let now = Instant::now();
        let sent = u64::from_be_bytes(p.payload[..8].try_into().unwrap());
        lat.push(now.duration_since(base).as_nanos() as u64 - sent);
        last = now;
        if p.qos == QoS::AtLeastOnce {
            let mut out = BytesMut::new();
            PubAck::new(p.pkid).write(&mut out).unwrap();
            // Acks are small; let them coalesce with the read loop.
            if c.wr.write_all(&out).await.is_err() {
                break;
            }
            if c.buf.len() < 2 {
                let _ = c.wr.flush().await;
            }
        }
    }
    (lat, last)
}

/// Counts the PUBACKs on a publisher's read side, each one reopening a
/// slot of its in-flight window.
fn ack_reader(
    mut rd: ReadHalf<Tls>,
    mut buf: BytesMut,
    window: Arc<Semaphore>,
    acked: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match Packet::read(&mut buf, 1 << 20) {
                Ok(Packet::PubAck(_)) => {
                    window.add_permits(1);
                    acked.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Ok(_) => continue,
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(_) => return,
            }
            match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
}

/// Sends `load.msgs_per_pub` time-stamped messages in batches, with at
/// most 100 QoS 1 messages unacknowledged; waits (10 s at most) for the
/// last acknowledgements.
async fn publisher(c: Conn, topic: String, base: Instant, load: Load) {
    let Conn { rd, mut wr, buf } = c;
    let window = Arc::new(Semaphore::new(100));
    let acked = Arc::new(AtomicUsize::new(0));
    let reader = ack_reader(rd, buf, window.clone(), acked.clone());
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut pkid: u16 = 0;
    for i in 0..load.msgs_per_pub {
        if load.qos == 1 {
            if let Ok(permit) = window.try_acquire() {
                permit.forget();
            } else {
                write_out(&mut wr, &mut out).await;
                window.acquire().await.unwrap().forget();
            }
            pkid = pkid.wrapping_add(1).max(1);
        }
        let mut payload = BytesMut::with_capacity(PAYLOAD);
        payload.put_u64(Instant::now().duration_since(base).as_nanos() as u64);
        payload.resize(PAYLOAD, 0x5a);
        let mut publish = Publish::from_bytes(topic.as_str(), qos_of(load.qos), payload.freeze());
        publish.pkid = if load.qos == 1 { pkid } else { 0 };
        publish.write(&mut out).unwrap();
        if out.len() > 16 * 1024 || i + 1 == load.msgs_per_pub || i % 32 == 31 {
            write_out(&mut wr, &mut out).await;
        }
    }
    if load.qos == 1 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while acked.load(Ordering::Relaxed) < load.msgs_per_pub && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    reader.abort();
}

/// Writes and flushes what `out` holds, if anything.
async fn write_out(wr: &mut WriteHalf<Tls>, out: &mut BytesMut) {
    if !out.is_empty() {
        wr.write_all(out).await.unwrap();
        wr.flush().await.unwrap();
        out.clear();
    }
}

/// Throughput from `start` to the last delivery, latency percentiles over
/// every delivery, and the share of the expected deliveries made.
fn summarize(
    received: Vec<(Vec<u64>, Instant)>,
    start: Instant,
    expected_per_sub: usize,
) -> Outcome {
    let subs = received.len();
    let mut all = Vec::new();
    let mut last = start;
    let mut per_sub = Vec::new();
    for (lat, l) in received {
        per_sub.push(lat.len());
        all.extend(lat);
        last = last.max(l);
    }
    if per_sub.iter().any(|n| *n < expected_per_sub) {
        eprintln!(
            "   short delivery: per-subscriber min {} max {} of {expected_per_sub}",
            per_sub.iter().min().unwrap(),
            per_sub.iter().max().unwrap()
        );
    }
    let delivered = all.len();
    all.sort_unstable();
    let pct = |q: f64| {
        if all.is_empty() {
            f64::NAN
        } else {
            all[((all.len() - 1) as f64 * q) as usize] as f64 / 1e6
        }
    };
    let secs = last.duration_since(start).as_secs_f64().max(1e-9);
    Outcome {
        msgs_per_s: delivered as f64 / secs,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        delivered_pct: 100.0 * delivered as f64 / (expected_per_sub * subs) as f64,
    }
}

async fn idle(b: &Running, cfg: Arc<rustls::ClientConfig>, n: usize) -> (u64, u64, usize) {
    let before = b.rss_kib();
    let mut conns = Vec::with_capacity(n);
    let mut ok = 0;
    let mut i = 0;
    while i < n {
        let batch = 100.min(n - i);
        let mut set = tokio::task::JoinSet::new();
        for j in 0..batch {
            let cfg = cfg.clone();
            let addr = b.addr;
            let id = format!("bench-idle-{}", i + j);
            set.spawn(async move { connect(addr, cfg, &id).await });
        }
        while let Some(r) = set.join_next().await {
            if let Ok(Ok(c)) = r {
                conns.push(c);
                ok += 1;
            }
        }
        i += batch;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = b.rss_kib();
    drop(conns);
    (before, after, ok)
}

struct Row {
    label: String,
    ours: f64,
    theirs: Option<f64>,
    lower_is_better: bool,
}

/// What the flood left: peak RSS, RSS after the clients left (KiB), and
/// the seconds the publisher took.
struct FloodOutcome {
    start_kib: u64,
    peak_kib: u64,
    after_kib: u64,
    secs: f64,
}

/// A subscriber that never reads, `n` different 128 KiB QoS 0 messages from
/// one publisher, a QoS 1 marker acknowledged (all routed), then both leave.
async fn flood(b: &Running, cfg: Arc<rustls::ClientConfig>, n: usize) -> FloodOutcome {
    const SIZE: usize = 128 * 1024;
    let start_kib = b.rss_kib();
    let mut sink = connect(b.addr, cfg.clone(), "bench-sink").await.unwrap();
    let mut sub = Subscribe::new("bench/flood", QoS::AtMostOnce);
    sub.pkid = 1;
    sink.send(Packet::Subscribe(sub)).await.unwrap();
    assert!(matches!(sink.read().await.unwrap(), Packet::SubAck(_)));
    // From here the sink reads nothing.
    let mut publ = connect(b.addr, cfg, "bench-flooder").await.unwrap();
    let mut payload: Vec<u8> = (0..SIZE).map(|i| (i * 31 % 251) as u8).collect();
    let t0 = Instant::now();
    for i in 0..n {
        payload[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let p = Publish::new("bench/flood", QoS::AtMostOnce, payload.clone());
        if publ.send(Packet::Publish(p)).await.is_err() {
            eprintln!("   publisher cut off after {i} messages");
            break;
        }
    }
    let mut marker = Publish::new("bench/marker", QoS::AtLeastOnce, "done");
    marker.pkid = 9;
    let _ = publ.send(Packet::Publish(marker)).await;
    let acked = tokio::time::timeout(Duration::from_secs(120), async {
        while let Ok(p) = publ.read().await {
            if matches!(p, Packet::PubAck(PubAck { pkid: 9, .. })) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    let secs = t0.elapsed().as_secs_f64();
    if !acked {
        eprintln!("   the marker was not acknowledged");
    }
    let peak_kib = b.peak_rss_kib();
    drop(sink);
    drop(publ);
    // Let the broker notice and free; take the lowest of a few samples.
    let mut after_kib = u64::MAX;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after_kib = after_kib.min(b.rss_kib());
    }
    FloodOutcome {
        start_kib,
        peak_kib,
        after_kib,
        secs,
    }
}

fn flood_main(tmp: &Path, cfg: Arc<rustls::ClientConfig>, n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("\nflood: 1 subscriber that never reads, {n} different 128 KiB QoS 0 messages from 1 publisher (TLS 1.3, loopback)\n");
    println!("| broker | RSS before, MiB | peak RSS, MiB | RSS after the clients left, MiB | publisher time, s |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let brokers: Vec<Box<dyn Fn() -> Option<Running>>> = vec![
        Box::new(|| Some(start_ours(tmp))),
        Box::new(|| start_mosquitto(tmp)),
    ];
    for start in &brokers {
        let Some(b) = start() else {
            eprintln!("mosquitto not available; its row is missing");
            continue;
        };
        let o = rt.block_on(flood(&b, cfg.clone(), n));
        let mib = |k: u64| k as f64 / 1024.0;
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            b.name,
            mib(o.start_kib),
            mib(o.peak_kib),
            mib(o.after_kib),
            o.secs
        );
    }
}

/// One measured value: its label, the value, whether lower is better.
type Measure = (String, f64, bool);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 3 && args[1] == "--serve" {
        serve(Path::new(&args[2]));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--flood") {
        let n = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(12_000);
        let tmp = std::env::temp_dir().join(format!("gopigo-flood-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        write_pki(&tmp);
        flood_main(&tmp, client_tls(&tmp), n);
        let _ = std::fs::remove_dir_all(&tmp);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let msgs = flag("--msgs").unwrap_or(if quick { 5_000 } else { 20_000 });
    let idle_n = flag("--idle").unwrap_or(if quick { 1_000 } else { 10_000 });

    let tmp = std::env::temp_dir().join(format!("gopigo-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    write_pki(&tmp);
    let cfg = client_tls(&tmp);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut results: Vec<Vec<Measure>> = Vec::new();
    let brokers: Vec<Box<dyn Fn() -> Option<Running>>> = vec![
        Box::new(|| Some(start_ours(&tmp))),
        Box::new(|| start_mosquitto(&tmp)),
    ];
    for (bi, start) in brokers.iter().enumerate() {
        let Some(b) = start() else {
            eprintln!("mosquitto not available; its column stays empty");
            continue;
        };
        eprintln!("== {} on {}", b.name, b.addr);
        let mut rows = rt.block_on(measure_loads(&b, bi, cfg.clone(), msgs));
        rows.extend(rt.block_on(measure_idle(&b, cfg.clone(), idle_n)));
        results.push(rows);
        drop(b);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    println!("\nmessages: {msgs} per 1->1 run, payload {PAYLOAD} B, TLS 1.3, loopback; gopigo enforces IoT policies on every connect/publish/subscribe/receive\n");
    print_table(&results);
}

/// The three fan shapes at QoS 0 and 1 on broker `b` (number `bi`).
async fn measure_loads(
    b: &Running,
    bi: usize,
    cfg: Arc<rustls::ClientConfig>,
    msgs: usize,
) -> Vec<Measure> {
    let mut rows = Vec::new();
    for qos in [0u8, 1] {
        for (name, pubs, subs, msgs_per_pub) in [
            ("1 pub -> 1 sub", 1, 1, msgs),
            ("100 pubs -> 1 sub", 100, 1, msgs / 100),
            ("1 pub -> 100 subs", 1, 100, msgs / 10),
        ] {
            let tag = format!("b{bi}q{qos}p{pubs}s{subs}");
            let load = Load {
                pubs,
                subs,
                msgs_per_pub,
                qos,
            };
            let o = scenario(b.addr, cfg.clone(), &tag, load).await;
            eprintln!("   {name} QoS {qos}: {o:?}");
            let label = |what: &str| format!("{name}, QoS {qos}: {what}");
            rows.push((label("msgs/s delivered"), o.msgs_per_s, false));
            rows.push((label("p50 latency ms"), o.p50_ms, true));
            rows.push((label("p99 latency ms"), o.p99_ms, true));
            rows.push((label("delivered %"), o.delivered_pct, false));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    rows
}

/// RSS with `idle_n` idle TLS connections on broker `b`.
async fn measure_idle(b: &Running, cfg: Arc<rustls::ClientConfig>, idle_n: usize) -> Vec<Measure> {
    let (before, after, ok) = idle(b, cfg, idle_n).await;
    eprintln!("   idle: {ok}/{idle_n} connections, RSS {before} -> {after} KiB");
    vec![
        (
            format!("RSS with {idle_n} idle TLS connections, MiB"),
            after as f64 / 1024.0,
            true,
        ),
        (
            "RSS per idle connection, KiB".into(),
            (after.saturating_sub(before)) as f64 / ok.max(1) as f64,
            true,
        ),
        ("idle connections established".into(), ok as f64, false),
    ]
}

/// Our column, mosquitto's (when it ran) and their ratio.
fn print_table(results: &[Vec<Measure>]) {
    let ours = &results[0];
    let theirs = results.get(1);
    let table: Vec<Row> = ours
        .iter()
        .enumerate()
        .map(|(i, (label, v, lower))| Row {
            label: label.clone(),
            ours: *v,
            theirs: theirs.map(|t| t[i].1),
            lower_is_better: *lower,
        })
        .collect();
    println!("| measure | gopigo | mosquitto | gopigo / mosquitto |");
    println!("| --- | ---: | ---: | ---: |");
    for r in table {
        let theirs = r
            .theirs
            .map(|t| format!("{t:.2}"))
            .unwrap_or_else(|| "-".into());
        let note = if r.lower_is_better {
            " (lower is better)"
        } else {
            ""
        };
        let ratio = r
            .theirs
            .filter(|t| *t != 0.0)
            .map(|t| format!("{:.2}{note}", r.ours / t))
            .unwrap_or_else(|| "-".into());
        println!("| {} | {:.2} | {} | {} |", r.label, r.ours, theirs, ratio);
    }
}
