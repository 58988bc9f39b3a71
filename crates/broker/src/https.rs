//! HTTPS publish (placeholder).

/// Serves HTTPS publish (not yet implemented).
pub async fn serve_https_publish() {}
