//! k1s on etcd: `k1s server --datastore-endpoint http://...` against a real etcd this test
//! starts (Debian's etcd-server; the test fails without it). kubectl works, objects land
//! where kube-apiserver puts them, watches see changes, a restart keeps everything, a
//! second server on the same etcd serves the same objects, and `k1s datastore check`
//! reads etcd.

use std::io::BufRead;
use std::process::Command;
use std::time::Duration;

use k1s_e2e::{K1s, eventually, k1s_binary, newest_kubectl};
use k1s_store::etcd::testing::TestEtcd;

fn etcd_keys(endpoint: &str, prefix: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(async {
        let mut c = etcd_client::Client::connect([endpoint], None)
            .await
            .unwrap_or_else(|e| panic!("etcd client: {e}"));
        let resp = c
            .get(
                prefix,
                Some(
                    etcd_client::GetOptions::new()
                        .with_prefix()
                        .with_keys_only(),
                ),
            )
            .await
            .unwrap_or_else(|e| panic!("etcd get: {e}"));
        resp.kvs()
            .iter()
            .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
            .collect()
    })
}

#[test]
fn kubectl_on_a_server_backed_by_etcd() {
    let etcd = TestEtcd::start();
    let flags = ["--datastore-endpoint", etcd.endpoint.as_str()];
    let mut k1s = K1s::start_with(&flags);
    let k = newest_kubectl();

    let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  namespace: default\ndata:\n  a: b\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 80\n";
    k1s.kubectl_with(&k, &["apply", "-f", "-"], Some(doc), &[])
        .ok();
    let rv = k1s
        .kubectl(
            &k,
            &[
                "get",
                "configmap",
                "kept",
                "-o",
                "jsonpath={.metadata.resourceVersion}",
            ],
        )
        .ok()
        .to_string();
    let ip = k1s
        .kubectl(
            &k,
            &["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"],
        )
        .ok()
        .to_string();
    assert!(!ip.is_empty() && ip != "None", "{ip}");

    // kube-apiserver's layout: /registry/<resource>/<namespace>/<name>.
    let keys = etcd_keys(&etcd.endpoint, "/registry/");
    for want in [
        "/registry/configmaps/default/kept",
        "/registry/services/default/web",
        "/registry/namespaces/kube-system",
    ] {
        assert!(
            keys.iter().any(|k| k == want),
            "{want} missing from etcd: {keys:?}"
        );
    }

    // A watch sees a change made by another client.
    let mut watcher = k1s.kubectl_spawn(&k, &["get", "configmaps", "-w", "--no-headers"]);
    let stdout = watcher.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    eventually(Duration::from_secs(10), "the initial list", || {
        rx.try_recv().ok().filter(|l| l.starts_with("kept"))
    });
    k1s.kubectl(
        &k,
        &["create", "configmap", "watched", "--from-literal=x=y"],
    )
    .ok();
    eventually(Duration::from_secs(10), "the watch event", || {
        rx.try_recv().ok().filter(|l| l.starts_with("watched"))
    });
    let _ = watcher.kill();
    let _ = watcher.wait();

    // A restart reads everything back from etcd, resourceVersions unchanged.
    k1s.restart();
    let after = k1s
        .kubectl(
            &k,
            &[
                "get",
                "configmap",
                "kept",
                "-o",
                "jsonpath={.metadata.resourceVersion}",
            ],
        )
        .ok()
        .to_string();
    assert_eq!(after, rv);
    let ip_after = k1s
        .kubectl(
            &k,
            &["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"],
        )
        .ok()
        .to_string();
    assert_eq!(ip_after, ip);
    k1s.kubectl(&k, &["get", "configmap", "watched"]).ok();

    // A second server on the same etcd serves the same objects, and a write through one
    // is in a list through the other at once (a consistent list).
    let other = K1s::start_with(&flags);
    other.kubectl(&k, &["get", "configmap", "kept"]).ok();
    k1s.kubectl(&k, &["create", "configmap", "through-first"])
        .ok();
    let listed = other
        .kubectl(&k, &["get", "configmaps", "-o", "name"])
        .ok()
        .to_string();
    assert!(listed.contains("configmap/through-first"), "{listed}");
    drop(other);

    // `k1s datastore check` reads etcd.
    let out = Command::new(k1s_binary())
        .args(["datastore", "check", "--datastore-endpoint", &etcd.endpoint])
        .output()
        .unwrap_or_else(|e| panic!("k1s datastore check: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("ok"), "{text}");
}

#[test]
fn unreachable_etcd_stops_the_server_with_a_clear_error() {
    let endpoint = format!("http://127.0.0.1:{}", k1s_e2e::free_port());
    let out = Command::new(k1s_binary())
        .args(["datastore", "check", "--datastore-endpoint", &endpoint])
        .output()
        .unwrap_or_else(|e| panic!("k1s datastore check: {e}"));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("cannot connect to etcd"), "{text}");

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let port = k1s_e2e::free_port().to_string();
    let mut server = Command::new(k1s_binary())
        .args([
            "server",
            "--disable-agent",
            "--datastore-endpoint",
            &endpoint,
        ])
        .args(["--https-listen-port", &port, "--data-dir"])
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("k1s server: {e}"));
    let status = eventually(Duration::from_secs(60), "the server to give up", || {
        server.try_wait().ok().flatten()
    });
    let out = server
        .wait_with_output()
        .unwrap_or_else(|e| panic!("k1s server: {e}"));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success());
    assert!(text.contains("cannot connect to etcd"), "{text}");
}

/// Two servers on one etcd: the controllers and the scheduler run on one of them, under
/// upstream's kube-system Leases; killing that server moves them to the other within a
/// lease duration, and the controllers then work there.
#[test]
fn killing_the_leader_moves_the_controllers_and_the_scheduler() {
    let etcd = TestEtcd::start();
    let ep = etcd.endpoint.as_str();
    let mut a = K1s::start_with(&["--datastore-endpoint", ep, "--node-name", "server-a"]);
    let b = K1s::start_with(&["--datastore-endpoint", ep, "--node-name", "server-b"]);
    let k = newest_kubectl();
    let holder = |k1s: &K1s, lease: &str| {
        k1s.kubectl(
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
            Some(holder(&b, lease)).filter(|h| !h.is_empty())
        });
        assert!(h.starts_with("server-a_"), "{lease}: {h}");
    }
    a.kill();
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        // 15 s of lease, plus a retry period of 2 s and some slack for a busy CI host.
        eventually(Duration::from_secs(25), "the other server to lead", || {
            Some(holder(&b, lease)).filter(|h| h.starts_with("server-b_"))
        });
    }
    // The deployment controller now runs on b.
    b.kubectl(&k, &["create", "deployment", "moved", "--image=busybox"])
        .ok();
    eventually(
        Duration::from_secs(15),
        "a ReplicaSet from the new leader",
        || {
            let out = b
                .kubectl(&k, &["get", "replicasets", "-l", "app=moved", "-o", "name"])
                .stdout;
            Some(out).filter(|o| o.contains("replicaset"))
        },
    );
}
