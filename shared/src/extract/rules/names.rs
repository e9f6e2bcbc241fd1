//! ORG and PERSON.
//!
//! Organisations are recognised by their legal suffix (or a `Department of …` style
//! prefix); people by the context around the name (honorifics, roles, signature blocks,
//! `Esq.`, captions) and, last, by the bare shape of two to four capitalised words.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::lexicon::{compile, fold, is_given_name, is_leading_noise, is_not_name_word};
use super::{Candidate, Tier, collapse_whitespace, starts_word, tok, tokens};
use crate::model::EntityKind;

/// A capitalised word of an organisation name: `Acme`, `AT&T`, `U.S.`, `J.P.`, `3M`, `21st`.
const ORG_WORD: &str =
    r"(?:\p{Lu}\.(?:\p{Lu}\.)+|\p{Lu}[\p{L}\p{N}&'’\-]*|\d+(?:st|nd|rd|th)?[\p{L}]*)";
/// Lower-case words allowed inside an organisation name.
const ORG_CONNECTOR: &str = r"(?:&|and|of|the|for|de|du|la|von|van|on|in)";

/// Corporate suffixes that end a name (a second one may follow: `Co., Ltd.`).
#[rustfmt::skip]
const STRONG_SUFFIXES: &[&str] = &[
    "Inc.", "Inc", "Incorporated", "LLC", "L.L.C.", "LLP", "L.L.P.", "Ltd.", "Ltd",
    "Limited", "Corp.", "Corp", "Corporation", "Company", "Co.", "P.C.", "PC", "PLLC",
    "P.L.L.C.", "P.A.", "N.A.", "GmbH", "S.A.", "AG", "plc", "PLC", "L.P.", "LP", "LLLP",
];

/// Institutional words that end a name but may also occur inside one.
#[rustfmt::skip]
const WEAK_SUFFIXES: &[&str] = &[
    "Bank", "University", "College", "Association", "Foundation", "Institute", "Agency",
    "Commission", "Authority", "Bureau", "Trust", "Holdings", "Group", "Partners",
    "Partnership", "Hospital", "Society", "Union", "Federation", "Fund", "Department",
    "Board", "Council", "Administration", "Service",
];

/// `(?:Inc\.|INC\.|LLC\b|…)`: every suffix as written and in upper case, longest first.
/// A suffix that does not end in `.` must end a word ("AG" is not the start of
/// "AGREEMENT").
fn suffix_pattern(words: &[&str]) -> String {
    let mut forms: Vec<String> = words
        .iter()
        .flat_map(|w| [w.to_string(), w.to_uppercase()])
        .collect();
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    let alts: Vec<String> = forms
        .iter()
        .map(|f| {
            let boundary = if f.ends_with('.') { "" } else { r"\b" };
            format!("{}{boundary}", regex::escape(f))
        })
        .collect();
    format!("(?:{})", alts.join("|"))
}

/// Every corporate suffix as written and in upper case.
static STRONG_SUFFIX_SET: LazyLock<HashSet<String>> = LazyLock::new(|| {
    STRONG_SUFFIXES
        .iter()
        .flat_map(|s| [s.to_string(), s.to_uppercase()])
        .collect()
});

/// True if `token` (trailing `,` ignored) is a corporate suffix.
fn is_strong_suffix(token: &str) -> bool {
    STRONG_SUFFIX_SET.contains(token.trim_end_matches(','))
}

/// Name + suffix: `Smith & Wesson LLP`, `Acme Widgets, Inc.`, `Wells Fargo Bank, N.A.`,
/// `Harlan, Bishop & Greer LLP`, `Securities and Exchange Commission`, `ACME CORPORATION`.
/// Commas between words are allowed here and judged in [`shape_org`].
static ORG_SUFFIXED: LazyLock<Regex> = LazyLock::new(|| {
    let strong = suffix_pattern(STRONG_SUFFIXES);
    let weak = suffix_pattern(WEAK_SUFFIXES);
    compile(&format!(
        r"{ORG_WORD}(?:,?[ \t]+(?:{ORG_CONNECTOR}[ \t]+)*{ORG_WORD}){{0,6}}(?:,?(?:[ \t]+&)?[ \t]+{strong}|[ \t]+{weak})(?:,?[ \t]+{strong})*"
    ))
});

/// Prefix forms of institutions: `Department of Justice`, `University of California`,
/// `Bank of America, N.A.`, `U.S. Department of Health and Human Services`.
static ORG_INSTITUTION: LazyLock<Regex> = LazyLock::new(|| {
    let strong = suffix_pattern(STRONG_SUFFIXES);
    compile(&format!(
        r"(?:{ORG_WORD}[ \t]+){{0,3}}(?:Department|University|Bank|College|Bureau|Commission|Institute|Agency|DEPARTMENT|UNIVERSITY|BANK|BUREAU|COMMISSION|AGENCY)[ \t]+(?:of|OF)[ \t]+(?:(?:the|THE)[ \t]+)?{ORG_WORD}(?:[ \t]+(?:(?:and|AND|&)[ \t]+)?{ORG_WORD}){{0,3}}(?:,?[ \t]+{strong})*"
    ))
});

/// Municipal bodies: `City of Alder Bay`, `Office of the City Attorney, City of Alder
/// Bay`, `CITY OF ALDER BAY`. No "and" inside: "the City of Alder Bay and Daniel Kessler"
/// names two parties. (`County of X` is a LOCATION.)
static ORG_MUNICIPAL: LazyLock<Regex> = LazyLock::new(|| {
    let place = format!(r"{ORG_WORD}(?:[ \t]+{ORG_WORD}){{0,3}}");
    compile(&format!(
        r"\b(?:City|Town|Village|Office|CITY|TOWN|VILLAGE|OFFICE)[ \t]+(?:of|OF)[ \t]+(?:(?:the|THE)[ \t]+)?{place}(?:,[ \t]+(?:City|County|Town|CITY|COUNTY|TOWN)[ \t]+(?:of|OF)[ \t]+{place})?"
    ))
});

/// A word of a personal name: `Smith`, `SMITH`, `O'Brien`, `McDonald`, `Smith-Jones`.
const NAME_TOKEN: &str = r"(?:\p{Lu}['’])?\p{Lu}[\p{L}'’\-]+";
/// A middle initial.
const INITIAL: &str = r"\p{Lu}\.";
/// A surname particle written with a dot: `Vanessa St. Pierre`, `Ste. Marie`.
const PARTICLE: &str = r"(?:St\.|Ste\.)";
/// Generational suffix.
const GENERATION: &str = r"(?:,?[ \t]+(?:Jr\.|Sr\.|JR\.|SR\.|(?:II|III|IV)\b))?";

/// A personal name after a cue: one to four words, initials allowed after the first.
fn cued_name() -> String {
    format!(
        r"(?P<name>{NAME_TOKEN}(?:[ \t]+(?:{INITIAL}|{PARTICLE}|{NAME_TOKEN})){{0,3}}{GENERATION})"
    )
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
    /// Full words the name needs: a party role before one capitalised word ("Defendant
    /// Globex") names a company as often as a person.
    min_words: usize,
}

/// Cues that introduce a personal name, and the confidence of a name found through them.
static PERSON_CUES: LazyLock<Vec<PersonCue>> = LazyLock::new(|| {
    let name = cued_name();
    let rule = |pattern: String, cue: Cue, confidence: f32, min_words: usize| PersonCue {
        re: compile(&pattern),
        cue,
        confidence,
        min_words,
    };
    vec![
        // Mr. Smith, Hon. William H. Alsup, MR. SMITH: (transcript speakers), Dr Roe
        rule(
            format!(r"\b(?:Mr|Ms|Mrs|Dr|Hon|Prof|MR|MS|MRS|DR|HON|PROF)\.?[ \t]+{name}"),
            Cue::Before,
            0.85,
            1,
        ),
        rule(
            format!(r"\b(?:Miss|Madam|Honorable|HONORABLE)[ \t]+{name}"),
            Cue::Before,
            0.85,
            1,
        ),
        // Judge Alsup, Magistrate Judge Jane Roe, Justice Kagan
        rule(
            format!(
                r"\b(?:(?:Chief|Magistrate|District|Circuit|Bankruptcy|Presiding)[ \t]+)?(?:Judge|Justice|JUDGE|JUSTICE)[ \t]+{name}"
            ),
            Cue::Before,
            0.85,
            1,
        ),
        // Signature blocks: /s/ Jane Roe, By: John Smith, Name: Jane Roe
        rule(format!(r"(?:/s/|\bs/)[ \t]*{name}"), Cue::Before, 0.85, 1),
        rule(
            format!(
                r"\b(?:By|BY|Name|NAME|Signed|Print(?:ed)?[ \t]+Name)[ \t]*:[ \t]*(?:/?s/[ \t]*)?{name}"
            ),
            Cue::Before,
            0.85,
            1,
        ),
        // Reported by: Linda Cho; Attn: Jane Roe
        rule(
            format!(r"(?i:reported[ \t]+by|attn|attention)[ \t]*:[ \t]*{name}"),
            Cue::Before,
            0.85,
            1,
        ),
        // DEPOSITION OF JOSÉ RAMÍREZ; Declaration of Jane Roe
        rule(
            format!(r"\b(?i:deposition|testimony|declaration|affidavit)[ \t]+(?i:of)[ \t]+{name}"),
            Cue::Before,
            0.85,
            1,
        ),
        // Survivor of Cecil Hunt, Estate of Jane Roe, widow of John Smith
        rule(
            format!(
                r"\b(?:[Ss]urvivor|[Ww]idow(?:er)?|[Ee]xecut(?:or|rix)|[Aa]dministrat(?:or|rix)|[Hh]eirs?|[Gg]uardian|[Nn]ext[ \t]+[Ff]riend|Estate|ESTATE|SURVIVOR|WIDOW)[ \t]+(?:of|OF)[ \t]+{name}"
            ),
            Cue::Before,
            0.8,
            2,
        ),
        // Jane Roe, Esq.
        rule(
            format!(r"{name},?[ \t]+(?:Esq\.|Esquire|ESQ\.)"),
            Cue::After,
            0.85,
            1,
        ),
        // Titles: Officer Kessler, deponent John Smith, Attorney Mary Major
        rule(
            format!(
                r"\b(?:[Dd]eponent|[Ww]itness|[Aa]ttorney|[Cc]ounsel|Officer|Detective|Agent|Trustee|Arbitrator|Mediator|Sergeant|Deputy|Professor|Senator|Governor)[ \t]+{name}"
            ),
            Cue::Before,
            0.8,
            1,
        ),
        // Party roles: Plaintiff Jane Roe, DEFENDANT DANIEL KESSLER. One word after a
        // party role ("Defendant Globex") is a company as often as a person.
        rule(
            format!(
                r"\b(?:Plaintiffs?|Defendants?|Petitioners?|Respondents?|Appellants?|Appellees?|Claimants?|Movants?|PLAINTIFFS?|DEFENDANTS?)[ \t]+{name}"
            ),
            Cue::Before,
            0.8,
            2,
        ),
        // Captions: JANE ROE, an individual,
        rule(
            format!(
                r"{name},[ \t]*(?:an[ \t]+individual|individually|AN[ \t]+INDIVIDUAL|INDIVIDUALLY)"
            ),
            Cue::After,
            0.8,
            1,
        ),
        // Captions: MARIA DELGADO, Plaintiff,
        rule(
            format!(
                r"{name},[ \t]*(?:Plaintiffs?|Defendants?|Petitioners?|Respondents?|PLAINTIFFS?|DEFENDANTS?)\b"
            ),
            Cue::After,
            0.8,
            2,
        ),
        // Signature of a judge: the name on its own line over the title.
        rule(
            format!(
                r"(?m)^[ \t]*{name}[ \t]*\r?\n[ \t]*(?:United[ \t]+States[ \t]+)?(?:Chief[ \t]+)?(?:(?:District|Magistrate|Circuit|Bankruptcy|Superior[ \t]+Court)[ \t]+)?Judge\b"
            ),
            Cue::After,
            0.85,
            2,
        ),
        // Captions: a name on its own line over a Plaintiff/Defendant line.
        rule(
            format!(
                r"(?m)^[ \t]*{name},?(?:[ \t]+(?i:et[ \t]+al)\.?,?)?[ \t]*(?:\r?\n[ \t]*){{1,3}}(?:Plaintiffs?|Defendants?|Petitioners?|Respondents?|Appellants?|Appellees?|PLAINTIFFS?|DEFENDANTS?)\b"
            ),
            Cue::After,
            0.75,
            2,
        ),
    ]
});

/// A panel line: `Before Barksdale, Stewart, and Dennis, Circuit Judges`, `Before Smith,
/// Jones and Brown`, `BEFORE: SMITH, JONES, BROWN`. Each surname is a PERSON.
static PANEL: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"\b(?:Before|BEFORE)[ \t]*:?[ \t]+(?P<names>{NAME_TOKEN}(?:(?:,[ \t]*|[ \t]+)(?:and[ \t]+|AND[ \t]+)?{NAME_TOKEN}){{1,5}})"
    ))
});

/// Upper-case names of attorneys and parties with a middle initial: `MARCIA M. WALDRON`,
/// `WILLIAM S. FREEMAN`. The initial makes the shape specific enough on its own.
static CAPS_NAME_WITH_INITIAL: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"\b\p{Lu}['’]?\p{Lu}{1,}(?:-\p{Lu}+)?[ \t]+\p{Lu}\.[ \t]+\p{Lu}['’]?\p{Lu}+(?:-\p{Lu}+)?\b",
    )
});

/// An upper-case name on its own line over an e-mail address, as in attorney blocks:
/// `SEAN RIORDAN\nsriordan@aclunc.org`.
static CAPS_NAME_OVER_EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"(?m)^[ \t]*(?P<name>\p{Lu}[\p{Lu}'’\-]+(?:[ \t]+\p{Lu}[\p{Lu}'’\-]+){1,2})\*?[ \t]*\r?\n[ \t]*[A-Za-z0-9._%+\-]+@",
    )
});

/// An upper-case party opening a caption line, before `, et al.` or a lower-case
/// description: `MICHAEL TOFAUTE, et al.,`, `LINDA HILL, survivor of …`. Only kept when
/// the first word is a common given name: companies stand in the same place.
static CAPS_PARTY_LINE: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"(?m)^[ \t]*(?P<name>\p{Lu}[\p{Lu}'’\-]+(?:[ \t]+(?:\p{Lu}\.|\p{Lu}[\p{Lu}'’\-]+)){1,3}),[ \t]+(?:et[ \t]+al\b|\p{Ll})",
    )
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
    compile(&format!(
        r"{word}(?:[ \t]+(?:{INITIAL}|{PARTICLE}|{word}))+{GENERATION}"
    ))
});

pub(super) fn find(text: &str, out: &mut Vec<Candidate>) {
    find_orgs(text, out);
    let mut known = HashSet::new();
    find_cued_people(text, &mut known, out);
    find_caption_parties(text, out);
    find_panels_and_capitals(text, out);
    find_name_runs(text, &known, out);
}

/// Judges of a panel line, and upper-case names with a middle initial or over an e-mail.
fn find_panels_and_capitals(text: &str, out: &mut Vec<Candidate>) {
    for caps in PANEL.captures_iter(text) {
        let Some(names) = caps.name("names") else {
            continue;
        };
        for t in tokens(text, names.start(), names.end()) {
            let w = tok(text, t);
            let core = w.trim_end_matches(',');
            if core.eq_ignore_ascii_case("and") || is_not_name_word(core) {
                // "Circuit Judges" ends the list.
                if !core.eq_ignore_ascii_case("and") {
                    break;
                }
                continue;
            }
            out.push(person(text, t.0, t.0 + core.len(), 0.75, Tier::Named));
        }
    }
    for m in CAPS_NAME_WITH_INITIAL.find_iter(text) {
        let words: Vec<&str> = m.as_str().split_whitespace().collect();
        if words.iter().any(|w| !is_initial(w) && is_not_name_word(w)) {
            continue;
        }
        out.push(person(text, m.start(), m.end(), 0.7, Tier::Guess));
    }
    for caps in CAPS_NAME_OVER_EMAIL.captures_iter(text) {
        let Some(name) = caps.name("name") else {
            continue;
        };
        if name.as_str().split_whitespace().any(is_not_name_word) {
            continue;
        }
        out.push(person(text, name.start(), name.end(), 0.75, Tier::Named));
    }
    for caps in CAPS_PARTY_LINE.captures_iter(text) {
        let Some(name) = caps.name("name") else {
            continue;
        };
        let words: Vec<&str> = name.as_str().split_whitespace().collect();
        if !words.first().is_some_and(|w| is_given_name(w))
            || words.iter().any(|w| is_not_name_word(w))
        {
            continue;
        }
        out.push(person(text, name.start(), name.end(), 0.75, Tier::Named));
    }
}

// ---------------------------------------------------------------------------------------
// ORG
// ---------------------------------------------------------------------------------------

fn find_orgs(text: &str, out: &mut Vec<Candidate>) {
    find_suffixed_orgs(text, 0, text.len(), out);
    for m in ORG_INSTITUTION
        .find_iter(text)
        .chain(ORG_MUNICIPAL.find_iter(text))
    {
        let tokens = tokens(text, m.start(), m.end());
        // Drop trailing role words ("University of California Plaintiff").
        let keep = tokens
            .iter()
            .rposition(|&(s, e)| !is_leading_noise(&text[s..e]));
        let Some(last) = keep else { continue };
        let end = tokens[last].1;
        let start = first_kept(text, &tokens[..=last]);
        if let Some(start) = start.filter(|&s| starts_word(text, s)) {
            out.push(Candidate::collapsed(EntityKind::Org, text, start, end, 0.8));
        }
    }
}

/// Suffixed organisations in `text[from..to]`. Scanned by hand so that, after cutting
/// "Acme LLC and Beta LLC" at the first suffix, the search resumes right after it and
/// still finds "Beta LLC"; and so that the part left before a split ("Wesley Chapel
/// Holdings" in "Wesley Chapel Holdings and Sunrise Senior Living, LLC") is searched again
/// on its own.
fn find_suffixed_orgs(text: &str, from: usize, to: usize, out: &mut Vec<Candidate>) {
    let haystack = &text[..to];
    let mut pos = from;
    while let Some(m) = ORG_SUFFIXED.find_at(haystack, pos) {
        let shaped = shape_org(text, m.start(), m.end());
        if let Some((s, e)) = shaped.span.filter(|&(s, _)| starts_word(text, s)) {
            out.push(Candidate::collapsed(EntityKind::Org, text, s, e, 0.8));
        }
        if let Some(left_end) = shaped.left_end {
            find_suffixed_orgs(text, m.start(), left_end, out);
        }
        pos = shaped.resume.max(m.start() + 1);
        while !text.is_char_boundary(pos) {
            pos += 1;
        }
    }
}

/// A suffixed-organisation match after [`shape_org`].
struct ShapedOrg {
    /// Where the scan resumes: after the first corporate suffix.
    resume: usize,
    /// The organisation, if one is left.
    span: Option<(usize, usize)>,
    /// Where the words cut off before the name end, if any were.
    left_end: Option<usize>,
}

/// Institutional words that may stand before an "of" inside an organisation's name ("Bank
/// of America Corporation"); before any other "of" the words are a description ("Board of
/// Directors of Acme Corp.", "Preferred Stock of Acme Corp.", "Proof of Service", "Deed of
/// Trust").
const OF_HEADS: &[&str] = &[
    "bank",
    "university",
    "college",
    "institute",
    "bureau",
    "department",
    "commission",
    "agency",
    "society",
    "association",
    "federation",
    "union",
    "trust",
    "church",
    "hospital",
    "foundation",
    "fund",
    "council",
    "authority",
    "company",
    "insurance",
];

/// Shapes a suffixed-organisation match: ends it after its first corporate suffix (and
/// any suffix right after), starts it after the last role or sentence word.
fn shape_org(text: &str, start: usize, end: usize) -> ShapedOrg {
    let tokens = tokens(text, start, end);
    // End after the first corporate suffix that follows at least one name word.
    let mut last = tokens.len() - 1;
    // Index of the first suffix word: the name is what comes before it.
    let mut suffix_at = last;
    if let Some(i) = (1..tokens.len()).find(|&i| is_strong_suffix(tok(text, tokens[i]))) {
        last = i;
        suffix_at = i;
        while last + 1 < tokens.len() && is_strong_suffix(tok(text, tokens[last + 1])) {
            last += 1;
        }
    }
    let tokens = &tokens[..=last];
    let span_end = tokens[last].0 + tok(text, tokens[last]).trim_end_matches(',').len();
    let corporate = is_strong_suffix(tok(text, tokens[last]));

    // Start after the last role/sentence word before the suffix. "and" separates two
    // parties before a corporate suffix ("Jane Roe and Acme Corp."), but is part of an
    // agency's name ("Securities and Exchange Commission").
    let connectors = [
        "of", "the", "for", "&", "de", "du", "la", "von", "van", "on", "in",
    ];
    let mut first = 0;
    for (i, &t) in tokens[..suffix_at].iter().enumerate() {
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
    // Commas inside a name: "Harlan, Bishop & Greer LLP" is one firm (single names listed
    // before an "&"), "Jane Roe, Acme Corp." a person and a company. The comma right
    // before a suffix ("Acme Widgets, Inc.") is part of the name.
    let commas: Vec<usize> = (first..suffix_at)
        .filter(|&i| i + 1 < suffix_at && tok(text, tokens[i]).ends_with(','))
        .collect();
    if let Some(&last_comma) = commas.last() {
        let listed_names = commas.iter().enumerate().all(|(j, &i)| i == first + j);
        let ampersand = tokens[last_comma + 1..suffix_at]
            .iter()
            .any(|&t| tok(text, t) == "&");
        if !(listed_names && ampersand) {
            first = last_comma + 1;
        }
    }
    // "of" inside a name needs an institution before it.
    let last_of = (first..suffix_at)
        .rev()
        .find(|&i| tok(text, tokens[i]).eq_ignore_ascii_case("of"));
    if let Some(k) = last_of {
        let head = tokens[first..k]
            .iter()
            .any(|&t| OF_HEADS.contains(&tok(text, t).to_lowercase().as_str()));
        if !head {
            first = k + 1;
        }
    }
    let left_end = (first > 0).then(|| tokens[first - 1].1);
    let Some(span_start) = first_kept(text, &tokens[first..]) else {
        return ShapedOrg {
            resume: span_end,
            span: None,
            left_end,
        };
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
    let span = (!generic).then_some((span_start, span_end));
    ShapedOrg {
        resume: span_end,
        span,
        left_end,
    }
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

/// Names found through a cue. Their words go into `known`, so that the bare-name
/// heuristic trusts "Maria Delgado" once "Ms. Delgado" has been seen.
fn find_cued_people(text: &str, known: &mut HashSet<String>, out: &mut Vec<Candidate>) {
    for rule in PERSON_CUES.iter() {
        for caps in rule.re.captures_iter(text) {
            let Some(name) = caps.name("name") else {
                continue;
            };
            let mut start = name.start();
            if rule.cue == Cue::After {
                let toks = tokens(text, name.start(), name.end());
                if let Some(i) = toks.iter().rposition(|&t| is_non_name(tok(text, t))) {
                    let Some(&(s, _)) = toks.get(i + 1) else {
                        continue;
                    };
                    start = s;
                }
            }
            if let Some((s, e)) = person_span(text, start, name.end(), rule.min_words) {
                remember(text, s, e, known);
                out.push(person(text, s, e, rule.confidence, Tier::Named));
            }
        }
    }
}

/// Parties of `X v. Y` that look like people (two or more name words).
/// Their words are not remembered as evidence: a party is as often a company without its
/// suffix ("Pacific Coast Freight Lines") as a person.
fn find_caption_parties(text: &str, out: &mut Vec<Candidate>) {
    for caps in CAPTION_PARTIES.captures_iter(text) {
        for (side, group) in [("left", caps.name("left")), ("right", caps.name("right"))] {
            let Some(g) = group else { continue };
            let toks = tokens(text, g.start(), g.end());
            // Of the left side keep the words after the last non-name word ("See",
            // "Under"). The right side must be all name words, and not be followed by a
            // corporate suffix ("Pacific Coast Freight Lines, Inc.").
            let run: &[(usize, usize)] = if side == "left" {
                let cut = toks.iter().rposition(|&t| is_non_name(tok(text, t)));
                &toks[cut.map_or(0, |i| i + 1)..]
            } else {
                let after = text[g.end()..].trim_start_matches([',', ' ', '\t']);
                let suffixed = after
                    .split_whitespace()
                    .next()
                    .is_some_and(is_strong_suffix);
                if suffixed || toks.iter().any(|&t| is_non_name(tok(text, t))) {
                    continue;
                }
                &toks
            };
            let (Some(first), Some(last)) = (run.first(), run.last()) else {
                continue;
            };
            if let Some((s, e)) = person_span(text, first.0, last.1, 2) {
                out.push(person(text, s, e, 0.7, Tier::Named));
            }
        }
    }
}

/// Runs of two to four title-case words, split at words that are not names. A piece is
/// only trusted with some evidence that it names a person: it starts with a common given
/// name, has a middle initial, or shares a word with a name found through a cue.
fn find_name_runs(text: &str, known: &HashSet<String>, out: &mut Vec<Candidate>) {
    for m in NAME_RUN.find_iter(text) {
        let toks = tokens(text, m.start(), m.end());
        let mut piece_start = 0;
        for i in 0..=toks.len() {
            let boundary = i == toks.len() || is_non_name(tok(text, toks[i]));
            if !boundary {
                continue;
            }
            let piece = &toks[piece_start..i];
            piece_start = i + 1;
            let full_words = piece.iter().filter(|&&t| !is_initial(tok(text, t))).count();
            if !(2..=4).contains(&full_words) {
                continue;
            }
            let (Some(first), Some(last)) = (piece.first(), piece.last()) else {
                continue;
            };
            // "Thomas F. Eagleton Courthouse" names a building after a person.
            let named_after = piece
                .last()
                .into_iter()
                .chain(toks.get(i))
                .any(|&t| is_building_word(tok(text, t)));
            if named_after {
                continue;
            }
            let given = is_given_name(tok(text, *first));
            let initial = piece.iter().any(|&t| is_initial(tok(text, t)));
            let seen = piece
                .iter()
                .any(|&t| known.contains(&fold(name_core(tok(text, t)))));
            if !(given || initial || seen) {
                continue;
            }
            if let Some((s, e)) = person_span(text, first.0, last.1, 2) {
                let confidence = if given { 0.65 } else { 0.6 };
                out.push(person(text, s, e, confidence, Tier::Guess));
            }
        }
    }
}

/// Shapes a personal name found at `start..end`: cut at the first non-name word, drop a
/// possessive `'s` and trailing punctuation, and require `min_words` full words. `None`
/// when what is left is not a name.
fn person_span(text: &str, start: usize, end: usize, min_words: usize) -> Option<(usize, usize)> {
    if !starts_word(text, start) {
        return None;
    }
    let toks = tokens(text, start, end);
    let mut kept: Vec<(usize, usize)> = Vec::new();
    for &t in &toks {
        let w = tok(text, t);
        let generation = matches!(
            w.trim_start_matches(','),
            "Jr." | "Sr." | "JR." | "SR." | "Jr" | "Sr" | "II" | "III" | "IV"
        );
        if is_non_name(w) && !generation && !is_particle(w) {
            break;
        }
        kept.push(t);
    }
    // A name starts and ends with a full word (a generational suffix may end it).
    while kept
        .last()
        .is_some_and(|&t| is_initial(tok(text, t)) || is_particle(tok(text, t)))
    {
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
    let mut e = s + text[s..e].trim_end_matches([':', ';']).len();
    // "Jr." keeps its dot (a bare-name match stops before it).
    let w = &text[s..e];
    if (w.ends_with(" Jr") || w.ends_with(" Sr") || w.ends_with(" JR") || w.ends_with(" SR"))
        && text[e..].starts_with('.')
    {
        e += 1;
    }
    (e > s).then_some((s, e))
}

/// Nouns of places named after people: a name run ending in (or followed by) one is the
/// place, not the person.
fn is_building_word(word: &str) -> bool {
    matches!(
        word.trim_end_matches(|c: char| !c.is_alphanumeric()),
        "Courthouse"
            | "Building"
            | "Center"
            | "Centre"
            | "Library"
            | "School"
            | "Stadium"
            | "Bridge"
            | "Memorial"
            | "Plaza"
            | "Tower"
            | "Airport"
            | "Hospital"
            | "COURTHOUSE"
            | "BUILDING"
    )
}

/// `St.` or `Ste.`, a surname particle inside a name (never its last word).
fn is_particle(word: &str) -> bool {
    matches!(word, "St." | "Ste.")
}

/// True for a word that cannot be part of a personal name (initials can).
fn is_non_name(word: &str) -> bool {
    !is_initial(word) && is_not_name_word(word)
}

/// Records the full words of the name at `start..end` (folded) in `known`.
fn remember(text: &str, start: usize, end: usize, known: &mut HashSet<String>) {
    for t in tokens(text, start, end) {
        let w = tok(text, t);
        if !is_initial(w) {
            known.insert(fold(name_core(w)));
        }
    }
}

/// A name word without possessive or trailing punctuation: `Delgado's,` → `Delgado`.
fn name_core(word: &str) -> &str {
    let w = word.trim_end_matches(|c: char| !c.is_alphanumeric());
    w.strip_suffix("'s")
        .or_else(|| w.strip_suffix("’s"))
        .unwrap_or(w)
}

fn person(text: &str, start: usize, end: usize, confidence: f32, tier: Tier) -> Candidate {
    let start = with_leading_initial(text, start);
    let normalized = collapse_whitespace(&text[start..end]);
    let mut c = Candidate::new(EntityKind::Person, start, end, normalized, confidence);
    c.tier = tier;
    c
}
/// `start`, moved back over an initial standing before the name as a word of its own on
/// the same line (`R. Bruce Carlson`, `J. Michael Luttig`): the name patterns start with a
/// full word, so the initial is added here. `U.S. Bank` is not touched (the initial
/// follows a dot, not a space).
fn with_leading_initial(text: &str, start: usize) -> usize {
    let before = &text[..start];
    let gap = before.trim_end_matches([' ', '\t']);
    if gap.len() == before.len() {
        return start;
    }
    let word_at = gap
        .char_indices()
        .rev()
        .find(|&(_, c)| c.is_whitespace() || c == '(')
        .map_or(0, |(i, c)| i + c.len_utf8());
    let initial = &gap[word_at..];
    // "Q." and "A." opening a transcript line mark a question and an answer.
    let transcript_mark = matches!(initial, "Q." | "A.")
        && text[..word_at]
            .trim_end_matches([' ', '\t'])
            .ends_with('\n');
    if is_initial(initial) && !transcript_mark && !(word_at == 0 && matches!(initial, "Q." | "A."))
    {
        word_at
    } else {
        start
    }
}

/// `A.` — a single capital followed by a dot.
fn is_initial(word: &str) -> bool {
    let mut chars = word.chars();
    matches!((chars.next(), chars.next(), chars.next()), (Some(c), Some('.'), None) if c.is_uppercase())
}
