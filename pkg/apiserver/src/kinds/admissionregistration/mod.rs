//! admissionregistration.k8s.io/v1: webhook configurations, ValidatingAdmissionPolicies
//! and their bindings, with upstream's validation, defaults and CEL compile checks.

pub mod cel;
pub mod common;
pub mod policy;
pub mod webhook;

pub use policy::{ValidatingAdmissionPolicyBindingStrategy, ValidatingAdmissionPolicyStrategy};
pub use webhook::WebhookConfigurationStrategy;
