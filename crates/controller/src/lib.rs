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
//! - [`onscreen`]: which robots are followed at full rate (the pages'
//!   views) and the subscription arithmetic against AWS's quotas.
//! - [`dashboard`]: the HTTP routes (`fn app(hub, guard, camera) -> Router`):
//!   embedded page, WebSocket, fleet JSON, camera proxy, behind the sign-in gate.
//! - [`security`]: the dashboard's guards as pure functions (token and
//!   session, Host allow-list, Origin, fetch metadata, CSP, camera URLs).
//! - [`server`]: the listener (connection cap, TLS handshake, header and
//!   idle timeouts, prompt shutdown).
//! - [`tls`]: the dashboard's TLS identity (given, or made with `gopigo-pki`).
//! - [`cli`]: `gopigo drive`, `gopigo watch`, `gopigo shadow get|set`.
//! - [`demo`]: `gopigo demo`, a supervisor that starts the local core, the
//!   identities, two simulated robots, one detector and the dashboard as child
//!   processes and stops them all on Ctrl-C.

pub mod actions;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod fleet;
pub mod hub;
pub mod link;
pub mod mqtt_video;
pub mod onscreen;
pub mod security;
pub mod server;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use config::{ControllerConfig, DashboardSettings};
pub use hub::Hub;

/// Why the dashboard could not run.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum DashboardError {
    /// The identity files or TLS set-up.
    #[error(transparent)]
    Client(#[from] gopigo_client::ClientError),
    /// The HTTP listener.
    #[error(
        "cannot listen on {addr}: {source} (is another dashboard running? choose another --port)"
    )]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// Plain HTTP was asked for on an address beyond loopback.
    #[error("refusing to serve the dashboard over plain HTTP on {0}: beyond loopback the session cookie and token would cross the network in clear; drop --no-tls (a certificate is then made for you), or give --tls-cert and --tls-key, or bind 127.0.0.1")]
    PlainBeyondLoopback(std::net::IpAddr),
    /// A fixed token is unusable.
    #[error("{0} (--token / GOPIGO_DASHBOARD_TOKEN)")]
    Token(#[from] security::TokenError),
    /// The TLS identity.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
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

/// Whether and how the dashboard serves HTTPS.
#[derive(Debug, Clone, PartialEq)]
pub enum TlsChoice {
    /// HTTPS beyond loopback with a certificate made in `dir`; plain HTTP on loopback.
    Auto {
        /// Where a made certificate lives.
        dir: PathBuf,
    },
    /// Always HTTPS with a certificate made in `dir`.
    Make {
        /// Where it lives.
        dir: PathBuf,
    },
    /// HTTPS with these PEM files.
    Files {
        /// PEM certificate chain, leaf first (`--tls-cert`).
        cert: PathBuf,
        /// PEM private key matching the leaf (`--tls-key`).
        key: PathBuf,
    },
    /// Plain HTTP (refused beyond loopback).
    Off,
}

/// The dashboard's security settings, before they are checked.
#[derive(Debug, Clone)]
pub struct DashboardOptions {
    /// A fixed sign-in token; `None`: a random one.
    pub token: Option<String>,
    /// Extra names the dashboard answers to (`--allow-host`).
    pub allow_hosts: Vec<String>,
    /// HTTPS or not.
    pub tls: TlsChoice,
    /// Let robots' cameras be on loopback (the demo).
    pub allow_loopback_camera: bool,
    /// Listener bounds.
    pub limits: server::Limits,
}

/// Checked settings, ready to serve with.
#[derive(Debug)]
pub struct Prepared {
    /// What [`run_dashboard`] takes.
    pub security: dashboard::Security,
    /// The TLS identity, to print.
    pub tls: Option<tls::TlsIdentity>,
}

impl Prepared {
    /// The URL a browser signs in with.
    pub fn sign_in_url(&self, addr: SocketAddr) -> String {
        format!(
            "{}?token={}",
            self.base_url(addr),
            self.security.guard.token()
        )
    }

    /// The dashboard's URL without the token.
    pub fn base_url(&self, addr: SocketAddr) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let host = if addr.ip().is_unspecified() {
            "localhost".to_string()
        } else {
            SocketAddr::new(addr.ip(), 0)
                .to_string()
                .trim_end_matches(":0")
                .to_string()
        };
        format!("{scheme}://{host}:{}/", addr.port())
    }
}

/// Checks the options for a dashboard on `addr` (the bound address): the
/// token, TLS (required beyond loopback) and the camera policy.
pub async fn prepare(
    config: &ControllerConfig,
    addr: SocketAddr,
    options: DashboardOptions,
) -> Result<Prepared, DashboardError> {
    let token = match options.token {
        Some(t) => {
            security::check_fixed_token(&t)?;
            t
        }
        None => security::random_secret(),
    };
    let mut allow_hosts = config.dashboard.allow_hosts.clone();
    allow_hosts.extend(options.allow_hosts);
    let beyond_loopback = !addr.ip().is_loopback();
    let made = |dir: &PathBuf| tls::make(dir, &tls::cert_hosts(addr.ip(), &allow_hosts));
    let identity = match &options.tls {
        TlsChoice::Off if beyond_loopback => {
            return Err(DashboardError::PlainBeyondLoopback(addr.ip()))
        }
        TlsChoice::Off => None,
        TlsChoice::Auto { .. } if !beyond_loopback => None,
        TlsChoice::Auto { dir } | TlsChoice::Make { dir } => Some(made(dir)?),
        TlsChoice::Files { cert, key } => Some(tls::load(cert, key)?),
    };
    let guard = security::Guard::new(token, addr, identity.is_some(), &allow_hosts);
    let camera = camera_policy(config, addr, options.allow_loopback_camera).await;
    Ok(Prepared {
        security: dashboard::Security {
            guard: Arc::new(guard),
            camera,
            limits: options.limits,
            tls: identity.as_ref().map(|i| i.config.clone()),
        },
        tls: identity,
    })
}

/// The core's host and ports are never a camera (see [`security::CameraPolicy`]).
async fn camera_policy(
    config: &ControllerConfig,
    addr: SocketAddr,
    allow_loopback: bool,
) -> security::CameraPolicy {
    let core = (config.mqtt.host.as_str(), config.mqtt.port);
    let core_addrs = match tokio::time::timeout(
        std::time::Duration::from_secs(3),
        tokio::net::lookup_host(core),
    )
    .await
    {
        Ok(Ok(a)) => a.map(|a| a.ip()).collect(),
        _ => Vec::new(),
    };
    let mut core_ports = vec![config.mqtt.port, addr.port()];
    core_ports.extend(&config.dashboard.core_ports);
    security::CameraPolicy {
        allow_loopback: allow_loopback || config.dashboard.allow_loopback_camera,
        core_addrs,
        core_ports,
    }
}

/// Runs the dashboard on `listener` (broker link and web server) until
/// `shutdown` completes.
pub async fn run_dashboard(
    config: &ControllerConfig,
    listener: tokio::net::TcpListener,
    security: dashboard::Security,
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
    let served = dashboard::serve(listener, hub, security, async move {
        shutdown.await;
        stopping.cancel();
    })
    .await;
    stop.cancel();
    // The broker link says goodbye; it may not hold the exit up.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), link).await;
    served.map_err(DashboardError::Serve)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config() -> ControllerConfig {
        ControllerConfig::parse(
            "[mqtt]\nhost = \"localhost\"\nport = 8883\nclient_id = \"dashboard\"\nca_file = \"ca.pem\"\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n",
            std::path::Path::new("/nonexistent/controller.toml"),
        )
        .unwrap()
    }

    fn options(tls: TlsChoice) -> DashboardOptions {
        DashboardOptions {
            token: None,
            allow_hosts: vec!["robots.lan".into()],
            tls,
            allow_loopback_camera: false,
            limits: server::Limits::default(),
        }
    }

    // 192.0.2.1 (TEST-NET-1) is only an argument here: nothing is bound.
    #[tokio::test]
    async fn beyond_loopback_the_dashboard_serves_https_or_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let lan: SocketAddr = "192.0.2.1:8443".parse().unwrap();
        let e = prepare(&config(), lan, options(TlsChoice::Off))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("plain HTTP on 192.0.2.1") && e.contains("--tls-cert"),
            "{e}"
        );
        let tls_dir = dir.path().join("tls");
        let p = prepare(
            &config(),
            lan,
            options(TlsChoice::Auto {
                dir: tls_dir.clone(),
            }),
        )
        .await
        .unwrap();
        assert!(p.tls.is_some() && p.security.guard.tls());
        assert!(tls_dir.join("ca.pem").exists());
        assert!(p
            .sign_in_url(lan)
            .starts_with("https://192.0.2.1:8443/?token="));
        assert!(p.security.guard.host_allowed("robots.lan:8443"));
        // on loopback, plain HTTP unless asked
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let p = prepare(
            &config(),
            lo,
            options(TlsChoice::Auto {
                dir: tls_dir.clone(),
            }),
        )
        .await
        .unwrap();
        assert!(p.tls.is_none());
        assert_eq!(p.base_url(lo), "http://127.0.0.1:8080/");
        let p = prepare(&config(), lo, options(TlsChoice::Make { dir: tls_dir }))
            .await
            .unwrap();
        assert!(p.tls.is_some());
        // a fixed token must be strong enough
        let mut o = options(TlsChoice::Off);
        o.token = Some("secret".into());
        let e = prepare(&config(), lo, o).await.unwrap_err().to_string();
        assert!(e.contains("GOPIGO_DASHBOARD_TOKEN"), "{e}");
        // the broker's port and ours are never a camera
        let p = prepare(&config(), lo, options(TlsChoice::Off))
            .await
            .unwrap();
        assert!(p.security.camera.core_ports.contains(&8883));
        assert!(p.security.camera.core_ports.contains(&8080));
    }
}
