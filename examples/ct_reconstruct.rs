//! CT reconstruction with the classical methods: FBP (Ram-Lak), SIRT-100 and TV (PDHG),
//! on the modified Shepp-Logan phantom or on a user's `.npy` sinogram.
//!
//! ```text
//! cargo run --release --example ct_reconstruct -- --out out/ct
//! cargo run --release --example ct_reconstruct -- --sino sino.npy --angles angles.npy \
//!     [--truth image.npy] --rows 128 --cols 128 --out out/ct-user
//! ```
//!
//! Writes `panel.png` (truth when known, FBP, SIRT, TV, with PSNR/SSIM captions),
//! `metrics.json` (MSE/PSNR/SSIM against the truth, timings, the settings), the
//! reconstructions, the sinogram, the angles and the truth as `.npy` into `--out`
//! (`tools/tomo/compare_quality.py` reads them to run scikit-image and ASTRA beside us). Without `--sino`, the sinogram is the Joseph
//! projection of the phantom with Poisson noise (`--i0` photons per ray, `--i0 0` for none).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use ndarray::Array2;
use netinv::core::{write_json, ImageGrid, ImageRef};
use netinv::metrics::{mse, psnr, ssim, SsimConfig};
use netinv::tomo::{
    poisson_noise, read_angles, read_npy2, shepp_logan, write_npy, write_npy1, Fbp, FbpConfig,
    LinearOperator, ParallelBeam2d, RayTransform, Sirt, SirtConfig, TvConfig, TvPdhg,
};
use serde::Serialize;

#[derive(Parser, Debug, Serialize)]
#[command(about = "FBP, SIRT and TV reconstructions of a parallel-beam sinogram")]
struct Args {
    /// Image size of the phantom (rows = cols), ignored with --sino unless --rows/--cols miss.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Number of uniform angles over a half turn (phantom mode).
    #[arg(long, default_value_t = 90)]
    angles_count: usize,
    /// Detector count (default: ceil(sqrt(2) size) + 2).
    #[arg(long)]
    n_det: Option<usize>,
    /// Detector spacing.
    #[arg(long, default_value_t = 1.0)]
    det_spacing: f32,
    /// Incident photons per ray for Poisson noise (0: noiseless).
    #[arg(long, default_value_t = 1e4)]
    i0: f64,
    /// Optical depth per unit line integral for the Poisson model (default: 4 / size, so
    /// an object of intensity 1 across the image attenuates by e^-4).
    #[arg(long)]
    attenuation_scale: Option<f64>,
    /// Noise seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A user's sinogram `[angles, detectors]` (.npy) instead of the phantom.
    #[arg(long)]
    sino: Option<PathBuf>,
    /// The angles (radians, .npy) of --sino.
    #[arg(long)]
    angles: Option<PathBuf>,
    /// The true image (.npy) of --sino, for metrics.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Image rows for --sino.
    #[arg(long)]
    rows: Option<usize>,
    /// Image columns for --sino.
    #[arg(long)]
    cols: Option<usize>,
    /// SIRT iterations.
    #[arg(long, default_value_t = 100)]
    sirt_iterations: usize,
    /// TV weight.
    #[arg(long, default_value_t = 0.3)]
    tv_weight: f32,
    /// TV (PDHG) iterations.
    #[arg(long, default_value_t = 1000)]
    tv_iterations: usize,
    /// Output folder.
    #[arg(long, default_value = "out/ct_reconstruct")]
    out: PathBuf,
}

#[derive(Serialize)]
struct MethodReport {
    name: String,
    seconds: f64,
    mse: Option<f64>,
    psnr: Option<f64>,
    ssim: Option<f64>,
}

#[derive(Serialize)]
struct Report<'a> {
    args: &'a Args,
    geometry: &'a ParallelBeam2d,
    sinogram_seconds: f64,
    methods: Vec<MethodReport>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (truth, geom, sino, sino_seconds) = match &args.sino {
        Some(path) => {
            let sino = read_npy2(path)?;
            let Some(angles_path) = &args.angles else {
                bail!("--sino needs --angles");
            };
            let angles = read_angles(angles_path)?;
            let truth = args.truth.as_ref().map(read_npy2).transpose()?;
            let (rows, cols) = match (&truth, args.rows, args.cols) {
                (_, Some(r), Some(c)) => (r, c),
                (Some(t), _, _) => t.dim(),
                _ => (args.size, args.size),
            };
            let geom = ParallelBeam2d::new(rows, cols, angles, sino.ncols(), args.det_spacing)?;
            (truth, geom, sino, 0.0)
        }
        None => {
            let n = args.size;
            let n_det = args
                .n_det
                .unwrap_or((n as f64 * std::f64::consts::SQRT_2).ceil() as usize + 2);
            let geom = ParallelBeam2d::uniform(n, n, args.angles_count, n_det, args.det_spacing)?;
            let truth = shepp_logan(n, n)?;
            let op = RayTransform::new(geom.clone())?;
            let start = Instant::now();
            let clean = op.apply(truth.view());
            let seconds = start.elapsed().as_secs_f64();
            let sino = if args.i0 > 0.0 {
                let scale = args.attenuation_scale.unwrap_or(4.0 / n as f64);
                poisson_noise(clean.view(), args.i0, scale, args.seed)?
            } else {
                clean
            };
            (Some(truth), geom, sino, seconds)
        }
    };
    let op = RayTransform::new(geom.clone())?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {:?}", args.out))?;
    write_npy(args.out.join("sino.npy"), sino.view())?;
    write_npy1(
        args.out.join("angles.npy"),
        ndarray::ArrayView1::from(geom.angles()),
    )?;
    if let Some(t) = &truth {
        write_npy(args.out.join("truth.npy"), t.view())?;
    }

    let mut recs: Vec<(String, Array2<f32>, f64)> = Vec::new();
    let start = Instant::now();
    let fbp = Fbp::new(FbpConfig::default())?.reconstruct(&op, sino.view())?;
    recs.push(("FBP".into(), fbp, start.elapsed().as_secs_f64()));
    let start = Instant::now();
    let sirt = Sirt::new(SirtConfig {
        iterations: args.sirt_iterations,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    })?
    .reconstruct(&op, sino.view())?;
    recs.push((
        format!("SIRT-{}", args.sirt_iterations),
        sirt.image,
        start.elapsed().as_secs_f64(),
    ));
    let start = Instant::now();
    let tv = TvPdhg::new(TvConfig {
        weight: args.tv_weight,
        iterations: args.tv_iterations,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    })?
    .reconstruct(&op, sino.view())?;
    recs.push(("TV".into(), tv.image, start.elapsed().as_secs_f64()));

    let ssim_cfg = SsimConfig::default();
    let mut methods = Vec::new();
    let mut captions = Vec::new();
    let mut pixels: Vec<f32> = Vec::new();
    if let Some(t) = &truth {
        pixels.extend(t.iter());
        captions.push("truth".to_string());
    }
    for (name, rec, seconds) in &recs {
        let (m, p, s) = match &truth {
            Some(t) => (
                Some(mse(t.view(), rec.view())?),
                Some(psnr(t.view(), rec.view(), 1.0)?),
                Some(ssim(t.view(), rec.view(), &ssim_cfg)?),
            ),
            None => (None, None, None),
        };
        captions.push(match (p, s) {
            (Some(p), Some(s)) => format!("{name} {p:.1}dB {s:.2}"),
            _ => name.clone(),
        });
        println!(
            "{name:>9}: {seconds:8.3} s  MSE {}  PSNR {}  SSIM {}",
            m.map_or("-".into(), |v| format!("{v:.5}")),
            p.map_or("-".into(), |v| format!("{v:.2} dB")),
            s.map_or("-".into(), |v| format!("{v:.4}")),
        );
        pixels.extend(rec.iter());
        write_npy(
            args.out.join(format!("{}.npy", name.to_lowercase())),
            rec.view(),
        )?;
        methods.push(MethodReport {
            name: name.clone(),
            seconds: *seconds,
            mse: m,
            psnr: p,
            ssim: s,
        });
    }
    let (rows, cols) = geom.image_shape();
    let n = captions.len();
    let scale = (256 / rows.max(cols)).max(1);
    let grid = ImageGrid::new(n).with_scale(scale).with_captions(captions);
    grid.write_png(
        args.out.join("panel.png"),
        ImageRef::new(&pixels, n, rows, cols)?,
    )?;
    let report = Report {
        args: &args,
        geometry: &geom,
        sinogram_seconds: sino_seconds,
        methods,
    };
    write_json(args.out.join("metrics.json"), &report)?;
    println!("wrote {}", args.out.display());
    Ok(())
}
