//! Issue "API foundation", checked with real kubectl binaries against a real `k1s server`.

use std::io::BufRead;
use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, kubectl_versions, newest_kubectl};

const APP: &str = include_str!("../testdata/app.yaml");
const CRD: &str = include_str!("../testdata/crd.yaml");
const CRONTAB: &str = include_str!("../testdata/crontab.yaml");

/// Creates a namespace for one version's run (over JSON, which every version sends).
fn namespace(k1s: &K1s, k: &Kubectl, name: &str) {
    let ns = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{name}\"}}}}"
    );
    k1s.kubectl_with(k, &["apply", "-f", "-"], Some(&ns), &[])
        .ok();
}

#[test]
fn server_is_ready_and_a_restart_keeps_every_object() {
    let mut k1s = K1s::start();
    let k = newest_kubectl();
    k1s.kubectl_with(&k, &["apply", "-f", "-"], Some(APP), &[])
        .ok();
    // The controllers add a ReplicaSet and its pods after the apply: compare once they have.
    let list = || {
        k1s.kubectl(&k, &["get", "all,cm,secret,ing,pvc,hpa", "-o", "name"])
            .ok()
            .to_string()
    };
    let before = eventually(Duration::from_secs(30), "the app's objects settle", || {
        let first = list();
        std::thread::sleep(Duration::from_millis(500));
        (first.contains("replicaset.apps/") && first.contains("pod/") && list() == first)
            .then_some(first)
    });
    assert!(before.contains("deployment.apps/web"), "{before}");
    k1s.restart();
    let after = k1s.kubectl(&k, &["get", "all,cm,secret,ing,pvc,hpa", "-o", "name"]);
    assert_eq!(after.ok(), before);
    let uid = k1s.kubectl(
        &k,
        &["get", "cm", "settings", "-o", "jsonpath={.data.mode}"],
    );
    assert_eq!(uid.ok(), "fast");
}

#[test]
fn discovery_openapi_and_version_with_every_kubectl() {
    let k1s = K1s::start();
    for k in kubectl_versions() {
        let ns = k1s.kubectl(&k, &["get", "ns"]);
        let out = ns.ok();
        assert!(out.starts_with("NAME"), "{k}: {out}");
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            assert!(out.contains(name), "{k}: {name} missing in\n{out}");
        }
        let resources = k1s.kubectl(&k, &["api-resources"]);
        let out = resources.ok();
        for (plural, short) in [
            ("deployments", "deploy"),
            ("services", "svc"),
            ("configmaps", "cm"),
            ("persistentvolumeclaims", "pvc"),
            ("horizontalpodautoscalers", "hpa"),
            ("customresourcedefinitions", "crd,crds"),
            ("cronjobs", "cj"),
            ("ingresses", "ing"),
            ("priorityclasses", "pc"),
        ] {
            assert!(
                out.lines()
                    .any(|l| l.starts_with(plural) && l.contains(short)),
                "{k}: {plural} ({short}) missing in api-resources"
            );
        }
        let versions = k1s.kubectl(&k, &["api-versions"]);
        for gv in [
            "v1",
            "apps/v1",
            "batch/v1",
            "autoscaling/v2",
            "networking.k8s.io/v1",
            "apiextensions.k8s.io/v1",
            "flowcontrol.apiserver.k8s.io/v1",
        ] {
            assert!(versions.ok().lines().any(|l| l == gv), "{k}: {gv} missing");
        }
        let explain = k1s.kubectl(&k, &["explain", "deployment.spec.template.spec.containers"]);
        let out = explain.ok();
        assert!(
            out.contains("KIND:") && out.contains("Deployment"),
            "{k}: {out}"
        );
        assert!(out.contains("image"), "{k}: {out}");
        let limits = k1s.kubectl(&k, &["explain", "pods.spec.containers.resources.limits"]);
        assert!(
            limits.ok().contains("FIELD: limits <map[string]Quantity>"),
            "{k}: {}",
            limits.stdout
        );
        let target = k1s.kubectl(&k, &["explain", "svc.spec.ports.targetPort"]);
        assert!(
            target.ok().contains("FIELD: targetPort <IntOrString>"),
            "{k}: {}",
            target.stdout
        );
        let version = k1s.kubectl(&k, &["version"]);
        let out = version.ok();
        assert!(
            out.contains("Server Version") && out.contains("v1.35."),
            "{k}: {out}"
        );
    }
}

#[test]
fn apply_unchanged_configured_server_side_and_diff_with_every_kubectl() {
    let k1s = K1s::start();
    for k in kubectl_versions() {
        let ns = format!("apply-{}", k.minor);
        namespace(&k1s, &k, &ns);
        let apply = |doc: &str, extra: &[&str]| {
            let mut args = vec!["apply", "-n", &ns, "-f", "-"];
            args.extend_from_slice(extra);
            k1s.kubectl_with(&k, &args, Some(doc), &[])
        };
        let created = apply(APP, &[]);
        let out = created.ok();
        for line in [
            "deployment.apps/web created",
            "service/web created",
            "configmap/settings created",
            "secret/creds created",
            "job.batch/once created",
            "cronjob.batch/tick created",
            "statefulset.apps/db created",
            "daemonset.apps/agent created",
            "ingress.networking.k8s.io/web created",
            "persistentvolumeclaim/data created",
            "horizontalpodautoscaler.autoscaling/web created",
        ] {
            assert!(out.contains(line), "{k}: `{line}` missing in\n{out}");
        }
        let again = apply(APP, &[]);
        let out = again.ok();
        assert_eq!(
            out.lines().filter(|l| l.ends_with(" unchanged")).count(),
            11,
            "{k}: second apply\n{out}"
        );
        let changed_doc = APP.replace("mode: fast", "mode: slow");
        let diff = k1s.kubectl_with(&k, &["diff", "-n", &ns, "-f", "-"], Some(&changed_doc), &[]);
        assert_eq!(diff.code, 1, "{k}: diff exit code; stderr: {}", diff.stderr);
        assert!(
            diff.stdout.contains("+  mode: slow"),
            "{k}: {}",
            diff.stdout
        );
        let changed = apply(&changed_doc, &[]);
        assert!(
            changed.ok().contains("configmap/settings configured"),
            "{k}"
        );
        let mode = k1s.kubectl(
            &k,
            &[
                "get",
                "cm",
                "settings",
                "-n",
                &ns,
                "-o",
                "jsonpath={.data.mode}",
            ],
        );
        assert_eq!(mode.ok(), "slow");
        let no_diff =
            k1s.kubectl_with(&k, &["diff", "-n", &ns, "-f", "-"], Some(&changed_doc), &[]);
        assert_eq!(
            no_diff.code, 0,
            "{k}: diff of the live state: {}",
            no_diff.stdout
        );

        // Server-side apply: two managers of one field conflict like upstream.
        let cm = |v: &str| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\ndata:\n  key: {v}\n"
            )
        };
        apply(&cm("a"), &["--server-side", "--field-manager=alice"]).ok();
        let conflict = apply(&cm("b"), &["--server-side", "--field-manager=bob"]);
        let err = conflict.fails();
        assert!(
            err.contains("Apply failed with 1 conflict: conflict with \"alice\": .data.key"),
            "{k}: {err}"
        );
        apply(
            &cm("b"),
            &["--server-side", "--field-manager=bob", "--force-conflicts"],
        )
        .ok();
        let key = k1s.kubectl(
            &k,
            &[
                "get",
                "cm",
                "owned",
                "-n",
                &ns,
                "-o",
                "jsonpath={.data.key}",
            ],
        );
        assert_eq!(key.ok(), "b");
    }
}

#[test]
fn get_output_formats_selectors_and_describe() {
    let k1s = K1s::start();
    let versions = kubectl_versions();
    let newest = newest_kubectl();
    k1s.kubectl_with(&newest, &["apply", "-f", "-"], Some(APP), &[])
        .ok();
    let other =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n  namespace: kube-public\n";
    k1s.kubectl_with(&newest, &["apply", "-f", "-"], Some(other), &[])
        .ok();
    for k in &versions {
        let get = |args: &[&str]| {
            let mut all = vec!["get"];
            all.extend_from_slice(args);
            k1s.kubectl(k, &all)
        };
        let deploy = get(&["deploy"]);
        let header: Vec<&str> = deploy
            .ok()
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            header,
            ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            "{k}"
        );
        let wide = get(&["deploy", "-o", "wide"]);
        let header: Vec<&str> = wide
            .ok()
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            header,
            [
                "NAME",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "AGE",
                "CONTAINERS",
                "IMAGES",
                "SELECTOR"
            ],
            "{k}"
        );
        assert!(
            wide.stdout.contains("nginx:1.27") && wide.stdout.contains("app=web"),
            "{k}"
        );
        let svc = get(&["svc", "web"]);
        let header: Vec<&str> = svc
            .ok()
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            header,
            [
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE"
            ],
            "{k}"
        );
        assert!(
            svc.stdout.contains("ClusterIP") && svc.stdout.contains("80/TCP"),
            "{k}"
        );
        let cm = get(&["cm", "settings"]);
        assert!(cm.ok().contains("settings   1 "), "{k}: {}", cm.stdout);
        let yaml = get(&["deploy", "web", "-o", "yaml"]);
        assert!(
            yaml.ok().contains("kind: Deployment") && yaml.stdout.contains("replicas: 2"),
            "{k}"
        );
        let json = get(&["deploy", "web", "-o", "json"]);
        let parsed: serde_json::Value =
            serde_json::from_str(json.ok()).unwrap_or_else(|e| panic!("{k}: -o json: {e}"));
        assert_eq!(
            parsed["spec"]["template"]["spec"]["containers"][0]["name"],
            "nginx"
        );
        let jp = get(&["deploy", "web", "-o", "jsonpath={.spec.replicas}"]);
        assert_eq!(jp.ok(), "2", "{k}");
        let name = get(&["deploy,svc", "-o", "name"]);
        assert!(
            name.ok()
                .contains("deployment.apps/web\nservice/kubernetes\nservice/web"),
            "{k}: {}",
            name.stdout
        );
        let labels = get(&["deploy", "--show-labels"]);
        assert!(labels.ok().contains("app=web,tier=front"), "{k}");
        let selected = get(&["deploy", "-l", "tier=front", "-o", "name"]);
        assert_eq!(selected.ok().trim(), "deployment.apps/web", "{k}");
        let none = get(&["deploy", "-l", "tier=back"]);
        assert!(
            none.stderr
                .contains("No resources found in default namespace."),
            "{k}: {}",
            none.stderr
        );
        let by_field = get(&["svc", "--field-selector", "metadata.name=web", "-o", "name"]);
        assert_eq!(by_field.ok().trim(), "service/web", "{k}");
        let all_ns = get(&["cm", "-A"]);
        let out = all_ns.ok();
        assert!(out.starts_with("NAMESPACE"), "{k}: {out}");
        assert!(
            out.contains("kube-public ") && out.contains("default ") && out.contains("settings"),
            "{k}: {out}"
        );
        let chunked = get(&["cm", "-A", "--chunk-size=1", "-o", "name"]);
        let all = get(&["cm", "-A", "-o", "name"]);
        assert_eq!(
            chunked.ok(),
            all.ok(),
            "{k}: --chunk-size=1 lists everything once"
        );
    }
    for k in &versions {
        for kind in [
            "deployment/web",
            "service/web",
            "configmap/settings",
            "secret/creds",
            "job/once",
            "cronjob/tick",
            "statefulset/db",
            "daemonset/agent",
            "ingress/web",
            "pvc/data",
            "hpa/web",
            "namespace/default",
        ] {
            let d = k1s.kubectl(k, &["describe", kind]);
            let out = d.ok();
            let name = kind.split('/').nth(1).unwrap_or("");
            assert!(
                out.lines()
                    .next()
                    .is_some_and(|l| l.starts_with("Name:") && l.ends_with(name)),
                "{k}: describe {kind}:\n{out}"
            );
        }
    }
}

#[test]
fn watch_sees_a_change_made_by_another_client() {
    let k1s = K1s::start();
    for k in kubectl_versions() {
        let ns = format!("watch-{}", k.minor);
        k1s.kubectl(&k, &["create", "namespace", &ns]).ok();
        let before = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: before\n";
        k1s.kubectl_with(&k, &["-n", &ns, "apply", "-f", "-"], Some(before), &[])
            .ok();
        let mut watcher =
            k1s.kubectl_spawn(&k, &["-n", &ns, "get", "configmaps", "-w", "--no-headers"]);
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
        // The initial list shows `before`; only then is the change below a watch event.
        eventually(Duration::from_secs(10), "the initial list", || {
            rx.try_recv().ok().filter(|l| l.starts_with("before"))
        });
        let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\ndata:\n  a: b\n";
        k1s.kubectl_with(&k, &["-n", &ns, "apply", "-f", "-"], Some(doc), &[])
            .ok();
        let line = eventually(Duration::from_secs(10), "the watch event", || {
            rx.try_recv().ok().filter(|l| l.starts_with("watched"))
        });
        assert!(line.split_whitespace().nth(1) == Some("1"), "{k}: {line}");
        k1s.kubectl(&k, &["-n", &ns, "delete", "configmap", "before"])
            .ok();
        // kubectl prints the last state of a deleted object as one more line.
        eventually(Duration::from_secs(10), "the delete event", || {
            rx.try_recv().ok().filter(|l| l.starts_with("before"))
        });
        let _ = watcher.kill();
        let _ = watcher.wait();
    }
}

#[test]
fn bad_input_gets_upstream_errors_and_changes_nothing() {
    let k1s = K1s::start();
    for k in kubectl_versions() {
        let ns = format!("bad-{}", k.minor);
        namespace(&k1s, &k, &ns);
        let apply =
            |doc: &str| k1s.kubectl_with(&k, &["apply", "-n", &ns, "-f", "-"], Some(doc), &[]);
        apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\ndata:\n  v: original\n")
            .ok();
        let state = || {
            k1s.kubectl(
                &k,
                &[
                    "get",
                    "cm",
                    "keep",
                    "-n",
                    &ns,
                    "-o",
                    "jsonpath={.data.v}/{.metadata.resourceVersion}",
                ],
            )
            .ok()
            .to_string()
        };
        let before = state();

        let unknown = apply(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\ndata:\n  v: changed\nbogus: 1\n",
        );
        assert!(
            unknown
                .fails()
                .contains("strict decoding error: unknown field \"bogus\""),
            "{k}: {}",
            unknown.stderr
        );

        let bad_name = apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n");
        assert!(
            bad_name.fails().contains("The ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"),
            "{k}: {}", bad_name.stderr
        );

        let wrong_type = k1s.kubectl_with(
            &k,
            &["apply", "-n", &ns, "--validate=false", "-f", "-"],
            Some(&APP.replace("replicas: 2", "replicas: \"two\"")),
            &[],
        );
        assert!(
            wrong_type.fails().contains("json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"),
            "{k}: {}", wrong_type.stderr
        );

        let stale = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\n  resourceVersion: \"1\"\ndata:\n  v: stale\n";
        let replace = k1s.kubectl_with(&k, &["replace", "-n", &ns, "-f", "-"], Some(stale), &[]);
        assert!(
            replace.fails().contains("Operation cannot be fulfilled on configmaps \"keep\": the object has been modified; please apply your changes to the latest version and try again"),
            "{k}: {}", replace.stderr
        );

        let dup = k1s.kubectl_with(
            &k,
            &["create", "-n", &ns, "-f", "-"],
            Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\n"),
            &[],
        );
        assert!(
            dup.fails().contains("configmaps \"keep\" already exists"),
            "{k}: {}",
            dup.stderr
        );

        let malformed = apply("apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n");
        assert!(malformed.fails().contains("error"), "{k}");
        let raw = k1s.write_file("bad.json", "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",");
        let raw_post = k1s.kubectl(
            &k,
            &[
                "create",
                "--raw",
                &format!("/api/v1/namespaces/{ns}/configmaps"),
                "-f",
                raw.to_str().unwrap_or(""),
            ],
        );
        assert!(
            raw_post.fails().contains("BadRequest")
                || raw_post.stderr.contains("the server rejected our request"),
            "{k}: {}",
            raw_post.stderr
        );

        let unknown_kind = k1s.kubectl(&k, &["get", "foos"]);
        assert!(
            unknown_kind
                .fails()
                .contains("the server doesn't have a resource type \"foos\""),
            "{k}: {}",
            unknown_kind.stderr
        );

        assert_eq!(state(), before, "{k}: stored object changed");
    }
}

#[test]
fn crd_is_usable_at_once_and_validates_its_objects() {
    let k1s = K1s::start();
    let k = newest_kubectl();
    k1s.kubectl_with(&k, &["apply", "-f", "-"], Some(CRD), &[])
        .ok();
    let established = k1s.kubectl(
        &k,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=5s",
            "crd/crontabs.stable.example.com",
        ],
    );
    established.ok();
    for k in kubectl_versions() {
        let ns = format!("crd-{}", k.minor);
        namespace(&k1s, &k, &ns);
        let created = k1s.kubectl_with(&k, &["apply", "-n", &ns, "-f", "-"], Some(CRONTAB), &[]);
        assert!(
            created
                .ok()
                .contains("crontab.stable.example.com/my-new-cron-object created"),
            "{k}"
        );
        let listed = k1s.kubectl(&k, &["get", "ct", "-n", &ns]);
        let header: Vec<&str> = listed
            .ok()
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            header,
            ["NAME", "SPEC", "REPLICAS", "AGE"],
            "{k}: printer columns"
        );
        assert!(
            listed.stdout.contains("* * * * */5   1 "),
            "{k}: default applied: {}",
            listed.stdout
        );
        let bad = CRONTAB.replace("my-new-cron-object", "bad").replace(
            "image: my-awesome-cron-image",
            "image: x\n  replicas: \"three\"",
        );
        let rejected = k1s.kubectl_with(&k, &["apply", "-n", &ns, "-f", "-"], Some(&bad), &[]);
        assert!(
            rejected.fails().contains("spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""),
            "{k}: {}", rejected.stderr
        );
        let unknown = CRONTAB
            .replace("my-new-cron-object", "bad")
            .replace("image: my-awesome-cron-image", "image: x\n  colour: red");
        let rejected = k1s.kubectl_with(&k, &["apply", "-n", &ns, "-f", "-"], Some(&unknown), &[]);
        assert!(
            rejected.fails().contains("unknown field \"spec.colour\""),
            "{k}: {}",
            rejected.stderr
        );
        let scaled = k1s.kubectl(
            &k,
            &[
                "scale",
                "ct",
                "my-new-cron-object",
                "-n",
                &ns,
                "--replicas=3",
            ],
        );
        assert!(scaled.ok().contains("scaled"), "{k}");
        let explain = k1s.kubectl(&k, &["explain", "crontab.spec"]);
        assert!(explain.ok().contains("cronSpec"), "{k}");
    }
    k1s.kubectl(&k, &["delete", "crd", "crontabs.stable.example.com"])
        .ok();
    // kubectl's discovery cache may still know the type; either way the server says it is gone.
    let gone = k1s.kubectl(&k, &["get", "ct", "-A"]);
    let err = gone.fails();
    assert!(
        err.contains("the server doesn't have a resource type \"ct\"")
            || err.contains("the server could not find the requested resource"),
        "{err}"
    );
}
#[test]
fn edit_patch_label_annotate_scale_and_delete() {
    let k1s = K1s::start();
    for k in kubectl_versions() {
        let ns = format!("edit-{}", k.minor);
        namespace(&k1s, &k, &ns);
        let kc = |args: &[&str]| k1s.kubectl_in(&k, &ns, args);
        k1s.kubectl_with(&k, &["apply", "-n", &ns, "-f", "-"], Some(APP), &[])
            .ok();
        let edited = k1s.kubectl_with(
            &k,
            &["edit", "-n", &ns, "cm", "settings"],
            None,
            &[
                ("EDITOR", "sed -i s/mode:\\ fast/mode:\\ edited/"),
                ("KUBE_EDITOR", ""),
            ],
        );
        assert!(edited.ok().contains("configmap/settings edited"), "{k}");
        assert_eq!(
            kc(&["get", "cm", "settings", "-o", "jsonpath={.data.mode}"]).ok(),
            "edited"
        );

        assert!(
            kc(&["patch", "cm", "settings", "-p", "{\"data\":{\"a\":\"1\"}}"])
                .ok()
                .contains("configmap/settings patched")
        );
        kc(&[
            "patch",
            "cm",
            "settings",
            "--type=merge",
            "-p",
            "{\"data\":{\"b\":\"2\"}}",
        ])
        .ok();
        kc(&[
            "patch",
            "cm",
            "settings",
            "--type=json",
            "-p",
            "[{\"op\":\"add\",\"path\":\"/data/c\",\"value\":\"3\"}]",
        ])
        .ok();
        let data = kc(&[
            "get",
            "cm",
            "settings",
            "-o",
            "jsonpath={.data.a}{.data.b}{.data.c}",
        ]);
        assert_eq!(data.ok(), "123", "{k}");
        let failed_test = kc(&[
            "patch",
            "cm",
            "settings",
            "--type=json",
            "-p",
            "[{\"op\":\"test\",\"path\":\"/data/a\",\"value\":\"9\"}]",
        ]);
        assert!(
            failed_test
                .fails()
                .contains("the server rejected our request due to an error in our request"),
            "{k}: {}",
            failed_test.stderr
        );

        assert!(
            kc(&["label", "cm", "settings", "color=blue"])
                .ok()
                .contains("configmap/settings labeled")
        );
        // kubectl 1.27 prints "annotate", later versions "annotated".
        assert!(
            kc(&["annotate", "cm", "settings", "note=hi"])
                .ok()
                .contains("configmap/settings annotate")
        );
        let meta = kc(&[
            "get",
            "cm",
            "settings",
            "-o",
            "jsonpath={.metadata.labels.color}/{.metadata.annotations.note}",
        ]);
        assert_eq!(meta.ok(), "blue/hi");

        assert!(
            kc(&["scale", "deploy", "web", "--replicas=4"])
                .ok()
                .contains("deployment.apps/web scaled")
        );
        assert_eq!(
            kc(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).ok(),
            "4"
        );
        let scale = k1s.kubectl(
            &k,
            &[
                "get",
                "--raw",
                &format!("/apis/apps/v1/namespaces/{ns}/deployments/web/scale"),
            ],
        );
        assert!(
            scale.ok().contains("\"replicas\":4"),
            "{k}: {}",
            scale.stdout
        );

        let orphan = kc(&[
            "delete",
            "deploy",
            "web",
            "--cascade=orphan",
            "--timeout=20s",
        ]);
        assert!(
            orphan.ok().contains("\"web\" deleted"),
            "{k}: {}",
            orphan.stdout
        );
        let forced = kc(&["delete", "cm", "settings", "--grace-period=0", "--force"]);
        assert!(
            forced.ok().contains("\"settings\" force deleted"),
            "{k}: {}",
            forced.stdout
        );
        assert!(kc(&["get", "cm", "settings"]).fails().contains("NotFound"));
    }
}
#[test]
fn create_and_run_commands() {
    let k1s = K1s::start();
    for k in kubectl_versions() {
        let ns = format!("create-{}", k.minor);
        let created = k1s.kubectl(&k, &["create", "namespace", &ns]);
        assert!(
            created.ok().contains(&format!("namespace/{ns} created")),
            "{k}"
        );
        let kc = |args: &[&str]| k1s.kubectl_in(&k, &ns, args);
        for (args, expect) in [
            (
                &[
                    "create",
                    "deployment",
                    "d",
                    "--image=busybox",
                    "--replicas=2",
                ][..],
                "deployment.apps/d created",
            ),
            (
                &["create", "configmap", "c", "--from-literal=a=b"][..],
                "configmap/c created",
            ),
            (
                &["create", "secret", "generic", "s", "--from-literal=a=b"][..],
                "secret/s created",
            ),
            (
                &["create", "job", "j", "--image=busybox"][..],
                "job.batch/j created",
            ),
            (&["run", "p", "--image=busybox"][..], "pod/p created"),
            (
                &["create", "service", "clusterip", "s", "--tcp=80:8080"][..],
                "service/s created",
            ),
            (
                &[
                    "create",
                    "cronjob",
                    "cj",
                    "--image=busybox",
                    "--schedule=* * * * *",
                ][..],
                "cronjob.batch/cj created",
            ),
        ] {
            let r = kc(args);
            assert!(r.ok().contains(expect), "{k}: {}", r.stdout);
        }
        assert_eq!(
            kc(&["get", "deploy", "d", "-o", "jsonpath={.spec.replicas}"]).ok(),
            "2"
        );
        assert_eq!(
            kc(&["get", "secret", "s", "-o", "jsonpath={.data.a}"]).ok(),
            "Yg=="
        );
        assert_eq!(
            kc(&[
                "get",
                "pod",
                "p",
                "-o",
                "jsonpath={.spec.containers[0].image}"
            ])
            .ok(),
            "busybox"
        );
    }
}
