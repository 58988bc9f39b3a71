//! The image type and the codecs: JPEG decoding (zune-jpeg), JPEG
//! encoding (jpeg-encoder) and PNG decoding.

use super::markers::is_complete;
use crate::CameraError;

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

    /// An image whose pixel (x, y) is `f(x, y)`, filled row by row.
    pub fn from_fn(width: u32, height: u32, mut f: impl FnMut(u32, u32) -> [u8; 3]) -> Self {
        let mut data = Vec::with_capacity(width as usize * height as usize * 3);
        for y in 0..height {
            for x in 0..width {
                data.extend_from_slice(&f(x, y));
            }
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

    /// Sets the pixel at (x, y); panics when out of range (callers clamp).
    pub fn put_pixel(&mut self, x: u32, y: u32, rgb: [u8; 3]) {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.data[i..i + 3].copy_from_slice(&rgb);
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
///
/// A JPEG cut short (no end-of-image marker after its scan) is an error:
/// zune-jpeg itself would fill the missing rows with grey and succeed.
/// Chroma is upsampled the way zune-jpeg does by default (the same decoder
/// and options the `image` crate uses, so pixels match what it gives).
pub fn decode_jpeg(bytes: &[u8], what: &str) -> Result<RgbImage, CameraError> {
    use zune_jpeg::zune_core::{
        bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions,
    };
    let err = |reason: String| CameraError::Decode {
        what: what.to_string(),
        format: "JPEG",
        reason,
    };
    if bytes.starts_with(&[0xFF, 0xD8]) && !is_complete(bytes) {
        return Err(err(format!(
            "truncated JPEG ({} bytes, no end-of-image marker after the image data)",
            bytes.len()
        )));
    }
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
