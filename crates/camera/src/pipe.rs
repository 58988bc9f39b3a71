//! Frame sources that read a JPEG stream from a helper program's stdout:
//! a video file through `ffmpeg -f mjpeg`, and (feature `rpicam`) the Pi's
//! CSI camera through `rpicam-vid --codec mjpeg -o -`. The stream is cut
//! into frames by [`crate::jpeg::JpegSplitter`].

use std::io::Read;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::jpeg::JpegSplitter;
use crate::{CameraError, Frame, FrameSource};

/// How frames travel from the helper to the capture loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Every frame in order; the helper waits while the capture loop is
    /// slower (right for files: the video plays at the capture rate).
    InOrder,
    /// Only the newest frame; older ones are dropped (right for live
    /// cameras: no growing delay).
    Newest,
}

#[derive(Default)]
struct Slot {
    frame: Option<Vec<u8>>,
    ended: bool,
    closed: bool,
}

type Shared = Arc<(Mutex<Slot>, Condvar)>;

struct Running {
    child: Child,
    shared: Shared,
    reader: Option<JoinHandle<()>>,
    stderr_tail: Arc<Mutex<String>>,
    frames: u64,
}

impl Running {
    fn stop(&mut self) {
        {
            let (lock, cv) = &*self.shared;
            if let Ok(mut s) = lock.lock() {
                s.closed = true;
            }
            cv.notify_all();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// A helper program whose stdout is a stream of JPEG images.
pub struct PipeSource {
    label: String,
    program: String,
    args: Vec<String>,
    hint: &'static str,
    pacing: Pacing,
    restart_on_end: bool,
    frame_timeout: Duration,
    running: Option<Running>,
    seq: u64,
}

impl std::fmt::Debug for PipeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeSource")
            .field("label", &self.label)
            .field("program", &self.program)
            .field("args", &self.args)
            .field("pacing", &self.pacing)
            .finish()
    }
}

impl Drop for PipeSource {
    fn drop(&mut self) {
        if let Some(mut r) = self.running.take() {
            r.stop();
        }
    }
}

fn read_stdout(mut out: ChildStdout, shared: Shared, pacing: Pacing, label: String) {
    let mut splitter = JpegSplitter::default();
    let mut buf = vec![0u8; 64 * 1024];
    let (lock, cv) = &*shared;
    loop {
        let n = match out.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        splitter.feed(&buf[..n]);
        loop {
            match splitter.next_jpeg() {
                Ok(Some(jpeg)) => {
                    let Ok(mut slot) = lock.lock() else { return };
                    if pacing == Pacing::InOrder {
                        while slot.frame.is_some() && !slot.closed {
                            slot = match cv.wait(slot) {
                                Ok(s) => s,
                                Err(_) => return,
                            };
                        }
                    }
                    if slot.closed {
                        return;
                    }
                    slot.frame = Some(jpeg);
                    cv.notify_all();
                }
                Ok(None) => break,
                Err(reason) => tracing::warn!(source = %label, %reason, "skipped a corrupt JPEG"),
            }
        }
    }
    if let Ok(mut slot) = lock.lock() {
        slot.ended = true;
    }
    cv.notify_all();
}

impl PipeSource {
    /// Any program that writes concatenated JPEGs to stdout.
    pub fn command(
        label: impl Into<String>,
        program: impl Into<String>,
        args: Vec<String>,
        pacing: Pacing,
        restart_on_end: bool,
    ) -> Self {
        Self {
            label: label.into(),
            program: program.into(),
            args,
            hint: "install it or fix the command",
            pacing,
            restart_on_end,
            frame_timeout: Duration::from_secs(10),
            running: None,
            seq: 0,
        }
    }

    /// A video file (anything ffmpeg reads) decoded by `ffmpeg -f mjpeg`,
    /// played at the capture rate, from the start again when `looped`.
    pub fn video_file(path: &Path, looped: bool) -> Self {
        let args = ["-hide_banner", "-loglevel", "error", "-nostdin", "-i"]
            .iter()
            .map(|s| s.to_string())
            .chain([path.display().to_string()])
            .chain(
                ["-an", "-f", "mjpeg", "-q:v", "5", "-"]
                    .iter()
                    .map(|s| s.to_string()),
            )
            .collect();
        let mut s = Self::command(
            path.display().to_string(),
            "ffmpeg",
            args,
            Pacing::InOrder,
            looped,
        );
        s.hint = "apt-get install ffmpeg";
        s
    }

    /// The Raspberry Pi camera through `rpicam-vid` (Pi OS Bookworm; older
    /// systems call it `libcamera-vid`: use [`Self::command`]).
    #[cfg(feature = "rpicam")]
    pub fn rpicam(width: u32, height: u32, fps: f64) -> Self {
        let args = vec![
            "-t".into(),
            "0".into(),
            "-n".into(),
            "--codec".into(),
            "mjpeg".into(),
            "--width".into(),
            width.to_string(),
            "--height".into(),
            height.to_string(),
            "--framerate".into(),
            format!("{fps}"),
            "-o".into(),
            "-".into(),
        ];
        let mut s = Self::command("rpicam-vid", "rpicam-vid", args, Pacing::Newest, true);
        s.hint = "apt-get install rpicam-apps (Raspberry Pi OS)";
        s
    }

    /// Longest wait for one frame before `next_frame` reports an error
    /// (default 10 s).
    pub fn set_frame_timeout(&mut self, timeout: Duration) {
        self.frame_timeout = timeout;
    }

    fn start(&mut self) -> Result<(), CameraError> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| CameraError::Spawn {
                program: self.program.clone(),
                source,
                hint: self.hint,
            })?;
        let shared: Shared = Arc::default();
        let stderr_tail = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let tail = stderr_tail.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut t) = tail.lock() {
                        t.push_str(&String::from_utf8_lossy(&buf[..n]));
                        if t.len() > 2000 {
                            let cut = t.len() - 2000;
                            let cut = (cut..t.len()).find(|&i| t.is_char_boundary(i)).unwrap_or(0);
                            t.drain(..cut);
                        }
                    }
                }
            });
        }
        let reader = child.stdout.take().map(|out| {
            let (shared, pacing, label) = (shared.clone(), self.pacing, self.label.clone());
            std::thread::spawn(move || read_stdout(out, shared, pacing, label))
        });
        self.running = Some(Running {
            child,
            shared,
            reader,
            stderr_tail,
            frames: 0,
        });
        Ok(())
    }
}

impl FrameSource for PipeSource {
    fn next_frame(&mut self) -> Result<Frame, CameraError> {
        loop {
            if self.running.is_none() {
                self.start()?;
            }
            let Some(run) = self.running.as_mut() else {
                continue;
            };
            let deadline = Instant::now() + self.frame_timeout;
            let (lock, cv) = &*run.shared.clone();
            let poisoned = || CameraError::CorruptStream {
                source_name: self.label.clone(),
                reason: "reader thread panicked".into(),
            };
            let mut slot = lock.lock().map_err(|_| poisoned())?;
            loop {
                if let Some(jpeg) = slot.frame.take() {
                    cv.notify_all();
                    drop(slot);
                    run.frames += 1;
                    self.seq += 1;
                    let what = format!("frame {} of {}", self.seq, self.label);
                    return Frame::from_jpeg(&jpeg, self.seq, gopigo_protocol::unix_ms(), &what);
                }
                if slot.ended {
                    break;
                }
                let now = Instant::now();
                if now >= deadline {
                    return Err(CameraError::CorruptStream {
                        source_name: self.label.clone(),
                        reason: format!("no frame for {:?}", self.frame_timeout),
                    });
                }
                slot = cv
                    .wait_timeout(slot, deadline - now)
                    .map_err(|_| poisoned())?
                    .0;
            }
            drop(slot);
            // The helper ended.
            let Some(mut run) = self.running.take() else {
                continue;
            };
            let status = run.child.wait().ok();
            run.stop();
            let tail = run
                .stderr_tail
                .lock()
                .map(|t| t.trim().to_string())
                .unwrap_or_default();
            if self.restart_on_end && run.frames > 0 {
                tracing::debug!(source = %self.label, "restarting at the end of the stream");
                continue;
            }
            let status = status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown status".into());
            return Err(CameraError::EndOfStream {
                source_name: self.label.clone(),
                reason: if tail.is_empty() {
                    format!("`{}` ended ({status})", self.program)
                } else {
                    format!("`{}` ended ({status}): {tail}", self.program)
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg;

    fn have(program: &str) -> bool {
        Command::new(program)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    }

    #[test]
    fn a_shell_pipe_of_jpegs_becomes_frames_then_ends() {
        let dir = tempfile::tempdir().unwrap();
        let a = jpeg::encode_jpeg(&jpeg::RgbImage::filled(8, 8, [1, 2, 3]), 80).unwrap();
        let b = jpeg::encode_jpeg(&jpeg::RgbImage::filled(16, 8, [9, 9, 9]), 80).unwrap();
        let file = dir.path().join("two.mjpeg");
        std::fs::write(&file, [a, b].concat()).unwrap();
        let mut src = PipeSource::command(
            "cat",
            "cat",
            vec![file.display().to_string()],
            Pacing::InOrder,
            false,
        );
        let f1 = src.next_frame().unwrap();
        let f2 = src.next_frame().unwrap();
        assert_eq!((f1.width, f1.seq, f2.width, f2.seq), (8, 1, 16, 2));
        assert!(matches!(
            src.next_frame(),
            Err(CameraError::EndOfStream { .. })
        ));
    }

    #[test]
    fn a_missing_program_says_how_to_install_it() {
        let mut src =
            PipeSource::command("x", "no-such-program-gopigo", vec![], Pacing::Newest, false);
        let msg = src.next_frame().unwrap_err().to_string();
        assert!(
            msg.contains("no-such-program-gopigo") && msg.contains("installed"),
            "{msg}"
        );
    }

    #[test]
    fn ffmpeg_video_file_plays_and_loops() {
        if !have("ffmpeg") {
            eprintln!("skipping: ffmpeg not installed (apt-get install ffmpeg)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let video = dir.path().join("test.avi");
        let ok = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x120:rate=10",
                "-frames:v",
                "5",
                "-c:v",
                "mjpeg",
            ])
            .arg(&video)
            .status()
            .unwrap();
        assert!(ok.success());
        let mut src = PipeSource::video_file(&video, true);
        for i in 1..=12u64 {
            let f = src.next_frame().unwrap();
            assert_eq!((f.width, f.height, f.seq), (160, 120, i));
            jpeg::decode_jpeg(&f.jpeg, "video frame").unwrap();
        }
        let mut once = PipeSource::video_file(&video, false);
        let n = std::iter::from_fn(|| once.next_frame().ok()).count();
        assert_eq!(n, 5);
    }
}
