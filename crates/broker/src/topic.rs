//! Topic names and filters with AWS IoT Core's rules: validation against the
//! service limits, wildcard matching (where `a/#` does not match `a`), and the
//! keep-alive clamp. Pure functions, no I/O.

use std::time::Duration;

/// Most bytes in a topic name or filter.
pub const MAX_TOPIC_BYTES: usize = 256;
/// Most `/` in a topic name or filter, not counting a `$aws/rules/{rule}/` prefix.
pub const MAX_TOPIC_SLASHES: usize = 7;
/// Most bytes in a client id.
pub const MAX_CLIENT_ID_BYTES: usize = 128;
/// Most filters in one SUBSCRIBE.
pub const MAX_FILTERS_PER_SUBSCRIBE: usize = 8;

/// Why a topic name or filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Zero-length topic or filter.
    #[error("the topic is empty; give a topic such as `gopigo/robot1/telemetry`")]
    Empty,
    /// Longer than [`MAX_TOPIC_BYTES`].
    #[error("topic `{0}` is longer than 256 bytes (AWS IoT limit)")]
    TooLong(String),
    /// More than [`MAX_TOPIC_SLASHES`] slashes.
    #[error("topic `{0}` has more than 7 slashes (AWS IoT limit)")]
    TooDeep(String),
    /// `+` or `#` in a topic name, or misplaced in a filter.
    #[error("topic `{0}` has a misplaced wildcard (`+` must be a whole level, `#` the whole last level, and neither may appear in a topic name)")]
    Wildcard(String),
    /// A NUL character.
    #[error("topic `{0}` contains a NUL character")]
    Nul(String),
}

/// The part of a topic counted against the slash limit: the Basic Ingest
/// prefix `$aws/rules/{rule}/` is not counted.
fn counted_part(topic: &str) -> &str {
    if let Some(rest) = topic.strip_prefix("$aws/rules/") {
        match rest.find('/') {
            Some(i) => &rest[i + 1..],
            None => "",
        }
    } else {
        topic
    }
}

fn check_common(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > MAX_TOPIC_BYTES {
        return Err(TopicError::TooLong(topic.to_owned()));
    }
    if topic.contains('\0') {
        return Err(TopicError::Nul(topic.to_owned()));
    }
    if counted_part(topic).matches('/').count() > MAX_TOPIC_SLASHES {
        return Err(TopicError::TooDeep(topic.to_owned()));
    }
    Ok(())
}

/// Checks a PUBLISH topic name.
pub fn validate_topic(topic: &str) -> Result<(), TopicError> {
    check_common(topic)?;
    if topic.contains(['+', '#']) {
        return Err(TopicError::Wildcard(topic.to_owned()));
    }
    Ok(())
}

/// Checks a SUBSCRIBE topic filter.
pub fn validate_filter(filter: &str) -> Result<(), TopicError> {
    check_common(filter)?;
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    for (i, level) in levels.iter().enumerate() {
        let ok = match *level {
            "#" => i == last,
            "+" => true,
            l => !l.contains(['+', '#']),
        };
        if !ok {
            return Err(TopicError::Wildcard(filter.to_owned()));
        }
    }
    Ok(())
}

/// Whether `filter` matches `topic` the way AWS IoT Core does it: MQTT 3.1.1
/// matching, except that `a/#` needs at least one level below `a`. Filters
/// starting with a wildcard never match topics starting with `$`.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut levels = topic.split('/');
    for f in filter.split('/') {
        if f == "#" {
            return levels.next().is_some();
        }
        match levels.next() {
            Some(level) if f == "+" || f == level => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

/// The keep-alive AWS IoT applies for a requested one: 0 or over
/// `max` becomes `max`, under `min` becomes `min`.
pub fn clamp_keep_alive(requested_secs: u16, min: Duration, max: Duration) -> Duration {
    let requested = Duration::from_secs(u64::from(requested_secs));
    if requested.is_zero() || requested > max {
        max
    } else if requested < min {
        min
    } else {
        requested
    }
}

/// How long the broker waits for a packet before it drops the client: 1.5 ×
/// the effective keep-alive.
pub fn keep_alive_deadline(effective: Duration) -> Duration {
    effective + effective / 2
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn matching_table() {
        let cases = [
            ("a/#", "a", false),
            ("a/#", "a/b", true),
            ("a/#", "a/b/c", true),
            ("a/#", "a/", true),
            ("#", "a", true),
            ("#", "a/b", true),
            ("#", "$aws/things/x/shadow/get", false),
            ("+/b", "$aws/b", false),
            ("$aws/things/+/shadow/#", "$aws/things/r1/shadow/get", true),
            ("$aws/things/+/shadow/#", "$aws/things/r1/shadow", false),
            ("a/+", "a/b", true),
            ("a/+", "a/b/c", false),
            ("a/+", "a", false),
            ("a/+/c", "a/b/c", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
            ("a/b/c", "a/b", false),
            ("+", "a", true),
            ("+", "/a", false),
            ("+/+", "/a", true),
        ];
        for (filter, topic, want) in cases {
            assert_eq!(matches(filter, topic), want, "{filter} vs {topic}");
        }
    }

    #[test]
    fn topic_validation_table() {
        let long = "a".repeat(257);
        let cases: Vec<(&str, bool)> = vec![
            ("gopigo/r1/cmd", true),
            ("", false),
            ("a/+/b", false),
            ("a/#", false),
            ("a/b/c/d/e/f/g/h", true),    // 7 slashes
            ("a/b/c/d/e/f/g/h/i", false), // 8 slashes
            ("$aws/rules/myrule/a/b/c/d/e/f/g/h", true),
            ("$aws/rules/myrule/a/b/c/d/e/f/g/h/i", false),
            (&long, false),
            ("a\0b", false),
        ];
        for (topic, ok) in cases {
            assert_eq!(validate_topic(topic).is_ok(), ok, "{topic:?}");
        }
    }

    #[test]
    fn filter_validation_table() {
        let cases = [
            ("a/#", true),
            ("#", true),
            ("+", true),
            ("a/+/c", true),
            ("a/#/c", false),
            ("a/b#", false),
            ("a+/b", false),
            ("", false),
            ("a/b/c/d/e/f/g/+/#", false),
        ];
        for (filter, ok) in cases {
            assert_eq!(validate_filter(filter).is_ok(), ok, "{filter:?}");
        }
    }

    #[test]
    fn keep_alive_clamp_table() {
        let min = Duration::from_secs(30);
        let max = Duration::from_secs(1200);
        let cases = [
            (0u16, 1200u64),
            (5, 30),
            (30, 30),
            (60, 60),
            (1200, 1200),
            (1201, 1200),
            (u16::MAX, 1200),
        ];
        for (req, want) in cases {
            assert_eq!(
                clamp_keep_alive(req, min, max),
                Duration::from_secs(want),
                "{req}"
            );
        }
        assert_eq!(
            keep_alive_deadline(Duration::from_secs(60)),
            Duration::from_secs(90)
        );
    }
}
