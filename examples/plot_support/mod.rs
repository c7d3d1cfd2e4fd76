//! Plotting helpers shared by the examples that draw with plotters (`ct_study`,
//! `prototype_study`, `tsne`): a font for plot text and PNG output of an RGB buffer.
#![allow(dead_code)]

use std::path::Path;

use anyhow::{Context, Result};
use netinv::core::atomic_write_bytes;

/// Registers DejaVu Sans for plot text if the system has it; returns whether it did (plots
/// are drawn without text otherwise: plotters has no built-in font).
pub fn register_font() -> bool {
    for p in [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ] {
        if let Ok(bytes) = std::fs::read(p) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(
                "sans-serif",
                plotters::style::FontStyle::Normal,
                bytes,
            )
            .is_ok()
            {
                return true;
            }
        }
    }
    false
}

/// Writes a plotters `BitMapBackend` RGB buffer (`width * height * 3` bytes) as a PNG,
/// atomically.
pub fn write_rgb_png(path: &Path, width: u32, height: u32, buf: Vec<u8>) -> Result<()> {
    let img = image::RgbImage::from_raw(width, height, buf).context("plot buffer size")?;
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    atomic_write_bytes(path, &bytes)?;
    Ok(())
}
