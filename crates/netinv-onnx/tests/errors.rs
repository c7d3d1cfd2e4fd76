//! Bad files give clear errors: malformed bytes, models that are not image classifiers,
//! unsupported operators and attributes.

use netinv_onnx::proto::*;
use netinv_onnx::{Error, OnnxNet};
use prost::Message;

fn dim(v: Option<i64>) -> Dimension {
    Dimension {
        dim_value: v,
        dim_param: v.is_none().then(|| "batch".to_string()),
    }
}

fn value(name: &str, dims: &[Option<i64>], elem_type: i32) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type,
                shape: Some(TensorShapeProto {
                    dim: dims.iter().map(|&d| dim(d)).collect(),
                }),
            }),
        }),
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn model(input: ValueInfoProto, nodes: Vec<NodeProto>, opset: i64) -> Vec<u8> {
    let weight = TensorProto {
        name: "W".into(),
        dims: vec![3, 4],
        data_type: FLOAT,
        float_data: (0..12).map(|i| i as f32 * 0.1).collect(),
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(GraphProto {
            node: nodes,
            initializer: vec![weight],
            input: vec![input],
            output: vec![ValueInfoProto {
                name: "y".into(),
                r#type: None,
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn image_input() -> ValueInfoProto {
    value("x", &[None, Some(1), Some(2), Some(2)], FLOAT)
}

fn linear_nodes() -> Vec<NodeProto> {
    let trans_b = AttributeProto {
        name: "transB".into(),
        r#type: 2,
        i: 1,
        ..Default::default()
    };
    vec![
        node("Flatten", "flat", &["x"], "f", vec![]),
        node("Gemm", "fc", &["f", "W"], "y", vec![trans_b]),
    ]
}

#[test]
fn a_valid_hand_built_model_loads() {
    let net = OnnxNet::from_bytes(&model(image_input(), linear_nodes(), 17)).unwrap();
    assert_eq!(net.info().nodes, 2);
}

#[test]
fn malformed_bytes_are_a_format_error() {
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 97 % 251) as u8).collect();
    let e = OnnxNet::from_bytes(&garbage).unwrap_err();
    assert!(matches!(e, Error::Format(_)), "{e}");
    let good = model(image_input(), linear_nodes(), 17);
    let e = OnnxNet::from_bytes(&good[..good.len() / 2]).unwrap_err();
    assert!(matches!(e, Error::Format(_)), "{e}");
    assert!(e.to_string().starts_with("not a valid ONNX model"), "{e}");
    let e = OnnxNet::load("/nonexistent/model.onnx").unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

#[test]
fn models_that_are_not_image_classifiers_are_refused() {
    let flat = value("x", &[None, Some(4)], FLOAT);
    let e = OnnxNet::from_bytes(&model(flat, linear_nodes(), 17)).unwrap_err();
    assert!(matches!(e, Error::NotImageModel(_)), "{e}");
    assert!(e.to_string().contains("rank 2"), "{e}");
    let ints = value("x", &[None, Some(1), Some(2), Some(2)], INT64);
    let e = OnnxNet::from_bytes(&model(ints, linear_nodes(), 17)).unwrap_err();
    assert!(e.to_string().contains("float32"), "{e}");
    let batch8 = value("x", &[Some(8), Some(1), Some(2), Some(2)], FLOAT);
    let e = OnnxNet::from_bytes(&model(batch8, linear_nodes(), 17)).unwrap_err();
    assert!(e.to_string().contains("fixed batch of 8"), "{e}");
    let e = OnnxNet::from_bytes(&model(image_input(), linear_nodes(), 11)).unwrap_err();
    assert!(e.to_string().contains("opset 11"), "{e}");
    // output [b, 1, 2, 2] instead of [b, classes]
    let e = OnnxNet::from_bytes(&model(
        image_input(),
        vec![node("Relu", "r", &["x"], "y", vec![])],
        17,
    ))
    .unwrap_err();
    assert!(matches!(e, Error::NotImageModel(_)), "{e}");
}

#[test]
fn unsupported_operators_and_attributes_name_the_node() {
    let mut nodes = linear_nodes();
    nodes.insert(0, node("LpNormalization", "norm1", &["x"], "x2", vec![]));
    nodes[1].input[0] = "x2".into();
    let e = OnnxNet::from_bytes(&model(image_input(), nodes, 17)).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Unsupported { .. }), "{text}");
    assert!(
        text.contains("norm1") && text.contains("LpNormalization"),
        "{text}"
    );

    let mut nodes = linear_nodes();
    nodes[0].attribute.push(AttributeProto {
        name: "frobnicate".into(),
        r#type: 2,
        i: 1,
        ..Default::default()
    });
    let e = OnnxNet::from_bytes(&model(image_input(), nodes, 17)).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("`flat` (Flatten)") && text.contains("attribute `frobnicate`"),
        "{text}"
    );

    let mode = AttributeProto {
        name: "mode".into(),
        r#type: 3,
        s: b"reflect".to_vec(),
        ..Default::default()
    };
    let nodes = vec![node("Pad", "pad0", &["x"], "y", vec![mode])];
    let e = OnnxNet::from_bytes(&model(image_input(), nodes, 17)).unwrap_err();
    assert!(
        e.to_string().contains("pad0") && e.to_string().contains("`mode`"),
        "{e}"
    );

    let mut nodes = linear_nodes();
    nodes[0].domain = "com.microsoft".into();
    let e = OnnxNet::from_bytes(&model(image_input(), nodes, 17)).unwrap_err();
    assert!(e.to_string().contains("com.microsoft"), "{e}");
}

#[test]
fn shape_errors_at_load_name_the_node() {
    // Gemm of [b, 4] with W^T [4, 3] is fine; without transB it is [b, 4] x [3, 4]
    let mut nodes = linear_nodes();
    nodes[1].attribute.clear();
    let e = OnnxNet::from_bytes(&model(image_input(), nodes, 17)).unwrap_err();
    assert!(matches!(e, Error::Node { .. }), "{e}");
    assert!(e.to_string().contains("`fc` (Gemm)"), "{e}");
}
