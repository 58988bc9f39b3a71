//! The device bundle: the directory a robot (or controller) needs to connect,
//! `cert.pem`, `key.pem` (0600), `ca.pem` and a ready `robot.toml`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use gopigo_client::MqttSettings;
use serde::{Deserialize, Serialize};

use crate::ProvisionError;

/// File names inside a bundle.
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
    /// The directory.
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

/// Creates a new private file (mode 0600); refuses to replace one.
pub fn write_private_new(path: &Path, contents: &[u8]) -> Result<(), ProvisionError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| ProvisionError::io("create", path, e))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(|e| ProvisionError::io("write", path, e))
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

    fn rustls_pemfile_free_der(pem: &str) -> Vec<u8> {
        gopigo_pki::parse_certificate_pem(pem).unwrap().der
    }

    #[test]
    fn config_round_trips_through_the_agent_shape() {
        let text = render_config(
            "robot-1",
            "abc-ats.iot.eu-west-1.amazonaws.com",
            8883,
            false,
            Path::new("/etc/gopigo"),
        )
        .unwrap();
        assert!(text.starts_with("# Written by"));
        let cfg: DeviceConfig = toml::from_str(&text).unwrap();
        assert_eq!(cfg.thing, "robot-1");
        assert_eq!(cfg.mqtt.client_id, "robot-1");
        assert_eq!(cfg.mqtt.port, 8883);
        assert!(!cfg.mqtt.alpn);
        assert_eq!(cfg.mqtt.key_file, Path::new("/etc/gopigo/key.pem"));
        assert_eq!(cfg.mqtt.ca_file, Path::new("/etc/gopigo/ca.pem"));
        let alpn: DeviceConfig =
            toml::from_str(&render_config("r", "h", 443, false, Path::new("/b")).unwrap()).unwrap();
        assert!(alpn.mqtt.alpn);
        let forced: DeviceConfig =
            toml::from_str(&render_config("r", "h", 4443, true, Path::new("/b")).unwrap()).unwrap();
        assert!(forced.mqtt.alpn && forced.mqtt.port == 4443);
        // No install dir: names relative to robot.toml, so the bundle can move.
        let here: DeviceConfig =
            toml::from_str(&render_config("r", "h", 8883, false, Path::new("")).unwrap()).unwrap();
        assert_eq!(here.mqtt.cert_file, Path::new("cert.pem"));
        assert_eq!(here.mqtt.key_file, Path::new("key.pem"));
    }

    #[test]
    fn private_file_is_0600_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.pem");
        write_private_new(&p, b"secret").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(write_private_new(&p, b"other").is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"secret");
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
