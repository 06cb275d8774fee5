//! The watch cache of Services and EndpointSlices, and the records it answers: the
//! semantics of CoreDNS's `kubernetes` plugin (`pods insecure`, no wildcards).
//!
//! The index holds the objects the watches delivered (one copy, shared by `Arc`) and the
//! few maps that make a query a hash lookup: slices by Service, Services and slices by IP
//! for PTR, Services per namespace.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label naming an EndpointSlice's Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The cluster zone and how its answers look.
#[derive(Debug, Clone)]
pub struct Zone {
    /// The cluster domain, fully qualified and lower case (`cluster.local.`).
    pub name: Name,
    /// TTL of every answer from the cluster zone (CoreDNS's `ttl`, 5 s in k3s).
    pub ttl: u32,
    /// The cluster DNS Service IP: the address of `ns.dns.<zone>`, the zone's name server.
    pub dns_ip: Option<IpAddr>,
}

impl Zone {
    /// A zone for `domain` (`cluster.local`) with the given TTL.
    pub fn new(domain: &str, ttl: u32, dns_ip: Option<IpAddr>) -> Result<Self, crate::Error> {
        let mut name = Name::from_ascii(domain.trim_end_matches('.'))
            .map_err(|e| crate::Error::Domain(domain.to_string(), e.to_string()))?
            .to_lowercase();
        name.set_fqdn(true);
        Ok(Self { name, ttl, dns_ip })
    }

    /// `<labels…>.<zone>`.
    fn child(&self, labels: &[&str]) -> Option<Name> {
        Name::from_labels(labels.iter().map(|l| l.as_bytes()))
            .ok()?
            .append_domain(&self.name)
            .ok()
    }

    /// The zone's SOA record, as CoreDNS writes it (serial: the time of the last change).
    pub fn soa(&self, serial: u32) -> Record {
        let ns = self
            .child(&["ns", "dns"])
            .unwrap_or_else(|| self.name.clone());
        let mbox = self
            .child(&["hostmaster"])
            .unwrap_or_else(|| self.name.clone());
        Record::from_rdata(
            self.name.clone(),
            self.ttl,
            RData::SOA(SOA::new(ns, mbox, serial, 7200, 1800, 86400, self.ttl)),
        )
    }
}

/// What a name in the cluster zone answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Records (answer section) and glue (additional section).
    Records {
        /// The answer section.
        answers: Vec<Record>,
        /// The additional section (addresses of SRV targets, of the name server).
        additionals: Vec<Record>,
    },
    /// The name exists, without records of the type asked (NOERROR with the SOA).
    NoData,
    /// The name does not exist (NXDOMAIN with the SOA).
    NxDomain,
}

/// `(namespace, name)`.
type Key = (String, String);

/// The Services and EndpointSlices the watches delivered, indexed for queries.
#[derive(Debug, Default)]
pub struct Index {
    services: HashMap<Key, Arc<Service>>,
    slices: HashMap<Key, Arc<EndpointSlice>>,
    /// Slice names by their Service's key.
    by_service: HashMap<Key, BTreeSet<String>>,
    /// Services by cluster IP, for PTR.
    service_ips: HashMap<IpAddr, BTreeSet<Key>>,
    /// Slices by endpoint address, for PTR.
    slice_ips: HashMap<IpAddr, BTreeSet<Key>>,
    /// How many Services each namespace has: a namespace with none is unknown here.
    namespaces: HashMap<String, usize>,
    /// Unix time of the last change: the SOA serial.
    serial: u32,
    /// Counts every change, so answers cached at one generation are known stale at the
    /// next (the serial only moves once a second).
    generation: u64,
    services_synced: bool,
    slices_synced: bool,
}

fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<Key> {
    Some((meta.namespace.clone()?, meta.name.clone()?))
}

fn cluster_ips(svc: &Service) -> Vec<IpAddr> {
    let Some(spec) = &svc.spec else {
        return Vec::new();
    };
    let mut out: Vec<IpAddr> = spec
        .cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .filter_map(|ip| ip.parse().ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn is_headless(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| ip == "None")
}

fn external_name(svc: &Service) -> Option<&str> {
    let spec = svc.spec.as_ref()?;
    (spec.type_.as_deref() == Some("ExternalName"))
        .then_some(spec.external_name.as_deref())
        .flatten()
        .filter(|n| !n.is_empty())
}

fn slice_ips(slice: &EndpointSlice) -> Vec<IpAddr> {
    slice
        .endpoints
        .iter()
        .flat_map(|e| e.addresses.iter())
        .filter_map(|a| a.parse().ok())
        .collect()
}

fn slice_service(slice: &EndpointSlice) -> Option<Key> {
    let ns = slice.metadata.namespace.clone()?;
    let svc = slice
        .metadata
        .labels
        .as_ref()?
        .get(SERVICE_NAME_LABEL)?
        .clone();
    Some((ns, svc))
}

/// The label an endpoint answers to: its hostname, or its address with dashes
/// (`10-42-0-5`, `fd00--5`).
fn endpoint_hostname(hostname: Option<&str>, ip: &IpAddr) -> String {
    match hostname.filter(|h| !h.is_empty()) {
        Some(h) => h.to_ascii_lowercase(),
        None => ip.to_string().replace(['.', ':'], "-"),
    }
}

/// CoreDNS's port/protocol match: an empty request part matches anything.
fn matches(want: Option<&str>, have: &str) -> bool {
    want.is_none_or(|w| w.eq_ignore_ascii_case(have))
}

/// One answerable item: where it points, its port, the SRV target name.
#[derive(Debug)]
struct Entry {
    host: Host,
    port: u16,
    target: Name,
}

#[derive(Debug)]
enum Host {
    Ip(IpAddr),
    Name(Name),
}

/// A query in the cluster zone, parsed as CoreDNS does.
#[derive(Debug, PartialEq, Eq)]
enum Request<'a> {
    Apex,
    Version,
    NameServer,
    /// `svc.<zone>`, `pod.<zone>`: nodes of the tree without records.
    Empty,
    /// `<ns>.svc.<zone>`, `<ns>.pod.<zone>`.
    Namespace(&'a str),
    Service {
        port: Option<&'a str>,
        protocol: Option<&'a str>,
        endpoint: Option<&'a str>,
        service: &'a str,
        namespace: &'a str,
    },
    Pod {
        name: &'a str,
        namespace: &'a str,
    },
    Invalid,
}

fn strip_underscore(s: &str) -> &str {
    s.strip_prefix('_').unwrap_or(s)
}

fn parse(segs: &[String]) -> Request<'_> {
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        [] => Request::Apex,
        ["dns-version"] => Request::Version,
        ["ns", "dns"] => Request::NameServer,
        ["svc" | "pod"] => Request::Empty,
        [ns, "svc" | "pod"] => Request::Namespace(ns),
        [name, ns, "pod"] => Request::Pod {
            name,
            namespace: ns,
        },
        [svc, ns, "svc"] => Request::Service {
            port: None,
            protocol: None,
            endpoint: None,
            service: svc,
            namespace: ns,
        },
        [ep, svc, ns, "svc"] => Request::Service {
            port: None,
            protocol: None,
            endpoint: Some(ep),
            service: svc,
            namespace: ns,
        },
        [port, proto, svc, ns, "svc"] => Request::Service {
            port: Some(strip_underscore(port)),
            protocol: Some(strip_underscore(proto)),
            endpoint: None,
            service: svc,
            namespace: ns,
        },
        _ => Request::Invalid,
    }
}

/// The IP a pod name (`10-42-0-5`, `fd00--5`) spells, as CoreDNS's insecure pod mode reads it.
fn pod_ip(name: &str) -> Option<IpAddr> {
    if name.matches('-').count() == 3 && !name.contains("--") {
        name.replace('-', ".")
            .parse::<Ipv4Addr>()
            .ok()
            .map(IpAddr::V4)
    } else {
        name.replace('-', ":")
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6)
    }
}

fn address_record(name: Name, ttl: u32, ip: IpAddr) -> Record {
    match ip {
        IpAddr::V4(v4) => Record::from_rdata(name, ttl, RData::A(A(v4))),
        IpAddr::V6(v6) => Record::from_rdata(name, ttl, RData::AAAA(AAAA(v6))),
    }
}

fn now_serial() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

impl Index {
    /// An empty index, not yet synced.
    pub fn new() -> Self {
        Self {
            serial: now_serial(),
            ..Self::default()
        }
    }

    /// Whether both watches have delivered their initial lists (until then a name not
    /// found answers SERVFAIL, not NXDOMAIN, as CoreDNS does).
    pub fn synced(&self) -> bool {
        self.services_synced && self.slices_synced
    }

    /// The SOA serial: the time of the last change.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Moves with every change of the index.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn touch(&mut self) {
        self.serial = now_serial().max(self.serial);
        self.generation += 1;
    }

    /// Adds or replaces a Service.
    pub fn apply_service(&mut self, svc: Service) {
        let Some(key) = key_of(&svc.metadata) else {
            return;
        };
        self.remove_service(&key);
        for ip in cluster_ips(&svc) {
            self.service_ips.entry(ip).or_default().insert(key.clone());
        }
        *self.namespaces.entry(key.0.clone()).or_default() += 1;
        self.services.insert(key, Arc::new(svc));
        self.touch();
    }

    /// Removes a Service.
    pub fn delete_service(&mut self, svc: &Service) {
        if let Some(key) = key_of(&svc.metadata) {
            self.remove_service(&key);
            self.touch();
        }
    }

    fn remove_service(&mut self, key: &Key) {
        let Some(old) = self.services.remove(key) else {
            return;
        };
        for ip in cluster_ips(&old) {
            if let Some(set) = self.service_ips.get_mut(&ip) {
                set.remove(key);
                if set.is_empty() {
                    self.service_ips.remove(&ip);
                }
            }
        }
        if let Some(n) = self.namespaces.get_mut(&key.0) {
            *n -= 1;
            if *n == 0 {
                self.namespaces.remove(&key.0);
            }
        }
    }

    /// Replaces every Service (a watch's initial list, or its relist after a restart).
    pub fn replace_services(&mut self, services: Vec<Service>) {
        self.services.clear();
        self.service_ips.clear();
        self.namespaces.clear();
        for svc in services {
            self.apply_service(svc);
        }
        self.services_synced = true;
        self.touch();
    }

    /// Adds or replaces an EndpointSlice.
    pub fn apply_slice(&mut self, slice: EndpointSlice) {
        let Some(key) = key_of(&slice.metadata) else {
            return;
        };
        self.remove_slice(&key);
        for ip in slice_ips(&slice) {
            self.slice_ips.entry(ip).or_default().insert(key.clone());
        }
        if let Some(svc) = slice_service(&slice) {
            self.by_service
                .entry(svc)
                .or_default()
                .insert(key.1.clone());
        }
        self.slices.insert(key, Arc::new(slice));
        self.touch();
    }

    /// Removes an EndpointSlice.
    pub fn delete_slice(&mut self, slice: &EndpointSlice) {
        if let Some(key) = key_of(&slice.metadata) {
            self.remove_slice(&key);
            self.touch();
        }
    }

    fn remove_slice(&mut self, key: &Key) {
        let Some(old) = self.slices.remove(key) else {
            return;
        };
        for ip in slice_ips(&old) {
            if let Some(set) = self.slice_ips.get_mut(&ip) {
                set.remove(key);
                if set.is_empty() {
                    self.slice_ips.remove(&ip);
                }
            }
        }
        if let Some(svc) = slice_service(&old)
            && let Some(set) = self.by_service.get_mut(&svc)
        {
            set.remove(&key.1);
            if set.is_empty() {
                self.by_service.remove(&svc);
            }
        }
    }

    /// Replaces every EndpointSlice (a watch's initial list or relist).
    pub fn replace_slices(&mut self, slices: Vec<EndpointSlice>) {
        self.slices.clear();
        self.by_service.clear();
        self.slice_ips.clear();
        for slice in slices {
            self.apply_slice(slice);
        }
        self.slices_synced = true;
        self.touch();
    }

    /// The slices of a Service.
    fn slices_of<'a>(&'a self, ns: &str, svc: &str) -> impl Iterator<Item = &'a EndpointSlice> {
        let key = (ns.to_string(), svc.to_string());
        self.by_service
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(move |name| self.slices.get(&(ns.to_string(), name.clone())))
            .map(|s| s.as_ref())
    }

    /// Answers `qname`/`qtype`, a name inside `zone`; `None` when the name is outside it.
    pub fn lookup(&self, zone: &Zone, qname: &Name, qtype: RecordType) -> Option<Answer> {
        self.lookup_depth(zone, qname, qtype, 0)
    }

    fn lookup_depth(
        &self,
        zone: &Zone,
        qname: &Name,
        qtype: RecordType,
        depth: u8,
    ) -> Option<Answer> {
        if !zone.name.zone_of(qname) {
            return None;
        }
        let own = usize::from(qname.num_labels() - zone.name.num_labels());
        let segs: Vec<String> = qname
            .iter()
            .take(own)
            .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
            .collect();
        let ttl = zone.ttl;
        let answer = match parse(&segs) {
            Request::Apex => match qtype {
                RecordType::SOA => Answer::Records {
                    answers: vec![zone.soa(self.serial)],
                    additionals: Vec::new(),
                },
                RecordType::NS => {
                    let ns = zone.child(&["ns", "dns"])?;
                    Answer::Records {
                        answers: vec![Record::from_rdata(
                            qname.clone(),
                            ttl,
                            RData::NS(NS(ns.clone())),
                        )],
                        additionals: zone
                            .dns_ip
                            .map(|ip| address_record(ns, ttl, ip))
                            .into_iter()
                            .collect(),
                    }
                }
                _ => Answer::NoData,
            },
            Request::Version => match qtype {
                RecordType::TXT => Answer::Records {
                    answers: vec![Record::from_rdata(
                        qname.clone(),
                        ttl,
                        RData::TXT(TXT::new(vec!["1.1.0".into()])),
                    )],
                    additionals: Vec::new(),
                },
                _ => Answer::NoData,
            },
            Request::NameServer => match zone.dns_ip {
                Some(ip) if ip_type(&ip) == qtype => Answer::Records {
                    answers: vec![address_record(qname.clone(), ttl, ip)],
                    additionals: Vec::new(),
                },
                Some(_) => Answer::NoData,
                None => Answer::NxDomain,
            },
            Request::Empty => Answer::NoData,
            Request::Namespace(ns) => {
                if self.namespaces.contains_key(ns) {
                    Answer::NoData
                } else {
                    Answer::NxDomain
                }
            }
            Request::Invalid => Answer::NxDomain,
            Request::Pod { name, .. } => match pod_ip(name) {
                Some(ip) if ip_type(&ip) == qtype => Answer::Records {
                    answers: vec![address_record(qname.clone(), ttl, ip)],
                    additionals: Vec::new(),
                },
                Some(_) => Answer::NoData,
                None => Answer::NxDomain,
            },
            Request::Service {
                port,
                protocol,
                endpoint,
                service,
                namespace,
            } => {
                let entries = self.entries(zone, namespace, service, port, protocol, endpoint);
                if entries.is_empty() {
                    Answer::NxDomain
                } else {
                    self.records(zone, qname, qtype, &entries, depth)
                }
            }
        };
        Some(answer)
    }

    /// CoreDNS's `findServices`: what a Service name (or one endpoint of it) points at.
    fn entries(
        &self,
        zone: &Zone,
        ns: &str,
        name: &str,
        port: Option<&str>,
        protocol: Option<&str>,
        endpoint: Option<&str>,
    ) -> Vec<Entry> {
        let Some(svc) = self.services.get(&(ns.to_string(), name.to_string())) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(ext) = external_name(svc) {
            if endpoint.is_none()
                && let Ok(target) = Name::from_ascii(ext.trim_end_matches('.'))
            {
                let mut target = target.to_lowercase();
                target.set_fqdn(true);
                out.push(Entry {
                    host: Host::Name(target.clone()),
                    port: 0,
                    target,
                });
            }
            return out;
        }
        let Some(service_name) = zone.child(&[name, ns, "svc"]) else {
            return out;
        };
        if is_headless(svc) || endpoint.is_some() {
            let publish_not_ready = svc
                .spec
                .as_ref()
                .and_then(|s| s.publish_not_ready_addresses)
                .unwrap_or(false);
            let mut seen = BTreeSet::new();
            for slice in self.slices_of(ns, name) {
                if slice.address_type == "FQDN" {
                    continue;
                }
                // A slice without ports still names its addresses (CoreDNS's sentinel port).
                let ports: Vec<(u16, &str, &str)> = match &slice.ports {
                    Some(ports) if !ports.is_empty() => ports
                        .iter()
                        .map(|p| {
                            (
                                p.port.and_then(|n| u16::try_from(n).ok()).unwrap_or(0),
                                p.name.as_deref().unwrap_or(""),
                                p.protocol.as_deref().unwrap_or("TCP"),
                            )
                        })
                        .collect(),
                    _ => vec![(0, "", "")],
                };
                for ep in &slice.endpoints {
                    let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                    if !ready && !publish_not_ready {
                        continue;
                    }
                    for addr in &ep.addresses {
                        let Ok(ip) = addr.parse::<IpAddr>() else {
                            continue;
                        };
                        let host = endpoint_hostname(ep.hostname.as_deref(), &ip);
                        if endpoint.is_some_and(|want| want != host) {
                            continue;
                        }
                        let Ok(target) = Name::from_labels([host.as_bytes()])
                            .and_then(|n| n.append_domain(&service_name))
                        else {
                            continue;
                        };
                        for &(number, pname, pproto) in &ports {
                            if !(matches(port, pname) && matches(protocol, pproto)) {
                                continue;
                            }
                            if seen.insert((ip, number)) {
                                out.push(Entry {
                                    host: Host::Ip(ip),
                                    port: number,
                                    target: target.clone(),
                                });
                            }
                        }
                    }
                }
            }
            return out;
        }
        let ips = cluster_ips(svc);
        for p in svc.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
            let pname = p.name.as_deref().unwrap_or("");
            let pproto = p.protocol.as_deref().unwrap_or("TCP");
            if !(matches(port, pname) && matches(protocol, pproto)) {
                continue;
            }
            for ip in &ips {
                out.push(Entry {
                    host: Host::Ip(*ip),
                    port: u16::try_from(p.port).unwrap_or(0),
                    target: service_name.clone(),
                });
            }
        }
        out
    }

    /// The records of `qtype` that `entries` give `qname` (CoreDNS's backend lookups).
    fn records(
        &self,
        zone: &Zone,
        qname: &Name,
        qtype: RecordType,
        entries: &[Entry],
        depth: u8,
    ) -> Answer {
        let ttl = zone.ttl;
        let mut answers = Vec::new();
        let mut additionals = Vec::new();
        // An ExternalName Service is a CNAME whatever the type asked.
        if let Some(target) = entries.iter().find_map(|e| match &e.host {
            Host::Name(n) => Some(n),
            Host::Ip(_) => None,
        }) {
            answers.push(Record::from_rdata(
                qname.clone(),
                ttl,
                RData::CNAME(CNAME(target.clone())),
            ));
            // A target inside the zone is followed here; one outside by the forwarder.
            if qtype != RecordType::CNAME
                && depth < 8
                && let Some(Answer::Records {
                    answers: more,
                    additionals: glue,
                }) = self.lookup_depth(zone, target, qtype, depth + 1)
            {
                answers.extend(more);
                additionals.extend(glue);
            }
            return Answer::Records {
                answers,
                additionals,
            };
        }
        match qtype {
            RecordType::A | RecordType::AAAA => {
                let mut seen = BTreeSet::new();
                for e in entries {
                    if let Host::Ip(ip) = e.host
                        && ip_type(&ip) == qtype
                        && seen.insert(ip)
                    {
                        answers.push(address_record(qname.clone(), ttl, ip));
                    }
                }
            }
            RecordType::SRV => {
                let weight = u16::try_from(100 / entries.len().max(1)).unwrap_or(100);
                let mut seen = BTreeSet::new();
                let mut glue = BTreeSet::new();
                for e in entries {
                    if seen.insert((e.target.clone(), e.port)) {
                        answers.push(Record::from_rdata(
                            qname.clone(),
                            ttl,
                            RData::SRV(SRV::new(0, weight, e.port, e.target.clone())),
                        ));
                    }
                    if let Host::Ip(ip) = e.host
                        && glue.insert((e.target.clone(), ip))
                    {
                        additionals.push(address_record(e.target.clone(), ttl, ip));
                    }
                }
            }
            _ => {}
        }
        if answers.is_empty() {
            Answer::NoData
        } else {
            Answer::Records {
                answers,
                additionals,
            }
        }
    }

    /// The name of a Service cluster IP or endpoint address, for PTR (`None`: not ours).
    pub fn reverse(&self, zone: &Zone, ip: IpAddr) -> Option<Name> {
        if let Some((ns, name)) = self.service_ips.get(&ip).and_then(|s| s.first()) {
            return zone.child(&[name, ns, "svc"]);
        }
        for key in self.slice_ips.get(&ip).into_iter().flatten() {
            let Some(slice) = self.slices.get(key) else {
                continue;
            };
            let Some((ns, svc)) = slice_service(slice) else {
                continue;
            };
            for ep in &slice.endpoints {
                if ep.addresses.iter().any(|a| a.parse::<IpAddr>() == Ok(ip)) {
                    let host = endpoint_hostname(ep.hostname.as_deref(), &ip);
                    return zone.child(&[&host, &svc, &ns, "svc"]);
                }
            }
        }
        None
    }

    /// The PTR record answering `qname` (a reverse name) when its address is ours.
    pub fn ptr(&self, zone: &Zone, qname: &Name) -> Option<Record> {
        let net = qname.parse_arpa_name().ok()?;
        let full = match net.addr() {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if net.prefix_len() != full {
            return None;
        }
        let target = self.reverse(zone, net.addr())?;
        Some(Record::from_rdata(
            qname.clone(),
            zone.ttl,
            RData::PTR(PTR(target)),
        ))
    }
}

fn ip_type(ip: &IpAddr) -> RecordType {
    match ip {
        IpAddr::V4(_) => RecordType::A,
        IpAddr::V6(_) => RecordType::AAAA,
    }
}

#[cfg(test)]
mod tests;
