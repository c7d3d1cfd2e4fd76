//! Checked access to a node's attributes: every attribute must be read by the op's parser,
//! so an attribute nobody handles is an error instead of being silently ignored.

use std::cell::RefCell;

use candle_core::Device;

use crate::proto::{AttributeProto, NodeProto};
use crate::value::{decode_tensor, Value};
use crate::{Error, Result};

/// The attributes of one node, with a record of which were read.
pub(crate) struct Attrs<'a> {
    node: &'a NodeProto,
    label: String,
    used: RefCell<Vec<bool>>,
}

impl<'a> Attrs<'a> {
    /// The attributes of `node`; `label` names it in errors.
    pub fn new(node: &'a NodeProto, label: String) -> Self {
        Self {
            node,
            label,
            used: RefCell::new(vec![false; node.attribute.len()]),
        }
    }

    /// An [`Error::Unsupported`] for this node.
    pub fn unsupported(&self, attribute: Option<&str>, what: impl Into<String>) -> Error {
        Error::Unsupported {
            node: self.label.clone(),
            op_type: self.node.op_type.clone(),
            attribute: attribute.map(str::to_string),
            what: what.into(),
        }
    }

    fn find(&self, name: &str) -> Option<&'a AttributeProto> {
        let i = self.node.attribute.iter().position(|a| a.name == name)?;
        self.used.borrow_mut()[i] = true;
        Some(&self.node.attribute[i])
    }

    /// The attribute `name`, checked to be of ONNX `AttributeType` `kind`.
    fn typed(&self, name: &str, kind: i32) -> Result<Option<&'a AttributeProto>> {
        match self.find(name) {
            None => Ok(None),
            Some(a) if !a.ref_attr_name.is_empty() => {
                Err(self.unsupported(Some(name), "reference to a function attribute"))
            }
            // type 0 (UNDEFINED) comes from IR version 1 writers: accept the field as set
            Some(a) if a.r#type == kind || a.r#type == 0 => Ok(Some(a)),
            Some(a) => Err(self.unsupported(
                Some(name),
                format!("attribute type {} (expected {kind})", a.r#type),
            )),
        }
    }

    /// An INT attribute, or `default`.
    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.typed(name, 2)?.map_or(default, |a| a.i))
    }

    /// An INT attribute, if present.
    pub fn find_int(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.typed(name, 2)?.map(|a| a.i))
    }

    /// A FLOAT attribute, if present.
    pub fn find_float(&self, name: &str) -> Result<Option<f32>> {
        Ok(self.typed(name, 1)?.map(|a| a.f))
    }

    /// A FLOAT attribute, or `default`.
    pub fn float(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self.typed(name, 1)?.map_or(default, |a| a.f))
    }

    /// An INTS attribute, if present.
    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self.typed(name, 7)?.map(|a| a.ints.clone()))
    }

    /// A FLOATS attribute, if present.
    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        Ok(self.typed(name, 6)?.map(|a| a.floats.clone()))
    }

    /// A STRING attribute, or `default`.
    pub fn string(&self, name: &str, default: &str) -> Result<String> {
        match self.typed(name, 3)? {
            None => Ok(default.to_string()),
            Some(a) => String::from_utf8(a.s.clone())
                .map_err(|_| self.unsupported(Some(name), "a string that is not UTF-8")),
        }
    }

    /// A TENSOR attribute, decoded, if present.
    pub fn tensor(&self, name: &str, device: &Device) -> Result<Option<Value>> {
        match self.typed(name, 4)? {
            None => Ok(None),
            Some(a) => match &a.t {
                Some(t) => decode_tensor(t, device).map(Some),
                None => Err(self.unsupported(Some(name), "a tensor attribute without a tensor")),
            },
        }
    }

    /// Accepts and ignores `name` (an attribute with no effect at inference, e.g.
    /// Dropout's `seed`).
    pub fn ignore(&self, name: &str) {
        self.find(name);
    }

    /// Errors on the first attribute that no parser read.
    ///
    /// # Errors
    /// [`Error::Unsupported`] naming the attribute.
    pub fn finish(&self) -> Result<()> {
        let used = self.used.borrow();
        match self
            .node
            .attribute
            .iter()
            .zip(used.iter())
            .find(|(_, &u)| !u)
        {
            Some((a, _)) => Err(self.unsupported(Some(&a.name), "attribute")),
            None => Ok(()),
        }
    }
}
