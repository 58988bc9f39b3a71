//! The dashboard's TLS identity: a given certificate and key (`--tls-cert`,
//! `--tls-key`), or one made here with the `gopigo-pki` crate. Built once
//! at start; handshakes happen in each connection's task.
//!
//! The made identity lives in a folder of its own (0700): a small local CA
//! (`ca.pem`, `ca.key` 0600) that signs a fresh server certificate for the
//! dashboard's host names at every start (`server.pem`, `server.key`
//! 0600). Trust `ca.pem` once (`curl --cacert ca.pem`, or the browser's
//! certificate store) and restarts keep working; or compare the printed
//! SHA-256 fingerprint of the server certificate with what the browser shows.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Why the TLS identity could not be set up.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{path}: {detail}")]
    Pem { path: PathBuf, detail: String },
    /// The local CA or certificate issuance failed.
    #[error("cannot make the dashboard's TLS certificate: {0}")]
    Pki(#[from] gopigo_pki::PkiError),
    /// rustls refused the identity (e.g. the key does not match).
    #[error("the dashboard's TLS certificate and key cannot be used together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A ready TLS identity.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    /// The server configuration (HTTP/1.1 only).
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 fingerprint of the leaf certificate, `AA:BB:...`.
    pub fingerprint: String,
    /// The certificate file served.
    pub cert_file: PathBuf,
    /// The local CA to trust, when the identity was made here.
    pub ca_file: Option<PathBuf>,
}

/// Certificate validity of a made server certificate (days).
pub const SERVER_CERT_DAYS: u32 = 397;

/// `AA:BB:...` SHA-256 of a DER certificate, as browsers show it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Io {
        what: "cannot read",
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `text` to `path`, readable by the owner only (pki's writer).
fn write_private(path: &Path, text: &str) -> Result<(), TlsError> {
    // A fresh file each time, so an old wider mode never survives.
    let _ = std::fs::remove_file(path);
    gopigo_pki::write_new_private_file(path, text.as_bytes())?;
    Ok(())
}

fn identity(
    cert_pem: &str,
    key_pem: &str,
    cert_file: &Path,
    key_file: &Path,
) -> Result<TlsIdentity, TlsError> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert_file.to_path_buf(),
            detail: e.to_string(),
        })?;
    let Some(leaf) = certs.first() else {
        return Err(TlsError::Pem {
            path: cert_file.to_path_buf(),
            detail: "no CERTIFICATE block found (expected a PEM certificate chain)".into(),
        });
    };
    let fingerprint = fingerprint(leaf);
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .map_err(|e| TlsError::Pem {
            path: key_file.to_path_buf(),
            detail: e.to_string(),
        })?
        .ok_or_else(|| TlsError::Pem {
            path: key_file.to_path_buf(),
            detail: "no PRIVATE KEY block found".into(),
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsIdentity {
        config: Arc::new(config),
        fingerprint,
        cert_file: cert_file.to_path_buf(),
        ca_file: None,
    })
}

/// Loads a given certificate chain and key (PEM).
pub fn load(cert_file: &Path, key_file: &Path) -> Result<TlsIdentity, TlsError> {
    identity(&read(cert_file)?, &read(key_file)?, cert_file, key_file)
}

/// Makes (or reuses) the local CA in `dir` and a server certificate for
/// `hosts` (names or addresses) signed by it, written beside it.
pub fn make(dir: &Path, hosts: &[String]) -> Result<TlsIdentity, TlsError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| TlsError::Io {
            what: "cannot create",
            path: dir.to_path_buf(),
            source,
        })?;
    let ca = gopigo_pki::CertificateAuthority::load_or_create(dir)?;
    let (cert_pem, key_pem) = ca.issue_server_certificate(hosts, SERVER_CERT_DAYS)?;
    let (cert_file, key_file) = (dir.join("server.pem"), dir.join("server.key"));
    write_private(&key_file, &key_pem)?;
    write_private(&cert_file, &cert_pem)?;
    let mut id = identity(&cert_pem, &key_pem, &cert_file, &key_file)?;
    id.ca_file = Some(ca.cert_path().to_path_buf());
    Ok(id)
}

/// The names a made certificate covers: the loopback names, the bound
/// address (when it is one) and the allowed host names.
pub fn cert_hosts(bind: std::net::IpAddr, allow_hosts: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !bind.is_unspecified() {
        hosts.push(bind.to_string());
    }
    for h in allow_hosts {
        let h = h.trim().trim_end_matches('.').to_string();
        if !h.is_empty() && !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    hosts
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_made_identity_is_private_and_reused_ca_signs_each_start() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let hosts = cert_hosts("127.0.0.1".parse().unwrap(), &["robots.lan".into()]);
        let a = make(&tls, &hosts).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tls), 0o700);
        for f in ["ca.key", "server.key", "server.pem"] {
            assert_eq!(mode(&tls.join(f)), 0o600, "{f}");
        }
        assert_eq!(a.fingerprint.len(), 32 * 3 - 1);
        let ca = std::fs::read(a.ca_file.as_ref().unwrap()).unwrap();
        let b = make(&tls, &hosts).unwrap();
        assert_ne!(a.fingerprint, b.fingerprint, "a fresh server certificate");
        assert_eq!(
            ca,
            std::fs::read(b.ca_file.unwrap()).unwrap(),
            "the same CA"
        );
        let again = load(&tls.join("server.pem"), &tls.join("server.key")).unwrap();
        assert_eq!(again.fingerprint, b.fingerprint);
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        std::fs::write(&cert, "nothing").unwrap();
        let e = load(&cert, &cert).unwrap_err().to_string();
        assert!(e.contains("c.pem") && e.contains("CERTIFICATE"), "{e}");
        let e = load(&dir.path().join("none.pem"), &cert)
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.pem"), "{e}");
    }
}
