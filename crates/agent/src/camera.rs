//! Opens the configured camera source and serves it. The simulated camera
//! follows the simulated robot's pose (or stands in the room's centre on a
//! hardware board).
//!
//! The server is guarded: a token made at each start from the OS random
//! number generator (published only in the retained status, which the
//! robot itself and controllers can read), `[camera] max_viewers`, and the
//! camera crate's connection cap and timeouts.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use gopigo3::sim::SimHandle;
use gopigo_camera::mjpeg::{AccessToken, ServeOptions};
use gopigo_camera::{CameraControl, CameraError, FrameBus, FrameSource};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{AgentConfig, CameraConfig, CameraSource};
use crate::AgentError;

/// A running camera server.
pub struct Started {
    /// Pauses and resumes capture (the shadow's `camera_on`).
    pub control: Arc<CameraControl>,
    /// The advertised stream URL (status `camera_url`).
    pub url: String,
    /// This boot's access token (status `camera_token`).
    pub token: AccessToken,
    /// The newest frame (for the MQTT video publisher).
    pub bus: FrameBus,
}

/// Starts capture and the guarded MJPEG server when `[camera] enabled`;
/// both stop when `cancel` is cancelled.
pub async fn start(
    cfg: &AgentConfig,
    sim: Option<&SimHandle>,
    cancel: CancellationToken,
) -> Result<Option<Started>, AgentError> {
    if !cfg.camera.enabled {
        return Ok(None);
    }
    let source = open_source(&cfg.camera, sim)?;
    let bus = FrameBus::new();
    let control = CameraControl::new(true);
    gopigo_camera::spawn_capture(
        source,
        cfg.camera.fps,
        bus.clone(),
        control.clone(),
        cancel.clone(),
    )?;
    let listener = bind(&cfg.camera).await?;
    let addr = listener.local_addr().map_err(|source| AgentError::Io {
        what: "read the camera address".into(),
        source,
    })?;
    let token = AccessToken::generate().map_err(|e| AgentError::Io {
        what: "make the camera token".into(),
        source: std::io::Error::other(e),
    })?;
    let url = camera_url(cfg, addr);
    crate::agent::announce(format!(
        "camera      {url} (token in the retained status; at most {} viewers)",
        cfg.camera.max_viewers
    ));
    let options = ServeOptions::new(Some(token.clone())).with_max_viewers(cfg.camera.max_viewers);
    let served = bus.clone();
    tokio::spawn(async move {
        let stopped = cancel.cancelled_owned();
        if let Err(e) = gopigo_camera::mjpeg::serve(listener, served, options, stopped).await {
            tracing::error!(error = %e, "camera server failed");
        }
    });
    Ok(Some(Started {
        control,
        url,
        token,
        bus,
    }))
}

async fn bind(cfg: &CameraConfig) -> Result<TcpListener, AgentError> {
    let ip: IpAddr = cfg.bind.parse().map_err(|_| AgentError::Io {
        what: format!("parse [camera] bind = {:?}", cfg.bind),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    TcpListener::bind((ip, cfg.port))
        .await
        .map_err(|source| AgentError::Io {
            what: format!(
                "bind the camera port {ip}:{} ([camera] port; 0 = any free port)",
                cfg.port
            ),
            source,
        })
}

/// The advertised camera URL for a bound address.
fn camera_url(cfg: &AgentConfig, addr: SocketAddr) -> String {
    let host = match &cfg.camera.public_host {
        Some(h) => h.clone(),
        None if addr.ip().is_loopback() => addr.ip().to_string(),
        None => std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "localhost".into()),
    };
    format!("http://{host}:{}/stream.mjpg", addr.port())
}

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
