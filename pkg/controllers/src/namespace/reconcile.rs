//! One pass over one namespace, as upstream's `namespacedResourcesDeleter.Delete`.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, DynamicObject, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::FINALIZER;
use super::conditions::{ContentReport, update_conditions};
use crate::discovery::{self, DiscoveredResource};

/// Shared state of the namespace controller.
pub(super) struct Context {
    pub client: kube::Client,
}

/// Why a pass over a namespace did not finish.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// The namespace could not be read.
    #[error("cannot read namespace {name}")]
    Get {
        /// The namespace.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The Terminating phase could not be written.
    #[error("cannot mark namespace {name} terminating")]
    Status {
        /// The namespace.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Some content could not be deleted (or discovered); the conditions say which.
    #[error("cannot delete the content of namespace {name}: {message}")]
    Content {
        /// The namespace.
        name: String,
        /// Every failure, joined.
        message: String,
    },
    /// The `kubernetes` finalizer could not be removed.
    #[error("cannot finalize namespace {name}")]
    Finalize {
        /// The namespace.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The namespace was deleted and recreated while this pass ran.
    #[error("namespace {name} uid has changed across retries")]
    UidChanged {
        /// The namespace.
        name: String,
    },
}

/// How many times a write that met a conflict is retried on a fresh read.
const CONFLICT_RETRIES: usize = 5;

/// When to look again at a namespace whose content is still going away: soon at first
/// (most content goes within a second), then at upstream's pace (about every 8 seconds)
/// for namespaces stuck on finalizers, so a stuck namespace costs little.
fn recheck_after(ns: &Namespace) -> Duration {
    let age = ns
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| k8s_openapi::jiff::Timestamp::now().duration_since(t.0))
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or_default();
    (Duration::from_millis(500) + age / 8).min(Duration::from_secs(8))
}

fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// The server's message for API errors, the error otherwise (upstream prints `err.Error()`).
fn message_of(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

fn has_finalizer(ns: &Namespace) -> bool {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
}

/// Reconciles one namespace.
pub(super) async fn reconcile(
    ns: Arc<Namespace>,
    ctx: Arc<Context>,
) -> Result<Action, NamespaceError> {
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    // Several controllers edit a terminating namespace: work from the latest copy.
    let latest = api
        .get_opt(&name)
        .await
        .map_err(|source| NamespaceError::Get {
            name: name.clone(),
            source,
        })?;
    let Some(latest) = latest else {
        return Ok(Action::await_change());
    };
    if latest.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let Some(latest) = ensure_terminating(&api, latest).await? else {
        return Ok(Action::await_change());
    };
    if !has_finalizer(&latest) {
        return Ok(Action::await_change());
    }

    let report = delete_all_content(&ctx.client, &name).await;
    let latest = write_conditions(&api, latest, &report).await;
    if report.has_errors() {
        let mut all: Vec<String> = report.discovery_error.iter().cloned().collect();
        all.extend(report.group_version_errors.iter().cloned());
        all.extend(report.delete_errors.iter().cloned());
        return Err(NamespaceError::Content {
            name,
            message: all.join("; "),
        });
    }
    if !report.remaining.is_empty() {
        tracing::debug!(namespace = %name, remaining = ?report.remaining, "content remains in the namespace");
        return Ok(Action::requeue(recheck_after(&latest)));
    }
    finalize(&api, latest).await?;
    tracing::info!(namespace = %name, "namespace content removed; finalized");
    Ok(Action::await_change())
}

/// Requeue after a failed pass.
pub(super) fn error_policy(ns: Arc<Namespace>, err: &NamespaceError, _: Arc<Context>) -> Action {
    tracing::warn!(namespace = %ns.name_any(), error = %err, "namespace deletion incomplete");
    Action::requeue(recheck_after(&ns).max(Duration::from_secs(1)))
}

/// Re-reads after a conflict; `None` when the namespace is gone.
async fn reread(
    api: &Api<Namespace>,
    prev: &Namespace,
) -> Result<Option<Namespace>, NamespaceError> {
    let name = prev.name_any();
    let latest = api
        .get_opt(&name)
        .await
        .map_err(|source| NamespaceError::Get {
            name: name.clone(),
            source,
        })?;
    match latest {
        Some(l) if l.metadata.uid != prev.metadata.uid => Err(NamespaceError::UidChanged { name }),
        other => Ok(other),
    }
}

/// Sets `status.phase: Terminating` if it is not; `None` when the namespace is gone.
async fn ensure_terminating(
    api: &Api<Namespace>,
    mut ns: Namespace,
) -> Result<Option<Namespace>, NamespaceError> {
    for _ in 0..CONFLICT_RETRIES {
        let phase = ns.status.as_ref().and_then(|s| s.phase.as_deref());
        if ns.metadata.deletion_timestamp.is_none() || phase == Some("Terminating") {
            return Ok(Some(ns));
        }
        ns.status.get_or_insert_with(Default::default).phase = Some("Terminating".into());
        match api
            .replace_status(&ns.name_any(), &PostParams::default(), &ns)
            .await
        {
            Ok(updated) => return Ok(Some(updated)),
            Err(e) if is_code(&e, 404) => return Ok(None),
            Err(e) if is_code(&e, 409) => match reread(api, &ns).await? {
                Some(l) => ns = l,
                None => return Ok(None),
            },
            Err(source) => {
                return Err(NamespaceError::Status {
                    name: ns.name_any(),
                    source,
                });
            }
        }
    }
    Err(NamespaceError::Status {
        name: ns.name_any(),
        source: kube::Error::Api(Box::new(kube::core::Status::failure(
            "too many conflicts",
            "Conflict",
        ))),
    })
}

/// Writes the five deletion conditions when they changed; failures are logged, as
/// upstream does, and the next pass tries again.
async fn write_conditions(
    api: &Api<Namespace>,
    mut ns: Namespace,
    report: &ContentReport,
) -> Namespace {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let failing = report.failing_conditions(&now);
    let status = ns.status.get_or_insert_with(Default::default);
    if !update_conditions(status, &failing, &now) {
        return ns;
    }
    match api
        .replace_status(&ns.name_any(), &PostParams::default(), &ns)
        .await
    {
        Ok(updated) => updated,
        Err(e) => {
            tracing::debug!(namespace = %ns.name_any(), error = %e, "cannot update namespace conditions");
            ns
        }
    }
}

/// Removes [`FINALIZER`] from `spec.finalizers` through `/finalize`.
async fn finalize(api: &Api<Namespace>, mut ns: Namespace) -> Result<(), NamespaceError> {
    for _ in 0..CONFLICT_RETRIES {
        let spec = ns.spec.get_or_insert_with(Default::default);
        let mut rest: Vec<String> = spec
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        // Upstream rebuilds the list from a set: sorted, without duplicates.
        rest.sort();
        rest.dedup();
        spec.finalizers = Some(rest);
        match api
            .replace_subresource("finalize", &ns.name_any(), &PostParams::default(), &ns)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if is_code(&e, 404) => return Ok(()),
            Err(e) if is_code(&e, 409) => match reread(api, &ns).await? {
                Some(l) => ns = l,
                None => return Ok(()),
            },
            Err(source) => {
                return Err(NamespaceError::Finalize {
                    name: ns.name_any(),
                    source,
                });
            }
        }
    }
    Err(NamespaceError::Finalize {
        name: ns.name_any(),
        source: kube::Error::Api(Box::new(kube::core::Status::failure(
            "too many conflicts",
            "Conflict",
        ))),
    })
}

/// Deletes everything in `namespace` once and reports what is left.
pub(super) async fn delete_all_content(client: &kube::Client, namespace: &str) -> ContentReport {
    let mut report = ContentReport::default();
    let discovered = match discovery::preferred_resources(client).await {
        Ok(d) => d,
        Err(e) => {
            report.discovery_error = Some(message_of(&e));
            return report;
        }
    };
    report.discovery_error = discovered.failure_message();
    report.group_version_errors = discovered.unparsable.clone();
    let deletable = discovered
        .resources
        .iter()
        .filter(|r| r.namespaced && r.supports(&["delete"]));
    for r in deletable {
        let outcome = delete_resource_content(client, namespace, r).await;
        if outcome.remaining > 0 {
            report.remaining.insert(
                format!("{}.{}", r.api.plural, r.api.group),
                outcome.remaining,
            );
            for (f, n) in outcome.finalizers {
                *report.finalizers.entry(f).or_default() += n;
            }
        }
        if let Some(e) = outcome.error {
            report.delete_errors.push(e);
        }
    }
    report
}

/// What deleting one resource type left behind.
#[derive(Debug, Default)]
struct Outcome {
    remaining: usize,
    finalizers: Vec<(String, usize)>,
    error: Option<String>,
}

impl Outcome {
    fn failed(error: String) -> Self {
        Self {
            error: Some(error),
            ..Default::default()
        }
    }
}

/// Deletes every object of one resource type in the namespace: a collection delete
/// where the resource offers one, one by one otherwise; then counts what remains.
async fn delete_resource_content(
    client: &kube::Client,
    namespace: &str,
    r: &DiscoveredResource,
) -> Outcome {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &r.api);
    // The namespace controller decides for itself when content is gone, so dependents
    // are never orphaned: background propagation, as upstream.
    let dp = DeleteParams::background();
    let mut collection_deleted = false;
    if r.supports(&["deletecollection"]) {
        match api.delete_collection(&dp, &ListParams::default()).await {
            Ok(_) => collection_deleted = true,
            // Discovery said yes but the server says no: fall back to one by one.
            Err(e) if is_code(&e, 405) || is_code(&e, 404) => {}
            Err(e) => return Outcome::failed(message_of(&e)),
        }
    }
    if !r.supports(&["list"]) {
        return Outcome::default();
    }
    if !collection_deleted {
        let items = match api.list_metadata(&ListParams::default()).await {
            Ok(l) => l.items,
            Err(e) if is_code(&e, 405) || is_code(&e, 404) => return Outcome::default(),
            Err(e) => return Outcome::failed(message_of(&e)),
        };
        for item in items {
            if item.metadata.deletion_timestamp.is_some() {
                continue;
            }
            match api.delete(&item.name_any(), &dp).await {
                Ok(_) => {}
                Err(e) if is_code(&e, 404) => {}
                Err(e) => return Outcome::failed(message_of(&e)),
            }
        }
    }
    let items = match api.list_metadata(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => return Outcome::failed(message_of(&e)),
    };
    if items.is_empty() {
        return Outcome::default();
    }
    let mut finalizers: std::collections::BTreeMap<String, usize> = Default::default();
    let mut waiting = false;
    for item in &items {
        let fins = item.metadata.finalizers.as_deref().unwrap_or_default();
        let in_grace = item.metadata.deletion_timestamp.is_some()
            && item
                .metadata
                .deletion_grace_period_seconds
                .is_some_and(|g| g > 0);
        waiting |= !fins.is_empty() || in_grace;
        for f in fins {
            *finalizers.entry(f.clone()).or_default() += 1;
        }
    }
    Outcome {
        remaining: items.len(),
        finalizers: finalizers.into_iter().collect(),
        // Objects without finalizers or a grace period should be gone by now.
        error: (!waiting).then(|| {
            format!(
                "unexpected items still remain in namespace: {namespace} for gvr: {}",
                r.gvr_string()
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::NamespaceSpec;

    use super::*;

    #[test]
    fn only_the_kubernetes_finalizer_starts_content_deletion() {
        // Another finalizer in spec.finalizers belongs to someone else's controller.
        let mut ns = Namespace::default();
        assert!(!has_finalizer(&ns));
        ns.spec = Some(NamespaceSpec {
            finalizers: Some(vec!["example.com/other".into()]),
        });
        assert!(!has_finalizer(&ns));
        ns.spec = Some(NamespaceSpec {
            finalizers: Some(vec!["example.com/other".into(), FINALIZER.into()]),
        });
        assert!(has_finalizer(&ns));
    }

    #[test]
    fn stuck_namespaces_are_rechecked_less_often() {
        // A namespace stuck on a finalizer must not cost a full sweep every half second.
        let mut ns = Namespace::default();
        let now = k8s_openapi::jiff::Timestamp::now();
        ns.metadata.deletion_timestamp = Some(Time(now));
        assert!(recheck_after(&ns) < Duration::from_secs(1));
        let long_ago = now - k8s_openapi::jiff::SignedDuration::from_secs(3600);
        ns.metadata.deletion_timestamp = Some(Time(long_ago));
        assert_eq!(recheck_after(&ns), Duration::from_secs(8));
    }
}
