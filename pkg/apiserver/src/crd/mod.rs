//! CustomResourceDefinitions: the CRD kind itself ([`definition`]), what a CRD version
//! becomes in the generic registry ([`custom`]) and how its versions convert ([`conversion`]), what its schema does to objects
//! ([`structural`]) and its CEL rules ([`rules`]), and the controller that serves and cleans up ([`controller`]).

pub mod controller;
pub mod conversion;
pub mod custom;
pub mod definition;
#[cfg(test)]
mod fuzz;
pub mod rules;
pub mod structural;

pub use definition::CrdStrategy;
