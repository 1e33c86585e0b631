//! The decoder-only transformer that the text and audio families share
//! (GPT-2's block, pre-norm): token and position embeddings (plus a class
//! embedding when conditional) into a residual stream, then per block
//! `x += proj(attn(LN(x)))` and `x += down(gelu(up(LN(x))))`, then a final
//! LayerNorm and the output projection onto the vocabulary, which can be
//! the token embedding itself (tied).
//!
//! Tensor names are llama.cpp's, as `formats/README.md` lists them, with
//! PyTorch's `(out, in)` shapes here. N = B*T rows; C width; F the MLP's
//! width; V the vocabulary; H heads.

use crate::nn::act::{self, Activation};
use crate::nn::attention::Attention;
use crate::nn::embed::Embedding;
use crate::nn::fastmath::add_assign;
use crate::nn::gemm::{Threads, gemm};
use crate::nn::layernorm::LayerNorm;
use crate::nn::linear::Linear;
use crate::nn::params::Layout;
use crate::rng::Rng;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// What defines a transformer's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransformerConfig {
    /// V: 256 for bytes and mu-law codes.
    pub vocab: usize,
    /// T: the longest sequence, fixed at export.
    pub context: usize,
    /// C.
    pub dim: usize,
    /// L.
    pub layers: usize,
    /// H; divides C.
    pub heads: usize,
    /// Heads of K and V (grouped-query attention); divides H. 0, as runs
    /// stored before it have, means H.
    #[serde(default)]
    pub kv_heads: usize,
    /// F: the MLP's width (4 C in GPT-2).
    pub ffn: usize,
    /// K classes for a class embedding added at every position; 0 for none.
    pub n_classes: usize,
    /// The output projection is the token embedding (no `output.weight`).
    pub tied: bool,
}

impl TransformerConfig {
    /// Checks sizes before anything is allocated; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        let c = self;
        if c.vocab == 0 || c.vocab > 1 << 16 {
            bail!("--vocab: expected 1 to 65536 symbols, found {}", c.vocab);
        }
        if c.context == 0 || c.context > 1 << 14 {
            bail!("--context: expected 1 to 16384, found {}", c.context);
        }
        if c.layers == 0 || c.layers > 256 {
            bail!("--layers: expected 1 to 256, found {}", c.layers);
        }
        if c.ffn == 0 || c.ffn > 1 << 16 {
            bail!("--ffn: expected 1 to 65536, found {}", c.ffn);
        }
        if Attention::new(c.heads, c.heads, c.dim).is_none() {
            bail!(
                "--dim {} and --heads {}: expected a width that is a positive multiple of the heads, with at most {} per head",
                c.dim,
                c.heads,
                crate::nn::attention::MAX_HEAD_DIM
            );
        }
        if c.attention().is_none() {
            bail!(
                "--kv-heads {}: expected a divisor of --heads {}",
                c.kv_heads,
                c.heads
            );
        }
        Ok(())
    }

    /// K/V heads: `kv_heads`, or H when 0.
    pub fn kv_heads(&self) -> usize {
        if self.kv_heads == 0 {
            self.heads
        } else {
            self.kv_heads
        }
    }

    /// The attention these sizes make, if they are valid.
    pub fn attention(&self) -> Option<Attention> {
        Attention::new(self.heads, self.kv_heads(), self.dim)
    }
}

/// One block's layers.
#[derive(Debug, Clone, Copy)]
pub struct Block {
    /// Before attention.
    pub attn_norm: LayerNorm,
    /// `C -> 3C`: Q, K, V.
    pub attn_qkv: Linear,
    /// The heads.
    pub attn: Attention,
    /// `C -> C`.
    pub attn_output: Linear,
    /// Before the MLP.
    pub ffn_norm: LayerNorm,
    /// `C -> F`.
    pub ffn_up: Linear,
    /// `F -> C`.
    pub ffn_down: Linear,
}

/// A transformer's layers and their places in its parameters.
#[derive(Debug, Clone)]
pub struct Transformer {
    /// The configuration.
    pub cfg: TransformerConfig,
    /// Every tensor.
    pub layout: Layout,
    /// `(V, C)`.
    pub token_embd: Embedding,
    /// `(T, C)`.
    pub position_embd: Embedding,
    /// `(K, C)`, when conditional.
    pub class_embd: Option<Embedding>,
    /// The blocks.
    pub blocks: Vec<Block>,
    /// After the last block.
    pub output_norm: LayerNorm,
    /// Offset of `output.weight` `(V, C)`, or of the token embedding when
    /// tied.
    pub output: usize,
    /// Whether the output projection's input is quantized to int8 first,
    /// as the blocks' layers do with [`Linear::int8_inputs`]: see
    /// [`Transformer::set_int8_inputs`].
    pub output_int8_inputs: bool,
}

impl Transformer {
    /// Makes every matrix quantize its input to int8 (`on`), as a `q8_0a8`
    /// model does on a device, or not: for evaluating and validating that
    /// precision on the host, never for training.
    pub fn set_int8_inputs(&mut self, on: bool) {
        for b in &mut self.blocks {
            for l in [
                &mut b.attn_qkv,
                &mut b.attn_output,
                &mut b.ffn_up,
                &mut b.ffn_down,
            ] {
                l.int8_inputs = on;
            }
        }
        self.output_int8_inputs = on;
    }

    /// Lays out every tensor.
    pub fn new(cfg: TransformerConfig) -> Result<Self> {
        cfg.validate()?;
        let (v, t, c, f, k) = (cfg.vocab, cfg.context, cfg.dim, cfg.ffn, cfg.n_classes);
        let mut l = Layout::default();
        let token_embd = Embedding::new(&mut l, "token_embd", v, c);
        let position_embd = Embedding::new(&mut l, "position_embd", t, c);
        let class_embd = (k > 0).then(|| Embedding::new(&mut l, "class_embd", k, c));
        let attn = cfg.attention().expect("validated");
        let w = attn.qkv_dim();
        let blocks = (0..cfg.layers)
            .map(|i| Block {
                attn_norm: LayerNorm::new(&mut l, &format!("blk.{i}.attn_norm"), c),
                attn_qkv: Linear::new(&mut l, &format!("blk.{i}.attn_qkv"), c, w),
                attn,
                attn_output: Linear::new(&mut l, &format!("blk.{i}.attn_output"), c, c),
                ffn_norm: LayerNorm::new(&mut l, &format!("blk.{i}.ffn_norm"), c),
                ffn_up: Linear::new(&mut l, &format!("blk.{i}.ffn_up"), c, f),
                ffn_down: Linear::new(&mut l, &format!("blk.{i}.ffn_down"), f, c),
            })
            .collect();
        let output_norm = LayerNorm::new(&mut l, "output_norm", c);
        let output = if cfg.tied {
            token_embd.offset
        } else {
            l.push("output.weight", &[v, c])
        };
        // nanoGPT decays every matrix, the embeddings too (and the tied
        // output is the token embedding), unlike the image families'
        // label embeddings.
        for e in &mut l.entries {
            if e.name.ends_with("_embd.weight") {
                e.decay = true;
            }
        }
        Ok(Self {
            cfg,
            layout: l,
            token_embd,
            position_embd,
            class_embd,
            blocks,
            output_norm,
            output,
            output_int8_inputs: false,
        })
    }

    /// GPT-2's initialization, as nanoGPT does it: weights and embeddings
    /// N(0, 0.02), the two projections back into the residual stream
    /// N(0, 0.02 / sqrt(2 L)) so that its variance does not grow with
    /// depth, biases 0, LayerNorms weight 1 and bias 0.
    pub fn init(&self, p: &mut [f32], rng: &mut Rng) {
        let resid = 0.02 / (2.0 * self.cfg.layers as f32).sqrt();
        for e in &self.layout.entries {
            let std =
                if e.name.ends_with("attn_output.weight") || e.name.ends_with("ffn_down.weight") {
                    resid
                } else {
                    0.02
                };
            let t = &mut p[e.range()];
            if e.name.ends_with(".bias") {
                t.fill(0.0);
            } else if e.name.contains("_norm.") {
                t.fill(1.0);
            } else {
                t.iter_mut().for_each(|v| *v = std * rng.normal());
            }
        }
    }
}

/// The per-batch buffers of a forward and backward at `B x T`.
#[derive(Debug, Clone)]
pub struct Acts {
    /// Rows (B*T) the buffers hold.
    pub cap: usize,
    /// `(B, T)` input symbols.
    pub tokens: Vec<u32>,
    /// `(B)` class labels (conditional only).
    pub labels: Vec<u32>,
    /// `(L + 1, N, C)`: the residual stream entering each block, then
    /// leaving the last.
    pub res: Vec<f32>,
    /// `(L, N, C)` each block's stream after its attention.
    pub mid: Vec<f32>,
    /// `(L, N, C)` normalized inputs of attention and of the MLP.
    pub ln1: Vec<f32>,
    /// See `ln1`.
    pub ln2: Vec<f32>,
    /// `(L, N, 2)` their means and 1/std.
    pub ln1_saved: Vec<f32>,
    /// See `ln1_saved`.
    pub ln2_saved: Vec<f32>,
    /// `(L, N, C + 2 Ckv)`.
    pub qkv: Vec<f32>,
    /// `(L, N, C)` the heads' outputs.
    pub att: Vec<f32>,
    /// `(L, B, H, T)` each query's log-sum-exp.
    pub lse: Vec<f32>,
    /// `(L, N, F)` before and after GELU.
    pub up: Vec<f32>,
    /// See `up`.
    pub gelu: Vec<f32>,
    /// `(N, C)` the final LayerNorm.
    pub lnf: Vec<f32>,
    /// `(N, 2)`.
    pub lnf_saved: Vec<f32>,
    /// `(N, V)`; the caller turns it into its gradient before
    /// [`Transformer::backward`].
    pub logits: Vec<f32>,
    /// Gradient buffers: `(N, C)`, `(N, C)`, `(N, C + 2 Ckv)`, `(N, C)`, `(N, F)`, `(N, F)`.
    pub d_res: Vec<f32>,
    /// See `d_res`.
    pub d_ln: Vec<f32>,
    /// See `d_res`.
    pub d_qkv: Vec<f32>,
    /// See `d_res`.
    pub d_att: Vec<f32>,
    /// See `d_res`.
    pub d_up: Vec<f32>,
    /// See `d_res`.
    pub d_gelu: Vec<f32>,
}

impl Acts {
    /// Buffers for batches of up to `batch` sequences of `m.cfg.context`.
    pub fn new(m: &Transformer, batch: usize) -> Self {
        let c = &m.cfg;
        let n = batch * c.context;
        let l = c.layers;
        let w = c.attention().map_or(3 * c.dim, |a| a.qkv_dim());
        let v = |k: usize| vec![0f32; k];
        Self {
            cap: n,
            tokens: vec![0; n],
            labels: vec![0; batch],
            res: v((l + 1) * n * c.dim),
            mid: v(l * n * c.dim),
            ln1: v(l * n * c.dim),
            ln2: v(l * n * c.dim),
            ln1_saved: v(l * n * 2),
            ln2_saved: v(l * n * 2),
            qkv: v(l * n * w),
            att: v(l * n * c.dim),
            lse: v(l * n * c.heads),
            up: v(l * n * c.ffn),
            gelu: v(l * n * c.ffn),
            lnf: v(n * c.dim),
            lnf_saved: v(n * 2),
            logits: v(n * c.vocab),
            d_res: v(n * c.dim),
            d_ln: v(n * c.dim),
            d_qkv: v(n * w),
            d_att: v(n * c.dim),
            d_up: v(n * c.ffn),
            d_gelu: v(n * c.ffn),
        }
    }
}

impl Transformer {
    /// Logits `(B*T, V)` into `a.logits` for `a.tokens` (and `a.labels`),
    /// `b` sequences of `t <= context` symbols each.
    pub fn forward(&self, p: &[f32], a: &mut Acts, b: usize, t: usize, th: Threads) {
        let cfg = &self.cfg;
        let (c, f, h, v) = (cfg.dim, cfg.ffn, cfg.heads, cfg.vocab);
        let n = b * t;
        assert!(t <= cfg.context && n <= a.cap, "a batch past the buffers");
        // Embeddings: token, plus position, plus class.
        let x = &mut a.res[..n * c];
        self.token_embd.forward(p, x, &a.tokens[..n]);
        let pos = &p[self.position_embd.offset..][..t * c];
        for row in x.chunks_exact_mut(t * c) {
            add_assign(row, pos);
        }
        if let Some(e) = &self.class_embd {
            let table = &p[e.offset..][..e.n * c];
            for (seq, &y) in x.chunks_exact_mut(t * c).zip(&a.labels[..b]) {
                let row = &table[(y as usize % e.n) * c..][..c];
                for tok in seq.chunks_exact_mut(c) {
                    add_assign(tok, row);
                }
            }
        }
        for (l, blk) in self.blocks.iter().enumerate() {
            let (nc, nf) = (n * c, n * f);
            let (res_in, res_out) = a.res.split_at_mut((l + 1) * a.cap * c);
            let x = &res_in[l * a.cap * c..][..nc];
            let ln1 = &mut a.ln1[l * a.cap * c..][..nc];
            blk.attn_norm
                .forward(p, ln1, &mut a.ln1_saved[l * a.cap * 2..], x, n);
            let w = blk.attn.qkv_dim();
            let qkv = &mut a.qkv[l * a.cap * w..][..n * w];
            blk.attn_qkv.forward(p, qkv, ln1, n, th);
            let att = &mut a.att[l * a.cap * c..][..nc];
            blk.attn
                .forward(att, &mut a.lse[l * a.cap * h..], qkv, b, t);
            let mid = &mut a.mid[l * a.cap * c..][..nc];
            blk.attn_output
                .forward_residual(p, mid, att, Some(x), n, th);
            let ln2 = &mut a.ln2[l * a.cap * c..][..nc];
            blk.ffn_norm
                .forward(p, ln2, &mut a.ln2_saved[l * a.cap * 2..], mid, n);
            let up = &mut a.up[l * a.cap * f..][..nf];
            blk.ffn_up.forward(p, up, ln2, n, th);
            let g = &mut a.gelu[l * a.cap * f..][..nf];
            act::forward(Activation::Gelu, g, up);
            let out = &mut res_out[..nc];
            blk.ffn_down.forward_residual(p, out, g, Some(mid), n, th);
        }
        let last = &a.res[cfg.layers * a.cap * c..][..n * c];
        self.output_norm
            .forward(p, &mut a.lnf[..n * c], &mut a.lnf_saved, last, n);
        let w = &p[self.output..][..v * c];
        if self.output_int8_inputs {
            crate::nn::linear::quantize_rows(&mut a.lnf[..n * c], c);
        }
        gemm(
            &mut a.logits[..n * v],
            &a.lnf[..n * c],
            false,
            w,
            true,
            (n, v, c),
            1.0,
            false,
            th,
        );
    }

    /// Adds the parameters' gradients into `g`, from the logits' gradient
    /// (left in `a.logits` by the caller) of the forward just run.
    pub fn backward(
        &self,
        p: &[f32],
        g: &mut [f32],
        a: &mut Acts,
        b: usize,
        t: usize,
        th: Threads,
    ) {
        let cfg = &self.cfg;
        let (c, f, h, v) = (cfg.dim, cfg.ffn, cfg.heads, cfg.vocab);
        let (n, cap) = (b * t, a.cap);
        let (nc, nf) = (n * c, n * f);
        let dl = &a.logits[..n * v];
        // Output projection: dW += dl^T lnf, d lnf = dl W.
        let d_ln = &mut a.d_ln[..nc];
        gemm(
            d_ln,
            dl,
            false,
            &p[self.output..][..v * c],
            false,
            (n, c, v),
            1.0,
            false,
            th,
        );
        gemm(
            &mut g[self.output..][..v * c],
            dl,
            true,
            &a.lnf[..nc],
            false,
            (v, c, n),
            1.0,
            true,
            th,
        );
        let d_res = &mut a.d_res[..nc];
        d_res.fill(0.0);
        let last = &a.res[cfg.layers * cap * c..][..nc];
        self.output_norm
            .backward(p, g, d_res, d_ln, last, &a.lnf_saved, n);
        for (l, blk) in self.blocks.iter().enumerate().rev() {
            let x = &a.res[l * cap * c..][..nc];
            let mid = &a.mid[l * cap * c..][..nc];
            // MLP: d_res is d(out) and, through the skip, d(mid) so far.
            // (The input gradients below have one source each: written,
            // not added, so no buffer is zeroed first.)
            let d_gelu = &mut a.d_gelu[..nf];
            let gelu = &a.gelu[l * cap * f..][..nf];
            blk.ffn_down.backward_into(p, g, d_gelu, d_res, gelu, n, th);
            let d_up = &mut a.d_up[..nf];
            let up = &a.up[l * cap * f..][..nf];
            act::backward_into(Activation::Gelu, d_up, up, gelu, d_gelu);
            let d_ln = &mut a.d_ln[..nc];
            blk.ffn_up
                .backward_into(p, g, d_ln, d_up, &a.ln2[l * cap * c..][..nc], n, th);
            blk.ffn_norm
                .backward(p, g, d_res, d_ln, mid, &a.ln2_saved[l * cap * 2..], n);
            // Attention: d_res is now d(mid), and d(x) through the skip.
            let d_att = &mut a.d_att[..nc];
            let att = &a.att[l * cap * c..][..nc];
            blk.attn_output
                .backward_into(p, g, d_att, d_res, att, n, th);
            let w = blk.attn.qkv_dim();
            let d_qkv = &mut a.d_qkv[..n * w];
            let qkv = &a.qkv[l * cap * w..][..n * w];
            blk.attn
                .backward(d_qkv, d_att, att, &a.lse[l * cap * h..], qkv, b, t);
            let d_ln = &mut a.d_ln[..nc];
            blk.attn_qkv
                .backward_into(p, g, d_ln, d_qkv, &a.ln1[l * cap * c..][..nc], n, th);
            blk.attn_norm
                .backward(p, g, d_res, d_ln, x, &a.ln1_saved[l * cap * 2..], n);
        }
        // Embeddings.
        self.token_embd.backward(g, d_res, &a.tokens[..n]);
        let pos = &mut g[self.position_embd.offset..][..t * c];
        for row in d_res.chunks_exact(t * c) {
            add_assign(pos, row);
        }
        if let Some(e) = &self.class_embd {
            for (seq, &y) in d_res.chunks_exact(t * c).zip(&a.labels[..b]) {
                let row = &mut g[e.offset + (y as usize % e.n) * c..][..c];
                for tok in seq.chunks_exact(c) {
                    add_assign(row, tok);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::loss::softmax_cross_entropy;

    fn tiny(tied: bool, k: usize) -> Transformer {
        Transformer::new(TransformerConfig {
            vocab: 7,
            context: 5,
            dim: 8,
            layers: 2,
            heads: 2,
            // The tied model shares one K/V head (multi-query attention).
            kv_heads: if tied { 1 } else { 2 },
            ffn: 12,
            n_classes: k,
            tied,
        })
        .unwrap()
    }

    /// Mean cross-entropy of the next symbol, and its gradient in `a.logits`.
    fn loss(
        m: &Transformer,
        p: &[f32],
        a: &mut Acts,
        targets: &[u32],
        b: usize,
        t: usize,
        grad: bool,
    ) -> f64 {
        m.forward(p, a, b, t, Threads(2));
        let n = b * t;
        let v = m.cfg.vocab;
        let mut l = vec![0f32; n];
        let logits = a.logits[..n * v].to_vec();
        let d = grad.then_some(&mut a.logits[..n * v]);
        softmax_cross_entropy(&mut l, d, &logits, targets, v, 1.0 / n as f32);
        l.iter().map(|&x| x as f64).sum::<f64>() / n as f64
    }

    /// Every parameter's gradient against central differences, tied and
    /// untied, with and without a class embedding, on a sequence shorter
    /// than the context.
    #[test]
    fn backward_matches_finite_differences() {
        for (tied, k) in [(false, 0), (true, 3)] {
            let m = tiny(tied, k);
            let mut rng = Rng::new(7);
            let mut p = vec![0f32; m.layout.total()];
            m.init(&mut p, &mut rng);
            // Larger than GPT-2's 0.02, so that every path carries signal.
            p.iter_mut().for_each(|x| *x += 0.3 * rng.normal());
            let (b, t) = (2, 4);
            let mut a = Acts::new(&m, b);
            for (i, tok) in a.tokens[..b * t].iter_mut().enumerate() {
                *tok = (i * 3 % 7) as u32;
            }
            a.labels[..b].copy_from_slice(&[2, 0]);
            let targets: Vec<u32> = (0..b * t).map(|i| (i * 5 % 7) as u32).collect();
            loss(&m, &p, &mut a, &targets, b, t, true);
            let mut g = vec![0f32; p.len()];
            m.backward(&p, &mut g, &mut a, b, t, Threads(2));
            let h = 1e-2f32;
            let mut worst = 0f64;
            let mut q = p.clone();
            for i in 0..p.len() {
                q[i] = p[i] + h;
                let up = loss(&m, &q, &mut a, &targets, b, t, false);
                q[i] = p[i] - h;
                let down = loss(&m, &q, &mut a, &targets, b, t, false);
                q[i] = p[i];
                let num = (up - down) / (2.0 * h as f64);
                let err = (g[i] as f64 - num).abs() / num.abs().max(1.0);
                worst = worst.max(err);
                let name = &m
                    .layout
                    .entries
                    .iter()
                    .find(|e| e.range().contains(&i))
                    .unwrap()
                    .name;
                assert!(
                    err < 1e-3,
                    "tied {tied}, {name}[{i}]: analytic {} vs numeric {num}",
                    g[i]
                );
            }
            eprintln!("tied {tied}: worst relative error {worst:.2e}");
            assert!(worst > 0.0);
            // The unused position rows (t..T) get no gradient.
            let pos = m.position_embd.offset;
            assert!(g[pos + t * 8..pos + 5 * 8].iter().all(|&x| x == 0.0));
        }
    }

    /// Causality: changing a later symbol leaves every earlier position's
    /// logits unchanged.
    #[test]
    fn logits_never_see_later_symbols() {
        let m = tiny(false, 0);
        let mut p = vec![0f32; m.layout.total()];
        m.init(&mut p, &mut Rng::new(1));
        let (b, t) = (1, 5);
        let mut a = Acts::new(&m, b);
        a.tokens[..5].copy_from_slice(&[1, 2, 3, 4, 5]);
        m.forward(&p, &mut a, b, t, Threads(1));
        let before = a.logits[..5 * 7].to_vec();
        a.tokens[4] = 6;
        m.forward(&p, &mut a, b, t, Threads(1));
        assert_eq!(&a.logits[..4 * 7], &before[..4 * 7]);
        assert_ne!(&a.logits[4 * 7..5 * 7], &before[4 * 7..5 * 7]);
    }
}
