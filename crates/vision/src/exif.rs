//! EXIF orientation: phones and cameras store a photo as the sensor saw it
//! and say in the EXIF `Orientation` tag (0x0112) how to turn it for
//! display. A detector that ignores the tag looks at a sideways picture
//! (and boxes land on the wrong pixels of the upright one every viewer
//! shows), so photos are turned upright before detection.
//!
//! [`orientation`] reads the tag from a JPEG's APP1 segment (pure, bounded
//! by the bytes given; anything malformed reads as "no tag"), [`orient`]
//! applies it, [`decode_upright`] does both after decoding. Darknet itself
//! (stb_image) ignores the tag; robot camera frames carry none.

use gopigo_camera::jpeg::{self, RgbImage};

use crate::VisionError;

/// The EXIF orientation tag.
const TAG_ORIENTATION: u16 = 0x0112;

/// Decodes a JPEG or PNG and turns it upright by its EXIF orientation.
/// `what` names the bytes in an error.
pub fn decode_upright(bytes: &[u8], what: &str) -> Result<RgbImage, VisionError> {
    let img = jpeg::decode_image(bytes, what)?;
    Ok(match orientation(bytes) {
        Some(o) if o != 1 => orient(&img, o),
        _ => img,
    })
}

/// The EXIF orientation (1..=8) of a JPEG, or `None` when it has no EXIF
/// segment, no orientation tag, or a malformed one. Only the segments
/// before the image data are read.
pub fn orientation(jpeg: &[u8]) -> Option<u8> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut pos = 2;
    while pos + 4 <= jpeg.len() {
        if jpeg[pos] != 0xFF {
            return None;
        }
        let marker = jpeg[pos + 1];
        if marker == 0xFF {
            pos += 1; // fill byte
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            return None; // image data starts: no EXIF before it
        }
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        let body = jpeg.get(pos + 4..pos + 2 + len)?;
        if marker == 0xE1 {
            if let Some(tiff) = body.strip_prefix(b"Exif\0\0") {
                return tiff_orientation(tiff);
            }
        }
        pos += 2 + len;
    }
    None
}

/// The orientation tag of IFD0 in a TIFF block (EXIF's payload).
fn tiff_orientation(tiff: &[u8]) -> Option<u8> {
    let big = match tiff.get(..4)? {
        [b'I', b'I', 42, 0] => false,
        [b'M', b'M', 0, 42] => true,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at + 2)?.try_into().ok()?;
        Some(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    (0..count).find_map(|i| {
        let entry = ifd + 2 + 12 * i;
        // A SHORT (type 3) with one value, stored in the entry itself.
        if u16_at(entry)? != TAG_ORIENTATION || u16_at(entry + 2)? != 3 {
            return None;
        }
        let v = u16_at(entry + 8)?;
        (1..=8).contains(&v).then_some(v as u8)
    })
}

/// `img` turned as EXIF orientation `o` asks (1 or an unknown value: as
/// is): 2 mirror, 3 half turn, 4 upside-down mirror, 5 transpose,
/// 6 quarter turn clockwise, 7 transverse, 8 quarter turn anticlockwise.
pub fn orient(img: &RgbImage, o: u8) -> RgbImage {
    if !(2..=8).contains(&o) {
        return img.clone();
    }
    let (w, h) = (img.width, img.height);
    let (ow, oh) = if o >= 5 { (h, w) } else { (w, h) };
    RgbImage::from_fn(ow, oh, |x, y| {
        let (sx, sy) = match o {
            2 => (w - 1 - x, y),
            3 => (w - 1 - x, h - 1 - y),
            4 => (x, h - 1 - y),
            5 => (y, x),
            6 => (y, h - 1 - x),
            7 => (w - 1 - y, h - 1 - x),
            _ => (w - 1 - y, x),
        };
        img.pixel(sx, sy)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG prefix with an EXIF APP1 holding IFD0 = [orientation].
    fn exif_jpeg(o: u16, big: bool) -> Vec<u8> {
        let mut tiff = Vec::new();
        let p16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let p32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        tiff.extend_from_slice(if big { b"MM\0*" } else { b"II*\0" });
        tiff.extend_from_slice(&p32(8));
        tiff.extend_from_slice(&p16(2)); // two entries: another tag, then orientation
        for (tag, v) in [(0x010F, 0u16), (TAG_ORIENTATION, o)] {
            tiff.extend_from_slice(&p16(tag));
            tiff.extend_from_slice(&p16(3));
            tiff.extend_from_slice(&p32(1));
            tiff.extend_from_slice(&p16(v));
            tiff.extend_from_slice(&[0, 0]);
        }
        tiff.extend_from_slice(&p32(0));
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0]; // an empty-ish APP0 first
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&[0xFF, 0xDA, 0, 2, 0xFF, 0xD9]);
        out
    }

    #[test]
    fn reads_the_tag_in_both_byte_orders() {
        for o in 1..=8 {
            assert_eq!(orientation(&exif_jpeg(o, false)), Some(o as u8));
            assert_eq!(orientation(&exif_jpeg(o, true)), Some(o as u8));
        }
    }

    #[test]
    fn malformed_or_missing_exif_is_no_tag() {
        assert_eq!(orientation(b"not a jpeg"), None);
        assert_eq!(orientation(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
        assert_eq!(orientation(&exif_jpeg(9, false)), None);
        let whole = exif_jpeg(6, false);
        for cut in 0..whole.len() - 6 {
            // Any truncation inside the EXIF segment: no answer, no panic.
            let got = orientation(&whole[..cut]);
            assert!(got.is_none(), "cut at {cut}: {got:?}");
        }
        let mut lying = exif_jpeg(6, false);
        lying[4] = 0xFF; // APP0 claims to run past the end
        assert_eq!(orientation(&lying), None);
    }

    #[test]
    fn orientations_turn_the_pixels() {
        // 3x2: pixel value = 10*y + x.
        let img = RgbImage::from_fn(3, 2, |x, y| [(10 * y + x) as u8, 0, 0]);
        let rows = |i: &RgbImage| -> Vec<Vec<u8>> {
            (0..i.height)
                .map(|y| (0..i.width).map(|x| i.pixel(x, y)[0]).collect())
                .collect()
        };
        let cases: [(u8, Vec<Vec<u8>>); 8] = [
            (1, vec![vec![0, 1, 2], vec![10, 11, 12]]),
            (2, vec![vec![2, 1, 0], vec![12, 11, 10]]),
            (3, vec![vec![12, 11, 10], vec![2, 1, 0]]),
            (4, vec![vec![10, 11, 12], vec![0, 1, 2]]),
            (5, vec![vec![0, 10], vec![1, 11], vec![2, 12]]),
            (6, vec![vec![10, 0], vec![11, 1], vec![12, 2]]),
            (7, vec![vec![12, 2], vec![11, 1], vec![10, 0]]),
            (8, vec![vec![2, 12], vec![1, 11], vec![0, 10]]),
        ];
        for (o, want) in cases {
            assert_eq!(rows(&orient(&img, o)), want, "orientation {o}");
        }
    }
}
