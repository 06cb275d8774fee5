//! Pulls from OCI registries: not built yet. Every pull fails with [`NOT_BUILT`] in its
//! message, so the kubelet reports `ErrImagePull` instead of pretending.

use super::ContainerdRuntime;
use crate::runtime::{RegistryCredential, RuntimeError, RuntimeResult};

/// The message of a pull that k1s cannot make yet.
pub const NOT_BUILT: &str = "pulling images from registries is not built into k1s yet";

pub(crate) async fn pull(
    rt: &ContainerdRuntime,
    image: &str,
    name: &str,
    _credentials: &[RegistryCredential],
) -> RuntimeResult<()> {
    tracing::debug!(registries = ?rt.inner.registries, %name, "pull asked");
    Err(RuntimeError::Pull {
        image: image.to_string(),
        message: format!(
            "failed to pull and unpack image \"{name}\": {NOT_BUILT}; import it with `k1s image import` or put its archive in <data-dir>/agent/images/"
        ),
    })
}
