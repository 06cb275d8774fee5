//! k1s apimachinery: the no-IO vocabulary every k1s crate shares.
//!
//! Everything here mirrors `k8s.io/apimachinery` (Kubernetes 1.35) closely enough that
//! clients cannot tell the difference: label and field selectors, name and value
//! validation, field errors, `Status` bodies, quantities, generated names and object
//! metadata validation. Messages are upstream's, byte for byte, because kubectl prints
//! them verbatim and tests in the wild match on them.

pub mod cron;
pub mod field;
pub mod fields;
#[cfg(test)]
mod fuzz;
pub mod goformat;
pub mod gotime;
pub mod labels;
pub mod meta;
pub mod names;
pub mod quantity;
pub mod quota;
pub mod status;
pub mod validation;

pub use field::{ErrorList, ErrorType, FieldError, Path};
pub use fields::FieldSelector;
pub use labels::Selector;
pub use quantity::Quantity;
pub use status::{GroupKind, GroupResource, Status};
