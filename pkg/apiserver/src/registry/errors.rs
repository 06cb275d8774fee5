//! Store errors become Kubernetes `Status` here, once, knowing the operation, resource
//! and name (upstream's `storage/errors` and `api/errors`).

use k1s_apimachinery::Status;
use k1s_store::StoreError;

use super::ResourceInfo;

/// Upstream's wording for an optimistic-concurrency failure.
pub const OPTIMISTIC_LOCK_MSG: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// What the registry was doing when the store failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// get, list, watch.
    Read,
    /// create.
    Create,
    /// update, patch.
    Update,
    /// delete.
    Delete,
}

/// Converts a store error on `name` of `info` into a Status.
pub fn store_error(info: &ResourceInfo, name: &str, op: Operation, err: StoreError) -> Status {
    let gr = info.group_resource();
    match err {
        StoreError::NotFound { .. } => Status::not_found(&gr, name),
        StoreError::AlreadyExists { .. } => Status::already_exists(&gr, name),
        StoreError::Conflict { .. } => Status::conflict(&gr, name, OPTIMISTIC_LOCK_MSG),
        StoreError::Compacted { requested, oldest } => match op {
            Operation::Read => Status::resource_expired(&format!(
                "too old resource version: {requested} ({oldest})"
            )),
            _ => Status::internal_error(&format!("revision {requested} was compacted")),
        },
        StoreError::FutureRevision { .. } => Status::timeout("Too large resource version", 1),
        StoreError::Unavailable { message } => Status::internal_error(&message),
        StoreError::Corrupt { message } => Status::internal_error(&message),
        StoreError::Closed => Status::service_unavailable("the datastore is shutting down"),
    }
}
