//! Read-only downloads of staged files (agent binaries for over-the-air
//! updates) at `GET /files/{token}` on the control-plane listener.
//!
//! Threat model: whoever reaches the control-plane port (loopback unless
//! `--host` says otherwise) may ask. The only credential is the file's
//! token: 32 random bytes (64 hex digits) made by `gopigo update` when it
//! staged the file in `<data-dir>/files/`, so files cannot be listed or
//! guessed. Nothing is signed (the robot has no AWS key); a file's integrity
//! comes from the SHA-256 in the job document, which reaches the robot over
//! mutual TLS and which the robot checks before using a byte. Bounds: only
//! names of exactly 64 hex digits are looked up (no paths), files over
//! [`MAX_FILE`] are not served, and the control plane's connection cap and
//! header timeouts apply.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{header, StatusCode};
use tokio::io::AsyncReadExt;

/// Folder of staged files, relative to the data dir.
pub const FILES_DIR: &str = "files";

/// Largest file served (an agent build is some tens of MB).
pub const MAX_FILE: u64 = 512 * 1024 * 1024;

/// Bytes read per chunk of the response.
const CHUNK: usize = 64 * 1024;

/// Whether `token` has the shape of a staged file's name.
pub fn valid_token(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The download route over the files in `dir` (no SigV4: the token is the
/// credential, see the module notes).
pub fn router(dir: PathBuf) -> Router {
    Router::new()
        .route("/files/{token}", get(download))
        .with_state(dir)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "no such file: the URL's token is wrong, or the file was removed from the core's data dir\n",
    )
        .into_response()
}

async fn download(State(dir): State<PathBuf>, Path(token): Path<String>) -> Response {
    if !valid_token(&token) {
        return not_found();
    }
    let path = dir.join(&token);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return not_found(),
    };
    let len = match file.metadata().await {
        Ok(m) if m.is_file() => m.len(),
        _ => return not_found(),
    };
    if len > MAX_FILE {
        tracing::warn!(file = %path.display(), len, "staged file too large to serve");
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the file is {len} bytes; the core serves at most {MAX_FILE}\n"),
        )
            .into_response();
    }
    let stream = futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn get(app: &Router, uri: &str) -> (StatusCode, Vec<u8>) {
        let req = http::Request::get(uri).body(Body::empty()).unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body.to_vec())
    }

    #[tokio::test]
    async fn serves_a_staged_file_by_token_and_nothing_else() {
        let t = tempfile::tempdir().unwrap();
        let token = "ab".repeat(32);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(t.path().join(&token), &data).unwrap();
        std::fs::write(t.path().join("secret"), b"no").unwrap();
        let app = router(t.path().to_path_buf());
        assert_eq!(
            get(&app, &format!("/files/{token}")).await,
            (StatusCode::OK, data)
        );
        for bad in [
            "/files/secret".to_string(),
            format!("/files/{}", "cd".repeat(32)),
            format!("/files/{}", "AB".repeat(32)),
            "/files/..%2Fcore.db".to_string(),
        ] {
            assert_eq!(get(&app, &bad).await.0, StatusCode::NOT_FOUND, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_file_over_the_cap_is_not_served() {
        let t = tempfile::tempdir().unwrap();
        let token = "ef".repeat(32);
        // Sparse: no disk is used.
        let f = std::fs::File::create(t.path().join(&token)).unwrap();
        f.set_len(MAX_FILE + 1).unwrap();
        let app = router(t.path().to_path_buf());
        let (status, body) = get(&app, &format!("/files/{token}")).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(String::from_utf8_lossy(&body).contains("at most"));
    }
}
