//! ADDRESS: street addresses and P.O. boxes (with their unit, town, state and ZIP lines).
//! LOCATION: `City, ST` pairs, `State of X`, counties, states and cities
//! from the built-in list, and places the document itself names as cities.

use std::sync::LazyLock;

use regex::Regex;

use super::lexicon::{
    city_pattern, compile, is_given_name, is_leading_noise, is_not_name_word, state_code_pattern,
    state_name_pattern,
};
use super::{Candidate, char_after, char_before, skip_words, starts_word, tok, tokens, trim_span};
use crate::model::EntityKind;

/// One to four capitalised words on one line: a city or county name.
const PLACE: &str = r"\p{Lu}[\p{L}'’\-]*\.?(?:[ \t]+\p{Lu}[\p{L}'’\-]*\.?){0,3}";

/// `, San Francisco, CA 94103` / `, San Francisco, California` (also after a line break,
/// as in an address block). The city is the `city` group.
fn city_state_tail() -> String {
    format!(
        r"(?:,[ \t]*|[ \t]*\r?\n[ \t]*)(?P<city>{PLACE}),[ \t]*(?:{codes}|(?i:{names})\b)(?:[ \t]+\d{{5}}(?:-\d{{4}})?)?",
        codes = state_code_pattern(),
        names = state_name_pattern(),
    )
}

/// A town named after an address without its state (`52 Oak Hollow Court, Folsom`).
const TOWN: &str = r"\p{Lu}[\p{L}'’\-]*(?:[ \t]+\p{Lu}[\p{L}'’\-]*){0,2}";

/// `1200 Market Street, Suite 400, San Francisco, CA 94103` as one mention; also
/// `52 Oak Hollow Court, Folsom` (the `town` group) when no state follows.
static STREET_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    let word = r"(?:\p{Lu}[\p{L}'’\-]*\.?|\d+(?:st|nd|rd|th|ST|ND|RD|TH))";
    let kind = r"(?i:(?:Street|Avenue|Boulevard|Road|Drive|Lane|Way|Place|Court|Plaza|Parkway|Square|Terrace|Highway|Circle|Center|Alley|Row|St|Ave|Blvd|Rd|Dr|Ln|Pl|Ct|Pkwy|Sq|Hwy)\b\.?)(?:,?[ \t]+(?:N\.W\.|S\.W\.|N\.E\.|S\.E\.|(?:NW|SW|NE|SE)\b))?";
    let unit = r"(?:(?:,?[ \t]+|[ \t]*\r?\n[ \t]*)(?i:Suite|Ste\.|Floor|Fl\.|Unit|Room|Rm\.|Apt\.|Apartment)[ \t]*[A-Za-z0-9\-.]*[0-9A-Z][A-Za-z0-9\-]*|[ \t]+#[ \t]*[A-Za-z0-9\-]+|[ \t]*\r?\n[ \t]*\p{Lu}-?\d{2,5}\b|,?[ \t]+\d+(?:st|nd|rd|th)[ \t]+(?i:Floor))*";
    compile(&format!(
        r"\b(?:\d{{1,6}}|One|Two|Three)[ \t]*(?:\r?\n[ \t]*)?(?:(?:[NSEW]\.?[ \t]+)?(?:{word}[ \t]+){{1,4}}{kind}|Broadway){unit}(?:{tail}|,[ \t]*(?P<town>{TOWN}))?",
        tail = city_state_tail()
    ))
});

/// `P.O. Box 1234, Dover, DE 19901`.
static PO_BOX: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"\bP\.?[ \t]?O\.?[ \t]+Box[ \t]+\d+(?:{tail})?",
        tail = city_state_tail()
    ))
});

/// `Palo Alto, CA 94301`, `Austin, Texas`.
static CITY_STATE: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"(?P<city>{PLACE}),[ \t]*(?:{codes}|(?i:{names})\b)(?:[ \t]+\d{{5}}(?:-\d{{4}})?)?",
        codes = state_code_pattern(),
        names = state_name_pattern(),
    ))
});

/// `State of California`, `Commonwealth of Massachusetts`.
static STATE_OF: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"\b(?:State|Commonwealth|STATE|COMMONWEALTH)\s+(?:of|OF)\s+{names}\b",
        names = state_name_pattern(),
    ))
});

/// `County of San Mateo`, `COUNTY OF SAN FRANCISCO`, `Cook County`.
static COUNTY: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"\b(?:County[ \t]+of|COUNTY[ \t]+OF)[ \t]+{PLACE}|{PLACE}[ \t]+(?:County|COUNTY)\b"
    ))
});

/// States and major cities on their own, and `Washington, D.C.`.
static GAZETTEER: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"\bWashington,?[ \t]+D\.[ \t]?C\.|\b(?:{cities}|{states})\b",
        cities = city_pattern(),
        states = state_name_pattern(),
    ))
});

/// `City of Alder Bay`: the document says that Alder Bay is a city.
static CITY_OF: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"\b(?:City|Town|Village|CITY|TOWN|VILLAGE)[ \t]+(?:of|OF)[ \t]+(?P<city>{PLACE})"
    ))
});

pub(super) fn find(text: &str, out: &mut Vec<Candidate>) {
    // Cities the text names as such; their bare mentions are found last.
    let mut cities: Vec<&str> = Vec::new();
    find_addresses(text, &mut cities, out);
    find_city_state_pairs(text, out);
    for m in STATE_OF.find_iter(text) {
        out.push(location(text, m.start(), m.end(), 0.85));
    }
    find_counties(text, out);
    find_listed_places(text, out);
    for caps in CITY_OF.captures_iter(text) {
        cities.extend(
            caps.name("city")
                .and_then(|c| city_name(text, c.start(), c.end())),
        );
    }
    find_named_cities(text, &cities, out);
}

fn location(text: &str, start: usize, end: usize, confidence: f32) -> Candidate {
    Candidate::collapsed(EntityKind::Location, text, start, end, confidence)
}

/// Street addresses and P.O. boxes; the cities of their last lines go into `cities`.
fn find_addresses<'t>(text: &'t str, cities: &mut Vec<&'t str>, out: &mut Vec<Candidate>) {
    let matches = STREET_ADDRESS
        .captures_iter(text)
        .chain(PO_BOX.captures_iter(text));
    for caps in matches {
        let Some(m) = caps.get(0) else { continue };
        if char_before(text, m.start()).is_some_and(|c| c.is_alphanumeric() || c == '-') {
            continue;
        }
        // A capitalised word after the address is a town only if it cannot be anything
        // else: "100 Main Street, Plaintiff alleges" or "…, Jane Roe received" are not.
        let mut end = m.end();
        if let Some(town) = caps.name("town") {
            let words: Vec<&str> = town.as_str().split_whitespace().collect();
            let is_town = !words.iter().any(|w| is_not_name_word(w))
                && !words.first().is_some_and(|w| is_given_name(w));
            if is_town {
                cities.push(town.as_str());
            } else {
                end = town.start();
            }
        }
        if let Some((s, e)) = trim_span(text, m.start(), end, &[',']) {
            out.push(Candidate::collapsed(EntityKind::Address, text, s, e, 0.85));
        }
        cities.extend(caps.name("city").map(|c| c.as_str()));
    }
}

/// `Palo Alto, CA`. The city is not learned for later bare mentions: "Jane Roe, CA"
/// would make every "Roe" a place.
fn find_city_state_pairs(text: &str, out: &mut Vec<Candidate>) {
    for caps in CITY_STATE.captures_iter(text) {
        let (Some(m), Some(city)) = (caps.get(0), caps.name("city")) else {
            continue;
        };
        // The place must be a place: "Plaintiff Jane Roe, CA" keeps only what follows
        // the last role or document word.
        let start = last_run_start(text, m.start(), city.end());
        if start >= city.end() || !starts_word(text, start) {
            continue;
        }
        if let Some((s, e)) = trim_span(text, start, m.end(), &[',']) {
            out.push(location(text, s, e, 0.85));
        }
    }
}

/// `County of San Mateo`, `San Mateo County`, but not "the County".
fn find_counties(text: &str, out: &mut Vec<Candidate>) {
    for m in COUNTY.find_iter(text) {
        let start = skip_words(text, m.start(), m.end(), is_leading_noise);
        let span = &text[start..m.end()];
        if span.eq_ignore_ascii_case("county") || !span.contains(' ') || !starts_word(text, start) {
            continue;
        }
        if let Some((s, e)) = trim_span(text, start, m.end(), &['.', ',']) {
            out.push(location(text, s, e, 0.8));
        }
    }
}

/// States and major cities from the built-in lists.
fn find_listed_places(text: &str, out: &mut Vec<Candidate>) {
    for m in GAZETTEER.find_iter(text) {
        // "Virginia Smith", "Texas Instruments": a place name followed by a name-like
        // capitalised word is more likely part of that name.
        let next = text[m.end()..].strip_prefix(' ').unwrap_or_default();
        let next_word = next
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default();
        let followed_by_name = next_word.chars().next().is_some_and(char::is_uppercase)
            && next_word.chars().nth(1).is_some_and(char::is_lowercase)
            && !is_not_name_word(next_word);
        let glued = char_before(text, m.start()).is_some_and(char::is_alphanumeric)
            || char_after(text, m.end()).is_some_and(char::is_alphanumeric);
        if !(followed_by_name || glued) {
            out.push(location(text, m.start(), m.end(), 0.8));
        }
    }
}

/// The city in `text[start..end]` after "City of": "City of Alder Bay Police Department"
/// names Alder Bay, so the city ends before the first word that is not a place word.
fn city_name(text: &str, start: usize, end: usize) -> Option<&str> {
    let start = skip_words(text, start, end, is_leading_noise);
    let words: Vec<(usize, usize)> = tokens(text, start, end)
        .into_iter()
        .take_while(|&t| !is_not_name_word(tok(text, t)) || is_place_word(tok(text, t)))
        .collect();
    let (first, last) = (words.first()?, words.last()?);
    Some(&text[first.0..last.1])
}

/// Bare mentions of the cities in `cities` ("421 Calder Street in Alder Bay"), in the
/// case written and in title case, so "CITY OF ALDER BAY" teaches "Alder Bay". The
/// cities come from address lines and "City of X" only, where the place is certain; a
/// name that could be a person's ("Jordan") is not learned.
fn find_named_cities(text: &str, cities: &[&str], out: &mut Vec<Candidate>) {
    let mut forms: Vec<String> = Vec::new();
    for city in cities {
        let city = city.trim_end_matches('.');
        let personal = city.split_whitespace().any(is_given_name);
        if city.len() < 3 || is_leading_noise(city) || personal {
            continue;
        }
        forms.push(city.to_string());
        forms.push(title_case(city));
    }
    forms.sort();
    forms.dedup();
    for form in &forms {
        for (s, _) in text.match_indices(form.as_str()) {
            let e = s + form.len();
            let glued = char_before(text, s).is_some_and(char::is_alphanumeric)
                || char_after(text, e).is_some_and(char::is_alphanumeric);
            if !glued {
                out.push(Candidate::collapsed(EntityKind::Location, text, s, e, 0.7));
            }
        }
    }
}

/// `ALDER BAY` → `Alder Bay`.
fn title_case(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first
                    .to_uppercase()
                    .chain(chars.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

/// Start of the last run of words in `start..end` that holds no role, document or
/// function word (`Plaintiff Jane Roe, CA` → `Jane Roe`).
fn last_run_start(text: &str, start: usize, end: usize) -> usize {
    let mut run_start = start;
    let mut pos = start;
    for word in text[start..end].split(' ') {
        if !word.is_empty() && is_not_name_word(word) && !is_place_word(word) {
            run_start = pos + word.len() + 1;
        }
        pos += word.len() + 1;
    }
    run_start.min(end)
}

/// Words of place names that the not-a-name list holds for other reasons.
fn is_place_word(word: &str) -> bool {
    matches!(
        word.trim_end_matches('.').to_lowercase().as_str(),
        "new" | "north" | "south" | "east" | "west" | "city" | "park" | "beach" | "fort" | "lake"
    )
}
