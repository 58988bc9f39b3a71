//! The crate's error type.

use std::path::{Path, PathBuf};

use crate::api::ApiFailure;

/// Why provisioning failed; each message says what to do.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum ProvisionError {
    /// A bad argument or file content.
    #[error("{0}")]
    Invalid(String),
    /// No usable credentials, region or core data dir.
    #[error("{0}")]
    Credentials(String),
    /// The control plane could not be reached.
    #[error("control plane {url}: {message}")]
    Http { url: String, message: String },
    /// The control plane refused a request.
    #[error("{0}{hint}", hint = api_hint(.0))]
    Api(ApiFailure),
    /// A file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What we tried.
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Keys, CSRs, certificates.
    #[error(transparent)]
    Pki(#[from] gopigo_pki::PkiError),
    /// The signed certificate does not carry our public key.
    #[error(
        "the certificate the control plane returned ({id}) does not carry the public key of the \
         CSR that was sent, so it cannot be used with this key; the bundle was NOT written. (moto \
         does this: it signs a fresh key of its own.) Changes made so far: {done:?}. Remove them \
         with `gopigo deprovision --thing {thing}`"
    )]
    CertificateMismatch {
        /// certificateId returned.
        id: String,
        thing: String,
        /// What had been done already.
        done: Vec<String>,
    },
}

fn api_hint(f: &ApiFailure) -> &'static str {
    match f.code.as_str() {
        "InvalidSignatureException" | "UnrecognizedClientException" | "SignatureDoesNotMatch" => {
            " (check the access key, secret and region; for the local core use its data dir's \
             aws/credentials)"
        }
        "AccessDeniedException" => " (the IAM identity lacks this iot: permission)",
        "ExpiredTokenException" => " (the session token expired: get new temporary credentials)",
        _ => "",
    }
}

impl ProvisionError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        ProvisionError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}
