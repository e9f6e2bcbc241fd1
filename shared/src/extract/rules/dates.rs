//! DATE: written, numeric and formal ("the 4th day of March, 2024") dates, normalised to
//! ISO 8601 and validated through `chrono`.

use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::{Captures, Regex};

use super::lexicon::{MONTH_PATTERN, compile, month_number};
use super::{Candidate, char_after, char_before};
use crate::model::EntityKind;

/// Years outside this range are far more likely to be amounts or section numbers.
const YEARS: std::ops::RangeInclusive<i32> = 1800..=2199;

/// An optional weekday before a written date: `Tuesday, January 28, 2025`.
const WEEKDAY: &str = r"(?:(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday),?\s+)?";

/// `March 4, 2024`, `Mar. 4, 2024`, `March 4th, 2024`, `MARCH 4, 2024`, `Tuesday, March 4,
/// 2024`. Parts may be separated by a line break, as in wrapped paragraphs.
static MONTH_DAY_YEAR: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"(?i)\b{WEEKDAY}(?P<month>{MONTH_PATTERN})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?(?:,\s*|\s+)(?P<year>\d{{4}})\b"
    ))
});

/// `4 March 2024`, `4th March, 2024`.
static DAY_MONTH_YEAR: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"(?i)\b{WEEKDAY}(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<month>{MONTH_PATTERN})\.?,?\s+(?P<year>\d{{4}})\b"
    ))
});

/// `4th day of March, 2024` (the mention starts at the day: "the"/"this" are not part of
/// the date).
static FORMAL: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"(?i)\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+day\s+of\s+(?P<month>{MONTH_PATTERN})\.?,?\s+(?P<year>\d{{4}})\b"
    ))
});

/// `03/04/2024` (US order: month first).
static US_NUMERIC: LazyLock<Regex> =
    LazyLock::new(|| compile(r"\b(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})\b"));

/// `2024-03-04`.
static ISO: LazyLock<Regex> =
    LazyLock::new(|| compile(r"\b(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})\b"));

/// `March 2024` (no day): normalised to `2024-03`.
static MONTH_YEAR: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"(?i)\b(?P<month>{MONTH_PATTERN})\.?,?[ \t]+(?P<year>\d{{4}})\b"
    ))
});

pub(super) fn find(text: &str, out: &mut Vec<Candidate>) {
    // Written dates that do not exist ("31 April 2024"): their month and year must not
    // then be reported on their own.
    let mut rejected: Vec<std::ops::Range<usize>> = Vec::new();
    for re in [&*MONTH_DAY_YEAR, &*DAY_MONTH_YEAR, &*FORMAL] {
        for caps in re.captures_iter(text) {
            if !push_full_date(&caps, month_from_name(&caps), 0.95, out) {
                rejected.extend(caps.get(0).map(|m| m.range()));
            }
        }
    }
    for re in [&*US_NUMERIC, &*ISO] {
        for caps in re.captures_iter(text) {
            let Some(whole) = caps.get(0) else { continue };
            // Part of a longer token: a docket number, a version, a Bates range.
            let glued = char_before(text, whole.start())
                .is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '/' | ':'))
                || char_after(text, whole.end()).is_some_and(|c| matches!(c, '-' | '/'));
            if glued {
                continue;
            }
            let month = caps["month"].parse().ok();
            push_full_date(&caps, month, 0.9, out);
        }
    }
    for caps in MONTH_YEAR.captures_iter(text) {
        let (Some(month), Some(whole)) = (month_from_name(&caps), caps.get(0)) else {
            continue;
        };
        if rejected
            .iter()
            .any(|r| r.start < whole.end() && whole.start() < r.end)
        {
            continue;
        }
        let Ok(year) = caps["year"].parse::<i32>() else {
            continue;
        };
        if !YEARS.contains(&year) {
            continue;
        }
        let normalized = format!("{year:04}-{month:02}");
        out.push(Candidate::new(
            EntityKind::Date,
            whole.start(),
            whole.end(),
            normalized,
            0.75,
        ));
    }
}

/// The month named in `caps["month"]`, unless it is written in lower case (`may 2024` is
/// more likely the verb than the month).
fn month_from_name(caps: &Captures<'_>) -> Option<u32> {
    let name = caps.name("month")?.as_str();
    if name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return None;
    }
    month_number(name)
}

/// Pushes the date matched by `caps` (groups `day` and `year`, month given) if it exists;
/// false if it does not.
fn push_full_date(
    caps: &Captures<'_>,
    month: Option<u32>,
    confidence: f32,
    out: &mut Vec<Candidate>,
) -> bool {
    let Some(whole) = caps.get(0) else {
        return false;
    };
    let Some(month) = month else { return false };
    let (Ok(day), Ok(year)) = (caps["day"].parse::<u32>(), caps["year"].parse::<i32>()) else {
        return false;
    };
    if !YEARS.contains(&year) {
        return false;
    }
    let Some(date) = NaiveDate::from_ymd_opt(year, month, day) else {
        return false;
    };
    let normalized = date.format("%Y-%m-%d").to_string();
    out.push(Candidate::new(
        EntityKind::Date,
        whole.start(),
        whole.end(),
        normalized,
        confidence,
    ));
    true
}
