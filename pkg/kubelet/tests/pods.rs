//! The kubelet against a real (in-memory) API server, a fake runtime and a fake network:
//! node registration, pods running, completing, crash-looping, initializing, pulling,
//! probed, deleted, and adopted again after a kubelet restart.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k1s_apiserver::test_util::TestApiServer;
use k1s_kubelet::runtime::ImageConfig;
use k1s_kubelet::runtime::fake::{FakeNetwork, FakeRuntime};
use k1s_kubelet::{Config, NetworkFactory};
use k1s_net::PodNetwork;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ContainerStatus, Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);
const NODE: &str = "node-a";

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Kubelet {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}

fn config(dir: &Path) -> Config {
    let resolv = dir.join("host-resolv.conf");
    std::fs::write(&resolv, "nameserver 1.1.1.1\nsearch corp.example\n").expect("resolv");
    let mut c = Config::new(
        NODE,
        "10.0.0.5".parse().expect("ip"),
        dir.join("root"),
        dir.join("logs"),
    );
    c.pod_cidr = Some("10.42.0.0/24".into());
    c.host_resolv_conf = resolv;
    c.backoff_initial = Duration::from_secs(1);
    c.backoff_max = Duration::from_secs(4);
    c.node_status_update_period = Duration::from_secs(1);
    c.relist_period = Duration::from_millis(200);
    c
}

fn start(client: &kube::Client, rt: &FakeRuntime, net: &FakeNetwork, dir: &Path) -> Kubelet {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let net = net.clone();
    let factory: NetworkFactory =
        Box::new(move |_cidr| Box::pin(async move { Ok(Arc::new(net) as Arc<dyn PodNetwork>) }));
    let task = tokio::spawn(k1s_kubelet::run(
        client.clone(),
        config(dir),
        Arc::new(rt.clone()),
        factory,
        async move {
            let _ = stopped.await;
        },
    ));
    let task = tokio::spawn(async move {
        if let Ok(Err(e)) = task.await {
            panic!("kubelet failed: {e}");
        }
    });
    Kubelet {
        stop: Some(stop),
        task,
    }
}

fn runtime() -> FakeRuntime {
    let rt = FakeRuntime::new();
    rt.add_image(
        "busybox",
        ImageConfig {
            cmd: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            ..ImageConfig::default()
        },
    );
    rt.add_image(
        "nginx:1.27",
        ImageConfig {
            entrypoint: vec!["/docker-entrypoint.sh".into()],
            cmd: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
            env: vec!["PATH=/usr/bin".into(), "NGINX_VERSION=1.27".into()],
            ..ImageConfig::default()
        },
    );
    rt
}

async fn create_pod(client: &kube::Client, v: serde_json::Value) -> Pod {
    let mut v = v;
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("Pod");
    v["metadata"]["namespace"] = json!("default");
    v["spec"]["nodeName"] = json!(NODE);
    let pod: Pod = serde_json::from_value(v).expect("pod");
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &pod)
        .await
        .expect("create pod")
}

async fn get_pod(client: &kube::Client, name: &str) -> Option<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.get_opt(name).await.ok().flatten()
}

fn status_of<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    let st = pod.status.as_ref()?;
    st.container_statuses
        .iter()
        .flatten()
        .chain(st.init_container_statuses.iter().flatten())
        .find(|c| c.name == name)
}

fn condition(pod: &Pod, ty: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)
        .map(|c| c.status.clone())
}

fn phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

async fn events_of(client: &kube::Client, pod: &str) -> Vec<(String, String)> {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn the_node_registers_ready_with_a_lease() {
    let server = TestApiServer::new().await;
    let client = server.client();
    let dir = tempfile::tempdir().expect("dir");
    let kubelet = start(&client, &runtime(), &FakeNetwork::new(), dir.path());
    let nodes: Api<Node> = Api::all(client.clone());
    let node = eventually("node Ready", || async {
        nodes.get_opt(NODE).await.ok().flatten().filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
    })
    .await;
    let labels = node.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["kubernetes.io/hostname"], NODE);
    // NodeRestriction refuses role labels from a kubelet: the server sets them.
    assert!(!labels.contains_key("node-role.kubernetes.io/control-plane"));
    assert_eq!(labels["kubernetes.io/os"], "linux");
    let spec = node.spec.clone().expect("spec");
    assert_eq!(spec.pod_cidr.as_deref(), Some("10.42.0.0/24"));
    let status = node.status.clone().expect("status");
    let cap = status.capacity.expect("capacity");
    assert_eq!(cap["pods"].0, "110");
    assert!(cap.contains_key("cpu") && cap.contains_key("memory"));
    assert!(cap.contains_key("ephemeral-storage"));
    let info = status.node_info.expect("nodeInfo");
    assert_eq!(info.container_runtime_version, "fake://0.0.1");
    assert_eq!(info.operating_system, "linux");
    let conds = status.conditions.expect("conditions");
    let types: Vec<&str> = conds.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    );
    let addrs = status.addresses.expect("addresses");
    assert_eq!(addrs[0].type_, "InternalIP");
    assert_eq!(addrs[0].address, "10.0.0.5");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = leases.get(NODE).await.expect("lease");
    let spec = lease.spec.expect("lease spec");
    assert_eq!(spec.holder_identity.as_deref(), Some(NODE));
    let first = spec.renew_time.expect("renewed");
    eventually("the lease renewed", || async {
        let l = leases.get(NODE).await.ok()?;
        let t = l.spec?.renew_time?;
        (t.0 > first.0).then_some(())
    })
    .await;
    kubelet.stop().await;
}

#[tokio::test]
async fn a_pod_runs_with_an_ip_env_and_dns_then_is_deleted() {
    let server = TestApiServer::new().await;
    let client = server.client();
    let dir = tempfile::tempdir().expect("dir");
    let (rt, net) = (runtime(), FakeNetwork::new());
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "cfg"}, "data": {"color": "blue", "size": "L"}}),
        )
        .expect("cm"),
    )
    .await
    .expect("configmap");
    let kubelet = start(&client, &rt, &net, dir.path());
    let pod = create_pod(
        &client,
        json!({"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {
            "containers": [{"name": "nginx", "image": "nginx:1.27",
                "env": [
                    {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
                    {"name": "GREETING", "value": "hi $(MY_POD)"},
                    {"name": "MISSING", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "x", "optional": true}}},
                ],
                "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}}]}}),
    )
    .await;
    let uid = pod.metadata.uid.clone().expect("uid");
    let running = eventually("web Running and Ready", || async {
        get_pod(&client, "web")
            .await
            .filter(|p| phase(p) == "Running" && condition(p, "Ready").as_deref() == Some("True"))
    })
    .await;
    let st = running.status.clone().expect("status");
    assert_eq!(st.pod_ip.as_deref(), Some("10.42.0.2"));
    assert_eq!(st.host_ip.as_deref(), Some("10.0.0.5"));
    assert!(st.start_time.is_some());
    assert_eq!(st.qos_class.as_deref(), Some("Guaranteed"));
    let types: Vec<String> = st
        .conditions
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(
        types,
        [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady"
        ]
    );
    let cs = status_of(&running, "nginx").expect("nginx status");
    assert!(cs.ready && cs.started == Some(true));
    assert_eq!(cs.restart_count, 0);
    assert_eq!(cs.image, "docker.io/library/nginx:1.27");
    assert!(cs.image_id.starts_with("docker.io/library/nginx@sha256:"));
    assert!(
        cs.container_id
            .as_deref()
            .is_some_and(|id| id.starts_with("fake://"))
    );
    assert!(cs.state.as_ref().and_then(|s| s.running.as_ref()).is_some());

    let c = rt.running("web", "nginx").expect("running container");
    let env: std::collections::HashMap<String, String> = c.config.env.iter().cloned().collect();
    assert_eq!(env["MY_POD"], "web");
    assert_eq!(env["MY_IP"], "10.42.0.2");
    assert_eq!(env["COLOR"], "blue");
    assert_eq!(env["CFG_size"], "L");
    assert_eq!(env["GREETING"], "hi web");
    assert_eq!(env["NGINX_VERSION"], "1.27");
    assert_eq!(env["HOSTNAME"], "web");
    assert!(!env.contains_key("MISSING"));
    assert_eq!(
        c.config.argv,
        ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]
    );
    assert_eq!(c.config.linux.cpu_quota, Some(50_000));
    assert_eq!(c.config.linux.memory_limit, Some(128 << 20));
    assert_eq!(c.config.linux.oom_score_adj, Some(-997));
    let resolv = c
        .config
        .mounts
        .iter()
        .find(|m| m.container_path == Path::new("/etc/resolv.conf"))
        .expect("resolv.conf mount");
    assert_eq!(
        std::fs::read_to_string(&resolv.host_path).expect("resolv"),
        "search default.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.43.0.10\noptions ndots:5\n"
    );
    let hosts = c
        .config
        .mounts
        .iter()
        .find(|m| m.container_path == Path::new("/etc/hosts"))
        .expect("hosts mount");
    assert!(
        std::fs::read_to_string(&hosts.host_path)
            .expect("hosts")
            .contains("10.42.0.2\tweb\n")
    );
    assert!(
        c.config
            .log_path
            .ends_with(format!("default_web_{uid}/nginx/0.log"))
    );
    let reasons: Vec<String> = eventually("the start events", || async {
        let ev = events_of(&client, "web").await;
        (ev.len() >= 3).then(|| ev.into_iter().map(|(r, _)| r).collect())
    })
    .await;
    assert!(reasons.contains(&"Pulled".to_string()) && reasons.contains(&"Started".to_string()));

    // Status is written once things settle, not on every relist.
    let rv = get_pod(&client, "web")
        .await
        .expect("pod")
        .metadata
        .resource_version;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        get_pod(&client, "web")
            .await
            .expect("pod")
            .metadata
            .resource_version,
        rv,
        "a settled pod's status is not rewritten"
    );

    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("web gone", || async {
        get_pod(&client, "web").await.is_none().then_some(())
    })
    .await;
    eventually("containers and network freed", || async {
        (rt.containers().is_empty() && rt.sandboxes().is_empty() && net.attached().is_empty())
            .then_some(())
    })
    .await;
    kubelet.stop().await;
}

#[tokio::test]
async fn a_pod_completes_and_a_crashing_one_backs_off() {
    let server = TestApiServer::new().await;
    let client = server.client();
    let dir = tempfile::tempdir().expect("dir");
    let (rt, net) = (runtime(), FakeNetwork::new());
    let kubelet = start(&client, &rt, &net, dir.path());
    create_pod(
        &client,
        json!({"metadata": {"name": "job"}, "spec": {"restartPolicy": "Never",
            "initContainers": [{"name": "prep", "image": "busybox", "command": ["sh", "-c", "exit 0"]}],
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "exit 0"]}]}}),
    )
    .await;
    create_pod(
        &client,
        json!({"metadata": {"name": "crash"}, "spec": {
            "containers": [{"name": "bad", "image": "busybox", "command": ["sh", "-c", "exit 3"]}]}}),
    )
    .await;
    let done = eventually("job Succeeded", || async {
        get_pod(&client, "job")
            .await
            .filter(|p| phase(p) == "Succeeded")
    })
    .await;
    let main = status_of(&done, "main").expect("main");
    let term = main
        .state
        .as_ref()
        .and_then(|s| s.terminated.clone())
        .expect("terminated");
    assert_eq!(
        (term.exit_code, term.reason.as_deref()),
        (0, Some("Completed"))
    );
    let prep = status_of(&done, "prep").expect("prep");
    assert!(prep.ready);
    assert_eq!(condition(&done, "Ready").as_deref(), Some("False"));
    let ready = done
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .and_then(|c| c.reason.clone());
    assert_eq!(ready.as_deref(), Some("PodCompleted"));
    eventually("the job's sandbox reported gone", || async {
        get_pod(&client, "job").await.filter(|p| {
            condition(p, "PodReadyToStartContainers").as_deref() == Some("False")
                && phase(p) == "Succeeded"
        })
    })
    .await;
    let job_uid = done.metadata.uid.clone().expect("uid");
    eventually("the job's network freed", || async {
        (!net.attached().contains_key(&job_uid)).then_some(())
    })
    .await;

    let crashing = eventually("crash in CrashLoopBackOff after a restart", || async {
        get_pod(&client, "crash").await.filter(|p| {
            status_of(p, "bad").is_some_and(|s| {
                s.restart_count >= 1
                    && s.state
                        .as_ref()
                        .and_then(|st| st.waiting.as_ref())
                        .and_then(|w| w.reason.as_deref())
                        == Some("CrashLoopBackOff")
            })
        })
    })
    .await;
    let bad = status_of(&crashing, "bad").expect("bad");
    let last = bad
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.clone())
        .expect("last state");
    assert_eq!((last.exit_code, last.reason.as_deref()), (3, Some("Error")));
    let message = bad
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.message.clone())
        .unwrap_or_default();
    assert!(
        message.starts_with("back-off 1s restarting failed container=bad pod=crash_default("),
        "{message}"
    );
    assert_eq!(phase(&crashing), "Running");
    assert_eq!(condition(&crashing, "Ready").as_deref(), Some("False"));
    eventually("it restarts again after its back-off", || async {
        get_pod(&client, "crash")
            .await
            .filter(|p| status_of(p, "bad").is_some_and(|s| s.restart_count >= 2))
    })
    .await;
    let reasons: Vec<String> = events_of(&client, "crash")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(reasons.contains(&"BackOff".to_string()), "{reasons:?}");
    kubelet.stop().await;
}

#[tokio::test]
async fn failed_pulls_back_off_and_a_failing_liveness_probe_restarts() {
    let server = TestApiServer::new().await;
    let client = server.client();
    let dir = tempfile::tempdir().expect("dir");
    let (rt, net) = (runtime(), FakeNetwork::new());
    rt.fail_pull("nope:1", "not found");
    rt.set_exec_result("sick", 1);
    let kubelet = start(&client, &rt, &net, dir.path());
    create_pod(
        &client,
        json!({"metadata": {"name": "pull"}, "spec": {
            "containers": [{"name": "c", "image": "nope:1"}]}}),
    )
    .await;
    create_pod(
        &client,
        json!({"metadata": {"name": "probed"}, "spec": {
            "containers": [{"name": "sick", "image": "busybox", "command": ["sleep", "1000"],
                "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1}}]}}),
    )
    .await;
    eventually("ImagePullBackOff", || async {
        get_pod(&client, "pull").await.filter(|p| {
            status_of(p, "c")
                .and_then(|s| s.state.as_ref())
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                == Some("ImagePullBackOff")
        })
    })
    .await;
    let events = events_of(&client, "pull").await;
    assert!(
        events
            .iter()
            .any(|(r, n)| r == "Failed" && n == "Error: ErrImagePull"),
        "{events:?}"
    );
    assert_eq!(
        phase(&get_pod(&client, "pull").await.expect("pod")),
        "Pending"
    );
    eventually("the liveness probe restarted it", || async {
        get_pod(&client, "probed")
            .await
            .filter(|p| status_of(p, "sick").is_some_and(|s| s.restart_count >= 1))
    })
    .await;
    let events = events_of(&client, "probed").await;
    assert!(
        events
            .iter()
            .any(|(r, n)| r == "Unhealthy" && n.starts_with("Liveness probe failed")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|(r, n)| r == "Killing"
            && n == "Container sick failed liveness probe, will be restarted"),
        "{events:?}"
    );
    kubelet.stop().await;
}

#[tokio::test]
async fn a_restarted_kubelet_adopts_running_containers() {
    let server = TestApiServer::new().await;
    let client = server.client();
    let dir = tempfile::tempdir().expect("dir");
    let (rt, net) = (runtime(), FakeNetwork::new());
    let kubelet = start(&client, &rt, &net, dir.path());
    create_pod(
        &client,
        json!({"metadata": {"name": "keep"}, "spec": {
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1000"]}]}}),
    )
    .await;
    let before = eventually("keep Running", || async {
        get_pod(&client, "keep")
            .await
            .filter(|p| phase(p) == "Running")
    })
    .await;
    let id = status_of(&before, "c").and_then(|s| s.container_id.clone());
    let starts = rt.starts();
    kubelet.stop().await;

    let kubelet = start(&client, &rt, &net, dir.path());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = get_pod(&client, "keep").await.expect("pod");
    assert_eq!(rt.starts(), starts, "no container was started again");
    assert_eq!(
        status_of(&after, "c").and_then(|s| s.container_id.clone()),
        id
    );
    assert_eq!(status_of(&after, "c").map(|s| s.restart_count), Some(0));
    assert_eq!(
        after
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .as_deref(),
        Some("10.42.0.2")
    );
    // The container dying is still noticed and restarted.
    assert!(rt.exit_container("keep", "c", 137));
    eventually("the exited container restarted", || async {
        get_pod(&client, "keep")
            .await
            .filter(|p| status_of(p, "c").is_some_and(|s| s.restart_count == 1))
    })
    .await;
    kubelet.stop().await;
}

#[tokio::test]
async fn volumes_sidecars_and_termination_messages() {
    let server = TestApiServer::new().await;
    let client = server.client();
    let dir = tempfile::tempdir().expect("dir");
    let (rt, net) = (runtime(), FakeNetwork::new());
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "files"}, "data": {"a.txt": "one", "b.txt": "two"}}),
        )
        .expect("cm"),
    )
    .await
    .expect("configmap");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}}),
            )
            .expect("secret"),
        )
        .await
        .expect("secret");
    let kubelet = start(&client, &rt, &net, dir.path());
    create_pod(
        &client,
        json!({"metadata": {"name": "vols", "labels": {"tier": "db"}}, "spec": {
            "volumes": [
                {"name": "cfg", "configMap": {"name": "files", "items": [{"key": "a.txt", "path": "sub/a"}]}},
                {"name": "sec", "secret": {"secretName": "creds"}},
                {"name": "scratch", "emptyDir": {}},
                {"name": "info", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
            ],
            "initContainers": [
                {"name": "side", "image": "busybox", "restartPolicy": "Always", "command": ["sleep", "1000"]},
            ],
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "1000"],
                "volumeMounts": [
                    {"name": "cfg", "mountPath": "/cfg", "readOnly": true},
                    {"name": "sec", "mountPath": "/sec"},
                    {"name": "scratch", "mountPath": "/scratch", "subPath": "x"},
                    {"name": "info", "mountPath": "/info"}]}]}}),
    )
    .await;
    let pod = eventually("vols Running with its sidecar", || async {
        get_pod(&client, "vols")
            .await
            .filter(|p| phase(p) == "Running" && condition(p, "Ready").as_deref() == Some("True"))
    })
    .await;
    let side = status_of(&pod, "side").expect("sidecar status");
    assert!(side.ready && side.started == Some(true), "{side:?}");
    let main = rt.running("vols", "main").expect("main runs");
    let mount = |p: &str| {
        main.config
            .mounts
            .iter()
            .find(|m| m.container_path == Path::new(p))
            .unwrap_or_else(|| panic!("no mount at {p}"))
            .clone()
    };
    let cfg = mount("/cfg");
    assert!(cfg.read_only);
    assert_eq!(
        std::fs::read_to_string(cfg.host_path.join("sub/a")).expect("a"),
        "one"
    );
    assert!(!cfg.host_path.join("b.txt").exists());
    assert_eq!(
        std::fs::read_to_string(mount("/sec").host_path.join("token")).expect("token"),
        "s3cret"
    );
    assert!(mount("/scratch").host_path.ends_with("scratch/x"));
    let info = mount("/info").host_path;
    assert_eq!(
        std::fs::read_to_string(info.join("name")).expect("name"),
        "vols"
    );
    assert_eq!(
        std::fs::read_to_string(info.join("labels")).expect("labels"),
        "tier=\"db\"\n"
    );

    // The container writes its termination message, then dies of OOM.
    let term = mount("/dev/termination-log").host_path;
    std::fs::write(&term, "out of memory, sorry").expect("message");
    assert!(rt.oom_kill("vols", "main"));
    let pod = eventually("main restarted after its OOM kill", || async {
        get_pod(&client, "vols")
            .await
            .filter(|p| status_of(p, "main").is_some_and(|s| s.restart_count == 1))
    })
    .await;
    let last = status_of(&pod, "main")
        .and_then(|s| s.last_state.clone())
        .and_then(|s| s.terminated)
        .expect("last state");
    assert_eq!(last.reason.as_deref(), Some("OOMKilled"));
    assert_eq!(last.exit_code, 137);
    assert_eq!(last.message.as_deref(), Some("out of memory, sorry"));

    // Deleting the pod stops the main container before the sidecar and unmounts the secret.
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.delete("vols", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("vols gone and cleaned up", || async {
        (get_pod(&client, "vols").await.is_none() && rt.containers().is_empty()).then_some(())
    })
    .await;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&*dir.path().to_string_lossy()),
        "a pod volume is still mounted"
    );
    kubelet.stop().await;
}
