//! From a pod's container spec to the runtime's [`ContainerConfig`] pieces, as upstream's
//! `kubelet_pods.go` and `kuberuntime_container.go` do: argv from command/args and the
//! image, environment (every `valueFrom`, `envFrom`, `$(VAR)` expansion, service links),
//! resources and security context as [`LinuxConfig`], and the pod's `/etc/hosts` and
//! `/etc/resolv.conf`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use k1s_apimachinery::Quantity;
use k8s_openapi::api::core::v1::{ConfigMap, Container as SpecContainer, Pod, Secret, Service};
use kube::api::{Api, ListParams};

use crate::runtime::{Image, LinuxConfig};

/// Why a container's config cannot be built (`CreateContainerConfigError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError(pub String);

/// Node facts some env values fall back to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeFacts {
    pub node_ip: IpAddr,
    /// Allocatable CPU in millicores.
    pub cpu_millis: i64,
    /// Allocatable memory in bytes.
    pub memory_bytes: i64,
}

/// Upstream's `$(VAR)` expansion: defined names are replaced, `$$` escapes a `$`,
/// anything else is left as written.
pub(crate) fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let bytes: Vec<char> = input.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == '$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                '$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                '(' => {
                    if let Some(close) = bytes[i + 2..].iter().position(|c| *c == ')') {
                        let name: String = bytes[i + 2..i + 2 + close].iter().collect();
                        match vars.get(&name) {
                            Some(v) => out.push_str(v),
                            None => {
                                out.push_str("$(");
                                out.push_str(&name);
                                out.push(')');
                            }
                        }
                        i += close + 3;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The container's argv: `command`/`args` (expanded) over the image's entrypoint and cmd.
pub(crate) fn argv(c: &SpecContainer, image: &Image, env: &HashMap<String, String>) -> Vec<String> {
    let ex = |v: &Vec<String>| v.iter().map(|s| expand(s, env)).collect::<Vec<_>>();
    let command = c.command.as_ref().filter(|v| !v.is_empty());
    let args = c.args.as_ref().filter(|v| !v.is_empty());
    match (command, args) {
        (Some(cmd), Some(args)) => [ex(cmd), ex(args)].concat(),
        (Some(cmd), None) => ex(cmd),
        (None, Some(args)) => [image.config.entrypoint.clone(), ex(args)].concat(),
        (None, None) => [image.config.entrypoint.clone(), image.config.cmd.clone()].concat(),
    }
}

/// Sets `name` in an ordered env list, replacing it in place when present.
fn set(list: &mut Vec<(String, String)>, name: &str, value: String) {
    match list.iter_mut().find(|(k, _)| k == name) {
        Some(entry) => entry.1 = value,
        None => list.push((name.to_string(), value)),
    }
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_graphic() && c != '=')
}

/// The env vars a service named `name` gives pods (`<NAME>_SERVICE_HOST`, docker links).
fn service_env(svc: &Service, out: &mut BTreeMap<String, String>) {
    let Some(spec) = svc.spec.as_ref() else {
        return;
    };
    let Some(ip) = spec
        .cluster_ip
        .as_deref()
        .filter(|ip| !ip.is_empty() && *ip != "None")
    else {
        return;
    };
    let name = svc
        .metadata
        .name
        .clone()
        .unwrap_or_default()
        .to_uppercase()
        .replace('-', "_");
    let ports = spec.ports.clone().unwrap_or_default();
    let Some(first) = ports.first() else {
        return;
    };
    out.insert(format!("{name}_SERVICE_HOST"), ip.to_string());
    out.insert(format!("{name}_SERVICE_PORT"), first.port.to_string());
    for p in &ports {
        if let Some(pn) = p.name.as_deref().filter(|n| !n.is_empty()) {
            out.insert(
                format!(
                    "{name}_SERVICE_PORT_{}",
                    pn.to_uppercase().replace('-', "_")
                ),
                p.port.to_string(),
            );
        }
    }
    let proto = |p: &k8s_openapi::api::core::v1::ServicePort| {
        p.protocol.clone().unwrap_or_else(|| "TCP".into())
    };
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    out.insert(
        format!("{name}_PORT"),
        format!("{}://{host}:{}", proto(first).to_lowercase(), first.port),
    );
    for p in &ports {
        let pr = proto(p);
        let prefix = format!("{name}_PORT_{}_{}", p.port, pr.to_uppercase());
        out.insert(
            prefix.clone(),
            format!("{}://{host}:{}", pr.to_lowercase(), p.port),
        );
        out.insert(format!("{prefix}_PROTO"), pr.to_lowercase());
        out.insert(format!("{prefix}_PORT"), p.port.to_string());
        out.insert(format!("{prefix}_ADDR"), ip.to_string());
    }
}

/// The service env vars a pod of `ns` gets: its namespace's services (with
/// `enableServiceLinks`) and the API server's `kubernetes` service always.
async fn services_env(
    client: &kube::Client,
    ns: &str,
    links: bool,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    let err = |e: kube::Error| ConfigError(format!("failed to list services: {e}"));
    if links {
        let api: Api<Service> = Api::namespaced(client.clone(), ns);
        for svc in api.list(&ListParams::default()).await.map_err(err)? {
            service_env(&svc, &mut out);
        }
    }
    if ns != "default" || !links {
        let api: Api<Service> = Api::namespaced(client.clone(), "default");
        if let Some(svc) = api.get_opt("kubernetes").await.map_err(err)? {
            service_env(&svc, &mut out);
        }
    }
    Ok(out)
}

pub(crate) fn field_value(
    pod: &Pod,
    path: &str,
    facts: &NodeFacts,
    pod_ips: &[IpAddr],
) -> Result<String, ConfigError> {
    let meta = &pod.metadata;
    let key_of = |p: &str, prefix: &str| {
        p.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.strip_suffix(']'))
            .map(|k| k.trim_matches(|c| c == '\'' || c == '"').to_string())
    };
    let ips = || pod_ips.iter().map(ToString::to_string).collect::<Vec<_>>();
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => facts.node_ip.to_string(),
        "status.podIP" => ips().into_iter().next().unwrap_or_default(),
        "status.podIPs" => ips().join(","),
        p if p.starts_with("metadata.labels[") => {
            let k = key_of(p, "metadata.labels").unwrap_or_default();
            meta.labels
                .as_ref()
                .and_then(|l| l.get(&k))
                .cloned()
                .unwrap_or_default()
        }
        p if p.starts_with("metadata.annotations[") => {
            let k = key_of(p, "metadata.annotations").unwrap_or_default();
            meta.annotations
                .as_ref()
                .and_then(|l| l.get(&k))
                .cloned()
                .unwrap_or_default()
        }
        other => {
            return Err(ConfigError(format!("unsupported fieldPath: {other}")));
        }
    })
}

/// Upstream's `ExtractContainerResourceValue`, node allocatable standing in for an
/// unset limit.
pub(crate) fn resource_value(
    c: &SpecContainer,
    resource: &str,
    divisor: Option<&str>,
    facts: &NodeFacts,
) -> Result<String, ConfigError> {
    let res = c.resources.as_ref();
    let get = |kind: &str, name: &str| {
        let map = if kind == "limits" {
            res.and_then(|r| r.limits.as_ref())
        } else {
            res.and_then(|r| r.requests.as_ref())
        };
        map.and_then(|m| m.get(name))
            .and_then(|q| Quantity::parse(&q.0).ok())
    };
    let divisor = divisor
        .filter(|d| !d.is_empty())
        .and_then(|d| Quantity::parse(d).ok());
    let Some((kind, name)) = resource.split_once('.') else {
        return Err(ConfigError(format!(
            "unsupported container resource : {resource}"
        )));
    };
    let value = get(kind, name);
    match name {
        "cpu" => {
            let millis = match value {
                Some(q) => q.milli_value(),
                None if kind == "limits" => facts.cpu_millis,
                None => 0,
            };
            let d = divisor
                .map(|d| d.milli_value())
                .filter(|d| *d > 0)
                .unwrap_or(1000);
            Ok(((millis + d - 1) / d).to_string())
        }
        "memory" | "ephemeral-storage" => {
            let bytes = match value {
                Some(q) => q.value(),
                None if kind == "limits" && name == "memory" => facts.memory_bytes,
                None => 0,
            };
            let d = divisor.map(|d| d.value()).filter(|d| *d > 0).unwrap_or(1);
            Ok(((bytes + d - 1) / d).to_string())
        }
        other => match value {
            Some(q) => Ok(q.value().to_string()),
            None => Err(ConfigError(format!(
                "unsupported container resource : {kind}.{other}"
            ))),
        },
    }
}

/// Reads ConfigMaps and Secrets of the pod's namespace once per build.
pub(crate) struct Sources {
    client: kube::Client,
    ns: String,
    config_maps: HashMap<String, Option<ConfigMap>>,
    secrets: HashMap<String, Option<Secret>>,
}

impl Sources {
    /// Sources of namespace `ns`.
    pub(crate) fn new(client: kube::Client, ns: &str) -> Self {
        Self {
            client,
            ns: ns.to_string(),
            config_maps: HashMap::new(),
            secrets: HashMap::new(),
        }
    }

    /// The ConfigMap `name`, `None` when absent.
    pub(crate) async fn config_map(
        &mut self,
        name: &str,
    ) -> Result<Option<ConfigMap>, ConfigError> {
        if let Some(c) = self.config_maps.get(name) {
            return Ok(c.clone());
        }
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.ns);
        let cm = api
            .get_opt(name)
            .await
            .map_err(|e| ConfigError(format!("failed to get configmap {:?}: {e}", name)))?;
        self.config_maps.insert(name.to_string(), cm.clone());
        Ok(cm)
    }

    /// The Secret `name`, `None` when absent.
    pub(crate) async fn secret(&mut self, name: &str) -> Result<Option<Secret>, ConfigError> {
        if let Some(s) = self.secrets.get(name) {
            return Ok(s.clone());
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
        let s = api
            .get_opt(name)
            .await
            .map_err(|e| ConfigError(format!("failed to get secret {:?}: {e}", name)))?;
        self.secrets.insert(name.to_string(), s.clone());
        Ok(s)
    }
}

/// String data of a ConfigMap (binary data as lossy text).
pub(crate) fn config_map_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    out
}

/// Data of a Secret.
pub(crate) fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

/// The container's environment as upstream's `makeEnvironmentVariables` builds it, merged
/// over the image's `Env` and `HOSTNAME` as containerd does.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn environment(
    client: &kube::Client,
    sources: &mut Sources,
    pod: &Pod,
    c: &SpecContainer,
    image: &Image,
    hostname: &str,
    facts: &NodeFacts,
    pod_ips: &[IpAddr],
) -> Result<Vec<(String, String)>, ConfigError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let service_vars = services_env(client, &ns, links).await?;
    let mut vars: HashMap<String, String> = service_vars.clone().into_iter().collect();
    let mut list: Vec<(String, String)> = Vec::new();

    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = if let Some(r) = &from.config_map_ref {
            let optional = r.optional.unwrap_or(false);
            match sources.config_map(&r.name).await? {
                Some(cm) => config_map_data(&cm),
                None if optional => continue,
                None => return Err(ConfigError(format!("configmap \"{}\" not found", r.name))),
            }
        } else if let Some(r) = &from.secret_ref {
            let optional = r.optional.unwrap_or(false);
            match sources.secret(&r.name).await? {
                Some(s) => secret_data(&s),
                None if optional => continue,
                None => return Err(ConfigError(format!("secret \"{}\" not found", r.name))),
            }
        } else {
            continue;
        };
        for (k, v) in data {
            let name = format!("{prefix}{k}");
            if !is_env_name(&name) {
                continue;
            }
            let v = String::from_utf8_lossy(&v).into_owned();
            vars.insert(name.clone(), v.clone());
            set(&mut list, &name, v);
        }
    }

    for e in c.env.iter().flatten() {
        let value = if let Some(from) = &e.value_from {
            if let Some(f) = &from.field_ref {
                Some(field_value(pod, &f.field_path, facts, pod_ips)?)
            } else if let Some(r) = &from.resource_field_ref {
                let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                    Some(name) => pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.containers.iter().find(|c| c.name == name))
                        .unwrap_or(c),
                    None => c,
                };
                Some(resource_value(
                    target,
                    &r.resource,
                    r.divisor.as_ref().map(|d| d.0.as_str()),
                    facts,
                )?)
            } else if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional.unwrap_or(false);
                match sources.config_map(&r.name).await? {
                    Some(cm) => match config_map_data(&cm).get(&r.key) {
                        Some(v) => Some(String::from_utf8_lossy(v).into_owned()),
                        None if optional => None,
                        None => {
                            return Err(ConfigError(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                r.key, r.name
                            )));
                        }
                    },
                    None if optional => None,
                    None => {
                        return Err(ConfigError(format!("configmap \"{}\" not found", r.name)));
                    }
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional.unwrap_or(false);
                match sources.secret(&r.name).await? {
                    Some(s) => match secret_data(&s).get(&r.key) {
                        Some(v) => Some(String::from_utf8_lossy(v).into_owned()),
                        None if optional => None,
                        None => {
                            return Err(ConfigError(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            )));
                        }
                    },
                    None if optional => None,
                    None => {
                        return Err(ConfigError(format!("secret \"{}\" not found", r.name)));
                    }
                }
            } else {
                None
            }
        } else {
            Some(expand(e.value.as_deref().unwrap_or_default(), &vars))
        };
        if let Some(v) = value {
            vars.insert(e.name.clone(), v.clone());
            set(&mut list, &e.name, v);
        }
    }
    // Service vars the container did not define itself.
    for (k, v) in service_vars {
        if !list.iter().any(|(n, _)| *n == k) {
            list.push((k, v));
        }
    }

    let mut env: Vec<(String, String)> = Vec::new();
    for kv in &image.config.env {
        if let Some((k, v)) = kv.split_once('=') {
            set(&mut env, k, v.to_string());
        }
    }
    set(&mut env, "HOSTNAME", hostname.to_string());
    for (k, v) in list {
        set(&mut env, &k, v);
    }
    Ok(env)
}

/// The name→value map of an env list, for `$(VAR)` expansion in command and args.
pub(crate) fn env_map(env: &[(String, String)]) -> HashMap<String, String> {
    env.iter().cloned().collect()
}

fn quantity(
    map: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    name: &str,
) -> Option<Quantity> {
    map.and_then(|m| m.get(name))
        .and_then(|q| Quantity::parse(&q.0).ok())
}

/// Resources and security context of a container, with the pod's values folded in.
pub(crate) fn linux_config(
    pod: &Pod,
    c: &SpecContainer,
    qos: &str,
    memory_capacity: i64,
) -> LinuxConfig {
    let res = c.resources.as_ref();
    let requests = res.and_then(|r| r.requests.as_ref());
    let limits = res.and_then(|r| r.limits.as_ref());
    let cpu_request = quantity(requests, "cpu").or_else(|| quantity(limits, "cpu"));
    let cpu_limit = quantity(limits, "cpu");
    let mem_request = quantity(requests, "memory").or_else(|| quantity(limits, "memory"));
    let mem_limit = quantity(limits, "memory");
    let mut l = LinuxConfig::default();
    // Upstream's MilliCPUToShares: at least 2.
    let shares = cpu_request
        .map(|q| (q.milli_value() * 1024 / 1000).max(2))
        .unwrap_or(2);
    l.cpu_shares = Some(u64::try_from(shares).unwrap_or(2));
    if let Some(limit) = cpu_limit {
        l.cpu_period = Some(100_000);
        l.cpu_quota = Some((limit.milli_value() * 100_000 / 1000).max(1000));
    }
    l.memory_limit = mem_limit.map(|q| q.value()).filter(|v| *v > 0);
    let critical = pod
        .spec
        .as_ref()
        .and_then(|s| s.priority)
        .is_some_and(|p| p >= 2_000_000_000);
    l.oom_score_adj = Some(if critical {
        -997
    } else {
        match qos {
            "Guaranteed" => -997,
            "BestEffort" => 1000,
            _ => {
                let req = mem_request.map(|q| q.value()).unwrap_or(0);
                let adj = if memory_capacity > 0 {
                    1000 - (1000 * req) / memory_capacity
                } else {
                    999
                };
                i32::try_from(adj.clamp(2, 999)).unwrap_or(999)
            }
        }
    });
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let sc = c.security_context.as_ref();
    l.run_as_user = sc
        .and_then(|s| s.run_as_user)
        .or_else(|| psc.and_then(|p| p.run_as_user));
    l.run_as_group = sc
        .and_then(|s| s.run_as_group)
        .or_else(|| psc.and_then(|p| p.run_as_group));
    let mut groups: Vec<i64> = Vec::new();
    if let Some(fs) = psc.and_then(|p| p.fs_group) {
        groups.push(fs);
    }
    groups.extend(
        psc.and_then(|p| p.supplemental_groups.clone())
            .unwrap_or_default(),
    );
    l.supplemental_groups = groups;
    l.privileged = sc.and_then(|s| s.privileged).unwrap_or(false);
    if let Some(caps) = sc.and_then(|s| s.capabilities.as_ref()) {
        let norm = |v: &Option<Vec<String>>| {
            v.iter()
                .flatten()
                .map(|c| {
                    if c == "ALL" || c.starts_with("CAP_") {
                        c.clone()
                    } else {
                        format!("CAP_{c}")
                    }
                })
                .collect::<Vec<_>>()
        };
        l.capabilities_add = norm(&caps.add);
        l.capabilities_drop = norm(&caps.drop);
    }
    l.readonly_rootfs = sc
        .and_then(|s| s.read_only_root_filesystem)
        .unwrap_or(false);
    l.no_new_privileges = sc.and_then(|s| s.allow_privilege_escalation) == Some(false);
    let seccomp = sc
        .and_then(|s| s.seccomp_profile.as_ref())
        .or_else(|| psc.and_then(|p| p.seccomp_profile.as_ref()));
    l.seccomp_runtime_default = seccomp.is_some_and(|p| p.type_ == "RuntimeDefault");
    l
}

/// Upstream's check of `runAsNonRoot` against the user the container would run as.
pub(crate) fn verify_non_root(
    pod: &Pod,
    c: &SpecContainer,
    image: &Image,
    linux: &LinuxConfig,
) -> Result<(), ConfigError> {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let non_root = c
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_non_root)
        .or_else(|| psc.and_then(|p| p.run_as_non_root))
        .unwrap_or(false);
    if !non_root {
        return Ok(());
    }
    let who = format!(
        "(pod: \"{}_{}({})\", container: {})",
        pod.metadata.name.clone().unwrap_or_default(),
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.uid.clone().unwrap_or_default(),
        c.name
    );
    if let Some(uid) = linux.run_as_user {
        if uid == 0 {
            return Err(ConfigError(format!(
                "container's runAsUser breaks non-root policy {who}"
            )));
        }
        return Ok(());
    }
    let user = image.config.user.split(':').next().unwrap_or_default();
    match user.parse::<i64>() {
        Ok(0) => Err(ConfigError(format!(
            "container has runAsNonRoot and image will run as root {who}"
        ))),
        Ok(_) => Ok(()),
        Err(_) if user.is_empty() || user == "root" => Err(ConfigError(format!(
            "container has runAsNonRoot and image will run as root {who}"
        ))),
        Err(_) => Err(ConfigError(format!(
            "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root {who}"
        ))),
    }
}

/// The pod's hostname and, with a subdomain, its fully qualified name.
pub(crate) fn hostname(pod: &Pod, cluster_domain: &str) -> (String, Option<String>) {
    let spec = pod.spec.as_ref();
    let mut host = spec
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    host.truncate(63);
    let host = host.trim_end_matches(['-', '.']).to_string();
    let fqdn = spec
        .and_then(|s| s.subdomain.clone())
        .filter(|s| !s.is_empty())
        .map(|sub| {
            format!(
                "{host}.{sub}.{}.svc.{cluster_domain}",
                pod.metadata.namespace.clone().unwrap_or_default()
            )
        });
    (host, fqdn)
}

/// Upstream's managed `/etc/hosts` of a pod with its own network.
pub(crate) fn hosts_file(pod: &Pod, pod_ips: &[IpAddr], host: &str, fqdn: Option<&str>) -> String {
    let mut s = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    for ip in pod_ips {
        match fqdn {
            Some(f) => s.push_str(&format!("{ip}\t{f}\t{host}\n")),
            None => s.push_str(&format!("{ip}\t{host}\n")),
        }
    }
    append_aliases(pod, &mut s);
    s
}

/// `/etc/hosts` of a `hostNetwork` pod: the node's own, under upstream's header.
pub(crate) fn host_network_hosts_file(pod: &Pod, node_hosts: &str) -> String {
    let mut s = String::from("# Kubernetes-managed hosts file (host network).\n");
    s.push_str(node_hosts);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    append_aliases(pod, &mut s);
    s
}

fn append_aliases(pod: &Pod, s: &mut String) {
    let aliases = pod
        .spec
        .as_ref()
        .and_then(|sp| sp.host_aliases.clone())
        .unwrap_or_default();
    if aliases.is_empty() {
        return;
    }
    s.push_str("\n# Entries added by HostAliases.\n");
    for a in aliases {
        let names = a.hostnames.unwrap_or_default().join("\t");
        s.push_str(&format!("{}\t{names}\n", a.ip));
    }
}

/// The pod's `/etc/resolv.conf` per `dnsPolicy` and `dnsConfig`, from the node's own
/// (`host`) and the cluster DNS; `None` leaves the image's file (no cluster DNS known for
/// `ClusterFirst`, as upstream falls back to `Default`).
pub(crate) fn resolv_conf(
    pod: &Pod,
    host: &str,
    cluster_dns: &[IpAddr],
    cluster_domain: &str,
) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let mut policy = spec
        .dns_policy
        .clone()
        .unwrap_or_else(|| "ClusterFirst".into());
    if policy == "ClusterFirstWithHostNet" {
        policy = "ClusterFirst".into();
    } else if policy == "ClusterFirst" && host_network {
        policy = "Default".into();
    }
    if policy == "ClusterFirst" && cluster_dns.is_empty() {
        policy = "Default".into();
    }
    let mut servers: Vec<String> = Vec::new();
    let mut searches: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut host_servers = Vec::new();
    let mut host_searches = Vec::new();
    let mut host_options = Vec::new();
    for line in host.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => host_servers.extend(f.map(str::to_string)),
            Some("search") | Some("domain") => host_searches.extend(f.map(str::to_string)),
            Some("options") => host_options.extend(f.map(str::to_string)),
            _ => {}
        }
    }
    match policy.as_str() {
        "ClusterFirst" => {
            servers = cluster_dns.iter().map(ToString::to_string).collect();
            searches = vec![
                format!("{ns}.svc.{cluster_domain}"),
                format!("svc.{cluster_domain}"),
                cluster_domain.to_string(),
            ];
            searches.extend(host_searches.iter().filter(|s| *s != ".").cloned());
            options = vec!["ndots:5".into()];
        }
        "Default" => {
            servers = host_servers;
            searches = host_searches;
            options = host_options;
        }
        _ => {}
    }
    if let Some(cfg) = &spec.dns_config {
        for s in cfg.nameservers.iter().flatten() {
            if !servers.contains(s) {
                servers.push(s.clone());
            }
        }
        for s in cfg.searches.iter().flatten() {
            if !searches.contains(s) {
                searches.push(s.clone());
            }
        }
        for o in cfg.options.iter().flatten() {
            let opt = match &o.value {
                Some(v) => format!("{}:{v}", o.name.clone().unwrap_or_default()),
                None => o.name.clone().unwrap_or_default(),
            };
            let key = opt.split(':').next().unwrap_or_default().to_string();
            options.retain(|e| e.split(':').next() != Some(&key));
            options.push(opt);
        }
    }
    // Upstream keeps at most 3 nameservers and 32 search domains.
    servers.truncate(3);
    searches.truncate(32);
    let mut out = String::new();
    if !searches.is_empty() {
        out.push_str(&format!("search {}\n", searches.join(" ")));
    }
    for s in &servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn expansion_follows_upstream() {
        let vars: HashMap<String, String> =
            [("A".to_string(), "x".to_string())].into_iter().collect();
        assert_eq!(expand("$(A)-$(B)", &vars), "x-$(B)");
        assert_eq!(expand("$$(A)", &vars), "$(A)");
        assert_eq!(expand("a$b$(A", &vars), "a$b$(A");
        assert_eq!(expand("$(A)$(A)", &vars), "xx");
    }

    #[test]
    fn argv_merges_command_args_and_image() {
        let image = Image {
            id: "sha256:1".into(),
            repo_tags: vec![],
            repo_digests: vec![],
            size: 0,
            config: crate::runtime::ImageConfig {
                entrypoint: vec!["/docker-entrypoint.sh".into()],
                cmd: vec!["nginx".into(), "-g".into()],
                ..Default::default()
            },
        };
        let env = HashMap::from([("N".to_string(), "5".to_string())]);
        let c = |v: serde_json::Value| -> SpecContainer { serde_json::from_value(v).expect("c") };
        assert_eq!(
            argv(&c(json!({"name": "a"})), &image, &env),
            ["/docker-entrypoint.sh", "nginx", "-g"]
        );
        assert_eq!(
            argv(
                &c(json!({"name": "a", "args": ["sleep", "$(N)"]})),
                &image,
                &env
            ),
            ["/docker-entrypoint.sh", "sleep", "5"]
        );
        assert_eq!(
            argv(
                &c(json!({"name": "a", "command": ["sh"], "args": ["-c", "x"]})),
                &image,
                &env
            ),
            ["sh", "-c", "x"]
        );
    }

    #[test]
    fn cluster_first_resolv_conf_names_the_cluster_dns() {
        let p =
            pod(json!({"metadata": {"name": "a", "namespace": "web"}, "spec": {"containers": []}}));
        let host = "nameserver 1.1.1.1\nsearch corp.example\n";
        let dns: Vec<IpAddr> = vec!["10.43.0.10".parse().expect("ip")];
        assert_eq!(
            resolv_conf(&p, host, &dns, "cluster.local"),
            "search web.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.43.0.10\noptions ndots:5\n"
        );
        let p = pod(json!({"metadata": {"name": "a", "namespace": "web"},
            "spec": {"containers": [], "dnsPolicy": "Default"}}));
        assert_eq!(
            resolv_conf(&p, host, &dns, "cluster.local"),
            "search corp.example\nnameserver 1.1.1.1\n"
        );
        let p = pod(json!({"metadata": {"name": "a", "namespace": "web"},
            "spec": {"containers": [], "dnsPolicy": "None",
                     "dnsConfig": {"nameservers": ["9.9.9.9"], "options": [{"name": "ndots", "value": "2"}]}}}));
        assert_eq!(
            resolv_conf(&p, host, &dns, "cluster.local"),
            "nameserver 9.9.9.9\noptions ndots:2\n"
        );
    }

    #[test]
    fn hosts_file_names_the_pod() {
        let p = pod(
            json!({"metadata": {"name": "web-0", "namespace": "default"},
            "spec": {"containers": [], "hostname": "web-0", "subdomain": "web",
                     "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["foo", "bar"]}]}}),
        );
        let (host, fqdn) = hostname(&p, "cluster.local");
        assert_eq!(fqdn.as_deref(), Some("web-0.web.default.svc.cluster.local"));
        let s = hosts_file(
            &p,
            &["10.42.0.5".parse().expect("ip")],
            &host,
            fqdn.as_deref(),
        );
        assert!(s.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(s.contains("10.42.0.5\tweb-0.web.default.svc.cluster.local\tweb-0\n"));
        assert!(s.ends_with("# Entries added by HostAliases.\n1.2.3.4\tfoo\tbar\n"));
    }

    #[test]
    fn resources_become_cgroup_settings_by_qos() {
        let p = pod(json!({"metadata": {"name": "a"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"},
                                        "limits": {"cpu": "500m", "memory": "128Mi"}}}]}}));
        let c = &p.spec.as_ref().expect("spec").containers[0];
        let l = linux_config(&p, c, "Burstable", 1 << 30);
        assert_eq!(l.cpu_shares, Some(256));
        assert_eq!(l.cpu_quota, Some(50_000));
        assert_eq!(l.cpu_period, Some(100_000));
        assert_eq!(l.memory_limit, Some(128 << 20));
        assert_eq!(l.oom_score_adj, Some(938));
        assert_eq!(crate::pods::status::qos_class(&p), "Burstable");
        let facts = NodeFacts {
            node_ip: "10.0.0.1".parse().expect("ip"),
            cpu_millis: 2000,
            memory_bytes: 1 << 30,
        };
        assert_eq!(
            resource_value(c, "limits.cpu", None, &facts),
            Ok("1".into())
        );
        assert_eq!(
            resource_value(c, "requests.cpu", Some("1m"), &facts),
            Ok("250".into())
        );
        assert_eq!(
            resource_value(c, "limits.memory", Some("1Mi"), &facts),
            Ok("128".into())
        );
    }
}
