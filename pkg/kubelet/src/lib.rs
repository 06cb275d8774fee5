//! The kubelet: registers this node and runs the pods bound to it as real containers.
//!
//! It is an ordinary kube client (in-process inside `k1s server`). The pieces:
//! - [`runtime`]: the [`runtime::ContainerRuntime`] contract the pod workers drive, shaped
//!   after upstream's CRI (sandboxes, containers, images, exec/attach), implemented on
//!   containerd's own gRPC API and by a fake for tests.
//! - [`server`]: the HTTPS endpoints the API server proxies `kubectl logs`, `exec`,
//!   `attach` and `port-forward` to.

pub mod containerd;
pub mod runtime;
pub mod server;
