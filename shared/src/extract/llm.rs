//! Entity extraction by an LLM: the prompt, its response schema, and the placing of the
//! model's quoted spans in the chunk text.
//!
//! A model reports *what* it found (`{"kind": "ORG", "text": "Acme Corp.", "normalized":
//! "Acme Corp."}`), not reliable offsets: models count characters badly. Offsets are
//! found here by searching the chunk for the quoted text (exactly, then ignoring ASCII
//! case); repeated quotes take successive occurrences. A quote that is not in the text
//! (a paraphrase, a hallucination) is dropped and counted, never guessed.

use serde_json::{Value, json};

use crate::llm::{JsonRequest, Message};
use crate::model::{
    CanonicalEntity, EntityKind, EntityRelation, KeyAmount, KeyDate, KeyFact, PartyRole,
    RawMention, StructuredData,
};
use crate::text::byte_to_char;

/// Name in keys and artefacts.
pub const NAME: &str = "llm";
/// Bump when the prompt's wording or the schema changes.
pub const ENTITY_PROMPT_VERSION: u32 = 1;
/// `response_format.json_schema.name` of the entity prompt.
pub const ENTITY_SCHEMA_NAME: &str = "entities";
/// Confidence given to a located LLM mention.
const LLM_CONFIDENCE: f32 = 0.8;

const SYSTEM_PROMPT: &str = "You extract named entities from legal documents. For the text the \
user sends, list every mention of: PERSON (people), ORG (companies, agencies, firms), LOCATION \
(cities, states, countries), ADDRESS (postal addresses), DATE, MONEY (amounts with currency), \
COURT, CASE_NUMBER (docket numbers), CASE_NAME (`X v. Y`, `In re X`), CITATION (reporter \
citations of decisions), STATUTE (statutes and regulations cited), EMAIL and PHONE. For each \
mention give its kind, its text copied exactly as it appears (same spelling, case and \
punctuation), and a normalized value: ISO-8601 (YYYY-MM-DD) for DATE, `USD 1250000.00` for \
MONEY, lower case for EMAIL, digits with a leading + and country code for PHONE, the cleaned \
text otherwise. List a mention once per occurrence. Answer with JSON only.";

/// The JSON schema of the entity answer (strict: every property required, nothing else).
pub fn entity_schema() -> Value {
    let kinds: Vec<&str> = EntityKind::ALL.iter().map(|k| k.as_str()).collect();
    json!({
        "type": "object",
        "properties": {
            "entities": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string", "enum": kinds},
                        "text": {"type": "string"},
                        "normalized": {"type": "string"}
                    },
                    "required": ["kind", "text", "normalized"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["entities"],
        "additionalProperties": false
    })
}

/// The request that extracts the entities of one chunk: the system prompt, then the chunk
/// text alone as the user message.
pub fn entity_request(chunk_text: &str) -> JsonRequest {
    JsonRequest {
        messages: vec![Message::system(SYSTEM_PROMPT), Message::user(chunk_text)],
        schema_name: ENTITY_SCHEMA_NAME.to_string(),
        schema: entity_schema(),
        prompt_version: ENTITY_PROMPT_VERSION,
    }
}

/// Mentions placed in the text, and how many quotes could not be found in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub mentions: Vec<RawMention>,
    pub dropped: usize,
}

/// Places the entities of a (schema-valid) answer in `text`; offsets in characters.
pub fn locate(text: &str, answer: &Value) -> Located {
    let lower = text.to_ascii_lowercase();
    let mut taken: std::collections::HashSet<(EntityKind, usize)> = Default::default();
    let mut mentions = Vec::new();
    let mut dropped = 0;
    for e in answer["entities"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let kind: Option<EntityKind> = serde_json::from_value(e["kind"].clone()).ok();
        let quote = e["text"].as_str().unwrap_or("").trim();
        let (Some(kind), false) = (kind, quote.is_empty()) else {
            dropped += 1;
            continue;
        };
        let free = |b: &usize| !taken.contains(&(kind, *b));
        let found = text
            .match_indices(quote)
            .map(|(b, _)| b)
            .find(free)
            .or_else(|| {
                lower
                    .match_indices(&quote.to_ascii_lowercase())
                    .map(|(b, _)| b)
                    .find(free)
            });
        let Some(b) = found else {
            dropped += 1;
            continue;
        };
        taken.insert((kind, b));
        let start = byte_to_char(text, b);
        let end = start + quote.chars().count();
        let normalized = match e["normalized"].as_str().map(str::trim) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => quote.to_string(),
        };
        mentions.push(RawMention {
            kind,
            text: text[b..b + quote.len()].to_string(),
            normalized,
            start,
            end,
            confidence: LLM_CONFIDENCE,
        });
    }
    mentions.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    Located { mentions, dropped }
}

/// The rules' mentions plus the LLM's that overlap no rules mention of the same kind
/// (`LEXPIPE_EXTRACTOR=both`): the rules' offsets and normalisation win where both agree.
pub fn merge(rules: Vec<RawMention>, llm: Vec<RawMention>) -> Vec<RawMention> {
    let mut out = rules;
    let extra: Vec<RawMention> = llm
        .into_iter()
        .filter(|m| {
            !out.iter()
                .any(|r| r.kind == m.kind && r.start < m.end && m.start < r.end)
        })
        .collect();
    out.extend(extra);
    out.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    out
}

/// Bump when the structured prompt's wording or schema changes.
pub const STRUCTURED_PROMPT_VERSION: u32 = 2;
/// `response_format.json_schema.name` of the structured prompt.
pub const STRUCTURED_SCHEMA_NAME: &str = "document_structure";
/// Most key facts a document's merged description keeps.
pub const MAX_KEY_FACTS: usize = 25;

const STRUCTURED_PROMPT: &str = "You read a part of a legal document and describe what it \
says. The user sends the text of that part, each page introduced by [page N]. Answer with \
JSON only: the document type if this part shows it (else unknown); each party it names with \
its role (plaintiff, defendant, petitioner, respondent, lessor, lessee, buyer, seller, \
employer, employee, discloser, recipient, or another word); the court, case number and \
judge (null if this part names none); the filing date (YYYY-MM-DD, null if none); key dates \
with what happens on them; amounts (as `USD 1250.00`) with what they are for; up to ten key \
facts, each with the page it is on; and relationships between named parties, people and \
organisations (subject, a short verb phrase such as `represents`, `employs`, `owes`, \
`sued`, and object), naming them as the text does.";

/// Document types the structured prompt may answer (the rules' words, and `unknown`).
pub const DOCUMENT_TYPES: [&str; 11] = [
    "complaint",
    "motion",
    "order",
    "deposition",
    "settlement_agreement",
    "non_disclosure_agreement",
    "lease",
    "letter",
    "contract",
    "brief",
    "unknown",
];

/// The JSON schema of the structured answer (strict).
pub fn structured_schema() -> Value {
    let string = json!({"type": "string"});
    let nullable = json!({"type": ["string", "null"]});
    let object = |props: Value, required: &[&str]| {
        json!({"type": "object", "properties": props, "required": required,
               "additionalProperties": false})
    };
    let list = |item: Value| json!({"type": "array", "items": item});
    object(
        json!({
            "document_type": {"type": "string", "enum": DOCUMENT_TYPES},
            "parties": list(object(json!({"name": string, "role": string}), &["name", "role"])),
            "court": nullable,
            "case_number": nullable,
            "judge": nullable,
            "filing_date": nullable,
            "key_dates": list(object(json!({"date": string, "event": string}), &["date", "event"])),
            "amounts": list(object(json!({"amount": string, "description": string}),
                                   &["amount", "description"])),
            "key_facts": list(object(json!({"fact": string,
                                            "page": {"type": ["integer", "null"], "minimum": 1}}),
                                     &["fact", "page"])),
            "relationships": list(object(json!({"subject": string, "predicate": string,
                                                "object": string}),
                                         &["subject", "predicate", "object"])),
        }),
        &[
            "document_type",
            "parties",
            "court",
            "case_number",
            "judge",
            "filing_date",
            "key_dates",
            "amounts",
            "key_facts",
            "relationships",
        ],
    )
}

/// The request that describes one chunk of a document: its text with `[page N]` marks
/// (see [`crate::stages::structured`]). It depends on nothing but that text, so that an
/// unchanged chunk of an edited document asks the same request, which the LLM response
/// cache answers.
pub fn chunk_structured_request(marked_text: &str) -> JsonRequest {
    JsonRequest {
        messages: vec![
            Message::system(STRUCTURED_PROMPT),
            Message::user(format!("Document part:\n{marked_text}")),
        ],
        schema_name: STRUCTURED_SCHEMA_NAME.to_string(),
        schema: structured_schema(),
        prompt_version: STRUCTURED_PROMPT_VERSION,
    }
}

/// One description of the document from its chunks' answers, in document order, in the
/// shape of [`structured_schema`] (for [`apply_structured`]): the first type other than
/// `unknown`; the first court, case number, judge and filing date named; every party (by
/// name, first role kept), key date, amount and relationship once; key facts once each, the
/// first [`MAX_KEY_FACTS`].
pub fn merge_structured(answers: &[Value]) -> Value {
    let first_text = |field: &str, skip: &str| {
        answers
            .iter()
            .filter_map(|a| a[field].as_str().map(str::trim))
            .find(|t| !t.is_empty() && *t != skip)
            .map_or(Value::Null, |t| json!(t))
    };
    let union = |field: &str, identity: &[&str], cap: usize| {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for item in answers
            .iter()
            .flat_map(|a| a[field].as_array().cloned().unwrap_or_default())
        {
            let id: Vec<String> = identity
                .iter()
                .map(|k| item[*k].as_str().unwrap_or("").trim().to_lowercase())
                .collect();
            if out.len() < cap && seen.insert(id) {
                out.push(item);
            }
        }
        Value::Array(out)
    };
    let document_type = match first_text("document_type", "unknown") {
        Value::Null => json!("unknown"),
        t => t,
    };
    json!({
        "document_type": document_type,
        "parties": union("parties", &["name"], usize::MAX),
        "court": first_text("court", ""),
        "case_number": first_text("case_number", ""),
        "judge": first_text("judge", ""),
        "filing_date": first_text("filing_date", ""),
        "key_dates": union("key_dates", &["date", "event"], usize::MAX),
        "amounts": union("amounts", &["amount", "description"], usize::MAX),
        "key_facts": union("key_facts", &["fact"], MAX_KEY_FACTS),
        "relationships": union("relationships", &["subject", "predicate", "object"], usize::MAX),
    })
}

/// The canonical entity a name refers to: one whose name or alias equals it (ignoring
/// case), else the closest by Jaro-Winkler similarity if at least 0.9.
pub fn match_entity(name: &str, entities: &[CanonicalEntity]) -> Option<String> {
    let wanted = name.trim().to_lowercase();
    if wanted.is_empty() {
        return None;
    }
    let forms = |e: &CanonicalEntity| {
        std::iter::once(e.name.to_lowercase())
            .chain(e.aliases.iter().map(|a| a.to_lowercase()))
            .collect::<Vec<_>>()
    };
    if let Some(e) = entities.iter().find(|e| forms(e).contains(&wanted)) {
        return Some(e.id.clone());
    }
    entities
        .iter()
        .map(|e| {
            let best = forms(e)
                .iter()
                .map(|f| strsim::jaro_winkler(f, &wanted))
                .fold(0.0, f64::max);
            (best, e)
        })
        .filter(|(score, _)| *score >= 0.9)
        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.id.cmp(&a.1.id)))
        .map(|(_, e)| e.id.clone())
}

/// The rules' description with the LLM's answer laid over it: the LLM's type (unless
/// `unknown`), court, case number, parties, and everything only it finds; relationships
/// linked to `entities`.
pub fn apply_structured(
    mut base: StructuredData,
    answer: &Value,
    entities: &[CanonicalEntity],
    model_version: String,
) -> StructuredData {
    let text = |v: &Value| {
        v.as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let items = |k: &str| answer[k].as_array().cloned().unwrap_or_default();
    if let Some(t) = text(&answer["document_type"]).filter(|t| t != "unknown") {
        base.document_type = t;
    }
    if let Some(court) = text(&answer["court"]) {
        base.court = Some(court);
    }
    if let Some(case) = text(&answer["case_number"])
        && !base.case_numbers.contains(&case)
    {
        base.case_numbers.insert(0, case);
    }
    base.judge = text(&answer["judge"]);
    base.filing_date = text(&answer["filing_date"]);
    base.party_roles = items("parties")
        .iter()
        .filter_map(|p| {
            Some(PartyRole {
                name: text(&p["name"])?,
                role: text(&p["role"]).unwrap_or_default(),
            })
        })
        .collect();
    if !base.party_roles.is_empty() {
        base.parties = base.party_roles.iter().map(|p| p.name.clone()).collect();
    }
    base.key_dates = items("key_dates")
        .iter()
        .filter_map(|d| {
            Some(KeyDate {
                date: text(&d["date"])?,
                event: text(&d["event"]).unwrap_or_default(),
            })
        })
        .collect();
    base.key_amounts = items("amounts")
        .iter()
        .filter_map(|a| {
            Some(KeyAmount {
                amount: text(&a["amount"])?,
                description: text(&a["description"]).unwrap_or_default(),
            })
        })
        .collect();
    base.key_facts = items("key_facts")
        .iter()
        .filter_map(|f| {
            Some(KeyFact {
                fact: text(&f["fact"])?,
                page: f["page"].as_u64().and_then(|p| u32::try_from(p).ok()),
            })
        })
        .collect();
    base.relationships = items("relationships")
        .iter()
        .filter_map(|r| {
            let subject = text(&r["subject"])?;
            let object = text(&r["object"])?;
            Some(EntityRelation {
                subject_entity: match_entity(&subject, entities),
                object_entity: match_entity(&object, entities),
                predicate: text(&r["predicate"])?,
                subject,
                object,
            })
        })
        .collect();
    base.model_version = model_version;
    base
}

/// Bump when the adjudication prompt's wording or schema changes.
pub const ADJUDICATION_PROMPT_VERSION: u32 = 1;
/// `response_format.json_schema.name` of the adjudication prompt.
pub const ADJUDICATION_SCHEMA_NAME: &str = "adjudication";

const ADJUDICATION_PROMPT: &str = "You decide whether two names in one legal document refer \
to the same real-world person or organisation. The user sends numbered pairs, each with \
the kind, the names and their other spellings. For each pair answer `same: true` only if \
they are the same entity (a typo, a variant, a fuller form), false if they are different \
(relatives, affiliated companies, different people with similar names). Answer with JSON \
only, one decision per pair.";

/// The JSON schema of an adjudication answer.
pub fn adjudication_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "decisions": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "pair": {"type": "integer", "minimum": 1},
                    "same": {"type": "boolean"}
                },
                "required": ["pair", "same"],
                "additionalProperties": false
            }}
        },
        "required": ["decisions"],
        "additionalProperties": false
    })
}

/// The request that asks about `pairs` (indices into `entities`), numbered from 1.
pub fn adjudication_request(entities: &[CanonicalEntity], pairs: &[(usize, usize)]) -> JsonRequest {
    let describe = |e: &CanonicalEntity| {
        let others: Vec<&str> = e
            .aliases
            .iter()
            .filter(|a| **a != e.name)
            .map(String::as_str)
            .collect();
        if others.is_empty() {
            format!("{:?}", e.name)
        } else {
            format!("{:?} (also {})", e.name, others.join("; "))
        }
    };
    let mut text = String::new();
    for (n, &(a, b)) in pairs.iter().enumerate() {
        text.push_str(&format!(
            "{}. {}: {} | {}\n",
            n + 1,
            entities[a].kind,
            describe(&entities[a]),
            describe(&entities[b])
        ));
    }
    JsonRequest {
        messages: vec![Message::system(ADJUDICATION_PROMPT), Message::user(text)],
        schema_name: ADJUDICATION_SCHEMA_NAME.to_string(),
        schema: adjudication_schema(),
        prompt_version: ADJUDICATION_PROMPT_VERSION,
    }
}

/// The pairs an adjudication answer calls the same (numbers outside the list ignored).
pub fn same_pairs(answer: &Value, pairs: &[(usize, usize)]) -> Vec<(usize, usize)> {
    answer["decisions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter(|d| d["same"] == json!(true))
        .filter_map(|d| d["pair"].as_u64())
        .filter_map(|n| pairs.get(usize::try_from(n).ok()?.checked_sub(1)?).copied())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunk_descriptions_merge_into_one_in_document_order() {
        let a = json!({"document_type": "unknown", "parties": [{"name": "Acme LLC", "role": "plaintiff"}],
            "court": null, "case_number": "", "judge": null, "filing_date": null,
            "key_dates": [], "amounts": [{"amount": "USD 5.00", "description": "fee"}],
            "key_facts": [{"fact": "Acme sued.", "page": 1}], "relationships": []});
        let b = json!({"document_type": "complaint", "parties": [{"name": "ACME LLC", "role": "party"},
            {"name": "Jane Roe", "role": "defendant"}], "court": "Superior Court", "case_number": "CV-1",
            "judge": null, "filing_date": "2024-03-15", "key_dates": [],
            "amounts": [{"amount": "USD 5.00", "description": "Fee"}],
            "key_facts": [{"fact": "Acme sued.", "page": 1}, {"fact": "Roe answered.", "page": 9}],
            "relationships": [{"subject": "Acme LLC", "predicate": "sued", "object": "Jane Roe"}]});
        let m = merge_structured(&[a, b]);
        assert_eq!(m["document_type"], "complaint");
        assert_eq!(
            m["parties"],
            json!([{"name": "Acme LLC", "role": "plaintiff"},
            {"name": "Jane Roe", "role": "defendant"}])
        );
        assert_eq!(
            (m["court"].as_str(), m["case_number"].as_str()),
            (Some("Superior Court"), Some("CV-1"))
        );
        assert_eq!(m["judge"], Value::Null);
        assert_eq!(m["amounts"].as_array().unwrap().len(), 1);
        assert_eq!(m["key_facts"].as_array().unwrap().len(), 2);
        assert_eq!(m["relationships"].as_array().unwrap().len(), 1);
        let schema = structured_schema();
        assert!(crate::llm::schema::validate(&schema, &m).is_ok(), "{m}");
        assert_eq!(merge_structured(&[])["document_type"], "unknown");
    }

    use super::*;

    #[test]
    fn quoted_spans_are_found_in_the_text_and_unknown_ones_dropped() {
        let text = "Acme Corp. sued Jane Roe. ACME CORP. paid Roe $5.";
        let answer = json!({"entities": [
            {"kind": "ORG", "text": "Acme Corp.", "normalized": "Acme Corp."},
            {"kind": "ORG", "text": "Acme Corp.", "normalized": ""},
            {"kind": "PERSON", "text": "Jane Roe", "normalized": "Jane Roe"},
            {"kind": "PERSON", "text": "John Doe", "normalized": "John Doe"},
            {"kind": "WIDGET", "text": "Roe", "normalized": "Roe"},
        ]});
        let got = locate(text, &answer);
        assert_eq!(got.dropped, 2);
        let spans: Vec<(&str, usize, usize)> = got
            .mentions
            .iter()
            .map(|m| (m.text.as_str(), m.start, m.end))
            .collect();
        assert_eq!(
            spans,
            vec![
                ("Acme Corp.", 0, 10),
                ("Jane Roe", 16, 24),
                ("ACME CORP.", 26, 36)
            ]
        );
        assert_eq!(got.mentions[2].normalized, "Acme Corp.");
    }

    #[test]
    fn offsets_are_in_characters_over_multibyte_text() {
        let text = "Café Zoë — Société Générale S.A.";
        let answer = json!({"entities": [
            {"kind": "ORG", "text": "Société Générale S.A.", "normalized": "x"}]});
        let m = &locate(text, &answer).mentions[0];
        let chars: Vec<char> = text.chars().collect();
        assert_eq!(chars[m.start..m.end].iter().collect::<String>(), m.text);
    }

    #[test]
    fn both_keeps_the_rules_mentions_and_adds_what_only_the_llm_saw() {
        let m = |kind, start, end| RawMention {
            kind,
            text: String::new(),
            normalized: String::new(),
            start,
            end,
            confidence: 1.0,
        };
        let merged = merge(
            vec![m(EntityKind::Org, 0, 10)],
            vec![
                m(EntityKind::Org, 0, 4),
                m(EntityKind::Person, 0, 4),
                m(EntityKind::Date, 20, 30),
            ],
        );
        assert_eq!(merged.len(), 3);
        assert_eq!(merged[0].end, 10);
    }

    fn entity(id: &str, name: &str, aliases: &[&str]) -> CanonicalEntity {
        CanonicalEntity {
            id: id.into(),
            kind: EntityKind::Org,
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            mention_ids: vec![],
        }
    }

    #[test]
    fn names_in_relationships_resolve_to_entities_exactly_or_by_jaro_winkler() {
        let es = [
            entity("e0", "Acme Holdings LLC", &["Acme"]),
            entity("e1", "Jane Roe", &[]),
        ];
        assert_eq!(match_entity("acme", &es).as_deref(), Some("e0"));
        assert_eq!(
            match_entity("Acme Holdings, LLC", &es).as_deref(),
            Some("e0")
        );
        assert_eq!(match_entity("Jane Roe ", &es).as_deref(), Some("e1"));
        assert_eq!(match_entity("Globex", &es), None);
    }

    #[test]
    fn a_structured_answer_is_laid_over_the_rules_and_linked_to_entities() {
        let es = [
            entity("e0", "Acme Holdings LLC", &[]),
            entity("e1", "Jane Roe", &[]),
        ];
        let answer = json!({
            "document_type": "complaint", "court": "Superior Court", "case_number": "CV-1",
            "judge": null, "filing_date": "2024-03-01",
            "parties": [{"name": "Jane Roe", "role": "plaintiff"}],
            "key_dates": [], "amounts": [{"amount": "USD 10.00", "description": "fee"}],
            "key_facts": [{"fact": "Roe sued Acme.", "page": 1}],
            "relationships": [{"subject": "Jane Roe", "predicate": "sued", "object": "Acme Holdings LLC"}]
        });
        assert_eq!(
            crate::llm::schema::validate(&structured_schema(), &answer),
            Ok(())
        );
        let base = StructuredData {
            document_type: "unknown".into(),
            ..StructuredData::default()
        };
        let s = apply_structured(base, &answer, &es, "llm-x".into());
        assert_eq!(s.document_type, "complaint");
        assert_eq!(s.case_numbers, vec!["CV-1"]);
        assert_eq!(s.parties, vec!["Jane Roe"]);
        assert_eq!(s.key_facts[0].page, Some(1));
        let r = &s.relationships[0];
        assert_eq!(
            (r.subject_entity.as_deref(), r.object_entity.as_deref()),
            (Some("e1"), Some("e0"))
        );
        assert_eq!(s.model_version, "llm-x");
    }

    #[test]
    fn the_schema_accepts_what_the_prompt_asks_for() {
        let ok = json!({"entities": [{"kind": "CASE_NUMBER", "text": "1:24-cv-1", "normalized": "1:24-cv-1"}]});
        assert_eq!(crate::llm::schema::validate(&entity_schema(), &ok), Ok(()));
        let bad = json!({"entities": [{"kind": "CASE_NUMBER", "text": "x"}]});
        assert!(crate::llm::schema::validate(&entity_schema(), &bad).is_err());
    }
}
