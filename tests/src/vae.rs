//! VAE model files and the checks of what a device decoded from them.

use edgegen_format::TensorName;
use edgegen_format::arch::ActQuant;

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
    decoder_gguf_with(hp, ty, ActQuant::F32, seed, scale, bias)
}

/// [`decoder_gguf`] whose Q8_0 layers multiply activations as `act` says
/// (the `q8_0a8` precision with [`ActQuant::Int8`]).
pub fn decoder_gguf_with(
    hp: &edgegen_format::arch::vae::Hparams,
    ty: edgegen_format::GgmlType,
    act: ActQuant,
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
    vae_gguf(
        hp,
        vae::Part::Decoder,
        &layers,
        (ty, act),
        seed,
        scale,
        bias,
    )
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
    vae_gguf(
        hp,
        vae::Part::Encoder,
        &layers,
        (ty, ActQuant::F32),
        seed,
        scale,
        bias,
    )
}

/// `layers` as `(weight name, bias name, (in, out))`.
fn vae_gguf(
    hp: &edgegen_format::arch::vae::Hparams,
    part: edgegen_format::arch::vae::Part,
    layers: &[(String, String, (usize, usize))],
    (ty, act): (edgegen_format::GgmlType, ActQuant),
    seed: u64,
    scale: [f32; 2],
    bias: [f32; 2],
) -> Vec<u8> {
    use edgegen_format::{GgmlType, GgufWriter, arch::vae};
    let mut w = GgufWriter::new();
    hp.write(&mut w).unwrap();
    act.write(&mut w).unwrap();
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
