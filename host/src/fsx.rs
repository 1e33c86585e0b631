//! File writes that never leave a half-written file behind: the bytes go to
//! a temporary file beside the target, are flushed to disk, then renamed
//! over it. A crash mid-write loses the new file, never the old one.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// What a temporary file's name holds between the target's name and the
/// writing process's id.
const TEMP_MARK: &str = ".tmp";

/// Removes the temporary files a killed writer left in `dir` (a process
/// killed between create and rename cannot remove its own). Best effort:
/// they are never read, only untidy.
pub fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let stale = name.starts_with('.')
            && name
                .rsplit_once(TEMP_MARK)
                .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if stale {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create folder", dir.display()))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}{TEMP_MARK}{}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("{}: cannot write", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_and_leaves_no_temp() {
        let d = std::env::temp_dir().join(format!("edgegen-fsx-{}", std::process::id()));
        let p = d.join("sub/out.bin");
        super::write_atomic(&p, b"one").unwrap();
        super::write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.join("sub")).unwrap().count(), 1);
        assert!(super::write_atomic(&d.join("sub/out.bin/x"), b"x").is_err());
    }
}
