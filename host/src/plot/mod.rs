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

/// Encodes an RGB image as PNG with text chunks (tEXt) and writes it
/// atomically: how generated images carry their provenance.
pub fn save_png_tagged(img: &image::RgbImage, path: &Path, texts: &[(&str, &str)]) -> Result<()> {
    let mut buf = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut buf, img.width(), img.height());
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        for (k, v) in texts {
            enc.add_text_chunk(k.to_string(), v.to_string())
                .with_context(|| format!("{}: cannot add text chunk {k}", path.display()))?;
        }
        let mut w = enc
            .write_header()
            .with_context(|| format!("{}: cannot encode PNG", path.display()))?;
        w.write_image_data(img.as_raw())
            .with_context(|| format!("{}: cannot encode PNG", path.display()))?;
    }
    crate::fsx::write_atomic(path, &buf)
}

/// The text chunks (tEXt, zTXt, iTXt) of PNG bytes, as (keyword, text).
pub fn png_text(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info()?;
    let info = reader.info();
    let mut out: Vec<(String, String)> = info
        .uncompressed_latin1_text
        .iter()
        .map(|t| (t.keyword.clone(), t.text.clone()))
        .collect();
    for t in &info.compressed_latin1_text {
        if let Ok(s) = t.get_text() {
            out.push((t.keyword.clone(), s));
        }
    }
    for t in &info.utf8_text {
        if let Ok(s) = t.get_text() {
            out.push((t.keyword.clone(), s));
        }
    }
    Ok(out)
}
