//! Bad input of every kind, through the binary as a user would give it.
//! Every case must exit non-zero with a message that names the file or flag
//! and what was expected, never panic, and leave no partial output behind
//! (neither the file asked for nor a temporary one).

mod common;

use common::s;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// One bad-input case.
struct Case {
    name: &'static str,
    args: Vec<String>,
    /// Every one of these must be in stderr.
    expect: Vec<String>,
    /// Files that must not exist afterwards.
    absent: Vec<PathBuf>,
}

fn case(name: &'static str, args: &[&str], expect: &[&str]) -> Case {
    Case {
        name,
        args: args.iter().map(|a| a.to_string()).collect(),
        expect: expect.iter().map(|e| e.to_string()).collect(),
        absent: vec![],
    }
}

impl Case {
    fn absent(mut self, p: &Path) -> Self {
        self.absent.push(p.to_path_buf());
        self
    }
}

fn run_case(c: &Case, cmd: Command) -> Output {
    let mut cmd = cmd;
    let o = cmd.args(&c.args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "{}: exited 0\nstdout: {}\nstderr: {err}",
        c.name,
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        !err.contains("panicked") && o.status.code().is_some(),
        "{}: panicked or died: {:?}\n{err}",
        c.name,
        o.status
    );
    assert!(!err.contains("\x1b["), "{}: colour codes: {err:?}", c.name);
    for e in &c.expect {
        assert!(
            err.contains(e.as_str()),
            "{}: {e:?} missing from:\n{err}",
            c.name
        );
    }
    for p in &c.absent {
        assert!(!p.exists(), "{}: {} was left behind", c.name, p.display());
        if let Some(dir) = p.parent()
            && let Ok(rd) = std::fs::read_dir(dir)
        {
            let temps: Vec<String> = rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".tmp"))
                .collect();
            assert!(
                temps.is_empty(),
                "{}: temporary files left: {temps:?}",
                c.name
            );
        }
    }
    o
}

fn edgegen() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgegen"));
    c.env_remove("EDGEGEN_DATA");
    c
}

fn check_all(cases: &[Case]) {
    for c in cases {
        run_case(c, edgegen());
    }
    println!("{} bad-input cases", cases.len());
}

/// Small settings for quick runs on the built-in sample.
const SMALL: [&str; 10] = [
    "--max-train",
    "300",
    "--hidden",
    "16",
    "--latent",
    "3",
    "--batch",
    "100",
    "--quiet",
    "--threads=1",
];

fn train(out: &Path, extra: &[&str]) {
    common::ok(
        &[&["train", "vae"][..], &SMALL, extra, &["-o", s(out)]]
            .concat()
            .to_vec(),
    );
}

/// Two runs (unconditional, 2 epochs; conditional, 1 epoch) and their
/// exports, made once for every test here.
struct Fixtures {
    dir: PathBuf,
    run: PathBuf,
    crun: PathBuf,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let dir = common::tmp("bad", "fixtures");
        let (run, crun) = (dir.join("run"), dir.join("crun"));
        train(&run, &["--epochs", "2"]);
        train(&crun, &["--epochs", "1", "--conditional"]);
        // Another latent size, for a mismatched pair.
        let z5 = dir.join("z5");
        train(&z5, &["--epochs", "1", "--latent", "5"]);
        common::ok(&["export", s(&z5), "--gguf", s(&dir.join("z5-decoder.gguf"))]);
        for (r, name) in [(&run, "u"), (&crun, "c")] {
            for part in ["decoder", "encoder"] {
                common::ok(&[
                    "export",
                    s(r),
                    "--part",
                    part,
                    "--gguf",
                    s(&dir.join(format!("{name}-{part}.gguf"))),
                    "--onnx",
                    s(&dir.join(format!("{name}-{part}.onnx"))),
                ]);
            }
        }
        Fixtures { dir, run, crun }
    })
}

fn checkpoint_bytes(run: &Path) -> Vec<u8> {
    std::fs::read(run.join("checkpoint.safetensors")).unwrap()
}

#[test]
fn run_folders_and_resume_refuse_what_would_lose_or_mislead() {
    let f = fixtures();
    let run = s(&f.run);
    let before = checkpoint_bytes(&f.run);
    check_all(&[
        case(
            "-o on a folder that holds a run",
            &[&["train", "vae"][..], &SMALL, &["--epochs", "1", "-o", run]].concat(),
            &[
                "already holds a run",
                "2 epochs done",
                "--resume",
                "--force",
            ],
        ),
        case(
            "--resume with another learning rate and data",
            &[
                "train",
                "vae",
                "--resume",
                run,
                "--epochs",
                "4",
                "--lr",
                "0.5",
                "--data",
                "/nonexistent/mnist",
            ],
            &[
                "--lr (the run has 0.001",
                "given 0.5",
                "--data",
                "/nonexistent/mnist",
                "only its length (--epochs, --iters) and --threads",
            ],
        ),
        case(
            "--resume with another latent size",
            &[
                "train", "vae", "--resume", run, "--epochs", "4", "--latent", "8",
            ],
            &["--latent (the run has 3, given 8)"],
        ),
        case(
            "--resume to fewer epochs than done",
            &["train", "vae", "--resume", run, "--epochs", "1"],
            &["nothing to do", "finished 2 epochs", "--epochs is 1"],
        ),
        case(
            "--resume with nothing to train",
            &["train", "vae", "--resume", run],
            &["nothing to do", "finished 2 epochs"],
        ),
        case(
            "--resume of an empty folder",
            &["train", "vae", "--resume", s(&f.dir)],
            &["no run to continue", "checkpoint.safetensors"],
        ),
    ]);
    assert_eq!(
        before,
        checkpoint_bytes(&f.run),
        "a refused command changed the run"
    );
}

#[test]
fn flag_values_that_leave_nothing_usable_are_refused_by_flag_name() {
    let d = common::tmp("bad", "flags");
    let out = d.join("run");
    let t = |extra: &[&str]| -> Vec<String> {
        [&["train", "vae"][..], &SMALL, extra, &["-o", s(&out)]]
            .concat()
            .iter()
            .map(|a| a.to_string())
            .collect()
    };
    let mut cases = vec![];
    for (name, extra, expect) in [
        (
            "zero epochs",
            &["--epochs", "0"][..],
            &["--epochs: expected at least 1, found 0"][..],
        ),
        (
            "zero latent",
            &["--latent", "0"],
            &["--latent: expected at least 1, found 0"],
        ),
        (
            "zero batch",
            &["--batch", "0"],
            &["--batch: expected at least 1"],
        ),
        (
            "zero width",
            &["--hidden", "16,0"],
            &[
                "--hidden: expected every width to be at least 1",
                "position 2",
            ],
        ),
        (
            "five hidden layers",
            &["--hidden", "8,8,8,8,8"],
            &["--hidden: expected 1 to 4"],
        ),
        (
            "negative lr",
            &["--lr=-1"],
            &["--lr: expected a positive number, found -1"],
        ),
        (
            "NaN lr",
            &["--lr", "NaN"],
            &["--lr: expected a positive number, found NaN"],
        ),
        (
            "val-frac 1.5",
            &["--val-frac", "1.5"],
            &["--val-frac: expected 0 <= value < 1, found 1.5"],
        ),
        (
            "zero max-train",
            &["--max-train", "0"],
            &["--max-train: expected at least 1"],
        ),
        (
            "huge latent",
            &["--latent", "100000000"],
            &["--latent: expected at most 65536"],
        ),
        (
            "absurd threads",
            &["--threads", "100000"],
            &["--threads: expected 0 (all cores) to 1024"],
        ),
        (
            "unknown likelihood",
            &["--likelihood", "poisson"],
            &["--likelihood: expected bernoulli or gaussian"],
        ),
        (
            "negative clip",
            &["--clip=-2"],
            &["--clip: expected 0 or a positive number"],
        ),
        (
            "seven channels",
            &["--channels", "7"],
            &["--channels: expected 1 (grey)", "found 7"],
        ),
        (
            "zero image size",
            &["--image-size", "0x5"],
            &["--image-size: expected HxW", "0x5"],
        ),
        (
            "image size not HxW",
            &["--image-size", "big"],
            &["--image-size", "expected HxW such as 32x32"],
        ),
    ] {
        let mut c = case(name, &[], expect);
        c.args = t(extra);
        cases.push(c.absent(&out.join("config.json")));
    }
    check_all(&cases);

    let f = fixtures();
    let png = d.join("x.png");
    check_all(&[
        case(
            "sample --n 0",
            &[
                "sample",
                s(&f.dir.join("u-decoder.gguf")),
                "--n",
                "0",
                "-o",
                s(&png),
            ],
            &["--n: expected at least 1"],
        )
        .absent(&png),
        case(
            "sample --n huge",
            &[
                "sample",
                s(&f.dir.join("u-decoder.gguf")),
                "--n",
                "1000000000000",
                "-o",
                s(&png),
            ],
            &["--n: expected at most"],
        )
        .absent(&png),
        case(
            "sample --label out of range",
            &[
                "sample",
                s(&f.dir.join("c-decoder.gguf")),
                "--label",
                "10",
                "-o",
                s(&png),
            ],
            &["--label: expected 0 to 9, found 10"],
        )
        .absent(&png),
        case(
            "validate --n huge",
            &[
                "validate",
                s(&f.dir.join("u-decoder.onnx")),
                s(&f.dir.join("u-decoder.gguf")),
                "--n",
                "100000000000",
            ],
            &["--n: expected at most"],
        ),
        case(
            "bench --calls 0",
            &["bench", s(&f.dir.join("u-decoder.gguf")), "--calls", "0"],
            &["--calls and --rounds: expected at least 1"],
        ),
        case(
            "eval --k 0",
            &["eval", s(&f.run), "--k", "0"],
            &["--k: expected at least 1"],
        ),
        case(
            "latent --steps 1",
            &[
                "latent",
                s(&f.run),
                "interpolate",
                "--steps",
                "1",
                "-o",
                s(&png),
            ],
            &["--steps: expected at least 2, found 1"],
        )
        .absent(&png),
    ]);
}

#[test]
fn damaged_and_mismatched_models_say_what_is_wrong() {
    let f = fixtures();
    let d = common::tmp("bad", "models");
    let gguf = f.dir.join("u-decoder.gguf");
    let bytes = std::fs::read(&gguf).unwrap();
    // A flipped bit in the tensor data: the CRC no longer matches.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let bad_crc = d.join("flipped.gguf");
    std::fs::write(&bad_crc, &flipped).unwrap();
    // A damaged header: the tensor count set absurdly high.
    let mut header = bytes.clone();
    header[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    let bad_header = d.join("header.gguf");
    std::fs::write(&bad_header, &header).unwrap();
    let png = d.join("x.png");
    let cases = [
        case(
            "inspect on a CRC mismatch",
            &["inspect", s(&bad_crc)],
            &["flipped.gguf", "damaged", "crc"],
        ),
        case(
            "inspect --json on a CRC mismatch",
            &["inspect", "--json", s(&bad_crc)],
            &["flipped.gguf", "damaged"],
        ),
        case(
            "sample from a damaged header",
            &["sample", s(&bad_header), "-o", s(&png)],
            &[
                "header.gguf",
                "damaged count",
                "items of at least",
                "the file has",
            ],
        )
        .absent(&png),
        case(
            "validate an unconditional graph against a conditional GGUF",
            &[
                "validate",
                s(&f.dir.join("u-decoder.onnx")),
                s(&f.dir.join("c-decoder.gguf")),
            ],
            &[
                "not the same network",
                "input label: the GGUF's model has it",
                "conditional on 10 classes",
            ],
        ),
        case(
            "validate a decoder against another latent size",
            &[
                "validate",
                s(&f.dir.join("u-decoder.onnx")),
                s(&f.dir.join("z5-decoder.gguf")),
            ],
            &[
                "not the same network",
                "input z: the ONNX graph has [N, 3] float, the GGUF's model needs [N, 5] float",
            ],
        ),
        case(
            "validate an encoder graph against a decoder GGUF",
            &[
                "validate",
                s(&f.dir.join("u-encoder.onnx")),
                s(&f.dir.join("u-decoder.gguf")),
            ],
            &[
                "not the same network",
                "input z",
                "output mu: the ONNX graph has it",
            ],
        ),
        case(
            "bench a mismatched pair",
            &[
                "bench",
                s(&f.dir.join("c-decoder.gguf")),
                "--onnx",
                s(&f.dir.join("u-decoder.onnx")),
                "--rounds",
                "1",
                "--calls",
                "1",
            ],
            &["not the same network", "input label"],
        ),
        case(
            "sample from an encoder",
            &["sample", s(&f.dir.join("u-encoder.gguf")), "-o", s(&png)],
            &["u-encoder.gguf", "holds a VAE encoder", "--part decoder"],
        )
        .absent(&png),
        case(
            "validate a GGUF as ONNX",
            &["validate", s(&gguf), s(&gguf)],
            &["not an ONNX model"],
        ),
        case(
            "export from a GGUF, not a run",
            &["export", s(&gguf), "--gguf", s(&d.join("o.gguf"))],
            &["u-decoder.gguf", "best.safetensors"],
        )
        .absent(&d.join("o.gguf")),
        case(
            "eval of a folder with no run",
            &["eval", s(&d)],
            &["best.safetensors", "cannot read checkpoint"],
        ),
        case(
            "latent on a GGUF file",
            &["latent", s(&gguf), "interpolate", "-o", s(&png)],
            &["best.safetensors"],
        )
        .absent(&png),
        case(
            "a latent map of a 3-D latent space",
            &["latent", s(&f.crun), "map", "-o", s(&d.join("maps"))],
            &["map needs a 2-D latent space", "latent_dim 3", "--latent 2"],
        )
        .absent(&d.join("maps/latent_grid.png")),
        case(
            "provenance of a file edgegen did not write",
            &["provenance", s(&gguf)],
            &["u-decoder.gguf", "carries no edgegen provenance tag"],
        ),
    ];
    check_all(&cases);
}

/// Gzip of `data`.
fn gz(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn wav(path: &Path, channels: u16, rate: u32, bits: u16, float: bool, n: usize) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..n * channels as usize {
        let v = (i as f32 * 0.05).sin() * 0.5;
        if float {
            w.write_sample(v).unwrap();
        } else {
            w.write_sample((v * ((1i64 << (bits - 1)) - 1) as f32) as i32)
                .unwrap();
        }
    }
    w.finalize().unwrap();
}

#[test]
fn damaged_data_files_are_named_with_what_was_expected() {
    let d = common::tmp("bad", "data");
    // IDX: a gzip stream cut in half, and whole gzip of too few pixels.
    let mut idx = vec![0u8, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28];
    idx.extend(vec![7u8; 10 * 28 * 28]);
    let cut = d.join("cut");
    std::fs::create_dir_all(&cut).unwrap();
    let z = gz(&idx);
    std::fs::write(cut.join("train-images-idx3-ubyte.gz"), &z[..z.len() / 2]).unwrap();
    let short = d.join("short");
    std::fs::create_dir_all(&short).unwrap();
    std::fs::write(
        short.join("train-images-idx3-ubyte.gz"),
        gz(&idx[..16 + 100]),
    )
    .unwrap();
    // WAV: empty, a header cut short, and a data chunk cut short.
    let wavs = d.join("wav");
    std::fs::create_dir_all(&wavs).unwrap();
    let good = wavs.join("1_a_0.wav");
    wav(&good, 1, 8000, 16, false, 800);
    let bytes = std::fs::read(&good).unwrap();
    let one = |name: &str, b: &[u8]| {
        let dir = d.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("3_x_0.wav");
        std::fs::write(&p, b).unwrap();
        p
    };
    let empty = one("empty", b"");
    let header = one("header", &bytes[..20]);
    let text = d.join("empty.txt");
    std::fs::write(&text, b"").unwrap();
    let run = d.join("run");
    let png = d.join("p.png");
    check_all(&[
        case(
            "IDX with a cut gzip stream",
            &["data", "info", s(&cut)],
            &["train-images-idx3-ubyte.gz"],
        ),
        case(
            "IDX with too few pixels",
            &["data", "info", s(&short)],
            &["train-images-idx3-ubyte.gz", "7840"],
        ),
        case(
            "training on a cut IDX",
            &[
                &["train", "vae"][..],
                &SMALL,
                &["--epochs", "1", "--data", s(&cut), "-o", s(&run)],
            ]
            .concat(),
            &["train-images-idx3-ubyte.gz"],
        )
        .absent(&run.join("config.json")),
        case(
            "an empty WAV",
            &["data", "info", s(&empty)],
            &["3_x_0.wav", "not a readable WAV file"],
        ),
        case(
            "a WAV header cut short",
            &["data", "info", s(&header)],
            &["3_x_0.wav", "not a readable WAV file"],
        ),
        case(
            "an empty text file",
            &["data", "info", s(&text)],
            &["empty.txt", "empty"],
        ),
        case(
            "preview of an empty WAV",
            &["data", "preview", s(&empty), "-o", s(&png)],
            &["3_x_0.wav"],
        )
        .absent(&png),
        case(
            "a VAE on text",
            &[
                &["train", "vae"][..],
                &SMALL,
                &["--epochs", "1", "--data", s(&text), "-o", s(&run)],
            ]
            .concat(),
            &["empty.txt"],
        )
        .absent(&run.join("config.json")),
    ]);
}

#[test]
fn odd_but_valid_wavs_load() {
    // Not bad input: every WAV layout the loader promises is read, mono at
    // its own rate, so that only the cases above fail.
    let d = common::tmp("bad", "oddwav");
    wav(&d.join("0_a_0.wav"), 1, 8000, 8, false, 400);
    wav(&d.join("1_a_0.wav"), 1, 8000, 24, false, 400);
    wav(&d.join("2_a_0.wav"), 1, 8000, 32, true, 400);
    wav(&d.join("3_a_0.wav"), 2, 8000, 16, false, 400);
    wav(&d.join("4_a_0.wav"), 1, 44100, 16, false, 4410);
    let j: serde_json::Value =
        serde_json::from_str(&common::ok(&["data", "info", s(&d), "--json"])).unwrap();
    assert_eq!(j["clips"], 5);
    assert_eq!(
        j["sample_rates"],
        serde_json::json!({"8000": 4, "44100": 1})
    );
    assert_eq!(
        j["bits"],
        serde_json::json!({"8": 1, "16": 2, "24": 1, "32": 1})
    );
}

/// The binary with a file-size limit of 4 KiB, standing in for a full disk
/// without root: writes past it fail with EFBIG, as they fail with ENOSPC
/// on a full one. SIGXFSZ is ignored (that survives exec) so that the write
/// returns the error instead of killing the process.
fn on_a_full_disk() -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 8; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_edgegen"))
        .env_remove("EDGEGEN_DATA");
    cmd
}

#[test]
fn a_full_disk_and_an_unwritable_folder_lose_nothing() {
    let f = fixtures();
    let d = common::tmp("bad", "disk");
    let out = d.join("big.onnx");
    let c = case(
        "export onto a full disk",
        &["export", s(&f.run), "--onnx", s(&out)],
        &["big.onnx", "cannot write", "File too large"],
    )
    .absent(&out);
    run_case(&c, on_a_full_disk());

    // A run folder on a full disk: training fails at its first write, and a
    // run already there is untouched (--force writes elsewhere first).
    let copy = d.join("run");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(&f.run).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    let before = checkpoint_bytes(&copy);
    let args = [
        &["train", "vae"][..],
        &SMALL,
        &[
            "--hidden",
            "200",
            "--epochs",
            "1",
            "--force",
            "-o",
            s(&copy),
        ],
    ]
    .concat();
    run_case(
        &case(
            "train --force onto a full disk",
            &args,
            &["cannot write", "File too large"],
        ),
        on_a_full_disk(),
    );
    assert_eq!(before, checkpoint_bytes(&copy), "the old run was harmed");

    // A folder that cannot be created: its parent is a file (chmod would not
    // stop root, which CI is).
    let file = d.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let under = file.join("sub/x.png");
    check_all(&[
        case(
            "sample into a folder under a file",
            &["sample", s(&f.dir.join("u-decoder.gguf")), "-o", s(&under)],
            &["plain-file/sub", "cannot create folder"],
        ),
        case(
            "train into a folder under a file",
            &[
                &["train", "vae"][..],
                &SMALL,
                &["--epochs", "1", "-o", s(&file.join("run"))],
            ]
            .concat(),
            &["plain-file/run", "cannot create run folder"],
        ),
    ]);
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn without_onnx_runtime_bench_times_the_rest_and_demo_says_so_first() {
    let f = fixtures();
    let d = common::tmp("bad", "no-ort");
    let o = edgegen()
        .env("ORT_DYLIB_PATH", d.join("missing/libonnxruntime.so"))
        .args([
            "bench",
            s(&f.dir.join("u-decoder.gguf")),
            "--onnx",
            s(&f.dir.join("u-decoder.onnx")),
            "--calls",
            "3",
            "--rounds",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let engines: Vec<&str> = v["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["engine"].as_str().unwrap())
        .collect();
    assert_eq!(engines, ["edgegen-runtime", "tract"]);
    let skipped = v["skipped"][0].as_str().unwrap();
    assert!(
        skipped.starts_with("onnxruntime") && skipped.contains("ORT_DYLIB_PATH"),
        "{skipped}"
    );

    // The demo needs ONNX Runtime to validate; it says so before training.
    let out = d.join("demo");
    let mut cmd = edgegen();
    cmd.env("ORT_DYLIB_PATH", d.join("missing/libonnxruntime.so"));
    run_case(
        &case(
            "demo without ONNX Runtime",
            &["demo", "-o", s(&out)],
            &[
                "the demo validates every export against ONNX Runtime",
                "pip install onnxruntime",
            ],
        )
        .absent(&out),
        cmd,
    );
}

/// The GAN's own bad input: its flags, its generator files damaged or
/// paired with another family's graph, a label past its classes, and
/// commands that belong to another family.
#[test]
fn gan_flags_files_and_labels_say_what_is_wrong() {
    let f = fixtures();
    let d = common::tmp("bad", "gan");
    let g = d.join("g");
    let mut args = vec![
        "train",
        "gan",
        "--conditional",
        "--epochs",
        "1",
        "-o",
        s(&g),
    ];
    args.extend(common::TINY_GAN);
    common::ok(&args);
    let (gguf, onnx) = (d.join("gen.gguf"), d.join("gen.onnx"));
    common::ok(&["export", s(&g), "--gguf", s(&gguf), "--onnx", s(&onnx)]);
    let bytes = std::fs::read(&gguf).unwrap();
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let bad_crc = d.join("flipped.gguf");
    std::fs::write(&bad_crc, &flipped).unwrap();
    let cut = d.join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (png, y) = (d.join("x.png"), d.join("y"));
    let gan = |flag: &'static str, value: &'static str, expect: &'static str| {
        case(
            flag,
            &[
                "train",
                "gan",
                &format!("{flag}={value}"),
                "--max-train",
                "64",
                "-o",
                s(&y),
            ],
            &[expect],
        )
        .absent(&y.join("config.json"))
    };
    let cases = [
        gan("--latent", "0", "--latent: expected 1 to 65536, found 0"),
        gan("--g-width", "1", "--g-width: expected 2 to 4096, found 1"),
        gan("--d-width", "0", "--d-width: expected 1 to 4096, found 0"),
        gan("--d-lr", "0", "--d-lr: expected a positive number, found 0"),
        gan("--d-lr", "NaN", "--d-lr: expected a positive number"),
        gan(
            "--ema",
            "-0.5",
            "--ema: expected 0 (off) <= value < 1, found -0.5",
        ),
        // A negative number after a space is a value, not a flag.
        case(
            "--ema -0.5",
            &["train", "gan", "--ema", "-0.5", "-o", s(&y)],
            &["--ema: expected 0 (off) <= value < 1, found -0.5"],
        )
        .absent(&y.join("config.json")),
        gan(
            "--loss",
            "wgan",
            "--loss: expected ns or hinge, found \"wgan\"",
        ),
        case(
            "sample a label past the classes",
            &["sample", s(&gguf), "--label", "10", "-o", s(&png)],
            &["--label", "10"],
        )
        .absent(&png),
        case(
            "inspect a generator with a flipped bit",
            &["inspect", s(&bad_crc)],
            &["flipped.gguf", "damaged"],
        ),
        case(
            "sample from a generator cut in half",
            &["sample", s(&cut), "-o", s(&png)],
            &["cut.gguf"],
        )
        .absent(&png),
        case(
            "validate a generator graph against a VAE decoder",
            &["validate", s(&onnx), s(&f.dir.join("c-decoder.gguf"))],
            &["not the same network"],
        ),
        case(
            "bench a VAE graph against a generator",
            &[
                "bench",
                s(&gguf),
                "--onnx",
                s(&f.dir.join("u-decoder.onnx")),
                "--rounds",
                "1",
                "--calls",
                "1",
            ],
            &["not the same network"],
        ),
        case(
            "export a GAN's encoder",
            &[
                "export",
                s(&g),
                "--part",
                "encoder",
                "--gguf",
                s(&d.join("e.gguf")),
            ],
            &["--part", "a GAN exports its generator only"],
        )
        .absent(&d.join("e.gguf")),
        case(
            "a latent map of a GAN",
            &["latent", s(&g), "map", "-o", s(&d.join("maps"))],
            &["is a gan run", "`latent map` needs a vae"],
        ),
        case(
            "eval a GAN at a sampling temperature (audio only)",
            &["eval", s(&g), "--temperature", "0.7"],
            &["is a gan run", "--temperature needs an audio"],
        ),
        case(
            "eval a GAN with importance samples (VAE only)",
            &["eval", s(&g), "--k", "5"],
            &["is a gan run", "--k needs a vae"],
        ),
        case(
            "resume a GAN as a VAE",
            &["train", "vae", "--resume", s(&g), "--epochs", "2"],
            &["is a gan run", "`train vae` needs a vae"],
        ),
        case(
            "resume a GAN with another loss",
            &[
                "train",
                "gan",
                "--resume",
                s(&g),
                "--epochs",
                "2",
                "--loss",
                "hinge",
            ],
            &["--loss", "ns", "hinge"],
        ),
    ];
    check_all(&cases);
    // The run the cases pointed at is still whole.
    assert!(
        std::fs::metadata(g.join("checkpoint.safetensors"))
            .unwrap()
            .len()
            > 0
    );
}
