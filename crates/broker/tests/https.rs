//! HTTPS publish over mutual TLS, authorized like MQTT publishes.
#![allow(clippy::unwrap_used)]

mod util;

use std::net::SocketAddr;
use std::sync::Arc;

use rumqttc::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use util::*;

/// Sends one HTTP/1.1 request; returns (status, body).
async fn post(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await?;
    tls.write_all(body).await?;
    tls.flush().await?;
    let mut resp = Vec::new();
    tls.read_to_end(&mut resp).await?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[tokio::test]
async fn https_publish_delivers_and_enforces_policy() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https_addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gopigo_broker::serve_https_publish(
        listener,
        setup.server_tls(None),
        b.handle.clone(),
        async {
            let _ = stopped.await;
        },
    ));

    let mut sub = b.client("sub", &b.admin);
    sub.connected().await;
    sub.subscribe("gopigo/+/cmd", QoS::AtLeastOnce).await;

    let (status, body) = post(
        https_addr,
        b.client_config(&b.admin, None),
        "/topics/gopigo%2Fr1%2Fcmd?qos=1",
        br#"{"action":"stop"}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["message"], "OK");
    assert_eq!(v["traceId"].as_str().unwrap().len(), 36);
    let p = sub
        .publish_within(WAIT)
        .await
        .expect("HTTPS publish delivered over MQTT");
    assert_eq!(p.topic, "gopigo/r1/cmd");
    assert_eq!(&p.payload[..], br#"{"action":"stop"}"#);

    // A robot may not publish to another robot's topic.
    let r1 = b.ca.client("r1");
    b.authority.register(&r1, ROBOT_POLICY, &["r1"]);
    let (status, body) = post(
        https_addr,
        b.client_config(&r1, None),
        "/topics/gopigo%2Fr2%2Fcmd?qos=1",
        b"x",
    )
    .await
    .unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(sub
        .publish_within(std::time::Duration::from_millis(300))
        .await
        .is_none());

    // Bad qos.
    let (status, _) = post(
        https_addr,
        b.client_config(&b.admin, None),
        "/topics/a?qos=2",
        b"x",
    )
    .await
    .unwrap();
    assert_eq!(status, 400);

    // Unregistered certificate: no response at all.
    let stranger = b.ca.client("stranger");
    assert!(post(
        https_addr,
        b.client_config(&stranger, None),
        "/topics/a",
        b"x"
    )
    .await
    .is_err());

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    b.stop().await;
}

/// Whether the server closes `s` within `within` (EOF or an error).
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    within: std::time::Duration,
) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(within, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn idle_and_slowloris_clients_are_closed_and_the_cap_holds() {
    use std::time::Duration;
    let setup = Setup::new();
    let config = gopigo_broker::BrokerConfig {
        handshake_timeout: Duration::from_millis(500),
        ..Setup::config()
    };
    let b = setup.start(config, None).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = gopigo_broker::HttpLimits {
        header_read_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(5),
        max_connections: 4,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gopigo_broker::serve_https_publish_with(
        listener,
        setup.server_tls(None),
        b.handle.clone(),
        limits,
        async {
            let _ = stopped.await;
        },
    ));
    let tls = || async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        tokio_rustls::TlsConnector::from(b.client_config(&b.admin, None))
            .connect(name, tcp)
            .await
            .unwrap()
    };
    // Silent TCP (no TLS), TLS without a request, half a header.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut no_request = tls().await;
    let mut slow = tls().await;
    slow.write_all(b"POST /topics/a HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut full = TcpStream::connect(addr).await.unwrap();
    // A fifth connection is past the cap of 4: closed at once.
    let mut extra = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut extra, Duration::from_millis(400)).await);
    // The others go after their timeouts (bounds generous: the point is that they go).
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
    assert!(closed_within(&mut no_request, Duration::from_secs(5)).await);
    assert!(closed_within(&mut slow, Duration::from_secs(5)).await);
    assert!(closed_within(&mut full, Duration::from_secs(5)).await);
    // And slots are free again: a real request succeeds.
    let (status, _) = post(addr, b.client_config(&b.admin, None), "/topics/a", b"x")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    b.stop().await;
}
