//! CASE_NUMBER (docket numbers), STATUTE (statutes, rules, codes, constitutions),
//! CITATION (reporter citations of decisions) and CASE_NAME (`X v. Y`, `In re X`).

use std::sync::LazyLock;

use regex::Regex;

use super::lexicon::{compile, is_leading_noise, state_name_pattern};
use super::{Candidate, char_after, char_before, collapse_whitespace, skip_words, tok, tokens};
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
        r"\bNos?\.[ \t]*(?P<num>(?:[A-Z]{1,5}-?)?\d{2,4}[-–](?:[A-Za-z]{1,5}-)?\d{3,7}(?:-[A-Z]{1,5})*)\b",
    )
});

/// ECF headers and short captions: `Case: 21-50498`, `Appellate Case: 21-800`.
static CASE_COLON: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"\b(?:Case|CASE)[ \t]*:[ \t]*(?P<num>\d{1,2}[-–]\d{3,6}|\d{1,2}:\d{2}-[A-Za-z]{2,4}-\d{3,6})\b",
    )
});

/// District forms that end in a judge's initials, after a `No.` label: `No. C 10-01234
/// XYZ`, `No. CV 08-1234 ABC`.
static DISTRICT_WITH_INITIALS: LazyLock<Regex> = LazyLock::new(|| {
    compile(r"\bNos?\.[ \t]*(?P<num>[A-Z]{1,3}[ \t]\d{2}-\d{3,6}(?:[ \t][A-Z]{2,4}\b)?)")
});

/// Multidistrict litigation: `MDL No. 2741`, `MDL 2741`.
static MDL: LazyLock<Regex> =
    LazyLock::new(|| compile(r"\bMDL[ \t]+(?:No\.[ \t]*)?(?P<num>\d{3,5})\b"));

/// A further number of a list after a plural label: `Nos. 20-55436,\n20-55662`.
static NUMBER_LIST_ITEM: LazyLock<Regex> = LazyLock::new(|| {
    compile(r"^(?:\s*,\s*(?:and\s+)?|\s+and\s+|\s*&\s*)(?P<num>\d{1,4}[-–]\d{3,7})\b")
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
                let structured = num.as_str().contains(['-', '–', ':', '/']);
                if structured || digits >= 5 {
                    push(num.start(), num.end(), 0.9);
                    // `Case Nos. 20-55436, 20-55662`: the list goes on.
                    let mut end = num.end();
                    while let Some(item) = NUMBER_LIST_ITEM.captures(&text[end..]) {
                        let Some(n) = item.name("num") else { break };
                        push(end + n.start(), end + n.end(), 0.85);
                        end += n.end();
                    }
                }
            }
        }
    }
    for re in [&*CASE_COLON, &*DISTRICT_WITH_INITIALS, &*MDL] {
        for caps in re.captures_iter(text) {
            if let Some(num) = caps.name("num") {
                push(num.start(), num.end(), 0.85);
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
        r"\b(?:Fed\.\s*R\.\s*(?:Civ\.\s*P\.?|Crim\.\s*P\.?|Evid\.|App\.\s*P\.?|Bankr\.\s*P\.?)|Federal\s+Rules?\s+of\s+(?:Civil\s+Procedure|Criminal\s+Procedure|Evidence|Appellate\s+Procedure|Bankruptcy\s+Procedure))\s*(?:Rule\s+)?\d+(?:\.\d+)?(?:\([A-Za-z0-9]{1,4}\))*",
    )
});

/// Circuit and local rules: `5th Circuit Rule 47.5.4`, `Federal Circuit Rule 47.3`,
/// `3d Cir. L.A.R. 113`, `3rd Circuit LAR Misc. 107.2`, `9th Cir. R. 27-1`.
static CIRCUIT_RULE: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"\b(?:First|Second|Third|Fourth|Fifth|Sixth|Seventh|Eighth|Ninth|Tenth|Eleventh|Federal|D\.\s?C\.|1st|2d|2nd|3d|3rd|4th|5th|6th|7th|8th|9th|10th|11th)\s+Cir(?:cuit|\.)\s+(?:Rules?|R\.|L\.\s?A\.\s?R\.|LAR|Local\s+Rules?)(?:\s+Misc\.)?\s+\d+(?:[.-]\d+)*(?:\([A-Za-z0-9]{1,4}\))*",
    )
});

/// A rule cited by number alone: `Rule 12.345`, `Rule 30.01(c)`, `Rule 56(a)`. Only with a
/// subdivision or a decimal part, so "Rule 5" in running prose is left alone.
static NUMBERED_RULE: LazyLock<Regex> = LazyLock::new(|| {
    compile(r"\bRules?[ \t]+\d+(?:(?:\.\d+)+(?:\([A-Za-z0-9]{1,4}\))*|(?:\([A-Za-z0-9]{1,4}\))+)")
});

/// Codes abbreviated with dots and a section sign: `X.Y.Z. § 1A-23`, `N.C. Gen. Stat.
/// § 1A-1`, `Ga. Code Ann. § 9-11-12`, `O.C.G.A. § 9-11-12`.
static DOTTED_CODE: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"\b(?:\p{{Lu}}[a-z]{{0,5}}\.[ \t]?){{2,6}}(?:Ann\.[ \t]?)?§§?[ \t]*{SEC}"
    ))
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
const REPORTER: &str = r"(?:U\.\s?S\.|S\.\s?Ct\.|L\.\s?Ed\.(?:\s?2d)?|F\.\s?Supp\.(?:\s?(?:2d|3d))?|F\.\s?App'x|F\.(?:\s?(?:2d|3d|4th))?|Cal\.\s?Rptr\.(?:\s?(?:2d|3d))?|Cal\.\s?App\.(?:\s?(?:2d|3d|4th|5th))?|Cal\.(?:\s?(?:2d|3d|4th|5th))?|N\.\s?E\.(?:\s?(?:2d|3d))?|N\.\s?W\.(?:\s?2d)?|S\.\s?E\.(?:\s?2d)?|S\.\s?W\.(?:\s?(?:2d|3d))?|So\.(?:\s?(?:2d|3d))?|P\.(?:\s?(?:2d|3d))?|A\.(?:\s?(?:2d|3d))?|N\.\s?Y\.(?:\s?(?:2d|3d))?|F\.\s?R\.\s?D\.|B\.\s?R\.|WL|U\.S\.\s?Dist\.\s?LEXIS|(?:Ala|Ariz|Ark|Colo|Conn|Del|Fla|Ga|Haw|Idaho|Ill|Ind|Iowa|Kan|Ky|La|Mass|Md|Me|Mich|Minn|Miss|Mo|Mont|N\.\s?C|N\.\s?J|N\.\s?H|N\.\s?M|Neb|Nev|Ohio|Okla|Or|Pa|S\.\s?C|Tenn|Tex|Utah|Va|Vt|Wash|Wis|Wyo)\.?(?:\s(?:App\.|Ct\.\s?App\.|St\.|Super\.))?(?:\s?(?:2d|3d|4th|5th))?)";

/// One side of a case name: capitalised words, abbreviations and a few connectors
/// (`Bell Atlantic Corp.`, `Department of Social Services`), and a comma-separated
/// corporate suffix (`Wells Fargo Bank, N.A.`).
const PARTY: &str = r"\p{Lu}[\p{L}'’\-]*\.?(?:[ \t]+(?:\p{Lu}[\p{L}'’\-]*\.?|&|of|the|and|for|de|ex|rel\.|in|on)){0,8}(?:,[ \t]+(?:Inc\.|N\.A\.|LLC|L\.L\.C\.|Ltd\.|Co\.|Corp\.|L\.P\.|LLP|et[ \t]+al\.))?";

/// Decisions: `Bell Atlantic Corp. v. Twombly, 550 U.S. 544 (2007)`, `In re Checking
/// Account Overdraft Litig., 275 F.R.D. 666 (S.D. Fla. 2011)`, with an optional pin cite
/// and court/year parenthetical. The `v` group marks the `v.` of an adversarial caption.
static CASE_CITATION: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"(?:{PARTY}[ \t]+(?P<v>v\.)[ \t]+{PARTY}|\bIn[ \t]+re[ \t]+{PARTY}),\s+\d{{1,4}}\s+{REPORTER}\s+\d{{1,7}}{PIN}(?:\s*\((?:[^()]{{0,40}}\s)?\d{{4}}\))?"
    ))
});

/// Pin cites after the first page: `, 460`, `, 91-21`, `, at *2`, `, 570-71`.
const PIN: &str = r"(?:,\s*(?:at\s+)?\*?\d{1,5}(?:\s?[-–]\s?\*?\d{1,5})?(?:\s+n\.\s?\d+)?)*";

/// A reporter citation without a case name before it: `123 U. S. 456, 460`, `210 N.C.
/// App. 5 (2011)`, `5 F.4th 123 (9th Cir. 2021)`, `2023 WL 128600 (1st Cir. Jan. 9,
/// 2023)`, and the short form with one name before it, `Qin, 2023 WL 128600, at *2`.
static REPORTER_CITATION: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"(?:(?P<short>\p{{Lu}}[\p{{L}}'’\-]+),[ \t]+)?\b\d{{1,4}}\s+{REPORTER}\s+\d{{1,7}}\b{PIN}(?:\s*\((?:[^()]{{0,40}}\s)?\d{{4}}\))?"
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
    for re in [
        &*FEDERAL_RULE,
        &*RULE_OF_FEDERAL_RULES,
        &*CONSTITUTION,
        &*CIRCUIT_RULE,
        &*DOTTED_CODE,
    ] {
        for m in re.find_iter(text) {
            push_statute(text, m.start(), m.end(), 0.95, out);
        }
    }
    for m in NUMBERED_RULE.find_iter(text) {
        push_statute(text, m.start(), m.end(), 0.8, out);
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
            push_citation(text, start, whole.end(), 0.9, out);
        }
    }
    for m in SHORT_CASE_CITATION.find_iter(text) {
        if !is_leading_noise(m.as_str().split(',').next().unwrap_or_default()) {
            push_citation(text, m.start(), m.end(), 0.85, out);
        }
    }
    for caps in REPORTER_CITATION.captures_iter(text) {
        let Some(whole) = caps.get(0) else { continue };
        // "See, 5 F.4th 1": a sentence word before the comma is not a short case name.
        let start = match caps.name("short") {
            Some(name) if is_leading_noise(name.as_str()) => {
                let rest = &text[name.end()..whole.end()];
                name.end() + (rest.len() - rest.trim_start_matches([',', ' ', '\t']).len())
            }
            _ => whole.start(),
        };
        push_citation(text, start, whole.end(), 0.85, out);
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

fn push_citation(text: &str, start: usize, end: usize, confidence: f32, out: &mut Vec<Candidate>) {
    if char_before(text, start).is_some_and(char::is_alphanumeric) {
        return;
    }
    let normalized = collapse_whitespace(&text[start..end]);
    out.push(Candidate::new(
        EntityKind::Citation,
        start,
        end,
        normalized,
        confidence,
    ));
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
    find_case_names(text, out);
}

// ---------------------------------------------------------------------------------------
// CASE_NAME
// ---------------------------------------------------------------------------------------

/// One word of a party in a case name: capitalised (`Acme`, `ACME`, `St.`, `N`), or a
/// connector inside the name.
const CASE_PARTY_WORD: &str = r"(?:\p{Lu}[\p{L}'’\-&]*\.?|&|of|the|and|for|de|ex|rel\.|on)";
/// Separator between two words of a party: spaces, or one line break (names wrap).
const CASE_GAP: &str = r"(?:[ \t]+|[ \t]*\r?\n[ \t]*)";

/// `Delgado v. City of Alder Bay`, `United States v. Haitao Xiang`, `HERNANDEZ ROMAN, ET
/// AL. V. WOLF, ET AL.`, `Christopher Mielo, et al v. Steak N Shake Operations Inc`.
static CASE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    let party = format!(
        r"\p{{Lu}}[\p{{L}}'’\-&]*\.?(?:{CASE_GAP}{CASE_PARTY_WORD}){{0,7}}(?:,[ \t]+(?:Inc\.?|INC\.?|LLC|L\.L\.C\.|Ltd\.|Co\.|Corp\.|L\.P\.|LLP|N\.A\.))?(?:,?[ \t]+(?i:et[ \t]+al)\.?)?"
    );
    compile(&format!(
        r"(?P<left>{party})[ \t]+(?P<v>v\.|vs\.|V\.|VS\.)[ \t]+(?P<right>{party})"
    ))
});

/// `In re: Richard P. Liebowitz`, `In re Acme Corp.`, `IN RE: FEDEX GROUND …`.
static IN_RE: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"\b(?:In|IN)[ \t]+(?:re|RE|Re)\b:?[ \t]+\p{{Lu}}[\p{{L}}'’\-&]*\.?(?:{CASE_GAP}{CASE_PARTY_WORD}){{0,7}}(?:,[ \t]+(?:Inc\.?|INC\.?|LLC|Ltd\.|Corp\.|L\.P\.|LLP))?"
    ))
});

/// Words that end a party's name when they follow it: labels and roles.
fn ends_party(word: &str) -> bool {
    let w = word.trim_end_matches([',', ':', ';']).to_lowercase();
    matches!(
        w.as_str(),
        "no."
            | "nos."
            | "case"
            | "docket"
            | "civil"
            | "appeal"
            | "plaintiff"
            | "plaintiffs"
            | "defendant"
            | "defendants"
            | "petitioner"
            | "respondent"
            | "appellant"
            | "appellee"
            | "and"
            | "of"
            | "the"
            | "for"
            | "on"
            | "&"
    ) || w.starts_with("plaintiff")
        || w.starts_with("defendant")
}

/// The end of a party that starts at `start` and ends at most at `end`: before the first
/// label or role word (`No.`, `Plaintiff`), and without trailing connectors.
fn party_end(text: &str, start: usize, end: usize) -> usize {
    let toks = tokens(text, start, end);
    let mut last = None;
    for (i, &t) in toks.iter().enumerate() {
        let w = tok(text, t);
        let stop = matches!(
            w.trim_end_matches([',', ':', ';']).to_lowercase().as_str(),
            "no." | "nos." | "case" | "docket" | "appeal"
        ) || w.to_lowercase().starts_with("plaintiff")
            || w.to_lowercase().starts_with("defendant");
        if stop && i > 0 {
            break;
        }
        last = Some(i);
    }
    let mut last = last.unwrap_or(0);
    while last > 0 && ends_party(tok(text, toks[last])) {
        last -= 1;
    }
    let (s, e) = toks[last];
    s + text[s..e].trim_end_matches([',', ';', ':']).len()
}

/// Where the first party starts: after a line break when everything before it is upper
/// case (a caption's title over the name), and after leading words such as "See", "In".
fn party_start(text: &str, start: usize, end: usize) -> usize {
    let mut from = start;
    if let Some(nl) = text[start..end].rfind('\n') {
        let before = &text[start..start + nl];
        let caption = before
            .chars()
            .filter(|c| c.is_alphabetic())
            .all(char::is_uppercase);
        if caption {
            from = start + nl + 1;
        }
    }
    let from = case_name_start(text, from, end);
    // A lone initial or role cannot start a name.
    skip_words(text, from, end, |w| {
        is_leading_noise(w) || w.eq_ignore_ascii_case("re:") || w.eq_ignore_ascii_case("re")
    })
}

fn find_case_names(text: &str, out: &mut Vec<Candidate>) {
    for caps in CASE_NAME.captures_iter(text) {
        let (Some(left), Some(v), Some(right)) =
            (caps.name("left"), caps.name("v"), caps.name("right"))
        else {
            continue;
        };
        let start = party_start(text, left.start(), v.start());
        if start >= v.start() || char_before(text, start).is_some_and(char::is_alphanumeric) {
            continue;
        }
        let end = party_end(text, right.start(), right.end());
        if end <= right.start() {
            continue;
        }
        out.push(Candidate::collapsed(
            EntityKind::CaseName,
            text,
            start,
            end,
            0.8,
        ));
    }
    for m in IN_RE.find_iter(text) {
        let body = m.start()
            + text[m.start()..m.end()]
                .find(char::is_whitespace)
                .unwrap_or(0);
        let end = party_end(text, body, m.end());
        if end > body + 4 {
            out.push(Candidate::collapsed(
                EntityKind::CaseName,
                text,
                m.start(),
                end,
                0.8,
            ));
        }
    }
}
