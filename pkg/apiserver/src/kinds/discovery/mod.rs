//! Kinds of the `discovery.k8s.io` group.

mod endpointslice;

pub use endpointslice::EndpointSliceStrategy;
