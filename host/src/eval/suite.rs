//! One evaluation for every image model: generated images scored by a
//! classifier trained on the same kind of data (`train classifier`), so
//! that a VAE, a GAN and their conditional forms compare side by side.
//!
//! - `classifier_score`: `exp(E KL(p(y|x) || p(y)))`, Inception-score
//!   style over the classifier's classes;
//! - `fd_classifier`: the Fréchet distance between the generated and the
//!   real test images in the classifier's penultimate features, beside
//!   `fd_real_baseline`, the same distance from real training images;
//! - `precision` and `recall`: k-NN manifolds (k = 3) in the same features;
//! - `conditional_accuracy`: how often the classifier agrees with the
//!   label a conditional model was asked for;
//! - `class_shares`: the fraction of generated images the classifier puts
//!   in each class, so that a score short of the real images' can be read
//!   as classes drawn unevenly (a flat 10% each is what the score's
//!   marginal term wants) or as images it is unsure of.

use super::stats;
use crate::data::inputs::Images;
use crate::models::classifier::{Classifier, ClassifierActs};
use crate::nn::gemm::Threads;
use crate::train::classifier::argmax;
use anyhow::{Result, bail};
use serde::Serialize;

/// Neighbours per manifold ball, as Kynkäänniemi et al. use.
pub const K_NEAREST: usize = 3;

/// What `eval --classifier` adds to a model's report.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// Generated images scored.
    pub n: usize,
    /// The classifier run's best checkpoint.
    pub classifier: String,
    /// Its accuracy on the real test split here.
    pub classifier_test_accuracy: f64,
    /// Inception-style score of the generated images.
    pub classifier_score: f64,
    /// The same score of the real test images, for scale.
    pub real_test_score: f64,
    /// Fréchet distance to the real test images in feature space.
    pub fd_classifier: f64,
    /// Real training images (as many as generated, or all) against the
    /// real test images: what a perfect model would score.
    pub fd_real_baseline: f64,
    /// k-NN precision of the generated images.
    pub precision: f64,
    /// k-NN recall of the real test images.
    pub recall: f64,
    /// The k of the k-NN manifolds.
    pub k: usize,
    /// Fraction of conditional samples classified as the label asked for.
    pub conditional_accuracy: Option<f64>,
    /// Per class, the fraction of generated images classified as it.
    pub class_shares: Vec<f64>,
}

/// A classifier ready to score images.
pub struct Scorer<'a> {
    /// The network.
    pub model: &'a Classifier,
    /// Its parameters.
    pub params: &'a [f32],
    /// Its running statistics.
    pub buffers: &'a [f32],
    /// Where it came from, for the report.
    pub path: String,
}

impl Scorer<'_> {
    fn run(&self, pixels: &[f32], th: Threads) -> (Vec<f32>, Vec<f32>) {
        let mut a = ClassifierActs::new(self.model, 256);
        self.model
            .features_and_probs(self.params, self.buffers, pixels, &mut a, th)
    }
}

/// Scores `pixels` `(n, D)` (in [0, 1]; with the labels they were asked
/// for, for a conditional model) against the real `train` and `test`
/// images.
pub fn score(
    s: &Scorer,
    pixels: &[f32],
    labels: Option<&[u32]>,
    train: &Images,
    test: &Images,
    th: Threads,
) -> Result<SuiteReport> {
    let (d, f, k) = (
        s.model.cfg.image_len(),
        s.model.cfg.features,
        s.model.cfg.n_classes,
    );
    if train.d != d || test.d != d {
        bail!(
            "{}: the classifier takes images of {d} values, the data has {}",
            s.path,
            test.d
        );
    }
    let n = pixels.len() / d;
    if n < 2 || test.len() < 2 {
        bail!("the suite needs at least 2 generated and 2 real test images");
    }
    let (gen_f, gen_p) = s.run(pixels, th);
    let (test_f, test_p) = s.run(&test.x, th);
    let base_n = n.min(train.len());
    let (train_f, _) = s.run(&train.x[..base_n * d], th);
    let right = (0..test.len())
        .filter(|&i| argmax(&test_p[i * k..(i + 1) * k]) == test.labels[i] as usize)
        .count();
    // The class each generated image is given, once for both measures.
    let gen_y: Vec<usize> = gen_p.chunks_exact(k).map(argmax).collect();
    let conditional_accuracy = labels.map(|l| {
        gen_y
            .iter()
            .zip(l)
            .filter(|&(&y, &l)| y == l as usize)
            .count() as f64
            / n as f64
    });
    let mut class_shares = vec![0f64; k];
    for &y in &gen_y {
        class_shares[y] += 1.0 / n as f64;
    }
    let (precision, recall) = stats::precision_recall(&test_f, &gen_f, f, K_NEAREST);
    Ok(SuiteReport {
        n,
        classifier: s.path.clone(),
        classifier_test_accuracy: right as f64 / test.len() as f64,
        classifier_score: stats::classifier_score(&gen_p, k),
        real_test_score: stats::classifier_score(&test_p, k),
        fd_classifier: stats::frechet(&gen_f, &test_f, f),
        fd_real_baseline: stats::frechet(&train_f, &test_f, f),
        precision,
        recall,
        k: K_NEAREST,
        conditional_accuracy,
        class_shares,
    })
}

/// Labels `0, 1, .., k-1, 0, ..` for `n` samples of a conditional model.
pub fn balanced_labels(n: usize, k: usize) -> Vec<u32> {
    (0..n).map(|i| (i % k.max(1)) as u32).collect()
}
