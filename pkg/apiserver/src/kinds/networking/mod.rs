//! Kinds of the `networking.k8s.io` group (upstream `pkg/apis/networking/validation`
//! and `pkg/registry/networking/*`).

mod ingress;
mod ingressclass;
mod ipaddress;
mod networkpolicy;
mod servicecidr;

pub use ingress::IngressStrategy;
pub use ingressclass::IngressClassStrategy;
pub use ipaddress::IpAddressStrategy;
pub use networkpolicy::NetworkPolicyStrategy;
pub use servicecidr::ServiceCidrStrategy;

use k1s_apimachinery::meta::validate_label_selector;
use k1s_apimachinery::{ErrorList, Path};
use serde_json::Value;

/// `ValidateLabelSelector` with `AllowInvalidLabelValueInSelector`: when `allow_values`,
/// the values of `matchExpressions` are not checked (objects stored before the check
/// existed stay updatable).
pub fn validate_selector(selector: Option<&Value>, allow_values: bool, path: &Path) -> ErrorList {
    let errs = validate_label_selector(selector, path);
    if !allow_values {
        return errs;
    }
    errs.into_iter()
        .filter(|e| !(e.field.contains("matchExpressions[") && e.field.contains("].values[")))
        .collect()
}

/// Whether `ValidateLabelSelector` finds anything wrong (which then allows invalid
/// values on update).
pub fn selector_has_errors(selector: Option<&Value>) -> bool {
    !validate_label_selector(selector, &Path::root()).is_empty()
}
