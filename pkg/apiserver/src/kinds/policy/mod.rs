//! Kinds of the `policy` group.

mod pdb;

pub use pdb::PodDisruptionBudgetStrategy;
