//! Issue 9, services and service accounts, against a real `k1s server` through kubectl:
//! Endpoints and EndpointSlices follow the pods a Service selects (the test plays the
//! kubelet, patching pod status), every namespace gets the `default` ServiceAccount and
//! the `kube-root-ca.crt` ConfigMap, and `kubectl create token` issues tokens that
//! authenticate as the service account. One server serves every case, a namespace each
//! (one test, so the server is stopped when it ends).

use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, newest_kubectl};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn services_and_service_accounts() {
    let k1s = K1s::start();
    let k = newest_kubectl();
    endpoints_and_slices_follow_the_pods_a_service_selects(&k1s, &k);
    every_namespace_gets_the_default_account_and_the_root_ca(&k1s, &k);
    create_token_issues_a_token_that_authenticates_as_the_account(&k1s, &k);
}

fn apply(k1s: &K1s, k: &Kubectl, yaml: &str) {
    k1s.kubectl_with(k, &["apply", "-f", "-"], Some(yaml), &[])
        .ok();
}

fn get(k1s: &K1s, k: &Kubectl, ns: &str, args: &[&str]) -> String {
    let out = k1s.kubectl_in(k, ns, args);
    if out.code == 0 {
        out.stdout.trim().to_string()
    } else {
        String::new()
    }
}

fn set_pod_status(k1s: &K1s, k: &Kubectl, ns: &str, pod: &str, ip: &str, ready: bool) {
    let status = format!(
        r#"{{"status":{{"phase":"Running","podIP":"{ip}","podIPs":[{{"ip":"{ip}"}}],"conditions":[{{"type":"Ready","status":"{}"}}]}}}}"#,
        if ready { "True" } else { "False" }
    );
    k1s.kubectl_in(
        k,
        ns,
        &[
            "patch",
            "pod",
            pod,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ],
    )
    .ok();
}

fn endpoints_and_slices_follow_the_pods_a_service_selects(k1s: &K1s, k: &Kubectl) {
    let ns = "svc-endpoints";
    k1s.kubectl(k, &["create", "namespace", ns]).ok();
    apply(
        k1s,
        k,
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: svc-node\n",
    );
    apply(
        k1s,
        k,
        &format!(
            r#"apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: a, namespace: {ns}, labels: {{app: web}}}}
spec:
  nodeName: svc-node
  containers: [{{name: c, image: nginx, ports: [{{name: http, containerPort: 8080}}]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: b, namespace: {ns}, labels: {{app: web}}}}
spec:
  nodeName: svc-node
  containers: [{{name: c, image: nginx, ports: [{{name: http, containerPort: 8080}}]}}]
"#
        ),
    );
    set_pod_status(k1s, k, ns, "a", "10.42.0.11", true);
    set_pod_status(k1s, k, ns, "b", "10.42.0.12", false);

    let ready = |k1s: &K1s| {
        get(
            k1s,
            k,
            ns,
            &[
                "get",
                "endpoints",
                "web",
                "-o",
                "jsonpath={.subsets[*].addresses[*].ip}",
            ],
        )
    };
    let not_ready = |k1s: &K1s| {
        get(
            k1s,
            k,
            ns,
            &[
                "get",
                "endpoints",
                "web",
                "-o",
                "jsonpath={.subsets[*].notReadyAddresses[*].ip}",
            ],
        )
    };
    eventually(WAIT, "a ready, b not ready in the Endpoints", || {
        (ready(k1s) == "10.42.0.11" && not_ready(k1s) == "10.42.0.12").then_some(())
    });
    // kubectl's columns: the ready addresses with their resolved port.
    let table = get(k1s, k, ns, &["get", "endpoints", "web"]);
    assert!(table.contains("10.42.0.11:8080"), "{table}");
    assert!(!table.contains("10.42.0.12"), "{table}");

    let slice_table = eventually(WAIT, "an EndpointSlice with both pods", || {
        let t = get(
            k1s,
            k,
            ns,
            &[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
            ],
        );
        t.contains("10.42.0.11,10.42.0.12").then_some(t)
    });
    let row = slice_table.lines().nth(1).unwrap_or_default();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert!(cols[0].starts_with("web-"), "{slice_table}");
    assert_eq!(
        &cols[1..4],
        ["IPv4", "8080", "10.42.0.11,10.42.0.12"],
        "{slice_table}"
    );
    let conditions = get(
        k1s,
        k,
        ns,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={range .items[0].endpoints[*]}{.targetRef.name}={.conditions.ready}/{.conditions.serving} {end}",
        ],
    );
    assert_eq!(conditions, "a=true/true b=false/false", "{conditions}");
    let owner = get(
        k1s,
        k,
        ns,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[0].metadata.ownerReferences[0].kind}/{.items[0].metadata.ownerReferences[0].name} {.items[0].metadata.labels.endpointslice\\.kubernetes\\.io/managed-by}",
        ],
    );
    assert_eq!(owner, "Service/web endpointslice-controller.k8s.io");

    // a stops being ready: it moves to notReadyAddresses; b becomes ready.
    set_pod_status(k1s, k, ns, "a", "10.42.0.11", false);
    set_pod_status(k1s, k, ns, "b", "10.42.0.12", true);
    eventually(WAIT, "the addresses to swap", || {
        (ready(k1s) == "10.42.0.12" && not_ready(k1s) == "10.42.0.11").then_some(())
    });
    // The Service goes: so do its Endpoints and slices.
    k1s.kubectl_in(k, ns, &["delete", "service", "web"]).ok();
    eventually(WAIT, "the Endpoints and slices to go", || {
        let eps = k1s.kubectl_in(k, ns, &["get", "endpoints", "web"]);
        let slices = get(
            k1s,
            k,
            ns,
            &[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
                "-o",
                "name",
            ],
        );
        (eps.code != 0 && slices.is_empty()).then_some(())
    });
}

fn every_namespace_gets_the_default_account_and_the_root_ca(k1s: &K1s, k: &Kubectl) {
    let ns = "svc-accounts";
    k1s.kubectl(k, &["create", "namespace", ns]).ok();
    eventually(WAIT, "the default ServiceAccount", || {
        (get(k1s, k, ns, &["get", "sa", "default", "-o", "name"]) == "serviceaccount/default")
            .then_some(())
    });
    let ca = std::fs::read_to_string(k1s.tls_files().ca).expect("CA file");
    let published = eventually(WAIT, "kube-root-ca.crt", || {
        let v = get(
            k1s,
            k,
            ns,
            &[
                "get",
                "configmap",
                "kube-root-ca.crt",
                "-o",
                "jsonpath={.data.ca\\.crt}",
            ],
        );
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(published.trim(), ca.trim());
    // The system namespaces have both too.
    for system in ["default", "kube-system", "kube-public"] {
        eventually(WAIT, "the system namespaces' objects", || {
            let sa = get(k1s, k, system, &["get", "sa", "default", "-o", "name"]);
            let cm = get(
                k1s,
                k,
                system,
                &["get", "cm", "kube-root-ca.crt", "-o", "name"],
            );
            (!sa.is_empty() && !cm.is_empty()).then_some(())
        });
    }
    // Deleted, they come back.
    k1s.kubectl_in(k, ns, &["delete", "sa", "default"]).ok();
    k1s.kubectl_in(k, ns, &["delete", "cm", "kube-root-ca.crt"])
        .ok();
    eventually(WAIT, "both to come back", || {
        let sa = get(k1s, k, ns, &["get", "sa", "default", "-o", "name"]);
        let cm = get(k1s, k, ns, &["get", "cm", "kube-root-ca.crt", "-o", "name"]);
        (!sa.is_empty() && !cm.is_empty()).then_some(())
    });
}

fn create_token_issues_a_token_that_authenticates_as_the_account(k1s: &K1s, k: &Kubectl) {
    let ns = "svc-token";
    k1s.kubectl(k, &["create", "namespace", ns]).ok();
    eventually(WAIT, "the default ServiceAccount", || {
        (!get(k1s, k, ns, &["get", "sa", "default", "-o", "name"]).is_empty()).then_some(())
    });
    // Under RBAC an account may read what it is bound to: here, the view role.
    k1s.kubectl_in(
        k,
        ns,
        &[
            "create",
            "rolebinding",
            "default-view",
            "--clusterrole=view",
            &format!("--serviceaccount={ns}:default"),
        ],
    )
    .ok();
    let token = k1s
        .kubectl_in(k, ns, &["create", "token", "default", "--duration=20m"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");
    // The token alone (no client certificate) is accepted.
    let kubeconfig = k1s.write_file(
        "token.kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k1s\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: sa\n  context: {{cluster: k1s, user: sa, namespace: {ns}}}\ncurrent-context: sa\n",
            k1s.url(),
            k1s.tls_files().ca.display()
        ),
    );
    let kc = kubeconfig.to_str().unwrap_or_default();
    let as_sa = std::process::Command::new(&k.path)
        .args(["--kubeconfig", kc, "get", "sa", "default", "-o", "name"])
        .output()
        .expect("kubectl");
    assert!(
        as_sa.status.success(),
        "{}",
        String::from_utf8_lossy(&as_sa.stderr)
    );
    // kubectl auth whoami names the account.
    let whoami = std::process::Command::new(&k.path)
        .args([
            "--kubeconfig",
            kc,
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ])
        .output()
        .expect("kubectl");
    let whoami = String::from_utf8_lossy(&whoami.stdout).to_string();
    assert_eq!(
        whoami.trim(),
        format!(
            r#"system:serviceaccount:{ns}:default ["system:serviceaccounts","system:serviceaccounts:{ns}","system:authenticated"]"#
        )
    );
    // A forged token is refused as upstream refuses it (without a client certificate:
    // a valid one would authenticate the request whatever the token, as upstream).
    let mut forged = token.clone();
    forged.truncate(token.len() - 4);
    forged.push_str("AAAA");
    let refused = std::process::Command::new(&k.path)
        .args([
            "--kubeconfig",
            kc,
            "--token",
            &forged,
            "get",
            "sa",
            "-n",
            ns,
        ])
        .output()
        .expect("kubectl");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && (stderr.contains("Unauthorized") || stderr.contains("You must be logged in")),
        "{stderr}"
    );
    // A token bound to a pod lives as long as the pod.
    apply(
        k1s,
        k,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: holder, namespace: {ns}}}\nspec:\n  serviceAccountName: default\n  containers: [{{name: c, image: nginx}}]\n"
        ),
    );
    let bound = k1s
        .kubectl_in(
            k,
            ns,
            &[
                "create",
                "token",
                "default",
                "--bound-object-kind",
                "Pod",
                "--bound-object-name",
                "holder",
            ],
        )
        .ok()
        .trim()
        .to_string();
    // Through the token-only kubeconfig: a client certificate would authenticate anyway.
    let with_bound = |_: &K1s| {
        let out = std::process::Command::new(&k.path)
            .args([
                "--kubeconfig",
                kc,
                "--token",
                &bound,
                "get",
                "sa",
                "default",
                "-n",
                ns,
                "-o",
                "name",
            ])
            .output()
            .expect("kubectl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    assert_eq!(with_bound(k1s).1.trim(), "serviceaccount/default");
    k1s.kubectl_in(
        k,
        ns,
        &["delete", "pod", "holder", "--grace-period=0", "--force"],
    );
    eventually(WAIT, "the pod-bound token to be refused", || {
        (with_bound(k1s).0 != 0).then_some(())
    });
    // Deleting the account revokes its tokens.
    k1s.kubectl_in(k, ns, &["delete", "sa", "default"]).ok();
    let after = std::process::Command::new(&k.path)
        .args(["--kubeconfig", kc, "get", "sa", "-o", "name"])
        .output()
        .expect("kubectl");
    assert!(!after.status.success());
}
