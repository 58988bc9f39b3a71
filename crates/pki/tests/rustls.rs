//! The broker's TLS stack (rustls with webpki, ring) as the peer: a mutual
//! TLS handshake, in memory, with a server certificate and client
//! certificates from our CA. webpki is stricter than OpenSSL about serials,
//! key usages and extensions, so this catches what `openssl verify` lets by.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use gopigo_pki::{create_csr, generate_key, CertificateAuthority, KeyAlgorithm};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

fn key_der(pem: &str) -> PrivateKeyDer<'static> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .unwrap()
        .unwrap()
}

fn cert_der(pem: &str) -> CertificateDer<'static> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
}

/// Moves TLS records both ways until both sides finish the handshake.
fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), String> {
    for _ in 0..20 {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            server.read_tls(&mut rd).unwrap();
            server
                .process_new_packets()
                .map_err(|e| format!("server: {e}"))?;
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            client.read_tls(&mut rd).unwrap();
            client
                .process_new_packets()
                .map_err(|e| format!("client: {e}"))?;
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    Err("handshake did not finish".into())
}

fn configs(
    ca: &CertificateAuthority,
    client_cert: &str,
    client_key: &str,
) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.cert_der().to_vec()))
        .unwrap();
    let roots = Arc::new(roots);

    let (server_pem, server_key) = ca
        .issue_server_certificate(&["localhost".into(), "127.0.0.1".into()], 30)
        .unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .unwrap();
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert_der(&server_pem)], key_der(&server_key))
        .unwrap();
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![cert_der(client_cert)], key_der(client_key))
        .unwrap();
    (Arc::new(client), Arc::new(server))
}

#[test]
fn mutual_tls_with_our_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();

    // One EC device (from a CSR) and one RSA device (CreateKeysAndCertificate).
    let ec_key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
    let ec_cert = ca
        .sign_csr(
            &create_csr(&ec_key.private_key_pem, "robot-ec").unwrap(),
            30,
        )
        .unwrap();
    let (rsa_cert, rsa_key) = ca.create_keys_and_certificate("robot-rsa", 30).unwrap();

    for (cert, key) in [
        (&ec_cert, &ec_key.private_key_pem),
        (&rsa_cert, &rsa_key.private_key_pem),
    ] {
        for name in ["localhost", "127.0.0.1"] {
            let (client_cfg, server_cfg) = configs(&ca, &cert.pem, key);
            let server_name = ServerName::try_from(name.to_string()).unwrap();
            let mut client = ClientConnection::new(client_cfg, server_name).unwrap();
            let mut server = ServerConnection::new(server_cfg).unwrap();
            handshake(&mut client, &mut server).unwrap();
            // The broker identifies the device by the certificate it presented.
            let presented = server.peer_certificates().unwrap();
            assert_eq!(presented[0].as_ref(), cert.der.as_slice());
            assert_eq!(gopigo_pki::certificate_id(presented[0].as_ref()), cert.id);
        }
    }
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(&dir.path().join("ours")).unwrap();
    let stranger = CertificateAuthority::load_or_create(&dir.path().join("theirs")).unwrap();
    let key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
    let cert = stranger
        .sign_csr(&create_csr(&key.private_key_pem, "intruder").unwrap(), 30)
        .unwrap();
    let (client_cfg, server_cfg) = configs(&ca, &cert.pem, &key.private_key_pem);
    let mut client =
        ClientConnection::new(client_cfg, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut server = ServerConnection::new(server_cfg).unwrap();
    let err = handshake(&mut client, &mut server).unwrap_err();
    // Both CAs are named "gopigo-iot local CA", so webpki tries ours as the
    // issuer and the signature check fails.
    assert!(err.starts_with("server: invalid peer certificate"), "{err}");
}

#[test]
fn the_server_certificate_does_not_cover_other_names() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
    let key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
    let cert = ca
        .sign_csr(&create_csr(&key.private_key_pem, "robot").unwrap(), 30)
        .unwrap();
    let (client_cfg, server_cfg) = configs(&ca, &cert.pem, &key.private_key_pem);
    let mut client = ClientConnection::new(
        client_cfg,
        ServerName::try_from("elsewhere.example").unwrap(),
    )
    .unwrap();
    let mut server = ServerConnection::new(server_cfg).unwrap();
    let err = handshake(&mut client, &mut server).unwrap_err();
    assert!(
        err.starts_with("client:") && err.contains("not valid for name"),
        "{err}"
    );
}
