//! Popular Helm charts, rendered with `helm template` into tests/testdata/charts/ (refreshed
//! by scripts/render-charts), applied to one k1s server as users apply them: server-side
//! apply (CRDs first, waiting until they are Established), client-side apply again, `kubectl
//! diff`, a helm-upgrade-like re-render with one value changed, the oldest kubectl's
//! server-side dry runs, and an uninstall (delete -f, then the namespace). Every refusal names the chart, the object and the server's message;
//! all charts run before the test fails, so one run shows every finding.

use std::path::{Path, PathBuf};
use std::time::Instant;

use k1s_e2e::{K1s, Kubectl, Run, kubectl_versions};
use serde_json::Value;

/// Upstream's limit on the total size of an object's annotations
/// (apimachinery's TotalAnnotationSizeLimitB).
const ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// The annotation in which client-side apply keeps what it applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// One rendered chart.
struct Chart {
    /// tests/testdata/charts/<file>.yaml
    file: &'static str,
    /// The release namespace (`helm template --namespace`), created by the test.
    namespace: &'static str,
    /// The same chart rendered with one value changed, like a `helm upgrade`.
    upgrade: Option<Upgrade>,
}

/// A re-render with one value changed, and where that value shows.
struct Upgrade {
    /// tests/testdata/charts/<file>.yaml
    file: &'static str,
    /// The object that carries the changed value: resource (as kubectl names it), name.
    resource: &'static str,
    name: &'static str,
    /// A jsonpath of the changed value, and its value after the upgrade.
    jsonpath: &'static str,
    value: &'static str,
    /// How the value shows in the last-applied annotation after the upgrade.
    last_applied: &'static str,
}

const CHARTS: &[Chart] = &[
    Chart {
        file: "postgresql",
        namespace: "pg",
        upgrade: Some(Upgrade {
            file: "postgresql-upgrade",
            resource: "statefulset",
            name: "pg-postgresql-read",
            jsonpath: "{.spec.replicas}",
            value: "3",
            last_applied: "\"replicas\":3",
        }),
    },
    Chart {
        file: "redis",
        namespace: "cache",
        upgrade: None,
    },
    Chart {
        file: "wordpress",
        namespace: "blog",
        upgrade: None,
    },
    Chart {
        file: "kafka",
        namespace: "events",
        upgrade: None,
    },
    Chart {
        file: "rabbitmq",
        namespace: "mq",
        upgrade: None,
    },
    Chart {
        file: "mongodb",
        namespace: "docs",
        upgrade: None,
    },
    Chart {
        file: "ingress-nginx",
        namespace: "ingress",
        upgrade: Some(Upgrade {
            file: "ingress-nginx-upgrade",
            resource: "horizontalpodautoscaler",
            name: "ingress-ingress-nginx-controller",
            jsonpath: "{.spec.maxReplicas}",
            value: "7",
            last_applied: "\"maxReplicas\":7",
        }),
    },
    Chart {
        file: "cert-manager",
        namespace: "cert-manager",
        upgrade: None,
    },
    Chart {
        file: "kube-prometheus-stack",
        namespace: "monitoring",
        upgrade: Some(Upgrade {
            file: "kube-prometheus-stack-upgrade",
            resource: "prometheuses.monitoring.coreos.com",
            name: "monitoring-kube-prometheus-prometheus",
            jsonpath: "{.spec.replicas}",
            value: "2",
            last_applied: "\"replicas\":2",
        }),
    },
];

fn chart_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/charts")
        .join(format!("{file}.yaml"))
}

/// One object of a rendered chart.
#[derive(Clone)]
struct Object {
    kind: String,
    name: String,
    namespace: Option<String>,
    /// The YAML document as helm rendered it.
    yaml: String,
    /// Whether client-side apply's last-applied annotation makes its annotations exceed
    /// upstream's limit, so that upstream refuses `kubectl apply` (client-side) of it.
    too_big_for_client_side_apply: bool,
}

impl Object {
    fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// The object for a failure message (very long ones cut).
    fn excerpt(&self) -> String {
        const MAX: usize = 4000;
        if self.yaml.len() <= MAX {
            return self.yaml.clone();
        }
        let mut end = MAX;
        while !self.yaml.is_char_boundary(end) {
            end -= 1;
        }
        format!(
            "{}\n… ({} more bytes)",
            &self.yaml[..end],
            self.yaml.len() - end
        )
    }
}

/// The length of `v` as Go's encoding/json writes it (what kubectl stores in the
/// last-applied annotation): `<`, `>` and `&` become six-byte `\u00XX` escapes.
fn go_json_len(v: &Value) -> usize {
    let s = serde_json::to_string(v).unwrap_or_else(|e| panic!("JSON: {e}"));
    let html = s
        .bytes()
        .filter(|b| matches!(b, b'<' | b'>' | b'&'))
        .count();
    s.len() + 5 * html + 1
}

/// The objects of a helm-rendered file, in order.
fn parse_chart(file: &str) -> Vec<Object> {
    let path = chart_path(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/render-charts)", path.display()));
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line == "---" {
            docs.push(String::new());
        } else if let Some(doc) = docs.last_mut() {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    let mut out = Vec::new();
    for yaml in docs {
        let value: Value = serde_saphyr::from_str(&yaml)
            .unwrap_or_else(|e| panic!("{file}: a document is not YAML: {e}\n{yaml}"));
        if value.is_null() {
            continue;
        }
        let text = |v: &Value| v.as_str().map(str::to_string);
        let meta = &value["metadata"];
        let kind = text(&value["kind"]).unwrap_or_else(|| panic!("{file}: no kind in\n{yaml}"));
        let name = text(&meta["name"]).unwrap_or_else(|| panic!("{file}: no name in\n{yaml}"));
        let mut stripped = value.clone();
        let mut annotations_len = 0;
        if let Some(a) = stripped["metadata"]["annotations"].as_object_mut() {
            a.remove(LAST_APPLIED);
            annotations_len = a
                .iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
                .sum();
        }
        let last_applied_len = LAST_APPLIED.len() + go_json_len(&stripped);
        out.push(Object {
            kind,
            name,
            namespace: text(&meta["namespace"]),
            yaml,
            too_big_for_client_side_apply: annotations_len + last_applied_len > ANNOTATIONS_LIMIT,
        });
    }
    out
}

/// Writes `objects` as one multi-document YAML file in the server's temp dir.
fn write_objects(k1s: &K1s, name: &str, objects: &[&Object]) -> PathBuf {
    let text: Vec<&str> = objects.iter().map(|o| o.yaml.as_str()).collect();
    k1s.write_file(name, &format!("---\n{}", text.join("---\n")))
}

/// kubectl's error reports in `stderr`: each starts at a line that is not a warning nor an
/// indented or continuation line of the previous one.
fn error_blocks(stderr: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    let mut in_block = false;
    for line in stderr.lines() {
        if line.starts_with("Warning:") {
            in_block = false;
            continue;
        }
        let starts = line.starts_with("Error from server")
            || line.starts_with("error")
            || line.starts_with("The ")
            || line.starts_with("resource mapping not found")
            || !in_block;
        if starts {
            blocks.push(String::new());
            in_block = true;
        }
        if let Some(b) = blocks.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    blocks
}

/// The objects an error report of kubectl is about.
fn named_in<'a>(block: &str, objects: &'a [Object]) -> Vec<&'a Object> {
    objects
        .iter()
        .filter(|o| block.contains(&format!("\"{}\"", o.name)) && block.contains(&o.kind))
        .collect()
}

/// The refusal upstream gives for an object whose last-applied annotation is too long.
fn too_long_refusal(o: &Object) -> String {
    format!(
        "\"{}\" is invalid: metadata.annotations: Too long: may not be more than {ANNOTATIONS_LIMIT} bytes",
        o.name
    )
}

/// What went wrong, over all charts.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn add(&mut self, chart: &str, step: &str, what: String) {
        let msg = format!("[{chart}] {step}: {what}");
        eprintln!("FAILED {msg}\n");
        self.0.push(msg);
    }

    /// Reports every error of `run` with the objects it names; true when there was any.
    fn errors(&mut self, chart: &str, step: &str, run: &Run, objects: &[Object]) -> bool {
        let blocks = error_blocks(&run.stderr);
        for block in &blocks {
            let named = named_in(block, objects);
            let mut what = format!("`{}` says:\n{}", run.command, block.trim_end());
            for o in named {
                what.push_str(&format!("\n-- object {}:\n{}", o.id(), o.excerpt()));
            }
            self.add(chart, step, what);
        }
        !blocks.is_empty()
    }

    /// Checks that `run` succeeded with one stdout line per object, each ending in one of
    /// `outcomes`; errors expected for `refused` objects (with their messages) are allowed.
    fn expect_each(
        &mut self,
        chart: &str,
        step: &str,
        run: &Run,
        objects: &[Object],
        outcomes: &[&str],
        refused: &[(&Object, String)],
    ) {
        let blocks = error_blocks(&run.stderr);
        let mut unexpected = Vec::new();
        for block in &blocks {
            if refused.iter().any(|(_, msg)| block.contains(msg.as_str())) {
                continue;
            }
            unexpected.push(block.clone());
        }
        for (o, msg) in refused {
            if !run.stderr.contains(msg.as_str()) {
                self.add(
                    chart,
                    step,
                    format!(
                        "{} should be refused like upstream does ({msg}), `{}` said:\nstdout:\n{}\nstderr:\n{}",
                        o.id(),
                        run.command,
                        run.stdout,
                        run.stderr
                    ),
                );
            }
        }
        for block in unexpected {
            let named = named_in(&block, objects);
            let mut what = format!("`{}` says:\n{}", run.command, block.trim_end());
            for o in named {
                what.push_str(&format!("\n-- object {}:\n{}", o.id(), o.excerpt()));
            }
            self.add(chart, step, what);
        }
        let expected_code = if refused.is_empty() { 0 } else { 1 };
        if run.code != expected_code && blocks.is_empty() {
            self.add(
                chart,
                step,
                format!(
                    "`{}` exited {} (expected {expected_code}):\nstdout:\n{}\nstderr:\n{}",
                    run.command, run.code, run.stdout, run.stderr
                ),
            );
        }
        let done = run
            .stdout
            .lines()
            .filter(|l| outcomes.iter().any(|o| l.ends_with(o)))
            .count();
        let want = objects.len() - refused.len();
        if done != want && blocks.len() == refused.len() {
            self.add(
                chart,
                step,
                format!(
                    "`{}`: {done} of {want} objects{}; stdout:\n{}",
                    run.command,
                    outcomes.join(" or"),
                    run.stdout
                ),
            );
        }
    }

    /// Checks that a `kubectl diff` found no difference.
    fn no_diff(&mut self, chart: &str, step: &str, run: &Run, objects: &[Object]) {
        if run.code == 0 {
            return;
        }
        if !self.errors(chart, step, run, objects) {
            self.add(
                chart,
                step,
                format!(
                    "`{}` exited {}, the live objects differ from what was applied: {}",
                    run.command,
                    run.code,
                    summarize_diff(&run.stdout)
                ),
            );
        }
    }
}

/// `kubectl diff`, run again (up to three times, 2 s apart) while it finds a difference:
/// controllers keep writing status (a budget's counts, a Deployment's replicas), and one
/// landing between diff's read of the live object and its dry run is not a difference
/// the apply made. A difference the apply made shows on every run.
fn settled_diff(k1s: &K1s, k: &Kubectl, args: &[&str]) -> Run {
    let mut run = k1s.kubectl(k, args);
    for _ in 0..2 {
        if run.code != 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        run = k1s.kubectl(k, args);
    }
    run
}

/// A short account of `kubectl diff` output: the objects that differ, each changed line with
/// how often it occurs, and the first object's diff.
fn summarize_diff(out: &str) -> String {
    let mut objects = Vec::new();
    let mut lines: Vec<(String, usize)> = Vec::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("diff -u -N ") {
            let live = rest.split_whitespace().next().unwrap_or(rest);
            objects.push(live.rsplit('/').next().unwrap_or(live).to_string());
        } else if (line.starts_with('+') && !line.starts_with("+++"))
            || (line.starts_with('-') && !line.starts_with("---"))
        {
            match lines.iter_mut().find(|(l, _)| l == line) {
                Some((_, n)) => *n += 1,
                None => lines.push((line.to_string(), 1)),
            }
        }
    }
    let first = out
        .split("\ndiff -u -N ")
        .next()
        .unwrap_or(out)
        .chars()
        .take(3000)
        .collect::<String>();
    let mut text = format!(
        "{} objects differ: {}\nchanged lines:",
        objects.len(),
        objects.join(", ")
    );
    for (line, n) in lines.iter().take(40) {
        text.push_str(&format!("\n  ({n}x) {line}"));
    }
    if lines.len() > 40 {
        text.push_str(&format!("\n  … {} more", lines.len() - 40));
    }
    text.push_str(&format!("\nfirst diff:\n{first}"));
    text
}

/// The newest and the oldest installed kubectl; fails (never skips) without one.
fn kubectls() -> (Kubectl, Kubectl) {
    let versions = kubectl_versions();
    let (Some(oldest), Some(newest)) = (versions.first(), versions.last()) else {
        panic!("no kubectl found: run scripts/install-kubectl");
    };
    let probe = std::process::Command::new(&newest.path)
        .args(["version", "--client"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "cannot run {} ({}): install kubectl 1.27 … 1.35 with scripts/install-kubectl",
        newest,
        newest.path.display()
    );
    (newest.clone(), oldest.clone())
}

/// Applies one chart and checks every step; records what went wrong in `findings`.
fn install(k1s: &K1s, new: &Kubectl, old: &Kubectl, chart: &Chart, findings: &mut Findings) {
    let name = chart.file;
    let started = Instant::now();
    let objects = parse_chart(name);
    let path = chart_path(name);
    let file = path.to_str().unwrap_or_else(|| panic!("path {path:?}"));
    let too_big: Vec<(&Object, String)> = objects
        .iter()
        .filter(|o| o.too_big_for_client_side_apply)
        .map(|o| (o, too_long_refusal(o)))
        .collect();

    let ns = k1s.kubectl(new, &["create", "namespace", chart.namespace]);
    if ns.code != 0 {
        findings.errors(name, "create namespace", &ns, &objects);
    }

    // CRDs first, as helm installs crds/ before the templates.
    let crds: Vec<&Object> = objects
        .iter()
        .filter(|o| o.kind == "CustomResourceDefinition")
        .collect();
    if !crds.is_empty() {
        let crd_file = write_objects(k1s, &format!("{name}-crds.yaml"), &crds);
        let crd_file = crd_file.to_string_lossy();
        let run = k1s.kubectl(new, &["apply", "--server-side", "-f", &crd_file]);
        let crd_objects: Vec<Object> = crds.iter().map(|o| (*o).clone()).collect();
        findings.expect_each(
            name,
            "server-side apply of the CRDs",
            &run,
            &crd_objects,
            &[" serverside-applied"],
            &[],
        );
        let mut args = vec![
            "wait".to_string(),
            "--for=condition=Established".into(),
            "--timeout=60s".into(),
        ];
        args.extend(crds.iter().map(|o| format!("crd/{}", o.name)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let wait = k1s.kubectl(new, &args);
        if wait.code != 0 {
            findings.add(
                name,
                "CRDs Established",
                format!("`{}`:\n{}{}", wait.command, wait.stdout, wait.stderr),
            );
        }
    }

    // The oldest kubectl's dry run of everything (creates, and patches of the CRDs).
    let run = k1s.kubectl(old, &["apply", "--dry-run=server", "-f", file]);
    let refused: Vec<(&Object, String)> = too_big
        .iter()
        .filter(|(o, _)| o.kind == "CustomResourceDefinition")
        .map(|(o, m)| (*o, m.clone()))
        .collect();
    findings.expect_each(
        name,
        &format!("{old} apply --dry-run=server (before the install)"),
        &run,
        &objects,
        &[
            " created (server dry run)",
            " configured (server dry run)",
            " unchanged (server dry run)",
        ],
        &refused,
    );

    // Install: server-side apply of everything.
    let run = k1s.kubectl(new, &["apply", "--server-side", "-f", file]);
    findings.expect_each(
        name,
        "server-side apply",
        &run,
        &objects,
        &[" serverside-applied"],
        &[],
    );
    let run = settled_diff(k1s, new, &["diff", "--server-side", "-f", file]);
    findings.no_diff(
        name,
        "diff --server-side after server-side apply",
        &run,
        &objects,
    );
    // A plain diff too (a client-side patch, dry run): what users run after `helm install`.
    let run = settled_diff(k1s, new, &["diff", "-f", file]);
    findings.no_diff(name, "diff after server-side apply", &run, &objects);

    // Client-side apply of the same file: nothing to change, except the annotation.
    let run = k1s.kubectl(new, &["apply", "-f", file]);
    findings.expect_each(
        name,
        "client-side apply after server-side apply",
        &run,
        &objects,
        &[" unchanged", " configured"],
        &too_big,
    );
    let run = settled_diff(k1s, new, &["diff", "-f", file]);
    findings.no_diff(name, "diff after client-side apply", &run, &objects);

    // helm upgrade: the chart re-rendered with one value changed.
    if let Some(up) = &chart.upgrade {
        let up_objects = parse_chart(up.file);
        let up_path = chart_path(up.file);
        let up_file = up_path
            .to_str()
            .unwrap_or_else(|| panic!("path {up_path:?}"));
        let run = k1s.kubectl(new, &["apply", "--server-side", "-f", up_file]);
        findings.expect_each(
            name,
            "upgrade: server-side apply of the re-render",
            &run,
            &up_objects,
            &[" serverside-applied"],
            &[],
        );
        let jsonpath = format!("jsonpath={}", up.jsonpath);
        let get = k1s.kubectl(
            new,
            &[
                "get",
                up.resource,
                up.name,
                "-n",
                chart.namespace,
                "-o",
                &jsonpath,
            ],
        );
        if get.code != 0 || get.stdout.trim() != up.value {
            findings.add(
                name,
                "upgrade: the changed value",
                format!(
                    "{} {} {}: expected {}, `{}` gave {:?} {}",
                    up.resource,
                    up.name,
                    up.jsonpath,
                    up.value,
                    get.command,
                    get.stdout,
                    get.stderr
                ),
            );
        }
        // Upstream's server-side apply by the "kubectl" manager keeps an existing
        // last-applied annotation in step (fieldmanager's lastAppliedUpdater).
        let annotation =
            "jsonpath={.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}";
        let get = k1s.kubectl(
            new,
            &[
                "get",
                up.resource,
                up.name,
                "-n",
                chart.namespace,
                "-o",
                annotation,
            ],
        );
        if !get.stdout.contains(up.last_applied) {
            findings.add(
                name,
                "upgrade: last-applied annotation after server-side apply",
                format!(
                    "{} {}: server-side apply by kubectl should update the last-applied annotation to what it applied (containing {}), it is:\n{}{}",
                    up.resource, up.name, up.last_applied, get.stdout, get.stderr
                ),
            );
        }
        let run = k1s.kubectl(new, &["apply", "-f", up_file]);
        let up_too_big: Vec<(&Object, String)> = up_objects
            .iter()
            .filter(|o| o.too_big_for_client_side_apply)
            .map(|o| (o, too_long_refusal(o)))
            .collect();
        findings.expect_each(
            name,
            "upgrade: client-side apply of the re-render",
            &run,
            &up_objects,
            &[" unchanged", " configured"],
            &up_too_big,
        );
        let run = settled_diff(k1s, new, &["diff", "-f", up_file]);
        findings.no_diff(name, "upgrade: diff after the upgrade", &run, &up_objects);
    }

    // The oldest kubectl's server-side apply dry run over the installed objects (of the
    // upgrade, when there was one).
    let (last, last_objects) = match &chart.upgrade {
        Some(up) => (chart_path(up.file), parse_chart(up.file)),
        None => (path.clone(), objects.clone()),
    };
    let last = last.to_string_lossy();
    let run = k1s.kubectl(
        old,
        &["apply", "--server-side", "--dry-run=server", "-f", &last],
    );
    findings.expect_each(
        name,
        &format!("{old} apply --server-side --dry-run=server (installed)"),
        &run,
        &last_objects,
        &[" serverside-applied (server dry run)"],
        &[],
    );

    // helm uninstall: delete everything (custom resources may already be gone with their
    // CRDs), then the namespace.
    let run = k1s.kubectl(
        new,
        &["delete", "-f", &last, "--ignore-not-found", "--timeout=60s"],
    );
    if run.code != 0 && !findings.errors(name, "uninstall: delete -f", &run, &last_objects) {
        findings.add(
            name,
            "uninstall: delete -f",
            format!(
                "`{}` exited {}:\nstdout:\n{}\nstderr:\n{}",
                run.command, run.code, run.stdout, run.stderr
            ),
        );
    }
    let ns = format!("namespace/{}", chart.namespace);
    let run = k1s.kubectl(new, &["delete", &ns, "--timeout=60s"]);
    let gone = k1s.kubectl(new, &["get", &ns, "--ignore-not-found", "-o", "name"]);
    if run.code != 0 || !gone.stdout.trim().is_empty() {
        findings.add(
            name,
            "uninstall: delete the namespace",
            format!(
                "`{}` exited {}: {}{}; afterwards `{}` lists {:?}",
                run.command, run.code, run.stdout, run.stderr, gone.command, gone.stdout
            ),
        );
    }

    eprintln!(
        "chart {name}: {} objects in {:.1?}",
        objects.len(),
        started.elapsed()
    );
}

#[test]
fn helm_charts_install_upgrade_and_diff_like_upstream() {
    let (new, old) = kubectls();
    let k1s = K1s::start();
    let started = Instant::now();
    let mut findings = Findings::default();
    // K1S_CHARTS=redis,kafka runs only these charts.
    let only = std::env::var("K1S_CHARTS").unwrap_or_default();
    let selected: Vec<&Chart> = CHARTS
        .iter()
        .filter(|c| only.is_empty() || only.split(',').any(|n| n.trim() == c.file))
        .collect();
    assert!(!selected.is_empty(), "K1S_CHARTS={only} names no chart");
    for chart in &selected {
        install(&k1s, &new, &old, chart, &mut findings);
    }
    eprintln!(
        "{} charts with {new} and {old} in {:.1?}",
        selected.len(),
        started.elapsed()
    );
    assert!(
        findings.0.is_empty(),
        "{} findings:\n\n{}",
        findings.0.len(),
        findings.0.join("\n\n")
    );
}
