//! VAE model files and the checks of what a device decoded from them.

use edgegen_format::TensorName;

/// A VAE decoder as GGUF with pseudo-random weights (N(0, 1) times
/// `scale[i]` for layer i) and constant biases (`bias[i]`), stored as `ty`
/// (Q8_0 rows zero-padded to whole blocks, as the exporter does); with
/// `hp.label_every_layer`, F32 per-class bias tables drawn as the weights.
pub fn decoder_gguf(
    hp: &edgegen_format::arch::vae::Hparams,
    ty: edgegen_format::GgmlType,
    seed: u64,
    scale: [f32; 2],
    bias: [f32; 2],
) -> Vec<u8> {
    use edgegen_format::arch::vae;
    let layers: Vec<_> = (0..=hp.n_hidden)
        .map(|i| {
            (
                TensorName::at(vae::DEC_WEIGHT, i).to_string(),
                TensorName::at(vae::DEC_BIAS, i).to_string(),
                hp.decoder_layer(i),
            )
        })
        .collect();
    vae_gguf(hp, vae::Part::Decoder, &layers, ty, seed, scale, bias)
}

/// [`decoder_gguf`] for an encoder: the hidden layers, then the mu and
/// logvar heads (which take `scale[1]` and `bias[1]`).
pub fn encoder_gguf(
    hp: &edgegen_format::arch::vae::Hparams,
    ty: edgegen_format::GgmlType,
    seed: u64,
    scale: [f32; 2],
    bias: [f32; 2],
) -> Vec<u8> {
    use edgegen_format::arch::vae;
    let head = (
        hp.hidden()[hp.n_hidden - 1] as usize,
        hp.latent_dim as usize,
    );
    let layers: Vec<_> = (0..hp.n_hidden)
        .map(|i| {
            (
                TensorName::at(vae::ENC_WEIGHT, i).to_string(),
                TensorName::at(vae::ENC_BIAS, i).to_string(),
                hp.encoder_layer(i),
            )
        })
        .chain([
            (vae::ENC_MU_WEIGHT.into(), vae::ENC_MU_BIAS.into(), head),
            (
                vae::ENC_LOGVAR_WEIGHT.into(),
                vae::ENC_LOGVAR_BIAS.into(),
                head,
            ),
        ])
        .collect();
    vae_gguf(hp, vae::Part::Encoder, &layers, ty, seed, scale, bias)
}

/// `layers` as `(weight name, bias name, (in, out))`.
fn vae_gguf(
    hp: &edgegen_format::arch::vae::Hparams,
    part: edgegen_format::arch::vae::Part,
    layers: &[(String, String, (usize, usize))],
    ty: edgegen_format::GgmlType,
    seed: u64,
    scale: [f32; 2],
    bias: [f32; 2],
) -> Vec<u8> {
    use edgegen_format::{GgmlType, GgufWriter, arch::vae};
    let mut w = GgufWriter::new();
    hp.write(&mut w).unwrap();
    w.add(vae::PART, part.name()).unwrap();
    let mut r = edgegen_runtime::sample::Rng::new(seed);
    for (i, (wname, bname, (inp, out))) in layers.iter().enumerate() {
        let (inp, out) = (*inp, *out);
        let s = scale[i.min(1)];
        crate::add_random_matrix(&mut w, wname, out, inp, ty, s, &mut r);
        w.add_tensor(
            bname,
            &[out as u64],
            GgmlType::F32,
            &vec![bias[i.min(1)]; out],
        )
        .unwrap();
        if part == vae::Part::Decoder && hp.decoder_has_label(i) {
            let k = hp.n_classes as usize;
            let vals: Vec<f32> = (0..k * out).map(|_| r.normal() * s).collect();
            let name = TensorName::at(vae::DEC_LABEL, i).to_string();
            w.add_tensor(&name, &[out as u64, k as u64], GgmlType::F32, &vals)
                .unwrap();
        }
    }
    w.to_bytes()
}

/// Checks a device's `sample i sum S [first a b c]` lines (`count` of
/// them) against the host runtime drawing the same samples from `gguf`
/// with `seed` and `label`: sums to 1e-4 and the listed pixels to 2e-6.
/// `who` names the device in failure messages.
pub fn check_samples_against_host(
    text: &str,
    gguf: &[u8],
    seed: u64,
    label: Option<u32>,
    count: usize,
    who: &str,
) {
    use edgegen_runtime::models::Model;
    let Model::VaeDecoder(dec) = Model::from_gguf(gguf).expect("a valid model") else {
        panic!("{who}: not a VAE decoder")
    };
    let mut rng = edgegen_runtime::sample::Rng::new(seed);
    let (mut z, mut img) = (vec![0f32; dec.latent_dim()], vec![0f32; dec.output_len()]);
    let mut scratch = vec![0f32; dec.scratch_len()];
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("sample ")).collect();
    assert_eq!(lines.len(), count, "{who}: {text}");
    for line in lines {
        dec.sample(&mut rng, label, &mut z, &mut scratch, &mut img)
            .unwrap();
        // "sample i sum S first a b c" -> [i, S, a, b, c]
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
