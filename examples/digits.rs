//! Loads the embedded MNIST digits (or a folder of standard IDX files), prints a summary, and
//! writes a PNG grid of 100 digits (ten of each class) and a JSON of per-class counts.
//!
//! ```sh
//! cargo run --release --example digits -- [--data DIR] [--out runs/digits]
//! ```

#[path = "flag_support/mod.rs"]
mod flag_support;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use netinv::core::{write_json, ImageGrid, ImageRef};
use netinv::data::{Dataset, Mnist};
use serde::Serialize;

/// Command-line arguments.
#[derive(Parser)]
struct Args {
    /// Folder with the four standard MNIST IDX files (raw or .gz); default: the embedded digits.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output folder.
    #[arg(long, default_value = "runs/digits")]
    out: PathBuf,
}

/// What `counts.json` holds.
#[derive(Serialize)]
struct Counts {
    source: String,
    train: [usize; 10],
    test: [usize; 10],
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    let args = Args::parse();
    flag_support::output_folder("--out", &args.out)?;
    if let Some(dir) = &args.data {
        flag_support::input_folder("--data", dir)?;
    }
    let (mnist, source) = match &args.data {
        Some(dir) => (Mnist::from_dir(dir)?, dir.display().to_string()),
        None => (Mnist::embedded()?, "embedded".to_string()),
    };
    let (train, test) = (mnist.train(), mnist.test());
    println!("source: {source}");
    println!("train: {} images, test: {} images", train.len(), test.len());
    println!("class  train  test");
    for class in 0..10 {
        let (n_train, n_test) = (train.class_counts()[class], test.class_counts()[class]);
        println!("{class:>5}  {n_train:>5}  {n_test:>4}");
    }

    let grid_path = args.out.join("digits.png");
    let (pixels, captions) = ten_of_each_class(test)?;
    let images = ImageRef::new(&pixels, captions.len(), 28, 28)?;
    ImageGrid::new(10)
        .with_captions(captions)
        .write_png(&grid_path, images)?;
    let counts_path = args.out.join("counts.json");
    let counts = Counts {
        source,
        train: train.class_counts(),
        test: test.class_counts(),
    };
    write_json(&counts_path, &counts)?;
    println!(
        "wrote {} and {}",
        grid_path.display(),
        counts_path.display()
    );
    Ok(())
}

/// The first ten test images of each class, one class per grid row, with their labels.
fn ten_of_each_class(data: &Dataset) -> Result<(Vec<f32>, Vec<String>)> {
    let mut indices = Vec::with_capacity(100);
    for class in 0..10u8 {
        let of_class = data.labels().iter().enumerate();
        indices.extend(
            of_class
                .filter(|(_, &l)| l == class)
                .map(|(i, _)| i)
                .take(10),
        );
    }
    let chosen = data.select(&indices)?;
    let pixels = chosen.images().iter().copied().collect();
    let captions = chosen.labels().iter().map(|l| l.to_string()).collect();
    Ok((pixels, captions))
}
