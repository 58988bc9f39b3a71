//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong making keys, CSRs and certificates.
///
/// Each message says what is wrong and, where there is one, what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// Reading or writing a file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What we tried to do ("read", "create", "write", ...).
        action: &'static str,
        /// The file at fault.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// `write_key_and_csr` found a key file already there.
    #[error(
        "refusing to overwrite the existing private key {0}: move it away or choose another name"
    )]
    KeyExists(PathBuf),

    /// The input is not PEM, or not the PEM block we expected.
    #[error("the {what} is not valid PEM: {detail}")]
    InvalidPem {
        /// What the input should have been ("CSR", "certificate", "private key").
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },

    /// The CSR is PEM but not a well-formed PKCS#10 request.
    #[error("the CSR could not be parsed as a PKCS#10 certificate request: {0}")]
    InvalidCsr(String),

    /// The CSR's self-signature does not check out.
    #[error(
        "the CSR's signature does not verify ({0}): it was not signed by the key it carries; create the CSR again"
    )]
    CsrSignature(String),

    /// An RSA key below the size AWS IoT accepts.
    #[error(
        "RSA key of {0} bits: AWS IoT requires at least 2048; create a 2048-bit (or larger) key"
    )]
    RsaKeyTooSmall(usize),

    /// A key type or curve this CA cannot certify.
    #[error("unsupported public key: {0}; use an RSA key of at least 2048 bits or an EC P-256 or P-384 key")]
    UnsupportedKey(String),

    /// A private key that cannot be loaded.
    #[error("the private key cannot be used: {0}")]
    InvalidKey(String),

    /// A certificate that cannot be parsed.
    #[error("the certificate could not be parsed as X.509: {0}")]
    InvalidCertificate(String),

    /// A subject name this CA cannot copy into a certificate.
    #[error("the subject name cannot be used: {0}")]
    InvalidSubject(String),

    /// One of the two CA files exists without the other.
    #[error(
        "the CA file {present} exists but {missing} does not: restore {missing}, or remove {present} to create a new CA (certificates signed by the old one will stop verifying)"
    )]
    CaIncomplete {
        /// The CA file that is there.
        present: PathBuf,
        /// The CA file that is missing.
        missing: PathBuf,
    },

    /// A CA file is there but unusable.
    #[error("the CA file {path} is unusable: {detail}")]
    CaInvalid {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },

    /// An argument out of range (validity, names, hosts).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// rcgen refused to build the certificate or CSR.
    #[error("cannot build the {what}: {detail}")]
    Generation {
        /// What we were building.
        what: &'static str,
        /// rcgen's message.
        detail: String,
    },
}

impl PkiError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        PkiError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn generation(what: &'static str, err: impl std::fmt::Display) -> Self {
        PkiError::Generation {
            what,
            detail: err.to_string(),
        }
    }
}
