//! Image sources for batch detection (a file or a folder of images) and a
//! JSON-lines writer for results.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Detection, VisionError};

/// File extensions treated as images.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
        .unwrap_or(false)
}

/// The image files `source` names: itself if it is a file, or the images
/// directly inside it (sorted by name) if it is a folder.
pub fn image_files(source: &Path) -> Result<Vec<PathBuf>, VisionError> {
    let meta = std::fs::metadata(source).map_err(|e| VisionError::Io {
        path: source.to_path_buf(),
        source: e,
    })?;
    if meta.is_file() {
        return Ok(vec![source.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(source)
        .map_err(|e| VisionError::Io {
            path: source.to_path_buf(),
            source: e,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    files.sort();
    Ok(files)
}

/// Iterate `(path, bytes)` over [`image_files`], reading lazily.
pub fn read_images(
    source: &Path,
) -> Result<impl Iterator<Item = (PathBuf, Result<Vec<u8>, VisionError>)>, VisionError> {
    let files = image_files(source)?;
    Ok(files.into_iter().map(|p| {
        let r = std::fs::read(&p).map_err(|e| VisionError::Io {
            path: p.clone(),
            source: e,
        });
        (p, r)
    }))
}

/// One output line: the source, its size, and what was found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DetectionRecord<'a> {
    /// Image path, URL or frame label.
    pub source: &'a str,
    /// Frame number within the source (0 for single images).
    pub frame: u64,
    /// What the detector found in that frame, after NMS (may be empty).
    pub detections: &'a [Detection],
}

/// Write one record as a JSON line.
pub fn write_json_line<W: Write + ?Sized>(
    out: &mut W,
    record: &DetectionRecord<'_>,
) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BBox;

    #[test]
    fn folder_lists_images_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.jpg", "a.JPEG", "c.txt", "d.png"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.jpg")).unwrap();
        let names: Vec<_> = image_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.JPEG", "b.jpg", "d.png"]);
        let one = dir.path().join("b.jpg");
        assert_eq!(image_files(&one).unwrap(), vec![one.clone()]);
        assert!(image_files(&dir.path().join("missing")).is_err());
        let read: Vec<_> = read_images(dir.path()).unwrap().collect();
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].1.as_ref().unwrap(), b"x");
    }

    #[test]
    fn json_lines() {
        let d = [Detection {
            class_id: 16,
            class: "dog".into(),
            score: 0.5,
            bbox: BBox {
                x: 1.0,
                y: 2.0,
                w: 3.0,
                h: 4.0,
            },
        }];
        let mut out = Vec::new();
        write_json_line(
            &mut out,
            &DetectionRecord {
                source: "dog.jpg",
                frame: 0,
                detections: &d,
            },
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(s.trim()).unwrap();
        assert_eq!(v["detections"][0]["class"], "dog");
        assert_eq!(v["detections"][0]["bbox"]["w"], 3.0);
    }
}
