//! Entity stage: per chunk, cached by the chunk's content hash and the extractor's name
//! and version, so unchanged chunks of a re-uploaded document are not extracted again.

use std::collections::HashSet;

use crate::extract::RuleExtractor;
use crate::model::{Chunk, Mention, RawMention};
use crate::redis::{CacheSpec, KeyPart};

use super::Deps;

/// Longest mention the overlap check looks back for.
const MAX_MENTION_CHARS: usize = 1000;

/// Namespace of per-chunk entity results.
pub const NAMESPACE: &str = "chunk";
/// Bump when the stored shape changes.
pub const SCHEMA: u32 = 1;

/// Mentions of the whole document, and how many chunks were served from the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub mentions: Vec<Mention>,
    pub chunks_computed: usize,
    pub chunks_cached: usize,
}

/// The cache key of one chunk's entities.
pub fn cache_key(deps: &Deps, chunk: &Chunk) -> String {
    let extractor = format!("{}-{}", RuleExtractor::NAME, RuleExtractor::VERSION);
    deps.cache.keys().key(
        NAMESPACE,
        SCHEMA,
        &[
            KeyPart::Digest(&chunk.sha256),
            KeyPart::Id("entities"),
            KeyPart::Id(&extractor),
        ],
    )
}

/// Extracts every chunk (concurrently, as blocking work) and places the mentions in the
/// document: offsets shifted to document offsets, duplicates from chunk overlaps removed.
#[tracing::instrument(skip_all, fields(stage = "extract_entities", chunks = chunks.len()))]
pub async fn run(deps: &Deps, chunks: &[Chunk]) -> Output {
    let mut per_chunk = Vec::with_capacity(chunks.len());
    let mut computed = 0;
    let mut cached = 0;
    let futures = chunks.iter().map(|chunk| {
        let spec = CacheSpec {
            namespace: NAMESPACE,
            key: cache_key(deps, chunk),
            schema: SCHEMA,
            ttl: deps.config.cache.ttl_entities,
        };
        let extractor = deps.extractor.clone();
        let text = chunk.text.clone();
        async move {
            deps.cache
                .get_or_compute(&spec, || async move {
                    tokio::task::spawn_blocking(move || extractor.extract(&text))
                        .await
                        .map_err(|e| e.to_string())
                })
                .await
        }
    });
    let results = futures::future::join_all(futures).await;
    for (chunk, result) in chunks.iter().zip(results) {
        match result {
            Ok(c) => {
                if c.source.is_cached() {
                    cached += 1;
                } else {
                    computed += 1;
                }
                per_chunk.push((chunk, c.value));
            }
            Err(e) => {
                // The extractor panicked: that chunk yields nothing, the rest go on.
                tracing::error!(chunk = %chunk.id, error = %e, "entity extraction failed for a chunk");
                computed += 1;
            }
        }
    }
    Output {
        mentions: place_mentions(&per_chunk),
        chunks_computed: computed,
        chunks_cached: cached,
    }
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
