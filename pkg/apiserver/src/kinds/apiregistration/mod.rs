//! `apiregistration.k8s.io`: APIServices, the registrations of the aggregation layer.

pub mod apiservice;

pub use apiservice::ApiServiceStrategy;
