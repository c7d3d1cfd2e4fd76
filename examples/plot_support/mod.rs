//! Plotting helpers shared by the examples that draw with plotters (`ct_study`,
//! `prototype_study`, `tsne`): the font for plot text and PNG output of an RGB buffer.
#![allow(dead_code)]

use std::path::Path;

use anyhow::{Context, Result};
use netinv::core::atomic_write_bytes;

/// DejaVu Sans cut down to Latin, Greek and common symbols (31.5 KB), compiled into the
/// binary so that plot text renders on any machine; its licence and how it was made are in
/// `LICENSE-DejaVu.txt` beside this file.
pub const PLOT_FONT: &[u8] = include_bytes!("DejaVuSans-subset.ttf");

/// Registers the embedded font as plotters' "sans-serif" (normal, bold, italic and oblique
/// all map to it). Returns true once it is registered: plotters has no built-in font, and
/// without this call plots are drawn without text. Calling it again is harmless.
pub fn register_font() -> bool {
    use plotters::style::FontStyle;
    [
        FontStyle::Normal,
        FontStyle::Bold,
        FontStyle::Italic,
        FontStyle::Oblique,
    ]
    .into_iter()
    .all(|style| plotters::style::register_font("sans-serif", style, PLOT_FONT).is_ok())
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
