//! PNG output: sample grids and plots. Every file is written atomically.

pub mod confusion;
pub mod curves;
pub mod grid;
pub mod scatter;
pub mod spectrogram;
pub mod wave;

use crate::provenance::Provenance;
use anyhow::{Context, Result, anyhow};
use plotters::prelude::{BitMapBackend, IntoDrawingArea, WHITE};
use std::path::Path;

/// The surface chart code draws on.
pub type Area<'a> = plotters::drawing::DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// Turns a plotters error into an error `draw_png` can name the file in.
pub fn de(e: impl std::fmt::Debug) -> anyhow::Error {
    anyhow!("{e:?}")
}

/// Gives `f` a white `w x h` bitmap to draw on (with the embedded font
/// registered) and writes the result as PNG, atomically. The one place
/// that owns the pixel buffer, for every chart.
pub fn draw_png(
    path: &Path,
    (w, h): (u32, u32),
    tag: &Provenance,
    f: impl FnOnce(&Area<'_>) -> Result<()>,
) -> Result<()> {
    ensure_font();
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(de)?;
        f(&root).with_context(|| format!("{}: cannot draw", path.display()))?;
        root.present().map_err(de)?;
    }
    let img = image::RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| anyhow!("plot buffer has the wrong size"))?;
    save_png(&img, path, tag)
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

/// Encodes an RGB image as PNG with its provenance tag in a text chunk
/// (tEXt) and writes it atomically. The only way edgegen writes a PNG.
pub fn save_png(img: &image::RgbImage, path: &Path, tag: &Provenance) -> Result<()> {
    let texts = tag.png_texts()?;
    let mut buf = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut buf, img.width(), img.height());
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        // A run redraws its pictures every epoch: fdeflate's fast mode
        // encodes them several times faster than the default for files a
        // little larger.
        enc.set_compression(png::Compression::Fast);
        for (k, v) in texts {
            enc.add_text_chunk(k.clone(), v)
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
