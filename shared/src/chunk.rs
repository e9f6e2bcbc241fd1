//! Chunk stage: heading/paragraph-aware chunks with overlap and character offsets.
//! STUB: being written.

use crate::model::Chunk;

/// Bump when chunk boundaries change, so cached per-document results are invalidated.
pub const CHUNKER_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkConfig {
    pub min_chars: usize,
    pub max_chars: usize,
    pub overlap_chars: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig { min_chars: 400, max_chars: 2000, overlap_chars: 200 }
    }
}

/// Splits `text` into chunks (character offsets into `text`).
pub fn chunk_text(text: &str, cfg: &ChunkConfig) -> Vec<Chunk> {
    let _ = (text, cfg);
    Vec::new()
}
