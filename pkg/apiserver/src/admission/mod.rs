//! Admission steps that run in the registry's write path beyond each kind's strategy.

pub mod policy;
