//! A confusion matrix as a heat map: true class down, predicted across,
//! each cell's count written in it.

use super::de;
use crate::provenance::Provenance;
use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

/// Draws `counts[true][predicted]` with the class names on both axes.
pub fn confusion_png(
    title: &str,
    counts: &[Vec<u64>],
    classes: &[String],
    path: &Path,
    tag: &Provenance,
) -> Result<()> {
    let k = counts.len().max(1);
    let cell = (600 / k as u32).clamp(24, 80);
    let (left, top) = (110u32, 60u32);
    let (w, h) = (left + cell * k as u32 + 30, top + cell * k as u32 + 70);
    super::draw_png(path, (w, h), tag, |root| {
        root.draw(&Text::new(title, (10, 10), ("sans-serif", 20)))
            .map_err(de)?;
        for (t, row) in counts.iter().enumerate() {
            let total: u64 = row.iter().sum::<u64>().max(1);
            for (p, &c) in row.iter().enumerate() {
                let frac = c as f64 / total as f64;
                // White for none, dark blue for all of the row.
                let shade = |full: u8| (255.0 - frac * (255.0 - full as f64)) as u8;
                let colour = RGBColor(shade(8), shade(48), shade(107));
                let (x0, y0) = (left + p as u32 * cell, top + t as u32 * cell);
                root.draw(&Rectangle::new(
                    [
                        (x0 as i32, y0 as i32),
                        ((x0 + cell) as i32, (y0 + cell) as i32),
                    ],
                    colour.filled(),
                ))
                .map_err(de)?;
                let ink = if frac > 0.5 { WHITE } else { BLACK };
                root.draw(&Text::new(
                    c.to_string(),
                    (x0 as i32 + 3, (y0 + cell / 2) as i32 - 6),
                    ("sans-serif", 12).into_font().color(&ink),
                ))
                .map_err(de)?;
            }
            let name = classes.get(t).map_or(t.to_string(), |s| s.clone());
            root.draw(&Text::new(
                name.chars().take(12).collect::<String>(),
                (6, (top + t as u32 * cell + cell / 2) as i32 - 6),
                ("sans-serif", 13),
            ))
            .map_err(de)?;
            root.draw(&Text::new(
                classes
                    .get(t)
                    .map_or(t.to_string(), |s| s.chars().take(4).collect()),
                (
                    (left + t as u32 * cell + 3) as i32,
                    (top + k as u32 * cell + 8) as i32,
                ),
                ("sans-serif", 13),
            ))
            .map_err(de)?;
        }
        root.draw(&Text::new(
            "rows: true class; columns: predicted",
            (left as i32, (top + k as u32 * cell + 34) as i32),
            ("sans-serif", 13),
        ))
        .map_err(de)?;
        Ok(())
    })
}
