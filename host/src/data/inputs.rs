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
    })
}
