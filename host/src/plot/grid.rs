//! Grids of images, for previews and sample sheets.

use image::{Rgb, RgbImage};

/// Lays out C×H×W byte images in rows of `cols`, each pixel drawn as a
/// `scale`×`scale` square with a 1-pixel gap. One channel is grey, three are
/// RGB; for two or four channels the alpha channel is dropped.
pub fn image_grid(images: &[&[u8]], shape: [usize; 3], cols: usize, scale: usize) -> RgbImage {
    let [c, h, w] = shape;
    let cols = cols.max(1).min(images.len().max(1));
    let rows = images.len().div_ceil(cols).max(1);
    let (cw, ch) = (w * scale + 1, h * scale + 1);
    let mut out = RgbImage::from_pixel(
        (cols * cw + 1) as u32,
        (rows * ch + 1) as u32,
        Rgb([40, 40, 40]),
    );
    for (k, im) in images.iter().enumerate() {
        let (gx, gy) = ((k % cols) * cw + 1, (k / cols) * ch + 1);
        for y in 0..h {
            for x in 0..w {
                let at = |ch: usize| im[ch * h * w + y * w + x];
                let px = match c {
                    1 | 2 => Rgb([at(0); 3]),
                    _ => Rgb([at(0), at(1), at(2)]),
                };
                for dy in 0..scale {
                    for dx in 0..scale {
                        out.put_pixel(
                            (gx + x * scale + dx) as u32,
                            (gy + y * scale + dy) as u32,
                            px,
                        );
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn grid_places_images_row_major() {
        let a = [255u8; 4];
        let b = [0u8, 0, 0, 128];
        let g = super::image_grid(&[&a, &b, &a], [1, 2, 2], 2, 1);
        assert_eq!(g.dimensions(), (7, 7));
        assert_eq!(g.get_pixel(1, 1).0, [255; 3]);
        assert_eq!(g.get_pixel(5, 2).0, [128; 3]);
        assert_eq!(g.get_pixel(1, 4).0, [255; 3]);
        assert_eq!(g.get_pixel(0, 0).0, [40; 3]);
    }
}
