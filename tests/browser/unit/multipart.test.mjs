// multipart.js: the video stream split into parts by their headers.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PartSplitter, parseHead, numberHeader, MAX_HEAD_BYTES } from "../../../crates/controller/static/multipart.js";

const enc = new TextEncoder();
const bytes = (...xs) => {
  const parts = xs.map((x) => (typeof x === "string" ? enc.encode(x) : x));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};
/** A part as the dashboard's video route writes it. */
const part = (body, seq, at) => bytes(
  `--gopigoframe\r\nContent-Type: image/jpeg\r\nContent-Length: ${body.length}\r\nX-Frame-Seq: ${seq}\r\nX-Captured-At-Ms: ${at}\r\n\r\n`,
  body, "\r\n");
const jpeg = (n, fill) => bytes(new Uint8Array([0xff, 0xd8]), new Uint8Array(n).fill(fill), new Uint8Array([0xff, 0xd9]));

function feed(splitter, data, chunk) {
  const out = [];
  for (let i = 0; i < data.length; i += chunk) out.push(...splitter.push(data.subarray(i, i + chunk)));
  return out;
}

describe("multipart splitter", () => {
  const a = jpeg(1000, 0x11), b = jpeg(20, 0x22), c = jpeg(70_000, 0x33);
  const stream = bytes(part(a, 1, 1_700_000_000_001), part(b, 2, 1_700_000_000_101), part(c, 3, 1_700_000_000_201));

  for (const chunk of [1, 7, 64, 4096, stream.length]) {
    it(`reads every part and its headers from chunks of ${chunk} bytes`, () => {
      const parts = feed(new PartSplitter(), stream, chunk);
      assert.equal(parts.length, 3);
      assert.deepEqual(parts.map((p) => p.body), [a, b, c], "bodies intact, in order");
      assert.deepEqual(parts.map((p) => numberHeader(p.headers, "x-captured-at-ms")), [1_700_000_000_001, 1_700_000_000_101, 1_700_000_000_201]);
      assert.deepEqual(parts.map((p) => numberHeader(p.headers, "x-frame-seq")), [1, 2, 3]);
      assert.equal(parts[0].headers.get("content-type"), "image/jpeg");
    });
  }

  it("returns a part only once its whole body is in", () => {
    const s = new PartSplitter();
    const p = part(a, 1, 5);
    assert.deepEqual(s.push(p.subarray(0, p.length - 3)), []);
    const done = s.push(p.subarray(p.length - 3));
    assert.equal(done.length, 1);
    assert.deepEqual(done[0].body, a);
  });

  it("a part's body is its own copy, not a view of a buffer reused later", () => {
    const s = new PartSplitter();
    const [first] = s.push(part(a, 1, 5));
    s.push(part(b, 2, 6));
    assert.deepEqual(first.body, a);
  });

  it("reads headers case-insensitively and without an age when the stamp is missing", () => {
    const [p] = new PartSplitter().push(bytes("--x\r\ncontent-length: 2\r\n\r\nok\r\n"));
    assert.equal(new TextDecoder().decode(p.body), "ok");
    assert.equal(numberHeader(p.headers, "x-captured-at-ms"), null);
    assert.equal(numberHeader(parseHead("X-Captured-At-Ms: soon"), "x-captured-at-ms"), null, "not a number: no age");
  });

  it("skips blank lines before a part", () => {
    const parts = new PartSplitter().push(bytes("\r\n\r\n", part(b, 9, 9)));
    assert.deepEqual(parts.map((p) => p.body), [b]);
  });

  it("refuses a part without Content-Length, naming it", () => {
    assert.throws(() => new PartSplitter().push(bytes("--gopigoframe\r\nContent-Type: image/jpeg\r\n\r\nxx")),
      /a part without Content-Length/);
    assert.throws(() => new PartSplitter().push(bytes("--g\r\nContent-Length: lots\r\n\r\n")),
      /Content-Length "lots" is not a byte count/);
  });

  it("refuses a part over the size limit before buffering it", () => {
    const s = new PartSplitter({ maxPartBytes: 1000 });
    assert.throws(() => s.push(bytes("--g\r\nContent-Length: 1001\r\n\r\n")), /1001 bytes is over the 1000 byte limit/);
  });

  it("refuses endless headers", () => {
    const s = new PartSplitter();
    const junk = enc.encode("X-Junk: " + "j".repeat(MAX_HEAD_BYTES + 10));
    assert.throws(() => s.push(junk), /no end of part headers within 16384 bytes/);
  });
});
