//! Kinds of the `scheduling.k8s.io` group.

pub mod priorityclass;

pub use priorityclass::PriorityClassStrategy;
