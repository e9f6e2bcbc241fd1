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
}

impl EntityKind {
    /// Every kind, in a stable order (reports and tests iterate over it).
    pub const ALL: [EntityKind; 10] = [
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
        }
    }
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One page of OCR output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// 1-based page number.
    pub number: u32,
    /// The page's text (may be empty).
    pub text: String,
    /// False when the page has no text layer (a scan): real OCR fills it in a later stage.
    pub has_text_layer: bool,
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
