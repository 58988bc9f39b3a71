//! Mutual TLS: the server configuration whose client-certificate verifier
//! checks the chain to the core's CA *and* asks the [`Authority`] whether the
//! certificate is registered and ACTIVE, and the identity read back from a
//! finished handshake.

use std::sync::Arc;

use crate::{Authority, BrokerError};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

pub use gopigo_pki::certificate_id;

/// ALPN protocol id AWS IoT uses for MQTT on port 443.
pub const ALPN_MQTT_CA: &[u8] = b"x-amzn-mqtt-ca";

/// Chain verification by webpki, then the registry's say on the certificate.
#[derive(Debug)]
struct RegisteredCertVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    authority: AuthorityDebug,
}

struct AuthorityDebug(Arc<dyn Authority>);

impl std::fmt::Debug for AuthorityDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authority")
    }
}

impl RegisteredCertVerifier {
    /// The chain to one of the user's registered ACTIVE CAs, else trust by
    /// fingerprint for a certificate registered without a CA; `first` (the
    /// core CA's verdict) when neither holds.
    fn verify_with_registered_cas(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        id: &str,
        first: rustls::Error,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let cas = self.authority.0.registered_cas();
        if !cas.is_empty() {
            let mut roots = RootCertStore::empty();
            for der in cas {
                let _ = roots.add(CertificateDer::from(der));
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            if let Ok(v) =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()
            {
                if let Ok(ok) = v.verify_client_cert(end_entity, intermediates, now) {
                    return Ok(ok);
                }
            }
        }
        if self.authority.0.registered_without_ca(id) {
            // The handshake's signature (verify_tls1x_signature) still proves
            // the client holds the certificate's key.
            return Ok(ClientCertVerified::assertion());
        }
        Err(first)
    }
}

impl ClientCertVerifier for RegisteredCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let id = certificate_id(end_entity.as_ref());
        let verified = match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Ok(v) => v,
            Err(e) => self.verify_with_registered_cas(end_entity, intermediates, now, &id, e)?,
        };
        if self.authority.0.certificate_active(&id) {
            Ok(verified)
        } else {
            tracing::info!(certificate_id = %id, "client certificate not registered or not ACTIVE; handshake refused");
            Err(rustls::Error::InvalidCertificate(CertificateError::Revoked))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Builds the server TLS configuration once: the server identity from PEM,
/// client certificates required, chained to `ca_cert_der` and ACTIVE in the
/// `authority`. `alpn` sets the ALPN protocols (e.g. `[ALPN_MQTT_CA]` for the
/// port-443 style listener). Also usable for the HTTPS publish listener.
pub fn server_tls_config(
    ca_cert_der: Vec<u8>,
    server_cert_pem: &str,
    server_key_pem: &str,
    authority: Arc<dyn Authority>,
    alpn: Option<Vec<Vec<u8>>>,
) -> Result<Arc<rustls::ServerConfig>, BrokerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_cert_der))
        .map_err(|e| BrokerError::CaCertificate(e.to_string()))?;
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| BrokerError::CaCertificate(e.to_string()))?;
    let verifier = Arc::new(RegisteredCertVerifier {
        inner,
        authority: AuthorityDebug(authority),
    });

    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut server_cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| BrokerError::ServerIdentity {
                what: "certificate",
                detail: e.to_string(),
            })?;
    if certs.is_empty() {
        return Err(BrokerError::ServerIdentity {
            what: "certificate",
            detail: "no CERTIFICATE block found".into(),
        });
    }
    let key = rustls_pemfile::private_key(&mut server_key_pem.as_bytes())
        .map_err(|e| BrokerError::ServerIdentity {
            what: "key",
            detail: e.to_string(),
        })?
        .ok_or(BrokerError::ServerIdentity {
            what: "key",
            detail: "no PRIVATE KEY block found".into(),
        })?;

    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    if let Some(alpn) = alpn {
        config.alpn_protocols = alpn;
    }
    Ok(Arc::new(config))
}

/// Who is on the other end of a mutual-TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Lowercase hex SHA-256 of the client certificate's DER.
    pub certificate_id: String,
    /// Policy variables from the certificate, as `(name, value)`, e.g.
    /// `("iot:Certificate.Subject.CommonName", "robot1")`; an attribute the
    /// certificate repeats comes once per value, in certificate order
    /// ([`gopigo_pki::CertificateInfo::policy_variables`]).
    pub certificate_variables: Vec<(String, String)>,
}

impl ClientIdentity {
    /// Reads the identity from a client certificate's DER.
    pub fn from_der(der: &[u8]) -> ClientIdentity {
        ClientIdentity {
            certificate_id: certificate_id(der),
            certificate_variables: certificate_variables(der),
        }
    }

    /// The principal ARN (`arn:{partition}:iot:{region}:{account}:cert/{id}`).
    pub fn principal_arn(&self, region: &str, account_id: &str) -> String {
        gopigo_policy::arn(region, account_id, &format!("cert/{}", self.certificate_id))
    }

    /// The (first) value of a certificate policy variable, if the certificate has it.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.certificate_variables
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The identity of the client on a finished server-side handshake.
pub fn client_identity(conn: &rustls::ServerConnection) -> Option<ClientIdentity> {
    let cert = conn.peer_certificates()?.first()?;
    Some(ClientIdentity::from_der(cert.as_ref()))
}

/// The certificate's `iot:Certificate.*` variables, as pki reads them; none
/// when pki cannot parse it (the verifier has accepted it, so this does not
/// happen with a chain webpki checked).
fn certificate_variables(der: &[u8]) -> Vec<(String, String)> {
    gopigo_pki::parse_certificate_der(der)
        .map(|info| info.policy_variables())
        .unwrap_or_default()
}
