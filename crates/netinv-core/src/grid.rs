//! PNG grids of grey-scale images, with optional captions and labels in an 8x8 bitmap font.

use std::path::Path;

use font8x8::UnicodeFonts;
use image::{GrayImage, Luma};

use crate::{atomic_write, Error, Result};

const GLYPH: usize = 8;
const TEXT_ROW: usize = GLYPH + 4;
const TEXT_COLOUR: u8 = 255;

/// A borrowed stack of `n` grey-scale images of `height x width` pixels, row-major
/// `[n, height, width]`, values in [0, 1] (clipped when drawn; NaN draws black).
#[derive(Debug, Clone, Copy)]
pub struct ImageRef<'a> {
    /// The pixel values, `n * height * width` of them.
    pub data: &'a [f32],
    /// Number of images.
    pub n: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
}

impl<'a> ImageRef<'a> {
    /// Checks that `data` holds `n * height * width` values and that no dimension is zero.
    ///
    /// # Errors
    /// [`Error::Shape`] otherwise.
    pub fn new(data: &'a [f32], n: usize, height: usize, width: usize) -> Result<Self> {
        if n == 0 || height == 0 || width == 0 || data.len() != n * height * width {
            return Err(Error::Shape {
                expected: format!(
                    "non-empty [{n}, {height}, {width}] = {} values",
                    n * height * width
                ),
                got: format!("{} values", data.len()),
            });
        }
        Ok(Self {
            data,
            n,
            height,
            width,
        })
    }

    fn pixel(&self, index: usize, row: usize, col: usize) -> u8 {
        let v = self.data[(index * self.height + row) * self.width + col];
        // `as u8` saturates and maps NaN to 0.
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// Layout of an image grid: `columns` tiles per row, each image magnified `scale` times,
/// `padding` pixels between tiles, optional text.
///
/// * `captions`: one line under each tile (for example a predicted class and probability);
/// * `column_labels`: a header row above the columns (for example the target classes);
/// * `row_labels`: a label left of each row (for example "init", "step 100").
///
/// Text is drawn in an 8x8 bitmap font and cut at the tile's width.
///
/// # Examples
/// ```
/// use netinv_core::{ImageGrid, ImageRef};
/// let pixels: Vec<f32> = (0..4 * 28 * 28).map(|i| (i % 28) as f32 / 27.0).collect();
/// let images = ImageRef::new(&pixels, 4, 28, 28).unwrap();
/// let grid = ImageGrid::new(2).with_captions(vec!["a".into(), "b".into(), "c".into(), "d".into()]);
/// let png = grid.render(images).unwrap();
/// assert_eq!(png.width(), 2 * 56 + 3 * 2);
/// let dir = tempfile::tempdir().unwrap();
/// grid.write_png(dir.path().join("grid.png"), images).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ImageGrid {
    /// Tiles per row (at least 1).
    pub columns: usize,
    /// Integer magnification of every image (at least 1); default 2.
    pub scale: usize,
    /// Pixels between tiles and around the grid; default 2.
    pub padding: usize,
    /// Grey level of the background and padding, 0..=255; default 64.
    pub background: u8,
    /// One caption per image, drawn under its tile.
    pub captions: Option<Vec<String>>,
    /// One label per column, drawn above the first row.
    pub column_labels: Option<Vec<String>>,
    /// One label per row, drawn left of it.
    pub row_labels: Option<Vec<String>>,
}

impl ImageGrid {
    /// A grid with `columns` tiles per row and the default look.
    pub fn new(columns: usize) -> Self {
        Self {
            columns,
            scale: 2,
            padding: 2,
            background: 64,
            captions: None,
            column_labels: None,
            row_labels: None,
        }
    }

    /// Sets the magnification.
    pub fn with_scale(mut self, scale: usize) -> Self {
        self.scale = scale;
        self
    }

    /// Sets one caption per image.
    pub fn with_captions(mut self, captions: Vec<String>) -> Self {
        self.captions = Some(captions);
        self
    }

    /// Sets one label per column.
    pub fn with_column_labels(mut self, labels: Vec<String>) -> Self {
        self.column_labels = Some(labels);
        self
    }

    /// Sets one label per row.
    pub fn with_row_labels(mut self, labels: Vec<String>) -> Self {
        self.row_labels = Some(labels);
        self
    }

    fn validate(&self, images: &ImageRef<'_>) -> Result<usize> {
        if self.columns == 0 {
            return Err(invalid("columns", "must be at least 1"));
        }
        if self.scale == 0 {
            return Err(invalid("scale", "must be at least 1"));
        }
        let rows = images.n.div_ceil(self.columns);
        check_count("captions", &self.captions, images.n)?;
        check_count(
            "column_labels",
            &self.column_labels,
            self.columns.min(images.n),
        )?;
        check_count("row_labels", &self.row_labels, rows)?;
        Ok(rows)
    }

    /// Draws the grid.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero columns or scale, or a caption / label list whose
    /// length does not match the images, columns or rows.
    pub fn render(&self, images: ImageRef<'_>) -> Result<GrayImage> {
        let rows = self.validate(&images)?;
        let columns = self.columns.min(images.n);
        let (tile_h, tile_w) = (images.height * self.scale, images.width * self.scale);
        let caption_h = if self.captions.is_some() { TEXT_ROW } else { 0 };
        let header_h = if self.column_labels.is_some() {
            TEXT_ROW
        } else {
            0
        };
        let label_w = self.row_labels.as_ref().map_or(0, |l| {
            l.iter().map(|s| s.chars().count()).max().unwrap_or(0) * GLYPH + 4
        });
        let cell_h = tile_h + caption_h + self.padding;
        let cell_w = tile_w + self.padding;
        let width = label_w + self.padding + columns * cell_w;
        let height = header_h + self.padding + rows * cell_h;
        let mut canvas =
            GrayImage::from_pixel(width as u32, height as u32, Luma([self.background]));

        for index in 0..images.n {
            let (grid_row, grid_col) = (index / self.columns, index % self.columns);
            let x0 = label_w + self.padding + grid_col * cell_w;
            let y0 = header_h + self.padding + grid_row * cell_h;
            for r in 0..tile_h {
                for c in 0..tile_w {
                    let value = images.pixel(index, r / self.scale, c / self.scale);
                    canvas.put_pixel((x0 + c) as u32, (y0 + r) as u32, Luma([value]));
                }
            }
            if let Some(captions) = &self.captions {
                draw_text(&mut canvas, &captions[index], x0, y0 + tile_h + 2, tile_w);
            }
        }
        if let Some(labels) = &self.column_labels {
            for (col, label) in labels.iter().enumerate() {
                let x0 = label_w + self.padding + col * cell_w;
                draw_text(&mut canvas, label, x0, 2, tile_w);
            }
        }
        if let Some(labels) = &self.row_labels {
            for (row, label) in labels.iter().enumerate() {
                let y0 = header_h + self.padding + row * cell_h + tile_h / 2 - GLYPH / 2;
                draw_text(&mut canvas, label, 2, y0, label_w);
            }
        }
        Ok(canvas)
    }

    /// Draws the grid and writes it as a PNG, atomically.
    ///
    /// # Errors
    /// As [`ImageGrid::render`], plus [`Error::Io`] / [`Error::Image`] if writing fails.
    pub fn write_png(&self, path: impl AsRef<Path>, images: ImageRef<'_>) -> Result<()> {
        let canvas = self.render(images)?;
        write_png(path, &canvas)
    }
}

/// Writes a grey-scale image as a PNG, atomically.
///
/// # Errors
/// [`Error::Io`] if writing fails.
fn write_png(path: impl AsRef<Path>, canvas: &GrayImage) -> Result<()> {
    let path = path.as_ref();
    let mut bytes = Vec::new();
    canvas
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|source| Error::Image {
            path: path.to_path_buf(),
            source,
        })?;
    atomic_write(path, |w| Ok(w.write_all(&bytes)?))
}

fn invalid(field: &'static str, reason: &str) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.to_string(),
    }
}

fn check_count(field: &'static str, list: &Option<Vec<String>>, expected: usize) -> Result<()> {
    match list {
        Some(items) if items.len() != expected => Err(Error::InvalidConfig {
            field,
            reason: format!("{} entries given, {expected} expected", items.len()),
        }),
        _ => Ok(()),
    }
}

/// Draws `text` with its top-left corner at (x0, y0), cut at `max_width` pixels.
fn draw_text(canvas: &mut GrayImage, text: &str, x0: usize, y0: usize, max_width: usize) {
    let max_chars = max_width / GLYPH;
    for (i, ch) in text.chars().take(max_chars).enumerate() {
        let Some(glyph) = font8x8::BASIC_FONTS.get(ch) else {
            continue;
        };
        for (dy, bits) in glyph.iter().enumerate() {
            for dx in 0..GLYPH {
                let (x, y) = ((x0 + i * GLYPH + dx) as u32, (y0 + dy) as u32);
                if bits & (1 << dx) != 0 && x < canvas.width() && y < canvas.height() {
                    canvas.put_pixel(x, y, Luma([TEXT_COLOUR]));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize) -> Vec<f32> {
        (0..n * 4 * 4).map(|i| (i % 16) as f32 / 15.0).collect()
    }

    #[test]
    fn pixels_land_in_their_tiles() {
        let data = ramp(3);
        let images = ImageRef::new(&data, 3, 4, 4).unwrap();
        let grid = ImageGrid {
            scale: 1,
            padding: 1,
            ..ImageGrid::new(2)
        };
        let png = grid.render(images).unwrap();
        assert_eq!((png.width(), png.height()), (1 + 2 * 5, 1 + 2 * 5));
        // Image 2 (third) sits in row 1, column 0; its last pixel is 1.0 -> 255.
        assert_eq!(png.get_pixel(1 + 3, 1 + 5 + 3).0[0], 255);
        assert_eq!(png.get_pixel(1, 1).0[0], 0);
        // The empty cell keeps the background.
        assert_eq!(png.get_pixel(1 + 5 + 1, 1 + 5 + 1).0[0], 64);
    }

    #[test]
    fn captions_draw_text() {
        let data = vec![0.0; 16];
        let images = ImageRef::new(&data, 1, 4, 4).unwrap();
        let grid = ImageGrid::new(1)
            .with_scale(4)
            .with_captions(vec!["88".into()]);
        let png = grid.render(images).unwrap();
        let bright = png.pixels().filter(|p| p.0[0] == 255).count();
        assert!(bright > 10, "caption pixels drawn: {bright}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let data = vec![0.0; 16];
        assert!(ImageRef::new(&data, 2, 4, 4).is_err());
        assert!(ImageRef::new(&data, 0, 4, 4).is_err());
        let images = ImageRef::new(&data, 1, 4, 4).unwrap();
        assert!(ImageGrid::new(0).render(images).is_err());
        assert!(ImageGrid::new(1)
            .with_captions(vec!["a".into(), "b".into()])
            .render(images)
            .is_err());
    }

    #[test]
    fn write_png_round_trips() {
        let data = ramp(2);
        let images = ImageRef::new(&data, 2, 4, 4).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.png");
        let grid = ImageGrid::new(2).with_scale(1);
        grid.write_png(&path, images).unwrap();
        let back = image::open(&path).unwrap().to_luma8();
        assert_eq!(back, grid.render(images).unwrap());
    }
}
