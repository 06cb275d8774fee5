//! CSINodes (upstream `ValidateCSINode`, `ValidateCSINodeUpdate`): named after their
//! node, one entry per driver with a node ID and qualified topology keys; an existing
//! driver entry changes only its allocatable count (MutableCSINodeAllocatableCount is on
//! by default in 1.35).

use std::collections::HashSet;

use k1s_apimachinery::goformat::quote;
use k1s_apimachinery::goformat::{go_strings, invalid_go};
use k1s_apimachinery::validation::is_qualified_name;
use k1s_apimachinery::{ErrorList, FieldError, Path};
use serde_json::Value;

use crate::kinds::core::volumesource::csi_driver_name;
use crate::kinds::validation::list_of;
use crate::kinds::validation::{Fields, nonnegative, semantic_eq, without};
use crate::registry::Strategy;

/// The CSINode strategy.
pub struct CsiNodeStrategy;

const NODE_ID_MAX: usize = 192;
const NODE_ID_LONGER_MAX: usize = 256;

/// `validateCSINodeDriver` for every driver.
fn validate_drivers(obj: &Value, allow_long_node_id: bool) -> ErrorList {
    let path = Path::new("spec").child("drivers");
    let mut errs = ErrorList::new();
    let mut names: HashSet<&str> = HashSet::new();
    for (i, d) in obj.f("spec").a("drivers").iter().enumerate() {
        let p = path.index(i);
        let name = d.s("name");
        errs.extend(csi_driver_name(name, &p.child("name")));
        let node_id = d.s("nodeID");
        if node_id.is_empty() {
            errs.push(FieldError::required(&p.child("nodeID"), ""));
        }
        let max = if allow_long_node_id {
            NODE_ID_LONGER_MAX
        } else {
            NODE_ID_MAX
        };
        if node_id.len() > max {
            errs.push(FieldError::invalid(
                &p.child("nodeID"),
                node_id,
                format!("must be {max} characters or less"),
            ));
        }
        errs.extend(nonnegative(
            d.f("allocatable").i("count"),
            &p.child("allocatable").child("count"),
        ));
        if !names.insert(name) {
            errs.push(FieldError::duplicate(&p.child("name"), name));
        }
        let mut keys: HashSet<&str> = HashSet::new();
        for key in d.a("topologyKeys") {
            let key = key.as_str().unwrap_or_default();
            if key.is_empty() {
                errs.push(FieldError::required(&p, ""));
            }
            if !keys.insert(key) {
                errs.push(FieldError::duplicate(&p, key));
            }
            for msg in is_qualified_name(key) {
                errs.push(FieldError::invalid(&p, key, msg));
            }
        }
    }
    errs
}

/// `%#v` of a `storage.CSINodeDriver` with its allocatable cleared, as upstream shows it.
fn go_driver(d: &Value) -> String {
    format!(
        "storage.CSINodeDriver{{Name:{}, NodeID:{}, TopologyKeys:{}, Allocatable:(*storage.VolumeNodeResources)(nil)}}",
        quote(d.s("name")),
        quote(d.s("nodeID")),
        go_strings("string", list_of(d, "topologyKeys"))
    )
}

impl Strategy for CsiNodeStrategy {
    // Upstream's strategy refuses a PUT without a resourceVersion; patches apply to the
    // current version and are not affected.
    fn allow_unconditional_update(&self) -> bool {
        false
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        validate_drivers(obj, false)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let old_drivers = old.f("spec").a("drivers");
        let allow_long = old_drivers
            .iter()
            .any(|d| d.s("nodeID").len() > NODE_ID_MAX);
        let mut errs = validate_drivers(new, allow_long);
        for o in old_drivers {
            for n in new.f("spec").a("drivers") {
                if o.s("name") == n.s("name")
                    && !semantic_eq(&without(n, &["allocatable"]), &without(o, &["allocatable"]))
                {
                    errs.push(invalid_go(
                        &Path::new("spec").child("drivers"),
                        go_driver(n),
                        "field is immutable",
                    ));
                }
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn driver_entries_keep_everything_but_their_count() {
        let old = json!({"spec": {"drivers": [{"name": "ebs.csi.aws.com", "nodeID": "i-1", "topologyKeys": ["topology.ebs.csi.aws.com/zone"], "allocatable": {"count": 25}}]}});
        let mut new = old.clone();
        new["spec"]["drivers"][0]["allocatable"]["count"] = json!(24);
        assert!(CsiNodeStrategy.validate_update(&new, &old).is_empty());
        new["spec"]["drivers"][0]["nodeID"] = json!("i-2");
        assert_eq!(
            CsiNodeStrategy.validate_update(&new, &old)[0].to_string(),
            "spec.drivers: Invalid value: storage.CSINodeDriver{Name:\"ebs.csi.aws.com\", NodeID:\"i-2\", TopologyKeys:[]string{\"topology.ebs.csi.aws.com/zone\"}, Allocatable:(*storage.VolumeNodeResources)(nil)}: field is immutable"
        );
    }
}
