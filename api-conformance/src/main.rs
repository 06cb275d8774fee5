//! k1s's own conformance suite: upstream's conformance tests by name, each reimplemented
//! from what its description says and driven by real clients (kubectl and kube-rs), with
//! a scoreboard by upstream area. Also reads upstream's JUnit report into the same board.

mod ctx;
mod junit;
mod list;
mod scoreboard;
mod suite;
mod webhook_server;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures::StreamExt as _;

use crate::ctx::{Cluster, Ctx};
use crate::scoreboard::{Scoreboard, State};

/// k1s's conformance suite and scoreboard.
#[derive(Parser, Debug)]
#[command(name = "k1s-conformance", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs this suite against a running cluster and prints the scoreboard
    Run(RunArgs),
    /// Reads upstream's JUnit report (junit_01.xml of hydrophone or sonobuoy) into the scoreboard
    Junit(JunitArgs),
    /// Lists every upstream conformance test and whether this suite implements it
    List,
    /// Exits 0 when the cluster's /readyz answers ok (the runner waits with it)
    Ready {
        /// Kubeconfig of the cluster
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Kubeconfig of the cluster under test (admin credentials)
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// The kubectl binary the tests drive (default: the newest in $K1S_TOOLS_DIR, else kubectl on PATH)
    #[arg(long)]
    kubectl: Option<PathBuf>,
    /// Write the scoreboard as JSON to this file
    #[arg(long)]
    json: Option<PathBuf>,
    /// Baseline: codenames that passed before, one a line; a baseline test that does not pass now fails the run
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Rewrite the baseline file with the tests that pass now
    #[arg(long, requires = "baseline")]
    write_baseline: bool,
    /// How many tests run at once (each in its own namespace)
    #[arg(long, default_value_t = 8)]
    jobs: usize,
    /// Run only tests whose testname or codename contains this text (case-insensitive)
    #[arg(long)]
    filter: Option<String>,
    /// Seconds one test may take before it fails
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Print every test with its state, not only the summary
    #[arg(long)]
    all: bool,
}

#[derive(clap::Args, Debug)]
struct JunitArgs {
    /// The JUnit report
    report: PathBuf,
    /// Write the scoreboard as JSON to this file
    #[arg(long)]
    json: Option<PathBuf>,
    /// Print every test with its state, not only the summary
    #[arg(long)]
    all: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args).await,
        Command::Junit(args) => junit_board(args),
        Command::Ready { kubeconfig } => match client(&kubeconfig).await {
            Ok(c) => Ok(c
                .request_text(
                    http::Request::get("/readyz")
                        .body(Vec::new())
                        .unwrap_or_default(),
                )
                .await
                .is_ok_and(|t| t.trim() == "ok")),
            Err(e) => Err(e),
        },
        Command::List => {
            let implemented = suite::by_codename();
            for t in list::all() {
                let state = if let Some(i) = implemented.get(t.codename.as_str()) {
                    format!("implemented ({})", i.testname)
                } else {
                    format!("waits for {}", t.waits)
                };
                println!("{}\t{}\t{}", t.area, t.codename, state);
            }
            Ok(true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("k1s-conformance: {e}");
            ExitCode::from(2)
        }
    }
}

/// Prints the board (and every test with `all`) and writes its JSON.
fn publish(board: &Scoreboard, json: Option<&PathBuf>, all: bool) -> Result<(), String> {
    if all {
        println!("{}", board.render_all());
    }
    println!("{}", board.render());
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(board).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        println!("scoreboard JSON: {}", path.display());
    }
    Ok(())
}

fn junit_board(args: JunitArgs) -> Result<bool, String> {
    let xml = std::fs::read_to_string(&args.report)
        .map_err(|e| format!("{}: {e}", args.report.display()))?;
    let states = junit::states(&xml, &list::all()).map_err(|e| e.to_string())?;
    let board = Scoreboard::new(
        &format!("upstream e2e suite, JUnit: {}", args.report.display()),
        states,
    );
    publish(&board, args.json.as_ref(), args.all)?;
    Ok(board.total.failing == 0)
}

/// Four hex digits from the clock: this run's names differ from an earlier run's.
fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0);
    format!("{:04x}", (nanos ^ std::process::id()) & 0xffff)
}

/// A kube-rs client of the cluster in `path`.
async fn client(path: &std::path::Path) -> Result<kube::Client, String> {
    // kube-rs's TLS needs a process-wide crypto provider (k1s uses ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| format!("kubeconfig: {e}"))?;
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(90));
    kube::Client::try_from(config).map_err(|e| format!("client: {e}"))
}

async fn run(args: RunArgs) -> Result<bool, String> {
    let client = client(&args.kubeconfig).await?;
    let kubectl = args
        .kubectl
        .clone()
        .unwrap_or_else(|| k1s_e2e::newest_kubectl().path);
    let scratch = tempfile::Builder::new()
        .prefix("k1s-conformance-")
        .tempdir()
        .map_err(|e| format!("scratch dir: {e}"))?;
    let cluster = Arc::new(Cluster {
        client,
        kubectl,
        kubeconfig: args.kubeconfig.clone(),
        scratch: scratch.path().to_path_buf(),
        run_tag: run_tag(),
    });
    let implemented = suite::by_codename();
    let filter = args.filter.as_ref().map(|f| f.to_lowercase());
    let selected = |t: &list::Upstream| {
        filter.as_ref().is_none_or(|f| {
            t.codename.to_lowercase().contains(f) || t.testname.to_lowercase().contains(f)
        })
    };
    let all = list::all();
    let started = Instant::now();
    let todo: Vec<(usize, suite::Test)> = all
        .iter()
        .enumerate()
        .filter(|(_, t)| selected(t))
        .filter_map(|(i, t)| implemented.get(t.codename.as_str()).map(|x| (i, *x)))
        .collect();
    println!(
        "running {} tests ({} at once) against {}",
        todo.len(),
        args.jobs,
        args.kubeconfig.display()
    );
    let timeout = Duration::from_secs(args.timeout);
    let results: HashMap<usize, State> = futures::stream::iter(todo)
        .map(|(i, test)| {
            let cluster = cluster.clone();
            async move {
                let tag = format!("{}{}", cluster.run_tag, i);
                let ctx = Ctx {
                    ns: format!("conf-{tag}"),
                    tag,
                    cluster,
                };
                (i, run_one(ctx, test, timeout).await)
            }
        })
        .buffer_unordered(args.jobs.max(1))
        .collect()
        .await;
    let states = all
        .into_iter()
        .enumerate()
        .filter(|(_, t)| filter.is_none() || selected(t))
        .map(|(i, t)| {
            let state = results
                .get(&i)
                .cloned()
                .unwrap_or_else(|| State::NotImplemented {
                    waits: t.waits.clone(),
                });
            (t, state)
        })
        .collect();
    let board = Scoreboard::new("k1s api-conformance", states);
    publish(&board, args.json.as_ref(), args.all)?;
    println!("ran in {:.0} s", started.elapsed().as_secs_f64());
    let Some(path) = &args.baseline else {
        return Ok(board.total.failing == 0);
    };
    if args.write_baseline {
        let text = format!(
            "# The conformance tests that pass on k1s (codenames); api-conformance/run fails when one\n# of them does not pass. Rewrite with: api-conformance/run --write-baseline\n{}",
            board.passing_lines()
        );
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!(
            "baseline written: {} ({} tests)",
            path.display(),
            board.total.passing
        );
        return Ok(true);
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut baseline = scoreboard::parse_baseline(&text);
    if filter.is_some() {
        baseline.retain(|b| board.tests.iter().any(|e| &e.codename == b));
    }
    let regressions = board.regressions(&baseline);
    let new: Vec<&str> = board
        .tests
        .iter()
        .filter(|e| e.state.passed() && !baseline.contains(&e.codename))
        .map(|e| e.codename.as_str())
        .collect();
    if !new.is_empty() {
        println!(
            "\n{} tests pass that the baseline does not list yet (api-conformance/run --write-baseline adds them):",
            new.len()
        );
        for n in new {
            println!("  NEW  {n}");
        }
    }
    if regressions.is_empty() {
        println!(
            "\nno regression: all {} baseline tests pass",
            baseline.len()
        );
        Ok(true)
    } else {
        println!(
            "\nREGRESSION: {} baseline tests do not pass now:",
            regressions.len()
        );
        for r in &regressions {
            println!("  {r}");
        }
        Ok(false)
    }
}

/// Runs one test in its own namespace, with a time limit; a panic counts as a failure.
async fn run_one(ctx: Ctx, test: suite::Test, timeout: Duration) -> State {
    let started = Instant::now();
    let ns_api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(ctx.client());
    let ns: k8s_openapi::api::core::v1::Namespace = match ctx::obj(serde_json::json!({
        "metadata": {"name": ctx.ns, "labels": {"k1s-conformance": "true"}}
    })) {
        Ok(ns) => ns,
        Err(e) => {
            return State::Failing {
                message: e.0,
                seconds: 0.0,
            };
        }
    };
    if let Err(e) = ns_api.create(&Default::default(), &ns).await {
        return State::Failing {
            message: format!("creating the test namespace {}: {e}", ctx.ns),
            seconds: 0.0,
        };
    }
    // Like upstream's framework, a test starts once its namespace's default
    // ServiceAccount exists (pods are refused without it).
    let accounts: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
        kube::Api::namespaced(ctx.client(), &ctx.ns);
    let _ = ctx::eventually(30, "the namespace's default ServiceAccount", || async {
        accounts.get_opt("default").await.ok().flatten().map(|_| ())
    })
    .await;
    let name = ctx.ns.clone();
    let handle = tokio::spawn((test.run)(ctx));
    let outcome = tokio::time::timeout(timeout, handle).await;
    let seconds = (started.elapsed().as_secs_f64() * 100.0).round() / 100.0;
    // The namespace goes in the background; its deletion is no part of the test.
    let _ = ns_api.delete(&name, &Default::default()).await;
    match outcome {
        Ok(Ok(Ok(()))) => State::Passing { seconds },
        Ok(Ok(Err(f))) => State::Failing {
            message: f.0,
            seconds,
        },
        Ok(Err(join)) => State::Failing {
            message: match join.try_into_panic() {
                Ok(p) => p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .map(|m| format!("panicked: {m}"))
                    .unwrap_or_else(|| "panicked".into()),
                Err(e) => e.to_string(),
            },
            seconds,
        },
        Err(_) => State::Failing {
            message: format!("timed out after {} s", timeout.as_secs()),
            seconds,
        },
    }
}
