//! The real OpenSSL command line as the peer: it must accept what we make,
//! and we must sign what it makes.
//!
//! Each test prints a note and passes when `/usr/bin/openssl` is absent.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use gopigo_pki::{
    certificate_id, create_csr, csr_public_key_der, generate_key, parse_certificate_pem,
    private_key_public_key_der, write_key_and_csr, CertificateAuthority, KeyAlgorithm, PkiError,
};

const OPENSSL: &str = "/usr/bin/openssl";

fn have_openssl() -> bool {
    if Path::new(OPENSSL).exists() {
        true
    } else {
        eprintln!("NOTE: {OPENSSL} is absent; skipping this OpenSSL interoperability test");
        false
    }
}

/// Runs openssl in `dir`; returns (success, stdout, stderr).
fn openssl(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(OPENSSL)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs openssl and insists that it succeeds; returns stdout.
fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = openssl(dir, args);
    assert!(ok, "openssl {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn new_ca() -> (tempfile::TempDir, CertificateAuthority) {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
    (dir, ca)
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, contents).unwrap();
    path
}

/// `openssl verify` with our CA, and any extra options; asserts "OK".
fn assert_verifies(dir: &Path, cert: &str, extra: &[&str]) {
    let mut args = vec!["verify", "-CAfile", "ca.pem"];
    args.extend_from_slice(extra);
    args.push(cert);
    let out = openssl_ok(dir, &args);
    assert_eq!(out.trim(), format!("{cert}: OK"), "{args:?}");
}

/// Makes a key and CSR with `openssl req`; returns the CSR PEM.
fn openssl_csr(dir: &Path, stem: &str, newkey: &[&str], subj: &str) -> String {
    let key = format!("{stem}.key");
    let csr = format!("{stem}.csr");
    let mut args = vec![
        "req", "-new", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subj,
    ];
    args.extend_from_slice(newkey);
    openssl_ok(dir, &args);
    fs::read_to_string(dir.join(&csr)).unwrap()
}

#[test]
fn our_csrs_pass_openssl_req_verify() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let key = generate_key(alg).unwrap();
        let csr = create_csr(&key.private_key_pem, "robot1").unwrap();
        write(dir.path(), "our.csr", &csr);
        write(dir.path(), "our.key", &key.private_key_pem);
        let (ok, out, err) = openssl(dir.path(), &["req", "-verify", "-noout", "-in", "our.csr"]);
        assert!(ok, "{alg}: {out}{err}");
        assert!(
            format!("{out}{err}").contains("verify OK"),
            "{alg}: {out}{err}"
        );
        let subject = openssl_ok(dir.path(), &["req", "-noout", "-subject", "-in", "our.csr"]);
        assert_eq!(subject.trim(), "subject=CN = robot1");
        // OpenSSL reads our PKCS#8 key and finds the CSR's public key in it.
        let from_key = openssl_ok(dir.path(), &["pkey", "-in", "our.key", "-pubout"]);
        let from_csr = openssl_ok(dir.path(), &["req", "-pubkey", "-noout", "-in", "our.csr"]);
        assert_eq!(from_key, from_csr, "{alg}");
        assert_eq!(from_key, key.public_key_pem, "{alg}");
        if alg == KeyAlgorithm::Rsa2048 {
            let text = openssl_ok(dir.path(), &["pkey", "-in", "our.key", "-noout", "-text"]);
            assert!(text.contains("Private-Key: (2048 bit"), "{text}");
            let check = openssl_ok(dir.path(), &["rsa", "-in", "our.key", "-check", "-noout"]);
            assert!(check.contains("RSA key ok"), "{check}");
        }
    }
}

#[test]
fn openssl_rsa_and_ec_csrs_are_signed_and_verify() {
    if !have_openssl() {
        return;
    }
    let (dir, ca) = new_ca();
    let d = dir.path();
    let cases: [(&str, &[&str]); 3] = [
        ("rsa", &["-newkey", "rsa:2048"]),
        (
            "p256",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ),
        (
            "p384",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        ),
    ];
    for (stem, newkey) in cases {
        let csr = openssl_csr(d, stem, newkey, "/CN=x");
        let issued = ca.sign_csr(&csr, 365).unwrap();
        let cert = format!("{stem}.pem");
        write(d, &cert, &issued.pem);

        assert_verifies(d, &cert, &[]);
        assert_verifies(d, &cert, &["-purpose", "sslclient"]);

        // The certificate carries the CSR's own key ...
        let cert_key = openssl_ok(d, &["x509", "-pubkey", "-noout", "-in", &cert]);
        let csr_key = openssl_ok(
            d,
            &["req", "-pubkey", "-noout", "-in", &format!("{stem}.csr")],
        );
        assert_eq!(cert_key, csr_key, "{stem}");
        // ... which is the private key openssl wrote.
        let key_pem = fs::read_to_string(d.join(format!("{stem}.key"))).unwrap();
        let info = parse_certificate_pem(&issued.pem).unwrap();
        assert_eq!(
            info.public_key_der,
            private_key_public_key_der(&key_pem).unwrap()
        );
        assert_eq!(info.public_key_der, csr_public_key_der(&csr).unwrap());

        let text = openssl_ok(d, &["x509", "-noout", "-text", "-in", &cert]);
        assert!(
            text.contains("TLS Web Client Authentication"),
            "{stem}: {text}"
        );
        assert!(!text.contains("TLS Web Server Authentication"), "{stem}");
        assert!(text.contains("CA:FALSE"), "{stem}: {text}");
        assert!(text.contains("X509v3 Authority Key Identifier"), "{stem}");
        assert_eq!(
            text.contains("Key Encipherment"),
            stem == "rsa",
            "{stem}: keyEncipherment is for RSA only"
        );
        let subject = openssl_ok(d, &["x509", "-noout", "-subject", "-in", &cert]);
        assert_eq!(subject.trim(), "subject=CN = x");

        // certificateId = SHA-256 of the DER, as sha256sum computes it.
        let sum = sh(
            d,
            &format!("{OPENSSL} x509 -in {cert} -outform der | sha256sum"),
        );
        let sum = sum.split_whitespace().next().unwrap();
        assert_eq!(issued.id, sum, "{stem}");
        assert_eq!(certificate_id(&issued.der), sum);
        assert_eq!(info.id, sum);

        // Our serial is what openssl reads (it prints upper-case hex).
        let serial = openssl_ok(d, &["x509", "-noout", "-serial", "-in", &cert]);
        let serial = serial
            .trim()
            .trim_start_matches("serial=")
            .to_ascii_lowercase();
        assert_eq!(
            serial.trim_start_matches('0'),
            info.serial_hex.trim_start_matches('0')
        );
    }
}

#[test]
fn a_many_field_subject_is_copied_and_read_back_as_policy_variables() {
    if !have_openssl() {
        return;
    }
    let (dir, ca) = new_ca();
    let d = dir.path();
    let subj = "/C=US/ST=WA/L=Seattle/O=Acme Robots/OU=Lab/CN=robot1/serialNumber=42";
    // Requested extensions are ignored, as AWS does: the certificate is a
    // client certificate whatever the CSR asks for.
    let csr = openssl_csr(
        d,
        "multi",
        &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-addext",
            "subjectAltName=DNS:robot1.example",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ],
        subj,
    );
    let requested = openssl_ok(d, &["req", "-noout", "-text", "-in", "multi.csr"]);
    assert!(requested.contains("DNS:robot1.example"), "{requested}");
    let issued = ca.sign_csr(&csr, 30).unwrap();
    write(d, "multi.pem", &issued.pem);
    let want = openssl_ok(
        d,
        &[
            "req",
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
            "-in",
            "multi.csr",
        ],
    );
    let got = openssl_ok(
        d,
        &[
            "x509",
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
            "-in",
            "multi.pem",
        ],
    );
    assert_eq!(got, want);

    let text = openssl_ok(d, &["x509", "-noout", "-text", "-in", "multi.pem"]);
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(!text.contains("TLS Web Server Authentication"), "{text}");
    assert!(!text.contains("robot1.example"), "{text}");

    let info = parse_certificate_pem(&issued.pem).unwrap();
    let fields: Vec<(&str, &str)> = info
        .subject_fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("Country", "US"),
            ("State", "WA"),
            ("Locality", "Seattle"),
            ("Organization", "Acme Robots"),
            ("OrganizationalUnit", "Lab"),
            ("CommonName", "robot1"),
            ("SerialNumber", "42"),
        ]
    );
    assert_eq!(info.common_name.as_deref(), Some("robot1"));
    assert_eq!(
        info.issuer_fields,
        [("CommonName".to_string(), "gopigo-iot local CA".to_string())]
    );
}

#[test]
fn server_certificate_verifies_as_sslserver_with_its_names() {
    if !have_openssl() {
        return;
    }
    let (dir, ca) = new_ca();
    let d = dir.path();
    let hosts = ["localhost", "127.0.0.1", "::1", "broker.local"].map(String::from);
    let (cert_pem, key_pem) = ca.issue_server_certificate(&hosts, 30).unwrap();
    write(d, "server.pem", &cert_pem);
    write(d, "server.key", &key_pem);

    assert_verifies(d, "server.pem", &["-purpose", "sslserver"]);
    assert_verifies(
        d,
        "server.pem",
        &["-purpose", "sslserver", "-verify_hostname", "localhost"],
    );
    assert_verifies(
        d,
        "server.pem",
        &["-purpose", "sslserver", "-verify_hostname", "broker.local"],
    );
    assert_verifies(
        d,
        "server.pem",
        &["-purpose", "sslserver", "-verify_ip", "127.0.0.1"],
    );
    assert_verifies(
        d,
        "server.pem",
        &["-purpose", "sslserver", "-verify_ip", "::1"],
    );
    // A name it was not issued for fails.
    let (ok, out, err) = openssl(
        d,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-verify_hostname",
            "evil.example",
            "server.pem",
        ],
    );
    assert!(!ok || !out.contains(": OK"), "{out}{err}");

    let san = openssl_ok(
        d,
        &[
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            "server.pem",
        ],
    );
    for want in [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
        "DNS:broker.local",
    ] {
        assert!(san.contains(want), "{want} missing from {san}");
    }
    let text = openssl_ok(d, &["x509", "-noout", "-text", "-in", "server.pem"]);
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    // The key returned belongs to the certificate.
    let cert_key = openssl_ok(d, &["x509", "-pubkey", "-noout", "-in", "server.pem"]);
    let key_pub = openssl_ok(d, &["pkey", "-pubout", "-in", "server.key"]);
    assert_eq!(cert_key, key_pub);
}

#[test]
fn keys_and_certificate_verify_and_match() {
    if !have_openssl() {
        return;
    }
    let (dir, ca) = new_ca();
    let d = dir.path();
    let (issued, key) = ca.create_keys_and_certificate("robot9", 30).unwrap();
    write(d, "kc.pem", &issued.pem);
    write(d, "kc.key", &key.private_key_pem);
    assert_verifies(d, "kc.pem", &["-purpose", "sslclient"]);
    let cert_key = openssl_ok(d, &["x509", "-pubkey", "-noout", "-in", "kc.pem"]);
    assert_eq!(
        cert_key,
        openssl_ok(d, &["pkey", "-pubout", "-in", "kc.key"])
    );
    assert_eq!(cert_key, key.public_key_pem);
    let text = openssl_ok(d, &["x509", "-noout", "-text", "-in", "kc.pem"]);
    assert!(text.contains("Public-Key: (2048 bit)"), "{text}");
    assert!(text.contains("Key Encipherment"), "{text}");
}

#[test]
fn weak_or_broken_csrs_are_refused_clearly() {
    if !have_openssl() {
        return;
    }
    let (dir, ca) = new_ca();
    let d = dir.path();

    let weak = openssl_csr(d, "weak", &["-newkey", "rsa:1024"], "/CN=weak");
    let err = ca.sign_csr(&weak, 30).unwrap_err();
    assert!(matches!(err, PkiError::RsaKeyTooSmall(1024)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "RSA key of 1024 bits: AWS IoT requires at least 2048; create a 2048-bit (or larger) key"
    );

    let p521 = openssl_csr(
        d,
        "p521",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
        "/CN=p521",
    );
    let err = ca.sign_csr(&p521, 30).unwrap_err();
    assert!(matches!(err, PkiError::UnsupportedKey(_)), "{err:?}");
    assert!(err.to_string().contains("P-521"), "{err}");

    let err = ca.sign_csr("this is not a CSR", 30).unwrap_err();
    assert!(
        err.to_string().starts_with("the CSR is not valid PEM: "),
        "{err}"
    );

    // A certificate where a CSR belongs.
    let err = ca.sign_csr(ca.cert_pem(), 30).unwrap_err();
    assert!(err.to_string().contains("found CERTIFICATE block"), "{err}");

    // PEM armour around bytes that are not a CSR.
    let garbage =
        "-----BEGIN CERTIFICATE REQUEST-----\nMIIBAAAAAAAA\n-----END CERTIFICATE REQUEST-----\n";
    let err = ca.sign_csr(garbage, 30).unwrap_err();
    assert!(matches!(err, PkiError::InvalidCsr(_)), "{err:?}");
}

#[test]
fn load_or_create_twice_is_the_same_ca_and_openssl_agrees() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = CertificateAuthority::load_or_create(d).unwrap();
    let bytes = fs::read(d.join("ca.pem")).unwrap();
    let second = CertificateAuthority::load_or_create(d).unwrap();
    assert_eq!(second.cert_der(), first.cert_der());
    assert_eq!(
        fs::read(d.join("ca.pem")).unwrap(),
        bytes,
        "ca.pem rewritten"
    );
    assert_eq!(second.cert_path(), d.join("ca.pem"));

    let text = openssl_ok(d, &["x509", "-noout", "-text", "-in", "ca.pem"]);
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("Certificate Sign"), "{text}");
    assert!(text.contains("Subject: CN = gopigo-iot local CA"), "{text}");
    assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
    assert_verifies(d, "ca.pem", &[]);
    // The key on disk is the CA's key, and openssl can read it.
    let cert_key = openssl_ok(d, &["x509", "-pubkey", "-noout", "-in", "ca.pem"]);
    assert_eq!(
        cert_key,
        openssl_ok(d, &["pkey", "-pubout", "-in", "ca.key"])
    );

    // Certificates signed after the reload chain to the same ca.pem.
    let csr = openssl_csr(
        d,
        "dev",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=dev",
    );
    write(d, "dev.pem", &second.sign_csr(&csr, 30).unwrap().pem);
    assert_verifies(d, "dev.pem", &[]);
}

#[cfg(unix)]
#[test]
fn written_key_is_0600_and_openssl_reads_key_and_csr() {
    use std::os::unix::fs::PermissionsExt;
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, csr) = write_key_and_csr(d, "robot1", KeyAlgorithm::EcdsaP256, "robot1").unwrap();
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(&csr).unwrap().permissions().mode() & 0o777,
        0o644
    );

    let (ok, out, err) = openssl(d, &["req", "-verify", "-noout", "-in", "robot1.csr"]);
    assert!(
        ok && format!("{out}{err}").contains("verify OK"),
        "{out}{err}"
    );
    let from_key = openssl_ok(d, &["pkey", "-pubout", "-in", "robot1.key"]);
    let from_csr = openssl_ok(d, &["req", "-pubkey", "-noout", "-in", "robot1.csr"]);
    assert_eq!(from_key, from_csr);

    // Signed by our CA, the cert matches the key on disk, as openssl sees it.
    let ca = CertificateAuthority::load_or_create(&d.join("ca")).unwrap();
    fs::copy(ca.cert_path(), d.join("ca.pem")).unwrap();
    let issued = ca.sign_csr(&fs::read_to_string(&csr).unwrap(), 30).unwrap();
    write(d, "robot1.pem", &issued.pem);
    assert_verifies(d, "robot1.pem", &["-purpose", "sslclient"]);
    assert_eq!(
        openssl_ok(d, &["x509", "-pubkey", "-noout", "-in", "robot1.pem"]),
        from_key
    );
}
