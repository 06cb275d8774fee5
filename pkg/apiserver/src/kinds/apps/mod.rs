//! Kinds of the `apps` group.

mod controllerrevision;
mod daemonset;
mod deployment;
mod replicaset;
mod statefulset;
pub mod workload;

pub use controllerrevision::ControllerRevisionStrategy;
pub use daemonset::DaemonSetStrategy;
pub use deployment::DeploymentStrategy;
pub use replicaset::ReplicaSetStrategy;
pub use statefulset::StatefulSetStrategy;

#[cfg(test)]
mod realworld;
