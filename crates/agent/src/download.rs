//! A small HTTP(S) GET that streams a body to a file while hashing it,
//! refusing more bytes than expected: the update download. HTTPS is
//! verified against the web PKI roots (S3 presigned URLs and the like);
//! plain HTTP is for the local core, where the job's SHA-256 (delivered over
//! mutual TLS) is what makes the bytes trustworthy.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How long to wait for the connection and for each piece of the body.
const IDLE: Duration = Duration::from_secs(30);

fn tls() -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Downloads `url` into `dest` (created 0755), expecting exactly `size`
/// bytes; returns the lowercase hex SHA-256 of what was written.
pub async fn fetch(url: &str, dest: &Path, size: u64) -> Result<String, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("url '{url}': {e}"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("url '{url}' must be http:// or https://")),
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("url '{url}' has no host"))?
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::time::timeout(IDLE, TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| format!("no connection to {host}:{port} within {IDLE:?}"))?
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let req = http::Request::get(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header(
            http::header::HOST,
            uri.authority().map(|a| a.as_str()).unwrap_or(&host),
        )
        .header(
            http::header::USER_AGENT,
            format!("gopigo-agent/{}", crate::update::version()),
        )
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    if https {
        let name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("bad host name {host}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(tls()?)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {host}: {e}"))?;
        get_into(TokioIo::new(stream), req, dest, size).await
    } else {
        get_into(TokioIo::new(tcp), req, dest, size).await
    }
}

async fn get_into<T>(
    io: T,
    req: http::Request<Empty<bytes::Bytes>>,
    dest: &Path,
    size: u64,
) -> Result<String, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let driver = tokio::spawn(conn);
    let resp = tokio::time::timeout(IDLE, sender.send_request(req))
        .await
        .map_err(|_| format!("no answer within {IDLE:?}"))?
        .map_err(|e| format!("HTTP request: {e}"))?;
    if resp.status() != http::StatusCode::OK {
        driver.abort();
        return Err(format!("the server answered HTTP {}", resp.status()));
    }
    let out = write_body(resp.into_body(), dest, size).await;
    driver.abort();
    out
}

async fn write_body(
    mut body: hyper::body::Incoming,
    dest: &Path,
    size: u64,
) -> Result<String, String> {
    let io = |e: std::io::Error| format!("cannot write {}: {e}", dest.display());
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o755)
        .open(dest)
        .await
        .map_err(io)?;
    let mut hash = Sha256::new();
    let mut total: u64 = 0;
    loop {
        let frame = tokio::time::timeout(IDLE, body.frame())
            .await
            .map_err(|_| format!("the download stalled for {IDLE:?}"))?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| format!("the download broke off: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len() as u64;
        if total > size {
            return Err(format!(
                "the server sent more than the job's {size} bytes; download refused"
            ));
        }
        hash.update(&data);
        file.write_all(&data).await.map_err(io)?;
    }
    if total != size {
        return Err(format!(
            "the download has {total} bytes; the job says {size}"
        ));
    }
    file.sync_all().await.map_err(io)?;
    Ok(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `body` at `/f` on a loopback port; returns the URL.
    async fn serve(body: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/f", axum::routing::get(move || async move { body }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/f")
    }

    #[tokio::test]
    async fn a_body_is_written_and_hashed_and_more_bytes_than_promised_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("gopigo.new");
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let url = serve(data.clone()).await;
        let sha = fetch(&url, &dest, 5000).await.unwrap();
        assert_eq!(sha, crate::update::sha256_hex(&data));
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        // The attack: a server that sends more than the job says.
        let e = fetch(&url, &dest, 1000).await.unwrap_err();
        assert!(e.contains("more than the job's 1000 bytes"), "{e}");
        // Fewer bytes than promised.
        let e = fetch(&url, &dest, 6000).await.unwrap_err();
        assert!(e.contains("has 5000 bytes; the job says 6000"), "{e}");
        let e = fetch("ftp://127.0.0.1/f", &dest, 1).await.unwrap_err();
        assert!(e.contains("http:// or https://"), "{e}");
    }
}
