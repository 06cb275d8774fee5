//! Kinds of the `scheduling.k8s.io` group.

mod priorityclass;

pub use priorityclass::PriorityClassStrategy;
