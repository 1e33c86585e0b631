//! Data loading: every kind of data the product trains on, found by path.
//!
//! [`load`] looks at a path and picks the loader: an MNIST-style IDX folder,
//! a folder of class sub-folders of images, a folder of WAV files, a text
//! file or a folder of them (one class each), or a built-in sample
//! (`builtin:mnist-sample`, `builtin:shakespeare-sample`).

pub mod audio;
pub mod idx;
pub mod images;
pub mod info;
pub mod inputs;
pub mod logmel;
pub mod lpc;
pub mod split;
pub mod text;

use anyhow::{Result, bail};
use std::path::Path;

/// Names the sample that is compiled into the binary.
pub const BUILTIN_MNIST: &str = "builtin:mnist-sample";

/// A loaded dataset.
#[derive(Debug, Clone)]
pub enum Dataset {
    /// Images, with labels when the source has them.
    Images(images::ImageData),
    /// Audio clips.
    Audio(audio::AudioSet),
    /// A text corpus.
    Text(text::TextSet),
}

/// The first 6,000 training and 1,000 test images of MNIST; see `data/README.md`.
mod builtin {
    pub const TRAIN_IMAGES: &[u8] =
        include_bytes!("../../../data/mnist-sample/train-images-idx3-ubyte.gz");
    pub const TRAIN_LABELS: &[u8] =
        include_bytes!("../../../data/mnist-sample/train-labels-idx1-ubyte.gz");
    pub const TEST_IMAGES: &[u8] =
        include_bytes!("../../../data/mnist-sample/t10k-images-idx3-ubyte.gz");
    pub const TEST_LABELS: &[u8] =
        include_bytes!("../../../data/mnist-sample/t10k-labels-idx1-ubyte.gz");
}

/// The built-in MNIST sample.
pub fn builtin_mnist() -> Result<images::ImageData> {
    let set = |i: &[u8], l: &[u8], name: &str| {
        images::from_idx(idx::parse(i)?, Some(idx::parse(l)?), name)
    };
    Ok(images::ImageData {
        train: set(
            builtin::TRAIN_IMAGES,
            builtin::TRAIN_LABELS,
            "builtin train",
        )?,
        test: Some(set(
            builtin::TEST_IMAGES,
            builtin::TEST_LABELS,
            "builtin test",
        )?),
        notes: vec![],
    })
}

/// Loads whatever dataset `path` holds.
pub fn load(path: &str) -> Result<Dataset> {
    load_with(path, &images::Shaping::default())
}

/// [`load`], with images brought to the shape `shaping` asks for.
pub fn load_with(path: &str, shaping: &images::Shaping) -> Result<Dataset> {
    shaping.validate()?;
    Ok(match load_any(path, shaping)? {
        Dataset::Images(im) => Dataset::Images(images::ImageData {
            train: im.train.shaped(shaping),
            test: im.test.map(|t| t.shaped(shaping)),
            notes: im.notes,
        }),
        other => other,
    })
}

fn load_any(path: &str, shaping: &images::Shaping) -> Result<Dataset> {
    if path == BUILTIN_MNIST {
        return Ok(Dataset::Images(builtin_mnist()?));
    }
    if path == text::BUILTIN_SHAKESPEARE {
        return Ok(Dataset::Text(text::builtin()?));
    }
    if path == audio::BUILTIN_FSDD {
        return Ok(Dataset::Audio(audio::builtin()?));
    }
    if let Some(name) = path.strip_prefix("builtin:") {
        bail!(
            "{path}: no built-in dataset {name:?}; expected {BUILTIN_MNIST}, {} or {}",
            text::BUILTIN_SHAKESPEARE,
            audio::BUILTIN_FSDD
        );
    }
    let p = Path::new(path);
    if !p.exists() {
        bail!("{path}: no such file or folder");
    }
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    if p.is_file() {
        let is_idx = matches!(ext.as_deref(), Some("gz" | "idx")) || path.contains("-idx");
        return Ok(if ext.as_deref() == Some("wav") {
            Dataset::Audio(audio::load(p)?)
        } else if is_idx {
            let train = images::from_idx(idx::read(p)?, None, path)?;
            Dataset::Images(images::ImageData {
                train,
                test: None,
                notes: vec![],
            })
        } else {
            Dataset::Text(text::load(p)?)
        });
    }
    if images::is_mnist_dir(p) {
        return Ok(Dataset::Images(images::load_mnist_dir(p)?));
    }
    if audio::is_audio_dir(p) {
        return Ok(Dataset::Audio(audio::load(p)?));
    }
    if images::is_image_folder(p) {
        return Ok(Dataset::Images(images::load_image_folder(p, shaping)?));
    }
    if text::is_text_dir(p) {
        return Ok(Dataset::Text(text::load_dir(p)?));
    }
    bail!(
        "{path}: no dataset found: expected MNIST IDX files (train-images-idx3-ubyte[.gz]), \
         .wav files (here or one folder down), one sub-folder of PNG/JPEG images per class, \
         a text file, or .txt files (one per class, here or one folder down)"
    )
}

/// The data path from `--data`, else `EDGEGEN_DATA`, else the built-in
/// MNIST sample.
pub fn resolve(flag: Option<&str>) -> String {
    resolve_or(flag, BUILTIN_MNIST)
}

/// The data path from `--data`, else `EDGEGEN_DATA`, else `builtin` (the
/// family's own sample).
pub fn resolve_or(flag: Option<&str>, builtin: &str) -> String {
    flag.map(str::to_string)
        .or_else(|| std::env::var("EDGEGEN_DATA").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| builtin.to_string())
}

/// A data path as a run stores it: absolute for a file or folder that
/// exists, so that the run can be resumed from another working folder;
/// `builtin:` names and paths that do not exist stay as given.
pub fn canonical(path: &str) -> String {
    if path.starts_with("builtin:") {
        return path.to_string();
    }
    std::fs::canonicalize(path).map_or_else(|_| path.to_string(), |p| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_sample_loads() {
        let d = builtin_mnist().unwrap();
        assert_eq!(d.train.len(), 6000);
        assert_eq!(d.train.shape, [1, 28, 28]);
        assert_eq!(d.train.classes.len(), 10);
        assert_eq!(d.test.as_ref().unwrap().len(), 1000);
        // The first MNIST training digit is a 5.
        assert_eq!(d.train.labels[0], 5);
    }

    #[test]
    fn unknown_paths_say_what_was_expected() {
        let e = format!("{:#}", load("/nonexistent/x").unwrap_err());
        assert!(e.contains("no such file"));
        let d = std::env::temp_dir().join(format!("edgegen-empty-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let e = format!("{:#}", load(d.to_str().unwrap()).unwrap_err());
        assert!(e.contains("no dataset found: expected MNIST"), "{e}");
    }
}
