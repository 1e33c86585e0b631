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
        let hwc = pixels;
        pixels = vec![0; hwc.len()];
        for i in 0..n {
            for y in 0..h * w {
                for ch in 0..c {
                    pixels[i * h * w * c + ch * h * w + y] = hwc[i * h * w * c + y * c + ch];
                }
            }
        }
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
    Ok(ImageData { train, test })
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

/// Decodes one image file to C×H×W bytes, keeping its channel count
/// (grey 1, grey+alpha 2, RGB 3, RGBA 4; 16-bit images become 8-bit).
pub fn decode_image(path: &Path) -> Result<([usize; 3], Vec<u8>)> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("{}: cannot read", path.display()))?
        .decode()
        .with_context(|| format!("{}: not a decodable PNG or JPEG", path.display()))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (c, hwc) = match img.color().channel_count() {
        1 => (1, img.into_luma8().into_raw()),
        2 => (2, img.into_luma_alpha8().into_raw()),
        3 => (3, img.into_rgb8().into_raw()),
        _ => (4, img.into_rgba8().into_raw()),
    };
    let mut chw = vec![0u8; hwc.len()];
    for y in 0..h * w {
        for ch in 0..c {
            chw[ch * h * w + y] = hwc[y * c + ch];
        }
    }
    Ok(([c, h, w], chw))
}

fn load_class_folders(root: &Path, class_dirs: &[PathBuf]) -> Result<ImageSet> {
    let mut set = ImageSet {
        pixels: vec![],
        shape: [0; 3],
        labels: vec![],
        classes: vec![],
    };
    let mut first: Option<PathBuf> = None;
    for d in class_dirs {
        let (_, files) = list_dir(d)?;
        let images: Vec<_> = files
            .into_iter()
            .filter(|f| has_ext(f, &IMAGE_EXTS))
            .collect();
        if images.is_empty() {
            continue;
        }
        let label = set.classes.len() as u32;
        set.classes.push(
            d.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
        for f in images {
            let (shape, px) = decode_image(&f)?;
            match &first {
                None => {
                    set.shape = shape;
                    first = Some(f.clone());
                }
                Some(p) if shape != set.shape => bail!(
                    "{}: shape (C, H, W) = {shape:?}, expected {:?} like {}; all images must match",
                    f.display(),
                    set.shape,
                    p.display()
                ),
                _ => {}
            }
            set.pixels.extend(px);
            set.labels.push(label);
        }
    }
    if set.is_empty() {
        bail!(
            "{}: no PNG or JPEG files in its class sub-folders",
            root.display()
        );
    }
    Ok(set)
}

/// Loads a folder with one sub-folder per class, or with `train/` and
/// `test/` sub-folders that each have one sub-folder per class.
pub fn load_image_folder(root: &Path) -> Result<ImageData> {
    let (dirs, _) = list_dir(root)?;
    let named = |n: &str| dirs.iter().find(|d| d.file_name().is_some_and(|f| f == n));
    if let (Some(tr), Some(te)) = (named("train"), named("test")) {
        let train = load_class_folders(tr, &list_dir(tr)?.0)?;
        let test = load_class_folders(te, &list_dir(te)?.0)?;
        if test.shape != train.shape || test.classes != train.classes {
            bail!(
                "{}: test/ holds {:?} images of classes {:?}, train/ holds {:?} of {:?}; they must match",
                root.display(),
                test.shape,
                test.classes,
                train.shape,
                train.classes
            );
        }
        return Ok(ImageData {
            train,
            test: Some(test),
        });
    }
    Ok(ImageData {
        train: load_class_folders(root, &dirs)?,
        test: None,
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
        let d = load_image_folder(&root).unwrap();
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
        let e = format!("{:#}", load_image_folder(&root).unwrap_err());
        assert!(
            e.contains("1.png") && e.contains("[1, 4, 5]") && e.contains("[1, 4, 4]"),
            "{e}"
        );
        std::fs::remove_file(root.join("a/1.png")).unwrap();
        std::fs::write(root.join("a/2.png"), b"not a png").unwrap();
        let e = format!("{:#}", load_image_folder(&root).unwrap_err());
        assert!(e.contains("2.png"), "{e}");
    }
}
