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
use crate::config::ExtractorChoice;
use crate::cost::{Ledger, Meter};
use crate::extract::RuleExtractor;
use crate::extract::llm as llm_extract;
use crate::llm::Usage;
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
    /// LLM quotes not found in their chunk's text, and so dropped.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_spans: u64,
    /// LLM calls made and avoided.
    #[serde(default, skip_serializing_if = "Ledger::is_empty")]
    pub usage: Ledger,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The artefact of one batch: each chunk's id and its chunk-relative mentions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchMentions {
    pub chunks: Vec<(String, Vec<RawMention>)>,
    /// What each chunk's LLM answer cost when it was made, so that a run reusing this
    /// artefact counts the calls it did not make (the cost ledger's `calls_avoided`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub llm_usage: Vec<Usage>,
}

/// The extractor's name and version, as in keys and artefact names: `rules-3`, or for the
/// LLM `llm-p{prompt}-{model}-{settings}` (prompt template version, model name made safe
/// for a file name, short hash of the sampling settings), or `both-…` of the two.
pub fn extractor_id(app: &App) -> String {
    let rules = format!("{}-{}", RuleExtractor::NAME, RuleExtractor::VERSION);
    match (app.config.llm.extractor, &app.llm) {
        (ExtractorChoice::Rules, _) | (_, None) => rules,
        (ExtractorChoice::Llm, Some(llm)) => llm_id(llm),
        (ExtractorChoice::Both, Some(llm)) => format!("both-{rules}-{}", llm_id(llm)),
    }
}

fn llm_id(llm: &crate::llm::LlmClient) -> String {
    format!(
        "{}-p{}-{}-{}",
        llm_extract::NAME,
        llm_extract::ENTITY_PROMPT_VERSION,
        llm.model_slug(),
        llm.settings_id()
    )
}

/// The cache key of one chunk's entities by `extractor` (an [`extractor_id`] part).
fn chunk_key(app: &App, chunk: &Chunk, extractor: &str) -> String {
    app.cache.keys().key(
        NAMESPACE,
        SCHEMA,
        &[
            KeyPart::Digest(&chunk.sha256),
            KeyPart::Id("entities"),
            KeyPart::Id(extractor),
        ],
    )
}

/// The cache key of one chunk's entities by the rule extractor.
pub fn cache_key(app: &App, chunk: &Chunk) -> String {
    chunk_key(
        app,
        chunk,
        &format!("{}-{}", RuleExtractor::NAME, RuleExtractor::VERSION),
    )
}

/// The artefact key of a batch. With the LLM, the exact model name is in the lineage, so
/// two models whose names make the same file-name slug never share an artefact; the rules'
/// keys are as they always were.
pub fn artefact_key(app: &App, content_sha256: &str, chunks_key: &str, batch: &Batch) -> String {
    let range = format!("{}+{}", batch.first, batch.count);
    let mut parts = vec![chunks_key, range.as_str()];
    let llm = app
        .llm
        .as_ref()
        .filter(|_| app.config.llm.extractor.uses_llm());
    if let Some(llm) = llm {
        parts.push(llm.model());
    }
    let lineage = artefact::lineage(&parts);
    artefact::key(
        content_sha256,
        &format!(
            "entities-{}-{lineage}-b{:04}",
            extractor_id(app),
            batch.index
        ),
    )
}

/// Extracts the mentions of one batch of chunks.
///
/// # Errors
/// The chunks artefact is missing or the batch lies outside it; the blob store failed; the
/// LLM failed on a chunk ([`StageError::Llm`]: the batch, and so the document, fails; no
/// partial result is kept).
#[tracing::instrument(skip_all, fields(document_uuid = %input.document.document_uuid, stage = "extract_entities", batch = input.batch.index))]
pub async fn run(app: &App, input: Input) -> Result<Output, StageError> {
    input.document.validate()?;
    let batch = input.batch;
    let key = artefact_key(app, &input.document.content_sha256, &input.chunks, &batch);
    let meter = Meter::new(app.config.prices);
    let mut work = Work::default();
    let mut dropped = 0;
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
        let extracted = extract_chunks(app, mine, &meter).await;
        work = extracted.work;
        dropped = extracted.dropped;
        let llm_usage = extracted.llm_usage;
        // A partial batch is never written: the artefact would keep the gap forever.
        let per_chunk = extracted
            .per_chunk
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BatchMentions {
            chunks: mine.iter().map(|c| c.id.clone()).zip(per_chunk).collect(),
            llm_usage,
        })
    })
    .await
    // The calls made before the failure were received (and billed): the ledger counts them.
    .map_err(|e| e.with_usage(meter.ledger()))?;
    if produced.reused {
        work = Work {
            computed: 0,
            reused: batch.count as u64,
        };
        for u in &produced.value.llm_usage {
            meter.llm_avoided(u.prompt_tokens, u.completion_tokens);
        }
    }
    Ok(Output {
        artefact: key,
        batch: batch.index,
        mentions: produced.value.chunks.iter().map(|(_, m)| m.len()).sum(),
        work,
        dropped_spans: dropped,
        usage: meter.ledger(),
    })
}

/// What [`extract_chunks`] found.
#[derive(Debug)]
pub struct Extracted {
    /// Per chunk, in order: its mentions, or why extraction failed on it (never cached).
    pub per_chunk: Vec<Result<Vec<RawMention>, StageError>>,
    /// Chunks extracted now or reused from the cache.
    pub work: Work,
    /// LLM quotes that could not be found in their chunk's text (dropped).
    pub dropped: u64,
    /// What the LLM answer of each chunk asked of it cost when it was made.
    pub llm_usage: Vec<Usage>,
}

/// One chunk's LLM mentions as the per-chunk cache keeps them: with the quotes dropped and
/// what the answer cost, so that a hit knows what it saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LlmChunk {
    mentions: Vec<RawMention>,
    dropped: u64,
    usage: Usage,
}

/// Extracts every chunk concurrently through the per-chunk cache, with the extractor
/// `LEXPIPE_EXTRACTOR` chooses. The rules run as blocking work; the LLM is asked through
/// [`App::ask_llm`] (its own response cache behind this one), its calls recorded in
/// `meter`.
pub async fn extract_chunks(app: &App, chunks: &[Chunk], meter: &Meter) -> Extracted {
    let choice = if app.llm.is_some() {
        app.config.llm.extractor
    } else {
        ExtractorChoice::Rules
    };
    let futures = chunks.iter().map(|chunk| async move {
        let mut reused = true;
        let mut dropped = 0;
        let rules = if choice.uses_rules() {
            match rules_chunk(app, chunk).await {
                Ok((m, hit)) => {
                    reused &= hit;
                    Some(m)
                }
                Err(e) => return (Err(e), false, 0, None),
            }
        } else {
            None
        };
        let mut usage = None;
        let llm = if choice.uses_llm() {
            match llm_chunk(app, chunk, meter).await {
                Ok((c, hit)) => {
                    reused &= hit;
                    dropped = c.dropped;
                    usage = Some(c.usage);
                    Some(c.mentions)
                }
                Err(e) => return (Err(e), false, 0, None),
            }
        } else {
            None
        };
        let mentions = match (rules, llm) {
            (Some(r), Some(l)) => llm_extract::merge(r, l),
            (Some(r), None) => r,
            (None, Some(l)) => l,
            (None, None) => Vec::new(),
        };
        (Ok(mentions), reused, dropped, usage)
    });
    let results = futures::future::join_all(futures).await;
    let mut out = Extracted {
        per_chunk: Vec::with_capacity(chunks.len()),
        work: Work::default(),
        dropped: 0,
        llm_usage: Vec::new(),
    };
    for (chunk, (result, reused, dropped, usage)) in chunks.iter().zip(results) {
        out.llm_usage.extend(usage);
        if reused && result.is_ok() {
            out.work.reused += 1;
        } else {
            out.work.computed += 1;
        }
        out.dropped += dropped;
        if let Err(e) = &result {
            tracing::error!(chunk = %chunk.id, error = %e, "entity extraction failed for a chunk");
        }
        out.per_chunk.push(result);
    }
    out
}

/// One chunk by the rules, through the per-chunk cache; true when reused.
async fn rules_chunk(app: &App, chunk: &Chunk) -> Result<(Vec<RawMention>, bool), StageError> {
    let spec = CacheSpec {
        namespace: NAMESPACE,
        key: cache_key(app, chunk),
        schema: SCHEMA,
        ttl: app.config.cache.ttl_entities,
    };
    let extractor = app.extractor.clone();
    let text = chunk.text.clone();
    let got = app
        .cache
        .get_or_compute(&spec, || async move {
            app.run_cpu("extract_entities", move || extractor.extract(&text))
                .await
        })
        .await
        .map_err(|e| StageError::Internal {
            stage: "extract_entities",
            message: format!("the extractor failed on chunk {}: {e}", chunk.id),
        })?;
    Ok((got.value, got.source.is_cached()))
}

/// One chunk by the LLM, through the per-chunk cache; true when reused. A hit records the
/// LLM call it avoided.
async fn llm_chunk(
    app: &App,
    chunk: &Chunk,
    meter: &Meter,
) -> Result<(LlmChunk, bool), StageError> {
    let Some(llm) = &app.llm else {
        return Err(StageError::Internal {
            stage: "extract_entities",
            message: "the LLM extractor was chosen but no LLM client exists".into(),
        });
    };
    let spec = CacheSpec {
        namespace: NAMESPACE,
        key: chunk_key(app, chunk, &llm_id(llm)),
        schema: SCHEMA,
        ttl: app.config.cache.ttl_entities,
    };
    let got = app
        .cache
        .get_or_compute(&spec, || async {
            let answer = app
                .ask_llm(&llm_extract::entity_request(&chunk.text), meter)
                .await
                .map_err(|e| StageError::Llm {
                    scope: format!("chunk {}", chunk.id),
                    source: e,
                })?;
            let located = llm_extract::locate(&chunk.text, &answer.value);
            if located.dropped > 0 {
                tracing::debug!(chunk = %chunk.id, dropped = located.dropped, "LLM quotes not found in the chunk were dropped");
            }
            Ok::<_, StageError>(LlmChunk {
                mentions: located.mentions,
                dropped: located.dropped as u64,
                usage: answer.usage,
            })
        })
        .await?;
    let hit = got.source.is_cached();
    if hit {
        meter.llm_avoided(
            got.value.usage.prompt_tokens,
            got.value.usage.completion_tokens,
        );
    }
    Ok((got.value, hit))
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
