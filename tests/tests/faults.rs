//! Fault tests: a killed server loses no acknowledged write, a full disk fails writes
//! cleanly and recovers, and a damaged database stops the server with a clear error.
//!
//! `K1S_FAULT_ITERATIONS` sets how many kill/restart rounds run (default 100; `scripts/test
//! --long` raises it). `K1S_FAULT_SEED` replays a run.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k1s_e2e::K1s;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};

/// Writers running at once during each round.
const WRITERS: usize = 8;

fn iterations() -> usize {
    std::env::var("K1S_FAULT_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

fn seed() -> u64 {
    std::env::var("K1S_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"v": value},
    }))
    .expect("config map")
}

/// What the writers were told happened, and what they only attempted.
#[derive(Default, Clone)]
struct Ledger {
    /// Acknowledged creates not since deleted: name → value.
    created: BTreeMap<String, String>,
    /// Acknowledged deletes.
    deleted: BTreeSet<String>,
    /// Names whose delete was sent but not acknowledged: either state is allowed.
    uncertain: BTreeSet<String>,
    /// Per counter object: (highest acknowledged value, highest value sent).
    counters: BTreeMap<String, (u64, u64)>,
}

/// One writer: creates, counter updates and deletes until `stop`, recording acknowledgements.
async fn writer(
    api: Api<ConfigMap>,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    round: usize,
    id: usize,
    seed: u64,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let counter = format!("counter-{id}");
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let roll: u32 = rng.random_range(0..10);
        if roll < 6 {
            let name = format!("c-{round}-{id}-{n}");
            let value = format!("{round}.{id}.{n}");
            if api
                .create(&PostParams::default(), &config_map(&name, &value))
                .await
                .is_ok()
            {
                ledger.lock().created.insert(name, value);
            }
        } else if roll < 9 {
            let value = {
                let mut l = ledger.lock();
                let entry = l.counters.entry(counter.clone()).or_default();
                entry.1 += 1;
                entry.1
            };
            let patch = serde_json::json!({"data": {"v": value.to_string()}});
            if api
                .patch(&counter, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                let mut l = ledger.lock();
                let entry = l.counters.entry(counter.clone()).or_default();
                entry.0 = entry.0.max(value);
            }
        } else {
            let prefix = format!("c-{round}-{id}-");
            let victim = {
                let mut l = ledger.lock();
                let name = l.created.keys().find(|k| k.starts_with(&prefix)).cloned();
                if let Some(name) = &name {
                    l.created.remove(name);
                    l.uncertain.insert(name.clone());
                }
                name
            };
            if let Some(name) = victim
                && api.delete(&name, &DeleteParams::default()).await.is_ok()
            {
                let mut l = ledger.lock();
                l.uncertain.remove(&name);
                l.deleted.insert(name);
            }
        }
    }
}

/// Checks the server's objects against the ledger.
async fn verify(api: &Api<ConfigMap>, ledger: &Ledger, round: usize) {
    let listed = api.list(&ListParams::default()).await.expect("list");
    let stored: BTreeMap<String, String> = listed
        .items
        .into_iter()
        .filter_map(|cm| {
            let name = cm.metadata.name?;
            let v = cm.data.and_then(|mut d| d.remove("v")).unwrap_or_default();
            Some((name, v))
        })
        .collect();
    for (name, value) in &ledger.created {
        assert_eq!(
            stored.get(name),
            Some(value),
            "round {round}: acknowledged create of {name} is missing or changed"
        );
    }
    for name in &ledger.deleted {
        assert!(
            !stored.contains_key(name),
            "round {round}: acknowledged delete of {name} came back"
        );
    }
    for (name, (acked, sent)) in &ledger.counters {
        let value: u64 = stored
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("round {round}: counter {name} is missing"));
        assert!(
            value >= *acked && value <= *sent,
            "round {round}: {name} is {value}; acknowledged {acked}, sent up to {sent}"
        );
    }
}

#[test]
fn sigkill_during_writes_loses_no_acknowledged_write() {
    let seed = seed();
    let rounds = iterations();
    eprintln!("K1S_FAULT_SEED={seed} K1S_FAULT_ITERATIONS={rounds}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let rt = runtime();
    let mut k1s = K1s::start();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    rt.block_on(async {
        let api: Api<ConfigMap> = Api::default_namespaced(k1s.client().await);
        for id in 0..WRITERS {
            let name = format!("counter-{id}");
            api.create(&PostParams::default(), &config_map(&name, "0"))
                .await
                .expect("counter");
            ledger.lock().counters.insert(name, (0, 0));
        }
    });
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let api: Api<ConfigMap> =
            rt.block_on(async { Api::default_namespaced(k1s.client().await) });
        let tasks: Vec<_> = (0..WRITERS)
            .map(|id| {
                rt.spawn(writer(
                    api.clone(),
                    ledger.clone(),
                    stop.clone(),
                    round,
                    id,
                    rng.random(),
                ))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.random_range(20..400)));
        k1s.kill();
        stop.store(true, Ordering::SeqCst);
        rt.block_on(async {
            for t in tasks {
                t.await.expect("writer task");
            }
        });
        let check = k1s.datastore_check();
        assert!(
            check.code == 0 && check.stdout.contains(": ok"),
            "round {round}: the store fails its own check after SIGKILL:\n{}{}",
            check.stdout,
            check.stderr
        );
        k1s.start_again();
        rt.block_on(async {
            let api: Api<ConfigMap> = Api::default_namespaced(k1s.client().await);
            let snapshot = ledger.lock().clone();
            verify(&api, &snapshot, round).await;
        });
    }
    let l = ledger.lock();
    eprintln!(
        "{rounds} SIGKILL rounds: {} acknowledged creates live, {} deletes, {} counters, {} unacknowledged deletes; all verified",
        l.created.len(),
        l.deleted.len(),
        l.counters.len(),
        l.uncertain.len()
    );
    // The load must actually have written something in most rounds.
    assert!(
        l.created.len() > rounds,
        "the writers got almost nothing acknowledged"
    );
}

/// True when this process may mount filesystems (root).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A size-limited tmpfs, unmounted on drop.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(path: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(path).expect("mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "k1s-full-disk",
            ])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "cannot mount a tmpfs at {}",
            path.display()
        );
        SmallDisk {
            path: path.to_path_buf(),
        }
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .expect("run mount");
        assert!(status.success(), "cannot resize the tmpfs");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[test]
fn a_full_disk_fails_writes_cleanly_and_the_server_recovers() {
    if !is_root() {
        eprintln!("NOTE: the full-disk test needs root to mount a small tmpfs; not run");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let disk = SmallDisk::mount(&data, "6m");
    let mut k1s = K1s::start_with_data_dir(dir, data);
    let rt = runtime();
    let payload = "x".repeat(200 * 1024);
    let (acked, status) = rt.block_on(async {
        let api: Api<ConfigMap> = Api::default_namespaced(k1s.client().await);
        let mut acked = Vec::new();
        for i in 0..200 {
            let name = format!("big-{i}");
            match api
                .create(&PostParams::default(), &config_map(&name, &payload))
                .await
            {
                Ok(_) => acked.push(name),
                Err(kube::Error::Api(status)) => return (acked, status),
                Err(e) => panic!("create {name}: not a Status answer: {e}"),
            }
        }
        panic!("200 writes of 200 KiB fit on a 6 MiB disk");
    });
    assert!(!acked.is_empty(), "nothing fit on the disk");
    assert_eq!(status.code, 500, "{status:?}");
    assert_eq!(status.reason, "InternalError", "{status:?}");
    assert!(
        status.message.contains("disk is full"),
        "the message says why: {status:?}"
    );
    rt.block_on(async {
        let api: Api<ConfigMap> = Api::default_namespaced(k1s.client().await);
        // Reads still work and every acknowledged object is intact.
        for name in &acked {
            let cm = api.get(name).await.expect("read on a full disk");
            assert_eq!(
                cm.data.and_then(|d| d.get("v").map(String::len)),
                Some(payload.len())
            );
        }
        // Small writes keep failing cleanly while the disk is full.
        let small = api
            .create(&PostParams::default(), &config_map("small", "1"))
            .await;
        if let Err(e) = &small {
            assert!(matches!(e, kube::Error::Api(s) if s.code == 500), "{e}");
        }
    });
    disk.resize("64m");
    rt.block_on(async {
        let api: Api<ConfigMap> = Api::default_namespaced(k1s.client().await);
        api.create(&PostParams::default(), &config_map("after", &payload))
            .await
            .expect("writes work again once space returns, without a restart");
    });
    k1s.stop();
    let check = k1s.datastore_check();
    assert!(check.code == 0, "{}{}", check.stdout, check.stderr);
    k1s.start_again();
    rt.block_on(async {
        let api: Api<ConfigMap> = Api::default_namespaced(k1s.client().await);
        for name in acked.iter().chain(std::iter::once(&"after".to_string())) {
            api.get(name)
                .await
                .expect("acknowledged object after restart");
        }
    });
    k1s.kill();
    drop(disk);
}

/// Flips bytes in the middle of the database file.
fn damage(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).expect("read db");
    let len = bytes.len();
    for b in &mut bytes[len / 2..len / 2 + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(path, bytes).expect("write db");
}

#[test]
fn a_damaged_or_truncated_database_stops_the_server_with_a_clear_error() {
    let mut k1s = K1s::start();
    let k = k1s_e2e::newest_kubectl();
    for i in 0..40 {
        let doc = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  v: \"{}\"\n",
            "y".repeat(2000)
        );
        k1s.kubectl_with(&k, &["apply", "-f", "-"], Some(&doc), &[])
            .ok();
    }
    k1s.stop();
    let db = k1s.data_dir().join("server/db/state.db");
    let pristine = std::fs::read(&db).expect("read db");

    type Harm = fn(&std::path::Path);
    let cases: [(&str, Harm); 3] = [
        ("damaged", damage),
        ("truncated", |p| {
            let len = std::fs::metadata(p).expect("db").len();
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .expect("open db");
            f.set_len(len / 2).expect("truncate");
        }),
        ("replaced by text", |p| {
            std::fs::write(p, "not a database, just text\n".repeat(100)).expect("write db")
        }),
    ];
    for (what, harm) in cases {
        std::fs::write(&db, &pristine).expect("restore db");
        harm(&db);
        let (code, log) = k1s.start_expecting_failure();
        assert_eq!(code, 1, "{what}: exit code\n{log}");
        assert!(
            !log.contains("panicked"),
            "{what}: a panic, not an error:\n{log}"
        );
        let last = log.lines().last().unwrap_or("");
        assert!(
            last.starts_with("k1s: cannot open the datastore at ") && last.contains("corrupt"),
            "{what}: one clear line naming the file and the problem:\n{log}"
        );
        let check = k1s.datastore_check();
        assert_eq!(check.code, 1, "{what}: datastore check must fail too");
    }
    // The untouched file still works.
    std::fs::write(&db, &pristine).expect("restore db");
    k1s.start_again();
    let out = k1s.kubectl(&k, &["get", "cm", "cm-39", "-o", "name"]);
    assert_eq!(out.ok().trim(), "configmap/cm-39");
}
