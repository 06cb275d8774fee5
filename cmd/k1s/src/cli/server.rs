//! Flags of `k1s server`, with k3s's names.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;

/// Runs the control plane (and the agent, unless disabled).
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Config file, logs and data dir (shared with `k1s agent`).
    #[command(flatten)]
    pub process: crate::cli::node::ProcessArgs,

    /// Address the API server listens on.
    #[arg(
        long,
        default_value = "0.0.0.0",
        env = "K1S_BIND_ADDRESS",
        help_heading = "Listener"
    )]
    pub bind_address: IpAddr,

    /// HTTPS port of the API server.
    #[arg(
        long,
        default_value_t = 6443,
        env = "K1S_HTTPS_LISTEN_PORT",
        help_heading = "Listener"
    )]
    pub https_listen_port: u16,

    /// Address other nodes and clients use to reach this server (default: the node's
    /// first non-loopback address).
    #[arg(long, env = "K1S_ADVERTISE_ADDRESS", help_heading = "Listener")]
    pub advertise_address: Option<IpAddr>,

    /// Extra host names or IPs for the serving certificate.
    #[arg(
        long,
        value_delimiter = ',',
        env = "K1S_TLS_SAN",
        help_heading = "Listener"
    )]
    pub tls_san: Vec<String>,

    /// Where to write the admin kubeconfig.
    #[arg(
        long,
        short = 'o',
        default_value = "/etc/k1s/k1s.yaml",
        env = "K1S_KUBECONFIG_OUTPUT",
        help_heading = "Client"
    )]
    pub write_kubeconfig: PathBuf,

    /// File mode of the kubeconfig, in octal (e.g. 644).
    #[arg(
        long,
        default_value = "600",
        env = "K1S_KUBECONFIG_MODE",
        help_heading = "Client"
    )]
    pub write_kubeconfig_mode: String,

    /// When k1s runs in a pod of another cluster (a virtual cluster, as the charts/k1s Helm
    /// chart runs it): also store the admin kubeconfig in this Secret of the pod's namespace
    /// there, written through the pod's ServiceAccount (keys `config`,
    /// `certificate-authority`, `client-certificate`, `client-key`).
    #[arg(
        long,
        env = "K1S_KUBECONFIG_SECRET",
        value_name = "NAME",
        help_heading = "Client"
    )]
    pub kubeconfig_secret: Option<String>,

    /// The server URL in the --kubeconfig-secret kubeconfig (e.g. the Service's
    /// https://NAME.NAMESPACE.svc); default: the --write-kubeconfig one, for
    /// `kubectl port-forward`.
    #[arg(
        long,
        env = "K1S_KUBECONFIG_SECRET_SERVER",
        value_name = "URL",
        requires = "kubeconfig_secret",
        help_heading = "Client"
    )]
    pub kubeconfig_secret_server: Option<String>,

    /// Run only the control plane: no kubelet, no pods on this node.
    #[arg(long, env = "K1S_DISABLE_AGENT", help_heading = "Components")]
    pub disable_agent: bool,

    /// Do not run the controllers (namespace deletion, garbage collection).
    #[arg(
        long,
        env = "K1S_DISABLE_CONTROLLER_MANAGER",
        help_heading = "Components"
    )]
    pub disable_controller_manager: bool,

    /// Do not run the scheduler (pods then stay Pending until bound otherwise).
    #[arg(long, env = "K1S_DISABLE_SCHEDULER", help_heading = "Components")]
    pub disable_scheduler: bool,

    /// This node's kubelet, pod network and Service proxy (shared with `k1s agent`).
    #[command(flatten)]
    pub node: crate::cli::node::NodeArgs,

    /// Do not enforce NetworkPolicies (k3s's flag), to bring your own; the same as
    /// `--disable network-policy`.
    #[arg(long, env = "K1S_DISABLE_NETWORK_POLICY", help_heading = "Components")]
    pub disable_network_policy: bool,

    /// Service cluster IP range.
    #[arg(
        long,
        default_value = "10.43.0.0/16",
        env = "K1S_SERVICE_CIDR",
        help_heading = "Networking"
    )]
    pub service_cidr: IpNet,

    /// Components not to run (k3s's flag; repeatable or comma-separated): `coredns` or
    /// `dns` turns the cluster DNS off, `kube-proxy` the Service proxy, `servicelb` the
    /// built-in load balancer (LoadBalancer Services then stay pending), `local-storage`
    /// the local-path provisioner and its default StorageClass, `metrics-server` the
    /// resource metrics API (`metrics.k8s.io`, what `kubectl top` reads), `network-policy`
    /// the NetworkPolicy enforcement, `ingress` (or k3s's `traefik`) the ingress controller.
    #[arg(
        long,
        value_delimiter = ',',
        env = "K1S_DISABLE",
        help_heading = "Components"
    )]
    pub disable: Vec<String>,

    /// Where the cluster DNS serves UDP and TCP (`IP` for port 53, or `IP:PORT`; default:
    /// --cluster-dns on the dummy interface --dns-interface, when the agent runs).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = crate::run::dns_listen,
        env = "K1S_DNS_LISTEN",
        help_heading = "Networking"
    )]
    pub dns_listen: Vec<std::net::SocketAddr>,

    /// Port of the ingress controller's plain HTTP listener on every node address (0 picks
    /// a free one).
    #[arg(
        long,
        default_value_t = 80,
        env = "K1S_INGRESS_HTTP_PORT",
        help_heading = "Networking"
    )]
    pub ingress_http_port: u16,

    /// Port of the ingress controller's HTTPS listener on every node address (0 picks a
    /// free one).
    #[arg(
        long,
        default_value_t = 443,
        env = "K1S_INGRESS_HTTPS_PORT",
        help_heading = "Networking"
    )]
    pub ingress_https_port: u16,

    /// The dummy interface that carries --cluster-dns on this node.
    #[arg(
        long,
        default_value = "k1s-dns0",
        env = "K1S_DNS_INTERFACE",
        help_heading = "Networking"
    )]
    pub dns_interface: String,

    /// Where the local-path provisioner makes its volumes' folders (default:
    /// `<data-dir>/storage`).
    #[arg(long, env = "K1S_DEFAULT_LOCAL_STORAGE_PATH", help_heading = "Agent")]
    pub default_local_storage_path: Option<PathBuf>,

    /// Run this many simulated nodes in the server (sim-node-0, sim-node-1, …): they
    /// register, heartbeat their Leases and mark pods bound to them Running and Ready
    /// without running containers (KWOK inside the binary; for tests and benchmarks).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = "K1S_SIMULATE_NODES",
        help_heading = "Testing"
    )]
    pub simulate_nodes: usize,

    /// Simulated nodes post no kubelet events (Pulled, Created, Started, Killing): three
    /// writes fewer per pod, for benchmarks.
    #[arg(long, env = "K1S_SIMULATE_QUIET", help_heading = "Testing")]
    pub simulate_quiet: bool,

    /// Pods the scheduler may have untried (being created, on their way to the
    /// scheduler, or queued) before the ReplicaSet-style controllers hold their next
    /// creates (each at most 10 s); 0 never holds them. Not an upstream setting: upstream
    /// bounds creation by the controller-manager's client QPS.
    #[arg(
        long,
        env = "K1S_POD_CREATION_BACKLOG",
        default_value_t = 500,
        help_heading = "Testing"
    )]
    pub pod_creation_backlog: usize,

    /// Shared secret agents use to join (generated when not given).
    #[arg(long, short = 't', env = "K1S_TOKEN", help_heading = "Cluster")]
    pub token: Option<String>,

    /// Datastore: empty for SQLite in the data dir, `sqlite:///path/state.db`, etcd
    /// client URLs (`https://host:2379,https://host2:2379` or `http://...`; keys under
    /// `/registry` as kube-apiserver's), or `memory://` (nothing survives a restart).
    #[arg(
        long,
        default_value = "",
        env = "K1S_DATASTORE_ENDPOINT",
        help_heading = "Datastore"
    )]
    pub datastore_endpoint: String,

    /// etcd TLS files (--datastore-cafile, --datastore-certfile, --datastore-keyfile).
    #[command(flatten)]
    pub datastore_tls: crate::cli::datastore::DatastoreTls,

    /// Encrypt Secrets at rest (k3s's flag): the keys live in
    /// <data-dir>/server/cred/encryption-config.json (upstream's EncryptionConfiguration),
    /// made on first start; see `k1s secrets-encrypt`.
    #[arg(long, env = "K1S_SECRETS_ENCRYPTION", help_heading = "Datastore")]
    pub secrets_encryption: bool,

    /// Cipher of the key --secrets-encryption makes: aescbc or secretbox.
    #[arg(
        long,
        default_value = "aescbc",
        value_parser = ["aescbc", "secretbox"],
        env = "K1S_SECRETS_ENCRYPTION_PROVIDER",
        help_heading = "Datastore"
    )]
    pub secrets_encryption_provider: String,

    /// Static bearer tokens (CSV lines: token,user,uid,"group1,group2").
    #[arg(long, env = "K1S_TOKEN_AUTH_FILE", help_heading = "Cluster")]
    pub token_auth_file: Option<PathBuf>,

    /// Authorizers to run, in order, comma-separated (kube-apiserver's flag): Node (kubelet
    /// identities reach what their pods use), RBAC (Roles, ClusterRoles and bindings),
    /// AlwaysAllow (every authenticated or anonymous request), AlwaysDeny. Members of
    /// system:masters are always allowed.
    #[arg(
        long,
        env = "K1S_AUTHORIZATION_MODE",
        default_value = "Node,RBAC",
        help_heading = "Cluster"
    )]
    pub authorization_mode: String,

    /// Let requests without credentials run as system:anonymous (group
    /// system:unauthenticated), allowed only what RBAC grants them (by default /healthz,
    /// /livez, /readyz and /version); with false they get 401 (kube-apiserver's flag).
    #[arg(
        long,
        env = "K1S_ANONYMOUS_AUTH",
        default_value_t = true,
        action = clap::ArgAction::Set,
        help_heading = "Cluster"
    )]
    pub anonymous_auth: bool,

    /// How long a request may take to send its body before it ends with 504 Timeout
    /// (kube-apiserver's flag; a Go duration such as 60s or 1m30s).
    #[arg(
        long,
        default_value = "1m0s",
        value_parser = parse_duration,
        env = "K1S_REQUEST_TIMEOUT",
        help_heading = "Listener"
    )]
    pub request_timeout: Duration,

    /// The audit policy (an audit.k8s.io/v1 Policy, YAML or JSON): its first rule that
    /// matches a request gives the level (None, Metadata, Request, RequestResponse) of the
    /// event written to --audit-log-path (kube-apiserver's flag).
    #[arg(long, env = "K1S_AUDIT_POLICY_FILE", help_heading = "Audit")]
    pub audit_policy_file: Option<PathBuf>,

    /// Where audit events go, one JSON line each; `-` is stdout (kube-apiserver's flag).
    #[arg(long, env = "K1S_AUDIT_LOG_PATH", help_heading = "Audit")]
    pub audit_log_path: Option<PathBuf>,

    /// Days to keep rotated audit logs (0: no limit).
    #[arg(long, default_value_t = 0, help_heading = "Audit")]
    pub audit_log_maxage: u64,

    /// Rotated audit logs to keep (0: no limit).
    #[arg(long, default_value_t = 0, help_heading = "Audit")]
    pub audit_log_maxbackup: usize,

    /// Megabytes an audit log may grow to before it is rotated (0: 100).
    #[arg(long, default_value_t = 0, help_heading = "Audit")]
    pub audit_log_maxsize: u64,

    /// At most this many read-only requests (get, list) are served at once; more get 429
    /// with Retry-After (system:masters excepted; watches, exec, attach, logs and
    /// port-forwards not counted). 0: no limit (kube-apiserver's flag).
    #[arg(long, default_value_t = 400, help_heading = "Listener")]
    pub max_requests_inflight: usize,

    /// At most this many mutating requests are served at once; more get 429 (as
    /// --max-requests-inflight). 0: no limit.
    #[arg(long, default_value_t = 200, help_heading = "Listener")]
    pub max_mutating_requests_inflight: usize,

    /// A legacy ServiceAccount token Secret unused this long is marked invalid
    /// (`kubernetes.io/legacy-token-invalid-since`), and deleted once invalid this long
    /// (kube-controller-manager's flag; a Go duration, default a year).
    #[arg(
        long,
        default_value = "8760h0m0s",
        value_parser = parse_duration,
        help_heading = "Components"
    )]
    pub legacy_service_account_token_clean_up_period: Duration,

    /// Customized flag for the API server, as `flag=value` (repeatable; k3s's
    /// `--kube-apiserver-arg`): audit-policy-file, audit-log-path, audit-log-maxage,
    /// audit-log-maxbackup, audit-log-maxsize, max-requests-inflight,
    /// max-mutating-requests-inflight, anonymous-auth, authorization-mode,
    /// token-auth-file and request-timeout; others are refused.
    #[arg(
        long = "kube-apiserver-arg",
        value_name = "FLAG=VALUE",
        help_heading = "Components"
    )]
    pub kube_apiserver_arg: Vec<String>,

    /// The embedded etcd: --cluster-init, --server, --cluster-reset and their ports.
    #[command(flatten)]
    pub embedded_etcd: crate::cli::etcd::EmbeddedEtcdArgs,
}

impl ServerArgs {
    /// Applies `--kube-apiserver-arg` on top of the flags, as k3s hands them to
    /// kube-apiserver after its own (the later value wins).
    pub fn apply_kube_apiserver_args(&mut self) -> Result<(), String> {
        for arg in std::mem::take(&mut self.kube_apiserver_arg) {
            let arg = arg.trim_start_matches('-');
            let (name, value) = arg.split_once('=').unwrap_or((arg, ""));
            let number = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("invalid argument {v:?} for \"--{name}\" flag"))
            };
            match name {
                "audit-policy-file" => self.audit_policy_file = Some(value.into()),
                "audit-log-path" => self.audit_log_path = Some(value.into()),
                "audit-log-maxage" => self.audit_log_maxage = number(value)?,
                "audit-log-maxbackup" => self.audit_log_maxbackup = number(value)? as usize,
                "audit-log-maxsize" => self.audit_log_maxsize = number(value)?,
                "max-requests-inflight" => self.max_requests_inflight = number(value)? as usize,
                "max-mutating-requests-inflight" => {
                    self.max_mutating_requests_inflight = number(value)? as usize
                }
                "anonymous-auth" => {
                    self.anonymous_auth = value
                        .parse()
                        .map_err(|_| format!("invalid argument {value:?} for \"--{name}\" flag"))?
                }
                "authorization-mode" => self.authorization_mode = value.to_string(),
                "token-auth-file" => self.token_auth_file = Some(value.into()),
                "request-timeout" => self.request_timeout = parse_duration(value)?,
                _ => return Err(format!("unknown flag: --{name}")),
            }
        }
        Ok(())
    }
}

/// Parses a Go duration (`1m0s`, `90s`, `500ms`, `1h`), as kube-apiserver's flags take them.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}: expected e.g. 60s, 1m30s or 500ms");
    match s {
        "" => return Err(bad()),
        "0" => return Ok(Duration::ZERO),
        _ => {}
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        total += Duration::try_from_secs_f64(value * seconds).map_err(|_| bad())?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_like_kube_apiserver_flags() {
        assert_eq!(parse_duration("1m0s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "60", "1x", "s", "-1s", "1m-3s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }
}
