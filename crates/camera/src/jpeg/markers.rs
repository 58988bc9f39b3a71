//! Reading a JPEG's header without decoding it: its size, whether it is
//! complete, and the frame stamp (a COM segment, see the [module
//! overview](super)).

/// The prefix of the COM payload that [`stamp`] writes.
pub const STAMP_PREFIX: &str = "gopigo-camera ";

/// One marker segment of a JPEG header: `(marker, payload_start, payload_end)`.
type Segment = (u8, usize, usize);

/// Walks the header segments of a JPEG (up to and including SOS), calling
/// `visit` for each; stops early when `visit` returns `Some`.
fn walk_header<T>(jpeg: &[u8], mut visit: impl FnMut(Segment) -> Option<T>) -> Option<T> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut pos = 2;
    loop {
        // Skip fill bytes.
        while pos < jpeg.len() && jpeg[pos] == 0xFF && jpeg.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        if pos + 4 > jpeg.len() || jpeg[pos] != 0xFF {
            return None;
        }
        let marker = jpeg[pos + 1];
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            pos += 2;
            continue;
        }
        if marker == 0xD9 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        if len < 2 || pos + 2 + len > jpeg.len() {
            return None;
        }
        if let Some(found) = visit((marker, pos + 4, pos + 2 + len)) {
            return Some(found);
        }
        if marker == 0xDA {
            return None;
        }
        pos += 2 + len;
    }
}

/// Width and height from the first SOFn segment, without decoding.
pub fn jpeg_dimensions(jpeg: &[u8]) -> Option<(u32, u32)> {
    walk_header(jpeg, |(marker, start, end)| {
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof && end - start >= 5 {
            let h = u16::from_be_bytes([jpeg[start + 1], jpeg[start + 2]]);
            let w = u16::from_be_bytes([jpeg[start + 3], jpeg[start + 4]]);
            Some((u32::from(w), u32::from(h)))
        } else {
            None
        }
    })
}

/// Whether JPEG bytes end their last scan with an end-of-image marker
/// (an `FF D9` before the last SOS, as in an embedded thumbnail, does not
/// count).
pub fn is_complete(jpeg: &[u8]) -> bool {
    let Some(sos) = jpeg.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    jpeg[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

/// The sequence number and capture time a frame was stamped with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Frame sequence number from its source.
    pub seq: u64,
    /// Capture time, unix milliseconds.
    pub captured_at_ms: u64,
}

/// Returns a copy of `jpeg` with a stamp COM segment inserted after SOI
/// (after APP0 when that comes first, so JFIF files stay JFIF). Bytes that
/// do not start with SOI are returned unchanged.
pub fn stamp(jpeg: &[u8], stamp: Stamp) -> Vec<u8> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return jpeg.to_vec();
    }
    let mut at = 2;
    if jpeg.len() >= 6 && jpeg[2] == 0xFF && jpeg[3] == 0xE0 {
        let len = usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
        if 4 + len <= jpeg.len() {
            at = 4 + len;
        }
    }
    let text = format!(
        "{STAMP_PREFIX}seq={} captured_at_ms={}",
        stamp.seq, stamp.captured_at_ms
    );
    let seg_len = (text.len() + 2) as u16;
    let mut out = Vec::with_capacity(jpeg.len() + text.len() + 4);
    out.extend_from_slice(&jpeg[..at]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&seg_len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&jpeg[at..]);
    out
}

/// Reads the stamp written by [`stamp`], if the JPEG has one.
pub fn read_stamp(jpeg: &[u8]) -> Option<Stamp> {
    walk_header(jpeg, |(marker, start, end)| {
        if marker != 0xFE {
            return None;
        }
        parse_stamp_text(std::str::from_utf8(&jpeg[start..end]).ok()?)
    })
}

fn parse_stamp_text(text: &str) -> Option<Stamp> {
    let rest = text.strip_prefix(STAMP_PREFIX)?;
    let (mut seq, mut at) = (None, None);
    for field in rest.split_ascii_whitespace() {
        match field.split_once('=') {
            Some(("seq", v)) => seq = v.parse().ok(),
            Some(("captured_at_ms", v)) => at = v.parse().ok(),
            _ => {}
        }
    }
    Some(Stamp {
        seq: seq?,
        captured_at_ms: at?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_text_parsing() {
        let cases: &[(&str, Option<(u64, u64)>)] = &[
            ("gopigo-camera seq=1 captured_at_ms=2", Some((1, 2))),
            ("gopigo-camera captured_at_ms=2 seq=1", Some((1, 2))),
            ("gopigo-camera seq=1", None),
            ("other seq=1 captured_at_ms=2", None),
            ("gopigo-camera seq=x captured_at_ms=2", None),
        ];
        for (text, want) in cases {
            let got = parse_stamp_text(text).map(|s| (s.seq, s.captured_at_ms));
            assert_eq!(got, *want, "{text}");
        }
    }

    #[test]
    fn completeness() {
        let cases: [(&[u8], bool); 5] = [
            (&[0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 0xFF, 0xD9], true),
            (&[0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 0xFF, 0xD9, 0, 0], true), // trailing padding
            (&[0xFF, 0xD8, 0xFF, 0xDA, 1, 2], false),
            (&[0xFF, 0xD8, 0xFF, 0xD9, 0xFF, 0xDA, 1], false), // thumbnail EOI before the scan
            (&[0xFF, 0xD8], false),
        ];
        for (b, want) in cases {
            assert_eq!(is_complete(b), want, "{b:x?}");
        }
    }
}
