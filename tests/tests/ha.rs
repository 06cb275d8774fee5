//! Three `k1s server --disable-agent` processes on one etcd (Debian's etcd-server,
//! started by the test; it fails without it), on distinct loopback ports: kubectl works
//! against each, Services created through all three at once never share a cluster IP
//! or a node port, the `kubernetes` endpoints list every live server, and SIGKILL of the
//! leader moves the controllers and the scheduler to another server within a lease
//! duration with nothing lost.

use std::collections::HashSet;
use std::time::Duration;

use k1s_e2e::{K1s, eventually, newest_kubectl};
use k1s_store::etcd::testing::TestEtcd;

/// Ten NodePort Services named `<prefix>-<n>`, as one document.
fn services(prefix: &str) -> String {
    (0..10)
        .map(|n| {
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {prefix}-{n}\n  namespace: default\nspec:\n  type: NodePort\n  selector:\n    app: {prefix}\n  ports:\n  - port: 80\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[test]
fn three_servers_on_one_etcd_share_the_work_and_survive_the_leader() {
    let etcd = TestEtcd::start();
    let ep = etcd.endpoint.as_str();
    let mut servers: Vec<K1s> = ["ha-a", "ha-b", "ha-c"]
        .iter()
        .map(|n| {
            // A range of 62 addresses: three allocators picking alone would meet.
            K1s::start_with(&[
                "--datastore-endpoint",
                ep,
                "--node-name",
                n,
                "--service-cidr",
                "10.43.0.0/26",
            ])
        })
        .collect();
    let k = newest_kubectl();

    // kubectl works against each, and each sees what another wrote.
    for (i, s) in servers.iter().enumerate() {
        s.kubectl(&k, &["create", "configmap", &format!("through-{i}")])
            .ok();
    }
    for s in &servers {
        let listed = s
            .kubectl(&k, &["get", "configmaps", "-o", "name"])
            .ok()
            .to_string();
        for i in 0..3 {
            assert!(
                listed.contains(&format!("configmap/through-{i}")),
                "{listed}"
            );
        }
    }

    // Thirty Services created through the three servers at once.
    std::thread::scope(|scope| {
        for (i, s) in servers.iter().enumerate() {
            let k = &k;
            scope.spawn(move || {
                let doc = services(&format!("svc{i}"));
                s.kubectl_with(k, &["create", "-f", "-"], Some(&doc), &[])
                    .ok();
            });
        }
    });
    let listing = servers[2]
        .kubectl(
            &k,
            &[
                "get",
                "services",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name} {.spec.clusterIP} {.spec.ports[0].nodePort}{\"\\n\"}{end}",
            ],
        )
        .ok()
        .to_string();
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    let mut names = HashSet::new();
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if !f[0].starts_with("svc") {
            continue;
        }
        assert_eq!(f.len(), 3, "{line}");
        names.insert(f[0].to_string());
        assert!(
            ips.insert(f[1].to_string()),
            "cluster IP {} twice:\n{listing}",
            f[1]
        );
        assert!(
            ports.insert(f[2].to_string()),
            "node port {} twice:\n{listing}",
            f[2]
        );
    }
    assert_eq!(names.len(), 30, "{listing}");
    // Each cluster IP is held by its IPAddress object, upstream's lock.
    let held = servers[1]
        .kubectl(
            &k,
            &[
                "get",
                "ipaddresses",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
        )
        .ok()
        .to_string();
    let held: HashSet<String> = held.split_whitespace().map(str::to_string).collect();
    assert!(ips.is_subset(&held), "{held:?}");

    // The kubernetes Service's endpoints list every server (one loopback address, a
    // port each).
    let endpoint_ports = |s: &K1s| {
        let out = s
            .kubectl(
                &k,
                &[
                    "get",
                    "endpoints",
                    "kubernetes",
                    "-o",
                    "jsonpath={.subsets[*].ports[*].port}",
                ],
            )
            .stdout;
        let mut ports: Vec<u16> = out
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        ports.sort();
        ports
    };
    let mut all: Vec<u16> = servers.iter().map(K1s::port).collect();
    all.sort();
    eventually(
        Duration::from_secs(15),
        "every server in the endpoints",
        || Some(()).filter(|_| endpoint_ports(&servers[1]) == all),
    );

    // The first server leads; SIGKILL moves the controllers and the scheduler.
    let holder = |s: &K1s, lease: &str| {
        s.kubectl(
            &k,
            &[
                "-n",
                "kube-system",
                "get",
                "lease",
                lease,
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ],
        )
        .stdout
    };
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        let h = eventually(Duration::from_secs(20), "a leader", || {
            Some(holder(&servers[1], lease)).filter(|h| !h.is_empty())
        });
        assert!(h.starts_with("ha-a_"), "{lease}: {h}");
    }
    let killed_port = servers[0].port();
    servers[0].kill();
    let started = std::time::Instant::now();
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        // A lease duration (15 s) plus a retry period (2 s); slack for a busy CI host.
        eventually(Duration::from_secs(25), "another server to lead", || {
            Some(holder(&servers[1], lease))
                .filter(|h| h.starts_with("ha-b_") || h.starts_with("ha-c_"))
        });
    }
    eprintln!("leadership moved after {:?}", started.elapsed());
    servers[2]
        .kubectl(&k, &["create", "deployment", "moved", "--image=busybox"])
        .ok();
    eventually(
        Duration::from_secs(20),
        "a ReplicaSet from the new leader",
        || {
            let out = servers[1]
                .kubectl(&k, &["get", "replicasets", "-l", "app=moved", "-o", "name"])
                .stdout;
            Some(out).filter(|o| o.contains("replicaset"))
        },
    );

    // The dead server leaves the endpoints once its lease expires.
    let rest: Vec<u16> = all.iter().copied().filter(|p| *p != killed_port).collect();
    eventually(
        Duration::from_secs(30),
        "the dead server out of the endpoints",
        || Some(()).filter(|_| endpoint_ports(&servers[2]) == rest),
    );

    // Nothing was lost: every Service and ConfigMap is still there, through both.
    for s in &servers[1..] {
        let names = s
            .kubectl(&k, &["get", "services,configmaps", "-o", "name"])
            .ok()
            .to_string();
        for i in 0..3 {
            assert!(names.contains(&format!("configmap/through-{i}")), "{names}");
            for n in 0..10 {
                assert!(names.contains(&format!("service/svc{i}-{n}")), "{names}");
            }
        }
    }
}

/// The resourceVersion of a list of ConfigMaps in `default` (kubectl's own `-o` prints a
/// client-side List without one).
fn list_rv(s: &K1s, k: &k1s_e2e::Kubectl) -> u64 {
    let out = s
        .kubectl(
            k,
            &["get", "--raw", "/api/v1/namespaces/default/configmaps"],
        )
        .ok()
        .to_string();
    let list: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("list: {e}: {out}"));
    list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion: {out}"))
}

/// `k1s datastore migrate` moves a single SQLite server to etcd: every object, in its
/// resourceVersion order; an old resourceVersion is 410 Gone there (clients relist) and
/// a watch from a relisted one sees new writes.
#[test]
fn migrate_from_sqlite_to_etcd_keeps_every_object_in_order() {
    let k = newest_kubectl();
    let mut single = K1s::start_with(&[]);
    for i in 0..5 {
        single
            .kubectl(
                &k,
                &[
                    "create",
                    "configmap",
                    &format!("m{i}"),
                    "--from-literal=i=x",
                ],
            )
            .ok();
    }
    single
        .kubectl(&k, &["create", "service", "clusterip", "kept", "--tcp=80"])
        .ok();
    let order = |s: &K1s| {
        let out = s
            .kubectl(
                &k,
                &[
                    "get",
                    "configmaps",
                    "--sort-by=.metadata.resourceVersion",
                    "-o",
                    "jsonpath={range .items[*]}{.metadata.name} {end}",
                ],
            )
            .ok()
            .to_string();
        out.split_whitespace()
            .filter(|n| n.starts_with('m'))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let before = order(&single);
    assert_eq!(before, ["m0", "m1", "m2", "m3", "m4"]);
    let ip = single
        .kubectl(
            &k,
            &["get", "service", "kept", "-o", "jsonpath={.spec.clusterIP}"],
        )
        .ok()
        .to_string();
    let old_rv = list_rv(&single, &k).to_string();
    single.stop();

    let etcd = TestEtcd::start();
    let db = single.data_dir().join("server").join("db").join("state.db");
    let out = std::process::Command::new(k1s_e2e::k1s_binary())
        .args(["datastore", "migrate", "--from"])
        .arg(format!("sqlite://{}", db.display()))
        .args(["--to", &etcd.endpoint])
        .output()
        .unwrap_or_else(|e| panic!("k1s datastore migrate: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("migrated"), "{text}");
    // A second migration into the now full etcd is refused.
    let again = std::process::Command::new(k1s_e2e::k1s_binary())
        .args(["datastore", "migrate", "--from"])
        .arg(format!("sqlite://{}", db.display()))
        .args(["--to", &etcd.endpoint])
        .output()
        .unwrap_or_else(|e| panic!("k1s datastore migrate: {e}"));
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("migrate only into a new datastore"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let moved = K1s::start_with(&["--datastore-endpoint", &etcd.endpoint]);
    assert_eq!(order(&moved), before);
    let ip_after = moved
        .kubectl(
            &k,
            &["get", "service", "kept", "-o", "jsonpath={.spec.clusterIP}"],
        )
        .ok()
        .to_string();
    assert_eq!(ip_after, ip);
    assert_eq!(
        moved
            .kubectl(&k, &["get", "configmap", "m3", "-o", "jsonpath={.data.i}"])
            .ok(),
        "x"
    );
    // The old resourceVersion is compacted away: a watch from it ends with 410 Gone.
    let stale = moved
        .kubectl(
            &k,
            &[
                "get",
                "--raw",
                &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={old_rv}&timeoutSeconds=2"),
            ],
        )
        .stdout;
    assert!(stale.contains("410"), "{stale}");
    // Relisted, the resourceVersion is newer than any old one and a watch from it works.
    let rv = list_rv(&moved, &k);
    assert!(rv > old_rv.parse().unwrap_or(u64::MAX), "{rv} vs {old_rv}");
    assert!(!stale.contains("\"ADDED\""), "{stale}");
    moved
        .kubectl(&k, &["create", "configmap", "after-migration"])
        .ok();
    let events = moved
        .kubectl(
            &k,
            &[
                "get",
                "--raw",
                &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=2"),
            ],
        )
        .stdout;
    assert!(events.contains("after-migration"), "{events}");
}
