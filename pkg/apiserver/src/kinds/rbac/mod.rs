//! Kinds of the `rbac.authorization.k8s.io` group (upstream
//! `pkg/apis/rbac/validation`, `pkg/apis/rbac/v1/defaults.go`). Names of all four kinds
//! are path segments, not DNS names (`system:controller:foo` is a valid name).

mod binding;
mod role;

pub use binding::{ClusterRoleBindingStrategy, RoleBindingStrategy};
pub use role::{ClusterRoleStrategy, RoleStrategy};

/// Upstream's `ValidateRBACName`: a name that is safe as one URL path segment.
pub fn validate_rbac_name(name: &str, prefix: bool) -> Vec<String> {
    k1s_apimachinery::validation::validate_path_segment_name(name, prefix)
}
