//! Reading certificates: ids, subject fields (for policy variables), keys.

use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

use crate::pem::find_block;
use crate::PkiError;

/// The AWS IoT certificate id: lowercase hex SHA-256 of the certificate DER.
pub fn certificate_id(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// What the broker and control plane need to know about a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// [`certificate_id`] of `der`.
    pub id: String,
    /// The subject as text, e.g. `CN=robot1, O=Acme`.
    pub subject: String,
    /// The first common name of the subject, if any.
    pub common_name: Option<String>,
    /// Subject attributes in order, named as AWS policy variables name them
    /// (`${iot:Certificate.Subject.<name>}`, the names of [`AWS_ATTRIBUTES`]).
    /// Other attributes and values that are not text are left out.
    pub subject_fields: Vec<(String, String)>,
    /// Issuer attributes, named as for `subject_fields`
    /// (`${iot:Certificate.Issuer.<name>}`).
    pub issuer_fields: Vec<(String, String)>,
    /// The issuer as text.
    pub issuer: String,
    /// The serial number, lowercase hex without separators or leading zero bytes.
    pub serial_hex: String,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// The SubjectPublicKeyInfo, DER (compare with [`crate::csr_public_key_der`]
    /// or [`crate::private_key_public_key_der`]).
    pub public_key_der: Vec<u8>,
}

impl CertificateInfo {
    /// The AWS IoT certificate policy variables of this certificate, as
    /// `(name, value)` in certificate order: `iot:Certificate.Subject.<name>`
    /// and `iot:Certificate.Issuer.<name>` once per attribute value (a
    /// repeated attribute repeats, so `.List` and `.N` can see every value),
    /// then `iot:Certificate.SerialNumber`.
    pub fn policy_variables(&self) -> Vec<(String, String)> {
        let named = |part: &str, fields: &[(String, String)]| {
            fields
                .iter()
                .map(|(k, v)| (format!("iot:Certificate.{part}.{k}"), v.clone()))
                .collect::<Vec<_>>()
        };
        let mut vars = named("Subject", &self.subject_fields);
        vars.extend(named("Issuer", &self.issuer_fields));
        vars.push((
            "iot:Certificate.SerialNumber".to_owned(),
            self.serial_hex.clone(),
        ));
        vars
    }
}

/// The X.520 attribute types AWS IoT turns into certificate policy
/// variables (`${iot:Certificate.Subject.<name>}`, `...Issuer.<name>}`), by
/// dotted OID, with the name AWS gives each. The one table of them: the
/// broker's policy variables come from here too.
pub const AWS_ATTRIBUTES: [(&str, &str); 14] = [
    ("2.5.4.3", "CommonName"),
    ("2.5.4.4", "Surname"),
    ("2.5.4.5", "SerialNumber"),
    ("2.5.4.6", "Country"),
    ("2.5.4.7", "Locality"),
    ("2.5.4.8", "State"),
    ("2.5.4.10", "Organization"),
    ("2.5.4.11", "OrganizationalUnit"),
    ("2.5.4.12", "Title"),
    ("2.5.4.42", "GivenName"),
    ("2.5.4.43", "Initials"),
    ("2.5.4.44", "GenerationQualifier"),
    ("2.5.4.46", "DistinguishedNameQualifier"),
    ("2.5.4.65", "Pseudonym"),
];

/// The AWS policy-variable name of an X.520 attribute type, by dotted OID.
pub(crate) fn aws_attribute_name(oid: &str) -> Option<&'static str> {
    AWS_ATTRIBUTES
        .iter()
        .find(|(o, _)| *o == oid)
        .map(|(_, name)| *name)
}

fn name_fields(name: &X509Name<'_>) -> Vec<(String, String)> {
    name.iter_attributes()
        .filter_map(|attr| {
            let field = aws_attribute_name(&attr.attr_type().to_id_string())?;
            let value = attr.as_str().ok()?;
            Some((field.to_string(), value.to_string()))
        })
        .collect()
}

/// Parses the first `CERTIFICATE` block of a PEM text.
pub fn parse_certificate_pem(pem: &str) -> Result<CertificateInfo, PkiError> {
    let (_, der) = find_block(pem, "certificate", &["CERTIFICATE"])?;
    parse_certificate_der(&der)
}

/// Parses a DER certificate.
pub fn parse_certificate_der(der: &[u8]) -> Result<CertificateInfo, PkiError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::InvalidCertificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::InvalidCertificate(format!(
            "{} bytes of trailing data after the certificate",
            rest.len()
        )));
    }
    let subject_fields = name_fields(cert.subject());
    let common_name = subject_fields
        .iter()
        .find(|(k, _)| k == "CommonName")
        .map(|(_, v)| v.clone());
    let serial = cert.raw_serial();
    let first_non_zero = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    let serial_hex = match hex::encode(&serial[first_non_zero..]) {
        s if s.is_empty() => "00".to_string(),
        s => s,
    };
    Ok(CertificateInfo {
        der: der.to_vec(),
        id: certificate_id(der),
        subject: cert.subject().to_string(),
        common_name,
        subject_fields,
        issuer_fields: name_fields(cert.issuer()),
        issuer: cert.issuer().to_string(),
        serial_hex,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        public_key_der: cert.public_key().raw.to_vec(),
    })
}

/// The SubjectPublicKeyInfo DER of a CSR, to compare with a certificate's.
///
/// Does not check the CSR's signature ([`crate::CertificateAuthority::sign_csr`] does).
pub fn csr_public_key_der(csr_pem: &str) -> Result<Vec<u8>, PkiError> {
    let der = crate::csr::csr_der_from_pem(csr_pem)?;
    let (_, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| PkiError::InvalidCsr(e.to_string()))?;
    Ok(csr.certification_request_info.subject_pki.raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SerialNumber};

    #[test]
    fn certificate_id_is_lowercase_sha256_hex() {
        // SHA-256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            certificate_id(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(certificate_id(&[]).len(), 64);
    }

    /// A certificate OpenSSL made (see the file's header) with every
    /// attribute AWS names, so the OIDs are checked against another reader.
    const OPENSSL_ALL_ATTRIBUTES: &str = include_str!("../testdata/openssl-all-attributes.pem");

    #[test]
    fn every_aws_attribute_is_read_under_its_aws_name() {
        let info = parse_certificate_pem(OPENSSL_ALL_ATTRIBUTES).unwrap();
        let fields: Vec<(&str, &str)> = info
            .subject_fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // Certificate order; emailAddress has no AWS variable and is left out.
        let want = [
            ("Country", "US"),
            ("State", "WA"),
            ("Locality", "Seattle"),
            ("Organization", "IoT Devices"),
            ("OrganizationalUnit", "LightBulb"),
            ("CommonName", "LightBulb Device Cert"),
            ("Surname", "Multi Color"),
            ("GivenName", "Bulb"),
            ("Initials", "ZZ"),
            ("DistinguishedNameQualifier", "Bulb001"),
            ("Title", "RGB"),
            ("Pseudonym", "RGB Device"),
            ("GenerationQualifier", "4"),
            ("SerialNumber", "123"),
            ("CommonName", "second cn"),
        ];
        assert_eq!(fields, want);
        for (oid, name) in AWS_ATTRIBUTES {
            assert!(
                fields.iter().any(|(k, _)| *k == name),
                "{oid} ({name}) not read from the OpenSSL certificate"
            );
            assert_eq!(aws_attribute_name(oid), Some(name));
        }
        assert_eq!(info.common_name.as_deref(), Some("LightBulb Device Cert"));
        assert_eq!(aws_attribute_name("1.2.840.113549.1.9.1"), None); // emailAddress
    }

    #[test]
    fn policy_variables_cover_subject_issuer_and_serial() {
        let vars = parse_certificate_pem(OPENSSL_ALL_ATTRIBUTES)
            .unwrap()
            .policy_variables();
        let get = |name: &str| {
            vars.iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("iot:Certificate.Subject.Pseudonym"), ["RGB Device"]);
        assert_eq!(get("iot:Certificate.Issuer.Pseudonym"), ["RGB Device"]);
        assert_eq!(
            get("iot:Certificate.Subject.CommonName"),
            ["LightBulb Device Cert", "second cn"]
        );
        assert_eq!(get("iot:Certificate.Subject.SerialNumber"), ["123"]);
        // The DER integer is 00 92 12 ..: the sign byte is not part of the
        // number (OpenSSL and AWS's own example print 92:12:85:..).
        assert_eq!(get("iot:Certificate.SerialNumber"), ["921285cbb7a5e086"]);
        assert_eq!(vars.len(), 2 * 15 + 1);
    }

    #[test]
    fn parses_subject_fields_serial_validity_and_key() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "US");
        dn.push(DnType::OrganizationName, "Acme");
        dn.push(DnType::CommonName, "robot1");
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 5]), "SN-42");
        dn.push(
            DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            "a@b.c",
        );
        params.distinguished_name = dn;
        params.serial_number = Some(SerialNumber::from_slice(&[0x00, 0x0a, 0xbc]));
        params.not_before = rcgen::date_time_ymd(2024, 1, 2);
        params.not_after = rcgen::date_time_ymd(2025, 1, 2);
        let cert = params.self_signed(&key).unwrap();

        let info = parse_certificate_pem(&cert.pem()).unwrap();
        assert_eq!(info.der, cert.der().to_vec());
        assert_eq!(info.id, certificate_id(cert.der()));
        assert_eq!(info.common_name.as_deref(), Some("robot1"));
        let fields: Vec<(&str, &str)> = info
            .subject_fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("Country", "US"),
                ("Organization", "Acme"),
                ("CommonName", "robot1"),
                ("SerialNumber", "SN-42"),
            ]
        );
        assert_eq!(info.issuer_fields, info.subject_fields, "self-signed");
        assert!(info.subject.contains("CN=robot1"), "{}", info.subject);
        assert_eq!(info.serial_hex, "0abc");
        assert_eq!(info.not_before, 1_704_153_600); // 2024-01-02T00:00:00Z
        assert_eq!(info.not_after, 1_735_776_000); // 2025-01-02T00:00:00Z
        assert_eq!(info.public_key_der, key.public_key_der());
        assert_eq!(parse_certificate_der(cert.der()).unwrap(), info);
    }

    #[test]
    fn garbage_certificates_are_refused() {
        let err = parse_certificate_der(b"\x30\x03abc").unwrap_err();
        assert!(matches!(err, PkiError::InvalidCertificate(_)), "{err}");
        let err = parse_certificate_pem("hello").unwrap_err();
        assert!(
            err.to_string().contains("certificate is not valid PEM"),
            "{err}"
        );

        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = CertificateParams::default().self_signed(&key).unwrap();
        let mut der = cert.der().to_vec();
        der.push(0);
        let err = parse_certificate_der(&der).unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
    }
}
