//! `k1s server`: data dir → PKI → store → API server → listener, then wait for a signal.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use k1s_apiserver::auth::{TokenTable, UserInfo};
use k1s_apiserver::server::{CertAuthenticator, ServeOptions};
use k1s_apiserver::{ApiConfig, ApiServer, bootstrap};
use k1s_pki::{ClientIdentity, Pki, PkiOptions};
use k1s_store::{
    Backend, EtcdBackend, EtcdOptions, MemoryBackend, SqliteBackend, SqliteOptions, Store,
};

use crate::cli::datastore::DatastoreTls;
use crate::cli::server::ServerArgs;
use crate::run::election::Elector;
use crate::run::node::{self, NodeSettings, RuntimeHandle};

/// Runs the server until SIGINT or SIGTERM.
pub fn run(mut args: ServerArgs) -> anyhow::Result<ExitCode> {
    args.apply_kube_apiserver_args()
        .map_err(|e| anyhow::anyhow!("--kube-apiserver-arg: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("k1s")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

/// The data dir when --data-dir is not given.
pub(crate) fn default_data_dir() -> PathBuf {
    // Root runs a system service; anyone else gets a private folder.
    let is_root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    match (is_root, std::env::var_os("HOME")) {
        (Ok(false), Some(home)) => PathBuf::from(home).join(".k1s"),
        _ => PathBuf::from("/var/lib/k1s"),
    }
}

/// Creates the data dir and proves it writable, with one clear error otherwise.
pub(crate) fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("unusable --data-dir {}: cannot create it", dir.display()))?;
    let meta =
        std::fs::metadata(dir).with_context(|| format!("unusable --data-dir {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("unusable --data-dir {}: not a directory", dir.display());
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let probe = dir.join(".k1s-write-test");
    std::fs::write(&probe, b"ok")
        .with_context(|| format!("unusable --data-dir {}: not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_lowercase())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "k1s-node".into())
}

/// The address the kernel would use to leave this host (no packet is sent).
fn detect_address(bind: IpAddr) -> IpAddr {
    if !bind.is_unspecified() {
        return bind;
    }
    let routed = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.connect((Ipv4Addr::new(10, 255, 255, 254), 9)).map(|_| s))
        .and_then(|s| s.local_addr());
    match routed {
        Ok(a) if !a.ip().is_unspecified() => a.ip(),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

/// The SQLite file of a data dir (the datastore when --datastore-endpoint is empty).
pub(crate) fn sqlite_path(data_dir: &Path) -> PathBuf {
    data_dir.join("server").join("db").join("state.db")
}

/// Opens the datastore --datastore-endpoint names (SQLite in the data dir when empty).
pub(crate) fn open_backend(
    endpoint: &str,
    tls: &DatastoreTls,
    data_dir: &Path,
) -> anyhow::Result<Arc<dyn Backend>> {
    if endpoint.is_empty() {
        let path = sqlite_path(data_dir);
        let backend = SqliteBackend::open(SqliteOptions::new(&path))
            .with_context(|| format!("cannot open the datastore at {}", path.display()))?;
        return Ok(Arc::new(backend));
    }
    if let Some(path) = endpoint.strip_prefix("sqlite://") {
        let backend = SqliteBackend::open(SqliteOptions::new(path))
            .with_context(|| format!("cannot open the datastore at {path}"))?;
        return Ok(Arc::new(backend));
    }
    if endpoint == "memory://" {
        return Ok(Arc::new(MemoryBackend::new()));
    }
    if EtcdOptions::is_etcd_endpoint(endpoint) {
        let mut options = EtcdOptions::new(endpoint);
        options.ca_file = tls.datastore_cafile.clone();
        options.cert_file = tls.datastore_certfile.clone();
        options.key_file = tls.datastore_keyfile.clone();
        let backend = EtcdBackend::new(options)
            .with_context(|| format!("unusable --datastore-endpoint {endpoint}"))?;
        return Ok(Arc::new(backend));
    }
    bail!(
        "unsupported --datastore-endpoint {endpoint:?}: use sqlite:///path/state.db, https://etcd:2379 (or http://), or memory://"
    )
}

fn parse_mode(s: &str) -> anyhow::Result<u32> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .with_context(|| {
            format!(
                "invalid --write-kubeconfig-mode {s:?}: expected an octal mode such as 600 or 644"
            )
        })
}

async fn serve(mut args: ServerArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args
        .process
        .data_dir
        .clone()
        .unwrap_or_else(default_data_dir);
    prepare_data_dir(&data_dir)?;
    let mode = parse_mode(&args.write_kubeconfig_mode)?;
    // Bad node flags (--kubelet-arg, --bridge-name, an IPv6 --cluster-cidr) are refused
    // before anything starts.
    let settings = if args.disable_agent {
        None
    } else {
        Some(NodeSettings::from_flags(&args.node)?)
    };
    if !args.service_cidr.contains(&args.node.cluster_dns) {
        bail!(
            "--cluster-dns {} is not inside --service-cidr {}",
            args.node.cluster_dns,
            args.service_cidr
        );
    }
    let node_name = args.node.node_name.clone().unwrap_or_else(host_name);
    let advertise = args
        .advertise_address
        .unwrap_or_else(|| detect_address(args.bind_address));
    let service_ip =
        k1s_apiserver::kinds::core::service::ClusterIpAllocator::new(args.service_cidr)
            .nth(0)
            .context("--service-cidr has no usable addresses")?;

    let mut addresses = vec![advertise];
    if !args.bind_address.is_unspecified() {
        addresses.push(args.bind_address);
    }
    // Agents reach the server at its node address too.
    if let Some(ip) = args.node.node_ip {
        addresses.push(ip);
    }
    // The embedded etcd: --cluster-init, a joining --server, or a member made before.
    let etcd_args = args.embedded_etcd.clone();
    // A member removed from its cluster (its Node deleted) joins again as a new one.
    if !etcd_args.cluster_reset {
        super::etcd::clear_tombstone(&data_dir, etcd_args.server.is_some())?;
    }
    let embedded_etcd =
        etcd_args.cluster_init || etcd_args.server.is_some() || super::etcd::has_member(&data_dir);
    if embedded_etcd && !args.datastore_endpoint.is_empty() {
        bail!(
            "--datastore-endpoint and the embedded etcd (--cluster-init, --server) do not go together"
        );
    }
    if etcd_args.cluster_reset && !embedded_etcd {
        bail!("--cluster-reset resets the embedded etcd: this data dir has none (--cluster-init)");
    }
    // A first start that joins: the cluster's CAs and keys come from the server named.
    let mut join_endpoints = None;
    if let Some(server) = &etcd_args.server
        && !super::etcd::has_member(&data_dir)
        && !etcd_args.cluster_reset
    {
        let token = args.token.as_deref().context(
            "--server needs --token: the K10… token in the first server's <data-dir>/server/token",
        )?;
        let fetched = super::etcd::fetch_bootstrap(server, token).await?;
        super::etcd::write_bootstrap(&data_dir, &fetched.files)?;
        tracing::info!(%server, "fetched the cluster's CAs and keys");
        join_endpoints = Some(fetched.etcd_endpoints);
    }
    let mut pki_opts = PkiOptions::new(&data_dir, node_name.clone());
    pki_opts.cluster_domain = args.node.cluster_domain.clone();
    pki_opts.service_ip = service_ip;
    pki_opts.addresses = addresses;
    pki_opts.extra_sans = args.tls_san.clone();
    pki_opts.token = args.token.clone();
    let pki = Pki::load_or_create(&pki_opts).context("cannot set up certificates")?;

    // The agent's runtime comes first: without containerd the server says so at once.
    let runtime = if args.disable_agent {
        None
    } else {
        Some(node::start_runtime(&args.node, &data_dir).await?)
    };

    // A bad schedule is refused before anything starts.
    let snapshot_schedule = if embedded_etcd && !etcd_args.etcd_disable_snapshots {
        Some(
            k1s_controllers::cronjob::schedule::Schedule::parse(
                &etcd_args.etcd_snapshot_schedule_cron,
            )
            .map_err(|e| anyhow::anyhow!("invalid --etcd-snapshot-schedule-cron: {e}"))?,
        )
    } else {
        None
    };
    let etcd = if embedded_etcd {
        let plan = super::etcd::Plan {
            args: &etcd_args,
            data_dir: &data_dir,
            node_name: &node_name,
            node_ip: args.node.node_ip.unwrap_or(advertise),
            join_endpoints,
        };
        match super::etcd::start(plan).await? {
            super::etcd::Started::Reset(message) => {
                tracing::info!("{message}");
                return Ok(ExitCode::SUCCESS);
            }
            super::etcd::Started::Running(running) => {
                let (etcd, tls) = *running;
                args.datastore_endpoint = etcd.local_client_url.clone();
                args.datastore_tls = DatastoreTls {
                    datastore_cafile: Some(tls.server_ca.clone()),
                    datastore_certfile: Some(tls.client_cert.clone()),
                    datastore_keyfile: Some(tls.client_key.clone()),
                };
                Some((etcd, tls))
            }
        }
    } else {
        None
    };
    let backend = open_backend(&args.datastore_endpoint, &args.datastore_tls, &data_dir)?;
    let backend = crate::run::secrets_encrypt::wrap(
        backend,
        args.secrets_encryption,
        &args.secrets_encryption_provider,
        &data_dir,
    )?;
    let store = Store::open(backend.clone())
        .await
        .context("cannot read the datastore")?;

    let tokens = match &args.token_auth_file {
        Some(p) => TokenTable::load(p)
            .with_context(|| format!("cannot read --token-auth-file {}", p.display()))?,
        None => TokenTable::new(),
    };
    let port = args.https_listen_port;
    let config = ApiConfig {
        advertise_address: SocketAddr::new(advertise, port).to_string(),
        advertise_ip: advertise,
        advertise_port: port,
        service_cidr: args.service_cidr,
        cluster_domain: args.node.cluster_domain.clone(),
    };
    let modes = k1s_apiserver::auth::authz::parse_modes(&args.authorization_mode)
        .map_err(|e| anyhow::anyhow!("invalid --authorization-mode: {e}"))?;
    let api = ApiServer::new(store, config, tokens).await;
    api.authorizer.set_modes(modes);
    api.anonymous_auth
        .store(args.anonymous_auth, std::sync::atomic::Ordering::SeqCst);
    api.inflight.set_limits(
        args.max_requests_inflight,
        args.max_mutating_requests_inflight,
    );
    // Upstream audits only with both a policy and a backend.
    if let (Some(policy), Some(log)) = (&args.audit_policy_file, &args.audit_log_path) {
        let auditor = k1s_apiserver::audit::Auditor::load(
            policy,
            k1s_apiserver::audit::log::LogOptions {
                path: log.clone(),
                max_age_days: args.audit_log_maxage,
                max_backups: args.audit_log_maxbackup,
                max_size_mb: args.audit_log_maxsize,
            },
        )?;
        let _ = api.audit.set(std::sync::Arc::new(auditor));
    }
    let issuer = ApiServer::default_service_account_issuer(&args.node.cluster_domain);
    api.set_service_account_issuer(
        k1s_apiserver::auth::serviceaccount::TokenIssuer::from_pem(
            pki.service_account_key_pem(),
            &issuer,
            vec![issuer.clone()],
        )
        .context("cannot use the service account signing key")?,
    );
    // logs, exec, attach and port-forward reach kubelets with this client certificate.
    api.set_kubelet_client_tls(
        pki.kubelet_client_tls_config()
            .context("cannot issue the kubelet client certificate")?,
    );
    bootstrap::run(&api)
        .await
        .map_err(|s| anyhow::anyhow!("cannot create system objects: {}", s.message))?;
    bootstrap::maintain(api.clone());
    // Upstream's RBAC post-start hook: the default roles and bindings, reconciled.
    if api.authorizer.has_rbac() {
        k1s_apiserver::auth::bootstrap_policy::run(&api)
            .await
            .map_err(|s| anyhow::anyhow!("cannot create the default RBAC policy: {}", s.message))?;
    }
    k1s_apiserver::auth::bootstrap_policy::start_aggregation(api.clone());
    // What joining agents read and authenticate with (run/join.rs).
    let join_url = format!(
        "https://{}",
        SocketAddr::new(args.node.node_ip.unwrap_or(advertise), port)
    );
    // Agents cannot join without it, but the server and its own node run on.
    if let Err(e) = super::join::publish(
        controller_manager_client(&api),
        &join_url,
        pki.ca_pem(),
        pki.token_secret(),
    )
    .await
    {
        tracing::error!(error = %e, "cannot publish what agents need to join");
    }
    let scheduled_snapshots = snapshot_schedule
        .filter(|_| etcd.is_some())
        .map(|schedule| {
            tokio::spawn(super::etcd_snapshot::run_schedule(
                schedule,
                data_dir.clone(),
                super::etcd::snapshot_dir(&data_dir, etcd_args.etcd_snapshot_dir.as_deref()),
                etcd_args.etcd_snapshot_name.clone(),
                etcd_args.etcd_snapshot_retention,
            ))
        });
    // Joining servers fetch the cluster's CAs and keys, and find etcd, through this.
    if let Some((etcd, tls)) = &etcd {
        let endpoints = super::etcd::member_client_urls(&etcd.local_client_url, tls)
            .await
            .unwrap_or_else(|_| vec![etcd.client_url.clone()]);
        if let Err(e) = super::etcd::publish_bootstrap(
            controller_manager_client(&api),
            &data_dir,
            pki.token_secret(),
            &endpoints,
        )
        .await
        {
            tracing::error!(error = %e, "cannot publish what joining servers need");
        }
    }
    // Upstream's tokens controller for legacy service account token Secrets.
    k1s_apiserver::auth::legacy_tokens::start(api.clone());
    // And its LegacyServiceAccountTokenCleanUp.
    k1s_apiserver::auth::legacy_tokens::start_cleaner(
        api.clone(),
        args.legacy_service_account_token_clean_up_period,
    );

    let tls = k1s_pki::server_tls_config(&pki).context("cannot build the TLS configuration")?;
    let listen = SocketAddr::new(args.bind_address, port);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;

    let host = if args.bind_address.is_unspecified() || args.bind_address.is_loopback() {
        "127.0.0.1".to_string()
    } else {
        args.bind_address.to_string()
    };
    let url = format!(
        "https://{}",
        SocketAddr::new(
            host.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            port
        )
    );
    let kubeconfig = k1s_pki::kubeconfig(
        &url,
        pki.ca_pem(),
        pki.admin_cert_pem(),
        pki.admin_key_pem(),
    );
    k1s_pki::write_kubeconfig(&args.write_kubeconfig, &kubeconfig, mode).with_context(|| {
        format!(
            "cannot write --write-kubeconfig {}",
            args.write_kubeconfig.display()
        )
    })?;
    if let Some(name) = args.kubeconfig_secret.clone() {
        let secret = super::kubeconfig_secret::KubeconfigSecret {
            name,
            kubeconfig: match &args.kubeconfig_secret_server {
                Some(server) => k1s_pki::kubeconfig(
                    server,
                    pki.ca_pem(),
                    pki.admin_cert_pem(),
                    pki.admin_key_pem(),
                ),
                None => kubeconfig.clone(),
            },
            ca_pem: pki.ca_pem().to_string(),
            cert_pem: pki.admin_cert_pem().to_string(),
            key_pem: pki.admin_key_pem().to_string(),
        };
        tokio::spawn(async move {
            if let Err(e) = secret.publish().await {
                tracing::error!("--kubeconfig-secret: {e:#}");
            }
        });
    }

    // Custom resources are served before the server reports ready.
    let crd_controller = k1s_apiserver::crd::controller::start(api.clone()).await;
    // The aggregation layer: the proxy's front-proxy client certificate, the ConfigMap
    // extension API servers authenticate by, and the APIService controller (the local
    // APIServices exist before the server reports ready).
    api.aggregator
        .set_proxy_identity(pki.proxy_client_cert_pem(), pki.proxy_client_key_pem())
        .map_err(|e| anyhow::anyhow!("cannot use the proxy client certificate: {e}"))?;
    k1s_apiserver::aggregator::authentication::publish(
        &api,
        k1s_apiserver::aggregator::authentication::data(
            pki.ca_pem(),
            pki.request_header_ca_pem(),
            &[k1s_pki::AUTH_PROXY_USER],
        ),
    )
    .await
    .map_err(|s| {
        anyhow::anyhow!(
            "cannot publish {}: {}",
            k1s_apiserver::aggregator::authentication::NAME,
            s.message
        )
    })?;
    let apiservice_controller = k1s_apiserver::aggregator::controller::start(api.clone()).await;

    let certs: CertAuthenticator = Arc::new(|der: &[u8]| {
        ClientIdentity::from_der(der)
            .ok()
            .map(|id| UserInfo::new(id.user, id.groups))
    });
    api.set_ready();
    tracing::info!(%listen, kubeconfig = %args.write_kubeconfig.display(), data_dir = %data_dir.display(), "k1s server is ready");
    // The PKI, OpenAPI documents and bootstrap objects are made; their code is not needed again.
    super::startup_pages::shed_soon();
    // On etcd several servers may share the datastore: the singletons then run under
    // upstream's Lease-based leader election, with upstream's identity (host_uuid).
    let elect = EtcdOptions::is_etcd_endpoint(&args.datastore_endpoint)
        .then(|| format!("{node_name}_{}", uuid::Uuid::new_v4()));
    // One pod watch for the controllers, the scheduler and the simulated nodes: each pod
    // write is decoded once, and its one copy, pruned to the fields they use, is what
    // they read. Under leader election each term starts its own (a standby keeps no pod cache).
    let pod_informer = elect
        .is_none()
        .then(|| k1s_informer::Informer::pods(controller_manager_client(&api)));
    let backlog = k1s_informer::Backlog::with_limit(args.pod_creation_backlog);
    // Controllers get a moment to stop cleanly at shutdown.
    let (stop_controllers, controllers_stopping) = tokio::sync::oneshot::channel::<()>();
    let controllers = if args.disable_controller_manager {
        None
    } else {
        // servicelb is one of them; `--disable servicelb` leaves LoadBalancer Services
        // pending, for a load balancer of the user's own.
        let servicelb_off = args
            .disable
            .iter()
            .any(|c| c.eq_ignore_ascii_case(k1s_controllers::servicelb::NAME));
        let enabled: Vec<_> = k1s_controllers::CONTROLLERS
            .iter()
            .filter(|d| d.enabled_by_default)
            .filter(|d| !(servicelb_off && d.name == k1s_controllers::servicelb::NAME))
            .copied()
            .collect();
        let client = controller_manager_client(&api);
        let config = k1s_controllers::ControllerConfig {
            root_ca_pem: Some(pki.ca_pem().to_string()),
            // k3s allocates node CIDRs from --cluster-cidr (a /24 per node).
            cluster_cidr: Some(args.node.cluster_cidr),
            node_cidr_mask_size: None,
            service_cidr: Some(args.service_cidr),
            // The CSR signer issues joining agents' kubelet certificates from the cluster CA.
            csr_signer: k1s_pki::CaSigner::load(&data_dir).ok().map(Arc::new),
            pods: pod_informer.clone(),
            // Started by each `run` (each leader term under election).
            nodes: None,
            scheduling_backlog: backlog.clone(),
        };
        let stopping = async move {
            let _ = controllers_stopping.await;
        };
        Some(match &elect {
            // Several servers may share etcd: one runs the controllers at a time.
            Some(identity) => {
                let elector = Elector::new(client.clone(), "kube-controller-manager", identity);
                tokio::spawn(elector.run(
                    move |stop| {
                        k1s_controllers::run_with(
                            client.clone(),
                            config.clone(),
                            enabled.clone(),
                            async move {
                                let _ = stop.await;
                            },
                        )
                    },
                    stopping,
                ))
            }
            None => k1s_controllers::run_with(client, config, enabled, stopping),
        })
    };
    let (stop_scheduler, scheduler_stopping) = tokio::sync::oneshot::channel::<()>();
    let scheduler = if args.disable_scheduler {
        None
    } else {
        let client = scheduler_client(&api);
        let stopping = async move {
            let _ = scheduler_stopping.await;
        };
        Some(match &elect {
            Some(identity) => {
                let elector = Elector::new(client.clone(), "kube-scheduler", identity);
                tokio::spawn(elector.run(
                    move |stop| {
                        tokio::spawn(k1s_scheduler::run(client.clone(), async move {
                            let _ = stop.await;
                        }))
                    },
                    stopping,
                ))
            }
            None => match pod_informer.clone() {
                Some(pods) => tokio::spawn(k1s_scheduler::run_with_pods(
                    client, pods, backlog, stopping,
                )),
                None => tokio::spawn(k1s_scheduler::run(client, stopping)),
            },
        })
    };
    // The embedded etcd's members follow their Nodes (k3s's managed etcd controllers): this
    // server marks its Node with its member; one server at a time removes the members of
    // deleted Nodes.
    let (stop_member_removal, member_removal_stopping) = tokio::sync::oneshot::channel::<()>();
    let etcd_member_tasks = etcd.as_ref().map(|(etcd, tls)| {
        let marker = tokio::spawn(super::etcd_members::keep_node_marked(
            controller_manager_client(&api),
            node_name.clone(),
            etcd.member.clone(),
        ));
        let client = controller_manager_client(&api);
        let identity = elect
            .clone()
            .unwrap_or_else(|| format!("{node_name}_{}", uuid::Uuid::new_v4()));
        let elector = Elector::new(client.clone(), super::etcd_members::LEASE, &identity);
        let (url, tls) = (etcd.local_client_url.clone(), tls.clone());
        let removal = tokio::spawn(elector.run(
            move |stop| {
                tokio::spawn(super::etcd_members::run_member_removal(
                    client.clone(),
                    url.clone(),
                    tls.clone(),
                    stop,
                ))
            },
            async move {
                let _ = member_removal_stopping.await;
            },
        ));
        (marker, removal)
    });
    // `kubectl get cs` reports these in-process components healthy while their tasks run.
    for (name, task) in [
        ("controller-manager", controllers.as_ref()),
        ("scheduler", scheduler.as_ref()),
    ] {
        if let Some(task) = task {
            let handle = task.abort_handle();
            api.register_component(
                name,
                Arc::new(move || {
                    if handle.is_finished() {
                        Err(format!("the {name} has stopped"))
                    } else {
                        Ok(())
                    }
                }),
            );
        }
    }
    let node_ip = args.node.node_ip.unwrap_or(advertise);
    let agent = match &settings {
        None => None,
        Some(settings) => Some(
            start_agent(
                &args, settings, &api, &pki, &data_dir, &node_name, node_ip, runtime,
            )
            .await
            .context("cannot start the agent")?,
        ),
    };
    let role_labels = (!args.disable_agent).then(|| {
        tokio::spawn(label_control_plane_node(
            controller_manager_client(&api),
            node_name.clone(),
        ))
    });
    let overlay = start_overlay(&args, &api, &node_name, node_ip);
    // The Service proxy is part of the agent, as kube-proxy is in k3s.
    let (stop_proxy, proxy_stopping) = tokio::sync::oneshot::channel::<()>();
    let proxy_disabled = args.node.disable_kube_proxy
        || args
            .disable
            .iter()
            .any(|c| c.eq_ignore_ascii_case("kube-proxy"));
    let proxy = if args.disable_agent || proxy_disabled {
        None
    } else {
        let cidr = match args.node.cluster_cidr {
            ipnet::IpNet::V4(net) => Some(net),
            ipnet::IpNet::V6(_) => None,
        };
        let client = kube_proxy_client(&api);
        let done = async move {
            let _ = proxy_stopping.await;
        };
        Some(node::spawn_proxy(
            client, &args.node, &node_name, cidr, done,
        ))
    };
    // k3s's bundled local-path provisioner, beside the kubelet whose disk it uses.
    let (stop_storage, storage_stopping) = tokio::sync::oneshot::channel::<()>();
    let storage_disabled = args
        .disable
        .iter()
        .any(|c| c.eq_ignore_ascii_case("local-storage"));
    let storage = if args.disable_agent || storage_disabled {
        None
    } else {
        let client = local_path_client(&api);
        let config = k1s_kubelet::localpath::Config {
            node_name: node_name.clone(),
            storage_dir: args
                .default_local_storage_path
                .clone()
                .unwrap_or_else(|| data_dir.join("storage")),
        };
        Some(tokio::spawn(async move {
            if let Err(e) = k1s_kubelet::localpath::ensure_default_class(client.clone()).await {
                tracing::error!(error = %e, "cannot create the default StorageClass");
            }
            let done = async move {
                let _ = storage_stopping.await;
            };
            k1s_kubelet::localpath::run(client, config, done).await;
        }))
    };
    // NetworkPolicy enforcement, beside the proxy in its own table (kube-router's part in
    // k3s).
    let (stop_netpol, netpol_stopping) = tokio::sync::oneshot::channel::<()>();
    let netpol_disabled = args.disable_network_policy
        || args
            .disable
            .iter()
            .any(|c| c.eq_ignore_ascii_case("network-policy"));
    let netpol = if args.disable_agent || netpol_disabled {
        None
    } else {
        let client = network_policy_client(&api);
        let mut config = k1s_net::netpol::NetpolConfig::new(node_name.clone());
        // The default bridge keeps the k3s-like name; others (tests) get a table of their own.
        config.table = k1s_net::cleanup::tables_for_bridge(&args.node.bridge_name).netpol;
        if !super::dns::disabled(&args)
            && let std::net::IpAddr::V4(ip) = args.node.cluster_dns
        {
            config.dns_address = Some(ip);
        }
        Some(tokio::spawn(async move {
            let done = async move {
                let _ = netpol_stopping.await;
            };
            if let Err(e) = k1s_net::netpol::run(client, config, done).await {
                tracing::error!(error = %e, "network policy enforcement failed");
            }
        }))
    };
    let simulator = if args.simulate_nodes > 0 {
        let mut config = k1s_simulator::Config::new(args.simulate_nodes);
        config.events = !args.simulate_quiet;
        config.pods = pod_informer.clone();
        config.cluster_cidr = match args.node.cluster_cidr {
            ipnet::IpNet::V4(net) => net,
            ipnet::IpNet::V6(_) => bail!("--simulate-nodes needs an IPv4 --cluster-cidr"),
        };
        let client = simulator_client(&api);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let done = async move {
                let _ = stopped.await;
            };
            if let Err(e) = k1s_simulator::run(client, config, done).await {
                tracing::error!(error = %e, "simulated nodes failed");
            }
        });
        Some((stop, task))
    } else {
        None
    };
    let dns = super::dns::start(&args, &api).await;
    // The resource metrics API, which k3s serves with its metrics-server add-on.
    let resource_metrics = if args
        .disable
        .iter()
        .any(|c| c.eq_ignore_ascii_case("metrics-server"))
    {
        None
    } else {
        Some(k1s_apiserver::metrics::start(
            &api,
            k1s_apiserver::metrics::DEFAULT_RESOLUTION,
        ))
    };
    let ingress = if args.disable_agent {
        None
    } else {
        super::ingress::start(&args, &api, node_ip).await
    };
    let serve_options = ServeOptions {
        request_timeout: args.request_timeout,
        ..ServeOptions::default()
    };
    let serving = tokio::spawn(k1s_apiserver::server::serve(
        api.clone(),
        listener,
        tls,
        certs,
        serve_options,
    ));
    // systemd's Type=notify units (packaging/k1s.service) wait for this: the API now
    // accepts connections. Without NOTIFY_SOCKET (not under systemd) it does nothing.
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        let status = format!("API server ready on {listen}");
        match sd_notify::notify(
            false,
            &[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status(&status),
            ],
        ) {
            Ok(()) => tracing::info!("told systemd the server is ready (sd_notify READY=1)"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell systemd the server is ready (sd_notify)")
            }
        }
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    }
    api.set_shutting_down();
    serving.abort();
    if let Some(m) = resource_metrics {
        m.abort();
    }
    if let Some(task) = role_labels {
        task.abort();
    }
    if let Some((marker, removal)) = etcd_member_tasks {
        marker.abort();
        let _ = stop_member_removal.send(());
        let _ = removal.await;
    }
    if let Some(agent) = agent {
        agent.stop().await;
    }
    if let Some((stop, task)) = overlay {
        let _ = stop.send(());
        let _ = task.await;
    }
    if let Some((stop, task)) = simulator {
        let _ = stop.send(());
        let _ = task.await;
    }
    let _ = stop_storage.send(());
    if let Some(s) = storage {
        let _ = s.await;
    }
    let _ = stop_controllers.send(());
    if let Some(c) = controllers {
        let _ = c.await;
    }
    let _ = stop_scheduler.send(());
    if let Some(s) = scheduler {
        let _ = s.await;
    }
    if let Some(dns) = dns {
        dns.stop().await;
    }
    if let Some(ingress) = ingress {
        ingress.stop().await;
    }
    let _ = stop_proxy.send(());
    if let Some(p) = proxy {
        let _ = p.await;
    }
    let _ = stop_netpol.send(());
    if let Some(p) = netpol {
        let _ = p.await;
    }
    crd_controller.abort();
    apiservice_controller.abort();
    drop(api);
    drop(backend);
    if let Some(task) = scheduled_snapshots {
        task.abort();
    }
    if let Some((etcd, _)) = etcd {
        etcd.stop().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// The running agent: the kubelet and the containerd it drives.
struct Agent {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    supervisor: Option<k1s_kubelet::containerd::supervisor::Supervisor>,
}

impl Agent {
    /// Stops the kubelet and the embedded containerd; containers keep running, and the
    /// next start adopts them (as k3s's do).
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        if let Some(s) = self.supervisor {
            s.stop().await;
        }
    }
}

/// Imports the airgap images, then runs the kubelet (run/node.rs) with an in-process
/// client and a serving certificate from the server's CA.
#[allow(clippy::too_many_arguments)]
async fn start_agent(
    args: &ServerArgs,
    settings: &NodeSettings,
    api: &Arc<ApiServer>,
    pki: &Pki,
    data_dir: &Path,
    node_name: &str,
    node_ip: IpAddr,
    runtime: Option<RuntimeHandle>,
) -> anyhow::Result<Agent> {
    let Some(RuntimeHandle {
        runtime,
        supervisor,
    }) = runtime
    else {
        bail!("no container runtime was started");
    };
    node::import_airgap_images(&runtime, data_dir).await;
    let listener = node::bind_kubelet(args.node.kubelet_port).await?;
    let tls = pki
        .kubelet_server_tls_config(node_name, &[node_ip.to_string(), "127.0.0.1".into()])
        .context("cannot issue the kubelet's serving certificate")?;
    let kubelet = node::Kubelet::new(
        &args.node, settings, node_name, node_ip, data_dir, listener, tls,
    );
    let user = UserInfo::new(
        format!("system:node:{node_name}"),
        ["system:nodes".to_string(), "system:masters".to_string()],
    );
    let client = k1s_apiserver::client::client(api.clone(), user);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = async move {
        let _ = stopped.await;
    };
    let task = kubelet.spawn(client, runtime, settings, data_dir, done);
    Ok(Agent {
        stop,
        task,
        supervisor,
    })
}

/// Runs the vxlan overlay of this node (when `--flannel-backend vxlan`).
fn start_overlay(
    args: &ServerArgs,
    api: &Arc<ApiServer>,
    node_name: &str,
    node_ip: IpAddr,
) -> Option<(
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
)> {
    let IpAddr::V4(ip) = node_ip else {
        return None;
    };
    if args.disable_agent || args.node.flannel_backend != "vxlan" {
        return None;
    }
    let user = UserInfo::new(
        format!("system:node:{node_name}"),
        ["system:nodes".to_string()],
    );
    let client = k1s_apiserver::client::client(api.clone(), user);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = async move {
        let _ = stopped.await;
    };
    Some((
        stop,
        node::spawn_overlay(client, &args.node, node_name, ip, done),
    ))
}

/// Gives this server's Node its control-plane role labels once the kubelet has registered
/// it, as k3s's server does: NodeRestriction refuses them from the kubelet itself.
async fn label_control_plane_node(client: kube::Client, node_name: String) {
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Patch, PatchParams};
    let nodes: kube::Api<Node> = kube::Api::all(client);
    let patch = serde_json::json!({"metadata": {"labels": {
        "node-role.kubernetes.io/control-plane": "true",
        "node-role.kubernetes.io/master": "true",
    }}});
    loop {
        match nodes.get_opt(&node_name).await {
            Ok(Some(_)) => match nodes
                .patch(&node_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return,
                Err(e) => tracing::debug!(error = %e, "cannot label the node yet"),
            },
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "cannot read the node yet"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The in-process client of the embedded controllers. They share one identity; the
/// garbage collector and namespace controller must read and delete every kind.
fn controller_manager_client(api: &Arc<ApiServer>) -> kube::Client {
    let user = UserInfo::new(
        "system:kube-controller-manager",
        ["system:masters".to_string()],
    );
    k1s_apiserver::client::client(api.clone(), user)
}

/// The in-process client of the local-path provisioner (k3s runs it as the service
/// account `kube-system/local-path-provisioner-service-account`).
fn local_path_client(api: &Arc<ApiServer>) -> kube::Client {
    let user = UserInfo::new(
        "system:serviceaccount:kube-system:local-path-provisioner-service-account",
        ["system:masters".to_string()],
    );
    k1s_apiserver::client::client(api.clone(), user)
}

/// The in-process client of the Service proxy, as upstream's `system:kube-proxy`.
fn kube_proxy_client(api: &Arc<ApiServer>) -> kube::Client {
    let user = UserInfo::new("system:kube-proxy", ["system:masters".to_string()]);
    k1s_apiserver::client::client(api.clone(), user)
}

/// The in-process client of the NetworkPolicy enforcement (it reads policies, pods and
/// namespaces, as kube-router's policy controller).
fn network_policy_client(api: &Arc<ApiServer>) -> kube::Client {
    let user = UserInfo::new("system:k1s-network-policy", ["system:masters".to_string()]);
    k1s_apiserver::client::client(api.clone(), user)
}

/// The in-process client of the embedded scheduler, as upstream's
/// `system:kube-scheduler` identity.
fn scheduler_client(api: &Arc<ApiServer>) -> kube::Client {
    let user = UserInfo::new("system:kube-scheduler", ["system:masters".to_string()]);
    k1s_apiserver::client::client(api.clone(), user)
}

/// The in-process client of the simulated nodes (they write Nodes, Leases and pods of
/// every namespace, as kubelets of many nodes would).
fn simulator_client(api: &Arc<ApiServer>) -> kube::Client {
    let user = UserInfo::new("system:k1s-simulator", ["system:masters".to_string()]);
    k1s_apiserver::client::client(api.clone(), user)
}

pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
