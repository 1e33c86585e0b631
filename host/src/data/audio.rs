//! Audio: WAV files of any rate and bit depth, mixed to mono f32 in [-1, 1],
//! resampled to a target rate, then companded to 8-bit mu-law for the
//! autoregressive audio model.
//!
//! Labels come from the folder a clip is in, or else from the file name up to
//! its first `_` (the Free Spoken Digit Dataset's `{digit}_{speaker}_{take}`).

use anyhow::{Context, Result, bail};
use std::f64::consts::PI;
use std::path::{Path, PathBuf};

/// One decoded clip.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    /// Where it came from.
    pub path: PathBuf,
    /// Index into [`AudioSet::classes`], if the set is labeled.
    pub label: Option<u32>,
    /// The second `_` field of the file name, if any (FSDD's speaker).
    pub speaker: Option<String>,
    /// The third `_` field, if numeric (FSDD's take).
    pub take: Option<u32>,
    /// The file's sample rate.
    pub rate: u32,
    /// The file's channel count.
    pub channels: u16,
    /// The file's bits per sample.
    pub bits: u16,
    /// Mono samples at `rate`, in [-1, 1].
    pub samples: Vec<f32>,
}

impl Clip {
    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / self.rate as f64
    }
}

/// A set of clips.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSet {
    /// The clips, sorted by path.
    pub clips: Vec<Clip>,
    /// Class names, sorted; empty if unlabeled.
    pub classes: Vec<String>,
}

/// Reads a WAV file as mono f32 at its own rate. Integer PCM of 8 to 32
/// bits and 32-bit float are accepted; channels are averaged.
pub fn read_wav(path: &Path) -> Result<(hound::WavSpec, Vec<f32>)> {
    let f = std::fs::File::open(path)
        .with_context(|| format!("{}: not a readable WAV file", path.display()))?;
    decode_wav(std::io::BufReader::new(f), &path.display().to_string())
}

/// [`read_wav`] of bytes in memory (the built-in sample's); `name` is
/// what errors call them.
pub fn read_wav_bytes(bytes: &[u8], name: &str) -> Result<(hound::WavSpec, Vec<f32>)> {
    decode_wav(std::io::Cursor::new(bytes), name)
}

fn decode_wav(src: impl std::io::Read, name: &str) -> Result<(hound::WavSpec, Vec<f32>)> {
    let mut r =
        hound::WavReader::new(src).with_context(|| format!("{name}: not a readable WAV file"))?;
    let spec = r.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        bail!(
            "{name}: header: channels = {}, sample rate = {} (both must be non-zero)",
            spec.channels,
            spec.sample_rate
        );
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => {
            if spec.bits_per_sample != 32 {
                bail!(
                    "{name}: bits per sample: expected 32 for float WAV, found {}",
                    spec.bits_per_sample
                );
            }
            r.samples::<f32>()
                .collect::<std::result::Result<_, _>>()
                .with_context(|| format!("{name}: sample data is truncated or corrupt"))?
        }
        hound::SampleFormat::Int => {
            if !(8..=32).contains(&spec.bits_per_sample) {
                bail!(
                    "{name}: bits per sample: expected 8 to 32, found {}",
                    spec.bits_per_sample
                );
            }
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.map(|s| s as f32 * scale))
                .collect::<std::result::Result<_, _>>()
                .with_context(|| format!("{name}: sample data is truncated or corrupt"))?
        }
    };
    let c = spec.channels as usize;
    let mono = interleaved
        .chunks_exact(c)
        .map(|f| f.iter().sum::<f32>() / c as f32)
        .collect();
    Ok((spec, mono))
}

/// Resamples with a Hann-windowed sinc of 32 zero crossings each side,
/// low-passed at the lower of the two Nyquist rates, so that downsampling
/// does not alias.
pub fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || x.is_empty() {
        return x.to_vec();
    }
    let ratio = to as f64 / from as f64;
    let cutoff = ratio.min(1.0); // as a fraction of the input Nyquist rate
    let half_width = 32.0 / cutoff; // kernel half-width in input samples
    let n_out = ((x.len() as f64) * ratio).round() as usize;
    (0..n_out)
        .map(|i| {
            let t = i as f64 / ratio;
            let lo = (t - half_width).ceil().max(0.0) as usize;
            let hi = ((t + half_width).floor() as usize).min(x.len() - 1);
            let mut acc = 0.0f64;
            for (j, &v) in x.iter().enumerate().take(hi + 1).skip(lo) {
                let d = t - j as f64;
                let arg = d * cutoff;
                let sinc = if arg.abs() < 1e-9 {
                    1.0
                } else {
                    (PI * arg).sin() / (PI * arg)
                };
                let win = 0.5 + 0.5 * (PI * d / half_width).cos();
                acc += v as f64 * sinc * win * cutoff;
            }
            acc as f32
        })
        .collect()
}

/// mu for 8-bit mu-law, as in G.711 and WaveNet.
pub const MU: f32 = 255.0;

/// Continuous mu-law companding to 256 levels:
/// `y = sign(x) ln(1 + mu |x|) / ln(1 + mu)`, then `q = round((y + 1) / 2 * 255)`.
pub fn mulaw_encode(x: f32) -> u8 {
    let x = x.clamp(-1.0, 1.0);
    let y = x.signum() * (1.0 + MU * x.abs()).ln() / (1.0 + MU).ln();
    ((y + 1.0) * 0.5 * MU + 0.5).floor().clamp(0.0, 255.0) as u8
}

/// The inverse of [`mulaw_encode`], up to the quantization: the device
/// runtime's own, so that a clip the host writes is the clip a device
/// plays.
pub fn mulaw_decode(q: u8) -> f32 {
    edgegen_runtime::models::audio::mulaw_decode(q)
}

/// Scales a clip so its peak is at `peak` (silence is left alone).
pub fn peak_normalize(x: &mut [f32], peak: f32) {
    let m = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    if m > 0.0 {
        x.iter_mut().for_each(|v| *v *= peak / m);
    }
}

/// The part of a clip between its leading and trailing silence: the clip
/// is cut in frames of `frame` samples, and the frames at either end whose
/// RMS is more than `db` decibels below the loudest frame's are dropped,
/// keeping one frame of margin on each side (a word's soft onset and
/// decay sit just below any threshold). An all-zero clip gives an empty
/// range. FSDD's recordings carry up to a few hundred milliseconds of
/// room noise around each digit, which a model would otherwise spend its
/// context on.
pub fn trim_silence(x: &[f32], frame: usize, db: f32) -> std::ops::Range<usize> {
    let frame = frame.max(1);
    let rms: Vec<f32> = x
        .chunks(frame)
        .map(|f| (f.iter().map(|v| v * v).sum::<f32>() / f.len() as f32).sqrt())
        .collect();
    let loudest = rms.iter().fold(0f32, |m, &v| m.max(v));
    if loudest == 0.0 {
        return 0..0;
    }
    let floor = loudest * 10f32.powf(-db.abs() / 20.0);
    let loud = |r: &f32| *r >= floor;
    // Both exist: the loudest frame passes.
    let first = rms.iter().position(loud).unwrap_or(0);
    let last = rms.iter().rposition(loud).unwrap_or(0);
    let start = first.saturating_sub(1) * frame;
    let end = ((last + 2) * frame).min(x.len());
    start..end
}

/// A mono 16-bit PCM WAV file's bytes, with a `LIST/INFO` chunk of
/// `info` entries (RIFF INFO ids such as `ICMT`, a comment, and `ISFT`,
/// the software) before the samples. Players skip the chunk; `sox
/// --info` and `ffprobe` show it. Samples are clamped to [-1, 1].
pub fn wav_bytes(rate: u32, samples: &[f32], info: &[([u8; 4], &str)]) -> Vec<u8> {
    let mut list = b"INFO".to_vec();
    for (id, text) in info {
        // Null-terminated, padded to an even length.
        let mut v = text.as_bytes().to_vec();
        v.push(0);
        list.extend_from_slice(id);
        list.extend_from_slice(&(v.len() as u32).to_le_bytes());
        if v.len() % 2 == 1 {
            v.push(0);
        }
        list.extend_from_slice(&v);
    }
    let data: Vec<u8> = samples
        .iter()
        .flat_map(|&x| ((x.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes())
        .collect();
    let mut out = Vec::with_capacity(44 + 8 + list.len() + data.len());
    let chunk = |out: &mut Vec<u8>, id: &[u8; 4], body: &[u8]| {
        out.extend_from_slice(id);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        if body.len() % 2 == 1 {
            out.push(0);
        }
    };
    let mut fmt = Vec::with_capacity(16);
    fmt.extend_from_slice(&1u16.to_le_bytes()); // PCM
    fmt.extend_from_slice(&1u16.to_le_bytes()); // mono
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    fmt.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
    fmt.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"RIFF\0\0\0\0WAVE");
    chunk(&mut out, b"fmt ", &fmt);
    chunk(&mut out, b"LIST", &list);
    chunk(&mut out, b"data", &data);
    let riff = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    out
}

/// The `LIST/INFO` entries of a RIFF WAVE file, in order (empty if it has
/// none); an error names what is malformed.
pub fn wav_info(bytes: &[u8]) -> Result<Vec<([u8; 4], String)>> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        bail!("not a RIFF WAVE file: the first 12 bytes are not `RIFF....WAVE`");
    }
    let mut out = vec![];
    for (id, body) in riff_chunks(&bytes[12..])? {
        if &id == b"LIST" && body.starts_with(b"INFO") {
            for (id, text) in riff_chunks(&body[4..])? {
                let text = text.split(|&b| b == 0).next().unwrap_or_default();
                out.push((id, String::from_utf8_lossy(text).into_owned()));
            }
        }
    }
    Ok(out)
}

/// The chunks of a RIFF body: `(id, body)` pairs, each body padded to an
/// even length in the file.
fn riff_chunks(mut b: &[u8]) -> Result<Vec<([u8; 4], &[u8])>> {
    let mut v = vec![];
    while b.len() >= 8 {
        let id: [u8; 4] = b[..4].try_into().unwrap_or_default();
        let n = u32::from_le_bytes(b[4..8].try_into().unwrap_or_default()) as usize;
        let Some(body) = b.get(8..8 + n) else {
            bail!(
                "chunk `{}` says {n} bytes, but only {} follow",
                String::from_utf8_lossy(&id),
                b.len() - 8
            );
        };
        v.push((id, body));
        b = b.get(8 + n + n % 2..).unwrap_or_default();
    }
    Ok(v)
}

/// Whether `dir` holds WAV files, directly or one folder down.
pub fn is_audio_dir(dir: &Path) -> bool {
    wav_files(dir).is_ok_and(|f| !f.is_empty())
}

fn wav_files(dir: &Path) -> Result<Vec<(PathBuf, Option<String>)>> {
    let is_wav = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
    };
    let (dirs, files) = super::images::list_dir(dir)?;
    let mut out: Vec<_> = files
        .into_iter()
        .filter(|f| is_wav(f))
        .map(|f| (f, None))
        .collect();
    for d in dirs {
        let class = d.file_name().map(|n| n.to_string_lossy().into_owned());
        let (_, files) = super::images::list_dir(&d)?;
        out.extend(
            files
                .into_iter()
                .filter(|f| is_wav(f))
                .map(|f| (f, class.clone())),
        );
    }
    Ok(out)
}

/// Loads every WAV under `path` (a folder, or one file).
pub fn load(path: &Path) -> Result<AudioSet> {
    let files = if path.is_file() {
        vec![(path.to_path_buf(), None)]
    } else {
        wav_files(path)?
    };
    if files.is_empty() {
        bail!("{}: no .wav files here or one folder down", path.display());
    }
    let mut decoded = Vec::with_capacity(files.len());
    for (f, folder_class) in files {
        let (spec, samples) = read_wav(&f)?;
        decoded.push((f, folder_class, spec, samples));
    }
    Ok(assemble(decoded))
}

/// The name of the built-in sample: one FSDD speaker's ten digits, takes 0
/// to 9 (see `data/README.md`).
pub const BUILTIN_FSDD: &str = "builtin:fsdd-sample";

/// The built-in sample's files, compiled in.
const FSDD_SAMPLE: &[(&str, &[u8])] = include!("../../../data/fsdd-sample/clips.rs");

/// The built-in FSDD sample, decoded.
pub fn builtin() -> Result<AudioSet> {
    let mut decoded = Vec::with_capacity(FSDD_SAMPLE.len());
    for (name, bytes) in FSDD_SAMPLE {
        let path = PathBuf::from(BUILTIN_FSDD).join(name);
        let (spec, samples) = read_wav_bytes(bytes, &path.display().to_string())?;
        decoded.push((path, None, spec, samples));
    }
    Ok(assemble(decoded))
}

/// Clips from decoded files `(path, folder class, spec, samples)`:
/// labels from the folder or the name, FSDD's speaker and take from the
/// name.
fn assemble(decoded: Vec<(PathBuf, Option<String>, hound::WavSpec, Vec<f32>)>) -> AudioSet {
    let mut clips = Vec::with_capacity(decoded.len());
    let mut names: Vec<Option<String>> = Vec::with_capacity(decoded.len());
    for (f, folder_class, spec, samples) in decoded {
        let stem = f
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let fields: Vec<&str> = stem.split('_').collect();
        let name_class = (fields.len() > 1).then(|| fields[0].to_string());
        let fsdd_take = match fields[..] {
            [_, speaker, take] if !speaker.is_empty() => take.parse::<u32>().ok(),
            _ => None,
        };
        names.push(folder_class.or(name_class));
        clips.push(Clip {
            path: f.clone(),
            label: None,
            // Speaker and take only for names that follow FSDD's
            // `{digit}_{speaker}_{take}` with a numeric take.
            speaker: fsdd_take.map(|_| fields[1].to_string()),
            take: fsdd_take,
            rate: spec.sample_rate,
            channels: spec.channels,
            bits: spec.bits_per_sample,
            samples,
        });
    }
    // Classes only if every clip has one; numeric names sort as numbers.
    let mut classes: Vec<String> = if names.iter().all(|n| n.is_some()) {
        names.iter().flatten().cloned().collect()
    } else {
        vec![]
    };
    classes.sort_by(|a, b| match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    });
    classes.dedup();
    if !classes.is_empty() {
        for (c, n) in clips.iter_mut().zip(&names) {
            c.label = n
                .as_ref()
                .and_then(|n| classes.iter().position(|k| k == n))
                .map(|i| i as u32);
        }
    }
    AudioSet { clips, classes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, secs: f64) -> Vec<f32> {
        (0..(rate as f64 * secs) as usize)
            .map(|i| (2.0 * PI * freq * i as f64 / rate as f64).sin() as f32 * 0.5)
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn resampling_keeps_in_band_tones_and_removes_aliases() {
        // 440 Hz from 44.1 kHz to 8 kHz keeps its level (0.5 / sqrt 2).
        let y = resample(&sine(440.0, 44_100, 1.0), 44_100, 8_000);
        assert_eq!(y.len(), 8_000);
        let mid = &y[1000..7000];
        assert!((rms(mid) - 0.3536).abs() < 0.003, "{}", rms(mid));
        // It lines up with a 440 Hz sine generated at 8 kHz.
        let r = sine(440.0, 8_000, 1.0);
        let err = mid
            .iter()
            .zip(&r[1000..7000])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(err < 0.01, "{err}");
        // 6 kHz cannot exist at 8 kHz: it must be filtered, not folded to 2 kHz.
        let y = resample(&sine(6_000.0, 16_000, 1.0), 16_000, 8_000);
        assert!(rms(&y[500..7500]) < 0.01, "{}", rms(&y[500..7500]));
        // Upsampling keeps the tone too.
        let y = resample(&sine(300.0, 8_000, 0.5), 8_000, 16_000);
        assert!((rms(&y[1000..7000]) - 0.3536).abs() < 0.003);
    }

    #[test]
    fn the_builtin_sample_is_one_speakers_ten_digits_in_ten_takes() {
        let set = builtin().unwrap();
        assert_eq!(set.clips.len(), 100);
        assert_eq!(
            set.classes,
            (0..10).map(|d| d.to_string()).collect::<Vec<_>>()
        );
        for c in &set.clips {
            assert_eq!((c.rate, c.channels, c.bits), (8000, 1, 16));
            assert_eq!(c.speaker.as_deref(), Some("george"));
            assert!(c.take.is_some_and(|t| t < 10) && c.label.is_some());
            assert!(c.seconds() > 0.2 && c.seconds() < 1.0);
        }
    }

    #[test]
    fn written_wavs_read_back_with_their_info() {
        let x = sine(440.0, 8000, 0.1);
        // An odd-length text exercises the padding.
        let b = wav_bytes(8000, &x, &[(*b"ICMT", "{\"a\":1}"), (*b"ISFT", "edgegen")]);
        let info = wav_info(&b).unwrap();
        assert_eq!(
            info,
            vec![
                (*b"ICMT", "{\"a\":1}".to_string()),
                (*b"ISFT", "edgegen".to_string())
            ]
        );
        // hound, another reader, sees the same format and samples.
        let mut r = hound::WavReader::new(std::io::Cursor::new(&b)).unwrap();
        let spec = r.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (1, 8000, 16)
        );
        let back: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(back.len(), x.len());
        for (a, b) in back.iter().zip(&x) {
            assert!((*a as f32 / 32767.0 - b).abs() < 1e-4);
        }
        assert!(wav_info(b"RIFF\0\0\0\0WAVX").is_err());
        let mut cut = b.clone();
        cut.truncate(60);
        assert!(wav_info(&cut).unwrap_err().to_string().contains("only"));
    }

    #[test]
    fn trimming_keeps_the_sound_and_a_frame_of_margin() {
        let mut x = vec![0.0005f32; 8000];
        let tone = sine(300.0, 8000, 0.25);
        x[3000..3000 + tone.len()].copy_from_slice(&tone);
        // 80-sample frames: the tone spans frames 37.5..62.5; one frame
        // of margin each side.
        assert_eq!(trim_silence(&x, 80, 40.0), 2880..5120);
        // A threshold below the noise floor keeps everything.
        assert_eq!(trim_silence(&x, 80, 80.0), 0..8000);
        assert_eq!(trim_silence(&[0.0; 100], 80, 40.0), 0..0);
        assert_eq!(trim_silence(&[], 80, 40.0), 0..0);
        // A sound at the very end keeps the clip's end, not past it.
        let mut y = vec![0f32; 1000];
        y[990..].fill(0.5);
        assert_eq!(trim_silence(&y, 80, 40.0), 880..1000);
    }

    #[test]
    fn mulaw_round_trip_is_close_and_monotonic() {
        assert_eq!(mulaw_encode(-1.0), 0);
        assert_eq!(mulaw_encode(1.0), 255);
        assert_eq!(mulaw_encode(0.0), 128);
        for q in 0..=255u8 {
            assert_eq!(mulaw_encode(mulaw_decode(q)), q);
        }
        let mut prev = 0;
        for i in -1000..=1000 {
            let x = i as f32 / 1000.0;
            let q = mulaw_encode(x);
            assert!(q >= prev);
            prev = q;
            // Relative error is bounded near 3% for loud samples, absolute near zero.
            let e = (mulaw_decode(q) - x).abs();
            assert!(
                e <= 0.035 * x.abs() + 2e-4,
                "{x} -> {q} -> {}",
                mulaw_decode(q)
            );
        }
    }

    #[test]
    fn reads_every_bit_depth_and_labels_by_name() {
        let d = std::env::temp_dir().join(format!("edgegen-wav-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let tone = sine(500.0, 16_000, 0.1);
        for (i, bits) in [8u16, 16, 24, 32].into_iter().enumerate() {
            let spec = hound::WavSpec {
                channels: 2,
                sample_rate: 16_000,
                bits_per_sample: bits,
                sample_format: hound::SampleFormat::Int,
            };
            let path = d.join(format!("{}_spk_{i}.wav", i % 2));
            let mut w = hound::WavWriter::create(&path, spec).unwrap();
            let full = ((1i64 << (bits - 1)) - 1) as f32;
            for &s in &tone {
                w.write_sample((s * full) as i32).unwrap();
                w.write_sample((s * full) as i32).unwrap();
            }
            w.finalize().unwrap();
        }
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 22_050,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(d.join("1_spk_9.wav"), spec).unwrap();
        tone.iter().for_each(|&s| w.write_sample(s).unwrap());
        w.finalize().unwrap();

        let set = load(&d).unwrap();
        assert_eq!(set.classes, ["0", "1"]);
        assert_eq!(set.clips.len(), 5);
        for c in &set.clips {
            let tol = if c.bits == 8 { 0.01 } else { 1e-4 };
            let err = c
                .samples
                .iter()
                .zip(&tone)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err < tol, "{} bits: {err}", c.bits);
            assert_eq!(c.speaker.as_deref(), Some("spk"));
        }
        assert_eq!(set.clips[4].take, Some(9));
        assert_eq!(set.clips[4].label, Some(1));

        std::fs::write(d.join("0_spk_7.wav"), b"RIFF\x10\0\0\0WAVEjunk").unwrap();
        let e = format!("{:#}", load(&d).unwrap_err());
        assert!(e.contains("0_spk_7.wav"), "{e}");
    }
}
