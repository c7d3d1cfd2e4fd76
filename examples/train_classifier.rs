//! Trains a netinv-small classifier on MNIST digits and writes `model.safetensors`,
//! `config.json` (the net), `train_config.json`, `metrics.json` and the trainer's
//! checkpoint files to `--out`.
//!
//! ```text
//! cargo run --release --example train_classifier -- --optimizer sgd|adam --lr F --epochs N
//!     --batch-size N --adversarial none|fgsm|pgd --epsilon F --batch-norm --seed N
//!     --data DIR --out DIR
//! ```
//!
//! Every flag is optional: SGD (lr 0.05, momentum 0.9, cosine schedule) or Adam (lr 2e-3),
//! 10 epochs, batch 64, no adversarial training, epsilon 0.1 (used by FGSM / PGD training
//! and by the final FGSM accuracy), seed 0, the 8,000 / 2,000 embedded digits, output in
//! `runs/train_classifier`. `--data DIR` reads the four standard MNIST files (raw or .gz).
//!
//! `metrics.json`: `{"config": {...}, "epochs": [{"epoch", "train_loss", "train_accuracy",
//! "test_accuracy", "seconds"}], "final": {"test_accuracy", "macro_f1", "fgsm_accuracy"}}`,
//! accuracies as fractions in [0, 1], `seconds` the wall-clock time of the epoch's training
//! steps. Each epoch is also printed with its process CPU time (Linux), the figure compared
//! with PyTorch's `time.process_time` in docs/performance.md.

#[path = "flag_support/mod.rs"]
mod flag_support;

use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::Device;
use candle_nn::VarMap;
use clap::{Parser, ValueEnum};
use netinv::core::{IterState, Monitor, ProgressObserver};
use netinv::data::Mnist;
use netinv::models::train::{
    attack_accuracy, evaluate, Adversarial, Attack, EpochRecord, TrainConfig, Trainer,
};
use netinv::models::{Classifier, ClassifierConfig};
use serde_json::json;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OptimizerArg {
    Sgd,
    Adam,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AdversarialArg {
    None,
    Fgsm,
    Pgd,
}

/// Train a netinv-small classifier on MNIST digits.
#[derive(Debug, Parser)]
struct Args {
    /// Optimiser.
    #[arg(long, value_enum, default_value = "sgd")]
    optimizer: OptimizerArg,
    /// Learning rate (default 0.05 for SGD, 2e-3 for Adam).
    #[arg(long, value_parser = flag_support::positive)]
    lr: Option<f64>,
    /// Number of epochs.
    #[arg(long, default_value_t = 10, value_parser = flag_support::at_least_one)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64, value_parser = flag_support::at_least_one)]
    batch_size: usize,
    /// Adversarial training mode.
    #[arg(long, value_enum, default_value = "none")]
    adversarial: AdversarialArg,
    /// Perturbation size (L-infinity, pixel range [0, 1]) of adversarial training and of
    /// the final FGSM accuracy.
    #[arg(long, default_value_t = 0.1, value_parser = flag_support::in_unit_interval)]
    epsilon: f64,
    /// Add BatchNorm after every convolution.
    #[arg(long)]
    batch_norm: bool,
    /// Seed of the initial weights, the shuffling and the adversarial noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder with the four MNIST files (default: the embedded 8,000 / 2,000 digits).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output folder.
    #[arg(long, default_value = "runs/train_classifier")]
    out: PathBuf,
}

/// One line for the log: the optimiser, its rate and the run's length and mode.
fn describe(cfg: &TrainConfig, args: &Args) -> String {
    let adversarial = match args.adversarial {
        AdversarialArg::None => "no adversarial training".to_string(),
        AdversarialArg::Fgsm => format!("FGSM training (eps {})", args.epsilon),
        AdversarialArg::Pgd => format!("PGD training (eps {})", args.epsilon),
    };
    let optimizer = match args.optimizer {
        OptimizerArg::Sgd => format!("SGD (momentum {})", cfg.momentum),
        OptimizerArg::Adam => "Adam".to_string(),
    };
    format!(
        "{optimizer}, lr {}, {} epochs of batch {}, shifts up to {} px, {adversarial}, seed {}",
        cfg.lr, cfg.epochs, cfg.batch_size, cfg.shift, cfg.seed
    )
}

fn main() -> Result<()> {
    netinv::core::install_cleanup_handler()?;
    let args = Args::parse();
    // Every flag is checked before the data are read or anything is written.
    flag_support::output_folder("--out", &args.out)?;
    if let Some(dir) = &args.data {
        flag_support::input_folder("--data", dir)?;
    }
    let device = Device::Cpu;
    let base = match args.optimizer {
        OptimizerArg::Sgd => TrainConfig::sgd(),
        OptimizerArg::Adam => TrainConfig::adam(),
    };
    let cfg = TrainConfig {
        lr: args.lr.unwrap_or(base.lr),
        epochs: args.epochs,
        batch_size: args.batch_size,
        adversarial: match args.adversarial {
            AdversarialArg::None => Adversarial::None,
            AdversarialArg::Fgsm => Adversarial::fgsm(args.epsilon),
            AdversarialArg::Pgd => Adversarial::pgd(args.epsilon),
        },
        seed: args.seed,
        ..base
    };
    let net_cfg = ClassifierConfig {
        batch_norm: args.batch_norm,
        ..ClassifierConfig::netinv_small()
    };
    let trainer = Trainer::new(cfg.clone())?.with_checkpoints(&args.out, net_cfg.clone());
    let mnist = match &args.data {
        Some(dir) => Mnist::from_dir(dir).with_context(|| format!("reading {}", dir.display()))?,
        None => Mnist::embedded()?,
    };
    let varmap = VarMap::new();
    let model = Classifier::init(&net_cfg, &varmap, args.seed, &device)?;
    netinv::core::write_json(args.out.join("train_config.json"), &cfg)?;
    eprintln!(
        "training netinv-small on {} / {} digits: {}",
        mnist.train().len(),
        mnist.test().len(),
        describe(&cfg, &args)
    );

    let mut cpu_mark = netinv::core::process_cpu_seconds();
    let mut monitor = Monitor::new()
        .with_observer(ProgressObserver::new(cfg.epochs, "epochs"))
        .with_observer(move |_: &IterState, r: &EpochRecord| {
            let now = netinv::core::process_cpu_seconds();
            let cpu = match (cpu_mark, now) {
                (Some(a), Some(b)) => format!("{:.2}", b - a),
                _ => "n/a".into(),
            };
            cpu_mark = now;
            println!(
                "epoch {:>2}: train loss {:.4}, train acc {:.4}, test acc {:.4}, {:.2} s wall, {} s CPU (incl. eval)",
                r.epoch,
                r.train_loss,
                r.train_accuracy,
                r.test_accuracy.unwrap_or(f64::NAN),
                r.seconds,
                cpu
            );
            Ok(())
        });
    let report = trainer.fit(
        &model,
        &varmap,
        mnist.train(),
        Some(mnist.test()),
        &mut monitor,
    )?;
    drop(monitor);

    let ev = evaluate(&model, mnist.test(), &device)?;
    let fgsm = attack_accuracy(
        &model,
        mnist.test(),
        &Attack::Fgsm {
            epsilon: args.epsilon,
        },
        &device,
    )?;
    println!(
        "final: test accuracy {:.4}, macro F1 {:.4}, FGSM (eps {}) accuracy {:.4}",
        ev.accuracy, ev.macro_f1, args.epsilon, fgsm
    );
    let mut config = serde_json::to_value(&cfg)?;
    config["model"] = serde_json::to_value(&net_cfg)?;
    config["data"] = json!(args
        .data
        .as_ref()
        .map_or("embedded".to_string(), |d| d.display().to_string()));
    let metrics = json!({
        "config": config,
        "epochs": report.history,
        "final": {
            "test_accuracy": ev.accuracy,
            "macro_f1": ev.macro_f1,
            "fgsm_accuracy": fgsm,
        },
    });
    netinv::core::write_json(args.out.join("metrics.json"), &metrics)?;
    println!("wrote {}", args.out.display());
    Ok(())
}
