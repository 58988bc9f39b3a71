//! Settings of the local core. Defaults work on one machine with no set-up:
//! loopback only, AWS's ports where they are unprivileged.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use gopigo_broker::HttpLimits;

/// How long a detached thing principal lingers by default.
pub const DEFAULT_DETACH_DELAY: std::time::Duration = std::time::Duration::from_secs(2);

/// How the core is started.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Where the registry, CA and credentials live.
    pub data_dir: PathBuf,
    /// Address every listener binds (loopback by default).
    pub host: IpAddr,
    /// Control-plane HTTP port (0 = any free port).
    pub control_port: u16,
    /// MQTT over mutual TLS.
    pub mqtt_port: u16,
    /// HTTPS publish with mutual TLS.
    pub https_port: u16,
    /// MQTT over mutual TLS with ALPN `x-amzn-mqtt-ca`.
    pub alpn_port: u16,
    /// Region used in ARNs and the aws CLI profile.
    pub region: String,
    /// Account id for ARNs when the data dir is first made (random if
    /// `None`); a data dir made with another id refuses to open.
    pub account_id: Option<String>,
    /// Host name DescribeEndpoint returns and the server certificate names.
    pub endpoint_host: String,
    /// Accept any SigV4 signature (for tests; never the default).
    pub insecure_accept_any_signature: bool,
    /// Bounds of the control-plane listener (connections, header-read and
    /// idle timeout, request timeout).
    pub control_limits: HttpLimits,
    /// Bounds of the HTTPS publish listener.
    pub https_limits: HttpLimits,
    /// Most open connections on each MQTT listener.
    pub mqtt_max_connections: usize,
    /// How long a detached thing principal stays listed and blocks
    /// DeleteThing, as on AWS where DetachThingPrincipal is asynchronous.
    pub detach_delay: std::time::Duration,
    /// How long policy changes (attach, detach, new default version) take
    /// to reach the broker; AWS documents up to several minutes. 0 = at once.
    pub policy_delay: std::time::Duration,
    /// The broker's per-connection quotas: AWS IoT Core's by default
    /// (`gopigo core --limits aws|off`).
    pub limits: gopigo_broker::Limits,
}

impl CoreConfig {
    /// Defaults with the given data dir.
    pub fn new(data_dir: PathBuf) -> Self {
        CoreConfig {
            data_dir,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            control_port: 4580,
            mqtt_port: 8883,
            https_port: 8443,
            alpn_port: 4443,
            region: "us-east-1".to_string(),
            account_id: None,
            endpoint_host: "localhost".to_string(),
            insecure_accept_any_signature: false,
            control_limits: HttpLimits::default(),
            https_limits: HttpLimits::default(),
            mqtt_max_connections: gopigo_broker::BrokerConfig::default().max_connections,
            detach_delay: DEFAULT_DETACH_DELAY,
            policy_delay: std::time::Duration::ZERO,
            limits: gopigo_broker::Limits::aws(),
        }
    }
}

/// The per-user default data dir: `$GOPIGO_DATA_DIR`, else
/// `$XDG_DATA_HOME/gopigo`, else `~/.local/share/gopigo`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GOPIGO_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("gopigo");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/gopigo"),
        None => PathBuf::from(".gopigo"),
    }
}
