//! `edgegen latent RUN_DIR interpolate|map`: walks through and maps a
//! VAE's latent space, and walks through a GAN's noise space (between two
//! seeds: a GAN has no encoder to start from an image).

use crate::models::vae::{Vae, VaeActs};
use crate::nn::gemm::Threads;
use crate::plot;
use crate::provenance::{Provenance, Source};
use crate::rng::Rng;
use crate::train::checkpoint;
use crate::train::config::TrainConfig;
use crate::train::run::{self, files};
use crate::train::vae;
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct LatentArgs {
    /// A run folder from `edgegen train vae` or `edgegen train gan`.
    run: PathBuf,
    #[command(subcommand)]
    command: LatentCommand,
}

#[derive(Debug, Subcommand)]
enum LatentCommand {
    /// Decode a straight (linear) and a great-circle (spherical) path between
    /// two latent points, as a PNG strip: linear on top, spherical below.
    Interpolate {
        /// Start from the encoding (mu) of this test image...
        #[arg(long, requires = "to_image", conflicts_with_all = ["from_seed", "to_seed"])]
        from_image: Option<usize>,
        /// ...and end at this one.
        #[arg(long)]
        to_image: Option<usize>,
        /// Or start from z ~ N(0, I) drawn with this seed...
        #[arg(long, default_value_t = 1)]
        from_seed: u64,
        /// ...and end at the one drawn with this seed.
        #[arg(long, default_value_t = 2)]
        to_seed: u64,
        /// Points along each path, ends included.
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Class label for a conditional model (default: the start image's, or 0).
        #[arg(long)]
        label: Option<u32>,
        /// The PNG to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// For a 2-D latent space: a grid of decodings over the latent plane, and
    /// the test set's encodings coloured by class.
    Map {
        /// Grid points per side.
        #[arg(long, default_value_t = 20)]
        grid: usize,
        /// The grid spans [-range, range] on both axes.
        #[arg(long, default_value_t = 3.0)]
        range: f32,
        /// Class label for a conditional model's grid.
        #[arg(long, default_value_t = 0)]
        label: u32,
        /// Folder for latent_grid.png and latent_scatter.png.
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// `a + t (b - a)`.
pub fn lerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + t * (y - x)).collect()
}

/// Spherical interpolation: along the great circle between `a` and `b`,
/// with the norm interpolated linearly, which keeps points at the typical
/// radius of a Gaussian (White, "Sampling generative networks", 2016).
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na < 1e-12 || nb < 1e-12 {
        return lerp(a, b, t);
    }
    let cos = (a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (na * nb)).clamp(-1.0, 1.0);
    let omega = cos.acos();
    if omega.abs() < 1e-5 {
        return lerp(a, b, t);
    }
    let (sa, sb) = (
        ((1.0 - t) * omega).sin() / omega.sin(),
        (t * omega).sin() / omega.sin(),
    );
    a.iter().zip(b).map(|(x, y)| sa * x + sb * y).collect()
}

fn load(run: &Path) -> Result<(Vae, Vec<f32>, TrainConfig, Source)> {
    let ck = checkpoint::load(&run.join(files::BEST))?;
    let (m, st) = vae::load(&ck, "`latent`")?;
    let params = st
        .groups
        .into_iter()
        .next()
        .map(|g| g.params)
        .unwrap_or_default();
    Ok((m, params, ck.train.clone(), ck.source()))
}

/// `interpolate` for a GAN: linear and spherical paths between the noise
/// of two seeds, through the generator the run samples with.
fn gan_interpolate(ck: &checkpoint::Checkpoint, cmd: LatentCommand) -> Result<()> {
    use crate::train::gan;
    let LatentCommand::Interpolate {
        from_image,
        from_seed,
        to_seed,
        steps,
        label,
        output,
        ..
    } = cmd
    else {
        return Err(ck.family.refuse(
            ck.path.display(),
            &[crate::models::Family::Vae],
            "`latent map`",
        ));
    };
    if from_image.is_some() {
        bail!(
            "--from-image: {} is a gan run, which has no encoder to map an image into its noise space; interpolate between --from-seed and --to-seed",
            ck.path.display()
        );
    }
    if steps < 2 {
        bail!("--steps: expected at least 2, found {steps}");
    }
    let (m, st, ema) = gan::load(ck, "`latent`")?;
    let (zd, k) = (m.cfg.latent, m.cfg.n_classes);
    let lab = match (k, label) {
        (0, Some(_)) => bail!("--label: this model is unconditional"),
        (_, Some(l)) if l as usize >= k => bail!("--label: expected 0 to {}, found {l}", k - 1),
        (_, l) => l.unwrap_or(0),
    };
    let draw = |s: u64| {
        let mut r = Rng::new(s);
        (0..zd).map(|_| r.normal()).collect::<Vec<f32>>()
    };
    let (za, zb) = (draw(from_seed), draw(to_seed));
    let mut zs = vec![];
    for path in [lerp, slerp] {
        for s in 0..steps {
            zs.extend(path(&za, &zb, s as f32 / (steps - 1) as f32));
        }
    }
    let th = Threads(run::init_threads(0));
    let (gp, bufs) = gan::sampling_generator(&m, &st, ema);
    let px = gan::generate(&m, &gp, &bufs, &zs, &vec![lab; 2 * steps], th);
    let d = m.cfg.image_len();
    let imgs: Vec<Vec<u8>> = px
        .chunks_exact(d)
        .map(|c| c.iter().map(|&v| (v * 255.0).round() as u8).collect())
        .collect();
    let refs: Vec<&[u8]> = imgs.iter().map(|v| v.as_slice()).collect();
    let shape = m.cfg.image_shape;
    let scale = (56 / shape[1].max(1)).clamp(1, 4);
    let tag =
        Provenance::samples(&ck.source(), from_seed, 2 * steps).with_label((k > 0).then_some(lab));
    plot::save_png(
        &plot::grid::image_grid(&refs, shape, steps, scale),
        &output,
        &tag,
    )?;
    println!(
        "wrote {} (top: linear, bottom: spherical, {steps} steps)",
        output.display()
    );
    Ok(())
}

fn encode_mu(m: &Vae, p: &[f32], x: &[f32], labels: &[u32], th: Threads) -> Vec<f32> {
    let (d, z) = (m.cfg.input_dim(), m.cfg.latent);
    let n = labels.len();
    let mut out = Vec::with_capacity(n * z);
    let mut a = VaeActs::new(m, 1000.min(n.max(1)));
    for s in (0..n).step_by(a.cap) {
        let k = a.cap.min(n - s);
        a.x[..k * d].copy_from_slice(&x[s * d..(s + k) * d]);
        a.labels[..k].copy_from_slice(&labels[s..s + k]);
        m.encode(p, &mut a, k, th);
        for r in 0..k {
            out.extend_from_slice(&a.stats[r * 2 * z..r * 2 * z + z]);
        }
    }
    out
}

pub fn run(a: LatentArgs) -> Result<()> {
    let ck = checkpoint::load(&a.run.join(files::BEST))?;
    if ck.family == crate::models::Family::Gan {
        return gan_interpolate(&ck, a.command);
    }
    let (m, p, cfg, source) = load(&a.run)?;
    let th = Threads(run::init_threads(0));
    let z = m.cfg.latent;
    let shape = m.cfg.image_shape;
    let scale = (56 / shape[1].max(1)).clamp(1, 4);
    match a.command {
        LatentCommand::Interpolate {
            from_image,
            to_image,
            from_seed,
            to_seed,
            steps,
            label,
            output,
        } => {
            if steps < 2 {
                bail!("--steps: expected at least 2, found {steps}");
            }
            let (za, zb, lab, seeds) = match (from_image, to_image) {
                (Some(i), Some(j)) => {
                    let data = vae::load_images(&cfg, None)?;
                    let n = data.test.len();
                    if i >= n || j >= n {
                        bail!(
                            "--from-image/--to-image: the test split has {n} images, indices must be below that"
                        );
                    }
                    let d = data.test.d;
                    let mut x = data.test.x[i * d..(i + 1) * d].to_vec();
                    x.extend_from_slice(&data.test.x[j * d..(j + 1) * d]);
                    let labs = [data.test.labels[i], data.test.labels[j]];
                    let mu = encode_mu(&m, &p, &x, &labs, th);
                    (
                        mu[..z].to_vec(),
                        mu[z..].to_vec(),
                        label.unwrap_or(labs[0]),
                        None,
                    )
                }
                _ => {
                    let draw = |s: u64| {
                        let mut r = Rng::new(s);
                        (0..z).map(|_| r.normal()).collect::<Vec<f32>>()
                    };
                    (
                        draw(from_seed),
                        draw(to_seed),
                        label.unwrap_or(0),
                        Some(from_seed),
                    )
                }
            };
            let mut zs = vec![];
            for path in [lerp, slerp] {
                for s in 0..steps {
                    zs.extend(path(&za, &zb, s as f32 / (steps - 1) as f32));
                }
            }
            let labels = vec![lab; 2 * steps];
            let imgs = vae::decode_images(&m, &p, &zs, &labels, th);
            let refs: Vec<&[u8]> = imgs.iter().map(|v| v.as_slice()).collect();
            // From test images there is no noise; from seeds, the tag keeps
            // the first (the command line in the tag holds both).
            let tag = match seeds {
                Some(seed) => Provenance::samples(&source, seed, 2 * steps),
                None => Provenance::decoded(&source, 2 * steps),
            }
            .with_label((m.cfg.n_classes > 0).then_some(lab));
            plot::save_png(
                &plot::grid::image_grid(&refs, shape, steps, scale),
                &output,
                &tag,
            )?;
            println!(
                "wrote {} (top: linear, bottom: spherical, {steps} steps)",
                output.display()
            );
        }
        LatentCommand::Map {
            grid,
            range,
            label,
            output,
        } => {
            if z != 2 {
                bail!(
                    "map needs a 2-D latent space; this model has latent_dim {z} (train with --latent 2)"
                );
            }
            if grid < 2 {
                bail!("--grid: expected at least 2, found {grid}");
            }
            // Rows go from +range at the top to -range, columns left to right.
            let mut zs = Vec::with_capacity(grid * grid * 2);
            for r in 0..grid {
                for c in 0..grid {
                    let f = |i: usize| -range + 2.0 * range * i as f32 / (grid - 1) as f32;
                    zs.extend([f(c), f(grid - 1 - r)]);
                }
            }
            let imgs = vae::decode_images(&m, &p, &zs, &vec![label; grid * grid], th);
            let refs: Vec<&[u8]> = imgs.iter().map(|v| v.as_slice()).collect();
            let grid_png = output.join("latent_grid.png");
            // A grid over the latent plane draws no noise.
            let tag = Provenance::decoded(&source, grid * grid)
                .with_label((m.cfg.n_classes > 0).then_some(label));
            plot::save_png(
                &plot::grid::image_grid(&refs, shape, grid, 1),
                &grid_png,
                &tag,
            )?;
            let data = vae::load_images(&cfg, None)?;
            let mu = encode_mu(&m, &p, &data.test.x, &data.test.labels, th);
            let points: Vec<(f32, f32, u32)> = mu
                .chunks_exact(2)
                .zip(&data.test.labels)
                .map(|(v, &l)| (v[0], v[1], l))
                .collect();
            let scatter = output.join("latent_scatter.png");
            plot::scatter::class_scatter_png(
                "test set encodings (mu)",
                &points,
                &data.classes,
                &scatter,
                &Provenance::plot_of(&source),
            )?;
            println!("wrote {} and {}", grid_png.display(), scatter.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slerp_keeps_ends_and_norm_of_equal_norm_points() {
        let (a, b) = ([3.0f32, 0.0], [0.0f32, 3.0]);
        assert_eq!(slerp(&a, &b, 0.0), a);
        let e = slerp(&a, &b, 1.0);
        assert!((e[0] - b[0]).abs() < 1e-6 && (e[1] - b[1]).abs() < 1e-6);
        let mid = slerp(&a, &b, 0.5);
        assert!((mid[0].hypot(mid[1]) - 3.0).abs() < 1e-5);
        let lm = lerp(&a, &b, 0.5);
        assert!(lm[0].hypot(lm[1]) < 2.2);
    }
}
