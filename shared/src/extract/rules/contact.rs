//! EMAIL and PHONE.

use std::sync::LazyLock;

use regex::Regex;

use super::lexicon::compile;
use super::{Candidate, char_after, char_before};
use crate::model::EntityKind;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"(?i)[a-z0-9][a-z0-9._%+\-]*@[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*\.[a-z]{2,24}",
    )
});

/// NANP numbers: optional `+1`/`1` country prefix, a 3-digit area code (in parentheses or
/// followed by a separator) and a 3-4 split with `-`, `.` or a space. Area code and
/// exchange start with 2-9, which rules out most case numbers, ZIP+4 codes and amounts.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"(?:\+1[ .\-]?|1[ .\-])?(?:\([2-9]\d{2}\)[ \t]?|[2-9]\d{2}[ .\-])[2-9]\d{2}[ .\-]\d{4}",
    )
});

pub(super) fn find(text: &str, out: &mut Vec<Candidate>) {
    for m in EMAIL.find_iter(text) {
        let (start, end) = (m.start(), m.end());
        // The TLD pattern already leaves a sentence-final `.` out; an address glued to
        // more letters on either side (`andré@…`, `…@b.co2`) is not one we trust.
        let glued = char_before(text, start).is_some_and(char::is_alphanumeric)
            || char_after(text, end).is_some_and(|c| c.is_alphanumeric() || c == '@');
        if glued {
            continue;
        }
        let normalized = text[start..end].to_lowercase();
        out.push(Candidate::new(
            EntityKind::Email,
            start,
            end,
            normalized,
            0.99,
        ));
    }

    for m in PHONE.find_iter(text) {
        let (start, end) = (m.start(), m.end());
        // Numbers glued to other digits, letters or docket punctuation belong to something
        // else: a case number (`1:23-cv-…`), a Bates range, an account number.
        let glued_before = char_before(text, start)
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '/' | ':' | '.' | '$'));
        let glued_after = char_after(text, end).is_some_and(|c| c.is_alphanumeric() || c == '-')
            || text[end..].starts_with(['.', '/', ','])
                && text[end + 1..].starts_with(|c: char| c.is_ascii_digit());
        if glued_before || glued_after {
            continue;
        }
        let digits: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
        let normalized = match digits.len() {
            10 => format!("+1{digits}"),
            11 if digits.starts_with('1') => format!("+{digits}"),
            _ => continue,
        };
        out.push(Candidate::new(
            EntityKind::Phone,
            start,
            end,
            normalized,
            0.9,
        ));
    }
}
