//! Deterministic train/validation/test splits and normalization.

use super::audio::AudioSet;
use super::images::{ImageData, ImageSet};
use crate::rng::Rng;

/// Indices of each split, each sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Training indices.
    pub train: Vec<usize>,
    /// Validation indices.
    pub val: Vec<usize>,
    /// Test indices.
    pub test: Vec<usize>,
}

/// Shuffles `0..n` with `seed` and cuts off `val_frac` and `test_frac`.
/// The same `(n, fractions, seed)` always gives the same split.
pub fn random_split(n: usize, val_frac: f64, test_frac: f64, seed: u64) -> Split {
    let mut idx: Vec<usize> = (0..n).collect();
    Rng::new(seed).shuffle(&mut idx);
    let n_val = (n as f64 * val_frac).round() as usize;
    let n_test = ((n as f64 * test_frac).round() as usize).min(n - n_val.min(n));
    let mut val = idx[..n_val.min(n)].to_vec();
    let mut test = idx[n_val.min(n)..n_val.min(n) + n_test].to_vec();
    let mut train = idx[n_val.min(n) + n_test..].to_vec();
    train.sort_unstable();
    val.sort_unstable();
    test.sort_unstable();
    Split { train, val, test }
}

/// Training, validation and test images.
#[derive(Debug, Clone)]
pub struct ImageSplits {
    /// Training images.
    pub train: ImageSet,
    /// Validation images.
    pub val: ImageSet,
    /// Test images.
    pub test: ImageSet,
}

/// Splits images: the source's own test set is kept as the test split, and
/// validation is cut from training; without one, both are cut by `seed`.
pub fn split_images(d: &ImageData, val_frac: f64, test_frac: f64, seed: u64) -> ImageSplits {
    match &d.test {
        Some(test) => {
            let s = random_split(d.train.len(), val_frac, 0.0, seed);
            ImageSplits {
                train: d.train.subset(&s.train),
                val: d.train.subset(&s.val),
                test: test.clone(),
            }
        }
        None => {
            let s = random_split(d.train.len(), val_frac, test_frac, seed);
            ImageSplits {
                train: d.train.subset(&s.train),
                val: d.train.subset(&s.val),
                test: d.train.subset(&s.test),
            }
        }
    }
}

/// Splits clips. When every clip has a take number (FSDD), takes 0 to 4
/// are the test set by that dataset's convention; otherwise the test set is
/// cut by `seed` too.
pub fn split_audio(a: &AudioSet, val_frac: f64, test_frac: f64, seed: u64) -> Split {
    if !a.clips.is_empty() && a.clips.iter().all(|c| c.take.is_some()) {
        let (test, rest): (Vec<usize>, Vec<usize>) =
            (0..a.clips.len()).partition(|&i| a.clips[i].take.is_some_and(|t| t < 5));
        let s = random_split(rest.len(), val_frac, 0.0, seed);
        return Split {
            train: s.train.iter().map(|&i| rest[i]).collect(),
            val: s.val.iter().map(|&i| rest[i]).collect(),
            test,
        };
    }
    random_split(a.clips.len(), val_frac, test_frac, seed)
}

/// How pixels become model inputs.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalize {
    /// `x / 255`, in [0, 1]: what a Bernoulli likelihood needs.
    UnitRange,
    /// `(x / 255 - mean[c]) / std[c]` per channel.
    Standard {
        /// Per-channel means of `x / 255`.
        mean: Vec<f32>,
        /// Per-channel standard deviations of `x / 255`.
        std: Vec<f32>,
    },
}

/// Per-channel mean and standard deviation of `x / 255`.
pub fn channel_stats(s: &ImageSet) -> (Vec<f32>, Vec<f32>) {
    let [c, h, w] = s.shape;
    let mut sum = vec![0f64; c];
    let mut sq = vec![0f64; c];
    for i in 0..s.len() {
        for (ch, plane) in s.image(i).chunks_exact(h * w).enumerate() {
            for &p in plane {
                let v = p as f64 / 255.0;
                sum[ch] += v;
                sq[ch] += v * v;
            }
        }
    }
    let n = (s.len() * h * w).max(1) as f64;
    let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(q, &m)| ((q / n - (m as f64).powi(2)).max(0.0).sqrt()) as f32)
        .collect();
    (mean, std)
}

impl Normalize {
    /// Standardization with statistics measured on `train`.
    pub fn standard_from(train: &ImageSet) -> Self {
        let (mean, std) = channel_stats(train);
        Normalize::Standard {
            mean,
            std: std.into_iter().map(|s| s.max(1e-6)).collect(),
        }
    }

    /// All images of `s` as f32, C×H×W each.
    pub fn apply(&self, s: &ImageSet) -> Vec<f32> {
        let plane = s.shape[1] * s.shape[2];
        s.pixels
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let v = p as f32 / 255.0;
                match self {
                    Normalize::UnitRange => v,
                    Normalize::Standard { mean, std } => {
                        let c = (i / plane) % s.shape[0];
                        (v - mean[c]) / std[c]
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_are_deterministic_disjoint_and_complete() {
        let a = random_split(1000, 0.1, 0.2, 3);
        assert_eq!(a, random_split(1000, 0.1, 0.2, 3));
        assert_ne!(a, random_split(1000, 0.1, 0.2, 4));
        assert_eq!((a.train.len(), a.val.len(), a.test.len()), (700, 100, 200));
        let mut all: Vec<_> = a
            .train
            .iter()
            .chain(&a.val)
            .chain(&a.test)
            .copied()
            .collect();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn standardization_gives_zero_mean_unit_std() {
        let s = ImageSet {
            pixels: vec![0, 255, 10, 20, 255, 0, 30, 40],
            shape: [2, 1, 2],
            labels: vec![],
            classes: vec![],
        };
        let n = Normalize::standard_from(&s);
        let x = n.apply(&s);
        for c in 0..2 {
            let v: Vec<f32> = x.chunks(2).skip(c).step_by(2).flatten().copied().collect();
            let m = v.iter().sum::<f32>() / 4.0;
            let sd = (v.iter().map(|a| (a - m) * (a - m)).sum::<f32>() / 4.0).sqrt();
            assert!(m.abs() < 1e-5 && (sd - 1.0).abs() < 1e-4, "{m} {sd}");
        }
        assert_eq!(Normalize::UnitRange.apply(&s)[1], 1.0);
    }
}
