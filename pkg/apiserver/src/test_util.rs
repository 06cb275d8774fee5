//! A real API server over the memory backend, for tests of this crate and of the
//! components (controllers, scheduler) that talk to it through a `kube::Client`.

use std::sync::Arc;

use crate::auth::{TokenTable, UserInfo};
use crate::{ApiConfig, ApiServer};

/// An API server without a socket.
pub struct TestApiServer {
    /// The server.
    pub server: Arc<ApiServer>,
}

impl TestApiServer {
    /// Starts one with the system namespaces and the `kubernetes` Service.
    pub async fn new() -> Self {
        let backend = Arc::new(k1s_store::MemoryBackend::new());
        let store = match k1s_store::Store::open(backend).await {
            Ok(s) => s,
            Err(e) => panic!("memory store failed to open: {e}"),
        };
        let config = ApiConfig {
            advertise_address: "127.0.0.1:6443".into(),
            advertise_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            advertise_port: 6443,
            service_cidr: "10.43.0.0/16".parse().unwrap_or_else(|_| unreachable!()),
            cluster_domain: "cluster.local".into(),
        };
        let server = ApiServer::new(store, config, TokenTable::new()).await;
        if let Err(s) = crate::bootstrap::run(&server).await {
            panic!("bootstrap failed: {}", s.message);
        }
        // Runs until the test's runtime shuts down.
        let _crd_controller = crate::crd::controller::start(server.clone()).await;
        server.set_ready();
        Self { server }
    }

    /// A client acting as a cluster admin.
    pub fn client(&self) -> kube::Client {
        crate::client::client(self.server.clone(), UserInfo::loopback())
    }
}
