//! ORG and PERSON.
//!
//! Organisations are recognised by their legal suffix (or a `Department of …` style
//! prefix); people by the context around the name (honorifics, roles, signature blocks,
//! `Esq.`, captions) and, last, by the bare shape of two to four capitalised words.

use std::sync::LazyLock;

use regex::Regex;

use super::lexicon::{compile, is_leading_noise, is_not_name_word};
use super::{Candidate, Tier, char_before, collapse_whitespace};
use crate::model::EntityKind;

/// A capitalised word of an organisation name: `Acme`, `AT&T`, `U.S.`, `J.P.`, `3M`, `21st`.
const ORG_WORD: &str = r"(?:\p{Lu}\.(?:\p{Lu}\.)+|\p{Lu}[\p{L}\p{N}&'’\-]*|\d+(?:st|nd|rd|th)?[\p{L}]*)";
/// Lower-case words allowed inside an organisation name.
const ORG_CONNECTOR: &str = r"(?:&|and|of|the|for|de|du|la|von|van|on|in)";

/// Corporate suffixes that end a name (a second one may follow: `Co., Ltd.`).
const STRONG_SUFFIXES: &[&str] = &[
    "Inc.", "Inc", "Incorporated", "LLC", "L.L.C.", "LLP", "L.L.P.", "Ltd.", "Ltd", "Limited",
    "Corp.", "Corp", "Corporation", "Company", "Co.", "P.C.", "PC", "PLLC", "P.L.L.C.",
    "P.A.", "N.A.", "GmbH", "S.A.", "AG", "plc", "PLC", "L.P.", "LP", "LLLP",
];

/// Institutional words that end a name but may also occur inside one.
const WEAK_SUFFIXES: &[&str] = &[
    "Bank", "University", "College", "Association", "Foundation", "Institute", "Agency",
    "Commission", "Authority", "Bureau", "Trust", "Holdings", "Group", "Partners",
    "Partnership", "Hospital", "Society", "Union", "Federation", "Fund", "Department",
    "Board", "Council", "Administration", "Service",
];

/// `(?:Inc\.|INC\.|…)`: every suffix as written and in upper case, longest first.
fn suffix_pattern(words: &[&str]) -> String {
    let mut alts: Vec<String> = Vec::new();
    for w in words {
        alts.push(regex::escape(w));
        let upper = w.to_uppercase();
        if upper != *w {
            alts.push(regex::escape(&upper));
        }
    }
    alts.sort_by_key(|a| std::cmp::Reverse(a.len()));
    alts.dedup();
    format!("(?:{})", alts.join("|"))
}

/// True if `token` (trailing `,` ignored) is a corporate suffix.
fn is_strong_suffix(token: &str) -> bool {
    let t = token.trim_end_matches(',');
    STRONG_SUFFIXES.iter().any(|s| *s == t || s.to_uppercase() == t)
}

/// Name + suffix: `Smith & Wesson LLP`, `Acme Widgets, Inc.`, `Wells Fargo Bank, N.A.`,
/// `Securities and Exchange Commission`, `ACME CORPORATION`.
static ORG_SUFFIXED: LazyLock<Regex> = LazyLock::new(|| {
    let strong = suffix_pattern(STRONG_SUFFIXES);
    let weak = suffix_pattern(WEAK_SUFFIXES);
    compile(&format!(
        r"\b{ORG_WORD}(?:[ \t]+(?:{ORG_CONNECTOR}[ \t]+)*{ORG_WORD}){{0,6}}(?:,?[ \t]+{strong}|[ \t]+{weak}(?-u:\b))(?:,?[ \t]+{strong})*"
    ))
});

/// Prefix forms: `Department of Justice`, `University of California`, `Bank of America,
/// N.A.`, `U.S. Department of Labor`.
static ORG_PREFIXED: LazyLock<Regex> = LazyLock::new(|| {
    let strong = suffix_pattern(STRONG_SUFFIXES);
    compile(&format!(
        r"\b(?:{ORG_WORD}[ \t]+){{0,3}}(?:Department|University|Bank|College|Bureau|Commission|Institute|Agency|DEPARTMENT|UNIVERSITY|BANK)[ \t]+(?:of|OF)[ \t]+(?:(?:the|THE)[ \t]+)?{ORG_WORD}(?:[ \t]+(?:(?:and|&)[ \t]+)?{ORG_WORD}){{0,3}}(?:,?[ \t]+{strong})*"
    ))
});

/// A word of a personal name: `Smith`, `SMITH`, `O'Brien`, `McDonald`, `Smith-Jones`.
const NAME_TOKEN: &str = r"(?:\p{Lu}['’])?\p{Lu}[\p{L}'’\-]+";
/// A middle initial.
const INITIAL: &str = r"\p{Lu}\.";
/// Generational suffix.
const GENERATION: &str = r"(?:,?[ \t]+(?:Jr\.|Sr\.|JR\.|SR\.|II|III|IV)(?-u:\b))?";

/// A personal name after a cue: one to four words, initials allowed after the first.
fn cued_name() -> String {
    format!(r"(?P<name>{NAME_TOKEN}(?:[ \t]+(?:{INITIAL}|{NAME_TOKEN})){{0,3}}{GENERATION})")
}

/// Where a cue stands relative to the name it marks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cue {
    /// `Mr. Jane Roe`: the name starts right after the cue; words after it are cut at the
    /// first word that is not a name.
    Before,
    /// `Jane Roe, Esq.`: the name ends right before the cue; the regex may have started
    /// it early ("Counsel Jane Roe"), so it starts after the last word that is not a name.
    After,
}

/// A context rule for PERSON.
struct PersonCue {
    re: Regex,
    cue: Cue,
    confidence: f32,
}

/// Cues that introduce a personal name, and the confidence of a name found through them.
static PERSON_CUES: LazyLock<Vec<PersonCue>> = LazyLock::new(|| {
    let name = cued_name();
    let patterns = [
        // Mr. Smith, Hon. William H. Alsup, MR. SMITH: (transcript speakers), Dr Roe
        (format!(r"\b(?:Mr|Ms|Mrs|Dr|Hon|Prof|MR|MS|MRS|DR|HON|PROF)\.?[ \t]+{name}"), Cue::Before, 0.85),
        (format!(r"\b(?:Miss|Madam|Honorable|HONORABLE)[ \t]+{name}"), Cue::Before, 0.85),
        // Judge Alsup, Magistrate Judge Jane Roe, Justice Kagan
        (format!(r"\b(?:(?:Chief|Magistrate|District|Circuit|Bankruptcy|Presiding)[ \t]+)?(?:Judge|Justice|JUDGE|JUSTICE)[ \t]+{name}"), Cue::Before, 0.85),
        // Signature blocks: /s/ Jane Roe, By: John Smith, Name: Jane Roe
        (format!(r"/s/[ \t]*{name}"), Cue::Before, 0.85),
        (format!(r"\b(?:By|BY|Name|NAME|Signed|Print(?:ed)?[ \t]+Name)[ \t]*:[ \t]*(?:/s/[ \t]*)?{name}"), Cue::Before, 0.85),
        // Jane Roe, Esq.
        (format!(r"{name},?[ \t]+(?:Esq\.|Esquire|ESQ\.)"), Cue::After, 0.85),
        // Roles: Plaintiff Jane Roe, deponent John Smith, Attorney Mary Major
        (format!(r"\b(?:Plaintiffs?|Defendants?|Petitioners?|Respondents?|Appellants?|Appellees?|Claimants?|Movants?|[Dd]eponent|[Ww]itness|[Aa]ttorney|[Cc]ounsel|Officer|Detective|Agent|Trustee|Arbitrator|Mediator|Sergeant|Deputy|Professor|Senator|Governor)[ \t]+{name}"), Cue::Before, 0.8),
        // Captions: JANE ROE, an individual,
        (format!(r"{name},[ \t]*(?:an[ \t]+individual|individually|AN[ \t]+INDIVIDUAL|INDIVIDUALLY)"), Cue::After, 0.8),
        // Captions: a name on its own line over a Plaintiff/Defendant line.
        (format!(r"(?m)^[ \t]*{name},?[ \t]*\r?\n[ \t]*(?:Plaintiffs?|Defendants?|Petitioners?|Respondents?|PLAINTIFFS?|DEFENDANTS?)\b"), Cue::After, 0.75),
    ];
    patterns
        .into_iter()
        .map(|(p, cue, confidence)| PersonCue { re: compile(&p), cue, confidence })
        .collect()
});

/// `Jane Roe v. John Smith`, `ROE v. SMITH`: the parties of a caption or case citation.
static CAPTION_PARTIES: LazyLock<Regex> = LazyLock::new(|| {
    let party = format!(r"{NAME_TOKEN}(?:[ \t]+(?:{INITIAL}|{NAME_TOKEN})){{0,5}}");
    compile(&format!(
        r"(?P<left>{party}),?[ \t]+(?:v\.|vs\.?|V\.|VS\.?)[ \t]+(?P<right>{party})"
    ))
});

/// Two to four title-case words (with optional middle initials): the bare name shape.
static NAME_RUN: LazyLock<Regex> = LazyLock::new(|| {
    let word = r"(?:\p{Lu}['’])?\p{Lu}\p{Ll}[\p{L}'’\-]*";
    compile(&format!(r"\b{word}(?:[ \t]+(?:{INITIAL}|{word}))+{GENERATION}"))
});

pub(super) fn find(text: &str, out: &mut Vec<Candidate>) {
    find_orgs(text, out);
    find_cued_people(text, out);
    find_caption_parties(text, out);
    find_name_runs(text, out);
}

// ---------------------------------------------------------------------------------------
// ORG
// ---------------------------------------------------------------------------------------

fn find_orgs(text: &str, out: &mut Vec<Candidate>) {
    // Scanned by hand so that, after cutting "Acme LLC and Beta LLC" at the first suffix,
    // the search resumes right after it and still finds "Beta LLC".
    let mut pos = 0;
    while let Some(m) = ORG_SUFFIXED.find_at(text, pos) {
        let (cut_end, org) = shape_org(text, m.start(), m.end());
        if let Some((s, e)) = org {
            out.push(Candidate::collapsed(EntityKind::Org, text, s, e, 0.8));
        }
        pos = cut_end.max(m.start() + 1);
        while !text.is_char_boundary(pos) {
            pos += 1;
        }
    }
    for m in ORG_PREFIXED.find_iter(text) {
        let tokens = tokens(text, m.start(), m.end());
        // Drop trailing role words ("University of California Plaintiff").
        let keep = tokens.iter().rposition(|&(s, e)| !is_leading_noise(&text[s..e]));
        let Some(last) = keep else { continue };
        let end = tokens[last].1;
        let start = first_kept(text, &tokens[..=last]);
        if let Some(start) = start {
            out.push(Candidate::collapsed(EntityKind::Org, text, start, end, 0.8));
        }
    }
}

/// Shapes a suffixed-organisation match: ends it after its first corporate suffix (and
/// any suffix right after), starts it after the last role or sentence word. Returns where
/// the scan should resume and the organisation's span, if one is left.
fn shape_org(text: &str, start: usize, end: usize) -> (usize, Option<(usize, usize)>) {
    let tokens = tokens(text, start, end);
    // End after the first corporate suffix that follows at least one name word.
    let mut last = tokens.len() - 1;
    if let Some(i) = (1..tokens.len()).find(|&i| is_strong_suffix(tok(text, tokens[i]))) {
        last = i;
        while last + 1 < tokens.len() && is_strong_suffix(tok(text, tokens[last + 1])) {
            last += 1;
        }
    }
    let tokens = &tokens[..=last];
    let span_end = tokens[last].1;
    let corporate = is_strong_suffix(tok(text, tokens[last]));

    // Start after the last role/sentence word before the suffix. "and" separates two
    // parties before a corporate suffix ("Jane Roe and Acme Corp."), but is part of an
    // agency's name ("Securities and Exchange Commission").
    let connectors = ["of", "the", "for", "&", "de", "du", "la", "von", "van", "on", "in"];
    let mut first = 0;
    for (i, &t) in tokens[..last].iter().enumerate() {
        let w = tok(text, t);
        let splits = if w.eq_ignore_ascii_case("and") {
            corporate
        } else {
            is_leading_noise(w) && !connectors.contains(&w)
        };
        if splits {
            first = i + 1;
        }
    }
    let Some(span_start) = first_kept(text, &tokens[first..]) else {
        return (span_end, None);
    };
    // What is left before the suffix must be a name, not "The Company", "Insurance
    // Company" or a bare suffix.
    let name_words: Vec<&str> = tokens
        .iter()
        .filter(|&&(s, _)| s >= span_start)
        .map(|&t| tok(text, t))
        .take_while(|w| !is_strong_suffix(w))
        .collect();
    let generic = match name_words.as_slice() {
        [] => true,
        [only] => is_not_name_word(only) || (!corporate && is_leading_noise(only)),
        [only, _weak] if !corporate => is_not_name_word(only),
        _ => false,
    };
    if generic {
        return (span_end, None);
    }
    (span_end, Some((span_start, span_end)))
}

/// Start of the first token that is neither a leading noise word nor a connector.
fn first_kept(text: &str, tokens: &[(usize, usize)]) -> Option<usize> {
    tokens
        .iter()
        .find(|&&(s, e)| {
            let w = &text[s..e];
            let named = w.starts_with(char::is_uppercase)
                || w.starts_with(|c: char| c.is_ascii_digit()) && w.contains(char::is_alphabetic);
            named && !is_leading_noise(w)
        })
        .map(|&(s, _)| s)
}

// ---------------------------------------------------------------------------------------
// PERSON
// ---------------------------------------------------------------------------------------

fn find_cued_people(text: &str, out: &mut Vec<Candidate>) {
    for rule in PERSON_CUES.iter() {
        for caps in rule.re.captures_iter(text) {
            let Some(name) = caps.name("name") else { continue };
            let mut start = name.start();
            if rule.cue == Cue::After {
                let toks = tokens(text, name.start(), name.end());
                if let Some(i) = toks.iter().rposition(|&t| is_not_name_word(tok(text, t))) {
                    let Some(&(s, _)) = toks.get(i + 1) else { continue };
                    start = s;
                }
            }
            if let Some((s, e)) = person_span(text, start, name.end(), 1) {
                out.push(person(text, s, e, rule.confidence, Tier::Named));
            }
        }
    }
}

fn find_caption_parties(text: &str, out: &mut Vec<Candidate>) {
    for caps in CAPTION_PARTIES.captures_iter(text) {
        for (side, group) in [("left", caps.name("left")), ("right", caps.name("right"))] {
            let Some(g) = group else { continue };
            let toks = tokens(text, g.start(), g.end());
            // Of the left side keep the words after the last non-name word ("In re",
            // "See"); of the right side the words before the first one.
            let run: &[(usize, usize)] = if side == "left" {
                let cut = toks.iter().rposition(|&t| is_not_name_word(tok(text, t)));
                &toks[cut.map_or(0, |i| i + 1)..]
            } else {
                let cut = toks.iter().position(|&t| is_not_name_word(tok(text, t)));
                &toks[..cut.unwrap_or(toks.len())]
            };
            let (Some(first), Some(last)) = (run.first(), run.last()) else { continue };
            if let Some((s, e)) = person_span(text, first.0, last.1, 2) {
                out.push(person(text, s, e, 0.7, Tier::Named));
            }
        }
    }
}

fn find_name_runs(text: &str, out: &mut Vec<Candidate>) {
    for m in NAME_RUN.find_iter(text) {
        let toks = tokens(text, m.start(), m.end());
        // Split the run at words that are not names; each piece is a candidate.
        let mut piece_start = 0;
        for i in 0..=toks.len() {
            let boundary = i == toks.len() || is_not_name_word(tok(text, toks[i]));
            if !boundary {
                continue;
            }
            let piece = &toks[piece_start..i];
            piece_start = i + 1;
            let full_words = piece.iter().filter(|&&t| !is_initial(tok(text, t))).count();
            if !(2..=4).contains(&full_words) {
                continue;
            }
            let (Some(first), Some(last)) = (piece.first(), piece.last()) else { continue };
            if let Some((s, e)) = person_span(text, first.0, last.1, 2) {
                out.push(person(text, s, e, 0.6, Tier::Guess));
            }
        }
    }
}

/// Shapes a personal name found at `start..end`: cut at the first non-name word, drop a
/// possessive `'s` and trailing punctuation, and require `min_words` full words. `None`
/// when what is left is not a name.
fn person_span(text: &str, start: usize, end: usize, min_words: usize) -> Option<(usize, usize)> {
    if char_before(text, start).is_some_and(|c| c.is_alphanumeric()) {
        return None;
    }
    let toks = tokens(text, start, end);
    let mut kept: Vec<(usize, usize)> = Vec::new();
    for &t in &toks {
        let w = tok(text, t);
        let generation = matches!(w.trim_start_matches(','), "Jr." | "Sr." | "JR." | "SR." | "II" | "III" | "IV");
        if is_not_name_word(w) && !generation {
            break;
        }
        kept.push(t);
    }
    // A name starts and ends with a full word (a generational suffix may end it).
    while kept.last().is_some_and(|&t| is_initial(tok(text, t))) {
        kept.pop();
    }
    let (&(s, _), &(_, mut e)) = (kept.first()?, kept.last()?);
    if is_initial(tok(text, kept[0])) {
        return None;
    }
    let full_words = kept.iter().filter(|&&t| !is_initial(tok(text, t))).count();
    if full_words < min_words {
        return None;
    }
    let w = &text[s..e];
    for tail in ["'s", "’s", "'S", "’S", ","] {
        if w.ends_with(tail) {
            e -= tail.len();
        }
    }
    // Transcript speakers: "MR. SMITH:" ends the name at the colon.
    let e = s + text[s..e].trim_end_matches([':', ';']).len();
    (e > s).then_some((s, e))
}

fn person(text: &str, start: usize, end: usize, confidence: f32, tier: Tier) -> Candidate {
    let normalized = collapse_whitespace(&text[start..end]);
    let mut c = Candidate::new(EntityKind::Person, start, end, normalized, confidence);
    c.tier = tier;
    c
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

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

/// `A.` — a single capital followed by a dot.
fn is_initial(word: &str) -> bool {
    let mut chars = word.chars();
    matches!((chars.next(), chars.next(), chars.next()), (Some(c), Some('.'), None) if c.is_uppercase())
}
