//! Chunk stage: cheap and deterministic, so it is recomputed rather than cached.

use crate::chunk::chunk_text;
use crate::model::Chunk;

use super::Deps;

/// Chunks of the document text.
pub fn run(deps: &Deps, text: &str) -> Vec<Chunk> {
    chunk_text(text, &deps.chunking)
}
