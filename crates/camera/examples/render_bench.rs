//! Measures the simulated camera: render and JPEG-encode time per frame.
//!
//! `cargo run --release -p gopigo-camera --example render_bench [PHOTO_DIR] [OUT_DIR]`
//! prints a table; with OUT_DIR it also writes one JPEG per heading there.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use gopigo_camera::jpeg;
use gopigo_camera::sim::{Pose, SimCamera};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map(PathBuf::from);
    let out = args.next().map(PathBuf::from);
    let cam = SimCamera::default_room(dir, Arc::new(Pose::default))?;
    let n = 50;
    println!(
        "{:>8} {:>8} {:>12} {:>12} {:>10}",
        "heading", "facing", "render ms", "encode ms", "jpeg KiB"
    );
    for deg in [0.0f64, 90.0, 180.0, 270.0] {
        let pose = Pose {
            heading_rad: deg.to_radians(),
            ..Pose::default()
        };
        let facing = match cam.probe(pose, cam.width / 2, cam.height / 2) {
            gopigo_camera::sim::Probe::Photo(name) => name,
            other => format!("{other:?}"),
        };
        let (mut render, mut encode, mut size) = (0.0, 0.0, 0);
        for _ in 0..n {
            let t = Instant::now();
            let img = cam.render(pose);
            let t2 = Instant::now();
            let bytes = jpeg::encode_jpeg(&img, cam.quality)?;
            encode += t2.elapsed().as_secs_f64();
            render += (t2 - t).as_secs_f64();
            size = bytes.len();
            if let Some(dir) = &out {
                std::fs::create_dir_all(dir)?;
                std::fs::write(dir.join(format!("view_{deg:03.0}.jpg")), &bytes)?;
            }
        }
        println!(
            "{:>8} {:>8} {:>12.2} {:>12.2} {:>10}",
            deg,
            facing,
            render * 1000.0 / f64::from(n),
            encode * 1000.0 / f64::from(n),
            size / 1024
        );
    }
    Ok(())
}
