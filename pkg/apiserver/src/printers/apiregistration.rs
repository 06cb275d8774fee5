//! Printer of `apiregistration.k8s.io` APIServices (upstream's kube-aggregator table:
//! Name, Service, Available, Age).

use jiff::Timestamp;
use serde_json::Value;

use super::util::*;
use super::{AGE, Column, NAME, Printer, col};

/// Printer for `kind`, if upstream has one.
pub(super) fn printer(kind: &str) -> Option<Printer> {
    match kind {
        "APIService" => Some(Printer {
            columns: &API_SERVICE_COLUMNS,
            row: api_service_row,
        }),
        _ => None,
    }
}

static API_SERVICE_COLUMNS: [Column; 4] = [
    NAME,
    col(
        "Service",
        "string",
        "The reference to the service that hosts this API endpoint.",
    ),
    col("Available", "string", "Whether this service is available."),
    AGE,
];

/// `<namespace>/<name>` of the Service, or `Local`; the Available condition's status,
/// with its reason when not True, or `Unknown` without one.
fn api_service_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let service = match get(obj, &["spec", "service"]).filter(|s| s.is_object()) {
        Some(s) => format!("{}/{}", str_at(s, &["namespace"]), str_at(s, &["name"])),
        None => "Local".to_string(),
    };
    let available = arr(obj, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Available")
        .map_or_else(
            || "Unknown".to_string(),
            |c| match str_at(c, &["status"]) {
                "True" => "True".to_string(),
                s => format!("{s} ({})", str_at(c, &["reason"])),
            },
        );
    vec![
        cell(name(obj)),
        cell(service),
        cell(available),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn local_and_unavailable_services_read_as_upstream() {
        let now = Timestamp::now();
        let local = json!({"metadata": {"name": "v1.apps"}, "spec": {"group": "apps"},
            "status": {"conditions": [{"type": "Available", "status": "True"}]}});
        let row = api_service_row(&local, now);
        assert_eq!(row[1], json!("Local"));
        assert_eq!(row[2], json!("True"));
        let remote = json!({"metadata": {"name": "v1.x.io"},
            "spec": {"service": {"namespace": "ns", "name": "api"}},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}});
        let row = api_service_row(&remote, now);
        assert_eq!(row[1], json!("ns/api"));
        assert_eq!(row[2], json!("False (MissingEndpoints)"));
        let fresh = json!({"metadata": {"name": "v1.y.io"}, "spec": {}});
        assert_eq!(api_service_row(&fresh, now)[2], json!("Unknown"));
    }
}
