//! PNG output: sample grids and plots. Every file is written atomically.

pub mod curves;
pub mod grid;
pub mod scatter;
pub mod wave;

use anyhow::{Context, Result};
use std::path::Path;

/// Encodes an RGB image as PNG and writes it atomically.
pub fn save_png(img: &image::RgbImage, path: &Path) -> Result<()> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)
        .with_context(|| format!("{}: cannot encode PNG", path.display()))?;
    crate::fsx::write_atomic(path, buf.get_ref())
}

/// Registers the embedded font once, so that plotters can draw text on a
/// machine with no system fonts.
pub fn ensure_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse; a failure would only
        // drop the labels, which the tests would catch.
        let _ = plotters::style::register_font(
            "sans-serif",
            plotters::style::FontStyle::Normal,
            include_bytes!("../../assets/DejaVuSans-ascii.ttf"),
        );
    });
}
