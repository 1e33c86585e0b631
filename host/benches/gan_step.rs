//! Where a DCGAN training step (the reference shapes: z 64,
//! G 64 -> 128x7x7 -> 64x14x14 -> 1x28x28, D 1 -> 64 -> 128 (BN) -> 1,
//! batch 128) spends its time, layer by layer, as medians over steps.
//! `cargo bench -p edgegen --bench gan_step -- [threads] [steps]`
use edgegen::bench::median;
use edgegen::models::gan::{DiscActs, Gan, GanConfig, GenActs, Mode};
use edgegen::nn::gemm::Threads;
use edgegen::rng::Rng;
use std::time::Instant;

fn main() {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let th = Threads(edgegen::train::run::init_threads(arg(1, 2)));
    let steps = arg(2, 20);
    let m = Gan::new(GanConfig {
        image_shape: [1, 28, 28],
        latent: 64,
        n_classes: 0,
        g_width: 128,
        d_width: 64,
        spectral_norm: false,
        d_hidden: 0,
    })
    .unwrap();
    let mut rng = Rng::new(1);
    let (mut gp, mut dp) = (
        vec![0.0; m.gen_.layout.total()],
        vec![0.0; m.disc.layout.total()],
    );
    let mut bufs = vec![0.0; m.buffers.total()];
    m.init(&mut gp, &mut dp, &mut bufs, &mut rng);
    let n = 128;
    let mut ga = GenActs::new(&m, n);
    let mut da = DiscActs::new(&m, n);
    let z: Vec<f32> = (0..n * 64).map(|_| rng.normal()).collect();
    ga.set_input(&m.cfg, &z, &[]);
    let (mut gg, mut dg) = (vec![0.0; gp.len()], vec![0.0; dp.len()]);
    let mut rows: Vec<(&str, Vec<f64>)> =
        ["G forward", "G backward", "D forward", "D backward (to x)"]
            .iter()
            .map(|s| (*s, vec![]))
            .collect();
    let mut layer: Vec<(String, Vec<f64>)> = vec![];
    let time = |i: usize, rows: &mut Vec<(&str, Vec<f64>)>, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        rows[i].1.push(t.elapsed().as_secs_f64() * 1e3);
    };
    for _ in 0..steps {
        time(0, &mut rows, &mut || {
            m.gen_.forward(&gp, &mut bufs, &mut ga, n, Mode::Train, th)
        });
        ga.d_out.iter_mut().for_each(|v| *v = 1e-3);
        time(1, &mut rows, &mut || {
            m.gen_.backward(&gp, &mut gg, &mut ga, n, th)
        });
        da.x.copy_from_slice(&ga.out);
        time(2, &mut rows, &mut || {
            m.disc.forward(&dp, &mut bufs, &mut da, n, Mode::Train, th)
        });
        da.d_logit.iter_mut().for_each(|v| *v = 1e-2);
        time(3, &mut rows, &mut || {
            m.disc.backward(&dp, Some(&mut dg), &mut da, n, true, th)
        });
    }
    // Layer by layer, on the activations of the last step.
    {
        use edgegen::nn::act::{self, Activation};
        let d = &m.disc;
        let g = &m.gen_;
        let bn = d.bn.expect("the reference D has a batch norm");
        let mut lt = |name: &str, f: &mut dyn FnMut()| {
            let mut v = vec![];
            for _ in 0..steps {
                let t = Instant::now();
                f();
                v.push(t.elapsed().as_secs_f64() * 1e3);
            }
            layer.push((name.to_string(), v));
        };
        let (e0, e1) = (d.conv0.out_len(), d.conv1.out_len());
        lt("D conv.0 forward", &mut || {
            d.conv0
                .forward(&dp, &mut da.c0, &da.x, n, &mut da.scratch0, th)
        });
        lt("D leaky forward", &mut || {
            act::forward(
                Activation::LeakyRelu,
                &mut da.a0[..n * e0],
                &da.c0[..n * e0],
            )
        });
        lt("D conv.1 forward", &mut || {
            d.conv1
                .forward(&dp, &mut da.c1, &da.a0, n, &mut da.scratch1, th)
        });
        lt("D bn forward", &mut || {
            bn.forward_train(&dp, &mut bufs, &mut da.bn, &da.c1, n, &mut da.saved)
        });
        lt("D fc forward", &mut || {
            d.fc.forward(&dp, &mut da.logit, &da.phi, n, th)
        });
        lt("D bn backward", &mut || {
            bn.backward(&dp, &mut dg, &mut da.d_c1, &da.d_bn, &da.c1, n, &da.saved)
        });
        lt("D conv.1 backward (dW, dx)", &mut || {
            d.conv1.backward(
                &dp,
                Some(&mut dg),
                Some(&mut da.d_a0),
                &da.d_c1,
                &da.a0,
                n,
                &mut da.scratch1,
                th,
            )
        });
        lt("D conv.1 backward (dx)", &mut || {
            d.conv1.backward(
                &dp,
                None,
                Some(&mut da.d_a0),
                &da.d_c1,
                &da.a0,
                n,
                &mut da.scratch1,
                th,
            )
        });
        lt("D conv.0 backward (dW, dx)", &mut || {
            d.conv0.backward(
                &dp,
                Some(&mut dg),
                Some(&mut da.d_x),
                &da.d_c0,
                &da.x,
                n,
                &mut da.scratch0,
                th,
            )
        });
        let _ = e1;
        lt("G fc forward", &mut || {
            g.fc.forward(&gp, &mut ga.fc, &ga.zin, n, th)
        });
        lt("G up.0 forward", &mut || {
            g.up0
                .forward(&gp, &mut ga.up0, &ga.a0, n, &mut ga.scratch, th)
        });
        lt("G up.1 forward", &mut || {
            g.up1
                .forward(&gp, &mut ga.up1, &ga.a1, n, &mut ga.scratch, th)
        });
        lt("G up.0 backward", &mut || {
            g.up0.backward(
                &gp,
                Some(&mut gg),
                Some(&mut ga.d_a0),
                &ga.d_up0,
                &ga.a0,
                n,
                &mut ga.scratch,
                th,
            )
        });
        lt("G up.1 backward", &mut || {
            g.up1.backward(
                &gp,
                Some(&mut gg),
                Some(&mut ga.d_a1),
                &ga.d_up1,
                &ga.a1,
                n,
                &mut ga.scratch,
                th,
            )
        });
        lt("G bn.1 forward", &mut || {
            g.bn1
                .forward_train(&gp, &mut bufs, &mut ga.bn1, &ga.up0, n, &mut ga.saved1)
        });
    }
    println!(
        "DCGAN step parts at batch {n}, {} threads, median ms of {steps}",
        th.0
    );
    for (name, v) in rows
        .into_iter()
        .map(|(a, b)| (a.to_string(), b))
        .chain(layer)
    {
        println!("{name:<40} {:>8.2}", median(v));
    }
}
