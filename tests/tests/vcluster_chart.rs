//! The charts/k1s Helm chart: k1s as a virtual cluster in a pod of k1s itself. `helm install`
//! with the image scripts/build-image makes from the binary under test; the StatefulSet's
//! pod runs `k1s server`, stores its kubeconfig in a Secret through its ServiceAccount, and
//! answers kubectl through its Service; its data survives the pod being replaced (PVC).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use k1s_e2e::{K1s, Run, eventually, k1s_binary, newest_kubectl, tools_dir};

/// Runs helm against the outer cluster.
fn helm(k1s: &K1s, args: &[&str]) -> Run {
    let helm = tools_dir().join("helm");
    let out = Command::new(&helm)
        .arg("--kubeconfig")
        .arg(k1s.kubeconfig())
        .args(args)
        .env("HELM_CACHE_HOME", k1s.dir().join("helm-cache"))
        .env("HELM_CONFIG_HOME", k1s.dir().join("helm-config"))
        .env("HELM_DATA_HOME", k1s.dir().join("helm-data"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (scripts/install-kubectl installs it): {e}",
                helm.display()
            )
        });
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        command: format!("helm {}", args.join(" ")),
    }
}

/// Builds the k1s image from the binary under test and imports it into the node.
fn load_k1s_image(k1s: &K1s) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out_dir = k1s.dir().join("image");
    let out = Command::new(repo.join("scripts/build-image"))
        .args(["--fast", "--name", "docker.io/k1s/k1s:e2e", "--binary"])
        .arg(k1s_binary())
        .arg(&out_dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/build-image: {e}"));
    assert!(
        out.status.success(),
        "scripts/build-image failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(k1s_binary())
        .args(["image", "import", "--data-dir"])
        .arg(k1s.data_dir())
        .arg(out_dir.join("k1s.tar"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run k1s image import: {e}"));
    assert!(
        out.status.success(),
        "k1s image import failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&out_dir);
}

/// kubectl against the virtual cluster: the Secret's kubeconfig, dialled at the Service's
/// cluster IP (the host cannot resolve cluster names) with the certificate checked for the
/// Service's name.
fn vc_kubectl(k1s: &K1s, kubeconfig: &Path, cluster_ip: &str, args: &[&str]) -> Run {
    let k = newest_kubectl();
    let server = format!("https://{cluster_ip}:443");
    let out = Command::new(&k.path)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "--server",
            &server,
            "--tls-server-name",
            "vc-k1s.team-a.svc",
        ])
        .arg("--cache-dir")
        .arg(k1s.dir().join("vc-cache"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        command: format!("kubectl (virtual cluster) {}", args.join(" ")),
    }
}

#[test]
fn chart_runs_k1s_as_a_virtual_cluster_in_k1s() {
    let k1s = K1s::start_with_agent(&[]);
    let k = newest_kubectl();
    load_k1s_image(&k1s);
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/k1s");
    let chart = chart.to_string_lossy();
    helm(
        &k1s,
        &[
            "install",
            "vc",
            &chart,
            "-n",
            "team-a",
            "--create-namespace",
            "--set",
            "image.tag=e2e",
            "--set",
            "persistence.size=64Mi",
        ],
    )
    .ok();

    // The pod becomes Ready (its /readyz probe) on a volume the local-path provisioner made.
    eventually(
        Duration::from_secs(120),
        "the virtual cluster's pod Ready",
        || {
            let out = k1s.kubectl_in(
                &k,
                "team-a",
                &[
                    "get",
                    "pod",
                    "vc-k1s-0",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ],
            );
            (out.code == 0 && out.stdout == "True").then_some(())
        },
    );
    assert_eq!(
        k1s.kubectl_in(
            &k,
            "team-a",
            &[
                "get",
                "pvc",
                "data-vc-k1s-0",
                "-o",
                "jsonpath={.status.phase}"
            ]
        )
        .ok(),
        "Bound"
    );

    // Its admin kubeconfig, written through the pod's ServiceAccount.
    let config = eventually(Duration::from_secs(60), "the kubeconfig Secret", || {
        let out = k1s.kubectl_in(
            &k,
            "team-a",
            &[
                "get",
                "secret",
                "vc-k1s-kubeconfig",
                "-o",
                "jsonpath={.data.config}",
            ],
        );
        (out.code == 0 && !out.stdout.is_empty()).then(|| out.stdout.clone())
    });
    let config = base64::engine::general_purpose::STANDARD
        .decode(config.trim())
        .unwrap_or_else(|e| panic!("Secret data is not base64: {e}"));
    let config = String::from_utf8_lossy(&config).into_owned();
    assert!(
        config.contains("server: https://vc-k1s.team-a.svc:443"),
        "kubeconfig names the Service:\n{config}"
    );
    let kubeconfig = k1s.write_file("vc.yaml", &config);
    let cluster_ip = k1s
        .kubectl_in(
            &k,
            "team-a",
            &["get", "svc", "vc-k1s", "-o", "jsonpath={.spec.clusterIP}"],
        )
        .ok()
        .to_string();

    // The virtual cluster is its own API: a namespace made there is not in the outer one.
    eventually(Duration::from_secs(30), "the virtual cluster's API", || {
        (vc_kubectl(&k1s, &kubeconfig, &cluster_ip, &["get", "ns", "default"]).code == 0)
            .then_some(())
    });
    vc_kubectl(
        &k1s,
        &kubeconfig,
        &cluster_ip,
        &["create", "namespace", "inside"],
    )
    .ok();
    vc_kubectl(
        &k1s,
        &kubeconfig,
        &cluster_ip,
        &[
            "-n",
            "inside",
            "create",
            "configmap",
            "kept",
            "--from-literal=a=b",
        ],
    )
    .ok();
    k1s.kubectl(&k, &["get", "ns", "inside"]).fails();

    // The pod replaced: the StatefulSet makes it again on the same claim, and the data stays.
    k1s.kubectl_in(&k, "team-a", &["delete", "pod", "vc-k1s-0", "--wait=true"])
        .ok();
    eventually(Duration::from_secs(120), "the replaced pod Ready", || {
        let out = k1s.kubectl_in(
            &k,
            "team-a",
            &[
                "get",
                "pod",
                "vc-k1s-0",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ],
        );
        (out.code == 0 && out.stdout == "True").then_some(())
    });
    let data = eventually(
        Duration::from_secs(30),
        "the ConfigMap after the restart",
        || {
            let out = vc_kubectl(
                &k1s,
                &kubeconfig,
                &cluster_ip,
                &[
                    "-n",
                    "inside",
                    "get",
                    "configmap",
                    "kept",
                    "-o",
                    "jsonpath={.data.a}",
                ],
            );
            (out.code == 0).then(|| out.stdout.clone())
        },
    );
    assert_eq!(data, "b");

    helm(&k1s, &["uninstall", "vc", "-n", "team-a", "--wait"]).ok();
}
