//! Parity rows of networking.k8s.io, discovery.k8s.io, rbac.authorization.k8s.io,
//! storage.k8s.io, scheduling.k8s.io, node.k8s.io and coordination.k8s.io (see the
//! module above). Valid objects are the shapes the Kubernetes docs, ingress-nginx,
//! cert-manager and local-path-provisioner create.

use serde_json::json;

use super::Case;

const SUBDOMAIN_EMPTY: &str = "Invalid value: \"\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn networking() -> Vec<Case> {
    vec![
        Case::new(
            "/apis/networking.k8s.io/v1/namespaces/parity/ingresses",
            json!({"metadata": {"name": "x", "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/"}},
                   "spec": {"ingressClassName": "nginx",
                            "tls": [{"hosts": ["foo.example.com"], "secretName": "foo-tls"}],
                            "rules": [{"host": "foo.example.com", "http": {"paths": [
                                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                                {"path": "/api", "pathType": "Exact", "backend": {"service": {"name": "api", "port": {"name": "http"}}}},
                                {"pathType": "ImplementationSpecific", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
                            ]}}]}}),
        )
        .required("/spec/rules", "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified")
        .required("/spec/rules/0/http/paths", "spec.rules[0].http.paths: Required value")
        .required("/spec/rules/0/http/paths/0/pathType", "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified")
        .required("/spec/rules/0/http/paths/0/backend/service/name", "spec.rules[0].http.paths[0].backend.service.name: Required value")
        .required("/spec/rules/0/http/paths/0/backend/service/port/number", "spec.rules[0].http.paths[0].backend: Required value: port name or number is required")
        .required("/spec/rules/0/http/paths/0/backend/service", "spec.rules[0].http.paths[0].backend: Invalid value: \"\": resource or service backend is required")
        .invalid("/spec/rules/0/host", json!("1.2.3.4"), "spec.rules[0].host: Invalid value: \"1.2.3.4\": must be a DNS name, not an IP address")
        .invalid("/spec/rules/0/http/paths/0/pathType", json!("Regex"), "spec.rules[0].http.paths[0].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"")
        .invalid("/spec/rules/0/http/paths/0/path", json!("foo"), "spec.rules[0].http.paths[0].path: Invalid value: \"foo\": must be an absolute path")
        .invalid("/spec/rules/0/http/paths/1/path", json!("/a/../b"), "spec.rules[0].http.paths[1].path: Invalid value: \"/a/../b\": must not contain '/../'")
        .invalid("/spec/rules/0/http/paths/0/backend/service/port/number", json!(70000), "spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive")
        .invalid("/spec/rules/0/http/paths/0/backend/service/name", json!("1web"), "spec.rules[0].http.paths[0].backend.service.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
        .invalid("/spec/tls/0/hosts/0", json!("*.*.example.com"), "spec.tls[0].hosts[0]: Invalid value: \"*.*.example.com\": a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
        .invalid("/spec/ingressClassName", json!("Nginx"), "spec.ingressClassName: Invalid value: \"Nginx\": a lowercase RFC 1123 subdomain")
        .invalid("/metadata/annotations", json!({"kubernetes.io/ingress.class": "traefik"}), "annotations.kubernetes.io/ingress.class: Invalid value: \"traefik\": must match `ingressClassName` when both are specified"),
        Case::new(
            "/apis/networking.k8s.io/v1/ingressclasses",
            json!({"metadata": {"name": "x", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
                   "spec": {"controller": "k8s.io/ingress-nginx",
                            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}}),
        )
        .required("/spec/controller", "spec.controller: Required value")
        .required("/spec/parameters/kind", "spec.parameters.kind: Required value")
        .required("/spec/parameters/name", "spec.parameters.name: Required value")
        .invalid("/spec/controller", json!("nginx"), "spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")")
        .invalid("/spec/parameters/scope", json!("Global"), "spec.parameters.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespace\"")
        .invalid("/spec/parameters/scope", json!("Namespace"), "spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'")
        .invalid("/spec/parameters/namespace", json!("default"), "spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'")
        .immutable("/spec/controller", json!("example.com/other"), "spec.controller: Invalid value: \"example.com/other\": field is immutable"),
        Case::new(
            "/apis/networking.k8s.io/v1/namespaces/parity/networkpolicies",
            json!({"metadata": {"name": "x"}, "spec": {
                "podSelector": {"matchLabels": {"role": "db"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [
                    {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                    {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
                    {"podSelector": {"matchLabels": {"role": "frontend"}}}
                ], "ports": [{"protocol": "TCP", "port": 6379}]}],
                "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 32000, "endPort": 32768}]}]
            }}),
        )
        .required("/spec/ingress/0/from/0/ipBlock/cidr", "spec.ingress[0].from[0].ipBlock.cidr: Required value")
        .invalid("/spec/ingress/0/from/0/ipBlock/cidr", json!("172.17.0.0/33"), "spec.ingress[0].from[0].ipBlock.cidr: Invalid value: \"172.17.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
        .invalid("/spec/ingress/0/from/0/ipBlock/except/0", json!("10.0.0.0/24"), "spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: \"10.0.0.0/24\": must be a strict subset of `cidr`")
        .invalid("/spec/ingress/0/from/1", json!({}), "spec.ingress[0].from[1]: Required value: must specify a peer")
        .invalid("/spec/ingress/0/from/2/ipBlock", json!({"cidr": "10.0.0.0/8"}), "spec.ingress[0].from[2]: Forbidden: may not specify both ipBlock and another peer")
        .invalid("/spec/ingress/0/ports/0/protocol", json!("ICMP"), "spec.ingress[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"")
        .invalid("/spec/ingress/0/ports/0/port", json!(0), "spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive")
        .invalid("/spec/egress/0/ports/0/endPort", json!(5000), "spec.egress[0].ports[0].endPort: Invalid value: 5000: must be greater than or equal to `port`")
        .invalid("/spec/policyTypes/0", json!("Both"), "spec.policyTypes[0]: Unsupported value: \"Both\": supported values: \"Ingress\", \"Egress\"")
        .invalid("/spec/policyTypes", json!(["Ingress", "Egress", "Ingress"]), "spec.policyTypes: Invalid value: []networking.PolicyType{\"Ingress\", \"Egress\", \"Ingress\"}: may not specify more than two policyTypes"),
        Case::new(
            "/apis/networking.k8s.io/v1/ipaddresses",
            json!({"metadata": {"name": "10.96.0.10"},
                   "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "kube-system", "name": "kube-dns"}}}),
        )
        .required("/spec/parentRef", "spec.parentRef: Required value")
        .required("/spec/parentRef/resource", "spec.parentRef.resource: Required value")
        .required("/spec/parentRef/name", "spec.parentRef.name: Required value")
        .invalid("/metadata/name", json!("10.096.0.1"), "metadata.name: Invalid value: \"10.096.0.1\": must not have leading 0s")
        .invalid("/metadata/name", json!("kube-dns"), "metadata.name: Invalid value: \"kube-dns\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        .invalid("/spec/parentRef/resource", json!("services/x"), "spec.parentRef.resource: Invalid value: \"services/x\": may not contain '/'")
        .immutable("/spec/parentRef/name", json!("other"), "spec.parentRef: Invalid value: networking.ParentReference{Group:\"\", Resource:\"services\", Namespace:\"kube-system\", Name:\"other\"}: field is immutable"),
        Case::new(
            "/apis/networking.k8s.io/v1/servicecidrs",
            json!({"metadata": {"name": "x"}, "spec": {"cidrs": ["10.200.0.0/16", "fd00:200::/112"]}}),
        )
        .required("/spec/cidrs", "spec.cidrs: Required value: at least one CIDR required")
        .invalid("/spec/cidrs/0", json!("10.200.0.1/16"), "spec.cidrs[0]: Invalid value: \"10.200.0.1/16\": must not have bits set beyond the prefix length")
        .invalid("/spec/cidrs/1", json!("fd00:200:0::/112"), "spec.cidrs[1]: Invalid value: \"fd00:200:0::/112\": must be in canonical form (\"fd00:200::/112\")")
        .invalid("/spec/cidrs/1", json!("10.201.0.0/16"), "spec.cidrs: Invalid value: []string{\"10.200.0.0/16\", \"10.201.0.0/16\"}: may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64")
        .invalid("/spec/cidrs", json!(["10.0.0.0/16", "fd00::/64", "10.1.0.0/16"]), "spec.cidrs: Invalid value: networking.ServiceCIDRSpec{CIDRs:[]string{\"10.0.0.0/16\", \"fd00::/64\", \"10.1.0.0/16\"}}: may only hold up to 2 values")
        .immutable("/spec/cidrs/0", json!("10.201.0.0/16"), "spec.cidrs[0]: Invalid value: \"10.201.0.0/16\": field is immutable")
        .immutable("/spec/cidrs", json!(["10.200.0.0/16"]), "spec.cidrs: Invalid value: []string{\"10.200.0.0/16\"}: field is immutable"),
        Case::new(
            "/apis/discovery.k8s.io/v1/namespaces/parity/endpointslices",
            json!({"metadata": {"name": "x", "labels": {"kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
                   "addressType": "IPv4",
                   "endpoints": [{"addresses": ["10.42.0.7"], "conditions": {"ready": true, "serving": true, "terminating": false},
                                  "nodeName": "node-1", "targetRef": {"kind": "Pod", "namespace": "parity", "name": "web-1"}}],
                   "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]}),
        )
        .required("/addressType", "addressType: Required value")
        .required("/endpoints/0/addresses", "endpoints[0].addresses: Required value: must contain at least 1 address")
        .invalid("/addressType", json!("IPv5"), "addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"")
        .invalid("/endpoints/0/addresses/0", json!("fd00::7"), "endpoints[0].addresses[0]: Invalid value: \"fd00::7\": must be a valid IPv4 address")
        .invalid("/endpoints/0/addresses/0", json!("169.254.169.254"), "endpoints[0].addresses[0]: Invalid value: \"169.254.169.254\": may not be in the link-local range (169.254.0.0/16, fe80::/10)")
        .invalid("/endpoints/0/addresses/0", json!("127.0.0.1"), "endpoints[0].addresses[0]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)")
        .invalid("/endpoints/0/hostname", json!("web.1"), "endpoints[0].hostname: Invalid value: \"web.1\": must not contain dots")
        .invalid("/endpoints/0/nodeName", json!("Node_1"), "endpoints[0].nodeName: Invalid value: \"Node_1\": a lowercase RFC 1123 subdomain")
        .invalid("/endpoints/0/hints", json!({"forZones": [{"name": "a"}, {"name": "a"}]}), "endpoints[0].hints.forZones[1].name: Duplicate value: \"a\"")
        .invalid("/ports/0/protocol", json!("HTTP"), "ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"")
        .invalid("/ports/0/appProtocol", json!("a/b/c"), "ports[0].appProtocol: Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters")
        .immutable("/addressType", json!("IPv6"), "addressType: Invalid value: \"IPv6\": field is immutable"),
    ]
}

fn rbac() -> Vec<Case> {
    vec![
        Case::new(
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            json!({"metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "ingress-nginx"}}, "rules": [
                {"apiGroups": [""], "resources": ["configmaps", "endpoints", "nodes", "pods", "secrets", "namespaces"], "verbs": ["list", "watch"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["list", "watch"]},
                {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses/status"], "verbs": ["update"]},
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}
            ]}),
        )
        .required("/rules/0/verbs", "rules[0].verbs: Required value: verbs must contain at least one value")
        .required("/rules/0/apiGroups", "rules[0].apiGroups: Required value: resource rules must supply at least one api group")
        .required("/rules/0/resources", "rules[0].resources: Required value: resource rules must supply at least one resource")
        .invalid("/rules/3/resources", json!(["pods"]), "rules[3].nonResourceURLs: Invalid value: []string{\"/metrics\"}: rules cannot apply to both regular resources and non-resource URLs")
        .invalid("/aggregationRule", json!({}), "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil")
        .invalid("/aggregationRule", json!({"clusterRoleSelectors": [{"matchExpressions": [{"key": "a", "operator": "In"}]}]}), "aggregationRule.clusterRoleSelectors[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
        Case::new(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            json!({"metadata": {"name": "x"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cert-manager-controller-issuers"},
                   "subjects": [{"kind": "ServiceAccount", "name": "cert-manager", "namespace": "cert-manager"},
                                {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"}]}),
        )
        .required("/roleRef", "roleRef.name: Required value")
        .required("/roleRef/name", "roleRef.name: Required value")
        .required("/roleRef/kind", "roleRef.kind: Unsupported value: \"\": supported values: \"ClusterRole\"")
        .required("/subjects/0/name", "subjects[0].name: Required value")
        .required("/subjects/0/namespace", "subjects[0].namespace: Required value")
        .invalid("/roleRef/kind", json!("Role"), "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"")
        .invalid("/roleRef/apiGroup", json!("rbac"), "roleRef.apiGroup: Unsupported value: \"rbac\": supported values: \"rbac.authorization.k8s.io\"")
        .invalid("/roleRef/name", json!("a/b"), "roleRef.name: Invalid value: \"a/b\": may not contain '/'")
        .invalid("/subjects/1/kind", json!("Robot"), "subjects[1].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"")
        .invalid("/subjects/1/apiGroup", json!("v1"), "subjects[1].apiGroup: Unsupported value: \"v1\": supported values: \"rbac.authorization.k8s.io\"")
        .immutable("/roleRef/name", json!("edit"), "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"),
        Case::new(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/parity/roles",
            json!({"metadata": {"name": "x"}, "rules": [
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["cert-manager-controller"], "verbs": ["get", "update", "patch"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]}
            ]}),
        )
        .required("/rules/0/verbs", "rules[0].verbs: Required value: verbs must contain at least one value")
        .required("/rules/0/apiGroups", "rules[0].apiGroups: Required value: resource rules must supply at least one api group")
        .required("/rules/0/resources", "rules[0].resources: Required value: resource rules must supply at least one resource")
        .invalid("/rules/1/nonResourceURLs", json!(["/metrics"]), "rules[1].nonResourceURLs: Invalid value: []string{\"/metrics\"}: namespaced rules cannot apply to non-resource URLs"),
        Case::new(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/parity/rolebindings",
            json!({"metadata": {"name": "x"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cert-manager:leaderelection"},
                   "subjects": [{"kind": "ServiceAccount", "name": "cert-manager", "namespace": "parity"},
                                {"kind": "User", "name": "jane@example.com"}]}),
        )
        .required("/roleRef/name", "roleRef.name: Required value")
        .required("/roleRef/kind", "roleRef.kind: Unsupported value: \"\": supported values: \"Role\", \"ClusterRole\"")
        .required("/subjects/0/name", "subjects[0].name: Required value")
        .invalid("/roleRef/kind", json!("User"), "roleRef.kind: Unsupported value: \"User\": supported values: \"Role\", \"ClusterRole\"")
        .invalid("/subjects/0/apiGroup", json!("v1"), "subjects[0].apiGroup: Unsupported value: \"v1\": supported values: \"\"")
        .invalid("/subjects/0/name", json!("Cert_Manager"), "subjects[0].name: Invalid value: \"Cert_Manager\": a lowercase RFC 1123 subdomain")
        .immutable("/roleRef/kind", json!("ClusterRole"), "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"cert-manager:leaderelection\"}: cannot change roleRef"),
    ]
}

fn storage() -> Vec<Case> {
    vec![
        Case::new(
            "/apis/storage.k8s.io/v1/storageclasses",
            json!({"metadata": {"name": "x", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                   "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}),
        )
        .required("/provisioner", "provisioner: Required value")
        .invalid("/provisioner", json!("rancher.io/local path"), "provisioner: Invalid value: \"rancher.io/local path\": name part must consist of alphanumeric characters")
        .invalid("/reclaimPolicy", json!("Recycle"), "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"")
        .invalid("/volumeBindingMode", json!("Later"), "volumeBindingMode: Unsupported value: \"Later\": supported values: \"Immediate\", \"WaitForFirstConsumer\"")
        .invalid("/allowedTopologies", json!([{"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": []}]}]), "allowedTopologies[0].matchLabelExpressions[0].values: Required value")
        .immutable("/provisioner", json!("example.com/other"), "provisioner: Forbidden: updates to provisioner are forbidden.")
        .immutable("/parameters", json!({"nodePath": "/opt/local-path"}), "parameters: Forbidden: updates to parameters are forbidden.")
        .immutable("/reclaimPolicy", json!("Retain"), "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.")
        .immutable("/volumeBindingMode", json!("Immediate"), "volumeBindingMode: Invalid value: \"Immediate\": field is immutable"),
        Case::new(
            "/apis/storage.k8s.io/v1/csidrivers",
            json!({"metadata": {"name": "x"},
                   "spec": {"attachRequired": false, "podInfoOnMount": true, "fsGroupPolicy": "File",
                            "volumeLifecycleModes": ["Persistent", "Ephemeral"]}}),
        )
        .invalid("/spec/fsGroupPolicy", json!("Always"), "spec.fsGroupPolicy: Unsupported value: \"Always\": supported values: \"File\", \"None\", \"ReadWriteOnceWithFSType\"")
        .invalid("/spec/volumeLifecycleModes/1", json!("Inline"), "spec.volumeLifecycleModes: Unsupported value: \"Inline\": supported values: \"Persistent\", \"Ephemeral\"")
        .invalid("/spec/tokenRequests", json!([{"audience": "vault", "expirationSeconds": 60}]), "spec.tokenRequests[0].expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes")
        .invalid("/spec/tokenRequests", json!([{"audience": "vault"}, {"audience": "vault"}]), "spec.tokenRequests[1].audience: Duplicate value: \"vault\"")
        .invalid("/spec/nodeAllocatableUpdatePeriodSeconds", json!(5), "spec.nodeAllocatableUpdatePeriodSeconds: Invalid value: 5: must be greater than or equal to 10 seconds")
        .immutable("/spec/attachRequired", json!(true), "spec.attachedRequired: Invalid value: true: field is immutable")
        .immutable("/spec/volumeLifecycleModes", json!(["Persistent"]), "spec.volumeLifecycleModes: Invalid value: []storage.VolumeLifecycleMode{\"Persistent\"}: field is immutable"),
        Case::new(
            "/apis/storage.k8s.io/v1/csinodes",
            json!({"metadata": {"name": "x"},
                   "spec": {"drivers": [{"name": "ebs.csi.aws.com", "nodeID": "i-0123456789abcdef0",
                                         "topologyKeys": ["topology.ebs.csi.aws.com/zone"], "allocatable": {"count": 25}}]}}),
        )
        .required("/spec/drivers/0/name", "spec.drivers[0].name: Required value")
        .required("/spec/drivers/0/nodeID", "spec.drivers[0].nodeID: Required value")
        .invalid("/spec/drivers/0/allocatable/count", json!(-1), "spec.drivers[0].allocatable.count: Invalid value: -1: must be greater than or equal to 0")
        .invalid("/spec/drivers/0/name", json!("EBS_CSI"), "spec.drivers[0].name: Invalid value: \"EBS_CSI\": a lowercase RFC 1123 subdomain")
        .invalid("/spec/drivers/0/topologyKeys/0", json!("zone!"), "spec.drivers[0]: Invalid value: \"zone!\": name part must consist of alphanumeric characters")
        .immutable("/spec/drivers/0/nodeID", json!("i-9999"), "spec.drivers: Invalid value: storage.CSINodeDriver{Name:\"ebs.csi.aws.com\", NodeID:\"i-9999\", TopologyKeys:[]string{\"topology.ebs.csi.aws.com/zone\"}, Allocatable:(*storage.VolumeNodeResources)(nil)}: field is immutable"),
        Case::new(
            "/apis/storage.k8s.io/v1/namespaces/parity/csistoragecapacities",
            json!({"metadata": {"name": "x"}, "storageClassName": "fast", "capacity": "100Gi",
                   "maximumVolumeSize": "10Gi",
                   "nodeTopology": {"matchLabels": {"topology.kubernetes.io/zone": "us-east-1a"}}}),
        )
        .required("/storageClassName", SUBDOMAIN_EMPTY)
        .invalid("/capacity", json!("-1Gi"), "capacity: Invalid value: \"-1Gi\": must be greater than or equal to 0")
        .invalid("/nodeTopology/matchExpressions", json!([{"key": "zone", "operator": "Exists", "values": ["a"]}]), "nodeTopology.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        .immutable("/storageClassName", json!("slow"), "storageClassName: Invalid value: \"slow\": field is immutable")
        // Upstream prints the selector with its generated String(); only the cause is
        // compared here.
        .immutable("/nodeTopology", json!({"matchLabels": {"zone": "b"}}), ": field is immutable"),
        Case::new(
            "/apis/storage.k8s.io/v1/volumeattachments",
            json!({"metadata": {"name": "x"},
                   "spec": {"attacher": "ebs.csi.aws.com", "nodeName": "node-1", "source": {"persistentVolumeName": "pvc-0a1b2c"}}}),
        )
        .required("/spec/attacher", "spec.attacher: Required value")
        .required("/spec/source/persistentVolumeName", "spec.source: Required value: must specify exactly one of inlineVolumeSpec and persistentVolumeName")
        .required("/spec/nodeName", SUBDOMAIN_EMPTY)
        .invalid("/spec/source/persistentVolumeName", json!(""), "spec.source.persistentVolumeName: Required value: must specify non empty persistentVolumeName")
        .invalid("/spec/attacher", json!("ebs csi"), "spec.attacher: Invalid value: \"ebs csi\": a lowercase RFC 1123 subdomain")
        // Upstream prints the spec struct with pointer addresses; only the cause is
        // compared.
        .immutable("/spec/nodeName", json!("node-2"), ": field is immutable"),
        Case::new(
            "/apis/storage.k8s.io/v1/volumeattributesclasses",
            json!({"metadata": {"name": "x"}, "driverName": "pd.csi.storage.gke.io",
                   "parameters": {"provisioned-iops": "3000", "provisioned-throughput": "50"}}),
        )
        .required("/driverName", "driverName: Required value")
        .required("/parameters", "parameters: Required value: must contain at least one key/value pair")
        .invalid("/driverName", json!("pd csi"), "driverName: Invalid value: \"pd csi\": name part must consist of alphanumeric characters")
        .immutable("/driverName", json!("ebs.csi.aws.com"), "driverName: Forbidden: updates to driverName are forbidden.")
        .immutable("/parameters/provisioned-iops", json!("4000"), "parameters: Forbidden: updates to parameters are forbidden."),
    ]
}

fn others() -> Vec<Case> {
    vec![
        Case::new(
            "/apis/scheduling.k8s.io/v1/priorityclasses",
            json!({"metadata": {"name": "x"}, "value": 1000000, "globalDefault": false,
                   "description": "This priority class should be used for XYZ service pods only."}),
        )
        .invalid("/value", json!(1000000001), "value: Forbidden: maximum allowed value of a user defined priority is 1000000000")
        .invalid("/metadata/name", json!("system-custom"), "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-custom is not a known system priority class")
        .invalid("/metadata/name", json!("system-node-critical"), "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: value of system-node-critical PriorityClass must be 2000001000")
        .invalid("/preemptionPolicy", json!("Sometimes"), "preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"PreemptLowerPriority\", \"Never\"")
        .immutable("/value", json!(5), "value: Forbidden: may not be changed in an update.")
        .immutable("/preemptionPolicy", json!("Never"), "preemptionPolicy: Invalid value: \"Never\": field is immutable"),
        Case::new(
            "/apis/node.k8s.io/v1/runtimeclasses",
            json!({"metadata": {"name": "x"}, "handler": "runsc",
                   "overhead": {"podFixed": {"cpu": "250m", "memory": "120Mi"}},
                   "scheduling": {"nodeSelector": {"runtime": "gvisor"},
                                  "tolerations": [{"key": "runtime", "operator": "Equal", "value": "gvisor", "effect": "NoSchedule"}]}}),
        )
        .required("/handler", "handler: Invalid value: \"\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character")
        .invalid("/handler", json!("run.sc"), "handler: Invalid value: \"run.sc\": must not contain dots")
        .invalid("/overhead/podFixed/cpu", json!("-1"), "overhead.limits[cpu]: Invalid value: \"-1\": must be greater than or equal to 0")
        .invalid("/scheduling/tolerations/0/effect", json!("Never"), "scheduling.tolerations[0].effect: Unsupported value: \"Never\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"")
        .invalid("/scheduling/nodeSelector", json!({"runtime": "g visor"}), "scheduling.nodeSelector: Invalid value: \"g visor\": a valid label must be an empty string")
        .immutable("/handler", json!("kata"), "handler: Invalid value: \"kata\": field is immutable"),
        Case::new(
            "/apis/coordination.k8s.io/v1/namespaces/parity/leases",
            json!({"metadata": {"name": "x"},
                   "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40, "leaseTransitions": 0,
                            "acquireTime": "2025-01-01T00:00:00.000000Z", "renewTime": "2025-01-01T00:00:10.000000Z"}}),
        )
        .invalid("/spec/leaseDurationSeconds", json!(0), "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0")
        .invalid("/spec/leaseTransitions", json!(-1), "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"),
    ]
}

/// The rows.
pub fn cases() -> Vec<Case> {
    let mut all = networking();
    all.extend(rbac());
    all.extend(storage());
    all.extend(others());
    all
}
