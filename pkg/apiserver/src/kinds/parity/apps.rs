//! Parity rows of apps (see the module above).

use super::Case;

/// The rows.
pub fn cases() -> Vec<Case> {
    Vec::new()
}
