//! Lease-based leader election for the in-process singletons when several servers share
//! one datastore (etcd): the controllers hold the `kube-system/kube-controller-manager`
//! Lease and the scheduler `kube-system/kube-scheduler`, as upstream's components do, with
//! upstream's timings (15 s lease, 10 s renew deadline, 2 s retry period). A lease counts
//! as expired when its record has not changed for its duration as this server observed
//! it, so clocks of different hosts need not agree.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a lease lasts without renewal (upstream's `--leader-elect-lease-duration`).
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long a leader keeps trying to renew before it stops (`--leader-elect-renew-deadline`).
const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often candidates try and leaders renew (`--leader-elect-retry-period`).
const RETRY_PERIOD: Duration = Duration::from_secs(2);

/// One candidate for one Lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    /// The lease record's resourceVersion as last seen, and when it was first seen.
    observed: Option<(String, Instant)>,
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl Elector {
    /// A candidate for `kube-system/<name>` that calls itself `identity`.
    pub fn new(client: kube::Client, name: &str, identity: &str) -> Self {
        Self {
            api: Api::namespaced(client, "kube-system"),
            name: name.to_string(),
            identity: identity.to_string(),
            observed: None,
        }
    }

    /// One attempt to take or renew the lease: whether this candidate holds it now.
    async fn try_hold(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let seconds = LEASE_DURATION.as_secs() as i32;
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some("kube-system".into()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created);
                    Ok(true)
                }
                Err(e) if is_conflict(&e) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let rv = lease.metadata.resource_version.clone().unwrap_or_default();
        if self.observed.as_ref().is_none_or(|(seen, _)| *seen != rv) {
            self.observed = Some((rv, Instant::now()));
        }
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.identity;
        let duration =
            Duration::from_secs(spec.lease_duration_seconds.unwrap_or(seconds).max(1) as u64);
        let expired = holder.is_empty()
            || self
                .observed
                .as_ref()
                .is_some_and(|(_, at)| at.elapsed() >= duration);
        if !ours && !expired {
            return Ok(false);
        }
        if !ours {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(seconds);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.observe(&updated);
                Ok(true)
            }
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn observe(&mut self, lease: &Lease) {
        let rv = lease.metadata.resource_version.clone().unwrap_or_default();
        self.observed = Some((rv, Instant::now()));
    }

    /// Gives the lease up at shutdown, so another server takes over at once.
    async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        if let Err(e) = self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(lease = %self.name, error = %e, "cannot release the leader lease");
        }
    }

    /// Runs `work` while this server holds the lease: campaigns until it holds it, starts
    /// `work` (which stops when its receiver fires), renews, and stops `work` when renewal
    /// fails for the renew deadline (then campaigns again). At `shutdown` it stops `work`
    /// and releases the lease.
    pub async fn run(
        mut self,
        mut work: impl FnMut(oneshot::Receiver<()>) -> JoinHandle<()>,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            loop {
                match self.try_hold().await {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(lease = %self.name, error = %e, "leader election attempt failed");
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(RETRY_PERIOD) => {}
                    () = &mut shutdown => return,
                }
            }
            tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
            let (stop, stopped) = oneshot::channel();
            let handle = work(stopped);
            let mut renewed = Instant::now();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(RETRY_PERIOD) => {}
                    () = &mut shutdown => {
                        let _ = stop.send(());
                        let _ = handle.await;
                        self.release().await;
                        return;
                    }
                }
                match self.try_hold().await {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(lease = %self.name, error = %e, "cannot renew the leader lease");
                    }
                }
                if renewed.elapsed() > RENEW_DEADLINE {
                    break;
                }
            }
            tracing::warn!(lease = %self.name, "leader lease lost; stopping until it is held again");
            let _ = stop.send(());
            let _ = handle.await;
        }
    }
}
