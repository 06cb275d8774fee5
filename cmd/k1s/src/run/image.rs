//! `k1s image`: import, list and remove the node's images.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use k1s_kubelet::containerd::images::{ImportProgress, import_archive};
use k1s_kubelet::containerd::{
    self, ContainerdRuntime, RuntimeOptions, Supervisor, SupervisorConfig,
};
use k1s_kubelet::runtime::ContainerRuntime as _;

use crate::cli::image::{ImageArgs, ImageCommand};
use crate::run::server::default_data_dir;

/// Runs the chosen image subcommand.
pub fn run(args: ImageArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: ImageArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let options = RuntimeOptions::for_data_dir(&data_dir);
    // The server's containerd when it runs; else an embedded one for this command.
    let (rt, supervisor) = match args
        .container_runtime_endpoint
        .as_deref()
        .filter(|e| !e.is_empty())
    {
        Some(endpoint) => (ContainerdRuntime::connect(endpoint, options).await?, None),
        None => {
            let config = SupervisorConfig::for_data_dir(&data_dir);
            let socket = config.socket();
            match answering(&socket, &options).await {
                Some(rt) => (rt, None),
                None => {
                    let supervisor = Supervisor::start(config).await?;
                    let rt = ContainerdRuntime::connect(supervisor.socket(), options).await?;
                    (rt, Some(supervisor))
                }
            }
        }
    };
    let result = match args.command {
        ImageCommand::Import { files } => import(&rt, &files).await,
        ImageCommand::Ls { quiet } => list(&rt, quiet).await,
        ImageCommand::Rm { images } => remove(&rt, &images).await,
    };
    if let Some(supervisor) = supervisor {
        supervisor.stop().await;
    }
    result
}

async fn answering(
    socket: &std::path::Path,
    options: &RuntimeOptions,
) -> Option<ContainerdRuntime> {
    if !socket.exists() {
        return None;
    }
    let channel = containerd::connect(socket).await.ok()?;
    let rt = ContainerdRuntime::with_channel(channel, options.clone()).await;
    rt.version().await.ok().map(|_| rt)
}

fn human(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", units[unit])
    }
}

async fn import(rt: &ContainerdRuntime, files: &[std::path::PathBuf]) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for file in files {
        let started = Instant::now();
        let progress = |p: ImportProgress| match p {
            ImportProgress::Reading(path) => eprintln!("reading {}", path.display()),
            ImportProgress::Blob {
                digest,
                size,
                index,
                count,
            } => {
                eprintln!(
                    "  blob {index}/{count} {} ({})",
                    &digest[..digest.len().min(19)],
                    human(size)
                )
            }
            ImportProgress::Unpacking(name) => eprintln!("  unpacking {name}"),
            ImportProgress::Imported { .. } => {}
        };
        match import_archive(rt, file, &progress).await {
            Ok(names) => {
                for name in names {
                    println!(
                        "imported {name} from {} in {:.1}s",
                        file.display(),
                        started.elapsed().as_secs_f64()
                    );
                }
            }
            Err(e) => {
                eprintln!("k1s: cannot import {}: {e}", file.display());
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn list(rt: &ContainerdRuntime, quiet: bool) -> anyhow::Result<ExitCode> {
    let images = rt.list_images().await.context("cannot list images")?;
    if quiet {
        for image in images {
            println!("{}", image.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![[
        "IMAGE".to_string(),
        "TAG".to_string(),
        "IMAGE ID".to_string(),
        "SIZE".to_string(),
    ]];
    for image in images {
        let short = image
            .id
            .trim_start_matches("sha256:")
            .chars()
            .take(13)
            .collect::<String>();
        let names = if image.repo_tags.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            image.repo_tags.clone()
        };
        for name in names {
            let (repo, tag) = match name.rsplit_once(':') {
                Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
                _ => (name.clone(), "<none>".to_string()),
            };
            rows.push([repo, tag, short.clone(), human(image.size)]);
        }
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        println!(
            "{:w0$}   {:w1$}   {:w2$}   {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn remove(rt: &ContainerdRuntime, images: &[String]) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for image in images {
        match rt.remove_image(image).await {
            Ok(()) => println!("deleted {image}"),
            Err(e) => {
                eprintln!("k1s: cannot remove {image}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
