//! Datasets as model inputs: images as `(N, D)` rows of values in [0, 1]
//! with their labels, split into training, validation and test sets. Every
//! image family (the VAE, the GAN, the classifier) and the evaluation suite
//! read the same rows, so that their numbers compare.

use super::images::{ImageSet, Shaping};
use super::{Dataset, split};
use anyhow::{Result, bail};

/// Images as model inputs: `(N, D)` values in [0, 1] and labels.
#[derive(Debug, Clone)]
pub struct Images {
    /// Row-major `(N, D)`.
    pub x: Vec<f32>,
    /// One label per row (zeros if unlabeled).
    pub labels: Vec<u32>,
    /// D.
    pub d: usize,
}

impl Images {
    /// Normalizes an image set to [0, 1].
    pub fn from_set(s: &ImageSet) -> Self {
        Self {
            x: split::Normalize::UnitRange.apply(s),
            labels: if s.labels.is_empty() {
                vec![0; s.len()]
            } else {
                s.labels.clone()
            },
            d: s.image_len(),
        }
    }
    /// Row count.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.d..(i + 1) * self.d]
    }
}

/// What to load: the dataset, its shaping and how to split it.
#[derive(Debug, Clone, Default)]
pub struct ImageRequest<'a> {
    /// The dataset path (already resolved).
    pub path: &'a str,
    /// How images are brought to one shape.
    pub shaping: Shaping,
    /// Fraction of the training images held out for validation; 0 uses the
    /// test split for validation.
    pub val_frac: f64,
    /// Seed of the split.
    pub seed: u64,
    /// Keep at most this many training images.
    pub max_train: Option<usize>,
    /// Why labels are needed (the flag or family that needs them), if they are.
    pub labels_for: Option<&'a str>,
}

/// The image splits a run trains, validates and tests on.
#[derive(Debug, Clone)]
pub struct ImageSplits {
    /// Training images.
    pub train: Images,
    /// Validation images (the test split when `val_frac` is 0).
    pub val: Images,
    /// Test images.
    pub test: Images,
    /// `[C, H, W]`.
    pub shape: [usize; 3],
    /// Class names.
    pub classes: Vec<String>,
    /// What loading did that the user should know (see [`super::images::ImageData::notes`]).
    pub notes: Vec<String>,
    /// When the "images" are the log-mel features of audio clips: how
    /// they were computed.
    pub log_mel: Option<super::logmel::LogMel>,
}

/// Loads and splits the images `r` names.
pub fn load_images(r: &ImageRequest) -> Result<ImageSplits> {
    let path = r.path;
    let Dataset::Images(im) = super::load_with(path, &r.shaping)? else {
        bail!(
            "{path}: expected images (an IDX folder or a folder of class folders); this is another kind of data"
        );
    };
    let s = split::split_images(&im, r.val_frac, 0.1, r.seed);
    let mut train = s.train;
    if let Some(max) = r.max_train {
        let keep: Vec<usize> = (0..train.len().min(max)).collect();
        train = train.subset(&keep);
    }
    if let Some(why) = r.labels_for
        && train.classes.is_empty()
    {
        bail!("{path}: {why} needs class labels, and this dataset has none");
    }
    let test = Images::from_set(&s.test);
    let val = if s.val.is_empty() {
        test.clone()
    } else {
        Images::from_set(&s.val)
    };
    Ok(ImageSplits {
        shape: train.shape,
        classes: train.classes.clone(),
        train: Images::from_set(&train),
        val,
        test,
        notes: im.notes,
        log_mel: None,
    })
}

/// Labeled audio clips as the log-mel images of `lm`, split as an audio
/// run splits them (FSDD: takes 0 to 4 are the test set). Each clip goes
/// through 8-bit mu-law first, as a generated clip does, so that the
/// classifier hears the same quantization in both.
pub fn load_audio_features(
    path: &str,
    lm: super::logmel::LogMel,
    val_frac: f64,
    seed: u64,
) -> Result<ImageSplits> {
    use super::audio::{mulaw_decode, mulaw_encode, resample};
    let Dataset::Audio(set) = super::load(path)? else {
        bail!("{path}: expected .wav files (here or one folder down)");
    };
    if set.classes.is_empty() {
        bail!(
            "{path}: the classifier needs labeled clips (one sub-folder per class, or names like FSDD's {{digit}}_{{speaker}}_{{take}}.wav)"
        );
    }
    if val_frac <= 0.0 {
        bail!(
            "--val-frac: the audio classifier validates on held-out clips; expected more than 0, found {val_frac}"
        );
    }
    let s = super::split::split_audio(&set, val_frac, 0.0, seed);
    let images = |idx: &[usize]| -> Images {
        let clips: Vec<Vec<f32>> = idx
            .iter()
            .map(|&i| {
                let c = &set.clips[i];
                resample(&c.samples, c.rate, lm.sample_rate)
                    .iter()
                    .map(|&v| mulaw_decode(mulaw_encode(v)))
                    .collect()
            })
            .collect();
        let refs: Vec<&[f32]> = clips.iter().map(|c| &c[..]).collect();
        Images {
            x: lm.features_of(&refs),
            labels: idx
                .iter()
                .map(|&i| set.clips[i].label.unwrap_or(0))
                .collect(),
            d: lm.mels * lm.frames,
        }
    };
    let (train, val, test) = (images(&s.train), images(&s.val), images(&s.test));
    let notes = vec![format!(
        "{} training clips, {} validation, {} test{}, as {}x{} log-mel images",
        train.len(),
        val.len(),
        test.len(),
        if s.test.is_empty() {
            ""
        } else {
            " (FSDD takes 0 to 4)"
        },
        lm.mels,
        lm.frames
    )];
    if test.is_empty() {
        bail!("{path}: no test clips (FSDD's takes 0 to 4, or a split of the rest)");
    }
    Ok(ImageSplits {
        train,
        val,
        test,
        shape: lm.shape(),
        classes: set.classes.clone(),
        notes,
        log_mel: Some(lm),
    })
}
