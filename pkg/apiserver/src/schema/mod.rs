//! Schemas: the model, the built-in kinds' schemas, JSON conversion and decoding.

pub mod builtin;
pub mod convert;
pub mod decode;
pub mod facts;
pub mod model;
pub mod proto_facts;
pub mod protobuf;
