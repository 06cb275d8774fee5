//! `k1s datastore`: offline maintenance of the datastore.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use k1s_store::{EventSink, ListPage, Revision, WriteOp};

use crate::cli::datastore::{DatastoreArgs, DatastoreCommand, MigrateArgs};
use crate::run::server::{default_data_dir, open_backend, sqlite_path};

/// Runs the chosen datastore subcommand.
pub fn run(args: DatastoreArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match args.command {
        DatastoreCommand::Check(target) => runtime.block_on(async {
            let data_dir = target.data_dir.unwrap_or_else(default_data_dir);
            let file = sqlite_path(&data_dir);
            if target.datastore_endpoint.is_empty() && !file.exists() {
                anyhow::bail!("no datastore at {}: check --data-dir", file.display());
            }
            let backend = open_backend(&target.datastore_endpoint, &target.tls, &data_dir)?;
            let name = backend.info().name;
            let report = backend
                .check()
                .await
                .with_context(|| format!("cannot check {name}"))?;
            if report.problems.is_empty() {
                println!(
                    "{name}: ok (revision {}, {} live keys, {} log rows)",
                    report.revision, report.live_keys, report.rows
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!("{name}: {} problem(s):", report.problems.len());
            for p in &report.problems {
                println!("  {p}");
            }
            Ok(ExitCode::FAILURE)
        }),
        DatastoreCommand::Migrate(m) => runtime.block_on(migrate(m)),
    }
}

/// A sink for backends opened only to be read or written once.
struct Discard;

impl EventSink for Discard {
    fn apply(&self, _events: Vec<k1s_store::Event>) {}
    fn reset(&self, _page: ListPage) {}
    fn progress(&self, _revision: Revision) {}
}

/// Key whose writes raise the target's revision; deleted afterwards.
const BUMP_KEY: &str = "/registry/k1s-migrate/revision";
/// Concurrent writers raising the revision.
const BUMPERS: u64 = 32;

async fn migrate(m: MigrateArgs) -> anyhow::Result<ExitCode> {
    let data_dir = m.data_dir.unwrap_or_else(default_data_dir);
    if m.from.is_empty() && !sqlite_path(&data_dir).exists() {
        anyhow::bail!(
            "no datastore at {}: check --data-dir or --from",
            sqlite_path(&data_dir).display()
        );
    }
    let from = open_backend(&m.from, &m.tls, &data_dir)?;
    let to = open_backend(&m.to, &m.tls, &data_dir)?;
    let (from_name, to_name) = (from.info().name, to.info().name);
    let page = from
        .start(Arc::new(Discard))
        .await
        .with_context(|| format!("cannot read {from_name}"))?;
    let existing = to
        .start(Arc::new(Discard))
        .await
        .with_context(|| format!("cannot open {to_name}"))?;
    if !existing.items.is_empty() {
        anyhow::bail!(
            "{to_name} holds {} keys already: migrate only into a new datastore",
            existing.items.len()
        );
    }
    // In resourceVersion order, so that the new resourceVersions order as the old did.
    let mut items = page.items;
    items.sort_by_key(|kv| kv.mod_revision);
    let mut revision = existing.revision;
    for kv in &items {
        let written = to
            .write(WriteOp::Create {
                key: kv.key.clone(),
                value: kv.value.clone(),
            })
            .await
            .with_context(|| format!("cannot write {} to {to_name}", kv.key))?;
        revision = revision.max(written.mod_revision);
    }
    // Every old resourceVersion must be in the new datastore's compacted past: a client
    // that watches from one then gets 410 Gone and relists, instead of waiting for a
    // revision the new datastore has not reached.
    if revision <= page.revision {
        let need = (page.revision - revision + 1).max(1) as u64;
        to.write(WriteOp::Create {
            key: BUMP_KEY.into(),
            value: bytes::Bytes::from_static(b"0"),
        })
        .await
        .with_context(|| format!("cannot write to {to_name}"))?;
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..BUMPERS {
            let to = to.clone();
            let count = need / BUMPERS + u64::from(w < need % BUMPERS);
            tasks.spawn(async move {
                for _ in 0..count {
                    to.write(WriteOp::Update {
                        key: BUMP_KEY.into(),
                        value: bytes::Bytes::from_static(b"0"),
                        expected: 0,
                    })
                    .await?;
                }
                Ok::<(), k1s_store::StoreError>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.context("a writer failed")?
                .with_context(|| format!("cannot write to {to_name}"))?;
        }
        let last = to
            .write(WriteOp::Delete {
                key: BUMP_KEY.into(),
                value: bytes::Bytes::from_static(b"0"),
                expected: 0,
            })
            .await
            .with_context(|| format!("cannot write to {to_name}"))?;
        revision = last.mod_revision;
    }
    to.compact(revision)
        .await
        .with_context(|| format!("cannot compact {to_name}"))?;
    println!(
        "migrated {} keys from {from_name} (revision {}) to {to_name} (revision {revision})",
        items.len(),
        page.revision
    );
    Ok(ExitCode::SUCCESS)
}
