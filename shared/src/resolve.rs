//! Resolution stage: mentions → canonical entities. STUB: being written.

use crate::model::{CanonicalEntity, Mention};

/// Bump when grouping rules change.
pub const RESOLVER_VERSION: u32 = 1;

/// Groups mentions that name the same thing.
pub fn resolve(mentions: &[Mention]) -> Vec<CanonicalEntity> {
    let _ = mentions;
    Vec::new()
}
