//! The image grid of a study's kept reconstructions.

use netinv_core::ImageGrid;

use super::method::ARMS;
use super::stats::metrics;
use super::{Digits, Outcome, Setting, SIZE};
use crate::{Error, Result};

impl Outcome {
    /// The grid figure of the kept digits at noise level `noise`: one row per kept digit
    /// and angle count, the columns the truth and every arm (PSNR / SSIM captions; an
    /// empty tile where an arm did not run). Returns the grid (labels and captions set),
    /// its pixels (tile-major, `SIZE x SIZE` each) and the number of tiles (0: nothing
    /// kept at this noise level).
    ///
    /// # Errors
    /// [`Error::Shape`] if a kept digit or setting is not among `test` / `settings`;
    /// metric errors.
    pub fn grid(
        &self,
        settings: &[Setting],
        noise: Option<f64>,
        test: &Digits,
    ) -> Result<(ImageGrid, Vec<f32>, usize)> {
        let mut data = Vec::new();
        let mut row_labels = Vec::new();
        let mut captions = Vec::new();
        for kept in &self.kept {
            let (setting, truth) = match (settings.get(kept.setting), test.images.get(kept.digit)) {
                (Some(s), Some(t)) => (s, t),
                _ => {
                    return Err(Error::Shape {
                        what: "kept digit",
                        expected: format!(
                            "{} settings, {} digits",
                            settings.len(),
                            test.images.len()
                        ),
                        got: format!("setting {}, digit {}", kept.setting, kept.digit),
                    })
                }
            };
            if setting.noise != noise {
                continue;
            }
            data.extend(truth.iter().copied());
            captions.push(format!("digit {}", test.labels[kept.digit]));
            for a in 0..ARMS.len() {
                match kept.images.iter().find(|(arm, _)| *arm == a) {
                    Some((_, img)) => {
                        data.extend(img.iter().copied());
                        let (_, p, q) = metrics(truth.view(), img.view())?;
                        captions.push(format!("{p:.1}/{q:.2}"));
                    }
                    None => {
                        data.extend(std::iter::repeat_n(0.0f32, SIZE * SIZE));
                        captions.push("-".into());
                    }
                }
            }
            row_labels.push(format!("{} ang", setting.n_angles));
        }
        let tiles = data.len() / (SIZE * SIZE);
        let mut labels = vec!["truth".to_string()];
        labels.extend(ARMS.iter().map(|a| a.short_name().to_string()));
        let grid = ImageGrid::new(ARMS.len() + 1)
            .with_column_labels(labels)
            .with_row_labels(row_labels)
            .with_captions(captions);
        Ok((grid, data, tiles))
    }
}
