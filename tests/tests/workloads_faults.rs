//! Issue 9: the workload controllers survive a SIGKILL of the server in the middle of a
//! rollout and converge afterwards without duplicate or lost pods. A Deployment, a
//! StatefulSet and a DaemonSet on three simulated nodes are rolled to a new image; the
//! server is killed at a random moment of the rollout and started again; then every
//! rollout must complete with exactly the pods the specs ask for, all of the new
//! revision, each owned by its controller.
//!
//! `K1S_FAULT_WORKLOAD_ROUNDS` sets the rounds (default 3; `scripts/test --long` raises
//! it), `K1S_FAULT_SEED` replays the kill moments.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, newest_kubectl};
use rand::{Rng, SeedableRng};
use serde_json::Value;

const NS: &str = "rollouts";
const WEB_REPLICAS: usize = 6;
const DB_REPLICAS: usize = 3;
const NODES: usize = 3;

const MANIFESTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 6
  revisionHistoryLimit: 3
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 2, maxUnavailable: 1}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: registry.k1s.test/web:0
---
apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector: {app: db}
  ports:
  - port: 5432
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  replicas: 3
  serviceName: db
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: app
        image: registry.k1s.test/db:0
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: app
        image: registry.k1s.test/agent:0
"#;

fn rounds() -> usize {
    std::env::var("K1S_FAULT_WORKLOAD_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn seed() -> u64 {
    std::env::var("K1S_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random())
}

fn json(k1s: &K1s, k: &Kubectl, args: &[&str]) -> Value {
    let mut all = vec!["-n", NS, "-o", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(k1s.kubectl(k, &all).ok()).expect("kubectl printed JSON")
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn label<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj["metadata"]["labels"][key].as_str().unwrap_or("")
}

fn active(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && !matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        )
}

fn controller_uid(obj: &Value) -> Option<&str> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)?["uid"]
        .as_str()
}

fn waits_for_rollouts(k1s: &K1s, k: &Kubectl, what: &str) {
    for target in ["deployment/web", "statefulset/db", "daemonset/agent"] {
        k1s.kubectl(
            k,
            &["-n", NS, "rollout", "status", target, "--timeout=180s"],
        )
        .ok();
    }
    // Terminating pods of the old revisions finish on the simulated nodes.
    eventually(Duration::from_secs(60), what, || {
        let pods = items(&json(k1s, k, &["get", "pods"]));
        pods.iter().all(active).then_some(())
    });
}

/// Exactly the pods the specs ask for, all of image `:{version}`, each owned by its
/// controller; returns a description of what is wrong, if anything.
fn check(k1s: &K1s, k: &Kubectl, version: usize) -> Result<(), String> {
    let pods = items(&json(k1s, k, &["get", "pods"]));
    let image = |p: &Value| {
        p["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let mut problems = Vec::new();
    let of = |app: &str| -> Vec<&Value> {
        pods.iter()
            .filter(|p| label(p, "app") == app && active(p))
            .collect()
    };

    // Deployment: one ReplicaSet with replicas, all pods from it.
    let sets = items(&json(k1s, k, &["get", "replicasets"]));
    let live: Vec<&Value> = sets
        .iter()
        .filter(|rs| rs["spec"]["replicas"].as_i64().unwrap_or(0) > 0)
        .collect();
    if live.len() != 1 {
        problems.push(format!("{} ReplicaSets have replicas, want 1", live.len()));
    }
    if sets.len() > 4 {
        problems.push(format!(
            "{} ReplicaSets kept, revisionHistoryLimit is 3",
            sets.len()
        ));
    }
    let web = of("web");
    if web.len() != WEB_REPLICAS {
        problems.push(format!("{} web pods, want {WEB_REPLICAS}", web.len()));
    }
    for p in &web {
        let owner = controller_uid(p);
        if live.first().map(|rs| rs["metadata"]["uid"].as_str()) != Some(owner) {
            problems.push(format!(
                "web pod {} is not owned by the live ReplicaSet",
                p["metadata"]["name"]
            ));
        }
        if image(p) != format!("registry.k1s.test/web:{version}") {
            problems.push(format!(
                "web pod {} runs {}",
                p["metadata"]["name"],
                image(p)
            ));
        }
    }

    // StatefulSet: db-0 … db-2, once each, of the update revision.
    let sts = json(k1s, k, &["get", "statefulset", "db"]);
    let revision = sts["status"]["updateRevision"].as_str().unwrap_or("");
    let db = of("db");
    let names: BTreeSet<&str> = db
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    let want: BTreeSet<String> = (0..DB_REPLICAS).map(|i| format!("db-{i}")).collect();
    if names != want.iter().map(String::as_str).collect() || db.len() != DB_REPLICAS {
        problems.push(format!("db pods {names:?}, want {want:?}"));
    }
    for p in &db {
        if label(p, "controller-revision-hash") != revision
            || image(p) != format!("registry.k1s.test/db:{version}")
        {
            problems.push(format!(
                "db pod {} is of revision {} ({}), want {revision}",
                p["metadata"]["name"],
                label(p, "controller-revision-hash"),
                image(p)
            ));
        }
        if controller_uid(p) != sts["metadata"]["uid"].as_str() {
            problems.push(format!(
                "db pod {} has another owner",
                p["metadata"]["name"]
            ));
        }
    }

    // DaemonSet: one pod per node, all of the new image.
    let agents = of("agent");
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for p in &agents {
        let node = p["spec"]["nodeName"].as_str().unwrap_or("").to_string();
        *per_node.entry(node).or_default() += 1;
        if image(p) != format!("registry.k1s.test/agent:{version}") {
            problems.push(format!(
                "agent pod {} runs {}",
                p["metadata"]["name"],
                image(p)
            ));
        }
    }
    if per_node.len() != NODES || per_node.values().any(|&n| n != 1) {
        problems.push(format!(
            "agent pods per node: {per_node:?}, want one on each of {NODES}"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn workload_controllers_converge_after_a_sigkill_mid_rollout() {
    let seed = seed();
    println!("workloads_faults: K1S_FAULT_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut k1s = K1s::start_with(&["--simulate-nodes", &NODES.to_string()]);
    let k = newest_kubectl();
    k1s.kubectl(&k, &["create", "namespace", NS]).ok();
    let manifests = k1s.write_file("rollouts.yaml", MANIFESTS);
    let path = manifests.to_str().expect("a UTF-8 temp path");
    k1s.kubectl(&k, &["-n", NS, "apply", "-f", path]).ok();
    waits_for_rollouts(&k1s, &k, "the first rollout's old pods to go");
    check(&k1s, &k, 0).unwrap_or_else(|e| panic!("before any kill:\n{e}"));

    for round in 1..=rounds() {
        for (kind, app) in [
            ("deployment/web", "web"),
            ("statefulset/db", "db"),
            ("daemonset/agent", "agent"),
        ] {
            let image = format!("app=registry.k1s.test/{app}:{round}");
            k1s.kubectl(&k, &["-n", NS, "set", "image", kind, &image])
                .ok();
        }
        let delay = rng.random_range(0..2000);
        std::thread::sleep(Duration::from_millis(delay));
        k1s.kill();
        k1s.start_again();
        waits_for_rollouts(&k1s, &k, "the rollout's old pods to go after the restart");
        // The controllers may still be deleting surplus pods the status already discounts.
        let mut last = String::new();
        eventually(
            Duration::from_secs(60),
            &format!("round {round} (killed {delay} ms into the rollout) to converge"),
            || match check(&k1s, &k, round) {
                Ok(()) => Some(()),
                Err(e) => {
                    if e != last {
                        println!("round {round}: not yet:\n{e}");
                        last = e;
                    }
                    None
                }
            },
        );
    }
}
