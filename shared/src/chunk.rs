//! Chunk stage: splits a document's text into heading- and paragraph-aware chunks with
//! overlap, each carrying character offsets into the document text.
//!
//! Extraction works chunk by chunk and caches results by each chunk's SHA-256, so chunks
//! must be deterministic, small enough for an LLM prompt, and cut where a reader would cut:
//! between paragraphs and sections rather than inside a sentence or a word.
//!
//! # Rules
//!
//! 1. **Blocks.** The text is split into blocks at blank lines (lines holding only
//!    whitespace). A line recognised as a *heading* becomes a block of its own even without a
//!    blank line around it; consecutive heading lines form one heading block. A heading line
//!    is one of at most 80 characters that is
//!    - in ALL CAPS (at least two letters, no lower-case letter), e.g. `I. INTRODUCTION`,
//!      `1. DEFINITIONS`, `COUNT I`;
//!    - a keyword and a number, e.g. `ARTICLE IV`, `Section 3.2`, `Exhibit A`, optionally
//!      followed by a Title-Cased caption (`Section 3.2 Payment Terms`);
//!    - a number and a Title-Cased caption, e.g. `3.2 Term of Agreement`, `II. Statement of
//!      Facts`.
//!
//!    It must not end with `,` or `;`, and it must open its paragraph or follow a line that
//!    ends a sentence (or another heading), so a wrapped line of a paragraph that happens to
//!    start with `Section 4 ...` is not mistaken for one.
//! 2. **Headings stay with their body.** A run of heading blocks and the block after it are
//!    packed as one unit, so a heading is never the last block of a chunk (except a heading
//!    that ends the document). A heading starts a new chunk when the current chunk already
//!    holds at least `min_chars` characters of new text. A heading run longer than half of
//!    `max_chars` is treated as ordinary text.
//! 3. **Packing.** Units are packed greedily up to `max_chars` characters per chunk (the
//!    overlap included). A block that cannot fit in an empty chunk (with its heading) is
//!    split at sentence ends (`.`, `?` or `!`, possibly followed by a closing quote or
//!    bracket, then whitespace; a `.` after a single letter or a common legal abbreviation
//!    such as `No.`, `v.`, `Inc.` or `U.S.` does not count), a sentence that is still too
//!    long at the last whitespace that fits, and a run without whitespace by a hard cut
//!    between two characters (never inside a UTF-8 sequence).
//! 4. **Overlap.** Each chunk after the first starts up to `overlap_chars` characters before
//!    the previous chunk's end (never at or before the previous chunk's start), snapped
//!    forward so it does not start mid-word: to a sentence or paragraph start if one lies in
//!    the first half of the overlap window, else to the next word start. The overlap shrinks
//!    when it would push the chunk past `max_chars`. `overlap_chars: 0` gives contiguous
//!    chunks that share no text.
//! 5. **Short tail.** If the last chunk holds fewer than `min_chars` characters of new
//!    (non-overlap) text, it is merged into the previous chunk when the result spans at most
//!    `max_chars + min_chars` characters. That is the only way a chunk exceeds `max_chars`.
//!
//! Chunks are ordered, `index` runs `0..n`, `start`/`end` are character offsets into the
//! input (end-exclusive), `text` is exactly those characters, and together the chunks cover
//! every non-whitespace character. Empty or whitespace-only text gives no chunks.
//!
//! Offsets are tracked as (byte, char) pairs that advance incrementally, so chunking is
//! linear in the length of the text.

use std::sync::LazyLock;

use regex::Regex;

use crate::model::Chunk;
use crate::text::sha256_hex;

/// Bump when chunk boundaries change, so cached per-document results are invalidated.
pub const CHUNKER_VERSION: u32 = 1;

pub use crate::config::ChunkConfig;

/// Splits `text` into chunks following the rules in the [module docs](self).
///
/// Offsets are character offsets into `text`; `chunk.text` equals those characters, `sha256`
/// is its hex SHA-256 and `id` is `c{index}-{first 16 hex digits}`. The result depends only
/// on `text` and `cfg`.
pub fn chunk_text(text: &str, cfg: &ChunkConfig) -> Vec<Chunk> {
    let max = cfg.max_chars.max(1);
    let units = units(text, &blocks(text), max);
    pack(text, &units, cfg.min_chars, max, cfg.overlap_chars)
        .into_iter()
        .enumerate()
        .map(|(index, span)| {
            let chunk_text = &text[span.start.byte..span.end.byte];
            let sha256 = sha256_hex(chunk_text);
            Chunk {
                id: format!("c{index}-{}", &sha256[..16]),
                index,
                start: span.start.char,
                end: span.end.char,
                sha256,
                text: chunk_text.to_string(),
            }
        })
        .collect()
}

/// Longest line (in characters) that can be a heading.
const MAX_HEADING_CHARS: usize = 80;

/// A position in the text, as both a byte index (for slicing) and a char index (for output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Pos {
    byte: usize,
    char: usize,
}

impl Pos {
    /// `self` advanced by a position measured from `self`.
    fn plus(self, rel: Pos) -> Pos {
        Pos {
            byte: self.byte + rel.byte,
            char: self.char + rel.char,
        }
    }
}

/// Converts increasing byte offsets to positions, counting each character once.
struct Cursor<'a> {
    text: &'a str,
    at: Pos,
}

impl Cursor<'_> {
    fn pos(&mut self, byte: usize) -> Pos {
        debug_assert!(byte >= self.at.byte, "cursor only moves forward");
        self.at.char += self.text[self.at.byte..byte].chars().count();
        self.at.byte = byte;
        self.at
    }
}

/// A paragraph or heading: byte range of its non-whitespace extent.
#[derive(Debug, Clone, Copy)]
struct Block {
    start: usize,
    end: usize,
    heading: bool,
}

/// The smallest piece the packer moves: a whole block, or a sentence (or piece of one) of a
/// block too long to fit a chunk.
#[derive(Debug, Clone, Copy)]
struct Unit {
    start: Pos,
    end: Pos,
    heading: bool,
}

/// A chunk before it is materialised: `core_start..end` is new text, `start..core_start`
/// the overlap with the previous chunk.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: Pos,
    core_start: Pos,
    end: Pos,
}

/// Blocks of `text` in order: paragraphs split at blank lines, and heading lines split out.
fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    // The previous non-blank line of the current paragraph, and whether it was a heading.
    let mut prev_line: Option<(&str, bool)> = None;
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let offset = line_start;
        line_start += line.len();
        let content = line.trim();
        if content.is_empty() {
            out.extend(current.take());
            prev_line = None;
            continue;
        }
        let start = offset + (line.len() - line.trim_start().len());
        let end = start + content.len();
        let heading = is_heading_line(content)
            && prev_line
                .is_none_or(|(prev, prev_heading)| prev_heading || ends_line_of_prose(prev));
        match &mut current {
            Some(block) if block.heading == heading => block.end = end,
            _ => {
                out.extend(current.take());
                current = Some(Block {
                    start,
                    end,
                    heading,
                });
            }
        }
        prev_line = Some((content, heading));
    }
    out.extend(current);
    out
}

/// `ARTICLE IV`, `Section 3.2`, `Sec. 5`, `§ 12`, `Count I`, `Exhibit A`, `Rule 12(b)(6)`,
/// with an optional caption in `rest`.
static KEYWORD_HEADING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?i:article|section|sec\.|§§?|count|chapter|part|schedule|exhibit|appendix|annex|title|rule)\s*(?:\d+|[IVXLC]+|[A-Z])(?:[.\-]\d+)*(?:\([0-9A-Za-z]{1,4}\))*\.?(?:\s*[:.\-–—]?\s+(?P<rest>.+))?$",
    )
    .expect("keyword heading regex")
});

/// `1. Definitions`, `3.2 Term`, `II. Statement of Facts`, `A. Background`, `(a) Scope`.
static NUMBERED_HEADING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:\d+(?:\.\d+)*\.?|[IVXLC]+\.|[A-Z]\.|\([0-9A-Za-z]{1,4}\))\s+(?P<rest>.+)$")
        .expect("numbered heading regex")
});

/// Whether a trimmed, non-empty line looks like a heading (see the module docs).
fn is_heading_line(line: &str) -> bool {
    if line.len() > 4 * MAX_HEADING_CHARS || line.chars().count() > MAX_HEADING_CHARS {
        return false;
    }
    if line.ends_with([',', ';']) {
        return false;
    }
    let letters = line.chars().filter(|c| c.is_alphabetic()).count();
    if letters >= 2 && !line.chars().any(char::is_lowercase) {
        return true;
    }
    if let Some(caps) = KEYWORD_HEADING.captures(line) {
        return caps
            .name("rest")
            .is_none_or(|rest| is_title_like(rest.as_str()));
    }
    if let Some(caps) = NUMBERED_HEADING.captures(line) {
        return is_title_like(&caps["rest"]);
    }
    false
}

/// A short caption whose words of four or more letters are capitalised: `Term of
/// Agreement`, not `the Seller shall deliver`.
fn is_title_like(caption: &str) -> bool {
    let caption = caption.trim_end_matches(['.', ':']);
    let words: Vec<&str> = caption.split_whitespace().collect();
    if words.is_empty() || words.len() > 12 {
        return false;
    }
    let first_letter = |w: &str| w.chars().find(|c| c.is_alphabetic());
    let first_ok = first_letter(words[0]).is_none_or(char::is_uppercase);
    first_ok
        && words
            .iter()
            .all(|w| first_letter(w).is_none_or(|c| c.is_uppercase() || w.chars().count() < 4))
}

/// Whether a line ends a sentence or clause, so the next line may be a heading.
fn ends_line_of_prose(line: &str) -> bool {
    line.trim_end_matches(['"', '\'', '”', '’', ')', ']'])
        .ends_with(['.', ':', ';', '?', '!'])
}

/// Whether `before` (text up to some whitespace) ends a sentence.
fn is_sentence_end(before: &str) -> bool {
    let core = before.trim_end_matches(['"', '\'', '”', '’', ')', ']']);
    match core.chars().next_back() {
        Some('?' | '!') => true,
        Some('.') => {
            let word = core[..core.len() - 1]
                .rsplit(char::is_whitespace)
                .next()
                .unwrap_or("")
                .trim_start_matches(['(', '[', '"', '\'', '“', '‘']);
            !is_abbreviation(word)
        }
        _ => false,
    }
}

/// Words whose trailing `.` does not end a sentence: initials and common legal abbreviations.
fn is_abbreviation(word: &str) -> bool {
    const ABBREVIATIONS: &[&str] = &[
        "mr", "mrs", "ms", "mx", "dr", "prof", "hon", "jr", "sr", "st", "no", "nos", "v", "vs",
        "inc", "corp", "co", "ltd", "bros", "sec", "secs", "art", "para", "ch", "cl", "fig", "e.g",
        "i.e", "cf", "al", "u.s", "u.s.c", "c.f.r", "p", "pp", "esq", "ave", "jan", "feb", "mar",
        "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    ];
    let mut chars = word.chars();
    match (chars.next(), chars.next()) {
        (None, _) => false,
        (Some(c), None) => c.is_alphabetic(),
        _ => ABBREVIATIONS.contains(&word.to_lowercase().as_str()),
    }
}

/// Blocks turned into packable units: headings kept (unless a heading run is too long to
/// travel with its body), and blocks that cannot fit an empty chunk split into sentences.
fn units(text: &str, blocks: &[Block], max: usize) -> Vec<Unit> {
    let mut cursor = Cursor {
        text,
        at: Pos::default(),
    };
    let mut blocks: Vec<Unit> = blocks
        .iter()
        .map(|b| Unit {
            start: cursor.pos(b.start),
            end: cursor.pos(b.end),
            heading: b.heading,
        })
        .collect();

    // A heading run must leave at least half a chunk for the start of its body.
    let mut i = 0;
    while i < blocks.len() {
        if !blocks[i].heading {
            i += 1;
            continue;
        }
        let run_end = (i..blocks.len())
            .find(|&j| !blocks[j].heading)
            .unwrap_or(blocks.len());
        let reach = blocks
            .get(run_end)
            .map_or(blocks[run_end - 1].end, |b| b.start);
        if 2 * (reach.char - blocks[i].start.char) > max {
            blocks[i..run_end]
                .iter_mut()
                .for_each(|b| b.heading = false);
        }
        i = run_end;
    }

    let mut out = Vec::with_capacity(blocks.len());
    let mut run_start: Option<Pos> = None;
    for block in blocks {
        if block.heading {
            run_start.get_or_insert(block.start);
            out.push(block);
            continue;
        }
        let prefix = run_start.take().map_or(0, |r| block.start.char - r.char);
        if prefix + (block.end.char - block.start.char) <= max {
            out.push(block);
        } else {
            split_long_block(
                text,
                block,
                max.saturating_sub(prefix).max(1),
                max,
                &mut out,
            );
        }
    }
    out
}

/// Splits a block into sentences (see the module docs), the first at most `first_budget`
/// characters and the others at most `max`.
fn split_long_block(text: &str, block: Unit, first_budget: usize, max: usize, out: &mut Vec<Unit>) {
    let mut at = block.start;
    let mut budget = first_budget;
    while at.byte < block.end.byte {
        let seg = &text[at.byte..block.end.byte];
        let mut prev_ws = true;
        let mut last_ws: Option<Pos> = None;
        let mut cut: Option<Pos> = None;
        // `chars`: how many characters precede byte `i` in `seg`.
        for (chars, (i, c)) in seg.char_indices().enumerate() {
            let here = Pos {
                byte: i,
                char: chars,
            };
            if c.is_whitespace() {
                if !prev_ws {
                    if is_sentence_end(&seg[..i]) {
                        cut = Some(here);
                        break;
                    }
                    last_ws = Some(here);
                }
                prev_ws = true;
            } else {
                prev_ws = false;
            }
            if chars == budget {
                cut = Some(last_ws.unwrap_or(here));
                break;
            }
        }
        let end = cut.map_or(block.end, |rel| at.plus(rel));
        out.push(Unit {
            start: at,
            end,
            heading: false,
        });
        at = skip_whitespace(text, end, block.end.byte);
        budget = max;
    }
}

/// The first non-whitespace position at or after `from` (or `limit`).
fn skip_whitespace(text: &str, from: Pos, limit: usize) -> Pos {
    let mut at = from;
    for c in text[from.byte..limit].chars() {
        if !c.is_whitespace() {
            break;
        }
        at.byte += c.len_utf8();
        at.char += 1;
    }
    at
}

/// Packs units into chunk spans (rules 2–5 of the module docs).
fn pack(text: &str, units: &[Unit], min: usize, max: usize, overlap: usize) -> Vec<Span> {
    // Groups: a heading run with the unit after it, or a single unit.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let mut j = i;
        while j < units.len() && units[j].heading {
            j += 1;
        }
        if j < units.len() {
            j += 1;
        }
        groups.push((i, j));
        i = j;
    }

    let mut spans: Vec<Span> = Vec::new();
    let mut g = 0;
    while g < groups.len() {
        let core_start = units[groups[g].0].start;
        let mut end = units[groups[g].1 - 1].end;
        let mut start = match spans.last() {
            Some(prev) => overlap_start(text, prev, core_start, overlap),
            None => core_start,
        };
        if end.char - start.char > max {
            let target = forward(text, start, end.char - max - start.char);
            start = word_start_at_or_after(text, target, core_start);
        }
        g += 1;
        while let Some(&(first, last)) = groups.get(g) {
            if units[first].heading && end.char - core_start.char >= min {
                break;
            }
            let group_end = units[last - 1].end;
            if group_end.char - start.char > max {
                break;
            }
            end = group_end;
            g += 1;
        }
        spans.push(Span {
            start,
            core_start,
            end,
        });
    }

    if let [.., prev, last] = spans.as_slice()
        && last.end.char - last.core_start.char < min
        && last.end.char - prev.start.char <= max + min
    {
        let end = last.end;
        spans.pop();
        if let Some(prev) = spans.last_mut() {
            prev.end = end;
        }
    }
    spans
}

/// Where the chunk whose new text starts at `core_start` begins, reaching back into `prev`.
fn overlap_start(text: &str, prev: &Span, core_start: Pos, overlap: usize) -> Pos {
    // Never reach back to (or before) the previous chunk's start.
    let reach = overlap.min(prev.end.char - prev.start.char - 1);
    if reach == 0 {
        return core_start;
    }
    let from = back(text, prev.end, reach);
    let sentence_deadline = from.char + reach / 2;

    let mut prev_char = text[..from.byte].chars().next_back();
    // Byte index just after the last non-whitespace char, and newlines since then.
    let mut last_word_end = from.byte;
    let mut newlines = 0;
    let mut first_word_start: Option<Pos> = None;
    let mut at = from;
    for c in text[from.byte..core_start.byte].chars() {
        if c.is_whitespace() {
            newlines += usize::from(c == '\n');
        } else {
            if prev_char.is_none_or(char::is_whitespace) {
                let starts_sentence = newlines >= 2 || is_sentence_end(&text[..last_word_end]);
                if starts_sentence && at.char <= sentence_deadline {
                    return at;
                }
                first_word_start.get_or_insert(at);
                if at.char > sentence_deadline {
                    return first_word_start.unwrap_or(at);
                }
            }
            last_word_end = at.byte + c.len_utf8();
            newlines = 0;
        }
        prev_char = Some(c);
        at.byte += c.len_utf8();
        at.char += 1;
    }
    first_word_start.unwrap_or(core_start)
}

/// The first word start in `from..limit`, or `limit`.
fn word_start_at_or_after(text: &str, from: Pos, limit: Pos) -> Pos {
    let mut prev_char = text[..from.byte].chars().next_back();
    let mut at = from;
    for c in text[from.byte..limit.byte].chars() {
        if !c.is_whitespace() && prev_char.is_none_or(char::is_whitespace) {
            return at;
        }
        prev_char = Some(c);
        at.byte += c.len_utf8();
        at.char += 1;
    }
    limit
}

/// `from` moved back by `n` characters (stopping at the start of the text).
fn back(text: &str, from: Pos, n: usize) -> Pos {
    let mut at = from;
    for c in text[..from.byte].chars().rev().take(n) {
        at.byte -= c.len_utf8();
        at.char -= 1;
    }
    at
}

/// `from` moved forward by `n` characters (stopping at the end of the text).
fn forward(text: &str, from: Pos, n: usize) -> Pos {
    let mut at = from;
    for c in text[from.byte..].chars().take(n) {
        at.byte += c.len_utf8();
        at.char += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn cfg(min_chars: usize, max_chars: usize, overlap_chars: usize) -> ChunkConfig {
        ChunkConfig {
            min_chars,
            max_chars,
            overlap_chars,
        }
    }

    fn char_len(s: &str) -> usize {
        s.chars().count()
    }

    /// The properties every chunking must have, whatever the input.
    fn assert_invariants(text: &str, cfg: &ChunkConfig, chunks: &[Chunk]) {
        let chars: Vec<char> = text.chars().collect();
        if text.trim().is_empty() {
            assert!(
                chunks.is_empty(),
                "whitespace-only text must give no chunks"
            );
            return;
        }
        assert!(!chunks.is_empty());
        let max = cfg.max_chars.max(1);
        let mut covered = vec![false; chars.len()];
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.index, i);
            assert!(c.start < c.end, "chunk {i} is empty");
            let expected: String = chars[c.start..c.end].iter().collect();
            assert_eq!(
                c.text, expected,
                "chunk {i} text must equal text[start..end]"
            );
            assert_eq!(c.sha256, sha256_hex(&c.text));
            assert_eq!(c.id, format!("c{i}-{}", &c.sha256[..16]));
            let len = c.end - c.start;
            let allowed = if i + 1 == chunks.len() {
                max + cfg.min_chars
            } else {
                max
            };
            assert!(
                len <= allowed,
                "chunk {i} has {len} chars, allowed {allowed}"
            );
            if i > 0 {
                assert!(c.start > chunks[i - 1].start, "chunk starts must increase");
                assert!(c.end > chunks[i - 1].end, "chunk ends must increase");
                assert!(
                    c.start <= chunks[i - 1].end
                        || chars[chunks[i - 1].end..c.start]
                            .iter()
                            .all(|c| c.is_whitespace())
                );
            }
            covered[c.start..c.end].iter_mut().for_each(|x| *x = true);
        }
        for (i, ch) in chars.iter().enumerate() {
            assert!(
                ch.is_whitespace() || covered[i],
                "char {i} ({ch:?}) not covered"
            );
        }
    }

    fn legal_text() -> String {
        let mut s = String::new();
        s.push_str("MASTER SERVICES AGREEMENT\n\n");
        for article in 1..=6 {
            s.push_str(&format!("ARTICLE {article}\n"));
            s.push_str("1. DEFINITIONS\n\n");
            for para in 0..4 {
                s.push_str(&format!(
                    "Para {article}.{para}: “Agreement” means this agreement under § 2.{para} of \
                     the Code; the café owner, Ms. Renée Dupont, pays $1,250.00 to Acme Corp. \
                     No. 24-cv-{para} was filed in the U.S. District Court. Does it apply? It does!\n\n"
                ));
            }
        }
        s
    }

    #[test]
    fn offsets_match_the_text_on_multibyte_input() {
        let text = "§ 1. Café “Résumé” clause — naïve façade.\n\nÉtude § 2: “quoted” é é é.\n\n"
            .repeat(40);
        let cfg = cfg(50, 120, 30);
        let chunks = chunk_text(&text, &cfg);
        assert!(chunks.len() > 5);
        assert_invariants(&text, &cfg, &chunks);
    }

    #[test]
    fn every_non_whitespace_char_is_covered_with_and_without_overlap() {
        let text = legal_text();
        for cfg in [
            cfg(100, 300, 0),
            cfg(100, 300, 60),
            cfg(400, 2000, 200),
            cfg(0, 50, 10),
        ] {
            let chunks = chunk_text(&text, &cfg);
            assert_invariants(&text, &cfg, &chunks);
        }
    }

    #[test]
    fn no_chunk_exceeds_max_chars_except_the_merged_tail() {
        let text = legal_text();
        let cfg = cfg(120, 400, 80);
        let chunks = chunk_text(&text, &cfg);
        for c in &chunks[..chunks.len() - 1] {
            assert!(char_len(&c.text) <= 400);
        }
        assert!(char_len(&chunks.last().unwrap().text) <= 400 + 120);
        assert_invariants(&text, &cfg, &chunks);
    }

    #[test]
    fn short_trailing_chunk_is_merged_into_the_previous_one() {
        let text = format!(
            "{}\n\nTail.",
            "Alpha beta gamma delta. ".repeat(8).trim_end()
        );
        let cfg = cfg(20, 195, 0);
        let chunks = chunk_text(&text, &cfg);
        assert_eq!(chunks.len(), 1, "{chunks:#?}");
        assert!(chunks[0].text.ends_with("Tail."));
        assert!(
            char_len(&chunks[0].text) > 195,
            "the merge allowance was needed"
        );
        assert_invariants(&text, &cfg, &chunks);
    }

    #[test]
    fn short_trailing_chunk_stays_alone_when_merging_would_exceed_the_allowance() {
        // 191 chars, ten blank lines, 5 chars: merged would span 206 > 195 + 6.
        let text = format!(
            "{}{}Tail.",
            "Alpha beta gamma delta. ".repeat(8).trim_end(),
            "\n".repeat(10)
        );
        let cfg = cfg(6, 195, 0);
        let chunks = chunk_text(&text, &cfg);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].text, "Tail.");
        assert_invariants(&text, &cfg, &chunks);
    }

    #[test]
    fn a_heading_starts_a_new_chunk_and_stays_with_its_body() {
        let body = "The parties agree to the terms below. ".repeat(4);
        let text = format!(
            "{body}\n\nARTICLE IV\n\nSection 4.1 Payment Terms\nPayment is due in thirty days.\n\n{body}"
        );
        let cfg = cfg(100, 1000, 0);
        let chunks = chunk_text(&text, &cfg);
        assert_invariants(&text, &cfg, &chunks);
        assert_eq!(chunks.len(), 2, "{chunks:#?}");
        assert!(
            chunks[1]
                .text
                .starts_with("ARTICLE IV\n\nSection 4.1 Payment Terms\nPayment")
        );
    }

    #[test]
    fn a_heading_is_never_the_last_block_of_a_chunk() {
        let text = legal_text();
        for cfg in [cfg(50, 200, 0), cfg(100, 300, 40), cfg(10, 120, 0)] {
            let chunks = chunk_text(&text, &cfg);
            assert_invariants(&text, &cfg, &chunks);
            for c in &chunks[..chunks.len() - 1] {
                let last_line = c.text.trim_end().lines().last().unwrap().trim();
                assert!(
                    !is_heading_line(last_line),
                    "chunk ends with heading {last_line:?}"
                );
            }
        }
    }

    #[test]
    fn heading_does_not_split_when_the_current_chunk_is_below_min_chars() {
        let text = "Short intro.\n\nARTICLE I\n\nBody of article one.";
        let cfg = cfg(400, 2000, 200);
        let chunks = chunk_text(text, &cfg);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].text, text);
    }

    #[test]
    fn heading_lines_are_recognised_and_prose_lines_are_not() {
        for heading in [
            "ARTICLE IV",
            "Section 3.2",
            "Section 3.2 Payment Terms",
            "1. DEFINITIONS",
            "COUNT I",
            "I. INTRODUCTION",
            "II. Statement of Facts",
            "3.2 Term of Agreement",
            "Exhibit A",
            "§ 12",
        ] {
            assert!(is_heading_line(heading), "{heading:?} should be a heading");
        }
        for prose in [
            "Section 3.2 of this Agreement shall survive termination",
            "1. The Seller shall deliver the goods to the Buyer",
            "The parties agree as follows",
            "WHEREAS, the parties",
            "ACME CORP.,",
            "A",
        ] {
            assert!(!is_heading_line(prose), "{prose:?} should not be a heading");
        }
    }

    #[test]
    fn wrapped_prose_line_starting_with_a_keyword_is_not_a_heading() {
        let text =
            "The obligations described in\nSection 4 Obligations\ncontinue after termination.";
        let blocks = blocks(text);
        assert_eq!(blocks.len(), 1);
        assert!(!blocks[0].heading);
    }

    #[test]
    fn a_long_paragraph_is_split_at_sentence_ends() {
        let text =
            "This is sentence one. This is sentence two? This is sentence three! ".repeat(10);
        let cfg = cfg(0, 100, 0);
        let chunks = chunk_text(&text, &cfg);
        assert_invariants(&text, &cfg, &chunks);
        for c in &chunks {
            assert!(
                c.text.ends_with(['.', '?', '!']),
                "{:?} does not end a sentence",
                c.text
            );
        }
    }

    #[test]
    fn abbreviations_do_not_end_sentences() {
        assert!(!is_sentence_end("filed by Acme Inc."));
        assert!(!is_sentence_end("see No."));
        assert!(!is_sentence_end("Smith v."));
        assert!(!is_sentence_end("J."));
        assert!(!is_sentence_end("42 U.S.C."));
        assert!(is_sentence_end("the end."));
        assert!(is_sentence_end("he said “stop.”"));
        assert!(is_sentence_end("really?"));
    }

    #[test]
    fn a_sentence_longer_than_max_is_split_at_whitespace() {
        let text = "word ".repeat(100);
        let cfg = cfg(0, 23, 0);
        let chunks = chunk_text(&text, &cfg);
        assert_invariants(&text, &cfg, &chunks);
        for c in &chunks {
            assert!(
                c.text.split(' ').all(|w| w == "word"),
                "{:?} cuts a word",
                c.text
            );
        }
    }

    #[test]
    fn text_without_whitespace_is_hard_cut_between_multibyte_chars() {
        let text = "é§“”".repeat(50);
        let cfg = cfg(0, 7, 0);
        let chunks = chunk_text(&text, &cfg);
        assert_invariants(&text, &cfg, &chunks);
        assert!(
            chunks
                .iter()
                .all(|c| char_len(&c.text) == 7 || c.index + 1 == chunks.len())
        );
    }

    #[test]
    fn zero_overlap_gives_contiguous_chunks() {
        let text = legal_text();
        let cfg = cfg(100, 300, 0);
        let chunks = chunk_text(&text, &cfg);
        assert_invariants(&text, &cfg, &chunks);
        let chars: Vec<char> = text.chars().collect();
        for pair in chunks.windows(2) {
            assert!(pair[0].end <= pair[1].start);
            assert!(
                chars[pair[0].end..pair[1].start]
                    .iter()
                    .all(|c| c.is_whitespace())
            );
        }
    }

    #[test]
    fn overlap_reaches_back_at_most_overlap_chars_and_starts_on_a_word() {
        let text = legal_text();
        let cfg = cfg(100, 300, 60);
        let chunks = chunk_text(&text, &cfg);
        assert_invariants(&text, &cfg, &chunks);
        let chars: Vec<char> = text.chars().collect();
        let mut overlapping = 0;
        for pair in chunks.windows(2) {
            let (prev, next) = (&pair[0], &pair[1]);
            assert!(
                next.start + 60 >= prev.end,
                "overlap is longer than overlap_chars"
            );
            if next.start < prev.end {
                overlapping += 1;
            }
            assert!(!chars[next.start].is_whitespace());
            assert!(
                next.start == 0 || chars[next.start - 1].is_whitespace(),
                "starts mid-word"
            );
        }
        assert!(
            overlapping * 2 >= chunks.len() - 1,
            "most chunks should overlap"
        );
    }

    #[test]
    fn overlap_prefers_a_sentence_start_in_the_first_half_of_the_window() {
        let text =
            "One two three four five six. Seven eight nine ten eleven twelve.\n\nNext para here.";
        let cfg = cfg(0, 66, 40);
        let chunks = chunk_text(text, &cfg);
        assert_invariants(text, &cfg, &chunks);
        assert_eq!(chunks.len(), 2, "{chunks:#?}");
        assert!(
            chunks[1].text.starts_with("Seven eight"),
            "{:?}",
            chunks[1].text
        );
    }

    #[test]
    fn same_text_and_config_give_the_same_chunks_and_ids() {
        let text = legal_text();
        let a = chunk_text(&text, &ChunkConfig::default());
        let b = chunk_text(&text, &ChunkConfig::default());
        assert_eq!(a, b);
        let ids: Vec<&str> = a.iter().map(|c| c.id.as_str()).collect();
        let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len());
    }

    #[test]
    fn identical_paragraphs_get_distinct_ids() {
        let text = format!("{p}\n\n{p}", p = "Same words in both paragraphs.");
        let cfg = cfg(0, 31, 0);
        let chunks = chunk_text(&text, &cfg);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].sha256, chunks[1].sha256);
        assert_ne!(chunks[0].id, chunks[1].id);
    }

    #[test]
    fn empty_or_whitespace_only_text_gives_no_chunks() {
        for text in ["", "   ", "\n\n\t \r\n", "\u{a0}\u{2003}"] {
            assert!(
                chunk_text(text, &ChunkConfig::default()).is_empty(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn leading_and_trailing_whitespace_is_not_part_of_any_chunk() {
        let text = "\n\n  Hello world.  \n\n";
        let chunks = chunk_text(text, &ChunkConfig::default());
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].text, "Hello world.");
        assert_eq!((chunks[0].start, chunks[0].end), (4, 16));
    }

    #[test]
    fn degenerate_configs_still_cover_the_text() {
        let text: String = legal_text().chars().take(600).collect();
        for cfg in [
            cfg(0, 0, 0),
            cfg(0, 1, 5),
            cfg(5000, 10, 10),
            cfg(0, 40, 1000),
        ] {
            let chunks = chunk_text(&text, &cfg);
            assert_invariants(&text, &cfg, &chunks);
        }
    }

    #[test]
    fn a_200_kb_document_chunks_quickly_and_keeps_every_invariant() {
        let mut text = String::new();
        while text.len() < 200_000 {
            text.push_str(&legal_text());
            text.push_str(&"Longwordwithoutspaces§é".repeat(150));
            text.push_str("\n\n");
        }
        let cfg = ChunkConfig::default();
        let started = Instant::now();
        let chunks = chunk_text(&text, &cfg);
        let elapsed = started.elapsed();
        // Generous bound: it only catches quadratic work, never a slow machine.
        assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
        assert!(chunks.len() > 50);
        assert_invariants(&text, &cfg, &chunks);
    }
}
