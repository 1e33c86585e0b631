//! What `edgegen data info` reports: counts, shapes, classes and simple
//! statistics, as plain text or JSON.

use super::Dataset;
use super::images::ImageSet;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A summary of a dataset.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Info {
    /// Images.
    Images {
        /// Where it came from.
        source: String,
        /// `[C, H, W]`.
        shape: [usize; 3],
        /// Each split the source defines, with its size.
        splits: Vec<SplitCount>,
        /// Images per class over all splits (empty if unlabeled).
        classes: Vec<ClassCount>,
        /// Pixel statistics over all splits, in 0..=255.
        pixels: PixelStats,
    },
    /// Audio clips.
    Audio {
        /// Where it came from.
        source: String,
        /// Number of clips.
        clips: usize,
        /// Clips per sample rate, in Hz.
        sample_rates: BTreeMap<u32, usize>,
        /// Clips per channel count.
        channels: BTreeMap<u32, usize>,
        /// Clips per bit depth.
        bits: BTreeMap<u32, usize>,
        /// Clip lengths.
        seconds: DurationStats,
        /// Clips per class (empty if unlabeled).
        classes: Vec<ClassCount>,
        /// Distinct speakers (FSDD-style names), if any.
        speakers: Vec<String>,
        /// Clips in the test split by convention (takes 0-4), if takes are known.
        test_clips: Option<usize>,
    },
    /// Text.
    Text {
        /// Where it came from.
        source: String,
        /// Size in bytes (= tokens for the byte-level model).
        bytes: usize,
        /// Unicode scalar values.
        chars: usize,
        /// Line count.
        lines: usize,
        /// Distinct byte values (the used part of the 256-token vocabulary).
        distinct_bytes: usize,
        /// The most frequent characters with their counts.
        top_chars: Vec<(String, usize)>,
    },
}

/// A split and its size.
#[derive(Debug, Clone, Serialize)]
pub struct SplitCount {
    /// `train` or `test`.
    pub name: String,
    /// How many items.
    pub count: usize,
}

/// A class and its size.
#[derive(Debug, Clone, Serialize)]
pub struct ClassCount {
    /// The class name.
    pub name: String,
    /// How many items.
    pub count: usize,
}

/// Pixel statistics.
#[derive(Debug, Clone, Serialize)]
pub struct PixelStats {
    /// Mean value.
    pub mean: f64,
    /// Standard deviation.
    pub std: f64,
    /// Smallest value.
    pub min: u8,
    /// Largest value.
    pub max: u8,
}

/// Clip-length statistics, in seconds.
#[derive(Debug, Clone, Serialize)]
pub struct DurationStats {
    /// Shortest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Longest.
    pub max: f64,
    /// Sum.
    pub total: f64,
}

fn pixel_stats(sets: &[&ImageSet]) -> PixelStats {
    let (mut sum, mut sq, mut n, mut min, mut max) = (0f64, 0f64, 0usize, 255u8, 0u8);
    for s in sets {
        for &p in &s.pixels {
            sum += p as f64;
            sq += (p as f64) * (p as f64);
            min = min.min(p);
            max = max.max(p);
        }
        n += s.pixels.len();
    }
    let n = n.max(1) as f64;
    let mean = sum / n;
    PixelStats {
        mean,
        std: (sq / n - mean * mean).max(0.0).sqrt(),
        min,
        max,
    }
}

/// Summarizes a loaded dataset.
pub fn summarize(source: &str, d: &Dataset) -> Info {
    match d {
        Dataset::Images(im) => {
            let mut sets = vec![("train", &im.train)];
            if let Some(t) = &im.test {
                sets.push(("test", t));
            }
            let mut counts = vec![0; im.train.classes.len()];
            for (_, s) in &sets {
                for (c, k) in counts.iter_mut().zip(s.class_counts()) {
                    *c += k;
                }
            }
            Info::Images {
                source: source.into(),
                shape: im.train.shape,
                splits: sets
                    .iter()
                    .map(|(n, s)| SplitCount {
                        name: n.to_string(),
                        count: s.len(),
                    })
                    .collect(),
                classes: im
                    .train
                    .classes
                    .iter()
                    .zip(counts)
                    .map(|(n, count)| ClassCount {
                        name: n.clone(),
                        count,
                    })
                    .collect(),
                pixels: pixel_stats(&sets.iter().map(|(_, s)| *s).collect::<Vec<_>>()),
            }
        }
        Dataset::Audio(a) => {
            let mut rates = BTreeMap::new();
            let mut channels = BTreeMap::new();
            let mut bits = BTreeMap::new();
            let mut class_counts = vec![0; a.classes.len()];
            let mut speakers: Vec<String> = vec![];
            let secs: Vec<f64> = a.clips.iter().map(|c| c.seconds()).collect();
            for c in &a.clips {
                *rates.entry(c.rate).or_insert(0) += 1;
                *channels.entry(c.channels as u32).or_insert(0) += 1;
                *bits.entry(c.bits as u32).or_insert(0) += 1;
                if let Some(l) = c.label {
                    class_counts[l as usize] += 1;
                }
                if let Some(s) = &c.speaker
                    && !speakers.contains(s)
                {
                    speakers.push(s.clone());
                }
            }
            speakers.sort();
            // Speakers mean something only when every name follows the
            // convention; a few names that happen to hold `_` do not.
            if a.clips.iter().any(|c| c.speaker.is_none()) {
                speakers.clear();
            }
            let total: f64 = secs.iter().sum();
            let all_takes = a.clips.iter().all(|c| c.take.is_some());
            Info::Audio {
                source: source.into(),
                clips: a.clips.len(),
                sample_rates: rates,
                channels,
                bits,
                seconds: DurationStats {
                    min: secs.iter().copied().fold(f64::INFINITY, f64::min),
                    mean: total / secs.len().max(1) as f64,
                    max: secs.iter().copied().fold(0.0, f64::max),
                    total,
                },
                classes: a
                    .classes
                    .iter()
                    .zip(class_counts)
                    .map(|(n, count)| ClassCount {
                        name: n.clone(),
                        count,
                    })
                    .collect(),
                speakers,
                test_clips: all_takes.then(|| {
                    a.clips
                        .iter()
                        .filter(|c| c.take.is_some_and(|t| t < 5))
                        .count()
                }),
            }
        }
        Dataset::Text(t) => {
            let s = t.as_str();
            let mut freq: BTreeMap<char, usize> = BTreeMap::new();
            for ch in s.chars() {
                *freq.entry(ch).or_insert(0) += 1;
            }
            let mut top: Vec<(char, usize)> = freq.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut seen = [false; 256];
            t.bytes.iter().for_each(|&b| seen[b as usize] = true);
            Info::Text {
                source: source.into(),
                bytes: t.bytes.len(),
                chars: s.chars().count(),
                lines: s.lines().count(),
                distinct_bytes: seen.iter().filter(|&&x| x).count(),
                top_chars: top
                    .into_iter()
                    .take(10)
                    .map(|(c, n)| (c.escape_debug().to_string(), n))
                    .collect(),
            }
        }
    }
}

fn classes_line(classes: &[ClassCount]) -> String {
    classes
        .iter()
        .map(|c| format!("{}:{}", c.name, c.count))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The summary as human-readable lines.
pub fn render(info: &Info) -> String {
    let mut o = String::new();
    match info {
        Info::Images {
            source,
            shape,
            splits,
            classes,
            pixels,
        } => {
            let _ = writeln!(o, "images   {source}");
            for s in splits {
                let _ = writeln!(o, "{:<8} {} images", s.name, s.count);
            }
            let _ = writeln!(
                o,
                "shape    {}x{}x{} (C x H x W)",
                shape[0], shape[1], shape[2]
            );
            if classes.is_empty() {
                let _ = writeln!(o, "classes  none (unlabeled)");
            } else {
                let _ = writeln!(o, "classes  {} ({})", classes.len(), classes_line(classes));
            }
            let _ = writeln!(
                o,
                "pixels   mean {:.2}, std {:.2}, min {}, max {}",
                pixels.mean, pixels.std, pixels.min, pixels.max
            );
        }
        Info::Audio {
            source,
            clips,
            sample_rates,
            channels,
            bits,
            seconds,
            classes,
            speakers,
            test_clips,
        } => {
            let fmt_map = |m: &BTreeMap<_, usize>, unit: &str| {
                m.iter()
                    .map(|(k, v)| format!("{k}{unit} ({v})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(o, "audio    {source}");
            let _ = writeln!(o, "clips    {clips}");
            let _ = writeln!(o, "rate     {}", fmt_map(sample_rates, " Hz"));
            let _ = writeln!(o, "channels {}", fmt_map(channels, ""));
            let _ = writeln!(o, "bits     {}", fmt_map(bits, ""));
            let _ = writeln!(
                o,
                "seconds  min {:.3}, mean {:.3}, max {:.3}, total {:.1}",
                seconds.min, seconds.mean, seconds.max, seconds.total
            );
            if classes.is_empty() {
                let _ = writeln!(o, "classes  none (unlabeled)");
            } else {
                let _ = writeln!(o, "classes  {} ({})", classes.len(), classes_line(classes));
            }
            if !speakers.is_empty() {
                let _ = writeln!(o, "speakers {} ({})", speakers.len(), speakers.join(", "));
            }
            if let Some(t) = test_clips {
                let _ = writeln!(o, "test     {t} clips (takes 0-4, the FSDD convention)");
            }
        }
        Info::Text {
            source,
            bytes,
            chars,
            lines,
            distinct_bytes,
            top_chars,
        } => {
            let _ = writeln!(o, "text     {source}");
            let _ = writeln!(o, "bytes    {bytes} (byte tokens)");
            let _ = writeln!(o, "chars    {chars}");
            let _ = writeln!(o, "lines    {lines}");
            let _ = writeln!(o, "vocab    {distinct_bytes} distinct byte values of 256");
            let top: Vec<String> = top_chars
                .iter()
                .map(|(c, n)| format!("'{c}':{n}"))
                .collect();
            let _ = writeln!(o, "top      {}", top.join(" "));
        }
    }
    o
}
