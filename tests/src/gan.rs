//! GAN generator files with pseudo-random weights.

use edgegen_format::arch::ActQuant;
use edgegen_format::arch::gan::{self, Hparams};
use edgegen_format::{GgmlType, GgufWriter, TensorName};

/// A generator as GGUF with weights N(0, 1) times `scale` and biases
/// `bias`, stored as `ty` (Q8_0 rows zero-padded to whole blocks, as the
/// exporter does).
pub fn generator_gguf(hp: &Hparams, ty: GgmlType, seed: u64, scale: f32, bias: f32) -> Vec<u8> {
    generator_gguf_with(hp, (ty, ActQuant::F32), seed, scale, bias)
}

/// [`generator_gguf`] whose Q8_0 layers multiply activations as `act`
/// says (int8 for the `q8_0a8` precision).
pub fn generator_gguf_with(
    hp: &Hparams,
    (ty, act): (GgmlType, ActQuant),
    seed: u64,
    scale: f32,
    bias: f32,
) -> Vec<u8> {
    let mut w = GgufWriter::new();
    hp.write(&mut w).unwrap();
    act.write(&mut w).unwrap();
    let mut r = edgegen_runtime::sample::Rng::new(seed);
    let zk = (hp.latent_dim + hp.n_classes) as usize;
    let mut layers = vec![(
        TensorName::fixed(gan::FC_WEIGHT),
        TensorName::fixed(gan::FC_BIAS),
        zk,
        hp.plane_len(0),
        hp.plane_len(0),
    )];
    for i in 0..hp.n_up {
        let (cin, _, _) = hp.plane(i);
        let (cout, _, _) = hp.plane(i + 1);
        layers.push((
            TensorName::at(gan::UP_WEIGHT, i),
            TensorName::at(gan::UP_BIAS, i),
            cin,
            cout * 16,
            cout,
        ));
    }
    for (wname, bname, inp, rows, nb) in layers {
        crate::add_random_matrix(&mut w, &wname.to_string(), rows, inp, ty, scale, &mut r);
        w.add_tensor(
            &bname.to_string(),
            &[nb as u64],
            GgmlType::F32,
            &vec![bias; nb],
        )
        .unwrap();
    }
    w.to_bytes()
}
