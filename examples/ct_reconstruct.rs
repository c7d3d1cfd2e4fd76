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

#[path = "flag_support/mod.rs"]
mod flag_support;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
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
    /// Image size of the phantom (rows = cols); with --sino, the image size when neither
    /// --rows/--cols nor --truth give it.
    #[arg(long, default_value_t = 128, value_parser = flag_support::at_least_one)]
    size: usize,
    /// Number of uniform angles over a half turn (phantom mode only).
    #[arg(long, default_value_t = 90, value_parser = flag_support::at_least_one)]
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
    #[arg(long, default_value_t = 100, value_parser = flag_support::at_least_one)]
    sirt_iterations: usize,
    /// TV weight.
    #[arg(long, default_value_t = 0.3)]
    tv_weight: f32,
    /// TV (PDHG) iterations.
    #[arg(long, default_value_t = 1000, value_parser = flag_support::at_least_one)]
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

/// The flags that only apply without `--sino` (phantom mode) and only with it.
const PHANTOM_ONLY: [&str; 5] = ["angles_count", "n_det", "i0", "attenuation_scale", "seed"];
const SINO_ONLY: [&str; 4] = ["angles", "truth", "rows", "cols"];

/// Parses the command line and checks every flag that needs no file.
fn parse_args() -> Result<Args> {
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches)?;
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let flag = |id: &str| format!("--{}", id.replace('_', "-"));
    let (mode, foreign) = match args.sino {
        Some(_) => ("with --sino", PHANTOM_ONLY.iter().find(|f| given(f))),
        None => (
            "without --sino (phantom mode)",
            SINO_ONLY.iter().find(|f| given(f)),
        ),
    };
    if let Some(f) = foreign {
        let hint = match *f {
            "angles" => {
                " (it names the angles .npy of --sino; the phantom's angle count is --angles-count)"
            }
            _ => "",
        };
        bail!("{} does not apply {mode}{hint}", flag(f));
    }
    if args.sino.is_some() && given("size") && (args.rows.is_some() || args.truth.is_some()) {
        bail!("--size does not apply with --sino and --rows/--cols or --truth (they give the image shape)");
    }
    if args.sino.is_some() {
        ensure!(
            args.angles.is_some(),
            "--sino needs --angles (the angles .npy, radians)"
        );
        ensure!(
            args.rows.is_some() == args.cols.is_some(),
            "--rows and --cols go together (give both or neither)"
        );
    }
    ensure!(args.n_det != Some(0), "--n-det must be at least 1");
    ensure!(
        args.rows != Some(0) && args.cols != Some(0),
        "--rows / --cols must be at least 1"
    );
    ensure!(
        args.det_spacing.is_finite() && args.det_spacing > 0.0,
        "--det-spacing must be finite and > 0, got {}",
        args.det_spacing
    );
    ensure!(
        args.i0.is_finite() && args.i0 >= 0.0,
        "--i0 must be finite and >= 0 (0: noiseless), got {}",
        args.i0
    );
    if let Some(a) = args.attenuation_scale {
        ensure!(
            a.is_finite() && a > 0.0,
            "--attenuation-scale must be finite and > 0, got {a}"
        );
        ensure!(
            args.i0 > 0.0,
            "--attenuation-scale does not apply with --i0 0 (noiseless)"
        );
    }
    ensure!(
        args.tv_weight.is_finite() && args.tv_weight >= 0.0,
        "--tv-weight must be finite and >= 0, got {}",
        args.tv_weight
    );
    flag_support::output_folder("--out", &args.out)?;
    Ok(args)
}

/// What is reconstructed: the truth (when known), the geometry, the sinogram and the seconds
/// its projection took (0 when read from a file).
type Problem = (Option<Array2<f32>>, ParallelBeam2d, Array2<f32>, f64);

/// The [`Problem`], read from `--sino` or made from the phantom; every shape checked.
fn problem(args: &Args) -> Result<Problem> {
    let Some(path) = &args.sino else {
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
        return Ok((Some(truth), geom, sino, seconds));
    };
    let sino = read_npy2(path).with_context(|| format!("--sino {}", path.display()))?;
    let angles_path = args.angles.as_ref().context("--sino needs --angles")?;
    let angles =
        read_angles(angles_path).with_context(|| format!("--angles {}", angles_path.display()))?;
    ensure!(
        angles.len() == sino.nrows(),
        "--angles holds {} angles but the sinogram has {} rows (one per angle)",
        angles.len(),
        sino.nrows()
    );
    let truth = args.truth.as_ref().map(read_npy2).transpose()?;
    let (rows, cols) = match (&truth, args.rows, args.cols) {
        (_, Some(r), Some(c)) => (r, c),
        (Some(t), _, _) => t.dim(),
        _ => (args.size, args.size),
    };
    if let Some(t) = &truth {
        ensure!(
            t.dim() == (rows, cols),
            "--truth is {:?} but the image is {rows} x {cols} (--rows / --cols)",
            t.dim()
        );
    }
    let geom = ParallelBeam2d::new(rows, cols, angles, sino.ncols(), args.det_spacing)?;
    Ok((truth, geom, sino, 0.0))
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    let args = parse_args()?;
    let (truth, geom, sino, sino_seconds) = problem(&args)?;
    // every solver is configured (and so checked) before anything is written
    let fbp = Fbp::new(FbpConfig::default())?;
    let sirt = Sirt::new(SirtConfig {
        iterations: args.sirt_iterations,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    })
    .context("--sirt-iterations")?;
    let tv = TvPdhg::new(TvConfig {
        weight: args.tv_weight,
        iterations: args.tv_iterations,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    })
    .context("--tv-weight / --tv-iterations")?;
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
    let fbp = fbp.reconstruct(&op, sino.view())?;
    recs.push(("FBP".into(), fbp, start.elapsed().as_secs_f64()));
    let start = Instant::now();
    let sirt = sirt.reconstruct(&op, sino.view())?;
    recs.push((
        format!("SIRT-{}", args.sirt_iterations),
        sirt.image,
        start.elapsed().as_secs_f64(),
    ));
    let start = Instant::now();
    let tv = tv.reconstruct(&op, sino.view())?;
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
