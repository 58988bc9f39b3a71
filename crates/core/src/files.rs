//! File modes of the data dir. It holds the control plane's secret key (in
//! `core.db` and its WAL), the CA key and the aws CLI credentials, so only
//! its owner may read it: the dir is made 0700 and every secret file 0600
//! before anything is written. A data dir or secret file that others can
//! read is refused at start with the `chmod` that fixes it, as ssh refuses
//! a private key that others can read; nothing is changed behind the user's
//! back.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of the data dir.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every secret file in it.
pub const FILE_MODE: u32 = 0o600;

/// The SQLite databases the core creates, relative to the data dir. SQLite
/// gives their `-wal` and `-shm` files the database file's mode.
pub const DATABASES: [&str; 2] = ["core.db", "broker.db"];

/// Secret files that are not databases, relative to the data dir.
pub const OTHER_SECRETS: [&str; 2] = ["ca/ca.key", "aws/credentials"];

/// Why the data dir cannot be used.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum FilesError {
    /// Other users can read (or write) a path that holds secrets.
    #[error(
        "refusing to start: {path} has mode {mode:04o}, so other users on this machine can read the core's secrets; \
         fix it with `chmod {want:o} '{path}'`",
        path = .path.display()
    )]
    TooOpen {
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
        /// The mode it must have.
        want: u32,
    },
    /// The path cannot be created or inspected.
    #[error("cannot prepare {path}: {source}", path = .path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FilesError + '_ {
    move |source| FilesError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Every secret path under `dir`: databases with their WAL and SHM, the CA
/// key and the credentials.
pub fn secret_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for db in DATABASES {
        for suffix in ["", "-wal", "-shm"] {
            out.push(dir.join(format!("{db}{suffix}")));
        }
    }
    out.extend(OTHER_SECRETS.iter().map(|f| dir.join(f)));
    out
}

fn is_empty_dir(dir: &Path) -> Result<bool, FilesError> {
    Ok(std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .next()
        .is_none())
}

/// Refuses `path` when its group or others have any permission.
fn check_mode(path: &Path, want: u32) -> Result<(), FilesError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(FilesError::TooOpen {
            path: path.to_path_buf(),
            mode,
            want,
        });
    }
    Ok(())
}

/// Creates the data dir (0700) on first use, refuses one whose modes are
/// unsafe, and creates the databases 0600 before SQLite opens them. An
/// existing but empty dir (made with `mkdir`) is narrowed to 0700: no secret
/// has been in it yet.
pub fn prepare_data_dir(dir: &Path) -> Result<(), FilesError> {
    if !dir.exists() {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        DirBuilder::new()
            .mode(DIR_MODE)
            .create(dir)
            .map_err(io_err(dir))?;
    } else if is_empty_dir(dir)? {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
            .map_err(io_err(dir))?;
    }
    check_mode(dir, DIR_MODE)?;
    for f in secret_files(dir) {
        check_mode(&f, FILE_MODE)?;
    }
    for db in DATABASES {
        let path = dir.join(db);
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(io_err(&path))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_fresh_dir_is_private_and_databases_exist_0600() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b/core");
        prepare_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        for db in DATABASES {
            assert_eq!(mode(&dir.join(db)), 0o600);
        }
        // Twice is fine.
        prepare_data_dir(&dir).unwrap();
    }

    #[test]
    fn an_open_dir_or_file_is_refused_with_the_chmod_that_fixes_it() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("core");
        prepare_data_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = prepare_data_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("0755"), "{e}");
        assert!(e.contains(&format!("chmod 700 '{}'", dir.display())), "{e}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let db = dir.join("core.db");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = prepare_data_dir(&dir).unwrap_err().to_string();
        assert!(e.contains(&format!("chmod 600 '{}'", db.display())), "{e}");
        assert!(e.contains("0644"), "{e}");
    }

    #[test]
    fn an_empty_dir_made_with_mkdir_is_narrowed() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("fresh");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }
}
