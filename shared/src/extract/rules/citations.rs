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
static FEDERAL_DOCKET: LazyLock<Regex> = LazyLock::new(|| {
    compile(r"\b\d{1,2}:\d{2}-[A-Za-z]{2,4}-\d{3,6}(?:-[A-Z]{2,5})*\b")
});

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
        if char_before(text, start).is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '/')
        {
            return;
        }
        let end = start + s.len();
        out.push(Candidate::new(EntityKind::CaseNumber, start, end, s.to_string(), confidence));
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
/// What may follow the last section: `et seq.`.
const ET_SEQ: &str = r"(?:,?[ \t]+et\s+seq\.)?";
/// A section sign or word, optional.
const SIGN: &str = r"(?:§§?|[Ss]ections?|[Ss]ecs?\.)";

/// A list continuation after a section: `, 1343`, ` and 1343`, `–1345`.
static SECTION_LIST_ITEM: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(r"^(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|through|to)\s+|\s*[-–]\s*)(?:§\s*)?{SEC}"))
});

/// `42 U.S.C. § 1983`, `28 U.S.C. §§ 1331`, `15 USC 78j(b)`, `29 C.F.R. § 1604.11`,
/// `29 C.F.R. Part 1604`. The `rest` group marks where a section list may continue.
static FEDERAL_CODE: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"\b\d{{1,2}}[ \t]+(?:U\.[ \t]?S\.[ \t]?C\.(?:[ \t]?A\.)?|USC|C\.[ \t]?F\.[ \t]?R\.|CFR)\s*(?:{SIGN}|[Pp]art)?\s*{SEC}"
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
/// § 17.46`, `California Civil Code section 1542`, `Del. Code Ann. tit. 8, § 102`.
static STATE_CODE: LazyLock<Regex> = LazyLock::new(|| {
    let abbr = r"(?:Cal|N\.\s?Y|Tex|Fla|Ill|Del|Mass|Pa|N\.\s?J|Wash|Ga|Mich|Va|Colo|Ariz|Or|Nev|Minn|Conn|Md|Mo|Wis|Tenn|Ind|La|Ky|Ala|N\.\s?C|S\.\s?C|Okla|Iowa|Kan|Utah|Ohio)\.?";
    let states = state_name_pattern();
    compile(&format!(
        r"\b(?:{abbr}|{states})[ \t]+(?:(?:[A-Z][A-Za-z'’]*\.?|&|and)[ \t]+){{0,5}}?(?:Code|Law|Laws|Stat\.|Statutes|Gen\.\s+Laws|Rev\.\s+Stat\.|Comp\.\s+Stat\.)(?:[ \t]+Ann\.)?(?:[ \t]+tit\.[ \t]+\d+,)?\s*{SIGN}?\s*{SEC}"
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
static NAMED_ACT: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"\b(?:[A-Z][A-Za-z'’\-]*[ \t]+(?:(?:of|and|for|with|on|to|the|&)[ \t]+)*){1,8}?Act(?:[ \t]+of[ \t]+\d{4})?\b",
    )
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
/// plural (`§§ 1331 and 1343`, `§§ 201-203`), then over `et seq.`. A list item followed by a capitalised word
/// is the volume of the next citation (`§ 1331 and 42 U.S.C. …`) and is left out.
fn extend_section_list(text: &str, start: usize, mut end: usize) -> usize {
    // Only a plural sign announces a list; after `§ 1983`, "and 28 days" is prose.
    let cited = &text[start..end];
    let plural = cited.contains("§§") || cited.contains("ections") || cited.contains("ecs.");
    while let Some(m) = SECTION_LIST_ITEM.find(&text[end..]).filter(|_| plural) {
        let item_end = end + m.end();
        let next = text[item_end..].trim_start();
        if next.starts_with(|c: char| c.is_uppercase()) {
            break;
        }
        end = item_end;
    }
    static TAIL: LazyLock<Regex> = LazyLock::new(|| compile(&format!("^{ET_SEQ}")));
    if let Some(m) = TAIL.find(&text[end..]) {
        end += m.end();
    }
    end
}

fn push_statute(text: &str, start: usize, end: usize, confidence: f32, out: &mut Vec<Candidate>) {
    if char_before(text, start).is_some_and(char::is_alphanumeric) {
        return;
    }
    let normalized = collapse_whitespace(&text[start..end]);
    out.push(Candidate::new(EntityKind::Statute, start, end, normalized, confidence));
}

pub(super) fn find(text: &str, out: &mut Vec<Candidate>) {
    find_case_numbers(text, out);
    find_statutes(text, out);
}
