//! Batch detection for `gopigo detect` on an image, a folder of images, or
//! anything ffmpeg reads (a video file, an MJPEG or RTSP URL: frames come
//! from an `ffmpeg` subprocess as a JPEG stream, cut by the camera crate's
//! [`JpegSplitter`]). One JSON line per frame goes to the output, and
//! optionally an annotated JPEG per frame to a folder.
//!
//! The `gopigo` binary owns the command line; this module takes plain
//! [`BatchOptions`] and an already loaded [`Detector`], so one detector can
//! serve several runs.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use gopigo_camera::jpeg::{self, JpegSplitter};

use crate::sources::{image_files, write_json_line, DetectionRecord};
use crate::{draw_detections, Detector, VisionError};

/// What to run over and where the results go.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOptions {
    /// Image file, folder of images, video file, or URL ffmpeg can open.
    pub source: String,
    /// Folder to write annotated JPEGs into (created if missing).
    pub draw: Option<PathBuf>,
    /// Stop after this many frames.
    pub max_frames: Option<u64>,
}

/// JPEG quality of the annotated copies.
const DRAW_QUALITY: u8 = 85;

/// Whether `source` goes through ffmpeg (a URL or a video file) rather
/// than being read as images.
pub fn is_stream(source: &str) -> bool {
    const VIDEO: [&str; 9] = [
        "mp4", "mkv", "avi", "mov", "webm", "mjpeg", "mjpg", "h264", "ts",
    ];
    source.contains("://")
        || Path::new(source)
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| VIDEO.iter().any(|v| v.eq_ignore_ascii_case(e)))
}

/// Runs `det` over `opts.source`, writing one JSON line per frame to
/// `out`. Returns the number of frames processed.
pub fn run_batch(
    det: &mut Detector,
    opts: &BatchOptions,
    out: &mut dyn Write,
) -> Result<u64, VisionError> {
    if let Some(dir) = &opts.draw {
        std::fs::create_dir_all(dir).map_err(|source| VisionError::Io {
            path: dir.clone(),
            source,
        })?;
    }
    let mut sink = Sink { det, opts, out };
    if is_stream(&opts.source) {
        sink.run_stream()
    } else {
        sink.run_files()
    }
}

/// Where each frame goes: the detector, the JSON lines, the drawings.
struct Sink<'a> {
    det: &'a mut Detector,
    opts: &'a BatchOptions,
    out: &'a mut dyn Write,
}

impl Sink<'_> {
    fn max(&self) -> u64 {
        self.opts.max_frames.unwrap_or(u64::MAX)
    }

    /// Detects on one image (JPEG or PNG bytes), writes its line and, when
    /// asked, its annotated copy as `draw_name`.
    fn frame(
        &mut self,
        label: &str,
        frame: u64,
        bytes: &[u8],
        draw_name: String,
    ) -> Result<(), VisionError> {
        let img = crate::exif::decode_upright(bytes, label)?;
        let dets = self.det.detect_rgb(&img)?;
        let record = DetectionRecord {
            source: label,
            frame,
            detections: &dets,
        };
        write_json_line(self.out, &record).map_err(|source| VisionError::Io {
            path: PathBuf::from("<stdout>"),
            source,
        })?;
        if let Some(dir) = &self.opts.draw {
            let path = dir.join(draw_name);
            let bytes = jpeg::encode_jpeg(&draw_detections(&img, &dets), DRAW_QUALITY)?;
            std::fs::write(&path, bytes).map_err(|source| VisionError::Io { path, source })?;
        }
        Ok(())
    }

    /// Each image file of the source, in name order.
    fn run_files(&mut self) -> Result<u64, VisionError> {
        let mut done = 0u64;
        for path in image_files(Path::new(&self.opts.source))? {
            if done >= self.max() {
                break;
            }
            let bytes = std::fs::read(&path).map_err(|source| VisionError::Io {
                path: path.clone(),
                source,
            })?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            let label = path.to_string_lossy().into_owned();
            self.frame(&label, 0, &bytes, format!("{stem}.jpg"))?;
            done += 1;
        }
        Ok(done)
    }

    /// The frames ffmpeg decodes from the source, re-encoded as JPEGs.
    fn run_stream(&mut self) -> Result<u64, VisionError> {
        let source = self.opts.source.clone();
        let mut child = spawn_ffmpeg(&source)?;
        let pipe = child
            .stdout
            .take()
            .ok_or_else(|| VisionError::Decode("ffmpeg gave no stdout".into()))?;
        let result = self.read_frames(pipe);
        let _ = child.kill();
        let status = child.wait().map_err(|source| VisionError::Io {
            path: PathBuf::from("ffmpeg"),
            source,
        })?;
        let done = result?;
        if done == 0 && !status.success() {
            return Err(VisionError::Decode(format!(
                "ffmpeg could not read {source} ({status})"
            )));
        }
        Ok(done)
    }

    /// Splits ffmpeg's output into JPEGs and detects on each, until the
    /// pipe ends or `max_frames` are done. A corrupt JPEG is skipped.
    fn read_frames(&mut self, mut pipe: ChildStdout) -> Result<u64, VisionError> {
        let source = self.opts.source.clone();
        let mut splitter = JpegSplitter::default();
        let mut buf = vec![0u8; 1 << 16];
        let mut done = 0u64;
        while done < self.max() {
            let n = pipe.read(&mut buf).map_err(|e| VisionError::Io {
                path: PathBuf::from(&source),
                source: e,
            })?;
            if n == 0 {
                break;
            }
            splitter.feed(&buf[..n]);
            while done < self.max() {
                match splitter.next_jpeg() {
                    Ok(Some(jpeg)) => {
                        self.frame(&source, done, &jpeg, format!("frame_{done:06}.jpg"))?;
                        done += 1;
                    }
                    Ok(None) => break,
                    Err(why) => tracing::warn!(source, why, "skipping a corrupt frame"),
                }
            }
        }
        Ok(done)
    }
}

/// `ffmpeg` decoding `source` to a stream of JPEGs on its stdout.
fn spawn_ffmpeg(source: &str) -> Result<Child, VisionError> {
    Command::new("ffmpeg")
        .args(["-loglevel", "error", "-nostdin", "-i", source])
        .args(["-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "3", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| VisionError::Io {
            path: PathBuf::from("ffmpeg (install it: apt-get install ffmpeg)"),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_told_from_files() {
        for (s, want) in [
            ("a.mp4", true),
            ("rtsp://h/x", true),
            ("http://127.0.0.1:8081/", true),
            ("a.jpg", false),
            ("dir", false),
        ] {
            assert_eq!(is_stream(s), want, "{s}");
        }
    }
}
