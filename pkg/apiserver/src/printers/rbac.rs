//! Printers for the `rbac.authorization.k8s.io` API group: RoleBinding and
//! ClusterRoleBinding. Role and ClusterRole have no upstream printer and use the default
//! table (`Name`, `Created At`).

use jiff::Timestamp;
use serde_json::Value;

use super::docs::*;
use super::util::*;
use super::{AGE, Column, NAME, Printer, col, wide};

/// Printer for an RBAC kind, if upstream has one.
pub(super) fn printer(kind: &str) -> Option<Printer> {
    match kind {
        "RoleBinding" => Some(Printer {
            columns: &ROLE_BINDING_COLUMNS,
            row: binding_row,
        }),
        "ClusterRoleBinding" => Some(Printer {
            columns: &CLUSTER_ROLE_BINDING_COLUMNS,
            row: binding_row,
        }),
        _ => None,
    }
}

static ROLE_BINDING_COLUMNS: [Column; 6] = [
    NAME,
    col("Role", "string", RB_ROLE_REF),
    AGE,
    wide("Users", "string", "Users in the roleBinding"),
    wide("Groups", "string", "Groups in the roleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    ),
];

static CLUSTER_ROLE_BINDING_COLUMNS: [Column; 6] = [
    NAME,
    col("Role", "string", CRB_ROLE_REF),
    AGE,
    wide("Users", "string", "Users in the clusterRoleBinding"),
    wide("Groups", "string", "Groups in the clusterRoleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    ),
];

fn binding_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let role_ref = format!(
        "{}/{}",
        str_at(obj, &["roleRef", "kind"]),
        str_at(obj, &["roleRef", "name"])
    );
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for s in arr(obj, &["subjects"]) {
        let subject_name = str_at(s, &["name"]);
        match str_at(s, &["kind"]) {
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{subject_name}", str_at(s, &["namespace"])))
            }
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            _ => {}
        }
    }
    vec![
        cell(name(obj)),
        cell(role_ref),
        age(obj, now),
        cell(users.join(", ")),
        cell(groups.join(", ")),
        cell(service_accounts.join(", ")),
    ]
}
