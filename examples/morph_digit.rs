//! Task 2 of the thesis: a real test image of a 9 becomes an 8.
//!
//! ```text
//! cargo run --release --example morph_digit -- --model DIR --out DIR
//!     [--steps N --lr F --tv F --l2 F --judge DIR --no-judge --quick]
//! ```
//!
//! `--quick`: 100 steps (unless `--steps` is given) and the judge only if one is already
//! cached in `--judge` (never trained). Every flag is checked before any work starts.
//!
//! Defaults are the reference settings (see `invert_noise`), starting from the first 9 of
//! the embedded test set. Every iteration is judged; `task2.json` records the net's and the
//! judge's class per iteration and the first iteration at which each says 8. `task2.png`
//! shows the source and iterations 1, 10, 20, 30, 40 and the final one (captions
//! `n<net class> j<judge class>`); `images.npy` (float32 [1, 28, 28]) and `targets.json`.

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
    let t2 = support::task2(&net, judge.as_ref(), mnist.test(), &cfg, &args.out, true)?;
    let judge_first = match judge {
        Some(_) => support::iteration_text(t2.judge_first_8),
        None => "(no judge)".to_string(),
    };
    let judge_final = t2
        .judge_final
        .map_or_else(|| "(no judge)".to_string(), |c| c.to_string());
    println!(
        "test image {} (a 9): net says 8 first at {}, judge at {judge_first}; final: net {}, judge {judge_final}",
        t2.source_index,
        support::iteration_text(t2.net_first_8),
        t2.net_final
    );
    println!(
        "{:.2} ms per step; wrote {}/task2.png, task2.json, images.npy, targets.json",
        t2.ms_per_step,
        args.out.display()
    );
    Ok(())
}
