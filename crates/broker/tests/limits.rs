//! Listener bounds, attacked: connections past the cap are closed at once,
//! the ones inside it keep working, and a freed slot is reusable.
#![allow(clippy::unwrap_used)]

mod util;

use std::time::Duration;

use gopigo_broker::BrokerConfig;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use util::*;

/// Whether the server closes `s` within `within` (EOF or reset).
async fn closed(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(within, s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_at_once() {
    let setup = Setup::new();
    let config = BrokerConfig {
        max_connections: 3,
        ..Setup::config()
    };
    let b = setup.start(config, None).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(b.addr).await.unwrap());
    }
    // Let the broker accept them all.
    for _ in 0..100 {
        if b.handle.stats().connections == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.handle.stats().connections, 3);
    let mut extra = TcpStream::connect(b.addr).await.unwrap();
    assert!(closed(&mut extra, WAIT).await, "a 4th connection was kept");
    assert!(!closed(&mut idle[0], Duration::from_millis(300)).await);
    // One leaves: a real client gets its slot.
    drop(idle.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut raw = b.raw(&b.admin).await.unwrap();
    assert!(is_connack_ok(
        &raw.mqtt_connect(connect_packet("inside-the-cap", 60, true))
            .await
    ));
    b.stop().await;
}
