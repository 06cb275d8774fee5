//! HA with the embedded etcd (k3s's `--cluster-init`): two `k1s server --disable-agent`
//! processes on loopback with their own ports and data dirs. The first starts the etcd
//! cluster, the second joins it with the first's token; kubectl on each sees what was
//! created through the other, the etcd cluster has two members, a restarted member comes
//! back, deleting a server's Node removes its member (which joins again as a new one when
//! that server starts again), and a snapshot restored with `k1s etcd-snapshot restore`
//! (what `k1s server --cluster-reset --cluster-reset-restore-path` does, on a stopped
//! server) brings back the objects of its time only. Needs Debian's etcd-server and etcd-client (etcdctl); fails without them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k1s_e2e::{EtcdReaper, K1s, Run, eventually, free_port, k1s_binary, newest_kubectl};

fn k1s(args: &[&str]) -> Run {
    let out = Command::new(k1s_binary())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run k1s {args:?}: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        command: format!("k1s {}", args.join(" ")),
    }
}

/// Who `server` says a bearer token is (`kubectl auth whoami` with a token kubeconfig).
fn whoami(server: &K1s, token: &str) -> String {
    let ca = std::fs::read_to_string(server.data_dir().join("server/tls/ca.crt"))
        .unwrap_or_else(|e| panic!("ca.crt: {e}"));
    let ca_path = server.write_file("token-ca.crt", &ca);
    let kc = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority: {}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: {token}\n",
        server.url(),
        ca_path.display()
    );
    let kc = server.write_file("token.kubeconfig", &kc);
    let out = Command::new(&newest_kubectl().path)
        .arg("--kubeconfig")
        .arg(kc)
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .output()
        .unwrap_or_else(|e| panic!("kubectl: {e}"));
    assert!(
        out.status.success(),
        "whoami: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn data(s: &K1s) -> String {
    s.data_dir().to_string_lossy().into_owned()
}

fn member_list(s: &K1s) -> String {
    k1s(&["etcd", "member", "list", "--data-dir", &data(s)])
        .ok()
        .to_string()
}

fn has_configmap(s: &K1s, name: &str) -> bool {
    let k = newest_kubectl();
    s.kubectl(&k, &["get", "configmap", name]).code == 0
}

fn etcd_flags(name: &str, client: u16, peer: u16) -> Vec<String> {
    vec![
        "--node-name".into(),
        name.into(),
        "--etcd-client-port".into(),
        client.to_string(),
        "--etcd-peer-port".into(),
        peer.to_string(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn two_servers_on_embedded_etcd_share_objects_and_restore_a_snapshot() {
    for (bin, package) in [
        ("/usr/bin/etcd", "etcd-server"),
        ("/usr/bin/etcdctl", "etcd-client"),
    ] {
        assert!(
            Path::new(bin).is_file(),
            "{bin} is missing: apt-get install {package}"
        );
    }
    let k = newest_kubectl();
    let a_flags = etcd_flags("emb-a", free_port(), free_port());
    // Scheduled snapshots every 2 s, the newest 2 kept.
    let mut a_args = vec![
        "--cluster-init",
        "--etcd-snapshot-schedule-cron",
        "@every 2s",
        "--etcd-snapshot-retention",
        "2",
    ];
    a_args.extend(strs(&a_flags));
    let mut a = K1s::start_with(&a_args);
    let mut reaper = EtcdReaper(vec![a.data_dir().to_path_buf()]);

    let token = std::fs::read_to_string(a.data_dir().join("server").join("token"))
        .unwrap_or_else(|e| panic!("the first server's token: {e}"));
    let token = token.trim().to_string();
    let b_flags = etcd_flags("emb-b", free_port(), free_port());
    let a_url = a.url();
    let mut b_args = vec!["--server", a_url.as_str(), "--token", token.as_str()];
    b_args.extend(strs(&b_flags));
    let mut b = K1s::start_with(&b_args);
    reaper.0.push(b.data_dir().to_path_buf());

    // The same CA: the first server's kubeconfig works against the second.
    assert_eq!(
        std::fs::read(a.data_dir().join("server/tls/ca.crt")).ok(),
        std::fs::read(b.data_dir().join("server/tls/ca.crt")).ok(),
        "the joined server has another CA"
    );
    a.kubectl(&k, &["create", "configmap", "from-a"]).ok();
    b.kubectl(&k, &["create", "configmap", "from-b"]).ok();
    eventually(
        Duration::from_secs(10),
        "each sees the other's objects",
        || (has_configmap(&a, "from-b") && has_configmap(&b, "from-a")).then_some(()),
    );
    // A service account token issued by one server is accepted by the other.
    let sa_token = a
        .kubectl(&k, &["create", "token", "default"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(
        whoami(&b, &sa_token),
        "system:serviceaccount:default:default"
    );

    // Two members, on the ports given.
    let members = member_list(&a);
    assert_eq!(members.lines().count(), 3, "{members}");
    for (name, flags) in [("emb-a-", &a_flags), ("emb-b-", &b_flags)] {
        assert!(members.contains(name), "{members}");
        assert!(
            members.contains(&format!("https://127.0.0.1:{}", flags[5])),
            "{members}"
        );
    }

    // A restarted member comes back with its data.
    b.restart();
    assert!(has_configmap(&b, "from-a"));
    assert_eq!(member_list(&b).lines().count(), 3);

    // Scheduled snapshots keep coming, and only the newest two stay.
    let scheduled = |s: &K1s| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(s.data_dir().join("server/db/snapshots"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("etcd-snapshot-emb-a-"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let first = eventually(Duration::from_secs(20), "two scheduled snapshots", || {
        let names = scheduled(&a);
        (names.len() == 2).then_some(names)
    });
    eventually(
        Duration::from_secs(20),
        "newer scheduled snapshots, two kept",
        || {
            let names = scheduled(&a);
            (names.len() == 2 && names.iter().all(|n| !first.contains(n))).then_some(())
        },
    );

    // Snapshot, then more objects.
    let saved = k1s(&[
        "etcd-snapshot",
        "save",
        "--name",
        "before",
        "--data-dir",
        &data(&a),
    ]);
    let saved = saved.ok().to_string();
    assert!(saved.starts_with("Snapshot before-emb-a-"), "{saved}");
    let listed = k1s(&["etcd-snapshot", "ls", "--data-dir", &data(&a)])
        .ok()
        .to_string();
    let snapshot_name = saved
        .trim()
        .trim_start_matches("Snapshot ")
        .trim_end_matches(" saved.")
        .to_string();
    assert!(listed.starts_with("Name"), "{listed}");
    assert!(listed.contains(&snapshot_name), "{listed}");
    let snapshot = a
        .data_dir()
        .join("server/db/snapshots")
        .join(&snapshot_name);
    b.kubectl(&k, &["create", "configmap", "after-snapshot"])
        .ok();
    eventually(Duration::from_secs(10), "the later object on a", || {
        has_configmap(&a, "after-snapshot").then_some(())
    });

    // `k1s etcd-snapshot restore` refuses while the server's etcd runs.
    let a_data = data(&a);
    let restore = || {
        k1s(&[
            "etcd-snapshot",
            "restore",
            &snapshot_name,
            "--data-dir",
            &a_data,
        ])
    };
    let refused = restore();
    assert!(
        refused.fails().contains("etcd is running on"),
        "{}",
        refused.stderr
    );
    // Deleting a server's Node removes its etcd member (k3s's member removal). These servers
    // run no kubelet, so the test registers b's Node as b's kubelet would; b marks it with
    // its member, the leading server holds it with a finalizer.
    let register_b = || {
        a.kubectl_with(
            &k,
            &["create", "-f", "-"],
            Some(r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "emb-b"}}"#),
            &[],
        )
        .ok();
    };
    // b's Node's etcd annotations (member name, removed member name) and finalizers.
    let b_node = || {
        let out = a.kubectl(
            &k,
            &[
                "get",
                "node",
                "emb-b",
                "-o",
                r"jsonpath={.metadata.annotations.etcd\.k3s\.cattle\.io/node-name} {.metadata.annotations.etcd\.k3s\.cattle\.io/removed-node-name} {.metadata.finalizers}",
            ],
        );
        (out.code == 0).then_some(out.stdout)
    };
    let marked_and_held = |node: &str| {
        node.starts_with("emb-b-") && node.contains("wrangler.cattle.io/managed-etcd-controller")
    };
    register_b();
    eventually(Duration::from_secs(30), "b's Node marked and held", || {
        b_node().filter(|n| marked_and_held(n)).map(|_| ())
    });
    // b goes (SIGKILL leaves its etcd running: two members need both for a quorum); its
    // Node is deleted, and the member list shrinks to a alone.
    b.kill();
    a.kubectl(&k, &["delete", "node", "emb-b", "--wait=false"])
        .ok();
    eventually(Duration::from_secs(90), "b's member removed", || {
        let members = member_list(&a);
        (members.lines().count() == 2 && !members.contains("emb-b-")).then_some(())
    });
    eventually(Duration::from_secs(30), "b's Node gone", || {
        (a.kubectl(&k, &["get", "node", "emb-b"]).code != 0).then_some(())
    });
    a.kubectl(&k, &["create", "configmap", "after-removal"])
        .ok();
    // b started again finds its member removed, leaves a tombstone and stops; the next
    // start joins as a new member (its old data moved aside), as k3s's servers do.
    let (code, log) = b.start_expecting_failure();
    assert_ne!(code, 0, "{log}");
    assert!(log.contains("removed from the cluster"), "{log}");
    b.start_again();
    assert!(has_configmap(&b, "after-removal"));
    let members = member_list(&a);
    assert_eq!(members.lines().count(), 3, "{members}");
    // `etcd.k3s.cattle.io/remove=true` removes the member and keeps the Node, which
    // records the removed member's name.
    register_b();
    eventually(
        Duration::from_secs(30),
        "b's new Node marked and held",
        || b_node().filter(|n| marked_and_held(n)).map(|_| ()),
    );
    a.kubectl(
        &k,
        &[
            "annotate",
            "node",
            "emb-b",
            "etcd.k3s.cattle.io/remove=true",
        ],
    )
    .ok();
    eventually(
        Duration::from_secs(30),
        "b's member removed, its Node kept",
        || {
            let members = member_list(&a);
            let node = b_node()?;
            (members.lines().count() == 2 && node.starts_with(" emb-b-")).then_some(())
        },
    );

    // Restore on the first server: the later object is gone, the earlier ones remain.
    b.stop();
    a.stop();
    let restored = restore();
    assert!(
        restored
            .ok()
            .contains("is the sole member of a new etcd cluster"),
        "{}",
        restored.stdout
    );
    a.start_again();
    assert!(has_configmap(&a, "from-a"));
    assert!(has_configmap(&a, "from-b"));
    assert!(!has_configmap(&a, "after-snapshot"));
    let members = member_list(&a);
    assert_eq!(members.lines().count(), 2, "{members}");

    // delete removes the snapshot.
    k1s(&[
        "etcd-snapshot",
        "delete",
        &snapshot_name,
        "--data-dir",
        &data(&a),
    ])
    .ok();
    assert!(!snapshot.exists());
    a.stop();
    drop(reaper);
}
