//! The agent's version, carried inside the binary as a marked, fixed-size
//! field, so that `gopigo update` reads the version of a binary file without
//! running it (it may be built for another CPU), and the agent reports the
//! version of the very bytes it runs from.

/// Size of [`AGENT_VERSION_MARK`]: the marker, then a NUL-padded version.
pub const MARK_LEN: usize = 96;
const MARK_PREFIX: &[u8] = b"gopigo-agent-version=";
/// Length of the marker before the version field.
pub const MARK_PREFIX_LEN: usize = MARK_PREFIX.len();

/// `gopigo-agent-version=` and this build's version, padded with NULs. It
/// is in the binary exactly once; a build may be relabelled by rewriting
/// the field in place (the update tests do).
pub static AGENT_VERSION_MARK: [u8; MARK_LEN] = mark(env!("CARGO_PKG_VERSION").as_bytes());

const fn mark(version: &[u8]) -> [u8; MARK_LEN] {
    let mut out = [0u8; MARK_LEN];
    let mut i = 0;
    while i < MARK_PREFIX_LEN {
        out[i] = MARK_PREFIX[i];
        i += 1;
    }
    let mut j = 0;
    while j < version.len() && i < MARK_LEN - 1 {
        out[i] = version[j];
        i += 1;
        j += 1;
    }
    out
}

/// The version in a mark's field: printable ASCII up to the first NUL.
fn field(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    let v = &bytes[..end];
    (!v.is_empty() && v.len() < MARK_LEN && v.iter().all(|b| b.is_ascii_graphic()))
        .then(|| String::from_utf8_lossy(v).into_owned())
}

/// The version this running binary carries (read through `black_box`, so
/// the compiler cannot fold the field into a constant and a rewritten
/// field is what is reported).
pub fn agent_version() -> String {
    let m: &[u8; MARK_LEN] = std::hint::black_box(&AGENT_VERSION_MARK);
    field(&m[MARK_PREFIX_LEN..]).unwrap_or_else(|| "unknown".to_string())
}

/// The version in a binary file's bytes, if it is a `gopigo` build.
pub fn agent_version_in(binary: &[u8]) -> Option<String> {
    let m: &[u8; MARK_LEN] = std::hint::black_box(&AGENT_VERSION_MARK);
    let prefix = &m[..MARK_PREFIX_LEN];
    let at = binary.windows(MARK_PREFIX_LEN).position(|w| w == prefix)?;
    let start = at + MARK_PREFIX_LEN;
    let end = (at + MARK_LEN).min(binary.len());
    field(&binary[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_carries_the_crate_version_and_is_found_in_bytes() {
        assert_eq!(agent_version(), env!("CARGO_PKG_VERSION"));
        let mut bin = b"\x7fELF....".to_vec();
        bin.extend_from_slice(&AGENT_VERSION_MARK);
        bin.extend_from_slice(b"tail");
        assert_eq!(
            agent_version_in(&bin).as_deref(),
            Some(env!("CARGO_PKG_VERSION"))
        );
        // A relabelled build.
        let at = MARK_PREFIX_LEN + 8;
        bin[at..at + 6].copy_from_slice(b"9.9.9\0");
        assert_eq!(agent_version_in(&bin).as_deref(), Some("9.9.9"));
        assert_eq!(agent_version_in(b"not a gopigo binary"), None);
    }
}
