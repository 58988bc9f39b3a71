//! MQTT connection settings and the mutual-TLS set-up every client of the
//! fleet shares (robot agent, dashboard, detector, `gopigo check`).
//!
//! Parts:
//! - [`MqttSettings`]: endpoint, client id and the three PEM files, as they
//!   appear in `robot.toml` / `controller.toml` (`[mqtt]` section).
//! - [`MqttSettings::tls_config`]: a rustls client config trusting only the
//!   given CA and presenting the device certificate (ring provider, built
//!   once per process, no global state).
//! - [`MqttSettings::options`]: rumqttc options over that TLS config, with
//!   AWS IoT's limits (128 KB packets) and a keep-alive of your choice.
//! - [`new_client`]: a rumqttc client and event loop with Nagle's algorithm
//!   off, so a `stop` right after another small write is not held back by
//!   the peer's delayed ACK (up to 40 ms).
//! - [`diagnose`]: what a failed or dropped connection most likely means
//!   (broker down, certificate no longer active, client-id takeover), in
//!   words that say what to do.

pub mod diagnose;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// ALPN protocol AWS IoT uses for MQTT on port 443.
pub const ALPN_MQTT_CA: &[u8] = b"x-amzn-mqtt-ca";

/// Errors loading the identity files or building the TLS configuration.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum ClientError {
    /// A file cannot be read.
    #[error("cannot read {what} file {path}: {source} (check [mqtt] {key} in the config, or re-run `gopigo provision`)")]
    Read {
        /// Which file.
        what: &'static str,
        /// Config key naming it.
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file holds no usable PEM of the expected kind.
    #[error("{path} holds no {what} in PEM form; it should start with '-----BEGIN {label}'")]
    NoPem {
        /// Which file.
        what: &'static str,
        path: PathBuf,
        /// Expected PEM label.
        label: &'static str,
    },
    /// rustls refused the material.
    #[error("TLS set-up failed: {0} (does the certificate match the private key?)")]
    Tls(String),
}

/// Where and as whom to connect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MqttSettings {
    /// Endpoint host name (AWS: `xxxx-ats.iot.REGION.amazonaws.com`; local core: `localhost`).
    pub host: String,
    /// Port: 8883 (MQTT over TLS) or 443 with ALPN.
    #[serde(default = "default_port")]
    pub port: u16,
    /// MQTT client id; robots use their thing name so thing policy variables resolve.
    pub client_id: String,
    /// CA certificate that signed the endpoint's certificate (Amazon Root CA 1, or the local core's CA).
    pub ca_file: PathBuf,
    /// The device certificate.
    pub cert_file: PathBuf,
    /// The device private key (keep it 0600).
    pub key_file: PathBuf,
    /// Use ALPN `x-amzn-mqtt-ca` (needed on port 443).
    #[serde(default)]
    pub alpn: bool,
    /// Keep-alive in seconds (AWS clamps to 30..=1200).
    #[serde(default = "default_keep_alive")]
    pub keep_alive_s: u64,
}

fn default_port() -> u16 {
    8883
}

fn default_keep_alive() -> u64 {
    30
}

fn read(what: &'static str, key: &'static str, path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Read {
        what,
        key,
        path: path.to_path_buf(),
        source,
    })
}

/// `dir` made absolute against the working directory ("" is the working
/// directory itself, as `Path::new("robot.toml").parent()` gives).
pub fn absolute_dir(dir: &Path) -> PathBuf {
    if dir.as_os_str().is_empty() {
        std::env::current_dir().unwrap_or_default()
    } else {
        std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
    }
}

/// Reads every certificate in a PEM file.
pub fn load_certs(
    what: &'static str,
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let data = read(what, key, path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(ClientError::NoPem {
            what,
            path: path.to_path_buf(),
            label: "CERTIFICATE",
        });
    }
    Ok(certs)
}

/// Reads the first private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ClientError> {
    let data = read("private key", "key_file", path)?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| ClientError::NoPem {
            what: "private key",
            path: path.to_path_buf(),
            label: "PRIVATE KEY",
        })
}

impl MqttSettings {
    /// Makes relative `ca_file`, `cert_file` and `key_file` absolute against
    /// `base` (the folder of the config file that named them; itself taken
    /// from the working directory when relative, so that messages show the
    /// full path that was tried).
    pub fn resolve_paths(&mut self, base: &Path) {
        let base = absolute_dir(base);
        for p in [&mut self.ca_file, &mut self.cert_file, &mut self.key_file] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// A rustls client configuration for this identity.
    pub fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        for ca in load_certs("CA certificate", "ca_file", &self.ca_file)? {
            roots
                .add(ca)
                .map_err(|e| ClientError::Tls(format!("CA {}: {e}", self.ca_file.display())))?;
        }
        let chain = load_certs("device certificate", "cert_file", &self.cert_file)?;
        let key = load_key(&self.key_file)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        if self.alpn {
            cfg.alpn_protocols = vec![ALPN_MQTT_CA.to_vec()];
        }
        Ok(Arc::new(cfg))
    }

    /// rumqttc options: TLS with this identity, clean session, AWS packet limits.
    pub fn options(&self) -> Result<rumqttc::MqttOptions, ClientError> {
        let mut o = rumqttc::MqttOptions::new(&self.client_id, &self.host, self.port);
        o.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
            self.tls_config()?,
        )));
        o.set_keep_alive(Duration::from_secs(self.keep_alive_s.max(5)));
        o.set_max_packet_size(128 * 1024 + 1024, 128 * 1024 + 1024);
        o.set_clean_session(true);
        Ok(o)
    }
}

/// A rumqttc client with `TCP_NODELAY` set (rumqttc leaves Nagle's
/// algorithm on, which delays small publishes that follow another write).
pub fn new_client(
    options: rumqttc::MqttOptions,
    cap: usize,
) -> (rumqttc::AsyncClient, rumqttc::EventLoop) {
    let (client, mut events) = rumqttc::AsyncClient::new(options, cap);
    let mut net = events.network_options();
    net.set_tcp_nodelay(true);
    events.set_network_options(net);
    (client, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> MqttSettings {
        MqttSettings {
            host: "localhost".into(),
            port: 8883,
            client_id: "r1".into(),
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            alpn: false,
            keep_alive_s: 30,
        }
    }

    #[test]
    fn builds_tls_from_a_real_identity() {
        let dir = tempfile::tempdir().unwrap();
        let ca = gopigo_pki::CertificateAuthority::load_or_create(&dir.path().join("ca")).unwrap();
        let key = gopigo_pki::generate_key(gopigo_pki::KeyAlgorithm::EcdsaP256).unwrap();
        let csr = gopigo_pki::create_csr(&key.private_key_pem, "r1").unwrap();
        let cert = ca.sign_csr(&csr, 1).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), &cert.pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), &key.private_key_pem).unwrap();
        let mut s = settings(dir.path());
        assert!(s.tls_config().unwrap().alpn_protocols.is_empty());
        s.alpn = true;
        assert_eq!(
            s.tls_config().unwrap().alpn_protocols,
            vec![ALPN_MQTT_CA.to_vec()]
        );
        s.options().unwrap();
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let e = s.tls_config().unwrap_err().to_string();
        assert!(e.contains("ca.pem") && e.contains("ca_file"), "{e}");
        std::fs::write(dir.path().join("ca.pem"), "not a pem").unwrap();
        let e = s.tls_config().unwrap_err().to_string();
        assert!(e.contains("BEGIN CERTIFICATE"), "{e}");
    }

    #[test]
    fn relative_names_become_full_paths() {
        let mut s = settings(Path::new("ignored"));
        s.ca_file = "ca.pem".into();
        s.cert_file = "sub/cert.pem".into();
        s.key_file = "/abs/key.pem".into();
        // A config named without a folder (`--config robot.toml`).
        s.resolve_paths(Path::new("robot.toml").parent().unwrap());
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(s.ca_file, cwd.join("ca.pem"));
        assert_eq!(s.cert_file, cwd.join("sub/cert.pem"));
        assert_eq!(s.key_file, Path::new("/abs/key.pem"));
        let e = s.tls_config().unwrap_err().to_string();
        assert!(e.contains(&cwd.join("ca.pem").display().to_string()), "{e}");
    }

    #[test]
    fn settings_missing_port_keep_alive_and_alpn_take_their_defaults() {
        let s: MqttSettings = serde_json::from_value(serde_json::json!({
            "host": "h", "client_id": "c", "ca_file": "a", "cert_file": "b", "key_file": "k"
        }))
        .unwrap();
        assert_eq!((s.port, s.keep_alive_s, s.alpn), (8883, 30, false));
    }
}
