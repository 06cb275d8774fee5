//! Matching claims to volumes (upstream `findBestMatchForClaim`), pure for tests.

use k1s_apimachinery::{Quantity, Selector};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::ResourceExt;

/// The storage a quantity map asks for or offers.
fn storage(
    map: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
) -> Option<Quantity> {
    map.and_then(|m| m.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
}

/// The claim's class: `spec.storageClassName`, or the beta annotation, or "".
pub fn claim_class(claim: &PersistentVolumeClaim) -> String {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .or_else(|| {
            claim
                .annotations()
                .get("volume.beta.kubernetes.io/storage-class")
                .cloned()
        })
        .unwrap_or_default()
}

/// The volume's class, read the same way.
pub fn volume_class(pv: &PersistentVolume) -> String {
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .or_else(|| {
            pv.annotations()
                .get("volume.beta.kubernetes.io/storage-class")
                .cloned()
        })
        .unwrap_or_default()
}

/// Whether the volume's claimRef names this claim (and its uid, when set).
pub fn is_bound_to(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    r.name.as_deref() == claim.metadata.name.as_deref()
        && r.namespace.as_deref() == claim.metadata.namespace.as_deref()
        && r.uid
            .as_deref()
            .is_none_or(|u| u.is_empty() || Some(u) == claim.metadata.uid.as_deref())
}

fn volume_mode(mode: Option<&String>) -> &str {
    mode.map_or("Filesystem", String::as_str)
}

/// The best volume for a claim: a volume pre-bound to it when big enough, else the
/// smallest Available one that matches class, access modes, capacity, selector and
/// volume mode. Unbound volumes are not considered for claims of a class that waits
/// for a consumer (`delay_binding`): the scheduler picks those.
pub fn best_match<'a>(
    claim: &PersistentVolumeClaim,
    volumes: impl IntoIterator<Item = &'a PersistentVolume>,
    delay_binding: bool,
) -> Option<&'a PersistentVolume> {
    let spec = claim.spec.clone().unwrap_or_default();
    let requested = storage(spec.resources.as_ref().and_then(|r| r.requests.as_ref()))
        .unwrap_or_else(|| Quantity::from_i64(0, k1s_apimachinery::quantity::Format::BinarySI));
    let modes = spec.access_modes.clone().unwrap_or_default();
    let class = claim_class(claim);
    let selector = spec.selector.as_ref().map(|s| {
        Selector::from_label_selector(&serde_json::to_value(s).unwrap_or_default())
            .unwrap_or_else(|_| Selector::nothing())
    });
    let mut best: Option<(&PersistentVolume, Quantity)> = None;
    for pv in volumes {
        if pv.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let vspec = pv.spec.clone().unwrap_or_default();
        let Some(size) = storage(vspec.capacity.as_ref()) else {
            continue;
        };
        let vmodes = vspec.access_modes.clone().unwrap_or_default();
        if !modes.iter().all(|m| vmodes.contains(m)) {
            continue;
        }
        if volume_mode(spec.volume_mode.as_ref()) != volume_mode(vspec.volume_mode.as_ref()) {
            continue;
        }
        if size < requested {
            continue;
        }
        if is_bound_to(pv, claim) {
            return Some(pv);
        }
        if vspec.claim_ref.is_some() || delay_binding {
            continue;
        }
        let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase != Some("Available") {
            continue;
        }
        if let Some(sel) = &selector
            && !sel.matches(pv.labels())
        {
            continue;
        }
        if volume_class(pv) != class {
            continue;
        }
        if best.as_ref().is_none_or(|(_, q)| *q > size) {
            best = Some((pv, size));
        }
    }
    best.map(|(pv, _)| pv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(name: &str, size: &str, class: &str, labels: serde_json::Value) -> PersistentVolume {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": class, "hostPath": {"path": "/tmp"}},
            "status": {"phase": "Available"},
        }))
        .expect("pv")
    }

    fn pvc(size: &str, class: &str, selector: Option<serde_json::Value>) -> PersistentVolumeClaim {
        let mut spec = json!({"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                              "resources": {"requests": {"storage": size}}});
        if let Some(s) = selector {
            spec["selector"] = s;
        }
        serde_json::from_value(
            json!({"metadata": {"name": "c", "namespace": "ns", "uid": "u"},
                                      "spec": spec}),
        )
        .expect("pvc")
    }

    #[test]
    fn smallest_fit_of_the_same_class() {
        let vols = [
            pv("big", "10Gi", "manual", json!({})),
            pv("small", "1Gi", "manual", json!({})),
            pv("fits", "2Gi", "manual", json!({})),
            pv("other", "2Gi", "fast", json!({})),
        ];
        let got = best_match(&pvc("1500Mi", "manual", None), &vols, false);
        assert_eq!(got.and_then(|v| v.metadata.name.as_deref()), Some("fits"));
        assert!(best_match(&pvc("1Gi", "manual", None), &vols, true).is_none());
        assert!(best_match(&pvc("20Gi", "manual", None), &vols, false).is_none());
    }

    #[test]
    fn selector_and_prebinding() {
        let mut vols = vec![
            pv("a", "1Gi", "", json!({"tier": "gold"})),
            pv("b", "1Gi", "", json!({})),
        ];
        let sel = json!({"matchLabels": {"tier": "gold"}});
        let got = best_match(&pvc("1Gi", "", Some(sel)), &vols, false);
        assert_eq!(got.and_then(|v| v.metadata.name.as_deref()), Some("a"));
        if let Some(spec) = vols[1].spec.as_mut() {
            spec.claim_ref =
                Some(serde_json::from_value(json!({"name": "c", "namespace": "ns"})).expect("ref"));
        }
        let got = best_match(&pvc("1Gi", "", None), &vols, true);
        assert_eq!(got.and_then(|v| v.metadata.name.as_deref()), Some("b"));
    }
}
