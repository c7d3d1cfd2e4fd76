//! Conversion to candle tensors (run with `--features candle`).
#![cfg(feature = "candle")]

use candle_core::{DType, Device, IndexOp};
use netinv_data::Mnist;

#[test]
fn dataset_and_batch_tensors_match_the_arrays() {
    let ds = Mnist::embedded().unwrap().test().take(10);
    let (x, y) = ds.to_tensors(&Device::Cpu).unwrap();
    assert_eq!(x.dims(), &[10, 1, 28, 28]);
    assert_eq!(x.dtype(), DType::F32);
    assert_eq!(y.dims(), &[10]);
    assert_eq!(y.dtype(), DType::U32);
    let labels: Vec<u32> = y.to_vec1().unwrap();
    assert_eq!(
        labels,
        ds.labels()
            .iter()
            .map(|&l| u32::from(l))
            .collect::<Vec<_>>()
    );
    let third: Vec<Vec<f32>> = x.i((3, 0)).unwrap().to_vec2().unwrap();
    for (r, row) in third.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            assert_eq!(v, ds.image(3)[[r, c]]);
        }
    }

    let batch = ds.batches(4, Some(5)).unwrap().next().unwrap();
    let (bx, by) = batch.to_tensors(&Device::Cpu).unwrap();
    assert_eq!(bx.dims(), &[4, 1, 28, 28]);
    let blabels: Vec<u32> = by.to_vec1().unwrap();
    for (k, &i) in batch.indices.iter().enumerate() {
        assert_eq!(blabels[k], u32::from(ds.labels()[i]));
        let img: Vec<Vec<f32>> = bx.i((k, 0)).unwrap().to_vec2().unwrap();
        assert_eq!(img[14][14], ds.image(i)[[14, 14]]);
        let sum: f32 = img.iter().flatten().sum();
        assert!((sum - ds.image(i).sum()).abs() < 1e-3);
    }
}
