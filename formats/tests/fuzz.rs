//! Property test: the reader never panics on random or mutated bytes.
//!
//! CI runs a few thousand cases. The long run is
//! `EDGEGEN_FUZZ_CASES=1000000 cargo test --release -p edgegen-format --test fuzz -- --nocapture`.

mod common;

use edgegen_format::{Gguf, Value, arch};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that sit on the edges of every length and count check.
const INTERESTING: [u64; 10] = [
    0,
    1,
    3,
    4,
    31,
    32,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    0x7FFF_FFFF_FFFF_FFFF,
    u64::MAX,
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            b.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(b.len());
        match rng.below(7) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = rng.next() as u8,
            2 => {
                // Overwrite 4 or 8 bytes with an edge value.
                let v = INTERESTING[rng.below(INTERESTING.len())].to_le_bytes();
                let w = if rng.below(2) == 0 { 4 } else { 8 };
                for (i, x) in v.iter().take(w).enumerate() {
                    if let Some(y) = b.get_mut(at + i) {
                        *y = *x;
                    }
                }
            }
            3 => b.truncate(at),
            4 => {
                let n = rng.below(16);
                b.drain(at..(at + n).min(b.len()));
            }
            5 => {
                let n = rng.below(16);
                let fill: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                b.splice(at..at, fill);
            }
            _ => {
                // Copy a slice of the file onto another place.
                let from = rng.below(b.len());
                let n = rng.below(32).min(b.len() - from).min(b.len() - at);
                let chunk = b[from..from + n].to_vec();
                b[at..at + n].copy_from_slice(&chunk);
            }
        }
    }
    b
}

/// Touches everything a user of the reader can touch.
fn exercise(bytes: &[u8]) -> usize {
    let Ok(g) = Gguf::parse(bytes) else {
        return 0;
    };
    let mut seen = 0;
    fn walk(v: &Value<'_>, seen: &mut usize) {
        *seen += 1;
        if let Value::Array(a) = v {
            for x in a.iter() {
                walk(&x, seen);
            }
            let _ = a.get(a.len().saturating_sub(1));
            let _ = a.get(a.len());
        }
    }
    for (k, v) in g.metadata() {
        seen += k.len();
        walk(&v, &mut seen);
        let _ = g.get(k);
    }
    let _ = arch::check(&g);
    let _ = arch::vae::Hparams::read(&g);
    for t in g.tensors() {
        seen += t.n_elements().min(1);
        let _ = g.tensor(t.name());
        if let Ok(v) = t.f32() {
            seen += v.iter().count();
            let _ = v.get(v.len());
        }
        if let Ok(v) = t.f16() {
            seen += v.iter().count();
        }
        if let Ok(v) = t.q8_0() {
            let _ = v.get(v.len().saturating_sub(1));
        }
        if t.n_elements() < 1 << 16 {
            let mut out = vec![0f32; t.n_elements()];
            let _ = t.dequantize_into(&mut out);
        }
    }
    seen
}

#[test]
fn reader_never_panics_on_mutated_or_random_bytes() {
    let cases: usize = std::env::var("EDGEGEN_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let seeds = [common::everything().to_bytes(), {
        let mut w = edgegen_format::GgufWriter::new();
        arch::write_common(&mut w, arch::Family::Vae).unwrap();
        w.add_tensor(
            "dec.0.weight",
            &[32, 3],
            edgegen_format::GgmlType::Q8_0,
            &common::values(96, 4),
        )
        .unwrap();
        w.to_bytes()
    }];
    let mut rng = Rng(0x00ED_6E6E);
    let mut parsed = 0;
    for i in 0..cases {
        let input = if i % 16 == 15 {
            // Pure noise behind a valid magic and version.
            let mut b = b"GGUF\x03\0\0\0".to_vec();
            b.extend((0..rng.below(256)).map(|_| rng.next() as u8));
            b
        } else {
            let s = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, s)
        };
        if Gguf::parse(&input).is_ok() {
            parsed += 1;
        }
        exercise(&input);
    }
    println!("fuzz: {cases} cases, {parsed} parsed as valid GGUF");
    // The mutations must leave some files valid, or the deeper paths were
    // never reached; and must break most of them, or nothing was tested.
    assert!(parsed > cases / 50, "only {parsed} of {cases} parsed");
    assert!(parsed < cases, "every mutated file parsed");
}
