//! Kinds of the `node.k8s.io` group.

mod runtimeclass;

pub use runtimeclass::RuntimeClassStrategy;
