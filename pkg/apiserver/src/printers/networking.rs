//! Printers for the `networking.k8s.io` API group: Ingress, IngressClass, NetworkPolicy,
//! ServiceCIDR and IPAddress.

use jiff::Timestamp;
use serde_json::Value;

use super::docs::*;
use super::util::*;
use super::{AGE, Column, NAME, Printer, RowFn, col};

/// Printer for a `networking.k8s.io` kind, if upstream has one.
pub(super) fn printer(kind: &str) -> Option<Printer> {
    let (columns, row): (&'static [Column], RowFn) = match kind {
        "Ingress" => (&INGRESS_COLUMNS, ingress_row),
        "IngressClass" => (&INGRESS_CLASS_COLUMNS, ingress_class_row),
        "NetworkPolicy" => (&NETWORK_POLICY_COLUMNS, network_policy_row),
        "ServiceCIDR" => (&SERVICE_CIDR_COLUMNS, service_cidr_row),
        "IPAddress" => (&IP_ADDRESS_COLUMNS, ip_address_row),
        _ => return None,
    };
    Some(Printer { columns, row })
}

static INGRESS_COLUMNS: [Column; 6] = [
    NAME,
    col(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    col(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

/// Upstream `formatHosts`: up to three rule hosts, `*` when none.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let out = list.join(",");
    if more {
        format!("{out} + {} more...", rules.len() - MAX)
    } else {
        out
    }
}

fn ingress_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let class = opt_str(obj, &["spec", "ingressClassName"]).unwrap_or("<none>");
    let ports = if arr(obj, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        cell(name(obj)),
        cell(class),
        cell(format_hosts(arr(obj, &["spec", "rules"]))),
        cell(load_balancer_ingress(get(obj, &["status", "loadBalancer"]))),
        cell(ports),
        age(obj, now),
    ]
}

static INGRESS_CLASS_COLUMNS: [Column; 4] = [
    NAME,
    col(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    col(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

fn ingress_class_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let parameters = match present(obj, &["spec", "parameters"]) {
        Some(p) => {
            let mut out = str_at(p, &["kind"]).to_string();
            if let Some(group) = opt_str(p, &["apiGroup"]) {
                out.push('.');
                out.push_str(group);
            }
            format!("{out}/{}", str_at(p, &["name"]))
        }
        None => "<none>".to_string(),
    };
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "controller"])),
        cell(parameters),
        age(obj, now),
    ]
}

static NETWORK_POLICY_COLUMNS: [Column; 3] =
    [NAME, col("Pod-Selector", "string", NP_POD_SELECTOR), AGE];

fn network_policy_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    // podSelector is a required (non-pointer) field: an absent one is the empty selector.
    let selector = format_label_selector(get(obj, &["spec", "podSelector"]));
    vec![cell(name(obj)), cell(selector), age(obj, now)]
}

static SERVICE_CIDR_COLUMNS: [Column; 3] = [NAME, col("CIDRs", "string", SCIDR_CIDRS), AGE];

fn service_cidr_row(obj: &Value, now: Timestamp) -> Vec<Value> {
    let cidrs: Vec<&str> = arr(obj, &["spec", "cidrs"])
        .iter()
        .map(|v| v.as_str().unwrap_or(""))
        .collect();
    vec![cell(name(obj)), cell(cidrs.join(",")), age(obj, now)]
}

/// Upstream declares only `Name` and `ParentRef` for IPAddress (its printer also computes an
/// age cell that kubectl never shows); one cell per declared column is returned.
static IP_ADDRESS_COLUMNS: [Column; 2] = [NAME, col("ParentRef", "string", IPA_PARENT)];

fn ip_address_row(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let parent = match present(obj, &["spec", "parentRef"]) {
        Some(p) => {
            let group = str_at(p, &["group"]);
            let resource = str_at(p, &["resource"]);
            let mut out = if group.is_empty() {
                resource.to_lowercase()
            } else {
                format!("{resource}.{group}").to_lowercase()
            };
            let ns = str_at(p, &["namespace"]);
            if !ns.is_empty() {
                out.push('/');
                out.push_str(ns);
            }
            out.push('/');
            out.push_str(str_at(p, &["name"]));
            out
        }
        None => "<none>".to_string(),
    };
    vec![cell(name(obj)), cell(parent)]
}
