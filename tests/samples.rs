//! The built-in rule extractor against the shipped samples: every PDF in `samples/` is
//! read through the real text-layer OCR, and the entities listed for it in
//! `samples/expected_entities.json` must all be found, with their normalised values.
//!
//! This is the offline pipeline's accuracy contract: if a rule change loses an entity a
//! careful reader sees in the demo documents, this test names it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use lexpipe::extract::RuleExtractor;
use lexpipe::model::{EntityKind, RawMention};
use lexpipe::ocr::extract_pdf_text;
use lexpipe::samples::EXPECTED_ENTITIES_FILE;
use serde_json::Value;

/// Share of PERSON/ORG mentions that must correspond to an expected entity.
const MIN_PERSON_ORG_PRECISION: f64 = 0.60;

/// One expected entity, as listed in the expected-entities file.
#[derive(Debug)]
struct Expected {
    kind: String,
    text: String,
    normalized: Option<String>,
}

/// What the expected-entities file says about one sample file.
#[derive(Debug)]
enum Entry {
    Document(Vec<Expected>),
    DuplicateOf(String),
}

#[test]
fn rule_extractor_finds_every_expected_entity_in_the_shipped_samples() -> Result<()> {
    let dir = lexpipe_tests::samples_dir();
    let entries = read_expected(&dir)?;
    assert_every_pdf_is_listed(&dir, &entries)?;

    let extractor = RuleExtractor::new();
    let mut misses: Vec<String> = Vec::new();
    let mut found_by_file: BTreeMap<&str, Vec<RawMention>> = BTreeMap::new();
    let (mut expected_total, mut person_org_total, mut person_org_matched) = (0, 0, 0);
    let mut unmatched: Vec<String> = Vec::new();

    for (file, entry) in &entries {
        let Entry::Document(expected) = entry else {
            continue;
        };
        let mentions = extract_file(&extractor, &dir.join(file))?;

        for e in expected {
            expected_total += 1;
            let hit = mentions.iter().any(|m| {
                m.kind.as_str() == e.kind
                    && m.text == e.text
                    && e.normalized.as_ref().is_none_or(|n| *n == m.normalized)
            });
            if !hit {
                misses.push(describe_miss(file, e, &mentions));
            }
        }

        for m in mentions
            .iter()
            .filter(|m| matches!(m.kind, EntityKind::Person | EntityKind::Org))
        {
            person_org_total += 1;
            if corresponds_to_expected(m, expected) {
                person_org_matched += 1;
            } else {
                unmatched.push(format!("{file}: {} {:?}", m.kind, m.text));
            }
        }
        found_by_file.insert(file, mentions);
    }

    // A byte-identical copy must give exactly the original's mentions.
    for (file, entry) in &entries {
        let Entry::DuplicateOf(original) = entry else {
            continue;
        };
        let mentions = extract_file(&extractor, &dir.join(file))?;
        let Some(original_mentions) = found_by_file.get(original.as_str()) else {
            bail!("{file} is listed as a copy of {original}, which is not a listed document");
        };
        assert_eq!(
            &mentions, original_mentions,
            "{file} (a copy of {original}) differs"
        );
    }

    let recall = (expected_total - misses.len()) as f64 / expected_total.max(1) as f64;
    let precision = person_org_matched as f64 / person_org_total.max(1) as f64;
    eprintln!(
        "rule extractor on {} samples: recall {}/{} ({:.1}%), PERSON/ORG precision {}/{} ({:.1}%)",
        found_by_file.len(),
        expected_total - misses.len(),
        expected_total,
        recall * 100.0,
        person_org_matched,
        person_org_total,
        precision * 100.0,
    );
    if !unmatched.is_empty() {
        eprintln!(
            "PERSON/ORG mentions matching no expected entity:\n  {}",
            unmatched.join("\n  ")
        );
    }

    assert!(
        misses.is_empty(),
        "{} of {} expected entities not found:\n  {}",
        misses.len(),
        expected_total,
        misses.join("\n  ")
    );
    assert!(
        precision >= MIN_PERSON_ORG_PRECISION,
        "PERSON/ORG precision {:.1}% is below {:.0}%; unmatched mentions:\n  {}",
        precision * 100.0,
        MIN_PERSON_ORG_PRECISION * 100.0,
        unmatched.join("\n  ")
    );
    Ok(())
}

/// Reads the PDF's text layer and runs the extractor over the whole document text.
fn extract_file(extractor: &RuleExtractor, path: &Path) -> Result<Vec<RawMention>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let ocr = extract_pdf_text(&bytes).with_context(|| format!("text of {}", path.display()))?;
    Ok(extractor.extract(&ocr.full_text()))
}

/// True if the mention's text equals, contains or is contained in the text of an expected
/// entity of the same kind, ignoring case: "Ms. Delgado" → `Delgado` is Maria Delgado, and
/// the transcript speaker `PARK` is Elena Park.
fn corresponds_to_expected(m: &RawMention, expected: &[Expected]) -> bool {
    let found = m.text.to_lowercase();
    expected
        .iter()
        .filter(|e| e.kind == m.kind.as_str())
        .any(|e| {
            let wanted = e.text.to_lowercase();
            wanted.contains(&found) || found.contains(&wanted)
        })
}

/// One line for the failure message: what was expected, and what was found nearby.
fn describe_miss(file: &str, e: &Expected, mentions: &[RawMention]) -> String {
    let normalized = e
        .normalized
        .as_ref()
        .map(|n| format!(" (normalized {n:?})"))
        .unwrap_or_default();
    let near: Vec<String> = mentions
        .iter()
        .filter(|m| m.text.contains(&e.text) || e.text.contains(&m.text))
        .map(|m| format!("{} {:?} => {:?}", m.kind, m.text, m.normalized))
        .collect();
    let near = if near.is_empty() {
        String::new()
    } else {
        format!("; found instead: {}", near.join(", "))
    };
    format!("{file}: {} {:?}{normalized}{near}", e.kind, e.text)
}

/// Every PDF in the folder has an entry, and every entry a PDF.
fn assert_every_pdf_is_listed(dir: &Path, entries: &BTreeMap<String, Entry>) -> Result<()> {
    let mut pdfs = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".pdf") {
            pdfs.push(name);
        }
    }
    pdfs.sort();
    let listed: Vec<&String> = entries.keys().collect();
    assert!(!pdfs.is_empty(), "no sample PDFs in {}", dir.display());
    assert_eq!(
        pdfs.iter().collect::<Vec<_>>(),
        listed,
        "PDFs in samples/ vs {EXPECTED_ENTITIES_FILE}"
    );
    Ok(())
}

/// Parses `expected_entities.json`.
fn read_expected(dir: &Path) -> Result<BTreeMap<String, Entry>> {
    let path = dir.join(EXPECTED_ENTITIES_FILE);
    let raw =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let json: Value =
        serde_json::from_str(&raw).with_context(|| format!("parsing {}", path.display()))?;
    let Some(files) = json.as_object() else {
        bail!("{} is not a JSON object", path.display())
    };

    let mut entries = BTreeMap::new();
    for (file, spec) in files {
        if let Some(original) = spec.get("duplicate_of").and_then(Value::as_str) {
            entries.insert(file.clone(), Entry::DuplicateOf(original.to_string()));
            continue;
        }
        let Some(list) = spec.get("entities").and_then(Value::as_array) else {
            bail!("{file}: neither `entities` nor `duplicate_of`");
        };
        let mut expected = Vec::with_capacity(list.len());
        for item in list {
            let field = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_string);
            let (Some(kind), Some(text)) = (field("kind"), field("text")) else {
                bail!("{file}: entity without kind or text: {item}");
            };
            expected.push(Expected {
                kind,
                text,
                normalized: field("normalized"),
            });
        }
        entries.insert(file.clone(), Entry::Document(expected));
    }
    Ok(entries)
}
