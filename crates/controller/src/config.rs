//! `controller.toml`: the controller's identity (`[mqtt]`, the shared
//! [`MqttSettings`]) and the dashboard's settings (`[dashboard]`).
//!
//! ```toml
//! [mqtt]
//! host = "localhost"          # AWS: xxxx-ats.iot.REGION.amazonaws.com
//! port = 8883
//! client_id = "operator"      # = the thing name; one identity per running program
//! ca_file = "ca.pem"          # relative paths are relative to this file
//! cert_file = "cert.pem"
//! key_file = "key.pem"
//!
//! [dashboard]
//! listen = "127.0.0.1:8080"   # --port overrides the port
//! detection_note = "..."      # shown when no detector publishes (optional)
//! robots = ["robot1", "robot2"] # listed from the start (others appear when heard)
//! allow_hosts = ["robots.lan"] # names it answers to besides localhost/127.0.0.1/[::1]/the bind address
//! tls_cert = "dash.pem"       # HTTPS with these (else a certificate is made when not on loopback)
//! tls_key = "dash.key"
//! allow_loopback_camera = false # fetch robots' cameras on loopback (the demo)
//! core_ports = []             # the core's ports, never fetched as a camera (the demo fills them)
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use gopigo_client::MqttSettings;
use serde::{Deserialize, Serialize};

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read controller config {path}: {source} (make an identity with `gopigo provision --thing NAME --role controller --out DIR` and pass `--config DIR/robot.toml`, or set GOPIGO_CONTROLLER_CONFIG=DIR/robot.toml; `gopigo demo` makes the demo's)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("controller config {path} is invalid: {reason}")]
    Parse {
        path: PathBuf,
        /// The TOML error (names the key).
        reason: String,
    },
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerConfig {
    /// Broker connection and identity.
    pub mqtt: MqttSettings,
    /// `[dashboard]`: listen address, detection note, robots listed
    /// before they are seen; defaults when the table is absent.
    #[serde(default)]
    pub dashboard: DashboardSettings,
}

/// `[dashboard]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardSettings {
    /// Address the web server binds (loopback unless you mean to expose it).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// A note the page shows where detections would be, e.g. how to set up
    /// the detector; `None` when a detector is expected to publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_note: Option<String>,
    /// Robots to list from the start, offline until their retained status
    /// says otherwise; others appear as they send anything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub robots: Vec<String>,
    /// Host names the dashboard answers to besides the loopback names and
    /// the bound address (DNS-rebinding defence).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_hosts: Vec<String>,
    /// HTTPS certificate chain (PEM); with `tls_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// HTTPS private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Fetch robots' cameras on loopback addresses (only the demo, whose
    /// robots run on this machine, needs it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_loopback_camera: bool,
    /// The core's ports on this machine, never fetched as a camera.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub core_ports: Vec<u16>,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings {
            listen: default_listen(),
            detection_note: None,
            robots: Vec::new(),
            allow_hosts: Vec::new(),
            tls_cert: None,
            tls_key: None,
            allow_loopback_camera: false,
            core_ports: Vec::new(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

impl ControllerConfig {
    /// Reads and checks `path`; relative PEM paths become relative to the
    /// file's folder, so a provisioned bundle can be moved as a whole.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the text of `path` (see [`Self::load`]).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut cfg: ControllerConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        cfg.mqtt.resolve_paths(dir);
        for p in [&mut cfg.dashboard.tls_cert, &mut cfg.dashboard.tls_key]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_example_with_defaults() {
        let text = r#"
[mqtt]
host = "localhost"
client_id = "controller"
ca_file = "ca.pem"
cert_file = "/abs/cert.pem"
key_file = "key.pem"
"#;
        let c = ControllerConfig::parse(text, Path::new("/etc/gopigo/controller.toml")).unwrap();
        assert_eq!(c.mqtt.port, 8883);
        assert_eq!(c.mqtt.ca_file, Path::new("/etc/gopigo/ca.pem"));
        assert_eq!(c.mqtt.cert_file, Path::new("/abs/cert.pem"));
        assert_eq!(c.dashboard.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.dashboard.detection_note, None);
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let e = ControllerConfig::parse("[mqtt]\nhost = 1\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.toml") && e.contains("host"), "{e}");
        let e = ControllerConfig::load(Path::new("/nonexistent/c.toml"))
            .unwrap_err()
            .to_string();
        for needle in [
            "/nonexistent/c.toml",
            "gopigo provision --thing NAME --role controller",
            "--config",
            "GOPIGO_CONTROLLER_CONFIG",
        ] {
            assert!(e.contains(needle), "{needle} missing from {e}");
        }
    }
}
