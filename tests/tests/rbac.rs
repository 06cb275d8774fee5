//! Issue 13, authentication and authorization, against a real `k1s server` through
//! kubectl: `kubectl auth can-i` as users, groups and ServiceAccounts (`--as`,
//! `--as-group`) against upstream's default roles, a Role+RoleBinding, an aggregated
//! ClusterRole and resourceNames; upstream's 403 text for a user with no binding (by
//! impersonation and by a `--token-auth-file` token); `kubectl auth whoami`; a
//! `kubectl create token` token with exactly its RBAC rights; the escalation checks; and
//! anonymous requests. One server serves every case (one test).

use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, kubectl_versions, newest_kubectl};

const WAIT: Duration = Duration::from_secs(30);
const NS: &str = "rbac-e2e";

const POLICY: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: rbac-e2e}
rules:
- {apiGroups: [""], resources: [pods, pods/log], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: pod-readers, namespace: rbac-e2e}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}
- {kind: Group, name: devs, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: one-configmap, namespace: rbac-e2e}
rules:
- {apiGroups: [""], resources: [configmaps], resourceNames: [allowed], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: dave-one-configmap, namespace: rbac-e2e}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: one-configmap}
subjects: [{kind: User, name: dave, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: e2e-monitoring}
aggregationRule:
  clusterRoleSelectors: [{matchLabels: {e2e.k1s.io/aggregate-to-monitoring: "true"}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: e2e-monitoring-endpoints
  labels: {e2e.k1s.io/aggregate-to-monitoring: "true"}
rules:
- {apiGroups: [""], resources: [endpoints], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-carol-monitoring}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: e2e-monitoring}
subjects: [{kind: User, name: carol, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot, namespace: rbac-e2e}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: robot-view, namespace: rbac-e2e}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: robot, namespace: rbac-e2e}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: editors, namespace: rbac-e2e}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: Group, name: editors, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: mallory-rbac, namespace: rbac-e2e}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:aggregate-to-admin"}
subjects: [{kind: User, name: mallory, apiGroup: rbac.authorization.k8s.io}]
"#;

#[test]
fn rbac_authentication_and_the_review_apis() {
    let tokens = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(tokens.path(), "jane-secret-token,jane,u-jane,\"readers\"\n").expect("write");
    let path = tokens.path().to_str().unwrap_or_default().to_string();
    let k1s = K1s::start_with(&["--token-auth-file", &path]);
    let k = newest_kubectl();
    k1s.kubectl(&k, &["create", "namespace", NS]).ok();
    k1s.kubectl_with(&k, &["apply", "-f", "-"], Some(POLICY), &[])
        .ok();
    can_i_answers_as_upstream(&k1s, &k);
    a_user_without_a_binding_gets_upstreams_403(&k1s, &k);
    whoami_names_the_user(&k1s);
    a_service_account_token_has_exactly_its_rights(&k1s, &k);
    escalation_is_refused(&k1s, &k);
    anonymous_requests_reach_only_the_public_paths(&k1s);
}

/// `kubectl auth can-i` with `args`: whether it said yes.
fn can_i(k1s: &K1s, k: &Kubectl, args: &[&str]) -> bool {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let out = k1s.kubectl(k, &all);
    match (out.code, out.stdout.trim()) {
        (0, "yes") => true,
        (1, "no") => false,
        _ => panic!(
            "`{}`: {} {} {}",
            out.command, out.code, out.stdout, out.stderr
        ),
    }
}

fn can_i_answers_as_upstream(k1s: &K1s, k: &Kubectl) {
    let ns = format!("--namespace={NS}");
    let ns = ns.as_str();
    let robot = format!("--as=system:serviceaccount:{NS}:robot");
    let robot = robot.as_str();
    // The aggregated role fills in from the role its selector matches.
    eventually(
        WAIT,
        "the aggregated ClusterRole to gather its rules",
        || {
            can_i(
                k1s,
                k,
                &["--as=carol", "list", "endpoints", "--all-namespaces"],
            )
            .then_some(())
        },
    );
    #[rustfmt::skip]
    let table: &[(&[&str], bool)] = &[
        // The cluster admin (system:masters) may do anything.
        (&["*", "*", "--all-namespaces"], true),
        // A Role and RoleBinding, by user and by group; subresources count.
        (&["--as=alice", "get", "pods", ns], true),
        (&["--as=alice", "list", "pods", ns], true),
        (&["--as=alice", "get", "pods", "--subresource=log", ns], true),
        (&["--as=alice", "get", "pods", "--subresource=exec", ns], false),
        (&["--as=alice", "delete", "pods", ns], false),
        (&["--as=alice", "get", "pods", "--namespace=default"], false),
        (&["--as=bob", "--as-group=devs", "list", "pods", ns], true),
        (&["--as=bob", "list", "pods", ns], false),
        // resourceNames.
        (&["--as=dave", "get", "configmaps/allowed", ns], true),
        (&["--as=dave", "get", "configmaps/other", ns], false),
        (&["--as=dave", "list", "configmaps", ns], false),
        // An aggregated ClusterRole through a ClusterRoleBinding.
        (&["--as=carol", "get", "endpoints", "--namespace=default"], true),
        (&["--as=carol", "get", "secrets", ns], false),
        // A ServiceAccount bound to the default view role.
        (&[robot, "list", "deployments.apps", ns], true),
        (&[robot, "get", "pods", "--subresource=log", ns], true),
        (&[robot, "create", "deployments.apps", ns], false),
        (&[robot, "get", "secrets", ns], false),
        (&[robot, "list", "pods", "--namespace=default"], false),
        // A group bound to the default edit role.
        (&["--as=erin", "--as-group=editors", "create", "deployments.apps", ns], true),
        (&["--as=erin", "--as-group=editors", "get", "secrets", ns], true),
        (&["--as=erin", "--as-group=editors", "create", "rolebindings", ns], false),
        (&["--as=erin", "--as-group=editors", "list", "nodes"], false),
        // Every authenticated user: discovery, health, the self reviews.
        (&["--as=nobody", "get", "/healthz"], true),
        (&["--as=nobody", "get", "/apis/apps"], true),
        (&["--as=nobody", "get", "/metrics"], false),
        (&["--as=nobody", "create", "selfsubjectaccessreviews.authorization.k8s.io"], true),
        (&["--as=nobody", "create", "subjectaccessreviews.authorization.k8s.io"], false),
        (&["--as=nobody", "list", "pods", ns], false),
    ];
    let mut wrong = Vec::new();
    for (args, want) in table {
        if can_i(k1s, k, args) != *want {
            wrong.push(format!(
                "can-i {} should say {}",
                args.join(" "),
                if *want { "yes" } else { "no" }
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // --list prints the rules (SelfSubjectRulesReview).
    let list = k1s.kubectl(k, &["auth", "can-i", "--list", "--as=alice", ns]);
    let rows = list.ok();
    assert!(
        rows.lines()
            .any(|l| l.starts_with("pods ") && l.contains("[get list]")),
        "{rows}"
    );
    assert!(
        rows.lines()
            .any(|l| l.starts_with("selfsubjectaccessreviews.authorization.k8s.io")),
        "{rows}"
    );
}

fn a_user_without_a_binding_gets_upstreams_403(k1s: &K1s, k: &Kubectl) {
    let denied = k1s.kubectl(k, &["--as=jane", "get", "pods", "-n", NS]);
    assert_eq!(
        denied.fails().trim(),
        format!(
            r#"Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "{NS}""#
        )
    );
    let denied = k1s.kubectl(k, &["--as=jane", "get", "nodes"]);
    assert_eq!(
        denied.fails().trim(),
        r#"Error from server (Forbidden): nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the cluster scope"#
    );
    // The same user by a --token-auth-file token.
    let kc = token_kubeconfig(k1s, "jane", "jane-secret-token");
    let denied = run(k, &kc, &["get", "pods", "-n", NS]);
    assert_eq!(
        denied.2.trim(),
        format!(
            r#"Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "{NS}""#
        )
    );
    // Impersonation itself needs the impersonate verb.
    let denied = run(k, &kc, &["--as=alice", "get", "pods", "-n", NS]);
    assert!(
        denied.2.contains(r#"users "alice" is forbidden: User "jane" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{}",
        denied.2
    );
    // A bad token is 401, not anonymous.
    let bad = token_kubeconfig(k1s, "bad", "no-such-token");
    let refused = run(k, &bad, &["get", "--raw", "/healthz"]);
    assert!(refused.2.contains("Unauthorized"), "{}", refused.2);
}

fn whoami_names_the_user(k1s: &K1s) {
    for k in kubectl_versions().into_iter().filter(|k| k.minor >= 28) {
        let out = k1s.kubectl(
            &k,
            &[
                "auth",
                "whoami",
                "--as=alice",
                "--as-group=devs",
                "-o",
                "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
            ],
        );
        assert_eq!(
            out.ok().trim(),
            r#"alice ["devs","system:authenticated"]"#,
            "{k}"
        );
        let kc = token_kubeconfig(k1s, "jane", "jane-secret-token");
        let (code, stdout, stderr) = run(&k, &kc, &["auth", "whoami"]);
        assert_eq!(code, 0, "{k}: {stderr}");
        assert!(stdout.contains("jane"), "{k}: {stdout}");
        assert!(
            stdout.contains("[readers system:authenticated]"),
            "{k}: {stdout}"
        );
    }
}

fn a_service_account_token_has_exactly_its_rights(k1s: &K1s, k: &Kubectl) {
    let token = k1s
        .kubectl_in(k, NS, &["create", "token", "robot"])
        .ok()
        .trim()
        .to_string();
    let kc = token_kubeconfig(k1s, "robot", &token);
    let (code, stdout, stderr) = run(k, &kc, &["get", "serviceaccounts", "-n", NS, "-o", "name"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("serviceaccount/robot"), "{stdout}");
    let (_, _, stderr) = run(k, &kc, &["get", "secrets", "-n", NS]);
    assert_eq!(
        stderr.trim(),
        format!(
            r#"Error from server (Forbidden): secrets is forbidden: User "system:serviceaccount:{NS}:robot" cannot list resource "secrets" in API group "" in the namespace "{NS}""#
        )
    );
    let (_, _, stderr) = run(k, &kc, &["create", "configmap", "x", "-n", NS]);
    assert!(
        stderr.contains("cannot create resource \"configmaps\""),
        "{stderr}"
    );
    let (_, _, stderr) = run(k, &kc, &["get", "pods", "-n", "default"]);
    assert!(stderr.contains("Forbidden"), "{stderr}");
    let (code, stdout, _) = run(k, &kc, &["auth", "can-i", "watch", "pods", "-n", NS]);
    assert_eq!((code, stdout.trim()), (0, "yes"));
}

fn escalation_is_refused(k1s: &K1s, k: &Kubectl) {
    let ns = format!("--namespace={NS}");
    // mallory may write roles and bindings in the namespace but holds nothing else.
    let out = k1s.kubectl(
        k,
        &[
            "--as=mallory",
            "create",
            "role",
            "sneaky",
            "--verb=get",
            "--resource=secrets",
            &ns,
        ],
    );
    assert!(
        out.fails().contains(
            "roles.rbac.authorization.k8s.io \"sneaky\" is forbidden: user \"mallory\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"
        ),
        "{}",
        out.stderr
    );
    let bind = |name: &str| {
        k1s.kubectl(
            k,
            &[
                "--as=mallory",
                "create",
                "rolebinding",
                name,
                "--clusterrole=view",
                "--user=mallory",
                &ns,
            ],
        )
    };
    let out = bind("mallory-view");
    assert!(
        out.fails()
            .contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        out.stderr
    );
    // With the bind verb on that role, the binding is allowed.
    k1s.kubectl_with(
        k,
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: bind-view, namespace: {NS}}}\nrules:\n- {{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], resourceNames: [view], verbs: [bind]}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: mallory-bind-view, namespace: {NS}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: bind-view}}\nsubjects: [{{kind: User, name: mallory, apiGroup: rbac.authorization.k8s.io}}]\n"
        )),
        &[],
    )
    .ok();
    bind("mallory-view").ok();
    assert!(can_i(k1s, k, &["--as=mallory", "list", "pods", &ns]));
}

fn anonymous_requests_reach_only_the_public_paths(k1s: &K1s) {
    let curl = |path: &str| {
        let out = std::process::Command::new("curl")
            .args(["-sk", "-w", "\n%{http_code}"])
            .arg(format!("{}{path}", k1s.url()))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let healthz = curl("/healthz");
    assert!(healthz.ends_with("\n200"), "{healthz}");
    let version = curl("/version");
    assert!(version.ends_with("\n200"), "{version}");
    let api = curl("/api/v1/namespaces/default/pods");
    assert!(api.ends_with("\n403"), "{api}");
    assert!(
        api.contains(r#"pods is forbidden: User \"system:anonymous\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""#),
        "{api}"
    );
}

/// A kubeconfig with only a bearer token.
fn token_kubeconfig(k1s: &K1s, name: &str, token: &str) -> String {
    let path = k1s.write_file(
        &format!("{name}.kubeconfig"),
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k1s\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: u\n  context: {{cluster: k1s, user: u}}\ncurrent-context: u\n",
            k1s.url(),
            k1s.tls_files().ca.display()
        ),
    );
    path.to_str().unwrap_or_default().to_string()
}

/// Runs kubectl with another kubeconfig: exit code, stdout, stderr.
fn run(k: &Kubectl, kubeconfig: &str, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(&k.path)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}
