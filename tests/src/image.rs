//! Checks of the images a device drew, for both image families.

use edgegen_runtime::models::Model;
use edgegen_runtime::sample::Rng;

/// Checks a device's `sample i sum S first a b c [hash 0xH]` lines
/// (`count` of them) against the host runtime drawing the same samples
/// from `gguf` (a VAE decoder or a GAN generator) with `seed` and `label`:
/// sums to 1e-4 and the listed pixels to 2e-6. `who` names the device in
/// failure messages. The hash (of the pixels' f32 bits) is not compared:
/// a device sums in another order, so the bits can differ in the last
/// place.
pub fn check_samples_against_host(
    text: &str,
    gguf: &[u8],
    seed: u64,
    label: Option<u32>,
    count: usize,
    who: &str,
) {
    let model = Model::from_gguf(gguf).expect("a valid model");
    let (z_len, out_len) = match &model {
        Model::VaeDecoder(d) => (d.latent_dim(), d.output_len()),
        Model::Generator(g) => (g.latent_dim(), g.output_len()),
        _ => panic!("{who}: not an image model"),
    };
    let mut rng = Rng::new(seed);
    let (mut z, mut img) = (vec![0f32; z_len], vec![0f32; out_len]);
    let mut scratch = vec![0f32; model.scratch_len()];
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("sample ")).collect();
    assert_eq!(lines.len(), count, "{who}: {text}");
    for line in lines {
        match &model {
            Model::VaeDecoder(d) => d.sample(&mut rng, label, &mut z, &mut scratch, &mut img),
            Model::Generator(g) => g.sample(&mut rng, label, &mut z, &mut scratch, &mut img),
            _ => unreachable!(),
        }
        .unwrap();
        // "sample i sum S first a b c hash 0xH" -> [i, S, a, b, c]
        let f: Vec<f32> = line
            .split_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        let sum: f32 = img.iter().sum();
        assert!(
            (f[1] - sum).abs() < 1e-4,
            "{who}: device sum {} vs host {sum}",
            f[1]
        );
        for (d, h) in f[2..].iter().zip(&img) {
            assert!((d - h).abs() < 2e-6, "{who}: device pixel {d} vs host {h}");
        }
    }
}
