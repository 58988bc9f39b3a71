//! USB cameras through Video4Linux2 (feature `v4l2`): asks the driver for
//! MJPEG and passes the camera's JPEGs through; when the camera only offers
//! YUYV, converts and encodes each frame.
//!
//! Building this needs libclang (the `v4l2-sys-mit` bindings run bindgen):
//! `apt-get install libclang-dev`.

use std::time::Duration;

use v4l::buffer::Type;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC};

use crate::jpeg::{self, RgbImage};
use crate::{CameraError, Frame, FrameSource};

/// A V4L2 capture device such as `/dev/video0`.
pub struct V4l2Camera {
    path: String,
    stream: Stream<'static>,
    fourcc: FourCC,
    width: u32,
    height: u32,
    seq: u64,
    quality: u8,
}

impl std::fmt::Debug for V4l2Camera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V4l2Camera")
            .field("path", &self.path)
            .field("fourcc", &self.fourcc.to_string())
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

impl V4l2Camera {
    /// Opens `path` and asks for `width`×`height` MJPEG (the driver may
    /// pick the nearest size, or YUYV).
    pub fn open(path: &str, width: u32, height: u32) -> Result<Self, CameraError> {
        let err = |what: &str, e: std::io::Error| CameraError::Device {
            device: path.to_string(),
            reason: format!(
                "{what}: {e}; check that the camera is plugged in and you may use it (group video)"
            ),
        };
        let dev = Device::with_path(path).map_err(|e| err("cannot open", e))?;
        let mut fmt = dev.format().map_err(|e| err("cannot read the format", e))?;
        fmt.width = width;
        fmt.height = height;
        fmt.fourcc = FourCC::new(b"MJPG");
        let mut fmt = dev
            .set_format(&fmt)
            .map_err(|e| err("cannot set the format", e))?;
        if fmt.fourcc != FourCC::new(b"MJPG") {
            fmt.fourcc = FourCC::new(b"YUYV");
            fmt = dev
                .set_format(&fmt)
                .map_err(|e| err("cannot set YUYV", e))?;
        }
        if fmt.fourcc != FourCC::new(b"MJPG") && fmt.fourcc != FourCC::new(b"YUYV") {
            return Err(CameraError::Device {
                device: path.to_string(),
                reason: format!("offers {} only; MJPG or YUYV is needed", fmt.fourcc),
            });
        }
        let mut stream = Stream::with_buffers(&dev, Type::VideoCapture, 4)
            .map_err(|e| err("cannot start streaming", e))?;
        stream.set_timeout(Duration::from_secs(5));
        Ok(Self {
            path: path.to_string(),
            stream,
            fourcc: fmt.fourcc,
            width: fmt.width,
            height: fmt.height,
            seq: 0,
            quality: 80,
        })
    }
}

/// YUYV (4:2:2) to RGB, BT.601 limited range.
fn yuyv_to_rgb(src: &[u8], width: u32, height: u32) -> RgbImage {
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    let clamp = |v: f32| v.clamp(0.0, 255.0) as u8;
    for px in src
        .chunks_exact(4)
        .take(width as usize * height as usize / 2)
    {
        let (y0, u, y1, v) = (px[0], px[1], px[2], px[3]);
        let (u, v) = (f32::from(u) - 128.0, f32::from(v) - 128.0);
        for y in [y0, y1] {
            let y = 1.164 * (f32::from(y) - 16.0);
            data.extend_from_slice(&[
                clamp(y + 1.596 * v),
                clamp(y - 0.392 * u - 0.813 * v),
                clamp(y + 2.017 * u),
            ]);
        }
    }
    data.resize(width as usize * height as usize * 3, 0);
    RgbImage {
        width,
        height,
        data,
    }
}

impl FrameSource for V4l2Camera {
    fn next_frame(&mut self) -> Result<Frame, CameraError> {
        let (buf, meta) = self.stream.next().map_err(|e| CameraError::Device {
            device: self.path.clone(),
            reason: format!("capture failed: {e}"),
        })?;
        let captured_at_ms = gopigo_protocol::unix_ms();
        let used = (meta.bytesused as usize).min(buf.len());
        let bytes = &buf[..used];
        self.seq += 1;
        let what = format!("frame {} of {}", self.seq, self.path);
        if self.fourcc == FourCC::new(b"MJPG") {
            Frame::from_jpeg(bytes, self.seq, captured_at_ms, &what)
        } else {
            let rgb = yuyv_to_rgb(bytes, self.width, self.height);
            let jpeg = jpeg::encode_jpeg(&rgb, self.quality)?;
            Frame::from_jpeg(&jpeg, self.seq, captured_at_ms, &what)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_grey_and_colour() {
        // Two grey pixels (Y=126, U=V=128) → RGB ~128.
        let img = yuyv_to_rgb(&[126, 128, 126, 128], 2, 1);
        assert!(
            img.data.iter().all(|&c| (125..=131).contains(&c)),
            "{:?}",
            img.data
        );
    }
}
