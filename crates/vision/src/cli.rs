//! Command-line front end, for the `gopigo` binary to mount as a
//! subcommand group: `import-darknet` and `detect`.
//!
//! `detect` takes an image, a folder of images, or anything ffmpeg reads (a
//! video file, an MJPEG or RTSP URL: frames come from an `ffmpeg`
//! subprocess as a JPEG stream), and writes one JSON line per frame to
//! stdout, optionally saving annotated JPEGs.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::sources::{image_files, write_json_line, DetectionRecord};
use crate::{
    darknet, draw_detections, encode_jpeg, Detector, DetectorConfig, ResizeMode, VisionError,
};

/// The vision subcommands.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Commands {
    /// Convert a darknet .cfg + .weights into an ONNX model (raw YOLO heads plus metadata).
    ImportDarknet {
        /// Darknet .cfg file.
        cfg: PathBuf,
        /// Darknet .weights file.
        weights: PathBuf,
        /// Class names file, one per line (e.g. coco.names).
        #[arg(long)]
        names: Option<PathBuf>,
        /// Where to write the ONNX model.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Detect objects in an image, a folder of images, a video file or stream URL (via ffmpeg).
    Detect(DetectArgs),
}

/// Options of `detect`.
#[derive(clap::Args, Debug, Clone)]
pub struct DetectArgs {
    /// Image file, folder of images, video file, or URL ffmpeg can open.
    pub source: String,
    /// ONNX model (default: the imported yolov3-tiny in the cache).
    #[arg(long, env = "GOPIGO_VISION_MODEL")]
    pub model: Option<PathBuf>,
    /// Network input size (multiple of 32; default: the model's).
    #[arg(long)]
    pub size: Option<u32>,
    /// Confidence threshold.
    #[arg(long, default_value_t = 0.5)]
    pub conf: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = 0.45)]
    pub nms: f32,
    /// Inference threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Letterbox resizer: fast (SIMD) or darknet (matches the reference implementation).
    #[arg(long, value_enum, default_value_t = ResizeMode::Fast)]
    pub resize: ResizeMode,
    /// Folder to write annotated JPEGs into.
    #[arg(long)]
    pub draw: Option<PathBuf>,
    /// Stop after this many frames.
    #[arg(long)]
    pub max_frames: Option<u64>,
}

/// Run a subcommand; `detect` writes JSON lines to stdout.
pub fn run(cmd: Commands) -> Result<(), VisionError> {
    match cmd {
        Commands::ImportDarknet {
            cfg,
            weights,
            names,
            output,
        } => {
            let names = match names {
                Some(p) => darknet::read_names(&p)?,
                None => Vec::new(),
            };
            let bytes = darknet::import_darknet_with_names(&cfg, &weights, &names)?;
            std::fs::write(&output, bytes).map_err(|source| VisionError::Io {
                path: output.clone(),
                source,
            })?;
            Ok(())
        }
        Commands::Detect(args) => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            run_detect(&args, &mut out).map(|_| ())
        }
    }
}

fn is_stream(source: &str) -> bool {
    const VIDEO: [&str; 9] = [
        "mp4", "mkv", "avi", "mov", "webm", "mjpeg", "mjpg", "h264", "ts",
    ];
    source.contains("://")
        || Path::new(source)
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| VIDEO.iter().any(|v| v.eq_ignore_ascii_case(e)))
}

/// Run detection over `args.source`, writing one JSON line per frame to
/// `out`. Returns the number of frames processed.
pub fn run_detect(args: &DetectArgs, out: &mut dyn Write) -> Result<u64, VisionError> {
    let model = match &args.model {
        Some(m) => m.clone(),
        None => crate::ensure_default_model()?,
    };
    let config = DetectorConfig {
        input_size: args.size,
        conf_threshold: args.conf,
        nms_threshold: args.nms,
        threads: args.threads,
        resize: args.resize,
        runtime_path: None,
    };
    let mut det = Detector::load(&model, &config)?;
    if let Some(dir) = &args.draw {
        std::fs::create_dir_all(dir).map_err(|source| VisionError::Io {
            path: dir.clone(),
            source,
        })?;
    }
    let max = args.max_frames.unwrap_or(u64::MAX);
    let mut frame_no = 0u64;
    let mut handle =
        |label: &str, frame: u64, jpeg: &[u8], draw_name: String| -> Result<(), VisionError> {
            let img = crate::decode_jpeg(jpeg)?;
            let dets = det.detect_rgb(&img)?;
            write_json_line(
                out,
                &DetectionRecord {
                    source: label,
                    frame,
                    detections: &dets,
                },
            )
            .map_err(|source| VisionError::Io {
                path: PathBuf::from("<stdout>"),
                source,
            })?;
            if let Some(dir) = &args.draw {
                let path = dir.join(draw_name);
                let bytes = encode_jpeg(&draw_detections(&img, &dets), 85)?;
                std::fs::write(&path, bytes).map_err(|source| VisionError::Io { path, source })?;
            }
            Ok(())
        };
    if is_stream(&args.source) {
        let mut child = Command::new("ffmpeg")
            .args([
                "-loglevel",
                "error",
                "-nostdin",
                "-i",
                &args.source,
                "-f",
                "image2pipe",
                "-c:v",
                "mjpeg",
                "-q:v",
                "3",
                "-",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|source| VisionError::Io {
                path: PathBuf::from("ffmpeg (install it: apt-get install ffmpeg)"),
                source,
            })?;
        let mut pipe = child
            .stdout
            .take()
            .ok_or_else(|| VisionError::Decode("ffmpeg gave no stdout".into()))?;
        let mut splitter = JpegSplitter::default();
        let mut buf = vec![0u8; 1 << 16];
        let mut result = Ok(());
        'read: while frame_no < max {
            let n = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(source) => {
                    result = Err(VisionError::Io {
                        path: PathBuf::from(&args.source),
                        source,
                    });
                    break;
                }
            };
            for jpeg in splitter.push(&buf[..n]) {
                if frame_no >= max {
                    break 'read;
                }
                if let Err(e) = handle(
                    &args.source,
                    frame_no,
                    &jpeg,
                    format!("frame_{frame_no:06}.jpg"),
                ) {
                    result = Err(e);
                    break 'read;
                }
                frame_no += 1;
            }
        }
        drop(pipe);
        let _ = child.kill();
        let status = child.wait().map_err(|source| VisionError::Io {
            path: PathBuf::from("ffmpeg"),
            source,
        })?;
        result?;
        if frame_no == 0 && !status.success() {
            return Err(VisionError::Decode(format!(
                "ffmpeg could not read {} ({status})",
                args.source
            )));
        }
    } else {
        for path in image_files(Path::new(&args.source))? {
            if frame_no >= max {
                break;
            }
            let jpeg = std::fs::read(&path).map_err(|source| VisionError::Io {
                path: path.clone(),
                source,
            })?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            let label = path.to_string_lossy().into_owned();
            handle(&label, 0, &jpeg, format!("{stem}.jpg")).map_err(|e| match e {
                VisionError::Decode(m) => VisionError::Decode(format!("{label}: {m}")),
                other => other,
            })?;
            frame_no += 1;
        }
    }
    Ok(frame_no)
}

/// Splits a byte stream of concatenated JPEGs (ffmpeg's `image2pipe`) into
/// whole images by walking the marker segments.
#[derive(Debug, Default)]
pub struct JpegSplitter {
    buf: Vec<u8>,
}

/// Length of the complete JPEG at the start of `b`, if there is one;
/// `Err(skip)` when `b` does not start with SOI (skip that many bytes).
fn jpeg_len(b: &[u8]) -> Result<Option<usize>, usize> {
    if b.len() < 2 {
        return Ok(None);
    }
    if b[0] != 0xFF || b[1] != 0xD8 {
        let next = b
            .windows(2)
            .skip(1)
            .position(|w| w == [0xFF, 0xD8])
            .map(|p| p + 1)
            .unwrap_or(b.len() - 1);
        return Err(next);
    }
    let mut i = 2;
    loop {
        // at a marker
        while i < b.len() && b[i] == 0xFF && i + 1 < b.len() && b[i + 1] == 0xFF {
            i += 1; // fill bytes
        }
        if i + 1 >= b.len() {
            return Ok(None);
        }
        if b[i] != 0xFF {
            return Err(i.max(1)); // corrupt: resynchronise
        }
        let m = b[i + 1];
        i += 2;
        match m {
            0xD9 => return Ok(Some(i)),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {
                if i + 1 >= b.len() {
                    return Ok(None);
                }
                let len = u16::from_be_bytes([b[i], b[i + 1]]) as usize;
                i += len;
                if m == 0xDA {
                    // entropy-coded data up to the next real marker
                    loop {
                        if i + 1 >= b.len() {
                            return Ok(None);
                        }
                        if b[i] == 0xFF && b[i + 1] != 0x00 && !(0xD0..=0xD7).contains(&b[i + 1]) {
                            break;
                        }
                        i += 1;
                    }
                }
            }
        }
    }
}

impl JpegSplitter {
    /// Feed bytes; returns the JPEGs completed by them.
    pub fn push(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            match jpeg_len(&self.buf[start..]) {
                Ok(Some(n)) => {
                    out.push(self.buf[start..start + n].to_vec());
                    start += n;
                }
                Ok(None) => break,
                Err(skip) => start += skip,
            }
        }
        self.buf.drain(..start);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_jpeg(shade: u8) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(8, 8, image::Rgb([shade, 0, 0]));
        encode_jpeg(&img, 90).unwrap()
    }

    #[test]
    fn splitter_recovers_frames_across_chunk_boundaries() {
        let frames: Vec<Vec<u8>> = (0..3).map(|i| tiny_jpeg(i * 100)).collect();
        let stream: Vec<u8> = frames.concat();
        for chunk in [1, 7, 100, stream.len()] {
            let mut s = JpegSplitter::default();
            let got: Vec<Vec<u8>> = stream.chunks(chunk).flat_map(|c| s.push(c)).collect();
            assert_eq!(got, frames, "chunk {chunk}");
        }
    }

    #[test]
    fn splitter_skips_garbage_between_frames() {
        let f = tiny_jpeg(7);
        let mut stream = b"junk".to_vec();
        stream.extend(&f);
        stream.extend(b"\x00\xFF");
        stream.extend(&f);
        let got = JpegSplitter::default().push(&stream);
        assert_eq!(got, vec![f.clone(), f]);
    }

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

    #[test]
    fn cli_parses() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct T {
            #[command(subcommand)]
            c: Commands,
        }
        let t = T::try_parse_from([
            "t", "detect", "img.jpg", "--size", "320", "--resize", "darknet", "--conf", "0.3",
        ])
        .unwrap();
        match t.c {
            Commands::Detect(a) => {
                assert_eq!(
                    (a.size, a.resize, a.conf, a.threads),
                    (Some(320), ResizeMode::Darknet, 0.3, 2)
                );
            }
            other => panic!("{other:?}"),
        }
        let t = T::try_parse_from(["t", "import-darknet", "a.cfg", "a.weights", "-o", "m.onnx"])
            .unwrap();
        assert!(matches!(t.c, Commands::ImportDarknet { .. }));
    }
}
