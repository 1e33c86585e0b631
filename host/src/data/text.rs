//! Text: UTF-8 files read as symbols. A single file is one corpus; a folder
//! of `.txt` files, or of sub-folders of them, is one class per file or
//! sub-folder (for example one author per file), which the conditional
//! text model learns as a class embedding.
//!
//! The vocabulary is the 256 byte values by default, so the device needs no
//! tokenizer and any text can be fed to a model; a character vocabulary
//! learned from the corpus ([`Vocab::Chars`]) is the option that makes the
//! output layer smaller when the corpus uses few characters.

use super::images::list_dir;
use anyhow::{Context, Result, bail};
use std::ops::Range;
use std::path::Path;

/// The built-in text sample's name; see `data/README.md`.
pub const BUILTIN_SHAKESPEARE: &str = "builtin:shakespeare-sample";

/// The first 100,000 bytes of Tiny Shakespeare; see `data/README.md`.
const BUILTIN_TEXT: &[u8] = include_bytes!("../../../data/text-sample/shakespeare.txt");

/// A text corpus: every class's text, one after another.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSet {
    /// All the text, valid UTF-8; a class's files are joined by a newline.
    pub bytes: Vec<u8>,
    /// Class names (file stems or folder names), sorted; empty for a single
    /// file.
    pub classes: Vec<String>,
    /// Each class's range of `bytes` (one range, the whole, for a single
    /// file).
    pub spans: Vec<Range<usize>>,
}

impl TextSet {
    /// One unlabeled corpus. Checks that `bytes` are UTF-8; `name` is used
    /// in the error, which gives the line and column of the first bad byte.
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<Self> {
        check_utf8(&bytes, name)?;
        if bytes.is_empty() {
            bail!("{name}: the file is empty");
        }
        let n = bytes.len();
        Ok(Self {
            bytes,
            classes: vec![],
            spans: std::iter::once(0..n).collect(),
        })
    }

    /// The corpus as a string.
    pub fn as_str(&self) -> &str {
        // Checked when loaded.
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }

    /// Class `k`'s text.
    pub fn class_text(&self, k: usize) -> &str {
        let r = self.spans[k].clone();
        std::str::from_utf8(&self.bytes[r]).unwrap_or_default()
    }

    /// Splits a text into its leading `1 - val_frac` and trailing `val_frac`
    /// parts, as nanoGPT does: contiguous, so no sequence straddles the
    /// two. The cut falls on a character boundary.
    pub fn split(text: &str, val_frac: f64) -> (&str, &str) {
        let mut n = ((text.len() as f64) * (1.0 - val_frac)).round() as usize;
        n = n.min(text.len());
        while !text.is_char_boundary(n) {
            n -= 1;
        }
        text.split_at(n)
    }
}

fn check_utf8(bytes: &[u8], name: &str) -> Result<()> {
    if let Err(e) = std::str::from_utf8(bytes) {
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
    Ok(())
}

/// The built-in sample: 100,000 bytes of Tiny Shakespeare.
pub fn builtin() -> Result<TextSet> {
    TextSet::from_bytes(BUILTIN_TEXT.to_vec(), BUILTIN_SHAKESPEARE)
}

/// Reads a UTF-8 text file.
pub fn load(path: &Path) -> Result<TextSet> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    TextSet::from_bytes(bytes, &path.display().to_string())
}

fn is_txt(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("txt"))
}

/// Whether `dir` holds `.txt` files, or sub-folders that do.
pub fn is_text_dir(dir: &Path) -> bool {
    let Ok((dirs, files)) = list_dir(dir) else {
        return false;
    };
    files.iter().any(|f| is_txt(f))
        || dirs
            .iter()
            .any(|d| list_dir(d).is_ok_and(|(_, f)| f.iter().any(|f| is_txt(f))))
}

/// Loads a folder of classes: its `.txt` files, one class each (named by
/// the file's stem), or else its sub-folders, one class each (their `.txt`
/// files joined by newlines, in name order). Both at once is an error, as
/// the classes would be ambiguous.
pub fn load_dir(dir: &Path) -> Result<TextSet> {
    let (dirs, files) = list_dir(dir)?;
    let files: Vec<_> = files.into_iter().filter(|f| is_txt(f)).collect();
    let class_dirs: Vec<_> = dirs
        .into_iter()
        .filter(|d| list_dir(d).is_ok_and(|(_, f)| f.iter().any(|f| is_txt(f))))
        .collect();
    let groups: Vec<(String, Vec<std::path::PathBuf>)> = match (
        files.is_empty(),
        class_dirs.is_empty(),
    ) {
        (false, false) => bail!(
            "{}: holds both .txt files and sub-folders of them; expected one class per file, or one class per sub-folder",
            dir.display()
        ),
        (true, true) => bail!(
            "{}: no .txt files here or one folder down: expected one .txt file per class, or one sub-folder of them per class",
            dir.display()
        ),
        (false, true) => files
            .into_iter()
            .map(|f| {
                let name = f
                    .file_stem()
                    .map_or(String::new(), |s| s.to_string_lossy().into_owned());
                (name, vec![f])
            })
            .collect(),
        (true, false) => class_dirs
            .into_iter()
            .map(|d| {
                let name = d
                    .file_name()
                    .map_or(String::new(), |s| s.to_string_lossy().into_owned());
                let (_, f) = list_dir(&d)?;
                Ok((name, f.into_iter().filter(|f| is_txt(f)).collect()))
            })
            .collect::<Result<_>>()?,
    };
    if groups.len() > u16::MAX as usize {
        bail!(
            "{}: {} classes; expected at most 65535",
            dir.display(),
            groups.len()
        );
    }
    let mut set = TextSet {
        bytes: vec![],
        classes: vec![],
        spans: vec![],
    };
    for (name, files) in groups {
        let start = set.bytes.len();
        for (i, f) in files.iter().enumerate() {
            let b = std::fs::read(f).with_context(|| format!("{}: cannot read", f.display()))?;
            check_utf8(&b, &f.display().to_string())?;
            if i > 0 {
                set.bytes.push(b'\n');
            }
            set.bytes.extend_from_slice(&b);
        }
        if set.bytes.len() == start {
            bail!(
                "{}: class {name:?} has no text (its files are empty)",
                dir.display()
            );
        }
        set.classes.push(name);
        set.spans.push(start..set.bytes.len());
    }
    Ok(set)
}

/// How text becomes symbols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vocab {
    /// The 256 byte values of UTF-8.
    Bytes,
    /// The distinct characters of the training corpus, in code-point
    /// order: symbol `i` is `chars[i]`.
    Chars(Vec<char>),
}

impl Vocab {
    /// The vocabulary `kind` (`bytes` or `chars`) for `text`.
    pub fn new(kind: &str, text: &str) -> Result<Self> {
        match kind {
            "bytes" => Ok(Vocab::Bytes),
            "chars" => {
                let mut c: Vec<char> = text.chars().collect();
                c.sort_unstable();
                c.dedup();
                Ok(Vocab::Chars(c))
            }
            _ => bail!("--vocab: expected bytes or chars, found {kind:?}"),
        }
    }

    /// `bytes` or `chars`.
    pub fn kind(&self) -> &'static str {
        match self {
            Vocab::Bytes => "bytes",
            Vocab::Chars(_) => "chars",
        }
    }

    /// The number of symbols.
    pub fn len(&self) -> usize {
        match self {
            Vocab::Bytes => 256,
            Vocab::Chars(c) => c.len(),
        }
    }

    /// Never true: a vocabulary has at least one symbol.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `text` as symbols. A character outside a character vocabulary is an
    /// error naming it and where it is (`what` names the text).
    pub fn encode(&self, text: &str, what: &str) -> Result<Vec<u32>> {
        match self {
            Vocab::Bytes => Ok(text.bytes().map(u32::from).collect()),
            Vocab::Chars(c) => text
                .char_indices()
                .map(|(at, ch)| {
                    c.binary_search(&ch).map(|i| i as u32).map_err(|_| {
                        anyhow::anyhow!(
                            "{what}: the character {ch:?} (byte {at}) is not in the model's vocabulary of {} characters",
                            c.len()
                        )
                    })
                })
                .collect(),
        }
    }

    /// The bytes of symbol `s` (one byte, or a character's UTF-8); nothing
    /// for a symbol past the vocabulary.
    pub fn bytes_of(&self, s: u32, out: &mut Vec<u8>) {
        match self {
            Vocab::Bytes => {
                if s < 256 {
                    out.push(s as u8)
                }
            }
            Vocab::Chars(c) => {
                if let Some(ch) = c.get(s as usize) {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }

    /// `symbols` as text, with U+FFFD for bytes that do not form UTF-8.
    pub fn decode(&self, symbols: &[u32]) -> String {
        let mut b = vec![];
        for &s in symbols {
            self.bytes_of(s, &mut b);
        }
        String::from_utf8_lossy(&b).into_owned()
    }
}

/// Turns a stream of bytes into whole UTF-8 characters: a byte model can
/// emit a code point one byte at a time, and a terminal should only ever
/// see whole ones. Bytes that cannot become UTF-8 come out as U+FFFD.
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Adds `bytes`; returns the text that is now whole.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out += s;
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let ok = e.valid_up_to();
                    // Checked by from_utf8 up to `ok`.
                    out += std::str::from_utf8(&self.pending[..ok]).unwrap_or_default();
                    match e.error_len() {
                        // An incomplete character at the end: wait for more.
                        None => {
                            self.pending.drain(..ok);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..ok + bad);
                        }
                    }
                }
            }
        }
    }

    /// The end of the stream: an unfinished character becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let s = if self.pending.is_empty() {
            String::new()
        } else {
            char::REPLACEMENT_CHARACTER.to_string()
        };
        self.pending.clear();
        s
    }
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
        let (a, b) = TextSet::split("héllo wörld", 0.1);
        assert_eq!(a.len() + b.len(), 13);
        assert_eq!(b, "d");
        // The cut never splits a character.
        let (a, b) = TextSet::split("aéé", 0.5);
        assert_eq!((a, b), ("aé", "é"));
    }

    #[test]
    fn vocabularies_round_trip_and_name_strangers() {
        let v = Vocab::new("chars", "hello world").unwrap();
        assert_eq!(v.len(), 8);
        let s = v.encode("held", "p").unwrap();
        assert_eq!(v.decode(&s), "held");
        let e = v.encode("hex", "--prompt").unwrap_err().to_string();
        assert!(e.contains("--prompt") && e.contains("'x'"), "{e}");
        let b = Vocab::new("bytes", "").unwrap();
        assert_eq!(b.encode("é", "p").unwrap(), [0xc3, 0xa9]);
        assert!(Vocab::new("words", "").is_err());
    }

    #[test]
    fn the_stream_emits_whole_characters_only() {
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(&[b'a', 0xc3]), "a");
        assert_eq!(s.push(&[0xa9]), "é");
        assert_eq!(s.push(&[0xff, b'b']), "\u{fffd}b");
        assert_eq!(s.push(&[0xe2, 0x82]), "");
        assert_eq!(s.finish(), "\u{fffd}");
    }

    #[test]
    fn folders_are_classes() {
        let d = std::env::temp_dir().join(format!("edgegen-textdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("flat")).unwrap();
        std::fs::write(d.join("flat/b.txt"), "bbb").unwrap();
        std::fs::write(d.join("flat/a.txt"), "aa").unwrap();
        let t = load_dir(&d.join("flat")).unwrap();
        assert_eq!(t.classes, ["a", "b"]);
        assert_eq!((t.class_text(0), t.class_text(1)), ("aa", "bbb"));
        std::fs::create_dir_all(d.join("nested/x")).unwrap();
        std::fs::write(d.join("nested/x/1.txt"), "one").unwrap();
        std::fs::write(d.join("nested/x/2.txt"), "two").unwrap();
        let t = load_dir(&d.join("nested")).unwrap();
        assert_eq!((t.classes.len(), t.class_text(0)), (1, "one\ntwo"));
        std::fs::write(d.join("nested/stray.txt"), "s").unwrap();
        let e = load_dir(&d.join("nested")).unwrap_err().to_string();
        assert!(e.contains("both .txt files and sub-folders"), "{e}");
        std::fs::write(d.join("flat/c.txt"), "").unwrap();
        let e = load_dir(&d.join("flat")).unwrap_err().to_string();
        assert!(e.contains("class \"c\" has no text"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
