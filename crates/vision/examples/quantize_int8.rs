//! Makes the int8 default model (`crates/vision/setup.sh` runs this):
//! calibration set from the reference photos and the simulated camera,
//! then ONNX Runtime's quantiser in the set-up venv. Does nothing when a
//! model made with the current settings is there.
//!
//! `cargo run -p gopigo-vision --example quantize_int8 [PYTHON]`
//! (default PYTHON: the set-up venv's, `$GOPIGO_CACHE/vision/py/bin/python`).
//! `... --example quantize_int8 -- --write-sets DIR` only writes the
//! calibration inputs (DIR/calib) and the held-out simulated frames
//! (DIR/held_out) as `.npy`, for trying quantiser settings by hand.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "--write-sets") {
        let Some(dir) = args.get(1).map(PathBuf::from) else {
            eprintln!("quantize_int8 --write-sets DIR");
            return ExitCode::FAILURE;
        };
        return match write_sets(&dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("quantize_int8: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let python = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| gopigo_vision::cache_dir().join("py/bin/python"));
    match gopigo_vision::int8::ensure_int8_model(&python) {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("quantize_int8: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The calibration set and the held-out simulated frames, as `.npy`.
fn write_sets(dir: &std::path::Path) -> Result<(), gopigo_vision::VisionError> {
    use gopigo_vision::int8::*;
    let images = gopigo_vision::cache_dir().join("images");
    write_calibration_set(
        &calibration_images(&images)?,
        &CALIBRATION_SIZES,
        &dir.join("calib"),
    )?;
    write_calibration_set(
        &sim_frames(&images, &held_out_poses())?,
        &CALIBRATION_SIZES,
        &dir.join("held_out"),
    )?;
    Ok(())
}
