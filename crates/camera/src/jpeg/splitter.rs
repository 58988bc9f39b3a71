//! Cutting a byte stream of concatenated JPEG files into frames.

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

    /// Drops the bad frame's SOI so the search for the next one starts
    /// after it; returns `reason` for the caller to report.
    fn resync(&mut self, reason: String) -> String {
        self.buf.drain(..2.min(self.buf.len()));
        self.started = false;
        self.in_scan = false;
        self.pos = 0;
        reason
    }

    /// The next complete JPEG, `Ok(None)` when more bytes are needed, or
    /// `Err` describing a corrupt frame that was skipped (call again to go
    /// on with the next one).
    pub fn next_jpeg(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            if !self.started && !self.seek_soi() {
                return Ok(None);
            }
            if self.pos > self.max_frame {
                let max = self.max_frame;
                return Err(self.resync(format!(
                    "frame larger than {max} bytes without an end marker"
                )));
            }
            if self.in_scan && !self.skip_scan_data() {
                return Ok(None);
            }
            match self.read_marker()? {
                Marker::NeedMore => return Ok(None),
                Marker::End(frame) => return Ok(Some(frame)),
                Marker::Skipped => {}
            }
        }
    }

    /// Drops bytes up to the next SOI and starts a frame there; false when
    /// there is none yet.
    fn seek_soi(&mut self) -> bool {
        match self.buf.windows(2).position(|w| w == [0xFF, 0xD8]) {
            Some(i) => {
                self.buf.drain(..i);
                self.started = true;
                self.pos = 2;
                self.in_scan = false;
                true
            }
            None => {
                // Keep a trailing 0xFF: it may begin the next SOI.
                let keep = usize::from(self.buf.last() == Some(&0xFF));
                let cut = self.buf.len() - keep;
                self.buf.drain(..cut);
                false
            }
        }
    }

    /// Moves `pos` over entropy-coded data (byte stuffing, restart markers
    /// and fill bytes included) to the next real marker; false when the
    /// buffer ends first.
    fn skip_scan_data(&mut self) -> bool {
        let buf = &self.buf;
        let mut p = self.pos;
        while p + 1 < buf.len() {
            if buf[p] == 0xFF {
                match buf[p + 1] {
                    0x00 | 0xD0..=0xD7 => p += 2,
                    0xFF => p += 1,
                    _ => {
                        self.pos = p;
                        self.in_scan = false;
                        return true;
                    }
                }
            } else {
                p += 1;
            }
        }
        self.pos = p;
        false
    }

    /// Reads the marker at `pos`: the end of the frame, a segment stepped
    /// over, or not enough bytes yet. A corrupt frame is skipped (`Err`).
    fn read_marker(&mut self) -> Result<Marker, String> {
        let p = self.pos;
        if p + 2 > self.buf.len() {
            return Ok(Marker::NeedMore);
        }
        if self.buf[p] != 0xFF {
            let found = self.buf[p];
            return Err(self.resync(format!(
                "expected a marker at byte {p} of the frame, found 0x{found:02X}"
            )));
        }
        let marker = self.buf[p + 1];
        match marker {
            0xFF => self.pos += 1,
            0xD9 => {
                let frame: Vec<u8> = self.buf.drain(..p + 2).collect();
                self.started = false;
                self.pos = 0;
                return Ok(Marker::End(frame));
            }
            0xD8 => {
                return Err(self.resync(format!(
                    "a new frame started at byte {p} before the end marker"
                )));
            }
            0x01 | 0xD0..=0xD7 => self.pos += 2,
            _ => return self.step_over_segment(marker),
        }
        Ok(Marker::Skipped)
    }

    /// Steps over the length-prefixed segment at `pos` (entering the scan
    /// after SOS).
    fn step_over_segment(&mut self, marker: u8) -> Result<Marker, String> {
        let p = self.pos;
        if p + 4 > self.buf.len() {
            return Ok(Marker::NeedMore);
        }
        let len = usize::from(u16::from_be_bytes([self.buf[p + 2], self.buf[p + 3]]));
        if len < 2 {
            return Err(self.resync(format!("segment 0x{marker:02X} has length {len}")));
        }
        if p + 2 + len > self.buf.len() {
            if p + 2 + len > self.max_frame {
                let max = self.max_frame;
                return Err(self.resync(format!("frame larger than {max} bytes")));
            }
            return Ok(Marker::NeedMore);
        }
        self.pos = p + 2 + len;
        self.in_scan = marker == 0xDA;
        Ok(Marker::Skipped)
    }
}

/// What [`JpegSplitter::read_marker`] found.
enum Marker {
    /// The buffer ends before the marker (or its segment) does.
    NeedMore,
    /// A marker or segment inside the frame, stepped over.
    Skipped,
    /// EOI: the whole frame.
    End(Vec<u8>),
}
