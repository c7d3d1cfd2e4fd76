//! Training steps and inversion steps give the same bits with 1 and with 2 CPU threads.
//!
//! candle sizes its CPU thread pool (which the custom ops of `netinv_models::ops` share) from
//! `RAYON_NUM_THREADS` once per process, so the test starts this test binary twice more, with
//! `RAYON_NUM_THREADS=1` and `=2`; each child runs a few SGD training steps (batch 16, so the
//! kernel gradient sums 8 groups of images) and a few gradient steps on the images through a
//! frozen BatchNorm net with per-image BN statistics, checks that its pool really has the
//! thread count asked for, and prints a hash of every resulting f32's bits. The parent
//! compares the two hashes.

use std::process::Command;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{ModuleT, VarBuilder, VarMap};
use netinv_models::{init::initial_tensors, Classifier, ClassifierConfig};

const CHILD: &str = "NETINV_THREAD_BITS_CHILD";

/// Deterministic pseudo-random values in [0, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

/// FNV-1a over the f32 bits of every tensor, in order.
fn hash(tensors: &[Tensor], mut h: u64) -> Result<u64> {
    for t in tensors {
        for v in t.flatten_all()?.to_vec1::<f32>()? {
            for b in v.to_bits().to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    Ok(h)
}

/// The child's work: returns the hash of the trained weights and of the inverted images.
fn child_bits() -> Result<u64> {
    let dev = Device::Cpu;
    let mut h = 0xcbf2_9ce4_8422_2325u64;

    // SGD training steps, batch 16 (8 groups of 2 images in the kernel gradient)
    let cfg = ClassifierConfig::netinv_small();
    let varmap = VarMap::new();
    let net = Classifier::init(&cfg, &varmap, 3, &dev)?;
    let mut named: Vec<(String, Var)> = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let b = 16;
    for step in 0..3u64 {
        let x = Tensor::from_vec(values(b * 784, step + 1), (b, 1, 28, 28), &dev)?;
        let y = Tensor::from_vec((0..b as u32).map(|i| i % 10).collect::<Vec<_>>(), b, &dev)?;
        let loss = candle_nn::loss::cross_entropy(&net.forward_t(&x, true)?, &y)?;
        let grads = loss.backward()?;
        for (_, v) in &named {
            let g = grads.get(v.as_tensor()).context("missing gradient")?;
            v.set(&(v.as_tensor() - (g * 0.05)?)?)?;
        }
    }
    let weights: Vec<Tensor> = named.iter().map(|(_, v)| v.as_tensor().clone()).collect();
    h = hash(&weights, h)?;

    // gradient steps on the images through a frozen BatchNorm net
    let cfg = ClassifierConfig {
        batch_norm: true,
        ..ClassifierConfig::netinv_small()
    };
    let tensors = initial_tensors(&cfg, 5, &dev)?.into_iter().collect();
    let frozen = Classifier::new(&cfg, VarBuilder::from_tensors(tensors, DType::F32, &dev))?;
    let x = Var::from_vec(values(b * 784, 9), (b, 1, 28, 28), &dev)?;
    let targets = Tensor::from_vec(
        (0..b as u32).map(|i| (i * 3) % 10).collect::<Vec<_>>(),
        b,
        &dev,
    )?;
    for _ in 0..3 {
        let (logits, stats) = frozen.forward_with_image_bn_stats(x.as_tensor())?;
        let mut loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
        for s in &stats {
            let dm = s
                .batch_mean
                .broadcast_sub(&s.running_mean)?
                .sqr()?
                .sum_all()?;
            let dv = s
                .batch_var
                .broadcast_sub(&s.running_var)?
                .sqr()?
                .sum_all()?;
            loss = (loss + ((dm + dv)? * 0.01)?)?;
        }
        let g = loss
            .backward()?
            .get(x.as_tensor())
            .context("no image gradient")?
            .clone();
        x.set(&(x.as_tensor() - (g * 0.1)?)?)?;
    }
    hash(&[x.as_tensor().clone()], h)
}

#[test]
fn training_and_inversion_bits_do_not_depend_on_the_thread_count() -> Result<()> {
    if std::env::var_os(CHILD).is_some() {
        let threads = candle_core::utils::barrier_pool().n_workers() + 1;
        println!("threads={threads} bits={:016x}", child_bits()?);
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let mut bits = Vec::new();
    for threads in ["1", "2"] {
        let out = Command::new(&exe)
            .args([
                "--exact",
                "training_and_inversion_bits_do_not_depend_on_the_thread_count",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, "1")
            .env("RAYON_NUM_THREADS", threads)
            .env_remove("CANDLE_NUM_THREADS")
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child with {threads} threads failed: {stdout}"
        );
        let line = stdout
            .lines()
            // libtest prints "test <name> ... " before the child's own line, on the same line
            .find_map(|l| l.split_once("threads=").map(|(_, rest)| rest))
            .context("child printed no result")?
            .to_string();
        assert!(
            line.starts_with(&format!("{threads} ")),
            "child asked for {threads} threads reports {line}"
        );
        bits.push(line.split_once("bits=").context("no bits")?.1.to_string());
    }
    assert_eq!(bits[0], bits[1], "1 thread vs 2 threads");
    Ok(())
}
