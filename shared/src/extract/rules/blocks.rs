//! ORG from the layout of address blocks, run after every other family (it reads their
//! candidates).
//!
//! Letters and signature blocks stack a person, an organisation and a street address on
//! consecutive lines:
//!
//! ```text
//! Mr. William S. Mattingly          SEAN RIORDAN
//! Jackson Kelly                     sriordan@aclunc.org
//! 175 E. Main Street                AMERICAN CIVIL LIBERTIES
//! Lexington, KY 40507               UNION FOUNDATION OF
//!                                   NORTHERN CALIFORNIA
//!                                   39 Drumm Street
//! ```
//!
//! The organisation has no suffix to recognise it by, but its place does: the lines right
//! above an address that are neither a person, an e-mail nor a phone. Two shapes are
//! trusted:
//! - up to three upper-case lines of three or more words in all, under a person, an e-mail
//!   or a phone line (or a blank line), are one organisation;
//! - one title-case line of two or more words between a person's line and the address.
//!
//! A name that ends with a dangling word at the end of a line (`OFFICE OF WORKERS'` /
//! `COMPENSATION PROGRAMS`; `COMMITTEE FOR` / `CIVIL RIGHTS`) is continued onto the next
//! line's upper-case words.

use crate::model::EntityKind;

use super::{Candidate, collapse_whitespace};

/// Most lines of an upper-case organisation name.
const MAX_CAPS_LINES: usize = 3;
/// Longest line taken for a name (longer is a sentence).
const MAX_LINE_CHARS: usize = 80;

pub(super) fn find(text: &str, out: &mut Vec<Candidate>) {
    continue_dangling_orgs(text, out);
    if !out.iter().any(|c| c.kind == EntityKind::Address) {
        return;
    }
    let lines = Lines::new(text);
    let mut found = Vec::new();
    for addr in out.iter().filter(|c| c.kind == EntityKind::Address) {
        let Some(at) = lines.index_of(addr.start) else {
            continue;
        };
        // The address opens its line, or follows the last words of an upper-case name
        // on it (`SOUTHERN CALIFORNIA 1313` / `West Eighth Street`).
        let ls = lines.spans[at].0;
        let before = &text[ls..addr.start];
        let first = if before.trim().is_empty() {
            None
        } else if is_name_line(before.trim()) && is_upper(before) {
            let s = ls + (before.len() - before.trim_start().len());
            Some((s, ls + before.trim_end().len()))
        } else {
            continue;
        };
        if let Some(c) = org_above(text, &lines, at, first, out) {
            found.push(c);
        }
    }
    out.extend(found);
}

/// Line spans (start, end without the newline) of the text.
struct Lines {
    spans: Vec<(usize, usize)>,
}

impl Lines {
    fn new(text: &str) -> Lines {
        let mut spans = Vec::new();
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if c == '\n' {
                spans.push((start, i));
                start = i + 1;
            }
        }
        spans.push((start, text.len()));
        Lines { spans }
    }

    /// The line holding byte `pos`.
    fn index_of(&self, pos: usize) -> Option<usize> {
        let i = self.spans.partition_point(|&(_, end)| end < pos);
        (i < self.spans.len()).then_some(i)
    }
}

/// What an existing candidate on a line says about it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LineIs {
    /// Nothing found on it, or only an ORG or LOCATION (which a longer ORG may take in).
    Free,
    /// A person, e-mail or phone: the line above an organisation's lines.
    Contact,
    /// Anything else (a date, a case number, a court, …): not part of a block.
    Other,
}

fn classify(out: &[Candidate], start: usize, end: usize) -> LineIs {
    let mut is = LineIs::Free;
    for c in out.iter().filter(|c| c.start < end && c.end > start) {
        match c.kind {
            EntityKind::Org | EntityKind::Location => {}
            EntityKind::Person | EntityKind::Email | EntityKind::Phone => is = LineIs::Contact,
            _ => return LineIs::Other,
        }
    }
    is
}

/// The organisation on the lines above the address on line `at` (and on `first`, the part
/// of that line before the address, if any), if the lines have one of the trusted shapes.
fn org_above(
    text: &str,
    lines: &Lines,
    at: usize,
    first: Option<(usize, usize)>,
    out: &[Candidate],
) -> Option<Candidate> {
    let mut block: Vec<(usize, usize)> = first.into_iter().collect();
    let mut above = LineIs::Free;
    let mut i = at;
    while i > 0 {
        i -= 1;
        let (ls, le) = lines.spans[i];
        let line = &text[ls..le];
        let trimmed = line.trim();
        if trimmed.is_empty() {
            break;
        }
        let (s, e) = (
            ls + (line.len() - line.trim_start().len()),
            ls + line.trim_end().len(),
        );
        match classify(out, s, e) {
            LineIs::Free if is_name_line(trimmed) && block.len() < MAX_CAPS_LINES => {
                block.push((s, e));
            }
            LineIs::Contact => {
                above = LineIs::Contact;
                break;
            }
            _ => {
                above = LineIs::Other;
                break;
            }
        }
    }
    if block.is_empty() || above == LineIs::Other {
        return None;
    }
    block.reverse();
    let caps = block.iter().all(|&(s, e)| is_upper(&text[s..e]));
    if caps {
        let words: usize = block
            .iter()
            .map(|&(s, e)| text[s..e].split_whitespace().count())
            .sum();
        if words < 3 {
            return None;
        }
        let (s, e) = (block[0].0, block[block.len() - 1].1);
        return Some(Candidate::collapsed(EntityKind::Org, text, s, e, 0.7));
    }
    // Title case: only the one line right above the address, under a person's line, and
    // not already an ORG of its own.
    let &(s, e) = block.last()?;
    if above != LineIs::Contact
        || block.len() != 1
        || text[s..e].split_whitespace().count() < 2
        || out
            .iter()
            .any(|c| c.kind == EntityKind::Org && c.start < e && c.end > s)
    {
        return None;
    }
    Some(Candidate::collapsed(EntityKind::Org, text, s, e, 0.65))
}

/// A line that could be (part of) an organisation's name: short, no digits, no `@` or
/// `:`, every word capitalised or a connector.
fn is_name_line(line: &str) -> bool {
    if line.chars().count() > MAX_LINE_CHARS
        || line
            .chars()
            .any(|c| c.is_ascii_digit() || c == '@' || c == ':')
    {
        return false;
    }
    line.split_whitespace().all(|w| {
        w.chars()
            .next()
            .is_some_and(|c| c.is_uppercase() || c == '&')
            || matches!(w, "of" | "the" | "for" | "and" | "de" | "in" | "on")
    })
}

/// True when every letter of `s` is upper case (and it has some).
fn is_upper(s: &str) -> bool {
    s.chars().any(char::is_alphabetic) && !s.chars().any(char::is_lowercase)
}

/// Words that cannot end an organisation's name.
fn is_dangling(word: &str) -> bool {
    word.ends_with('\'')
        || word.ends_with('’')
        || matches!(
            word,
            "OF" | "FOR" | "AND" | "THE" | "&" | "of" | "for" | "and" | "the"
        )
}

/// Extends every ORG candidate that ends a line on a dangling word over the upper-case
/// words opening the next line (up to a `;`, a `,` or the line's end).
fn continue_dangling_orgs(text: &str, out: &mut [Candidate]) {
    for c in out.iter_mut().filter(|c| c.kind == EntityKind::Org) {
        let Some(last) = text[c.start..c.end].split_whitespace().next_back() else {
            continue;
        };
        if !is_dangling(last) {
            continue;
        }
        let rest = &text[c.end..];
        let Some(newline) = rest.find('\n') else {
            continue;
        };
        if !rest[..newline].trim().is_empty() {
            continue;
        }
        let next_start = c.end + newline + 1;
        let next = &text[next_start..];
        let line_end = next.find(['\n', ';', ',']).unwrap_or(next.len());
        let words = next[..line_end].trim_end();
        let lead = words.len() - words.trim_start().len();
        let words = &words[lead..];
        if words.is_empty() || !is_upper(words) || words.chars().any(|ch| ch.is_ascii_digit()) {
            continue;
        }
        c.end = next_start + lead + words.len();
        c.normalized = collapse_whitespace(&text[c.start..c.end]);
    }
}
