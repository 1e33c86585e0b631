//! IDX files (the MNIST format), raw or gzipped.
//!
//! Layout: two zero bytes, a type byte (0x08 = unsigned byte, the only type
//! images and labels use), the number of dimensions, each dimension as a
//! big-endian u32, then the data in row-major order.

use anyhow::{Context, Result, bail};
use std::io::Read;
use std::path::Path;

/// An unsigned-byte IDX array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Row-major data.
    pub data: Vec<u8>,
}

/// Reads an IDX file, gunzipping it if it starts with the gzip magic.
pub fn read(path: &Path) -> Result<Idx> {
    let raw = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    parse(&raw).with_context(|| format!("{}: not a valid IDX file", path.display()))
}

/// Parses IDX bytes, raw or gzipped.
pub fn parse(raw: &[u8]) -> Result<Idx> {
    let bytes;
    let b: &[u8] = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw)
            .read_to_end(&mut out)
            .context("gzip stream is corrupt")?;
        bytes = out;
        &bytes
    } else {
        raw
    };
    if b.len() < 4 {
        bail!("header: expected at least 4 bytes, found {}", b.len());
    }
    if b[0] != 0 || b[1] != 0 {
        bail!(
            "magic: expected bytes 00 00, found {:02x} {:02x}",
            b[0],
            b[1]
        );
    }
    if b[2] != 0x08 {
        bail!("type: expected 0x08 (unsigned byte), found {:#04x}", b[2]);
    }
    let ndim = b[3] as usize;
    if ndim == 0 {
        bail!("dimensions: expected at least 1, found 0");
    }
    let header = 4 + 4 * ndim;
    if b.len() < header {
        bail!(
            "header: {ndim} dimensions need {header} bytes, the file has {}",
            b.len()
        );
    }
    let dims: Vec<usize> = b[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .context("dimensions: their product overflows")?;
    let body = &b[header..];
    if body.len() != n {
        bail!(
            "data: dimensions {dims:?} need {n} bytes, found {}",
            body.len()
        );
    }
    Ok(Idx {
        dims,
        data: body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    #[test]
    fn parses_raw_and_gzip() {
        let raw = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let a = parse(&raw).unwrap();
        assert_eq!(a.dims, [2, 3]);
        assert_eq!(a.data, [1, 2, 3, 4, 5, 6]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        assert_eq!(parse(&gz.finish().unwrap()).unwrap(), a);
    }

    #[test]
    fn errors_name_the_field() {
        let e = |b: &[u8]| format!("{:#}", parse(b).unwrap_err());
        assert!(e(&[0, 0]).contains("header"));
        assert!(e(&[1, 0, 8, 1, 0, 0, 0, 0]).contains("magic"));
        assert!(e(&[0, 0, 0x0d, 1, 0, 0, 0, 0]).contains("type: expected 0x08"));
        assert!(e(&idx(&[2, 3], &[1, 2])).contains("need 6 bytes, found 2"));
        assert!(e(&[0x1f, 0x8b, 0, 0]).contains("gzip"));
        assert!(e(&idx(&[u32::MAX, u32::MAX, u32::MAX], &[])).contains("overflows"));
    }
}
