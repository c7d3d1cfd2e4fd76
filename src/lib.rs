//! netinv: class-specific image reconstruction through network inversion.
//!
//! This umbrella crate only re-exports the netinv libraries, so one dependency brings them
//! all; each is usable on its own as well. See the README for the crate map.

pub use netinv_core as core;
pub use netinv_ct as ct;
pub use netinv_data as data;
pub use netinv_interp as interp;
pub use netinv_invert as invert;
pub use netinv_metrics as metrics;
pub use netinv_models as models;
pub use netinv_onnx as onnx;
pub use netinv_prototypes as prototypes;
pub use netinv_tomo as tomo;
