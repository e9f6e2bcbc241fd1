//! The data that flows between stages and into the output files.
//!
//! Offsets everywhere are **character offsets** (Unicode scalar values, what Python's
//! `str` and most consumers index by) into [`OcrResult::full_text`], end-exclusive.
//! Use [`crate::text::char_to_byte`] / [`crate::text::byte_to_char`] to convert.

use serde::{Deserialize, Serialize};

/// Kinds of entity the extractors recognise. Serialised in SCREAMING_SNAKE_CASE
/// (`"CASE_NUMBER"`), which is also what LLM prompts and the database use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityKind {
    Person,
    Org,
    Location,
    Date,
    Money,
    Court,
    CaseNumber,
    Statute,
    Email,
    Phone,
    /// A reporter citation of a decision: `550 U.S. 544, 570 (2007)`, `5 F.4th 123 (9th
    /// Cir. 2021)`, with the case name when it is written before it (`Bell Atlantic Corp.
    /// v. Twombly, 550 U.S. 544 (2007)`) and the short form `Iqbal, 556 U.S. at 678`.
    Citation,
    /// A case name standing on its own: `Delgado v. City of Alder Bay`, `In re: Acme
    /// Corp.`, `United States v. Doe`.
    CaseName,
    /// A postal address: street, P.O. box or the street-and-town lines of an address
    /// block, as one mention (`1200 Main Street, Suite 4, Springfield, IL 62701`).
    Address,
}

impl EntityKind {
    /// Every kind, in a stable order (reports and tests iterate over it).
    pub const ALL: [EntityKind; 13] = [
        EntityKind::Person,
        EntityKind::Org,
        EntityKind::Location,
        EntityKind::Date,
        EntityKind::Money,
        EntityKind::Court,
        EntityKind::CaseNumber,
        EntityKind::Statute,
        EntityKind::Email,
        EntityKind::Phone,
        EntityKind::Citation,
        EntityKind::CaseName,
        EntityKind::Address,
    ];

    /// The wire name, e.g. `CASE_NUMBER`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Person => "PERSON",
            EntityKind::Org => "ORG",
            EntityKind::Location => "LOCATION",
            EntityKind::Date => "DATE",
            EntityKind::Money => "MONEY",
            EntityKind::Court => "COURT",
            EntityKind::CaseNumber => "CASE_NUMBER",
            EntityKind::Statute => "STATUTE",
            EntityKind::Email => "EMAIL",
            EntityKind::Phone => "PHONE",
            EntityKind::Citation => "CITATION",
            EntityKind::CaseName => "CASE_NAME",
            EntityKind::Address => "ADDRESS",
        }
    }
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a page is read by image OCR rather than trusted for its text layer (see
/// [`crate::ocr::decide`] for the rules). Serialised in snake_case (`"stamp_only"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OcrReason {
    /// The page carries no text at all (a scan, or a blank page drawn as an image).
    NoTextLayer,
    /// The only text is a stamp or header line, such as the ECF header PACER stamps on
    /// every page of a scanned filing ("Case 1:19-cv-01234 Document 12 Filed … Page 1 of 9").
    StampOnly,
    /// Most of the text is not words: a broken font encoding, garbled or overlapping
    /// copies of a stamp.
    MostlyNonWords,
    /// A page that is mostly an image carries only a little text.
    LittleTextOnImage,
}

impl OcrReason {
    /// The wire name, e.g. `stamp_only`.
    pub fn as_str(self) -> &'static str {
        match self {
            OcrReason::NoTextLayer => "no_text_layer",
            OcrReason::StampOnly => "stamp_only",
            OcrReason::MostlyNonWords => "mostly_non_words",
            OcrReason::LittleTextOnImage => "little_text_on_image",
        }
    }

    /// A phrase for people (reports).
    pub fn describe(self) -> &'static str {
        match self {
            OcrReason::NoTextLayer => "no text layer",
            OcrReason::StampOnly => "only a stamp in the text layer",
            OcrReason::MostlyNonWords => "text layer is mostly not words",
            OcrReason::LittleTextOnImage => "little text on an image page",
        }
    }
}

impl std::fmt::Display for OcrReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One page of OCR output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// 1-based page number.
    pub number: u32,
    /// The page's text (may be empty): the text layer's, or image OCR's when
    /// `ocr_reason` is set and an engine read it.
    pub text: String,
    /// False when the page has no text layer (a scan).
    pub has_text_layer: bool,
    /// Why the text layer was not trusted and the page needs image OCR; `None` when the
    /// text layer is the page's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocr_reason: Option<OcrReason>,
    /// The engine whose text this is, when image OCR read the page (`tesseract`,
    /// `textract`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocr_engine: Option<String>,
    /// Mean word (Tesseract) or line (Textract) confidence of the OCR text, 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocr_confidence: Option<f32>,
    /// Why a page that needs OCR could not be read by it (OCR tools missing…): its text
    /// is then the text layer's, which is not its content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocr_error: Option<String>,
}

impl Page {
    /// A page as the text layer gives it, before any OCR decision.
    pub fn from_text_layer(number: u32, text: String) -> Page {
        Page {
            number,
            has_text_layer: !text.is_empty(),
            text,
            ..Page::default()
        }
    }

    /// The page needs image OCR and none has read it yet.
    pub fn awaits_ocr(&self) -> bool {
        self.ocr_reason.is_some() && self.ocr_engine.is_none()
    }
}

/// What the OCR stage produces for one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcrResult {
    /// How the text was obtained: `pdf_text` locally, `textract` in the cloud.
    pub method: String,
    pub pages: Vec<Page>,
}

/// Separator placed between pages in [`OcrResult::full_text`].
pub const PAGE_SEPARATOR: &str = "\n\n";

impl OcrResult {
    /// The document text every offset refers to: page texts joined by [`PAGE_SEPARATOR`].
    pub fn full_text(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.pages.iter().enumerate() {
            if i > 0 {
                out.push_str(PAGE_SEPARATOR);
            }
            out.push_str(&p.text);
        }
        out
    }

    /// Pages that have no text layer (candidates for image OCR).
    pub fn pages_without_text(&self) -> Vec<u32> {
        self.pages
            .iter()
            .filter(|p| !p.has_text_layer)
            .map(|p| p.number)
            .collect()
    }

    /// Pages whose text layer is not their content ([`Page::ocr_reason`] set), whether
    /// OCR has read them since or not.
    pub fn pages_needing_ocr(&self) -> Vec<u32> {
        self.pages
            .iter()
            .filter(|p| p.ocr_reason.is_some())
            .map(|p| p.number)
            .collect()
    }

    /// Pages that need OCR and were not read by it (no engine, tools missing, an engine
    /// error on the page).
    pub fn pages_unread(&self) -> Vec<u32> {
        self.pages
            .iter()
            .filter(|p| p.awaits_ocr() || p.ocr_error.is_some())
            .map(|p| p.number)
            .collect()
    }
}

/// A slice of the document text that extraction works on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Stable id derived from the content: the first 16 hex digits of `sha256`
    /// plus the index, so two identical paragraphs in one document stay distinct.
    pub id: String,
    /// 0-based position in the document.
    pub index: usize,
    /// Character offsets into the document text, end-exclusive.
    pub start: usize,
    pub end: usize,
    /// Hex SHA-256 of `text`: the key of the per-chunk entity cache.
    pub sha256: String,
    pub text: String,
}

/// An entity found by an extractor, offsets relative to the text it was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawMention {
    pub kind: EntityKind,
    /// The exact text at `start..end`.
    pub text: String,
    /// Normalised value: ISO-8601 date for DATE (`2024-03-15`), `"USD 1250000.00"` for
    /// MONEY, digits with a leading `+` and country code where known for PHONE, lower-case
    /// for EMAIL, the cleaned text otherwise.
    pub normalized: String,
    /// Character offsets into the text given to the extractor, end-exclusive.
    pub start: usize,
    pub end: usize,
    /// 0.0..=1.0
    pub confidence: f32,
}

/// A mention placed in the document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mention {
    /// `m{index}`, stable for a given document text and extractor.
    pub id: String,
    pub kind: EntityKind,
    pub text: String,
    pub normalized: String,
    /// Character offsets into the document text, end-exclusive.
    pub start: usize,
    pub end: usize,
    pub confidence: f32,
    /// The chunk the mention was found in (the first one, where chunks overlap).
    pub chunk_id: String,
}

/// Mentions that refer to the same real-world thing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanonicalEntity {
    /// `e{index}`, stable for a given mention list.
    pub id: String,
    pub kind: EntityKind,
    /// The best name for the entity (the longest, most complete surface form).
    pub name: String,
    /// Every distinct surface form seen, `name` included, sorted.
    pub aliases: Vec<String>,
    /// Ids of the mentions that belong to it.
    pub mention_ids: Vec<String>,
}

/// Namespace of document UUIDs (v5 of the content hash): the same bytes are the same
/// document wherever and under whatever name they arrive.
pub const DOCUMENT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c65_7870_6970_6500_8000_0000_0000_0001);

/// The UUID of a document with this content hash.
pub fn document_uuid(content_sha256: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&DOCUMENT_NAMESPACE, content_sha256.as_bytes())
}

/// The per-document result: what the JSON output file holds and what is persisted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DocumentOutput {
    pub document_uuid: String,
    pub source: String,
    pub content_sha256: String,
    pub ocr_method: String,
    pub pages: Vec<Page>,
    pub chunks: Vec<ChunkOutput>,
    pub mentions: Vec<Mention>,
    pub entities: Vec<CanonicalEntity>,
    /// Document-level structured data (type, court, case numbers, parties, dates,
    /// amounts), when the structured step produced any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured: Option<StructuredData>,
    pub producer: String,
}

/// A chunk in the output file (its text is `text[start..end]` of the pages joined).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChunkOutput {
    pub id: String,
    pub index: usize,
    pub start: usize,
    pub end: usize,
    pub sha256: String,
}

impl From<&Chunk> for ChunkOutput {
    fn from(c: &Chunk) -> ChunkOutput {
        ChunkOutput {
            id: c.id.clone(),
            index: c.index,
            start: c.start,
            end: c.end,
            sha256: c.sha256.clone(),
        }
    }
}

/// Document metadata drawn from the resolved entities and the text: what a reader asks
/// first (what is it, which court, which case, who, when, how much).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StructuredData {
    /// `complaint`, `motion`, `order`, `contract`, `letter`, `deposition`, … or `unknown`.
    pub document_type: String,
    pub court: Option<String>,
    pub case_numbers: Vec<String>,
    /// People and organisations, most mentioned first.
    pub parties: Vec<String>,
    /// ISO-8601 dates, in order of first mention.
    pub dates: Vec<String>,
    /// Normalised amounts (`USD 1250000.00`), in order of first mention.
    pub amounts: Vec<String>,
    pub statutes: Vec<String>,
    /// Name and version of what produced it (`rules-1`, or `llm-p{prompt}-{model}-{settings}`).
    pub model_version: String,
    /// The LLM's further findings (empty or absent with the rules alone).
    /// Parties with their role (`plaintiff`, `defendant`, `lessor`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub party_roles: Vec<PartyRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<String>,
    /// ISO-8601 filing date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filing_date: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_dates: Vec<KeyDate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_amounts: Vec<KeyAmount>,
    /// Facts a reader needs, each with the page it is on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_facts: Vec<KeyFact>,
    /// Relationships between entities, linked to the canonical entities they name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relationships: Vec<EntityRelation>,
}

/// A party and its role in the document.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PartyRole {
    pub name: String,
    pub role: String,
}

/// A date and what happens on it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KeyDate {
    pub date: String,
    pub event: String,
}

/// An amount and what it is for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KeyAmount {
    pub amount: String,
    pub description: String,
}

/// A fact stated in the document, and the 1-based page it is on (when known).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KeyFact {
    pub fact: String,
    pub page: Option<u32>,
}

/// `subject predicate object` between two named things (`Jane Roe` `represents` `Acme
/// Corp.`), with the canonical entities (`e3`) the names resolve to, when they do.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EntityRelation {
    pub subject: String,
    pub predicate: String,
    pub object: String,
    #[serde(default)]
    pub subject_entity: Option<String>,
    #[serde(default)]
    pub object_entity: Option<String>,
}

/// Status of a document wherever it is recorded, in one vocabulary: PostgreSQL
/// (`documents.status`, `processing_queue.status`, both constrained to these words by
/// `shared/migrations/0003_one_status_vocabulary.sql`), the Redis document state
/// (`doc_state` and the `doc_index:v2:{dsNN}:{status}` sets, see [`crate::redis::state`]), and the
/// `--json` summary of `lexpipe process` ([`crate::runner::DocumentSummary`]). Serialised
/// and stored as [`DocumentStatus::as_str`]: `queued`, `running`, `completed`, `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentStatus {
    /// Known, not started.
    Queued,
    /// A run is working on it.
    Running,
    Completed,
    Failed,
}

impl DocumentStatus {
    /// Every status. The Redis state scripts take the index keys in this order
    /// (`state_common.lua`): do not reorder.
    pub const ALL: [DocumentStatus; 4] = [
        DocumentStatus::Queued,
        DocumentStatus::Running,
        DocumentStatus::Completed,
        DocumentStatus::Failed,
    ];

    /// The name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::Queued => "queued",
            DocumentStatus::Running => "running",
            DocumentStatus::Completed => "completed",
            DocumentStatus::Failed => "failed",
        }
    }

    /// Reads a name as printed by [`DocumentStatus::as_str`].
    pub fn parse(s: &str) -> Option<DocumentStatus> {
        DocumentStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Completed or failed: nothing more happens without a new run.
    pub fn is_terminal(self) -> bool {
        matches!(self, DocumentStatus::Completed | DocumentStatus::Failed)
    }
}

impl std::fmt::Display for DocumentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_status_serialises_as_the_word_it_is_stored_under() {
        for status in DocumentStatus::ALL {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
            assert_eq!(DocumentStatus::parse(status.as_str()), Some(status));
            assert_eq!(format!("{status}"), status.as_str());
        }
        assert_eq!(DocumentStatus::parse("processing"), None);
    }
}
