//! What the workload controllers (ReplicaSet, ReplicationController, Deployment,
//! StatefulSet, DaemonSet, Job, CronJob) share, as upstream's `pkg/controller`
//! `controller_utils.go` and `controller_ref_manager.go` do: owner references and
//! adoption, pods made from templates, pod readiness and availability, the order in which
//! surplus pods go, slow-start batches, and the event recorder.

pub mod events;
pub mod expectations;
pub mod ownership;
pub mod pods;

pub use events::{Recorder, recorder};
pub use expectations::Expectations;
pub use ownership::{Claimed, claim, controller_of, controller_ref, is_controlled_by};
pub use pods::{
    active_pods_deletion_order, is_pod_active, is_pod_available, is_pod_ready, pod_from_template,
    slow_start_batch,
};
