//! LOCATION: street addresses, `City, ST` pairs, counties, and states and cities from the
//! built-in list.

use std::sync::LazyLock;

use regex::Regex;

use super::lexicon::{
    city_pattern, compile, is_leading_noise, is_not_name_word, state_code_pattern,
    state_name_pattern,
};
use super::{Candidate, char_after, char_before, skip_words, trim_span};
use crate::model::EntityKind;

/// One to four capitalised words on one line: a city or county name.
const PLACE: &str = r"\p{Lu}[\p{L}'’\-]*\.?(?:[ \t]+\p{Lu}[\p{L}'’\-]*\.?){0,3}";

/// `, San Francisco, CA 94103` / `, San Francisco, California` (also after a line break,
/// as in an address block).
fn city_state_tail() -> String {
    format!(
        r"(?:,[ \t]*|[ \t]*\r?\n[ \t]*){PLACE},[ \t]*(?:{codes}|{names}(?-u:\b))(?:[ \t]+\d{{5}}(?:-\d{{4}})?)?",
        codes = state_code_pattern(),
        names = state_name_pattern(),
    )
}

/// `1200 Market Street, Suite 400, San Francisco, CA 94103` as one mention.
static STREET_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    let word = r"(?:\p{Lu}[\p{L}'’\-]*\.?|\d+(?:st|nd|rd|th))";
    let kind = r"(?:Street|Avenue|Boulevard|Road|Drive|Lane|Way|Place|Court|Plaza|Parkway|Square|Terrace|Highway|Circle|Center|Alley|(?:St|Ave|Blvd|Rd|Dr|Ln|Pl|Ct|Pkwy|Sq|Hwy)(?-u:\b)\.?)";
    let unit = r"(?:,?[ \t]+(?:Suite|Ste\.|Floor|Fl\.|Unit|Room|Rm\.|Apt\.|Apartment|#)[ \t]*[A-Za-z0-9\-]+|,?[ \t]+\d+(?:st|nd|rd|th)[ \t]+Floor)*";
    compile(&format!(
        r"\b\d{{1,6}}[ \t]+(?:(?:[NSEW]\.?[ \t]+)?(?:{word}[ \t]+){{1,4}}{kind}|Broadway){unit}(?:{tail})?",
        tail = city_state_tail()
    ))
});

/// `P.O. Box 1234, Dover, DE 19901`.
static PO_BOX: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(r"\bP\.?[ \t]?O\.?[ \t]+Box[ \t]+\d+(?:{tail})?", tail = city_state_tail()))
});

/// `Palo Alto, CA 94301`, `Austin, Texas`.
static CITY_STATE: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"\b{PLACE},[ \t]*(?:{codes}|{names}(?-u:\b))(?:[ \t]+\d{{5}}(?:-\d{{4}})?)?",
        codes = state_code_pattern(),
        names = state_name_pattern(),
    ))
});

/// `County of San Mateo`, `COUNTY OF SAN FRANCISCO`, `Cook County`.
static COUNTY: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(r"\b(?:County[ \t]+of|COUNTY[ \t]+OF)[ \t]+{PLACE}|\b{PLACE}[ \t]+(?:County|COUNTY)\b"))
});

/// States and major cities on their own, and `Washington, D.C.`.
static GAZETTEER: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"\bWashington,?[ \t]+D\.[ \t]?C\.|\b(?:{cities}|{states})\b",
        cities = city_pattern(),
        states = state_name_pattern(),
    ))
});

pub(super) fn find(text: &str, out: &mut Vec<Candidate>) {
    for m in STREET_ADDRESS.find_iter(text).chain(PO_BOX.find_iter(text)) {
        if char_before(text, m.start()).is_some_and(|c| c.is_alphanumeric() || c == '-') {
            continue;
        }
        if let Some((s, e)) = trim_span(text, m.start(), m.end(), &[',']) {
            out.push(Candidate::collapsed(EntityKind::Location, text, s, e, 0.85));
        }
    }
    for m in CITY_STATE.find_iter(text) {
        // The place must be a place: "Plaintiff Jane Roe, CA" keeps only what follows
        // the last role or document word.
        let start = last_run_start(text, m.start(), m.end());
        if let Some((s, e)) = trim_span(text, start, m.end(), &[',']) {
            if text[s..e].starts_with(|c: char| c.is_uppercase()) && text[s..e].contains(',') {
                out.push(Candidate::collapsed(EntityKind::Location, text, s, e, 0.85));
            }
        }
    }
    for m in COUNTY.find_iter(text) {
        let start = skip_words(text, m.start(), m.end(), is_leading_noise);
        let span = &text[start..m.end()];
        if span.eq_ignore_ascii_case("county") || !span.contains(' ') {
            continue;
        }
        if let Some((s, e)) = trim_span(text, start, m.end(), &['.', ',']) {
            out.push(Candidate::collapsed(EntityKind::Location, text, s, e, 0.8));
        }
    }
    for m in GAZETTEER.find_iter(text) {
        // "Virginia Smith", "Texas Instruments": a place name followed by a name-like
        // capitalised word is more likely part of that name.
        let next = text[m.end()..].strip_prefix(' ').unwrap_or_default();
        let next_word: &str = next.split(|c: char| !c.is_alphanumeric()).next().unwrap_or_default();
        let followed_by_name = next_word.chars().next().is_some_and(char::is_uppercase)
            && next_word.chars().nth(1).is_some_and(char::is_lowercase)
            && !is_not_name_word(next_word);
        let glued = char_before(text, m.start()).is_some_and(char::is_alphanumeric)
            || char_after(text, m.end()).is_some_and(char::is_alphanumeric);
        if followed_by_name || glued {
            continue;
        }
        out.push(Candidate::collapsed(EntityKind::Location, text, m.start(), m.end(), 0.8));
    }
}

/// Start of the last run of words in `start..end` that holds no role, document or
/// function word before the comma (`Plaintiff Jane Roe, CA` → `Jane Roe, CA`).
fn last_run_start(text: &str, start: usize, end: usize) -> usize {
    let span = &text[start..end];
    let comma = span.find(',').unwrap_or(span.len());
    let mut run_start = start;
    let mut pos = 0;
    for word in span[..comma].split(' ') {
        if !word.is_empty() && is_not_name_word(word) && !is_place_word(word) {
            run_start = start + pos + word.len() + 1;
        }
        pos += word.len() + 1;
    }
    run_start.min(start + comma)
}

/// Words of place names that the not-a-name list holds for other reasons.
fn is_place_word(word: &str) -> bool {
    matches!(
        word.trim_end_matches('.').to_lowercase().as_str(),
        "new" | "north" | "south" | "east" | "west" | "city" | "park" | "beach" | "fort"
    )
}
