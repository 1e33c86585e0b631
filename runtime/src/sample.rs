//! Sampling: a seeded, deterministic random source and the pure selection
//! functions that consume it.
//!
//! **The algorithm** (so that any implementation can reproduce a sample):
//! the 64-bit seed is expanded by two steps of splitmix64 into the 128-bit
//! state of xoshiro128** (the first output's low and high 32 bits are words
//! 0 and 1, the second's are words 2 and 3). Uniforms take the top 24 bits
//! of a 32-bit output: `top24 / 2^24` in [0, 1). Normals come in pairs from
//! Marsaglia's polar method: draw `u = 2 a - 1` and `v = 2 b - 1` from two
//! uniforms until `0 < s = u^2 + v^2 < 1`, then return `u m` and then
//! `v m` with `m = sqrt(-2 ln s / s)`, using libm's `logf` and `sqrtf`,
//! which give the same bits on every target. (Not Box-Muller: its sine and
//! cosine would pull 5 KiB of argument reduction and soft doubles into
//! Cortex-M firmware.)

use crate::math::{self, DefaultMath, Math};

/// xoshiro128** with a Box-Muller normal cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Rng {
    s: [u32; 4],
    spare: Option<f32>,
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// The generator for `seed`.
    ///
    /// ```
    /// let mut a = edgegen_runtime::sample::Rng::new(7);
    /// let mut b = edgegen_runtime::sample::Rng::new(7);
    /// assert_eq!(a.normal(), b.normal());
    /// ```
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let (a, b) = (splitmix64(&mut x), splitmix64(&mut x));
        let mut s = [a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32];
        if s == [0; 4] {
            s[0] = 1; // the one state xoshiro cannot leave
        }
        Self { s, spare: None }
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 9;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(11);
        r
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f32 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let m = math::sqrt(-2.0 * libm::logf(s) / s);
                self.spare = Some(v * m);
                return u * m;
            }
        }
    }

    /// Fills `out` with standard normals.
    pub fn fill_normal(&mut self, out: &mut [f32]) {
        for v in out {
            *v = self.normal();
        }
    }
}

/// FNV-1a (32 bits) of `bytes`: a short fingerprint of a generated clip or
/// text that a device prints and the host recomputes, to show that both
/// drew the same sample.
///
/// ```
/// use edgegen_runtime::sample::fnv1a;
/// assert_eq!(fnv1a(b""), 0x811c_9dc5);
/// assert_eq!(fnv1a(b"a"), 0xe40c_292c);
/// ```
pub fn fnv1a(bytes: &[u8]) -> u32 {
    fnv1a_extend(FNV1A_START, bytes)
}

const FNV1A_START: u32 = 0x811c_9dc5;

fn fnv1a_extend(h: u32, bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(h, |a, &b| (a ^ b as u32).wrapping_mul(0x0100_0193))
}

/// [`fnv1a`] of the little-endian bytes of `words`, without a byte buffer:
/// the fingerprint of sampled symbols, or of pixels as their f32 bits
/// (equal hashes then mean bit-identical images).
///
/// ```
/// use edgegen_runtime::sample::{fnv1a, fnv1a_words};
/// assert_eq!(fnv1a_words([0x6261u32]), fnv1a(b"ab\0\0"));
/// let pixels = [0.5f32, 1.0];
/// let _hash = fnv1a_words(pixels.iter().map(|p| p.to_bits()));
/// ```
pub fn fnv1a_words<I: IntoIterator<Item = u32>>(words: I) -> u32 {
    words
        .into_iter()
        .fold(FNV1A_START, |h, w| fnv1a_extend(h, &w.to_le_bytes()))
}

/// Index of the largest value (the first on ties); 0 for an empty slice.
pub fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

/// Samples an index from probabilities `p` (summing to about 1) with the
/// uniform `coin` in [0, 1): pure, so a sampler is testable and
/// reproducible. Falls back to the last index on rounding.
pub fn sample_categorical(p: &[f32], coin: f32) -> usize {
    let mut cdf = 0.0;
    for (i, &v) in p.iter().enumerate() {
        cdf += v;
        if coin < cdf {
            return i;
        }
    }
    p.len().saturating_sub(1)
}

/// How [`sample_logits`] picks the next symbol. The filters apply in the
/// order of the fields: the repetition penalty to the logits, then the
/// temperature, then top-k, then top-p over what top-k kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Divides the logits; 0 picks the most likely symbol (greedy), and
    /// draws no random number.
    pub temperature: f32,
    /// Keep the `top_k` most likely symbols (0 keeps all). Symbols tied
    /// with the k-th are kept too, so that the result does not depend on
    /// the order of the vocabulary.
    pub top_k: usize,
    /// Keep the most likely symbols whose probabilities add up to at least
    /// `top_p` (1 keeps all). Ties at the cut are kept.
    pub top_p: f32,
    /// CTRL's repetition penalty, as llama.cpp applies it: the logit of
    /// each distinct symbol among the recent ones is divided by it when
    /// positive, multiplied when negative (1 is off).
    pub repetition_penalty: f32,
}

impl Default for Sampling {
    /// Temperature 1, nothing filtered.
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
        }
    }
}

/// An order-preserving map of an f32 to a u32, so that a threshold can be
/// found by bisecting integers (NaN sorts above everything).
fn key(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// The largest key `t` such that `weight(x with key(x) >= t) >= need`:
/// the k-th largest value when `weight` counts, the top-p cut when it
/// sums probabilities. 32 passes over `x`, no memory.
fn threshold(x: &[f32], need: f32, weight: impl Fn(f32) -> f32) -> u32 {
    let (mut lo, mut hi) = (0u32, u32::MAX);
    // Invariant: the mass at or above `lo` is >= need.
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        let mass: f32 = x
            .iter()
            .filter(|&&v| key(v) >= mid)
            .map(|&v| weight(v))
            .sum();
        if mass >= need {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Picks the next symbol from `logits`, which it overwrites with the
/// probabilities it drew from (zero where filtered). `recent` are the
/// symbols the repetition penalty looks at. In place and allocation free:
/// top-k and top-p find their cut by bisection rather than sorting, so no
/// index buffer the size of the vocabulary is needed.
///
/// ```
/// use edgegen_runtime::sample::{sample_logits, Rng, Sampling};
/// let mut logits = [0.0, 3.0, 1.0, 2.9];
/// let s = Sampling { temperature: 0.8, top_k: 2, ..Sampling::default() };
/// let next = sample_logits(&mut logits, &[], &s, &mut Rng::new(1));
/// assert!(next == 1 || next == 3);
/// assert_eq!((logits[0], logits[2]), (0.0, 0.0));
/// ```
pub fn sample_logits(logits: &mut [f32], recent: &[u32], s: &Sampling, rng: &mut Rng) -> usize {
    if logits.is_empty() {
        return 0;
    }
    if s.repetition_penalty != 1.0 && s.repetition_penalty > 0.0 {
        for (i, &t) in recent.iter().enumerate() {
            // Each distinct symbol once.
            if recent[..i].contains(&t) {
                continue;
            }
            if let Some(l) = logits.get_mut(t as usize) {
                *l = if *l > 0.0 {
                    *l / s.repetition_penalty
                } else {
                    *l * s.repetition_penalty
                };
            }
        }
    }
    if s.temperature.is_nan() || s.temperature <= 0.0 {
        let best = argmax(logits);
        for (i, p) in logits.iter_mut().enumerate() {
            *p = if i == best { 1.0 } else { 0.0 };
        }
        return best;
    }
    if s.top_k > 0 && s.top_k < logits.len() {
        let cut = threshold(logits, s.top_k as f32, |_| 1.0);
        for l in logits.iter_mut() {
            if key(*l) < cut {
                *l = f32::NEG_INFINITY;
            }
        }
    }
    // Softmax at the temperature.
    let max = math::max_value(logits);
    for l in logits.iter_mut() {
        *l = (*l - max) / s.temperature;
    }
    // Vectorized, with the scalar exp's bits.
    DefaultMath::exp_slice(logits);
    let sum: f32 = logits.iter().sum();
    logits.iter_mut().for_each(|p| *p /= sum);
    if s.top_p < 1.0 && s.top_p > 0.0 {
        let cut = threshold(logits, s.top_p, |p| p);
        let mut kept = 0.0;
        for p in logits.iter_mut() {
            if key(*p) < cut {
                *p = 0.0;
            }
            kept += *p;
        }
        logits.iter_mut().for_each(|p| *p /= kept);
    }
    let coin = rng.uniform();
    let i = sample_categorical(logits, coin);
    // Rounding can leave the coin past the last kept symbol: take the most
    // likely one rather than a filtered one.
    if logits[i] > 0.0 { i } else { argmax(logits) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_keep_what_they_promise() {
        let base = [1.0f32, 4.0, 2.0, 3.0, 0.5];
        // top-k 2 keeps symbols 1 and 3 only, whatever the coin.
        for seed in 0..50 {
            let mut l = base;
            let s = Sampling {
                top_k: 2,
                ..Sampling::default()
            };
            let i = sample_logits(&mut l, &[], &s, &mut Rng::new(seed));
            assert!(i == 1 || i == 3);
            assert_eq!((l[0], l[2], l[4]), (0.0, 0.0, 0.0));
            assert!((l[1] + l[3] - 1.0).abs() < 1e-6);
        }
        // Ties at the k-th are kept.
        let mut l = [1.0f32, 2.0, 2.0, 0.0];
        let s = Sampling {
            top_k: 2,
            ..Sampling::default()
        };
        sample_logits(&mut l, &[], &s, &mut Rng::new(3));
        assert!(l[0] == 0.0 && l[3] == 0.0 && l[1] > 0.0 && l[2] > 0.0);
        // top-p 0.5 on probabilities (0.6, 0.3, 0.1) keeps the first.
        let mut l = [0.6f32.ln(), 0.3f32.ln(), 0.1f32.ln()];
        let s = Sampling {
            top_p: 0.5,
            ..Sampling::default()
        };
        assert_eq!(sample_logits(&mut l, &[], &s, &mut Rng::new(9)), 0);
        assert_eq!(l, [1.0, 0.0, 0.0]);
        // top-p 0.8 keeps two.
        let mut l = [0.6f32.ln(), 0.3f32.ln(), 0.1f32.ln()];
        let s = Sampling {
            top_p: 0.8,
            ..Sampling::default()
        };
        sample_logits(&mut l, &[], &s, &mut Rng::new(9));
        assert!((l[0] - 2.0 / 3.0).abs() < 1e-5 && l[2] == 0.0, "{l:?}");
        // Greedy draws nothing and picks the largest.
        let mut r = Rng::new(5);
        let before = r.clone();
        let mut l = base;
        let s = Sampling {
            temperature: 0.0,
            ..Sampling::default()
        };
        assert_eq!(sample_logits(&mut l, &[], &s, &mut r), 1);
        assert_eq!(r, before);
    }

    #[test]
    fn the_penalty_applies_once_per_symbol_and_the_seed_fixes_the_draw() {
        let mut l = [2.0f32, -2.0, 1.0];
        let s = Sampling {
            repetition_penalty: 2.0,
            temperature: 0.0,
            ..Sampling::default()
        };
        sample_logits(&mut l, &[0, 0, 1], &s, &mut Rng::new(1));
        // 2 / 2 = 1 ties with symbol 2; argmax takes the first.
        assert_eq!(l, [1.0, 0.0, 0.0]);
        let draw = |seed| {
            let mut l = [0.3f32, 0.1, 0.2, 0.25];
            sample_logits(&mut l, &[], &Sampling::default(), &mut Rng::new(seed))
        };
        assert_eq!(draw(11), draw(11));
        let counts = (0..400).fold([0usize; 4], |mut c, s| {
            c[draw(s)] += 1;
            c
        });
        assert!(counts.iter().all(|&c| c > 60), "{counts:?}");
    }

    #[test]
    fn streams_are_fixed_by_the_seed_and_normals_are_normal() {
        let mut r = Rng::new(42);
        let first: [u32; 3] = [r.next_u32(), r.next_u32(), r.next_u32()];
        let mut r2 = Rng::new(42);
        assert_eq!(first, [r2.next_u32(), r2.next_u32(), r2.next_u32()]);
        let mut r = Rng::new(1);
        let n = 100_000;
        let (mut s, mut s2) = (0f64, 0f64);
        for _ in 0..n {
            let z = r.normal() as f64;
            s += z;
            s2 += z * z;
        }
        let (m, v) = (s / n as f64, s2 / n as f64);
        assert!(m.abs() < 0.01 && (v - 1.0).abs() < 0.02, "{m} {v}");
    }

    #[test]
    fn categorical_and_argmax_are_pure() {
        let p = [0.1, 0.6, 0.3];
        assert_eq!(sample_categorical(&p, 0.05), 0);
        assert_eq!(sample_categorical(&p, 0.5), 1);
        assert_eq!(sample_categorical(&p, 0.95), 2);
        assert_eq!(sample_categorical(&p, 0.9999999), 2);
        assert_eq!(argmax(&[1.0, 3.0, 3.0, -1.0]), 1);
        assert_eq!(argmax(&[]), 0);
    }
}
