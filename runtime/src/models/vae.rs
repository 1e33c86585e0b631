//! The VAE on the device: the decoder, `[z, onehot(label)] -> hidden ->
//! pixels`, which samples; and the encoder, `[x, onehot(label)] -> hidden
//! -> (mu, logvar)`, which maps real images into the latent space, so that
//! a device can walk between them.
//!
//! Z latent size, K classes (0 if unconditional), D pixels.

use super::{check_label, check_len, check_scratch};
use crate::layers::{self, Dense, Vector};
use edgegen_format::arch::vae::{
    self, DEC_BIAS, DEC_LABEL, DEC_WEIGHT, ENC_BIAS, ENC_LOGVAR_BIAS, ENC_LOGVAR_WEIGHT,
    ENC_MU_BIAS, ENC_MU_WEIGHT, ENC_WEIGHT, Hparams, Likelihood,
};
use edgegen_format::{Error, Gguf, TensorName};

/// Runs `[v, onehot(label)]` through `hidden`, each layer followed by
/// `act`, ping-ponging between the two halves of `scratch` (each as wide as
/// the widest of them); returns the last layer's output. `label_bias[i]`,
/// where present, is layer `i`'s per-class bias table.
fn run_hidden<'s, M: crate::math::Math>(
    hidden: &[Dense<'_>],
    label_bias: &[Option<Vector<'_>>],
    act: edgegen_format::arch::Activation,
    scratch: &'s mut [f32],
    v: &[f32],
    k: usize,
    label: Option<u32>,
) -> &'s [f32] {
    let half = scratch.len() / 2;
    let (mut a, mut b) = scratch.split_at_mut(half);
    with_onehot(a, v, k, label);
    let mut n = v.len() + k;
    for (i, l) in hidden.iter().enumerate() {
        l.forward(&mut b[..l.w.rows], &a[..l.w.cols]);
        add_label_bias(label_bias.get(i), label, &mut b[..l.w.rows]);
        layers::activate_with::<M>(act, &mut b[..l.w.rows]);
        core::mem::swap(&mut a, &mut b);
        n = l.w.rows;
    }
    let a: &'s [f32] = a;
    &a[..n]
}

/// Adds row `label` of a layer's per-class bias table, if it has one.
fn add_label_bias(table: Option<&Option<Vector<'_>>>, label: Option<u32>, out: &mut [f32]) {
    if let (Some(Some(t)), Some(c)) = (table, label) {
        t.add_range_to((c as usize).saturating_mul(out.len()), out);
    }
}

/// Writes `[v, onehot(label)]` into the start of `buf`.
fn with_onehot(buf: &mut [f32], v: &[f32], k: usize, label: Option<u32>) {
    buf[..v.len()].copy_from_slice(v);
    buf[v.len()..v.len() + k].fill(0.0);
    if let Some(l) = label {
        buf[v.len() + l as usize] = 1.0;
    }
}

/// A VAE decoder whose weights stay in the GGUF bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct VaeDecoder<'a> {
    /// Hyperparameters.
    pub hp: Hparams,
    layers: heapless::Vec<Dense<'a>, { vae::MAX_HIDDEN + 1 }>,
    /// Per layer, its per-class bias table (`dec.{i}.label.weight`), if any.
    label_bias: [Option<Vector<'a>>; vae::MAX_HIDDEN + 1],
}

/// Floats of scratch a decoder needs: two ping-pong buffers as wide as the
/// widest input or hidden layer. A `const fn`, so firmware can size a
/// static buffer at compile time.
pub const fn scratch_len_for(latent: usize, n_classes: usize, hidden: &[u32]) -> usize {
    let mut w = latent + n_classes;
    let mut i = 0;
    while i < hidden.len() {
        if hidden[i] as usize > w {
            w = hidden[i] as usize;
        }
        i += 1;
    }
    2 * w
}

impl<'a> VaeDecoder<'a> {
    /// [`crate::models::Model::from_gguf`] for a decoder file only: firmware
    /// that only samples links no other model's code (about 1 KiB of the
    /// 16 KiB budget).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let g = Gguf::parse(bytes)?;
        let family = edgegen_format::arch::check(&g)?;
        let part = vae::Part::read(&g)?;
        // One error site: with two, the compiler inlines differently and
        // the decoder path grows by 1.6 KiB of thumb code (measured).
        if family != edgegen_format::arch::Family::Vae || part != vae::Part::Decoder {
            return Err(Error::BadValue {
                key: vae::PART,
                expected: "decoder, in an edgegen.vae file",
            });
        }
        Self::from_gguf(&g)
    }

    /// Checks every decoder tensor against the hyperparameters and keeps
    /// views of them. Call after [`edgegen_format::arch::check`].
    pub fn from_gguf(g: &Gguf<'a>) -> Result<Self, Error> {
        let hp = Hparams::read(g)?;
        let mut layers = heapless::Vec::new();
        let mut label_bias = [None; vae::MAX_HIDDEN + 1];
        for (i, table) in label_bias.iter_mut().enumerate().take(hp.n_hidden + 1) {
            let (inp, out) = hp.decoder_layer(i);
            let w = layers::load_matrix(g, TensorName::at(DEC_WEIGHT, i), out, inp)?;
            let b = layers::load_vector(g, TensorName::at(DEC_BIAS, i), out)?;
            // Capacity is MAX_HIDDEN + 1 and n_hidden <= MAX_HIDDEN.
            let _ = layers.push(Dense { w, b });
            if hp.decoder_has_label(i) {
                let k = hp.n_classes as usize;
                *table = Some(layers::load_table(g, TensorName::at(DEC_LABEL, i), k, out)?);
            }
        }
        Ok(Self {
            hp,
            layers,
            label_bias,
        })
    }

    /// Floats of scratch [`VaeDecoder::decode`] needs.
    pub fn scratch_len(&self) -> usize {
        scratch_len_for(
            self.hp.latent_dim as usize,
            self.hp.n_classes as usize,
            self.hp.hidden(),
        )
    }

    /// Z.
    pub fn latent_dim(&self) -> usize {
        self.hp.latent_dim as usize
    }

    /// D, the values per output image.
    pub fn output_len(&self) -> usize {
        self.hp.input_dim()
    }

    /// The dense layers, first (latent side) to last (pixels), for tools
    /// that time or inspect them one by one.
    pub fn layers(&self) -> &[Dense<'a>] {
        &self.layers
    }

    /// Bytes of weights, biases and per-class bias tables.
    pub fn weight_bytes(&self) -> usize {
        let tables: usize = self.label_bias.iter().flatten().map(Vector::bytes).sum();
        self.layers.iter().map(Dense::bytes).sum::<usize>() + tables
    }

    /// Multiply-adds per decoded image.
    pub fn macs(&self) -> usize {
        self.layers.iter().map(Dense::macs).sum()
    }

    /// Decodes one latent `z` (Z values) into `out` (D pixels in [0, 1]).
    /// `label` is required by conditional models and refused by others.
    pub fn decode(
        &self,
        z: &[f32],
        label: Option<u32>,
        scratch: &mut [f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        self.decode_with::<crate::math::DefaultMath>(z, label, scratch, out)
    }

    /// [`VaeDecoder::decode`] with the math functions of `M`.
    pub fn decode_with<M: crate::math::Math>(
        &self,
        z: &[f32],
        label: Option<u32>,
        scratch: &mut [f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        let (zd, k, d) = (
            self.latent_dim(),
            self.hp.n_classes as usize,
            self.output_len(),
        );
        let need = self.scratch_len();
        check_len(zd, z.len())?;
        check_len(d, out.len())?;
        check_scratch(need, scratch.len())?;
        check_label(k, label)?;
        // from_gguf keeps n_hidden + 1 >= 2 layers; no panic path either way.
        let Some((last, hidden)) = self.layers.split_last() else {
            return Err(Error::BadValue {
                key: vae::HIDDEN_DIMS,
                expected: "1 to 4 non-zero widths",
            });
        };
        let h = run_hidden::<M>(
            hidden,
            &self.label_bias,
            self.hp.activation,
            &mut scratch[..need],
            z,
            k,
            label,
        );
        last.forward(out, h);
        add_label_bias(self.label_bias.get(hidden.len()), label, out);
        match self.hp.likelihood {
            Likelihood::Bernoulli => M::sigmoid_slice(out),
            Likelihood::Gaussian => out.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0)),
        }
        Ok(())
    }

    /// Draws z ~ N(0, I) from `rng` into the first Z floats of `z_buf` and
    /// decodes it.
    pub fn sample(
        &self,
        rng: &mut crate::sample::Rng,
        label: Option<u32>,
        z_buf: &mut [f32],
        scratch: &mut [f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        let z = super::draw_noise(rng, z_buf, self.latent_dim())?;
        self.decode(z, label, scratch, out)
    }
}

/// Floats of scratch an encoder needs: two ping-pong buffers as wide as
/// `[x, onehot]` or the widest hidden layer. A `const fn`, as for the
/// decoder.
pub const fn encoder_scratch_len_for(input_dim: usize, n_classes: usize, hidden: &[u32]) -> usize {
    scratch_len_for(input_dim, n_classes, hidden)
}

/// A VAE encoder whose weights stay in the GGUF bytes.
///
/// ```
/// # fn encoder_bytes() -> Vec<u8> {
/// #     use edgegen_format::{arch, GgmlType, GgufWriter};
/// #     let hp = arch::vae::Hparams { image_shape: [1, 2, 2], latent_dim: 2, hidden: [3, 0, 0, 0], n_hidden: 1,
/// #         n_classes: 0, likelihood: arch::vae::Likelihood::Bernoulli, activation: arch::Activation::Relu,
/// #         label_every_layer: false };
/// #     let mut w = GgufWriter::new();
/// #     hp.write(&mut w).unwrap();
/// #     w.add(arch::vae::PART, "encoder").unwrap();
/// #     w.add_tensor("enc.0.weight", &[4, 3], GgmlType::F32, &[0.1; 12]).unwrap();
/// #     w.add_tensor("enc.0.bias", &[3], GgmlType::F32, &[0.0; 3]).unwrap();
/// #     for h in ["mu", "logvar"] {
/// #         w.add_tensor(&format!("enc.{h}.weight"), &[3, 2], GgmlType::F16, &[0.5; 6]).unwrap();
/// #         w.add_tensor(&format!("enc.{h}.bias"), &[2], GgmlType::F32, &[0.0; 2]).unwrap();
/// #     }
/// #     w.to_bytes()
/// # }
/// use edgegen_runtime::models::Model;
/// let bytes = encoder_bytes(); // a file from `edgegen export --part encoder`
/// let Model::VaeEncoder(enc) = Model::from_gguf(&bytes)? else { unreachable!() };
/// let mut scratch = [0f32; 16];              // >= enc.scratch_len()
/// let (mut mu, mut logvar) = ([0f32; 2], [0f32; 2]);
/// enc.encode(&[0.0, 0.5, 0.5, 1.0], None, &mut scratch, &mut mu, &mut logvar)?;
/// assert!((mu[0] - 0.3).abs() < 1e-3);       // 0.5 * 3 relu(0.1 * 2)
/// # Ok::<(), edgegen_runtime::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct VaeEncoder<'a> {
    /// Hyperparameters.
    pub hp: Hparams,
    layers: heapless::Vec<Dense<'a>, { vae::MAX_HIDDEN }>,
    mu: Dense<'a>,
    logvar: Dense<'a>,
}

impl<'a> VaeEncoder<'a> {
    /// Checks every encoder tensor against the hyperparameters and keeps
    /// views of them. Call after [`edgegen_format::arch::check`].
    pub fn from_gguf(g: &Gguf<'a>) -> Result<Self, Error> {
        let hp = Hparams::read(g)?;
        let mut layers = heapless::Vec::new();
        for i in 0..hp.n_hidden {
            let (inp, out) = hp.encoder_layer(i);
            let w = layers::load_matrix(g, TensorName::at(ENC_WEIGHT, i), out, inp)?;
            let b = layers::load_vector(g, TensorName::at(ENC_BIAS, i), out)?;
            // Capacity is MAX_HIDDEN and n_hidden <= MAX_HIDDEN.
            let _ = layers.push(Dense { w, b });
        }
        let (h, z) = (
            hp.hidden()[hp.n_hidden - 1] as usize,
            hp.latent_dim as usize,
        );
        let head = |w, b| -> Result<Dense<'a>, Error> {
            Ok(Dense {
                w: layers::load_matrix(g, w, z, h)?,
                b: layers::load_vector(g, b, z)?,
            })
        };
        Ok(Self {
            hp,
            layers,
            mu: head(
                TensorName::fixed(ENC_MU_WEIGHT),
                TensorName::fixed(ENC_MU_BIAS),
            )?,
            logvar: head(
                TensorName::fixed(ENC_LOGVAR_WEIGHT),
                TensorName::fixed(ENC_LOGVAR_BIAS),
            )?,
        })
    }

    /// Floats of scratch [`VaeEncoder::encode`] needs.
    pub fn scratch_len(&self) -> usize {
        encoder_scratch_len_for(
            self.hp.input_dim(),
            self.hp.n_classes as usize,
            self.hp.hidden(),
        )
    }

    /// Z.
    pub fn latent_dim(&self) -> usize {
        self.hp.latent_dim as usize
    }

    /// D, the values per input image.
    pub fn input_len(&self) -> usize {
        self.hp.input_dim()
    }

    /// The hidden layers, then the mu and logvar heads.
    pub fn layers(&self) -> impl Iterator<Item = &Dense<'a>> {
        self.layers.iter().chain([&self.mu, &self.logvar])
    }

    /// Bytes of weights and biases.
    pub fn weight_bytes(&self) -> usize {
        self.layers().map(Dense::bytes).sum()
    }

    /// Multiply-adds per encoded image.
    pub fn macs(&self) -> usize {
        self.layers().map(Dense::macs).sum()
    }

    /// Encodes one image `x` (D values in [0, 1]) into the mean and log
    /// variance of its latent (Z values each). `label` is required by
    /// conditional models and refused by others.
    pub fn encode(
        &self,
        x: &[f32],
        label: Option<u32>,
        scratch: &mut [f32],
        mu: &mut [f32],
        logvar: &mut [f32],
    ) -> Result<(), Error> {
        self.encode_with::<crate::math::DefaultMath>(x, label, scratch, mu, logvar)
    }

    /// [`VaeEncoder::encode`] with the math functions of `M`.
    pub fn encode_with<M: crate::math::Math>(
        &self,
        x: &[f32],
        label: Option<u32>,
        scratch: &mut [f32],
        mu: &mut [f32],
        logvar: &mut [f32],
    ) -> Result<(), Error> {
        let (k, zd, need) = (
            self.hp.n_classes as usize,
            self.latent_dim(),
            self.scratch_len(),
        );
        check_len(self.input_len(), x.len())?;
        check_len(zd, mu.len())?;
        check_len(zd, logvar.len())?;
        check_scratch(need, scratch.len())?;
        check_label(k, label)?;
        let h = run_hidden::<M>(
            &self.layers,
            &[],
            self.hp.activation,
            &mut scratch[..need],
            x,
            k,
            label,
        );
        self.mu.forward(mu, h);
        self.logvar.forward(logvar, h);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::models::Model;
    use edgegen_format::arch::{Activation, vae::Part};
    use edgegen_format::{GgmlType, GgufWriter};
    use std::string::{String, ToString};
    use std::vec::Vec;

    /// A conditional encoder `[x(6), onehot(2)] -> 5 -> 4 -> (mu, logvar)(3)`
    /// with F32 weights, and its weights as `(name, rows, cols, values)`.
    /// A tensor: name, rows, columns (1 for a bias), values.
    type Tensor = (String, usize, usize, Vec<f32>);

    fn encoder() -> (Vec<u8>, Vec<Tensor>) {
        let hp = Hparams::new(
            [1, 2, 3],
            3,
            &[5, 4],
            2,
            Likelihood::Bernoulli,
            Activation::Tanh,
        )
        .unwrap();
        let mut w = GgufWriter::new();
        hp.write(&mut w).unwrap();
        w.add(vae::PART, Part::Encoder.name()).unwrap();
        let mut rng = crate::sample::Rng::new(9);
        let mut ts = Vec::new();
        let mut add = |w: &mut GgufWriter, name: String, rows: usize, cols: usize| {
            let v: Vec<f32> = (0..rows * cols).map(|_| 0.5 * rng.normal()).collect();
            let shape: &[u64] = if cols == 1 {
                &[rows as u64]
            } else {
                &[cols as u64, rows as u64]
            };
            w.add_tensor(&name, shape, GgmlType::F32, &v).unwrap();
            ts.push((name, rows, cols, v));
        };
        for i in 0..2 {
            let (inp, out) = hp.encoder_layer(i);
            add(&mut w, TensorName::at(ENC_WEIGHT, i).to_string(), out, inp);
            add(&mut w, TensorName::at(ENC_BIAS, i).to_string(), out, 1);
        }
        add(&mut w, ENC_MU_WEIGHT.into(), 3, 4);
        add(&mut w, ENC_MU_BIAS.into(), 3, 1);
        add(&mut w, ENC_LOGVAR_WEIGHT.into(), 3, 4);
        add(&mut w, ENC_LOGVAR_BIAS.into(), 3, 1);
        (w.to_bytes(), ts)
    }

    fn dense(t: &Tensor, b: &[f32], x: &[f32]) -> Vec<f32> {
        (0..t.1)
            .map(|r| b[r] + (0..t.2).map(|c| t.3[r * t.2 + c] * x[c]).sum::<f32>())
            .collect()
    }

    #[test]
    fn encoder_matches_the_plain_formula_and_checks_its_inputs() {
        let (bytes, ts) = encoder();
        let Ok(Model::VaeEncoder(e)) = Model::from_gguf(&bytes) else {
            panic!("not an encoder")
        };
        assert_eq!(e.scratch_len(), encoder_scratch_len_for(6, 2, &[5, 4]));
        assert_eq!(e.macs(), 8 * 5 + 5 * 4 + 2 * 4 * 3);
        let x = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
        let (mut mu, mut lv) = ([0f32; 3], [0f32; 3]);
        let mut scratch = std::vec![0f32; e.scratch_len()];
        e.encode(&x, Some(1), &mut scratch, &mut mu, &mut lv)
            .unwrap();
        let mut h: Vec<f32> = x.iter().copied().chain([0.0, 1.0]).collect();
        for i in 0..2 {
            h = dense(&ts[2 * i], &ts[2 * i + 1].3, &h);
            h.iter_mut().for_each(|v| *v = libm::tanhf(*v));
        }
        let want_mu = dense(&ts[4], &ts[5].3, &h);
        let want_lv = dense(&ts[6], &ts[7].3, &h);
        for (g, w) in mu.iter().zip(&want_mu).chain(lv.iter().zip(&want_lv)) {
            assert!((g - w).abs() <= 1e-5, "{g} vs {w}");
        }
        let err = |r: Result<(), Error>| r.unwrap_err();
        assert!(matches!(
            err(e.encode(&x, None, &mut scratch, &mut mu, &mut lv)),
            Error::BadValue { key: "label", .. }
        ));
        assert!(matches!(
            err(e.encode(&x, Some(2), &mut scratch, &mut mu, &mut lv)),
            Error::BadValue { key: "label", .. }
        ));
        assert!(matches!(
            err(e.encode(&x[..5], Some(0), &mut scratch, &mut mu, &mut lv)),
            Error::BufferSize {
                expected: 6,
                found: 5
            }
        ));
        assert!(matches!(
            err(e.encode(&x, Some(0), &mut scratch[..3], &mut mu, &mut lv)),
            Error::BufferSize { .. }
        ));
    }

    #[test]
    fn the_part_key_picks_the_network_and_is_checked() {
        let (bytes, _) = encoder();
        // The same bytes with the part renamed: a decoder lacks its tensors.
        let pos = bytes
            .windows(7)
            .position(|w| w == b"encoder")
            .expect("part value");
        let mut dec = bytes.clone();
        dec[pos..pos + 7].copy_from_slice(b"decoder");
        assert!(matches!(
            Model::from_gguf(&dec),
            Err(Error::MissingTensor { name }) if name == TensorName::at(DEC_WEIGHT, 0)
        ));
        // The decoder-only loader refuses the encoder by its part.
        assert!(matches!(
            VaeDecoder::from_bytes(&bytes),
            Err(Error::BadValue { key: vae::PART, .. })
        ));
        let mut bad = bytes.clone();
        bad[pos..pos + 7].copy_from_slice(b"encodex");
        assert!(matches!(
            Model::from_gguf(&bad),
            Err(Error::BadValue { key: vae::PART, .. })
        ));
    }
}
