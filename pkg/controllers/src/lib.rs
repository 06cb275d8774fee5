//! The control loops embedded in `k1s server`: ordinary kube clients, each handed a
//! `kube::Client` (in-process inside the server, HTTPS elsewhere), all listed in one table.
//!
//! Every controller is level-triggered: it reads the world, makes it match, and requeues;
//! none assumes it saw every event.

pub mod discovery;
pub mod disruption;
pub mod garbagecollector;
pub mod namespace;
pub mod nodelifecycle;
pub mod persistentvolume;
pub mod podautoscaler;
pub mod podgc;
pub mod resourcequota;
pub mod tainteviction;
pub mod workload;

use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Starts one controller: runs until `shutdown` fires, logging (never returning) the
/// errors it meets on the way.
pub type StartFn = fn(kube::Client, Shutdown) -> BoxFuture<'static, ()>;

/// One embedded controller: the name upstream's kube-controller-manager gives it, and
/// how to start it.
#[derive(Debug, Clone, Copy)]
pub struct Descriptor {
    /// Upstream's controller name (`kube-controller-manager --controllers`).
    pub name: &'static str,
    /// Starts it.
    pub start: StartFn,
    /// Whether `run_all` starts it.
    pub enabled_by_default: bool,
}

/// Every embedded controller.
pub const CONTROLLERS: &[Descriptor] = &[
    Descriptor {
        name: "namespace-controller",
        start: namespace::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: "garbage-collector-controller",
        start: garbagecollector::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: disruption::NAME,
        start: disruption::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: resourcequota::NAME,
        start: resourcequota::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: podautoscaler::NAME,
        start: podautoscaler::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: persistentvolume::NAME,
        start: persistentvolume::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: nodelifecycle::NAME,
        start: nodelifecycle::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: tainteviction::NAME,
        start: tainteviction::start,
        enabled_by_default: true,
    },
    Descriptor {
        name: podgc::NAME,
        start: podgc::start,
        enabled_by_default: true,
    },
];

/// How long controllers get to stop after shutdown is signalled before they are aborted.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A signal that tells controllers to stop; cheap to clone, one per controller.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal and the sender that fires it (by sending `true` or by being dropped).
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    /// Completes once shutdown is signalled.
    pub async fn wait(mut self) {
        // An error means the sender is gone, which is a shutdown too.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether shutdown has been signalled.
    pub fn is_signalled(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }
}

/// Spawns every controller that is enabled by default; the returned task completes
/// once `shutdown` has completed and the controllers have stopped.
pub fn run_all<F>(client: kube::Client, shutdown: F) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let enabled = CONTROLLERS.iter().filter(|d| d.enabled_by_default).copied();
    run(client, enabled.collect(), shutdown)
}

/// Spawns the given controllers; the returned task completes once `shutdown` has
/// completed and the controllers have stopped.
pub fn run<F>(client: kube::Client, controllers: Vec<Descriptor>, shutdown: F) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop, signal) = Shutdown::new();
    let mut set = JoinSet::new();
    for d in controllers {
        let name = d.name;
        let run = (d.start)(client.clone(), signal.clone());
        tracing::info!(controller = name, "starting controller");
        set.spawn(async move {
            run.await;
            tracing::info!(controller = name, "controller stopped");
        });
    }
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
        let drained = async { while set.join_next().await.is_some() {} };
        if tokio::time::timeout(STOP_GRACE, drained).await.is_err() {
            tracing::warn!("controllers did not stop in time; aborting them");
            set.abort_all();
            while set.join_next().await.is_some() {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_names_are_unique_and_upstreams() {
        // `--disable-controller`-style switches address controllers by these names.
        let mut names: Vec<_> = CONTROLLERS.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CONTROLLERS.len());
        assert!(names.contains(&"namespace-controller"));
        assert!(names.contains(&"garbage-collector-controller"));
    }

    #[tokio::test]
    async fn shutdown_fires_when_the_sender_is_dropped() {
        // A server that drops its handle without sending must still stop its controllers.
        let (tx, signal) = Shutdown::new();
        assert!(!signal.is_signalled());
        drop(tx);
        assert!(signal.is_signalled());
        tokio::time::timeout(Duration::from_secs(1), signal.wait())
            .await
            .expect("wait() returned");
    }
}
