//! Flags of `k1s image`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Manage the images of this node's containerd (namespace k8s.io).
#[derive(Debug, Args)]
#[command(after_help = "\
The images are those the kubelet runs pods from. Without a running `k1s server`, k1s starts
its embedded containerd for the command and stops it afterwards.

Examples:
  scripts/build-test-images /tmp/images       # busybox and nginx, built offline
  k1s image import /tmp/images/*.tar          # OCI-layout or docker-archive tarballs
  k1s image ls
  k1s image rm nginx:latest

Tarballs copied into <data-dir>/agent/images/ are imported when the server starts (k3s's
airgap convention).")]
pub struct ImageArgs {
    /// The server's data dir (default /var/lib/k1s as root, ~/.k1s otherwise).
    #[arg(long, short = 'd', env = "K1S_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// containerd's socket, when not the embedded one
    /// (e.g. unix:///run/containerd/containerd.sock).
    #[arg(long, env = "K1S_CONTAINER_RUNTIME_ENDPOINT", global = true)]
    pub container_runtime_endpoint: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// `k1s image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import images from tarballs: OCI layouts (`skopeo copy … oci-archive:`,
    /// scripts/build-test-images) or docker archives (`docker save`), optionally gzipped.
    /// Each image is stored under the name its archive gives it and unpacked, ready to run.
    Import {
        /// The tarballs.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// List the images.
    #[command(alias = "list")]
    Ls {
        /// Only print image ids.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Remove images by name (`nginx`, `docker.io/library/nginx:latest`) or id (`sha256:…`).
    #[command(alias = "remove")]
    Rm {
        /// The images.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
}
