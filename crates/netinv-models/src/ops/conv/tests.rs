use super::*;
use candle_core::{DType, Device, Var};
use netinv_core::testing::{assert_close, central_diff};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn random(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn tensor(dims: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(random(dims.iter().product(), seed), dims, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

#[test]
fn forward_matches_candle_conv2d() {
    for (xd, kd, pad) in [
        ([2, 1, 28, 28], [16, 1, 3, 3], 1),
        ([3, 16, 14, 14], [32, 16, 3, 3], 1),
        ([1, 2, 5, 7], [3, 2, 3, 2], 0),
        ([2, 3, 4, 4], [2, 3, 3, 3], 2),
    ] {
        for dtype in [DType::F32, DType::F64] {
            let x = tensor(&xd, 1).to_dtype(dtype).unwrap();
            let k = tensor(&kd, 2).to_dtype(dtype).unwrap();
            let ours = values(&conv2d(&x, &k, pad).unwrap());
            let theirs = values(&x.conv2d(&k, pad, 1, 1, 1).unwrap());
            let tol = if dtype == DType::F32 { 1e-5 } else { 1e-12 };
            assert_close(&ours, &theirs, tol, tol);
        }
    }
}

#[test]
fn gradients_match_central_differences_f64() {
    let dev = Device::Cpu;
    for (xd, kd, pad) in [
        ([2, 2, 5, 4], [3, 2, 3, 3], 1),
        ([1, 3, 4, 5], [2, 3, 2, 3], 0),
        ([2, 1, 3, 3], [2, 1, 3, 3], 2),
    ] {
        let x0 = random(xd.iter().product(), 3);
        let k0 = random(kd.iter().product(), 4);
        let g = Geom::new(&xd, &kd, pad, "test").unwrap();
        let r = tensor(&[g.b, g.co, g.oh, g.ow], 5);
        let loss = |x: &Tensor, k: &Tensor| {
            conv2d(x, k, pad)
                .unwrap()
                .mul(&r)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let x = Var::from_vec(x0.clone(), &xd, &dev).unwrap();
        let k = Var::from_vec(k0.clone(), &kd, &dev).unwrap();
        let grads = loss(x.as_tensor(), k.as_tensor()).backward().unwrap();
        let kt = Tensor::from_vec(k0.clone(), &kd, &dev).unwrap();
        let xt = Tensor::from_vec(x0.clone(), &xd, &dev).unwrap();
        let num_x = central_diff(
            |v| {
                loss(&Tensor::from_vec(v.to_vec(), &xd, &dev).unwrap(), &kt)
                    .to_scalar::<f64>()
                    .unwrap()
            },
            &x0,
            1e-5,
        );
        let num_k = central_diff(
            |v| {
                loss(&xt, &Tensor::from_vec(v.to_vec(), &kd, &dev).unwrap())
                    .to_scalar::<f64>()
                    .unwrap()
            },
            &k0,
            1e-5,
        );
        assert_close(
            &values(grads.get(x.as_tensor()).unwrap()),
            &num_x,
            1e-7,
            1e-9,
        );
        assert_close(
            &values(grads.get(k.as_tensor()).unwrap()),
            &num_k,
            1e-7,
            1e-9,
        );
    }
}

#[test]
fn bias_variant_matches_and_has_correct_gradients_f64() {
    let dev = Device::Cpu;
    let (xd, kd) = ([2, 2, 5, 4], [3, 2, 3, 3]);
    let x0 = random(40 * 2, 13);
    let k0 = random(54, 14);
    let b0 = random(3, 15);
    let r = tensor(&[2, 3, 5, 4], 16);
    let loss = |x: &Tensor, k: &Tensor, b: &Tensor| {
        conv2d_bias(x, k, b, 1)
            .unwrap()
            .mul(&r)
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let t = |v: &[f64], d: &[usize]| Tensor::from_vec(v.to_vec(), d, &dev).unwrap();
    // Forward equals conv2d + broadcast bias.
    let fused = values(&conv2d_bias(&t(&x0, &xd), &t(&k0, &kd), &t(&b0, &[3]), 1).unwrap());
    let plain = conv2d(&t(&x0, &xd), &t(&k0, &kd), 1)
        .unwrap()
        .broadcast_add(&t(&b0, &[1, 3, 1, 1]))
        .unwrap();
    assert_close(&fused, &values(&plain), 1e-14, 1e-14);
    let (x, k, b) = (
        Var::from_vec(x0.clone(), &xd, &dev).unwrap(),
        Var::from_vec(k0.clone(), &kd, &dev).unwrap(),
        Var::from_vec(b0.clone(), 3, &dev).unwrap(),
    );
    let grads = loss(x.as_tensor(), k.as_tensor(), b.as_tensor())
        .backward()
        .unwrap();
    let nx = central_diff(
        |v| {
            loss(&t(v, &xd), &t(&k0, &kd), &t(&b0, &[3]))
                .to_scalar::<f64>()
                .unwrap()
        },
        &x0,
        1e-5,
    );
    let nk = central_diff(
        |v| {
            loss(&t(&x0, &xd), &t(v, &kd), &t(&b0, &[3]))
                .to_scalar::<f64>()
                .unwrap()
        },
        &k0,
        1e-5,
    );
    let nb = central_diff(
        |v| {
            loss(&t(&x0, &xd), &t(&k0, &kd), &t(v, &[3]))
                .to_scalar::<f64>()
                .unwrap()
        },
        &b0,
        1e-5,
    );
    assert_close(&values(grads.get(x.as_tensor()).unwrap()), &nx, 1e-7, 1e-9);
    assert_close(&values(grads.get(k.as_tensor()).unwrap()), &nk, 1e-7, 1e-9);
    assert_close(&values(grads.get(b.as_tensor()).unwrap()), &nb, 1e-7, 1e-9);
    // Constant bias and kernel: only x gets a gradient.
    let (kt, bt) = (t(&k0, &kd), t(&b0, &[3]));
    let grads = loss(x.as_tensor(), &kt, &bt).backward().unwrap();
    assert!(grads.get(x.as_tensor()).is_some());
    assert!(grads.get(&kt).is_none() && grads.get(&bt).is_none());
    assert!(conv2d_bias(&t(&x0, &xd), &t(&k0, &kd), &t(&b0[..2], &[2]), 1).is_err());
}

#[test]
fn gradients_match_candle_autograd_f32() {
    let x = Var::from_tensor(&tensor(&[4, 16, 14, 14], 6).to_dtype(DType::F32).unwrap()).unwrap();
    let k = Var::from_tensor(&tensor(&[32, 16, 3, 3], 7).to_dtype(DType::F32).unwrap()).unwrap();
    let r = tensor(&[4, 32, 14, 14], 8).to_dtype(DType::F32).unwrap();
    let ours = conv2d(x.as_tensor(), k.as_tensor(), 1)
        .unwrap()
        .mul(&r)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let theirs = x
        .as_tensor()
        .conv2d(k.as_tensor(), 1, 1, 1, 1)
        .unwrap()
        .mul(&r)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for v in [&x, &k] {
        assert_close(
            &values(ours.get(v.as_tensor()).unwrap()),
            &values(theirs.get(v.as_tensor()).unwrap()),
            1e-4,
            1e-4,
        );
    }
}

#[test]
fn only_tracked_arguments_get_gradients() {
    let x = Var::from_tensor(&tensor(&[1, 1, 4, 4], 9)).unwrap();
    let k = tensor(&[2, 1, 3, 3], 10);
    let grads = conv2d(x.as_tensor(), &k, 1)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(grads.get(x.as_tensor()).is_some());
    assert!(grads.get(&k).is_none());
    let xt = tensor(&[1, 1, 4, 4], 9);
    let kv = Var::from_tensor(&k).unwrap();
    let grads = conv2d(&xt, kv.as_tensor(), 1)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(grads.get(kv.as_tensor()).is_some());
    assert!(grads.get(&xt).is_none());
}

#[test]
fn bad_arguments_are_errors() {
    let x = tensor(&[1, 2, 4, 4], 1);
    assert!(conv2d(&x, &tensor(&[3, 1, 3, 3], 2), 1).is_err());
    assert!(conv2d(&x, &tensor(&[3, 2, 7, 7], 2), 1).is_err());
    assert!(conv2d(&tensor(&[2, 4, 4], 1), &tensor(&[3, 2, 3, 3], 2), 1).is_err());
    assert!(conv2d(
        &x.to_dtype(DType::F32).unwrap(),
        &tensor(&[3, 2, 3, 3], 2),
        1
    )
    .is_err());
}

#[test]
fn im2col_and_col2im_are_adjoint() {
    let g = Geom::new(&[1, 2, 5, 4], &[1, 2, 3, 3], 1, "test").unwrap();
    let x = random(2 * 5 * 4, 11);
    let c = random(g.k() * g.p(), 12);
    let mut col = vec![0.0; g.k() * g.p()];
    im2col(&x, &g, &mut col);
    let mut back = vec![0.0; x.len()];
    col2im_add(&mut c.clone(), &g, &mut back);
    let lhs: f64 = col.iter().zip(&c).map(|(a, b)| a * b).sum();
    let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
    assert!((lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0));
}

#[test]
fn same_width_im2col_equals_the_general_loop() {
    for (xd, kd, pad) in [
        ([1, 2, 5, 4], [1, 2, 3, 3], 1),
        ([1, 16, 14, 14], [1, 16, 3, 3], 1),
        ([1, 1, 28, 28], [1, 1, 3, 3], 1),
        ([1, 2, 6, 5], [1, 2, 5, 5], 2),
        ([1, 3, 4, 4], [1, 3, 1, 1], 0),
        ([1, 1, 1, 1], [1, 1, 3, 3], 1),
        ([1, 2, 4, 7], [1, 2, 5, 3], 1),
        ([1, 2, 3, 3], [1, 2, 3, 5], 2),
    ] {
        let g = Geom::new(&xd, &kd, pad, "test").unwrap();
        assert_eq!(g.ow, g.w, "{xd:?} {kd:?}");
        let x = random(xd.iter().product(), 21);
        let (mut fast, mut slow) = (vec![7.0; g.k() * g.p()], vec![-7.0; g.k() * g.p()]);
        im2col(&x, &g, &mut fast);
        im2col_general(&x, &g, &mut slow);
        assert_eq!(fast, slow, "{xd:?} {kd:?} pad {pad}");
    }
}

#[test]
fn same_width_col2im_equals_the_general_loop_bit_for_bit() {
    for (xd, kd, pad) in [
        ([1, 2, 5, 4], [1, 2, 3, 3], 1),
        ([1, 16, 14, 14], [1, 16, 3, 3], 1),
        ([1, 2, 6, 5], [1, 2, 5, 5], 2),
        ([1, 3, 4, 4], [1, 3, 1, 1], 0),
        ([1, 1, 1, 1], [1, 1, 3, 3], 1),
        ([1, 2, 4, 7], [1, 2, 5, 3], 1),
        ([1, 2, 3, 3], [1, 2, 3, 5], 2),
    ] {
        let g = Geom::new(&xd, &kd, pad, "test").unwrap();
        // f32 terms of mixed signs and magnitudes, as in a real gradient
        let col: Vec<f32> = random(g.k() * g.p(), 22)
            .iter()
            .enumerate()
            .map(|(i, v)| (*v * 10f64.powi(i as i32 % 7 - 3)) as f32)
            .collect();
        let n: usize = xd.iter().product();
        let (mut fast, mut slow) = (vec![0f32; n], vec![0f32; n]);
        col2im_add(&mut col.clone(), &g, &mut fast);
        col2im_add_general(&col, &g, &mut slow);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&slow), "{xd:?} {kd:?} pad {pad}");
    }
}
