//! The scatter of a transposed convolution with kernel 4, stride 2 and
//! padding 1 (the generator's up blocks), for whole input rows.
//!
//! After the matrix product, tap `kx` of input pixel `x` belongs to output
//! column `2x + kx - 1`. For a whole row that is two interleaved sums:
//! column `2x` takes `t1[x] + t3[x - 1]` and column `2x + 1` takes `t2[x] +
//! t0[x + 1]`. One value at a time, the scatter took 14 of a 63 µs
//! generator call on an AVX-512 Xeon (`edgegen bench` of the demo's
//! generator, perf): so each x86 kernel makes the same two sums for 8 (or
//! 4) pixels in vector lanes and interleaves them into the row with one
//! permutation. The operations per value are the reference's, in its
//! order, so every instruction set gives the same bits (tested).

use super::Isa;

/// Adds the four taps `t0..t3` of a whole input row (`w` pixels each) into
/// its output row, `2w` wide: column `2x` takes `t1[x] + t3[x - 1]` (`t1[0]`
/// alone) and column `2x + 1` takes `t2[x] + t0[x + 1]` (`+ 0.0` at the
/// end), each output written once.
///
/// ```
/// use edgegen_runtime::kernels::convt::add_row_taps;
/// let mut row = [0.0f32; 4];
/// add_row_taps(&mut row, [&[1.0, 2.0], &[10.0, 20.0], &[100.0, 200.0], &[1e3, 2e3]]);
/// assert_eq!(row, [10.0, 100.0 + 2.0, 20.0 + 1e3, 200.0]);
/// ```
pub fn add_row_taps(orow: &mut [f32], taps: [&[f32]; 4]) {
    add_row_taps_on(super::isa(), orow, taps)
}

/// [`add_row_taps`] on `isa` (available: the caller checks, as for
/// [`super::matvec_on`]): a plane of one row, or the reference when the
/// row is short or the taps' lengths differ.
pub fn add_row_taps_on(isa: Isa, orow: &mut [f32], taps: [&[f32]; 4]) {
    let w = taps[1].len();
    if taps.iter().all(|t| t.len() == w) && orow.len() >= 2 * w {
        // Input row 0 with ky = 1 is output row 0.
        return add_rows_on(isa, &mut orow[..2 * w], taps, w, 0, 1);
    }
    scalar(orow, taps)
}

/// [`add_row_taps_on`] for `ny` whole input rows `y0..y0 + ny` of a
/// plane `w` wide: `taps[kx]` holds their `ny * w` values of tap `kx`
/// (row `y0 + r` at `r * w`), and input row `y` goes to output row `2y +
/// ky - 1` of `plane` (`2w` wide), where it is inside. One call per kernel
/// row rather than per input row: at 7 pixels a row, the calls cost more
/// than the sums.
pub fn add_rows_on(isa: Isa, plane: &mut [f32], taps: [&[f32]; 4], w: usize, y0: usize, ky: usize) {
    #[cfg(target_arch = "x86_64")]
    match isa {
        // SAFETY: `isa` is available (the contract); `rows` hands the
        // kernel whole rows only.
        Isa::Avx512 => return unsafe { avx512_rows(plane, taps, w, y0, ky) },
        // SAFETY: as above.
        Isa::Avx2 => return unsafe { avx2_rows(plane, taps, w, y0, ky) },
        Isa::Scalar => {}
    }
    let _ = isa;
    for r in 0..rows(taps, w) {
        if let Some((orow, t)) = row(plane, taps, w, y0 + r, r, ky) {
            scalar(orow, t);
        }
    }
}

/// How many whole rows of `w` every tap holds.
#[inline(always)]
fn rows(taps: [&[f32]; 4], w: usize) -> usize {
    match w {
        0 => 0,
        _ => taps.iter().map(|t| t.len() / w).min().unwrap_or(0),
    }
}

/// Output row `2y + ky - 1` of `plane` (`2w` wide) and row `r` of each
/// tap, when that output row is inside the plane.
#[inline(always)]
fn row<'p, 't>(
    plane: &'p mut [f32],
    taps: [&'t [f32]; 4],
    w: usize,
    y: usize,
    r: usize,
    ky: usize,
) -> Option<(&'p mut [f32], [&'t [f32]; 4])> {
    let ow = 2 * w;
    let oy = (2 * y + ky).checked_sub(1)?;
    let orow = plane.get_mut(oy * ow..(oy + 1) * ow)?;
    let cut = |t: &'t [f32]| &t[r * w..(r + 1) * w];
    // On x86 `array::map` was a call per row (1.4% of a generator's
    // time); on the Cortex-M4 it is the smaller and faster form (56 B of
    // flash and 1.8 million instructions per sample fewer than the four
    // slices written out, measured).
    #[cfg(target_arch = "x86_64")]
    let t = [cut(taps[0]), cut(taps[1]), cut(taps[2]), cut(taps[3])];
    #[cfg(not(target_arch = "x86_64"))]
    let t = taps.map(cut);
    Some((orow, t))
}

/// The reference: the pixels' two sums in order, through iterators (no
/// bounds checks, which the Cortex-M4 would pay per value); a row shorter
/// than `2w` takes the columns it has. The taps are `w` long.
pub fn scalar(orow: &mut [f32], [t0, t1, t2, t3]: [&[f32]; 4]) {
    let w = t1.len();
    if w == 0 || orow.len() < 2 {
        return;
    }
    let (first, rest) = orow.split_at_mut(2);
    first[0] += t1[0];
    first[1] += t2[0] + t0.get(1).copied().unwrap_or(0.0);
    let pairs = rest.chunks_exact_mut(2);
    let odd = t0.get(2..).unwrap_or_default().iter().chain([&0.0]);
    let srcs = t1[1..]
        .iter()
        .zip(&t3[..w - 1])
        .zip(t2[1..].iter().zip(odd));
    for (pair, ((&a, &b), (&c, &d))) in pairs.zip(srcs) {
        pair[0] += a + b;
        pair[1] += c + d;
    }
}

/// Both output columns of input pixel `x` (`2x + 1 < orow.len()`), as
/// [`scalar`] computes them: the AVX2 kernel's edges.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn pixel(orow: &mut [f32], [t0, t1, t2, t3]: [&[f32]; 4], x: usize) {
    orow[2 * x] += match x {
        0 => t1[0],
        _ => t1[x] + t3[x - 1],
    };
    orow[2 * x + 1] += t2[x] + t0.get(x + 1).copied().unwrap_or(0.0);
}

/// [`add_rows_on`] with [`avx512_row`]: eight pixels a step, each sum in
/// the lanes of a 16-lane vector (masked loads for the edges: lane 0 of
/// the first step adds no `t3`, the last pixel's `t0` is a zero), then one
/// `vpermt2ps` interleaves the two sums into 16 columns.
///
/// # Safety
/// AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512_rows(plane: &mut [f32], taps: [&[f32]; 4], w: usize, y0: usize, ky: usize) {
    for r in 0..rows(taps, w) {
        if let Some((orow, t)) = row(plane, taps, w, y0 + r, r, ky) {
            // SAFETY: AVX-512F (the contract); `row` gives taps `w >= 1`
            // long and an output row `2w` long.
            unsafe { avx512_row(orow, t) }
        }
    }
}

/// One row of [`avx512_rows`].
///
/// # Safety
/// AVX-512F; the four taps `w >= 1` long, `orow` at least `2w`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn avx512_row(orow: &mut [f32], [t0, t1, t2, t3]: [&[f32]; 4]) {
    use core::arch::x86_64::*;
    let w = t1.len();
    let lanes = |n: usize| -> __mmask16 { ((1u32 << n) - 1) as __mmask16 };
    // SAFETY: every load reads lanes x0 + i < w of a tap (x0 + i + 1 < w
    // for t0, x0 + i - 1 >= 0 for t3), every store columns < 2w <=
    // orow.len(), under the masks.
    unsafe {
        let idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let mut x0 = 0;
        while x0 < w {
            let n = (w - x0).min(8);
            let m = lanes(n);
            let a = _mm512_maskz_loadu_ps(m, t1.as_ptr().add(x0));
            let e = if x0 == 0 {
                // Column 0 takes t1[0] alone; t3[x - 1] for the others.
                let b = _mm512_maskz_loadu_ps(lanes(n - 1), t3.as_ptr());
                let b = _mm512_castsi512_ps(_mm512_alignr_epi32::<15>(
                    _mm512_castps_si512(b),
                    _mm512_setzero_si512(),
                ));
                _mm512_mask_add_ps(a, m & !1, a, b)
            } else {
                _mm512_add_ps(a, _mm512_maskz_loadu_ps(m, t3.as_ptr().add(x0 - 1)))
            };
            // t0[x + 1], a zero past the row.
            let d = _mm512_maskz_loadu_ps(lanes(n.min(w - x0 - 1)), t0.as_ptr().add(x0 + 1));
            let o = _mm512_add_ps(_mm512_maskz_loadu_ps(m, t2.as_ptr().add(x0)), d);
            let cols = _mm512_permutex2var_ps(e, idx, o);
            let mo = lanes(2 * n);
            let dst = orow.as_mut_ptr().add(2 * x0);
            _mm512_mask_storeu_ps(dst, mo, _mm512_add_ps(_mm512_maskz_loadu_ps(mo, dst), cols));
            x0 += n;
        }
    }
}

/// [`add_rows_on`] with [`avx2_row`]: four pixels a step with 128-bit
/// sums and `vunpcklps`/`vunpckhps`, for the pixels whose taps are all
/// inside the row (`1 <= x`, `x + 1 < w`); the edges and the remainder
/// through [`pixel`].
///
/// # Safety
/// AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2_rows(plane: &mut [f32], taps: [&[f32]; 4], w: usize, y0: usize, ky: usize) {
    for r in 0..rows(taps, w) {
        if let Some((orow, t)) = row(plane, taps, w, y0 + r, r, ky) {
            // SAFETY: AVX2 (the contract); whole rows, as above.
            unsafe { avx2_row(orow, t) }
        }
    }
}

/// One row of [`avx2_rows`].
///
/// # Safety
/// AVX2; the four taps `w >= 1` long, `orow` at least `2w`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn avx2_row(orow: &mut [f32], taps: [&[f32]; 4]) {
    use core::arch::x86_64::*;
    let [t0, t1, t2, t3] = taps;
    let w = t1.len();
    pixel(orow, taps, 0);
    let mut x = 1;
    // SAFETY: x >= 1 and x + 4 < w: t3 from x - 1, t0 up to x + 4, the
    // others up to x + 3, and columns up to 2x + 7 < 2w.
    unsafe {
        while x + 4 < w {
            let e = _mm_add_ps(
                _mm_loadu_ps(t1.as_ptr().add(x)),
                _mm_loadu_ps(t3.as_ptr().add(x - 1)),
            );
            let o = _mm_add_ps(
                _mm_loadu_ps(t2.as_ptr().add(x)),
                _mm_loadu_ps(t0.as_ptr().add(x + 1)),
            );
            let cols = _mm256_set_m128(_mm_unpackhi_ps(e, o), _mm_unpacklo_ps(e, o));
            let dst = orow.as_mut_ptr().add(2 * x);
            _mm256_storeu_ps(dst, _mm256_add_ps(_mm256_loadu_ps(dst), cols));
            x += 4;
        }
    }
    for x in x.max(1)..w {
        pixel(orow, taps, x);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::tests::rand;
    use super::*;
    use std::vec::Vec;

    /// `n` values in [-1, 1), every seventh a negative zero and every
    /// seventh after it a positive one (an added `+0.0` would flip the
    /// sign of the first).
    fn values(seed: &mut u32, n: usize) -> Vec<f32> {
        let mut v = rand(seed, n);
        for (i, x) in v.iter_mut().enumerate() {
            match i % 7 {
                0 => *x = -0.0,
                3 => *x = 0.0,
                _ => {}
            }
        }
        v
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }

    /// Every ISA gives the reference's bits for rows of 1 to 40 pixels,
    /// and a row longer than `2w` keeps its other columns.
    #[test]
    fn every_isa_gives_the_reference_bits() {
        let mut s = 9u32;
        for w in 1..=40 {
            let taps: Vec<Vec<f32>> = (0..4).map(|_| values(&mut s, w)).collect();
            let t = [&taps[0][..], &taps[1][..], &taps[2][..], &taps[3][..]];
            let row = values(&mut s, 2 * w + 3);
            let mut want = row.clone();
            scalar(&mut want, t);
            for isa in Isa::ALL.iter().copied().filter(|i| i.available()) {
                let mut got = row.clone();
                add_row_taps_on(isa, &mut got, t);
                assert_eq!(bits(&got), bits(&want), "{isa:?} w {w}");
            }
        }
        // The reference against the formula, on one small row.
        let mut row = [0.5f32; 6];
        let t: [&[f32]; 4] = [
            &[1.0, 2.0, 3.0],
            &[4.0, 5.0, 6.0],
            &[7.0, 8.0, 9.0],
            &[10.0, 11.0, 12.0],
        ];
        scalar(&mut row, t);
        assert_eq!(row, [4.5, 9.5, 15.5, 11.5, 17.5, 9.5]);
    }

    /// A plane's rows in one call are the rows one at a time, on every
    /// ISA and for every kernel row (the first and last fall off the plane
    /// for ky 0 and 3), from the first input row or a later one.
    #[test]
    fn rows_in_one_call_are_the_rows_one_at_a_time() {
        let mut s = 3u32;
        for (h, w, y0, ny) in [
            (7usize, 7, 0, 7),
            (14, 14, 0, 14),
            (5, 3, 2, 3),
            (4, 9, 1, 2),
            (3, 1, 0, 3),
        ] {
            let taps: Vec<Vec<f32>> = (0..4).map(|_| values(&mut s, ny * w)).collect();
            let t = [&taps[0][..], &taps[1][..], &taps[2][..], &taps[3][..]];
            let plane = values(&mut s, 4 * h * w);
            for ky in 0..4usize {
                let mut want = plane.clone();
                for r in 0..ny {
                    let Some(oy) = (2 * (y0 + r) + ky).checked_sub(1).filter(|&v| v < 2 * h) else {
                        continue;
                    };
                    let row = |k: usize| &taps[k][r * w..(r + 1) * w];
                    scalar(
                        &mut want[oy * 2 * w..(oy + 1) * 2 * w],
                        [row(0), row(1), row(2), row(3)],
                    );
                }
                for isa in Isa::ALL.iter().copied().filter(|i| i.available()) {
                    let mut got = plane.clone();
                    add_rows_on(isa, &mut got, t, w, y0, ky);
                    assert_eq!(bits(&got), bits(&want), "{isa:?} {h}x{w} from {y0} ky {ky}");
                }
            }
        }
    }

    /// A short row takes the columns it has, on every ISA.
    #[test]
    fn a_short_row_takes_what_it_holds() {
        let t = [1.0f32, 2.0, 3.0];
        for isa in Isa::ALL.iter().copied().filter(|i| i.available()) {
            let mut row = [0f32; 3];
            add_row_taps_on(isa, &mut row, [&t, &t, &t, &t]);
            assert_eq!(row, [1.0, 3.0, 0.0], "{isa:?}");
        }
    }
}
