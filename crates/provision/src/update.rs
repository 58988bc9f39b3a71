//! `gopigo update`: an AWS IoT job that updates agents over the air.
//!
//! The job document names the new build: `{"operation":
//! "gopigo-agent-update", "version", "url", "sha256", "size"}` (read by the
//! agent's `update` module). Against the local core the binary is staged in
//! the core's data dir under a random 256-bit token and served read-only at
//! `{control plane}/files/{token}`; against AWS the user passes the URL
//! (an S3 presigned URL, or any https URL).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use http::Method;
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::api::{encode, IotClient};
use crate::ProvisionError;

/// The `operation` the agent acts on.
pub const OPERATION: &str = "gopigo-agent-update";
/// Folder of staged files in the core's data dir (the core's `jobs::files`).
pub const FILES_DIR: &str = "files";
/// Largest binary staged or announced (the core serves at most 512 MiB; the
/// agent's own default limit is 256 MiB).
pub const MAX_BINARY: u64 = 256 * 1024 * 1024;

/// A binary to roll out, read and measured.
#[derive(Debug, Clone)]
pub struct Build {
    /// The whole binary, as staged for the core to serve.
    pub bytes: Vec<u8>,
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// The version it carries (or the one given).
    pub version: String,
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ProvisionError + 'a {
    move |source| ProvisionError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Reads `path`; the version is `version`, or the one marked in the binary.
pub fn read_build(path: &Path, version: Option<&str>) -> Result<Build, ProvisionError> {
    let len = std::fs::metadata(path).map_err(io_err("read", path))?.len();
    if len > MAX_BINARY || len == 0 {
        return Err(ProvisionError::Invalid(format!(
            "{} is {len} bytes; an agent binary is 1 to {MAX_BINARY} bytes",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(io_err("read", path))?;
    let version = match version {
        Some(v) => v.to_string(),
        None => gopigo_protocol::agent_version_in(&bytes).ok_or_else(|| {
            ProvisionError::Invalid(format!(
                "{} carries no gopigo agent version: is it a gopigo binary? Pass --version to name it",
                path.display()
            ))
        })?,
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(Build {
        bytes,
        sha256,
        version,
    })
}

/// The job document for `build` served at `url`.
pub fn job_document(build: &Build, url: &str) -> Value {
    json!({
        "operation": OPERATION,
        "version": build.version,
        "url": url,
        "sha256": build.sha256,
        "size": build.bytes.len(),
    })
}

/// Stages `build` in the core's data dir under a new random token (file
/// mode 0600, folder 0700); returns the token.
pub fn stage_local(data_dir: &Path, build: &Build) -> Result<String, ProvisionError> {
    let dir = data_dir.join(FILES_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io_err("create", &dir))?;
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let path: PathBuf = dir.join(&token);
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err("create", &path))?;
    f.write_all(&build.bytes).map_err(io_err("write", &path))?;
    f.sync_all().map_err(io_err("write", &path))?;
    Ok(token)
}

async fn arn_of(
    client: &IotClient,
    op: &'static str,
    path: String,
    key: &str,
) -> Result<String, ProvisionError> {
    let v = client
        .call(op, Method::GET, &path, &[], &[], None)
        .await?
        .map_err(ProvisionError::Api)?;
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ProvisionError::Invalid(format!("{op} returned no {key}")))
}

/// The ARN of a thing (DescribeThing).
pub async fn thing_arn(client: &IotClient, thing: &str) -> Result<String, ProvisionError> {
    arn_of(
        client,
        "DescribeThing",
        format!("/things/{}", encode(thing)),
        "thingArn",
    )
    .await
}

/// The ARN of a thing group (DescribeThingGroup).
pub async fn group_arn(client: &IotClient, group: &str) -> Result<String, ProvisionError> {
    arn_of(
        client,
        "DescribeThingGroup",
        format!("/thing-groups/{}", encode(group)),
        "thingGroupArn",
    )
    .await
}

/// CreateJob with `document` for `targets`; returns the job ARN.
pub async fn create_job(
    client: &IotClient,
    job_id: &str,
    targets: &[String],
    document: &Value,
    description: &str,
) -> Result<String, ProvisionError> {
    let body = json!({
        "targets": targets,
        "document": document.to_string(),
        "description": description,
        "targetSelection": "SNAPSHOT",
    });
    let v = client
        .call(
            "CreateJob",
            Method::PUT,
            &format!("/jobs/{}", encode(job_id)),
            &[],
            &[],
            Some(body),
        )
        .await?
        .map_err(ProvisionError::Api)?;
    Ok(v.get("jobArn")
        .and_then(Value::as_str)
        .unwrap_or(job_id)
        .to_string())
}

/// A job id for `version`: `agent-update-{version}-{unix seconds}`, with
/// characters AWS does not take in job ids replaced by `_`.
pub fn default_job_id(version: &str, unix_secs: u64) -> String {
    let v: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    format!("agent-update-{v}-{unix_secs}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_is_measured_and_its_marked_version_read() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("gopigo");
        let mut bytes = b"\x7fELF".to_vec();
        bytes.extend_from_slice(&gopigo_protocol::version::AGENT_VERSION_MARK);
        std::fs::write(&bin, &bytes).unwrap();
        let b = read_build(&bin, None).unwrap();
        assert_eq!(b.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(b.sha256, hex::encode(Sha256::digest(&bytes)));
        let doc = job_document(&b, "http://127.0.0.1:1/files/x");
        assert_eq!(doc["size"], bytes.len());
        assert_eq!(doc["operation"], OPERATION);
        std::fs::write(&bin, b"#!/bin/sh\n").unwrap();
        let e = read_build(&bin, None).unwrap_err().to_string();
        assert!(e.contains("--version"), "{e}");
        assert_eq!(read_build(&bin, Some("7")).unwrap().version, "7");
    }

    #[test]
    fn staged_files_get_unguessable_private_names() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let b = Build {
            bytes: b"x".to_vec(),
            sha256: String::new(),
            version: "1".into(),
        };
        let a = stage_local(t.path(), &b).unwrap();
        let c = stage_local(t.path(), &b).unwrap();
        assert_ne!(a, c);
        assert_eq!(a.len(), 64);
        let mode = std::fs::metadata(t.path().join(FILES_DIR).join(&a))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn job_ids_are_valid() {
        assert_eq!(default_job_id("0.1.0+e2e", 5), "agent-update-0_1_0_e2e-5");
    }
}
