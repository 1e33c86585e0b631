//! The matrix-vector kernels alone, per weight type and per instruction set
//! this CPU has, side by side, on the shapes of the 784-400-20 VAE decoder
//! (20 -> 400 and 400 -> 784) and one that stays in L1, against the time it
//! takes to read the same bytes from cache: the floor for batch 1. `q8a8`
//! is Q8_0 with int8 activations (the input quantized in each call).
//!
//!   cargo bench -p edgegen-runtime --features std,int8 --bench kernels
//!
//! Medians of 15 rounds; nanoseconds per call.

use edgegen_format::quant::{BlockQ8_0, f32_to_f16_bits};
use edgegen_runtime::kernels::{Isa, Matrix, Weights, gemm_cols_on, matvec_on};
use std::hint::black_box;
use std::time::Instant;

#[path = "floor.rs"]
mod floor;
use floor::sum_lines;

fn median_ns(mut f: impl FnMut(), calls: usize) -> f64 {
    for _ in 0..calls / 4 {
        f();
    }
    let mut r: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..calls {
                f();
            }
            t.elapsed().as_secs_f64() * 1e9 / calls as f64
        })
        .collect();
    r.sort_by(|a, b| a.partial_cmp(b).unwrap());
    r[7]
}

fn rand(seed: &mut u32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 17;
            *seed ^= *seed << 5;
            (*seed as f32 / u32::MAX as f32) * 0.2 - 0.1
        })
        .collect()
}

/// Storage of `rows x cols` weights in each type (Q8_0 rows padded to 32).
struct Stored {
    f32: Vec<u8>,
    f16: Vec<u8>,
    q8: Vec<BlockQ8_0>,
    stride_q8: usize,
}

fn store(w: &[f32], rows: usize, cols: usize) -> Stored {
    let f32 = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    let f16 = w
        .iter()
        .flat_map(|&v| f32_to_f16_bits(v).to_le_bytes())
        .collect();
    let stride_q8 = cols.next_multiple_of(32);
    let mut q8 = Vec::new();
    for r in 0..rows {
        let mut row = vec![0f32; stride_q8];
        row[..cols].copy_from_slice(&w[r * cols..(r + 1) * cols]);
        for c in row.chunks_exact(32) {
            q8.push(BlockQ8_0::quantize(c.try_into().unwrap()));
        }
    }
    Stored {
        f32,
        f16,
        q8,
        stride_q8,
    }
}

/// Read time of `bytes` from a buffer that stays in cache: eight
/// independent 64-byte load streams (AVX-512 where the CPU has it), summed
/// so the loads cannot be elided.
fn read_ns(bytes: usize) -> f64 {
    let buf = vec![1u64; bytes.div_ceil(512) * 64];
    median_ns(
        || {
            black_box(sum_lines(black_box(&buf)));
        },
        500,
    )
}

fn main() {
    let isas: Vec<Isa> = Isa::ALL.iter().copied().filter(|i| i.available()).collect();
    println!("ns per matvec, median of 15 rounds; x/read = time over the time to read the weights");
    print!("{:<8} {:<5} {:>8} {:>7}", "shape", "type", "bytes", "read");
    for i in &isas {
        print!(" {:>9} {:>7}", format!("{i:?}"), "x/read");
    }
    println!();
    let mut seed = 7u32;
    for (rows, cols) in [(400usize, 20usize), (48, 400), (784, 400)] {
        let w = rand(&mut seed, rows * cols);
        let x = rand(&mut seed, cols);
        let s = store(&w, rows, cols);
        let mut out = vec![0f32; rows];
        for (name, m) in [
            ("f32", Matrix::new(Weights::F32(&s.f32), rows, cols, cols)),
            ("f16", Matrix::new(Weights::F16(&s.f16), rows, cols, cols)),
            (
                "q8_0",
                Matrix::new(Weights::Q8_0(&s.q8), rows, cols, s.stride_q8),
            ),
            (
                "q8a8",
                Matrix::new(Weights::Q8_0(&s.q8), rows, cols, s.stride_q8)
                    .map(Matrix::with_int8_activations),
            ),
        ] {
            let m = m.unwrap();
            let rd = read_ns(m.bytes());
            print!(
                "{:<8} {:<5} {:>8} {:>7.0}",
                format!("{rows}x{cols}"),
                name,
                m.bytes(),
                rd
            );
            for &i in &isas {
                let calls = if i == Isa::Scalar { 200 } else { 2000 };
                let ns = median_ns(
                    || matvec_on(i, &mut out, black_box(&m), black_box(&x), |_| 0.0),
                    calls,
                );
                print!(" {:>9.0} {:>6.2}x", ns, ns / rd);
            }
            println!();
        }
    }
    gemm_cols_table(&isas);
}

/// The transposed convolutions' matrix product: the reference generator's
/// first up block, (1024 x 128) weights times a 7 x 7 plane, in GFLOP/s
/// against one core's FMA peak.
fn gemm_cols_table(isas: &[Isa]) {
    let peak = floor::fma_peak_gflops();
    let (rows, cols, p) = (1024usize, 128usize, 49usize);
    match peak {
        Some((isa, g)) => println!(
            "\nGFLOP/s of gemm_cols, ({rows} x {cols}) x {p} pixels; one core's {isa} FMA peak {g:.1}"
        ),
        None => println!("\nGFLOP/s of gemm_cols, ({rows} x {cols}) x {p} pixels"),
    }
    let mut seed = 11u32;
    let w = rand(&mut seed, rows * cols);
    let x = rand(&mut seed, cols * p);
    let s = store(&w, rows, cols);
    let mut out = vec![0f32; rows * p];
    print!("{:<5}", "type");
    for i in isas {
        print!(" {:>9} {:>6}", format!("{i:?}"), "%peak");
    }
    println!();
    for (name, m) in [
        ("f32", Matrix::new(Weights::F32(&s.f32), rows, cols, cols)),
        ("f16", Matrix::new(Weights::F16(&s.f16), rows, cols, cols)),
        (
            "q8_0",
            Matrix::new(Weights::Q8_0(&s.q8), rows, cols, s.stride_q8),
        ),
    ] {
        let m = m.unwrap();
        print!("{name:<5}");
        for &i in isas {
            let calls = if i == Isa::Scalar { 5 } else { 100 };
            let ns = median_ns(
                || gemm_cols_on(i, &mut out, black_box(&m), black_box(&x), p, p),
                calls,
            );
            let g = (2 * rows * cols * p) as f64 / ns;
            let pct = peak.map_or(f64::NAN, |(_, pk)| 100.0 * g / pk);
            print!(" {g:>9.1} {pct:>5.0}%");
        }
        println!();
    }
}
