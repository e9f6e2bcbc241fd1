//! Byte → character offset conversion, built once per `extract` call.

/// Maps byte offsets of one text to character offsets in O(1) per lookup.
///
/// Regexes report byte offsets but mentions carry character offsets; counting characters
/// per match would make extraction quadratic on long documents, so the map is built once.
pub(super) enum CharOffsets {
    /// ASCII text: byte and character offsets coincide.
    Identity,
    /// `map[b]` is the character index of byte `b` (meaningful on char boundaries and at
    /// the end of the text).
    Table(Vec<u32>),
}

impl CharOffsets {
    pub(super) fn new(text: &str) -> Self {
        if text.is_ascii() {
            return CharOffsets::Identity;
        }
        let mut map = vec![0u32; text.len() + 1];
        let mut count = 0u32;
        for (b, c) in text.char_indices() {
            for slot in &mut map[b..b + c.len_utf8()] {
                *slot = count;
            }
            count += 1;
        }
        map[text.len()] = count;
        CharOffsets::Table(map)
    }

    /// Character offset of byte offset `byte` (a char boundary of the text).
    pub(super) fn char_at(&self, byte: usize) -> usize {
        match self {
            CharOffsets::Identity => byte,
            CharOffsets::Table(map) => map[byte] as usize,
        }
    }
}
