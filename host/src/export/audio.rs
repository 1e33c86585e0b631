//! Audio GRU -> GGUF, following `formats/README.md` (`edgegen.audio`): the
//! code embedding and the three matrices in the chosen precision (Q8_0
//! rows zero-padded to whole blocks, as every family's), the class table
//! and the biases in F32. A two-tier model adds its frame tier the same
//! way, the prediction's embedding beside the code's, and the
//! band-to-autocorrelation map (`lpc.weight`) in F32.

use super::gguf::{add_layer, add_matrix, add_weight};
use super::{Layer, Precision};
use crate::models::frames::FrameRnn;
use crate::models::rnn::Rnn;
use crate::train::audio::AudioModelConfig;
use anyhow::{Context, Result};
use edgegen_format::arch::{self, audio as a};
use edgegen_format::{GgmlType, GgufWriter, OwnedValue};

/// An audio model's weights as a run holds them: the model of samples and,
/// for a two-tier model, the frame tier and its own parameters.
#[derive(Debug, Clone, Copy)]
pub struct AudioWeights<'a> {
    /// The model of samples.
    pub m: &'a Rnn,
    /// Its parameters.
    pub p: &'a [f32],
    /// The frame tier and its parameters.
    pub tier: Option<(&'a FrameRnn, &'a [f32])>,
    /// Sample rate and class names.
    pub mc: &'a AudioModelConfig,
}

impl<'a> AudioWeights<'a> {
    /// A run's model: `groups` are the checkpoint's parameter groups (the
    /// model's, then the frame tier's); errors say which is missing.
    pub fn new(
        m: &'a Rnn,
        tier: Option<&'a FrameRnn>,
        mc: &'a AudioModelConfig,
        groups: &'a [crate::train::checkpoint::GroupState],
    ) -> Result<Self> {
        let p = &groups
            .first()
            .context("the checkpoint has no parameters")?
            .params;
        let tier = match tier {
            None => None,
            Some(t) => Some((
                t,
                &groups
                    .get(1)
                    .context("the checkpoint has no frame tier's parameters (group 2)")?
                    .params[..],
            )),
        };
        Ok(Self { m, p, tier, mc })
    }
}

/// The frame tier's hyperparameters for a host model, if it has one.
pub fn frame_hparams(m: &Rnn, tier: Option<&FrameRnn>) -> Option<a::FrameHparams> {
    tier.map(|t| a::FrameHparams {
        frame_length: m.cfg.frame_len as u32,
        feature_length: m.cfg.feat_dim as u32,
        lpc_order: m.cfg.lpc_order as u32,
        embedding_length: t.cfg.embed as u32,
        state_length: t.cfg.hidden as u32,
    })
}

/// The format crate's hyperparameters for a host model.
pub fn hparams(m: &Rnn, mc: &AudioModelConfig) -> a::Hparams {
    let c = &m.cfg;
    a::Hparams {
        vocab_size: c.vocab as u32,
        embedding_length: c.embed as u32,
        state_length: c.hidden as u32,
        n_classes: c.n_classes as u32,
        sample_rate: mc.sample_rate,
    }
}

/// The tensor `name` of `p`, as the layout places it.
fn tensor<'a>(m: &Rnn, p: &'a [f32], name: &str) -> Result<&'a [f32]> {
    let e = m
        .layout
        .get(name)
        .with_context(|| format!("the model has no tensor {name}"))?;
    Ok(&p[e.range()])
}

/// The model's matrices as [`Layer`]s under their GGUF names, from the
/// host names (`tok_embd`, `gru.weight_ih`, ...): the code embedding (no
/// bias), the GRU's input and state projections, and the head.
pub fn layers<'a>(m: &Rnn, p: &'a [f32]) -> Result<[Layer<'a>; 4]> {
    let c = &m.cfg;
    let l = |name: &str, w: &'a [f32], b: &'a [f32], inp: usize, out: usize| Layer {
        name: name.into(),
        w,
        b,
        inp,
        out,
        act: None,
        label: None,
    };
    Ok([
        l(
            "token_embd",
            tensor(m, p, "tok_embd.weight")?,
            &[],
            c.embed,
            c.vocab,
        ),
        l(
            "gru.weight_ih",
            tensor(m, p, "gru.weight_ih")?,
            tensor(m, p, "gru.bias_ih")?,
            c.embed,
            3 * c.hidden,
        ),
        l(
            "gru.weight_hh",
            tensor(m, p, "gru.weight_hh")?,
            tensor(m, p, "gru.bias_hh")?,
            c.hidden,
            3 * c.hidden,
        ),
        l(
            "output",
            tensor(m, p, "output.weight")?,
            tensor(m, p, "output.bias")?,
            c.hidden,
            c.vocab,
        ),
    ])
}

/// A matrix of a layout as a [`Layer`] (`inp` wide, `out` rows) under the
/// GGUF name `name`, its bias the layout's `{host}.bias` if `bias`.
fn linear<'a>(
    layout: &crate::nn::params::Layout,
    p: &'a [f32],
    host: &str,
    name: &str,
    bias: bool,
) -> Result<Layer<'a>> {
    let get = |t: String| -> Result<(&'a [f32], usize, usize)> {
        let e = layout
            .get(&t)
            .with_context(|| format!("the model has no tensor {t}"))?;
        Ok((&p[e.range()], e.shape[0], *e.shape.last().unwrap_or(&1)))
    };
    let (w, out, inp) = get(format!("{host}.weight"))?;
    Ok(Layer {
        name: name.into(),
        w,
        b: if bias {
            get(format!("{host}.bias"))?.0
        } else {
            &[]
        },
        inp,
        out,
        act: None,
        label: None,
    })
}

/// A GRU's two matrices of a layout (`{host}.weight_ih`, ...) under
/// `{name}.weight_ih`, ...
fn gru_layers<'a>(
    layout: &crate::nn::params::Layout,
    p: &'a [f32],
    host: &str,
    name: &str,
) -> Result<[Layer<'a>; 2]> {
    let one = |part: &str| -> Result<Layer<'a>> {
        let get = |t: String| -> Result<(&'a [f32], Vec<usize>)> {
            let e = layout
                .get(&t)
                .with_context(|| format!("the model has no tensor {t}"))?;
            Ok((&p[e.range()], e.shape.clone()))
        };
        let (w, shape) = get(format!("{host}.weight_{part}"))?;
        let (b, _) = get(format!("{host}.bias_{part}"))?;
        Ok(Layer {
            name: format!("{name}.weight_{part}"),
            w,
            b,
            inp: shape[1],
            out: shape[0],
            act: None,
            label: None,
        })
    };
    Ok([one("ih")?, one("hh")?])
}

/// A two-tier model's further layers, as GGUF names them: the bands'
/// projection and the prediction's embedding (sample tier), then the frame
/// tier's input, GRU and head.
pub struct TierLayers<'a> {
    /// `feat_proj`.
    pub feat_proj: Layer<'a>,
    /// `pred_embd`, if the model reads a prediction.
    pub pred_embd: Option<Layer<'a>>,
    /// `frame.in`.
    pub inp: Layer<'a>,
    /// `frame.class_embd` `(K, Ef)`, if conditional.
    pub class_embd: Option<&'a [f32]>,
    /// `frame.gru.weight_ih`, `frame.gru.weight_hh`.
    pub gru: [Layer<'a>; 2],
    /// `frame.out`.
    pub out: Layer<'a>,
}

/// The frame tier's layers of `w`, if it has one.
pub fn tier_layers<'a>(w: &AudioWeights<'a>) -> Result<Option<TierLayers<'a>>> {
    let Some((t, fp)) = w.tier else {
        return Ok(None);
    };
    let (ml, p) = (&w.m.layout, w.p);
    Ok(Some(TierLayers {
        feat_proj: linear(ml, p, "feat_proj", "feat_proj", true)?,
        pred_embd: if w.m.cfg.lpc_order > 0 {
            Some(linear(ml, p, "pred_embd", "pred_embd", false)?)
        } else {
            None
        },
        inp: linear(&t.layout, fp, "frame.in", "frame.in", true)?,
        class_embd: match t.cls {
            Some(c) => Some(&fp[c.offset..c.offset + c.n * c.d]),
            None => None,
        },
        gru: gru_layers(&t.layout, fp, "frame.gru", "frame.gru")?,
        out: linear(&t.layout, fp, "frame.out", "frame.out", true)?,
    }))
}

/// The GGUF bytes of an audio model, its weights stored in `prec`.
pub fn to_gguf(aw: &AudioWeights<'_>, prec: Precision, name: &str) -> Result<Vec<u8>> {
    let (m, mc, p) = (aw.m, aw.mc, aw.p);
    let c = &m.cfg;
    let mut w = GgufWriter::new();
    hparams(m, mc).write(&mut w)?;
    if let Some(f) = frame_hparams(m, aw.tier.map(|t| t.0)) {
        f.write(&mut w)?;
    }
    w.add(arch::keys::NAME, name)?;
    if !mc.classes.is_empty() {
        let names: Vec<&str> = mc.classes.iter().map(String::as_str).collect();
        w.add(a::CLASS_NAMES, OwnedValue::strs(&names))?;
    }
    let [tok, ih, hh, out] = layers(m, p)?;
    add_weight(&mut w, &tok, prec)?;
    if c.n_classes > 0 {
        w.add_tensor(
            a::CLASS_EMBD,
            &[c.embed as u64, c.n_classes as u64],
            GgmlType::F32,
            tensor(m, p, "cls_embd.weight")?,
        )
        .with_context(|| format!("tensor {}", a::CLASS_EMBD))?;
    }
    add_gru(&mut w, &ih, &hh, prec)?;
    add_layer(&mut w, &out, prec)?;
    if let Some(t) = tier_layers(aw)? {
        add_layer(&mut w, &t.feat_proj, prec)?;
        if let Some(pe) = &t.pred_embd {
            add_weight(&mut w, pe, prec)?;
            let lpc = crate::data::lpc::BandLpc::new(c.feat_dim, mc.sample_rate, c.lpc_order);
            w.add_tensor(
                a::LPC_WEIGHT,
                &[c.feat_dim as u64, c.lpc_order as u64 + 1],
                GgmlType::F32,
                lpc.weights(),
            )
            .with_context(|| format!("tensor {}", a::LPC_WEIGHT))?;
        }
        add_layer(&mut w, &t.inp, prec)?;
        if let Some(cls) = t.class_embd {
            w.add_tensor(
                a::FRAME_CLASS_EMBD,
                &[t.inp.out as u64, c.n_classes as u64],
                GgmlType::F32,
                cls,
            )
            .with_context(|| format!("tensor {}", a::FRAME_CLASS_EMBD))?;
        }
        let [fih, fhh] = &t.gru;
        add_gru(&mut w, fih, fhh, prec)?;
        add_layer(&mut w, &t.out, prec)?;
    }
    Ok(w.to_bytes())
}

/// A GRU's matrices in `prec` and its biases in F32, under PyTorch's names
/// (`{gru}.weight_ih`, `{gru}.bias_ih`, not `{layer}.weight`).
fn add_gru(w: &mut GgufWriter, ih: &Layer<'_>, hh: &Layer<'_>, prec: Precision) -> Result<()> {
    for l in [ih, hh] {
        add_matrix(w, &l.name, l, prec)?;
        let bias = l.name.replace(".weight_", ".bias_");
        w.add_tensor(&bias, &[l.out as u64], GgmlType::F32, l.b)
            .with_context(|| format!("tensor {bias}"))?;
    }
    Ok(())
}

/// Replaces every matrix of `p` (the ones [`to_gguf`] stores in `prec`) by
/// what that precision keeps: the host model a device's file computes.
pub fn store(m: &Rnn, p: &mut [f32], prec: Precision) {
    super::store_matrices(&m.layout, p, prec, &["cls_embd"]);
}

/// [`store`] for a frame tier's parameters.
pub fn store_tier(t: &FrameRnn, p: &mut [f32], prec: Precision) {
    super::store_matrices(&t.layout, p, prec, &["frame.cls_embd"]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::frames::FrameConfig;
    use crate::models::rnn::RnnConfig;
    use crate::rng::Rng;
    use crate::validate::audio::{Frames, host_frame_steps, host_model, host_steps, runtime_steps};
    use edgegen_runtime::models::audio::{Audio, SILENCE, State};

    type Tier = Option<(FrameRnn, Vec<f32>)>;

    /// A model of samples (`two`: with 5 bands and an order-4 prediction)
    /// and its frame tier, with larger weights than the init's so that the
    /// gates leave their linear range.
    fn model(k: usize, two: bool) -> (Rnn, Vec<f32>, Tier, AudioModelConfig) {
        let m = Rnn::new(RnnConfig {
            vocab: 256,
            embed: 12,
            hidden: 40,
            n_classes: k,
            frame_len: if two { 256 } else { 0 },
            feat_dim: if two { 5 } else { 0 },
            lpc_order: if two { 4 } else { 0 },
        })
        .unwrap();
        let mut rng = Rng::new(5);
        let mut p = vec![0f32; m.layout.total()];
        m.init(&mut p, &mut rng);
        p.iter_mut().for_each(|v| *v *= 3.0);
        let tier = two.then(|| {
            let t = FrameRnn::new(FrameConfig {
                bands: 5,
                embed: 6,
                hidden: 9,
                n_classes: k,
                max_frames: 4,
            })
            .unwrap();
            let mut fp = vec![0f32; t.layout.total()];
            t.init(&mut fp, &mut rng);
            fp.iter_mut().for_each(|v| *v *= 3.0);
            (t, fp)
        });
        let mc = AudioModelConfig {
            rnn: m.cfg.clone(),
            frames: tier.as_ref().map(|t| t.0.cfg.clone()),
            sample_rate: 8000,
            classes: (0..k).map(|i| format!("c{i}")).collect(),
        };
        (m, p, tier, mc)
    }

    fn worst_rel(g: &[f32], w: &[f32]) -> f32 {
        assert_eq!(g.len(), w.len());
        g.iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0f32, f32::max)
    }

    /// The device runtime, stepping with its state carried, computes what
    /// the host's GRU computes through time on the stored weights, at every
    /// precision, with and without a frame tier (whose steps, and the
    /// sample steps that read frames and predictions, match too); and the
    /// host model rebuilt from the file is that model.
    #[test]
    fn the_runtime_steps_what_the_host_computes_at_every_precision() {
        for (k, two) in [(0, false), (3, false), (3, true), (0, true)] {
            let (m, p, tier, mc) = model(k, two);
            let aw = AudioWeights {
                m: &m,
                p: &p,
                tier: tier.as_ref().map(|(t, fp)| (t, &fp[..])),
                mc: &mc,
            };
            let label = (k > 0).then_some(2);
            let codes: Vec<u32> = (0..60).map(|i| (i * 37 % 256) as u32).collect();
            let mut rng = Rng::new(11);
            let frames = two.then(|| Frames {
                bands: (0..60 * 5).map(|_| rng.normal() - 0.3).collect(),
                preds: (0..60).map(|i| (i * 91 % 256) as u32).collect(),
                frame_in: (0..60 * 5).map(|_| rng.normal() - 0.3).collect(),
            });
            for prec in [
                Precision::F32,
                Precision::F16,
                Precision::Q8_0,
                Precision::Q8_0A8,
            ] {
                let what = format!("{prec:?}, k {k}, two-tier {two}");
                let bytes = to_gguf(&aw, prec, "a").unwrap();
                let g = edgegen_format::Gguf::parse(&bytes).unwrap();
                let dev = Audio::from_gguf(&g).unwrap();
                if !two {
                    assert_eq!(dev.macs(), m.cfg.macs_per_sample());
                }
                let mut stored = p.clone();
                store(&m, &mut stored, prec);
                let (hm, hp, ht) = host_model(&g).unwrap();
                // The file's model, int8 inputs included where stored.
                let mut qm = m.clone();
                qm.set_int8_inputs(prec.int8_activations());
                assert_eq!(hm, qm);
                let worst = stored
                    .iter()
                    .zip(&hp)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(worst < 1e-6, "{what}: stored weights differ by {worst}");
                let got = runtime_steps(&dev, &codes, label, frames.as_ref(), None).unwrap();
                let want = host_steps(&qm, &stored, &codes, label, frames.as_ref());
                for (name, g, w) in [("logits", &got[0], &want[0]), ("h", &got[1], &want[1])] {
                    let err = worst_rel(g, w);
                    assert!(err < 2e-5, "{what}, {name}: {err}");
                }
                if let (Some((t, fp)), Some(f)) = (&tier, &frames) {
                    let (ht, hfp) = ht.expect("the file's frame tier");
                    let mut qt = t.clone();
                    qt.set_int8_inputs(prec.int8_activations());
                    assert_eq!(
                        ht,
                        FrameRnn::new(FrameConfig {
                            max_frames: 1,
                            ..t.cfg.clone()
                        })
                        .map(|mut x| {
                            x.set_int8_inputs(prec.int8_activations());
                            x
                        })
                        .unwrap()
                    );
                    let mut sfp = fp.clone();
                    store_tier(t, &mut sfp, prec);
                    assert!(
                        sfp.iter().zip(&hfp).all(|(a, b)| (a - b).abs() < 1e-6),
                        "{what}: frame weights"
                    );
                    let fw = host_frame_steps(&qt, &sfp, label, f);
                    for (name, g, w) in
                        [("frame_out", &got[2], &fw[0]), ("frame_h", &got[3], &fw[1])]
                    {
                        let err = worst_rel(g, w);
                        assert!(err < 2e-5, "{what}, {name}: {err}");
                    }
                }
                // Quantization moves the logits, but not far.
                if prec != Precision::F32 {
                    let exact = host_steps(&m, &p, &codes, label, frames.as_ref());
                    let d = got[0]
                        .iter()
                        .zip(&exact[0])
                        .map(|(a, b)| (a - b).abs())
                        .fold(0f32, f32::max);
                    assert!(d > 0.0 && d < 0.5, "{what}: {d}");
                }
            }
        }
    }

    /// The device's linear prediction from a frame's bands is the host's
    /// (one function), bit for bit, from the GGUF's map; and it stays near
    /// an f64 solution even on adversarial frames (bands drawn
    /// independently, energies over 16 decades): coefficients within 3%,
    /// the predicted code within one, and the same code almost always.
    #[test]
    fn the_runtime_predicts_from_bands_as_the_host_does() {
        let (m, p, tier, mc) = model(3, true);
        let aw = AudioWeights {
            m: &m,
            p: &p,
            tier: tier.as_ref().map(|(t, fp)| (t, &fp[..])),
            mc: &mc,
        };
        let bytes = to_gguf(&aw, Precision::Q8_0, "a").unwrap();
        let dev = Audio::from_bytes(&bytes).unwrap();
        let host = crate::data::lpc::BandLpc::new(5, 8000, 4);
        let mut rng = Rng::new(4);
        let mut agree = 0;
        for trial in 0..200 {
            let bands: Vec<f32> = (0..5).map(|_| rng.normal() - 0.3).collect();
            let want = host.coefficients(&bands);
            let mut got = [0f32; 4];
            dev.prediction_coefficients(&bands, &mut got).unwrap();
            let got64: Vec<f64> = got.iter().map(|&v| v as f64).collect();
            assert_eq!(got64, want, "{trial}");
            let exact = f64_coefficients(host.weights(), 5, 4, &bands);
            let worst = got64
                .iter()
                .zip(&exact)
                .map(|(g, w)| (g - w).abs() / w.abs().max(1.0))
                .fold(0f64, f64::max);
            assert!(worst < 0.03, "{trial}: {got64:?} vs f64 {exact:?}");
            let past: Vec<f32> = (0..6).map(|_| 0.3 * rng.normal()).collect();
            let (a, b) = (
                crate::models::rnn::predict_code(&want, &past),
                crate::models::rnn::predict_code(&exact, &past),
            );
            agree += (a == b) as usize;
            assert!(a.abs_diff(b) <= 1, "{trial}: {a} vs {b}");
        }
        assert!(agree >= 190, "{agree} of 200 codes agree with f64's");
        let mut short = [0f32; 3];
        assert!(dev.prediction_coefficients(&[0.0; 5], &mut short).is_err());
    }

    /// The prediction in f64 throughout: the reference the f32 one is held
    /// to.
    fn f64_coefficients(acf: &[f32], c: usize, p: usize, bands: &[f32]) -> Vec<f64> {
        let e: Vec<f64> = bands
            .iter()
            .map(|&v| 10f64.powf(4.0 * v as f64 - 4.0))
            .collect();
        let r: Vec<f64> = (0..=p)
            .map(|j| {
                let floor = if j == 0 { a::LPC_FLOOR } else { 0.0 };
                (0..c).map(|m| acf[j * c + m] as f64 * e[m]).sum::<f64>() + floor
            })
            .collect();
        crate::data::lpc::levinson(&r)
    }

    /// On the device, a two-tier model's frame tier ends its clips: with
    /// the end logit's bias high every clip ends before its first sample,
    /// with it low none ends, and a frame is drawn one sample before it
    /// starts.
    #[test]
    fn the_device_frame_tier_ends_clips() {
        let (m, p, tier, mc) = model(3, true);
        let (t, mut fp) = tier.unwrap();
        let end = t.layout.get("frame.out.bias").unwrap().range().end - 1;
        for (bias, want) in [(20.0, 0), (-20.0, 700)] {
            fp[end] = bias;
            let aw = AudioWeights {
                m: &m,
                p: &p,
                tier: Some((&t, &fp)),
                mc: &mc,
            };
            let bytes = to_gguf(&aw, Precision::F32, "a").unwrap();
            let dev = Audio::from_bytes(&bytes).unwrap();
            let mut buf = vec![0f32; dev.state_len()];
            let mut scratch = vec![0f32; dev.scratch_len()];
            let mut st = State::new(&mut buf, Some(1));
            let mut out = [0u8; 700];
            let s = edgegen_runtime::sample::Sampling::default();
            let mut r = edgegen_runtime::sample::Rng::new(3);
            let n = dev
                .generate(&mut st, SILENCE, &s, &mut r, &mut scratch, &mut out)
                .unwrap();
            assert_eq!(n, want, "end bias {bias}");
            // Frames 0, 1 (at sample 255) and 2 (at 511) for 700 samples.
            assert_eq!(st.frames_drawn(), if want == 0 { 0 } else { 3 });
            assert_eq!(st.ended(), want == 0);
            // The one-tier step refuses a two-tier model.
            assert!(dev.step(&mut st, 0, &mut scratch).is_err());
        }
    }
}
