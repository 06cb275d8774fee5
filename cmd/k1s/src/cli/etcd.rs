//! Flags of the embedded etcd (`k1s server --cluster-init`, joining with `--server`,
//! `--cluster-reset`) and of `k1s etcd-snapshot` and `k1s etcd member`, with k3s's names.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `k1s server` flags of the embedded etcd.
#[derive(Debug, Clone, Default, Args)]
pub struct EmbeddedEtcdArgs {
    /// Start a new cluster on an etcd member that k1s runs and supervises (Debian's
    /// `etcd` binary, package etcd-server; data in <data-dir>/server/db/etcd, TLS from
    /// the etcd CAs in <data-dir>/server/tls/etcd). Further servers join it with --server
    /// and --token. A restart reuses the member.
    #[arg(long, env = "K1S_CLUSTER_INIT", help_heading = "Embedded etcd")]
    pub cluster_init: bool,

    /// Join the cluster of this server (https://HOST:6443) as a further server and etcd
    /// member: its CA is checked against --token's hash, its CAs and signing keys are
    /// fetched (sealed with the token), and this server's etcd is added to its members.
    #[arg(
        long,
        short = 's',
        env = "K1S_URL",
        value_name = "URL",
        help_heading = "Embedded etcd"
    )]
    pub server: Option<String>,

    /// Forget every other etcd member and become the sole member of a new cluster, keeping
    /// the data (k3s's flag); k1s then exits: start it again without --cluster-reset, and
    /// join the other servers again with fresh data dirs.
    #[arg(long, env = "K1S_CLUSTER_RESET", help_heading = "Embedded etcd")]
    pub cluster_reset: bool,

    /// With --cluster-reset: replace the etcd data by this snapshot (from `k1s
    /// etcd-snapshot save`); the old data is kept in <data-dir>/server/db/etcd-old-<time>.
    /// Needs `etcdctl` (package etcd-client).
    #[arg(
        long,
        value_name = "FILE",
        requires = "cluster_reset",
        env = "K1S_CLUSTER_RESET_RESTORE_PATH",
        help_heading = "Embedded etcd"
    )]
    pub cluster_reset_restore_path: Option<PathBuf>,

    /// The etcd binary to run (default: `etcd` on the PATH).
    #[arg(
        long,
        value_name = "FILE",
        env = "K1S_ETCD_BINARY",
        help_heading = "Embedded etcd"
    )]
    pub etcd_binary: Option<PathBuf>,

    /// Port of the embedded etcd's client URL (on 127.0.0.1 and the node IP).
    #[arg(
        long,
        default_value_t = 2379,
        env = "K1S_ETCD_CLIENT_PORT",
        help_heading = "Embedded etcd"
    )]
    pub etcd_client_port: u16,

    /// Port of the embedded etcd's peer URL (on the node IP), where members replicate.
    #[arg(
        long,
        default_value_t = 2380,
        env = "K1S_ETCD_PEER_PORT",
        help_heading = "Embedded etcd"
    )]
    pub etcd_peer_port: u16,

    /// Where snapshots go (default <data-dir>/server/db/snapshots).
    #[arg(
        long,
        value_name = "DIR",
        env = "K1S_ETCD_SNAPSHOT_DIR",
        help_heading = "Embedded etcd"
    )]
    pub etcd_snapshot_dir: Option<PathBuf>,

    /// When to take scheduled snapshots: a cron schedule in the server's time zone (five
    /// fields, or @daily, @every 6h and the like).
    #[arg(
        long,
        default_value = "0 */12 * * *",
        value_name = "SPEC",
        env = "K1S_ETCD_SNAPSHOT_SCHEDULE_CRON",
        help_heading = "Embedded etcd"
    )]
    pub etcd_snapshot_schedule_cron: String,

    /// How many scheduled snapshots of this server to keep; older ones are deleted.
    #[arg(
        long,
        default_value_t = 5,
        env = "K1S_ETCD_SNAPSHOT_RETENTION",
        help_heading = "Embedded etcd"
    )]
    pub etcd_snapshot_retention: usize,

    /// Name prefix of scheduled snapshots (<name>-<node>-<unix time>).
    #[arg(
        long,
        default_value = "etcd-snapshot",
        env = "K1S_ETCD_SNAPSHOT_NAME",
        help_heading = "Embedded etcd"
    )]
    pub etcd_snapshot_name: String,

    /// Take no scheduled snapshots.
    #[arg(
        long,
        env = "K1S_ETCD_DISABLE_SNAPSHOTS",
        help_heading = "Embedded etcd"
    )]
    pub etcd_disable_snapshots: bool,
}

/// `k1s etcd-snapshot`.
#[derive(Debug, Args)]
pub struct EtcdSnapshotArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: EtcdSnapshotCommand,
}

/// Where a server's embedded etcd and its snapshots are.
#[derive(Debug, Clone, Args)]
pub struct LocalEtcd {
    /// The server's data dir (default /var/lib/k1s as root, ~/.k1s otherwise).
    #[arg(long, short = 'd', env = "K1S_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where snapshots are (default <data-dir>/server/db/snapshots).
    #[arg(long, value_name = "DIR", env = "K1S_ETCD_SNAPSHOT_DIR")]
    pub etcd_snapshot_dir: Option<PathBuf>,
}

/// `k1s etcd-snapshot` subcommands (k3s's).
#[derive(Debug, Subcommand)]
pub enum EtcdSnapshotCommand {
    /// Take a snapshot of the running server's embedded etcd into the snapshot dir, named
    /// <name>-<node>-<unix time> (restore it with `k1s etcd-snapshot restore NAME`).
    Save(SaveArgs),
    /// List the snapshots: name, location, size and creation time.
    #[command(visible_alias = "list")]
    Ls(LocalEtcd),
    /// Delete snapshots by name.
    #[command(visible_alias = "rm")]
    Delete(DeleteArgs),
    /// Restore a snapshot into this stopped server's data dir, as `k1s server --cluster-reset
    /// --cluster-reset-restore-path=FILE` does (k3s's restore): the etcd data is replaced by
    /// the snapshot's, as the sole member of a new cluster (the old data kept in
    /// <data-dir>/server/db/etcd-old-<time>). Then start the server again; other servers
    /// stop, remove their <data-dir>/server/db and join again. Refused while etcd runs on
    /// the data dir. Needs `etcdctl` (package etcd-client).
    Restore(RestoreArgs),
}

/// Flags of `k1s etcd-snapshot restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The snapshot: a name as `k1s etcd-snapshot ls` shows it, or a file's path.
    pub snapshot: String,
    /// Data dir and snapshot dir.
    #[command(flatten)]
    pub local: LocalEtcd,
}

/// Flags of `k1s etcd-snapshot save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// The snapshot's name prefix.
    #[arg(long, default_value = "on-demand")]
    pub name: String,
    /// Data dir and snapshot dir.
    #[command(flatten)]
    pub local: LocalEtcd,
}

/// Flags of `k1s etcd-snapshot delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Snapshot names, as `k1s etcd-snapshot ls` shows them.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Data dir and snapshot dir.
    #[command(flatten)]
    pub local: LocalEtcd,
}

/// `k1s etcd`.
#[derive(Debug, Args)]
pub struct EtcdArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: EtcdCommand,
}

/// `k1s etcd` subcommands.
#[derive(Debug, Subcommand)]
pub enum EtcdCommand {
    /// The members of the embedded etcd cluster.
    Member(MemberArgs),
}

/// `k1s etcd member`.
#[derive(Debug, Args)]
pub struct MemberArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: MemberCommand,
}

/// `k1s etcd member` subcommands.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// List the members: ID, name, peer URLs, client URLs, learner.
    #[command(visible_alias = "ls")]
    List(LocalEtcd),
    /// Remove a member (by name or hex ID), e.g. a server that is gone for good; stop
    /// that server first. Deleting a server's Node removes its member too. Started again
    /// with --server, a removed server joins as a new member.
    Remove(RemoveArgs),
}

/// Flags of `k1s etcd member remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The member's name or hex ID, as `k1s etcd member list` shows it.
    pub member: String,
    /// The data dir of a server of the cluster, whose etcd is asked.
    #[command(flatten)]
    pub local: LocalEtcd,
}
