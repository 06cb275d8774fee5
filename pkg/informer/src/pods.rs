//! The shared pod informer keeps a pruned copy of each pod: what the scheduler, the
//! simulated nodes and the controllers inside the server read, without what only a
//! kubelet or a client reads.
//!
//! At 30k pods the informer's copies are most of the server's memory: a workload pod
//! decoded into `k8s_openapi`'s `Pod` is about 33 KB (a 2.4 KB struct and its heap),
//! 15 KB of it managedFields and 6 KB its service account token volume (one `Volume` is
//! a 3.2 KB struct, each of its sources inline). What is kept, and who reads it:
//!
//! - metadata: all but managedFields and kubectl's last-applied-configuration annotation
//!   (labels, annotations, ownerReferences, finalizers, timestamps: every controller);
//! - spec: every pod-level field (the scheduler's filters and scores, the simulator's
//!   restart policy and grace period, the controllers' node name, tolerations,
//!   hostname/subdomain, readiness gates …), with two exceptions:
//!   - of each container and init container only `name` (simulator statuses and
//!     events, Job pod failure policy, endpoints' named ports), `image` (simulator),
//!     `ports` (endpoints, the scheduler's host ports), `resources` (scheduler,
//!     ResourceQuota, HPA) and `restartPolicy`/`restartPolicyRules` (sidecars);
//!     env, command, args, mounts, probes, lifecycle, securityContext … are dropped
//!     (ephemeral containers, rare, are kept whole);
//!   - of the volumes only those that name a claim: `persistentVolumeClaim` (scheduler's
//!     volume binding and restrictions, PVC protection) and `ephemeral` (PVC
//!     protection); projected, configMap, secret, emptyDir … volumes are dropped;
//! - status: all of it but, in container statuses, `imageID`, `containerID`,
//!   `lastState`, `volumeMounts`, `user`, `allocatedResources(Status)`, `resources` and
//!   `stopSignal`, which no reader inside the server looks at.
//!
//! A component that needs a dropped field reads the pod from the API instead; none writes
//! back an informer's pod whole (an update from a pruned copy would drop those fields).

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, Volume};

/// The annotation `kubectl apply` stores the applied object in; no reader here uses it.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops from `pod` what no reader of the shared pod informer uses (see the module
/// documentation for what is kept and why).
pub fn slim_pod(pod: &mut Pod) {
    let meta = &mut pod.metadata;
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
    shrink(&mut meta.owner_references);
    shrink(&mut meta.finalizers);
    if let Some(spec) = pod.spec.as_mut() {
        slim_containers(&mut spec.containers);
        if let Some(inits) = spec.init_containers.as_mut() {
            slim_containers(inits);
        }
        shrink(&mut spec.init_containers);
        shrink(&mut spec.tolerations);
        shrink(&mut spec.readiness_gates);
        if let Some(volumes) = spec.volumes.as_mut() {
            volumes.retain(names_a_claim);
            if volumes.is_empty() {
                spec.volumes = None;
            }
        }
        shrink(&mut spec.volumes);
    }
    if let Some(status) = pod.status.as_mut() {
        for statuses in [
            status.container_statuses.as_mut(),
            status.init_container_statuses.as_mut(),
            status.ephemeral_container_statuses.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            statuses.iter_mut().for_each(slim_container_status);
            statuses.shrink_to_fit();
        }
        shrink(&mut status.conditions);
        shrink(&mut status.host_ips);
        shrink(&mut status.pod_ips);
    }
}

/// Keeps of each container what readers inside the server use.
fn slim_containers(containers: &mut Vec<Container>) {
    for c in containers.iter_mut() {
        *c = Container {
            name: std::mem::take(&mut c.name),
            image: c.image.take(),
            ports: c.ports.take(),
            resources: c.resources.take(),
            restart_policy: c.restart_policy.take(),
            restart_policy_rules: c.restart_policy_rules.take(),
            ..Container::default()
        };
        shrink(&mut c.ports);
    }
    containers.shrink_to_fit();
}

/// Frees a list's spare room: decoding grows a list to room for at least four entries
/// (a workload pod's one container status takes 3 KB where it needs 0.75 KB).
fn shrink<T>(list: &mut Option<Vec<T>>) {
    if let Some(list) = list.as_mut() {
        list.shrink_to_fit();
    }
}

/// Whether `v` is a volume some reader inside the server looks at: one naming a claim.
fn names_a_claim(v: &Volume) -> bool {
    v.persistent_volume_claim.is_some() || v.ephemeral.is_some()
}

fn slim_container_status(s: &mut ContainerStatus) {
    s.image_id = String::new();
    s.container_id = None;
    s.last_state = None;
    s.volume_mounts = None;
    s.user = None;
    s.allocated_resources = None;
    s.allocated_resources_status = None;
    s.resources = None;
    s.stop_signal = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: &str) -> Pod {
        serde_json::from_str(json).expect("a pod")
    }

    #[test]
    fn a_workload_pod_keeps_what_readers_use_and_drops_the_rest() {
        let mut p = pod(include_str!("../testdata/workload_pod.json"));
        let before = p.clone();
        slim_pod(&mut p);

        assert!(p.metadata.managed_fields.is_none());
        let mut meta = before.metadata.clone();
        meta.managed_fields = None;
        assert_eq!(p.metadata, meta, "the rest of metadata is kept");

        let (spec, was) = (p.spec.as_ref().unwrap(), before.spec.as_ref().unwrap());
        // The service account token volume and its mount go.
        assert!(spec.volumes.is_none());
        let c = &spec.containers[0];
        assert_eq!(c.name, "app");
        assert_eq!(c.image.as_deref(), Some("registry.k1s.test/pause:3.10"));
        assert_eq!(c.resources, was.containers[0].resources);
        assert!(c.volume_mounts.is_none() && c.termination_message_path.is_none());
        // Pod-level fields stay.
        let mut rest = was.clone();
        rest.volumes = None;
        rest.containers = spec.containers.clone();
        assert_eq!(spec, &rest);

        let (status, was) = (p.status.as_ref().unwrap(), before.status.as_ref().unwrap());
        assert_eq!(status.conditions, was.conditions);
        assert_eq!(status.pod_ip.as_deref(), Some("10.42.3.17"));
        let (cs, old) = (
            &status.container_statuses.as_ref().unwrap()[0],
            &was.container_statuses.as_ref().unwrap()[0],
        );
        assert_eq!(
            (cs.name.as_str(), cs.ready, cs.restart_count),
            ("app", true, 0)
        );
        assert_eq!(
            cs.state, old.state,
            "the running container's start time is kept"
        );
        assert_eq!(cs.image, old.image);
        assert!(cs.container_id.is_none() && cs.image_id.is_empty() && cs.last_state.is_none());
    }

    #[test]
    fn claim_volumes_ports_and_sidecar_policy_are_kept() {
        let mut p = pod(r#"{
            "metadata": {"name": "p", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "controller.kubernetes.io/pod-deletion-cost": "5"}},
            "spec": {
                "initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always",
                    "env": [{"name": "A", "value": "b"}], "command": ["envoy"]}],
                "containers": [{"name": "web", "image": "nginx",
                    "ports": [{"name": "http", "containerPort": 80, "hostPort": 8080}],
                    "readinessProbe": {"httpGet": {"port": 80}}, "args": ["-g"]}],
                "volumes": [
                    {"name": "config", "configMap": {"name": "c"}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data-0"}},
                    {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                    {"name": "tmp", "emptyDir": {}}]}}"#);
        slim_pod(&mut p);
        let annotations = p.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            ["controller.kubernetes.io/pod-deletion-cost"]
        );
        let spec = p.spec.as_ref().unwrap();
        let init = &spec.init_containers.as_ref().unwrap()[0];
        assert_eq!(init.restart_policy.as_deref(), Some("Always"));
        assert!(init.env.is_none() && init.command.is_none());
        let web = &spec.containers[0];
        let port = &web.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.container_port, port.host_port),
            (Some("http"), 80, Some(8080))
        );
        assert!(web.readiness_probe.is_none() && web.args.is_none());
        let volumes = spec.volumes.as_ref().unwrap();
        assert_eq!(volumes.len(), 2);
        assert_eq!(
            volumes[0]
                .persistent_volume_claim
                .as_ref()
                .unwrap()
                .claim_name,
            "data-0"
        );
        assert_eq!(volumes[1].name, "scratch");
        assert!(volumes[1].ephemeral.is_some());
    }
}
