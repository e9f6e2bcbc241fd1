//! COURT: federal and state court names, in title case or in the upper case of captions.

use std::sync::LazyLock;

use regex::Regex;

use super::lexicon::{compile, is_leading_noise, state_name_pattern};
use super::{Candidate, char_before, skip_words, trim_span};
use crate::model::EntityKind;

/// Circuit ordinals, spelled out or numeric.
const ORDINAL: &str = r"(?:First|Second|Third|Fourth|Fifth|Sixth|Seventh|Eighth|Ninth|Tenth|Eleventh|1st|2d|2nd|3d|3rd|4th|5th|6th|7th|8th|9th|10th|11th)";
/// One to four capitalised words on one line (a county or city name), case-sensitive even
/// inside `(?i)` patterns.
const NAMES: &str = r"(?-i:\p{Lu}[\p{L}'’\-]*(?:[ \t]+\p{Lu}[\p{L}'’\-]*){0,3})";

/// One court pattern.
struct CourtRule {
    re: Regex,
    confidence: f32,
    /// The pattern starts with a free-form place name (`San Francisco Superior Court`),
    /// which must be left once leading noise words are dropped.
    place_first: bool,
}

/// The court regexes, each tried over the whole text; overlaps are resolved later, the
/// longest match winning.
static COURTS: LazyLock<Vec<CourtRule>> = LazyLock::new(|| {
    let state = state_name_pattern();
    let district = format!(
        r"(?:[\s,]+(?:(?:in\s+and\s+)?for\s+the\s+|of\s+the\s+)?(?:(?:Northern|Southern|Eastern|Western|Central|Middle)\s+)?District\s+of\s+{state}|,?[ \t]+(?-i:(?:[NSEWCM]\.[ \t]?)?D\.[ \t]?(?:[A-Z][a-z]{{0,5}}\.[ \t]?){{1,3}}))"
    );
    let county = format!(
        r"(?:[\s,]+(?:in\s+and\s+)?for\s+the\s+County\s+of\s+{NAMES}|,?\s*County\s+of\s+{NAMES})"
    );
    let circuit = format!(r"(?:{ORDINAL}|D\.\s?C\.|District\s+of\s+Columbia|Federal)\s+Circuit");
    let rule = |pattern: String, confidence: f32, place_first: bool| CourtRule {
        re: compile(&pattern),
        confidence,
        place_first,
    };
    vec![
        // United States District Court for the Northern District of California;
        // U.S. District Court, S.D.N.Y.; UNITED STATES BANKRUPTCY COURT\nDISTRICT OF DELAWARE
        rule(format!(r"(?i)\b(?:United\s+States|U\.\s?S\.)\s+(?:District|Bankruptcy)\s+Court{district}?"), 0.9, false),
        // United States Court of Appeals for the Ninth Circuit
        rule(format!(r"(?i)\b(?:United\s+States|U\.\s?S\.)\s+Court\s+of\s+Appeals(?:[\s,]+for\s+the\s+{circuit})?"), 0.9, false),
        // Ninth Circuit Court of Appeals; Court of Appeals for the Ninth Circuit
        rule(format!(r"(?i)\b{circuit}\s+Court\s+of\s+Appeals"), 0.9, false),
        rule(format!(r"(?i)\bCourt\s+of\s+Appeals\s+for\s+the\s+{circuit}"), 0.9, false),
        // the Ninth Circuit (as a court)
        rule(format!(r"\b(?:{ORDINAL}|D\.C\.|Federal)\s+Circuit\b"), 0.75, false),
        // Supreme Court of the United States; Supreme Court of the State of New York,
        // County of New York; United States Supreme Court; California Supreme Court
        rule(format!(r"(?i)\bSupreme\s+Court\s+of\s+(?:the\s+)?(?:United\s+States|State\s+of\s+{state}|{state}){county}?"), 0.9, false),
        rule(format!(r"(?i)\b(?:United\s+States|U\.\s?S\.|{state})\s+Supreme\s+Court"), 0.9, false),
        // United States Tax Court; Court of Federal Claims; Court of International Trade
        rule(r"(?i)\b(?:United\s+States|U\.\s?S\.)\s+(?:Tax\s+Court|Court\s+of\s+Federal\s+Claims|Court\s+of\s+International\s+Trade)".to_string(), 0.9, false),
        // Superior Court of the State of California, County of San Francisco;
        // Circuit Court of Cook County; District Court of Harris County
        rule(format!(r"(?i)\b(?:Superior|Circuit|District|County|Municipal|Probate|Family|Justice|Surrogate'?s|Chancery)\s+Court\s+(?:of|for)\s+(?:the\s+)?(?:State\s+of\s+|Commonwealth\s+of\s+)?{state}{county}?"), 0.9, false),
        rule(format!(r"(?i)\b(?:Superior|Circuit|District|County|Municipal|Probate|Family|Surrogate'?s)\s+Court\s+(?:of|for)\s+(?:the\s+)?County\s+of\s+{NAMES}"), 0.9, false),
        rule(format!(r"(?i)\b(?:Superior|Circuit|District|Probate|Family)\s+Court\s+(?:of|for)\s+{NAMES}\s+County"), 0.9, false),
        // Court of Chancery of the State of Delaware; Court of Appeal of the State of
        // California, First Appellate District
        rule(format!(r"(?i)\bCourt\s+of\s+(?:Chancery|Appeals?|Common\s+Pleas|Criminal\s+Appeals|Special\s+Appeals)\s+(?:of|for)\s+(?:the\s+)?(?:State\s+of\s+|Commonwealth\s+of\s+)?{state}(?:,?\s+(?-i:{ORDINAL}|\p{{Lu}}[\p{{L}}]+)\s+(?:Appellate\s+)?(?:District|Department|Division))?{county}?"), 0.9, false),
        // Delaware Court of Chancery; California Superior Court
        rule(format!(r"(?i)\b{state}\s+(?:Court\s+of\s+(?:Chancery|Appeals?)|Superior\s+Court|Chancery\s+Court|Circuit\s+Court|Court\s+of\s+Common\s+Pleas)"), 0.9, false),
        // San Francisco Superior Court; Cook County Circuit Court
        rule(format!(r"{NAMES}(?:\s+County)?\s+(?:Superior|Circuit|Probate|Family)\s+Court"), 0.85, true),
    ]
});

pub(super) fn find(text: &str, out: &mut Vec<Candidate>) {
    for rule in COURTS.iter() {
        for m in rule.re.find_iter(text) {
            // "The", "Plaintiff" etc. before a county-prefixed court name are not part of it.
            let start = skip_words(text, m.start(), m.end(), is_leading_noise);
            let Some((start, end)) = trim_span(text, start, m.end(), &[',']) else {
                continue;
            };
            if char_before(text, start).is_some_and(char::is_alphanumeric) {
                continue;
            }
            // "the Superior Court" names no particular court.
            let first = text[start..end]
                .split_whitespace()
                .next()
                .unwrap_or_default();
            let generic = ["superior", "circuit", "probate", "family", "county"];
            if rule.place_first && generic.contains(&first.to_lowercase().as_str()) {
                continue;
            }
            // "Tenth Circuit Rules", "6th Circuit Bar": a set of rules or a bar, not the court.
            let next = text[end..].split_whitespace().next().unwrap_or_default();
            let next = next.trim_end_matches(['.', ',', ';', ')']).to_lowercase();
            if matches!(
                next.as_str(),
                "rule" | "rules" | "r" | "bar" | "l.a.r" | "lar"
            ) {
                continue;
            }
            out.push(Candidate::collapsed(
                EntityKind::Court,
                text,
                start,
                end,
                rule.confidence,
            ));
        }
    }
}
