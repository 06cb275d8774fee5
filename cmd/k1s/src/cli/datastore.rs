//! Flags of `k1s datastore`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Maintenance of the datastore.
#[derive(Debug, Args)]
pub struct DatastoreArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DatastoreCommand,
}

/// `k1s datastore` subcommands.
#[derive(Debug, Subcommand)]
pub enum DatastoreCommand {
    /// Check the datastore's consistency: SQLite's own page check, every row's checksum,
    /// and that the revision log and the live keys agree; on etcd, that the cluster has a
    /// leader and raises no alarm or error. Exits 1 on any problem.
    ///
    /// Run it while the server is stopped; on a running server it checks a snapshot.
    Check(DatastoreTarget),
    /// Copy every object of one datastore into a new, empty one: a single SQLite server
    /// moving to etcd (`--from sqlite:///var/lib/k1s/server/db/state.db --to
    /// https://etcd:2379`). Objects are written in their resourceVersion order, then
    /// etcd's revision is raised past the old one and compacted, so clients holding an
    /// old resourceVersion get 410 Gone and relist. Run it while the server is stopped,
    /// then start the servers with --datastore-endpoint set to --to.
    Migrate(MigrateArgs),
}

/// Flags of `k1s datastore migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The datastore to read: sqlite:///path/state.db (empty: the SQLite file in
    /// --data-dir).
    #[arg(long, default_value = "")]
    pub from: String,
    /// The empty datastore to fill: https://etcd:2379 (or http://, or sqlite:///path).
    #[arg(long)]
    pub to: String,
    /// The server's data dir (default /var/lib/k1s as root, ~/.k1s otherwise).
    #[arg(long, short = 'd', env = "K1S_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TLS files for an https:// etcd on either side.
    #[command(flatten)]
    pub tls: DatastoreTls,
}

/// Which datastore to open; the same flags as `k1s server`.
#[derive(Debug, Args)]
pub struct DatastoreTarget {
    /// The server's data dir (default /var/lib/k1s as root, ~/.k1s otherwise).
    #[arg(long, short = 'd', env = "K1S_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The server's --datastore-endpoint (empty: the SQLite file in the data dir).
    #[arg(long, default_value = "", env = "K1S_DATASTORE_ENDPOINT")]
    pub datastore_endpoint: String,
    /// The server's etcd TLS files.
    #[command(flatten)]
    pub tls: DatastoreTls,
}

/// TLS files for `https://` etcd endpoints (k3s's flag names).
#[derive(Debug, Clone, Default, Args)]
pub struct DatastoreTls {
    /// CA bundle that signed the etcd servers' certificates (https:// endpoints; default:
    /// the system's trust store).
    #[arg(long, env = "K1S_DATASTORE_CAFILE", help_heading = "Datastore")]
    pub datastore_cafile: Option<PathBuf>,
    /// Client certificate k1s presents to etcd (with --datastore-keyfile).
    #[arg(long, env = "K1S_DATASTORE_CERTFILE", help_heading = "Datastore")]
    pub datastore_certfile: Option<PathBuf>,
    /// Private key of --datastore-certfile.
    #[arg(long, env = "K1S_DATASTORE_KEYFILE", help_heading = "Datastore")]
    pub datastore_keyfile: Option<PathBuf>,
}
