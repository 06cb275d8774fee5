//! Issue 9, Deployments: against a real `k1s server --simulate-nodes 3` (the
//! ReplicaSet controller makes pods, the scheduler binds them, the simulated nodes mark
//! them Running and Ready), driven by kubectl: rollout status, an image change within
//! maxSurge/maxUnavailable, history, undo, pause/resume, restart, scale, and the
//! columns of `kubectl get deploy,rs,pods`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, newest_kubectl};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

fn manifest(name: &str, replicas: i32, image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: c
        image: {image}
"#
    )
}

fn json(k1s: &K1s, k: &Kubectl, ns: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = k1s.kubectl_in(k, ns, &all);
    serde_json::from_str(out.ok()).unwrap_or(Value::Null)
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

/// `(image, spec.replicas)` of the ReplicaSets of `app`, by revision.
fn replica_sets(k1s: &K1s, k: &Kubectl, ns: &str, app: &str) -> Vec<(String, i64)> {
    let mut rss: Vec<(i64, String, i64)> = items(&json(
        k1s,
        k,
        ns,
        &["get", "rs", "-l", &format!("app={app}")],
    ))
    .iter()
    .map(|rs| {
        let rev = rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .to_string();
        (rev, image, rs["spec"]["replicas"].as_i64().unwrap_or(0))
    })
    .collect();
    rss.sort();
    rss.into_iter().map(|(_, i, n)| (i, n)).collect()
}

/// Running, Ready, not terminating pods of `app`, by image.
fn ready_pods(k1s: &K1s, k: &Kubectl, ns: &str, app: &str) -> Vec<String> {
    items(&json(
        k1s,
        k,
        ns,
        &["get", "pods", "-l", &format!("app={app}")],
    ))
    .iter()
    .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
    .filter(|p| {
        p["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
    })
    .filter(|p| {
        p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
    .map(|p| {
        p["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .to_string()
    })
    .collect()
}

fn rollout_status(k1s: &K1s, k: &Kubectl, ns: &str, name: &str) {
    let out = k1s.kubectl_in(
        k,
        ns,
        &[
            "rollout",
            "status",
            &format!("deployment/{name}"),
            "--timeout=90s",
        ],
    );
    assert!(
        out.ok()
            .contains(&format!("deployment \"{name}\" successfully rolled out")),
        "{}",
        out.stdout
    );
}

fn image(k1s: &K1s, k: &Kubectl, ns: &str, name: &str) -> String {
    let d = json(k1s, k, ns, &["get", "deployment", name]);
    d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Whitespace-split rows of a `kubectl get` table.
fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|row| !row.is_empty())
        .collect()
}

#[test]
fn deployments_roll_out_scale_and_roll_back_through_kubectl() {
    let k1s = K1s::start_with(&["--simulate-nodes", "3"]);
    let k = newest_kubectl();
    let ns = "deploy";
    k1s.kubectl(&k, &["create", "namespace", ns]).ok();

    // A Deployment of 3: one ReplicaSet, 3 pods Running on nodes, rollout status done.
    k1s.kubectl_with(
        &k,
        &["-n", ns, "apply", "-f", "-"],
        Some(&manifest("web", 3, "nginx:1")),
        &[],
    )
    .ok();
    rollout_status(&k1s, &k, ns, "web");
    assert_eq!(
        replica_sets(&k1s, &k, ns, "web"),
        [("nginx:1".to_string(), 3)]
    );
    eventually(WAIT, "3 ready pods", || {
        (ready_pods(&k1s, &k, ns, "web").len() == 3).then_some(())
    });
    let pods = table(
        k1s.kubectl_in(&k, ns, &["get", "pods", "-l", "app=web"])
            .ok(),
    );
    assert_eq!(pods[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(pods.len(), 4, "{pods:?}");
    for row in &pods[1..] {
        assert_eq!(
            (row[1].as_str(), row[2].as_str()),
            ("1/1", "Running"),
            "{row:?}"
        );
    }

    // What `kubectl describe` reads: conditions, the new ReplicaSet, the events.
    let rs_name = table(k1s.kubectl_in(&k, ns, &["get", "rs", "-l", "app=web"]).ok())[1][0].clone();
    let describe = eventually(WAIT, "describe to show the scaling event", || {
        let out = k1s
            .kubectl_in(&k, ns, &["describe", "deployment", "web"])
            .ok()
            .to_string();
        out.contains(&format!("Scaled up replica set {rs_name} from 0 to 3"))
            .then_some(out)
    });
    let rows = table(&describe);
    let has_row = |want: &[&str]| {
        rows.iter()
            .any(|r| r.iter().map(String::as_str).eq(want.iter().copied()))
    };
    assert!(
        has_row(&["Available", "True", "MinimumReplicasAvailable"]),
        "{describe}"
    );
    assert!(
        has_row(&["Progressing", "True", "NewReplicaSetAvailable"]),
        "{describe}"
    );
    assert!(
        has_row(&["NewReplicaSet:", &rs_name, "(3/3", "replicas", "created)"]),
        "{describe}"
    );
    assert!(describe.contains("ScalingReplicaSet"), "{describe}");
    assert!(describe.contains("deployment-controller"), "{describe}");

    // `kubectl get deploy,rs` columns.
    let deploy = table(k1s.kubectl_in(&k, ns, &["get", "deploy", "web"]).ok());
    assert_eq!(
        deploy[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(deploy[1][..4], ["web", "3/3", "3", "3"]);
    let rs = table(k1s.kubectl_in(&k, ns, &["get", "rs", "-l", "app=web"]).ok());
    assert_eq!(rs[0], ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert!(rs[1][0].starts_with("web-"), "{rs:?}");
    assert_eq!(rs[1][1..4], ["3", "3", "3"]);
    let wide = table(
        k1s.kubectl_in(&k, ns, &["get", "deploy", "web", "-o", "wide"])
            .ok(),
    );
    assert_eq!(
        wide[0],
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(wide[1][5..], ["c", "nginx:1", "app=web"]);

    // An image change rolls out with never more than 3 + maxSurge(1) replicas and
    // never fewer than 3 - maxUnavailable(0) ready pods.
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut samples = 0;
            while !done.load(Ordering::Relaxed) {
                let total: i64 = replica_sets(&k1s, &k, ns, "web")
                    .iter()
                    .map(|(_, n)| n)
                    .sum();
                assert!(total <= 4, "more than replicas + maxSurge: {total}");
                let ready = ready_pods(&k1s, &k, ns, "web").len();
                assert!(
                    ready >= 3,
                    "fewer than replicas - maxUnavailable ready: {ready}"
                );
                samples += 1;
            }
            samples
        });
        k1s.kubectl_in(&k, ns, &["set", "image", "deployment/web", "c=nginx:2"])
            .ok();
        // The change cause goes onto the new ReplicaSet (annotated before the change, it
        // would land on the current one, as upstream).
        k1s.kubectl_in(
            &k,
            ns,
            &[
                "annotate",
                "deployment/web",
                "kubernetes.io/change-cause=image 2",
            ],
        )
        .ok();
        rollout_status(&k1s, &k, ns, "web");
        done.store(true, Ordering::Relaxed);
        let samples = watcher.join().expect("watcher");
        assert!(samples > 0);
    });
    assert_eq!(
        replica_sets(&k1s, &k, ns, "web"),
        [("nginx:1".to_string(), 0), ("nginx:2".to_string(), 3)]
    );
    eventually(WAIT, "3 ready pods of the new image", || {
        let pods = ready_pods(&k1s, &k, ns, "web");
        (pods.len() == 3 && pods.iter().all(|i| i == "nginx:2")).then_some(())
    });
    let events = k1s.kubectl_in(&k, ns, &["get", "events"]).ok().to_string();
    assert!(events.contains("Scaled up replica set web-"), "{events}");
    assert!(events.contains("Scaled down replica set web-"), "{events}");

    // History, with the change cause kubectl reads off the ReplicaSets.
    let history = table(
        k1s.kubectl_in(&k, ns, &["rollout", "history", "deployment/web"])
            .ok(),
    );
    assert_eq!(history[1], ["REVISION", "CHANGE-CAUSE"]);
    assert_eq!(history[2], ["1", "<none>"]);
    assert_eq!(history[3], ["2", "image", "2"]);
    let rev1 = k1s
        .kubectl_in(
            &k,
            ns,
            &["rollout", "history", "deployment/web", "--revision=1"],
        )
        .ok()
        .to_string();
    assert!(rev1.contains("nginx:1"), "{rev1}");

    // Undo goes back to revision 1's template, which becomes revision 3.
    let out = k1s.kubectl_in(&k, ns, &["rollout", "undo", "deployment/web"]);
    assert!(
        out.ok().contains("deployment.apps/web rolled back"),
        "{}",
        out.stdout
    );
    rollout_status(&k1s, &k, ns, "web");
    assert_eq!(image(&k1s, &k, ns, "web"), "nginx:1");
    assert_eq!(
        replica_sets(&k1s, &k, ns, "web"),
        [("nginx:2".to_string(), 0), ("nginx:1".to_string(), 3)]
    );
    let history = table(
        k1s.kubectl_in(&k, ns, &["rollout", "history", "deployment/web"])
            .ok(),
    );
    let revisions: Vec<&str> = history[2..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(revisions, ["2", "3"]);
    // And --to-revision picks one.
    k1s.kubectl_in(
        &k,
        ns,
        &["rollout", "undo", "deployment/web", "--to-revision=2"],
    )
    .ok();
    rollout_status(&k1s, &k, ns, "web");
    assert_eq!(image(&k1s, &k, ns, "web"), "nginx:2");

    // Paused: template changes wait, scaling does not.
    let out = k1s.kubectl_in(&k, ns, &["rollout", "pause", "deployment/web"]);
    assert!(
        out.ok().contains("deployment.apps/web paused"),
        "{}",
        out.stdout
    );
    k1s.kubectl_in(&k, ns, &["set", "image", "deployment/web", "c=nginx:3"])
        .ok();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        replica_sets(&k1s, &k, ns, "web").len(),
        2,
        "no rollout while paused"
    );
    let d = json(&k1s, &k, ns, &["get", "deployment", "web"]);
    let progressing = d["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Progressing")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(progressing["reason"], "DeploymentPaused", "{d}");
    let out = k1s.kubectl_in(&k, ns, &["rollout", "resume", "deployment/web"]);
    assert!(
        out.ok().contains("deployment.apps/web resumed"),
        "{}",
        out.stdout
    );
    rollout_status(&k1s, &k, ns, "web");
    assert_eq!(
        replica_sets(&k1s, &k, ns, "web").last(),
        Some(&("nginx:3".to_string(), 3))
    );

    // Restart rolls the same image out again through a new ReplicaSet.
    let before = replica_sets(&k1s, &k, ns, "web").len();
    let out = k1s.kubectl_in(&k, ns, &["rollout", "restart", "deployment/web"]);
    assert!(
        out.ok().contains("deployment.apps/web restarted"),
        "{}",
        out.stdout
    );
    rollout_status(&k1s, &k, ns, "web");
    let after = replica_sets(&k1s, &k, ns, "web");
    assert_eq!(after.len(), before + 1, "{after:?}");
    assert_eq!(after.last(), Some(&("nginx:3".to_string(), 3)));
    let restarted = json(&k1s, &k, ns, &["get", "deployment", "web"]);
    assert!(
        restarted["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string(),
        "{restarted}"
    );

    // Scale to 5, then to 0.
    k1s.kubectl_in(&k, ns, &["scale", "deployment/web", "--replicas=5"])
        .ok();
    rollout_status(&k1s, &k, ns, "web");
    eventually(WAIT, "5 ready pods", || {
        (ready_pods(&k1s, &k, ns, "web").len() == 5).then_some(())
    });
    let deploy = table(k1s.kubectl_in(&k, ns, &["get", "deploy", "web"]).ok());
    assert_eq!(deploy[1][..4], ["web", "5/5", "5", "5"]);
    k1s.kubectl_in(&k, ns, &["scale", "deployment/web", "--replicas=0"])
        .ok();
    eventually(WAIT, "no pods left", || {
        let pods = items(&json(&k1s, &k, ns, &["get", "pods", "-l", "app=web"]));
        pods.is_empty().then_some(())
    });
    rollout_status(&k1s, &k, ns, "web");
    let deploy = table(k1s.kubectl_in(&k, ns, &["get", "deploy", "web"]).ok());
    assert_eq!(deploy[1][..4], ["web", "0/0", "0", "0"]);
    assert!(
        replica_sets(&k1s, &k, ns, "web")
            .iter()
            .all(|(_, n)| *n == 0)
    );
}

#[test]
fn a_killed_server_finishes_the_rollout_without_duplicate_replica_sets() {
    let mut k1s = K1s::start_with(&["--simulate-nodes", "3"]);
    let k = newest_kubectl();
    let ns = "default";
    let manifest = manifest("api", 10, "nginx:1")
        .replace("maxSurge: 1", "maxSurge: 2")
        .replace("maxUnavailable: 0", "maxUnavailable: 1");
    k1s.kubectl_with(&k, &["-n", ns, "apply", "-f", "-"], Some(&manifest), &[])
        .ok();
    rollout_status(&k1s, &k, ns, "api");
    k1s.kubectl_in(&k, ns, &["set", "image", "deployment/api", "c=nginx:2"])
        .ok();
    // SIGKILL in the middle of the rollout: both ReplicaSets have replicas.
    eventually(WAIT, "the rollout to be under way", || {
        let rss = replica_sets(&k1s, &k, ns, "api");
        (rss.len() == 2 && rss.iter().all(|(_, n)| *n > 0)).then_some(())
    });
    k1s.kill();
    k1s.start_again();
    rollout_status(&k1s, &k, ns, "api");
    assert_eq!(
        replica_sets(&k1s, &k, ns, "api"),
        [("nginx:1".to_string(), 0), ("nginx:2".to_string(), 10)]
    );
    eventually(
        WAIT,
        "10 ready pods of the new image and nothing else",
        || {
            let ready = ready_pods(&k1s, &k, ns, "api");
            let all = items(&json(&k1s, &k, ns, &["get", "pods", "-l", "app=api"]));
            (ready.len() == 10 && all.len() == 10 && ready.iter().all(|i| i == "nginx:2"))
                .then_some(())
        },
    );
    let d = json(&k1s, &k, ns, &["get", "deployment", "api"]);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2",
        "{d}"
    );
}
