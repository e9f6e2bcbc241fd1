//! `chunk`: the document text in paragraph- and heading-aware chunks with overlap, and
//! the batches the state machine's Map hands to `extract-entities`.
//!
//! Chunking is cheap and deterministic, so it has no Redis cache; its artefact
//! (`processed/{sha}/chunks-c{CHUNKER_VERSION}-{lineage}.json.zst`, the chunks with their
//! text) is what the later steps read.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::chunk::{CHUNKER_VERSION, chunk_text};
use crate::model::{Chunk, OcrResult};

use super::artefact;
use super::{DocumentRef, Pointer, StageError, Work};

/// Chunks per batch of the entity Map, for an ordinary document.
pub const BATCH_CHUNKS: usize = 16;
/// Most batches of one document: a longer document gets larger batches, so that the
/// Map's results stay small.
pub const MAX_BATCHES: usize = 256;

/// Input of `chunk`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub document: DocumentRef,
    /// The OCR output, as far as this step reads it.
    pub ocr: Pointer,
}

/// A run of chunks handed to one `extract-entities` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// 0-based batch number.
    pub index: usize,
    /// Index of the first chunk.
    pub first: usize,
    /// How many chunks.
    pub count: usize,
}

/// Output of `chunk`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// Key of the chunks artefact (a `Vec<Chunk>`).
    pub artefact: String,
    pub chunks: usize,
    pub batches: Vec<Batch>,
    pub work: Work,
}

/// The batches of `n` chunks.
pub fn batches(n: usize) -> Vec<Batch> {
    let size = BATCH_CHUNKS.max(n.div_ceil(MAX_BATCHES));
    (0..n.div_ceil(size))
        .map(|index| Batch {
            index,
            first: index * size,
            count: size.min(n - index * size),
        })
        .collect()
}

/// The key of the chunks of the OCR artefact `ocr_key`, as this app chunks it.
pub fn artefact_key(app: &App, content_sha256: &str, ocr_key: &str) -> String {
    let cfg = app.chunking;
    let lineage = artefact::lineage(&[
        ocr_key,
        &format!("{}/{}/{}", cfg.min_chars, cfg.max_chars, cfg.overlap_chars),
    ]);
    artefact::key(
        content_sha256,
        &format!("chunks-c{CHUNKER_VERSION}-{lineage}"),
    )
}

/// Chunks the text of the OCR artefact.
///
/// # Errors
/// The OCR artefact is missing; the blob store failed.
#[tracing::instrument(skip_all, fields(document_uuid = %input.document.document_uuid, stage = "chunk"))]
pub async fn run(app: &App, input: Input) -> Result<Output, StageError> {
    input.document.validate()?;
    let ocr_key = input.ocr.required("ocr")?;
    let cfg = app.chunking;
    let key = artefact_key(app, &input.document.content_sha256, &ocr_key);
    let produced = artefact::produce(app, &key, None, || async {
        let ocr: OcrResult = artefact::load(app, &ocr_key).await?;
        let text = ocr.full_text();
        app.run_cpu("chunk", move || chunk_text(&text, &cfg)).await
    })
    .await?;
    let chunks: &Vec<Chunk> = &produced.value;
    Ok(Output {
        artefact: key,
        chunks: chunks.len(),
        batches: batches(chunks.len()),
        work: Work::one(produced.reused),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_chunk_once_and_stay_few() {
        for n in [0, 1, 15, 16, 17, 100, 4096, 10_000] {
            let b = batches(n);
            assert!(b.len() <= MAX_BATCHES, "{n}: {} batches", b.len());
            let mut next = 0;
            for (i, batch) in b.iter().enumerate() {
                assert_eq!(batch.index, i);
                assert_eq!(batch.first, next);
                assert!(batch.count > 0);
                next += batch.count;
            }
            assert_eq!(next, n);
        }
    }
}
