//! Key pairs, CSRs, a local CA that signs CSRs, certificate ids.
//!
//! The X.509 side of gopigo-iot, shared by the local AWS IoT stand-in (its
//! control plane signs device CSRs and its broker needs a server
//! certificate) and by the CLI (a robot makes its own key and CSR).
//!
//! Parts:
//! - Keys: [`KeyAlgorithm`], [`generate_key`] (RSA-2048
//!   via the `rsa` crate, EC P-256 via rcgen/ring), [`create_csr`],
//!   [`write_key_and_csr`] (key file 0600, never overwritten),
//!   [`private_key_public_key_der`].
//! - CA: [`CertificateAuthority`] kept in `DIR/ca.pem` + `DIR/ca.key`;
//!   [`CertificateAuthority::sign_csr`] (AWS `CreateCertificateFromCsr`),
//!   [`CertificateAuthority::create_keys_and_certificate`] (AWS
//!   `CreateKeysAndCertificate`), [`CertificateAuthority::issue_server_certificate`].
//! - Reading certificates: [`certificate_id`] (the AWS certificateId,
//!   SHA-256 of the DER), [`parse_certificate_pem`] / [`parse_certificate_der`]
//!   giving [`CertificateInfo`] (subject fields named as AWS policy
//!   variables name them, after the one table [`AWS_ATTRIBUTES`];
//!   [`CertificateInfo::policy_variables`] for the broker),
//!   [`csr_public_key_der`].
//! - Private files: [`write_new_private_file`] (0600, never replaces a file).
//! - Errors: [`PkiError`], whose messages name what is wrong and what to do.
//!
//! Crypto is ring's throughout (through rcgen and x509-parser); it cannot
//! handle EC P-521, so P-521 CSRs are refused with a clear message.

// Tests may unwrap; the library may not.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod ca;
mod cert;
mod csr;
mod error;
mod key;
mod pem;

pub use ca::{
    CertificateAuthority, IssuedCertificate, CA_CERT_FILE, CA_COMMON_NAME, CA_KEY_FILE,
    CA_VALIDITY_DAYS,
};
pub use cert::{
    certificate_id, csr_public_key_der, parse_certificate_der, parse_certificate_pem,
    CertificateInfo, AWS_ATTRIBUTES,
};
pub use error::PkiError;
pub use key::{
    create_csr, generate_key, private_key_public_key_der, write_key_and_csr,
    write_new_private_file, GeneratedKey, KeyAlgorithm,
};
