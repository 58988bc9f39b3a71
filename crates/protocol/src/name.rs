//! AWS IoT's naming rules, checked by every side that accepts a name: the
//! agent's config, the controller, provisioning, the local core and the
//! shadow service. A thing name is also a topic segment, so the rule keeps
//! `/`, `+` and `#` out of every topic that names a thing.
//!
//! Each caller keeps its own error type and message (a config key, an API
//! field, a CLI flag); only the rule lives here.

/// Longest thing name in bytes (AWS IoT quotas: "Thing name size").
pub const MAX_THING_NAME_BYTES: usize = 128;
/// Longest shadow name in bytes (iot-data API: `shadowName` 1..=64).
pub const MAX_SHADOW_NAME_BYTES: usize = 64;

/// Thing names: 1 to 128 bytes of `[a-zA-Z0-9:_-]` (CreateThing `thingName`).
pub fn valid_thing_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_THING_NAME_BYTES
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

/// Shadow names: 1 to 64 bytes of `[$a-zA-Z0-9:_-]` (iot-data `shadowName`;
/// `$` begins the names AWS reserves, such as `$package`).
pub fn valid_shadow_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SHADOW_NAME_BYTES
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'$' | b':' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thing_names_follow_create_thing() {
        for ok in ["r1", "GoPiGo3:robot_1-a", &"a".repeat(128)] {
            assert!(valid_thing_name(ok), "{ok}");
        }
        for bad in [
            "",
            &"a".repeat(129),
            "has space",
            "$dollar",
            "slash/x",
            "wild+",
            "hash#",
            "dot.name",
            "é",
        ] {
            assert!(!valid_thing_name(bad), "{bad}");
        }
    }

    #[test]
    fn shadow_names_allow_the_reserved_dollar() {
        for ok in ["camera", "$package", &"s".repeat(64)] {
            assert!(valid_shadow_name(ok), "{ok}");
        }
        for bad in ["", &"s".repeat(65), "bad~name", "a/b", "a+"] {
            assert!(!valid_shadow_name(bad), "{bad}");
        }
    }
}
