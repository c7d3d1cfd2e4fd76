//! The inversion studies of the thesis as library code: Task 1 (noise becomes the digits
//! 0..9), Task 2 (a 9 becomes an 8) and the optimiser study (which training recipes give
//! invertible nets).
//!
//! A study is a list of independent jobs; each job depends only on its own settings and
//! seed and produces its own serialisable result, so one machine, two threads or many
//! machines give the same merged result. Scoring by a robust judge and file output stay
//! with the caller (the `invert_noise`, `morph_digit`, `optimizer_study` and `quickstart`
//! examples), which keeps this crate free of the judge.
//!
//! ```
//! use candle_core::Device;
//! use netinv_core::Monitor;
//! use netinv_invert::study::Task1;
//! use netinv_invert::InversionConfig;
//! use netinv_models::{Classifier, ClassifierConfig};
//!
//! let cfg = ClassifierConfig { conv_channels: vec![4, 8], hidden: 16, ..Default::default() };
//! let net = Classifier::init(&cfg, &candle_nn::VarMap::new(), 0, &Device::Cpu)?;
//! let task = Task1::new(InversionConfig { steps: 2, ..Default::default() })?;
//! let run = task.run(&net, &mut Monitor::new())?;
//! assert_eq!(run.targets, (0..10).collect::<Vec<u32>>());
//! assert_eq!(run.net_predictions.len(), 10);
//! assert_eq!(run.inversion.state.iteration, 2);
//! # Ok::<(), netinv_invert::Error>(())
//! ```

mod optimizer;
mod tasks;

pub use optimizer::{
    docs_tables, image_optimizer, invertibility_verdict, mean_ci_text, recipe_name, task2_sources,
    task2_targets, verdict_rows, Checkpoint, OptimizerJob, OptimizerStudy, Paired, Row, Scores,
    StudyInversion, Verdict, IMAGE_OPTIMIZERS, INVERTIBLE_OF_10, RECIPE_ORDER, TASK2_PAIRS,
};
pub use tasks::{first_iteration_of, Task1, Task1Run, Task2, Task2Pairs, Task2Run};
