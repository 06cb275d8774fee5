//! Kinds of the `networking.k8s.io` group (upstream `pkg/apis/networking/validation`
//! and `pkg/registry/networking/*`).

mod ingress;
mod ingressclass;
mod ipaddress;
mod networkpolicy;
mod servicecidr;

pub use ingress::IngressStrategy;
pub use ingressclass::IngressClassStrategy;
pub use ipaddress::IpAddressStrategy;
pub use networkpolicy::NetworkPolicyStrategy;
pub use servicecidr::ServiceCidrStrategy;
