//! Issue 9: StatefulSets and DaemonSets on simulated nodes, driven by kubectl against one
//! `k1s server --simulate-nodes 3` (the scheduler binds the pods, the simulated nodes run
//! them): stable ordinals and a claim per template and ordinal, ordered creation, rolling
//! update and scale-down; one daemon pod per eligible node, taints and tolerations.

use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, newest_kubectl};

const WAIT: Duration = Duration::from_secs(120);

const STATEFULSET: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  clusterIP: None
  selector:
    app: web
  ports:
  - port: 80
    name: web
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        volumeMounts:
        - name: www
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: 1Gi
"#;

const DAEMONSET: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels:
      app: agent
  template:
    metadata:
      labels:
        app: agent
    spec:
      containers:
      - name: agent
        image: busybox:1.36
"#;

fn words(s: &str) -> Vec<String> {
    let mut w: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    w.sort();
    w
}

#[test]
fn statefulsets_and_daemonsets_on_simulated_nodes() {
    let k1s = K1s::start_with(&["--simulate-nodes", "3"]);
    let k = newest_kubectl();
    let nodes = eventually(WAIT, "3 simulated nodes", || {
        let out = k1s.kubectl(
            &k,
            &["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"],
        );
        let names = words(&out.stdout);
        (out.code == 0 && names.len() == 3).then_some(names)
    });
    statefulset_ordinals_claims_rollout_and_scale_down(&k1s, &k);
    daemonset_one_pod_per_node_and_tolerations(&k1s, &k, &nodes);
    let mut k1s = k1s;
    sets_converge_after_a_sigkill(&mut k1s, &k, &nodes);
}

const CRASH: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: c
spec:
  serviceName: c
  replicas: 6
  podManagementPolicy: Parallel
  selector:
    matchLabels:
      app: c
  template:
    metadata:
      labels:
        app: c
    spec:
      containers:
      - name: c
        image: busybox:1.36
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: 1Gi
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: cd
spec:
  selector:
    matchLabels:
      app: cd
  template:
    metadata:
      labels:
        app: cd
    spec:
      tolerations:
      - operator: Exists
      containers:
      - name: c
        image: busybox:1.36
"#;

/// The server is SIGKILLed while both controllers create pods; after the restart they
/// converge from what the API holds: every ordinal and claim once, one daemon pod per node.
fn sets_converge_after_a_sigkill(k1s: &mut K1s, k: &Kubectl, nodes: &[String]) {
    k1s.kubectl(k, &["create", "namespace", "crash"]).ok();
    let file = k1s.write_file("crash.yaml", CRASH);
    let path = file.to_string_lossy().to_string();
    k1s.kubectl_in(k, "crash", &["apply", "-f", &path]).ok();
    k1s.kill();
    k1s.start_again();
    for what in ["statefulset/c", "daemonset/cd"] {
        k1s.kubectl_in(k, "crash", &["rollout", "status", what, "--timeout=120s"])
            .ok();
    }
    let names = |selector: &str, field: &str| {
        let out = k1s.kubectl_in(
            k,
            "crash",
            &[
                "get",
                "pods",
                "-l",
                selector,
                "-o",
                &format!("jsonpath={{.items[*]{field}}}"),
            ],
        );
        words(out.ok())
    };
    let want: Vec<String> = (0..6).map(|i| format!("c-{i}")).collect();
    assert_eq!(names("app=c", ".metadata.name"), want);
    let claims = k1s.kubectl_in(
        k,
        "crash",
        &["get", "pvc", "-o", "jsonpath={.items[*].metadata.name}"],
    );
    let want: Vec<String> = (0..6).map(|i| format!("data-c-{i}")).collect();
    assert_eq!(words(claims.ok()), want);
    eventually(WAIT, "one daemon pod per node after the restart", || {
        (names("app=cd", ".spec.nodeName") == nodes).then_some(())
    });
}

fn statefulset_ordinals_claims_rollout_and_scale_down(k1s: &K1s, k: &Kubectl) {
    k1s.kubectl(k, &["create", "namespace", "sts"]).ok();
    let file = k1s.write_file("web.yaml", STATEFULSET);
    let path = file.to_string_lossy().to_string();
    k1s.kubectl_in(k, "sts", &["apply", "-f", &path]).ok();
    let out = k1s.kubectl_in(
        k,
        "sts",
        &["rollout", "status", "statefulset/web", "--timeout=120s"],
    );
    // apps/v1 defaults rollingUpdate.partition to 0, so kubectl reports a partitioned
    // roll out, as it does against upstream.
    let done = "partitioned roll out complete: 3 new pods have been updated";
    assert!(out.ok().contains(done), "{}", out.stdout);

    let pods = k1s.kubectl_in(
        k,
        "sts",
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    assert_eq!(words(pods.ok()), ["web-0", "web-1", "web-2"]);
    let claims = k1s.kubectl_in(
        k,
        "sts",
        &["get", "pvc", "-o", "jsonpath={.items[*].metadata.name}"],
    );
    assert_eq!(words(claims.ok()), ["www-web-0", "www-web-1", "www-web-2"]);
    let identity = k1s.kubectl_in(
        k,
        "sts",
        &[
            "get",
            "pod",
            "web-1",
            "-o",
            "jsonpath={.spec.hostname} {.spec.subdomain} {.spec.volumes[0].persistentVolumeClaim.claimName} {.metadata.labels.apps\\.kubernetes\\.io/pod-index} {.spec.nodeName}",
        ],
    );
    let identity = identity.ok().to_string();
    assert!(
        identity.starts_with("web-1 nginx www-web-1 1 "),
        "{identity}"
    );
    assert!(
        identity.trim().split(' ').count() == 5,
        "web-1 not bound: {identity}"
    );
    let row = k1s.kubectl_in(k, "sts", &["get", "statefulset", "web", "--no-headers"]);
    let cols: Vec<&str> = row.ok().split_whitespace().collect();
    assert_eq!(&cols[..2], ["web", "3/3"], "{cols:?}");

    // OrderedReady: each pod was created only once the one before was Ready.
    for i in 1..3 {
        let created = k1s
            .kubectl_in(
                k,
                "sts",
                &[
                    "get",
                    "pod",
                    &format!("web-{i}"),
                    "-o",
                    "jsonpath={.metadata.creationTimestamp}",
                ],
            )
            .ok()
            .to_string();
        let ready_before = k1s
            .kubectl_in(
                k,
                "sts",
                &[
                    "get",
                    "pod",
                    &format!("web-{}", i - 1),
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].lastTransitionTime}",
                ],
            )
            .ok()
            .to_string();
        assert!(
            ready_before <= created,
            "web-{i} created at {created}, web-{} ready at {ready_before}",
            i - 1
        );
    }
    let events = k1s.kubectl_in(
        k,
        "sts",
        &[
            "get",
            "events",
            "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
        ],
    );
    let events = events.ok();
    for want in [
        "SuccessfulCreate: create Pod web-0 in StatefulSet web successful",
        "SuccessfulCreate: create Claim www-web-0 Pod web-0 in StatefulSet web success",
    ] {
        assert!(events.contains(want), "{want} missing from:\n{events}");
    }

    // Rolling update to a new image: every pod ends at the new revision.
    k1s.kubectl_in(
        k,
        "sts",
        &["set", "image", "statefulset/web", "nginx=nginx:1.26"],
    )
    .ok();
    k1s.kubectl_in(
        k,
        "sts",
        &["rollout", "status", "statefulset/web", "--timeout=120s"],
    )
    .ok();
    let images = k1s.kubectl_in(
        k,
        "sts",
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ],
    );
    assert_eq!(
        words(images.ok()),
        ["nginx:1.26", "nginx:1.26", "nginx:1.26"]
    );
    let history = k1s.kubectl_in(k, "sts", &["rollout", "history", "statefulset/web"]);
    let history = history.ok();
    assert!(
        history.contains("\n1 ") && history.contains("\n2 "),
        "{history}"
    );
    // Undo applies revision 1's template again: it becomes revision 3, and the pods roll
    // back to the first image.
    k1s.kubectl_in(k, "sts", &["rollout", "undo", "statefulset/web"])
        .ok();
    k1s.kubectl_in(
        k,
        "sts",
        &["rollout", "status", "statefulset/web", "--timeout=120s"],
    )
    .ok();
    eventually(WAIT, "pods back at nginx:1.25", || {
        let out = k1s.kubectl_in(
            k,
            "sts",
            &[
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[*].spec.containers[0].image}",
            ],
        );
        (words(&out.stdout) == ["nginx:1.25", "nginx:1.25", "nginx:1.25"]).then_some(())
    });
    let history = k1s.kubectl_in(k, "sts", &["rollout", "history", "statefulset/web"]);
    let history = history.ok();
    assert!(
        history.contains("\n2 ") && history.contains("\n3 ") && !history.contains("\n1 "),
        "{history}"
    );

    // Scale down: the highest ordinals go, the claims stay (Retain).
    k1s.kubectl_in(k, "sts", &["scale", "statefulset/web", "--replicas=1"])
        .ok();
    eventually(WAIT, "web scaled to web-0", || {
        let out = k1s.kubectl_in(
            k,
            "sts",
            &[
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
        );
        (out.code == 0 && words(&out.stdout) == ["web-0"]).then_some(())
    });
    let claims = k1s.kubectl_in(
        k,
        "sts",
        &["get", "pvc", "-o", "jsonpath={.items[*].metadata.name}"],
    );
    assert_eq!(words(claims.ok()), ["www-web-0", "www-web-1", "www-web-2"]);
    let events = k1s.kubectl_in(
        k,
        "sts",
        &[
            "get",
            "events",
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ],
    );
    let events = events.ok();
    assert!(
        events.contains("delete Pod web-2 in StatefulSet web successful"),
        "{events}"
    );
    assert!(
        events.contains("delete Pod web-1 in StatefulSet web successful"),
        "{events}"
    );
}

fn daemonset_one_pod_per_node_and_tolerations(k1s: &K1s, k: &Kubectl, nodes: &[String]) {
    k1s.kubectl(k, &["create", "namespace", "ds"]).ok();
    let tainted = &nodes[2];
    k1s.kubectl(k, &["taint", "nodes", tainted, "dedicated=gpu:NoSchedule"])
        .ok();
    let file = k1s.write_file("agent.yaml", DAEMONSET);
    let path = file.to_string_lossy().to_string();
    k1s.kubectl_in(k, "ds", &["apply", "-f", &path]).ok();
    k1s.kubectl_in(
        k,
        "ds",
        &["rollout", "status", "daemonset/agent", "--timeout=120s"],
    )
    .ok();
    let bound = k1s.kubectl_in(
        k,
        "ds",
        &[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].spec.nodeName}",
        ],
    );
    assert_eq!(
        words(bound.ok()),
        nodes[..2].to_vec(),
        "one pod per untainted node"
    );
    let row = k1s.kubectl_in(k, "ds", &["get", "daemonset", "agent", "--no-headers"]);
    let cols: Vec<&str> = row.ok().split_whitespace().collect();
    // NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE-SELECTOR AGE
    assert_eq!(
        &cols[..7],
        ["agent", "2", "2", "2", "2", "2", "<none>"],
        "{cols:?}"
    );

    // Tolerating the taint brings the third node in (a rolling update of the others).
    let patch = r#"{"spec":{"template":{"spec":{"tolerations":[{"key":"dedicated","operator":"Equal","value":"gpu","effect":"NoSchedule"}]}}}}"#;
    k1s.kubectl_in(
        k,
        "ds",
        &["patch", "daemonset", "agent", "--type=merge", "-p", patch],
    )
    .ok();
    k1s.kubectl_in(
        k,
        "ds",
        &["rollout", "status", "daemonset/agent", "--timeout=120s"],
    )
    .ok();
    eventually(WAIT, "a daemon pod on every node", || {
        let out = k1s.kubectl_in(
            k,
            "ds",
            &[
                "get",
                "pods",
                "-l",
                "app=agent",
                "--field-selector=status.phase=Running",
                "-o",
                "jsonpath={.items[*].spec.nodeName}",
            ],
        );
        (out.code == 0 && words(&out.stdout) == nodes).then_some(())
    });
    let tolerations = k1s.kubectl_in(
        k,
        "ds",
        &[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[0].spec.tolerations[*].key}",
        ],
    );
    let tolerations = tolerations.ok();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/unschedulable",
        "dedicated",
    ] {
        assert!(tolerations.contains(key), "{key} missing: {tolerations}");
    }
    let events = k1s.kubectl_in(
        k,
        "ds",
        &[
            "get",
            "events",
            "-o",
            "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
        ],
    );
    assert!(
        events
            .ok()
            .contains("SuccessfulCreate: Created pod: agent-"),
        "{}",
        events.stdout
    );
}
