//! Kinds of the core (`v1`) group.

pub mod configmap;
pub mod event;
pub mod namespace;
pub mod node;
pub mod pod;
pub mod podspec;
pub mod podtemplate;
pub mod replicationcontroller;
pub mod secret;
pub mod service;
