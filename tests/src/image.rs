//! Checks of the images a device drew, for both image families.

use edgegen_runtime::models::Model;
use edgegen_runtime::sample::Rng;

/// Checks a device's `sample i sum S first a b c hash 0xH` lines (`count`
/// of them) against the host runtime drawing the same samples from `gguf`
/// (a VAE decoder or a GAN generator) with `seed` and `label`: the hash
/// of the pixels' f32 bits must be equal (every target sums in the
/// canonical order), and so the printed sum and pixels. `who` names the
/// device in failure messages.
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
        let px = |k: usize| img.get(k).copied().unwrap_or(0.0);
        let sum: f32 = img.iter().sum();
        let i = line.split_whitespace().nth(1).unwrap_or("?");
        let want = format!(
            "sample {i} sum {sum:.6} first {:.6} {:.6} {:.6} hash 0x{:08x}",
            px(0),
            px(1),
            px(2),
            edgegen_runtime::sample::fnv1a_words(img.iter().map(|p| p.to_bits()))
        );
        assert_eq!(line, want, "{who}: the device's sample, then the host's");
    }
}
