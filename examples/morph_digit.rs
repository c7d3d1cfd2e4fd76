//! Task 2 of the thesis: a real test image of a 9 becomes an 8.
//!
//! ```text
//! cargo run --release --example morph_digit -- --model DIR --out DIR
//!     [--steps N --lr F --tv F --l2 F --judge DIR --no-judge --quick]
//! ```
//!
//! `--quick`: 100 steps (unless `--steps` is given) and the judges only if the whole panel
//! is already cached in `--judge` (never trained). Every flag is checked before any work
//! starts.
//!
//! Defaults are the reference settings (see `invert_noise`, also for the judge panel),
//! starting from the first 9 of the embedded test set. Every iteration is judged by each
//! judge of the panel and scored model-free (nearest class mean, 5-NN in pixel space);
//! `task2.json` records per iteration the net's class, the panel majority's
//! (`judge_predictions_per_iteration`, the headline), each judge's (`judges`: name ->
//! classes per iteration, first iteration it says 8, final class, accuracy over the
//! iterations) and the model-free classes (`model_free`), and the first iteration at which
//! each says 8. `task2.png` shows the source and iterations 1, 10, 20, 30, 40 and the final
//! one (captions `n<net class> j<majority class> <judges saying 8>/<judges>`, `j-` for no
//! majority); `images.npy`
//! (float32 [1, 28, 28]) and `targets.json`.

#[path = "flag_support/mod.rs"]
mod flag_support;
#[path = "invert_support/mod.rs"]
mod support;

use anyhow::Result;
use clap::Parser;

/// Morph a 9 into an 8 through a trained classifier.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    invert: support::InvertArgs,
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    let args = Args::parse().invert;
    let cfg = args.validate()?;
    let (mnist, net, judge) = args.load()?;
    let t2 = support::task2(
        &net,
        judge.as_ref(),
        mnist.train(),
        mnist.test(),
        &cfg,
        &args.out,
        true,
    )?;
    let judge_first = match judge {
        Some(_) => support::iteration_text(t2.judge_first_8),
        None => "(no judge)".to_string(),
    };
    let judge_final = t2
        .judge_final
        .map_or_else(|| "(no judge)".to_string(), support::class_text);
    println!(
        "test image {} (a 9): net says 8 first at {}, judge panel majority at {judge_first}; final: net {}, majority {judge_final}",
        t2.source_index,
        support::iteration_text(t2.net_first_8),
        t2.net_final
    );
    if let Some(firsts) = &t2.judges_first_8 {
        let each: Vec<String> = firsts
            .iter()
            .map(|(name, f)| format!("{name} {}", support::iteration_text(*f)))
            .collect();
        println!("each judge says 8 first at: {}", each.join(", "));
    }
    println!(
        "model-free: nearest class mean says 8 first at {} (final {}), {}-NN at {} (final {})",
        support::iteration_text(t2.nearest_mean_first_8),
        t2.nearest_mean_final,
        netinv::models::judge::DEFAULT_KNN_K,
        support::iteration_text(t2.knn_first_8),
        t2.knn_final
    );
    println!(
        "{:.2} ms per step; wrote {}/task2.png, task2.json, images.npy, targets.json",
        t2.ms_per_step,
        args.out.display()
    );
    Ok(())
}
