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

use crate::math;

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

#[cfg(test)]
mod tests {
    use super::*;

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
