//! Process limits the agent sets for itself at start.
//!
//! Viewers, the MQTT connection and the camera share one table of file
//! descriptors; the camera server caps its own sockets, and the agent
//! raises its soft open-file limit to the hard limit (systemd's
//! `LimitNOFILE=`), so that a busy camera never leaves the MQTT connection
//! without a descriptor to reconnect with.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// The open-file limit before and after [`raise_open_files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit found at start.
    pub before: u64,
    /// The soft limit now (the hard limit when raising worked).
    pub now: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit.
pub fn raise_open_files() -> Result<OpenFiles, nix::Error> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    let (now, _) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok(OpenFiles { before: soft, now })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let got = raise_open_files().unwrap();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((got.now, soft), (hard, hard));
        assert!(got.before <= got.now);
    }
}
