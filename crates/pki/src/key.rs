//! Key pairs and certificate signing requests (CSRs).
//!
//! RSA keys are made by the `rsa` crate (ring cannot generate RSA keys) and
//! handed to rcgen as PKCS#8; EC keys are made by rcgen (ring) directly.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;

use crate::pem::find_block;
use crate::PkiError;

/// The key types this crate generates: the two AWS IoT devices commonly use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA, 2048-bit modulus, exponent 65537 (what AWS `CreateKeysAndCertificate` makes).
    Rsa2048,
    /// ECDSA on NIST P-256 (fast to make, small; what the local CA itself uses).
    EcdsaP256,
}

impl FromStr for KeyAlgorithm {
    type Err = PkiError;

    /// Accepts `rsa`, `rsa2048`, `ec`, `p256`, `ecdsa-p256` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rsa" | "rsa2048" | "rsa-2048" => Ok(KeyAlgorithm::Rsa2048),
            "ec" | "p256" | "p-256" | "ecdsa" | "ecdsa-p256" => Ok(KeyAlgorithm::EcdsaP256),
            _ => Err(PkiError::InvalidArgument(format!(
                "unknown key algorithm {s:?}: use \"rsa\" (RSA-2048) or \"ec\" (ECDSA P-256)"
            ))),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::Rsa2048 => "rsa2048",
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
        })
    }
}

/// A freshly generated key pair, both halves as PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    /// The private key: PKCS#8 (`-----BEGIN PRIVATE KEY-----`) from
    /// [`generate_key`], PKCS#1 (`-----BEGIN RSA PRIVATE KEY-----`) from
    /// `create_keys_and_certificate`, as AWS returns it.
    pub private_key_pem: String,
    /// The public key, SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`).
    pub public_key_pem: String,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("private_key_pem", &"<redacted>")
            .field("public_key_pem", &self.public_key_pem)
            .finish()
    }
}

/// Generates a new key pair.
///
/// RSA-2048 takes a noticeable fraction of a second (more on a Raspberry Pi);
/// EC P-256 is instant.
pub fn generate_key(alg: KeyAlgorithm) -> Result<GeneratedKey, PkiError> {
    let key_pair = match alg {
        KeyAlgorithm::Rsa2048 => {
            let rsa = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                .map_err(|e| PkiError::generation("RSA-2048 key", e))?;
            let pkcs8 = rsa
                .to_pkcs8_der()
                .map_err(|e| PkiError::generation("RSA-2048 key", e))?;
            KeyPair::try_from(pkcs8.as_bytes())
                .map_err(|e| PkiError::generation("RSA-2048 key", e))?
        }
        KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| PkiError::generation("EC P-256 key", e))?,
    };
    Ok(GeneratedKey {
        private_key_pem: key_pair.serialize_pem(),
        public_key_pem: key_pair.public_key_pem(),
    })
}

/// Re-encodes an RSA key from PKCS#8 (`PRIVATE KEY`) PEM as PKCS#1
/// (`RSA PRIVATE KEY`) PEM, the form AWS IoT's CreateKeysAndCertificate
/// returns.
pub fn rsa_pkcs1_pem(pkcs8_pem: &str) -> Result<String, PkiError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let (_, der) = crate::pem::find_block(pkcs8_pem, "private key", &["PRIVATE KEY"])?;
    let rsa = rsa::RsaPrivateKey::from_pkcs8_der(&der)
        .map_err(|e| PkiError::InvalidKey(format!("not an RSA PKCS#8 key: {e}")))?;
    let pem = rsa
        .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|e| PkiError::InvalidKey(format!("cannot encode the key as PKCS#1: {e}")))?;
    Ok(pem.to_string())
}

/// Loads a private key PEM into rcgen.
///
/// Takes PKCS#8 (`PRIVATE KEY`: RSA, EC P-256/P-384, Ed25519) and PKCS#1
/// (`RSA PRIVATE KEY`, converted to PKCS#8 on the way in).
pub(crate) fn load_key_pair(key_pem: &str) -> Result<KeyPair, PkiError> {
    let (label, der) = find_block(
        key_pem,
        "private key",
        &[
            "PRIVATE KEY",
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
        ],
    )?;
    match label.as_str() {
        "PRIVATE KEY" => KeyPair::try_from(der.as_slice()).map_err(|e| {
            // ring's refusal says little; name the common cause ourselves.
            match rsa::RsaPrivateKey::from_pkcs8_der(&der) {
                Ok(rsa) if rsa.size() * 8 < 2048 => PkiError::RsaKeyTooSmall(rsa.size() * 8),
                _ => PkiError::InvalidKey(format!(
                    "not a PKCS#8 RSA (2048 to 8192 bits), EC P-256/P-384 or Ed25519 key ({e})"
                )),
            }
        }),
        "RSA PRIVATE KEY" => {
            let rsa = rsa::RsaPrivateKey::from_pkcs1_der(&der)
                .map_err(|e| PkiError::InvalidKey(format!("bad PKCS#1 RSA key: {e}")))?;
            let bits = rsa.size() * 8;
            if bits < 2048 {
                return Err(PkiError::RsaKeyTooSmall(bits));
            }
            let pkcs8 = rsa
                .to_pkcs8_der()
                .map_err(|e| PkiError::InvalidKey(format!("cannot convert to PKCS#8: {e}")))?;
            KeyPair::try_from(pkcs8.as_bytes())
                .map_err(|e| PkiError::InvalidKey(format!("RSA key of {bits} bits refused: {e}")))
        }
        "EC PRIVATE KEY" => Err(PkiError::InvalidKey(
            "SEC1 \"EC PRIVATE KEY\" files are not supported; convert it to PKCS#8 with \
             `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8`"
                .into(),
        )),
        _ => Err(PkiError::InvalidKey(
            "the key is encrypted; decrypt it first with `openssl pkcs8 -in KEY -out PLAIN.key`"
                .into(),
        )),
    }
}

/// Creates a PKCS#10 CSR for `private_key_pem` whose subject is `CN=common_name`.
///
/// The CSR is signed by the key itself, as every CA (AWS included) checks.
pub fn create_csr(private_key_pem: &str, common_name: &str) -> Result<String, PkiError> {
    check_common_name(common_name)?;
    let key_pair = load_key_pair(private_key_pem)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    let csr = params
        .serialize_request(&key_pair)
        .map_err(|e| PkiError::generation("CSR", e))?;
    csr.pem().map_err(|e| PkiError::generation("CSR", e))
}

/// Returns the SubjectPublicKeyInfo DER of a private key's public half, to
/// compare with [`crate::CertificateInfo::public_key_der`] ("is this my cert?").
pub fn private_key_public_key_der(key_pem: &str) -> Result<Vec<u8>, PkiError> {
    Ok(load_key_pair(key_pem)?.public_key_der())
}

pub(crate) fn check_common_name(common_name: &str) -> Result<(), PkiError> {
    // X.520 ub-common-name is 64 characters.
    if common_name.trim().is_empty() {
        return Err(PkiError::InvalidArgument(
            "the common name is empty: give the device a name, e.g. its thing name".into(),
        ));
    }
    if common_name.chars().count() > 64 {
        return Err(PkiError::InvalidArgument(format!(
            "the common name {common_name:?} is longer than the 64 characters X.509 allows"
        )));
    }
    Ok(())
}

/// Generates a key and a CSR for it and writes them as `dir/NAME.key`
/// (mode 0600) and `dir/NAME.csr` (mode 0644), creating `dir` if needed.
///
/// Refuses to overwrite an existing `NAME.key`: a lost private key cannot
/// be recovered, and its certificate would stop working. An old `NAME.csr`
/// is replaced.
pub fn write_key_and_csr(
    dir: &Path,
    name: &str,
    alg: KeyAlgorithm,
    common_name: &str,
) -> Result<(PathBuf, PathBuf), PkiError> {
    check_file_stem(name)?;
    check_common_name(common_name)?;
    let key_path = dir.join(format!("{name}.key"));
    let csr_path = dir.join(format!("{name}.csr"));
    // Cheap early check, before a slow RSA generation; create_new below is the real guard.
    if key_path.exists() {
        return Err(PkiError::KeyExists(key_path));
    }
    let key = generate_key(alg)?;
    let csr = create_csr(&key.private_key_pem, common_name)?;
    fs::create_dir_all(dir).map_err(|e| PkiError::io("create directory", dir, e))?;
    write_new_private_file(&key_path, key.private_key_pem.as_bytes()).map_err(|e| match e {
        PkiError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
            PkiError::KeyExists(key_path.clone())
        }
        other => other,
    })?;
    write_public_file(&csr_path, csr.as_bytes())?;
    Ok((key_path, csr_path))
}

fn check_file_stem(name: &str) -> Result<(), PkiError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.chars().any(char::is_control);
    if bad {
        return Err(PkiError::InvalidArgument(format!(
            "{name:?} cannot be used as a file name: use letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(())
}

/// Creates `path` with mode 0600 (from the first byte: never readable by
/// others, whatever the umask), writes and syncs `contents`. Refuses to
/// replace a file (an `Io` error whose source is `AlreadyExists`): a private
/// key, once made, is never overwritten. Every private file of the project
/// (keys, the CA key, bundle keys) is written here.
pub fn write_new_private_file(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| PkiError::io("create", path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| PkiError::io("write", path, e))
}

/// Writes `path` (replacing it) and sets mode 0644 whatever the umask.
pub(crate) fn write_public_file(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    fs::write(path, contents).map_err(|e| PkiError::io("write", path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o644))
            .map_err(|e| PkiError::io("set permissions on", path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    #[test]
    fn key_algorithm_names() {
        let cases = [
            ("rsa", Some(KeyAlgorithm::Rsa2048)),
            ("RSA2048", Some(KeyAlgorithm::Rsa2048)),
            ("ec", Some(KeyAlgorithm::EcdsaP256)),
            ("p256", Some(KeyAlgorithm::EcdsaP256)),
            (" ecdsa-p256 ", Some(KeyAlgorithm::EcdsaP256)),
            ("dsa", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<KeyAlgorithm>().ok(), want, "{text:?}");
        }
        let err = "ed448".parse::<KeyAlgorithm>().unwrap_err().to_string();
        assert!(err.contains("\"ed448\"") && err.contains("rsa"), "{err}");
        for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP256] {
            assert_eq!(alg.to_string().parse::<KeyAlgorithm>().unwrap(), alg);
        }
    }

    fn csr_of(pem: &str) -> (String, Vec<u8>) {
        let (_, der) = find_block(pem, "CSR", &["CERTIFICATE REQUEST"]).unwrap();
        let (_, csr) = X509CertificationRequest::from_der(&der).unwrap();
        csr.verify_signature().unwrap();
        let info = &csr.certification_request_info;
        (info.subject.to_string(), info.subject_pki.raw.to_vec())
    }

    #[test]
    fn ec_key_and_csr_round_trip() {
        let key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
        assert!(key
            .private_key_pem
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(key.public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(
            !format!("{key:?}").contains("BEGIN PRIVATE"),
            "Debug leaks the key"
        );

        let spki = private_key_public_key_der(&key.private_key_pem).unwrap();
        let (_, pub_der) = find_block(&key.public_key_pem, "k", &["PUBLIC KEY"]).unwrap();
        assert_eq!(spki, pub_der);

        let csr = create_csr(&key.private_key_pem, "robot1").unwrap();
        let (subject, csr_spki) = csr_of(&csr);
        assert_eq!(subject, "CN=robot1");
        assert_eq!(csr_spki, spki);

        // Two keys are different keys.
        let other = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
        assert_ne!(
            private_key_public_key_der(&other.private_key_pem).unwrap(),
            spki
        );
    }

    #[test]
    fn rsa_key_is_2048_bit_pkcs8_and_pkcs1_loads_too() {
        let key = generate_key(KeyAlgorithm::Rsa2048).unwrap();
        let (_, der) = find_block(&key.private_key_pem, "k", &["PRIVATE KEY"]).unwrap();
        let rsa = rsa::RsaPrivateKey::from_pkcs8_der(&der).unwrap();
        assert_eq!(rsa.size() * 8, 2048);
        assert_eq!(rsa.e(), &rsa::BigUint::from(65537u32));

        // The same key as PKCS#1 gives the same public key.
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let pkcs1 = rsa.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert_eq!(
            private_key_public_key_der(&pkcs1).unwrap(),
            private_key_public_key_der(&key.private_key_pem).unwrap()
        );
        let (subject, csr_spki) = csr_of(&create_csr(&pkcs1, "rsa-robot").unwrap());
        assert_eq!(subject, "CN=rsa-robot");
        assert_eq!(csr_spki, private_key_public_key_der(&pkcs1).unwrap());
    }

    #[test]
    fn bad_keys_are_refused_with_advice() {
        let cases = [
            ("not a key", "not valid PEM"),
            (
                "-----BEGIN EC PRIVATE KEY-----\naGVsbG8=\n-----END EC PRIVATE KEY-----\n",
                "openssl pkcs8 -topk8",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\naGVsbG8=\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "encrypted",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\naGVsbG8=\n-----END PRIVATE KEY-----\n",
                "not a PKCS#8",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\naGVsbG8=\n-----END RSA PRIVATE KEY-----\n",
                "bad PKCS#1",
            ),
        ];
        for (pem, want) in cases {
            let err = create_csr(pem, "x").unwrap_err().to_string();
            assert!(err.contains(want), "{pem:?}: {err}");
        }

        // ring refuses small RSA keys without saying why; we say why.
        let small = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        for pem in [
            small
                .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                .unwrap()
                .to_string(),
            rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(&small, rsa::pkcs8::LineEnding::LF)
                .unwrap()
                .to_string(),
        ] {
            let err = create_csr(&pem, "x").unwrap_err();
            assert!(matches!(err, PkiError::RsaKeyTooSmall(1024)), "{err}");
        }
    }

    #[test]
    fn common_name_limits() {
        let key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
        assert!(create_csr(&key.private_key_pem, &"a".repeat(64)).is_ok());
        for bad in ["", "  ", &"a".repeat(65)] {
            let err = create_csr(&key.private_key_pem, bad).unwrap_err();
            assert!(
                matches!(err, PkiError::InvalidArgument(_)),
                "{bad:?}: {err}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn private_file_is_0600_and_never_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("key.pem");
        write_new_private_file(&p, b"secret").unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let err = write_new_private_file(&p, b"other").unwrap_err();
        assert!(
            matches!(&err, PkiError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
            "{err}"
        );
        assert_eq!(fs::read(&p).unwrap(), b"secret");
    }

    #[cfg(unix)]
    #[test]
    fn write_key_and_csr_files_modes_and_no_overwrite() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("certs");
        let (key_path, csr_path) =
            write_key_and_csr(&dir, "robot1", KeyAlgorithm::EcdsaP256, "robot1").unwrap();
        assert_eq!(key_path, dir.join("robot1.key"));
        assert_eq!(csr_path, dir.join("robot1.csr"));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key_path), 0o600);
        assert_eq!(mode(&csr_path), 0o644);

        let key_pem = fs::read_to_string(&key_path).unwrap();
        let (subject, csr_spki) = csr_of(&fs::read_to_string(&csr_path).unwrap());
        assert_eq!(subject, "CN=robot1");
        assert_eq!(csr_spki, private_key_public_key_der(&key_pem).unwrap());

        let err = write_key_and_csr(&dir, "robot1", KeyAlgorithm::EcdsaP256, "robot1").unwrap_err();
        assert!(
            matches!(err, PkiError::KeyExists(ref p) if p == &key_path),
            "{err}"
        );
        assert!(err.to_string().contains("refusing to overwrite"), "{err}");
        assert_eq!(
            fs::read_to_string(&key_path).unwrap(),
            key_pem,
            "key was touched"
        );

        for bad in ["", "..", "a/b"] {
            let err = write_key_and_csr(&dir, bad, KeyAlgorithm::EcdsaP256, "x").unwrap_err();
            assert!(
                matches!(err, PkiError::InvalidArgument(_)),
                "{bad:?}: {err}"
            );
        }
    }
}
