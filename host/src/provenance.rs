//! Provenance tags. Telling generated media from real media is one of the
//! reasons this product exists, so every file edgegen generates says where
//! it came from: generated pixels name the model (its file and sha256), the
//! seed and the labels; plots and previews name the command that drew them.
//! PNGs carry the tag as a tEXt chunk under [`PNG_KEYWORD`]; the only way
//! to write a PNG here ([`crate::plot::save_png`]) takes a tag. WAV files
//! carry it as their `LIST/INFO` comment, text files as a header line.

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::path::Path;

/// The PNG text keyword of the tag.
pub const PNG_KEYWORD: &str = "edgegen-provenance";

/// Lowercase hex sha256 of `b`.
pub fn sha256_hex(b: &[u8]) -> String {
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// The model that generated something: a file and the sha256 of its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The file, as the user named it (or a run-folder file name).
    pub file: String,
    /// sha256 of its bytes.
    pub sha256: String,
}

impl Source {
    /// A model file's provenance from its bytes.
    pub fn file(path: &Path, bytes: &[u8]) -> Self {
        Self {
            file: path.display().to_string(),
            sha256: sha256_hex(bytes),
        }
    }
    /// A training checkpoint's, from the bytes about to be written as
    /// `name` after `epoch` epochs.
    pub fn checkpoint(name: &str, bytes: &[u8], epoch: usize) -> Self {
        Self {
            file: format!("{name} (epoch {epoch})"),
            sha256: sha256_hex(bytes),
        }
    }
}

/// What a generated file says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Always "edgegen".
    pub generator: String,
    /// edgegen's version.
    pub version: String,
    /// `samples` (pixels a model generated), `reconstructions` (a model's
    /// reconstructions of real inputs), `plot`, or `preview` (real data).
    pub kind: String,
    /// The command line that wrote the file.
    pub command: String,
    /// The model's file, for generated pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_file: Option<String>,
    /// sha256 of the model's file, for generated pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    /// Seed of the noise, for generated pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The class label of every item, when one label was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<u32>,
    /// The class label of each grid row, when rows differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_labels: Option<Vec<u32>>,
    /// Items in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<usize>,
    /// What a text model continued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// How a text model's symbols were drawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<serde_json::Value>,
}

/// The first line of a text file edgegen generated: this prefix, the tag
/// as JSON, then a newline; the text follows.
pub const TEXT_HEADER: &str = "#edgegen-provenance ";

/// The command line of this process, as the tag records it.
fn command_line() -> String {
    let mut args = std::env::args();
    let prog = args.next().map_or("edgegen".into(), |p| {
        Path::new(&p)
            .file_name()
            .map_or(p.clone(), |f| f.to_string_lossy().into_owned())
    });
    std::iter::once(prog)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Provenance {
    fn new(kind: &str) -> Self {
        Self {
            generator: "edgegen".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: kind.into(),
            command: command_line(),
            model_file: None,
            model_sha256: None,
            seed: None,
            label: None,
            row_labels: None,
            n: None,
            prompt: None,
            sampling: None,
        }
    }

    /// A chart: the command is its provenance.
    pub fn plot() -> Self {
        Self::new("plot")
    }

    /// A picture of real data (a dataset preview).
    pub fn preview(n: usize) -> Self {
        Self {
            n: Some(n),
            ..Self::new("preview")
        }
    }

    /// `n` items of `kind` that the model `from` drew.
    fn from_model(kind: &str, from: &Source, n: usize) -> Self {
        Self {
            model_file: Some(from.file.clone()),
            model_sha256: Some(from.sha256.clone()),
            n: Some(n),
            ..Self::new(kind)
        }
    }

    /// `n` items a model generated from noise drawn with `seed`.
    pub fn samples(from: &Source, seed: u64, n: usize) -> Self {
        Self {
            seed: Some(seed),
            ..Self::from_model("samples", from, n)
        }
    }

    /// `n` items a model generated without noise (decoded from given
    /// latents: a latent walk from test images, a grid over the plane).
    pub fn decoded(from: &Source, n: usize) -> Self {
        Self::from_model("samples", from, n)
    }

    /// A model's reconstructions of `n` real inputs (shown beside them).
    pub fn reconstructions(from: &Source, n: usize) -> Self {
        Self::from_model("reconstructions", from, n)
    }

    /// A chart of a model's outputs (such as encodings): the command and
    /// the model.
    pub fn plot_of(from: &Source) -> Self {
        Self {
            model_file: Some(from.file.clone()),
            model_sha256: Some(from.sha256.clone()),
            ..Self::plot()
        }
    }

    /// The same, with one class label for every item.
    pub fn with_label(self, label: Option<u32>) -> Self {
        Self { label, ..self }
    }

    /// The same, with a class label per grid row.
    pub fn with_row_labels(self, rows: Vec<u32>) -> Self {
        Self {
            row_labels: Some(rows),
            ..self
        }
    }

    /// The tag as PNG text chunks.
    pub fn png_texts(&self) -> Result<Vec<(String, String)>> {
        Ok(vec![
            (PNG_KEYWORD.into(), serde_json::to_string(self)?),
            ("Software".into(), format!("edgegen {}", self.version)),
        ])
    }

    /// The tag as a WAV file's `LIST/INFO` entries: the JSON tag as the
    /// comment (`ICMT`), and the software (`ISFT`).
    pub fn wav_info(&self) -> Result<Vec<([u8; 4], String)>> {
        Ok(vec![
            (
                *b"ICMT",
                format!("{PNG_KEYWORD} {}", serde_json::to_string(self)?),
            ),
            (*b"ISFT", format!("edgegen {}", self.version)),
        ])
    }

    /// A text file's header line (with its newline).
    pub fn text_header(&self) -> Result<String> {
        Ok(format!("{TEXT_HEADER}{}\n", serde_json::to_string(self)?))
    }

    /// Reads the tag of a file edgegen wrote. A file without one gets an
    /// error that says so plainly.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        if let Some(rest) = bytes.strip_prefix(TEXT_HEADER.as_bytes()) {
            let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
            return serde_json::from_slice(line).with_context(|| {
                format!(
                    "{}: its first line starts as a provenance header but is not a valid tag",
                    path.display()
                )
            });
        }
        if bytes.starts_with(b"RIFF") {
            let info = crate::data::audio::wav_info(&bytes)
                .with_context(|| format!("{}: not a readable WAV file", path.display()))?;
            let prefix = format!("{PNG_KEYWORD} ");
            let tag = info
                .iter()
                .find_map(|(id, v)| (id == b"ICMT").then(|| v.strip_prefix(&prefix)).flatten())
                .ok_or_else(|| {
                    anyhow!(
                        "{}: carries no edgegen provenance tag (no LIST/INFO comment starting `{prefix}`: not generated by edgegen, or the tag was stripped)",
                        path.display()
                    )
                })?;
            return serde_json::from_str(tag).with_context(|| {
                format!(
                    "{}: its LIST/INFO comment is not a valid tag",
                    path.display()
                )
            });
        }
        if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err(anyhow!(
                "{}: carries no edgegen provenance tag: not a PNG, a WAV or a text file with edgegen's header line",
                path.display()
            ));
        }
        let texts = crate::plot::png_text(&bytes)
            .with_context(|| format!("{}: not a readable PNG", path.display()))?;
        let tag = texts
            .iter()
            .find(|(k, _)| k == PNG_KEYWORD)
            .ok_or_else(|| {
                anyhow!(
                    "{}: carries no edgegen provenance tag (not generated by edgegen, or the tag was stripped)",
                    path.display()
                )
            })?;
        serde_json::from_str(&tag.1).with_context(|| {
            format!(
                "{}: its {PNG_KEYWORD} text is not a valid tag",
                path.display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::audio::wav_bytes;

    #[test]
    fn wav_files_carry_their_tag() {
        let dir = std::env::temp_dir().join(format!("edgegen-prov-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = Source::file(Path::new("m.gguf"), b"model bytes");
        let tag = Provenance::samples(&src, 7, 1).with_label(Some(3));
        let info = tag.wav_info().unwrap();
        let info: Vec<([u8; 4], &str)> = info.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let path = dir.join("seven.wav");
        std::fs::write(&path, wav_bytes(8000, &[0.0, 0.5, -0.5], &info)).unwrap();
        assert_eq!(Provenance::read(&path).unwrap(), tag);
        // A WAV without the tag says so.
        std::fs::write(&path, wav_bytes(8000, &[0.0], &[(*b"ICMT", "a comment")])).unwrap();
        let e = Provenance::read(&path).unwrap_err().to_string();
        assert!(
            e.contains("seven.wav") && e.contains("no edgegen provenance tag"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
