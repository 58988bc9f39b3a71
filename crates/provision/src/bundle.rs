//! The device bundle: the directory a robot (or controller) needs to connect,
//! `cert.pem`, `key.pem` (0600), `ca.pem` and a ready `robot.toml`.

use std::path::{Path, PathBuf};

use gopigo_client::MqttSettings;
use serde::{Deserialize, Serialize};

use crate::ProvisionError;

/// The device certificate's file name inside a bundle.
pub const CERT_FILE: &str = "cert.pem";
/// The private key (mode 0600, never overwritten).
pub const KEY_FILE: &str = "key.pem";
/// The CA that signed the endpoint's server certificate.
pub const CA_FILE: &str = "ca.pem";
/// The agent's configuration.
pub const CONFIG_FILE: &str = "robot.toml";

/// Amazon Root CA 1, the root of AWS IoT's ATS endpoints (`-ats.iot...`).
/// Public; SHA-256 fingerprint
/// `8E:CD:E6:88:4F:3D:87:B1:12:5B:A3:1A:C3:FC:B1:3D:70:16:DE:7F:57:CC:90:4F:E1:CB:97:C6:AE:98:19:6E`
/// (checked by a test), the same certificate as Debian's `Amazon_Root_CA_1.pem`.
pub const AMAZON_ROOT_CA_1: &str = include_str!("AmazonRootCA1.pem");

/// Amazon Root CA 3 (ECC P-256), the root of the ATS endpoints' ECDSA
/// chains. Public; SHA-256 fingerprint
/// `18:CE:6C:FE:7B:F1:4E:60:B2:E3:47:B8:DF:E8:68:CB:31:D0:2E:BB:3A:DA:27:15:69:F5:03:43:B4:6D:B3:A4`
/// (checked by a test), the same certificate as Debian's `Amazon_Root_CA_3.crt`.
pub const AMAZON_ROOT_CA_3: &str = include_str!("AmazonRootCA3.pem");

/// The bundle's `ca.pem` for AWS: Amazon Root CA 1 and Root CA 3, as AWS
/// recommends (its server authentication guide: RSA suites chain to CA 1,
/// ECDSA suites to CA 3).
pub fn amazon_roots_pem() -> String {
    format!("{AMAZON_ROOT_CA_1}{AMAZON_ROOT_CA_3}")
}

/// The part of `robot.toml` provisioning owns: the thing name and `[mqtt]`.
/// The agent reads more sections; it ignores none of these.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceConfig {
    /// Thing name (also the MQTT client id).
    pub thing: String,
    /// Endpoint and identity files.
    pub mqtt: MqttSettings,
}

/// Paths of the files in a bundle directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundlePaths {
    /// The bundle's folder; the files are named inside it.
    pub dir: PathBuf,
}

impl BundlePaths {
    /// The bundle in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BundlePaths { dir: dir.into() }
    }
    /// `cert.pem`.
    pub fn cert(&self) -> PathBuf {
        self.dir.join(CERT_FILE)
    }
    /// `key.pem`.
    pub fn key(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }
    /// `ca.pem`.
    pub fn ca(&self) -> PathBuf {
        self.dir.join(CA_FILE)
    }
    /// `robot.toml`.
    pub fn config(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }
}

/// The text of `robot.toml`: `thing`, then `[mqtt]` with the files under
/// `files_dir` (where the bundle will live on the device; empty: plain
/// names, relative to `robot.toml` itself). ALPN
/// `x-amzn-mqtt-ca` is on when `alpn` says so or the port is 443.
pub fn render_config(
    thing: &str,
    host: &str,
    port: u16,
    alpn: bool,
    files_dir: &Path,
) -> Result<String, ProvisionError> {
    let config = DeviceConfig {
        thing: thing.to_string(),
        mqtt: MqttSettings {
            host: host.to_string(),
            port,
            client_id: thing.to_string(),
            ca_file: files_dir.join(CA_FILE),
            cert_file: files_dir.join(CERT_FILE),
            key_file: files_dir.join(KEY_FILE),
            alpn: alpn || port == 443,
            keep_alive_s: 30,
        },
    };
    let body = toml::to_string(&config)
        .map_err(|e| ProvisionError::Invalid(format!("cannot write robot.toml: {e}")))?;
    Ok(format!(
        "# Written by `gopigo provision --thing {thing}`.\n\
         # `thing` and [mqtt] identify this device; relative file names are taken\n\
         # from this file's folder. The agent's other sections ([topics], [safety],\n\
         # [telemetry], [camera], [board]) have defaults and are described in\n\
         # docs/robot.md and crates/agent/robot.example.toml. The board: unset\n\
         # [board] kind means the real GoPiGo3 in a build with --features hardware\n\
         # (the Pi binary); other builds refuse to start without `--sim` or\n\
         # [board] kind = \"sim\". On a robot with the Pi camera, add\n\
         # [camera] source = \"rpicam\".\n\
         # Check the connection with `gopigo check --config robot.toml`.\n\n{body}"
    ))
}

/// Reads the `thing` and `[mqtt]` of a `robot.toml`; relative file names
/// come back resolved against the file's folder, as the agent reads them.
pub fn read_config(path: &Path) -> Result<DeviceConfig, ProvisionError> {
    let text = std::fs::read_to_string(path).map_err(|e| ProvisionError::io("read", path, e))?;
    let mut cfg: DeviceConfig = toml::from_str(&text).map_err(|e| {
        ProvisionError::Invalid(format!(
            "{} is not a device config with `thing` and [mqtt] host, client_id, ca_file, \
             cert_file, key_file: {e}",
            path.display()
        ))
    })?;
    cfg.mqtt
        .resolve_paths(path.parent().unwrap_or(Path::new("")));
    Ok(cfg)
}

/// What writing a file did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The file was there with the same content.
    Unchanged,
    /// The file was created or replaced.
    Changed,
}

/// Writes `contents` to `path` unless it already holds exactly that.
pub fn write_if_changed(path: &Path, contents: &[u8]) -> Result<Written, ProvisionError> {
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(Written::Unchanged);
    }
    std::fs::write(path, contents).map_err(|e| ProvisionError::io("write", path, e))?;
    Ok(Written::Changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn amazon_root_ca_fingerprint() {
        let der = rustls_pemfile_free_der(AMAZON_ROOT_CA_1);
        let fp = hex::encode_upper(Sha256::digest(&der));
        assert_eq!(
            fp,
            "8ECDE6884F3D87B1125BA31AC3FCB13D7016DE7F57CC904FE1CB97C6AE98196E"
        );
        let info = gopigo_pki::parse_certificate_der(&der).unwrap();
        assert_eq!(info.common_name.as_deref(), Some("Amazon Root CA 1"));
    }

    #[test]
    fn amazon_root_ca_3_fingerprint_and_the_bundle_holds_both() {
        let der = rustls_pemfile_free_der(AMAZON_ROOT_CA_3);
        assert_eq!(
            hex::encode_upper(Sha256::digest(&der)),
            "18CE6CFE7BF14E60B2E347B8DFE868CB31D02EBB3ADA271569F50343B46DB3A4"
        );
        let info = gopigo_pki::parse_certificate_der(&der).unwrap();
        assert_eq!(info.common_name.as_deref(), Some("Amazon Root CA 3"));
        let both = amazon_roots_pem();
        assert_eq!(both.matches("-----BEGIN CERTIFICATE-----").count(), 2);
        assert!(both.starts_with(AMAZON_ROOT_CA_1) && both.ends_with(AMAZON_ROOT_CA_3));
    }

    fn rustls_pemfile_free_der(pem: &str) -> Vec<u8> {
        gopigo_pki::parse_certificate_pem(pem).unwrap().der
    }

    #[test]
    fn rendered_config_loads_in_the_agent() {
        let text = render_config(
            "robot-1",
            "abc-ats.iot.eu-west-1.amazonaws.com",
            8883,
            false,
            Path::new("/etc/gopigo"),
        )
        .unwrap();
        assert!(text.starts_with("# Written by"));
        // The agent's own parser (unknown keys refused) reads what we wrote.
        let path = Path::new("/etc/gopigo/robot.toml");
        let agent = gopigo_agent::AgentConfig::from_toml(&text, path).unwrap();
        assert_eq!(agent.thing, "robot-1");
        assert_eq!(agent.mqtt.client_id, "robot-1");
        assert_eq!(agent.mqtt.host, "abc-ats.iot.eu-west-1.amazonaws.com");
        assert_eq!(agent.mqtt.port, 8883);
        assert!(!agent.mqtt.alpn);
        assert_eq!(agent.mqtt.key_file, Path::new("/etc/gopigo/key.pem"));
        assert_eq!(agent.mqtt.ca_file, Path::new("/etc/gopigo/ca.pem"));
        assert_eq!(agent.mqtt.cert_file, Path::new("/etc/gopigo/cert.pem"));
        // ... and our own reader agrees with it.
        let ours: DeviceConfig = toml::from_str(&text).unwrap();
        assert_eq!((&ours.thing, &ours.mqtt), (&agent.thing, &agent.mqtt));

        let alpn: DeviceConfig =
            toml::from_str(&render_config("r", "h", 443, false, Path::new("/b")).unwrap()).unwrap();
        assert!(alpn.mqtt.alpn);
        let forced: DeviceConfig =
            toml::from_str(&render_config("r", "h", 4443, true, Path::new("/b")).unwrap()).unwrap();
        assert!(forced.mqtt.alpn && forced.mqtt.port == 4443);
    }

    #[test]
    fn a_bundle_without_install_dir_loads_in_the_agent_wherever_it_is_moved() {
        let text = render_config("r", "localhost", 8883, false, Path::new("")).unwrap();
        let here: DeviceConfig = toml::from_str(&text).unwrap();
        assert_eq!(here.mqtt.cert_file, Path::new("cert.pem"));
        assert_eq!(here.mqtt.key_file, Path::new("key.pem"));
        // The agent loads it from a folder it was moved to, with the files
        // taken beside robot.toml.
        let dir = tempfile::tempdir().unwrap();
        let moved = dir.path().join("moved");
        std::fs::create_dir(&moved).unwrap();
        let path = moved.join(CONFIG_FILE);
        std::fs::write(&path, &text).unwrap();
        let overrides = gopigo_agent::Overrides {
            sim: true,
            ..Default::default()
        };
        let agent = gopigo_agent::AgentConfig::load(&path, &overrides).unwrap();
        assert_eq!(agent.mqtt.cert_file, moved.join(CERT_FILE));
        assert_eq!(agent.mqtt.key_file, moved.join(KEY_FILE));
        assert_eq!(agent.mqtt.ca_file, moved.join(CA_FILE));
        let ours = read_config(&path).unwrap();
        assert_eq!(ours.mqtt, agent.mqtt);
    }

    #[test]
    fn write_if_changed_reports() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        assert_eq!(write_if_changed(&p, b"a").unwrap(), Written::Changed);
        assert_eq!(write_if_changed(&p, b"a").unwrap(), Written::Unchanged);
        assert_eq!(write_if_changed(&p, b"b").unwrap(), Written::Changed);
    }
}
