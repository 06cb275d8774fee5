//! Kinds of the `coordination.k8s.io` group.

mod lease;

pub use lease::LeaseStrategy;
