use netinv_data::Mnist;
use netinv_metrics::{psnr, ssim, SsimConfig};
use netinv_tomo::{LinearOperator, ParallelBeam2d, RayTransform, Sirt, SirtConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mnist = Mnist::embedded()?; // or Mnist::from_dir("path/to/mnist")?
    let test = mnist.test();
    let (a, b) = (test.image(0), test.image(1));
    println!("label {} vs {}", test.labels()[0], test.labels()[1]);
    println!("PSNR {:.2} dB", psnr(a, b, 1.0)?);
    println!("SSIM {:.4}", ssim(a, b, &SsimConfig::gaussian())?);

    // Reconstruct digit 0 from 8 parallel-beam projections by SIRT (ASTRA's conventions).
    let scanner = RayTransform::new(ParallelBeam2d::uniform(28, 28, 8, 42, 1.0)?)?;
    let sinogram = scanner.apply(a);
    let sirt = Sirt::new(SirtConfig {
        iterations: 100,
        min: Some(0.0),
        max: Some(1.0),
        ..Default::default()
    })?;
    let reconstruction = sirt.reconstruct(&scanner, sinogram.view())?.image;
    println!(
        "SIRT from 8 angles: PSNR {:.2} dB",
        psnr(a, reconstruction.view(), 1.0)?
    );
    Ok(())
}
