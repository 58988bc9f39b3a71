//! The broker's error type.

use std::path::PathBuf;

/// What can go wrong setting up or running the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The CA certificate could not be used as a trust anchor.
    #[error("the CA certificate is not usable as a trust anchor for client certificates: {0}; pass the DER of the core's CA certificate")]
    CaCertificate(String),
    /// The server certificate or key PEM is unusable.
    #[error("the server {what} PEM is unusable: {detail}; pass a PEM with a CERTIFICATE (or PRIVATE KEY) block")]
    ServerIdentity {
        /// `certificate` or `key`.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Tls(#[from] rustls::Error),
    /// The durable store could not be opened or read.
    #[error("broker store {path}: {source}; check the file is a SQLite database the process can write, or remove it to start empty")]
    Store {
        /// The SQLite file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// Accepting on the listener failed.
    #[error("accepting MQTT connections failed: {0}")]
    Accept(#[from] std::io::Error),
}
