//! The controller side of the fleet: the web dashboard, the command-line
//! actions and the one-command local demo.
//!
//! Parts:
//! - [`config`]: `controller.toml` (the `[mqtt]` identity and `[dashboard]`).
//! - [`fleet`]: the fleet state as a pure reducer over broker messages
//!   (online/offline from retained status and lifecycle events, battery,
//!   last seen, shadow).
//! - [`actions`]: checks of what a controller sends (commands, shadow
//!   `desired`, CLI words), shared by the page and the CLI.
//! - [`hub`]: the dashboard state between the broker link and the pages,
//!   and the WebSocket protocol.
//! - [`link`]: the dashboard's MQTT session (subscribe, reconnect, publish).
//! - [`dashboard`]: the HTTP routes (`fn app(hub) -> Router`): embedded
//!   page, WebSocket, fleet JSON, camera proxy.
//! - [`cli`]: `gopigo drive`, `gopigo watch`, `gopigo shadow get|set`.
//! - [`demo`]: `gopigo demo`, a supervisor that starts the local core, the
//!   identities, two simulated robots, detectors and the dashboard as child
//!   processes and stops them all on Ctrl-C.

pub mod actions;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod fleet;
pub mod hub;
pub mod link;

use std::future::Future;
use std::net::SocketAddr;

pub use config::{ControllerConfig, DashboardSettings};
pub use hub::Hub;

/// Why the dashboard could not run.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The identity files or TLS set-up.
    #[error(transparent)]
    Client(#[from] gopigo_client::ClientError),
    /// The HTTP listener.
    #[error(
        "cannot listen on {addr}: {source} (is another dashboard running? choose another --port)"
    )]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("dashboard server failed: {0}")]
    Serve(std::io::Error),
}

/// Binds the dashboard's listener (loopback by default).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, DashboardError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DashboardError::Listen { addr, source })
}

/// Runs the dashboard on `listener` (broker link and web server) until
/// `shutdown` completes.
pub async fn run_dashboard(
    config: &ControllerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DashboardError> {
    let options = config.mqtt.options()?;
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let hub = Hub::new(
        format!("{}:{}", config.mqtt.host, config.mqtt.port),
        config.dashboard.detection_note.clone(),
        tx,
    );
    hub.add_robots(&config.dashboard.robots);
    let stop = tokio_util::sync::CancellationToken::new();
    let link = tokio::spawn(link::run(
        options,
        hub.clone(),
        rx,
        stop.clone().cancelled_owned(),
    ));
    let stopping = stop.clone();
    let served = dashboard::serve(listener, hub, async move {
        shutdown.await;
        stopping.cancel();
    })
    .await;
    stop.cancel();
    let _ = link.await;
    served.map_err(DashboardError::Serve)
}
