//! PNG grids of grey-scale (or RGB) images, with optional captions and labels in an 8x8
//! bitmap font.

use std::path::Path;

use font8x8::UnicodeFonts;
use image::{GrayImage, Luma, RgbImage};
use ndarray::{Array3, Array4, ArrayView3, ArrayView4, Axis};

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
}

/// Images an [`ImageGrid`] can draw: `planes` holds one `[n, height, width]` view per
/// channel (1 for grey, 3 for RGB). Built with `.into()` from an [`ImageRef`], an
/// `ArrayView3<f32>` `[n, height, width]` or an `ArrayView4<f32>` `[n, channels, height,
/// width]` (or references to the owned arrays); any memory layout is accepted, nothing is
/// copied.
#[derive(Debug, Clone)]
pub struct GridImages<'a> {
    planes: Vec<ArrayView3<'a, f32>>,
}

impl GridImages<'_> {
    /// Number of images, channels, height and width; [`Error::Shape`] if the stack is empty
    /// or has a channel count other than 1 or 3.
    fn shape(&self) -> Result<(usize, usize, usize, usize)> {
        let (n, height, width) = self.planes.first().map_or((0, 0, 0), |p| p.dim());
        let channels = self.planes.len();
        if n == 0 || height == 0 || width == 0 || !matches!(channels, 1 | 3) {
            return Err(Error::Shape {
                expected: "a non-empty stack of images with 1 (grey) or 3 (RGB) channels".into(),
                got: format!("[{n}, {channels}, {height}, {width}]"),
            });
        }
        Ok((n, channels, height, width))
    }
}

impl<'a> From<ImageRef<'a>> for GridImages<'a> {
    fn from(images: ImageRef<'a>) -> Self {
        let shape = (images.n, images.height, images.width);
        // `ImageRef`'s fields are public, so its length is checked once more: a mismatch
        // leaves no plane, which `shape` reports as an error.
        Self {
            planes: ArrayView3::from_shape(shape, images.data)
                .into_iter()
                .collect(),
        }
    }
}

impl<'a> From<ArrayView3<'a, f32>> for GridImages<'a> {
    fn from(images: ArrayView3<'a, f32>) -> Self {
        Self {
            planes: vec![images],
        }
    }
}

impl<'a> From<&'a Array3<f32>> for GridImages<'a> {
    fn from(images: &'a Array3<f32>) -> Self {
        images.view().into()
    }
}

impl<'a> From<ArrayView4<'a, f32>> for GridImages<'a> {
    fn from(images: ArrayView4<'a, f32>) -> Self {
        Self {
            planes: (0..images.dim().1)
                .map(|c| images.index_axis_move(Axis(1), c))
                .collect(),
        }
    }
}

impl<'a> From<&'a Array4<f32>> for GridImages<'a> {
    fn from(images: &'a Array4<f32>) -> Self {
        images.view().into()
    }
}

/// A value in [0, 1] as a grey level (clipped; NaN draws black).
fn grey_level(v: f32) -> u8 {
    // `as u8` saturates and maps NaN to 0.
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
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
///
/// // ndarray batches draw directly: [n, h, w], or [n, c, h, w] with c = 1 (or 3: RGB).
/// let batch = ndarray::Array4::from_shape_vec((4, 1, 28, 28), pixels).unwrap();
/// assert_eq!(grid.render(&batch).unwrap(), png);
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

    /// Checks the layout against `n` images; returns the number of grid rows.
    fn validate(&self, n: usize) -> Result<usize> {
        if self.columns == 0 {
            return Err(invalid("columns", "must be at least 1"));
        }
        if self.scale == 0 {
            return Err(invalid("scale", "must be at least 1"));
        }
        let rows = n.div_ceil(self.columns);
        check_count("captions", &self.captions, n)?;
        check_count("column_labels", &self.column_labels, self.columns.min(n))?;
        check_count("row_labels", &self.row_labels, rows)?;
        Ok(rows)
    }

    /// Draws the grid of grey-scale images: an [`ImageRef`], an `ArrayView3<f32>` `[n,
    /// height, width]`, an `ArrayView4<f32>` `[n, 1, height, width]` or a reference to an
    /// owned array of either shape.
    ///
    /// # Errors
    /// [`Error::Shape`] for an empty stack or a channel count other than 1 (RGB stacks go to
    /// [`ImageGrid::render_rgb`]); [`Error::InvalidConfig`] for zero columns or scale, or a
    /// caption / label list whose length does not match the images, columns or rows.
    pub fn render<'a>(&self, images: impl Into<GridImages<'a>>) -> Result<GrayImage> {
        let images = images.into();
        let (_, channels, ..) = images.shape()?;
        if channels != 1 {
            return Err(Error::Shape {
                expected: "1 channel for a grey-scale grid (render_rgb draws 3)".into(),
                got: format!("{channels} channels"),
            });
        }
        self.render_plane(images.planes[0])
    }

    /// Draws a grid of RGB images `[n, 3, height, width]` (a grey stack is drawn grey, in an
    /// RGB image). Text is white as in [`ImageGrid::render`].
    ///
    /// # Errors
    /// As [`ImageGrid::render`], except that 3 channels are accepted.
    pub fn render_rgb<'a>(&self, images: impl Into<GridImages<'a>>) -> Result<RgbImage> {
        let images = images.into();
        images.shape()?;
        // The layout depends only on the shape, so each channel's grid lines up pixel for
        // pixel with the others.
        let grids = images
            .planes
            .iter()
            .map(|plane| self.render_plane(*plane))
            .collect::<Result<Vec<_>>>()?;
        let channel = |c: usize| &grids[c.min(grids.len() - 1)];
        let (width, height) = grids[0].dimensions();
        Ok(RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([0, 1, 2].map(|c| channel(c).get_pixel(x, y).0[0]))
        }))
    }

    /// Draws the grid of one channel, `[n, height, width]`.
    fn render_plane(&self, images: ArrayView3<'_, f32>) -> Result<GrayImage> {
        let (n, height, width) = images.dim();
        let rows = self.validate(n)?;
        let columns = self.columns.min(n);
        let (tile_h, tile_w) = (height * self.scale, width * self.scale);
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

        for index in 0..n {
            let (grid_row, grid_col) = (index / self.columns, index % self.columns);
            let x0 = label_w + self.padding + grid_col * cell_w;
            let y0 = header_h + self.padding + grid_row * cell_h;
            for r in 0..tile_h {
                for c in 0..tile_w {
                    let value = grey_level(images[[index, r / self.scale, c / self.scale]]);
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

    /// Draws the grid and writes it as a PNG, atomically: grey for one channel, RGB for
    /// three.
    ///
    /// # Errors
    /// As [`ImageGrid::render`] (3 channels accepted), plus [`Error::Io`] / [`Error::Image`]
    /// if writing fails.
    pub fn write_png<'a>(
        &self,
        path: impl AsRef<Path>,
        images: impl Into<GridImages<'a>>,
    ) -> Result<()> {
        let images = images.into();
        if images.shape()?.1 == 3 {
            write_png(path, &self.render_rgb(images)?)
        } else {
            write_png(path, &self.render(images)?)
        }
    }
}

/// Writes an image as a PNG, atomically.
///
/// # Errors
/// [`Error::Io`] if writing fails.
fn write_png<P>(path: impl AsRef<Path>, canvas: &image::ImageBuffer<P, Vec<u8>>) -> Result<()>
where
    P: image::PixelWithColorType<Subpixel = u8>,
{
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
    fn ndarray_views_draw_like_slices() {
        let data = ramp(3);
        let grid = ImageGrid::new(2).with_scale(2);
        let expected = grid.render(ImageRef::new(&data, 3, 4, 4).unwrap()).unwrap();
        let stack = Array3::from_shape_vec((3, 4, 4), data.clone()).unwrap();
        assert_eq!(grid.render(&stack).unwrap(), expected);
        assert_eq!(grid.render(stack.view()).unwrap(), expected);
        let batch = stack.clone().insert_axis(Axis(1));
        assert_eq!(grid.render(&batch).unwrap(), expected);
        // A transposed (non-contiguous) view draws each image transposed.
        let transposed = stack.view().permuted_axes([0, 2, 1]);
        let t = grid.render(transposed).unwrap();
        assert_eq!(t.get_pixel(2 + 3 * 2, 2), expected.get_pixel(2, 2 + 3 * 2));
        // Every second image of the stack: images 0 and 2.
        let strided = stack.slice(ndarray::s![..;2, .., ..]);
        let picked = [0, 2].map(|i| stack.index_axis(Axis(0), i).to_owned());
        let gathered = ndarray::stack(Axis(0), &[picked[0].view(), picked[1].view()]).unwrap();
        assert_eq!(
            grid.render(strided).unwrap(),
            grid.render(&gathered).unwrap()
        );
    }

    #[test]
    fn rgb_batches_keep_their_channels() {
        let mut batch = Array4::<f32>::zeros((2, 3, 4, 4));
        batch.index_axis_mut(Axis(1), 0).fill(1.0); // red
        batch.index_axis_mut(Axis(1), 2).fill(0.5); // half blue
        let grid = ImageGrid {
            scale: 1,
            padding: 1,
            ..ImageGrid::new(2)
        };
        let png = grid.render_rgb(&batch).unwrap();
        assert_eq!(png.get_pixel(1, 1).0, [255, 0, 128]);
        assert_eq!(png.get_pixel(0, 0).0, [64, 64, 64]);
        assert!(
            grid.render(&batch).is_err(),
            "grey render refuses 3 channels"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rgb.png");
        grid.write_png(&path, &batch).unwrap();
        assert_eq!(image::open(&path).unwrap().to_rgb8(), png);
        // A grey stack drawn as RGB is grey.
        let grey = Array3::from_elem((1, 2, 2), 1.0_f32);
        assert_eq!(grid.render_rgb(&grey).unwrap().get_pixel(1, 1).0, [255; 3]);
    }

    #[test]
    fn bad_array_shapes_are_errors() {
        let grid = ImageGrid::new(2);
        assert!(grid.render(&Array4::<f32>::zeros((2, 2, 4, 4))).is_err());
        assert!(grid
            .render_rgb(&Array4::<f32>::zeros((2, 4, 4, 4)))
            .is_err());
        assert!(grid.render(&Array3::<f32>::zeros((0, 4, 4))).is_err());
        assert!(grid.render(&Array3::<f32>::zeros((2, 0, 4))).is_err());
        let data = vec![0.0; 16];
        let broken = ImageRef {
            data: &data,
            n: 2,
            height: 4,
            width: 4,
        };
        assert!(matches!(grid.render(broken), Err(Error::Shape { .. })));
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
