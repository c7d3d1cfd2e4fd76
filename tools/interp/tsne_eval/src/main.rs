//! Compares `linfa-tsne` 0.8.1 and `bhtsne` 0.7.13 (as called with their own defaults, i.e.
//! their own random initialisation) on the VAE latent means written by
//! `cargo run --release --example tsne`: wall time on 2,000 points (perplexity 30, theta 0.5,
//! 1000 iterations), 10-NN preservation, and whether two runs give the same coordinates.

use std::time::Instant;

use linfa::traits::Transformer;
use linfa_tsne::TSneParams;
use ndarray::Array2;
use rand::{rngs::SmallRng, SeedableRng};

fn knn(points: &[f32], dim: usize, k: usize) -> Vec<Vec<usize>> {
    let n = points.len() / dim;
    (0..n)
        .map(|i| {
            let mut d: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    let s: f64 = (0..dim)
                        .map(|c| {
                            let t = f64::from(points[i * dim + c]) - f64::from(points[j * dim + c]);
                            t * t
                        })
                        .sum();
                    (s, j)
                })
                .collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            d.into_iter().take(k).map(|(_, j)| j).collect()
        })
        .collect()
}

fn preservation(high: &[f32], dim: usize, low: &[f32]) -> f64 {
    let a = knn(high, dim, 10);
    let b = knn(low, 2, 10);
    let kept: usize = a
        .iter()
        .zip(&b)
        .map(|(x, y)| x.iter().filter(|j| y.contains(j)).count())
        .sum();
    kept as f64 / (a.len() * 10) as f64
}

fn linfa(means: &[f32], dim: usize, seed: u64) -> (Vec<f32>, f64) {
    let n = means.len() / dim;
    let x =
        Array2::from_shape_vec((n, dim), means.iter().map(|&v| f64::from(v)).collect()).unwrap();
    let t0 = Instant::now();
    let y = TSneParams::embedding_size_with_rng(2, SmallRng::seed_from_u64(seed))
        .perplexity(30.0)
        .approx_threshold(0.5)
        .max_iter(1000)
        .transform(x)
        .unwrap();
    (
        y.iter().map(|&v| v as f32).collect(),
        t0.elapsed().as_secs_f64(),
    )
}

fn bhtsne_default(means: &[f32], dim: usize) -> (Vec<f32>, f64) {
    let rows: Vec<&[f32]> = means.chunks(dim).collect();
    let t0 = Instant::now();
    let mut t: bhtsne::tSNE<f32, &[f32], 2> = bhtsne::tSNE::new(&rows);
    t.perplexity(30.0)
        .epochs(1000)
        .barnes_hut(0.5, |a: &&[f32], b: &&[f32]| {
            a.iter()
                .zip(b.iter())
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f32>()
                .sqrt()
        });
    (t.embedding(), t0.elapsed().as_secs_f64())
}

fn main() {
    let path = std::env::args().nth(1).expect("path to latent_means.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let dim = v["dim"].as_u64().unwrap() as usize;
    let means: Vec<f32> = v["means"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    let (a, ta) = linfa(&means, dim, 0);
    let (b, tb) = linfa(&means, dim, 0);
    println!(
        "linfa-tsne 0.8.1 (threads {threads}): {ta:.2} s and {tb:.2} s; same seed same result: {}; 10-NN preservation {:.4}",
        a == b,
        preservation(&means, dim, &a)
    );
    let (c, tc) = bhtsne_default(&means, dim);
    let (d, td) = bhtsne_default(&means, dim);
    println!(
        "bhtsne 0.7.13 own init (threads {threads}): {tc:.2} s and {td:.2} s; two runs identical: {}; 10-NN preservation {:.4}",
        c == d,
        preservation(&means, dim, &c)
    );
}
