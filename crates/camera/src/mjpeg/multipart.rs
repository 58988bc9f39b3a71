//! A pure, incremental parser for `multipart/x-mixed-replace` bodies: feed
//! it bytes as they arrive, take complete parts out. No I/O.
//!
//! Robust to what real MJPEG servers send: parts with or without
//! `Content-Length` (without, the body ends at the next boundary line),
//! LF-only line ends, junk or extra blank lines between parts, and a
//! boundary parameter that already starts with `--` (some IP cameras
//! declare `boundary=--myboundary` and then delimit with `--myboundary`).
//!
//! The writing side is here too: [`part_head`] prints the head of one part
//! as this crate's server and the dashboard's proxy send it, with the
//! frame's sequence number and capture time as part headers
//! ([`FRAME_SEQ_HEADER`], [`CAPTURED_AT_HEADER`]), which [`Part::frame_seq`]
//! and [`Part::captured_at_ms`] read back.

use bytes::{Buf, Bytes, BytesMut};

use crate::Frame;

/// Part header with the frame's sequence number from its source.
pub const FRAME_SEQ_HEADER: &str = "X-Frame-Seq";
/// Part header with the frame's capture time, unix milliseconds; a viewer
/// computes the frame's age from it.
pub const CAPTURED_AT_HEADER: &str = "X-Captured-At-Ms";

/// The head of one part carrying `frame`: the delimiter line, then
/// `Content-Type`, `Content-Length`, [`FRAME_SEQ_HEADER`] and
/// [`CAPTURED_AT_HEADER`], then the blank line. The JPEG and a CRLF follow.
/// (ffmpeg's mpjpeg demuxer, OpenCV through it, browsers and Motion
/// clients skip headers they do not know.)
pub fn part_head(boundary: &str, frame: &Frame) -> String {
    format!(
        "--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\
         {FRAME_SEQ_HEADER}: {}\r\n{CAPTURED_AT_HEADER}: {}\r\n\r\n",
        frame.jpeg.len(),
        frame.seq,
        frame.captured_at_ms
    )
}

/// Largest header block of one part.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Bytes scanned for a boundary line before giving up.
pub const MAX_BOUNDARY_SCAN: usize = 256 * 1024;

/// What can be wrong with a multipart stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum MultipartError {
    /// The Content-Type had no usable boundary parameter.
    #[error("Content-Type {content_type:?} has no boundary parameter")]
    MissingBoundary {
        /// The header as sent.
        content_type: String,
    },
    /// No boundary line was found where one was due.
    #[error("no boundary line \"--{boundary}\" in {scanned} bytes; the server's parts do not match the boundary it declared")]
    BoundaryNotFound {
        /// The declared boundary.
        boundary: String,
        /// Bytes looked at.
        scanned: usize,
    },
    /// A part's header block was unparsable.
    #[error("part {part}: bad headers: {reason}")]
    BadHeaders {
        /// 1-based part number.
        part: u64,
        /// The parser's explanation.
        reason: String,
    },
    /// A part's header block was longer than [`MAX_HEADER_BYTES`].
    #[error("part {part}: headers longer than {MAX_HEADER_BYTES} bytes")]
    HeadersTooLong {
        /// 1-based part number.
        part: u64,
    },
    /// A part's Content-Length was not a number.
    #[error("part {part}: Content-Length {value:?} is not a byte count")]
    BadContentLength {
        /// 1-based part number.
        part: u64,
        /// The header value.
        value: String,
    },
    /// A part was larger than the parser's limit.
    #[error("part {part}: larger than {limit} bytes")]
    PartTooLarge {
        /// 1-based part number.
        part: u64,
        limit: usize,
    },
    /// The stream ended inside a part.
    #[error("stream ended inside part {part} ({state}, {buffered} bytes buffered)")]
    Truncated {
        /// 1-based part number.
        part: u64,
        /// Where in the part ("in the headers", "in the body: 100 of 5000 bytes").
        state: String,
        /// Bytes received of the unfinished part.
        buffered: usize,
    },
}

/// One part of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Header names (as sent) and values.
    pub headers: Vec<(String, String)>,
    /// The bytes between the headers and the next boundary (a JPEG, in an
    /// MJPEG stream); `Content-Length` bytes when the part declared one.
    pub body: Bytes,
}

impl Part {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The part's Content-Type, if sent.
    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// The [`FRAME_SEQ_HEADER`] value, when sent and a number.
    pub fn frame_seq(&self) -> Option<u64> {
        self.header(FRAME_SEQ_HEADER)?.parse().ok()
    }

    /// The [`CAPTURED_AT_HEADER`] value, when sent and a number.
    pub fn captured_at_ms(&self) -> Option<u64> {
        self.header(CAPTURED_AT_HEADER)?.parse().ok()
    }
}

/// Extracts the boundary parameter of a `multipart/x-mixed-replace`
/// Content-Type (quoted or not). `None` when the type is not
/// multipart/x-mixed-replace or has no boundary.
pub fn boundary_from_content_type(content_type: &str) -> Option<String> {
    let mut pieces = content_type.split(';');
    let mime = pieces.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/x-mixed-replace") {
        return None;
    }
    for p in pieces {
        if let Some((k, v)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("boundary") {
                let v = v.trim().trim_matches('"');
                if !v.is_empty() {
                    return Some(v.to_string());
                }
            }
        }
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Looking for a boundary line.
    Seek,
    /// Reading the header block after a boundary line.
    Headers,
    /// Reading a body of known length.
    Body {
        headers: Vec<(String, String)>,
        len: usize,
    },
    /// Reading a body that ends at the next boundary line; `scanned` bytes
    /// are known to hold no boundary.
    Scan {
        headers: Vec<(String, String)>,
        scanned: usize,
    },
    /// The closing boundary was seen.
    End,
}

/// What the bytes after a delimiter candidate say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// A delimiter line; the next line starts at `line_end`.
    Delim { line_end: usize },
    /// The closing delimiter `--boundary--`.
    Closing,
    /// Something else that starts like the delimiter (`--BoundaryStringX`).
    NotDelim,
    /// Cannot tell until more bytes arrive.
    Unknown,
}

/// The incremental parser.
#[derive(Debug)]
pub struct MultipartParser {
    boundary: String,
    /// Accepted delimiters, e.g. `--BoundaryString` (and `BoundaryString`
    /// itself when the declared boundary starts with `--`).
    delims: Vec<Vec<u8>>,
    buf: BytesMut,
    state: State,
    /// Bytes discarded while seeking the current boundary.
    seek_scanned: usize,
    parts: u64,
    max_part: usize,
}

/// Finds `needle` in `hay` at a line start (offset 0 or after `\n`), from
/// `from` on.
fn find_line_start(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + needle.len() <= hay.len() {
        let rel = hay[i..].windows(needle.len()).position(|w| w == needle)?;
        let at = i + rel;
        if at == 0 || hay[at - 1] == b'\n' {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

impl MultipartParser {
    /// A parser for parts delimited by `--boundary` lines, each at most
    /// `max_part` bytes.
    pub fn new(boundary: &str, max_part: usize) -> Self {
        let mut delims = vec![format!("--{boundary}").into_bytes()];
        if boundary.starts_with("--") && boundary.len() > 2 {
            delims.push(boundary.as_bytes().to_vec());
        }
        Self {
            boundary: boundary.to_string(),
            delims,
            buf: BytesMut::new(),
            state: State::Seek,
            seek_scanned: 0,
            parts: 0,
            max_part,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Whether the closing boundary (`--boundary--`) was seen.
    pub fn is_finished(&self) -> bool {
        self.state == State::End
    }

    /// Number of parts returned so far.
    pub fn parts_seen(&self) -> u64 {
        self.parts
    }

    /// Bytes held but not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn find_delim(&self, from: usize) -> Option<(usize, usize)> {
        self.delims
            .iter()
            .filter_map(|d| find_line_start(&self.buf, d, from).map(|at| (at, d.len())))
            .min()
    }

    fn classify(&self, at: usize, dlen: usize) -> Verdict {
        let rest = &self.buf[at + dlen..];
        if rest.starts_with(b"--") {
            return Verdict::Closing;
        }
        if rest == b"-" {
            return Verdict::Unknown;
        }
        for (i, b) in rest.iter().enumerate() {
            match b {
                b'\n' => {
                    return Verdict::Delim {
                        line_end: at + dlen + i + 1,
                    }
                }
                b' ' | b'\t' | b'\r' => {}
                _ => return Verdict::NotDelim,
            }
            if i > 256 {
                return Verdict::NotDelim;
            }
        }
        Verdict::Unknown
    }

    /// The first delimiter at a line start from `from` on that is not
    /// merely a longer token: `(offset, delimiter length, verdict)`.
    fn next_delim(&self, mut from: usize) -> Option<(usize, usize, Verdict)> {
        loop {
            let (at, dlen) = self.find_delim(from)?;
            match self.classify(at, dlen) {
                Verdict::NotDelim => from = at + 1,
                v => return Some((at, dlen, v)),
            }
        }
    }

    /// Takes the next complete part: `Ok(None)` means more bytes are needed
    /// (or the stream is finished, see [`Self::is_finished`]).
    pub fn next_part(&mut self) -> Result<Option<Part>, MultipartError> {
        loop {
            // Each step leaves the state to resume from in `self.state`.
            let step = match std::mem::replace(&mut self.state, State::Seek) {
                State::End => {
                    self.state = State::End;
                    self.buf.clear();
                    Step::NeedMore
                }
                State::Seek => self.seek_boundary()?,
                State::Headers => self.read_headers()?,
                State::Body { headers, len } => self.read_body(headers, len),
                State::Scan { headers, scanned } => self.scan_body(headers, scanned)?,
            };
            match step {
                Step::Continue => {}
                Step::NeedMore => return Ok(None),
                Step::Part(part) => {
                    self.parts += 1;
                    return Ok(Some(part));
                }
            }
        }
    }

    /// Looks for the next boundary line, dropping what comes before it.
    fn seek_boundary(&mut self) -> Result<Step, MultipartError> {
        match self.next_delim(0) {
            None => {
                // Keep a tail that may hold the start of a delimiter.
                let keep = self.delims.iter().map(Vec::len).max().unwrap_or(0) + 1;
                if self.buf.len() > keep {
                    let drop = self.buf.len() - keep;
                    self.buf.advance(drop);
                    self.seek_scanned += drop;
                }
                if self.seek_scanned > MAX_BOUNDARY_SCAN {
                    return Err(MultipartError::BoundaryNotFound {
                        boundary: self.boundary.clone(),
                        scanned: self.seek_scanned,
                    });
                }
                Ok(Step::NeedMore)
            }
            Some((at, _, Verdict::Unknown)) => {
                self.buf.advance(at);
                self.seek_scanned += at;
                Ok(Step::NeedMore)
            }
            Some((_, _, Verdict::Closing)) => {
                self.state = State::End;
                Ok(Step::Continue)
            }
            Some((_, _, Verdict::Delim { line_end })) => {
                self.buf.advance(line_end);
                self.seek_scanned = 0;
                self.state = State::Headers;
                Ok(Step::Continue)
            }
            Some((_, _, Verdict::NotDelim)) => unreachable!("next_delim skips these"),
        }
    }

    /// Parses the header block after a boundary line; the body comes next,
    /// by `Content-Length` or up to the next boundary.
    fn read_headers(&mut self) -> Result<Step, MultipartError> {
        let part = self.parts + 1;
        let mut storage = [httparse::EMPTY_HEADER; 32];
        let (used, headers) = match httparse::parse_headers(&self.buf, &mut storage) {
            Ok(httparse::Status::Complete((used, hs))) => (used, owned_headers(hs)),
            Ok(httparse::Status::Partial) => {
                if self.buf.len() > MAX_HEADER_BYTES {
                    return Err(MultipartError::HeadersTooLong { part });
                }
                self.state = State::Headers;
                return Ok(Step::NeedMore);
            }
            Err(e) => {
                return Err(MultipartError::BadHeaders {
                    part,
                    reason: e.to_string(),
                })
            }
        };
        self.buf.advance(used);
        self.state = match content_length(&headers, part)? {
            Some(len) if len > self.max_part => {
                return Err(MultipartError::PartTooLarge {
                    part,
                    limit: self.max_part,
                })
            }
            Some(len) => State::Body { headers, len },
            None => State::Scan {
                headers,
                scanned: 0,
            },
        };
        Ok(Step::Continue)
    }

    /// A body of known length. The CRLF after it and the next delimiter
    /// are consumed by [`Self::seek_boundary`].
    fn read_body(&mut self, headers: Vec<(String, String)>, len: usize) -> Step {
        if self.buf.len() < len {
            self.state = State::Body { headers, len };
            return Step::NeedMore;
        }
        let body = self.buf.split_to(len).freeze();
        Step::Part(Part { headers, body })
    }

    /// A body without `Content-Length`: it ends before the line break that
    /// precedes the next delimiter line.
    fn scan_body(
        &mut self,
        headers: Vec<(String, String)>,
        scanned: usize,
    ) -> Result<Step, MultipartError> {
        match self.next_delim(scanned) {
            Some((at, _, Verdict::Delim { .. } | Verdict::Closing)) => {
                let mut end = at;
                if end > 0 && self.buf[end - 1] == b'\n' {
                    end -= 1;
                    if end > 0 && self.buf[end - 1] == b'\r' {
                        end -= 1;
                    }
                }
                let body = self.buf.split_to(end).freeze();
                Ok(Step::Part(Part { headers, body }))
            }
            Some((at, _, _)) => {
                // A delimiter line not yet complete: wait here.
                self.state = State::Scan {
                    headers,
                    scanned: at,
                };
                Ok(Step::NeedMore)
            }
            None => {
                if self.buf.len() > self.max_part {
                    return Err(MultipartError::PartTooLarge {
                        part: self.parts + 1,
                        limit: self.max_part,
                    });
                }
                let longest = self.delims.iter().map(Vec::len).max().unwrap_or(0);
                let scanned = self.buf.len().saturating_sub(longest);
                self.state = State::Scan { headers, scanned };
                Ok(Step::NeedMore)
            }
        }
    }

    /// Call when the byte stream has ended: an error if it ended inside a
    /// part. A stream that ends between parts, or after the closing
    /// boundary, ends cleanly.
    pub fn finish(&self) -> Result<(), MultipartError> {
        let part = self.parts + 1;
        let state = match &self.state {
            State::Seek if self.parts == 0 && self.seek_scanned + self.buf.len() > 0 => {
                return Err(MultipartError::BoundaryNotFound {
                    boundary: self.boundary.clone(),
                    scanned: self.seek_scanned + self.buf.len(),
                })
            }
            State::Seek | State::End => return Ok(()),
            State::Headers => "in the headers".to_string(),
            State::Body { len, .. } => {
                format!("in the body: {} of {len} bytes", self.buf.len())
            }
            State::Scan { .. } => {
                // A close-delimited last part without Content-Length has no
                // way to say it is complete; treat it as truncated.
                "in a body without Content-Length".to_string()
            }
        };
        Err(MultipartError::Truncated {
            part,
            state,
            buffered: self.buf.len(),
        })
    }
}

/// What one step of [`MultipartParser::next_part`] came to.
enum Step {
    /// The state changed; go on.
    Continue,
    /// More bytes are needed (or the stream is finished).
    NeedMore,
    /// A whole part.
    Part(Part),
}

fn owned_headers(hs: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    hs.iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect()
}

/// The part's `Content-Length`, if it sent one.
fn content_length(
    headers: &[(String, String)],
    part: u64,
) -> Result<Option<usize>, MultipartError> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| {
            v.parse::<usize>()
                .map_err(|_| MultipartError::BadContentLength {
                    part,
                    value: v.clone(),
                })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "BoundaryString";

    fn part(body: &[u8]) -> Vec<u8> {
        let mut v = format!(
            "--{B}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        v.extend_from_slice(body);
        v.extend_from_slice(b"\r\n");
        v
    }

    fn parse_all(chunks: &[&[u8]]) -> Result<(Vec<Part>, MultipartParser), MultipartError> {
        let mut p = MultipartParser::new(B, 1 << 20);
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c);
            while let Some(part) = p.next_part()? {
                out.push(part);
            }
        }
        Ok((out, p))
    }

    fn bodies(parts: &[Part]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.body.to_vec()).collect()
    }

    #[test]
    fn motion_stream_split_at_every_byte() {
        let bodies_in: Vec<&[u8]> = vec![b"\xFF\xD8first\r\n--Boundary\xFF\xD9", b"", b"third"];
        let mut stream = Vec::new();
        for b in &bodies_in {
            stream.extend(part(b));
        }
        let want: Vec<Vec<u8>> = bodies_in.iter().map(|b| b.to_vec()).collect();
        for i in 0..=stream.len() {
            let (a, b) = stream.split_at(i);
            let (parts, p) = parse_all(&[a, b]).unwrap();
            assert_eq!(bodies(&parts), want, "split at {i}");
            assert_eq!(parts[0].content_type(), Some("image/jpeg"));
            p.finish().unwrap();
        }
        // And one byte at a time.
        let singles: Vec<&[u8]> = stream.chunks(1).collect();
        let (parts, _) = parse_all(&singles).unwrap();
        assert_eq!(bodies(&parts), want);
    }

    #[test]
    fn table_of_stream_shapes() {
        type Case<'a> = (&'a str, &'a [u8], &'a [&'a [u8]]);
        let cases: &[Case] = &[
            (
                "no content-length, body ends at boundary",
                b"--BoundaryString\r\nContent-Type: image/jpeg\r\n\r\nAAA\r\n--BoundaryString\r\nContent-Type: image/jpeg\r\n\r\nBB\r\n--BoundaryString\r\n",
                &[b"AAA", b"BB"],
            ),
            (
                "LF-only lines",
                b"--BoundaryString\nContent-Type: image/jpeg\n\nAAA\n--BoundaryString\nContent-Type: image/jpeg\n\nBB\n--BoundaryString--\n",
                &[b"AAA", b"BB"],
            ),
            (
                "preamble and junk between parts",
                b"junk before\r\n--BoundaryString\r\nContent-Length: 2\r\n\r\nAA\r\n\r\nmore junk\r\n--BoundaryString\r\nContent-Length: 1\r\n\r\nB\r\n",
                &[b"AA", b"B"],
            ),
            (
                "boundary line after the body (mjpg-streamer style)",
                b"--BoundaryString\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n\r\nabc\r\n--BoundaryString\r\nContent-Type: image/jpeg\r\nContent-Length: 2\r\n\r\nde\r\n--BoundaryString\r\n",
                &[b"abc", b"de"],
            ),
            (
                "closing boundary ends the stream",
                b"--BoundaryString\r\nContent-Length: 1\r\n\r\nX\r\n--BoundaryString--\r\n--BoundaryString\r\nContent-Length: 1\r\n\r\nY\r\n",
                &[b"X"],
            ),
            (
                "a longer token is not our delimiter",
                b"--BoundaryString\r\n\r\nA\r\n--BoundaryStringX\r\nstill A\r\n--BoundaryString\r\n",
                &[b"A\r\n--BoundaryStringX\r\nstill A"],
            ),
            (
                "delimiter text mid-line is body",
                b"--BoundaryString\r\nContent-Type: image/jpeg\r\n\r\nxx--BoundaryString\r\n--BoundaryString\r\n",
                &[b"xx--BoundaryString"],
            ),
        ];
        for (name, stream, want) in cases {
            let (parts, _) = parse_all(&[stream]).unwrap_or_else(|e| panic!("{name}: {e}"));
            let want: Vec<Vec<u8>> = want.iter().map(|b| b.to_vec()).collect();
            assert_eq!(bodies(&parts), want, "{name}");
            // Same result when split at every byte.
            for i in 0..=stream.len() {
                let (a, b) = stream.split_at(i);
                let (parts, _) = parse_all(&[a, b]).unwrap();
                assert_eq!(bodies(&parts), want, "{name}, split at {i}");
            }
        }
    }

    #[test]
    fn written_parts_carry_seq_and_capture_time_back_to_the_reader() {
        let frame = Frame {
            jpeg: Bytes::from_static(b"\xFF\xD8jpeg\xFF\xD9"),
            seq: 42,
            captured_at_ms: 1_764_300_000_123,
            width: 1,
            height: 1,
        };
        let mut stream = part_head(B, &frame).into_bytes();
        stream.extend_from_slice(&frame.jpeg);
        stream.extend_from_slice(b"\r\n");
        let (parts, _) = parse_all(&[&stream, &stream]).unwrap();
        assert_eq!(parts.len(), 2);
        for p in parts {
            assert_eq!(p.body, frame.jpeg);
            assert_eq!(p.frame_seq(), Some(42));
            assert_eq!(p.captured_at_ms(), Some(1_764_300_000_123));
            assert_eq!(p.header("x-captured-at-ms"), Some("1764300000123"));
        }
        let bare = Part {
            headers: vec![("X-Frame-Seq".into(), "soon".into())],
            body: Bytes::new(),
        };
        assert_eq!((bare.frame_seq(), bare.captured_at_ms()), (None, None));
    }

    #[test]
    fn boundary_declared_with_dashes() {
        let mut p = MultipartParser::new("--myboundary", 1024);
        p.feed(b"--myboundary\r\nContent-Length: 2\r\n\r\nok\r\n--myboundary\r\n");
        assert_eq!(
            p.next_part().unwrap().unwrap().body,
            Bytes::from_static(b"ok")
        );
    }

    #[test]
    fn errors() {
        type Check = fn(&MultipartError) -> bool;
        let garbage = vec![b'x'; MAX_BOUNDARY_SCAN + 100];
        let cases: Vec<(&str, Vec<u8>, Check)> = vec![
            ("garbage, no boundary", garbage, |e| {
                matches!(e, MultipartError::BoundaryNotFound { .. })
            }),
            (
                "content-length not a number",
                b"--BoundaryString\r\nContent-Length: lots\r\n\r\nx".to_vec(),
                |e| matches!(e, MultipartError::BadContentLength { part: 1, .. }),
            ),
            (
                "part over the limit",
                b"--BoundaryString\r\nContent-Length: 999999999\r\n\r\n".to_vec(),
                |e| matches!(e, MultipartError::PartTooLarge { .. }),
            ),
            (
                "header line without a colon",
                b"--BoundaryString\r\nthis is not a header\r\n\r\n".to_vec(),
                |e| matches!(e, MultipartError::BadHeaders { .. }),
            ),
            (
                "endless headers",
                [
                    b"--BoundaryString\r\nX-A: ".to_vec(),
                    b"b".repeat(MAX_HEADER_BYTES + 10),
                ]
                .concat(),
                |e| matches!(e, MultipartError::HeadersTooLong { .. }),
            ),
        ];
        for (name, stream, check) in cases {
            let err = parse_all(&[&stream])
                .err()
                .unwrap_or_else(|| panic!("{name}: no error"));
            assert!(check(&err), "{name}: {err}");
        }
    }

    #[test]
    fn truncation_is_reported_by_finish() {
        let full = part(b"0123456789");
        for cut in [20, 40, full.len() - 5] {
            let (parts, p) = parse_all(&[&full[..cut]]).unwrap();
            assert!(parts.is_empty());
            let err = p.finish().unwrap_err();
            assert!(
                matches!(err, MultipartError::Truncated { part: 1, .. }),
                "cut {cut}: {err}"
            );
        }
        let (parts, p) = parse_all(&[&full]).unwrap();
        assert_eq!(parts.len(), 1);
        p.finish().unwrap();
    }

    #[test]
    fn content_type_boundary() {
        let cases = [
            (
                "multipart/x-mixed-replace; boundary=BoundaryString",
                Some("BoundaryString"),
            ),
            ("multipart/x-mixed-replace;boundary=\"abc\"", Some("abc")),
            (
                "Multipart/X-Mixed-Replace; charset=x; Boundary=--b",
                Some("--b"),
            ),
            ("multipart/x-mixed-replace", None),
            ("image/jpeg", None),
            ("text/html; boundary=x", None),
        ];
        for (ct, want) in cases {
            assert_eq!(boundary_from_content_type(ct).as_deref(), want, "{ct}");
        }
    }
}
