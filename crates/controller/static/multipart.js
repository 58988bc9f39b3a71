// Splits a `multipart/x-mixed-replace` body, as fetch() hands it over in
// chunks of any size, into parts with their headers. The dashboard's video
// route sends each part as
//   --gopigoframe\r\n Content-Type: image/jpeg\r\n Content-Length: N\r\n
//   X-Frame-Seq: S\r\n X-Captured-At-Ms: T\r\n \r\n <N bytes> \r\n
// so a part's length is known from its headers; a part without
// Content-Length is an error (this splitter never scans a body for the
// boundary). The page's only multipart reader.

const CRLF2 = [13, 10, 13, 10];
/** A header block longer than this is not a camera's. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** A part longer than this is not a camera frame. */
export const MAX_PART_BYTES = 16 * 1024 * 1024;

function indexOfSeq(buf, len, seq) {
  outer: for (let i = 0; i + seq.length <= len; i++) {
    for (let j = 0; j < seq.length; j++) if (buf[i + j] !== seq[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * The headers of one part, names lower-cased. Blank lines (the CRLF that
 * ends the previous part) and the boundary line are skipped.
 */
export function parseHead(text) {
  const headers = new Map();
  for (const line of text.split("\r\n")) {
    if (!line || line.startsWith("--")) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error(`video stream: a part header line without a colon: ${JSON.stringify(line.slice(0, 80))}`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

export class PartSplitter {
  constructor({ maxPartBytes = MAX_PART_BYTES } = {}) {
    this.maxPartBytes = maxPartBytes;
    this.buf = new Uint8Array(64 * 1024);
    this.len = 0;
    this.head = null;   // {headers, start, length} of a part whose body is still arriving
  }

  /** Takes the next chunk; returns the parts it completed, `{headers, body}`. */
  push(chunk) {
    this.append(chunk);
    const parts = [];
    for (;;) {
      if (!this.head && !this.readHead()) break;
      const { headers, start, length } = this.head;
      if (this.len < start + length) break;
      parts.push({ headers, body: this.buf.slice(start, start + length) });
      this.drop(start + length);
      this.head = null;
    }
    return parts;
  }

  append(chunk) {
    if (this.len + chunk.length > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.len + chunk.length));
      bigger.set(this.buf.subarray(0, this.len));
      this.buf = bigger;
    }
    this.buf.set(chunk, this.len);
    this.len += chunk.length;
  }

  drop(n) {
    this.buf.copyWithin(0, n, this.len);
    this.len -= n;
  }

  /** Reads a complete header block at the front, if there is one. */
  readHead() {
    let end, headers;
    do {
      end = indexOfSeq(this.buf, Math.min(this.len, MAX_HEAD_BYTES + 4), CRLF2);
      if (end < 0) {
        if (this.len > MAX_HEAD_BYTES) throw new Error(`video stream: no end of part headers within ${MAX_HEAD_BYTES} bytes`);
        return false;
      }
      headers = parseHead(new TextDecoder().decode(this.buf.subarray(0, end)));
      // Blank lines alone (a preamble, or a boundary with no headers): skip them.
      if (headers.size === 0) this.drop(end + 4);
    } while (headers.size === 0);
    const raw = headers.get("content-length");
    if (raw == null) throw new Error("video stream: a part without Content-Length");
    if (!/^\d+$/.test(raw)) throw new Error(`video stream: Content-Length ${JSON.stringify(raw)} is not a byte count`);
    const length = Number(raw);
    if (length > this.maxPartBytes) throw new Error(`video stream: a part of ${length} bytes is over the ${this.maxPartBytes} byte limit`);
    this.head = { headers, start: end + 4, length };
    return true;
  }
}

/** A header as a whole number, or null when absent or not one. */
export function numberHeader(headers, name) {
  const v = headers.get(name);
  return v != null && /^\d+$/.test(v) ? Number(v) : null;
}
