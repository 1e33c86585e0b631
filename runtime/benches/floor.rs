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
