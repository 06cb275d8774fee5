//! Embedded etcd members follow their Nodes, as k3s's managed etcd controllers do.
//!
//! - Every server that runs a member marks its own Node with the member's name and address
//!   (annotations `etcd.k3s.cattle.io/node-name` and `node-address`) and the role labels
//!   `node-role.kubernetes.io/etcd`, `control-plane` and `master` ([`keep_node_marked`];
//!   k3s's metadata controller).
//! - One server at a time (the `kube-system/k1s-etcd` Lease, as k3s leader-elects its
//!   `k3s-etcd` controllers) runs [`run_member_removal`] (k3s's member removal controller):
//!   etcd-labelled Nodes get a finalizer, so a Node deleted while no server leads still has
//!   its member removed when one does; when such a Node is deleted, the member its
//!   annotations name is removed from the etcd cluster, then the finalizer released. The
//!   annotation `etcd.k3s.cattle.io/remove=true` removes the member and keeps the Node
//!   (`etcd.k3s.cattle.io/removed-node-name` then records it).
//!
//! A member is found by its name and the host of its peer URL, both of which must match the
//! annotations (as k3s matches them). The cluster's last member is never removed: etcd
//! refuses that itself, and it is the whole datastore. k3s retries such a removal forever,
//! holding the Node in Terminating; k1s lets the Node go and keeps the member.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k1s_pki::EtcdTlsFiles;
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::oneshot;

/// The member's name, on its server's Node.
pub(crate) const NODE_NAME_ANNOTATION: &str = "etcd.k3s.cattle.io/node-name";
/// The member's address (its peer URL's host), on its server's Node.
pub(crate) const NODE_ADDRESS_ANNOTATION: &str = "etcd.k3s.cattle.io/node-address";
/// `true`: remove the Node's member and keep the Node.
const REMOVE_ANNOTATION: &str = "etcd.k3s.cattle.io/remove";
/// The name of the member removed through [`REMOVE_ANNOTATION`].
const REMOVED_NODE_NAME_ANNOTATION: &str = "etcd.k3s.cattle.io/removed-node-name";
/// Nodes of servers that run an etcd member.
pub(crate) const ETCD_ROLE_LABEL: &str = "node-role.kubernetes.io/etcd";
/// Holds a deleted etcd Node until its member is removed. k3s's name (its controller
/// framework names finalizers after the controller, `managed-etcd-controller`), so a
/// cluster's Nodes read the same under either.
pub(crate) const FINALIZER: &str = "wrangler.cattle.io/managed-etcd-controller";
/// The Lease the removal controller runs under (k3s: `k3s-etcd`).
pub(crate) const LEASE: &str = "k1s-etcd";
/// How soon a failed step is tried again.
const RETRY: Duration = Duration::from_secs(5);

/// This server's etcd member, as its Node is marked with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalMember {
    /// The member's name (`<node>-<8 hex>`).
    pub name: String,
    /// The host of its peer URL (the node IP).
    pub address: String,
}

/// The merge patch that marks `node` as the Node of `member`, or `None` when it is already.
fn mark_patch(node: &Node, member: &LocalMember) -> Option<serde_json::Value> {
    let annotations = node.annotations();
    let labels = node.labels();
    let marked = annotations.get(NODE_NAME_ANNOTATION) == Some(&member.name)
        && annotations.get(NODE_ADDRESS_ANNOTATION) == Some(&member.address)
        && [
            ETCD_ROLE_LABEL,
            "node-role.kubernetes.io/control-plane",
            "node-role.kubernetes.io/master",
        ]
        .iter()
        .all(|l| labels.get(*l).map(String::as_str) == Some("true"));
    (!marked).then(|| {
        json!({"metadata": {
            "annotations": {
                NODE_NAME_ANNOTATION: member.name,
                NODE_ADDRESS_ANNOTATION: member.address,
            },
            "labels": {
                ETCD_ROLE_LABEL: "true",
                "node-role.kubernetes.io/control-plane": "true",
                "node-role.kubernetes.io/master": "true",
            },
        }})
    })
}

/// Keeps this server's Node (whenever it exists: the local kubelet registers it, and
/// registers it again after a deletion) marked with this server's member. Runs until
/// aborted.
pub(crate) async fn keep_node_marked(client: kube::Client, node_name: String, member: LocalMember) {
    let nodes: Api<Node> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("metadata.name={node_name}"));
    let stream = watcher(nodes.clone(), config)
        .default_backoff()
        .applied_objects();
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        let node = match event {
            Ok(node) => node,
            Err(e) => {
                tracing::debug!(error = %e, "watching this server's Node");
                continue;
            }
        };
        if node.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(patch) = mark_patch(&node, &member) else {
            continue;
        };
        match nodes
            .patch(&node_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(node = %node_name, member = %member.name, "marked this server's Node with its etcd member")
            }
            // The watch brings the Node again after any change; a failure is retried then,
            // or at the watch's next relist.
            Err(e) => {
                tracing::warn!(node = %node_name, error = %e, "cannot mark this server's Node with its etcd member")
            }
        }
    }
}

/// What the removal controller does next with a Node.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Nothing.
    Nothing,
    /// Add [`FINALIZER`] to an etcd Node.
    AddFinalizer,
    /// Remove the member, then release the deleted Node.
    RemoveThenRelease(LocalMember),
    /// Release the deleted Node: no member to remove.
    Release,
    /// Remove the member and record it on the Node ([`REMOVE_ANNOTATION`]).
    RemoveThenRecord(LocalMember),
    /// The Node's server joined again under a new member name: forget the removal.
    ResetRemoval,
}

/// The member the annotations of `node` name.
fn annotated_member(node: &Node) -> Option<LocalMember> {
    let a = node.annotations();
    Some(LocalMember {
        name: a.get(NODE_NAME_ANNOTATION)?.clone(),
        address: a.get(NODE_ADDRESS_ANNOTATION)?.clone(),
    })
}

/// k3s's rules, without side effects.
fn next_step(node: &Node) -> Step {
    let a = node.annotations();
    let removal_requested = a
        .get(REMOVE_ANNOTATION)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let removed = a.get(REMOVED_NODE_NAME_ANNOTATION);
    if node.metadata.deletion_timestamp.is_some() {
        if !node.finalizers().iter().any(|f| f == FINALIZER) {
            return Step::Nothing;
        }
        if removal_requested && removed.is_some_and(|r| !r.is_empty()) {
            return Step::Release;
        }
        return match annotated_member(node) {
            Some(member) => Step::RemoveThenRelease(member),
            None => Step::Release,
        };
    }
    if !node.labels().contains_key(ETCD_ROLE_LABEL) {
        return Step::Nothing;
    }
    if !node.finalizers().iter().any(|f| f == FINALIZER) {
        return Step::AddFinalizer;
    }
    if !a.contains_key(REMOVE_ANNOTATION) {
        return Step::Nothing;
    }
    if let Some(removed) = removed {
        // Marked again under another name: the server joined again with a new member.
        return match a.get(NODE_NAME_ANNOTATION) {
            Some(current) if current != removed => Step::ResetRemoval,
            _ => Step::Nothing,
        };
    }
    match (removal_requested, annotated_member(node)) {
        (true, Some(member)) => Step::RemoveThenRecord(member),
        _ => Step::Nothing,
    }
}

/// The host of a peer URL (`https://10.0.0.1:2380`, `https://[fd00::1]:2380`), without
/// IPv6 brackets.
fn peer_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split_once(']').map(|(host, _)| host);
    }
    Some(
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    )
}

/// What removing a member came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Removal {
    /// Removed: its ID.
    Removed(u64),
    /// No member has that name and address (already removed).
    NotFound,
    /// It is the cluster's only member: kept.
    LastMember,
}

/// Which member `(id, name, peer URLs)` of `members` is `target`, and whether it may go.
fn choose<'a>(
    members: impl IntoIterator<Item = (u64, &'a str, &'a [String])>,
    target: &LocalMember,
) -> Removal {
    let mut count = 0;
    let mut found = None;
    for (id, name, peers) in members {
        count += 1;
        if name == target.name
            && peers
                .iter()
                .any(|u| peer_host(u) == Some(target.address.as_str()))
        {
            found = Some(id);
        }
    }
    match found {
        None => Removal::NotFound,
        Some(_) if count <= 1 => Removal::LastMember,
        Some(id) => Removal::Removed(id),
    }
}

/// Why a step failed; it is tried again.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error("etcd: {0}")]
    Etcd(String),
    #[error(transparent)]
    Api(#[from] kube::Error),
}

/// What the removal controller reaches etcd and the API with.
struct RemovalContext {
    nodes: Api<Node>,
    etcd_url: String,
    tls: EtcdTlsFiles,
}

impl RemovalContext {
    async fn remove(&self, member: &LocalMember) -> Result<Removal, StepError> {
        let etcd = |e: anyhow::Error| StepError::Etcd(format!("{e:#}"));
        let mut client = super::etcd::client(std::slice::from_ref(&self.etcd_url), &self.tls)
            .await
            .map_err(etcd)?;
        let list = client
            .member_list()
            .await
            .map_err(|e| StepError::Etcd(format!("cannot list the members: {e}")))?;
        let outcome = choose(
            list.members()
                .iter()
                .map(|m| (m.id(), m.name(), m.peer_urls())),
            member,
        );
        if let Removal::Removed(id) = outcome {
            match client.member_remove(id).await {
                Ok(_) => {}
                Err(e) if e.to_string().contains("member not found") => {
                    return Ok(Removal::NotFound);
                }
                Err(e) => {
                    return Err(StepError::Etcd(format!(
                        "cannot remove the member {}: {e}",
                        member.name
                    )));
                }
            }
        }
        Ok(outcome)
    }
}

fn log_removal(node: &str, member: &LocalMember, outcome: &Removal) {
    match outcome {
        Removal::Removed(id) => tracing::info!(
            node,
            member = %member.name,
            address = %member.address,
            id = format!("{id:x}"),
            "removed the etcd member of the node"
        ),
        Removal::NotFound => tracing::info!(
            node,
            member = %member.name,
            "the node's etcd member is no longer in the cluster"
        ),
        Removal::LastMember => tracing::warn!(
            node,
            member = %member.name,
            "not removing the etcd cluster's only member"
        ),
    }
}

async fn reconcile(node: Arc<Node>, ctx: Arc<RemovalContext>) -> Result<Action, StepError> {
    let name = node.name_any();
    let mut updated = (*node).clone();
    match next_step(&node) {
        Step::Nothing => return Ok(Action::await_change()),
        Step::AddFinalizer => updated.finalizers_mut().push(FINALIZER.to_string()),
        Step::Release => {
            tracing::info!(node = %name, "deleted etcd node names no member to remove");
            updated.finalizers_mut().retain(|f| f != FINALIZER);
        }
        Step::RemoveThenRelease(member) => {
            let outcome = ctx.remove(&member).await?;
            log_removal(&name, &member, &outcome);
            updated.finalizers_mut().retain(|f| f != FINALIZER);
        }
        Step::RemoveThenRecord(member) => {
            let outcome = ctx.remove(&member).await?;
            log_removal(&name, &member, &outcome);
            if outcome == Removal::LastMember {
                return Ok(Action::await_change());
            }
            let a = updated.annotations_mut();
            a.insert(REMOVED_NODE_NAME_ANNOTATION.into(), member.name);
            a.remove(NODE_NAME_ANNOTATION);
            a.remove(NODE_ADDRESS_ANNOTATION);
        }
        Step::ResetRemoval => {
            let a = updated.annotations_mut();
            a.remove(REMOVED_NODE_NAME_ANNOTATION);
            a.insert(REMOVE_ANNOTATION.into(), "false".into());
        }
    }
    // A replace, not a patch: it fails on a Node changed since it was read, and the step
    // is then decided again on the newer one.
    ctx.nodes
        .replace(&name, &PostParams::default(), &updated)
        .await?;
    Ok(Action::await_change())
}

fn retry(node: Arc<Node>, error: &StepError, _: Arc<RemovalContext>) -> Action {
    tracing::warn!(node = %node.name_any(), %error, "etcd member removal step failed; retrying");
    Action::requeue(RETRY)
}

/// The member removal controller, until `stop` fires: reaches etcd at `etcd_url` (this
/// server's member, which forwards to the etcd leader).
pub(crate) async fn run_member_removal(
    client: kube::Client,
    etcd_url: String,
    tls: EtcdTlsFiles,
    stop: oneshot::Receiver<()>,
) {
    let nodes: Api<Node> = Api::all(client);
    let ctx = Arc::new(RemovalContext {
        nodes: nodes.clone(),
        etcd_url,
        tls,
    });
    tracing::info!("starting the etcd member removal controller");
    Controller::new(nodes, watcher::Config::default())
        .graceful_shutdown_on(async move {
            let _ = stop.await;
        })
        .run(reconcile, retry, ctx)
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn node(labels: &[(&str, &str)], annotations: &[(&str, &str)], finalizer: bool) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some("server2".into());
        let map = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        n.metadata.labels = Some(map(labels));
        n.metadata.annotations = Some(map(annotations));
        if finalizer {
            n.metadata.finalizers = Some(vec![FINALIZER.into()]);
        }
        n
    }

    fn deleted(mut n: Node) -> Node {
        n.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        n
    }

    fn member() -> LocalMember {
        LocalMember {
            name: "server2-0a1b2c3d".into(),
            address: "10.0.0.2".into(),
        }
    }

    const ETCD: (&str, &str) = (ETCD_ROLE_LABEL, "true");
    const NAME: (&str, &str) = (NODE_NAME_ANNOTATION, "server2-0a1b2c3d");
    const ADDRESS: (&str, &str) = (NODE_ADDRESS_ANNOTATION, "10.0.0.2");

    #[test]
    fn a_server_marks_its_node_once() {
        let bare = node(&[], &[], false);
        let patch = mark_patch(&bare, &member()).expect("an unmarked node is patched");
        assert_eq!(
            patch["metadata"]["annotations"][NODE_NAME_ANNOTATION],
            "server2-0a1b2c3d"
        );
        assert_eq!(patch["metadata"]["labels"][ETCD_ROLE_LABEL], "true");
        let marked = node(
            &[
                ETCD,
                ("node-role.kubernetes.io/control-plane", "true"),
                ("node-role.kubernetes.io/master", "true"),
            ],
            &[NAME, ADDRESS],
            false,
        );
        assert_eq!(mark_patch(&marked, &member()), None);
        // A new member name (the server joined again) is written over the old one.
        let renamed = LocalMember {
            name: "server2-ffffffff".into(),
            ..member()
        };
        assert!(mark_patch(&marked, &renamed).is_some());
    }

    #[test]
    fn etcd_nodes_get_the_finalizer_and_others_are_left_alone() {
        assert_eq!(
            next_step(&node(&[ETCD], &[NAME, ADDRESS], false)),
            Step::AddFinalizer
        );
        assert_eq!(
            next_step(&node(&[ETCD], &[NAME, ADDRESS], true)),
            Step::Nothing
        );
        assert_eq!(next_step(&node(&[], &[], false)), Step::Nothing);
        // An agent's node, deleted: not ours to hold.
        assert_eq!(next_step(&deleted(node(&[], &[], false))), Step::Nothing);
    }

    #[test]
    fn a_deleted_etcd_node_loses_its_member_then_its_finalizer() {
        assert_eq!(
            next_step(&deleted(node(&[ETCD], &[NAME, ADDRESS], true))),
            Step::RemoveThenRelease(member())
        );
        // Without annotations there is nothing to remove: the node is not held.
        assert_eq!(
            next_step(&deleted(node(&[ETCD], &[NAME], true))),
            Step::Release
        );
        // Already removed through the annotation.
        let removed = [
            (REMOVE_ANNOTATION, "true"),
            (REMOVED_NODE_NAME_ANNOTATION, "server2-0a1b2c3d"),
        ];
        assert_eq!(
            next_step(&deleted(node(&[ETCD], &removed, true))),
            Step::Release
        );
        // The finalizer is released even if the label went meanwhile.
        assert_eq!(
            next_step(&deleted(node(&[], &[NAME, ADDRESS], true))),
            Step::RemoveThenRelease(member())
        );
    }

    #[test]
    fn the_remove_annotation_removes_the_member_once() {
        let requested = [NAME, ADDRESS, (REMOVE_ANNOTATION, "True")];
        assert_eq!(
            next_step(&node(&[ETCD], &requested, true)),
            Step::RemoveThenRecord(member())
        );
        // Done: the server marks its node again with the same member name.
        let done = [
            NAME,
            ADDRESS,
            (REMOVE_ANNOTATION, "true"),
            (REMOVED_NODE_NAME_ANNOTATION, "server2-0a1b2c3d"),
        ];
        assert_eq!(next_step(&node(&[ETCD], &done, true)), Step::Nothing);
        // It joined again with a new member: the removal is forgotten.
        let rejoined = [
            (NODE_NAME_ANNOTATION, "server2-ffffffff"),
            ADDRESS,
            (REMOVE_ANNOTATION, "true"),
            (REMOVED_NODE_NAME_ANNOTATION, "server2-0a1b2c3d"),
        ];
        assert_eq!(
            next_step(&node(&[ETCD], &rejoined, true)),
            Step::ResetRemoval
        );
        let not_requested = [NAME, ADDRESS, (REMOVE_ANNOTATION, "false")];
        assert_eq!(
            next_step(&node(&[ETCD], &not_requested, true)),
            Step::Nothing
        );
    }

    #[test]
    fn peer_hosts_are_read_from_urls() {
        assert_eq!(peer_host("https://10.0.0.2:2380"), Some("10.0.0.2"));
        assert_eq!(peer_host("https://[fd00::2]:2380"), Some("fd00::2"));
        assert_eq!(peer_host("https://host.example"), Some("host.example"));
        assert_eq!(peer_host("https://[fd00::2"), None);
    }

    #[test]
    fn only_the_named_member_at_its_address_is_removed_and_never_the_last() {
        let peers = |u: &str| vec![u.to_string()];
        let (a, b, c) = (
            peers("https://10.0.0.1:2380"),
            peers("https://10.0.0.2:2380"),
            peers("https://10.0.0.3:2380"),
        );
        let members = [
            (1, "server1-11111111", a.as_slice()),
            (2, "server2-0a1b2c3d", b.as_slice()),
            (3, "server2-0a1b2c3d", c.as_slice()),
        ];
        assert_eq!(choose(members, &member()), Removal::Removed(2));
        // The name must match, and so must the address.
        let other = LocalMember {
            name: "server2-99999999".into(),
            ..member()
        };
        assert_eq!(choose(members, &other), Removal::NotFound);
        let moved = LocalMember {
            address: "10.0.0.9".into(),
            ..member()
        };
        assert_eq!(choose(members, &moved), Removal::NotFound);
        assert_eq!(
            choose([(2, "server2-0a1b2c3d", b.as_slice())], &member()),
            Removal::LastMember
        );
    }
}
