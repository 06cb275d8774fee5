//! Node, network, CLI and auth tests the API alone decides (no pod has to run).

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};

use super::lifecycle::{Resource, lifecycle};
use super::{Test, t};
use crate::ctx::{Ctx, Fail, R, eventually, obj};
use crate::{ensure, fail};

fn pod(name: &str, extra_spec: Value) -> Value {
    let mut spec = json!({"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

// ---- node

async fn configmap_update(c: Ctx) -> R {
    let api: Api<ConfigMap> = c.api();
    api.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "configmap-test-upd"}, "data": {"data-1": "value-1"}}))?,
    )
    .await?;
    let mut cm = api.get("configmap-test-upd").await?;
    cm.data
        .get_or_insert_with(Default::default)
        .insert("data-1".into(), "value-2".into());
    api.replace("configmap-test-upd", &PostParams::default(), &cm)
        .await?;
    let got = api.get("configmap-test-upd").await?;
    ensure!(
        got.data
            .unwrap_or_default()
            .get("data-1")
            .map(String::as_str)
            == Some("value-2"),
        "the update did not stick"
    );
    Ok(())
}

async fn pods_qos(c: Ctx) -> R {
    let res = json!({"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"cpu": "100m", "memory": "100Mi"}});
    let mut p = pod("pod-qos-class", json!({}));
    p["spec"]["containers"][0]["resources"] = res;
    let out = c
        .k_stdin(&["create", "-f", "-", "-o", "json"], Some(&p.to_string()))
        .await?;
    let v: Value = serde_json::from_str(&out)?;
    ensure!(
        v["status"]["qosClass"] == "Guaranteed",
        "qosClass is {}, want Guaranteed",
        v["status"]["qosClass"]
    );
    Ok(())
}

async fn pods_delete_collection(c: Ctx) -> R {
    let api: Api<Pod> = c.api();
    for i in 0..3 {
        let mut p = pod(&format!("test-pod-{i}"), json!({}));
        p["metadata"]["labels"] = json!({"type": "Testing"});
        api.create(&PostParams::default(), &obj(p)?).await?;
    }
    let lp = ListParams::default().labels("type=Testing");
    ensure!(
        api.list(&lp).await?.items.len() == 3,
        "the 3 pods are not listed by label"
    );
    api.delete_collection(&DeleteParams::default(), &lp).await?;
    eventually(60, "the pods to go", || async {
        api.list(&lp).await.ok()?.items.is_empty().then_some(())
    })
    .await
}

fn runtime_class(name: &str, overhead: bool) -> Value {
    let mut rc = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name}, "handler": "runc"});
    if overhead {
        rc["overhead"] = json!({"podFixed": {"cpu": "250m", "memory": "1Mi"}});
    }
    rc
}

async fn runtime_class_api(c: Ctx) -> R {
    let r = Resource {
        api_version: "node.k8s.io/v1",
        kind: "RuntimeClass",
        plural: "runtimeclasses",
        namespaced: false,
        body: json!({"handler": "runc"}),
        status_patch: None,
    };
    lifecycle(&c, &r).await
}

async fn expect_forbidden_pod(c: &Ctx, class: &str) -> R {
    let p = pod("test-runtimeclass", json!({"runtimeClassName": class}));
    let (code, v) = c
        .raw(
            "POST",
            &format!("/api/v1/namespaces/{}/pods", c.ns),
            Some(&p),
        )
        .await;
    ensure!(
        code == 403,
        "a pod naming the missing RuntimeClass {class}: {code} {v}, want 403 Forbidden"
    );
    Ok(())
}

async fn runtime_class_missing(c: Ctx) -> R {
    expect_forbidden_pod(&c, &c.name("nonexistent")).await
}

async fn runtime_class_deleted(c: Ctx) -> R {
    let name = c.name("delete-me");
    c.k_stdin(
        &["create", "-f", "-"],
        Some(&runtime_class(&name, false).to_string()),
    )
    .await?;
    c.k(&["delete", "runtimeclass", &name]).await?;
    eventually(30, "the RuntimeClass to go", || async {
        (c.raw(
            "GET",
            &format!("/apis/node.k8s.io/v1/runtimeclasses/{name}"),
            None,
        )
        .await
        .0 == 404)
            .then_some(())
    })
    .await?;
    expect_forbidden_pod(&c, &name).await
}

async fn sysctls_invalid(c: Ctx) -> R {
    let p = pod(
        "sysctl-test",
        json!({"securityContext": {"sysctls": [
        {"name": "kernel.shmmax", "value": "100000000"}, {"name": "foo-", "value": "bar"}, {"name": "bar..", "value": "42"}]}}),
    );
    let (code, v) = c
        .raw(
            "POST",
            &format!("/api/v1/namespaces/{}/pods", c.ns),
            Some(&p),
        )
        .await;
    let msg = v["message"].as_str().unwrap_or_default();
    ensure!(
        code == 422
            && msg.contains(r#"Invalid value: "foo-""#)
            && msg.contains(r#"Invalid value: "bar..""#),
        "a pod with invalid sysctls: {code} {msg}"
    );
    ensure!(
        !msg.contains(r#"Invalid value: "kernel.shmmax""#),
        "the valid sysctl was refused too: {msg}"
    );
    Ok(())
}

// ---- network

async fn kubernetes_service(c: Ctx) -> R {
    let api: Api<Service> = Api::namespaced(c.client(), "default");
    let svc = api.get("kubernetes").await?;
    let ports = svc.spec.and_then(|s| s.ports).unwrap_or_default();
    ensure!(
        ports
            .iter()
            .any(|p| p.port == 443 && p.name.as_deref() == Some("https")),
        "the kubernetes service lacks port 443 https: {ports:?}"
    );
    Ok(())
}

async fn kubernetes_endpoints(c: Ctx) -> R {
    let (code, ep) = c
        .raw(
            "GET",
            "/api/v1/namespaces/default/endpoints/kubernetes",
            None,
        )
        .await;
    ensure!(code == 200, "GET endpoints kubernetes: {code}");
    let ep_ips: Vec<String> = ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["ip"].as_str().map(String::from))
        .collect();
    ensure!(
        !ep_ips.is_empty(),
        "the kubernetes Endpoints hold no address: {ep}"
    );
    let (code, slices) = c.raw("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes", None).await;
    ensure!(code == 200, "listing the kubernetes EndpointSlices: {code}");
    let slice_ips: Vec<String> = slices["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    ensure!(
        !slice_ips.is_empty() && ep_ips.iter().all(|ip| slice_ips.contains(ip)),
        "EndpointSlices {slice_ips:?} do not match Endpoints {ep_ips:?}"
    );
    Ok(())
}

async fn find_kubernetes_service(c: Ctx) -> R {
    let api: Api<Service> = c.all();
    let l = api.list(&ListParams::default()).await?;
    ensure!(
        l.items
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some("kubernetes")
                && s.metadata.namespace.as_deref() == Some("default")),
        "listing services across namespaces misses default/kubernetes"
    );
    Ok(())
}

async fn services_collection(c: Ctx) -> R {
    let api: Api<Service> = c.api();
    for i in 1..=3 {
        api.create(&PostParams::default(), &obj(json!({"metadata": {"name": format!("e2e-svc-{i}"), "labels": {"e2e-test-service": "delete"}},
            "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}))?).await?;
    }
    let lp = ListParams::default().labels("e2e-test-service=delete");
    ensure!(
        api.list(&lp).await?.items.len() == 3,
        "the 3 services are not listed"
    );
    api.delete_collection(&DeleteParams::default(), &lp).await?;
    eventually(30, "the services to go", || async {
        api.list(&lp).await.ok()?.items.is_empty().then_some(())
    })
    .await
}

async fn service_status(c: Ctx) -> R {
    let r = Resource {
        api_version: "v1",
        kind: "Service",
        plural: "services",
        namespaced: true,
        body: json!({"spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "targetPort": 80}]}}),
        status_patch: Some(
            json!({"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.1"}]},
            "conditions": [{"type": "StatusPatched", "status": "True", "reason": "E2E", "message": "Set from e2e test", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}),
        ),
    };
    lifecycle(&c, &r).await
}

async fn empty_service(c: Ctx, slices: bool) -> R {
    c.k_stdin(&["create", "-f", "-"], Some(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "example-empty-selector"},
        "spec": {"selector": {"does-not-match-anything": "endpoints-and-endpoint-slices"}, "ports": [{"name": "example", "port": 80, "protocol": "TCP"}]}}).to_string())).await?;
    let path = if slices {
        format!(
            "/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dexample-empty-selector",
            c.ns
        )
    } else {
        format!(
            "/api/v1/namespaces/{}/endpoints/example-empty-selector",
            c.ns
        )
    };
    let count = |v: &Value| {
        if slices {
            v["items"].as_array().map(Vec::len).unwrap_or(0)
        } else {
            usize::from(v["metadata"]["name"].is_string())
        }
    };
    eventually(
        30,
        "the controller to create an empty object for the service",
        || async {
            let (code, v) = c.raw("GET", &path, None).await;
            (code == 200 && count(&v) == 1).then_some(())
        },
    )
    .await?;
    c.k(&["delete", "service", "example-empty-selector"])
        .await?;
    eventually(
        30,
        "the controller to delete it with the service",
        || async {
            let (code, v) = c.raw("GET", &path, None).await;
            (code == 404 || (code == 200 && count(&v) == 0)).then_some(())
        },
    )
    .await
}

async fn endpoints_empty_service(c: Ctx) -> R {
    empty_service(c, false).await
}

async fn endpointslice_empty_service(c: Ctx) -> R {
    empty_service(c, true).await
}

// ---- kubectl

async fn kubectl_api_versions(c: Ctx) -> R {
    let out = c.k(&["api-versions"]).await?;
    ensure!(
        out.lines().any(|l| l.trim() == "v1"),
        "kubectl api-versions lacks v1: {out}"
    );
    Ok(())
}

async fn kubectl_version(c: Ctx) -> R {
    let out = c.k(&["version"]).await?;
    for want in ["Client Version:", "Kustomize Version:", "Server Version:"] {
        ensure!(out.contains(want), "kubectl version lacks {want}: {out}");
    }
    let v = c.k_json(&["version", "-o", "json"]).await?;
    for f in [
        "major",
        "minor",
        "gitVersion",
        "gitCommit",
        "platform",
        "goVersion",
    ] {
        ensure!(
            v["serverVersion"][f]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "serverVersion.{f} is empty: {}",
            v["serverVersion"]
        );
    }
    Ok(())
}

async fn kubectl_cluster_info(c: Ctx) -> R {
    let out = c.k(&["cluster-info"]).await?;
    ensure!(
        out.contains("Kubernetes control plane") && out.contains("is running at"),
        "kubectl cluster-info: {out}"
    );
    Ok(())
}

async fn kubectl_diff(c: Ctx) -> R {
    let dep = |image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "httpd-deployment", "namespace": c.ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "httpd"}},
            "template": {"metadata": {"labels": {"app": "httpd"}}, "spec": {"containers": [{"name": "httpd", "image": image}]}}}}).to_string()
    };
    c.k_stdin(
        &["apply", "-f", "-"],
        Some(&dep("registry.k8s.io/e2e-test-images/agnhost:2.56")),
    )
    .await?;
    let o = c
        .kubectl_with(
            &["diff", "-f", "-"],
            Some(&dep("registry.k8s.io/e2e-test-images/busybox:1.37.0-1")),
        )
        .await;
    ensure!(
        o.code == 1,
        "kubectl diff exited {} (want 1: differences): {}",
        o.code,
        o.stderr
    );
    ensure!(
        o.stdout.contains("busybox") && o.stdout.contains("agnhost"),
        "the diff does not show the image change: {}",
        o.stdout
    );
    Ok(())
}

/// Runs `kubectl proxy` with `args` and answers GET /api/ through `connect`.
async fn proxy_api(c: &Ctx, args: &[&str]) -> Result<(tokio::process::Child, String), Fail> {
    let mut cmd = tokio::process::Command::new(&c.cluster.kubectl);
    cmd.arg("--kubeconfig")
        .arg(&c.cluster.kubeconfig)
        .arg("proxy")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let Some(stdout) = child.stdout.take() else {
        fail!("no stdout of kubectl proxy")
    };
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .map_err(|_| Fail("kubectl proxy printed nothing".into()))??;
    Ok((child, line.unwrap_or_default()))
}

async fn http_get<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    path: &str,
) -> Result<String, Fail> {
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .map_err(|_| Fail("no answer from the proxy".into()))??;
    Ok(out)
}

async fn kubectl_proxy_port_zero(c: Ctx) -> R {
    let (_child, line) = proxy_api(&c, &["-p", "0", "--disable-filter"]).await?;
    let Some(addr) = line.strip_prefix("Starting to serve on ") else {
        fail!("kubectl proxy said {line:?}")
    };
    let stream = tokio::net::TcpStream::connect(addr.trim()).await?;
    let body = http_get(stream, "/api/").await?;
    ensure!(
        body.contains("\"versions\"") && body.contains("\"v1\""),
        "GET /api/ through the proxy: {body}"
    );
    Ok(())
}

async fn kubectl_proxy_socket(c: Ctx) -> R {
    let path = c.cluster.scratch.join(format!("proxy-{}.sock", c.tag));
    let arg = format!("--unix-socket={}", path.display());
    let (_child, _line) = proxy_api(&c, &[&arg]).await?;
    let stream = tokio::net::UnixStream::connect(&path).await?;
    let body = http_get(stream, "/api/").await?;
    ensure!(
        body.contains("\"versions\""),
        "GET /api/ through the proxy socket: {body}"
    );
    Ok(())
}

// ---- auth

async fn subject_review(c: Ctx) -> R {
    c.k(&["create", "serviceaccount", "e2e-sa"]).await?;
    let user = format!("system:serviceaccount:{}:e2e-sa", c.ns);
    // What the impersonated client is allowed, and what the reviews say, must agree.
    let o = c
        .kubectl_with(
            &["auth", "can-i", "list", "configmaps", "--as", &user],
            None,
        )
        .await;
    let allowed = o.stdout.trim() == "yes";
    let attrs =
        json!({"namespace": c.ns, "verb": "list", "version": "v1", "resource": "configmaps"});
    let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {"user": user, "resourceAttributes": attrs}});
    let (code, v) = c
        .raw(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            Some(&sar),
        )
        .await;
    ensure!(
        code == 201 && v["status"]["allowed"] == allowed,
        "SubjectAccessReview: {code} {v} (impersonated can-i: {allowed})"
    );
    let lsar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview", "metadata": {"namespace": c.ns}, "spec": {"user": user, "resourceAttributes": attrs}});
    let (code, v) = c
        .raw(
            "POST",
            &format!(
                "/apis/authorization.k8s.io/v1/namespaces/{}/localsubjectaccessreviews",
                c.ns
            ),
            Some(&lsar),
        )
        .await;
    ensure!(
        code == 201 && v["status"]["allowed"] == allowed,
        "LocalSubjectAccessReview: {code} {v} (impersonated can-i: {allowed})"
    );
    Ok(())
}

async fn automount_opt_out(c: Ctx) -> R {
    // The pod's setting wins, then the service account's; unset means mounted.
    let settings: [Option<bool>; 3] = [None, Some(true), Some(false)];
    for (i, sa) in settings.iter().enumerate() {
        let sa_name = format!("sa-{i}");
        let mut sa_obj =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa_name}});
        if let Some(b) = sa {
            sa_obj["automountServiceAccountToken"] = json!(b);
        }
        c.k_stdin(&["create", "-f", "-"], Some(&sa_obj.to_string()))
            .await?;
        for (j, pod_setting) in settings.iter().enumerate() {
            let mut p = pod(
                &format!("pod-{i}-{j}"),
                json!({"serviceAccountName": sa_name}),
            );
            if let Some(b) = pod_setting {
                p["spec"]["automountServiceAccountToken"] = json!(b);
            }
            let created = c
                .k_stdin(&["create", "-f", "-", "-o", "json"], Some(&p.to_string()))
                .await?;
            let v: Value = serde_json::from_str(&created)?;
            let mounted = v["spec"]["containers"][0]["volumeMounts"]
                .as_array()
                .is_some_and(|m| {
                    m.iter()
                        .any(|m| m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount")
                });
            let want = pod_setting.or(*sa).unwrap_or(true);
            ensure!(
                mounted == want,
                "service account automount {sa:?}, pod automount {pod_setting:?}: token mounted {mounted}, want {want}"
            );
        }
    }
    Ok(())
}

/// A PEM certificate request for `cn` from openssl (a new EC key, thrown away).
async fn csr_pem(cn: &str) -> Result<String, Fail> {
    let out = tokio::process::Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "/dev/null",
            "-subj",
            &format!("/CN={cn}"),
            "-batch",
        ])
        .output()
        .await
        .map_err(|e| {
            Fail(format!(
                "openssl (needed to make a certificate request): {e}"
            ))
        })?;
    ensure!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn csr_api(c: Ctx) -> R {
    use base64::Engine as _;
    let request =
        base64::engine::general_purpose::STANDARD.encode(csr_pem("e2e.example.com").await?);
    let body = json!({"spec": {"request": request, "signerName": format!("example.com/e2e-{}", c.tag), "usages": ["client auth"]}});
    let r = Resource {
        api_version: "certificates.k8s.io/v1",
        kind: "CertificateSigningRequest",
        plural: "certificatesigningrequests",
        namespaced: false,
        body: body.clone(),
        status_patch: None,
    };
    lifecycle(&c, &r).await?;
    let name = c.name("csr-approval");
    let mut obj = body;
    obj["apiVersion"] = json!("certificates.k8s.io/v1");
    obj["kind"] = json!("CertificateSigningRequest");
    obj["metadata"] = json!({"name": name});
    let base = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    let (code, created) = c.raw("POST", base, Some(&obj)).await;
    ensure!(code == 201, "creating a CSR: {code} {created}");
    let mut approved = created;
    approved["status"]["conditions"] = json!([{"type": "Approved", "status": "True", "reason": "E2E", "message": "Set from an e2e test"}]);
    let (code, v) = c
        .raw("PUT", &format!("{base}/{name}/approval"), Some(&approved))
        .await;
    ensure!(
        code == 200,
        "approving the CSR through /approval: {code} {v}"
    );
    let (_, got) = c.raw("GET", &format!("{base}/{name}"), None).await;
    ensure!(
        got["status"]["conditions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["type"] == "Approved")),
        "the CSR is not approved: {}",
        got["status"]
    );
    let (code, v) = c.raw("DELETE", &format!("{base}/{name}"), None).await;
    ensure!(code == 200, "deleting the CSR: {code} {v}");
    Ok(())
}

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    vec![
        t!(
            "ConfigMap Update",
            "[sig-node] ConfigMap should update ConfigMap successfully [Conformance] [NodeConformance]",
            configmap_update
        ),
        t!(
            "Pods, QOS",
            "[sig-node] Pods Extended Pods Set QOS Class should be set on Pods with matching resource requests and limits for memory and cpu [Conformance]",
            pods_qos
        ),
        t!(
            "Pods, delete a collection",
            "[sig-node] Pods should delete a collection of pods [Conformance]",
            pods_delete_collection
        ),
        t!(
            "RuntimeClass API",
            "[sig-node] RuntimeClass should support RuntimeClasses API operations [Conformance]",
            runtime_class_api
        ),
        t!(
            "Pod with the non-existing RuntimeClass is rejected.",
            "[sig-node] RuntimeClass should reject a Pod requesting a non-existent RuntimeClass [Conformance] [NodeConformance]",
            runtime_class_missing
        ),
        t!(
            "Pod with the deleted RuntimeClass is rejected.",
            "[sig-node] RuntimeClass should reject a Pod requesting a deleted RuntimeClass [Conformance] [NodeConformance]",
            runtime_class_deleted
        ),
        t!(
            "Sysctls, reject invalid sysctls",
            "[sig-node] Sysctls [LinuxOnly] should reject invalid sysctls [Conformance] [NodeConformance]",
            sysctls_invalid
        ),
        t!(
            "Kubernetes Service",
            "[sig-network] API Server should provide secure master service [Conformance]",
            kubernetes_service
        ),
        t!(
            "kubernetes.default Endpoints and EndpointSlices",
            "[sig-network] API Server should have Endpoints and EndpointSlices pointing to API Server [Conformance]",
            kubernetes_endpoints
        ),
        t!(
            "Find Kubernetes Service in default Namespace",
            "[sig-network] Services should find a service from listing all namespaces [Conformance]",
            find_kubernetes_service
        ),
        t!(
            "Service, deletes a collection of services",
            "[sig-network] Services should delete a collection of services [Conformance]",
            services_collection
        ),
        t!(
            "Service, complete ServiceStatus lifecycle",
            "[sig-network] Services should complete a service status lifecycle [Conformance]",
            service_status
        ),
        t!(
            "Endpoints, \"empty\" Service",
            "[sig-network] EndpointsController should create and delete Endpoints for a Service with a selector that matches no pods [Conformance]",
            endpoints_empty_service
        ),
        t!(
            "EndpointSlice, \"empty\" Service",
            "[sig-network] EndpointSlice should create and delete EndpointSlices for a Service with a selector that matches no pods [Conformance]",
            endpointslice_empty_service
        ),
        t!(
            "Kubectl, check version v1",
            "[sig-cli] Kubectl client Kubectl api-versions should check if v1 is in available api versions [Conformance]",
            kubectl_api_versions
        ),
        t!(
            "Kubectl, version",
            "[sig-cli] Kubectl client Kubectl version should check is all data is printed [Conformance]",
            kubectl_version
        ),
        t!(
            "Kubectl, cluster info",
            "[sig-cli] Kubectl client Kubectl cluster-info should check if Kubernetes control plane services is included in cluster-info [Conformance]",
            kubectl_cluster_info
        ),
        t!(
            "Kubectl, diff Deployment",
            "[sig-cli] Kubectl client Kubectl diff should check if kubectl diff finds a difference for Deployments [Conformance]",
            kubectl_diff
        ),
        t!(
            "Kubectl, proxy port zero",
            "[sig-cli] Kubectl client Proxy server should support proxy with --port 0 [Conformance]",
            kubectl_proxy_port_zero
        ),
        t!(
            "Kubectl, proxy socket",
            "[sig-cli] Kubectl client Proxy server should support --unix-socket=/path [Conformance]",
            kubectl_proxy_socket
        ),
        t!(
            "SubjectReview, API Operations",
            "[sig-auth] SubjectReview should support SubjectReview API operations [Conformance]",
            subject_review
        ),
        t!(
            "Service account tokens auto mount optionally",
            "[sig-auth] ServiceAccounts should allow opting out of API token automount [Conformance]",
            automount_opt_out
        ),
        t!(
            "CertificateSigningRequest API",
            "[sig-auth] Certificates API [Privileged:ClusterAdmin] should support CSR API operations [Conformance]",
            csr_api
        ),
    ]
}
