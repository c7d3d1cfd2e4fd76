//! Test images that `tools/metrics/ssim_reference.py` generates identically in Python:
//! only +, -, *, / in f64 (IEEE, same operation order), one rounding to f32 per pixel, and
//! a 64-bit LCG whose top 24 bits are exact in f32.
#![allow(dead_code)]

use ndarray::Array2;

const LCG_MUL: u64 = 6364136223846793005;
const LCG_INC: u64 = 1442695040888963407;

/// `n` uniforms in [0, 1) from the top 24 bits of a 64-bit LCG.
pub fn lcg_uniforms(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(LCG_MUL).wrapping_add(LCG_INC);
            (s >> 40) as f64 / 16777216.0
        })
        .collect()
}

fn bump(u: f64, v: f64, cu: f64, cv: f64, s: f64) -> f64 {
    let du = u - cu;
    let dv = v - cv;
    1.0 / (1.0 + (du * du + dv * dv) / s)
}

/// Two rational bumps and a ramp, values in about [0.1, 1]; variant 1 is a shifted copy.
pub fn smooth(rows: usize, cols: usize, variant: u8) -> Array2<f32> {
    let p = if variant == 0 {
        [0.1, 0.3, 0.4, 0.05, 0.7, 0.65, 0.02]
    } else {
        [0.12, 0.32, 0.38, 0.05, 0.68, 0.66, 0.025]
    };
    Array2::from_shape_fn((rows, cols), |(r, c)| {
        let u = r as f64 / rows as f64;
        let v = c as f64 / cols as f64;
        let val = p[0]
            + 0.5 * bump(u, v, p[1], p[2], p[3])
            + 0.3 * bump(u, v, p[4], p[5], p[6])
            + 0.1 * (u * v);
        val as f32
    })
}

pub fn add_noise(img: &Array2<f32>, amplitude: f64, seed: u64) -> Array2<f32> {
    let (rows, cols) = img.dim();
    let noise = lcg_uniforms(seed, rows * cols);
    Array2::from_shape_fn((rows, cols), |(r, c)| {
        (f64::from(img[[r, c]]) + amplitude * (noise[r * cols + c] - 0.5)) as f32
    })
}

pub fn pure_noise(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    Array2::from_shape_vec((rows, cols), lcg_uniforms(seed, rows * cols))
        .unwrap()
        .mapv(|v| v as f32)
}

/// `f32(offset + scale * x)` per pixel.
pub fn affine(img: &Array2<f32>, scale: f64, offset: f64) -> Array2<f32> {
    img.mapv(|v| (offset + scale * f64::from(v)) as f32)
}

/// The image pair of one reference case (same as `make_pair` in the Python script).
pub fn make_pair(kind: &str, rows: usize, cols: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    match kind {
        "smooth" => (smooth(rows, cols, 0), smooth(rows, cols, 1)),
        "noisy" => {
            let a = smooth(rows, cols, 0);
            let b = add_noise(&a, 0.3, seed);
            (a, b)
        }
        "uncorrelated" => (
            pure_noise(rows, cols, seed),
            pure_noise(rows, cols, seed + 1),
        ),
        "inverted" => {
            let a = smooth(rows, cols, 0);
            let b = affine(&a, -1.0, 1.0);
            (a, b)
        }
        "constant-equal" => (
            Array2::from_elem((rows, cols), 0.25),
            Array2::from_elem((rows, cols), 0.25),
        ),
        "constant-different" => (
            Array2::from_elem((rows, cols), 0.25),
            Array2::from_elem((rows, cols), 0.6),
        ),
        "range255" => {
            let a = smooth(rows, cols, 0);
            let b = add_noise(&a, 0.3, seed);
            (affine(&a, 255.0, 0.0), affine(&b, 255.0, 0.0))
        }
        other => panic!("unknown case kind {other}"),
    }
}

/// FNV-1a over the f32 bit patterns in row-major order, as a 16-digit hex string.
pub fn fnv1a(img: &Array2<f32>) -> String {
    let mut h: u64 = 0xCBF29CE484222325;
    for v in img.iter() {
        h = (h ^ u64::from(v.to_bits())).wrapping_mul(0x100000001B3);
    }
    format!("{h:016x}")
}
