//! Text: a UTF-8 file read as byte tokens (vocabulary 256), so the text
//! model needs no tokenizer on the device.

use anyhow::{Context, Result, bail};
use std::path::Path;

/// A text corpus as bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSet {
    /// The file's bytes, known to be valid UTF-8.
    pub bytes: Vec<u8>,
}

impl TextSet {
    /// Checks that `bytes` are UTF-8; `name` is used in the error, which
    /// gives the line and column of the first bad byte.
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<Self> {
        if let Err(e) = std::str::from_utf8(&bytes) {
            let at = e.valid_up_to();
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            let col = at
                - bytes[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1)
                + 1;
            bail!(
                "{name}: byte {at} (line {line}, column {col}) is {:#04x}: expected UTF-8 text",
                bytes[at]
            );
        }
        if bytes.is_empty() {
            bail!("{name}: the file is empty");
        }
        Ok(Self { bytes })
    }

    /// The corpus as a string.
    pub fn as_str(&self) -> &str {
        // Checked in from_bytes.
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }

    /// Splits into leading `1 - val_frac` and trailing `val_frac` parts, as
    /// nanoGPT does: contiguous, so no sequence straddles the two.
    pub fn split(&self, val_frac: f64) -> (&[u8], &[u8]) {
        let n = ((self.bytes.len() as f64) * (1.0 - val_frac)).round() as usize;
        self.bytes.split_at(n.min(self.bytes.len()))
    }
}

/// Reads a UTF-8 text file.
pub fn load(path: &Path) -> Result<TextSet> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    TextSet::from_bytes(bytes, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_checked_with_position() {
        let e = TextSet::from_bytes(b"ok\nab\xffc".to_vec(), "t.txt").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.txt: byte 5 (line 2, column 3) is 0xff: expected UTF-8 text"
        );
        let t = TextSet::from_bytes("héllo wörld".as_bytes().to_vec(), "t").unwrap();
        let (a, b) = t.split(0.1);
        assert_eq!(a.len() + b.len(), 13);
        assert_eq!(b.len(), 1);
    }
}
