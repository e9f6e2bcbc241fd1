//! `resolve-entities`: the batches' mentions placed in the document, then resolved into
//! canonical entities; cached by a hash of the mention set (and the resolver version),
//! so an unchanged document is not resolved again. The artefact
//! (`processed/{sha}/resolution-r{RESOLVER_VERSION}-{context}.json.zst`) holds both the
//! placed mentions and the entities.
//!
//! With `LEXPIPE_LLM_ADJUDICATE`, PERSON/ORG entities the rules kept apart whose names are
//! close by Jaro-Winkler ([`crate::resolve::ambiguous_pairs`]) are put to the LLM in one
//! call, and those it calls the same are joined; the adjudicator (prompt, model, settings)
//! is then part of the context hash, so the cache and artefact keys change with it.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::cost::{Ledger, Meter};
use crate::extract::llm as llm_extract;
use crate::model::{CanonicalEntity, Chunk, Mention};
use crate::redis::{CacheSpec, KeyPart};
use crate::resolve::{RESOLVER_VERSION, ambiguous_pairs, join_entities, resolve};
use crate::text::sha256_hex;

use super::artefact;
use super::entities::{self, BatchMentions};
use super::{DocumentRef, StageError, Work};

/// Namespace of resolution results.
pub const NAMESPACE: &str = "resolution";
/// Bump when the stored shape changes. 2: mentions stored beside the entities.
pub const SCHEMA: u32 = 2;

/// The chunk step's output, as far as this step reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunksPointer {
    pub artefact: String,
}

/// A batch's output, as far as this step reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchPointer {
    pub artefact: String,
    /// Mentions in the batch (for the document state's count).
    #[serde(default)]
    pub mentions: u64,
}

/// Input of `resolve-entities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub document: DocumentRef,
    pub chunks: ChunksPointer,
    /// The Map's results, in batch order.
    pub entities: Vec<BatchPointer>,
}

/// Output of `resolve-entities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// Key of the resolution artefact (a [`Resolution`]).
    pub artefact: String,
    pub mentions: usize,
    pub entities: usize,
    pub work: Work,
    /// LLM calls made and avoided (adjudication).
    #[serde(default, skip_serializing_if = "Ledger::is_empty")]
    pub usage: Ledger,
}

/// `adjudicate-p{prompt}-{model}-{settings}` when the LLM adjudicates ambiguous entities.
pub fn adjudicator_id(app: &App) -> Option<String> {
    let llm = app.llm.as_ref().filter(|_| app.config.llm.adjudicate)?;
    Some(format!(
        "adjudicate-p{}-{}-{}",
        llm_extract::ADJUDICATION_PROMPT_VERSION,
        llm.model(),
        llm.settings_id()
    ))
}

/// The artefact: mentions placed in the document and the entities they resolve to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub mentions: Vec<Mention>,
    pub entities: Vec<CanonicalEntity>,
}

/// Hash of everything that changes the resolution: the resolver version and, for each
/// mention, its id, kind, text, normalised value and position.
pub fn context_hash(mentions: &[Mention]) -> String {
    let mut buf = format!("resolver-{RESOLVER_VERSION}\n");
    for m in mentions {
        buf.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            m.id, m.kind, m.start, m.end, m.text, m.normalized
        ));
    }
    sha256_hex(buf)
}

/// Places the mentions of every batch and resolves them.
///
/// # Errors
/// An artefact is missing; the blob store failed.
#[tracing::instrument(skip_all, fields(document_uuid = %input.document.document_uuid, stage = "resolve_entities"))]
pub async fn run(app: &App, input: Input) -> Result<Output, StageError> {
    input.document.validate()?;
    let sha = &input.document.content_sha256;
    let chunks: Vec<Chunk> = artefact::load(app, &input.chunks.artefact).await?;
    let by_id: std::collections::HashMap<&str, &Chunk> =
        chunks.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut per_chunk = Vec::with_capacity(chunks.len());
    for b in &input.entities {
        let batch: BatchMentions = artefact::load(app, &b.artefact).await?;
        for (id, raws) in batch.chunks {
            let chunk = by_id
                .get(id.as_str())
                .ok_or_else(|| StageError::InvalidInput {
                    message: format!(
                        "batch {} names chunk {id}, which is not in the document",
                        b.artefact
                    ),
                })?;
            per_chunk.push((*chunk, raws));
        }
    }
    let mentions = entities::place_mentions(&per_chunk);
    let adjudicator = adjudicator_id(app);
    let ctx = match &adjudicator {
        None => context_hash(&mentions),
        Some(id) => sha256_hex(format!("{}\n{id}", context_hash(&mentions))),
    };
    let meter = Meter::new(app.config.prices);
    let spec = CacheSpec {
        namespace: NAMESPACE,
        key: app.cache.keys().key(
            NAMESPACE,
            SCHEMA,
            &[KeyPart::Digest(sha), KeyPart::Digest(&ctx)],
        ),
        schema: SCHEMA,
        ttl: app.config.cache.ttl_resolution,
    };
    let key = artefact::key(
        sha,
        &format!("resolution-r{RESOLVER_VERSION}-{}", &ctx[..16]),
    );
    let produced = artefact::produce(app, &key, Some(&spec), || async {
        let mut entities = resolve(&mentions);
        let pairs = ambiguous_pairs(&entities);
        if adjudicator.is_some() && !pairs.is_empty() {
            let req = llm_extract::adjudication_request(&entities, &pairs);
            let answer = app
                .ask_llm(&req, &meter)
                .await
                .map_err(|e| StageError::Llm {
                    scope: "the entity resolution".into(),
                    source: e,
                })?;
            let same = llm_extract::same_pairs(&answer.value, &pairs);
            entities = join_entities(&mentions, &entities, &same);
        }
        Ok(Resolution {
            mentions: mentions.clone(),
            entities,
        })
    })
    .await
    // The calls made before the failure were received (and billed): the ledger counts them.
    .map_err(|e| e.with_usage(meter.ledger()))?;
    Ok(Output {
        artefact: key,
        mentions: produced.value.mentions.len(),
        entities: produced.value.entities.len(),
        work: Work::one(produced.reused),
        usage: meter.ledger(),
    })
}
