//! The Service proxy (kube-proxy, nftables mode): Services and EndpointSlices, watched
//! through reflectors, programmed into an nftables table of their own (`k1s-proxy`).
//!
//! The first sync replaces the table whole (`nft -f`); after that each sync rewrites only
//! the chains and map elements of the Services that changed, in one transaction: a
//! netlink batch written here (see [`netlink`]: no `nft` process, which would read the
//! whole ruleset first), or `nft` for the forms that batch does not encode. A change after
//! a quiet spell is applied at once; changes within [`ProxyConfig::batch`] of the last
//! sync are gathered into the next (upstream's `minSyncPeriod`). See [`rules`] for the
//! layout.
//!
//! A LoadBalancer Service's `status.loadBalancer.ingress` addresses (set by servicelb, or
//! any load balancer with `ipMode: VIP`) take its ports as externalIPs do.
//!
//! Left out for now: IPv6 and the health-check node port of `externalTrafficPolicy: Local`.

mod netlink;
mod rules;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use crate::NetError;
use rules::ServiceRules;

/// The label naming the Service an EndpointSlice belongs to.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// How the proxy runs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The nftables table (`ip` family) it owns; `k1s-proxy` on a node.
    pub table: String,
    /// The cluster's pod CIDR: traffic to a ClusterIP from outside it is masqueraded.
    pub cluster_cidr: Option<Ipv4Net>,
    /// The least time between two syncs: changes meanwhile wait and go together.
    pub batch: Duration,
    /// This node's name: endpoints on it are the ones `Local` traffic policies use.
    pub node_name: Option<String>,
    /// Told of each sync applied (benchmarks and tests wait on it).
    pub synced: Option<tokio::sync::mpsc::UnboundedSender<Synced>>,
}

/// One sync the proxy applied to the kernel.
#[derive(Debug, Clone)]
pub struct Synced {
    /// Services compared (every Service on a full sync).
    pub services: usize,
    /// Whether the table was rebuilt from empty.
    pub full: bool,
    /// Computing the rules and applying them.
    pub elapsed: Duration,
    /// Applied as a netlink batch of its own rather than by `nft`.
    pub netlink: bool,
}

impl ProxyConfig {
    /// The node defaults: table `k1s-proxy`, 100 ms batches.
    pub fn new(cluster_cidr: Option<Ipv4Net>) -> Self {
        Self {
            table: "k1s-proxy".to_owned(),
            cluster_cidr,
            batch: Duration::from_millis(100),
            node_name: None,
            synced: None,
        }
    }
}

/// Removes the proxy's table and everything in it (for `k1s killall`); nothing if absent.
pub async fn cleanup(table: &str) -> Result<(), NetError> {
    nft(&format!("add table ip {table}\ndelete table ip {table}\n")).await
}

/// Runs `nft -f -` with `script`: one transaction, all or nothing.
pub(crate) async fn nft(script: &str) -> Result<(), NetError> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| NetError::Kernel(format!("running nft (apt-get install nftables): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| NetError::Kernel(format!("writing to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| NetError::Kernel(format!("nft: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetError::Kernel(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Applies a sync's `script`: a full rewrite through `nft`; a change of a few Services
/// as one netlink batch where every line of it can be encoded (no `nft` process, no read
/// of the whole ruleset), else through `nft` too.
/// Says whether the netlink batch was used.
async fn apply(script: &str, full: bool) -> Result<bool, NetError> {
    if full {
        return nft(script).await.map(|()| false);
    }
    match netlink::encode(script) {
        Some(batch) => tokio::task::spawn_blocking(move || netlink::send(&batch))
            .await
            .map_err(|e| NetError::Kernel(format!("nf_tables batch: {e}")))?
            .map(|()| true),
        None => nft(script).await.map(|()| false),
    }
}

/// Keys (`namespace/name`) of the Services that changed since the last sync.
#[derive(Default)]
struct Dirty {
    keys: parking_lot::Mutex<BTreeSet<String>>,
    /// Set when a watch (re)listed: every Service is compared again.
    all: std::sync::atomic::AtomicBool,
    notify: Notify,
}

impl Dirty {
    fn mark(&self, key: String) {
        self.keys.lock().insert(key);
        self.notify.notify_one();
    }
    fn mark_all(&self) {
        self.all.store(true, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_one();
    }
}

fn key_of(ns: Option<&str>, name: &str) -> String {
    format!("{}/{name}", ns.unwrap_or(""))
}

fn slice_key(s: &EndpointSlice) -> Option<String> {
    let svc = s.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some(key_of(s.metadata.namespace.as_deref(), svc))
}

/// Runs the proxy until `shutdown` completes; the rules stay in place afterwards (as
/// kube-proxy leaves them: connections keep working across a restart).
pub async fn run(
    client: kube::Client,
    config: ProxyConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NetError> {
    let dirty = Arc::new(Dirty::default());
    let (services, svc_writer) = reflector::store::<Service>();
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();

    let d = dirty.clone();
    let svc_watch = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(svc_writer)
    .for_each(move |ev| {
        match ev {
            Ok(watcher::Event::Apply(s) | watcher::Event::Delete(s)) => d.mark(key_of(
                s.metadata.namespace.as_deref(),
                s.metadata.name.as_deref().unwrap_or(""),
            )),
            Ok(watcher::Event::InitDone) => d.mark_all(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "watching Services"),
        }
        futures::future::ready(())
    });
    let d = dirty.clone();
    let slice_watch = watcher(
        Api::<EndpointSlice>::all(client),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(slice_writer)
    .for_each(move |ev| {
        match ev {
            Ok(watcher::Event::Apply(s) | watcher::Event::Delete(s)) => {
                if let Some(k) = slice_key(&s) {
                    d.mark(k);
                }
            }
            Ok(watcher::Event::InitDone) => d.mark_all(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "watching EndpointSlices"),
        }
        futures::future::ready(())
    });
    let svc_watch = tokio::spawn(svc_watch);
    let slice_watch = tokio::spawn(slice_watch);
    let _abort = AbortOnDrop(vec![svc_watch, slice_watch]);

    let mut proxier = Proxier {
        config,
        services,
        slices,
        applied: HashMap::new(),
        hairpins: rules::Hairpins::default(),
        full: true,
    };
    let work = async {
        let _ = proxier.services.wait_until_ready().await;
        let _ = proxier.slices.wait_until_ready().await;
        let mut retry = Duration::from_secs(1);
        loop {
            let keys: Vec<String> = {
                let all = dirty.all.swap(false, std::sync::atomic::Ordering::SeqCst);
                let mut marked = std::mem::take(&mut *dirty.keys.lock());
                if all || proxier.full {
                    marked.extend(proxier.applied.keys().cloned());
                    marked.extend(proxier.services.state().iter().map(|s| {
                        key_of(
                            s.metadata.namespace.as_deref(),
                            s.metadata.name.as_deref().unwrap_or(""),
                        )
                    }));
                }
                marked.into_iter().collect()
            };
            if let Err(e) = proxier.sync(&keys).await {
                tracing::error!(error = %e, table = %proxier.config.table, retry = ?retry, "service proxy sync failed; rewriting the table");
                proxier.full = true;
                tokio::time::sleep(retry).await;
                // A node without nftables should not fill the log.
                retry = (retry * 2).min(Duration::from_secs(30));
                continue;
            }
            retry = Duration::from_secs(1);
            let last = tokio::time::Instant::now();
            dirty.notify.notified().await;
            // A change after a quiet spell goes at once; in a burst, what else changes
            // within the batch time of the last sync goes into the same transaction.
            tokio::time::sleep_until(last + proxier.config.batch).await;
        }
    };
    tokio::select! {
        _ = shutdown => Ok(()),
        () = work => Ok(()),
    }
}

pub(crate) struct AbortOnDrop(pub(crate) Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// What the proxy applied, by Service key.
struct Proxier {
    config: ProxyConfig,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    applied: HashMap<String, ServiceRules>,
    /// The `hairpin` set's elements, counted over `applied`.
    hairpins: rules::Hairpins,
    /// The next sync starts from an empty table (the first, or after a failure).
    full: bool,
}

impl Proxier {
    /// Brings the Services named by `keys` up to date in one transaction.
    async fn sync(&mut self, keys: &[String]) -> Result<(), NetError> {
        let started = std::time::Instant::now();
        let table = self.config.table.clone();
        let mut by_service: HashMap<String, Vec<Arc<EndpointSlice>>> = HashMap::new();
        let wanted: BTreeSet<&String> = keys.iter().collect();
        // Names first: a sync of a few Services formats no key for the others' slices.
        let names: std::collections::HashSet<&str> = keys
            .iter()
            .map(|k| k.split_once('/').map_or(k.as_str(), |(_, n)| n))
            .collect();
        for s in self.slices.state() {
            let named = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .is_some_and(|n| names.contains(n.as_str()));
            if !named {
                continue;
            }
            if let Some(k) = slice_key(&s).filter(|k| wanted.contains(k)) {
                by_service.entry(k).or_default().push(s);
            }
        }
        let services: HashMap<String, Arc<Service>> = if self.full || keys.len() > 64 {
            self.services
                .state()
                .into_iter()
                .map(|s| {
                    (
                        key_of(
                            s.metadata.namespace.as_deref(),
                            s.metadata.name.as_deref().unwrap_or(""),
                        ),
                        s,
                    )
                })
                .filter(|(k, _)| wanted.contains(k))
                .collect()
        } else {
            keys.iter()
                .filter_map(|k| {
                    let (ns, name) = k.split_once('/')?;
                    let r = reflector::ObjectRef::<Service>::new(name).within(ns);
                    Some((k.clone(), self.services.get(&r)?))
                })
                .collect()
        };

        let mut script = String::new();
        let full = self.full;
        if full {
            script.push_str(&rules::base_script(&table));
            self.hairpins.clear();
        }
        let empty = ServiceRules::default();
        let mut next = Vec::new();
        let mut stale_udp = Vec::new();
        for key in keys {
            let new = match services.get(key) {
                Some(svc) => {
                    let slices: Vec<&EndpointSlice> = by_service
                        .get(key)
                        .map(|v| v.iter().map(|s| s.as_ref()).collect())
                        .unwrap_or_default();
                    rules::service_rules(
                        svc,
                        &slices,
                        self.config.cluster_cidr,
                        self.config.node_name.as_deref(),
                    )
                }
                None => ServiceRules::default(),
            };
            let old = if full {
                &empty
            } else {
                self.applied.get(key).unwrap_or(&empty)
            };
            rules::diff_script(&table, old, &new, &mut script);
            self.hairpins
                .update(&table, &old.endpoints, &new.endpoints, &mut script);
            stale_udp.extend(rules::stale_udp(
                self.applied.get(key).unwrap_or(&empty),
                &new,
            ));
            next.push((key.clone(), new));
        }
        let netlink = if script.is_empty() {
            false
        } else {
            match apply(&script, full).await {
                Ok(netlink) => netlink,
                Err(e) => {
                    // The counts took this sync's changes; the full rewrite that follows
                    // a failure counts afresh.
                    self.hairpins.clear();
                    return Err(e);
                }
            }
        };
        if full {
            self.applied.clear();
        }
        for (key, rules) in next {
            if rules == ServiceRules::default() {
                self.applied.remove(&key);
            } else {
                self.applied.insert(key, rules);
            }
        }
        self.full = false;
        let elapsed = started.elapsed();
        tracing::debug!(
            services = keys.len(),
            full,
            netlink,
            ?elapsed,
            "service proxy synced"
        );
        if let Some(tx) = &self.config.synced {
            let _ = tx.send(Synced {
                services: keys.len(),
                full,
                elapsed,
                netlink,
            });
        }
        for (dst, port, ep) in stale_udp {
            clear_udp_conntrack(dst, port, ep).await;
        }
        Ok(())
    }
}

/// Deletes UDP conntrack entries to `dst:port` (a node port when `dst` is `None`) that were
/// answered by `endpoint`: otherwise a client keeps sending to an endpoint that is gone.
async fn clear_udp_conntrack(
    dst: Option<std::net::Ipv4Addr>,
    port: u16,
    endpoint: std::net::Ipv4Addr,
) {
    let mut cmd = tokio::process::Command::new("conntrack");
    cmd.args(["-D", "-p", "udp", "--reply-src", &endpoint.to_string()]);
    match dst {
        Some(ip) => cmd.args([
            "--orig-dst",
            &ip.to_string(),
            "--orig-port-dst",
            &port.to_string(),
        ]),
        None => cmd.args(["--orig-port-dst", &port.to_string()]),
    };
    match cmd.output().await {
        // Exit 1 with "0 flow entries" is the common case: nothing to delete.
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "clearing UDP conntrack entries (apt-get install conntrack)")
        }
    }
}
