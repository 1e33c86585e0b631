//! Training killed with SIGKILL at random moments, again and again: after
//! every kill the checkpoint is whole, `metrics.jsonl` has every epoch up to
//! the checkpoint's once, `--resume` goes on, and the finished run equals
//! one that was never interrupted, bit for bit.

mod common;

use edgegen::train::{checkpoint, vae};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A small run on the built-in sample: many short epochs, so that kills
/// land in training, in validation and in the writes between epochs.
const ARGS: [&str; 14] = [
    "--max-train",
    "300",
    "--hidden",
    "48",
    "--latent",
    "4",
    "--batch",
    "50",
    "--threads",
    "2",
    "--seed",
    "5",
    "--epochs",
    "40",
];

fn edgegen() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgegen"));
    c.env_remove("EDGEGEN_DATA");
    c
}

/// `(epoch, train_loss, val_loss)` of every line; panics on a line that is
/// not a whole record.
fn metrics(run: &Path) -> Vec<(u64, f64, f64)> {
    let Ok(text) = std::fs::read_to_string(run.join("metrics.jsonl")) else {
        return vec![];
    };
    text.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("metrics.jsonl line {l:?}: {e}"));
            (
                v["epoch"].as_u64().unwrap(),
                v["train_loss"].as_f64().unwrap(),
                v["val_loss"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// Every invariant a kill must not break; returns the checkpoint's epoch.
fn check_folder(run: &Path) -> usize {
    let ck = run.join("checkpoint.safetensors");
    let done = if ck.exists() {
        let c = checkpoint::load(&ck).expect("the checkpoint is whole after a kill");
        vae::load(&c, "test")
            .expect("its tensors are whole")
            .1
            .epoch
    } else {
        0
    };
    let m = metrics(run);
    let epochs: Vec<u64> = m.iter().map(|r| r.0).collect();
    let want: Vec<u64> = (1..=epochs.len() as u64).collect();
    assert_eq!(epochs, want, "metrics.jsonl lost or repeated an epoch");
    // Metrics are written before the checkpoint: at most one epoch ahead.
    assert!(
        epochs.len() == done || epochs.len() == done + 1,
        "metrics.jsonl has {} epochs, the checkpoint {done}",
        epochs.len()
    );
    if run.join("best.safetensors").exists() {
        let c =
            checkpoint::load(&run.join("best.safetensors")).expect("best is whole after a kill");
        vae::load(&c, "test").expect("its tensors are whole");
    }
    done
}

/// xorshift64*: the kill times, repeatable from a fixed seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn sigkill_at_random_points_never_loses_or_repeats_an_epoch() {
    let reference = common::tmp("resume", "reference");
    let out = edgegen()
        .args(["train", "vae", "--quiet"])
        .args(ARGS)
        .arg("-o")
        .arg(&reference)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // How long a whole run takes here sets the range of kill times.
    let t = Instant::now();
    let probe = common::tmp("resume", "probe");
    let status = edgegen()
        .args(["train", "vae", "--quiet"])
        .args(ARGS)
        .arg("-o")
        .arg(&probe)
        .status()
        .unwrap();
    assert!(status.success());
    let whole = t.elapsed().as_millis() as u64;

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut kills = 0;
    // Runs until 20 kills have landed: each killed run is driven to its end
    // by --resume and compared with the reference.
    for round in 0.. {
        assert!(round < 20, "fewer than 20 kills after {round} runs");
        let run = common::tmp("resume", &format!("killed-{round}"));
        let progress = kill_and_resume(&run, whole, &mut rng);
        println!(
            "run {round}: {} kills survived; checkpoint epoch after each: {progress:?}",
            progress.len()
        );
        kills += progress.len();
        assert!(
            progress.windows(2).all(|w| w[0] <= w[1]),
            "a resume went backwards: {progress:?}"
        );
        assert_eq!(check_folder(&run), 40);
        let state = |d: &Path| {
            let c = checkpoint::load(&d.join("checkpoint.safetensors")).unwrap();
            vae::load(&c, "test").unwrap().1
        };
        let (a, b) = (state(&reference), state(&run));
        assert_eq!(
            a.groups, b.groups,
            "the killed run's weights or moments differ"
        );
        assert_eq!((a.step, a.rng), (b.step, b.rng));
        assert_eq!(metrics(&reference), metrics(&run));
        // No temporary file outlives the run.
        let left: Vec<String> = std::fs::read_dir(&run)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        if kills >= 20 {
            break;
        }
    }
    println!("{kills} kills survived in all");
}

/// Starts a run in `run` and kills it at random moments within a fifth of
/// `whole` milliseconds, resuming after each kill, until it finishes;
/// returns the checkpoint's epoch after each kill.
fn kill_and_resume(run: &Path, whole: u64, rng: &mut Rng) -> Vec<usize> {
    let mut progress = vec![];
    for attempt in 0.. {
        assert!(attempt < 400, "no end after {attempt} attempts");
        let started = run.join("config.json").exists();
        // A kill after the last checkpoint leaves nothing to resume.
        if started && check_folder(run) == 40 {
            break;
        }
        let mut cmd = edgegen();
        cmd.args(["train", "vae", "--quiet"]);
        if started {
            cmd.arg("--resume").arg(run);
        } else {
            cmd.args(ARGS).arg("-o").arg(run);
        }
        let mut child = cmd.spawn().unwrap();
        let deadline = Duration::from_millis(10 + rng.next() % (whole / 5).max(20));
        let t = Instant::now();
        let finished = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if t.elapsed() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        match finished {
            Some(s) => {
                assert!(s.success(), "a resumed run failed: {s:?}");
                break;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                progress.push(check_folder(run));
            }
        }
    }
    progress
}
