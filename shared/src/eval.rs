//! Extraction quality against hand-labelled documents: precision and recall per entity kind.
//!
//! `lexpipe eval EXPECTED OUTPUT_DIR` and the corpus tests use this module to compare what
//! the pipeline wrote (the per-document [`DocumentOutput`] JSON files) with what a careful
//! reader lists for each document (an expected-entities file, the format of
//! `samples/expected_entities.json` and `tests/corpus/expected_entities.json`).
//!
//! ## The expected-entities file
//!
//! A JSON object keyed by file name. Each value is either `{"duplicate_of": "other.pdf"}`
//! (a byte-identical copy, not scored) or an object with `entities`, a list of
//! `{"kind": "PERSON", "text": "…", "normalized": "…"}` (`normalized` optional), and
//! optionally `labelled_pages`, the 1-based pages whose every entity was listed (all pages
//! when absent). Other fields (`document_type`, `pages`, `note`) are ignored here.
//!
//! ## How a mention matches an expected entity
//!
//! Text is compared after [`normalize`]: lower case, every run of whitespace one space,
//! typographic apostrophes, quotes and dashes read as their ASCII forms, and the ends
//! trimmed of whitespace and of `,` `;` `:`. Only mentions of the same kind are compared.
//!
//! - **Recall.** An expected entity is *found* if some mention of the document, anywhere
//!   in it, has the same normalised text, or a normalised value equal to the expected
//!   entity's normalised `normalized` (or text, when no `normalized` is given).
//! - **Precision.** The distinct (kind, normalised text) mentions that start on a labelled
//!   page are scored. One is *correct* if it matches an expected entity as above, or is a
//!   whole-word short form of one (`Smith` of `John Smith`, `Acme` of `Acme Corp.`): a
//!   later reference to a listed entity is not a false positive. A mention longer than the
//!   entity it contains is wrong.
//!
//! Counting distinct texts, not occurrences, keeps a name repeated fifty times in a
//! transcript from weighing fifty times. Overall figures are micro-averages over every
//! kind. The report never judges: thresholds belong to the tests that use it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::Value;

use crate::model::{DocumentOutput, EntityKind, PAGE_SEPARATOR};

/// One entity a reader listed for a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedEntity {
    pub kind: EntityKind,
    pub text: String,
    pub normalized: Option<String>,
}

/// What the expected-entities file says about one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedDocument {
    pub entities: Vec<ExpectedEntity>,
    /// 1-based pages whose entities were all listed; `None` means every page.
    pub labelled_pages: Option<BTreeSet<u32>>,
}

/// An expected-entities file: labelled documents by file name (copies left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub documents: BTreeMap<String, ExpectedDocument>,
    /// `(copy, original)` pairs listed with `duplicate_of`.
    pub duplicates: Vec<(String, String)>,
}

impl Expected {
    /// Parses the JSON text of an expected-entities file.
    ///
    /// # Errors
    /// On invalid JSON, an entry with neither `entities` nor `duplicate_of`, an entity
    /// without `kind` or `text`, or an unknown kind.
    pub fn parse(json: &str) -> anyhow::Result<Expected> {
        let value: Value = serde_json::from_str(json).context("parsing expected entities")?;
        let Some(files) = value.as_object() else {
            bail!("the expected-entities file is not a JSON object");
        };
        let mut expected = Expected::default();
        for (file, spec) in files {
            if let Some(original) = spec.get("duplicate_of").and_then(Value::as_str) {
                expected
                    .duplicates
                    .push((file.clone(), original.to_string()));
                continue;
            }
            let Some(list) = spec.get("entities").and_then(Value::as_array) else {
                bail!("{file}: neither `entities` nor `duplicate_of`");
            };
            let mut entities = Vec::with_capacity(list.len());
            for item in list {
                let field = |name: &str| item.get(name).and_then(Value::as_str);
                let (Some(kind), Some(text)) = (field("kind"), field("text")) else {
                    bail!("{file}: entity without kind or text: {item}");
                };
                let Some(kind) = EntityKind::ALL.into_iter().find(|k| k.as_str() == kind) else {
                    bail!("{file}: unknown entity kind {kind:?}");
                };
                entities.push(ExpectedEntity {
                    kind,
                    text: text.to_string(),
                    normalized: field("normalized").map(str::to_string),
                });
            }
            let labelled_pages =
                spec.get("labelled_pages")
                    .and_then(Value::as_array)
                    .map(|pages| {
                        pages
                            .iter()
                            .filter_map(Value::as_u64)
                            .filter_map(|p| u32::try_from(p).ok())
                            .collect()
                    });
            expected.documents.insert(
                file.clone(),
                ExpectedDocument {
                    entities,
                    labelled_pages,
                },
            );
        }
        Ok(expected)
    }

    /// Reads and parses an expected-entities file.
    ///
    /// # Errors
    /// When the file cannot be read, or as [`Expected::parse`].
    pub fn read(path: &Path) -> anyhow::Result<Expected> {
        let raw =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Expected::parse(&raw).with_context(|| format!("in {}", path.display()))
    }
}

/// Counts for one kind (or overall).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Expected entities.
    pub expected: usize,
    /// Expected entities found.
    pub found: usize,
    /// Distinct mentions scored (on labelled pages).
    pub predicted: usize,
    /// Scored mentions that match or are a short form of an expected entity.
    pub correct: usize,
}

impl Counts {
    /// Found / expected; 1.0 when nothing was expected.
    pub fn recall(&self) -> f64 {
        ratio(self.found, self.expected)
    }

    /// Correct / predicted; 1.0 when nothing was predicted.
    pub fn precision(&self) -> f64 {
        ratio(self.correct, self.predicted)
    }

    fn add(&mut self, other: Counts) {
        self.expected += other.expected;
        self.found += other.found;
        self.predicted += other.predicted;
        self.correct += other.correct;
    }
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 1.0 } else { n as f64 / d as f64 }
}

/// An expected entity that no mention matched, or a mention that matched none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Miss {
    pub document: String,
    pub kind: EntityKind,
    pub text: String,
}

/// The result of comparing outputs with the expected entities.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub overall: Counts,
    /// Per kind, only the kinds that were expected or predicted.
    pub by_kind: BTreeMap<EntityKind, Counts>,
    /// Expected entities not found.
    pub misses: Vec<Miss>,
    /// Scored mentions that match no expected entity.
    pub false_positives: Vec<Miss>,
    /// Labelled documents with no output file.
    pub missing_documents: Vec<String>,
}

impl Report {
    /// The counts of one kind (zeros if the kind never occurred).
    pub fn kind(&self, kind: EntityKind) -> Counts {
        self.by_kind.get(&kind).copied().unwrap_or_default()
    }

    /// A plain-text table: one line per kind and the overall line, then the misses and
    /// false positives.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<12} {:>8} {:>6} {:>9} {:>8} {:>9} {:>7}\n",
            "kind", "expected", "found", "recall", "scored", "correct", "prec."
        ));
        let line = |name: &str, c: &Counts| {
            format!(
                "{:<12} {:>8} {:>6} {:>8.1}% {:>8} {:>9} {:>6.1}%\n",
                name,
                c.expected,
                c.found,
                c.recall() * 100.0,
                c.predicted,
                c.correct,
                c.precision() * 100.0
            )
        };
        for (kind, counts) in &self.by_kind {
            out.push_str(&line(kind.as_str(), counts));
        }
        out.push_str(&line("OVERALL", &self.overall));
        for doc in &self.missing_documents {
            out.push_str(&format!("\nno output for {doc}"));
        }
        if !self.misses.is_empty() {
            out.push_str(&format!("\nmissed ({}):\n", self.misses.len()));
            for m in &self.misses {
                out.push_str(&format!("  {}: {} {:?}\n", m.document, m.kind, m.text));
            }
        }
        if !self.false_positives.is_empty() {
            out.push_str(&format!(
                "\nfalse positives ({}):\n",
                self.false_positives.len()
            ));
            for m in &self.false_positives {
                out.push_str(&format!("  {}: {} {:?}\n", m.document, m.kind, m.text));
            }
        }
        out
    }
}

/// Text as compared: see the module docs.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            let c = match c {
                '\u{2018}' | '\u{2019}' | '\u{2032}' => '\'',
                '\u{201C}' | '\u{201D}' => '"',
                '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
                c => c,
            };
            out.extend(c.to_lowercase());
        }
    }
    out.trim_matches([',', ';', ':', ' ']).to_string()
}

/// Compares one document's output with its expected entities, adding to `report`.
pub fn score_document(
    name: &str,
    expected: &ExpectedDocument,
    output: &DocumentOutput,
    report: &mut Report,
) {
    let page_starts = page_starts(output);
    let mut counts: BTreeMap<EntityKind, Counts> = BTreeMap::new();

    // Recall: every distinct expected entity once.
    let mut seen = BTreeSet::new();
    for e in &expected.entities {
        let text = normalize(&e.text);
        if !seen.insert((e.kind, text.clone())) {
            continue;
        }
        let value = e
            .normalized
            .as_deref()
            .map(normalize)
            .unwrap_or(text.clone());
        let c = counts.entry(e.kind).or_default();
        c.expected += 1;
        let found = output.mentions.iter().any(|m| {
            m.kind == e.kind && (normalize(&m.text) == text || normalize(&m.normalized) == value)
        });
        if found {
            c.found += 1;
        } else {
            report.misses.push(Miss {
                document: name.to_string(),
                kind: e.kind,
                text: e.text.clone(),
            });
        }
    }

    // Precision: distinct mentions on labelled pages.
    let mut scored = BTreeSet::new();
    for m in &output.mentions {
        let page = page_of(&page_starts, m.start);
        if expected
            .labelled_pages
            .as_ref()
            .is_some_and(|pages| !pages.contains(&page))
        {
            continue;
        }
        let text = normalize(&m.text);
        if !scored.insert((m.kind, text.clone())) {
            continue;
        }
        let value = normalize(&m.normalized);
        let correct = expected
            .entities
            .iter()
            .filter(|e| e.kind == m.kind)
            .any(|e| {
                let wanted = normalize(&e.text);
                let wanted_value = e.normalized.as_deref().map(normalize);
                wanted == text
                    || wanted_value.as_deref().is_some_and(|v| v == value)
                    || (wanted_value.is_none() && wanted == value)
                    || is_word_part(&text, &wanted)
            });
        let c = counts.entry(m.kind).or_default();
        c.predicted += 1;
        if correct {
            c.correct += 1;
        } else {
            report.false_positives.push(Miss {
                document: name.to_string(),
                kind: m.kind,
                text: m.text.split_whitespace().collect::<Vec<_>>().join(" "),
            });
        }
    }

    for (kind, c) in counts {
        report.by_kind.entry(kind).or_default().add(c);
        report.overall.add(c);
    }
}

/// True if `part` is a run of whole words of `whole` (and shorter than it).
fn is_word_part(part: &str, whole: &str) -> bool {
    if part.is_empty() || part.len() >= whole.len() {
        return false;
    }
    let clean = |s: &str| -> Vec<String> {
        s.split(|c: char| c.is_whitespace() || c == ',')
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string())
            .filter(|w| !w.is_empty())
            .collect()
    };
    let (part, whole) = (clean(part), clean(whole));
    !part.is_empty() && whole.windows(part.len()).any(|w| w == part.as_slice())
}

/// Character offset at which each page starts in the document text.
fn page_starts(output: &DocumentOutput) -> Vec<(u32, usize)> {
    let sep = PAGE_SEPARATOR.chars().count();
    let mut starts = Vec::with_capacity(output.pages.len());
    let mut at = 0;
    for p in &output.pages {
        starts.push((p.number, at));
        at += p.text.chars().count() + sep;
    }
    starts
}

/// The page a character offset falls on (1 when there are no pages).
fn page_of(starts: &[(u32, usize)], offset: usize) -> u32 {
    starts
        .iter()
        .rev()
        .find(|&&(_, s)| s <= offset)
        .map_or(1, |&(n, _)| n)
}

/// The document outputs in `dir` (every `*.json` file that parses as a
/// [`DocumentOutput`]), keyed by the file name of their source.
///
/// # Errors
/// When the folder cannot be listed or a file cannot be read.
pub fn read_outputs(dir: &Path) -> anyhow::Result<BTreeMap<String, DocumentOutput>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut outputs = BTreeMap::new();
    for path in paths {
        let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        // Other JSON (summaries, artefacts) may share the folder.
        let Ok(output) = serde_json::from_slice::<DocumentOutput>(&raw) else {
            continue;
        };
        outputs.insert(source_file_name(&output.source), output);
    }
    Ok(outputs)
}

/// `s3://bucket/dir/a.pdf` or `/x/y/a.pdf` → `a.pdf`.
fn source_file_name(source: &str) -> String {
    source
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(source)
        .to_string()
}

/// Scores every labelled document against the outputs (keyed by source file name).
pub fn evaluate(expected: &Expected, outputs: &BTreeMap<String, DocumentOutput>) -> Report {
    let mut report = Report::default();
    for (name, doc) in &expected.documents {
        match outputs.get(name) {
            Some(output) => score_document(name, doc, output, &mut report),
            None => {
                report.missing_documents.push(name.clone());
                // Everything expected of a missing document is missed.
                let empty = DocumentOutput {
                    document_uuid: String::new(),
                    source: name.clone(),
                    content_sha256: String::new(),
                    ocr_method: String::new(),
                    pages: Vec::new(),
                    chunks: Vec::new(),
                    mentions: Vec::new(),
                    entities: Vec::new(),
                    structured: None,
                    producer: String::new(),
                };
                score_document(name, doc, &empty, &mut report);
            }
        }
    }
    report
}

/// Reads an expected-entities file and an output folder and scores them.
///
/// # Errors
/// As [`Expected::read`] and [`read_outputs`].
pub fn evaluate_paths(expected: &Path, output_dir: &Path) -> anyhow::Result<Report> {
    let expected = Expected::read(expected)?;
    let outputs = read_outputs(output_dir)?;
    Ok(evaluate(&expected, &outputs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Mention, Page};

    fn output(
        source: &str,
        pages: &[&str],
        mentions: &[(EntityKind, &str, &str, usize)],
    ) -> DocumentOutput {
        DocumentOutput {
            document_uuid: "u".into(),
            source: source.into(),
            content_sha256: "0".repeat(64),
            ocr_method: "pdf_text".into(),
            pages: pages
                .iter()
                .enumerate()
                .map(|(i, t)| Page {
                    number: i as u32 + 1,
                    text: t.to_string(),
                    has_text_layer: true,
                    ..Page::default()
                })
                .collect(),
            chunks: Vec::new(),
            mentions: mentions
                .iter()
                .enumerate()
                .map(|(i, &(kind, text, normalized, start))| Mention {
                    id: format!("m{i}"),
                    kind,
                    text: text.into(),
                    normalized: normalized.into(),
                    start,
                    end: start + text.chars().count(),
                    confidence: 0.9,
                    chunk_id: "c".into(),
                })
                .collect(),
            entities: Vec::new(),
            structured: None,
            producer: "test".into(),
        }
    }

    const EXPECTED: &str = r#"{
        "a.pdf": {
            "labelled_pages": [1],
            "entities": [
                {"kind": "PERSON", "text": "Jane Q. Public"},
                {"kind": "DATE", "text": "March 4, 2024", "normalized": "2024-03-04"},
                {"kind": "CASE_NUMBER", "text": "No. 12-345"},
                {"kind": "ORG", "text": "Acme Corp."}
            ]
        },
        "b.pdf": {"duplicate_of": "a.pdf"}
    }"#;

    #[test]
    fn a_hand_made_pair_gives_the_known_precision_and_recall() {
        // Arrange: 4 expected; found: the person (case and spacing differ), the date by
        // value; missed: the case number and the org. Scored on page 1: person, date,
        // "Public" (a short form, correct), a wrong ORG; the page-2 mention is not scored.
        let expected = Expected::parse(EXPECTED).unwrap();
        let out = output(
            "/in/a.pdf",
            &["x".repeat(100).as_str(), "y".repeat(100).as_str()],
            &[
                (EntityKind::Person, "JANE  Q. PUBLIC", "JANE Q. PUBLIC", 0),
                (EntityKind::Date, "03/04/2024", "2024-03-04", 20),
                (EntityKind::Person, "Public", "Public", 40),
                (EntityKind::Org, "Widget Holdings", "Widget Holdings", 50),
                (EntityKind::Org, "Elsewhere Inc.", "Elsewhere Inc.", 150),
            ],
        );
        let outputs = BTreeMap::from([("a.pdf".to_string(), out)]);

        // Act
        let report = evaluate(&expected, &outputs);

        // Assert
        assert_eq!(report.overall.expected, 4);
        assert_eq!(report.overall.found, 2);
        assert_eq!(report.overall.predicted, 4);
        assert_eq!(report.overall.correct, 3);
        assert!((report.overall.recall() - 0.5).abs() < 1e-9);
        assert!((report.overall.precision() - 0.75).abs() < 1e-9);
        assert_eq!(report.kind(EntityKind::Person).recall(), 1.0);
        assert_eq!(report.kind(EntityKind::Org).precision(), 0.0);
        let missed: Vec<&str> = report.misses.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(missed, ["No. 12-345", "Acme Corp."]);
        let wrong: Vec<&str> = report
            .false_positives
            .iter()
            .map(|m| m.text.as_str())
            .collect();
        assert_eq!(wrong, ["Widget Holdings"]);
        assert_eq!(expected.duplicates, [("b.pdf".into(), "a.pdf".into())]);
    }

    #[test]
    fn a_labelled_document_without_output_counts_every_entity_as_missed() {
        let expected = Expected::parse(EXPECTED).unwrap();

        let report = evaluate(&expected, &BTreeMap::new());

        assert_eq!(report.missing_documents, ["a.pdf"]);
        assert_eq!(report.overall.found, 0);
        assert_eq!(report.misses.len(), 4);
    }

    #[test]
    fn a_longer_mention_than_the_entity_is_not_correct_and_a_repeat_is_scored_once() {
        let expected = Expected::parse(EXPECTED).unwrap();
        let out = output(
            "a.pdf",
            &["z".repeat(80).as_str()],
            &[
                (EntityKind::Org, "Acme Corp. Board", "Acme Corp. Board", 0),
                (EntityKind::Org, "Acme Corp. Board", "Acme Corp. Board", 30),
            ],
        );

        let report = evaluate(&expected, &BTreeMap::from([("a.pdf".into(), out)]));

        assert_eq!(report.kind(EntityKind::Org).predicted, 1);
        assert_eq!(report.kind(EntityKind::Org).correct, 0);
        assert_eq!(report.kind(EntityKind::Org).found, 0);
    }

    #[test]
    fn normalisation_folds_case_spacing_dashes_and_edge_punctuation() {
        assert_eq!(normalize("  No.\n12\u{2013}345, "), "no. 12-345");
        assert_eq!(normalize("O\u{2019}BRIEN"), "o'brien");
    }

    #[test]
    fn unknown_kinds_and_entries_without_entities_are_errors() {
        assert!(
            Expected::parse(r#"{"a.pdf": {"entities": [{"kind": "NOPE", "text": "x"}]}}"#).is_err()
        );
        assert!(Expected::parse(r#"{"a.pdf": {"pages": 1}}"#).is_err());
    }
}
