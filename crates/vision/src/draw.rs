//! Drawing detections: coloured rectangles with a label (class and score)
//! in a built-in 5x7 bitmap font. Encoding the result is the camera
//! crate's [`gopigo_camera::jpeg::encode_jpeg`].

use gopigo_camera::jpeg::RgbImage;

use crate::Detection;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// 5x7 glyphs, one byte per row, bit 4 = leftmost column. (A font table:
/// long by nature.)
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ' ' => [0; 7],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04], // '?'
    }
}

/// Pixel scale of the label font.
const SCALE: u32 = 2;
/// Glyph advance in font pixels (5 wide + 1 gap).
const ADVANCE: u32 = 6;

/// A distinct, stable colour per class.
pub fn class_color(class_id: usize) -> Rgb {
    // Hue steps by the golden angle; full saturation, bright value.
    let h = (class_id as f32 * 137.508) % 360.0;
    let x = 1.0 - ((h / 60.0) % 2.0 - 1.0).abs();
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (1.0, x, 0.0),
        1 => (x, 1.0, 0.0),
        2 => (0.0, 1.0, x),
        3 => (0.0, x, 1.0),
        4 => (x, 0.0, 1.0),
        _ => (1.0, 0.0, x),
    };
    let v = |c: f32| (55.0 + 200.0 * c) as u8;
    [v(r), v(g), v(b)]
}

fn fill_rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb) {
    let (w, h) = (i64::from(img.width), i64::from(img.height));
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            img.put_pixel(x as u32, y as u32, color);
        }
    }
}

/// Draw `text` with its top-left corner at (x, y), clipped to the image.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, color: Rgb) {
    for (i, ch) in text.chars().enumerate() {
        let g = glyph(ch);
        let gx = x + (i as u32 * ADVANCE * SCALE) as i64;
        for (row, bits) in g.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    let px = gx + (col * SCALE) as i64;
                    let py = y + (row as u32 * SCALE) as i64;
                    fill_rect(img, px, py, px + SCALE as i64, py + SCALE as i64, color);
                }
            }
        }
    }
}

/// Label text for a detection, e.g. `dog 87%`.
pub fn label(d: &Detection) -> String {
    format!("{} {:.0}%", d.class, d.score * 100.0)
}

/// Draw every detection's box (3 px, class colour) and a label above it
/// (inside the box when there is no room above). Returns a new image.
pub fn draw_detections(rgb: &RgbImage, dets: &[Detection]) -> RgbImage {
    let mut img = rgb.clone();
    let thick = ((img.width.min(img.height) / 200).max(2)) as i64;
    for d in dets {
        let color = class_color(d.class_id);
        let (x0, y0) = (d.bbox.x.round() as i64, d.bbox.y.round() as i64);
        let (x1, y1) = (
            (d.bbox.x + d.bbox.w).round() as i64,
            (d.bbox.y + d.bbox.h).round() as i64,
        );
        fill_rect(&mut img, x0, y0, x1, y0 + thick, color);
        fill_rect(&mut img, x0, y1 - thick, x1, y1, color);
        fill_rect(&mut img, x0, y0, x0 + thick, y1, color);
        fill_rect(&mut img, x1 - thick, y0, x1, y1, color);
        let text = label(d);
        let tw = (text.chars().count() as u32 * ADVANCE * SCALE + 2 * SCALE) as i64;
        let th = (9 * SCALE) as i64;
        let ty = if y0 - th >= 0 { y0 - th } else { y0 };
        fill_rect(&mut img, x0, ty, x0 + tw, ty + th, color);
        draw_text(
            &mut img,
            x0 + SCALE as i64 * 2,
            ty + SCALE as i64,
            &text,
            [0, 0, 0],
        );
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BBox;

    #[test]
    fn boxes_and_labels_are_drawn_in_class_colour() {
        let img = RgbImage::filled(100, 80, [255, 255, 255]);
        let d = Detection {
            class_id: 3,
            class: "dog".into(),
            score: 0.87,
            bbox: BBox {
                x: 20.0,
                y: 30.0,
                w: 50.0,
                h: 40.0,
            },
        };
        let out = draw_detections(&img, std::slice::from_ref(&d));
        let c = class_color(3);
        assert_eq!(out.pixel(45, 69), c, "bottom edge");
        assert_eq!(out.pixel(20, 50), c, "left edge");
        assert_eq!(out.pixel(45, 50), [255, 255, 255], "inside untouched");
        // label background above the box, with black text pixels in it
        let label_px: Vec<_> = (20..60)
            .flat_map(|x| (12..30).map(move |y| (x, y)))
            .map(|(x, y)| out.pixel(x, y))
            .collect();
        assert!(label_px.contains(&[0, 0, 0]));
        assert!(label_px.contains(&c));
        assert_eq!(label(&d), "dog 87%");
        // input untouched
        assert_eq!(img.pixel(45, 69), [255, 255, 255]);
    }

    #[test]
    fn drawing_off_image_boxes_does_not_panic() {
        let img = RgbImage::filled(10, 10, [0, 0, 0]);
        let d = Detection {
            class_id: 0,
            class: "x".repeat(50),
            score: 1.0,
            bbox: BBox {
                x: -50.0,
                y: 8.0,
                w: 500.0,
                h: 500.0,
            },
        };
        let _ = draw_detections(&img, &[d]);
    }

    #[test]
    fn colours_differ_between_classes() {
        let cs: std::collections::HashSet<_> = (0..20).map(class_color).collect();
        assert!(cs.len() >= 18);
    }
}
