//! The local certificate authority: the stand-in for Amazon's CA that signs
//! device certificates (from CSRs, or with a fresh key) and the local
//! broker's server certificate.

use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ::time::{Duration, OffsetDateTime};
use rand::RngCore;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
    PKCS_ECDSA_P256_SHA256,
};
use x509_parser::prelude::*;

use crate::cert::certificate_id;
use crate::csr::{validate_csr, KeyKind};
use crate::key::{
    check_common_name, generate_key, load_key_pair, write_new_private_file, write_public_file,
};
use crate::pem::find_block;
use crate::{GeneratedKey, KeyAlgorithm, PkiError};

/// The CA certificate's common name.
pub const CA_COMMON_NAME: &str = "gopigo-iot local CA";
/// How long a new CA certificate is valid.
pub const CA_VALIDITY_DAYS: u32 = 3650;
/// The CA certificate's file name inside the CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA private key's file name inside the CA directory (mode 0600).
pub const CA_KEY_FILE: &str = "ca.key";

/// A certificate this CA issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// The certificate, PEM.
    pub pem: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// [`certificate_id`] of `der` (the AWS certificateId).
    pub id: String,
}

impl IssuedCertificate {
    fn from_rcgen(cert: &Certificate) -> Self {
        let der = cert.der().to_vec();
        IssuedCertificate {
            pem: cert.pem(),
            id: certificate_id(&der),
            der,
        }
    }
}

/// A local CA kept as two files, `ca.pem` and `ca.key`, in one directory.
///
/// Cheap to share behind an `Arc`: signing takes `&self`.
pub struct CertificateAuthority {
    cert_path: PathBuf,
    cert_pem: String,
    cert_der: Vec<u8>,
    /// rcgen's view of the CA certificate, used only as the issuer when
    /// signing (its name and key identifier match `cert_der`'s).
    issuer: Certificate,
    key: KeyPair,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_path", &self.cert_path)
            .field("id", &certificate_id(&self.cert_der))
            .field("key", &"<redacted>")
            .finish()
    }
}

fn exists(path: &Path) -> Result<bool, PkiError> {
    match fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(PkiError::io("inspect", path, e)),
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    // Positive (top bit clear) and a full 16 bytes (next bit set).
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

/// Validity from an hour ago (tolerates clocks a little behind ours) to
/// `days` from now.
fn validity(days: u32) -> Result<(OffsetDateTime, OffsetDateTime), PkiError> {
    if days == 0 {
        return Err(PkiError::InvalidArgument(
            "validity_days is 0: a certificate must be valid for at least one day".into(),
        ));
    }
    let now = OffsetDateTime::now_utc();
    let not_after = now
        .checked_add(Duration::days(i64::from(days)))
        .filter(|t| t.year() <= 9999)
        .ok_or_else(|| {
            PkiError::InvalidArgument(format!(
                "validity_days {days} reaches past the year 9999, the last X.509 can express"
            ))
        })?;
    Ok((now - Duration::hours(1), not_after))
}

/// Parameters shared by every end-entity certificate.
fn leaf_params(
    subject: DistinguishedName,
    validity_days: u32,
    rsa: bool,
    eku: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, PkiError> {
    let (not_before, not_after) = validity(validity_days)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(random_serial());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if rsa {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

impl CertificateAuthority {
    /// Loads the CA from `dir/ca.pem` and `dir/ca.key`, or, when neither
    /// exists, creates a new one there (EC P-256, CN "gopigo-iot local CA",
    /// ten years) and writes them (key mode 0600).
    ///
    /// Refuses, naming the file, when only one of the two exists or when
    /// either cannot be used: silently replacing a CA would orphan every
    /// certificate it signed. Safe to call from several processes at once:
    /// they all end up with the same CA (a lone `ca.key` is given two
    /// seconds to be joined by its `ca.pem` before that is reported).
    pub fn load_or_create(dir: &Path) -> Result<Self, PkiError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        match (exists(&cert_path)?, exists(&key_path)?) {
            (true, true) => Self::load(cert_path, &key_path),
            (false, false) => Self::create(dir, cert_path, &key_path),
            (true, false) => Err(PkiError::CaIncomplete {
                present: cert_path,
                missing: key_path,
            }),
            // Either another process is half-way through creating the CA
            // (the key is written before the certificate is renamed into
            // place) or the certificate is lost: wait a moment to tell.
            (false, true) => Self::load_when_complete(cert_path, &key_path),
        }
    }

    fn create(dir: &Path, cert_path: PathBuf, key_path: &Path) -> Result<Self, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| PkiError::generation("CA key", e))?;
        let (not_before, not_after) = validity(CA_VALIDITY_DAYS)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(CA_COMMON_NAME);
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(random_serial());
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .map_err(|e| PkiError::generation("CA certificate", e))?;
        let cert_pem = cert.pem();

        fs::create_dir_all(dir).map_err(|e| PkiError::io("create directory", dir, e))?;
        // The certificate goes to a temporary name first and is renamed once
        // the key is safely written, so a crash leaves at most a lone key
        // (reported clearly), never a certificate without its key.
        let tmp_path = dir.join(format!(
            "{CA_CERT_FILE}.{}-{:08x}.tmp",
            std::process::id(),
            rand::random::<u32>()
        ));
        write_public_file(&tmp_path, cert_pem.as_bytes())?;
        if let Err(e) = write_new_private_file(key_path, key.serialize_pem().as_bytes()) {
            let _ = fs::remove_file(&tmp_path);
            return match e {
                // Another process is creating the CA at this moment: use its CA.
                PkiError::Io { ref source, .. } if source.kind() == ErrorKind::AlreadyExists => {
                    Self::load_when_complete(cert_path, key_path)
                }
                other => Err(other),
            };
        }
        fs::rename(&tmp_path, &cert_path).map_err(|e| PkiError::io("rename", &tmp_path, e))?;

        Ok(CertificateAuthority {
            cert_path,
            cert_der: cert.der().to_vec(),
            cert_pem,
            issuer: cert,
            key,
        })
    }

    /// Waits (up to two seconds) for a concurrent creator to rename its
    /// certificate into place, then loads.
    fn load_when_complete(cert_path: PathBuf, key_path: &Path) -> Result<Self, PkiError> {
        for _ in 0..40 {
            if exists(&cert_path)? {
                return Self::load(cert_path, key_path);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(PkiError::CaIncomplete {
            present: key_path.to_path_buf(),
            missing: cert_path,
        })
    }

    fn load(cert_path: PathBuf, key_path: &Path) -> Result<Self, PkiError> {
        let invalid = |path: &Path, detail: String| PkiError::CaInvalid {
            path: path.to_path_buf(),
            detail,
        };
        let cert_pem =
            fs::read_to_string(&cert_path).map_err(|e| PkiError::io("read", &cert_path, e))?;
        let key_pem =
            fs::read_to_string(key_path).map_err(|e| PkiError::io("read", key_path, e))?;

        let (_, cert_der) = find_block(&cert_pem, "certificate", &["CERTIFICATE"])
            .map_err(|e| invalid(&cert_path, e.to_string()))?;
        let (_, x509) = X509Certificate::from_der(&cert_der)
            .map_err(|e| invalid(&cert_path, format!("not an X.509 certificate: {e}")))?;
        if !x509.is_ca() {
            return Err(invalid(
                &cert_path,
                "not a CA certificate (no basicConstraints CA:TRUE)".into(),
            ));
        }
        let key = load_key_pair(&key_pem).map_err(|e| invalid(key_path, e.to_string()))?;
        if key.public_key_der() != x509.public_key().raw {
            return Err(invalid(
                key_path,
                format!(
                    "this key does not belong to the certificate {}",
                    cert_path.display()
                ),
            ));
        }
        let params = CertificateParams::from_ca_cert_der(&cert_der.as_slice().into())
            .map_err(|e| invalid(&cert_path, format!("cannot be used to sign: {e}")))?;
        let issuer = params
            .self_signed(&key)
            .map_err(|e| invalid(&cert_path, format!("cannot be used to sign: {e}")))?;
        Ok(CertificateAuthority {
            cert_path,
            cert_pem,
            cert_der,
            issuer,
            key,
        })
    }

    /// The CA certificate as PEM, exactly as stored in `ca.pem` (give it to
    /// clients as their trust anchor, like AmazonRootCA1.pem).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Where the CA certificate lives (`DIR/ca.pem`).
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// Signs a device CSR, as AWS `CreateCertificateFromCsr` does.
    ///
    /// Checks the CSR's signature and key (RSA 2048 to 8192 bits, EC P-256 or
    /// P-384). The certificate carries the CSR's own public key and subject,
    /// a random 16-byte serial, validity from an hour ago to `validity_days`
    /// from now, extended key usage clientAuth, key usage digitalSignature
    /// (plus keyEncipherment for RSA), basicConstraints CA:FALSE and the CA's
    /// key identifier. Extensions requested in the CSR are ignored.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        validity_days: u32,
    ) -> Result<IssuedCertificate, PkiError> {
        let csr = validate_csr(csr_pem)?;
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(&csr.spki_der)
            .map_err(|e| PkiError::UnsupportedKey(format!("rcgen cannot encode this key: {e}")))?;
        let params = leaf_params(
            csr.subject,
            validity_days,
            matches!(csr.kind, KeyKind::Rsa { .. }),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let cert = self.sign(params, &public_key)?;
        // The promise of this function: the device's own key, byte for byte.
        let issued_key = crate::parse_certificate_der(cert.der())?.public_key_der;
        if issued_key != csr.spki_der {
            return Err(PkiError::UnsupportedKey(
                "the key's encoding could not be copied unchanged into the certificate".into(),
            ));
        }
        Ok(IssuedCertificate::from_rcgen(&cert))
    }

    fn sign(
        &self,
        params: CertificateParams,
        public_key: &impl PublicKeyData,
    ) -> Result<Certificate, PkiError> {
        params
            .signed_by(public_key, &self.issuer, &self.key)
            .map_err(|e| PkiError::generation("certificate", e))
    }

    /// Makes an RSA-2048 key and a client certificate for it with subject
    /// `CN=common_name`, as AWS `CreateKeysAndCertificate` does; the private
    /// key comes back as PKCS#1 (`RSA PRIVATE KEY`), as AWS returns it.
    pub fn create_keys_and_certificate(
        &self,
        common_name: &str,
        validity_days: u32,
    ) -> Result<(IssuedCertificate, GeneratedKey), PkiError> {
        check_common_name(common_name)?;
        // Check the cheap arguments before the slow key generation.
        validity(validity_days)?;
        let key = generate_key(KeyAlgorithm::Rsa2048)?;
        let key_pair = load_key_pair(&key.private_key_pem)?;
        let params = leaf_params(
            common_name_dn(common_name),
            validity_days,
            true,
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let cert = self.sign(params, &key_pair)?;
        // AWS returns the RSA key as PKCS#1 (`-----BEGIN RSA PRIVATE KEY-----`).
        let key = GeneratedKey {
            private_key_pem: crate::key::rsa_pkcs1_pem(&key.private_key_pem)?,
            public_key_pem: key.public_key_pem,
        };
        Ok((IssuedCertificate::from_rcgen(&cert), key))
    }

    /// Makes an EC P-256 key and a TLS server certificate for `hosts`
    /// (each an IP address or a DNS name, `*.` wildcards allowed), e.g. for
    /// the local broker. Returns (certificate PEM, PKCS#8 key PEM).
    pub fn issue_server_certificate(
        &self,
        hosts: &[String],
        validity_days: u32,
    ) -> Result<(String, String), PkiError> {
        if hosts.is_empty() {
            return Err(PkiError::InvalidArgument(
                "no host names for the server certificate: give at least one, e.g. localhost"
                    .into(),
            ));
        }
        let sans = hosts
            .iter()
            .map(|h| san(h.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let first = hosts[0].trim();
        let mut dn = DistinguishedName::new();
        if first.chars().count() <= 64 {
            dn.push(DnType::CommonName, first);
        }
        let mut params = leaf_params(
            dn,
            validity_days,
            false,
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        params.subject_alt_names = sans;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| PkiError::generation("server key", e))?;
        let cert = self.sign(params, &key)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// A subjectAltName for a host: an IP address if it parses as one, else a DNS name.
fn san(host: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let name = host.strip_prefix("*.").unwrap_or(host);
    let name = name.strip_suffix('.').unwrap_or(name);
    if host.len() > 253 || !name.split('.').all(valid_label) {
        return Err(PkiError::InvalidArgument(format!(
            "{host:?} is neither an IP address nor a DNS name (letters, digits, '-', dots)"
        )));
    }
    let ia5 = host
        .try_into()
        .map_err(|e| PkiError::InvalidArgument(format!("{host:?}: {e}")))?;
    Ok(SanType::DnsName(ia5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{create_csr, csr_public_key_der, parse_certificate_pem};
    use x509_parser::extensions::GeneralName;

    fn ca() -> (tempfile::TempDir, CertificateAuthority) {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        (dir, ca)
    }

    fn x509(der: &[u8]) -> X509Certificate<'_> {
        X509Certificate::from_der(der).unwrap().1
    }

    #[test]
    fn serials_are_positive_16_bytes_and_differ() {
        let a = random_serial().to_bytes();
        let b = random_serial().to_bytes();
        assert_eq!(a.len(), 16);
        assert_eq!(a[0] & 0xc0, 0x40);
        assert_ne!(a, b);
    }

    #[test]
    fn validity_limits() {
        assert!(matches!(validity(0), Err(PkiError::InvalidArgument(_))));
        assert!(matches!(
            validity(u32::MAX),
            Err(PkiError::InvalidArgument(_))
        ));
        let (nb, na) = validity(1).unwrap();
        assert_eq!(na - nb, Duration::hours(25));
    }

    #[test]
    fn san_table() {
        let cases = [
            ("127.0.0.1", Some("ip")),
            ("::1", Some("ip")),
            ("localhost", Some("dns")),
            ("a-b.example.com", Some("dns")),
            ("*.iot.local", Some("dns")),
            ("", None),
            ("bad host", None),
            ("a..b", None),
            ("ünïcode.example", None),
        ];
        for (host, want) in cases {
            let got = san(host).ok().map(|s| match s {
                SanType::IpAddress(_) => "ip",
                SanType::DnsName(_) => "dns",
                _ => "other",
            });
            assert_eq!(got, want, "{host:?}");
        }
    }

    #[test]
    fn new_ca_is_a_ten_year_p256_ca_and_reloads_identically() {
        let (dir, ca) = ca();
        let cert = x509(ca.cert_der());
        assert!(cert.is_ca());
        assert_eq!(cert.subject().to_string(), format!("CN={CA_COMMON_NAME}"));
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign());
        let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp())
            / 86_400;
        assert_eq!(days, 3650, "ten years (plus the hour of slack)");
        assert_eq!(ca.cert_path(), dir.path().join("ca.pem"));
        assert_eq!(
            parse_certificate_pem(ca.cert_pem()).unwrap().der,
            ca.cert_der()
        );

        let again = CertificateAuthority::load_or_create(dir.path()).unwrap();
        assert_eq!(again.cert_der(), ca.cert_der());
        assert_eq!(again.cert_pem(), ca.cert_pem());
        assert!(!format!("{again:?}").contains("BEGIN"), "Debug leaks");

        // The reloaded CA signs certificates that chain to the original.
        let key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
        let issued = again
            .sign_csr(&create_csr(&key.private_key_pem, "r").unwrap(), 30)
            .unwrap();
        let leaf = x509(&issued.der);
        assert_eq!(leaf.issuer(), cert.subject());
        leaf.verify_signature(Some(cert.public_key())).unwrap();
        let aki = leaf
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.clone(),
                _ => None,
            })
            .unwrap();
        let ski = cert
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(aki.0, ski.0);
    }

    #[cfg(unix)]
    #[test]
    fn ca_key_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, _ca) = ca();
        let mode = fs::metadata(dir.path().join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "left-overs: {names:?}");
    }

    #[test]
    fn concurrent_creators_end_up_with_one_ca() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca");
        let ders: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| CertificateAuthority::load_or_create(&path)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap().cert_der().to_vec())
                .collect()
        });
        assert!(ders.windows(2).all(|w| w[0] == w[1]), "different CAs");
        let on_disk = CertificateAuthority::load_or_create(&path).unwrap();
        assert_eq!(on_disk.cert_der(), ders[0].as_slice());
    }

    #[test]
    fn half_a_ca_or_a_broken_one_is_reported_by_file() {
        let (dir, _ca) = ca();
        let cert = dir.path().join("ca.pem");
        let key = dir.path().join("ca.key");
        let saved_key = fs::read(&key).unwrap();

        fs::remove_file(&key).unwrap();
        let err = CertificateAuthority::load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(&err, PkiError::CaIncomplete { present, missing } if *present == cert && *missing == key),
            "{err}"
        );
        assert!(err.to_string().contains("ca.key"), "{err}");

        fs::write(&key, &saved_key).unwrap();
        fs::rename(&cert, dir.path().join("elsewhere")).unwrap();
        let err = CertificateAuthority::load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(&err, PkiError::CaIncomplete { missing, .. } if *missing == cert),
            "{err}"
        );

        fs::write(&cert, "garbage").unwrap();
        let err = CertificateAuthority::load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(&err, PkiError::CaInvalid { path, .. } if *path == cert),
            "{err}"
        );

        // A valid CA certificate with somebody else's key.
        fs::rename(dir.path().join("elsewhere"), &cert).unwrap();
        let other = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
        fs::write(&key, other.private_key_pem).unwrap();
        let err = CertificateAuthority::load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(&err, PkiError::CaInvalid { path, .. } if *path == key),
            "{err}"
        );
        assert!(err.to_string().contains("does not belong"), "{err}");
    }

    #[test]
    fn signed_csr_keeps_key_and_subject_and_is_a_client_cert() {
        let (_dir, ca) = ca();
        for alg in [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
        ] {
            let key = KeyPair::generate_for(alg).unwrap();
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::OrganizationName, "Acme");
            dn.push(DnType::CommonName, "robot7");
            params.distinguished_name = dn;
            let csr = params.serialize_request(&key).unwrap().pem().unwrap();

            let issued = ca.sign_csr(&csr, 365).unwrap();
            assert_eq!(issued.id, certificate_id(&issued.der));
            assert_eq!(parse_certificate_pem(&issued.pem).unwrap().der, issued.der);
            let cert = x509(&issued.der);
            assert_eq!(cert.public_key().raw, key.public_key_der());
            assert_eq!(cert.public_key().raw, csr_public_key_der(&csr).unwrap());
            assert_eq!(cert.subject().to_string(), "O=Acme, CN=robot7");
            assert!(!cert.is_ca());
            let eku = cert.extended_key_usage().unwrap().unwrap().value;
            assert!(eku.client_auth && !eku.server_auth);
            let ku = cert.key_usage().unwrap().unwrap().value;
            assert!(ku.digital_signature() && !ku.key_encipherment() && !ku.key_cert_sign());
            assert_eq!(cert.raw_serial().len(), 16);
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let nb = cert.validity().not_before.timestamp();
            assert!(
                (now - 3600 - 5..=now - 3600 + 5).contains(&nb),
                "{nb} vs {now}"
            );
            let na = cert.validity().not_after.timestamp();
            assert!((now + 365 * 86_400 - 5..=now + 365 * 86_400 + 5).contains(&na));
        }
        // Each issue is a new certificate.
        let key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
        let csr = create_csr(&key.private_key_pem, "same").unwrap();
        assert_ne!(
            ca.sign_csr(&csr, 1).unwrap().id,
            ca.sign_csr(&csr, 1).unwrap().id
        );
        assert!(matches!(
            ca.sign_csr(&csr, 0),
            Err(PkiError::InvalidArgument(_))
        ));
    }

    #[test]
    fn keys_and_certificate_is_rsa_2048_with_key_encipherment() {
        let (_dir, ca) = ca();
        let (issued, key) = ca.create_keys_and_certificate("robot9", 10).unwrap();
        assert!(
            key.private_key_pem
                .starts_with("-----BEGIN RSA PRIVATE KEY-----\n"),
            "AWS returns PKCS#1: {}",
            &key.private_key_pem[..40]
        );
        let cert = x509(&issued.der);
        assert_eq!(cert.subject().to_string(), "CN=robot9");
        assert_eq!(
            cert.public_key().raw,
            crate::private_key_public_key_der(&key.private_key_pem).unwrap()
        );
        match cert.public_key().parsed().unwrap() {
            x509_parser::public_key::PublicKey::RSA(rsa) => {
                assert_eq!(
                    crate::csr::key_kind(cert.public_key()).unwrap(),
                    KeyKind::Rsa { bits: 2048 }
                );
                assert!(!rsa.modulus.is_empty());
            }
            other => panic!("not RSA: {other:?}"),
        }
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && ku.key_encipherment());
        assert!(
            cert.extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .client_auth
        );
        assert!(matches!(
            ca.create_keys_and_certificate("", 10),
            Err(PkiError::InvalidArgument(_))
        ));
    }

    #[test]
    fn server_certificate_has_sans_and_server_auth() {
        let (_dir, ca) = ca();
        let hosts = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        let (cert_pem, key_pem) = ca.issue_server_certificate(&hosts, 30).unwrap();
        let info = parse_certificate_pem(&cert_pem).unwrap();
        assert_eq!(
            info.public_key_der,
            crate::private_key_public_key_der(&key_pem).unwrap()
        );
        assert_eq!(info.common_name.as_deref(), Some("localhost"));
        let cert = x509(&info.der);
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        let names: Vec<String> = san
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::DNSName(d) => format!("DNS:{d}"),
                GeneralName::IPAddress(ip) => format!("IP:{ip:?}"),
                other => format!("{other:?}"),
            })
            .collect();
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(
            names,
            [
                "DNS:localhost".to_string(),
                format!("IP:{:?}", [127u8, 0, 0, 1].as_slice()),
                format!("IP:{:?}", v6.as_slice()),
            ]
        );
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);

        for bad in [vec![], vec!["no spaces allowed".to_string()]] {
            let err = ca.issue_server_certificate(&bad, 30).unwrap_err();
            assert!(
                matches!(err, PkiError::InvalidArgument(_)),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn the_ca_can_be_shared_between_threads() {
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<CertificateAuthority>();
    }
}
