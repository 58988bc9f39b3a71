//! Everything JPEG, in one place for the whole workspace: the RGB image
//! type, decoding and encoding, reading a JPEG's header, the frame stamp,
//! and a splitter that cuts a byte stream of concatenated JPEGs into frames.
//!
//! - [`codec`]: [`RgbImage`], [`decode_jpeg`] (zune-jpeg), [`encode_jpeg`]
//!   (jpeg-encoder, baseline 4:2:0), [`decode_png`] and [`decode_image`].
//!   The vision crate's detector decodes with [`decode_jpeg`] too, so the
//!   pixels its darknet-match tests check are these.
//! - [`markers`]: header walking without decoding: [`jpeg_dimensions`],
//!   [`is_complete`], and the frame stamp ([`stamp`], [`read_stamp`]).
//! - [`splitter`]: [`JpegSplitter`] for ffmpeg's `-f mjpeg` /
//!   `image2pipe`, `rpicam-vid --codec mjpeg -o -` and the like.
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
//! JPEG. The MJPEG server also sends both values as headers of each
//! multipart part ([`crate::mjpeg::multipart::FRAME_SEQ_HEADER`],
//! [`crate::mjpeg::multipart::CAPTURED_AT_HEADER`]); the stamp keeps them
//! with the bytes when a frame leaves the stream (a snapshot saved to disk,
//! a frame relayed by a peer that drops part headers).

pub mod codec;
pub mod markers;
pub mod splitter;

pub use codec::{decode_image, decode_jpeg, decode_png, encode_jpeg, RgbImage};
pub use markers::{is_complete, jpeg_dimensions, read_stamp, stamp, Stamp, STAMP_PREFIX};
pub use splitter::JpegSplitter;

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
    fn splitter_skips_junk_between_frames() {
        let f = encode_jpeg(&test_image(8, 8), 80).unwrap();
        let mut stream = b"junk".to_vec();
        stream.extend(&f);
        stream.extend(b"\x00\xFF");
        stream.extend(&f);
        let mut s = JpegSplitter::default();
        s.feed(&stream);
        assert_eq!(s.next_jpeg().unwrap(), Some(f.clone()));
        assert_eq!(s.next_jpeg().unwrap(), Some(f));
        assert_eq!(s.next_jpeg().unwrap(), None);
    }

    #[test]
    fn truncated_jpeg_is_a_decode_error() {
        let jpeg = encode_jpeg(&test_image(32, 32), 80).unwrap();
        for cut in [jpeg.len() / 2, jpeg.len() - 2] {
            let e = decode_jpeg(&jpeg[..cut], "cut").unwrap_err();
            assert!(e.to_string().contains("truncated"), "{e}");
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
