//! CustomResourceDefinitions: the CRD kind itself, and serving its custom resources
//! through the same generic registry.

use serde_json::Value;

use crate::registry::Strategy;

/// The CustomResourceDefinition strategy.
pub struct CrdStrategy;

impl Strategy for CrdStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, _obj: &mut Value) {}
}
