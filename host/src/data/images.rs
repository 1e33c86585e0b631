//! Image datasets: MNIST-style IDX pairs and folders of PNG/JPEG files with
//! one sub-folder per class. Pixels stay `u8` in C×H×W order until training
//! asks for f32, which keeps the full MNIST at 47 MB instead of 188.

use super::idx;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// A set of equally shaped images with optional class labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// `n * C * H * W` bytes, each image in C×H×W order.
    pub pixels: Vec<u8>,
    /// `[C, H, W]`.
    pub shape: [usize; 3],
    /// One label per image, indexing `classes`; empty if unlabeled.
    pub labels: Vec<u32>,
    /// Class names; empty if unlabeled.
    pub classes: Vec<String>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.image_len().max(1)
    }
    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }
    /// `C * H * W`.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Image `i`'s bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }
    /// The images at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> ImageSet {
        let mut pixels = Vec::with_capacity(idx.len() * self.image_len());
        for &i in idx {
            pixels.extend_from_slice(self.image(i));
        }
        ImageSet {
            pixels,
            shape: self.shape,
            labels: if self.labels.is_empty() {
                vec![]
            } else {
                idx.iter().map(|&i| self.labels[i]).collect()
            },
            classes: self.classes.clone(),
        }
    }
    /// Images per class, in class order.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.classes.len()];
        for &l in &self.labels {
            c[l as usize] += 1;
        }
        c
    }
}

/// An image dataset: its training images and, when the source defines one,
/// its own test split (MNIST's t10k files, or a `test/` folder).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageData {
    /// The training images.
    pub train: ImageSet,
    /// The source's own test images.
    pub test: Option<ImageSet>,
    /// What loading did that the user should know: files converted to the
    /// set's channel count, a test split cut from `train/`.
    pub notes: Vec<String>,
}

/// How images are brought to one shape: `--channels` and `--image-size`.
/// Without them, a folder takes the channel count most of its files have
/// and the size they all must share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shaping {
    /// 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA).
    pub channels: Option<usize>,
    /// `[H, W]` to resize every image to.
    pub size: Option<[usize; 2]>,
}

impl Shaping {
    /// Checks the flags' values.
    pub fn validate(&self) -> Result<()> {
        if let Some(c) = self.channels
            && !(1..=4).contains(&c)
        {
            bail!(
                "--channels: expected 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA), found {c}"
            );
        }
        if let Some([h, w]) = self.size
            && (h == 0 || w == 0 || h > 4096 || w > 4096)
        {
            bail!("--image-size: expected HxW with each side from 1 to 4096, found {h}x{w}");
        }
        Ok(())
    }
}

/// Parses `HxW` (`--image-size 32x32`).
pub fn parse_size(s: &str) -> std::result::Result<[usize; 2], String> {
    let (h, w) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected HxW such as 32x32, found {s:?}"))?;
    let n = |v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| format!("expected HxW such as 32x32, found {s:?}"))
    };
    Ok([n(h)?, n(w)?])
}

/// One image's `H×W×C` bytes (how files and IDX store pixels) as `C×H×W`
/// (how training reads them), or back with `to_chw` false.
fn transpose(px: &[u8], c: usize, hw: usize, to_chw: bool) -> Vec<u8> {
    let mut out = vec![0u8; px.len()];
    for y in 0..hw {
        for ch in 0..c {
            let (hwc, chw) = (y * c + ch, ch * hw + y);
            if to_chw {
                out[chw] = px[hwc];
            } else {
                out[hwc] = px[chw];
            }
        }
    }
    out
}

/// `img` as `c` channels of `h x w`, in C×H×W order.
fn conform(img: image::DynamicImage, c: usize, [h, w]: [usize; 2]) -> Vec<u8> {
    let img = if (img.height() as usize, img.width() as usize) == (h, w) {
        img
    } else {
        img.resize_exact(w as u32, h as u32, image::imageops::FilterType::Triangle)
    };
    let hwc = match c {
        1 => img.into_luma8().into_raw(),
        2 => img.into_luma_alpha8().into_raw(),
        3 => img.into_rgb8().into_raw(),
        _ => img.into_rgba8().into_raw(),
    };
    transpose(&hwc, c, h * w, true)
}

impl ImageSet {
    /// The set with `shaping` applied to every image (for IDX sets, whose
    /// images share one shape already); itself when there is nothing to do.
    pub fn shaped(self, shaping: &Shaping) -> ImageSet {
        let [c0, h0, w0] = self.shape;
        let c = shaping.channels.unwrap_or(c0);
        let hw = shaping.size.unwrap_or([h0, w0]);
        if [c, hw[0], hw[1]] == self.shape || self.is_empty() {
            return self;
        }
        let mut pixels = Vec::with_capacity(self.len() * c * hw[0] * hw[1]);
        for i in 0..self.len() {
            let hwc = transpose(self.image(i), c0, h0 * w0, false);
            let (w32, h32) = (w0 as u32, h0 as u32);
            let img: image::DynamicImage = match c0 {
                1 => image::GrayImage::from_raw(w32, h32, hwc).map(Into::into),
                2 => image::GrayAlphaImage::from_raw(w32, h32, hwc).map(Into::into),
                3 => image::RgbImage::from_raw(w32, h32, hwc).map(Into::into),
                _ => image::RgbaImage::from_raw(w32, h32, hwc).map(Into::into),
            }
            .expect("an image's bytes match its shape");
            pixels.extend(conform(img, c, hw));
        }
        ImageSet {
            pixels,
            shape: [c, hw[0], hw[1]],
            ..self
        }
    }
}

/// The four MNIST file names, each with or without `.gz`.
const MNIST_FILES: [(&str, &str); 2] = [
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
];

fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Whether `dir` holds MNIST-named IDX files.
pub fn is_mnist_dir(dir: &Path) -> bool {
    find(dir, MNIST_FILES[0].0).is_some()
}

/// Builds a labeled set from IDX images `(N, H, W)` or `(N, H, W, C)` and
/// IDX labels `(N)`. `name` is used in errors.
pub fn from_idx(images: idx::Idx, labels: Option<idx::Idx>, name: &str) -> Result<ImageSet> {
    let (n, h, w, c) = match images.dims[..] {
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c] => (n, h, w, c),
        ref d => bail!("{name}: dimensions: expected (N, H, W) or (N, H, W, C), found {d:?}"),
    };
    let mut pixels = images.data;
    if c > 1 {
        // IDX stores H×W×C; training wants C×H×W.
        pixels = pixels
            .chunks_exact(h * w * c)
            .flat_map(|im| transpose(im, c, h * w, true))
            .collect();
    }
    let (labels, classes) = match labels {
        None => (vec![], vec![]),
        Some(l) => {
            if l.dims != [n] {
                bail!(
                    "{name}: labels: expected dimensions [{n}] to match the images, found {:?}",
                    l.dims
                );
            }
            let k = l.data.iter().copied().max().unwrap_or(0) as usize + 1;
            (
                l.data.iter().map(|&x| x as u32).collect(),
                (0..k).map(|i| i.to_string()).collect(),
            )
        }
    };
    Ok(ImageSet {
        pixels,
        shape: [c, h, w],
        labels,
        classes,
    })
}

fn load_idx_pair(dir: &Path, images: &str, labels: &str) -> Result<Option<ImageSet>> {
    let Some(ip) = find(dir, images) else {
        return Ok(None);
    };
    let lp = find(dir, labels);
    let lab = lp.as_deref().map(idx::read).transpose()?;
    from_idx(idx::read(&ip)?, lab, &ip.display().to_string()).map(Some)
}

/// Loads an MNIST-style folder: `train-*` is required, `t10k-*` optional.
pub fn load_mnist_dir(dir: &Path) -> Result<ImageData> {
    let train = load_idx_pair(dir, MNIST_FILES[0].0, MNIST_FILES[0].1)?.with_context(|| {
        format!(
            "{}: expected {}(.gz) in this folder",
            dir.display(),
            MNIST_FILES[0].0
        )
    })?;
    let test = load_idx_pair(dir, MNIST_FILES[1].0, MNIST_FILES[1].1)?;
    if let Some(t) = &test
        && t.shape != train.shape
    {
        bail!(
            "{}: test images are {:?}, training images {:?}",
            dir.display(),
            t.shape,
            train.shape
        );
    }
    Ok(ImageData {
        train,
        test,
        notes: vec![],
    })
}

/// File extensions read as images.
pub const IMAGE_EXTS: [&str; 3] = ["png", "jpg", "jpeg"];

fn has_ext(p: &Path, exts: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Sorted sub-folders and sorted files of `dir`.
pub fn list_dir(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut dirs = vec![];
    let mut files = vec![];
    for e in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
        let p = e
            .with_context(|| format!("{}: cannot list", dir.display()))?
            .path();
        if p.is_dir() {
            dirs.push(p);
        } else {
            files.push(p);
        }
    }
    dirs.sort();
    files.sort();
    Ok((dirs, files))
}

/// Whether `dir` has sub-folders holding images.
pub fn is_image_folder(dir: &Path) -> bool {
    let Ok((dirs, _)) = list_dir(dir) else {
        return false;
    };
    dirs.iter().any(|d| {
        list_dir(d).is_ok_and(|(sub, files)| {
            files.iter().any(|f| has_ext(f, &IMAGE_EXTS))
                || sub.iter().any(|s| is_image_folder_flat(s))
        })
    })
}

fn is_image_folder_flat(d: &Path) -> bool {
    list_dir(d).is_ok_and(|(_, files)| files.iter().any(|f| has_ext(f, &IMAGE_EXTS)))
}

fn open_image(path: &Path) -> Result<image::DynamicImage> {
    image::ImageReader::open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("{}: cannot read", path.display()))?
        .decode()
        .with_context(|| format!("{}: not a decodable PNG or JPEG", path.display()))
}

/// Loads one sub-folder per class. Files are brought to one channel count
/// (`--channels`, else the one most files have) and counted in `notes`;
/// sizes must agree unless `--image-size` resizes them.
fn load_class_folders(
    root: &Path,
    class_dirs: &[PathBuf],
    shaping: &Shaping,
    notes: &mut Vec<String>,
) -> Result<ImageSet> {
    let mut classes = vec![];
    let mut decoded: Vec<(PathBuf, u32, image::DynamicImage)> = vec![];
    for d in class_dirs {
        let (_, files) = list_dir(d)?;
        let images: Vec<_> = files
            .into_iter()
            .filter(|f| has_ext(f, &IMAGE_EXTS))
            .collect();
        if images.is_empty() {
            continue;
        }
        let label = classes.len() as u32;
        classes.push(
            d.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
        for f in images {
            let img = open_image(&f)?;
            decoded.push((f, label, img));
        }
    }
    let Some((first, _, first_img)) = decoded.first() else {
        bail!(
            "{}: no PNG or JPEG files in its class sub-folders",
            root.display()
        );
    };
    let channels_of = |i: &image::DynamicImage| i.color().channel_count() as usize;
    let c = shaping.channels.unwrap_or_else(|| {
        let mut count = [0usize; 5];
        for (_, _, i) in &decoded {
            count[channels_of(i).min(4)] += 1;
        }
        // The most common count; ties go to the larger (no data dropped).
        (1..=4).rev().max_by_key(|&k| count[k]).unwrap_or(1)
    });
    let size = match shaping.size {
        Some(s) => s,
        None => {
            let hw = |i: &image::DynamicImage| [i.height() as usize, i.width() as usize];
            let want = hw(first_img);
            if let Some((f, _, i)) = decoded.iter().find(|(_, _, i)| hw(i) != want) {
                bail!(
                    "{}: {}x{} pixels, expected {}x{} like {}; all images must match, or give --image-size HxW to resize them",
                    f.display(),
                    i.height(),
                    i.width(),
                    want[0],
                    want[1],
                    first.display()
                );
            }
            want
        }
    };
    let converted = decoded
        .iter()
        .filter(|(_, _, i)| channels_of(i) != c)
        .count();
    if converted > 0 {
        let name = ["", "grey", "grey + alpha", "RGB", "RGBA"][c];
        notes.push(format!(
            "{}: converted {converted} of {} images to {c} channel{} ({name}){}",
            root.display(),
            decoded.len(),
            if c == 1 { "" } else { "s" },
            if shaping.channels.is_some() {
                " as --channels asks"
            } else {
                ", the count most files have; --channels chooses another"
            }
        ));
    }
    let mut set = ImageSet {
        pixels: Vec::with_capacity(decoded.len() * c * size[0] * size[1]),
        shape: [c, size[0], size[1]],
        labels: Vec::with_capacity(decoded.len()),
        classes,
    };
    for (_, label, img) in decoded {
        set.pixels.extend(conform(img, c, size));
        set.labels.push(label);
    }
    Ok(set)
}

/// Loads a folder with one sub-folder per class, or with `train/` (and
/// optionally `test/`) sub-folders that each have one sub-folder per class.
/// Without `test/`, the test split is cut from `train/` later, as for a
/// folder with neither; a note says so.
pub fn load_image_folder(root: &Path, shaping: &Shaping) -> Result<ImageData> {
    let (dirs, _) = list_dir(root)?;
    let named = |n: &str| dirs.iter().find(|d| d.file_name().is_some_and(|f| f == n));
    let mut notes = vec![];
    if let Some(tr) = named("train") {
        let train = load_class_folders(tr, &list_dir(tr)?.0, shaping, &mut notes)?;
        let Some(te) = named("test") else {
            notes.push(format!(
                "{}: train/ has no test/ beside it: the test split is cut from train/, deterministically by seed",
                root.display()
            ));
            return Ok(ImageData {
                train,
                test: None,
                notes,
            });
        };
        // The test images take the training images' shape.
        let same = Shaping {
            channels: Some(train.shape[0]),
            size: Some([train.shape[1], train.shape[2]]),
        };
        let test = load_class_folders(te, &list_dir(te)?.0, &same, &mut notes)?;
        if test.classes != train.classes {
            bail!(
                "{}: test/ holds classes {:?}, train/ holds {:?}; they must match",
                root.display(),
                test.classes,
                train.classes
            );
        }
        return Ok(ImageData {
            train,
            test: Some(test),
            notes,
        });
    }
    Ok(ImageData {
        train: load_class_folders(root, &dirs, shaping, &mut notes)?,
        test: None,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("edgegen-img-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn folder_of_rgb_pngs_in_two_classes() {
        let root = tmp("rgb");
        for (class, n) in [("cat", 2), ("dog", 3)] {
            std::fs::create_dir(root.join(class)).unwrap();
            for i in 0..n {
                let img =
                    image::RgbImage::from_fn(4, 3, |x, y| image::Rgb([x as u8, y as u8, i as u8]));
                img.save(root.join(class).join(format!("{i}.png"))).unwrap();
            }
        }
        assert!(is_image_folder(&root));
        let d = load_image_folder(&root, &Shaping::default()).unwrap();
        assert_eq!(d.train.shape, [3, 3, 4]);
        assert_eq!(d.train.len(), 5);
        assert_eq!(d.train.classes, ["cat", "dog"]);
        assert_eq!(d.train.labels, [0, 0, 1, 1, 1]);
        // C×H×W: channel 0 is x, channel 1 is y, channel 2 the index.
        let im = d.train.image(4);
        assert_eq!(&im[0..4], &[0, 1, 2, 3]);
        assert_eq!(im[12 + 4], 1);
        assert!(im[24..].iter().all(|&v| v == 2));
        assert_eq!(d.train.subset(&[4, 0]).labels, [1, 0]);
    }

    #[test]
    fn mismatched_and_corrupt_files_are_named() {
        let root = tmp("bad");
        std::fs::create_dir(root.join("a")).unwrap();
        image::GrayImage::new(4, 4)
            .save(root.join("a/0.png"))
            .unwrap();
        image::GrayImage::new(5, 4)
            .save(root.join("a/1.png"))
            .unwrap();
        let e = format!(
            "{:#}",
            load_image_folder(&root, &Shaping::default()).unwrap_err()
        );
        assert!(
            e.contains("1.png")
                && e.contains("4x5 pixels, expected 4x4")
                && e.contains("--image-size"),
            "{e}"
        );
        std::fs::remove_file(root.join("a/1.png")).unwrap();
        std::fs::write(root.join("a/2.png"), b"not a png").unwrap();
        let e = format!(
            "{:#}",
            load_image_folder(&root, &Shaping::default()).unwrap_err()
        );
        assert!(e.contains("2.png"), "{e}");
    }

    #[test]
    fn train_without_test_is_split_later_and_says_so() {
        let root = tmp("trainonly");
        for class in ["a", "b"] {
            let d = root.join("train").join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..3 {
                image::GrayImage::new(4, 4)
                    .save(d.join(format!("{i}.png")))
                    .unwrap();
            }
        }
        let d = load_image_folder(&root, &Shaping::default()).unwrap();
        assert_eq!((d.train.len(), d.test.is_none()), (6, true));
        assert_eq!(d.train.classes, ["a", "b"]);
        assert!(
            d.notes
                .iter()
                .any(|n| n.contains("test split is cut from train/")),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn mixed_channels_are_converted_and_sizes_resized_on_request() {
        let root = tmp("mixed");
        let d = root.join("c");
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..3 {
            image::RgbImage::from_pixel(4, 4, image::Rgb([200, 100, 0]))
                .save(d.join(format!("rgb{i}.png")))
                .unwrap();
        }
        image::GrayImage::from_pixel(4, 4, image::Luma([90]))
            .save(d.join("grey.png"))
            .unwrap();
        image::RgbaImage::from_pixel(4, 4, image::Rgba([1, 2, 3, 255]))
            .save(d.join("rgba.png"))
            .unwrap();
        // The count most files have: RGB; the grey one is replicated.
        let s = load_image_folder(&root, &Shaping::default()).unwrap();
        assert_eq!(s.train.shape, [3, 4, 4]);
        assert!(
            s.notes[0].contains("converted 2 of 5 images to 3 channels"),
            "{:?}",
            s.notes
        );
        let grey = s.train.image(0);
        assert!(grey.iter().all(|&v| v == 90), "grey.png sorts first");
        // --channels 1: every colour file becomes grey.
        let one = Shaping {
            channels: Some(1),
            size: None,
        };
        let s = load_image_folder(&root, &one).unwrap();
        assert_eq!(s.train.shape, [1, 4, 4]);
        assert!(
            s.notes[0].contains("converted 4 of 5 images to 1 channel (grey) as --channels asks")
        );
        // Another size is an error that names --image-size, which resizes.
        image::RgbImage::new(6, 5).save(d.join("wide.png")).unwrap();
        let e = format!(
            "{:#}",
            load_image_folder(&root, &Shaping::default()).unwrap_err()
        );
        assert!(
            e.contains("wide.png: 5x6 pixels, expected 4x4") && e.contains("--image-size"),
            "{e}"
        );
        let sized = Shaping {
            channels: None,
            size: Some([8, 8]),
        };
        let s = load_image_folder(&root, &sized).unwrap();
        assert_eq!((s.train.shape, s.train.len()), ([3, 8, 8], 6));
        // IDX sets take the same flags after loading.
        let set = s.train.shaped(&Shaping {
            channels: Some(1),
            size: Some([2, 3]),
        });
        assert_eq!((set.shape, set.pixels.len()), ([1, 2, 3], 6 * 6));
        assert_eq!(parse_size("32x24"), Ok([32, 24]));
        assert!(parse_size("32").is_err());
    }
}
