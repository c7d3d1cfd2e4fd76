//! ct_study's figures and files: the metric-vs-angles figures; the outputs of the
//! generative arms (issue 17: `generative.json`, the failure grid, summary lines); and its
//! shards (issue 19: the manifest a shard writes, the reading of finished shards for
//! `--merge`).

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Result};
use netinv::core::shard::{self, Merged, Shard, ShardManifest};
use netinv::core::{write_json, ImageGrid, ImageRef};
use netinv::ct::study::{
    noise_name, Family, Job, JobOutput, Method, Metric, Outcome, Row, StudyConfig, Tuning, ARMS,
    ARM_COLORS, SHARD_STUDY,
};
use serde::{Deserialize, Serialize};

/// What a shard of ct_study records as its configuration (`shard.json`'s
/// `manifest.config`); shards merge only if theirs are equal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardConfig {
    /// The command line after its checks, without `out` and `threads` (they do not change
    /// the results).
    pub args: serde_json::Value,
    /// The study's settings as the shard ran them.
    pub study: StudyConfig,
    /// The classifier's test accuracy: equal when every shard trained (or loaded) the same
    /// classifier.
    pub classifier_test_accuracy: f64,
}

/// The command line as a shard records it: `args` without `out` and `threads`.
pub fn shard_args(args: &impl Serialize) -> Result<serde_json::Value> {
    let mut value = serde_json::to_value(args)?;
    if let Some(map) = value.as_object_mut() {
        map.remove("out");
        map.remove("threads");
    }
    Ok(value)
}

/// Writes shard `shard`'s `shard.json` into `out`: `config`, the tuning every shard shares
/// and the outputs of its [`Job::Run`] jobs (`outputs[k]` of `jobs[k]`).
pub fn write_shard(
    out: &Path,
    shard: Shard,
    config: &ShardConfig,
    tuning: &Tuning,
    jobs: &[Job],
    outputs: &[JobOutput],
) -> Result<()> {
    let done = jobs
        .iter()
        .map(|job| match job {
            Job::Run { setting } => Ok(*setting),
            other => bail!("a shard runs Job::Run jobs only, not {other:?}"),
        })
        .collect::<Result<Vec<usize>>>()?;
    let n_settings = config.study.settings().len();
    let manifest = ShardManifest::new(
        SHARD_STUDY,
        serde_json::to_value(config)?,
        shard,
        n_settings,
        done,
    );
    shard::write_shard(out, &manifest, tuning, outputs)?;
    Ok(())
}

/// Checks the `--merge` folders before any work: each must exist and hold a `shard.json`.
pub fn check_shard_folders(dirs: &[PathBuf]) -> Result<()> {
    for dir in dirs {
        if !dir.is_dir() {
            bail!("--merge {}: no such folder", dir.display());
        }
        ensure!(
            dir.join(shard::SHARD_FILE).is_file(),
            "--merge {}: no {} (not a shard's output folder, or its shard has not finished)",
            dir.display(),
            shard::SHARD_FILE
        );
    }
    Ok(())
}

/// Reads and checks the shard folders `dirs` (see `netinv::core::shard::merge`) for a
/// merge into `out`: the configuration they share and every setting's run in setting
/// order, with the tuning.
pub fn read_shards(
    dirs: &[PathBuf],
    out: &Path,
) -> Result<(ShardConfig, Merged<Tuning, JobOutput>)> {
    let merged = shard::merge::<Tuning, JobOutput>(dirs, SHARD_STUDY, out)?;
    let config: ShardConfig = serde_json::from_value(merged.config.clone())?;
    Ok((config, merged))
}

/// Copies the model caches (`model`, `vae`, `cvae`) of the shard folder `from` into `out`,
/// as a single run leaves them there (every shard trained or loaded the same ones).
pub fn copy_model_caches(from: &Path, out: &Path) -> Result<()> {
    for part in ["model", "vae", "cvae"] {
        shard::copy_job_files(from, out, Path::new(part))?;
    }
    Ok(())
}

/// Writes `generative.json` (every setting's tuning, timing, class choices and failures)
/// and `failures_<noise>.png` (the worst wrong-class digits: truth, TV, cvae, cvae_dc,
/// cvae_dc oracle), and returns summary lines: per setting, the wrong-class rate of the
/// label-free conditional search and the time per digit.
pub fn write_generative(out: &Path, outcome: &Outcome, n_test: usize) -> Result<String> {
    if outcome.generative.is_empty() {
        return Ok(String::new());
    }
    write_json(out.join("generative.json"), &outcome.generative)?;
    let mut noises: Vec<Option<f64>> = Vec::new();
    for g in &outcome.generative {
        if !noises.contains(&g.noise_i0) {
            noises.push(g.noise_i0);
        }
    }
    for noise in noises {
        failure_grid(out, outcome, noise)?;
    }
    let mut s = String::from(
        "\n| angles | noise | label-free class wrong | median confidence (right / wrong) | vae search / refine s per digit | cvae search / refine s per digit | tuning s (vae + cvae) |\n| --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for g in &outcome.generative {
        let wrong: Vec<f64> = g
            .digits
            .iter()
            .filter(|d| d.class != d.label)
            .map(|d| d.confidence)
            .collect();
        let right: Vec<f64> = g
            .digits
            .iter()
            .filter(|d| d.class == d.label)
            .map(|d| d.confidence)
            .collect();
        let per =
            |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.3}", v / n_test as f64));
        let tune = g.vae.as_ref().map_or(0.0, |m| m.tune_seconds)
            + g.cvae.as_ref().map_or(0.0, |m| m.tune_seconds);
        s.push_str(&format!(
            "| {} | {} | {}/{} | {} / {} | {} / {} | {} / {} | {tune:.1} |\n",
            g.n_angles,
            noise_name(g.noise_i0),
            wrong.len(),
            g.digits.len(),
            median(&right),
            median(&wrong),
            per(g.vae.as_ref().map(|m| m.search_seconds)),
            per(g.vae.as_ref().map(|m| m.refine_seconds)),
            per(g.cvae.as_ref().map(|m| m.search_seconds)),
            per(g.cvae.as_ref().map(|m| m.refine_seconds)),
        ));
    }
    Ok(s)
}

fn median(v: &[f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    format!("{:.3}", v[v.len() / 2])
}

/// The failure grid of one noise level (nothing when no digit was misclassified).
fn failure_grid(out: &Path, outcome: &Outcome, noise: Option<f64>) -> Result<()> {
    let mut data = Vec::new();
    let (mut rows, mut captions) = (Vec::new(), Vec::new());
    for g in outcome.generative.iter().filter(|g| g.noise_i0 == noise) {
        for f in &g.failures {
            for img in &f.images {
                data.extend(img.iter().copied());
            }
            rows.push(format!("{} ang #{}", g.n_angles, f.digit));
            captions.extend([
                format!("{} as {}", f.label, f.class),
                "tv".into(),
                format!("conf {:.2}", f.confidence),
                format!("{:+.1} dB", f.psnr_vs_tv),
                "oracle".into(),
            ]);
        }
    }
    let n = data.len() / (28 * 28);
    if n == 0 {
        return Ok(());
    }
    let labels = ["truth", "tv", "cvae", "cvae+dc", "cvae+dc-orc"]
        .map(String::from)
        .to_vec();
    let grid = ImageGrid::new(5)
        .with_column_labels(labels)
        .with_row_labels(rows)
        .with_captions(captions)
        .with_scale(3);
    grid.write_png(
        out.join(format!("failures_{}.png", noise_name(noise))),
        ImageRef::new(&data, n, 28, 28)?,
    )?;
    Ok(())
}

/// Legend lines per column below a panel (the 140 px under it hold five).
const LEGEND_ROWS: usize = 5;

/// One figure per metric and noise level: a panel per family of methods, each with its
/// arms' means and 95% CI bars against the angle count (log axis, ticks at the counts),
/// the legend below the panel.
pub fn plot_metric(
    path: &Path,
    rows: &[Row],
    noise: Option<f64>,
    metric: Metric,
    angles: &[usize],
    font: bool,
) -> Result<()> {
    use plotters::prelude::*;
    let sel: Vec<&Row> = rows.iter().filter(|r| r.noise_i0 == noise).collect();
    let (lo, hi) = sel
        .iter()
        .map(|r| metric.of(r))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (m, c)| {
            (lo.min(m - c), hi.max(m + c))
        });
    if !(lo.is_finite() && hi.is_finite()) {
        return Ok(());
    }
    let pad = (hi - lo).max(1e-6) * 0.05;
    let (amin, amax) = (
        *angles.iter().min().unwrap_or(&1) as f64,
        *angles.iter().max().unwrap_or(&1) as f64,
    );
    let ticks: Vec<f64> = angles.iter().map(|&a| a as f64).collect();
    let (w, h) = (500 * Family::ALL.len() as u32, 560u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = if font {
            root.titled(
                &format!(
                    "{} vs number of angles, noise {}",
                    metric.axis_label(),
                    noise_name(noise)
                ),
                ("sans-serif", 22),
            )?
        } else {
            root
        };
        for (panel, family) in root
            .split_evenly((1, Family::ALL.len()))
            .iter()
            .zip(Family::ALL)
        {
            let (area, legend) = panel.split_vertically(h - 140);
            let mut b = ChartBuilder::on(&area);
            b.margin(12)
                .x_label_area_size(if font { 40 } else { 10 })
                .y_label_area_size(if font { 64 } else { 10 });
            if font {
                b.caption(family.title(), ("sans-serif", 18));
            }
            let x = ((amin * 0.85)..(amax * 1.15))
                .log_scale()
                .with_key_points(ticks.clone());
            let mut chart = b.build_cartesian_2d(x, lo - pad..hi + pad)?;
            let mut mesh = chart.configure_mesh();
            if font {
                mesh.x_desc("number of angles (log scale)")
                    .y_desc(metric.axis_label())
                    .x_label_formatter(&|v| format!("{v:.0}"));
            } else {
                mesh.x_labels(0).y_labels(0);
            }
            mesh.draw()?;
            let arms = ARMS.iter().enumerate().filter(|(_, a)| {
                // the generative panel shows the baselines it is compared with
                a.method.family() == family
                    || (family == Family::Generative
                        && matches!(a.method, Method::TvPdhg | Method::Sirt100))
            });
            for (k, (a, arm)) in arms.enumerate() {
                let pts: Vec<(f64, f64, f64)> = angles
                    .iter()
                    .filter_map(|&na| {
                        let r = sel.iter().find(|r| {
                            r.method == arm.method.name()
                                && r.label_mode == arm.label_mode.name()
                                && r.n_angles == na
                        })?;
                        let (m, c) = metric.of(r);
                        Some((na as f64, m, c))
                    })
                    .collect();
                let ((r, g, b), _) = ARM_COLORS[a];
                let color = RGBColor(r, g, b);
                chart.draw_series(LineSeries::new(
                    pts.iter().map(|p| (p.0, p.1)),
                    color.stroke_width(2),
                ))?;
                chart.draw_series(pts.iter().map(|p| {
                    PathElement::new(
                        vec![(p.0, p.1 - p.2), (p.0, p.1 + p.2)],
                        color.stroke_width(1),
                    )
                }))?;
                chart.draw_series(
                    pts.iter()
                        .map(|p| Circle::new((p.0, p.1), 3, color.filled())),
                )?;
                // the legend, outside the data: one line per arm below the panel, in two
                // columns past LEGEND_ROWS arms
                let (column, row) = (k / LEGEND_ROWS, k % LEGEND_ROWS);
                let (x, y) = (70 + 220 * column as i32, 14 + 24 * row as i32);
                legend.draw(&PathElement::new(
                    vec![(x, y), (x + 30, y)],
                    color.stroke_width(3),
                ))?;
                if font {
                    legend.draw(&Text::new(arm.name(), (x + 40, y - 8), ("sans-serif", 16)))?;
                }
            }
        }
        root.present()?;
    }
    crate::plot_support::write_rgb_png(path, w, h, buf)
}
