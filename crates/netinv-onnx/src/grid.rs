//! Colour image grids: netinv-core's `ImageGrid` draws one channel; a 3-channel model's
//! inversions are drawn here in RGB.

use std::path::Path;

use image::{ImageFormat, Rgb, RgbImage};
use ndarray::ArrayView4;

use crate::{Error, Result};

/// The gap between cells and around the grid, in output pixels.
const GAP: u32 = 2;
/// The colour of the gaps (dark grey, so black and white images both stand out).
const BACKGROUND: Rgb<u8> = Rgb([64, 64, 64]);

/// Draws `images` `[n, C, H, W]` (C = 1 as grey, C = 3 as RGB; values clamped to [0, 1])
/// in `columns` columns, each pixel as a `scale x scale` block.
///
/// # Errors
/// [`Error::InvalidConfig`] for `columns == 0`, `scale == 0`, no images, or C other than 1
/// or 3.
///
/// # Examples
/// ```
/// let images = ndarray::Array4::<f32>::from_elem((3, 3, 4, 4), 0.5);
/// let grid = netinv_onnx::render_grid(images.view(), 2, 2).unwrap();
/// assert_eq!(grid.dimensions(), (2 * 8 + 3 * 2, 2 * 8 + 3 * 2));
/// ```
pub fn render_grid(images: ArrayView4<f32>, columns: usize, scale: usize) -> Result<RgbImage> {
    let (n, c, h, w) = images.dim();
    let invalid = |field: &'static str, reason: &str| Error::InvalidConfig {
        field,
        reason: reason.into(),
    };
    if columns == 0 || scale == 0 {
        return Err(invalid("columns", "columns and scale must be at least 1"));
    }
    if n == 0 {
        return Err(invalid("images", "no images to draw"));
    }
    if c != 1 && c != 3 {
        return Err(invalid("images", "grids draw 1 (grey) or 3 (RGB) channels"));
    }
    let rows = n.div_ceil(columns);
    let (cw, ch) = ((w * scale) as u32, (h * scale) as u32);
    let width = columns as u32 * cw + (columns as u32 + 1) * GAP;
    let height = rows as u32 * ch + (rows as u32 + 1) * GAP;
    let mut img = RgbImage::from_pixel(width, height, BACKGROUND);
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    for k in 0..n {
        let (r, col) = ((k / columns) as u32, (k % columns) as u32);
        let (x0, y0) = (GAP + col * (cw + GAP), GAP + r * (ch + GAP));
        for y in 0..h {
            for x in 0..w {
                let pick = |ch: usize| byte(images[[k, if c == 1 { 0 } else { ch }, y, x]]);
                let px = Rgb([pick(0), pick(1), pick(2)]);
                for dy in 0..scale as u32 {
                    for dx in 0..scale as u32 {
                        img.put_pixel(
                            x0 + x as u32 * scale as u32 + dx,
                            y0 + y as u32 * scale as u32 + dy,
                            px,
                        );
                    }
                }
            }
        }
    }
    Ok(img)
}

/// [`render_grid`] written as a PNG to `path`, atomically (netinv-core's atomic write).
///
/// # Errors
/// As [`render_grid`]; [`Error::Core`] if the file cannot be written.
pub fn write_grid_png(
    path: impl AsRef<Path>,
    images: ArrayView4<f32>,
    columns: usize,
    scale: usize,
) -> Result<()> {
    let img = render_grid(images, columns, scale)?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, ImageFormat::Png)
        .map_err(|e| Error::InvalidConfig {
            field: "png",
            reason: e.to_string(),
        })?;
    netinv_core::atomic_write_bytes(path.as_ref(), bytes.get_ref())?;
    Ok(())
}
