//! `extract-structured`: document metadata — type, court, case numbers, parties, dates,
//! amounts, statutes — drawn by rules from the resolved entities and the first page's
//! wording; with the LLM on (`LEXPIPE_EXTRACTOR=llm|both`), one LLM call per chunk (the
//! chunks `extract-entities` read, with `[page N]` marks), merged per document, adds
//! parties with roles, judge, filing and key dates, amounts, key facts with pages and
//! relationships between canonical entities ([`crate::extract::llm`]). Every page of a long
//! document is read, and each chunk's request depends on its text alone: after an edit,
//! the unchanged chunks are answered by the LLM response cache (`llm:v1:{model}:{sha256 of
//! the request}`, which covers the chunk text, model, settings and prompt version), so only
//! the changed chunks call the LLM; the merged description is cached per document under
//! `structured:v1:{sha}:{inputs}:{model version}`. `model_version` is
//! `rules-{VERSION}` or `llm-p{prompt}-{model}-{settings}`, and is in the artefact
//! (`processed/{sha}/structured-{model_version}-{lineage}.json.zst`) and cache keys, so
//! that a model change misses.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::cost::{Ledger, Meter};
use crate::extract::llm as llm_extract;
use crate::llm::JsonRequest;
use crate::model::{
    CanonicalEntity, Chunk, EntityKind, Mention, OcrResult, PAGE_SEPARATOR, StructuredData,
};
use crate::redis::{CacheSpec, KeyPart};

use super::resolve::Resolution;
use super::{DocumentRef, Pointer, StageError, Work};
use super::{artefact, chunk};

/// Bump when the rules change.
pub const VERSION: u32 = 1;

/// Input of `extract-structured`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub document: DocumentRef,
    pub ocr: Pointer,
    pub resolution: Pointer,
}

/// Output of `extract-structured`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// Key of the structured artefact (a [`StructuredData`]).
    pub artefact: String,
    pub document_type: String,
    pub work: Work,
    /// LLM calls made and avoided.
    #[serde(default, skip_serializing_if = "Ledger::is_empty")]
    pub usage: Ledger,
}

/// Namespace of cached document descriptions.
pub const NAMESPACE: &str = "structured";
/// Bump when the stored shape changes.
pub const SCHEMA: u32 = 1;

/// `llm-p{prompt}-{model}-{settings}` of the LLM description, when the LLM is asked.
pub fn llm_model_version(app: &App) -> Option<String> {
    let llm = app
        .llm
        .as_ref()
        .filter(|_| app.config.llm.extractor.uses_llm())?;
    Some(format!(
        "llm-p{}-{}-{}",
        llm_extract::STRUCTURED_PROMPT_VERSION,
        llm.model_slug(),
        llm.settings_id()
    ))
}

/// Draws the document's metadata: by the rules, then, when the LLM is on, the merged
/// description of its chunks laid over them (cached under `structured:v1:{sha}:{inputs}:
/// {model version}`, so that another model or prompt misses).
///
/// # Errors
/// An artefact is missing; the blob store failed; the LLM failed ([`StageError::Llm`]).
#[tracing::instrument(skip_all, fields(document_uuid = %input.document.document_uuid, stage = "extract_structured"))]
pub async fn run(app: &App, input: Input) -> Result<Output, StageError> {
    input.document.validate()?;
    let ocr_key = input.ocr.required("ocr")?;
    let res_key = input.resolution.required("resolution")?;
    let sha = &input.document.content_sha256;
    let model_version = llm_model_version(app);
    // With the LLM, the exact model name joins the lineage (the version carries only a
    // file-safe slug of it); the rules' keys are as they always were.
    let mut parts = vec![ocr_key.as_str(), res_key.as_str()];
    if let Some(llm) = app.llm.as_ref().filter(|_| model_version.is_some()) {
        parts.push(llm.model());
    }
    let lineage = artefact::lineage(&parts);
    let engine = model_version
        .clone()
        .unwrap_or_else(|| format!("rules-{VERSION}"));
    let key = artefact::key(sha, &format!("structured-{engine}-{lineage}"));
    let spec = model_version.as_ref().map(|mv| CacheSpec {
        namespace: NAMESPACE,
        key: app.cache.keys().key(
            NAMESPACE,
            SCHEMA,
            &[KeyPart::Digest(sha), KeyPart::Id(&lineage), KeyPart::Id(mv)],
        ),
        schema: SCHEMA,
        ttl: app.config.cache.ttl_llm,
    });
    let meter = Meter::new(app.config.prices);
    let produced = artefact::produce(app, &key, spec.as_ref(), || async {
        let ocr: OcrResult = artefact::load(app, &ocr_key).await?;
        let res: Resolution = artefact::load(app, &res_key).await?;
        let first_page = ocr.pages.first().map(|p| p.text.as_str()).unwrap_or("");
        let rules = from_rules(first_page, &res.mentions, &res.entities);
        let Some(mv) = model_version.clone() else {
            return Ok(rules);
        };
        let chunks: Vec<Chunk> =
            artefact::load(app, &chunk::artefact_key(app, sha, &ocr_key)).await?;
        let answers = describe_chunks(app, &ocr, &chunks, &meter).await?;
        Ok(llm_extract::apply_structured(
            rules,
            &llm_extract::merge_structured(&answers),
            &res.entities,
            mv,
        ))
    })
    .await
    // The calls made before the failure were received (and billed): the ledger counts them.
    .map_err(|e| e.with_usage(meter.ledger()))?;
    Ok(Output {
        artefact: key,
        document_type: produced.value.document_type.clone(),
        work: Work::one(produced.reused),
        usage: meter.ledger(),
    })
}

/// The LLM's description of every chunk, in order: one request per chunk (its text with
/// `[page N]` marks), through the LLM response cache, so that a chunk already described
/// (in this document, an earlier version of it, or another) costs no call. The requests go
/// out together; the shared rate limits pace them.
///
/// # Errors
/// The LLM failed on a chunk ([`StageError::Llm`] naming it).
async fn describe_chunks(
    app: &App,
    ocr: &OcrResult,
    chunks: &[Chunk],
    meter: &Meter,
) -> Result<Vec<serde_json::Value>, StageError> {
    let starts = page_starts(ocr);
    let requests: Vec<(String, JsonRequest)> = chunks
        .iter()
        .map(|c| {
            let req = llm_extract::chunk_structured_request(&with_page_marks(c, &starts));
            (c.id.clone(), req)
        })
        .collect();
    futures::future::try_join_all(requests.iter().map(|(id, req)| async move {
        app.ask_llm(req, meter)
            .await
            .map(|answer| answer.value)
            .map_err(|e| StageError::Llm {
                scope: format!("chunk {id}"),
                source: e,
            })
    }))
    .await
}

/// Each page's number and the character offset where it starts in the document text
/// ([`OcrResult::full_text`]).
fn page_starts(ocr: &OcrResult) -> Vec<(u32, usize)> {
    let mut at = 0;
    ocr.pages
        .iter()
        .map(|p| {
            let start = at;
            at += p.text.chars().count() + PAGE_SEPARATOR.chars().count();
            (p.number, start)
        })
        .collect()
}

/// The chunk's text introduced by `[page N]`, and each page that starts inside it too.
fn with_page_marks(chunk: &Chunk, starts: &[(u32, usize)]) -> String {
    let first = starts
        .iter()
        .rev()
        .find(|(_, s)| *s <= chunk.start)
        .map_or(1, |(n, _)| *n);
    let mut out = format!("[page {first}]\n");
    let mut inside = starts
        .iter()
        .filter(|(_, s)| *s > chunk.start && *s < chunk.end)
        .peekable();
    for (i, ch) in chunk.text.chars().enumerate() {
        if let Some((n, _)) = inside.next_if(|(_, s)| *s == chunk.start + i) {
            out.push_str(&format!("[page {n}]\n"));
        }
        out.push(ch);
    }
    out
}

/// The metadata the rules find.
pub fn from_rules(
    first_page: &str,
    mentions: &[Mention],
    entities: &[CanonicalEntity],
) -> StructuredData {
    let document_type = crate::extract::doctype::document_type(first_page).to_string();
    // Values of one kind in order of first mention, each once.
    let ordered = |kind: EntityKind| -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        mentions
            .iter()
            .filter(|m| m.kind == kind)
            .filter(|m| seen.insert(m.normalized.clone()))
            .map(|m| m.normalized.clone())
            .collect()
    };
    let mut parties: Vec<&CanonicalEntity> = entities
        .iter()
        .filter(|e| matches!(e.kind, EntityKind::Person | EntityKind::Org))
        .collect();
    parties.sort_by(|a, b| {
        b.mention_ids
            .len()
            .cmp(&a.mention_ids.len())
            .then(a.id.cmp(&b.id))
    });
    let court = entities
        .iter()
        .filter(|e| e.kind == EntityKind::Court)
        .max_by(|a, b| {
            a.mention_ids
                .len()
                .cmp(&b.mention_ids.len())
                .then(b.id.cmp(&a.id))
        })
        .map(|e| e.name.clone());
    StructuredData {
        document_type,
        court,
        case_numbers: ordered(EntityKind::CaseNumber),
        parties: parties
            .into_iter()
            .take(10)
            .map(|e| e.name.clone())
            .collect(),
        dates: ordered(EntityKind::Date),
        amounts: ordered(EntityKind::Money),
        statutes: ordered(EntityKind::Statute),
        model_version: format!("rules-{VERSION}"),
        ..StructuredData::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mention(id: &str, kind: EntityKind, norm: &str) -> Mention {
        Mention {
            id: id.into(),
            kind,
            text: norm.into(),
            normalized: norm.into(),
            start: 0,
            end: 1,
            confidence: 0.9,
            chunk_id: "c0".into(),
        }
    }

    #[test]
    fn a_chunk_is_introduced_by_its_page_and_marks_each_page_starting_inside_it() {
        let ocr = OcrResult {
            method: "pdf_text-2".into(),
            pages: vec![
                crate::model::Page::from_text_layer(1, "abc".into()),
                crate::model::Page::from_text_layer(2, "def".into()),
                crate::model::Page::from_text_layer(3, "ghi".into()),
            ],
        };
        let full = ocr.full_text();
        let chunk = |start: usize, end: usize| Chunk {
            id: "c".into(),
            index: 0,
            start,
            end,
            sha256: String::new(),
            text: full.chars().skip(start).take(end - start).collect(),
        };
        let starts = page_starts(&ocr);
        assert_eq!(starts, vec![(1, 0), (2, 5), (3, 10)]);
        assert_eq!(
            with_page_marks(&chunk(1, 8), &starts),
            "[page 1]\nbc\n\n[page 2]\ndef"
        );
        assert_eq!(with_page_marks(&chunk(10, 13), &starts), "[page 3]\nghi");
    }

    #[test]
    fn a_motion_with_a_court_and_a_case_number_is_described_as_such() {
        let mentions = vec![
            mention("m0", EntityKind::Court, "Superior Court"),
            mention("m1", EntityKind::CaseNumber, "CV-2024-001"),
            mention("m2", EntityKind::Date, "2024-03-15"),
            mention("m3", EntityKind::Date, "2024-03-15"),
            mention("m4", EntityKind::Money, "USD 100.00"),
        ];
        let entities = vec![CanonicalEntity {
            id: "e0".into(),
            kind: EntityKind::Court,
            name: "Superior Court".into(),
            aliases: vec!["Superior Court".into()],
            mention_ids: vec!["m0".into()],
        }];
        let s = from_rules("DEFENDANT'S MOTION TO DISMISS", &mentions, &entities);
        assert_eq!(s.document_type, "motion");
        assert_eq!(s.court.as_deref(), Some("Superior Court"));
        assert_eq!(s.case_numbers, vec!["CV-2024-001"]);
        assert_eq!(s.dates, vec!["2024-03-15"], "each date once");
        assert_eq!(s.amounts, vec!["USD 100.00"]);
        assert_eq!(s.model_version, "rules-1");
        assert_eq!(from_rules("", &[], &[]).document_type, "unknown");
    }
}
