//! The audit policy (`audit.k8s.io/v1` Policy, `--audit-policy-file`): its rules are
//! tried in order and the first that matches a request gives its level and the stages
//! left out; a request no rule matches is not audited.

use serde_json::Value;

use crate::auth::authz::Attributes;

/// How much of a request is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing.
    None,
    /// Who asked what, and the answer's status.
    Metadata,
    /// Also the request body.
    Request,
    /// Also the response body.
    RequestResponse,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "None" => Level::None,
            "Metadata" => Level::Metadata,
            "Request" => Level::Request,
            "RequestResponse" => Level::RequestResponse,
            _ => return None,
        })
    }

    /// The name events carry.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

/// The stages an event is written at.
pub const STAGES: &[&str] = &[
    "RequestReceived",
    "ResponseStarted",
    "ResponseComplete",
    "Panic",
];

/// One `GroupResources` entry of a rule.
#[derive(Debug, Clone, Default)]
struct GroupResources {
    group: String,
    resources: Vec<String>,
    resource_names: Vec<String>,
}

/// One rule.
#[derive(Debug, Clone)]
struct Rule {
    level: Level,
    users: Vec<String>,
    user_groups: Vec<String>,
    verbs: Vec<String>,
    resources: Vec<GroupResources>,
    namespaces: Vec<String>,
    non_resource_urls: Vec<String>,
    omit_stages: Vec<String>,
    omit_managed_fields: Option<bool>,
}

/// A loaded policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
    omit_stages: Vec<String>,
    omit_managed_fields: bool,
}

/// What the policy says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The level.
    pub level: Level,
    /// Stages not written (the rule's and the policy's).
    pub omit_stages: Vec<String>,
    /// Whether `metadata.managedFields` is left out of the recorded objects.
    pub omit_managed_fields: bool,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn check_stages(stages: &[String], path: &str) -> Result<(), String> {
    for s in stages {
        if !STAGES.contains(&s.as_str()) {
            return Err(format!(
                "{path}: Unsupported value: \"{s}\": supported values: \"{}\"",
                STAGES.join("\", \"")
            ));
        }
    }
    Ok(())
}

impl Policy {
    /// Parses a policy document (YAML or JSON), checked as upstream's loader does.
    pub fn parse(doc: &Value) -> Result<Policy, String> {
        let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
        if api_version != "audit.k8s.io/v1" || kind != "Policy" {
            return Err(format!(
                "unknown group version field {api_version:?} kind {kind:?} in policy (want audit.k8s.io/v1 Policy)"
            ));
        }
        let omit_stages = strings(doc, "omitStages");
        check_stages(&omit_stages, "omitStages")?;
        let mut rules = Vec::new();
        let list = doc
            .get("rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, r) in list.iter().enumerate() {
            let path = format!("rules[{i}]");
            let level_text = r.get("level").and_then(Value::as_str).unwrap_or("");
            let level = Level::parse(level_text).ok_or_else(|| {
                format!(
                    "{path}.level: Unsupported value: \"{level_text}\": supported values: \"None\", \"Metadata\", \"Request\", \"RequestResponse\""
                )
            })?;
            let resources: Vec<GroupResources> = r
                .get("resources")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|g| GroupResources {
                            group: g
                                .get("group")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            resources: strings(g, "resources"),
                            resource_names: strings(g, "resourceNames"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let namespaces = strings(r, "namespaces");
            let non_resource_urls = strings(r, "nonResourceURLs");
            if !non_resource_urls.is_empty() && (!resources.is_empty() || !namespaces.is_empty()) {
                return Err(format!(
                    "{path}.nonResourceURLs: Invalid value: {non_resource_urls:?}: rules cannot apply to both regular resources and non-resource URLs"
                ));
            }
            let omit = strings(r, "omitStages");
            check_stages(&omit, &format!("{path}.omitStages"))?;
            rules.push(Rule {
                level,
                users: strings(r, "users"),
                user_groups: strings(r, "userGroups"),
                verbs: strings(r, "verbs"),
                resources,
                namespaces,
                non_resource_urls,
                omit_stages: omit,
                omit_managed_fields: r.get("omitManagedFields").and_then(Value::as_bool),
            });
        }
        Ok(Policy {
            rules,
            omit_stages,
            omit_managed_fields: doc
                .get("omitManagedFields")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// The level and omitted stages for a request (by the authenticated user).
    pub fn evaluate(&self, a: &Attributes) -> Decision {
        for r in &self.rules {
            if r.matches(a) {
                let mut omit = r.omit_stages.clone();
                for s in &self.omit_stages {
                    if !omit.contains(s) {
                        omit.push(s.clone());
                    }
                }
                return Decision {
                    level: r.level,
                    omit_stages: omit,
                    omit_managed_fields: r.omit_managed_fields.unwrap_or(self.omit_managed_fields),
                };
            }
        }
        Decision {
            level: Level::None,
            omit_stages: self.omit_stages.clone(),
            omit_managed_fields: self.omit_managed_fields,
        }
    }
}

impl Rule {
    fn matches(&self, a: &Attributes) -> bool {
        if !self.users.is_empty() && !self.users.contains(&a.user.name) {
            return false;
        }
        if !self.user_groups.is_empty()
            && !a.user.groups.iter().any(|g| self.user_groups.contains(g))
        {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.contains(&a.verb) {
            return false;
        }
        let about_resources = !self.resources.is_empty() || !self.namespaces.is_empty();
        if about_resources || !self.non_resource_urls.is_empty() {
            if a.resource_request {
                about_resources && self.matches_resource(a)
            } else {
                !self.non_resource_urls.is_empty() && self.matches_path(&a.path)
            }
        } else {
            true
        }
    }

    fn matches_resource(&self, a: &Attributes) -> bool {
        // A namespace list of "" matches cluster-scoped requests.
        if !self.namespaces.is_empty() && !self.namespaces.contains(&a.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        self.resources.iter().any(|gr| {
            if gr.group != a.api_group {
                return false;
            }
            if gr.resources.is_empty() {
                return true;
            }
            gr.resources.iter().any(|res| {
                if !gr.resource_names.is_empty() && !gr.resource_names.contains(&a.name) {
                    return false;
                }
                res == "*"
                    || *res == combined
                    || (!a.subresource.is_empty()
                        && res.strip_prefix("*/") == Some(a.subresource.as_str()))
                    || (!a.subresource.is_empty()
                        && res.strip_suffix("/*") == Some(a.resource.as_str()))
            })
        })
    }

    fn matches_path(&self, path: &str) -> bool {
        self.non_resource_urls
            .iter()
            .any(|u| match u.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => u == path,
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::auth::UserInfo;

    fn res(user: &str, verb: &str, group: &str, resource: &str, sub: &str, ns: &str) -> Attributes {
        Attributes {
            user: UserInfo::new(user, ["devs".to_string()]),
            verb: verb.into(),
            resource_request: true,
            namespace: ns.into(),
            api_group: group.into(),
            api_version: "v1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: "x".into(),
            path: String::new(),
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let p = Policy::parse(&json!({
            "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [
                {"level": "None", "resources": [{"group": "", "resources": ["configmaps"], "resourceNames": ["quiet"]}]},
                {"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"]},
                {"level": "RequestResponse", "resources": [{"group": "", "resources": ["pods/log", "*/scale"]}]},
                {"level": "Request", "resources": [{"group": ""}], "namespaces": ["audited"]},
                {"level": "Metadata", "nonResourceURLs": ["/healthz*", "/version"]},
                {"level": "Metadata", "omitStages": ["ResponseStarted"], "omitManagedFields": true, "resources": [{"group": "apps", "resources": ["deployments/*"]}]},
            ]
        }))
        .unwrap();
        let level = |a: &Attributes| p.evaluate(a).level;
        let mut quiet = res("jane", "get", "", "configmaps", "", "default");
        quiet.name = "quiet".into();
        assert_eq!(level(&quiet), Level::None);
        assert_eq!(
            level(&res("jane", "get", "", "configmaps", "", "audited")),
            Level::Request
        );
        assert_eq!(
            level(&res("jane", "get", "", "configmaps", "", "other")),
            Level::None
        );
        assert_eq!(
            level(&res("jane", "get", "", "pods", "log", "x")),
            Level::RequestResponse
        );
        // `*/scale` is in the core group's rule: an apps scale falls to `deployments/*`.
        assert_eq!(
            level(&res(
                "jane",
                "update",
                "",
                "replicationcontrollers",
                "scale",
                "x"
            )),
            Level::RequestResponse
        );
        assert_eq!(
            level(&res("jane", "update", "apps", "deployments", "scale", "x")),
            Level::Metadata
        );
        assert_eq!(
            level(&res("jane", "update", "apps", "deployments", "status", "x")),
            Level::Metadata
        );
        assert_eq!(
            level(&res("jane", "update", "apps", "deployments", "", "x")),
            Level::None
        );
        let mut health = res("jane", "get", "", "", "", "");
        health.resource_request = false;
        health.path = "/healthz/etcd".into();
        assert_eq!(level(&health), Level::Metadata);
        health.path = "/version/x".into();
        assert_eq!(level(&health), Level::None);
        let d = p.evaluate(&res("jane", "update", "apps", "deployments", "status", "x"));
        assert_eq!(d.omit_stages, vec!["ResponseStarted", "RequestReceived"]);
        assert!(d.omit_managed_fields);
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(
            Policy::parse(&json!({"apiVersion": "audit.k8s.io/v1beta1", "kind": "Policy"}))
                .is_err()
        );
        let e = Policy::parse(&json!({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Loud"}]}))
            .unwrap_err();
        assert!(
            e.starts_with("rules[0].level: Unsupported value: \"Loud\""),
            "{e}"
        );
        assert!(
            Policy::parse(
                &json!({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["Never"]})
            )
            .is_err()
        );
    }
}
