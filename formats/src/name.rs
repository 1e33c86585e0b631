//! Tensor names without tables: a fixed name (`enc.mu.weight`), or a
//! pattern with one `{i}` and the index that fills it (`dec.{i}.weight`
//! at 2 is `dec.2.weight`). Matching compares the pattern's two ends and
//! the digits between them, so neither a lookup nor an error needs a
//! buffer, an allocator or a table of every layer's name.

use core::fmt;

/// The placeholder a per-layer pattern holds once.
pub const PLACEHOLDER: &str = "{i}";

/// A tensor's name: a fixed string, or a pattern and its index.
///
/// ```
/// use edgegen_format::TensorName;
/// let n = TensorName::at("dec.{i}.weight", 12);
/// assert!(n.matches("dec.12.weight"));
/// assert!(!n.matches("dec.1.weight") && !n.matches("dec.012.weight"));
/// assert_eq!(format!("{n}"), "dec.12.weight");
/// assert!(TensorName::fixed("enc.mu.bias").matches("enc.mu.bias"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorName {
    pattern: &'static str,
    index: Option<u32>,
}

impl TensorName {
    /// A name without an index.
    pub const fn fixed(name: &'static str) -> Self {
        Self {
            pattern: name,
            index: None,
        }
    }

    /// Layer `i` of a per-layer `pattern` (which holds `{i}` once).
    pub const fn at(pattern: &'static str, i: usize) -> Self {
        Self {
            pattern,
            index: Some(if i > u32::MAX as usize {
                u32::MAX
            } else {
                i as u32
            }),
        }
    }

    /// The pattern (or the fixed name).
    pub const fn pattern(&self) -> &'static str {
        self.pattern
    }

    /// The index, for a per-layer name.
    pub const fn index(&self) -> Option<u32> {
        self.index
    }

    /// The pattern's text before and after its placeholder.
    fn ends(&self) -> Option<(&'static str, &'static str)> {
        let p = self.pattern;
        // A byte scan, not `str::find`: its substring searcher is 700
        // bytes of a firmware's flash.
        let n = PLACEHOLDER.len();
        let at = (0..p.len().saturating_sub(n - 1))
            .find(|&k| &p.as_bytes()[k..k + n] == PLACEHOLDER.as_bytes())?;
        // The placeholder is ASCII, so both ends are on char boundaries.
        Some((p.get(..at)?, p.get(at + n..)?))
    }

    /// Whether `s` is this name.
    pub fn matches(&self, s: &str) -> bool {
        let (Some(i), Some((pre, post))) = (self.index, self.ends()) else {
            return s == self.pattern;
        };
        let Some(mid) = s.strip_prefix(pre).and_then(|rest| rest.strip_suffix(post)) else {
            return false;
        };
        // The decimal digits of i, most significant first, without zeros
        // in front: compared from the end.
        let (mut v, digits) = (i, mid.as_bytes());
        for (k, &d) in digits.iter().rev().enumerate() {
            if !d.is_ascii_digit() || (v == 0 && k > 0) {
                return false;
            }
            if u32::from(d - b'0') != v % 10 {
                return false;
            }
            v /= 10;
        }
        !digits.is_empty() && v == 0
    }
}

impl fmt::Display for TensorName {
    /// The concrete name: `dec.2.weight`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.index, self.ends()) {
            (Some(i), Some((pre, post))) => write!(f, "{pre}{i}{post}"),
            _ => f.write_str(self.pattern),
        }
    }
}

/// For error messages: the concrete name, then the pattern and index that
/// made it, so a reader can find the layer in `formats/README.md`.
pub(crate) struct Described(pub TensorName);

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.index {
            Some(i) if self.0.ends().is_some() => {
                write!(f, "{} ({}, i = {i})", self.0, self.0.pattern)
            }
            _ => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_match_exactly() {
        let n = TensorName::at("gen.up.{i}.weight", 0);
        assert!(n.matches("gen.up.0.weight"));
        for bad in [
            "gen.up.00.weight",
            "gen.up..weight",
            "gen.up.1.weight",
            "gen.up.0.bias",
            "gen.up.0",
            "",
        ] {
            assert!(!n.matches(bad), "{bad}");
        }
        let n = TensorName::at("blk.{i}.attn_qkv.weight", 4_000_000_000);
        assert!(n.matches("blk.4000000000.attn_qkv.weight"));
        assert!(!n.matches("blk.400000000.attn_qkv.weight"));
        assert!(!n.matches("blk.14000000000.attn_qkv.weight"));
        extern crate std;
        use std::format;
        assert_eq!(
            format!("{}", Described(TensorName::at("dec.{i}.bias", 3))),
            "dec.3.bias (dec.{i}.bias, i = 3)"
        );
        assert_eq!(format!("{}", Described(TensorName::fixed("x"))), "x");
    }
}
