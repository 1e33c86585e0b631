//! The read floor shared by the runtime's and the host's benchmarks: the
//! fastest way this CPU reads a buffer, which a batch-1 matrix-vector
//! product, touching every weight once, cannot beat.

/// Sums `buf` (a multiple of 8 u64 long) in eight independent 64-byte load
/// streams, AVX-512 where the CPU has it; the sum keeps the loads alive.
pub fn sum_lines(buf: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F detected; 64-byte loads inside `buf`, whose
        // length is a multiple of 8 u64.
        return unsafe { sum_lines_avx512(buf) };
    }
    buf.iter().fold(0, |a, &b| a.wrapping_add(b))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum_lines_avx512(buf: &[u64]) -> u64 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_si512(); 8];
    for c in buf.chunks_exact(64) {
        for (k, a) in acc.iter_mut().enumerate() {
            // SAFETY: 8 u64 at c[8k..8k + 8], inside the chunk.
            *a = _mm512_add_epi64(*a, unsafe {
                _mm512_loadu_si512(c.as_ptr().add(8 * k).cast())
            });
        }
    }
    let s = acc
        .iter()
        .fold(_mm512_setzero_si512(), |s, &a| _mm512_add_epi64(s, a));
    _mm512_reduce_add_epi64(s) as u64
}

/// One core's peak f32 multiply-add rate in GFLOP/s, on the widest
/// vectors this CPU has (AVX-512, AVX2 with FMA, or NEON): 24 independent
/// FMA chains, enough to hide the latency of two FMA units; the best of
/// five runs of about 5 ms. `None` where there is no such kernel.
pub fn fma_peak_gflops() -> Option<(&'static str, f64)> {
    const ITERS: usize = 200_000;
    let best = |run: &dyn Fn() -> f32, lanes: usize| {
        (0..5)
            .map(|_| {
                let t = std::time::Instant::now();
                std::hint::black_box(run());
                (ITERS * 24 * lanes * 2) as f64 / t.elapsed().as_secs_f64() / 1e9
            })
            .fold(0.0, f64::max)
    };
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F detected.
            return Some(("AVX-512", best(&|| unsafe { fma_chains_avx512(ITERS) }, 16)));
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA detected.
            return Some(("AVX2", best(&|| unsafe { fma_chains_avx2(ITERS) }, 8)));
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        return Some(("NEON", best(&|| fma_chains_neon(ITERS), 4)));
    }
    #[allow(unreachable_code)]
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_chains_avx512(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    let mut acc = [_mm512_set1_ps(1.0); 24];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let s = acc
        .iter()
        .fold(_mm512_setzero_ps(), |s, &v| _mm512_add_ps(s, v));
    _mm512_reduce_add_ps(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_chains_avx2(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    let mut acc = [_mm256_set1_ps(1.0); 24];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut out = [0f32; 8];
    let s = acc
        .iter()
        .fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
    // SAFETY: 8 floats into an 8-float array.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
    out.iter().sum()
}

#[cfg(target_arch = "aarch64")]
fn fma_chains_neon(iters: usize) -> f32 {
    use std::arch::aarch64::*;
    // SAFETY: NEON is baseline on aarch64; register-only intrinsics.
    unsafe {
        let (a, b) = (vdupq_n_f32(0.999_999), vdupq_n_f32(1e-7));
        let mut acc = [vdupq_n_f32(1.0); 24];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = vfmaq_f32(b, *v, a);
            }
        }
        acc.iter().map(|&v| vaddvq_f32(v)).sum()
    }
}
