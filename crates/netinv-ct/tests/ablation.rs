//! The ablation study at `--quick` size (`AblationConfig::quick()`): the SIRT-88 arm is the
//! hybrid schedule's own SIRT budget, each arm's choice is its best validation score, a job
//! repeats bit for bit, and the summary pairs the arms per seed and digit.

use candle_core::Device;
use candle_nn::VarMap;
use netinv_ct::study::ablation::{
    run_ablation_job, summarize_ablation, AblationArm, AblationConfig, AblationJobOutput,
};
use netinv_ct::study::{Digits, PSNR_CAP};
use netinv_ct::{scan_operator, HybridConfig, HybridReconstructor, LabelMode};
use netinv_data::Mnist;
use netinv_models::{Classifier, ClassifierConfig};
use netinv_tomo::{CsrOperator, LinearOperator};

fn digits(set: &netinv_data::Dataset) -> Digits {
    Digits {
        images: (0..set.len()).map(|i| set.image(i).to_owned()).collect(),
        labels: set.labels().iter().map(|&c| u32::from(c)).collect(),
    }
}

fn tiny_net(seed: u64) -> Classifier {
    let cfg = ClassifierConfig {
        conv_channels: vec![4, 8],
        hidden: 16,
        batch_norm: true,
        ..ClassifierConfig::netinv_small()
    };
    Classifier::init(&cfg, &VarMap::new(), seed, &Device::Cpu).unwrap()
}

fn run(
    cfg: &AblationConfig,
    seed: u64,
    val: &[ndarray::Array2<f32>],
    test: &Digits,
) -> AblationJobOutput {
    let setting = cfg.settings()[0];
    run_ablation_job(
        cfg,
        &cfg.candidate_list(),
        seed,
        &tiny_net(seed),
        &setting,
        val,
        test,
    )
    .unwrap()
}

#[test]
fn quick_ablation_jobs_tune_each_arm_and_pair_by_seed_and_digit() {
    let mnist = Mnist::embedded().unwrap();
    let test = digits(&mnist.test().take(2));
    let val = digits(&mnist.train().take(2)).images;
    let mut cfg = AblationConfig::quick();
    // a short schedule keeps the test fast: 6 SIRT + 2 inversion iterations
    cfg.hybrid = HybridConfig {
        warmup_sirt: 4,
        alternating: 4,
        sirt_per_cycle: 1,
        inversion_per_cycle: 1,
        ..HybridConfig::default()
    };
    cfg.hybrid.inversion.steps = 2;
    assert_eq!(cfg.sirt_budget(), 6);
    let out = run(&cfg, 3, &val, &test);
    assert_eq!(out.per_image.len(), 2 * AblationArm::ALL.len());
    assert_eq!(out.tuning.len(), 3);
    for t in &out.tuning {
        assert_eq!(t.scores.len(), cfg.candidates);
        let best = t.scores.iter().map(|s| s.val_psnr).fold(f64::MIN, f64::max);
        assert_eq!(t.best().val_psnr, best, "{:?}", t.arm);
        // the arm's weights: no priors in the class-only arm
        if t.arm == AblationArm::ClassOnly {
            assert!(t.scores.iter().all(|s| s.tv == 0.0 && s.bn == 0.0));
        } else {
            assert!(t.scores.iter().all(|s| s.tv > 0.0 && s.bn > 0.0));
        }
    }
    // SIRT-88 is the schedule's SIRT budget: the hybrid with inversion steps that do
    // nothing gives the same image bit for bit
    let op = CsrOperator::new(&scan_operator(28, 4).unwrap());
    let sino = op.apply(test.images[0].view());
    let mut idle = cfg.hybrid.clone();
    idle.inversion.steps = 0;
    let rec = HybridReconstructor::new(idle)
        .unwrap()
        .reconstruct_batch(&tiny_net(3), &op, &[sino.view()], &[LabelMode::Predicted])
        .unwrap();
    let p = netinv_metrics::psnr(test.images[0].view(), rec[0].image.view(), 1.0)
        .unwrap()
        .min(PSNR_CAP);
    let sirt88 = out
        .per_image
        .iter()
        .find(|r| r.arm == AblationArm::Sirt88 && r.image == 0)
        .unwrap();
    assert_eq!(sirt88.psnr, p);
    // deterministic
    assert_eq!(run(&cfg, 3, &val, &test), out);
    // two seeds summarised: the difference rows pair the arms per seed and digit
    let other = run(&cfg, 4, &val, &test);
    let rows: Vec<_> = out
        .per_image
        .iter()
        .chain(&other.per_image)
        .cloned()
        .collect();
    let summary = summarize_ablation(&rows).unwrap();
    assert_eq!(summary.len(), 5 + 6);
    let d = summary
        .iter()
        .find(|s| s.name == "full - priors_only")
        .unwrap();
    let mean = |seed, arm| {
        rows.iter()
            .filter(|r| r.classifier_seed == seed && r.arm == arm)
            .map(|r| r.psnr)
            .sum::<f64>()
            / 2.0
    };
    for (k, seed) in [3u64, 4].into_iter().enumerate() {
        let want = mean(seed, AblationArm::Full) - mean(seed, AblationArm::PriorsOnly);
        assert!((d.seed_means[k] - want).abs() < 1e-9);
    }
    assert!(d.boot_ci.0 <= d.mean && d.mean <= d.boot_ci.1);
    assert_eq!((d.n_seeds, d.n_digits), (2, 2));
}
