//! Helpers shared by the end-to-end tests in `tests/tests/`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh, empty folder under the system temp dir, unique to this test.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgegen-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs a Python script from `tests/python/` and panics with its output if
/// it fails. The tests need the packages that `scripts/test.sh` installs.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let python = std::env::var("EDGEGEN_PYTHON").unwrap_or_else(|_| "python3".into());
    let path = repo_root().join("tests/python").join(script);
    let out = Command::new(&python)
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {python}: {e}; run scripts/test.sh, which installs what the tests need"
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({}):\n{stdout}\n{stderr}\n(if a module is missing, run scripts/test.sh, which installs the Python packages the tests need)",
        out.status
    );
    stdout
}

/// A VAE decoder as GGUF with pseudo-random weights (N(0, 1) times
/// `scale[i]` for layer i) and constant biases (`bias[i]`), stored as `ty`
/// (Q8_0 rows zero-padded to whole blocks, as the exporter does).
pub fn decoder_gguf(
    hp: &edgegen_format::arch::vae::Hparams,
    ty: edgegen_format::GgmlType,
    seed: u64,
    scale: [f32; 2],
    bias: [f32; 2],
) -> Vec<u8> {
    use edgegen_format::arch::vae;
    let layers: Vec<_> = (0..=hp.n_hidden)
        .map(|i| (vae::DEC_WEIGHT[i], vae::DEC_BIAS[i], hp.decoder_layer(i)))
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
        .map(|i| (vae::ENC_WEIGHT[i], vae::ENC_BIAS[i], hp.encoder_layer(i)))
        .chain([
            (vae::ENC_MU_WEIGHT, vae::ENC_MU_BIAS, head),
            (vae::ENC_LOGVAR_WEIGHT, vae::ENC_LOGVAR_BIAS, head),
        ])
        .collect();
    vae_gguf(hp, vae::Part::Encoder, &layers, ty, seed, scale, bias)
}

/// `layers` as `(weight name, bias name, (in, out))`.
fn vae_gguf(
    hp: &edgegen_format::arch::vae::Hparams,
    part: edgegen_format::arch::vae::Part,
    layers: &[(&str, &str, (usize, usize))],
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
    for (i, &(wname, bname, (inp, out))) in layers.iter().enumerate() {
        let stride = if ty == GgmlType::Q8_0 {
            inp.div_ceil(32) * 32
        } else {
            inp
        };
        let s = scale[i.min(1)];
        let vals: Vec<f32> = (0..out * stride)
            .map(|j| {
                if j % stride < inp {
                    r.normal() * s
                } else {
                    0.0
                }
            })
            .collect();
        w.add_tensor(wname, &[stride as u64, out as u64], ty, &vals)
            .unwrap();
        w.add_tensor(
            bname,
            &[out as u64],
            GgmlType::F32,
            &vec![bias[i.min(1)]; out],
        )
        .unwrap();
    }
    w.to_bytes()
}

/// Runs `cargo build --locked -q` with `args` into its own target folder
/// (so that it never waits on the outer build's lock), setting or removing
/// one environment variable; panics with cargo's message on failure.
pub fn cargo_build(args: &[&str], target_dir: &Path, env: (&str, Option<&Path>)) {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(repo_root())
        .args(["build", "--locked", "-q"])
        .args(args)
        .arg("--target-dir")
        .arg(target_dir);
    match env.1 {
        Some(v) => c.env(env.0, v),
        None => c.env_remove(env.0),
    };
    let o = c.output().expect("run cargo");
    assert!(
        o.status.success(),
        "cargo build {args:?} failed (scripts/test.sh installs the targets and linkers):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
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
