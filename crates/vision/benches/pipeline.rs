//! End-to-end detection throughput (JPEG decode -> letterbox -> inference ->
//! decode + NMS) at 416 and 320 on 2 threads: ours in int8 and fp32 beside
//! the same pipeline in Python (onnxruntime + OpenCV, fp32 and int8, or
//! PIL, `benches/py/bench_python.py`) and beside darknet itself
//! (`benches/py/bench_darknet.py`), same images, same run. Prints a table
//! with ratios. Needs `crates/vision/setup.sh` (including its int8 step).
//!
//! `cargo bench -p gopigo-vision --bench pipeline` (env: BENCH_FRAMES,
//! BENCH_ROUNDS, BENCH_THREADS, BENCH_SKIP_DARKNET=1, BENCH_SKIP_PIL=1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use gopigo_vision::{Detector, DetectorConfig, Precision, ResizeMode};

const IMAGES: [&str; 8] = [
    "dog", "person", "horses", "eagle", "giraffe", "kite", "bus", "zidane",
];

fn env_num(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn run_script(cmd: &mut Command) -> serde_json::Value {
    let out = cmd
        .stderr(std::process::Stdio::null())
        .output()
        .expect("run benchmark script");
    assert!(out.status.success(), "benchmark script failed: {cmd:?}");
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).expect("script JSON")
}

/// (mean FPS, FPS from the median frame time) reported by a script.
fn fps_of_script(cmd: &mut Command) -> (f64, f64) {
    let v = run_script(cmd);
    (
        v["fps"].as_f64().expect("fps"),
        v["median_fps"].as_f64().expect("median_fps"),
    )
}

/// (mean FPS, FPS from the median frame time).
fn ours(
    model: &Path,
    size: u32,
    threads: usize,
    resize: ResizeMode,
    jpegs: &[Vec<u8>],
    frames: usize,
) -> (f64, f64) {
    let config = DetectorConfig {
        input_size: Some(size),
        threads,
        resize,
        ..Default::default()
    };
    let mut det = Detector::load(model, &config).unwrap();
    for j in jpegs.iter().take(3) {
        det.detect_jpeg(j).unwrap();
    }
    let t0 = Instant::now();
    let mut n = 0;
    let mut times = Vec::with_capacity(frames);
    for i in 0..frames {
        let t = Instant::now();
        n += det.detect_jpeg(&jpegs[i % jpegs.len()]).unwrap().len();
        times.push(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(n);
    let mean = frames as f64 / t0.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    (mean, 1.0 / times[times.len() / 2])
}

fn best(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (a.0.max(b.0), a.1.max(b.1))
}

fn infer_ms(model: &Path, size: u32, threads: usize) -> f64 {
    let config = DetectorConfig {
        input_size: Some(size),
        threads,
        ..Default::default()
    };
    let mut det = Detector::load(model, &config).unwrap();
    let input = vec![0.5f32; 3 * size as usize * size as usize];
    for _ in 0..3 {
        det.raw_outputs(&input).unwrap();
    }
    let n = 20;
    let t = Instant::now();
    for _ in 0..n {
        det.raw_outputs(&input).unwrap();
    }
    t.elapsed().as_secs_f64() * 1000.0 / n as f64
}

fn stage_times(jpegs: &[Vec<u8>], size: u32) -> (f64, f64, f64) {
    let mut dec = 0.0;
    let mut fast = 0.0;
    let mut dn = 0.0;
    let mut buf = Vec::new();
    let mut st = gopigo_vision::preprocess::FastResizer::default();
    for j in jpegs {
        let t = Instant::now();
        let img = gopigo_camera::jpeg::decode_jpeg(j, "bench image").unwrap();
        dec += t.elapsed().as_secs_f64();
        let t = Instant::now();
        gopigo_vision::preprocess::letterbox_fast(&img, size, size, &mut st, &mut buf);
        fast += t.elapsed().as_secs_f64();
        let t = Instant::now();
        gopigo_vision::preprocess::letterbox_darknet(&img, size, size, &mut buf);
        dn += t.elapsed().as_secs_f64();
    }
    let n = jpegs.len() as f64 / 1000.0;
    (dec / n, fast / n, dn / n)
}

/// What every row of the bench runs on.
struct Bench {
    cache: PathBuf,
    model: PathBuf,
    int8: PathBuf,
    images: Vec<PathBuf>,
    jpegs: Vec<Vec<u8>>,
    frames: usize,
    rounds: usize,
    threads: usize,
    python: PathBuf,
    bench_py: PathBuf,
    bench_dn: PathBuf,
    skip_darknet: bool,
    skip_pil: bool,
}

impl Bench {
    fn from_env() -> Self {
        let cache = gopigo_vision::cache_dir();
        let model = gopigo_vision::model_for(None, Precision::Fp32)
            .unwrap_or_else(|e| panic!("{e}\n(run crates/vision/setup.sh first)"));
        let int8 = gopigo_vision::model_for(None, Precision::Int8)
            .unwrap_or_else(|e| panic!("{e}\n(run crates/vision/setup.sh first)"));
        let images: Vec<PathBuf> = IMAGES
            .iter()
            .map(|i| cache.join("images").join(format!("{i}.jpg")))
            .collect();
        let jpegs: Vec<Vec<u8>> = images
            .iter()
            .map(|p| {
                std::fs::read(p)
                    .unwrap_or_else(|e| panic!("{}: {e} (run crates/vision/setup.sh)", p.display()))
            })
            .collect();
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        Bench {
            python: cache.join("py/bin/python"),
            cache,
            model,
            int8,
            images,
            jpegs,
            frames: env_num("BENCH_FRAMES", 40),
            rounds: env_num("BENCH_ROUNDS", 2),
            threads: env_num("BENCH_THREADS", 2),
            bench_py: here.join("benches/py/bench_python.py"),
            bench_dn: here.join("benches/py/bench_darknet.py"),
            skip_darknet: std::env::var("BENCH_SKIP_DARKNET").is_ok_and(|v| v == "1")
                || !Path::new("/usr/lib/darknet/libdarknet.so").exists(),
            skip_pil: std::env::var("BENCH_SKIP_PIL").is_ok_and(|v| v == "1"),
        }
    }

    /// The Python pipeline's script on `model` (`kind`: cv2 or pil).
    fn python_cmd(&self, model: &Path, size: u32, kind: &str) -> Command {
        let mut c = Command::new(&self.python);
        c.arg(&self.bench_py)
            .arg(model)
            .args([
                size.to_string(),
                self.threads.to_string(),
                self.frames.to_string(),
                kind.to_string(),
            ])
            .args(&self.images);
        c
    }

    /// darknet's own binary through its Python bindings, fp32.
    fn darknet_fps(&self, size: u32) -> (f64, f64) {
        fps_of_script(
            Command::new("python3")
                .env("OMP_NUM_THREADS", self.threads.to_string())
                .arg(&self.bench_dn)
                .arg(self.cache.join("model/yolov3-tiny.cfg"))
                .arg(self.cache.join("model/yolov3-tiny.weights"))
                .args([size.to_string(), IMAGES.len().to_string()])
                .args(&self.images),
        )
    }

    /// One row of the FPS table: every pipeline at `size`, interleaved
    /// round by round so each sees the same machine load.
    fn fps_row(&self, size: u32) {
        let z = (0f64, 0f64);
        let (mut oi, mut of, mut pc, mut pi, mut pp, mut dk) = (z, z, z, z, z, z);
        let (t, f) = (self.threads, self.frames);
        for _ in 0..self.rounds {
            oi = best(
                oi,
                ours(&self.int8, size, t, ResizeMode::Fast, &self.jpegs, f),
            );
            of = best(
                of,
                ours(&self.model, size, t, ResizeMode::Fast, &self.jpegs, f),
            );
            pc = best(
                pc,
                fps_of_script(&mut self.python_cmd(&self.model, size, "cv2")),
            );
            pi = best(
                pi,
                fps_of_script(&mut self.python_cmd(&self.int8, size, "cv2")),
            );
            if !self.skip_pil {
                pp = best(
                    pp,
                    fps_of_script(&mut self.python_cmd(&self.model, size, "pil")),
                );
            }
        }
        if !self.skip_darknet {
            dk = self.darknet_fps(size);
        }
        let ratio = |a: (f64, f64), b: (f64, f64)| {
            if b.0 > 0.0 && a.0 > 0.0 {
                format!("{:.2}x / {:.2}x", a.0 / b.0, a.1 / b.1)
            } else {
                "-".into()
            }
        };
        let fmt = |v: (f64, f64)| {
            if v.0 > 0.0 {
                format!("{:.1} / {:.1}", v.0, v.1)
            } else {
                "-".into()
            }
        };
        println!(
            "| {size} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            fmt(oi),
            fmt(of),
            fmt(pc),
            fmt(pi),
            fmt(pp),
            fmt(dk),
            ratio(oi, pc),
            ratio(of, pc),
            ratio(oi, of),
            ratio(oi, pi),
            ratio(of, dk),
        );
    }

    /// Where the time of one frame goes at `size`, ours beside Python's.
    fn stages_row(&self, size: u32) {
        let (dec, fast, dn) = stage_times(&self.jpegs, size);
        let inf = infer_ms(&self.model, size, self.threads);
        let inf8 = infer_ms(&self.int8, size, self.threads);
        let py = run_script(&mut self.python_cmd(&self.model, size, "cv2"));
        println!(
            "stages at {size} (mean per image): ours: JPEG decode {dec:.2} ms, letterbox fast {fast:.2} ms / darknet {dn:.2} ms, inference fp32 {inf:.1} ms / int8 {inf8:.1} ms | python cv2 fp32: {}",
            py["stages_ms"]
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` probes; nothing to list or test.
    }
    let b = Bench::from_env();
    println!(
        "images: {} ({})  frames/run: {}  best of {} rounds  threads: {}",
        IMAGES.len(),
        IMAGES.join(","),
        b.frames,
        b.rounds,
        b.threads
    );
    println!();
    println!(
        "FPS as mean / from the median frame time (the median resists other processes' bursts)"
    );
    println!();
    println!("| input | ours int8 | ours fp32 | python cv2 fp32 | python cv2 int8 | python PIL fp32 | darknet | int8/python fp32 | fp32/python fp32 | int8/fp32 (ours) | int8/python int8 | ours fp32/darknet |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for size in [416u32, 320] {
        b.fps_row(size);
    }
    println!();
    for size in [416u32, 320] {
        b.stages_row(size);
    }
}
