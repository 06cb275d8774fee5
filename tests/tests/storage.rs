//! PersistentVolumeClaims on the built-in local-path provisioner, end to end: one
//! `k1s server` with its agent has the default StorageClass `local-path`; a claim without
//! a class gets it and stays Pending (`WaitForFirstConsumer`) until a pod uses it, then
//! the scheduler selects the node, the provisioner makes a folder and a PersistentVolume,
//! the binder binds them and the kubelet mounts the folder; its data outlives the pod;
//! deleting the claim deletes the volume and its folder. A StatefulSet's claim templates
//! get a bound claim per replica.
//!
//! Needs root, containerd and runc (scripts/test installs them) and the test images
//! (scripts/build-test-images, run by the harness when missing).

use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, newest_kubectl};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

fn get_json(k1s: &K1s, k: &Kubectl, args: &[&str]) -> Option<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let r = k1s.kubectl(k, &all);
    if r.code != 0 {
        return None;
    }
    serde_json::from_str(&r.stdout).ok()
}

fn apply(k1s: &K1s, k: &Kubectl, name: &str, manifest: &str) {
    let file = k1s.write_file(&format!("{name}.yaml"), manifest);
    let path = file.to_string_lossy().into_owned();
    k1s.kubectl(k, &["apply", "-f", &path]).ok();
}

fn has_event(k1s: &K1s, k: &Kubectl, object: &str, reason: &str) -> Option<Value> {
    let selector = format!("involvedObject.name={object}");
    let list = get_json(k1s, k, &["events", "--field-selector", &selector])?;
    list["items"]
        .as_array()?
        .iter()
        .find(|e| e["reason"] == reason)
        .cloned()
}

fn pod(name: &str, claim: &str, command: &str, read_only: bool) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "{command}"]
    volumeMounts:
    - {{name: data, mountPath: /data}}
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: {claim}, readOnly: {read_only}}}
"#
    )
}

#[test]
fn claims_on_local_path_are_provisioned_on_first_use_and_deleted_with_the_claim() {
    let k1s = K1s::start_with_agent(&[]);
    let k = newest_kubectl();
    let node = k1s.node_name().expect("node name");

    // The default class, as k3s ships it.
    let sc = eventually(WAIT, "the local-path StorageClass", || {
        get_json(&k1s, &k, &["storageclass", "local-path"])
    });
    assert_eq!(sc["provisioner"], "rancher.io/local-path", "{sc}");
    assert_eq!(sc["volumeBindingMode"], "WaitForFirstConsumer", "{sc}");
    assert_eq!(sc["reclaimPolicy"], "Delete", "{sc}");
    let listed = k1s.kubectl(&k, &["get", "storageclass"]);
    assert!(
        listed.ok().contains("local-path (default)"),
        "{}",
        listed.stdout
    );

    // A claim without a class gets the default one and waits for its first consumer.
    apply(
        &k1s,
        &k,
        "pvc",
        r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
"#,
    );
    eventually(WAIT, "the WaitForFirstConsumer event", || {
        has_event(&k1s, &k, "data", "WaitForFirstConsumer")
    });
    let claim = get_json(&k1s, &k, &["pvc", "data"]).expect("claim");
    assert_eq!(claim["spec"]["storageClassName"], "local-path", "{claim}");
    assert_eq!(claim["status"]["phase"], "Pending", "{claim}");
    let uid = claim["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pv_name = format!("pvc-{uid}");
    let dir = k1s
        .data_dir()
        .join("storage")
        .join(format!("pvc-{uid}_default_data"));
    assert!(!dir.exists(), "{} made before a pod used it", dir.display());

    // A pod using it: the claim is bound to a volume made on this node.
    apply(
        &k1s,
        &k,
        "writer",
        &pod(
            "writer",
            "data",
            "echo persisted > /data/file && sleep 3600",
            false,
        ),
    );
    eventually(WAIT, "writer Running", || {
        get_json(&k1s, &k, &["pod", "writer"]).filter(|p| p["status"]["phase"] == "Running")
    });
    let claim = eventually(WAIT, "claim Bound", || {
        get_json(&k1s, &k, &["pvc", "data"]).filter(|c| c["status"]["phase"] == "Bound")
    });
    assert_eq!(claim["spec"]["volumeName"], pv_name.as_str(), "{claim}");
    assert_eq!(
        claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"],
        node.as_str(),
        "{claim}"
    );
    assert_eq!(claim["status"]["capacity"]["storage"], "64Mi", "{claim}");
    let pv = eventually(WAIT, "volume Bound", || {
        get_json(&k1s, &k, &["pv", &pv_name]).filter(|v| v["status"]["phase"] == "Bound")
    });
    assert_eq!(pv["spec"]["claimRef"]["name"], "data", "{pv}");
    assert_eq!(pv["spec"]["storageClassName"], "local-path", "{pv}");
    assert_eq!(
        pv["spec"]["persistentVolumeReclaimPolicy"], "Delete",
        "{pv}"
    );
    assert_eq!(
        pv["spec"]["hostPath"]["path"],
        dir.to_string_lossy().as_ref(),
        "{pv}"
    );
    for reason in ["ExternalProvisioning", "ProvisioningSucceeded"] {
        eventually(WAIT, reason, || has_event(&k1s, &k, "data", reason));
    }
    let content = eventually(WAIT, "the file on the node", || {
        std::fs::read_to_string(dir.join("file")).ok()
    });
    assert_eq!(content, "persisted\n");

    // kubectl's columns, as upstream's.
    let table = k1s.kubectl(&k, &["get", "pvc,pv"]);
    let text = table.ok();
    assert!(
        text.lines().any(|l| l.starts_with("NAME")
            && l.contains("STATUS")
            && l.contains("VOLUME")
            && l.contains("CAPACITY")
            && l.contains("ACCESS MODES")
            && l.contains("STORAGECLASS")),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("persistentvolumeclaim/data"))
        .unwrap_or_else(|| panic!("no claim row:\n{text}"));
    for want in ["Bound", pv_name.as_str(), "64Mi", "RWO", "local-path"] {
        assert!(row.contains(want), "{want} missing: {row}");
    }
    let row = text
        .lines()
        .find(|l| l.starts_with(&format!("persistentvolume/{pv_name}")))
        .unwrap_or_else(|| panic!("no volume row:\n{text}"));
    for want in [
        "64Mi",
        "RWO",
        "Delete",
        "Bound",
        "default/data",
        "local-path",
    ] {
        assert!(row.contains(want), "{want} missing: {row}");
    }

    // The data outlives the pod; a read-only use cannot write.
    k1s.kubectl(&k, &["delete", "pod", "writer", "--wait=true"])
        .ok();
    apply(
        &k1s,
        &k,
        "reader",
        &pod(
            "reader",
            "data",
            "cat /data/file; touch /data/other && echo writable || echo read-only",
            true,
        ),
    );
    eventually(WAIT, "reader Succeeded", || {
        get_json(&k1s, &k, &["pod", "reader"]).filter(|p| p["status"]["phase"] == "Succeeded")
    });
    let logs = k1s.kubectl(&k, &["logs", "reader"]);
    assert!(logs.ok().contains("persisted"), "{}", logs.stdout);
    assert!(logs.ok().contains("read-only"), "{}", logs.stdout);

    // A claim a pod still names outlives its delete (kubernetes.io/pvc-protection), the
    // data with it; once the pod goes, the claim, the volume and its folder go (reclaim
    // policy Delete).
    k1s.kubectl(&k, &["delete", "pvc", "data", "--wait=false"])
        .ok();
    std::thread::sleep(Duration::from_secs(2));
    let row = k1s.kubectl(&k, &["get", "pvc", "data", "--no-headers"]);
    assert!(row.ok().contains("Terminating"), "{}", row.stdout);
    assert!(
        dir.join("file").exists(),
        "the data went with a claim in use"
    );
    k1s.kubectl(&k, &["delete", "pod", "reader", "--wait=true"])
        .ok();
    eventually(WAIT, "the claim deleted", || {
        let r = k1s.kubectl(&k, &["get", "pvc", "data"]);
        (r.code != 0 && r.stderr.contains("NotFound")).then_some(())
    });
    eventually(WAIT, "the volume deleted", || {
        let r = k1s.kubectl(&k, &["get", "pv", &pv_name]);
        (r.code != 0 && r.stderr.contains("NotFound")).then_some(())
    });
    eventually(WAIT, "the folder removed", || (!dir.exists()).then_some(()));

    // A StatefulSet's claim templates: one bound claim per replica.
    apply(
        &k1s,
        &k,
        "sts",
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 2
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "hostname > /data/who && sleep 3600"]
        volumeMounts:
        - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 16Mi}}
"#,
    );
    for ordinal in 0..2 {
        let claim_name = format!("data-web-{ordinal}");
        let claim = eventually(WAIT, &format!("{claim_name} Bound"), || {
            get_json(&k1s, &k, &["pvc", &claim_name]).filter(|c| c["status"]["phase"] == "Bound")
        });
        assert_eq!(claim["spec"]["storageClassName"], "local-path", "{claim}");
        let uid = claim["metadata"]["uid"].as_str().unwrap_or_default();
        let file = k1s
            .data_dir()
            .join("storage")
            .join(format!("pvc-{uid}_default_{claim_name}"))
            .join("who");
        let who = eventually(WAIT, &format!("web-{ordinal} wrote its name"), || {
            std::fs::read_to_string(&file)
                .ok()
                .filter(|s| !s.is_empty())
        });
        assert_eq!(who.trim(), format!("web-{ordinal}"));
    }
    k1s.kubectl(&k, &["delete", "statefulset", "web", "--wait=true"])
        .ok();
}

#[test]
fn disable_local_storage_runs_no_provisioner_and_makes_no_class() {
    let k1s = K1s::start_with_agent(&["--disable", "local-storage"]);
    let k = newest_kubectl();
    let node = k1s.node_name().expect("node name");
    eventually(WAIT, "the node registered", || {
        get_json(&k1s, &k, &["node", &node])
    });
    // The class would be made as the agent starts: give it time it would not need.
    std::thread::sleep(Duration::from_secs(3));
    let r = k1s.kubectl(&k, &["get", "storageclass", "-o", "name"]);
    assert_eq!(r.ok().trim(), "", "{}", r.stdout);
}
