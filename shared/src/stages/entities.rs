//! `extract-entities`: the mentions of one batch of chunks, each chunk cached by its
//! content hash and the extractor's name and version, so the unchanged chunks of a
//! re-uploaded document are not extracted again; the batch's result is the artefact
//! `processed/{sha}/entities-{extractor}-{lineage}-b{index}.json.zst`.
//!
//! Mentions stay relative to their chunk here; `resolve-entities` places them in the
//! document ([`place_mentions`]) once every batch is done.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::extract::RuleExtractor;
use crate::model::{Chunk, Mention, RawMention};
use crate::redis::{CacheSpec, KeyPart};

use super::artefact;
use super::chunk::Batch;
use super::{DocumentRef, StageError, Work};

/// Longest mention the overlap check looks back for.
const MAX_MENTION_CHARS: usize = 1000;

/// Namespace of per-chunk entity results.
pub const NAMESPACE: &str = "chunk";
/// Bump when the stored shape changes.
pub const SCHEMA: u32 = 1;

/// Input of `extract-entities`: one Map item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub document: DocumentRef,
    /// Key of the chunks artefact.
    pub chunks: String,
    pub batch: Batch,
}

/// Output of `extract-entities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// Key of the batch artefact (a [`BatchMentions`]).
    pub artefact: String,
    pub batch: usize,
    pub mentions: usize,
    /// Per chunk: extracted now or reused.
    pub work: Work,
}

/// The artefact of one batch: each chunk's id and its chunk-relative mentions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchMentions {
    pub chunks: Vec<(String, Vec<RawMention>)>,
}

/// The extractor's name and version, as in keys.
pub fn extractor_id() -> String {
    format!("{}-{}", RuleExtractor::NAME, RuleExtractor::VERSION)
}

/// The cache key of one chunk's entities.
pub fn cache_key(app: &App, chunk: &Chunk) -> String {
    let extractor = extractor_id();
    app.cache.keys().key(
        NAMESPACE,
        SCHEMA,
        &[
            KeyPart::Digest(&chunk.sha256),
            KeyPart::Id("entities"),
            KeyPart::Id(&extractor),
        ],
    )
}

/// The artefact key of a batch.
pub fn artefact_key(content_sha256: &str, chunks_key: &str, batch: &Batch) -> String {
    let lineage = artefact::lineage(&[chunks_key, &format!("{}+{}", batch.first, batch.count)]);
    artefact::key(
        content_sha256,
        &format!("entities-{}-{lineage}-b{:04}", extractor_id(), batch.index),
    )
}

/// Extracts the mentions of one batch of chunks.
///
/// # Errors
/// The chunks artefact is missing or the batch lies outside it; the blob store failed.
#[tracing::instrument(skip_all, fields(document_uuid = %input.document.document_uuid, stage = "extract_entities", batch = input.batch.index))]
pub async fn run(app: &App, input: Input) -> Result<Output, StageError> {
    input.document.validate()?;
    let batch = input.batch;
    let key = artefact_key(&input.document.content_sha256, &input.chunks, &batch);
    let mut work = Work::default();
    let produced = artefact::produce(app, &key, None, || async {
        let chunks: Vec<Chunk> = artefact::load(app, &input.chunks).await?;
        let Some(mine) = chunks.get(batch.first..batch.first + batch.count) else {
            return Err(StageError::InvalidInput {
                message: format!(
                    "batch {} (chunks {}..{}) lies outside the {} chunks",
                    batch.index,
                    batch.first,
                    batch.first + batch.count,
                    chunks.len()
                ),
            });
        };
        let (per_chunk, w) = extract_chunks(app, mine).await;
        work = w;
        // A partial batch is never written: the artefact would keep the gap forever.
        let per_chunk = per_chunk
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| StageError::Internal {
                stage: "extract_entities",
                message,
            })?;
        Ok(BatchMentions {
            chunks: mine.iter().map(|c| c.id.clone()).zip(per_chunk).collect(),
        })
    })
    .await?;
    if produced.reused {
        work = Work {
            computed: 0,
            reused: batch.count as u64,
        };
    }
    Ok(Output {
        artefact: key,
        batch: batch.index,
        mentions: produced.value.chunks.iter().map(|(_, m)| m.len()).sum(),
        work,
    })
}

/// Extracts every chunk (concurrently, as blocking work) through the per-chunk cache:
/// each chunk's mentions (or why the extractor failed on it: never cached), and how many
/// chunks were extracted or reused.
pub async fn extract_chunks(
    app: &App,
    chunks: &[Chunk],
) -> (Vec<Result<Vec<RawMention>, String>>, Work) {
    let futures = chunks.iter().map(|chunk| {
        let spec = CacheSpec {
            namespace: NAMESPACE,
            key: cache_key(app, chunk),
            schema: SCHEMA,
            ttl: app.config.cache.ttl_entities,
        };
        let extractor = app.extractor.clone();
        let text = chunk.text.clone();
        async move {
            app.cache
                .get_or_compute(&spec, || async move {
                    app.run_cpu("extract_entities", move || extractor.extract(&text))
                        .await
                        .map_err(|e| e.to_string())
                })
                .await
        }
    });
    let results = futures::future::join_all(futures).await;
    let mut work = Work::default();
    let mut out = Vec::with_capacity(chunks.len());
    for (chunk, result) in chunks.iter().zip(results) {
        match result {
            Ok(c) => {
                if c.source.is_cached() {
                    work.reused += 1;
                } else {
                    work.computed += 1;
                }
                out.push(Ok(c.value));
            }
            Err(e) => {
                tracing::error!(chunk = %chunk.id, error = %e, "entity extraction failed for a chunk");
                work.computed += 1;
                out.push(Err(format!(
                    "the extractor failed on chunk {}: {e}",
                    chunk.id
                )));
            }
        }
    }
    (out, work)
}

/// Shifts chunk-relative mentions to document offsets, drops the copies that chunk
/// overlaps produce, sorts by position and numbers them `m0`, `m1`, ….
pub fn place_mentions(per_chunk: &[(&Chunk, Vec<RawMention>)]) -> Vec<Mention> {
    let mut seen = HashSet::new();
    let mut out: Vec<Mention> = Vec::new();
    for (chunk, raws) in per_chunk {
        for r in raws {
            let start = chunk.start + r.start;
            let end = chunk.start + r.end;
            if !seen.insert((r.kind, start, end)) {
                continue;
            }
            out.push(Mention {
                id: String::new(),
                kind: r.kind,
                text: r.text.clone(),
                normalized: r.normalized.clone(),
                start,
                end,
                confidence: r.confidence,
                chunk_id: chunk.id.clone(),
            });
        }
    }
    // A mention cut by a chunk boundary may appear shorter in one chunk and whole in the
    // next: keep the longest of mentions of one kind that overlap.
    out.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut kept: Vec<Mention> = Vec::with_capacity(out.len());
    for m in out {
        let overlaps = kept
            .iter()
            .rev()
            // Mentions are short; anything starting this far back cannot contain `m`.
            .take_while(|k| k.start + MAX_MENTION_CHARS > m.start)
            .any(|k| k.kind == m.kind && k.start <= m.start && k.end >= m.end);
        if !overlaps {
            kept.push(m);
        }
    }
    for (i, m) in kept.iter_mut().enumerate() {
        m.id = format!("m{i}");
    }
    kept
}
