//! Checking a CSR before the CA signs it: PEM, PKCS#10, key type and size,
//! self-signature, and a subject rcgen can copy.

use std::collections::HashSet;

use rcgen::{BmpString, DistinguishedName, DnType, DnValue, UniversalString};
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

use crate::cert::aws_attribute_name;
use crate::pem::find_block;
use crate::PkiError;

/// The public key types the CA certifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa { bits: usize },
    EcP256,
    EcP384,
}

/// A CSR that passed every check.
#[derive(Debug)]
pub(crate) struct ValidCsr {
    pub(crate) subject: DistinguishedName,
    pub(crate) spki_der: Vec<u8>,
    pub(crate) kind: KeyKind,
}

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";
const OID_ED25519: &str = "1.3.101.112";
const OID_ED448: &str = "1.3.101.113";

pub(crate) fn csr_der_from_pem(csr_pem: &str) -> Result<Vec<u8>, PkiError> {
    let (_, der) = find_block(
        csr_pem,
        "CSR",
        &["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"],
    )?;
    Ok(der)
}

/// Parses and checks a CSR; the key is checked before the signature, so a
/// 1024-bit RSA CSR is refused for its size, not for an obscure ring error.
pub(crate) fn validate_csr(csr_pem: &str) -> Result<ValidCsr, PkiError> {
    let der = csr_der_from_pem(csr_pem)?;
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| PkiError::InvalidCsr(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::InvalidCsr(format!(
            "{} bytes of trailing data after the request",
            rest.len()
        )));
    }
    let info = &csr.certification_request_info;
    let kind = key_kind(&info.subject_pki)?;
    csr.verify_signature()
        .map_err(|e| PkiError::CsrSignature(e.to_string()))?;
    Ok(ValidCsr {
        subject: distinguished_name(&info.subject)?,
        spki_der: info.subject_pki.raw.to_vec(),
        kind,
    })
}

/// Bits in a big-endian unsigned integer, ignoring leading zero bytes.
fn bit_length(be: &[u8]) -> usize {
    match be.iter().position(|b| *b != 0) {
        None => 0,
        Some(i) => (be.len() - i - 1) * 8 + (8 - be[i].leading_zeros() as usize),
    }
}

pub(crate) fn key_kind(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyKind, PkiError> {
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        OID_RSA_ENCRYPTION => {
            let PublicKey::RSA(rsa) = spki
                .parsed()
                .map_err(|e| PkiError::InvalidCsr(format!("bad RSA public key: {e}")))?
            else {
                return Err(PkiError::InvalidCsr("bad RSA public key".into()));
            };
            let bits = bit_length(rsa.modulus);
            if bits < 2048 {
                Err(PkiError::RsaKeyTooSmall(bits))
            } else if bits > 8192 {
                Err(PkiError::UnsupportedKey(format!(
                    "RSA key of {bits} bits (at most 8192 are supported)"
                )))
            } else {
                Ok(KeyKind::Rsa { bits })
            }
        }
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string())
                .ok_or_else(|| PkiError::UnsupportedKey("EC key without a named curve".into()))?;
            match curve.as_str() {
                OID_P256 => Ok(KeyKind::EcP256),
                OID_P384 => Ok(KeyKind::EcP384),
                OID_P521 => Err(PkiError::UnsupportedKey(
                    "EC P-521 (AWS IoT takes it, but this local CA's crypto library, ring, \
                     cannot verify or certify P-521 keys)"
                        .into(),
                )),
                other => Err(PkiError::UnsupportedKey(format!("EC curve {other}"))),
            }
        }
        OID_RSASSA_PSS => Err(PkiError::UnsupportedKey(
            "RSASSA-PSS key (make a plain rsaEncryption key)".into(),
        )),
        OID_ED25519 | OID_ED448 => Err(PkiError::UnsupportedKey(
            "Ed25519/Ed448 key (AWS IoT does not accept EdDSA certificates)".into(),
        )),
        other => Err(PkiError::UnsupportedKey(format!("key algorithm {other}"))),
    }
}

/// Copies an X.509 name into rcgen's form, keeping order and string types.
pub(crate) fn distinguished_name(name: &X509Name<'_>) -> Result<DistinguishedName, PkiError> {
    let mut dn = DistinguishedName::new();
    let mut seen = HashSet::new();
    for attr in name.iter_attributes() {
        let oid = attr.attr_type();
        let id = oid.to_id_string();
        let label = aws_attribute_name(&id).unwrap_or(id.as_str()).to_string();
        let arcs: Vec<u64> = oid
            .iter()
            .ok_or_else(|| PkiError::InvalidSubject(format!("attribute type {id} is too large")))?
            .collect();
        if !seen.insert(id.clone()) {
            // rcgen keeps one value per attribute type.
            return Err(PkiError::InvalidSubject(format!(
                "{label} appears more than once; this CA copies each subject attribute once, \
                 so make a CSR with a single {label}"
            )));
        }
        let value = attr.attr_value();
        let text = || {
            std::str::from_utf8(value.data)
                .map_err(|_| PkiError::InvalidSubject(format!("{label} is not valid text")))
        };
        let bad = |e: rcgen::Error| PkiError::InvalidSubject(format!("{label}: {e}"));
        let dn_value = match value.tag() {
            Tag::Utf8String => DnValue::Utf8String(text()?.to_string()),
            // rcgen has no NumericString; digits and spaces are printable.
            Tag::PrintableString | Tag::NumericString => {
                DnValue::PrintableString(text()?.try_into().map_err(bad)?)
            }
            Tag::Ia5String => DnValue::Ia5String(text()?.try_into().map_err(bad)?),
            Tag::T61String => DnValue::TeletexString(text()?.try_into().map_err(bad)?),
            Tag::BmpString => {
                DnValue::BmpString(BmpString::from_utf16be(value.data.to_vec()).map_err(bad)?)
            }
            Tag::UniversalString => DnValue::UniversalString(
                UniversalString::from_utf32be(value.data.to_vec()).map_err(bad)?,
            ),
            other => {
                return Err(PkiError::InvalidSubject(format!(
                    "{label} holds a {other} value, not a string"
                )))
            }
        };
        dn.push(DnType::from_oid(&arcs), dn_value);
    }
    Ok(dn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    #[test]
    fn bit_lengths() {
        let cases: &[(&[u8], usize)] = &[
            (&[], 0),
            (&[0, 0], 0),
            (&[1], 1),
            (&[0x80], 8),
            (&[0x00, 0x80, 0x00], 16),
            (&[0x7f, 0xff], 15),
        ];
        for (bytes, bits) in cases {
            assert_eq!(bit_length(bytes), *bits, "{bytes:?}");
        }
        let mut modulus = vec![0u8];
        modulus.extend([0xc5; 256]);
        assert_eq!(bit_length(&modulus), 2048);
    }

    fn csr_with(dn: DistinguishedName, alg: &'static rcgen::SignatureAlgorithm) -> String {
        let key = KeyPair::generate_for(alg).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[test]
    fn accepts_p256_and_p384_and_copies_the_subject() {
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CountryName,
            DnValue::PrintableString("DE".try_into().unwrap()),
        );
        dn.push(DnType::OrganizationName, "Robots Ünlimited");
        dn.push(DnType::CommonName, "robot1");
        for (alg, kind) in [
            (&rcgen::PKCS_ECDSA_P256_SHA256, KeyKind::EcP256),
            (&rcgen::PKCS_ECDSA_P384_SHA384, KeyKind::EcP384),
        ] {
            let csr = validate_csr(&csr_with(dn.clone(), alg)).unwrap();
            assert_eq!(csr.kind, kind);
            let got: Vec<_> = csr
                .subject
                .iter()
                .map(|(t, v)| (t.clone(), v.clone()))
                .collect();
            let want: Vec<_> = dn.iter().map(|(t, v)| (t.clone(), v.clone())).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn refuses_ed25519_and_garbage() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "x");
        let err = validate_csr(&csr_with(dn, &rcgen::PKCS_ED25519)).unwrap_err();
        assert!(matches!(err, PkiError::UnsupportedKey(_)), "{err}");
        assert!(err.to_string().contains("P-256"), "{err}");

        let cases = [
            ("hello", "the CSR is not valid PEM"),
            (
                "-----BEGIN CERTIFICATE REQUEST-----\naGVsbG8=\n-----END CERTIFICATE REQUEST-----\n",
                "could not be parsed as a PKCS#10",
            ),
        ];
        for (pem, want) in cases {
            let err = validate_csr(pem).unwrap_err().to_string();
            assert!(err.contains(want), "{pem:?}: {err}");
        }
    }

    #[test]
    fn refuses_a_tampered_csr() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "robot1");
        let pem = csr_with(dn, &rcgen::PKCS_ECDSA_P256_SHA256);
        let mut der = csr_der_from_pem(&pem).unwrap();
        // Rename the subject: robot1 -> robot2, leaving the signature as it was.
        let at = der.windows(6).position(|w| w == b"robot1").unwrap();
        der[at + 5] = b'2';
        let body = crate::pem::encode("CERTIFICATE REQUEST", &der);
        let err = validate_csr(&body).unwrap_err();
        assert!(matches!(err, PkiError::CsrSignature(_)), "{err}");
        assert!(err.to_string().contains("does not verify"), "{err}");
    }

    #[test]
    fn repeated_attributes_are_refused_clearly() {
        // rcgen cannot build such a name (it keeps one value per type), so
        // parse one from hand-written DER. Name ::= SEQUENCE { SET { OU "a" }, SET { OU "b" } }
        let name_der: &[u8] = &[
            0x30, 0x18, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x0b, 0x0c, 0x01, b'a',
            0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x0b, 0x0c, 0x01, b'b',
        ];
        let (_, name) = X509Name::from_der(name_der).unwrap();
        let err = distinguished_name(&name).unwrap_err().to_string();
        assert!(
            err.contains("OrganizationalUnit appears more than once"),
            "{err}"
        );
    }
}
