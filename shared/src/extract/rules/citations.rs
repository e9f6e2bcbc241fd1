//! CASE_NUMBER (docket numbers) and STATUTE (statutes, rules, codes, constitutions).

use std::sync::LazyLock;

use regex::Regex;

use super::lexicon::{compile, is_leading_noise, state_name_pattern};
use super::{Candidate, char_after, char_before, collapse_whitespace, skip_words};
use crate::model::EntityKind;

// ---------------------------------------------------------------------------------------
// CASE_NUMBER
// ---------------------------------------------------------------------------------------

/// Federal district dockets: `3:24-cv-01234-JST`, `1:23-cr-00456`, `2:22-cv-01234-ABC-DEF`.
static FEDERAL_DOCKET: LazyLock<Regex> =
    LazyLock::new(|| compile(r"\b\d{1,2}:\d{2}-[A-Za-z]{2,4}-\d{3,6}(?:-[A-Z]{2,5})*\b"));

/// A number after a docket label; the label is context, the `num` group is the mention.
/// The number must contain a digit and may mix letters, `-`, `:`, `/` and `.`.
static LABELLED: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"(?i)\b(?:case|civil\s+action|civil|criminal|docket|index|appeal|cause|adversary|adv\.|misc\.|bankruptcy|c\.a\.|civ\.\s*a\.)[ \t]+(?:nos?\.?|numbers?|#)[ \t]*:?[ \t]*(?P<num>(?-i:[A-Z]{0,5})-?\d[A-Za-z0-9]*(?:[-:/.][A-Za-z0-9]+)*)",
    )
});

/// A bare `No.` label is only trusted before numbers shaped like dockets (`24-1234`,
/// `2023-CV-004512`, `C-12-3456`), not before `No. 3` in a list of requests.
static BARE_NO: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"\bNos?\.[ \t]*(?P<num>(?:[A-Z]{1,5}-?)?\d{2,4}-(?:[A-Za-z]{1,5}-)?\d{3,7}(?:-[A-Z]{1,5})*)\b",
    )
});

/// State forms without a label: `CGC-24-512345`, `2023-CV-004512`, `24STCV01234`.
static STATE_FORM: LazyLock<Regex> = LazyLock::new(|| {
    compile(r"\b(?:[A-Z]{2,5}-\d{2}-\d{4,8}|\d{4}-[A-Z]{2,4}-\d{3,8}|\d{2}[A-Z]{2,6}\d{5,8})\b")
});

fn find_case_numbers(text: &str, out: &mut Vec<Candidate>) {
    let mut push = |start: usize, end: usize, confidence: f32| {
        let s = &text[start..end];
        // Trailing sentence punctuation is not part of the number.
        let s = s.trim_end_matches(['.', ':', '/', '-']);
        if !s.chars().any(|c| c.is_ascii_digit()) {
            return;
        }
        // A docket number glued to more of a token is something else (a URL, a part no.).
        if char_before(text, start).is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '/') {
            return;
        }
        let end = start + s.len();
        out.push(Candidate::new(
            EntityKind::CaseNumber,
            start,
            end,
            s.to_string(),
            confidence,
        ));
    };
    for m in FEDERAL_DOCKET.find_iter(text) {
        push(m.start(), m.end(), 0.95);
    }
    for re in [&*LABELLED, &*BARE_NO] {
        for caps in re.captures_iter(text) {
            if let Some(num) = caps.name("num") {
                // A year ("Case No. 2024") or a small count is not a docket number.
                let digits = num.as_str().chars().filter(char::is_ascii_digit).count();
                let structured = num.as_str().contains(['-', ':', '/']);
                if structured || digits >= 5 {
                    push(num.start(), num.end(), 0.9);
                }
            }
        }
    }
    for m in STATE_FORM.find_iter(text) {
        if char_after(text, m.end()).is_some_and(|c| c == '-' || c.is_alphanumeric()) {
            continue;
        }
        push(m.start(), m.end(), 0.85);
    }
}

// ---------------------------------------------------------------------------------------
// STATUTE
// ---------------------------------------------------------------------------------------

/// One section number: `1983`, `78j(b)`, `2000e-2(a)(1)`, `1604.11`, `17200`.
const SEC: &str = r"\d+[A-Za-z]{0,3}(?:[-.–]\d+[A-Za-z]{0,3})*(?:\([A-Za-z0-9]{1,4}\))*";
/// A section sign or word, optional.
const SIGN: &str = r"(?:§§?|[Ss]ections?|[Ss]ecs?\.)";

/// A list continuation after a section: `, 1343`, ` and 1343`, `–1345`.
static SECTION_LIST_ITEM: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"^(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|through|to)\s+|\s*[-–]\s*)(?:§\s*)?{SEC}"
    ))
});

/// `42 U.S.C. § 1983`, `28 U.S.C. §§ 1331`, `15 USC 78j(b)`, `29 C.F.R. § 1604.11`,
/// `29 C.F.R. Part 1604`.
fn federal_code_pattern() -> String {
    format!(
        r"\b\d{{1,2}}[ \t]+(?:U\.[ \t]?S\.[ \t]?C\.(?:[ \t]?A\.)?|USC|C\.[ \t]?F\.[ \t]?R\.|CFR)\s*(?:{SIGN}|[Pp]art)?\s*{SEC}"
    )
}

static FEDERAL_CODE: LazyLock<Regex> = LazyLock::new(|| compile(&federal_code_pattern()));

/// The name of an Act: `Securities Exchange Act of 1934`, `Americans with Disabilities Act`.
/// Words may be separated by a line break: names of Acts are long and get wrapped.
const ACT_NAME: &str =
    r"(?:[A-Z][A-Za-z'’\-]*\s+(?:(?:of|and|for|with|on|to|the|&)\s+)*){1,8}?Act(?:\s+of\s+\d{4})?";

/// An Act cited with its codification: `Defend Trade Secrets Act, 18 U.S.C. § 1836`.
static ACT_WITH_CODE: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"\b{ACT_NAME},?\s+(?:{code})",
        code = federal_code_pattern()
    ))
});

/// Federal Rules, abbreviated or written out: `Fed. R. Civ. P. 12(b)(6)`,
/// `Federal Rule of Civil Procedure 56`, `Fed. R. Evid. 702`, `Fed. R. App. P. 4(a)`.
static FEDERAL_RULE: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"\b(?:Fed\.\s*R\.\s*(?:Civ\.\s*P\.|Crim\.\s*P\.|Evid\.|App\.\s*P\.|Bankr\.\s*P\.)|Federal\s+Rules?\s+of\s+(?:Civil\s+Procedure|Criminal\s+Procedure|Evidence|Appellate\s+Procedure|Bankruptcy\s+Procedure))\s*(?:Rule\s+)?\d+(?:\.\d+)?(?:\([A-Za-z0-9]{1,4}\))*",
    )
});

/// `Rule 12(b)(6) of the Federal Rules of Civil Procedure`.
static RULE_OF_FEDERAL_RULES: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"\bRules?\s+\d+(?:\.\d+)?(?:\([A-Za-z0-9]{1,4}\))*\s+of\s+the\s+Federal\s+Rules\s+of\s+(?:Civil\s+Procedure|Criminal\s+Procedure|Evidence|Appellate\s+Procedure|Bankruptcy\s+Procedure)",
    )
});

/// State codes: `Cal. Civ. Code § 1542`, `Cal. Bus. & Prof. Code § 17200`,
/// `Cal. Lab. Code §§ 201-203`, `N.Y. Gen. Bus. Law § 349`, `Tex. Bus. & Com. Code Ann.
/// § 17.46`, `California Civil Code section 1542`, `Cal. Code Civ. Proc. § 425.16`,
/// `California Code of Civil Procedure section 425.16`, `Del. Code Ann. tit. 8, § 102`.
static STATE_CODE: LazyLock<Regex> = LazyLock::new(|| {
    let abbr = r"(?:Cal|N\.\s?Y|Tex|Fla|Ill|Del|Mass|Pa|N\.\s?J|Wash|Ga|Mich|Va|Colo|Ariz|Or|Nev|Minn|Conn|Md|Mo|Wis|Tenn|Ind|La|Ky|Ala|N\.\s?C|S\.\s?C|Okla|Iowa|Kan|Utah|Ohio)\.?";
    let states = state_name_pattern();
    compile(&format!(
        r"\b(?:{abbr}|{states})[ \t]+(?:(?:[A-Z][A-Za-z'’]*\.?|&|and)[ \t]+){{0,5}}?(?:Code(?:[ \t]+of[ \t]+Civil[ \t]+Procedure|[ \t]+Civ\.[ \t]+Proc\.)?|Law|Laws|Stat\.|Statutes|Gen\.\s+Laws|Rev\.\s+Stat\.|Comp\.\s+Stat\.)(?:[ \t]+Ann\.)?(?:[ \t]+tit\.[ \t]+\d+,)?\s*{SIGN}?\s*{SEC}"
    ))
});

/// `Section 10(b) of the Securities Exchange Act of 1934`, `Title VII of the Civil Rights
/// Act of 1964`, `Rule 10b-5 of the …`.
static PART_OF_ACT: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"\b(?:(?:Section|Sections|§)\s*\d+[A-Za-z]?(?:[-.]\d+[A-Za-z]?)*(?:\([A-Za-z0-9]{1,4}\))*|Title\s+[IVXLC]+)\s+of\s+the\s+(?:[A-Z][A-Za-z'’\-]*\s+(?:(?:of|and|for|with|on|to|the|&)\s+)*){1,8}?Act(?:\s+of\s+\d{4})?",
    )
});

/// Named statutes: `the Sherman Act`, `Securities Exchange Act of 1934`, `Americans with
/// Disabilities Act`, `Fair Labor Standards Act`. Lower confidence than a citation.
static NAMED_ACT: LazyLock<Regex> = LazyLock::new(|| compile(&format!(r"\b{ACT_NAME}\b")));

/// Reporters of published decisions, longest forms first.
const REPORTER: &str = r"(?:U\.\s?S\.|S\.\s?Ct\.|L\.\s?Ed\.(?:\s?2d)?|F\.\s?Supp\.(?:\s?(?:2d|3d))?|F\.\s?App'x|F\.(?:\s?(?:2d|3d|4th))?|Cal\.\s?Rptr\.(?:\s?(?:2d|3d))?|Cal\.\s?App\.(?:\s?(?:2d|3d|4th|5th))?|Cal\.(?:\s?(?:2d|3d|4th|5th))?|N\.\s?E\.(?:\s?(?:2d|3d))?|N\.\s?W\.(?:\s?2d)?|S\.\s?E\.(?:\s?2d)?|S\.\s?W\.(?:\s?(?:2d|3d))?|So\.(?:\s?(?:2d|3d))?|P\.(?:\s?(?:2d|3d))?|A\.(?:\s?(?:2d|3d))?|N\.\s?Y\.(?:\s?(?:2d|3d))?|F\.\s?R\.\s?D\.|B\.\s?R\.|WL|U\.S\.\s?Dist\.\s?LEXIS)";

/// One side of a case name: capitalised words, abbreviations and a few connectors
/// (`Bell Atlantic Corp.`, `Department of Social Services`), and a comma-separated
/// corporate suffix (`Wells Fargo Bank, N.A.`).
const PARTY: &str = r"\p{Lu}[\p{L}'’\-]*\.?(?:[ \t]+(?:\p{Lu}[\p{L}'’\-]*\.?|&|of|the|and|for|de|ex|rel\.|in|on)){0,8}(?:,[ \t]+(?:Inc\.|N\.A\.|LLC|L\.L\.C\.|Ltd\.|Co\.|Corp\.|L\.P\.|LLP|et[ \t]+al\.))?";

/// Decisions: `Bell Atlantic Corp. v. Twombly, 550 U.S. 544 (2007)`, `In re Checking
/// Account Overdraft Litig., 275 F.R.D. 666 (S.D. Fla. 2011)`, with an optional pin cite
/// and court/year parenthetical. The `v` group marks the `v.` of an adversarial caption.
static CASE_CITATION: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"(?:{PARTY}[ \t]+(?P<v>v\.)[ \t]+{PARTY}|\bIn[ \t]+re[ \t]+{PARTY}),\s+\d{{1,4}}\s+{REPORTER}\s+\d{{1,7}}(?:,\s*\d{{1,5}}(?:[-–]\d{{1,5}})?)?(?:\s+\((?:[^()\n]{{0,40}}\s)?\d{{4}}\))?"
    ))
});

/// Short-form cites: `Iqbal, 556 U.S. at 678`.
static SHORT_CASE_CITATION: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"\p{{Lu}}[\p{{L}}'’\-]+,\s+\d{{1,4}}\s+{REPORTER}\s+at\s+\d{{1,5}}(?:[-–]\d{{1,5}})?"
    ))
});

/// `U.S. Const. amend. XIV`, `U.S. Const. art. III, § 2`, `Cal. Const. art. I, § 1`.
static CONSTITUTION: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"\b(?:U\.\s?S\.|Cal\.|N\.\s?Y\.|Tex\.)\s*Const\.\s*(?:amend\.|art\.)\s*[IVXLC]+(?:,\s*§\s*\d+)?(?:,\s*cl\.\s*\d+)?",
    )
});

fn find_statutes(text: &str, out: &mut Vec<Candidate>) {
    for re in [&*FEDERAL_CODE, &*STATE_CODE] {
        for m in re.find_iter(text) {
            let end = extend_section_list(text, m.start(), m.end());
            push_statute(text, m.start(), end, 0.95, out);
        }
    }
    for re in [&*FEDERAL_RULE, &*RULE_OF_FEDERAL_RULES, &*CONSTITUTION] {
        for m in re.find_iter(text) {
            push_statute(text, m.start(), m.end(), 0.95, out);
        }
    }
    for m in ACT_WITH_CODE.find_iter(text) {
        let start = skip_words(text, m.start(), m.end(), is_leading_noise);
        push_statute(text, start, m.end(), 0.95, out);
    }
    for caps in CASE_CITATION.captures_iter(text) {
        let Some(whole) = caps.get(0) else { continue };
        let start = match caps.name("v") {
            Some(v) => case_name_start(text, whole.start(), v.start()),
            None => whole.start(),
        };
        if caps.name("v").is_none_or(|v| start < v.start()) {
            push_statute(text, start, whole.end(), 0.9, out);
        }
    }
    for m in SHORT_CASE_CITATION.find_iter(text) {
        if !is_leading_noise(m.as_str().split(',').next().unwrap_or_default()) {
            push_statute(text, m.start(), m.end(), 0.85, out);
        }
    }
    for m in PART_OF_ACT.find_iter(text) {
        push_statute(text, m.start(), m.end(), 0.9, out);
    }
    for m in NAMED_ACT.find_iter(text) {
        // Leading words that start a sentence or name a role are not part of the title,
        // and "The Act" / "This Act" alone is a defined term, not a citation.
        let start = skip_words(text, m.start(), m.end(), is_leading_noise);
        if text[start..m.end()].starts_with("Act") {
            continue;
        }
        push_statute(text, start, m.end(), 0.8, out);
    }
}

/// Extends the citation `start..end` over a list of further sections when its sign is
/// plural (`§§ 1331 and 1343`, `§§ 201-203`). A list item followed by a capitalised word
/// is the volume of the next citation (`§§ 1331 and 42 U.S.C. …`) and is left out. A
/// following `et seq.` is not taken: it is commentary on the citation, not part of it.
fn extend_section_list(text: &str, start: usize, mut end: usize) -> usize {
    // Only a plural sign announces a list; after `§ 1983`, "and 28 days" is prose.
    let cited = text[start..end].to_lowercase();
    let plural = cited.contains("§§") || cited.contains("sections") || cited.contains("secs.");
    while let Some(m) = SECTION_LIST_ITEM.find(&text[end..]).filter(|_| plural) {
        let item_end = end + m.end();
        let next = text[item_end..].trim_start();
        if next.starts_with(|c: char| c.is_uppercase()) {
            break;
        }
        end = item_end;
    }
    end
}

/// Where the first party's name starts, given the match start and the `v.`: after the
/// last word that ends a sentence ("… the Court. Monell v. …") and after leading words
/// such as "See" or "Under".
fn case_name_start(text: &str, start: usize, v: usize) -> usize {
    let mut name_start = start;
    let mut pos = start;
    for word in text[start..v].split(' ') {
        pos += word.len() + 1;
        if ends_sentence(word) {
            name_start = pos;
        }
    }
    skip_words(text, name_start.min(v), v, is_leading_noise)
}

/// True for a word ending in `.` that is not an abbreviation common in case names.
fn ends_sentence(word: &str) -> bool {
    const ABBREVIATIONS: &[&str] = &[
        "corp", "inc", "co", "ltd", "bros", "cnty", "dist", "sch", "bd", "educ", "univ", "atl",
        "mut", "ins", "am", "gov", "auth", "hosp", "servs", "serv", "mfg", "tel", "elec", "ry",
        "fed", "sec", "nat", "int", "dep", "dept", "comm", "assn", "mgmt", "prods", "sys", "tech",
        "techs", "indus", "fin", "invs", "cal", "ill", "tex", "fla", "pa", "mich", "mass", "ariz",
        "wash", "colo", "conn", "del", "ga", "md", "minn", "nev", "okla", "or", "tenn", "va",
        "wis", "st", "mt", "ft", "jr", "sr", "no",
    ];
    let Some(core) = word.strip_suffix('.') else {
        return false;
    };
    let is_abbreviation = core.chars().count() <= 1
        || core.contains(['.', '\'', '’'])
        || ABBREVIATIONS.contains(&core.to_lowercase().as_str());
    !is_abbreviation
}

fn push_statute(text: &str, start: usize, end: usize, confidence: f32, out: &mut Vec<Candidate>) {
    if char_before(text, start).is_some_and(char::is_alphanumeric) {
        return;
    }
    let normalized = collapse_whitespace(&text[start..end]);
    out.push(Candidate::new(
        EntityKind::Statute,
        start,
        end,
        normalized,
        confidence,
    ));
}

pub(super) fn find(text: &str, out: &mut Vec<Candidate>) {
    find_case_numbers(text, out);
    find_statutes(text, out);
}
