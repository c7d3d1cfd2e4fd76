//! t-SNE of the VAE latent means of the 2,000 embedded test digits (thesis figure 3.5).
//!
//! ```text
//! cargo run --release --example tsne -- --out DIR [--vae runs/vae --perplexity 30
//!     --epochs 1000 --theta 0.5 --lr 200 --seed 0 --parallel]
//! ```
//!
//! The VAE in `--vae` is trained there first (30 epochs) if missing. Writes `tsne.json`
//! (`coordinates` [[x, y]; 2000], `labels`, `knn_preservation`: the fraction of each point's
//! 10 nearest latent neighbours kept among its 10 nearest in 2-D, `seconds` of the t-SNE
//! fit, the config), `tsne.png` (scatter coloured by class, with a legend) and
//! `latent_means.json` (the embedded points `[2000 x k]` and labels). Without
//! `--parallel` the fit runs on one thread and repeats bit for bit.

#[path = "flag_support/mod.rs"]
mod flag_support;
#[path = "interp_support/mod.rs"]
mod interp_support;
#[path = "plot_support/mod.rs"]
mod plot_support;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use candle_core::Device;
use clap::Parser;
use netinv::core::write_json;
use netinv::interp::{knn_preservation, tsne_2d, TsneConfig};
use netinv::models::{VaeConfig, VaeTrainConfig};
use serde_json::json;

/// Embed the latent means of the test digits in 2-D.
#[derive(Debug, Parser)]
struct Args {
    /// Output folder.
    #[arg(long, default_value = "runs/tsne")]
    out: PathBuf,
    /// VAE folder (trained there if missing).
    #[arg(long, default_value = "runs/vae")]
    vae: PathBuf,
    /// Perplexity (> 0, below a third of the number of points).
    #[arg(long, default_value_t = 30.0, value_parser = flag_support::positive)]
    perplexity: f64,
    /// Gradient iterations.
    #[arg(long, default_value_t = 1000)]
    epochs: usize,
    /// Barnes-Hut opening angle.
    #[arg(long, default_value_t = 0.5, value_parser = flag_support::positive)]
    theta: f64,
    /// Learning rate.
    #[arg(long, default_value_t = 200.0, value_parser = flag_support::positive)]
    lr: f64,
    /// Seed of the initial embedding.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Use the global rayon pool (faster on several cores, not bit-repeatable).
    #[arg(long)]
    parallel: bool,
}

const COLORS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

fn scatter(path: &Path, xy: &[f32], labels: &[u8], title: &str, font: bool) -> Result<()> {
    use plotters::prelude::*;
    let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for p in xy.chunks(2) {
        x0 = x0.min(p[0]);
        x1 = x1.max(p[0]);
        y0 = y0.min(p[1]);
        y1 = y1.max(p[1]);
    }
    let (px, py) = (0.05 * (x1 - x0).max(1e-3), 0.05 * (y1 - y0).max(1e-3));
    let (w, h) = (900u32, 800u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut b = ChartBuilder::on(&root);
        b.margin(15);
        if font {
            b.caption(title, ("sans-serif", 20));
        }
        let mut chart =
            b.build_cartesian_2d(x0 - px..x1 + px + 0.25 * (x1 - x0), y0 - py..y1 + py)?;
        for class in 0..10u8 {
            let (r, g, bl) = COLORS[usize::from(class)];
            let color = RGBColor(r, g, bl);
            let series = chart.draw_series(
                xy.chunks(2)
                    .zip(labels)
                    .filter(|(_, &l)| l == class)
                    .map(|(p, _)| Circle::new((p[0], p[1]), 2, color.filled())),
            )?;
            if font {
                series
                    .label(format!("{class}"))
                    .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
            }
        }
        if font {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }
        root.present()?;
    }
    plot_support::write_rgb_png(path, w, h, buf)
}

/// The t-SNE settings of the flags.
fn tsne_config(args: &Args) -> TsneConfig {
    TsneConfig {
        perplexity: args.perplexity,
        theta: args.theta,
        epochs: args.epochs,
        learning_rate: Some(args.lr),
        seed: args.seed,
        deterministic: !args.parallel,
    }
}

/// Checks every flag before a VAE is trained or a file written: the t-SNE settings (with
/// the perplexity against the number of points) and the folders.
fn validate(args: &Args, points: usize) -> Result<()> {
    if args.epochs < 250 {
        anyhow::bail!(
            "--epochs {}: must be at least 250 (t-SNE's early-exaggeration phase)",
            args.epochs
        );
    }
    tsne_config(args).validate()?;
    if 3.0 * args.perplexity.floor() >= points as f64 - 1.0 {
        anyhow::bail!(
            "--perplexity {}: too large for {points} points (needs 3 * perplexity < {})",
            args.perplexity,
            points - 1
        );
    }
    flag_support::output_folder("--out", &args.out)?;
    flag_support::cache_folder("--vae", &args.vae, netinv::models::VAE_CONFIG_FILE, "VAE")
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    let args = Args::parse();
    let mnist = netinv::data::Mnist::embedded()?;
    validate(&args, mnist.test().len())?;
    let vae = interp_support::load_or_train_vae(
        &VaeConfig::default(),
        &VaeTrainConfig {
            epochs: 30,
            ..Default::default()
        },
        0,
        &mnist,
        &args.vae,
    )?;
    let k = vae.config().latent_dim;
    let test = mnist.test();
    let means = vae.encode_means(test, &Device::Cpu)?;
    let cfg = tsne_config(&args);
    let started = Instant::now();
    let cpu0 = netinv::core::process_cpu_seconds().unwrap_or(0.0);
    let xy = tsne_2d(&means, k, &cfg)?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = netinv::core::process_cpu_seconds().unwrap_or(0.0) - cpu0;
    let kp = knn_preservation(&means, k, &xy, 2, 10)?;
    let coordinates: Vec<[f32; 2]> = xy.chunks(2).map(|p| [p[0], p[1]]).collect();
    write_json(
        args.out.join("tsne.json"),
        &json!({
            "coordinates": coordinates,
            "labels": test.labels(),
            "knn_preservation": kp,
            "k": 10,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "config": cfg,
            "latent_dim": k,
            "points": test.len(),
            "vae": args.vae,
            "threads": std::env::var("RAYON_NUM_THREADS").ok(),
        }),
    )?;
    // The input too, so that other t-SNE implementations can be compared on it.
    write_json(
        args.out.join("latent_means.json"),
        &json!({ "dim": k, "means": means, "labels": test.labels() }),
    )?;
    let font = plot_support::register_font();
    scatter(
        &args.out.join("tsne.png"),
        &xy,
        test.labels(),
        &format!(
            "t-SNE of VAE latent means ({} test digits, perplexity {}), 10-NN kept {:.3}",
            test.len(),
            args.perplexity,
            kp
        ),
        font,
    )?;
    println!(
        "t-SNE of {} points: {seconds:.2} s wall, {cpu:.2} s CPU; 10-NN preservation {kp:.4}; wrote {}/tsne.json and tsne.png",
        test.len(),
        args.out.display()
    );
    Ok(())
}
