//! The core's own access key (made on first start, kept in the store) and the
//! aws CLI / boto3 profile files that use it.
//!
//! The profile lives in the data dir, not in `~/.aws`, so nothing of the
//! user's is touched; one line (`gopigo core env`) points the tools at it.

use std::path::Path;

use rand::distributions::{Alphanumeric, Distribution, Uniform};
use rand::Rng;

use crate::error::ApiError;
use crate::sigv4::AccessKey;
use crate::store::Store;

/// Name of the profile the core writes.
pub const PROFILE: &str = "gopigo-local";

/// A random 12-digit account id.
pub fn new_account_id() -> String {
    let mut rng = rand::thread_rng();
    let digits = Uniform::from(0..10u8);
    (0..12)
        .map(|i| {
            let d = digits.sample(&mut rng);
            // no leading zero, so it always reads as 12 digits
            char::from(b'0' + if i == 0 { d.max(1) } else { d })
        })
        .collect()
}

/// Loads the access key from the store, making one on first use.
pub fn load_or_create(store: &Store) -> Result<AccessKey, ApiError> {
    let id = store.meta_get_or_init("access_key_id", || {
        let tail: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .map(|b| char::from(b).to_ascii_uppercase())
            .take(16)
            .collect();
        format!("AKIA{tail}")
    })?;
    let secret = store.meta_get_or_init("secret_access_key", || {
        rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .map(char::from)
            .take(40)
            .collect()
    })?;
    Ok(AccessKey { id, secret })
}

/// Writes `aws/credentials` (0600) and `aws/config` in the data dir, with the
/// control-plane URL as the endpoint of both `iot` and `iot-data`.
pub fn write_profile(
    data_dir: &Path,
    key: &AccessKey,
    region: &str,
    endpoint_url: &str,
) -> std::io::Result<()> {
    let dir = data_dir.join("aws");
    std::fs::create_dir_all(&dir)?;
    let creds = format!(
        "[{PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.id, key.secret
    );
    write_private(&dir.join("credentials"), creds.as_bytes())?;
    let config = format!(
        "[profile {PROFILE}]\nregion = {region}\noutput = json\nservices = {PROFILE}\n\n\
         [services {PROFILE}]\niot =\n  endpoint_url = {endpoint_url}\n\
         iot_data_plane =\n  endpoint_url = {endpoint_url}\n"
    );
    std::fs::write(dir.join("config"), config)
}

/// The shell line that makes the aws CLI and boto3 use the profile.
pub fn env_line(data_dir: &Path) -> String {
    let dir = data_dir.join("aws");
    format!(
        "export AWS_CONFIG_FILE={} AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE={PROFILE}",
        shell_quote(&dir.join("config").display().to_string()),
        shell_quote(&dir.join("credentials").display().to_string()),
    )
}

fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_12_digits() {
        for _ in 0..50 {
            let a = new_account_id();
            assert_eq!(a.len(), 12);
            assert!(a.bytes().all(|b| b.is_ascii_digit()));
            assert_ne!(a.as_bytes()[0], b'0');
        }
    }

    #[test]
    fn quotes_paths_with_spaces() {
        assert_eq!(shell_quote("/a/b"), "/a/b");
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
    }
}
