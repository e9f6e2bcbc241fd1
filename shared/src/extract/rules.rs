//! Rule-based extractor for US legal text: regexes plus small built-in word lists,
//! deterministic and offline. It is the default extractor when no LLM is configured, and
//! the baseline an LLM extractor is compared with.
//!
//! ## Rule families
//!
//! Each family lives in its own file under `rules/` and proposes *candidates* (byte spans
//! with a kind, a normalised value and a confidence). [`RuleExtractor::extract`] then
//! resolves overlaps and converts byte offsets to character offsets in one pass.
//!
//! - **EMAIL** (`contact`): `local@domain.tld`; normalised to lower case.
//! - **PHONE** (`contact`): NANP numbers (`(415) 555-0142`, `415-555-0142`,
//!   `415.555.0142`, `+1 415 555 0142`); normalised to `+14155550142`. Digits glued to
//!   hyphens, slashes or colons on either side (case numbers, Bates ranges) are rejected.
//! - **DATE** (`dates`): `March 4, 2024`, `4 March 2024`, `Mar. 4, 2024`, `March 4th, 2024`,
//!   `Tuesday, January 28, 2025`, `03/04/2024` (US order), `2024-03-04`, `4th day of March,
//!   2024` (without the leading "the"/"this"), and month-and-year (`March 2024`, normalised
//!   `2024-03`); normalised to ISO 8601; impossible dates (`February 30`) are rejected
//!   through `chrono`.
//! - **MONEY** (`money`): `$250,000`, `$1,250,000.00`, `$2.5 million`, `USD 4,500`,
//!   `250,000 dollars`, `€10,000`, `£`, `EUR`/`GBP`/`CAD` codes; normalised to
//!   `USD 250000.00` (code, space, amount with two decimals and no separators).
//! - **CASE_NUMBER** (`citations`): federal dockets (`3:24-cv-01234-JST`), numbers after a
//!   `Case No.`/`Civil Action No.`/`Docket No.`/`Index No.` label or a docket-shaped number
//!   after a bare `No.` (the label is not part of the mention), and state forms
//!   (`CGC-24-512345`, `2023-CV-004512`, `24STCV01234`).
//! - **STATUTE** (`citations`): `U.S.C.`/`C.F.R.` citations with `§` (a `§§` list is taken
//!   whole, `et seq.` is not), Federal Rules (`Fed. R. Civ. P. 12(b)(6)`, `Federal Rule of
//!   Evidence 702`, `Rule 56 of the Federal Rules of Civil Procedure`), state codes (`Cal.
//!   Bus. & Prof. Code § 17200`, `Cal. Code Civ. Proc. § 425.16`), `Section 10(b) of the …
//!   Act of 1934`, an Act with its codification (`Defend Trade Secrets Act, 18 U.S.C.
//!   § 1836`), named Acts, constitutions (`U.S. Const. amend. XIV`), and case-law citations
//!   (`Bell Atlantic Corp. v. Twombly, 550 U.S. 544 (2007)`, `In re …, 275 F.R.D. 666`, the
//!   short form `Iqbal, 556 U.S. at 678`); normalised by collapsing whitespace.
//! - **COURT** (`courts`): federal district, bankruptcy, appellate and supreme courts,
//!   state superior/supreme/chancery/appeal courts with their county, in title case or
//!   the upper case of captions (a court line and the district line under it are one
//!   mention).
//! - **ORG** (`names`): capitalised names ending in a legal suffix (`Inc.`, `LLC`, `& Co.`,
//!   `N.A.`, `Bank`, `University`, `Department`, …), law firms with commas (`Harlan, Bishop
//!   & Greer LLP`), institutions (`Department of Labor`, `University of California`) and
//!   municipal bodies (`City of Alder Bay`, `Office of the City Attorney`). Role and
//!   sentence words ("The", "Plaintiff", "By") are cut off the front, descriptions before
//!   "of" ("Board of Directors of …") too, and "and" separates two companies.
//! - **PERSON** (`names`): names after honorifics and titles (`Mr.`, `Hon.`, `Judge`,
//!   `Officer`, `MR. SMITH:`), party roles (`Plaintiff Jane Roe`, two words at least), in
//!   signature blocks (`/s/`, `By:`, `Name:`, `Reported by:`), before `Esq.` or `, an
//!   individual` / `, Plaintiff`, in deposition titles, on a judge's signature line, as
//!   parties of `X v. Y`; and — with the lowest confidence — runs of two to four
//!   capitalised words, none of them a common legal or English capitalised word, that
//!   start with a common given name, carry a middle initial, or share a word with a name
//!   found through a cue in the same text.
//! - **ORG from layout** (`blocks`, after the others): the lines right above a street
//!   address in a letterhead or signature block (`Jackson Kelly` under `Mr. William S.
//!   Mattingly`; `AMERICAN CIVIL LIBERTIES / UNION FOUNDATION OF / NORTHERN CALIFORNIA`
//!   under an e-mail), and a name ending a line on a dangling word (`OFFICE OF WORKERS'`)
//!   continued onto the next line.
//! - **LOCATION** (`places`): street addresses (with suite, city, state and ZIP as one
//!   mention, or with a town alone), `City, ST` and `City, State` pairs, `State of X`,
//!   `County of X` / `X County`, US states and major cities from a built-in list, and
//!   bare mentions of cities the text itself names as such (`City of Alder Bay` → `Alder
//!   Bay`).
//!
//! ## Overlaps
//!
//! Candidates are accepted greedily by tier, then length: the specific kinds (EMAIL,
//! PHONE, CASE_NUMBER, STATUTE, MONEY, DATE) first, then COURT, then ORG, LOCATION and
//! the context-based PERSON rules, and last the bare capitalised-name heuristic. A
//! candidate that overlaps an accepted one is dropped, so the output never overlaps and
//! a LOCATION inside a COURT name, or a PHONE inside a case number, is not emitted.
//!
//! ## Performance
//!
//! Every regex is compiled once per process (`LazyLock`), uses ASCII word boundaries (see
//! `lexicon::compile`) and bounded repetition only; the `regex` crate guarantees linear
//! time, so no input is pathological. About 100 kB of legal text takes tens of
//! milliseconds.

mod blocks;
mod citations;
mod contact;
mod courts;
mod dates;
mod lexicon;
mod money;
mod names;
mod offsets;
mod places;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::model::{EntityKind, RawMention};

use offsets::CharOffsets;

/// Rule-based entity extractor (regexes + gazetteers), deterministic and offline.
///
/// It holds no state: the compiled regexes are process-wide statics built on first use,
/// so creating one per call is free and a shared one is `Sync`.
#[derive(Debug, Default)]
pub struct RuleExtractor {}

impl RuleExtractor {
    /// Name used in cache keys (`chunk:v{N}:{sha}:entities:{name}-{version}`).
    pub const NAME: &'static str = "rules";
    /// Bump whenever a rule changes what is found, so cached chunk results are not reused.
    pub const VERSION: u32 = 4;

    /// A new extractor. Cheap: the regexes are compiled once per process, on first use.
    pub fn new() -> Self {
        RuleExtractor {}
    }

    /// Mentions in `text`, sorted by start; offsets in characters relative to `text`,
    /// end-exclusive, never overlapping one another.
    pub fn extract(&self, text: &str) -> Vec<RawMention> {
        let mut candidates = Vec::new();
        contact::find(text, &mut candidates);
        dates::find(text, &mut candidates);
        money::find(text, &mut candidates);
        citations::find(text, &mut candidates);
        courts::find(text, &mut candidates);
        places::find(text, &mut candidates);
        names::find(text, &mut candidates);
        blocks::find(text, &mut candidates);

        let accepted = resolve_overlaps(candidates);
        let mut offsets = CharOffsets::new(text);
        accepted
            .into_iter()
            .map(|c| RawMention {
                kind: c.kind,
                text: text[c.start..c.end].to_string(),
                normalized: c.normalized,
                start: offsets.char_at(c.start),
                end: offsets.char_at(c.end),
                confidence: c.confidence,
            })
            .collect()
    }
}

/// How specific a rule is: a lower tier wins any overlap with a higher one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    /// Shapes that are hard to mistake: EMAIL, PHONE, CASE_NUMBER, STATUTE, MONEY, DATE.
    Specific,
    /// Court names, which contain places and organisation-like words.
    Court,
    /// ORG, LOCATION and PERSON found through a suffix, a list or a context cue.
    Named,
    /// PERSON found only because a few capitalised words stand together.
    Guess,
}

/// A proposed mention, in **byte** offsets into the text being extracted.
#[derive(Debug, Clone)]
struct Candidate {
    kind: EntityKind,
    start: usize,
    end: usize,
    normalized: String,
    confidence: f32,
    tier: Tier,
}

impl Candidate {
    /// A candidate in the tier its kind belongs to.
    fn new(
        kind: EntityKind,
        start: usize,
        end: usize,
        normalized: String,
        confidence: f32,
    ) -> Self {
        let tier = match kind {
            EntityKind::Email
            | EntityKind::Phone
            | EntityKind::CaseNumber
            | EntityKind::Statute
            | EntityKind::Money
            | EntityKind::Date
            | EntityKind::Citation => Tier::Specific,
            EntityKind::Court => Tier::Court,
            EntityKind::Org
            | EntityKind::Location
            | EntityKind::Person
            | EntityKind::CaseName
            | EntityKind::Address => Tier::Named,
        };
        Candidate {
            kind,
            start,
            end,
            normalized,
            confidence,
            tier,
        }
    }

    /// A candidate whose normalised form is its text with whitespace collapsed.
    fn collapsed(kind: EntityKind, text: &str, start: usize, end: usize, confidence: f32) -> Self {
        Candidate::new(
            kind,
            start,
            end,
            collapse_whitespace(&text[start..end]),
            confidence,
        )
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    /// Tie-break between kinds of the same tier and length (lower wins).
    fn kind_rank(&self) -> u8 {
        match self.kind {
            EntityKind::CaseNumber => 0,
            EntityKind::Citation => 1,
            EntityKind::Statute => 2,
            EntityKind::Email => 3,
            EntityKind::Phone => 4,
            EntityKind::Money => 5,
            EntityKind::Date => 6,
            EntityKind::Court => 7,
            EntityKind::CaseName => 8,
            EntityKind::Address => 9,
            EntityKind::Org => 10,
            EntityKind::Location => 11,
            EntityKind::Person => 12,
        }
    }
}

/// Keeps the best candidates such that none overlap: by tier, then longest, then kind,
/// then confidence, then earliest. Returns them sorted by start.
fn resolve_overlaps(mut candidates: Vec<Candidate>) -> Vec<Candidate> {
    candidates.retain(|c| c.end > c.start);
    candidates.sort_by(|a, b| {
        a.tier
            .cmp(&b.tier)
            .then(b.len().cmp(&a.len()))
            .then(a.kind_rank().cmp(&b.kind_rank()))
            .then(b.confidence.total_cmp(&a.confidence))
            .then(a.start.cmp(&b.start))
            .then(a.normalized.cmp(&b.normalized))
    });
    // Accepted spans keyed by start; they never overlap, so the only one that can overlap
    // a new span is the last one starting before its end.
    let mut taken: BTreeMap<usize, Candidate> = BTreeMap::new();
    for c in candidates {
        let clash = taken
            .range(..c.end)
            .next_back()
            .is_some_and(|(_, prev)| prev.end > c.start);
        if !clash {
            taken.insert(c.start, c);
        }
    }
    taken.into_values().collect()
}

/// `s` with every run of whitespace replaced by one space and the ends trimmed.
fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Shrinks `start..end` so it neither starts nor ends with whitespace or the given
/// punctuation. Returns `None` if nothing is left.
fn trim_span(text: &str, start: usize, end: usize, punct: &[char]) -> Option<(usize, usize)> {
    let slice = &text[start..end];
    let trimmed_end = slice.trim_end_matches(|c: char| c.is_whitespace() || punct.contains(&c));
    let trimmed = trimmed_end.trim_start_matches(|c: char| c.is_whitespace() || punct.contains(&c));
    if trimmed.is_empty() {
        return None;
    }
    let s = start + (trimmed_end.len() - trimmed.len());
    Some((s, s + trimmed.len()))
}

/// Byte offset of the first word of `start..end` for which `skip` is false (the end of
/// the span if every word is skipped). Words are separated by whitespace.
fn skip_words(text: &str, start: usize, end: usize, skip: impl Fn(&str) -> bool) -> usize {
    let mut pos = start;
    loop {
        let rest = &text[pos..end];
        let word_start = pos + (rest.len() - rest.trim_start().len());
        let word_len = text[word_start..end]
            .find(char::is_whitespace)
            .unwrap_or(end - word_start);
        if word_len == 0 || !skip(&text[word_start..word_start + word_len]) {
            return word_start;
        }
        pos = word_start + word_len;
    }
}

/// Whitespace-separated tokens of `start..end`, as byte spans.
fn tokens(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut tok_start = None;
    for (i, c) in text[start..end].char_indices() {
        match (c.is_whitespace(), tok_start) {
            (true, Some(s)) => {
                out.push((start + s, start + i));
                tok_start = None;
            }
            (false, None) => tok_start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = tok_start {
        out.push((start + s, end));
    }
    out
}

fn tok(text: &str, (s, e): (usize, usize)) -> &str {
    &text[s..e]
}

/// True if byte `i` starts a word: the text before it does not end in a letter or digit.
fn starts_word(text: &str, i: usize) -> bool {
    !char_before(text, i).is_some_and(char::is_alphanumeric)
}

/// The character just before byte `i`, if any.
fn char_before(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

/// The character at byte `i`, if any.
fn char_after(text: &str, i: usize) -> Option<char> {
    text[i..].chars().next()
}
