//! A tiny prototype network trained with the models crate's Trainer, checkpointed with its
//! prototypes, and inverted towards a prototype.

use std::sync::Arc;

use candle_core::Device;
use candle_nn::VarMap;
use netinv_core::Monitor;
use netinv_invert::{InversionConfig, Inverter, Objective};
use netinv_models::train::{evaluate_with, OptimizerKind, TrainConfig, Trainer};
use netinv_models::{load_frozen, Classifier, ClassifierConfig};
use netinv_prototypes::{
    place_prototypes, PlacementConfig, PrototypeHead, PrototypeKind, PrototypeObjective,
};

fn tiny(dim: usize) -> ClassifierConfig {
    ClassifierConfig {
        conv_channels: vec![4, 8],
        hidden: 16,
        outputs: dim,
        ..Default::default()
    }
}

#[test]
fn prototype_nets_learn_save_and_invert() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let mnist = netinv_data::Mnist::embedded()?;
    let classes = [0u8, 1];
    let train = mnist.train().with_classes(&classes)?.take(300);
    let test = mnist.test().with_classes(&classes)?.take(100);
    let placement = place_prototypes(10, 3, &PlacementConfig::default())?;
    for kind in [PrototypeKind::Hyperspherical, PrototypeKind::Busemann] {
        let head = PrototypeHead::new(kind, &placement, 0.75, &dev)?;
        let varmap = VarMap::new();
        let net = Classifier::init(&tiny(3), &varmap, 7, &dev)?;
        let before = evaluate_with(&net, &test, &dev, &head)?;
        let dir = tempfile::tempdir()?;
        let trainer = Trainer::new(TrainConfig {
            epochs: 3,
            optimizer: OptimizerKind::Adam,
            lr: 3e-3,
            batch_size: 32,
            ..Default::default()
        })?
        .with_loss(Arc::new(head.clone()))
        .with_checkpoints(dir.path(), tiny(3));
        let report = trainer.fit(&net, &varmap, &train, Some(&test), &mut Monitor::new())?;
        head.save(dir.path())?;
        let after = evaluate_with(&net, &test, &dev, &head)?;
        assert!(
            after.loss < before.loss,
            "{kind:?}: {} -> {}",
            before.loss,
            after.loss
        );
        assert!(
            after.accuracy > 0.9,
            "{kind:?}: accuracy {}",
            after.accuracy
        );
        assert_eq!(
            report.state.metrics.get("test_accuracy").copied(),
            Some(after.accuracy)
        );

        let frozen = load_frozen(dir.path(), &dev)?;
        let head = PrototypeHead::load(dir.path(), &dev)?;
        let objective = PrototypeObjective::new(head, vec![0, 1])?;
        let inverter = Inverter::new(InversionConfig {
            steps: 20,
            ..Default::default()
        })?;
        let start = inverter.gaussian_init(2, (1, 28, 28), &dev)?;
        let first = objective
            .loss(&frozen.forward(&start)?)?
            .to_scalar::<f32>()?;
        let out = inverter.run(&frozen, &objective, &start, &mut Monitor::new())?;
        let x = candle_core::Tensor::from_vec(
            out.images.iter().copied().collect::<Vec<f32>>(),
            (2, 1, 28, 28),
            &dev,
        )?;
        let last = objective.loss(&frozen.forward(&x)?)?.to_scalar::<f32>()?;
        assert!(last < first, "{kind:?}: objective {first} -> {last}");
        assert!(inverter
            .run(
                &frozen,
                &objective,
                &start.narrow(0, 0, 1)?,
                &mut Monitor::new()
            )
            .is_err());
    }
    Ok(())
}
