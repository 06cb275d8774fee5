//! Issue 12's API gaps, found by trying real manifests and clients: each case drives the
//! real kubectl (or raw HTTPS) against one shared `k1s server` and expects upstream's
//! answer.

use std::time::Duration;

use k1s_e2e::{K1s, eventually, newest_kubectl};

/// The StatefulSet of upstream's documentation mounts `www`, a volume only through its
/// claim template.
const DOCS_STATEFULSET: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: nginx
  labels: {app: nginx}
spec:
  ports: [{port: 80, name: web}]
  clusterIP: None
  selector: {app: nginx}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: nginx}
  serviceName: nginx
  replicas: 3
  minReadySeconds: 10
  template:
    metadata:
      labels: {app: nginx}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.24
        ports: [{containerPort: 80, name: web}]
        volumeMounts:
        - name: www
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: ["ReadWriteOnce"]
      storageClassName: my-storage-class
      resources:
        requests:
          storage: 1Gi
"#;

/// cert-manager's Order: the root schema requires `metadata` and `spec`.
const ORDER_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: orders.acme.cert-manager.io
spec:
  group: acme.cert-manager.io
  names: {kind: Order, listKind: OrderList, plural: orders, singular: order}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: false
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        required: [metadata, spec]
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec:
            type: object
            required: [request]
            properties:
              request: {type: string, format: byte}
              commonName: {type: string}
              dnsNames: {type: array, items: {type: string}}
"#;

const ORDER: &str = r#"
apiVersion: acme.cert-manager.io/v1
kind: Order
metadata:
  name: web-order
spec:
  request: Zm9v
  commonName: null
  dnsNames: [example.com]
"#;

/// A CRD whose root keeps unknown fields, and a `kind: List` of its objects with fields
/// the schema does not name (kubectl validates a List against `/openapi/v2`).
const LOOSE_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.loose.example.com
spec:
  group: loose.example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
"#;

const LOOSE_LIST: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: loose.example.com/v1
  kind: Widget
  metadata: {name: a}
  spec: {size: 1}
  extra: {anything: goes}
- apiVersion: loose.example.com/v1
  kind: Widget
  metadata: {name: b}
  spec: {size: 2}
  other: [1, 2]
"#;

#[test]
fn api_gaps_with_kubectl() {
    let k1s = K1s::start();
    let k = newest_kubectl();

    // 1. The documentation's StatefulSet is accepted.
    let manifest = k1s.write_file("web.yaml", DOCS_STATEFULSET);
    let out = k1s.kubectl(&k, &["apply", "-f", manifest.to_str().unwrap_or_default()]);
    assert!(
        out.ok().contains("statefulset.apps/web created"),
        "{}",
        out.stdout
    );

    // 2. A CRD whose root requires metadata, with a null in a non-nullable field; its
    // group prefers v1 over the v1alpha1 listed first.
    let crd = k1s.write_file("order-crd.yaml", ORDER_CRD);
    k1s.kubectl(&k, &["apply", "-f", crd.to_str().unwrap_or_default()])
        .ok();
    k1s.kubectl(
        &k,
        &[
            "wait",
            "--for=condition=Established",
            "crd/orders.acme.cert-manager.io",
            "--timeout=30s",
        ],
    )
    .ok();
    let order = k1s.write_file("order.yaml", ORDER);
    eventually(Duration::from_secs(30), "Order applied", || {
        let out = k1s.kubectl(&k, &["apply", "-f", order.to_str().unwrap_or_default()]);
        (out.code == 0).then_some(())
    });
    let spec = k1s.kubectl(&k, &["get", "order", "web-order", "-o", "jsonpath={.spec}"]);
    assert_eq!(
        spec.ok(),
        r#"{"dnsNames":["example.com"],"request":"Zm9v"}"#,
        "the null is pruned"
    );
    let group = k1s.kubectl(&k, &["get", "--raw", "/apis/acme.cert-manager.io"]);
    assert!(
        group.ok().contains(
            r#""preferredVersion":{"groupVersion":"acme.cert-manager.io/v1","version":"v1"}"#
        ),
        "{}",
        group.stdout
    );

    // A List of objects whose schema keeps unknown fields passes kubectl's validation.
    let loose = k1s.write_file("loose-crd.yaml", LOOSE_CRD);
    k1s.kubectl(&k, &["apply", "-f", loose.to_str().unwrap_or_default()])
        .ok();
    k1s.kubectl(
        &k,
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.loose.example.com",
            "--timeout=30s",
        ],
    )
    .ok();
    let list = k1s.write_file("loose-list.yaml", LOOSE_LIST);
    let applied = eventually(Duration::from_secs(30), "List applied", || {
        let out = k1s.kubectl(&k, &["apply", "-f", list.to_str().unwrap_or_default()]);
        (out.code == 0).then_some(out.stdout)
    });
    assert!(
        applied.contains("widget.loose.example.com/b created"),
        "{applied}"
    );

    // 3. `kubectl get cs`: every in-process component healthy, the datastore as etcd-0.
    let cs = k1s.kubectl(&k, &["get", "componentstatuses"]);
    let text = cs.ok();
    for name in ["scheduler", "controller-manager", "etcd-0"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        assert!(line.contains("Healthy") && line.contains("ok"), "{line}");
    }

    // 4. A valid client certificate with a token nobody knows: the certificate's user.
    let ns = k1s.kubectl(
        &k,
        &["--token=bogus", "get", "namespace", "default", "-o", "name"],
    );
    assert_eq!(ns.ok().trim(), "namespace/default");

    // 5. A subresource nobody serves is not found.
    let out = k1s.kubectl(
        &k,
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/pods/p/nonsense",
            "-f",
            k1s.write_file("empty.json", "{}")
                .to_str()
                .unwrap_or_default(),
        ],
    );
    assert!(
        out.fails().contains("NotFound") || out.stderr.contains("not found"),
        "{}",
        out.stderr
    );

    // 6. JSON bodies end with a newline and built-in objects start with kind.
    let raw = k1s.kubectl(&k, &["get", "--raw", "/api/v1/namespaces/default"]);
    let body = raw.ok();
    assert!(
        body.starts_with(r#"{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"default""#),
        "{body}"
    );
}
