//! A simulated camera: the robot's view of a room whose walls carry real
//! photographs, so turning the robot changes what a detector sees.
//!
//! The renderer is a column ray caster (Wolfenstein style): one ray per
//! image column finds the nearest wall; the column is then filled with
//! ceiling, wall (or the photo hanging on it) and floor by height, with
//! distance shading. The camera is a pinhole with the Pi camera's 62°
//! horizontal field of view, mounted `eye_height_mm` above the floor and
//! tilted up by `pitch_deg` (as a vertical image shift), so photos hung at
//! eye level of a person still fill the frame of a robot-height camera.
//!
//! Coordinates: millimetres, x forward at heading 0, y to the left,
//! heading in radians counter-clockwise (a left turn increases it), which is
//! the convention of the GoPiGo3 simulator's odometry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::jpeg::{self, RgbImage};
use crate::{CameraError, Frame, FrameSource};

/// Where Debian's `darknet` package puts its sample photos.
pub const DEFAULT_PHOTO_DIR: &str = "/usr/share/darknet/data";

/// The robot's position and heading on the floor.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pose {
    /// Millimetres along x.
    pub x_mm: f64,
    /// Millimetres along y.
    pub y_mm: f64,
    /// Radians, counter-clockwise from +x.
    pub heading_rad: f64,
}

/// A decoded photo.
#[derive(Debug, Clone)]
pub struct Texture {
    /// The file stem ("dog"), used in probes and logs.
    pub name: String,
    /// The photo's pixels, sampled as it is drawn on a wall.
    pub image: RgbImage,
}

/// A photo hung on a wall.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Photo {
    /// Index into [`Scene::textures`].
    pub texture: usize,
    /// Left edge, in mm along the wall from [`Wall::a`] (as seen from inside).
    pub from_mm: f64,
    /// Right edge, in mm along the wall.
    pub to_mm: f64,
    /// Height of the lower edge above the floor.
    pub bottom_mm: f64,
    /// Height of the upper edge.
    pub top_mm: f64,
}

/// A straight wall from `a` to `b`. Seen from the side it is viewed from,
/// `a` is on the left, so photos are not mirrored (room walls run clockwise
/// seen from above).
#[derive(Debug, Clone, PartialEq)]
pub struct Wall {
    /// Start point (x, y) in mm.
    pub a: (f64, f64),
    /// End point (x, y) in mm.
    pub b: (f64, f64),
    /// Plain wall colour.
    pub color: [u8; 3],
    /// Photos on this wall.
    pub photos: Vec<Photo>,
}

impl Wall {
    fn length(&self) -> f64 {
        (self.b.0 - self.a.0).hypot(self.b.1 - self.a.1)
    }
}

/// What a camera ray sees at one pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A photo, by texture name.
    Photo(String),
    /// Bare wall, by wall index.
    Wall(usize),
    /// Floor: below the horizon with no wall hit, or under a wall's foot.
    Floor,
    /// Ceiling: above the horizon with no wall hit, or over a wall's top.
    Ceiling,
}

/// The room: walls with photos, floor and ceiling colours.
#[derive(Debug, Clone)]
pub struct Scene {
    /// Every wall, in any order; [`Probe::Wall`] indexes into this list.
    pub walls: Vec<Wall>,
    /// Photos, referenced by [`Photo::texture`].
    pub textures: Vec<Texture>,
    /// Wall height in mm.
    pub wall_height_mm: f64,
    /// RGB of every [`Probe::Floor`] pixel (the floor is flat, untextured).
    pub floor_color: [u8; 3],
    /// RGB of every [`Probe::Ceiling`] pixel.
    pub ceiling_color: [u8; 3],
}

/// The photos of the default room: (file stem, wall, centre along the wall
/// as a fraction, width in mm). Walls: 0 north (+y), 1 east (+x), 2 south
/// (−y), 3 west (−x). From the centre, heading 0 faces the dog, a left turn
/// of 90° faces the person, 180° the horses, 270° the giraffe.
const DEFAULT_PHOTOS: &[(&str, usize, f64, f64, bool)] = &[
    ("dog", 1, 0.5, 1800.0, true),
    ("person", 0, 0.5, 1600.0, true),
    ("horses", 3, 0.5, 1800.0, true),
    ("giraffe", 2, 0.5, 1400.0, true),
    ("eagle", 0, 0.88, 700.0, false),
    ("kite", 2, 0.88, 700.0, false),
];

/// Widest a photo is kept in memory; larger ones are scaled down once.
const MAX_TEXTURE_WIDTH: u32 = 800;

impl Scene {
    /// A 4 m × 3 m room centred on the origin (x from −2000 to 2000 mm,
    /// y from −1500 to 1500 mm), one large photo from `photo_dir` in the
    /// middle of each wall (dog east, person north, horses west, giraffe
    /// south) and, when present, eagle and kite near corners. The four
    /// main photos are required (install them with
    /// `apt-get install darknet`).
    pub fn default_room(photo_dir: &Path) -> Result<Scene, CameraError> {
        let mut scene = Scene::empty_room(4000.0, 3000.0);
        for &(stem, wall, centre, width, required) in DEFAULT_PHOTOS {
            let path = photo_dir.join(format!("{stem}.jpg"));
            if !required && !path.exists() {
                continue;
            }
            let texture = load_texture(&path).map_err(|e| match e {
                CameraError::Read { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
                    CameraError::Read {
                        path,
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "photo missing; install Debian's darknet package (apt-get install darknet) or pass a folder holding dog.jpg, person.jpg, horses.jpg and giraffe.jpg",
                        ),
                    }
                }
                other => other,
            })?;
            scene.hang(wall, texture, centre, width, 100.0);
        }
        Ok(scene)
    }

    /// A rectangular room of `width_mm` (x) by `depth_mm` (y) centred on
    /// the origin, no photos.
    pub fn empty_room(width_mm: f64, depth_mm: f64) -> Scene {
        let (hx, hy) = (width_mm / 2.0, depth_mm / 2.0);
        Scene {
            walls: vec![
                Wall {
                    a: (-hx, hy),
                    b: (hx, hy),
                    color: [196, 186, 170],
                    photos: vec![],
                },
                Wall {
                    a: (hx, hy),
                    b: (hx, -hy),
                    color: [170, 180, 192],
                    photos: vec![],
                },
                Wall {
                    a: (hx, -hy),
                    b: (-hx, -hy),
                    color: [196, 186, 170],
                    photos: vec![],
                },
                Wall {
                    a: (-hx, -hy),
                    b: (-hx, hy),
                    color: [170, 180, 192],
                    photos: vec![],
                },
            ],
            textures: vec![],
            wall_height_mm: 2500.0,
            floor_color: [120, 96, 72],
            ceiling_color: [232, 232, 228],
        }
    }

    /// Hangs `texture` on wall `wall`, centred at `centre` (0..1 along the
    /// wall), `width_mm` wide, keeping its aspect ratio, lower edge at
    /// `bottom_mm`. Out-of-range walls are ignored.
    pub fn hang(
        &mut self,
        wall: usize,
        texture: Texture,
        centre: f64,
        width_mm: f64,
        bottom_mm: f64,
    ) {
        let Some(w) = self.walls.get(wall) else {
            return;
        };
        let aspect = f64::from(texture.image.height) / f64::from(texture.image.width.max(1));
        let mid = w.length() * centre;
        let photo = Photo {
            texture: self.textures.len(),
            from_mm: mid - width_mm / 2.0,
            to_mm: mid + width_mm / 2.0,
            bottom_mm,
            top_mm: bottom_mm + width_mm * aspect,
        };
        self.textures.push(texture);
        self.walls[wall].photos.push(photo);
    }

    /// The nearest wall hit by a ray from `origin` along `dir`:
    /// (distance in units of `dir`, wall index, mm along the wall).
    fn cast(&self, origin: (f64, f64), dir: (f64, f64)) -> Option<(f64, usize, f64)> {
        let mut best: Option<(f64, usize, f64)> = None;
        for (i, w) in self.walls.iter().enumerate() {
            let e = (w.b.0 - w.a.0, w.b.1 - w.a.1);
            let denom = dir.0 * e.1 - dir.1 * e.0;
            if denom.abs() < 1e-12 {
                continue;
            }
            let ap = (w.a.0 - origin.0, w.a.1 - origin.1);
            let s = (ap.0 * e.1 - ap.1 * e.0) / denom;
            let t = (ap.0 * dir.1 - ap.1 * dir.0) / denom;
            if s > 1e-6 && (0.0..=1.0).contains(&t) && best.is_none_or(|b| s < b.0) {
                best = Some((s, i, t * w.length()));
            }
        }
        best
    }
}

/// Decodes a photo file into a texture, scaled down when very wide.
pub fn load_texture(path: &Path) -> Result<Texture, CameraError> {
    let bytes = std::fs::read(path).map_err(|source| CameraError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut image = jpeg::decode_image(&bytes, &path.display().to_string())?;
    if image.width > MAX_TEXTURE_WIDTH {
        let h = (f64::from(image.height) * f64::from(MAX_TEXTURE_WIDTH) / f64::from(image.width))
            .round() as u32;
        image = image.resized(MAX_TEXTURE_WIDTH, h.max(1));
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Texture { name, image })
}

/// The simulated camera.
pub struct SimCamera {
    /// What the camera films; rays are cast against its walls each frame.
    pub scene: Scene,
    /// Where the robot is now (called once per frame).
    pub pose: Arc<dyn Fn() -> Pose + Send + Sync>,
    /// Image width in pixels (default 640).
    pub width: u32,
    /// Image height in pixels (default 480).
    pub height: u32,
    /// Horizontal field of view in degrees (default 62, the Pi camera's).
    pub hfov_deg: f64,
    /// Camera height above the floor (default 150 mm).
    pub eye_height_mm: f64,
    /// Upward tilt in degrees (default 15).
    pub pitch_deg: f64,
    /// JPEG quality (default 80).
    pub quality: u8,
    seq: u64,
}

impl std::fmt::Debug for SimCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCamera")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("hfov_deg", &self.hfov_deg)
            .field("seq", &self.seq)
            .finish()
    }
}

/// Per-frame projection constants.
struct Projection {
    w: u32,
    h: u32,
    focal: f64,
    horizon: f64,
    eye: f64,
}

impl SimCamera {
    /// A 640×480, 62° camera in `scene`, following `pose`.
    pub fn new(scene: Scene, pose: Arc<dyn Fn() -> Pose + Send + Sync>) -> Self {
        Self {
            scene,
            pose,
            width: 640,
            height: 480,
            hfov_deg: 62.0,
            eye_height_mm: 150.0,
            pitch_deg: 15.0,
            quality: 80,
            seq: 0,
        }
    }

    /// The default room from [`DEFAULT_PHOTO_DIR`] (or `photo_dir`).
    pub fn default_room(
        photo_dir: Option<PathBuf>,
        pose: Arc<dyn Fn() -> Pose + Send + Sync>,
    ) -> Result<Self, CameraError> {
        let dir = photo_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_PHOTO_DIR));
        Ok(Self::new(Scene::default_room(&dir)?, pose))
    }

    fn projection(&self) -> Projection {
        let (w, h) = (self.width.max(1), self.height.max(1));
        let half_fov = (self.hfov_deg.clamp(1.0, 170.0) / 2.0).to_radians();
        let focal = f64::from(w) / 2.0 / half_fov.tan();
        let pitch = self.pitch_deg.clamp(-60.0, 60.0).to_radians();
        Projection {
            w,
            h,
            focal,
            horizon: f64::from(h) / 2.0 + focal * pitch.tan(),
            eye: self.eye_height_mm,
        }
    }

    /// The ray of column `col`: origin and direction whose forward
    /// component is 1, so hit distances are depths.
    fn column_ray(p: &Projection, pose: Pose, col: u32) -> ((f64, f64), (f64, f64)) {
        let xc = (f64::from(col) + 0.5 - f64::from(p.w) / 2.0) / p.focal;
        let (s, c) = pose.heading_rad.sin_cos();
        // forward (c, s); right (s, -c)
        ((pose.x_mm, pose.y_mm), (c + s * xc, s - c * xc))
    }

    /// What the pixel (`col`, `row`) shows from `pose`.
    pub fn probe(&self, pose: Pose, col: u32, row: u32) -> Probe {
        let p = self.projection();
        let (origin, dir) = Self::column_ray(&p, pose, col.min(p.w - 1));
        let yr = f64::from(row.min(p.h - 1)) + 0.5;
        let Some((depth, wi, along)) = self.scene.cast(origin, dir) else {
            return if yr > p.horizon {
                Probe::Floor
            } else {
                Probe::Ceiling
            };
        };
        let z = p.eye + (p.horizon - yr) * depth / p.focal;
        if z < 0.0 {
            return Probe::Floor;
        }
        if z > self.scene.wall_height_mm {
            return Probe::Ceiling;
        }
        let wall = &self.scene.walls[wi];
        for ph in &wall.photos {
            if (ph.from_mm..ph.to_mm).contains(&along) && (ph.bottom_mm..ph.top_mm).contains(&z) {
                return Probe::Photo(self.scene.textures[ph.texture].name.clone());
            }
        }
        Probe::Wall(wi)
    }

    /// Renders the view from `pose`.
    pub fn render(&self, pose: Pose) -> RgbImage {
        let p = self.projection();
        let (w, h) = (p.w as usize, p.h as usize);
        let scene = &self.scene;
        let shade = |rgb: [u8; 3], k: f64| -> [u8; 3] {
            [
                (f64::from(rgb[0]) * k) as u8,
                (f64::from(rgb[1]) * k) as u8,
                (f64::from(rgb[2]) * k) as u8,
            ]
        };
        // Light falls off gently with distance.
        let light = |depth_mm: f64, floor: f64| (1.0 - depth_mm / 12000.0).clamp(floor, 1.0);
        // Floor and ceiling depend on the row only.
        let background: Vec<[u8; 3]> = (0..h)
            .map(|row| {
                let yr = row as f64 + 0.5;
                if yr > p.horizon {
                    let d = p.eye * p.focal / (yr - p.horizon);
                    shade(scene.floor_color, light(d, 0.3))
                } else {
                    let d = (scene.wall_height_mm - p.eye) * p.focal / (p.horizon - yr).max(1e-6);
                    shade(scene.ceiling_color, light(d, 0.5))
                }
            })
            .collect();
        let mut data = Vec::with_capacity(w * h * 3);
        for px in &background {
            for _ in 0..w {
                data.extend_from_slice(px);
            }
        }
        let mut put = |row: usize, col: usize, rgb: [u8; 3]| {
            let i = (row * w + col) * 3;
            data[i..i + 3].copy_from_slice(&rgb);
        };
        for col in 0..p.w {
            let (origin, dir) = Self::column_ray(&p, pose, col);
            let Some((depth, wi, along)) = scene.cast(origin, dir) else {
                continue;
            };
            // Rows whose centre sees a height in [lo, hi] on this wall.
            let rows = |lo: f64, hi: f64| -> std::ops::Range<usize> {
                let y_top = p.horizon - (hi - p.eye) * p.focal / depth;
                let y_bot = p.horizon - (lo - p.eye) * p.focal / depth;
                let first = (y_top - 0.5).ceil().clamp(0.0, h as f64) as usize;
                let end = ((y_bot - 0.5).floor() + 1.0).clamp(first as f64, h as f64) as usize;
                first..end
            };
            let wall = &scene.walls[wi];
            let c = col as usize;
            let wall_px = shade(wall.color, light(depth, 0.35));
            for row in rows(0.0, scene.wall_height_mm) {
                put(row, c, wall_px);
            }
            // Later photos first, so the first listed wins where they overlap.
            for ph in wall.photos.iter().rev() {
                if !(ph.from_mm..ph.to_mm).contains(&along) {
                    continue;
                }
                let img = &scene.textures[ph.texture].image;
                let u = (along - ph.from_mm) / (ph.to_mm - ph.from_mm);
                let tx = ((u * f64::from(img.width)) as u32).min(img.width - 1);
                let k = light(depth, 0.8);
                let (lo, hi) = (ph.bottom_mm.max(0.0), ph.top_mm.min(scene.wall_height_mm));
                for row in rows(lo, hi) {
                    let z = p.eye + (p.horizon - (row as f64 + 0.5)) * depth / p.focal;
                    let v = ((ph.top_mm - z) / (ph.top_mm - ph.bottom_mm)).max(0.0);
                    let ty = ((v * f64::from(img.height)) as u32).min(img.height - 1);
                    put(row, c, shade(img.pixel(tx, ty), k));
                }
            }
        }
        RgbImage {
            width: p.w,
            height: p.h,
            data,
        }
    }
}

impl FrameSource for SimCamera {
    fn next_frame(&mut self) -> Result<Frame, CameraError> {
        let captured_at_ms = gopigo_protocol::unix_ms();
        let pose = (self.pose)();
        let image = self.render(pose);
        let jpeg = jpeg::encode_jpeg(&image, self.quality)?;
        self.seq += 1;
        Frame::from_jpeg(&jpeg, self.seq, captured_at_ms, "simulated camera")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::FRAC_PI_2;

    /// A scene with solid-colour "photos" so tests need no files.
    fn colour_room() -> Scene {
        let mut s = Scene::empty_room(4000.0, 3000.0);
        let solid = |name: &str, rgb| Texture {
            name: name.into(),
            image: RgbImage::filled(40, 30, rgb),
        };
        s.hang(1, solid("red", [220, 20, 20]), 0.5, 2000.0, 100.0);
        s.hang(0, solid("green", [20, 200, 20]), 0.5, 1600.0, 100.0);
        s.hang(3, solid("blue", [20, 20, 220]), 0.5, 2000.0, 100.0);
        s
    }

    fn cam(scene: Scene) -> SimCamera {
        SimCamera::new(scene, Arc::new(Pose::default))
    }

    fn heading(rad: f64) -> Pose {
        Pose {
            heading_rad: rad,
            ..Pose::default()
        }
    }

    #[test]
    fn turning_changes_the_photo_in_view() {
        let c = cam(colour_room());
        let centre = |pose| c.probe(pose, 320, 200);
        assert_eq!(centre(heading(0.0)), Probe::Photo("red".into()));
        assert_eq!(centre(heading(FRAC_PI_2)), Probe::Photo("green".into()));
        assert_eq!(
            centre(heading(2.0 * FRAC_PI_2)),
            Probe::Photo("blue".into())
        );
        // The south wall has no photo.
        assert_eq!(centre(heading(3.0 * FRAC_PI_2)), Probe::Wall(2));
        assert_eq!(c.probe(heading(0.0), 320, 479), Probe::Floor);
    }

    #[test]
    fn the_photo_fills_much_of_the_frame() {
        let c = cam(colour_room());
        let img = c.render(heading(0.0));
        let reddish = img
            .data
            .chunks_exact(3)
            .filter(|p| p[0] > 150 && p[1] < 60 && p[2] < 60)
            .count();
        let share = reddish as f64 / f64::from(img.width * img.height);
        assert!(share > 0.5, "the photo covers only {share:.2} of the frame");
    }

    #[test]
    fn frames_are_valid_stamped_jpegs_that_differ_by_heading() {
        let mut c = cam(colour_room());
        let f1 = c.next_frame().unwrap();
        c.pose = Arc::new(|| heading(FRAC_PI_2));
        let f2 = c.next_frame().unwrap();
        assert_eq!((f1.seq, f2.seq), (1, 2));
        assert_eq!((f1.width, f1.height), (640, 480));
        let stamp = jpeg::read_stamp(&f2.jpeg).unwrap();
        assert_eq!(stamp.seq, 2);
        assert_eq!(stamp.captured_at_ms, f2.captured_at_ms);
        let a = jpeg::decode_jpeg(&f1.jpeg, "f1").unwrap();
        let b = jpeg::decode_jpeg(&f2.jpeg, "f2").unwrap();
        let (ma, mb) = (a.mean_rgb(), b.mean_rgb());
        assert!(
            ma[0] > ma[1] + 40.0,
            "heading 0 should be mostly red: {ma:?}"
        );
        assert!(
            mb[1] > mb[0] + 40.0,
            "heading 90° should be mostly green: {mb:?}"
        );
    }

    #[test]
    fn rendered_pixels_agree_with_probes() {
        let c = cam(colour_room());
        for pose in [
            heading(0.3),
            heading(FRAC_PI_2),
            Pose {
                x_mm: 900.0,
                y_mm: -400.0,
                heading_rad: 2.5,
            },
        ] {
            let img = c.render(pose);
            for row in (5..480).step_by(23) {
                for col in (3..640).step_by(29) {
                    let px = img.pixel(col, row);
                    let ok = match c.probe(pose, col, row) {
                        Probe::Photo(name) => match name.as_str() {
                            "red" => px[0] > 150 && px[1] < 60,
                            "green" => px[1] > 150 && px[0] < 60,
                            _ => px[2] > 150 && px[0] < 60,
                        },
                        Probe::Floor => px[0] > px[2] + 20,
                        Probe::Ceiling | Probe::Wall(_) => px[0].abs_diff(px[2]) < 40,
                    };
                    assert!(
                        ok,
                        "pose {pose:?} pixel ({col}, {row}) = {px:?}: {:?}",
                        c.probe(pose, col, row)
                    );
                }
            }
        }
    }

    #[test]
    fn photos_are_not_mirrored() {
        // Left half black, right half white: seen from inside, black must
        // be on the left of the image on every wall.
        let mut img = RgbImage::filled(40, 30, [255, 255, 255]);
        for y in 0..30 {
            for x in 0..20 {
                let i = (y * 40 + x) * 3;
                img.data[i..i + 3].copy_from_slice(&[0, 0, 0]);
            }
        }
        for wall in 0..4 {
            let mut s = Scene::empty_room(4000.0, 3000.0);
            s.hang(
                wall,
                Texture {
                    name: "half".into(),
                    image: img.clone(),
                },
                0.5,
                1500.0,
                100.0,
            );
            let c = cam(s);
            let h = [FRAC_PI_2, 0.0, -FRAC_PI_2, 2.0 * FRAC_PI_2][wall];
            let r = c.render(heading(h));
            let left = r.pixel(250, 200);
            let right = r.pixel(390, 200);
            assert!(
                left[0] < 50 && right[0] > 150,
                "wall {wall}: left {left:?} right {right:?}"
            );
        }
    }

    #[test]
    fn default_room_loads_the_darknet_photos() {
        let dir = Path::new(DEFAULT_PHOTO_DIR);
        if !dir.join("dog.jpg").exists() {
            eprintln!("skipping: {DEFAULT_PHOTO_DIR} missing (apt-get install darknet)");
            return;
        }
        let c = cam(Scene::default_room(dir).unwrap());
        let names: Vec<&str> = c.scene.textures.iter().map(|t| t.name.as_str()).collect();
        assert!(
            names.starts_with(&["dog", "person", "horses", "giraffe"]),
            "{names:?}"
        );
        let seen: Vec<Probe> = (0..4)
            .map(|k| c.probe(heading(f64::from(k) * FRAC_PI_2), 320, 220))
            .collect();
        assert_eq!(
            seen,
            ["dog", "person", "horses", "giraffe"]
                .map(|n| Probe::Photo(n.into()))
                .to_vec()
        );
    }

    #[test]
    fn missing_photo_dir_names_the_fix() {
        let err = Scene::default_room(Path::new("/nonexistent/photos")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("dog.jpg") && msg.contains("apt-get install darknet"),
            "{msg}"
        );
    }
}
