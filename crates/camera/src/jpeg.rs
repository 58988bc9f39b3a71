//! JPEG helpers: decode/encode, read dimensions, the frame stamp (a COM
//! segment), and a splitter that cuts a byte stream of concatenated JPEGs
//! (ffmpeg's `-f mjpeg`, `rpicam-vid --codec mjpeg -o -`) into frames.
//!
//! # The frame stamp
//! Every frame this crate produces carries a JPEG comment segment (marker
//! `FF FE`) right after SOI (or after the JFIF APP0 segment when there is
//! one) whose payload is ASCII:
//!
//! ```text
//! gopigo-camera seq=<u64> captured_at_ms=<unix milliseconds>
//! ```
//!
//! Decoders ignore comments, so ffmpeg, OpenCV and browsers see an ordinary
//! JPEG, while a dashboard can read the capture time out of the bytes of a
//! multipart part (see [`read_stamp`]) without any nonstandard part header.

use crate::CameraError;

/// The prefix of the COM payload that [`stamp`] writes.
pub const STAMP_PREFIX: &str = "gopigo-camera ";

/// An 8-bit RGB image, rows top to bottom, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// A new image filled with one colour.
    pub fn filled(width: u32, height: u32, rgb: [u8; 3]) -> Self {
        let n = width as usize * height as usize;
        let mut data = Vec::with_capacity(n * 3);
        for _ in 0..n {
            data.extend_from_slice(&rgb);
        }
        Self {
            width,
            height,
            data,
        }
    }

    /// The pixel at (x, y); panics when out of range (callers clamp).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Mean colour over the whole image.
    pub fn mean_rgb(&self) -> [f64; 3] {
        let mut sum = [0u64; 3];
        for px in self.data.chunks_exact(3) {
            for c in 0..3 {
                sum[c] += u64::from(px[c]);
            }
        }
        let n = (self.data.len() / 3).max(1) as f64;
        [sum[0] as f64 / n, sum[1] as f64 / n, sum[2] as f64 / n]
    }

    /// A copy scaled down (or up) to `width` x `height` by averaging the
    /// source pixels each target pixel covers (box filter); used once per
    /// photo at load time, so clarity beats speed.
    pub fn resized(&self, width: u32, height: u32) -> RgbImage {
        let (sw, sh) = (self.width.max(1) as f64, self.height.max(1) as f64);
        let (tw, th) = (width.max(1), height.max(1));
        let mut out = Vec::with_capacity(tw as usize * th as usize * 3);
        for ty in 0..th {
            let y0 = (ty as f64 * sh / th as f64).floor() as u32;
            let y1 = (((ty + 1) as f64 * sh / th as f64).ceil() as u32).clamp(y0 + 1, self.height);
            for tx in 0..tw {
                let x0 = (tx as f64 * sw / tw as f64).floor() as u32;
                let x1 =
                    (((tx + 1) as f64 * sw / tw as f64).ceil() as u32).clamp(x0 + 1, self.width);
                let mut acc = [0u32; 3];
                let mut n = 0u32;
                for y in y0..y1 {
                    for x in x0..x1 {
                        let p = self.pixel(x, y);
                        acc[0] += u32::from(p[0]);
                        acc[1] += u32::from(p[1]);
                        acc[2] += u32::from(p[2]);
                        n += 1;
                    }
                }
                let n = n.max(1);
                out.extend_from_slice(&[
                    (acc[0] / n) as u8,
                    (acc[1] / n) as u8,
                    (acc[2] / n) as u8,
                ]);
            }
        }
        RgbImage {
            width: tw,
            height: th,
            data: out,
        }
    }
}

/// Decodes a JPEG into RGB. `what` names the bytes in the error message.
pub fn decode_jpeg(bytes: &[u8], what: &str) -> Result<RgbImage, CameraError> {
    use zune_jpeg::zune_core::{
        bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions,
    };
    let err = |reason: String| CameraError::Decode {
        what: what.to_string(),
        format: "JPEG",
        reason,
    };
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(16384)
        .set_max_height(16384);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    let data = decoder.decode().map_err(|e| err(format!("{e:?}")))?;
    let info = decoder
        .info()
        .ok_or_else(|| err("no image header".to_string()))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    if data.len() != width as usize * height as usize * 3 {
        return Err(err(format!(
            "decoder returned {} bytes for {width}x{height} RGB",
            data.len()
        )));
    }
    Ok(RgbImage {
        width,
        height,
        data,
    })
}

/// Decodes a PNG (any bit depth or colour type) into RGB; alpha is dropped
/// (composited over black).
pub fn decode_png(bytes: &[u8], what: &str) -> Result<RgbImage, CameraError> {
    let err = |reason: String| CameraError::Decode {
        what: what.to_string(),
        format: "PNG",
        reason,
    };
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| err(e.to_string()))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| err("image too large".to_string()))?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| err(e.to_string()))?;
    let (width, height) = (info.width, info.height);
    let n = width as usize * height as usize;
    let mut data = Vec::with_capacity(n * 3);
    let stride = info.line_size;
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(err("palette was not expanded".to_string())),
    };
    for y in 0..height as usize {
        let row = &buf[y * stride..y * stride + width as usize * channels];
        for px in row.chunks_exact(channels) {
            let (rgb, alpha) = match channels {
                1 => ([px[0]; 3], 255),
                2 => ([px[0]; 3], px[1]),
                3 => ([px[0], px[1], px[2]], 255),
                _ => ([px[0], px[1], px[2]], px[3]),
            };
            for c in rgb {
                data.push((u16::from(c) * u16::from(alpha) / 255) as u8);
            }
        }
    }
    Ok(RgbImage {
        width,
        height,
        data,
    })
}

/// Decodes a JPEG or PNG, chosen by the magic bytes.
pub fn decode_image(bytes: &[u8], what: &str) -> Result<RgbImage, CameraError> {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
        decode_png(bytes, what)
    } else {
        decode_jpeg(bytes, what)
    }
}

/// Encodes RGB as a baseline 4:2:0 JPEG at `quality` (1..=100).
pub fn encode_jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, CameraError> {
    let err = |reason: String| CameraError::Encode {
        width: image.width,
        height: image.height,
        reason,
    };
    let w = u16::try_from(image.width).map_err(|_| err("wider than 65535".to_string()))?;
    let h = u16::try_from(image.height).map_err(|_| err("taller than 65535".to_string()))?;
    let mut out = Vec::with_capacity(image.data.len() / 8);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder
        .encode(&image.data, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| err(e.to_string()))?;
    Ok(out)
}

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

/// Cuts a byte stream of concatenated JPEG files into single JPEGs by
/// walking the marker segments (so an `FF D9` inside an embedded thumbnail
/// or a length-prefixed segment does not end a frame early). Bytes before
/// an SOI are skipped.
#[derive(Debug)]
pub struct JpegSplitter {
    buf: Vec<u8>,
    /// Parse position inside `buf` of the frame being assembled.
    pos: usize,
    /// True while inside entropy-coded data after SOS.
    in_scan: bool,
    /// True once `buf` starts with SOI.
    started: bool,
    max_frame: usize,
}

impl Default for JpegSplitter {
    fn default() -> Self {
        Self::new(32 * 1024 * 1024)
    }
}

impl JpegSplitter {
    /// A splitter that rejects frames larger than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            in_scan: false,
            started: false,
            max_frame,
        }
    }

    /// Appends bytes read from the stream.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that do not yet form a complete frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True when no partial frame is pending (the stream may end here
    /// cleanly).
    pub fn is_between_frames(&self) -> bool {
        !self.started
    }

    fn resync(&mut self, reason: String) -> Result<Option<Vec<u8>>, String> {
        // Drop the bad frame's SOI and look for the next one.
        self.buf.drain(..2.min(self.buf.len()));
        self.started = false;
        self.in_scan = false;
        self.pos = 0;
        Err(reason)
    }

    /// The next complete JPEG, `Ok(None)` when more bytes are needed, or
    /// `Err` describing a corrupt frame that was skipped (call again to go
    /// on with the next one).
    pub fn next_jpeg(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            if !self.started {
                match self.buf.windows(2).position(|w| w == [0xFF, 0xD8]) {
                    Some(i) => {
                        self.buf.drain(..i);
                        self.started = true;
                        self.pos = 2;
                        self.in_scan = false;
                    }
                    None => {
                        // Keep a trailing 0xFF: it may begin the next SOI.
                        let keep = usize::from(self.buf.last() == Some(&0xFF));
                        let cut = self.buf.len() - keep;
                        self.buf.drain(..cut);
                        return Ok(None);
                    }
                }
            }
            if self.pos > self.max_frame {
                let max = self.max_frame;
                return self.resync(format!(
                    "frame larger than {max} bytes without an end marker"
                ));
            }
            if self.in_scan {
                let buf = &self.buf;
                let mut p = self.pos;
                let mut found = false;
                while p + 1 < buf.len() {
                    if buf[p] == 0xFF {
                        let m = buf[p + 1];
                        if m == 0x00 || (0xD0..=0xD7).contains(&m) {
                            p += 2;
                            continue;
                        }
                        if m == 0xFF {
                            p += 1;
                            continue;
                        }
                        found = true;
                        break;
                    }
                    p += 1;
                }
                self.pos = p;
                if !found {
                    return Ok(None);
                }
                self.in_scan = false;
            }
            let p = self.pos;
            if p + 2 > self.buf.len() {
                return Ok(None);
            }
            if self.buf[p] != 0xFF {
                return self.resync(format!(
                    "expected a marker at byte {p} of the frame, found 0x{:02X}",
                    self.buf[p]
                ));
            }
            let marker = self.buf[p + 1];
            match marker {
                0xFF => self.pos += 1,
                0xD9 => {
                    let frame: Vec<u8> = self.buf.drain(..p + 2).collect();
                    self.started = false;
                    self.pos = 0;
                    return Ok(Some(frame));
                }
                0xD8 => {
                    return self.resync(format!(
                        "a new frame started at byte {p} before the end marker"
                    ));
                }
                0x01 | 0xD0..=0xD7 => self.pos += 2,
                _ => {
                    if p + 4 > self.buf.len() {
                        return Ok(None);
                    }
                    let len = usize::from(u16::from_be_bytes([self.buf[p + 2], self.buf[p + 3]]));
                    if len < 2 {
                        return self.resync(format!("segment 0x{marker:02X} has length {len}"));
                    }
                    if p + 2 + len > self.buf.len() {
                        if p + 2 + len > self.max_frame {
                            let max = self.max_frame;
                            return self.resync(format!("frame larger than {max} bytes"));
                        }
                        return Ok(None);
                    }
                    self.pos = p + 2 + len;
                    if marker == 0xDA {
                        self.in_scan = true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_image(w: u32, h: u32) -> RgbImage {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 128]);
            }
        }
        RgbImage {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn encode_then_decode_keeps_size_and_colour() {
        let img = test_image(64, 48);
        let jpeg = encode_jpeg(&img, 90).unwrap();
        assert_eq!(jpeg_dimensions(&jpeg), Some((64, 48)));
        let back = decode_jpeg(&jpeg, "test").unwrap();
        assert_eq!((back.width, back.height), (64, 48));
        let (a, b) = (img.mean_rgb(), back.mean_rgb());
        for c in 0..3 {
            assert!((a[c] - b[c]).abs() < 4.0, "channel {c}: {a:?} vs {b:?}");
        }
    }

    #[test]
    fn stamp_round_trips_and_keeps_the_jpeg_decodable() {
        let jpeg = encode_jpeg(&test_image(32, 16), 80).unwrap();
        let s = Stamp {
            seq: 42,
            captured_at_ms: 1_764_300_000_123,
        };
        let stamped = stamp(&jpeg, s);
        assert_eq!(read_stamp(&stamped), Some(s));
        assert_eq!(read_stamp(&jpeg), None);
        assert_eq!(jpeg_dimensions(&stamped), Some((32, 16)));
        decode_jpeg(&stamped, "stamped").unwrap();
        // JFIF APP0 still comes first when the encoder wrote one.
        if jpeg[3] == 0xE0 {
            assert_eq!(stamped[3], 0xE0);
        }
    }

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
    fn dimensions_of_non_jpeg_is_none() {
        assert_eq!(jpeg_dimensions(b"not a jpeg"), None);
        assert_eq!(jpeg_dimensions(&[0xFF, 0xD8, 0xFF]), None);
    }

    #[test]
    fn png_decodes_to_rgb() {
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, 2, 1);
            enc.set_color(png::ColorType::Rgba);
            let mut w = enc.write_header().unwrap();
            w.write_image_data(&[255, 0, 0, 255, 0, 0, 255, 0]).unwrap();
        }
        let img = decode_image(&bytes, "t.png").unwrap();
        assert_eq!(img.data, vec![255, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn splitter_cuts_a_stream_at_any_chunking() {
        let a = stamp(
            &encode_jpeg(&test_image(16, 16), 80).unwrap(),
            Stamp {
                seq: 1,
                captured_at_ms: 1,
            },
        );
        let b = encode_jpeg(&test_image(24, 8), 50).unwrap();
        let mut stream = b"garbage".to_vec();
        stream.extend_from_slice(&a);
        stream.extend_from_slice(&b);
        stream.extend_from_slice(&a);
        for chunk in [1, 2, 3, 7, 100, 4096] {
            let mut s = JpegSplitter::default();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                s.feed(piece);
                while let Some(f) = s.next_jpeg().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(
                got,
                vec![a.clone(), b.clone(), a.clone()],
                "chunk size {chunk}"
            );
            assert!(s.is_between_frames());
        }
    }

    #[test]
    fn splitter_ignores_ff_d9_inside_a_segment() {
        // A COM segment whose payload contains FF D9 must not end the frame.
        let base = encode_jpeg(&test_image(8, 8), 80).unwrap();
        let mut tricky = vec![0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x04, 0xFF, 0xD9];
        tricky.extend_from_slice(&base[2..]);
        let mut s = JpegSplitter::default();
        s.feed(&tricky);
        assert_eq!(s.next_jpeg().unwrap(), Some(tricky.clone()));
    }

    #[test]
    fn splitter_skips_a_corrupt_frame_and_recovers() {
        let good = encode_jpeg(&test_image(8, 8), 80).unwrap();
        let mut stream = vec![0xFF, 0xD8, 0x12, 0x34]; // SOI then no marker
        stream.extend_from_slice(&good);
        let mut s = JpegSplitter::default();
        s.feed(&stream);
        assert!(s.next_jpeg().is_err());
        assert_eq!(s.next_jpeg().unwrap(), Some(good));
    }

    #[test]
    fn resize_averages() {
        let img = RgbImage {
            width: 2,
            height: 1,
            data: vec![0, 0, 0, 200, 100, 50],
        };
        let small = img.resized(1, 1);
        assert_eq!(small.data, vec![100, 50, 25]);
    }
}
