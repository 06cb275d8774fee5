//! Jobs and CronJobs on a real `k1s server`, driven by kubectl. No kubelet finishes the
//! pods here: the test plays it, patching pod status through `--subresource=status`.

use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, newest_kubectl};

const NS: &str = "jobs";

/// Every pod of `job` with its phase.
fn pods_of(k1s: &K1s, k: &Kubectl, job: &str) -> Vec<(String, String)> {
    let out = k1s.kubectl_in(
        k,
        NS,
        &[
            "get",
            "pods",
            "-l",
            &format!("batch.kubernetes.io/job-name={job}"),
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.phase}{\"\\n\"}{end}",
        ],
    );
    out.ok()
        .lines()
        .filter_map(|l| {
            let (name, phase) = l.split_once(' ')?;
            Some((name.to_string(), phase.to_string()))
        })
        .collect()
}

/// Plays the kubelet: every pod of `job` not yet finished ends in `phase`.
fn finish(k1s: &K1s, k: &Kubectl, job: &str, phase: &str) {
    for (name, p) in pods_of(k1s, k, job) {
        if p == "Succeeded" || p == "Failed" {
            continue;
        }
        let patch = format!("{{\"status\":{{\"phase\":\"{phase}\"}}}}");
        // A pod deleted meanwhile is fine.
        let _ = k1s.kubectl_in(
            k,
            NS,
            &[
                "patch",
                "pod",
                &name,
                "--subresource=status",
                "--type=merge",
                "-p",
                &patch,
            ],
        );
    }
}

fn get_job(k1s: &K1s, k: &Kubectl, name: &str) -> String {
    k1s.kubectl_in(k, NS, &["get", "job", name, "--no-headers"])
        .ok()
        .to_string()
}

#[test]
fn jobs_and_cronjobs() {
    let k1s = K1s::start();
    let k = newest_kubectl();
    k1s.kubectl(&k, &["create", "namespace", NS]).ok();
    // The CronJob first: its minute passes while the Jobs below run.
    k1s.kubectl_in(
        &k,
        NS,
        &[
            "create",
            "cronjob",
            "hello",
            "--image=busybox",
            "--schedule=*/1 * * * *",
            "--",
            "true",
        ],
    )
    .ok();

    // kubectl create job: one pod, labelled and tracked as upstream's.
    k1s.kubectl_in(
        &k,
        NS,
        &["create", "job", "once", "--image=busybox", "--", "true"],
    )
    .ok();
    let pod = eventually(Duration::from_secs(30), "the job's pod", || {
        pods_of(&k1s, &k, "once").into_iter().next()
    });
    let meta = k1s
        .kubectl_in(
            &k,
            NS,
            &[
                "get",
                "pod",
                &pod.0,
                "-o",
                "jsonpath={.metadata.finalizers} {.metadata.labels.job-name}",
            ],
        )
        .ok()
        .to_string();
    assert_eq!(meta, "[\"batch.kubernetes.io/job-tracking\"] once");
    finish(&k1s, &k, "once", "Succeeded");
    k1s.kubectl_in(
        &k,
        NS,
        &[
            "wait",
            "--for=condition=complete",
            "job/once",
            "--timeout=60s",
        ],
    )
    .ok();

    // Three completions, two at a time.
    let manifest = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: pi}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: pi, image: busybox}]
"#;
    k1s.kubectl_with(&k, &["apply", "-n", NS, "-f", "-"], Some(manifest), &[])
        .ok();
    eventually(Duration::from_secs(60), "job pi to complete", || {
        let running = pods_of(&k1s, &k, "pi")
            .iter()
            .filter(|(_, p)| p != "Succeeded" && p != "Failed")
            .count();
        assert!(running <= 2, "parallelism 2, {running} running");
        finish(&k1s, &k, "pi", "Succeeded");
        let row = get_job(&k1s, &k, "pi");
        row.contains("Complete").then_some(row)
    });
    let table = k1s.kubectl_in(&k, NS, &["get", "jobs"]).ok().to_string();
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
        "{table}"
    );
    let row = get_job(&k1s, &k, "pi");
    let row: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&row[..3], ["pi", "Complete", "3/3"], "{row:?}");
    assert_eq!(pods_of(&k1s, &k, "pi").len(), 3);

    // A failing Job stops at its backoffLimit.
    let manifest = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: fails}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
"#;
    k1s.kubectl_with(&k, &["apply", "-n", NS, "-f", "-"], Some(manifest), &[])
        .ok();
    eventually(Duration::from_secs(60), "job fails to fail", || {
        finish(&k1s, &k, "fails", "Failed");
        get_job(&k1s, &k, "fails").contains("Failed").then_some(())
    });
    let reason = k1s
        .kubectl_in(
            &k,
            NS,
            &[
                "get",
                "job",
                "fails",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Failed\")].reason}",
            ],
        )
        .ok()
        .to_string();
    assert_eq!(reason, "BackoffLimitExceeded");

    // An Indexed Job completes each index once.
    let manifest = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: idx}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
"#;
    k1s.kubectl_with(&k, &["apply", "-n", NS, "-f", "-"], Some(manifest), &[])
        .ok();
    eventually(Duration::from_secs(60), "job idx to complete", || {
        finish(&k1s, &k, "idx", "Succeeded");
        get_job(&k1s, &k, "idx").contains("Complete").then_some(())
    });
    let done = k1s
        .kubectl_in(
            &k,
            NS,
            &[
                "get",
                "job",
                "idx",
                "-o",
                "jsonpath={.status.completedIndexes}",
            ],
        )
        .ok()
        .to_string();
    assert_eq!(done, "0-2");

    let events = k1s
        .kubectl_in(
            &k,
            NS,
            &[
                "get",
                "events",
                "-o",
                "custom-columns=REASON:.reason,MESSAGE:.message",
            ],
        )
        .ok()
        .to_string();
    for want in [
        "Created pod: pi-",
        "Job completed",
        "Job has reached the specified backoff limit",
    ] {
        assert!(events.contains(want), "no event {want:?} in\n{events}");
    }

    // The CronJob's minute has come (or comes within one more).
    let job = eventually(Duration::from_secs(75), "the cronjob's job", || {
        let out = k1s.kubectl_in(
            &k,
            NS,
            &["get", "jobs", "-o", "jsonpath={range .items[?(@.metadata.ownerReferences[0].kind==\"CronJob\")]}{.metadata.name}{\"\\n\"}{end}"],
        );
        out.ok().lines().next().map(str::to_string)
    });
    let minutes: i64 = job
        .strip_prefix("hello-")
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("job name {job}"));
    let stamp = k1s
        .kubectl_in(
            &k,
            NS,
            &["get", "job", &job, "-o", "jsonpath={.metadata.annotations.batch\\.kubernetes\\.io/cronjob-scheduled-timestamp}"],
        )
        .ok()
        .to_string();
    // RFC 3339 in the server's zone: UTC here ("Z"), or a numeric offset.
    assert!(stamp.ends_with(":00Z") || stamp.len() == 25, "{stamp}");
    assert!(minutes > 29_000_000, "{minutes}");
    eventually(Duration::from_secs(30), "the cronjob's status", || {
        let out = k1s
            .kubectl_in(&k, NS, &["get", "cronjob", "hello", "--no-headers"])
            .ok()
            .to_string();
        let cols: Vec<&str> = out.split_whitespace().collect();
        // NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST-SCHEDULE AGE; the schedule has spaces.
        (out.contains("*/1 * * * *") && cols.iter().rev().nth(1) != Some(&"<none>")).then_some(())
    });
    let events = k1s
        .kubectl_in(
            &k,
            NS,
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.kind=CronJob",
            ],
        )
        .ok()
        .to_string();
    assert!(events.contains(&format!("Created job {job}")), "{events}");
}

/// Jobs on simulated nodes: the scheduler binds their pods and the simulated kubelet
/// finishes them (exit code from the `simulate.k1s.io/exit-code` annotation), so
/// nothing here plays the kubelet.
#[test]
fn jobs_run_to_completion_on_simulated_nodes() {
    let k1s = K1s::start_with(&["--simulate-nodes", "2"]);
    let k = newest_kubectl();
    k1s.kubectl(&k, &["create", "namespace", NS]).ok();

    k1s.kubectl_in(
        &k,
        NS,
        &["create", "job", "sim", "--image=busybox", "--", "true"],
    )
    .ok();
    k1s.kubectl_in(
        &k,
        NS,
        &[
            "wait",
            "--for=condition=complete",
            "job/sim",
            "--timeout=90s",
        ],
    )
    .ok();
    let row = get_job(&k1s, &k, "sim");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[..3], ["sim", "Complete", "1/1"], "{row}");
    let node = k1s
        .kubectl_in(
            &k,
            NS,
            &[
                "get",
                "pods",
                "-l",
                "batch.kubernetes.io/job-name=sim",
                "-o",
                "jsonpath={.items[0].spec.nodeName}",
            ],
        )
        .ok()
        .to_string();
    assert!(node.starts_with("sim-node-"), "{node}");

    // Exit code 1, backoffLimit 1: one retry after the 10 s back-off, then Failed.
    let manifest = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: flaky}
spec:
  backoffLimit: 1
  template:
    metadata:
      annotations: {simulate.k1s.io/exit-code: "1"}
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
"#;
    k1s.kubectl_with(&k, &["apply", "-n", NS, "-f", "-"], Some(manifest), &[])
        .ok();
    k1s.kubectl_in(
        &k,
        NS,
        &[
            "wait",
            "--for=condition=failed",
            "job/flaky",
            "--timeout=120s",
        ],
    )
    .ok();
    let failed = k1s
        .kubectl_in(
            &k,
            NS,
            &["get", "job", "flaky", "-o", "jsonpath={.status.failed}"],
        )
        .ok()
        .to_string();
    assert_eq!(failed, "2");

    // ttlSecondsAfterFinished: 0 deletes the finished Job and, foreground, its pods.
    let manifest = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: brief}
spec:
  ttlSecondsAfterFinished: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
"#;
    k1s.kubectl_with(&k, &["apply", "-n", NS, "-f", "-"], Some(manifest), &[])
        .ok();
    eventually(
        Duration::from_secs(90),
        "job brief and its pod deleted",
        || {
            let jobs = k1s.kubectl_in(
                &k,
                NS,
                &["get", "job", "brief", "--ignore-not-found", "-o", "name"],
            );
            let pods = pods_of(&k1s, &k, "brief");
            (jobs.code == 0 && jobs.stdout.trim().is_empty() && pods.is_empty()).then_some(())
        },
    );
}
