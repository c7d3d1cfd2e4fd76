//! Soft-labelled intermediate digits from VAE latent interpolation (thesis section 3.4):
//!
//! ```text
//! z_new = a z1 + (1 - a) z2          z1, z2: latent means of two real training images
//! image = sigmoid(decoder(z_new))
//! label = a e_{class(z1)} + (1 - a) e_{class(z2)}     (one-hot when the classes agree)
//! ```
//!
//! [`InterpolationSource`] generates such examples on the fly, batch by batch, mixed with
//! the real (one-hot) examples, and implements netinv-models'
//! [`BatchSource`], so [`netinv_models::train::Trainer::fit`] trains on it directly in
//! soft-label mode.

use std::path::Path;

use candle_core::{Device, Tensor};
use netinv_core::{ImageGrid, ImageRef};
use netinv_data::{Dataset, NUM_CLASSES};
use netinv_models::train::{BatchSource, EpochBatches, Targets, TrainBatch};
use netinv_models::Vae;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

use crate::error::invalid;
use crate::{Error, Result};

/// How the interpolation weight `a` of a pair is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlphaDist {
    /// `a ~ U(0, 1)` (the thesis: "chosen at random for each pair").
    Uniform,
    /// `a ~ Beta(alpha, alpha)` (`alpha > 0`; < 1 favours the ends, > 1 the middle).
    Beta {
        /// The shape parameter of both ends.
        alpha: f64,
    },
    /// The same `a` for every pair (in [0, 1]).
    Fixed {
        /// The weight.
        value: f64,
    },
}

impl AlphaDist {
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a Beta shape that is not finite and > 0, or a fixed
    /// value outside [0, 1].
    pub fn validate(&self) -> Result<()> {
        match *self {
            AlphaDist::Uniform => Ok(()),
            AlphaDist::Beta { alpha } if alpha.is_finite() && alpha > 0.0 => Ok(()),
            AlphaDist::Beta { alpha } => Err(invalid(
                "alpha",
                format!("Beta shape must be finite and > 0, got {alpha}"),
            )),
            AlphaDist::Fixed { value } => check_weight(value).map(|_| ()),
        }
    }

    /// One draw in [0, 1].
    ///
    /// # Panics
    /// If the parameters are invalid (call [`AlphaDist::validate`] first).
    pub fn sample(&self, rng: &mut StdRng) -> f32 {
        match *self {
            AlphaDist::Uniform => rng.random::<f32>(),
            AlphaDist::Beta { alpha } => {
                let beta = Beta::new(alpha, alpha).expect("validated Beta shape");
                beta.sample(rng) as f32
            }
            AlphaDist::Fixed { value } => value as f32,
        }
    }
}

fn check_weight(a: f64) -> Result<f32> {
    if (0.0..=1.0).contains(&a) {
        Ok(a as f32)
    } else {
        Err(invalid(
            "a",
            format!("interpolation weight must be in [0, 1], got {a}"),
        ))
    }
}

/// The soft label of an interpolation with weight `a` between classes `c1` and `c2`:
/// `a` at `c1`, `1 - a` at `c2` (their sum, 1, when `c1 == c2`), 0 elsewhere; length
/// `classes`.
///
/// # Errors
/// [`Error::InvalidConfig`] for `a` outside [0, 1] or a class `>= classes`.
///
/// # Examples
/// ```
/// let y = netinv_interp::soft_label(4, 8, 0.25, 10)?;
/// assert_eq!(y, vec![0., 0., 0., 0., 0.25, 0., 0., 0., 0.75, 0.]);
/// assert_eq!(netinv_interp::soft_label(3, 3, 0.4, 10)?[3], 1.0);
/// assert!(netinv_interp::soft_label(4, 8, 1.5, 10).is_err());
/// # Ok::<(), netinv_interp::Error>(())
/// ```
pub fn soft_label(c1: usize, c2: usize, a: f64, classes: usize) -> Result<Vec<f32>> {
    let a = check_weight(a)?;
    if c1 >= classes || c2 >= classes {
        return Err(invalid(
            "class",
            format!("classes {c1} and {c2} must be < {classes}"),
        ));
    }
    let mut y = vec![0.0f32; classes];
    y[c1] += a;
    y[c2] += 1.0 - a;
    Ok(y)
}

/// `a z1 + (1 - a) z2` for latent codes of equal length.
///
/// # Errors
/// [`Error::InvalidConfig`] for `a` outside [0, 1]; [`Error::Shape`] for lengths that
/// differ.
///
/// # Examples
/// ```
/// let z = netinv_interp::interpolate(&[1.0, 0.0], &[0.0, 2.0], 0.25)?;
/// assert_eq!(z, vec![0.25, 1.5]);
/// assert!(netinv_interp::interpolate(&[1.0], &[0.0], -0.1).is_err());
/// # Ok::<(), netinv_interp::Error>(())
/// ```
pub fn interpolate(z1: &[f32], z2: &[f32], a: f64) -> Result<Vec<f32>> {
    let a = check_weight(a)?;
    if z1.len() != z2.len() {
        return Err(Error::Shape {
            expected: format!("two codes of length {}", z1.len()),
            got: format!("length {}", z2.len()),
        });
    }
    Ok(z1
        .iter()
        .zip(z2)
        .map(|(&x, &y)| a * x + (1.0 - a) * y)
        .collect())
}

/// Decodes `a_i z1_i + (1 - a_i) z2_i` for each row `i` of the codes `z1`, `z2`
/// (row-major `[n, k]`, `k = vae.config().latent_dim`): images `[n, 1, s, s]` in (0, 1).
///
/// # Errors
/// [`Error::InvalidConfig`] for a weight outside [0, 1]; [`Error::Shape`] for lengths that
/// do not fit `n` rows of `k`; as [`Vae::decode`].
pub fn decode_interpolations(
    vae: &Vae,
    z1: &[f32],
    z2: &[f32],
    alphas: &[f32],
    device: &Device,
) -> Result<Tensor> {
    let k = vae.config().latent_dim;
    let n = alphas.len();
    if z1.len() != n * k || z2.len() != n * k {
        return Err(Error::Shape {
            expected: format!("{n} codes of length {k} ({} values)", n * k),
            got: format!("{} and {}", z1.len(), z2.len()),
        });
    }
    let mut z = Vec::with_capacity(n * k);
    for (i, &a) in alphas.iter().enumerate() {
        let r = i * k..(i + 1) * k;
        z.extend(interpolate(&z1[r.clone()], &z2[r], f64::from(a))?);
    }
    Ok(vae.decode(&Tensor::from_vec(z, (n, k), device)?)?)
}

/// What an [`InterpolationSource`] generates.
///
/// Defaults: `alpha` uniform, `generated_per_real` 0.5 (4,000 interpolations per epoch next
/// to 8,000 real digits), `include_real` true, `distinct_classes` false (pairs drawn at
/// random from all training images, as in the thesis).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InterpConfig {
    /// Distribution of the weight `a` of each pair.
    pub alpha: AlphaDist,
    /// Interpolated examples per real training example and epoch (finite, >= 0; rounded
    /// to the nearest count).
    pub generated_per_real: f64,
    /// Whether the real (one-hot) examples are part of every epoch.
    pub include_real: bool,
    /// Draw the second image of each pair from another class than the first.
    pub distinct_classes: bool,
}

impl Default for InterpConfig {
    fn default() -> Self {
        Self {
            alpha: AlphaDist::Uniform,
            generated_per_real: 0.5,
            include_real: true,
            distinct_classes: false,
        }
    }
}

impl InterpConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first offending field: an invalid `alpha`, a
    /// negative or non-finite `generated_per_real`, or an epoch with no example at all.
    pub fn validate(&self) -> Result<()> {
        self.alpha.validate()?;
        if !(self.generated_per_real.is_finite() && self.generated_per_real >= 0.0) {
            return Err(invalid(
                "generated_per_real",
                format!("must be finite and >= 0, got {}", self.generated_per_real),
            ));
        }
        if !self.include_real && self.generated_per_real == 0.0 {
            return Err(invalid(
                "generated_per_real",
                "must be > 0 when the real examples are not included",
            ));
        }
        Ok(())
    }
}

/// One interpolated example of an epoch: training images `first`, `second` and weight `a`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    /// Index of the image whose code gets weight `a`.
    pub first: usize,
    /// Index of the image whose code gets weight `1 - a`.
    pub second: usize,
    /// The weight, in [0, 1].
    pub a: f32,
}

/// One entry of an epoch's order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Item {
    /// A real training image (one-hot target).
    Real(usize),
    /// An interpolation (soft target).
    Generated(Pair),
}

/// Real training digits plus soft-labelled interpolations between them, generated on the
/// fly: a [`BatchSource`] for netinv-models' trainer.
///
/// Each epoch (seed `s`) draws its pairs and weights, and the order of real and generated
/// items, from `StdRng::seed_from_u64(s)`; a batch decodes its interpolations when it is
/// produced. The same seed gives the same batches.
#[derive(Debug, Clone)]
pub struct InterpolationSource {
    vae: Vae,
    data: Dataset,
    means: Vec<f32>,
    cfg: InterpConfig,
    generated: usize,
    by_class: Vec<Vec<usize>>,
}

impl InterpolationSource {
    /// Encodes every image of `data` (latent means, with `vae` frozen) and prepares the
    /// source.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid `cfg`, an empty dataset, or
    /// `distinct_classes` with fewer than two classes present; [`Error::Shape`] if the
    /// images do not fit the VAE.
    pub fn new(vae: &Vae, data: &Dataset, cfg: InterpConfig, device: &Device) -> Result<Self> {
        cfg.validate()?;
        if data.is_empty() {
            return Err(invalid("data", "the dataset is empty"));
        }
        let mut by_class = vec![Vec::new(); NUM_CLASSES];
        for (i, &l) in data.labels().iter().enumerate() {
            by_class[usize::from(l)].push(i);
        }
        if cfg.distinct_classes && by_class.iter().filter(|c| !c.is_empty()).count() < 2 {
            return Err(invalid(
                "distinct_classes",
                "needs at least two classes in the dataset",
            ));
        }
        let vae = vae.frozen()?;
        let means = vae.encode_means(data, device)?;
        let generated = (cfg.generated_per_real * data.len() as f64).round() as usize;
        Ok(Self {
            vae,
            data: data.clone(),
            means,
            cfg,
            generated,
            by_class,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &InterpConfig {
        &self.cfg
    }

    /// Interpolated examples per epoch.
    pub fn generated_len(&self) -> usize {
        self.generated
    }

    /// Real examples per epoch (0 when `include_real` is false).
    pub fn real_len(&self) -> usize {
        if self.cfg.include_real {
            self.data.len()
        } else {
            0
        }
    }

    /// The real training digits the pairs are drawn from.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// The latent means of the training images, row-major `[n, k]`.
    pub fn means(&self) -> &[f32] {
        &self.means
    }

    /// The items of the epoch with seed `seed`, in training order.
    pub fn plan(&self, seed: u64) -> Vec<Item> {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = self.data.len();
        let labels = self.data.labels();
        let mut items: Vec<Item> = Vec::with_capacity(self.real_len() + self.generated);
        if self.cfg.include_real {
            items.extend((0..n).map(Item::Real));
        }
        for _ in 0..self.generated {
            let first = rng.random_range(0..n);
            let second = if self.cfg.distinct_classes {
                // Another class, uniformly among the other classes' images.
                let own = usize::from(labels[first]);
                let others = n - self.by_class[own].len();
                let mut r = rng.random_range(0..others);
                let mut pick = 0;
                for (c, members) in self.by_class.iter().enumerate() {
                    if c == own {
                        continue;
                    }
                    if r < members.len() {
                        pick = members[r];
                        break;
                    }
                    r -= members.len();
                }
                pick
            } else {
                rng.random_range(0..n)
            };
            let a = self.cfg.alpha.sample(&mut rng);
            items.push(Item::Generated(Pair { first, second, a }));
        }
        items.shuffle(&mut rng);
        items
    }

    /// Images `[b, 1, s, s]` and soft targets `[b, 10]` of `items`, interpolations decoded
    /// now.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an index out of range or a weight outside [0, 1]; as
    /// [`Vae::decode`].
    pub fn materialise(&self, items: &[Item], device: &Device) -> Result<(Tensor, Tensor)> {
        let k = self.vae.config().latent_dim;
        let (h, w) = self.data.image_dim();
        let n = self.data.len();
        let labels = self.data.labels();
        let check = |i: usize| {
            if i < n {
                Ok(i)
            } else {
                Err(invalid("item", format!("index {i} >= {n} images")))
            }
        };
        let (mut z1, mut z2, mut alphas) = (Vec::new(), Vec::new(), Vec::new());
        let mut targets = Vec::with_capacity(items.len() * NUM_CLASSES);
        for item in items {
            match *item {
                Item::Real(i) => {
                    let l = usize::from(labels[check(i)?]);
                    targets.extend(soft_label(l, l, 1.0, NUM_CLASSES)?);
                }
                Item::Generated(p) => {
                    let (i, j) = (check(p.first)?, check(p.second)?);
                    targets.extend(soft_label(
                        usize::from(labels[i]),
                        usize::from(labels[j]),
                        f64::from(p.a),
                        NUM_CLASSES,
                    )?);
                    z1.extend_from_slice(&self.means[i * k..(i + 1) * k]);
                    z2.extend_from_slice(&self.means[j * k..(j + 1) * k]);
                    alphas.push(p.a);
                }
            }
        }
        let decoded: Vec<f32> = if alphas.is_empty() {
            Vec::new()
        } else {
            decode_interpolations(&self.vae, &z1, &z2, &alphas, device)?
                .flatten_all()?
                .to_vec1::<f32>()?
        };
        let px = h * w;
        let mut pixels = Vec::with_capacity(items.len() * px);
        let mut g = 0;
        for item in items {
            match *item {
                Item::Real(i) => pixels.extend(self.data.image(i).iter().copied()),
                Item::Generated(_) => {
                    pixels.extend_from_slice(&decoded[g * px..(g + 1) * px]);
                    g += 1;
                }
            }
        }
        let b = items.len();
        Ok((
            Tensor::from_vec(pixels, (b, 1, h, w), device)?,
            Tensor::from_vec(targets, (b, NUM_CLASSES), device)?,
        ))
    }
}

impl BatchSource for InterpolationSource {
    fn len(&self) -> usize {
        self.real_len() + self.generated
    }

    fn epoch<'a>(
        &'a self,
        batch_size: usize,
        seed: u64,
        device: &'a Device,
    ) -> netinv_models::Result<EpochBatches<'a>> {
        if batch_size == 0 {
            return Err(netinv_models::Error::InvalidConfig {
                field: "batch_size",
                reason: "must be > 0".into(),
            });
        }
        let plan = self.plan(seed);
        let chunks: Vec<Vec<Item>> = plan.chunks(batch_size).map(<[Item]>::to_vec).collect();
        Ok(Box::new(chunks.into_iter().map(move |items| {
            let (images, targets) = self.materialise(&items, device)?;
            Ok(TrainBatch {
                images,
                targets: Targets::Soft(targets),
            })
        })))
    }
}

/// Interpolations between one image of each of two classes, for a figure like the
/// thesis's figure 3.2: one row per class pair, one column per weight.
#[derive(Debug, Clone, PartialEq)]
pub struct PairGrid {
    /// Images row-major `[rows * columns, s, s]` in [0, 1].
    pub pixels: Vec<f32>,
    /// One label per row, `"c1-c2 (#i, #j)"` with the training indices used.
    pub row_labels: Vec<String>,
    /// One label per column, `"a=..."`.
    pub column_labels: Vec<String>,
    /// Image side s.
    pub side: usize,
}

impl PairGrid {
    /// Interpolates between a random image of class `c1` and one of `c2` (drawn from
    /// `StdRng::seed_from_u64(seed)`) for each pair, at each weight of `alphas`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a class absent from `data`, no pairs or weights, or a
    /// weight outside [0, 1]; as [`Vae::encode`] / [`Vae::decode`].
    pub fn new(
        vae: &Vae,
        data: &Dataset,
        pairs: &[(u8, u8)],
        alphas: &[f32],
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        if pairs.is_empty() || alphas.is_empty() {
            return Err(invalid("pairs", "need at least one pair and one weight"));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut pick = |c: u8| -> Result<usize> {
            let members: Vec<usize> = data
                .labels()
                .iter()
                .enumerate()
                .filter(|(_, &l)| l == c)
                .map(|(i, _)| i)
                .collect();
            if members.is_empty() {
                return Err(invalid("pairs", format!("class {c} is not in the dataset")));
            }
            Ok(members[rng.random_range(0..members.len())])
        };
        let k = vae.config().latent_dim;
        let (mut z1, mut z2, mut all_alphas) = (Vec::new(), Vec::new(), Vec::new());
        let mut row_labels = Vec::new();
        for &(c1, c2) in pairs {
            let (i, j) = (pick(c1)?, pick(c2)?);
            let sel = data.select(&[i, j])?;
            let means = vae.encode_means(&sel, device)?;
            for &a in alphas {
                z1.extend_from_slice(&means[..k]);
                z2.extend_from_slice(&means[k..]);
                all_alphas.push(a);
            }
            row_labels.push(format!("{c1}-{c2}"));
        }
        let images = decode_interpolations(vae, &z1, &z2, &all_alphas, device)?;
        Ok(Self {
            pixels: images.flatten_all()?.to_vec1::<f32>()?,
            row_labels,
            column_labels: alphas.iter().map(|a| format!("a={a:.2}")).collect(),
            side: vae.config().image_size,
        })
    }

    /// Writes the grid as a PNG (row labels `c1-c2`, column labels `a=...`).
    ///
    /// # Errors
    /// [`Error::Models`] (a netinv-core error) if rendering or writing fails.
    pub fn write_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let n = self.pixels.len() / (self.side * self.side);
        ImageGrid::new(self.column_labels.len())
            .with_scale(2)
            .with_row_labels(self.row_labels.clone())
            .with_column_labels(self.column_labels.clone())
            .write_png(path, ImageRef::new(&self.pixels, n, self.side, self.side)?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;
    use netinv_models::testing::toy_dataset;
    use netinv_models::VaeConfig;

    fn toy_vae() -> Vae {
        let cfg = VaeConfig {
            latent_dim: 3,
            conv1_channels: 4,
            conv2_channels: 8,
            image_size: 8,
            ..Default::default()
        };
        Vae::init(&cfg, &VarMap::new(), 11, &Device::Cpu).unwrap()
    }

    #[test]
    fn soft_labels_put_a_and_one_minus_a_on_the_right_classes() {
        for (c1, c2, a) in [
            (4usize, 8usize, 0.3f64),
            (0, 9, 1.0),
            (2, 5, 0.0),
            (7, 7, 0.6),
        ] {
            let y = soft_label(c1, c2, a, 10).unwrap();
            let sum: f32 = y.iter().sum();
            assert!((sum - 1.0).abs() < 1e-6);
            if c1 == c2 {
                assert_eq!(y[c1], 1.0);
            } else {
                assert!((y[c1] - a as f32).abs() < 1e-7);
                assert!((y[c2] - (1.0 - a as f32)).abs() < 1e-7);
            }
            for (c, &v) in y.iter().enumerate() {
                if c != c1 && c != c2 {
                    assert_eq!(v, 0.0);
                }
            }
        }
        assert!(soft_label(1, 2, -0.01, 10).is_err());
        assert!(soft_label(1, 2, 1.01, 10).is_err());
        assert!(soft_label(1, 2, f64::NAN, 10).is_err());
        assert!(soft_label(1, 10, 0.5, 10).is_err());
    }

    #[test]
    fn alpha_distributions() {
        assert!(AlphaDist::Fixed { value: 1.2 }.validate().is_err());
        assert!(AlphaDist::Fixed { value: -0.2 }.validate().is_err());
        assert!(AlphaDist::Beta { alpha: 0.0 }.validate().is_err());
        assert!(AlphaDist::Beta {
            alpha: f64::INFINITY
        }
        .validate()
        .is_err());
        let mut rng = StdRng::seed_from_u64(0);
        for d in [AlphaDist::Uniform, AlphaDist::Beta { alpha: 0.4 }] {
            d.validate().unwrap();
            let draws: Vec<f32> = (0..2000).map(|_| d.sample(&mut rng)).collect();
            assert!(draws.iter().all(|a| (0.0..=1.0).contains(a)));
            let mean = draws.iter().map(|&a| f64::from(a)).sum::<f64>() / 2000.0;
            assert!((mean - 0.5).abs() < 0.03, "{d:?} mean {mean}");
        }
        // Beta(0.4, 0.4) puts more mass near the ends than U(0, 1).
        let ends = |d: AlphaDist, rng: &mut StdRng| {
            (0..4000)
                .filter(|_| (d.sample(rng) - 0.5).abs() > 0.4)
                .count()
        };
        assert!(
            ends(AlphaDist::Beta { alpha: 0.4 }, &mut rng)
                > ends(AlphaDist::Uniform, &mut rng) * 3 / 2
        );
        assert_eq!(AlphaDist::Fixed { value: 0.3 }.sample(&mut rng), 0.3);
        let bad = InterpConfig {
            alpha: AlphaDist::Fixed { value: 2.0 },
            ..Default::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(Error::InvalidConfig { field: "a", .. })
        ));
        let bad = InterpConfig {
            generated_per_real: -1.0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = InterpConfig {
            generated_per_real: 0.0,
            include_real: false,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn interpolation_ends_decode_the_codes_themselves() {
        let dev = Device::Cpu;
        let vae = toy_vae();
        let z1 = vec![0.5f32, -1.0, 2.0];
        let z2 = vec![-0.3f32, 0.7, 0.1];
        let both = decode_interpolations(
            &vae,
            &[z1.clone(), z1.clone()].concat(),
            &[z2.clone(), z2.clone()].concat(),
            &[1.0, 0.0],
            &dev,
        )
        .unwrap();
        let direct = vae
            .decode(&Tensor::from_vec([z1.clone(), z2.clone()].concat(), (2, 3), &dev).unwrap())
            .unwrap();
        assert_eq!(
            both.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            direct.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        assert!(decode_interpolations(&vae, &z1, &z2, &[1.5], &dev).is_err());
        assert!(decode_interpolations(&vae, &z1, &z2[..2], &[0.5], &dev).is_err());
        assert!(interpolate(&z1, &z2, 2.0).is_err());
    }

    fn collect(src: &InterpolationSource, batch: usize, seed: u64) -> Vec<(Vec<f32>, Vec<f32>)> {
        src.epoch(batch, seed, &Device::Cpu)
            .unwrap()
            .map(|b| {
                let b = b.unwrap();
                let Targets::Soft(t) = b.targets else {
                    panic!("soft targets")
                };
                (
                    b.images.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                    t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn source_batches_are_seeded_mixed_and_valid() {
        let dev = Device::Cpu;
        let data = toy_dataset(40);
        let vae = toy_vae();
        let cfg = InterpConfig {
            generated_per_real: 0.5,
            distinct_classes: true,
            ..Default::default()
        };
        let src = InterpolationSource::new(&vae, &data, cfg, &dev).unwrap();
        assert_eq!(src.generated_len(), 20);
        assert_eq!(BatchSource::len(&src), 60);
        let a = collect(&src, 16, 5);
        let b = collect(&src, 16, 5);
        let c = collect(&src, 16, 6);
        assert_eq!(a, b, "same seed, same batches");
        assert_ne!(a, c, "another seed, other batches");
        assert_eq!(a.len(), 4);
        assert_eq!(a.iter().map(|(x, _)| x.len() / 64).sum::<usize>(), 60);
        // Every target row is a distribution; interpolations put a and 1 - a on their two
        // (distinct) classes.
        let plan = src.plan(5);
        let targets: Vec<f32> = a.iter().flat_map(|(_, t)| t.clone()).collect();
        let (mut real, mut generated) = (0, 0);
        for (item, row) in plan.iter().zip(targets.chunks(10)) {
            netinv_models::train::validate_soft_labels(
                &Tensor::from_vec(row.to_vec(), (1, 10), &dev).unwrap(),
            )
            .unwrap();
            match *item {
                Item::Real(i) => {
                    real += 1;
                    assert_eq!(row[usize::from(data.labels()[i])], 1.0);
                }
                Item::Generated(p) => {
                    generated += 1;
                    let (c1, c2) = (
                        usize::from(data.labels()[p.first]),
                        usize::from(data.labels()[p.second]),
                    );
                    assert_ne!(c1, c2);
                    assert!((row[c1] - p.a).abs() < 1e-6);
                    assert!((row[c2] - (1.0 - p.a)).abs() < 1e-6);
                }
            }
        }
        assert_eq!((real, generated), (40, 20));
        // Real images pass through unchanged.
        let pos = plan
            .iter()
            .position(|i| matches!(i, Item::Real(_)))
            .unwrap();
        let Item::Real(i) = plan[pos] else {
            unreachable!()
        };
        let pixels: Vec<f32> = a.iter().flat_map(|(x, _)| x.clone()).collect();
        let expected: Vec<f32> = data.image(i).iter().copied().collect();
        assert_eq!(&pixels[pos * 64..(pos + 1) * 64], expected.as_slice());
        assert!(src.epoch(0, 1, &dev).is_err());
    }

    #[test]
    fn generated_only_source_and_pair_grid() {
        let dev = Device::Cpu;
        let data = toy_dataset(12);
        let vae = toy_vae();
        let cfg = InterpConfig {
            alpha: AlphaDist::Fixed { value: 1.0 },
            generated_per_real: 1.0,
            include_real: false,
            distinct_classes: false,
        };
        let src = InterpolationSource::new(&vae, &data, cfg, &dev).unwrap();
        assert_eq!(src.real_len(), 0);
        let plan = src.plan(0);
        assert!(plan.iter().all(|i| matches!(i, Item::Generated(_))));
        // a = 1: the image is the decoded first code and the label is its class.
        let (x, t) = src.materialise(&plan[..1], &dev).unwrap();
        let Item::Generated(p) = plan[0] else {
            unreachable!()
        };
        let mu = Tensor::from_vec(
            src.means()[p.first * 3..p.first * 3 + 3].to_vec(),
            (1, 3),
            &dev,
        )
        .unwrap();
        assert_eq!(
            x.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vae.decode(&mu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        );
        assert_eq!(
            t.to_vec2::<f32>().unwrap()[0][usize::from(data.labels()[p.first])],
            1.0
        );

        let grid =
            PairGrid::new(&vae, &data, &[(0, 3), (1, 2)], &[1.0, 0.5, 0.0], 4, &dev).unwrap();
        assert_eq!(grid.pixels.len(), 6 * 64);
        assert_eq!(grid.row_labels, vec!["0-3", "1-2"]);
        let dir = tempfile::tempdir().unwrap();
        grid.write_png(dir.path().join("pairs.png")).unwrap();
        assert!(dir.path().join("pairs.png").exists());
        assert!(PairGrid::new(&vae, &data, &[(0, 7)], &[0.5], 4, &dev).is_err());
    }
}
