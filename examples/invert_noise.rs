//! Task 1 of the thesis: a batch of 10 seeded noise images becomes digits 0..9 through a
//! trained classifier.
//!
//! ```text
//! cargo run --release --example invert_noise -- --model DIR --out DIR
//!     [--seed N --steps N --lr F --tv F --l2 F --judge DIR --no-judge --quick]
//! ```
//!
//! `--quick`: 100 steps (unless `--steps` is given) and the judges only if the whole panel
//! is already cached in `--judge` (never trained; the output then has no judge verdicts). Every flag
//! is checked before any work starts (steps >= 1, lr > 0, finite weights >= 0, `--model`
//! a folder).
//!
//! Defaults are the reference settings (Adam on the image, lr 0.05, 1,000 steps, clamp to
//! [0, 1], start 0.5 + 0.2 N(0, 1), CE mean + 1e-3 squared TV + 1e-4 ||x||^2). `--model` is
//! a checkpoint folder (`model.safetensors` + `config.json`, e.g. from `train_classifier`
//! or `quickstart`). The judges are a panel (`netinv_models::judge::default_panel`:
//! netinv-small / SGD, a wider CNN / Adam, an MLP / SGD, each PGD-trained and gated) loaded
//! from `--judge` (default `runs/judge`; netinv-small in the folder, the others in
//! subfolders) and trained there first where missing (PGD training: long). The headline
//! verdict is the panel's majority: an image counts as its target when more than half of the
//! judges say so.
//!
//! Writes to `--out`: `task1.png` (rows: initial, iterations 10 / 100 / 500, final; captions
//! `n<net class> j<majority class> <judges saying the target>/<judges>`, `j-` for no
//! majority), `task1.json` (losses per step,
//! the net's probabilities, `judges`: judge name -> accuracy on the 10 images,
//! `judge_accuracy`: the majority's, `panel`: the majority, agreement, every verdict and
//! acceptance test, `model_free`: nearest class mean, 5-NN in pixel space and class-mean
//! correlations against the training digits, ms per step), `images.npy` (float32
//! [10, 28, 28]) and `targets.json`.

#[path = "flag_support/mod.rs"]
mod flag_support;
#[path = "invert_support/mod.rs"]
mod support;

use anyhow::Result;
use clap::Parser;
use netinv::invert::InversionConfig;

/// Invert a trained classifier: noise -> digits 0..9.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    invert: support::InvertArgs,
    /// Seed of the noise start.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    let Args { invert: args, seed } = Args::parse();
    let steps = args.steps();
    let cfg = InversionConfig {
        seed,
        snapshots: [10, 100, 500].into_iter().filter(|&s| s < steps).collect(),
        ..args.validate()?
    };
    let (mnist, net, judge) = args.load()?;
    let t1 = support::task1(&net, judge.as_ref(), mnist.train(), &cfg, &args.out, true)?;
    println!(
        "net predictions   {}",
        support::classes_text(&t1.net_predictions)
    );
    if let (Some(p), Some(accuracy)) = (&t1.judge_predictions, t1.judge_accuracy) {
        println!(
            "judge panel majority {}  (accuracy {:.1} / 10, the headline)",
            support::classes_text(p),
            10.0 * accuracy
        );
    }
    if let (Some(judges), Some(unanimous)) = (&t1.judges, t1.judges_unanimous) {
        let each: Vec<String> = judges
            .iter()
            .map(|(name, a)| format!("{name} {:.1}", 10.0 * a))
            .collect();
        println!(
            "each judge (of 10): {}; all judges agree on {:.0} of 10",
            each.join(", "),
            10.0 * unanimous
        );
    }
    let free = &t1.model_free;
    println!(
        "model-free (of 10): nearest class mean {:.1}, {}-NN {:.1}; class-mean correlation {:.3}",
        10.0 * free.nearest_mean_accuracy,
        free.knn_k,
        10.0 * free.knn_accuracy,
        t1.class_mean_corr
    );
    println!(
        "own confidence {:.3}, {:.2} ms per step",
        t1.self_confidence, t1.ms_per_step
    );
    println!(
        "wrote {}/task1.png, task1.json, images.npy, targets.json",
        args.out.display()
    );
    Ok(())
}
