//! Kinds of the `apps` group.

mod daemonset;
mod deployment;
mod replicaset;
mod statefulset;
pub mod workload;

pub use daemonset::DaemonSetStrategy;
pub use deployment::DeploymentStrategy;
pub use replicaset::ReplicaSetStrategy;
pub use statefulset::StatefulSetStrategy;
