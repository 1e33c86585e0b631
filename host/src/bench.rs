//! Timing on a noisy machine, shared by `edgegen bench` and the cargo
//! benchmarks: engines take turns within each round, so that a ratio is
//! the median over rounds of two times taken under the same conditions
//! (this machine's speed drifts by tens of percent over seconds), and a
//! read floor: the time to read the weights once, which a batch-1
//! matrix-vector product cannot beat.

use std::hint::black_box;
use std::time::Instant;

#[path = "../../runtime/benches/floor.rs"]
mod floor;

/// One core's peak f32 FMA rate: the instruction set and GFLOP/s (see
/// `runtime/benches/floor.rs`), for compute-bound models to be judged by.
pub fn fma_peak_gflops() -> Option<(&'static str, f64)> {
    floor::fma_peak_gflops()
}

/// Mean microseconds per call of `f` over `calls` calls.
pub fn mean_us(f: &mut dyn FnMut(), calls: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..calls {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / calls.max(1) as f64
}

/// The median (the upper one of an even count); NaN for no values.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The environment variable `k` parsed, else `d` (benchmark settings).
pub fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(d)
}

/// One engine's result in [`interleaved`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Timing {
    /// Median over rounds of the mean microseconds per call.
    pub us: f64,
    /// Median over rounds of the first engine's time over this one's.
    pub first_over_this: f64,
}

/// Runs the engines in turn for `rounds` rounds of `calls` calls each,
/// after a warm-up of a quarter round.
pub fn interleaved(engines: &mut [&mut dyn FnMut()], calls: usize, rounds: usize) -> Vec<Timing> {
    interleaved_with(engines, calls, rounds, &mut |_| {})
}

/// [`interleaved`], calling `done(rounds_finished)` after each round, for a
/// progress bar.
pub fn interleaved_with(
    engines: &mut [&mut dyn FnMut()],
    calls: usize,
    rounds: usize,
    done: &mut dyn FnMut(usize),
) -> Vec<Timing> {
    for f in engines.iter_mut() {
        mean_us(*f, calls.div_ceil(4));
    }
    let times: Vec<Vec<f64>> = (0..rounds.max(1))
        .map(|r| {
            let t = engines.iter_mut().map(|f| mean_us(*f, calls)).collect();
            done(r + 1);
            t
        })
        .collect();
    (0..engines.len())
        .map(|e| Timing {
            us: median(times.iter().map(|r| r[e]).collect()),
            first_over_this: median(times.iter().map(|r| r[0] / r[e]).collect()),
        })
        .collect()
}

/// A buffer of `bytes` to read as fast as this CPU can, once per
/// [`ReadFloor::read`]: run it among the engines of [`interleaved`] so
/// that the floor is measured under the same conditions as they are.
pub struct ReadFloor {
    buf: Vec<u64>,
}

impl ReadFloor {
    /// A buffer of at least `bytes` (rounded up to 512).
    pub fn new(bytes: usize) -> Self {
        Self {
            buf: vec![1u64; bytes.div_ceil(512) * 64],
        }
    }

    /// Reads the whole buffer once.
    pub fn read(&self) {
        black_box(floor::sum_lines(black_box(&self.buf)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_ratios() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert!(median(vec![]).is_nan());
        let (mut a, mut b) = (0u64, 0u64);
        let t = interleaved(
            &mut [
                &mut || {
                    a = black_box(a + 1);
                },
                &mut || {
                    b = black_box(b + 1);
                },
            ],
            10,
            3,
        );
        // Each engine ran the warm-up and every round.
        assert_eq!((a, b), (3 + 30, 3 + 30));
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].first_over_this, 1.0);
        assert!(t.iter().all(|x| x.us >= 0.0));
    }
}
