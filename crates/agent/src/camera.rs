//! Opens the configured camera source. The simulated camera follows the
//! simulated robot's pose (or stands in the room's centre on a hardware
//! board).

use std::sync::Arc;

use gopigo3::sim::SimHandle;
use gopigo_camera::{CameraError, FrameSource};

use crate::config::{CameraConfig, CameraSource};

/// The simulated room of the board (4 m × 3 m, origin at a corner) and the
/// camera's scene (same size, origin at the centre) differ by this shift.
fn room_centre(sim: &SimHandle) -> (f64, f64) {
    sim.with_world(|w| (w.room.width_mm / 2.0, w.room.height_mm / 2.0))
}

/// The frame source `cfg` asks for.
pub fn open_source(
    cfg: &CameraConfig,
    sim: Option<&SimHandle>,
) -> Result<Box<dyn FrameSource>, CameraError> {
    match cfg.source {
        CameraSource::Sim => {
            let pose: Arc<dyn Fn() -> gopigo_camera::sim::Pose + Send + Sync> = match sim {
                Some(h) => {
                    let h = h.clone();
                    let (cx, cy) = room_centre(&h);
                    Arc::new(move || {
                        let p = h.pose();
                        gopigo_camera::sim::Pose {
                            x_mm: p.x_mm - cx,
                            y_mm: p.y_mm - cy,
                            heading_rad: p.heading_rad,
                        }
                    })
                }
                None => Arc::new(gopigo_camera::sim::Pose::default),
            };
            let mut cam = gopigo_camera::sim::SimCamera::default_room(cfg.photo_dir.clone(), pose)?;
            cam.width = cfg.width;
            cam.height = cfg.height;
            Ok(Box::new(cam))
        }
        CameraSource::Folder => {
            let dir = cfg.folder.clone().ok_or_else(|| CameraError::Config {
                field: "camera.folder",
                reason: "source = \"folder\" needs folder = \"/path/to/images\"".into(),
            })?;
            Ok(Box::new(gopigo_camera::folder::ImageFolder::open(&dir)?))
        }
        CameraSource::V4l2 => {
            #[cfg(feature = "v4l2")]
            {
                Ok(Box::new(gopigo_camera::v4l2::V4l2Camera::open(
                    &cfg.device,
                    cfg.width,
                    cfg.height,
                )?))
            }
            #[cfg(not(feature = "v4l2"))]
            {
                Err(CameraError::Config {
                    field: "camera.source",
                    reason: "\"v4l2\" is not built in; rebuild with `--features v4l2`".into(),
                })
            }
        }
        CameraSource::Rpicam => {
            #[cfg(feature = "rpicam")]
            {
                Ok(Box::new(gopigo_camera::pipe::PipeSource::rpicam(
                    cfg.width, cfg.height, cfg.fps,
                )))
            }
            #[cfg(not(feature = "rpicam"))]
            {
                Err(CameraError::Config {
                    field: "camera.source",
                    reason: "\"rpicam\" is not built in; rebuild with `--features hardware`".into(),
                })
            }
        }
    }
}
