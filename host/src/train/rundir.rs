//! Run-folder safety. A run folder is the user's work: a new run never
//! overwrites one by accident, and `--force` deletes the old run only once
//! the new run has a checkpoint of its own, so that a crash or a kill in the
//! first epoch still leaves one whole run behind.

use super::run::files;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Every file a run writes into its folder. Any one of them marks the folder
/// as holding a run.
pub const RUN_FILES: [&str; 9] = [
    files::CHECKPOINT,
    files::BEST,
    files::CONFIG,
    files::METRICS,
    files::LOSS_PNG,
    files::SAMPLES_PNG,
    files::RECON_PNG,
    files::TEST_JSON,
    files::CONFUSION_PNG,
];

/// The folder inside a run folder where a `--force` run writes until its
/// first checkpoint exists.
const STAGE: &str = ".edgegen-new-run";

/// The run files `dir` holds, in [`RUN_FILES`] order.
pub fn run_files_in(dir: &Path) -> Vec<&'static str> {
    RUN_FILES
        .into_iter()
        .filter(|f| dir.join(f).exists())
        .collect()
}

/// Where a run writes: its folder, or for a fresh run over an existing one
/// with `--force`, a staging folder inside it until [`Target::commit`].
///
/// Until its first checkpoint a fresh run owns nothing the user could lose:
/// if it fails before then (a full disk, bad data found late), dropping
/// the target removes what it wrote, so that no partial run is left
/// behind. A run killed outright leaves its `config.json`, which
/// `--resume` starts again from.
#[derive(Debug)]
pub struct Target {
    out: PathBuf,
    dir: PathBuf,
    /// The first checkpoint exists: nothing is removed any more.
    committed: bool,
    /// The run folder did not exist before this run.
    created_out: bool,
}

impl Target {
    /// The folder of a run that continues (`--resume`).
    pub fn existing(out: &Path) -> Self {
        Self {
            out: out.to_path_buf(),
            dir: out.to_path_buf(),
            committed: true,
            created_out: false,
        }
    }

    /// The folder of a fresh run. Refuses a folder that holds a run unless
    /// `force`, naming the run and both ways on.
    pub fn fresh(out: &Path, force: bool) -> Result<Self> {
        let found = run_files_in(out);
        if found.is_empty() {
            let created_out = !out.exists();
            std::fs::create_dir_all(out)
                .with_context(|| format!("{}: cannot create run folder", out.display()))?;
            return Ok(Self {
                out: out.to_path_buf(),
                dir: out.to_path_buf(),
                committed: false,
                created_out,
            });
        }
        if !force {
            let epochs = super::checkpoint::read_meta(&out.join(files::CHECKPOINT))
                .map(|m| format!("{} epochs done, ", m.epoch))
                .unwrap_or_default();
            bail!(
                "{}: already holds a run ({epochs}{}); continue it with `edgegen train vae --resume {} --epochs N`, \
                 or replace it with --force (the old run is deleted only once the new run's first checkpoint is written)",
                out.display(),
                found.join(", "),
                out.display()
            );
        }
        let dir = out.join(STAGE);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("{}: cannot clear", dir.display())),
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        Ok(Self {
            out: out.to_path_buf(),
            dir,
            committed: false,
            created_out: false,
        })
    }

    /// Where the run's files go now.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Called once a checkpoint exists in [`Target::dir`]: a staged run
    /// replaces the old one (its files are deleted, the new ones moved in,
    /// the checkpoint last) and writes into the run folder from then on.
    pub fn commit(&mut self) -> Result<()> {
        if self.dir == self.out {
            self.committed = true;
            return Ok(());
        }
        for f in RUN_FILES {
            let p = self.out.join(f);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("{}: cannot delete", p.display())),
            }
        }
        // The checkpoint moves last: until it is in place, the folder does
        // not look resumable.
        let mut order: Vec<&str> = RUN_FILES.to_vec();
        order.retain(|f| *f != files::CHECKPOINT);
        order.push(files::CHECKPOINT);
        for f in order {
            let from = self.dir.join(f);
            if from.exists() {
                std::fs::rename(&from, self.out.join(f)).with_context(|| {
                    format!(
                        "{}: cannot move into {}",
                        from.display(),
                        self.out.display()
                    )
                })?;
            }
        }
        std::fs::remove_dir_all(&self.dir)
            .with_context(|| format!("{}: cannot remove", self.dir.display()))?;
        self.dir = self.out.clone();
        self.committed = true;
        Ok(())
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // Best effort: what fails here was only ever this run's own.
        if self.dir != self.out {
            let _ = std::fs::remove_dir_all(&self.dir);
            return;
        }
        for f in RUN_FILES {
            let _ = std::fs::remove_file(self.dir.join(f));
        }
        crate::fsx::remove_stale_temps(&self.dir);
        if self.created_out {
            let _ = std::fs::remove_dir(&self.out);
        }
    }
}
