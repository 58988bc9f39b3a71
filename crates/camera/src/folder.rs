//! An image folder as a frame source: cycles through the `.jpg`, `.jpeg`
//! and `.png` files in name order, re-encoding PNGs as JPEG (once each).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::{jpeg, CameraError, Frame, FrameSource};

/// Cycles through the images of a folder.
#[derive(Debug)]
pub struct ImageFolder {
    dir: PathBuf,
    files: Vec<PathBuf>,
    next: usize,
    seq: u64,
    quality: u8,
    encoded: HashMap<PathBuf, Vec<u8>>,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        .unwrap_or(false)
}

impl ImageFolder {
    /// Lists the images in `dir`; an error when there are none.
    pub fn open(dir: &Path) -> Result<Self, CameraError> {
        let read_err = |source| CameraError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            if path.is_file() && is_image(&path) {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(CameraError::NoImages {
                dir: dir.to_path_buf(),
            });
        }
        files.sort();
        Ok(Self {
            dir: dir.to_path_buf(),
            files,
            next: 0,
            seq: 0,
            quality: 85,
            encoded: HashMap::new(),
        })
    }

    /// The images, in the order they are shown.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The folder the images were listed from, as given (for messages).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl FrameSource for ImageFolder {
    fn next_frame(&mut self) -> Result<Frame, CameraError> {
        let path = self.files[self.next % self.files.len()].clone();
        self.next = (self.next + 1) % self.files.len();
        let captured_at_ms = gopigo_protocol::unix_ms();
        let bytes = std::fs::read(&path).map_err(|source| CameraError::Read {
            path: path.clone(),
            source,
        })?;
        let what = path.display().to_string();
        let jpeg_bytes = if bytes.starts_with(&[0xFF, 0xD8]) {
            bytes
        } else if let Some(done) = self.encoded.get(&path) {
            done.clone()
        } else {
            let image = jpeg::decode_image(&bytes, &what)?;
            let encoded = jpeg::encode_jpeg(&image, self.quality)?;
            self.encoded.insert(path.clone(), encoded.clone());
            encoded
        };
        self.seq += 1;
        Frame::from_jpeg(&jpeg_bytes, self.seq, captured_at_ms, &what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_in_name_order_and_reencodes_png() {
        let dir = tempfile::tempdir().unwrap();
        let red = jpeg::encode_jpeg(&jpeg::RgbImage::filled(16, 8, [255, 0, 0]), 90).unwrap();
        std::fs::write(dir.path().join("a.jpg"), &red).unwrap();
        let mut png_bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut png_bytes, 4, 2);
            enc.set_color(png::ColorType::Rgb);
            let mut w = enc.write_header().unwrap();
            w.write_image_data(&[0, 0, 255].repeat(8)).unwrap();
        }
        std::fs::write(dir.path().join("b.png"), &png_bytes).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"not an image").unwrap();

        let mut src = ImageFolder::open(dir.path()).unwrap();
        assert_eq!(src.files().len(), 2);
        let sizes: Vec<(u32, u32, u64)> = (0..3)
            .map(|_| {
                let f = src.next_frame().unwrap();
                jpeg::decode_jpeg(&f.jpeg, "frame").unwrap();
                (f.width, f.height, f.seq)
            })
            .collect();
        assert_eq!(sizes, vec![(16, 8, 1), (4, 2, 2), (16, 8, 3)]);
    }

    #[test]
    fn empty_folder_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = ImageFolder::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains(&dir.path().display().to_string()));
    }
}
