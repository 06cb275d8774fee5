//! One pass over one Deployment (upstream's `syncDeployment` with `sync.go`,
//! `rolling.go`, `recreate.go` and `progress.go`): claim its ReplicaSets, find or create
//! the new one, scale, clean up history, and write status and conditions.

use std::collections::HashSet;
use std::time::Duration;

use k1s_apimachinery::labels::Selector;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::util::{self, PROGRESSING};
use super::{Ctx, DeploymentError};
use crate::workload::{claim, controller_of, controller_ref, is_controlled_by};

/// How often a Recreate rollout looks again for old pods that are still going away.
const RECREATE_POLL: Duration = Duration::from_secs(1);

/// Syncs the Deployment `namespace/name`; returns when to look again, if a deadline or a
/// wait calls for it.
pub(super) async fn sync_deployment(
    ctx: &Ctx,
    namespace: &str,
    name: &str,
) -> Result<Option<Duration>, DeploymentError> {
    let Some(cached) = ctx.deployments.get(namespace, name) else {
        return Ok(None);
    };
    let mut s = Sync {
        ctx,
        d: (*cached).clone(),
        d_api: Api::namespaced(ctx.client.clone(), namespace),
        rs_api: Api::namespaced(ctx.client.clone(), namespace),
        now: Timestamp::now(),
    };
    s.run().await
}

struct Sync<'a> {
    ctx: &'a Ctx,
    d: Deployment,
    d_api: Api<Deployment>,
    rs_api: Api<ReplicaSet>,
    now: Timestamp,
}

fn spec_mut(rs: &mut ReplicaSet) -> &mut ReplicaSetSpec {
    rs.spec.get_or_insert_with(ReplicaSetSpec::default)
}

fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

impl Sync<'_> {
    fn name(&self) -> String {
        self.d.name_any()
    }

    fn uid(&self) -> String {
        self.d.metadata.uid.clone().unwrap_or_default()
    }

    fn event(&self, warning: bool, reason: &str, note: String) {
        let events = self.ctx.events.clone();
        let reference = self.d.object_ref(&());
        let reason = reason.to_string();
        // Events are best effort and must not hold up the rollout.
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            action: reason.clone(),
            reason,
            note: Some(note),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(e) = events.publish(&event, &reference).await {
                tracing::debug!(error = %e, "recording an event failed");
            }
        });
    }

    async fn run(&mut self) -> Result<Option<Duration>, DeploymentError> {
        let label_selector = util::selector(&self.d);
        let selects_all = label_selector
            .match_labels
            .as_ref()
            .is_none_or(|m| m.is_empty())
            && label_selector
                .match_expressions
                .as_ref()
                .is_none_or(|m| m.is_empty());
        if selects_all {
            self.event(
                true,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.".into(),
            );
            let status = self.d.status.get_or_insert_with(Default::default);
            if status.observed_generation.unwrap_or(0) < self.d.metadata.generation.unwrap_or(0) {
                status.observed_generation = self.d.metadata.generation;
                self.update_status().await?;
            }
            return Ok(None);
        }
        let selector = Selector::from_label_selector(&serde_json::to_value(&label_selector)?)
            .map_err(|e| DeploymentError::Selector(e.to_string()))?;
        let rs_list = self.claim_replica_sets(&selector).await?;

        if self.d.metadata.deletion_timestamp.is_some() {
            let (new_rs, old_rss) = self.get_all_rss_and_sync_revision(&rs_list, false).await?;
            let all = with_new(&old_rss, new_rs.as_ref());
            self.sync_deployment_status(&all, new_rs.as_ref()).await?;
            return Ok(None);
        }
        self.check_paused_conditions().await?;
        if util::paused(&self.d) {
            self.sync(&rs_list).await?;
            return Ok(None);
        }
        if self.is_scaling_event(&rs_list).await? {
            self.sync(&rs_list).await?;
            return Ok(None);
        }
        if util::is_rolling_update(&self.d) {
            self.rollout_rolling(&rs_list).await
        } else {
            self.rollout_recreate(&rs_list, &selector).await
        }
    }

    /// The ReplicaSets this Deployment controls after adopting matching orphans and
    /// releasing owned ones its selector no longer matches.
    async fn claim_replica_sets(
        &self,
        selector: &Selector,
    ) -> Result<Vec<ReplicaSet>, DeploymentError> {
        let uid = self.uid();
        let candidates: Vec<ReplicaSet> = self
            .ctx
            .replicasets
            .list(&self.d.namespace().unwrap_or_default())
            .into_iter()
            .filter(|rs| controller_of(&rs.metadata).is_none_or(|r| r.uid == uid))
            .map(|rs| (*rs).clone())
            .collect();
        // Before adopting, read the Deployment itself again (upstream's
        // RecheckDeletionTimestamp): the cached copy may not show yet that it is being
        // deleted, and adopting what the garbage collector just orphaned would have the
        // orphan collected with its former owner.
        let adopts = self.d.metadata.deletion_timestamp.is_none()
            && candidates.iter().any(|rs| {
                controller_of(&rs.metadata).is_none()
                    && rs.metadata.deletion_timestamp.is_none()
                    && selector.matches(rs.labels())
            });
        let mut owner = self.d.clone();
        if adopts {
            match self.d_api.get_opt(&self.name()).await? {
                Some(fresh) if fresh.metadata.uid.as_deref() == Some(uid.as_str()) => {
                    owner.metadata.deletion_timestamp = fresh.metadata.deletion_timestamp;
                }
                // Gone or replaced: this one adopts nothing.
                _ => {
                    owner.metadata.deletion_timestamp =
                        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                            k8s_openapi::jiff::Timestamp::now(),
                        ));
                }
            }
        }
        Ok(claim(&self.rs_api, &owner, selector, candidates)
            .await?
            .owned)
    }

    // -----------------------------------------------------------------------------------
    // Writes.

    async fn update_status(&mut self) -> Result<(), DeploymentError> {
        let updated = self
            .d_api
            .replace_status(&self.name(), &PostParams::default(), &self.d)
            .await?;
        self.d.metadata = updated.metadata;
        self.d.status = updated.status;
        Ok(())
    }

    /// Writes the revision annotation (a metadata change, which a status update would
    /// drop).
    async fn persist_revision(&mut self) -> Result<(), DeploymentError> {
        let revision = self
            .d
            .annotations()
            .get(util::REVISION_ANNOTATION)
            .cloned()
            .unwrap_or_default();
        let patch = json!({"metadata": {"annotations": {util::REVISION_ANNOTATION: revision}}});
        let updated = self
            .d_api
            .patch(&self.name(), &PatchParams::default(), &Patch::Merge(patch))
            .await?;
        // Keep the status computed so far; take the new metadata (resourceVersion).
        self.d.metadata = updated.metadata;
        Ok(())
    }

    async fn scale_rs_and_record(
        &self,
        rs: &ReplicaSet,
        new_scale: i32,
    ) -> Result<(bool, ReplicaSet), DeploymentError> {
        let current = util::rs_replicas(rs);
        if current == new_scale {
            return Ok((false, rs.clone()));
        }
        let op = if current < new_scale { "up" } else { "down" };
        self.scale_rs(rs, new_scale, op).await
    }

    async fn scale_rs(
        &self,
        rs: &ReplicaSet,
        new_scale: i32,
        op: &str,
    ) -> Result<(bool, ReplicaSet), DeploymentError> {
        let old_scale = util::rs_replicas(rs);
        let desired = util::replicas(&self.d);
        let max = desired + util::max_surge(&self.d);
        let size_needs_update = old_scale != new_scale;
        if !size_needs_update && !util::replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, rs.clone()));
        }
        let mut copy = rs.clone();
        spec_mut(&mut copy).replicas = Some(new_scale);
        util::set_replicas_annotations(&mut copy, desired, max);
        let updated = self
            .rs_api
            .replace(&rs.name_any(), &PostParams::default(), &copy)
            .await?;
        if size_needs_update {
            self.event(
                false,
                "ScalingReplicaSet",
                format!(
                    "Scaled {op} replica set {} from {old_scale} to {new_scale}",
                    rs.name_any()
                ),
            );
        }
        Ok((size_needs_update, updated))
    }

    // -----------------------------------------------------------------------------------
    // The new ReplicaSet and revisions.

    async fn get_all_rss_and_sync_revision(
        &mut self,
        rs_list: &[ReplicaSet],
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>), DeploymentError> {
        let old_rss = util::find_old_rss(&self.d, rs_list);
        let new_rs = self.get_new_rs(rs_list, &old_rss, create).await?;
        Ok((new_rs, old_rss))
    }

    async fn get_new_rs(
        &mut self,
        rs_list: &[ReplicaSet],
        old_rss: &[ReplicaSet],
        create: bool,
    ) -> Result<Option<ReplicaSet>, DeploymentError> {
        let existing = util::find_new_rs(&self.d, rs_list).cloned();
        let new_revision = (util::max_revision(old_rss) + 1).to_string();
        let min_ready = util::min_ready_seconds(&self.d);

        if let Some(rs) = existing {
            let mut copy = rs.clone();
            let annotations_updated = util::set_new_rs_annotations(
                &self.d,
                &mut copy,
                &new_revision,
                true,
                util::MAX_REV_HISTORY_LENGTH_IN_CHARS,
            );
            let rs_min_ready = copy
                .spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0);
            if annotations_updated || rs_min_ready != min_ready {
                spec_mut(&mut copy).min_ready_seconds = Some(min_ready);
                let updated = self
                    .rs_api
                    .replace(&copy.name_any(), &PostParams::default(), &copy)
                    .await?;
                return Ok(Some(updated));
            }
            let revision = copy
                .annotations()
                .get(util::REVISION_ANNOTATION)
                .cloned()
                .unwrap_or_default();
            if util::set_deployment_revision(&mut self.d, &revision) {
                self.persist_revision().await?;
            }
            let has_deadline = util::has_progress_deadline(&self.d);
            let status = self.d.status.get_or_insert_with(Default::default);
            if has_deadline && util::get_condition(status, PROGRESSING).is_none() {
                let msg = format!("Found new replica set {}", quoted(&copy.name_any()));
                let cond = util::new_condition(
                    PROGRESSING,
                    "True",
                    util::FOUND_NEW_RS_REASON,
                    msg,
                    self.now,
                );
                util::set_condition(status, cond);
                self.update_status().await?;
            }
            return Ok(Some(copy));
        }
        if !create {
            return Ok(None);
        }

        let namespace = self.d.namespace().unwrap_or_default();
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let template = util::template(&self.d);
        let hash = util::compute_hash(&template, collision_count);
        let new_template = util::template_with_hash(&template, &hash);
        let rs_name = format!("{}-{hash}", self.name());
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(rs_name.clone()),
                namespace: Some(namespace),
                owner_references: Some(vec![controller_ref(&self.d)]),
                labels: new_template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(min_ready),
                selector: util::selector_with_label(
                    &util::selector(&self.d),
                    util::POD_TEMPLATE_HASH_LABEL,
                    &hash,
                ),
                template: Some(new_template),
            }),
            status: None,
        };
        let all = with_new(old_rss, Some(&new_rs));
        let new_replicas = util::new_rs_new_replicas(&self.d, &all, &new_rs);
        spec_mut(&mut new_rs).replicas = Some(new_replicas);
        util::set_new_rs_annotations(
            &self.d,
            &mut new_rs,
            &new_revision,
            false,
            util::MAX_REV_HISTORY_LENGTH_IN_CHARS,
        );

        let mut already_exists = false;
        let created = match self.rs_api.create(&PostParams::default(), &new_rs).await {
            Ok(rs) => rs,
            Err(kube::Error::Api(s)) if s.code == 409 => {
                already_exists = true;
                let rs = self.rs_api.get(&rs_name).await?;
                let same_template = rs
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| util::equal_ignore_hash(t, &template));
                if is_controlled_by(&rs.metadata, &self.uid()) && same_template {
                    rs
                } else {
                    // A different template hashed to an existing name: bump the collision
                    // count so the next pass hashes differently.
                    let status = self.d.status.get_or_insert_with(Default::default);
                    status.collision_count = Some(collision_count.unwrap_or(0) + 1);
                    if let Err(e) = self.update_status().await {
                        tracing::debug!(error = %e, "bumping collisionCount failed");
                    }
                    return Err(DeploymentError::HashCollision(rs_name));
                }
            }
            Err(e) => {
                let detail = match &e {
                    kube::Error::Api(s) => s.message.clone(),
                    other => other.to_string(),
                };
                let msg = format!(
                    "Failed to create new replica set {}: {detail}",
                    quoted(&rs_name)
                );
                if util::has_progress_deadline(&self.d) {
                    let status = self.d.status.get_or_insert_with(Default::default);
                    let cond = util::new_condition(
                        PROGRESSING,
                        "False",
                        util::FAILED_RS_CREATE_REASON,
                        msg.clone(),
                        self.now,
                    );
                    util::set_condition(status, cond);
                    let _ = self.update_status().await;
                }
                self.event(true, util::FAILED_RS_CREATE_REASON, msg);
                return Err(e.into());
            }
        };
        if !already_exists && new_replicas > 0 {
            self.event(
                false,
                "ScalingReplicaSet",
                format!("Scaled up replica set {rs_name} from 0 to {new_replicas}"),
            );
        }
        if util::set_deployment_revision(&mut self.d, &new_revision) {
            self.persist_revision().await?;
        }
        if !already_exists && util::has_progress_deadline(&self.d) {
            let status = self.d.status.get_or_insert_with(Default::default);
            let msg = format!("Created new replica set {}", quoted(&rs_name));
            let cond = util::new_condition(
                PROGRESSING,
                "True",
                util::NEW_REPLICA_SET_REASON,
                msg,
                self.now,
            );
            util::set_condition(status, cond);
            self.update_status().await?;
        }
        Ok(Some(created))
    }

    // -----------------------------------------------------------------------------------
    // Scaling (replicas changed, or paused).

    async fn is_scaling_event(&mut self, rs_list: &[ReplicaSet]) -> Result<bool, DeploymentError> {
        let (new_rs, old_rss) = self.get_all_rss_and_sync_revision(rs_list, false).await?;
        let desired = util::replicas(&self.d);
        Ok(util::filter_active(&with_new(&old_rss, new_rs.as_ref()))
            .iter()
            .filter_map(util::desired_replicas_annotation)
            .any(|annotated| annotated != desired))
    }

    async fn sync(&mut self, rs_list: &[ReplicaSet]) -> Result<(), DeploymentError> {
        let (new_rs, old_rss) = self.get_all_rss_and_sync_revision(rs_list, false).await?;
        self.scale(new_rs.as_ref(), &old_rss).await?;
        if util::paused(&self.d) {
            self.cleanup_deployment(&old_rss).await?;
        }
        let all = with_new(&old_rss, new_rs.as_ref());
        self.sync_deployment_status(&all, new_rs.as_ref()).await
    }

    async fn scale(
        &mut self,
        new_rs: Option<&ReplicaSet>,
        old_rss: &[ReplicaSet],
    ) -> Result<(), DeploymentError> {
        let desired = util::replicas(&self.d);
        if let Some(active) = util::find_active_or_latest(new_rs, old_rss) {
            if util::rs_replicas(&active) != desired {
                self.scale_rs_and_record(&active, desired).await?;
            }
            return Ok(());
        }
        if util::is_saturated(&self.d, new_rs) {
            for old in util::filter_active(old_rss) {
                self.scale_rs_and_record(&old, 0).await?;
            }
            return Ok(());
        }
        if !util::is_rolling_update(&self.d) {
            return Ok(());
        }
        let mut all = util::filter_active(&with_new(old_rss, new_rs));
        let allowed = if desired > 0 {
            desired + util::max_surge(&self.d)
        } else {
            0
        };
        let sizes = proportional_sizes(&self.d, &mut all, allowed);
        let op = match allowed - util::replica_count(&all) {
            n if n > 0 => "up",
            n if n < 0 => "down",
            _ => "",
        };
        for (rs, size) in all.iter().zip(sizes) {
            self.scale_rs(rs, size, op).await?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Rolling update.

    async fn rollout_rolling(
        &mut self,
        rs_list: &[ReplicaSet],
    ) -> Result<Option<Duration>, DeploymentError> {
        let (new_rs, old_rss) = self.get_all_rss_and_sync_revision(rs_list, true).await?;
        let Some(new_rs) = new_rs else {
            return Ok(None);
        };
        let all = with_new(&old_rss, Some(&new_rs));

        let (scaled_up, new_rs) = self.reconcile_new_rs(&all, &new_rs).await?;
        if scaled_up {
            let all = with_new(&old_rss, Some(&new_rs));
            return self.sync_rollout_status(&all, Some(&new_rs)).await;
        }
        let active_old = util::filter_active(&old_rss);
        if self.reconcile_old_rss(&all, active_old, &new_rs).await? {
            return self.sync_rollout_status(&all, Some(&new_rs)).await;
        }
        let current = self.d.status.clone().unwrap_or_default();
        if util::deployment_complete(&self.d, &current) {
            self.cleanup_deployment(&old_rss).await?;
        }
        self.sync_rollout_status(&all, Some(&new_rs)).await
    }

    async fn reconcile_new_rs(
        &self,
        all: &[ReplicaSet],
        new_rs: &ReplicaSet,
    ) -> Result<(bool, ReplicaSet), DeploymentError> {
        let desired = util::replicas(&self.d);
        let current = util::rs_replicas(new_rs);
        if current == desired {
            return Ok((false, new_rs.clone()));
        }
        if current > desired {
            return self.scale_rs_and_record(new_rs, desired).await;
        }
        let count = util::new_rs_new_replicas(&self.d, all, new_rs);
        self.scale_rs_and_record(new_rs, count).await
    }

    async fn reconcile_old_rss(
        &self,
        all: &[ReplicaSet],
        old_rss: Vec<ReplicaSet>,
        new_rs: &ReplicaSet,
    ) -> Result<bool, DeploymentError> {
        let Some(max_scaled_down) = max_scaled_down(&self.d, all, &old_rss, new_rs) else {
            return Ok(false);
        };
        let (old_rss, cleaned) = self.cleanup_unhealthy(old_rss, max_scaled_down).await?;
        let all = with_new(&old_rss, Some(new_rs));
        let scaled = self.scale_down_old_for_rolling(&all, old_rss).await?;
        Ok(cleaned + scaled > 0)
    }

    /// Scales down old ReplicaSets' unavailable replicas first, oldest first, at most
    /// `max_cleanup` in all.
    async fn cleanup_unhealthy(
        &self,
        mut old_rss: Vec<ReplicaSet>,
        max_cleanup: i32,
    ) -> Result<(Vec<ReplicaSet>, i32), DeploymentError> {
        old_rss.sort_by(util::by_creation);
        let mut total = 0;
        for rs in &mut old_rss {
            if total >= max_cleanup {
                break;
            }
            let (spec, available) = (util::rs_replicas(rs), util::rs_available(rs));
            if spec == 0 || spec == available {
                continue;
            }
            let count = (max_cleanup - total).min(spec - available);
            let (_, updated) = self.scale_rs_and_record(rs, spec - count).await?;
            total += count;
            *rs = updated;
        }
        Ok((old_rss, total))
    }

    /// Scales down old ReplicaSets, oldest first, as far as availability allows.
    async fn scale_down_old_for_rolling(
        &self,
        all: &[ReplicaSet],
        mut old_rss: Vec<ReplicaSet>,
    ) -> Result<i32, DeploymentError> {
        let min_available = util::replicas(&self.d) - util::max_unavailable(&self.d);
        let available = util::available_replica_count(all);
        if available <= min_available {
            return Ok(0);
        }
        old_rss.sort_by(util::by_creation);
        let to_scale = available - min_available;
        let mut total = 0;
        for rs in &old_rss {
            if total >= to_scale {
                break;
            }
            let spec = util::rs_replicas(rs);
            if spec == 0 {
                continue;
            }
            let count = spec.min(to_scale - total);
            self.scale_rs_and_record(rs, spec - count).await?;
            total += count;
        }
        Ok(total)
    }

    // -----------------------------------------------------------------------------------
    // Recreate.

    async fn rollout_recreate(
        &mut self,
        rs_list: &[ReplicaSet],
        selector: &Selector,
    ) -> Result<Option<Duration>, DeploymentError> {
        let (new_rs, old_rss) = self.get_all_rss_and_sync_revision(rs_list, false).await?;
        let all = with_new(&old_rss, new_rs.as_ref());
        let mut scaled_down = false;
        for rs in util::filter_active(&old_rss) {
            let (scaled, _) = self.scale_rs_and_record(&rs, 0).await?;
            scaled_down |= scaled;
        }
        if scaled_down {
            return self.sync_rollout_status(&all, new_rs.as_ref()).await;
        }
        if self
            .old_pods_running(new_rs.as_ref(), &old_rss, rs_list, selector)
            .await?
        {
            let requeue = self.sync_rollout_status(&all, new_rs.as_ref()).await?;
            return Ok(Some(
                requeue.map_or(RECREATE_POLL, |r| r.min(RECREATE_POLL)),
            ));
        }
        let (new_rs, old_rss) = match new_rs {
            Some(rs) => (rs, old_rss),
            None => match self.get_all_rss_and_sync_revision(rs_list, true).await? {
                (Some(rs), old) => (rs, old),
                (None, _) => return Ok(None),
            },
        };
        let (_, new_rs) = self
            .scale_rs_and_record(&new_rs, util::replicas(&self.d))
            .await?;
        let current = self.d.status.clone().unwrap_or_default();
        if util::deployment_complete(&self.d, &current) {
            self.cleanup_deployment(&old_rss).await?;
        }
        let all = with_new(&old_rss, Some(&new_rs));
        self.sync_rollout_status(&all, Some(&new_rs)).await
    }

    /// Whether pods of old ReplicaSets still exist (other than finished ones): Recreate
    /// starts the new pods only once the old ones are gone. Read with a LIST: only a
    /// Recreate rollout in this state asks.
    async fn old_pods_running(
        &self,
        new_rs: Option<&ReplicaSet>,
        old_rss: &[ReplicaSet],
        rs_list: &[ReplicaSet],
        selector: &Selector,
    ) -> Result<bool, DeploymentError> {
        if util::actual_replica_count(old_rss) > 0 {
            return Ok(true);
        }
        let new_uid = new_rs.and_then(|rs| rs.metadata.uid.clone());
        let owners: HashSet<String> = rs_list
            .iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .filter(|uid| Some(uid) != new_uid.as_ref())
            .collect();
        let pods: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            &self.d.namespace().unwrap_or_default(),
        );
        let list = pods
            .list(&ListParams::default().labels(&selector.to_string()))
            .await?;
        Ok(list.items.iter().any(|p| {
            let owned = controller_of(&p.metadata).is_some_and(|r| owners.contains(&r.uid));
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            owned && !matches!(phase, Some("Failed" | "Succeeded"))
        }))
    }

    // -----------------------------------------------------------------------------------
    // History, status, conditions.

    /// Deletes the oldest old ReplicaSets beyond revisionHistoryLimit that have no
    /// replicas left.
    async fn cleanup_deployment(&self, old_rss: &[ReplicaSet]) -> Result<(), DeploymentError> {
        let Some(limit) = util::revision_history_limit(&self.d) else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = old_rss
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let diff = cleanable.len() as i64 - i64::from(limit);
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| util::by_revision(a, b));
        for rs in cleanable.into_iter().take(diff as usize) {
            let status = rs.status.clone().unwrap_or_default();
            let observed = status.observed_generation.unwrap_or(0);
            if status.replicas != 0
                || util::rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            match self
                .rs_api
                .delete(&rs.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn sync_deployment_status(
        &mut self,
        all: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> Result<(), DeploymentError> {
        let status = util::calculate_status(all, new_rs, &self.d, self.now);
        if util::status_equal(self.d.status.as_ref(), Some(&status)) {
            return Ok(());
        }
        self.d.status = Some(status);
        self.update_status().await
    }

    async fn check_paused_conditions(&mut self) -> Result<(), DeploymentError> {
        if !util::has_progress_deadline(&self.d) {
            return Ok(());
        }
        let paused = util::paused(&self.d);
        let now = self.now;
        let status = self.d.status.get_or_insert_with(Default::default);
        let reason = util::get_condition(status, PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(util::TIMED_OUT_REASON) {
            return Ok(());
        }
        let paused_cond = reason.as_deref() == Some(util::PAUSED_DEPLOY_REASON);
        let cond = if paused && !paused_cond {
            util::new_condition(
                PROGRESSING,
                "Unknown",
                util::PAUSED_DEPLOY_REASON,
                "Deployment is paused".into(),
                now,
            )
        } else if !paused && paused_cond {
            util::new_condition(
                PROGRESSING,
                "Unknown",
                util::RESUMED_DEPLOY_REASON,
                "Deployment is resumed".into(),
                now,
            )
        } else {
            return Ok(());
        };
        util::set_condition(status, cond);
        self.update_status().await
    }

    /// Writes status with the Progressing condition brought up to date; returns when to
    /// look again for the progress deadline.
    async fn sync_rollout_status(
        &mut self,
        all: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> Result<Option<Duration>, DeploymentError> {
        let mut status = util::calculate_status(all, new_rs, &self.d, self.now);
        if !util::has_progress_deadline(&self.d) {
            util::remove_condition(&mut status, PROGRESSING);
        }
        let current = util::get_condition(&status, PROGRESSING).cloned();
        let complete = status.replicas == status.updated_replicas
            && current.as_ref().and_then(|c| c.reason.as_deref())
                == Some(util::NEW_RS_AVAILABLE_REASON);
        if util::has_progress_deadline(&self.d) && !complete {
            let subject = match new_rs {
                Some(rs) => format!("ReplicaSet {}", quoted(&rs.name_any())),
                None => format!("Deployment {}", quoted(&self.name())),
            };
            if util::deployment_complete(&self.d, &status) {
                let cond = util::new_condition(
                    PROGRESSING,
                    "True",
                    util::NEW_RS_AVAILABLE_REASON,
                    format!("{subject} has successfully progressed."),
                    self.now,
                );
                util::set_condition(&mut status, cond);
            } else if util::deployment_progressing(&self.d, &status) {
                let mut cond = util::new_condition(
                    PROGRESSING,
                    "True",
                    util::REPLICA_SET_UPDATED_REASON,
                    format!("{subject} is progressing."),
                    self.now,
                );
                // Progress refreshes the update time (the deadline counts from it) but
                // is no transition.
                if let Some(cur) = current.as_ref().filter(|c| c.status == "True") {
                    cond.last_transition_time
                        .clone_from(&cur.last_transition_time);
                }
                util::remove_condition(&mut status, PROGRESSING);
                util::set_condition(&mut status, cond);
            } else if util::deployment_timed_out(&self.d, &status, self.now) {
                let cond = util::new_condition(
                    PROGRESSING,
                    "False",
                    util::TIMED_OUT_REASON,
                    format!("{subject} has timed out progressing."),
                    self.now,
                );
                util::set_condition(&mut status, cond);
            }
        }
        match util::replica_failure(all, new_rs) {
            Some(cond) => util::set_condition(&mut status, cond),
            None => util::remove_condition(&mut status, util::REPLICA_FAILURE),
        }
        if util::status_equal(self.d.status.as_ref(), Some(&status)) {
            return Ok(util::time_to_deadline(&self.d, &status, self.now)
                .map(|secs| Duration::from_secs(secs.max(1).unsigned_abs())));
        }
        self.d.status = Some(status);
        self.update_status().await?;
        Ok(None)
    }
}

/// The old ReplicaSets followed by the new one, if any.
fn with_new(old_rss: &[ReplicaSet], new_rs: Option<&ReplicaSet>) -> Vec<ReplicaSet> {
    let mut all = old_rss.to_vec();
    all.extend(new_rs.cloned());
    all
}

/// How many old replicas a rolling update may take away now without going below the
/// Deployment's minimum availability, counting the new ReplicaSet's unavailable replicas
/// as already missing; `None` when none.
pub(super) fn max_scaled_down(
    d: &Deployment,
    all: &[ReplicaSet],
    old_rss: &[ReplicaSet],
    new_rs: &ReplicaSet,
) -> Option<i32> {
    if util::replica_count(old_rss) == 0 {
        return None;
    }
    let all_pods = util::replica_count(all);
    let min_available = util::replicas(d) - util::max_unavailable(d);
    let new_unavailable = util::rs_replicas(new_rs) - util::rs_available(new_rs);
    let n = all_pods - min_available - new_unavailable;
    (n > 0).then_some(n)
}

/// The sizes of the active ReplicaSets `all` when the Deployment's total becomes
/// `allowed` (its replicas plus maxSurge, or 0): each gets its proportional share,
/// the largest takes the leftover. Sorts `all` as upstream does (largest first, newer
/// first when growing, older first when shrinking); the sizes follow that order.
pub(super) fn proportional_sizes(d: &Deployment, all: &mut [ReplicaSet], allowed: i32) -> Vec<i32> {
    let to_add = allowed - util::replica_count(all);
    if to_add > 0 {
        all.sort_by(util::by_size_newer);
    } else if to_add < 0 {
        all.sort_by(util::by_size_older);
    }
    let mut added = 0;
    let mut sizes: Vec<i32> = all
        .iter()
        .map(|rs| {
            if to_add == 0 {
                return util::rs_replicas(rs);
            }
            let share = util::get_proportion(rs, d, to_add, added);
            added += share;
            util::rs_replicas(rs) + share
        })
        .collect();
    if to_add != 0
        && let Some(first) = sizes.first_mut()
    {
        *first = (*first + to_add - added).max(0);
    }
    sizes
}
