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
