//! UTF-8 checking in little code.
//!
//! Every GGUF string (keys, values, tensor names) is checked when it is
//! read. `core::str::from_utf8` does that with a word-at-a-time fast path
//! for ASCII, 0.4 KB of a Cortex-M4 firmware's flash inlined into the
//! reader; the strings here are a few dozen bytes, so this one walks them
//! a character at a time in about a third of the code. It accepts exactly
//! what `from_utf8` accepts (RFC 3629: no overlong forms, no surrogates,
//! nothing past U+10FFFF), which the tests check exhaustively up to three
//! bytes and over every lead and boundary continuation byte at four.

/// `bytes` as a `str`, if they are UTF-8.
pub(crate) fn str_from(bytes: &[u8]) -> Option<&str> {
    if !is_utf8(bytes) {
        return None;
    }
    // SAFETY: `is_utf8` accepts exactly the valid UTF-8 sequences (the
    // tests hold it to `core::str::from_utf8`).
    Some(unsafe { core::str::from_utf8_unchecked(bytes) })
}

/// Whether `b` is UTF-8, one character at a time.
fn is_utf8(b: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&lead) = b.get(i) {
        // Continuation bytes after the lead, and the least code point that
        // needs that many (a smaller one is an overlong form).
        let (n, least) = match lead {
            0x00..=0x7f => {
                i += 1;
                continue;
            }
            0xc0..=0xdf => (1, 0x80),
            0xe0..=0xef => (2, 0x800),
            0xf0..=0xf7 => (3, 0x1_0000),
            _ => return false,
        };
        // The lead's payload: 5, 4 or 3 low bits.
        let mut c = (lead & (0x3f >> n)) as u32;
        for k in 1..=n {
            match b.get(i + k) {
                Some(&x) if x & 0xc0 == 0x80 => c = (c << 6) | (x & 0x3f) as u32,
                _ => return false,
            }
        }
        if c < least || c > 0x10_ffff || (0xd800..0xe000).contains(&c) {
            return false;
        }
        i += n + 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(b: &[u8]) {
        assert_eq!(
            str_from(b),
            core::str::from_utf8(b).ok(),
            "{b:02x?}: not from_utf8's answer"
        );
    }

    #[test]
    fn every_sequence_of_up_to_three_bytes_is_judged_as_core_does() {
        same(&[]);
        for a in 0..=255u8 {
            same(&[a]);
            for b in 0..=255u8 {
                same(&[a, b]);
                for c in 0..=255u8 {
                    let s = [a, b, c];
                    if is_utf8(&s) != core::str::from_utf8(&s).is_ok() {
                        panic!("{s:02x?}: not from_utf8's answer");
                    }
                }
            }
        }
    }

    #[test]
    fn four_byte_sequences_are_judged_as_core_does() {
        // Every lead from 0xe0 (a three-byte lead then a stray byte) up,
        // every second byte, and the boundary values of the last two.
        let edges = [
            0x00, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff,
        ];
        for a in 0xe0..=0xffu8 {
            for b in 0..=255u8 {
                for &c in &edges {
                    for &d in &edges {
                        same(&[a, b, c, d]);
                    }
                }
            }
        }
    }

    #[test]
    fn characters_inside_text_are_judged_as_core_does() {
        let chars = ["a", "é", "€", "𝄞", "\u{10ffff}", "\u{d7ff}", "\u{e000}"];
        for x in chars {
            for y in chars {
                let s = std::format!("ab{x}{y}c");
                same(s.as_bytes());
                // Cut anywhere: a character split at either end.
                for i in 0..s.len() {
                    same(&s.as_bytes()[i..]);
                    same(&s.as_bytes()[..i]);
                }
            }
        }
        // Surrogates, overlong forms and code points past U+10FFFF.
        for bad in [
            &b"\xed\xa0\x80"[..],
            b"\xed\xbf\xbf",
            b"\xc0\x80",
            b"\xc1\xbf",
            b"\xe0\x9f\xbf",
            b"\xf0\x8f\xbf\xbf",
            b"\xf4\x90\x80\x80",
            b"\xf5\x80\x80\x80",
            b"\x80",
            b"a\xe2\x82",
        ] {
            assert_eq!(str_from(bad), None, "{bad:02x?}");
            same(bad);
        }
    }
}
